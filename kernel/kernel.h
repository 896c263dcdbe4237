// SPDX-License-Identifier: MIT
// The process-wide kernel context: main loop, clocks, timers, registry, machine, system requests.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

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

    // Guest or monitor requests; the main thread acts on them.
    void request(KeelSystemRequest req, int status);
    struct Pending {
        bool shutdown = false;
        bool reset = false;
        int status = 0;
    };
    Pending take_requests();
    // Block until a request arrives (or `timeout_ms` passes, -1 = forever).
    Pending wait_requests(int timeout_ms);

    // A CPU got new work (KeelServices.cpu_kick): pass it to the running engine.
    void kick_cpu(KeelObject *cpu);

  private:
    MainLoop loop_;
    VirtualClock vclock_;
    std::unique_ptr<TimerManager> timers_;
    std::unique_ptr<Registry> registry_;
    std::map<std::string, ChardevSpec> chardev_specs_;
    std::map<std::string, std::unique_ptr<KeelChardev>> chardevs_;
    bool dry_run_ = false;
    std::unique_ptr<Machine> machine_; // last: destroyed first, while the rest still exists

    std::mutex req_lock_;
    std::condition_variable req_cv_;
    Pending pending_;
};

// The one kernel of this process, created on first use.
Kernel &kernel();

} // namespace keel
