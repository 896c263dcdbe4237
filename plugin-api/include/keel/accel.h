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
