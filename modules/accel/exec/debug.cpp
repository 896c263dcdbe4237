// SPDX-License-Identifier: MIT
// Run control for monitors and debuggers (KeelAccelOps, ABI 1.4): parking the vCPU thread between blocks,
// single steps, breakpoints (checked at every block entry while any is set: blocks are cut before them and
// not chained) and watchpoints (their pages go through the soft TLB's slow path, which checks them).
#include <algorithm>

#include <keel/module.h>

#include "exec.h"

namespace keel::exec
{

void Core::pause()
{
    std::unique_lock<std::mutex> lk(wait_lock_);
    pause_req_ = true;
    for (auto &c : cpus_)
        c->common->exit_request = 1; // leave chained blocks at the next entry
    wait_cv_.notify_all();           // out of idle_wait
    // Before run() (or after it returned) there is nothing to wait for: run() parks at once.
    wait_cv_.wait(lk, [&] { return parked_ || !in_run_; });
}

void Core::resume(const uint8_t *modes, unsigned n_modes)
{
    {
        std::lock_guard<std::mutex> g(wait_lock_);
        modes_.assign(cpus_.size(), KEEL_RUN_CONTINUE);
        for (unsigned i = 0; i < n_modes && i < modes_.size(); ++i)
            modes_[i] = modes[i] <= KEEL_RUN_HOLD ? modes[i] : uint8_t{KEEL_RUN_CONTINUE};
        pause_req_ = false;
    }
    wait_cv_.notify_all();
}

void Core::park(const KeelStopInfo *report)
{
    std::unique_lock<std::mutex> lk(wait_lock_);
    if (report) pause_req_ = true; // a resume() from now on lets the thread go
    parked_ = true;
    wait_cv_.notify_all(); // pause() waiters
    if (report && KEEL_SERVICE_AVAILABLE(keel_services, debug_stopped) && keel_services->debug_stopped) {
        lk.unlock();
        keel_services->debug_stopped(report);
        lk.lock();
    }
    wait_cv_.wait(lk, [&] { return !pause_req_.load() || stop_.load(); });
    parked_ = false;
    run_modes_.assign(cpus_.size(), KEEL_RUN_CONTINUE); // unless resume() left modes: run_round takes them
}

int Core::set_debug(const KeelDebugPoint *points, unsigned n_points, KeelError *err)
{
    for (unsigned i = 0; i < n_points; ++i)
        if (points[i].kind > KEEL_DEBUG_WATCH_ACCESS ||
            (points[i].kind != KEEL_DEBUG_BREAK &&
             (points[i].len == 0 || points[i].addr + points[i].len - 1 < points[i].addr))) {
            if (err)
                keel_services->error_set(err, "invalid debug point at 0x%llx",
                                         (unsigned long long)points[i].addr);
            return -1;
        }
    {
        std::lock_guard<std::mutex> g(debug_lock_);
        new_points_.assign(points, points + n_points);
    }
    points_changed_ = true;
    for (auto &c : cpus_)
        c->common->exit_request = 1; // taken at the next block boundary
    return 0;
}

void Core::apply_debug()
{
    points_changed_ = false;
    std::vector<KeelDebugPoint> pts;
    {
        std::lock_guard<std::mutex> g(debug_lock_);
        pts = new_points_;
    }
    breakpoints_.clear();
    watchpoints_.clear();
    for (const KeelDebugPoint &p : pts) {
        if (p.kind == KEEL_DEBUG_BREAK)
            breakpoints_.push_back(p.addr);
        else
            watchpoints_.push_back(p);
    }
    std::sort(breakpoints_.begin(), breakpoints_.end());
    breakpoints_.erase(std::unique(breakpoints_.begin(), breakpoints_.end()), breakpoints_.end());
    debug_active_ = !breakpoints_.empty() || !watchpoints_.empty();
    // Blocks translated without the new points (and chained to each other), and TLB entries letting
    // accesses to watched pages bypass the slow path, go.
    for (auto &c : cpus_) {
        tb_flush(*c);
        tlb_flush(*c);
    }
}

bool Core::breakpoint_at(uint64_t pc) const
{
    return std::binary_search(breakpoints_.begin(), breakpoints_.end(), pc);
}

unsigned Core::insns_before_breakpoint(const Tb &tb) const
{
    for (unsigned i = 1; i < tb.n_insns; ++i)
        if (breakpoint_at(tb.pc + tb.insn_off[i])) return i;
    return tb.n_insns;
}

namespace
{

bool kind_matches(uint32_t kind, KeelAccess acc, bool rmw)
{
    if (kind == KEEL_DEBUG_WATCH_ACCESS) return true;
    if (rmw) return true; // a read-modify-write reads and writes
    return kind == (acc == KEEL_ACCESS_WRITE ? KEEL_DEBUG_WATCH_WRITE : KEEL_DEBUG_WATCH_READ);
}

} // namespace

bool Core::watch_page(uint64_t page, KeelAccess acc) const
{
    if (acc == KEEL_ACCESS_EXEC) return false;
    for (const KeelDebugPoint &w : watchpoints_) {
        uint64_t first = w.addr & kPageMask, last = (w.addr + w.len - 1) & kPageMask;
        bool wants = w.kind == KEEL_DEBUG_WATCH_ACCESS ||
                     // a write tag also serves the write of read-modify-writes, which read watches see
                     (acc == KEEL_ACCESS_WRITE) || w.kind == KEEL_DEBUG_WATCH_READ;
        if (wants && page >= first && page <= last) return true;
    }
    return false;
}

bool Core::watch_hit(CpuState &c, uint64_t addr, unsigned size, KeelAccess acc, bool rmw)
{
    if (watch_suppress_) return false;
    for (const KeelDebugPoint &w : watchpoints_) {
        if (!kind_matches(w.kind, acc, rmw)) continue;
        if (addr + size - 1 < w.addr || addr > w.addr + w.len - 1) continue;
        debug_event_ = KeelStopInfo{sizeof(KeelStopInfo), c.index, KEEL_STOP_WATCH, w.kind, w.addr};
        debug_event_set_ = true;
        return true;
    }
    return false;
}

void Core::code_written(uint64_t paddr, uint64_t len)
{
    while (len > 0) {
        uint64_t n = std::min(len, kPageSize - (paddr & ~kPageMask));
        note_write(paddr, static_cast<unsigned>(n));
        paddr += n;
        len -= n;
    }
}

// A breakpoint or watchpoint stopped `c` (run_slice returned 1). A watchpoint stopped it before the access:
// that instruction runs now, alone and unwatched (gdb expects the pc after it). Then every CPU parks and
// the kernel is told.
int Core::stop_at_debug_event(CpuState &c)
{
    KeelStopInfo info = debug_event_;
    debug_event_set_ = false;
    if (info.reason == KEEL_STOP_WATCH) {
        watch_suppress_ = true;
        int r = run_slice(c, true);
        watch_suppress_ = false;
        debug_event_set_ = false;
        if (r < 0) return -1;
    }
    park(&info);
    return 0;
}

// One round over the CPUs, as resume() asked: a CPU stepping runs one instruction while the others wait;
// otherwise every CPU not held runs its slice. A debug event parks the thread (the kernel is told).
int Core::run_round()
{
    {
        // What the last resume() asked (it may come before this thread parked for the pause it ends).
        std::lock_guard<std::mutex> g(wait_lock_);
        if (!modes_.empty()) {
            run_modes_ = modes_;
            modes_.clear();
        }
    }
    if (run_modes_.size() != cpus_.size()) run_modes_.assign(cpus_.size(), KEEL_RUN_CONTINUE);
    for (auto &c : cpus_) {
        if (run_modes_[c->index] != KEEL_RUN_STEP) continue;
        int r = run_slice(*c, true);
        if (r < 0) return -1;
        if (r == 1) return stop_at_debug_event(*c); // the step reached a watchpoint
        KeelStopInfo info{sizeof(KeelStopInfo), c->index, KEEL_STOP_STEP, 0, 0};
        park(&info);
        return 0;
    }
    bool all_halted = true;
    for (auto &c : cpus_) {
        if (stop_.load(std::memory_order_relaxed) || pause_req_.load(std::memory_order_relaxed)) return 0;
        if (run_modes_[c->index] == KEEL_RUN_HOLD) continue;
        int r = run_slice(*c);
        if (r < 0) return -1;
        if (r == 1) return stop_at_debug_event(*c);
        if (!c->common->halted) all_halted = false;
    }
    if (all_halted && !stop_.load() && !pause_req_.load()) return 2;
    return 0;
}

void accel_pause(void *accel)
{
    static_cast<Core *>(accel)->pause();
}

void accel_resume(void *accel, const uint8_t *modes, unsigned n_modes)
{
    static_cast<Core *>(accel)->resume(modes, n_modes);
}

int accel_set_debug(void *accel, const KeelDebugPoint *points, unsigned n_points, KeelError *err)
{
    return static_cast<Core *>(accel)->set_debug(points, n_points, err);
}

void accel_code_written(void *accel, uint64_t paddr, uint64_t len)
{
    static_cast<Core *>(accel)->code_written(paddr, len);
}

} // namespace keel::exec
