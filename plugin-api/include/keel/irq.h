/* SPDX-License-Identifier: MIT */
/* Interrupt lines: named input groups with a handler, output lines a device drives. */
#ifndef KEEL_IRQ_H
#define KEEL_IRQ_H

#include <keel/common.h>

KEEL_EXTERN_C_BEGIN

/**
 * KeelIrqLine: one output line of a device. The manifest connects it to an
 * input of another device; driving an unconnected line does nothing.
 * Since: ABI 1.0
 */
typedef struct KeelIrqLine KeelIrqLine;

/**
 * KeelIrqHandler: called when the level of input @n of a group changes
 * (or is re-asserted). Runs with the big lock held.
 * Since: ABI 1.0
 */
typedef void (*KeelIrqHandler)(void *opaque, unsigned n, int level);

KEEL_EXTERN_C_END

#endif /* KEEL_IRQ_H */
