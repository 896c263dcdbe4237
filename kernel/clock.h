// SPDX-License-Identifier: MIT
// Clocks and timers: the host and virtual clocks, and timers that fire from the main loop.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

#include <keel/clock.h>

#include "main_loop.h"

namespace keel
{

// KEEL_CLOCK_HOST: wall-clock time (CLOCK_REALTIME) in ns.
int64_t host_clock_ns();
// Host CLOCK_MONOTONIC in ns: what virtual time is measured against.
int64_t host_monotonic_ns();

// KEEL_CLOCK_VIRTUAL: 0 at creation, advances with host monotonic time only
// while running. Readers are lock-free and see a consistent value while
// another thread starts or stops the clock.
//
// With -icount (set_icount before anything runs) it is instead
// (instructions retired << shift) + time skipped while every vCPU was idle,
// plus, on the engine's own thread, the instructions it has run but not yet
// retired (its KeelIcountHooks.pending). start/stop then change nothing.
class VirtualClock
{
  public:
    VirtualClock() = default;
    VirtualClock(const VirtualClock &) = delete;
    VirtualClock &operator=(const VirtualClock &) = delete;

    int64_t now() const;
    void start();
    void stop(); // freezes the value; start() resumes from it
    bool running() const;
    // Host ns until now() reaches virtual_deadline: 0 if already reached,
    // INT64_MAX if stopped (a stopped clock never gets there).
    int64_t ns_until(int64_t virtual_deadline) const;

    // Called (from the thread calling start/stop) after every state change,
    // so timer sources can recompute their sleep. One listener; nullptr clears.
    void set_listener(std::function<void()> fn);

    // ---- -icount ----
    void set_icount(int shift, bool sleep); // shift 0..10, or -1: off
    int icount_shift() const { return icount_shift_.load(std::memory_order_relaxed); }
    bool icount_sleep() const { return icount_sleep_.load(std::memory_order_relaxed); }
    void icount_retire(int64_t n) { icount_insns_.fetch_add(n, std::memory_order_relaxed); }
    void icount_skip(int64_t ns) { icount_bias_.fetch_add(ns, std::memory_order_relaxed); }
    int64_t icount_insns() const { return icount_insns_.load(std::memory_order_relaxed); }
    // Hooks of the engine running on the calling thread (nullptr detaches).
    static void icount_attach(const KeelIcountHooks *h);
    static const KeelIcountHooks *icount_hooks();

    // ---- time control by a plugin (qemu_plugin_request_time_control) ----
    // Freezes the clock at its value (start() no longer resumes it): from now on only advance_to moves
    // it. False if it is already controlled.
    bool take_control();
    bool controlled() const { return controlled_.load(std::memory_order_relaxed); }
    // Moves a controlled clock forward to ns (never backwards); true if it moved. The caller then runs the
    // virtual timers due (TimerManager::run_expired_virtual).
    bool advance_to(int64_t ns);
    // The controlling plugin is gone: the clock runs again from its value (if it was started).
    void release_control(bool run);

  private:
    struct Snapshot {
        bool running;
        int64_t value;  // virtual time when stopped
        int64_t offset; // virtual = monotonic + offset when running
        int64_t mono;   // host monotonic time of the read (when running)
    };
    Snapshot read() const;
    void update(bool run); // with lock_ held

    // A seqlock: writers (serialised by lock_) make seq_ odd while updating.
    mutable std::atomic<uint64_t> seq_{0};
    std::atomic<bool> running_{false};
    std::atomic<int64_t> value_{0};
    std::atomic<int64_t> offset_{0};
    std::mutex lock_;
    std::function<void()> listener_;
    std::atomic<int> icount_shift_{-1};
    std::atomic<bool> icount_sleep_{true};
    std::atomic<int64_t> icount_insns_{0};
    std::atomic<int64_t> icount_bias_{0};
    std::atomic<bool> controlled_{false};
};

// Owns every KeelTimer. mod/del/free may be called from any thread; the
// callbacks run on the main loop thread (or whoever calls run_expired) with
// big_lock() held.
class TimerManager
{
  public:
    // Registers itself as vclock's listener (see notify_clock_changed).
    TimerManager(VirtualClock &vclock, MainLoop &loop);
    ~TimerManager(); // frees every timer still alive
    TimerManager(const TimerManager &) = delete;
    TimerManager &operator=(const TimerManager &) = delete;

    int64_t now(KeelClockType c) const;

    // `owner` names who created it (an object path) for diagnostics.
    KeelTimer *create(KeelClockType c, KeelTimerCallback cb, void *opaque, std::string owner);
    // Arm (or re-arm) to fire once at expire_ns on the timer's clock.
    void mod(KeelTimer *t, int64_t expire_ns);
    void del(KeelTimer *t);
    void free(KeelTimer *t); // also disarms; nullptr and unknown timers are ignored
    bool pending(KeelTimer *t) const;

    int64_t next_deadline(KeelClockType c) const; // INT64_MAX if none armed
    size_t count() const;                         // timers alive

    // Run every due callback, earliest first per clock; the caller holds
    // big_lock(). Timers (re-)armed by a callback during this call run on the
    // next call at the earliest, so a callback re-arming "now" cannot spin here.
    // With -icount the main loop runs host timers only (virtual ones run on
    // the vCPU thread through run_expired_virtual); `only` limits the clocks.
    void run_expired(int only = -1);

    // ---- -icount (see VirtualClock) ----
    // Instructions until the earliest virtual deadline: 0 if due, INT64_MAX if none.
    int64_t icount_budget() const;
    // Host ns the idle vCPUs wait before jumping to the earliest virtual
    // deadline: 0 with sleep=off or if due, INT64_MAX if none.
    int64_t icount_idle_ns() const;
    // Skip ns of virtual time, never past the earliest virtual deadline.
    void icount_warp(int64_t ns);
    // Run the due virtual timers, taking big_lock().
    void run_expired_virtual();
    // Called when a virtual timer becomes the earliest from a thread other
    // than the engine's (which gets its deadline_changed hook instead).
    void set_icount_wake(std::function<void()> fn);

    // Install the GSource on the loop's context that sleeps until the nearest
    // deadline and then runs run_expired() under big_lock(). Idempotent.
    void attach();
    // Host ns until the nearest deadline of either clock (<= 0: due now,
    // INT64_MAX: nothing will fire).
    int64_t ns_until_next() const;
    // Make a sleeping source recompute (after the virtual clock starts or
    // stops; done automatically through VirtualClock's listener).
    void notify_clock_changed();

  private:
    struct Order {
        bool operator()(const KeelTimer *a, const KeelTimer *b) const;
    };
    void disarm_locked(KeelTimer *t);
    void wake();

    VirtualClock &vclock_;
    MainLoop &loop_;
    mutable std::mutex lock_;
    std::unordered_map<KeelTimer *, std::unique_ptr<KeelTimer>> timers_;
    std::set<KeelTimer *, Order> armed_[2]; // by KeelClockType
    uint64_t arm_seq_ = 0;
    std::function<void()> icount_wake_;
    struct Source;
    Source *source_ = nullptr;
};

} // namespace keel
