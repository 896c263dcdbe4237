/* SPDX-License-Identifier: MIT */
/* Device-tree contributions: how a device type describes itself in the flattened device tree keel generates.
 */
#ifndef KEEL_FDT_H
#define KEEL_FDT_H

#include <keel/common.h>

KEEL_EXTERN_C_BEGIN

/**
 * KeelFdt: the tree being generated, positioned inside one node. Opaque;
 * written with the fdt_* services of KeelServices (keel/services.h).
 * Since: ABI 1.1
 */
typedef struct KeelFdt KeelFdt;

/** KeelFdtInfo.flags. Since: ABI 1.1 */
enum {
    /* The node is an interrupt controller: it gets `interrupt-controller`,
       `#interrupt-cells` and a phandle, and devices wired to its inputs
       point at it. */
    KEEL_FDT_INTERRUPT_CONTROLLER = 1u << 0,
    /* Write the type's `clock-frequency` property (if it has one) into the node. */
    KEEL_FDT_CLOCK_FREQUENCY = 1u << 1,
};

/**
 * KeelFdtInfo: a device type's node in the generated tree
 * (KeelDeviceTypeInfo.fdt; NULL = the type is not described).
 *
 * The kernel writes most of the node from what it already knows about the
 * instance, so a simple device only names itself:
 *  - the node `<node_name>@<base of window 0>` under /soc (CPUs: `cpu@<index>` under /cpus);
 *  - `compatible` from @compatible; `reg` from the instance's windows, each
 *    as (base, size) in 2+2 cells, size being @reg_size when not 0;
 *  - `interrupt-parent` + `interrupts`, or `interrupts-extended` when the
 *    lines go to more than one controller, from the wiring of the
 *    instance's output lines to inputs of interrupt controllers;
 *  - `clock-frequency` with KEEL_FDT_CLOCK_FREQUENCY;
 *  - the interrupt-controller properties with KEEL_FDT_INTERRUPT_CONTROLLER.
 * A manifest's `fdt:` section of the device may then add or replace properties.
 *
 * @size: sizeof(KeelFdtInfo) as the module was compiled.
 * @node_name: generic node name ("serial", "plic", "rtc", "virtio_mmio").
 * @compatible: NULL-terminated list, most specific first.
 * @flags: KEEL_FDT_*.
 * @interrupt_cells: `#interrupt-cells` of an interrupt controller (0 means 1).
 * @reg_size: size written in `reg` for every window (0: the window's own
 *   size). Boards describe address slots, e.g. 0x100 for an 8-byte UART.
 * @populate: optional; more properties (or subnodes) of the device's own
 *   node, called with the writer inside it after the generated properties.
 * @populate_root: optional; nodes outside the device's own, called with the
 *   writer at the root once every device node exists (e.g. /poweroff).
 * @irq_specifier: optional, for interrupt controllers; the specifier cells
 *   (at most 4) for input @index of input group @group ("" = default)
 *   written into a wired device's `interrupts`; returns how many cells, 0 if
 *   that input cannot be described. NULL: one cell, the input index.
 * @reserved: zero.
 * Since: ABI 1.1
 */
typedef struct KeelFdtInfo {
    size_t size;
    const char *node_name;
    const char *const *compatible;
    uint32_t flags;
    uint32_t interrupt_cells;
    uint64_t reg_size;
    int (*populate)(KeelObject *obj, void *state, KeelFdt *fdt, KeelError *err);
    int (*populate_root)(KeelObject *obj, void *state, KeelFdt *fdt, KeelError *err);
    unsigned (*irq_specifier)(KeelObject *obj, void *state, const char *group, unsigned index,
                              uint32_t cells[4]);
    void *reserved[4];
} KeelFdtInfo;

KEEL_EXTERN_C_END

#endif /* KEEL_FDT_H */
