// SPDX-License-Identifier: MIT
// The process-wide kernel context: main loop, clocks, timers, registry, machine, system requests.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include <keel/accel.h>
#include <keel/services.h>

#include "chardev.h"
#include "clock.h"
#include "machine.h"
#include "main_loop.h"
#include "registry.h"

namespace keel
{

class Kernel
{
  public:
    Kernel();
    ~Kernel();

    MainLoop &loop() { return loop_; }
    VirtualClock &vclock() { return vclock_; }
    TimerManager &timers() { return *timers_; }
    Registry &registry() { return *registry_; }
    // The table handed to every module.
    const KeelServices *services() const;

    Machine *machine() { return machine_.get(); }
    void set_machine(std::unique_ptr<Machine> m) { machine_ = std::move(m); }

    // Chardevs by id (serial0, ids from -chardev or the manifest), opened on
    // first use. With `dry_run`, every id resolves to a null backend.
    void declare_chardev(ChardevSpec spec);
    KeelChardev *chardev(const std::string &id, const Location &loc);
    void set_dry_run(bool d) { dry_run_ = d; }
    // The chardevs opened so far, by id (query-chardev, info chardev).
    const std::map<std::string, std::unique_ptr<KeelChardev>> &chardevs() const { return chardevs_; }
    // The accelerator running (or last run), for monitors.
    const std::string &accel_name() const { return accel_name_; }
    // The host thread id (gettid) of the vCPU thread running the engine, 0 before it starts. One thread
    // runs every CPU (as QEMU's single-threaded TCG): query-cpus-fast and `info cpus` report it for each.
    int vcpu_thread_id() const { return vcpu_tid_.load(); }
    // -S: the first engine starts paused (state prelaunch) until `cont`.
    void set_start_paused(bool p) { start_paused_ = p; }

    // Guest or monitor requests; the main thread acts on them.
    void request(KeelSystemRequest req, int status);
    // The same asked by a monitor: `reason` is QEMU's ShutdownCause name for the RESET/SHUTDOWN event
    // ("host-qmp-quit", "host-qmp-system-reset", "host-ui").
    void request_host(KeelSystemRequest req, const char *reason);
    // A terminating signal (SIGINT, SIGTERM): shut down as QEMU does.
    void request_signal(int sig);
    struct Pending {
        bool shutdown = false;
        bool reset = false;
        int status = 0;
        int signal = 0;                        // the signal that asked for the shutdown, if one did
        const char *shutdown_reason = nullptr; // a monitor's (QMP SHUTDOWN event); nullptr: the guest's
        const char *reset_reason = nullptr;
        bool engine_stopped = false; // the accelerator's run() returned
        int engine_rc = 0;           // what it returned
    };
    Pending take_requests();
    // Block until a request arrives (or `timeout_ms` passes, -1 = forever).
    Pending wait_requests(int timeout_ms);

    // A CPU got new work (KeelServices.cpu_kick): pass it to the running engine.
    void kick_cpu(KeelObject *cpu);

    // Run the machine's CPUs on accelerator `accel` until the guest asks for
    // a shutdown, a terminating signal arrives or the engine fails. `boot`
    // (called with the big lock held) loads the guest images and sets the
    // CPUs' entry point; it runs before the first start and after every
    // reset. Returns the exit status: the guest's, 0 after a signal (as
    // QEMU), 2 after an engine error. Throws keel::Error if the engine does
    // not start.
    int run(const AccelRecord &accel, const std::function<void()> &boot);

  private:
    MainLoop loop_;
    VirtualClock vclock_;
    std::unique_ptr<TimerManager> timers_;
    std::unique_ptr<Registry> registry_;
    std::map<std::string, ChardevSpec> chardev_specs_;
    std::map<std::string, std::unique_ptr<KeelChardev>> chardevs_;
    bool dry_run_ = false;
    bool start_paused_ = false;
    std::atomic<int> vcpu_tid_{0};
    std::string accel_name_;
    std::unique_ptr<Machine> machine_; // last: destroyed first, while the rest still exists

    std::mutex req_lock_;
    std::condition_variable req_cv_;
    Pending pending_;

    // The running engine, for kick_cpu (any thread).
    std::mutex accel_lock_;
    void *accel_ = nullptr;
    const KeelAccelOps *accel_ops_ = nullptr;
};

// The one kernel of this process, created on first use.
Kernel &kernel();

} // namespace keel
