// SPDX-License-Identifier: MIT
// The process-wide kernel context: main loop, clocks, timers, registry, machine, system requests.
#include "kernel.h"

#include "error.h"

namespace keel
{

const KeelServices *kernel_services(); // services.cpp

Kernel::Kernel()
{
    timers_ = std::make_unique<TimerManager>(vclock_, loop_);
    registry_ = std::make_unique<Registry>(kernel_services());
}

Kernel::~Kernel()
{
    {
        std::lock_guard<std::recursive_mutex> g(big_lock());
        machine_.reset();
    }
    loop_.stop();
}

const KeelServices *Kernel::services() const
{
    return kernel_services();
}

void Kernel::declare_chardev(ChardevSpec spec)
{
    std::string id = spec.id;
    chardev_specs_[id] = std::move(spec);
}

KeelChardev *Kernel::chardev(const std::string &id, const Location &loc)
{
    if (auto it = chardevs_.find(id); it != chardevs_.end()) return it->second.get();
    ChardevSpec spec;
    if (auto it = chardev_specs_.find(id); it != chardev_specs_.end() && !dry_run_) {
        spec = it->second;
    } else if (dry_run_ || id.rfind("serial", 0) == 0) {
        spec.id = id;
        spec.backend = "null"; // an unassigned serialN, as QEMU leaves it
    } else {
        throw Error(loc, "no chardev with id '" + id + "'");
    }
    if (spec.backend == "alias") return chardev(spec.options["target"], loc);
    auto c = open_chardev(spec, loop_);
    KeelChardev *raw = c.get();
    chardevs_[id] = std::move(c);
    return raw;
}

void Kernel::request(KeelSystemRequest req, int status)
{
    {
        std::lock_guard<std::mutex> g(req_lock_);
        if (req == KEEL_SYSTEM_SHUTDOWN) {
            if (!pending_.shutdown) pending_.status = status; // the first reason wins
            pending_.shutdown = true;
        } else {
            pending_.reset = true;
        }
    }
    req_cv_.notify_all();
}

Kernel::Pending Kernel::take_requests()
{
    std::lock_guard<std::mutex> g(req_lock_);
    Pending p = pending_;
    pending_ = Pending{};
    return p;
}

Kernel::Pending Kernel::wait_requests(int timeout_ms)
{
    std::unique_lock<std::mutex> g(req_lock_);
    auto ready = [&] { return pending_.shutdown || pending_.reset; };
    if (timeout_ms < 0)
        req_cv_.wait(g, ready);
    else
        req_cv_.wait_for(g, std::chrono::milliseconds(timeout_ms), ready);
    Pending p = pending_;
    pending_ = Pending{};
    return p;
}

void Kernel::kick_cpu(KeelObject *cpu)
{
    (void)cpu; // no engine runs CPUs yet
}

Kernel &kernel()
{
    static Kernel k;
    return k;
}

} // namespace keel
