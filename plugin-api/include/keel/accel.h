/* SPDX-License-Identifier: MIT */
/* Accelerators: the engines that run a machine's CPUs (tci, tcg). */
#ifndef KEEL_ACCEL_H
#define KEEL_ACCEL_H

#include <keel/common.h>
#include <keel/cpu.h>

KEEL_EXTERN_C_BEGIN

/**
 * KeelCpuHandle: one CPU handed to an engine.
 * @obj: the CPU object (for services: logging, memory access).
 * @env: its instance state, starting with a KeelCpuCommon.
 * @ops: its type's CPU hooks.
 * Since: ABI 1.0
 */
typedef struct KeelCpuHandle {
    KeelObject *obj;
    void *env;
    const KeelCpuOps *ops;
} KeelCpuHandle;

/**
 * KeelDebugKind / KeelDebugPoint: a breakpoint or watchpoint (gdb's Z0-Z4,
 * the monitor), by guest virtual address, on every CPU.
 * A breakpoint stops a CPU before it executes the instruction at @addr. A
 * watchpoint stops it after the instruction whose access (of the kind asked
 * for) overlaps [@addr, @addr + @len), as QEMU's gdbstub does.
 * Since: ABI 1.4
 */
typedef enum KeelDebugKind {
    KEEL_DEBUG_BREAK = 0,
    KEEL_DEBUG_WATCH_WRITE = 1,
    KEEL_DEBUG_WATCH_READ = 2,
    KEEL_DEBUG_WATCH_ACCESS = 3,
} KeelDebugKind;

typedef struct KeelDebugPoint {
    uint64_t addr;
    uint64_t len;  /* watchpoints: bytes watched (>= 1); breakpoints: ignored */
    uint32_t kind; /* KeelDebugKind */
    uint32_t reserved;
} KeelDebugPoint;

/** KeelRunMode: what resume() does with each CPU. Since: ABI 1.4 */
typedef enum KeelRunMode {
    KEEL_RUN_CONTINUE = 0, /* run */
    KEEL_RUN_STEP = 1,     /* one instruction (or one trap taken, ending at its handler), interrupts masked */
    KEEL_RUN_HOLD = 2,     /* stay parked */
} KeelRunMode;

/**
 * KeelStopInfo: why an engine parked its CPUs by itself
 * (KeelServices.debug_stopped).
 * @cpu_index: the CPU that stepped or hit the point.
 * @reason: KeelStopReason.
 * @kind: for KEEL_STOP_WATCH, the KeelDebugKind of the point that fired.
 * @addr: the breakpoint's address, or the accessed address inside the watched range.
 * Since: ABI 1.4
 */
typedef enum KeelStopReason {
    KEEL_STOP_STEP = 1,
    KEEL_STOP_BREAK = 2,
    KEEL_STOP_WATCH = 3,
} KeelStopReason;

typedef struct KeelStopInfo {
    size_t size;
    unsigned cpu_index;
    uint32_t reason;
    uint32_t kind;
    uint64_t addr;
} KeelStopInfo;

/**
 * KeelAccelOps: an engine instance's life.
 * @create: take the CPUs (@cpus valid for the engine's lifetime); NULL and
 *   @err on failure. Main thread.
 * @run: run the CPUs on the calling thread (the kernel's vCPU thread) until
 *   stop() is called; returns 0, or -1 after logging an internal error.
 *   Called at most once per instance (a machine reset gets a new instance).
 * @stop: make run() return soon. Any thread.
 * @kick: CPU @cpu_index has new work (an interrupt): wake it if halted.
 *   Any thread.
 * @destroy: after run() returned (or was never called). Main thread.
 *
 * Run control (Since: ABI 1.4; after the reserved slots, so an engine built
 * for an older minor has a smaller @size and cannot be paused or debugged). Parked CPUs are between two
 * instructions, their state (registers, CSRs) readable and writable through
 * their KeelCpuOps by the thread that parked them, and no device callback
 * runs on their behalf.
 * @pause: park every CPU at its next instruction boundary; returns once they
 *   are parked (or run() returned). Called before run(), run() parks at once.
 *   Any thread but the vCPU thread, never holding the big lock (a CPU may
 *   need it to finish an MMIO access before it can park).
 * @resume: parked CPUs go on, CPU i as @modes[i] (KeelRunMode; NULL or
 *   i >= @n_modes: KEEL_RUN_CONTINUE). While a CPU steps the others wait;
 *   after the step every CPU parks again and the engine calls
 *   KeelServices.debug_stopped (KEEL_STOP_STEP). A CPU reaching a breakpoint
 *   or watchpoint parks every CPU and reports it the same way.
 * @set_debug: replace the breakpoints and watchpoints (copied); running or
 *   parked. Translated code that would miss them is dropped. 0, or -1 and
 *   @err (e.g. too many).
 * @code_written: guest RAM [@paddr, @paddr + @len) was changed while the CPUs
 *   were parked (a debugger's write): drop what was translated from it.
 * Since: ABI 1.0
 */
typedef struct KeelAccelOps {
    size_t size;
    void *(*create)(const KeelCpuHandle *cpus, unsigned n_cpus, KeelError *err);
    int (*run)(void *accel);
    void (*stop)(void *accel);
    void (*kick)(void *accel, unsigned cpu_index);
    void (*destroy)(void *accel);
    void *reserved[8];
    /* Since: ABI 1.4 (present when @size covers them) */
    void (*pause)(void *accel);
    void (*resume)(void *accel, const uint8_t *modes, unsigned n_modes);
    int (*set_debug)(void *accel, const KeelDebugPoint *points, unsigned n_points, KeelError *err);
    void (*code_written)(void *accel, uint64_t paddr, uint64_t len);
} KeelAccelOps;

/**
 * KeelAccelTypeInfo: an engine a module registers (KeelRegistrar.register_accel);
 * selected with -accel NAME or `accel:` in a manifest.
 * Since: ABI 1.0
 */
typedef struct KeelAccelTypeInfo {
    size_t size;
    const char *name;
    const char *description;
    const KeelAccelOps *ops;
    void *reserved[4];
} KeelAccelTypeInfo;

KEEL_EXTERN_C_END

#endif /* KEEL_ACCEL_H */
