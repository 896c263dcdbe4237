/* SPDX-License-Identifier: MIT */
/* The kernel's service table handed to every module. */
#ifndef KEEL_SERVICES_H
#define KEEL_SERVICES_H

#include <keel/accel.h>
#include <keel/block.h>
#include <keel/chardev.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/cpu.h>
#include <keel/fdt.h>
#include <keel/irq.h>
#include <keel/log.h>
#include <keel/machine.h>
#include <keel/memory.h>

KEEL_EXTERN_C_BEGIN

/** What a device asks of the whole system. Since: ABI 1.0 */
typedef enum KeelSystemRequest {
    KEEL_SYSTEM_SHUTDOWN = 0, /* power off; keel exits with the given status */
    KEEL_SYSTEM_RESET = 1,    /* warm reset of the whole machine */
} KeelSystemRequest;

/** vCPU events for KeelServices.plugins_vcpu_event. Since: ABI 1.2 */
typedef enum KeelPluginVcpuEvent {
    KEEL_PLUGIN_VCPU_INIT = 0,
    KEEL_PLUGIN_VCPU_EXIT = 1,
    KEEL_PLUGIN_VCPU_IDLE = 2,
    KEEL_PLUGIN_VCPU_RESUME = 3,
} KeelPluginVcpuEvent;

/** Discontinuity kinds for KeelServices.plugins_discon (QEMU's values). Since: ABI 1.2 */
enum {
    KEEL_PLUGIN_DISCON_INTERRUPT = 1u << 0,
    KEEL_PLUGIN_DISCON_EXCEPTION = 1u << 1,
    KEEL_PLUGIN_DISCON_HOSTCALL = 1u << 2,
};

/**
 * KeelPluginHooks: what an engine offers the plugin host (KeelServices.plugins_attach). Called on the
 * thread that attached them (the vCPU thread), from inside a plugin callback or between blocks.
 * @request_flush: drop every translated block of every vCPU at the next safe point (between blocks, the
 *   running chain is left at its next block boundary), then call KeelServices.plugins_flushed.
 * @code_written: guest physical memory [@paddr, @paddr + @len) was changed behind the engine's back (a
 *   plugin wrote it): drop the blocks translated from it, as for a guest store.
 * Since: ABI 1.3
 */
typedef struct KeelPluginHooks {
    size_t size;
    void (*request_flush)(void *opaque);
    void (*code_written)(void *opaque, uint64_t paddr, uint64_t len);
    void *opaque;
} KeelPluginHooks;

/**
 * KeelServices: everything the kernel offers to modules. Modules never link
 * against the kernel; they call through this table, which the kernel hands
 * to the module's init (KeelRegistrar.services) and which stays valid for the
 * life of the process.
 *
 * The table only grows: a field added in ABI 1.N sits after every field of
 * 1.(N-1). A module built for a newer minor than the kernel's is refused at
 * load, so a loaded module may use every field its header declares; test
 * KEEL_SERVICE_AVAILABLE() only when a module is deliberately built to run
 * on older kernels too.
 *
 * All services must be called from a device callback (big lock held) or from
 * the module's init, unless stated otherwise.
 * Since: ABI 1.0
 */
typedef struct KeelServices {
    size_t size;
    uint32_t abi_major;
    uint32_t abi_minor;

    /* --- errors and logging --- */
    /** Describe a failure in @err (the caller then returns KEEL_ERR). */
    void (*error_set)(KeelError *err, const char *fmt, ...) KEEL_PRINTF(2, 3);
    /** Log a message; @obj (may be NULL) names the source. */
    void (*log)(KeelObject *obj, KeelLogLevel level, const char *fmt, ...) KEEL_PRINTF(3, 4);
    /** Log under a -d category (KEEL_LOG_GUEST_ERROR, ...): printed only if it is enabled. */
    void (*log_mask)(KeelObject *obj, uint32_t category, const char *fmt, ...) KEEL_PRINTF(3, 4);
    /** Whether a -d category is enabled (to skip building expensive messages). */
    bool (*log_enabled)(uint32_t category);

    /* --- objects --- */
    /** The instance's name in the manifest ("uart0"). */
    const char *(*object_name)(KeelObject *obj);
    /** The instance's path in the object tree ("/machine/uart0"). */
    const char *(*object_path)(KeelObject *obj);
    /** The instance's type name ("ns16550a"). */
    const char *(*object_type)(KeelObject *obj);
    /** Another instance's state, e.g. the target of a KEEL_PROP_LINK (NULL if none). */
    void *(*object_state)(KeelObject *obj);

    /* --- memory --- */
    /**
     * Create MMIO window @index of @dev (@size bytes, served by @ops with
     * @opaque). After realize the kernel maps window i at the i-th `reg`
     * address of the manifest; overlaps are reported against the manifest.
     */
    int (*device_init_mmio)(KeelObject *dev, unsigned index, const char *name, uint64_t size,
                            const KeelMemoryOps *ops, void *opaque, KeelError *err);
    /**
     * Create RAM (or ROM if @readonly: guest writes are ignored) window
     * @index of @dev, host-backed; *@host receives the pointer to its bytes.
     */
    int (*device_init_ram)(KeelObject *dev, unsigned index, const char *name, uint64_t size, bool readonly,
                           void **host, KeelError *err);
    /** Base address and size of @dev's window @index; KEEL_ERR if it has none. */
    int (*device_get_reg)(KeelObject *dev, unsigned index, uint64_t *base, uint64_t *size);
    /** DMA: read @len bytes of guest physical memory at @addr. */
    KeelMemResult (*dma_read)(KeelObject *dev, uint64_t addr, void *buf, uint64_t len);
    /** DMA: write @len bytes of guest physical memory at @addr. */
    KeelMemResult (*dma_write)(KeelObject *dev, uint64_t addr, const void *buf, uint64_t len);

    /* --- interrupts --- */
    /**
     * Declare @count input lines named @name (NULL or "" for the default
     * group, referenced in manifests as `dev.N`; named groups as `dev.name`
     * or `dev.name[N]`). @handler gets the line index and level.
     */
    int (*irq_init_inputs)(KeelObject *dev, const char *name, unsigned count, KeelIrqHandler handler,
                           void *opaque, KeelError *err);
    /**
     * Declare @count output lines named @name (NULL or "" for the default
     * group, wired by the manifest's `irq:`; named groups by `irq-out:`).
     * @lines receives @count handles.
     */
    int (*irq_init_outputs)(KeelObject *dev, const char *name, unsigned count, KeelIrqLine **lines,
                            KeelError *err);
    /** Drive an output line to @level (0 or 1). */
    void (*irq_set)(KeelIrqLine *line, int level);

    /* --- character devices --- */
    /** Send bytes to the backend; returns how many were taken (may be fewer under backpressure). */
    size_t (*chardev_write)(KeelChardev *chr, const uint8_t *buf, size_t len);
    /** Register (or with @h NULL, remove) input handlers; @h must stay valid until removed. */
    void (*chardev_set_handlers)(KeelChardev *chr, const KeelChardevHandlers *h, void *opaque);
    /** Tell the backend the front end can take input again (after can_receive said 0). */
    void (*chardev_accept_input)(KeelChardev *chr);

    /* --- clocks and timers --- */
    /** Current time of @clock in nanoseconds. Callable from any thread. */
    int64_t (*clock_get_ns)(KeelClockType clock);
    /** A new, unarmed timer owned by @owner. */
    KeelTimer *(*timer_new)(KeelObject *owner, KeelClockType clock, KeelTimerCallback cb, void *opaque);
    /** Arm (or re-arm) @t to fire when its clock reaches @expire_ns. */
    void (*timer_mod)(KeelTimer *t, int64_t expire_ns);
    /** Disarm @t. */
    void (*timer_del)(KeelTimer *t);
    /** Disarm and free @t. */
    void (*timer_free)(KeelTimer *t);

    /* --- system --- */
    /** Ask for shutdown (exit status @status) or reset; acted on outside the device callback. */
    void (*system_request)(KeelSystemRequest req, int status);

    /* --- CPUs and engines (keel/cpu.h, keel/accel.h) --- */
    /** CPU @cpu has new work (a new interrupt): wake it if it is halted. Any thread. */
    void (*cpu_kick)(KeelObject *cpu);
    /**
     * Host pointer to the RAM (or, for reads, ROM) backing physical address
     * @paddr as seen by @cpu, with *@avail the bytes valid from there to the
     * end of that RAM; NULL if @paddr is not RAM (MMIO, unmapped) or is ROM
     * and @for_write.
     */
    uint8_t *(*cpu_ram_ptr)(KeelObject *cpu, uint64_t paddr, uint64_t *avail, bool for_write);
    /**
     * One access of @width (1, 2, 4, 8) bytes at physical address @paddr
     * through @cpu's address space, to whatever is mapped there (MMIO under
     * the big lock). Little-endian @value.
     */
    KeelMemResult (*cpu_mem_read)(KeelObject *cpu, uint64_t paddr, unsigned width, uint64_t *value);
    KeelMemResult (*cpu_mem_write)(KeelObject *cpu, uint64_t paddr, unsigned width, uint64_t value);

    /* --- machine (ABI 1.1) --- */
    /** How many CPUs the machine of @obj has (e.g. for an interrupt controller's default size). Since:
     * ABI 1.1 */
    unsigned (*machine_cpu_count)(KeelObject *obj);

    /* --- device tree writer (keel/fdt.h), inside KeelFdtInfo hooks; ABI 1.1 --- */
    /** Property @name of the current node with raw (big-endian) bytes. All fdt_* return KEEL_OK or KEEL_ERR.
     */
    int (*fdt_prop)(KeelFdt *fdt, const char *name, const void *value, size_t len);
    /** One 32-bit cell. */
    int (*fdt_prop_u32)(KeelFdt *fdt, const char *name, uint32_t value);
    /** One 64-bit value (two cells). */
    int (*fdt_prop_u64)(KeelFdt *fdt, const char *name, uint64_t value);
    /** @n 32-bit cells. */
    int (*fdt_prop_cells)(KeelFdt *fdt, const char *name, const uint32_t *cells, size_t n);
    /** A string. */
    int (*fdt_prop_string)(KeelFdt *fdt, const char *name, const char *value);
    /** A string list (NULL-terminated @values). */
    int (*fdt_prop_strings)(KeelFdt *fdt, const char *name, const char *const *values);
    /** Create subnode @name of the current node and enter it. */
    int (*fdt_begin_node)(KeelFdt *fdt, const char *name);
    /** Leave the current subnode (back to its parent). */
    int (*fdt_end_node)(KeelFdt *fdt);
    /**
     * The phandle of @obj's node (its interrupt-controller node if it set
     * one with fdt_set_interrupt_node); 0 if @obj has no node. The `phandle`
     * property is added to that node.
     */
    uint32_t (*fdt_phandle)(KeelFdt *fdt, KeelObject *obj);
    /**
     * The current node (e.g. a CPU's `interrupt-controller` subnode) is the
     * interrupt controller for the inputs of the object being populated:
     * devices wired to them name this node as their interrupt parent.
     */
    int (*fdt_set_interrupt_node)(KeelFdt *fdt, uint32_t interrupt_cells);

    /* --- board modules (keel/machine.h); ABI 1.1 --- */
    /** Base and size of the machine's RAM region @index (manifest order); KEEL_ERR past the last. */
    int (*machine_ram)(KeelMachine *m, unsigned index, uint64_t *base, uint64_t *size);
    /**
     * Add a ROM region (guest writes ignored) of @size bytes at @base, e.g.
     * a reset vector; *@host receives its bytes. Only from KeelMachineOps.create.
     */
    int (*machine_add_rom)(KeelMachine *m, const char *name, uint64_t base, uint64_t size, void **host,
                           KeelError *err);
    /** Write @len bytes into the RAM or ROM at guest physical @addr (fails on anything else). */
    int (*machine_write)(KeelMachine *m, uint64_t addr, const void *buf, size_t len, KeelError *err);
    /**
     * Read and check @path: an ELF executable for the machine's CPUs, or a raw
     * binary to be placed at @raw_base. NULL with @err set ("FILE: what is wrong").
     */
    KeelImage *(*image_read)(KeelMachine *m, const char *path, uint64_t raw_base, KeelImageInfo *info,
                             KeelError *err);
    /** Write an image read by image_read into the machine's RAM/ROM. */
    int (*image_write)(KeelMachine *m, KeelImage *img, KeelError *err);
    void (*image_free)(KeelImage *img);
    /**
     * The machine's device tree: the -dtb file if one was given, else one
     * generated from the instantiated machine; /chosen completed from
     * @chosen. *@blob stays valid until the next call or the machine's end.
     */
    int (*fdt_build)(KeelMachine *m, const KeelFdtChosen *chosen, const void **blob, size_t *size,
                     KeelError *err);

    /* --- block layer (keel/block.h); ABI 1.1. Callable from any thread, one caller per file at a time. ---
     */
    /** Read @len bytes at @offset of the image file; a range past its end is an error. */
    int (*block_file_pread)(KeelBlockFile *f, uint64_t offset, void *buf, size_t len, KeelError *err);
    /** Write @len bytes at @offset (the file grows as needed). */
    int (*block_file_pwrite)(KeelBlockFile *f, uint64_t offset, const void *buf, size_t len, KeelError *err);
    /** Make what was written durable (fdatasync). */
    int (*block_file_flush)(KeelBlockFile *f, KeelError *err);
    /** The file's length in bytes. */
    uint64_t (*block_file_length)(KeelBlockFile *f);
    /** Set the file's length. */
    int (*block_file_truncate)(KeelBlockFile *f, uint64_t length, KeelError *err);
    /** Give the range back to the host file system (punch a hole; reads then return zeroes). */
    int (*block_file_discard)(KeelBlockFile *f, uint64_t offset, uint64_t len, KeelError *err);
    /** The file's name as the user gave it (for messages). */
    const char *(*block_file_name)(KeelBlockFile *f);
    /**
     * Whether [@offset, @offset + @bytes) starts with a hole of the host file
     * (no storage, reads as zeroes): *@hole, for the first *@pnum (> 0) bytes
     * that share the answer. A file system without holes answers "data".
     */
    int (*block_file_status)(KeelBlockFile *f, uint64_t offset, uint64_t bytes, uint64_t *pnum, bool *hole,
                             KeelError *err);
    /** Read from another node (a driver's backing node): unallocated parts of it read through its own
     * backing. */
    int (*block_node_preadv)(KeelBlockNode *node, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt,
                             KeelError *err);
    /** A node's virtual size. */
    uint64_t (*block_node_length)(KeelBlockNode *node);
    /**
     * Devices: read, write, flush a drive (a KEEL_PROP_DRIVE property); errors name the image.
     * @err may be NULL (a device outside realize has none): the kernel then logs the error itself.
     */
    int (*drive_preadv)(KeelDrive *d, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt, KeelError *err);
    int (*drive_pwritev)(KeelDrive *d, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt,
                         KeelError *err);
    int (*drive_flush)(KeelDrive *d, KeelError *err);
    int (*drive_discard)(KeelDrive *d, uint64_t offset, uint64_t bytes, KeelError *err);
    int (*drive_write_zeroes)(KeelDrive *d, uint64_t offset, uint64_t bytes, uint32_t flags, KeelError *err);
    /** The drive's size in bytes. */
    uint64_t (*drive_length)(KeelDrive *d);
    /** Whether writes are refused (readonly=on, or a read-only image). */
    bool (*drive_read_only)(KeelDrive *d);
    /** The drive's id (-drive id=, or "drive0"...). */
    const char *(*drive_id)(KeelDrive *d);

    /* --- instruction counting (-icount); Since: ABI 1.2. Virtual time is then (instructions executed <<
     * shift) plus the time skipped while every vCPU is idle, and virtual timers fire on the vCPU thread when
     * the count reaches their deadline. Engines call these from their vCPU thread. --- */
    /** The -icount shift (2^shift ns of virtual time per instruction), or -1 without -icount. */
    int (*icount_shift)(void);
    /** Attach @hooks (valid until detached) to the calling thread; NULL detaches. */
    void (*icount_attach)(const KeelIcountHooks *hooks);
    /** Add @n executed instructions to the virtual clock. */
    void (*icount_retire)(int64_t n);
    /** Instructions left before the earliest virtual timer is due: 0 if one is due, INT64_MAX if none. */
    int64_t (*icount_budget)(void);
    /** Run every due virtual timer (takes the big lock). */
    void (*icount_run_timers)(void);
    /**
     * Every vCPU is idle: host ns to wait before jumping to the earliest
     * virtual deadline (0 with sleep=off or when one is due, INT64_MAX if no
     * timer is armed).
     */
    int64_t (*icount_idle_ns)(void);
    /** Every vCPU was idle for @ns host ns: advance virtual time as much, never past the earliest virtual
     * deadline (INT64_MAX: exactly to it). */
    void (*icount_warp)(int64_t ns);

    /* --- instrumentation plugins (-plugin, docs/plugins.md); Since: ABI 1.2. Engines and CPUs call these on
     * their vCPU thread. --- */
    /** Whether any plugin is loaded: engines skip the calls below otherwise. */
    bool (*plugins_active)(void);
    /** Insert the plugins' instrumentation into the block of vCPU @cpu_index just translated (before it is
     * verified), through the builder's cursor. */
    void (*plugins_instrument)(unsigned cpu_index, KeelIrBuilder *b, const KeelIrBuilderOps *ops);
    /** vCPU @cpu_index (@obj/@env/@ops: its handle, needed by KEEL_PLUGIN_VCPU_INIT) starts, ends, goes idle
     * or resumes. */
    void (*plugins_vcpu_event)(KeelObject *obj, void *env, const KeelCpuOps *ops, unsigned cpu_index,
                               KeelPluginVcpuEvent event);
    /** vCPU @cpu_index took a trap (@type: KEEL_PLUGIN_DISCON_*) at @from_pc; its pc is now @to_pc. */
    void (*plugins_discon)(unsigned cpu_index, unsigned type, uint64_t from_pc, uint64_t to_pc);

    /* --- instrumentation plugins, continued; Since: ABI 1.3. On the vCPU thread. --- */
    /** Attach @hooks (valid until detached; NULL detaches) of the engine running on the calling thread.
     * Since: ABI 1.3 */
    void (*plugins_attach)(const KeelPluginHooks *hooks);
    /** The calling thread runs vCPU @cpu_index from now on (plugin callbacks called directly from translated
     * code find their vCPU through it). Since: ABI 1.3 */
    void (*plugins_vcpu_run)(unsigned cpu_index);
    /** The engine dropped every translated block of a vCPU (fence.i, a full code cache, request_flush): runs
     * the plugins' flush callbacks, then the reset/uninstall callbacks waiting for the flush. Call it between
     * blocks. Since: ABI 1.3 */
    void (*plugins_flushed)(void);
    /** After a block of vCPU @cpu_index left on an exception: true, with *@pc the new pc, if it was a plugin
     * callback calling qemu_plugin_set_pc (no guest exception: continue at *@pc, the instruction whose
     * callback redirected did not run); false for a guest exception. Since: ABI 1.3 */
    bool (*plugins_redirect)(unsigned cpu_index, uint64_t *pc);

    /* --- run control (monitors, gdbstub); Since: ABI 1.4 --- */
    /** The engine parked its CPUs by itself: a step finished, a breakpoint or watchpoint was reached
     * (KeelAccelOps.resume). Called on the vCPU thread after the CPUs are parked, without the big lock.
     * Since: ABI 1.4 */
    void (*debug_stopped)(const KeelStopInfo *info);
} KeelServices;

/** Whether @svc (a table of ABI 1.x) has @field. Since: ABI 1.0 */
#define KEEL_SERVICE_AVAILABLE(svc, field) \
    (offsetof(KeelServices, field) + sizeof(((KeelServices *)0)->field) <= (svc)->size)

KEEL_EXTERN_C_END

#endif /* KEEL_SERVICES_H */
