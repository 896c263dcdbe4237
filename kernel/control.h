// SPDX-License-Identifier: MIT
// Run control for the monitors (QMP, HMP) and the gdbstub: the run state, pause and resume, debug points,
// QMP events, and guest registers and memory for debuggers.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <keel/accel.h>

namespace keel
{

// QEMU's run states, as query-status names them.
enum class RunState {
    Prelaunch,     // -S: built, not started yet
    Running,       //
    Paused,        // stop / Ctrl-A c ... stop
    Debug,         // stopped by the debugger (gdb attached and stopped, breakpoint, step)
    Shutdown,      // the run ended (guest power-off, quit)
    InternalError, // the engine failed
};
const char *run_state_name(RunState s);

// Why the CPUs stopped for the debugger (the gdbstub turns it into a stop reply).
struct DebugStop {
    enum Reason {
        Paused, // pause() (gdb's interrupt, QMP stop)
        Step,   // a single step finished
        Break,  // a breakpoint was reached
        Watch,  // a watchpoint fired
    } reason = Paused;
    unsigned cpu = 0;                      // the CPU that stepped or hit the point
    KeelDebugKind kind = KEEL_DEBUG_BREAK; // Watch: which kind fired
    uint64_t addr = 0;                     // Break/Watch: the address
};

// Thread-safe. The monitors and the gdbstub run on the main loop thread; pause() and the resume functions
// wait for the vCPUs to park, so they must not be called holding big_lock() (a vCPU may need it to finish
// an MMIO access): call them from MainLoop::invoke() callbacks or threads of your own, not from inside a
// chardev's receive() (which holds the big lock).
class Control
{
  public:
    RunState state();
    bool running() { return state() == RunState::Running; }

    // Park every vCPU at an instruction boundary and stop the virtual clock; `as` is Paused (monitor) or
    // Debug (gdb). Emits STOP if the machine was running. Returns once the vCPUs are parked. False (and
    // `err`) if the machine cannot be paused (it is shutting down, the engine cannot pause).
    bool pause(RunState as, std::string &err);
    // Resume every vCPU (QMP cont, gdb continue). Emits RESUME. False and `err` when not possible
    // (e.g. the state is Shutdown or InternalError).
    bool resume(std::string &err);
    // gdb's vCont: per CPU KEEL_RUN_CONTINUE / STEP / HOLD. With a STEP the machine stays in Debug
    // state and the debug listener is called when the step is done (no RESUME/STOP events, as QEMU).
    bool resume_modes(const std::vector<uint8_t> &modes, std::string &err);

    // Requests the main thread acts on (as the guest's own): QMP system_reset / system_powerdown / quit.
    // Each emits its event (RESET with guest=false, reason "host-qmp-system-reset"; POWERDOWN; SHUTDOWN
    // with reason "host-qmp-quit"). `reason` for quit: "host-qmp-quit" or "host-ui" for HMP q.
    void system_reset();
    void system_powerdown();
    void quit(const char *reason = "host-qmp-quit");

    // QMP events: `fn` gets each event as a complete JSON object text (with "timestamp"), in order. Any
    // thread may emit; listeners are called on the emitting thread (queue to your own thread if needed).
    using EventFn = std::function<void(const std::string &json)>;
    int subscribe(EventFn fn);
    void unsubscribe(int id);
    // `data_json` is the text of a JSON object ("" for none).
    void emit(const std::string &event, const std::string &data_json = "");

    // Breakpoints and watchpoints by guest virtual address (gdb Z0-Z4); replaces the whole set. They survive
    // a system_reset. False and `err` if the engine cannot debug.
    bool set_debug_points(const std::vector<KeelDebugPoint> &points, std::string &err);
    // The gdbstub: called when the vCPUs stopped for it (a step, a point, or a pause while a debug
    // listener is set); on the vCPU thread or the pausing thread, without the big lock.
    void set_debug_listener(std::function<void(const DebugStop &)> fn);

    // Guest access for debuggers. Registers (read_reg numbering, see KeelCpuDebugOps) only while paused;
    // memory any time. Virtual addresses translate as CPU `cpu`'s data accesses do now. Memory access
    // goes through the system address space (RAM, ROM and device registers); a debugger write to RAM drops
    // translated code of it. False if the CPU/register does not exist or the address is not mapped.
    unsigned n_cpus();
    bool read_reg(unsigned cpu, unsigned n, std::vector<uint8_t> &out);
    bool write_reg(unsigned cpu, unsigned n, const std::vector<uint8_t> &value);
    bool read_virt(unsigned cpu, uint64_t vaddr, uint8_t *buf, size_t len);
    bool write_virt(unsigned cpu, uint64_t vaddr, const uint8_t *buf, size_t len);
    bool read_phys(uint64_t paddr, uint8_t *buf, size_t len);
    bool write_phys(uint64_t paddr, const uint8_t *buf, size_t len);
    // The CPU's debug hooks (target XML etc.), or nullptr.
    const KeelCpuDebugOps *cpu_debug(unsigned cpu);
    void *cpu_env(unsigned cpu);

    // ---- for the kernel ----
    // Called by Kernel::run around each engine instance.
    void engine_started(void *accel, const KeelAccelOps *ops);
    void engine_ended();
    void set_state(RunState s);
    // KeelServices.debug_stopped.
    void on_debug_stopped(const KeelStopInfo &info);

  private:
    bool virt_access(unsigned cpu, uint64_t vaddr, size_t len,
                     const std::function<bool(uint64_t paddr, size_t off, size_t n)> &part);

    std::mutex lock_;
    RunState state_ = RunState::Running;
    void *accel_ = nullptr;
    const KeelAccelOps *ops_ = nullptr;
    bool run_control_ = false; // the engine has the ABI 1.4 hooks
    std::vector<KeelDebugPoint> points_;
    std::function<void(const DebugStop &)> debug_listener_;
    std::mutex events_lock_;
    std::map<int, EventFn> listeners_;
    int next_listener_ = 1;
};

Control &control();

} // namespace keel
