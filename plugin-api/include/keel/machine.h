/* SPDX-License-Identifier: MIT */
/* Board logic: the boot protocol of a family of machines (images, boot ROM, device tree placement). */
#ifndef KEEL_MACHINE_H
#define KEEL_MACHINE_H

#include <keel/common.h>

KEEL_EXTERN_C_BEGIN

/**
 * KeelMachine: the instantiated machine a board module boots (memory,
 * CPUs, devices already realized and wired). Opaque; used through the
 * machine_* services.
 * Since: ABI 1.1
 */
typedef struct KeelMachine KeelMachine;

/**
 * KeelBootOptions: what the user asked to boot (QEMU's options).
 *
 * @bios: -bios: a file, "none", or NULL when not given (or "default"): the
 *   board's default firmware.
 * @kernel: -kernel file or NULL. @initrd: -initrd file or NULL.
 * @append: -append command line or NULL.
 * Since: ABI 1.1
 */
typedef struct KeelBootOptions {
    size_t size;
    const char *bios;
    const char *kernel;
    const char *initrd;
    const char *append;
} KeelBootOptions;

/**
 * KeelMachineOps: a board's hooks.
 *
 * @create: once, after the machine is built and before anything runs:
 *   check @opts, read the images (image_read), add boot ROMs
 *   (machine_add_rom). Returns the board's state, NULL with @err set on
 *   failure (keel then stops before running).
 * @boot: at the first start and after every reset, with the CPUs in their
 *   reset state: write the images, the device tree (fdt_build) and the boot
 *   ROM's contents into memory.
 * @destroy: free the state (may be NULL).
 * Since: ABI 1.1
 */
typedef struct KeelMachineOps {
    size_t size;
    void *(*create)(KeelMachine *m, const KeelBootOptions *opts, KeelError *err);
    int (*boot)(KeelMachine *m, void *state, KeelError *err);
    void (*destroy)(KeelMachine *m, void *state);
} KeelMachineOps;

/**
 * KeelMachineTypeInfo: what a module registers for a board (a manifest's
 * `board:` names it).
 *
 * @name: "riscv-generic". @description: one line.
 * @arch: CPU architecture family it boots ("riscv" matches every
 *   KeelCpuOps.arch starting with "riscv:"); the kernel refuses a manifest
 *   whose CPUs are of another architecture.
 * Since: ABI 1.1
 */
typedef struct KeelMachineTypeInfo {
    size_t size;
    const char *name;
    const char *description;
    const char *arch;
    const KeelMachineOps *ops;
    void *reserved[8];
} KeelMachineTypeInfo;

/**
 * KeelImage: a guest image (ELF executable or raw binary) read and checked
 * by image_read, written into memory by image_write.
 * Since: ABI 1.1
 */
typedef struct KeelImage KeelImage;

/**
 * KeelImageInfo: what image_read found.
 * @elf: an ELF executable (else raw, placed at the given base).
 * @low, @high: the lowest address and one past the highest it occupies.
 * @entry: ELF entry point, or the raw base.
 * Since: ABI 1.1
 */
typedef struct KeelImageInfo {
    size_t size;
    bool elf;
    uint64_t low;
    uint64_t high;
    uint64_t entry;
} KeelImageInfo;

/**
 * KeelFdtChosen: what /chosen of a generated (or -dtb) tree gets.
 * @bootargs: NULL for none. @initrd_start, @initrd_end: both 0 for none.
 * Since: ABI 1.1
 */
typedef struct KeelFdtChosen {
    size_t size;
    const char *bootargs;
    uint64_t initrd_start;
    uint64_t initrd_end;
} KeelFdtChosen;

KEEL_EXTERN_C_END

#endif /* KEEL_MACHINE_H */
