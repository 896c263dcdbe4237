// SPDX-License-Identifier: MIT
// Tests of the virtual and host clocks and of timers firing through the main loop.
#include <catch2/catch.hpp>

#include <chrono>
#include <climits>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <thread>
#include <vector>

#include "clock.h"

using namespace keel;
using namespace std::chrono_literals;

namespace
{

constexpr int64_t kMs = 1000000;

// What fired, in order, and when (on the timer's own clock).
struct Log {
    std::mutex m;
    std::condition_variable cv;
    std::vector<int> ids;
    std::vector<int64_t> times;
    std::vector<bool> on_loop;

    bool wait_for(size_t n, std::chrono::milliseconds limit = 5000ms)
    {
        std::unique_lock<std::mutex> g(m);
        return cv.wait_for(g, limit, [&] { return ids.size() >= n; });
    }
    size_t size()
    {
        std::lock_guard<std::mutex> g(m);
        return ids.size();
    }
};

// One timer's callback context.
struct Probe {
    Log *log;
    int id;
    TimerManager *tm;
    MainLoop *loop;
    KeelClockType clock;
    KeelTimer *timer = nullptr;
    int rearm = 0;          // re-arm itself this many more times
    bool free_self = false; // free its own timer from the callback
};

void fire(void *opaque)
{
    auto *p = static_cast<Probe *>(opaque);
    int64_t now = p->tm->now(p->clock);
    if (p->rearm > 0) {
        --p->rearm;
        p->tm->mod(p->timer, now + 2 * kMs);
    }
    if (p->free_self) {
        p->tm->free(p->timer);
        p->timer = nullptr;
    }
    std::lock_guard<std::mutex> g(p->log->m);
    p->log->ids.push_back(p->id);
    p->log->times.push_back(now);
    p->log->on_loop.push_back(p->loop->on_loop_thread());
    p->log->cv.notify_all();
}

struct Rig {
    MainLoop loop;
    VirtualClock vclock;
    TimerManager tm{vclock, loop};
    Log log;
    std::vector<std::unique_ptr<Probe>> probes;

    Rig()
    {
        tm.attach();
        loop.start();
    }
    ~Rig() { loop.stop(); }

    Probe &timer(int id, KeelClockType clock = KEEL_CLOCK_VIRTUAL)
    {
        probes.push_back(std::make_unique<Probe>(Probe{&log, id, &tm, &loop, clock}));
        Probe &p = *probes.back();
        p.timer = tm.create(clock, fire, &p, "/test/t" + std::to_string(id));
        return p;
    }
};

} // namespace

TEST_CASE("the virtual clock is frozen while stopped and advances while running", "[clock]")
{
    VirtualClock c;
    CHECK_FALSE(c.running());
    CHECK(c.now() == 0);
    std::this_thread::sleep_for(10ms);
    CHECK(c.now() == 0);

    c.start();
    CHECK(c.running());
    std::this_thread::sleep_for(20ms);
    int64_t a = c.now();
    CHECK(a >= 20 * kMs);
    CHECK(c.now() >= a); // monotonic

    c.stop();
    int64_t frozen = c.now();
    CHECK(frozen >= a);
    std::this_thread::sleep_for(10ms);
    CHECK(c.now() == frozen);

    // Resumes from the frozen value: no jump for the time spent stopped.
    c.start();
    int64_t b = c.now();
    CHECK(b >= frozen);
    CHECK(b - frozen < 1000 * kMs);
    c.start(); // idempotent
    CHECK(c.now() >= b);
}

TEST_CASE("ns_until converts virtual deadlines to host time", "[clock]")
{
    VirtualClock c;
    CHECK(c.ns_until(0) == 0);
    CHECK(c.ns_until(-5) == 0);
    CHECK(c.ns_until(1) == INT64_MAX); // stopped: never reached
    c.start();
    int64_t d = c.now() + 50 * kMs;
    int64_t w = c.ns_until(d);
    CHECK(w > 0);
    CHECK(w <= 50 * kMs);
    CHECK(c.ns_until(INT64_MAX) > 0);
    c.stop();
    CHECK(c.ns_until(c.now()) == 0);
    CHECK(c.ns_until(c.now() + 1) == INT64_MAX);
}

TEST_CASE("virtual clock reads are consistent while another thread starts and stops it", "[clock]")
{
    VirtualClock c;
    std::atomic<bool> done{false};
    std::thread t([&] {
        for (int i = 0; i < 2000; ++i) {
            c.start();
            c.stop();
        }
        done = true;
    });
    int64_t last = 0;
    bool monotonic = true;
    while (!done) {
        int64_t n = c.now();
        if (n < last) monotonic = false;
        last = n;
    }
    t.join();
    CHECK(monotonic);
}

TEST_CASE("the host clock is the wall clock", "[clock]")
{
    int64_t wall = int64_t(std::time(nullptr)) * 1000000000;
    int64_t h = host_clock_ns();
    CHECK(h >= wall - 2000 * kMs);
    CHECK(h <= wall + 2000 * kMs);
}

TEST_CASE("timers fire in deadline order through the main loop", "[clock]")
{
    Rig r;
    r.vclock.start();
    Probe &p1 = r.timer(1), &p2 = r.timer(2), &p3 = r.timer(3);
    int64_t t0 = r.vclock.now();
    r.tm.mod(p1.timer, t0 + 30 * kMs);
    r.tm.mod(p2.timer, t0 + 10 * kMs);
    r.tm.mod(p3.timer, t0 + 20 * kMs);
    CHECK(r.tm.next_deadline(KEEL_CLOCK_VIRTUAL) == t0 + 10 * kMs);
    CHECK(r.tm.next_deadline(KEEL_CLOCK_HOST) == INT64_MAX);
    REQUIRE(r.log.wait_for(3));
    CHECK(r.log.ids == std::vector<int>{2, 3, 1});
    // Never early, and on the loop thread.
    CHECK(r.log.times[0] >= t0 + 10 * kMs);
    CHECK(r.log.times[1] >= t0 + 20 * kMs);
    CHECK(r.log.times[2] >= t0 + 30 * kMs);
    CHECK(r.log.on_loop == std::vector<bool>{true, true, true});
    CHECK(r.tm.next_deadline(KEEL_CLOCK_VIRTUAL) == INT64_MAX);
    CHECK_FALSE(r.tm.pending(p1.timer));
}

TEST_CASE("timers with equal deadlines fire in the order they were armed", "[clock]")
{
    Rig r;
    r.vclock.start();
    int64_t t = r.vclock.now() + 5 * kMs;
    for (int id : {4, 1, 3, 2})
        r.tm.mod(r.timer(id).timer, t);
    REQUIRE(r.log.wait_for(4));
    CHECK(r.log.ids == std::vector<int>{4, 1, 3, 2});
}

TEST_CASE("timer callbacks run holding the big lock", "[clock]")
{
    Rig r;
    r.vclock.start();
    Probe &p = r.timer(1);
    {
        std::lock_guard<std::recursive_mutex> g(big_lock());
        r.tm.mod(p.timer, r.vclock.now() + 1 * kMs);
        std::this_thread::sleep_for(40ms); // long past due, but we hold the lock
        CHECK(r.log.size() == 0);
    }
    REQUIRE(r.log.wait_for(1));
}

TEST_CASE("timers can be deleted, re-armed and freed", "[clock]")
{
    Rig r;
    r.vclock.start();
    int64_t t0 = r.vclock.now();
    Probe &deleted = r.timer(1), &moved = r.timer(2), &freed = r.timer(3), &sentinel = r.timer(4);
    CHECK(r.tm.count() == 4);

    r.tm.mod(deleted.timer, t0 + 5 * kMs);
    CHECK(r.tm.pending(deleted.timer));
    r.tm.del(deleted.timer);
    CHECK_FALSE(r.tm.pending(deleted.timer));
    r.tm.del(deleted.timer); // twice is fine

    r.tm.mod(moved.timer, t0 + 5 * kMs);
    r.tm.mod(moved.timer, t0 + 25 * kMs); // replaces the first deadline

    r.tm.mod(freed.timer, t0 + 5 * kMs);
    r.tm.free(freed.timer);
    freed.timer = nullptr;
    CHECK(r.tm.count() == 3);
    r.tm.free(nullptr);

    r.tm.mod(sentinel.timer, t0 + 40 * kMs);
    REQUIRE(r.log.wait_for(2));
    std::this_thread::sleep_for(5ms);
    REQUIRE(r.log.size() == 2);
    CHECK(r.log.ids == std::vector<int>{2, 4});
    CHECK(r.log.times[0] >= t0 + 25 * kMs);

    // A deleted timer can be armed again.
    r.tm.mod(deleted.timer, r.vclock.now() + 1 * kMs);
    REQUIRE(r.log.wait_for(3));
    CHECK(r.log.ids.back() == 1);
}

TEST_CASE("a callback may re-arm or free its own timer", "[clock]")
{
    Rig r;
    r.vclock.start();
    Probe &periodic = r.timer(1);
    periodic.rearm = 2; // fires 3 times
    Probe &once = r.timer(2);
    once.free_self = true;
    r.tm.mod(periodic.timer, r.vclock.now() + 1 * kMs);
    r.tm.mod(once.timer, r.vclock.now() + 1 * kMs);
    REQUIRE(r.log.wait_for(4));
    std::this_thread::sleep_for(10ms);
    std::lock_guard<std::mutex> g(r.log.m);
    CHECK(std::count(r.log.ids.begin(), r.log.ids.end(), 1) == 3);
    CHECK(std::count(r.log.ids.begin(), r.log.ids.end(), 2) == 1);
    CHECK(once.timer == nullptr);
    CHECK(r.tm.count() == 1);
}

TEST_CASE("mod from another thread wakes a sleeping loop", "[clock]")
{
    Rig r;
    r.vclock.start();
    Probe &far = r.timer(1), &near = r.timer(2);
    r.tm.mod(far.timer, r.vclock.now() + 60000 * kMs); // the loop now sleeps for a minute
    std::this_thread::sleep_for(20ms);
    auto start = std::chrono::steady_clock::now();
    std::thread t([&] { r.tm.mod(near.timer, r.vclock.now() + 5 * kMs); });
    t.join();
    REQUIRE(r.log.wait_for(1));
    CHECK(r.log.ids == std::vector<int>{2});
    CHECK(std::chrono::steady_clock::now() - start < 2s);
}

TEST_CASE("virtual timers wait while the clock is stopped and fire once it starts", "[clock]")
{
    Rig r;
    Probe &p = r.timer(1);
    r.tm.mod(p.timer, r.vclock.now() + 2 * kMs);
    CHECK(r.tm.ns_until_next() == INT64_MAX);
    std::this_thread::sleep_for(30ms);
    CHECK(r.log.size() == 0);
    r.vclock.start(); // notifies the timer source through the clock's listener
    REQUIRE(r.log.wait_for(1));
    CHECK(r.log.times[0] >= 2 * kMs);
}

TEST_CASE("host-clock timers fire by wall-clock time", "[clock]")
{
    Rig r; // virtual clock stopped: must not matter
    Probe &p = r.timer(1, KEEL_CLOCK_HOST);
    int64_t deadline = host_clock_ns() + 10 * kMs;
    r.tm.mod(p.timer, deadline);
    CHECK(r.tm.next_deadline(KEEL_CLOCK_HOST) == deadline);
    REQUIRE(r.log.wait_for(1));
    CHECK(r.log.times[0] >= deadline);
    CHECK(r.tm.now(KEEL_CLOCK_VIRTUAL) == 0);
}

TEST_CASE("run_expired runs due timers once each and leaves re-armed ones for later", "[clock]")
{
    MainLoop loop; // never started: run_expired is called by hand
    VirtualClock vc;
    TimerManager tm(vc, loop);
    Log log;
    Probe a{&log, 1, &tm, &loop, KEEL_CLOCK_VIRTUAL};
    Probe b{&log, 2, &tm, &loop, KEEL_CLOCK_VIRTUAL};
    Probe later{&log, 3, &tm, &loop, KEEL_CLOCK_VIRTUAL};
    a.timer = tm.create(KEEL_CLOCK_VIRTUAL, fire, &a, "a");
    b.timer = tm.create(KEEL_CLOCK_VIRTUAL, fire, &b, "b");
    later.timer = tm.create(KEEL_CLOCK_VIRTUAL, fire, &later, "later");
    a.rearm = 100;
    // The clock is stopped at 0, so "due" is exact.
    tm.mod(b.timer, 0);
    tm.mod(a.timer, -1);
    tm.mod(later.timer, 1);
    {
        std::lock_guard<std::recursive_mutex> g(big_lock());
        tm.run_expired();
    }
    CHECK(log.ids == std::vector<int>{1, 2});
    CHECK(tm.pending(a.timer)); // re-armed at 2 ms, not yet due
    CHECK(tm.pending(later.timer));
    CHECK(tm.ns_until_next() == INT64_MAX);
}

// ---- -icount ----

namespace
{

struct FakeEngine {
    int64_t pending = 0;
    int deadline_changes = 0;
    KeelIcountHooks hooks{sizeof(KeelIcountHooks),
                          [](void *o) { return static_cast<FakeEngine *>(o)->pending; },
                          [](void *o) { ++static_cast<FakeEngine *>(o)->deadline_changes; }, this};
    FakeEngine() { VirtualClock::icount_attach(&hooks); }
    ~FakeEngine() { VirtualClock::icount_attach(nullptr); }
};

} // namespace

TEST_CASE("icount: virtual time is instructions << shift plus skipped time, not host time", "[clock]")
{
    VirtualClock c;
    c.set_icount(3, true);
    CHECK(c.icount_shift() == 3);
    c.start();
    std::this_thread::sleep_for(10ms);
    CHECK(c.now() == 0);
    c.icount_retire(100);
    CHECK(c.now() == 800);
    c.icount_skip(5);
    CHECK(c.now() == 805);
    c.stop();
    CHECK(c.now() == 805);
    CHECK(c.ns_until(805) == 0);
    CHECK(c.ns_until(806) == INT64_MAX); // host time never gets there
    VirtualClock off;
    CHECK(off.icount_shift() == -1);
}

TEST_CASE("icount: the engine's unretired instructions count on its own thread only", "[clock]")
{
    VirtualClock c;
    c.set_icount(2, true);
    c.icount_retire(10);
    FakeEngine e;
    e.pending = 7;
    CHECK(c.now() == (17 << 2));
    int64_t elsewhere = -1;
    std::thread t([&] { elsewhere = c.now(); });
    t.join();
    CHECK(elsewhere == (10 << 2));
}

TEST_CASE("icount: the budget is the instruction count that reaches the earliest virtual deadline", "[clock]")
{
    MainLoop loop;
    VirtualClock vc;
    vc.set_icount(3, true);
    TimerManager tm(vc, loop);
    CHECK(tm.icount_budget() == INT64_MAX);
    Log log;
    Probe p{&log, 1, &tm, &loop, KEEL_CLOCK_VIRTUAL};
    p.timer = tm.create(KEEL_CLOCK_VIRTUAL, fire, &p, "p");
    tm.mod(p.timer, 100);
    CHECK(tm.icount_budget() == 13); // 13 * 8 = 104 >= 100 > 96
    vc.icount_retire(12);
    CHECK(tm.icount_budget() == 1);
    vc.icount_retire(1);
    CHECK(tm.icount_budget() == 0);
    tm.run_expired_virtual();
    CHECK(log.ids == std::vector<int>{1});
    CHECK(log.times == std::vector<int64_t>{104});
    CHECK(tm.icount_budget() == INT64_MAX);
}

TEST_CASE("icount: the main loop leaves virtual timers to the vCPU thread", "[clock]")
{
    Rig r;
    r.vclock.set_icount(0, true);
    r.vclock.start();
    Probe &v = r.timer(1), &h = r.timer(2, KEEL_CLOCK_HOST);
    r.tm.mod(v.timer, 10);
    r.vclock.icount_retire(50); // due
    CHECK(r.tm.ns_until_next() == INT64_MAX);
    r.tm.mod(h.timer, host_clock_ns() + 5 * kMs);
    REQUIRE(r.log.wait_for(1));
    std::this_thread::sleep_for(30ms);
    CHECK(r.log.ids == std::vector<int>{2}); // only the host timer, on the loop
    r.tm.run_expired_virtual();
    REQUIRE(r.log.size() == 2);
    CHECK(r.log.ids[1] == 1);
    CHECK(r.log.times[1] == 50);
    CHECK_FALSE(r.log.on_loop[1]);
}

TEST_CASE("icount: idle waits and warps stop exactly at the earliest virtual deadline", "[clock]")
{
    MainLoop loop;
    VirtualClock vc;
    vc.set_icount(1, true);
    TimerManager tm(vc, loop);
    // No timer: wait for a kick; a finite warp still moves time, an unbounded one cannot.
    CHECK(tm.icount_idle_ns() == INT64_MAX);
    tm.icount_warp(INT64_MAX);
    CHECK(vc.now() == 0);
    tm.icount_warp(30);
    CHECK(vc.now() == 30);
    Log log;
    Probe p{&log, 1, &tm, &loop, KEEL_CLOCK_VIRTUAL};
    p.timer = tm.create(KEEL_CLOCK_VIRTUAL, fire, &p, "p");
    tm.mod(p.timer, 1000);
    vc.icount_retire(400); // 30 + 800
    CHECK(tm.icount_idle_ns() == 170);
    tm.icount_warp(20); // woken early after 20 ns of host time
    CHECK(vc.now() == 850);
    tm.icount_warp(1000000); // never past the deadline
    CHECK(vc.now() == 1000);
    CHECK(tm.icount_idle_ns() == 0);
    tm.mod(p.timer, 2001);
    tm.icount_warp(INT64_MAX);
    CHECK(vc.now() == 2001);
    vc.set_icount(1, false); // sleep=off: no waiting at all
    tm.mod(p.timer, 5000);
    CHECK(tm.icount_idle_ns() == 0);
}

TEST_CASE("icount: arming an earlier virtual deadline tells the engine, or wakes it from elsewhere",
          "[clock]")
{
    MainLoop loop;
    VirtualClock vc;
    vc.set_icount(0, true);
    TimerManager tm(vc, loop);
    int wakes = 0;
    tm.set_icount_wake([&] { ++wakes; });
    Log log;
    Probe a{&log, 1, &tm, &loop, KEEL_CLOCK_VIRTUAL}, b{&log, 2, &tm, &loop, KEEL_CLOCK_VIRTUAL};
    a.timer = tm.create(KEEL_CLOCK_VIRTUAL, fire, &a, "a");
    b.timer = tm.create(KEEL_CLOCK_VIRTUAL, fire, &b, "b");
    {
        FakeEngine e;
        tm.mod(a.timer, 100);
        CHECK(e.deadline_changes == 1);
        tm.mod(b.timer, 200); // not the earliest: nothing to say
        CHECK(e.deadline_changes == 1);
        tm.mod(b.timer, 50);
        CHECK(e.deadline_changes == 2);
        CHECK(wakes == 0);
    }
    std::thread t([&] { tm.mod(a.timer, 10); });
    t.join();
    CHECK(wakes == 1);
}
