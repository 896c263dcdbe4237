/* SPDX-License-Identifier: MIT */
/* Clocks and timers: virtual time in nanoseconds and callbacks at a deadline. */
#ifndef KEEL_CLOCK_H
#define KEEL_CLOCK_H

#include <keel/common.h>

KEEL_EXTERN_C_BEGIN

/**
 * Which clock a time or timer refers to.
 * KEEL_CLOCK_VIRTUAL runs only while the guest runs (host time driven, or
 * instruction-count driven with -icount); KEEL_CLOCK_HOST is wall-clock time.
 * Since: ABI 1.0
 */
typedef enum KeelClockType {
    KEEL_CLOCK_VIRTUAL = 0,
    KEEL_CLOCK_HOST = 1,
} KeelClockType;

/** KeelTimer: a one-shot timer on a clock. Since: ABI 1.0 */
typedef struct KeelTimer KeelTimer;

/** KeelTimerCallback: runs with the big lock held when the timer expires. Since: ABI 1.0 */
typedef void (*KeelTimerCallback)(void *opaque);

/**
 * KeelIcountHooks: what an engine tells the clock with -icount (see
 * KeelServices.icount_attach). Both hooks are called on the thread that
 * attached them only.
 * @pending: instructions executed since the engine's last icount_retire
 *   (counted at block granularity: a block being run is counted from its start).
 * @deadline_changed: the earliest virtual deadline moved earlier (a timer was
 *   armed while the vCPU runs): stop at the next block boundary and ask
 *   icount_budget again.
 * Since: ABI 1.2
 */
typedef struct KeelIcountHooks {
    size_t size;
    int64_t (*pending)(void *opaque);
    void (*deadline_changed)(void *opaque);
    void *opaque;
} KeelIcountHooks;

KEEL_EXTERN_C_END

#endif /* KEEL_CLOCK_H */
