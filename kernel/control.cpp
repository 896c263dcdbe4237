// SPDX-License-Identifier: MIT
// Run control for the monitors and the gdbstub (control.h).
#include "control.h"

#include <chrono>
#include <cinttypes>
#include <cstring>

#include "kernel.h"

namespace keel
{

const char *run_state_name(RunState s)
{
    switch (s) {
    case RunState::Prelaunch:
        return "prelaunch";
    case RunState::Running:
        return "running";
    case RunState::Paused:
        return "paused";
    case RunState::Debug:
        return "debug";
    case RunState::Shutdown:
        return "shutdown";
    case RunState::InternalError:
        return "internal-error";
    }
    return "running";
}

namespace
{

bool stopped_state(RunState s)
{
    return s == RunState::Prelaunch || s == RunState::Paused || s == RunState::Debug;
}

} // namespace

RunState Control::state()
{
    std::lock_guard<std::mutex> g(lock_);
    return state_;
}

void Control::set_state(RunState s)
{
    std::lock_guard<std::mutex> g(lock_);
    state_ = s;
}

bool Control::pause(RunState as, std::string &err)
{
    void *accel;
    const KeelAccelOps *ops;
    bool was_running;
    {
        std::lock_guard<std::mutex> g(lock_);
        if (state_ == RunState::Shutdown || state_ == RunState::InternalError) {
            err = std::string("the machine is not running (state ") + run_state_name(state_) + ")";
            return false;
        }
        if (stopped_state(state_)) {
            // Already stopped: only the name may change (gdb attaching to a paused machine: debug).
            if (as == RunState::Debug) state_ = RunState::Debug;
            return true;
        }
        accel = accel_;
        ops = ops_;
        if (accel && !run_control_) {
            err = "the accelerator '" + kernel().accel_name() +
                  "' cannot pause (it was built for keel ABI < 1.4); rebuild it";
            return false;
        }
        was_running = true;
        state_ = as;
    }
    if (accel) ops->pause(accel);
    kernel().vclock().stop();
    if (was_running) emit("STOP");
    return true;
}

bool Control::resume(std::string &err)
{
    return resume_modes({}, err);
}

bool Control::resume_modes(const std::vector<uint8_t> &modes, std::string &err)
{
    void *accel;
    const KeelAccelOps *ops;
    bool step = false;
    for (uint8_t m : modes)
        step = step || m == KEEL_RUN_STEP;
    {
        std::lock_guard<std::mutex> g(lock_);
        if (state_ == RunState::Shutdown || state_ == RunState::InternalError) {
            err = std::string("the machine cannot run (state ") + run_state_name(state_) + ")";
            return false;
        }
        if (!stopped_state(state_)) return true; // already running: nothing to do (QEMU's cont)
        accel = accel_;
        ops = ops_;
        if (accel && !run_control_) {
            err = "the accelerator '" + kernel().accel_name() + "' cannot resume a paused machine";
            return false;
        }
        // A step keeps the machine in the debugger's hands: no RESUME/STOP events (as QEMU's gdbstub).
        state_ = step ? RunState::Debug : RunState::Running;
    }
    if (!step) emit("RESUME");
    kernel().vclock().start();
    if (accel)
        ops->resume(accel, modes.empty() ? nullptr : modes.data(), static_cast<unsigned>(modes.size()));
    return true;
}

void Control::on_debug_stopped(const KeelStopInfo &info)
{
    bool emit_stop;
    std::function<void(const DebugStop &)> fn;
    {
        std::lock_guard<std::mutex> g(lock_);
        emit_stop = state_ == RunState::Running; // a breakpoint or watchpoint while running
        state_ = RunState::Debug;
        fn = debug_listener_;
    }
    kernel().vclock().stop();
    if (emit_stop) emit("STOP");
    DebugStop s;
    s.cpu = info.cpu_index;
    s.reason = info.reason == KEEL_STOP_STEP    ? DebugStop::Step
               : info.reason == KEEL_STOP_BREAK ? DebugStop::Break
                                                : DebugStop::Watch;
    s.kind = static_cast<KeelDebugKind>(info.kind);
    s.addr = info.addr;
    if (fn) fn(s);
}

void Control::system_reset()
{
    kernel().request_host(KEEL_SYSTEM_RESET, "host-qmp-system-reset");
}

void Control::system_powerdown()
{
    // QEMU asks the board's power button (ACPI, a GPIO key); keel's boards have none, so, like QEMU on a
    // board without one, the event is all that happens.
    emit("POWERDOWN");
}

void Control::quit(const char *reason)
{
    // The event goes out now, before the command's reply (as QEMU); the kernel does not send it again.
    emit("SHUTDOWN", std::string("{\"guest\": false, \"reason\": \"") + reason + "\"}");
    kernel().request_host(KEEL_SYSTEM_SHUTDOWN, reason);
}

int Control::subscribe(EventFn fn)
{
    std::lock_guard<std::mutex> g(events_lock_);
    int id = next_listener_++;
    listeners_[id] = std::move(fn);
    return id;
}

void Control::unsubscribe(int id)
{
    std::lock_guard<std::mutex> g(events_lock_);
    listeners_.erase(id);
}

void Control::emit(const std::string &event, const std::string &data_json)
{
    auto now = std::chrono::system_clock::now().time_since_epoch();
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
    char ts[96];
    std::snprintf(ts, sizeof ts, "{\"seconds\": %" PRId64 ", \"microseconds\": %" PRId64 "}",
                  static_cast<int64_t>(us / 1000000), static_cast<int64_t>(us % 1000000));
    std::string json = std::string("{\"timestamp\": ") + ts + ", \"event\": \"" + event + "\"";
    if (!data_json.empty()) json += ", \"data\": " + data_json;
    json += "}";
    // Under the lock: listeners see events in the order they were emitted.
    std::lock_guard<std::mutex> g(events_lock_);
    for (auto &[id, fn] : listeners_)
        fn(json);
}

bool Control::set_debug_points(const std::vector<KeelDebugPoint> &points, std::string &err)
{
    std::lock_guard<std::mutex> g(lock_);
    if (accel_ && !run_control_) {
        err = "the accelerator '" + kernel().accel_name() + "' has no breakpoints or watchpoints";
        return false;
    }
    if (accel_) {
        KeelError e;
        if (ops_->set_debug(accel_, points.data(), static_cast<unsigned>(points.size()), &e) != 0) {
            err = e.is_set ? e.message : "the accelerator refused the breakpoints";
            return false;
        }
    }
    points_ = points;
    return true;
}

void Control::set_debug_listener(std::function<void(const DebugStop &)> fn)
{
    std::lock_guard<std::mutex> g(lock_);
    debug_listener_ = std::move(fn);
}

void Control::engine_started(void *accel, const KeelAccelOps *ops)
{
    std::lock_guard<std::mutex> g(lock_);
    accel_ = accel;
    ops_ = ops;
    run_control_ = KEEL_HAS_FIELD(ops, KeelAccelOps, code_written) && ops->pause && ops->resume &&
                   ops->set_debug && ops->code_written;
    if (!run_control_) return;
    if (!points_.empty()) {
        KeelError e;
        ops->set_debug(accel, points_.data(), static_cast<unsigned>(points_.size()), &e);
    }
    // A reset while stopped (or -S) keeps the machine stopped: the new engine starts parked.
    if (stopped_state(state_)) ops->pause(accel);
}

void Control::engine_ended()
{
    std::lock_guard<std::mutex> g(lock_);
    accel_ = nullptr;
    ops_ = nullptr;
    run_control_ = false;
}

// ---- guest access ----

namespace
{

KeelObject *cpu_object(unsigned cpu)
{
    Machine *m = kernel().machine();
    if (!m || cpu >= m->cpus().size()) return nullptr;
    return m->cpus()[cpu];
}

const KeelCpuOps *cpu_ops_of(KeelObject *o)
{
    return o && o->type && o->type->info ? o->type->info->cpu : nullptr;
}

} // namespace

unsigned Control::n_cpus()
{
    Machine *m = kernel().machine();
    return m ? static_cast<unsigned>(m->cpus().size()) : 0;
}

void *Control::cpu_env(unsigned cpu)
{
    KeelObject *o = cpu_object(cpu);
    return o ? o->state : nullptr;
}

const KeelCpuDebugOps *Control::cpu_debug(unsigned cpu)
{
    const KeelCpuOps *ops = cpu_ops_of(cpu_object(cpu));
    return ops && KEEL_HAS_FIELD(ops, KeelCpuOps, debug) ? ops->debug : nullptr;
}

bool Control::read_reg(unsigned cpu, unsigned n, std::vector<uint8_t> &out)
{
    KeelObject *o = cpu_object(cpu);
    const KeelCpuOps *ops = cpu_ops_of(o);
    if (!ops || !ops->read_reg) return false;
    uint8_t buf[64];
    unsigned len = ops->read_reg(o->state, n, buf, sizeof buf);
    if (len == 0 || len > sizeof buf) return false;
    out.assign(buf, buf + len);
    return true;
}

bool Control::write_reg(unsigned cpu, unsigned n, const std::vector<uint8_t> &value)
{
    KeelObject *o = cpu_object(cpu);
    const KeelCpuOps *ops = cpu_ops_of(o);
    if (!ops || !ops->write_reg) return false;
    return ops->write_reg(o->state, n, value.data(), value.size()) != 0;
}

bool Control::read_phys(uint64_t paddr, uint8_t *buf, size_t len)
{
    Machine *m = kernel().machine();
    if (!m) return false;
    std::lock_guard<std::recursive_mutex> g(big_lock());
    return m->system_memory().read_buf(paddr, buf, len) == KEEL_MEM_OK;
}

bool Control::write_phys(uint64_t paddr, const uint8_t *buf, size_t len)
{
    Machine *m = kernel().machine();
    if (!m) return false;
    {
        std::lock_guard<std::recursive_mutex> g(big_lock());
        if (m->system_memory().write_buf(paddr, buf, len) != KEEL_MEM_OK) return false;
    }
    std::lock_guard<std::mutex> g(lock_);
    if (accel_ && run_control_) ops_->code_written(accel_, paddr, len);
    return true;
}

// Virtual accesses page by page: each page translates on its own.
bool Control::virt_access(unsigned cpu, uint64_t vaddr, size_t len,
                          const std::function<bool(uint64_t paddr, size_t off, size_t n)> &part)
{
    const KeelCpuDebugOps *d = cpu_debug(cpu);
    if (!d || !d->translate) return false;
    void *env = cpu_env(cpu);
    for (size_t off = 0; off < len;) {
        uint64_t paddr;
        if (d->translate(env, vaddr + off, &paddr) != 0) return false;
        size_t n = std::min<uint64_t>(len - off, 4096 - ((vaddr + off) & 4095));
        if (!part(paddr, off, n)) return false;
        off += n;
    }
    return true;
}

bool Control::read_virt(unsigned cpu, uint64_t vaddr, uint8_t *buf, size_t len)
{
    return virt_access(cpu, vaddr, len,
                       [&](uint64_t pa, size_t off, size_t n) { return read_phys(pa, buf + off, n); });
}

bool Control::write_virt(unsigned cpu, uint64_t vaddr, const uint8_t *buf, size_t len)
{
    return virt_access(cpu, vaddr, len,
                       [&](uint64_t pa, size_t off, size_t n) { return write_phys(pa, buf + off, n); });
}

Control &control()
{
    static Control c;
    return c;
}

} // namespace keel
