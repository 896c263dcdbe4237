// SPDX-License-Identifier: MIT
// The process-wide kernel context: main loop, clocks, timers, registry, machine, system requests.
#include "kernel.h"

#include <csignal>
#include <cstdio>
#include <thread>

#include <unistd.h>

#include <glib-unix.h>

#include "control.h"
#include "error.h"

namespace keel
{

const KeelServices *kernel_services(); // services.cpp

Kernel::Kernel()
{
    timers_ = std::make_unique<TimerManager>(vclock_, loop_);
    registry_ = std::make_unique<Registry>(kernel_services());
    // Ctrl-A x on a multiplexed console: a shutdown with status 0, as QEMU's "QEMU: Terminated".
    set_console_quit([this] { request(KEEL_SYSTEM_SHUTDOWN, 0); });
}

Kernel::~Kernel()
{
    set_console_quit(nullptr);
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

void Kernel::request_host(KeelSystemRequest req, const char *reason)
{
    {
        std::lock_guard<std::mutex> g(req_lock_);
        if (req == KEEL_SYSTEM_SHUTDOWN) {
            if (!pending_.shutdown) {
                pending_.status = 0;
                pending_.shutdown_reason = reason;
            }
            pending_.shutdown = true;
        } else {
            pending_.reset = true;
            pending_.reset_reason = reason;
        }
    }
    req_cv_.notify_all();
}

void Kernel::request_signal(int sig)
{
    {
        std::lock_guard<std::mutex> g(req_lock_);
        if (!pending_.shutdown) {
            pending_.status = 0;
            pending_.signal = sig;
        }
        pending_.shutdown = true;
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
    auto ready = [&] { return pending_.shutdown || pending_.reset || pending_.engine_stopped; };
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
    const KeelDeviceTypeInfo *info = cpu->type ? cpu->type->info : nullptr;
    if (!info || !info->cpu) return; // not a CPU
    std::lock_guard<std::mutex> g(accel_lock_);
    if (accel_ && accel_ops_->kick) accel_ops_->kick(accel_, KEEL_CPU_COMMON(cpu->state)->cpu_index);
}

int Kernel::run(const AccelRecord &accel, const std::function<void()> &boot)
{
    Machine &m = *machine_;
    const KeelAccelOps *ops = accel.info->ops;
    std::vector<KeelCpuHandle> cpus;
    for (KeelObject *c : m.cpus())
        cpus.push_back({c, c->state, c->type->info->cpu});
    if (cpus.empty()) throw Error("machine '" + m.spec().name + "' has no CPUs to run");

    // SIGINT and SIGTERM end the run from the main loop thread, like a guest's power-off.
    static bool signals_installed = false;
    if (!signals_installed) {
        for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
            GSource *src = g_unix_signal_source_new(sig);
            g_source_set_callback(
                src,
                [](gpointer data) -> gboolean {
                    kernel().request_signal(GPOINTER_TO_INT(data));
                    return G_SOURCE_CONTINUE;
                },
                GINT_TO_POINTER(sig), nullptr);
            g_source_attach(src, loop_.context());
            g_source_unref(src);
        }
        signals_installed = true;
    }
    timers_->attach();
    loop_.start();

    auto start_engine = [&]() -> void * {
        KeelError err;
        void *a = ops->create(cpus.data(), static_cast<unsigned>(cpus.size()), &err);
        if (!a)
            throw Error("accelerator '" + accel.name +
                        "' could not start: " + (err.is_set ? err.message : "no reason given"));
        {
            std::lock_guard<std::mutex> g(accel_lock_);
            accel_ = a;
            accel_ops_ = ops;
        }
        control().engine_started(a, ops);
        return a;
    };
    auto end_engine = [&](void *a) {
        control().engine_ended();
        {
            std::lock_guard<std::mutex> g(accel_lock_);
            accel_ = nullptr;
        }
        if (ops->destroy) ops->destroy(a);
    };
    accel_name_ = accel.name;
    control().set_state(start_paused_ ? RunState::Prelaunch : RunState::Running);
    // QMP's SHUTDOWN event, and the state monitors see once the run is over.
    auto shutdown_event = [](bool guest, const char *reason) {
        control().set_state(RunState::Shutdown);
        control().emit("SHUTDOWN", std::string("{\"guest\": ") + (guest ? "true" : "false") +
                                       ", \"reason\": \"" + reason + "\"}");
    };

    {
        std::lock_guard<std::recursive_mutex> g(big_lock());
        boot();
    }
    for (;;) {
        void *a = start_engine();
        if (control().running()) vclock_.start();
        std::thread vcpu([&, a] {
            vcpu_tid_ = static_cast<int>(::gettid());
            int rc = ops->run(a);
            {
                std::lock_guard<std::mutex> g(req_lock_);
                pending_.engine_stopped = true;
                pending_.engine_rc = rc;
            }
            req_cv_.notify_all();
        });
        Pending p = wait_requests(-1);
        ops->stop(a);
        vcpu.join();
        vclock_.stop();
        // What arrived while the engine stopped: its own report, and requests made meanwhile.
        Pending late = take_requests();
        if (late.engine_stopped) {
            p.engine_stopped = true;
            p.engine_rc = late.engine_rc;
        }
        if (!p.shutdown && late.shutdown) {
            p.shutdown = true;
            p.status = late.status;
            p.signal = late.signal;
            p.shutdown_reason = late.shutdown_reason;
        }
        if (late.reset && !p.reset) p.reset_reason = late.reset_reason;
        p.reset |= late.reset;
        end_engine(a);

        if (p.engine_stopped && p.engine_rc != 0) {
            control().set_state(RunState::InternalError);
            std::fprintf(stderr, "keel: accelerator '%s' stopped on an internal error\n", accel.name.c_str());
            return 2;
        }
        if (p.signal) {
            shutdown_event(false, "host-signal");
            std::fprintf(stderr, "keel: terminating on signal %d\n", p.signal);
            return 0;
        }
        if (p.shutdown) { // a shutdown wins over a reset asked at the same time
            if (p.shutdown_reason)
                control().set_state(RunState::Shutdown); // a monitor's quit: it sent SHUTDOWN itself
            else
                shutdown_event(true, "guest-shutdown");
            return p.status;
        }
        if (p.reset) {
            control().emit("RESET", std::string("{\"guest\": ") + (p.reset_reason ? "false" : "true") +
                                        ", \"reason\": \"" +
                                        (p.reset_reason ? p.reset_reason : "guest-reset") + "\"}");
            // A warm reset: every device and CPU back to reset state, the
            // images reloaded (the guest may have overwritten them), and a
            // fresh engine (its translations describe the old memory).
            std::lock_guard<std::recursive_mutex> g(big_lock());
            m.reset(KEEL_RESET_WARM);
            boot();
            continue;
        }
        std::fprintf(stderr, "keel: accelerator '%s' returned without being stopped\n", accel.name.c_str());
        return 2;
    }
}

Kernel &kernel()
{
    static Kernel k;
    return k;
}

} // namespace keel
