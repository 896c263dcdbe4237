// SPDX-License-Identifier: MIT
// Clocks and timers: the host and virtual clocks, and timers that fire from the main loop.
#include "clock.h"

#include <algorithm>
#include <climits>
#include <ctime>

#include <sys/timerfd.h>
#include <unistd.h>

// The C ABI's opaque timer.
struct KeelTimer {
    KeelClockType clock;
    KeelTimerCallback cb;
    void *opaque;
    std::string owner;
    int64_t expire = 0;
    uint64_t seq = 0; // when it was last armed; orders equal deadlines and bounds run_expired()
    bool armed = false;
};

namespace keel
{

namespace
{

int64_t read_clock(clockid_t id)
{
    timespec ts;
    clock_gettime(id, &ts);
    return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int64_t sat_sub(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r)) return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}

} // namespace

int64_t host_clock_ns()
{
    return read_clock(CLOCK_REALTIME);
}
int64_t host_monotonic_ns()
{
    return read_clock(CLOCK_MONOTONIC);
}

// ---- VirtualClock ----

VirtualClock::Snapshot VirtualClock::read() const
{
    for (;;) {
        uint64_t s1 = seq_.load(std::memory_order_acquire);
        if (s1 & 1) continue;
        Snapshot s{running_.load(std::memory_order_relaxed), value_.load(std::memory_order_relaxed),
                   offset_.load(std::memory_order_relaxed), 0};
        // Sampled inside the window, so a reader returning the old state read
        // the host clock before any writer that changed it (see update()).
        if (s.running) s.mono = host_monotonic_ns();
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (seq_.load(std::memory_order_relaxed) == s1) return s;
    }
}

void VirtualClock::update(bool run)
{
    uint64_t s = seq_.load(std::memory_order_relaxed);
    seq_.store(s + 1, std::memory_order_relaxed);
    // Full fence: the odd count must be visible to readers before we sample
    // the host clock, or a reader could pair an older state with a later time.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    int64_t mono = host_monotonic_ns(); // after seq_ went odd: see read()
    if (run) {
        offset_.store(value_.load(std::memory_order_relaxed) - mono, std::memory_order_relaxed);
    } else {
        value_.store(mono + offset_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    }
    running_.store(run, std::memory_order_relaxed);
    seq_.store(s + 2, std::memory_order_release);
}

namespace
{
// The engine running on this thread, with -icount (see KeelIcountHooks).
thread_local const KeelIcountHooks *t_icount_hooks = nullptr;
} // namespace

void VirtualClock::icount_attach(const KeelIcountHooks *h)
{
    t_icount_hooks = h;
}

const KeelIcountHooks *VirtualClock::icount_hooks()
{
    return t_icount_hooks;
}

void VirtualClock::set_icount(int shift, bool sleep)
{
    icount_sleep_.store(sleep, std::memory_order_relaxed);
    icount_shift_.store(shift, std::memory_order_relaxed);
}

int64_t VirtualClock::now() const
{
    int shift = icount_shift_.load(std::memory_order_relaxed);
    if (shift >= 0) {
        int64_t n = icount_insns_.load(std::memory_order_relaxed);
        if (const KeelIcountHooks *h = t_icount_hooks; h && h->pending) n += h->pending(h->opaque);
        return (n << shift) + icount_bias_.load(std::memory_order_relaxed);
    }
    Snapshot s = read();
    return s.running ? s.mono + s.offset : s.value;
}

bool VirtualClock::running() const
{
    return running_.load(std::memory_order_acquire);
}

void VirtualClock::start()
{
    std::lock_guard<std::mutex> g(lock_);
    if (running_.load(std::memory_order_relaxed) || controlled_.load(std::memory_order_relaxed)) return;
    update(true);
    if (listener_) listener_();
}

void VirtualClock::stop()
{
    std::lock_guard<std::mutex> g(lock_);
    if (!running_.load(std::memory_order_relaxed)) return;
    update(false);
    if (listener_) listener_();
}

bool VirtualClock::take_control()
{
    std::lock_guard<std::mutex> g(lock_);
    if (controlled_.load(std::memory_order_relaxed)) return false;
    if (running_.load(std::memory_order_relaxed)) update(false);
    controlled_.store(true, std::memory_order_relaxed);
    if (listener_) listener_();
    return true;
}

bool VirtualClock::advance_to(int64_t ns)
{
    std::lock_guard<std::mutex> g(lock_);
    if (!controlled_.load(std::memory_order_relaxed) || ns <= value_.load(std::memory_order_relaxed))
        return false;
    uint64_t s = seq_.load(std::memory_order_relaxed);
    seq_.store(s + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    value_.store(ns, std::memory_order_relaxed);
    seq_.store(s + 2, std::memory_order_release);
    // No listener call: the caller runs the timers now due itself (on the vCPU thread, deterministically);
    // later deadlines stay unreachable for the main loop's sleep while the clock is frozen.
    return true;
}

void VirtualClock::release_control(bool run)
{
    std::lock_guard<std::mutex> g(lock_);
    if (!controlled_.exchange(false, std::memory_order_relaxed)) return;
    if (run && !running_.load(std::memory_order_relaxed)) update(true);
    if (listener_) listener_();
}

int64_t VirtualClock::ns_until(int64_t virtual_deadline) const
{
    if (icount_shift() >= 0) return virtual_deadline <= now() ? 0 : INT64_MAX; // instructions drive it
    Snapshot s = read();
    int64_t now = s.running ? s.mono + s.offset : s.value;
    if (virtual_deadline <= now) return 0;
    if (!s.running) return INT64_MAX;
    return sat_sub(virtual_deadline, now); // virtual time runs at host speed
}

void VirtualClock::set_listener(std::function<void()> fn)
{
    std::lock_guard<std::mutex> g(lock_);
    listener_ = std::move(fn);
}

// ---- TimerManager ----

// The GSource sleeping until the next deadline. A timerfd gives ns precision
// where a poll() timeout would round to ms. `tm` is cleared (under `alive`)
// when the manager dies, since glib may still hold the source for a moment.
struct TimerManager::Source {
    GSource base;
    std::mutex *alive;
    TimerManager *tm;
    int tfd;
    gpointer tag;
};

namespace
{

void arm_timerfd(int fd, int64_t ns)
{
    itimerspec its{};
    if (ns != INT64_MAX) {
        ns = std::max<int64_t>(ns, 1); // 0 would disarm
        its.it_value.tv_sec = ns / 1000000000;
        its.it_value.tv_nsec = ns % 1000000000;
    }
    timerfd_settime(fd, 0, &its, nullptr);
}

} // namespace

bool TimerManager::Order::operator()(const KeelTimer *a, const KeelTimer *b) const
{
    if (a->expire != b->expire) return a->expire < b->expire;
    return a->seq < b->seq;
}

TimerManager::TimerManager(VirtualClock &vclock, MainLoop &loop) : vclock_(vclock), loop_(loop)
{
    vclock_.set_listener([this] { notify_clock_changed(); });
}

TimerManager::~TimerManager()
{
    vclock_.set_listener(nullptr);
    if (source_) {
        {
            std::lock_guard<std::mutex> g(*source_->alive);
            source_->tm = nullptr;
        }
        g_source_destroy(&source_->base);
        g_source_unref(&source_->base);
    }
}

int64_t TimerManager::now(KeelClockType c) const
{
    return c == KEEL_CLOCK_HOST ? host_clock_ns() : vclock_.now();
}

KeelTimer *TimerManager::create(KeelClockType c, KeelTimerCallback cb, void *opaque, std::string owner)
{
    auto t = std::make_unique<KeelTimer>();
    t->clock = c == KEEL_CLOCK_HOST ? KEEL_CLOCK_HOST : KEEL_CLOCK_VIRTUAL;
    t->cb = cb;
    t->opaque = opaque;
    t->owner = std::move(owner);
    KeelTimer *raw = t.get();
    std::lock_guard<std::mutex> g(lock_);
    timers_.emplace(raw, std::move(t));
    return raw;
}

void TimerManager::disarm_locked(KeelTimer *t)
{
    if (!t->armed) return;
    armed_[t->clock].erase(t);
    t->armed = false;
}

void TimerManager::mod(KeelTimer *t, int64_t expire_ns)
{
    bool earliest;
    {
        std::lock_guard<std::mutex> g(lock_);
        if (!timers_.count(t)) return;
        disarm_locked(t);
        t->expire = expire_ns;
        t->seq = ++arm_seq_;
        t->armed = true;
        auto &set = armed_[t->clock];
        auto it = set.insert(t).first;
        earliest = it == set.begin();
    }
    // Only a new earliest deadline shortens the loop's sleep.
    if (!earliest) return;
    if (t->clock == KEEL_CLOCK_VIRTUAL && vclock_.icount_shift() >= 0) {
        // The vCPU thread counts down to virtual deadlines: it must see the new one.
        if (const KeelIcountHooks *h = VirtualClock::icount_hooks()) {
            if (h->deadline_changed) h->deadline_changed(h->opaque);
        } else if (icount_wake_) {
            icount_wake_();
        }
        return;
    }
    wake();
}

void TimerManager::del(KeelTimer *t)
{
    std::lock_guard<std::mutex> g(lock_);
    if (timers_.count(t)) disarm_locked(t);
}

void TimerManager::free(KeelTimer *t)
{
    std::lock_guard<std::mutex> g(lock_);
    auto it = timers_.find(t);
    if (it == timers_.end()) return;
    disarm_locked(t);
    timers_.erase(it);
}

bool TimerManager::pending(KeelTimer *t) const
{
    std::lock_guard<std::mutex> g(lock_);
    return timers_.count(t) && t->armed;
}

int64_t TimerManager::next_deadline(KeelClockType c) const
{
    std::lock_guard<std::mutex> g(lock_);
    const auto &set = armed_[c == KEEL_CLOCK_HOST ? 1 : 0];
    return set.empty() ? INT64_MAX : (*set.begin())->expire;
}

size_t TimerManager::count() const
{
    std::lock_guard<std::mutex> g(lock_);
    return timers_.size();
}

int64_t TimerManager::ns_until_next() const
{
    int64_t v = next_deadline(KEEL_CLOCK_VIRTUAL);
    int64_t h = next_deadline(KEEL_CLOCK_HOST);
    int64_t r = INT64_MAX;
    if (v != INT64_MAX && vclock_.icount_shift() < 0) r = vclock_.ns_until(v); // -icount: the vCPU's job
    if (h != INT64_MAX) r = std::min(r, sat_sub(h, host_clock_ns()));
    return r;
}

void TimerManager::run_expired(int only)
{
    uint64_t limit;
    {
        std::lock_guard<std::mutex> g(lock_);
        limit = arm_seq_;
    }
    for (;;) {
        KeelTimerCallback cb = nullptr;
        void *opaque = nullptr;
        {
            std::lock_guard<std::mutex> g(lock_);
            KeelTimer *best = nullptr;
            int64_t best_late = 0;
            for (int c = 0; c < 2; ++c) {
                if (only >= 0 && c != only) continue;
                int64_t now = this->now(KeelClockType(c));
                for (KeelTimer *t : armed_[c]) {
                    if (t->expire > now) break;
                    if (t->seq > limit) continue; // armed during this call
                    // Across clocks, the one that has been due longest goes first.
                    int64_t late = sat_sub(now, t->expire);
                    if (!best || late > best_late) {
                        best = t;
                        best_late = late;
                    }
                    break;
                }
            }
            if (!best) return;
            disarm_locked(best);
            cb = best->cb;
            opaque = best->opaque;
        }
        // Unlocked: the callback may mod/del/free any timer, itself included.
        if (cb) cb(opaque);
    }
}

int64_t TimerManager::icount_budget() const
{
    int64_t d = next_deadline(KEEL_CLOCK_VIRTUAL);
    if (d == INT64_MAX) return INT64_MAX;
    int64_t now = vclock_.now();
    if (d <= now) return 0;
    int shift = std::max(vclock_.icount_shift(), 0);
    return ((sat_sub(d, now) - 1) >> shift) + 1; // the first instruction count at or past d
}

int64_t TimerManager::icount_idle_ns() const
{
    int64_t d = next_deadline(KEEL_CLOCK_VIRTUAL);
    if (d == INT64_MAX) return INT64_MAX;
    int64_t now = vclock_.now();
    if (d <= now || !vclock_.icount_sleep()) return 0;
    return sat_sub(d, now); // as QEMU's sleep=on: virtual time keeps pace with the host while idle
}

void TimerManager::icount_warp(int64_t ns)
{
    if (ns <= 0) return;
    int64_t d = next_deadline(KEEL_CLOCK_VIRTUAL);
    int64_t now = vclock_.now();
    if (d != INT64_MAX) {
        if (d <= now) return;
        ns = std::min(ns, sat_sub(d, now));
    } else if (ns == INT64_MAX) {
        return; // nowhere to jump to
    }
    vclock_.icount_skip(ns);
}

void TimerManager::run_expired_virtual()
{
    std::lock_guard<std::recursive_mutex> big(big_lock());
    run_expired(KEEL_CLOCK_VIRTUAL);
}

void TimerManager::set_icount_wake(std::function<void()> fn)
{
    icount_wake_ = std::move(fn);
}

void TimerManager::wake()
{
    g_main_context_wakeup(loop_.context());
}

void TimerManager::notify_clock_changed()
{
    wake();
}

void TimerManager::attach()
{
    static GSourceFuncs funcs = {
        // prepare
        [](GSource *src, gint *timeout) -> gboolean {
            auto *s = reinterpret_cast<Source *>(src);
            *timeout = -1;
            std::lock_guard<std::mutex> g(*s->alive);
            if (!s->tm) return FALSE;
            int64_t ns = s->tm->ns_until_next();
            if (ns <= 0) {
                *timeout = 0;
                return TRUE;
            }
            arm_timerfd(s->tfd, ns);
            return FALSE;
        },
        // check
        [](GSource *src) -> gboolean {
            auto *s = reinterpret_cast<Source *>(src);
            if (g_source_query_unix_fd(src, s->tag) & G_IO_IN) {
                uint64_t expirations;
                [[maybe_unused]] ssize_t n = ::read(s->tfd, &expirations, sizeof expirations);
            }
            std::lock_guard<std::mutex> g(*s->alive);
            return s->tm && s->tm->ns_until_next() <= 0;
        },
        // dispatch
        [](GSource *src, GSourceFunc, gpointer) -> gboolean {
            auto *s = reinterpret_cast<Source *>(src);
            std::lock_guard<std::recursive_mutex> big(big_lock());
            std::lock_guard<std::mutex> g(*s->alive);
            if (s->tm) s->tm->run_expired(s->tm->vclock_.icount_shift() >= 0 ? KEEL_CLOCK_HOST : -1);
            return G_SOURCE_CONTINUE;
        },
        // finalize
        [](GSource *src) {
            auto *s = reinterpret_cast<Source *>(src);
            if (s->tfd >= 0) ::close(s->tfd);
            delete s->alive;
        },
        nullptr,
        nullptr,
    };
    if (source_) return;
    GSource *src = g_source_new(&funcs, sizeof(Source));
    auto *s = reinterpret_cast<Source *>(src);
    s->alive = new std::mutex;
    s->tm = this;
    s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (s->tfd < 0) g_error("keel: timerfd_create failed");
    s->tag = g_source_add_unix_fd(src, s->tfd, G_IO_IN);
    g_source_set_name(src, "keel-timers");
    source_ = s;
    g_source_attach(src, loop_.context());
}

} // namespace keel
