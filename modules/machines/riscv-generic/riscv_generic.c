// SPDX-License-Identifier: MIT
// riscv-generic: boots any RISC-V manifest the way QEMU's virt board does: a reset ROM at 0x1000 that
// enters the firmware with a0 = hartid, a1 = device tree, a2 = fw_dynamic info; firmware at the start
// of RAM; the kernel where fw_jump expects it; the device tree near the top of RAM.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keel/keel.h>

#define MROM_BASE 0x1000u
#define MROM_SIZE 0xf000u
#define MiB (1024ull * 1024)
#define GiB (1024 * MiB)

/* Where Debian's opensbi package puts the generic platform's firmware; keel's default -bios. */
#define DEFAULT_BIOS "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin"

/* OpenSBI's fw_dynamic_info (docs/firmware/fw_dynamic.md): six XLEN words. */
#define FW_DYNAMIC_MAGIC 0x4942534full /* "OSBI" */
#define FW_DYNAMIC_VERSION 2
#define FW_DYNAMIC_NEXT_MODE_S 1

/*
 * The reset vector, at MROM_BASE:
 *   auipc t0, 0              t0 = 0x1000
 *   addi  a2, t0, 40         a2 = &fw_dynamic_info
 *   csrr  a0, mhartid
 *   ld    a1, 32(t0)         a1 = device tree address
 *   ld    t0, 24(t0)         t0 = entry
 *   jr    t0
 *   .dword entry             (offset 24)
 *   .dword fdt               (offset 32)
 *   fw_dynamic_info          (offset 40)
 */
static const uint32_t reset_code[] = {0x00000297, 0x02828613, 0xf1402573, 0x0202b583, 0x0182b283, 0x00028067};
#define ROM_ENTRY_OFFSET 24
#define ROM_FDT_OFFSET 32
#define ROM_INFO_OFFSET 40

typedef struct Board {
    uint64_t ram_base, ram_size;
    KeelImage *bios;   /* NULL with -bios none */
    KeelImage *kernel; /* NULL without -kernel */
    uint64_t entry;    /* where the reset ROM jumps */
    uint64_t kernel_entry;
    uint8_t *initrd;
    size_t initrd_size;
    uint64_t initrd_start;
    char *append;
    uint8_t *rom;
} Board;

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void board_free(Board *b)
{
    const KeelServices *k = keel_services;
    if (b->bios) k->image_free(b->bios);
    if (b->kernel) k->image_free(b->kernel);
    free(b->initrd);
    free(b->append);
    free(b);
}

static int read_file(const char *path, uint8_t **data, size_t *size, KeelError *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        keel_services->error_set(err, "%s: cannot read: %s", path, strerror(errno));
        return KEEL_ERR;
    }
    size_t cap = 1 << 20, n = 0;
    uint8_t *buf = malloc(cap);
    const char *why = NULL;
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        uint8_t *bigger = realloc(buf, cap * 2);
        if (!bigger) break;
        buf = bigger;
        cap *= 2;
    }
    if (!buf || n == cap)
        why = "out of memory";
    else if (ferror(f))
        why = "read error";
    fclose(f);
    if (why) {
        free(buf);
        keel_services->error_set(err, "%s: cannot read: %s", path, why);
        return KEEL_ERR;
    }
    *data = buf;
    *size = n;
    return KEEL_OK;
}

static void *board_create(KeelMachine *m, const KeelBootOptions *o, KeelError *err)
{
    const KeelServices *k = keel_services;
    Board *b = calloc(1, sizeof(*b));
    if (!b) {
        k->error_set(err, "out of memory");
        return NULL;
    }
    if (k->machine_ram(m, 0, &b->ram_base, &b->ram_size) != KEEL_OK) {
        k->error_set(err, "the machine has no RAM to boot from (add a 'memory:' region)");
        goto fail;
    }
    const char *bios = o->bios ? o->bios : DEFAULT_BIOS;
    bool no_bios = strcmp(bios, "none") == 0;
    KeelImageInfo bi = {sizeof(bi), false, 0, 0, 0};
    uint64_t firmware_end = b->ram_base;
    if (!no_bios) {
        b->bios = k->image_read(m, bios, b->ram_base, &bi, err);
        if (!b->bios) {
            if (!o->bios) {
                k->error_set(err,
                             "no firmware: the default %s is missing (install Debian's opensbi package, or "
                             "give -bios FILE, or -bios none -kernel FILE)",
                             DEFAULT_BIOS);
            }
            goto fail;
        }
        firmware_end = bi.high;
        b->entry = bi.entry;
    }
    if (o->kernel) {
        /* A raw kernel goes to the first 2 MiB boundary after the firmware (fw_jump's FW_JUMP_ADDR on
           QEMU's virt is RAM + 2 MiB); an ELF kernel to its own addresses. */
        uint64_t at = no_bios ? b->ram_base : (firmware_end + 2 * MiB - 1) & ~(2 * MiB - 1);
        KeelImageInfo ki = {sizeof(ki), false, 0, 0, 0};
        b->kernel = k->image_read(m, o->kernel, at, &ki, err);
        if (!b->kernel) goto fail;
        if (!no_bios && ki.low < firmware_end && bi.low < ki.high) {
            k->error_set(err, "%s (0x%llx-0x%llx) overlaps the firmware %s (0x%llx-0x%llx)", o->kernel,
                         (unsigned long long)ki.low, (unsigned long long)ki.high - 1, bios,
                         (unsigned long long)bi.low, (unsigned long long)bi.high - 1);
            goto fail;
        }
        b->kernel_entry = ki.entry;
        if (no_bios) b->entry = ki.entry;
    } else if (no_bios) {
        k->error_set(err, "-bios none: nothing to run; give the program with -kernel FILE");
        goto fail;
    }
    if (o->initrd) {
        if (!o->kernel) {
            k->error_set(err, "-initrd needs -kernel (the initrd is for the kernel)");
            goto fail;
        }
        if (read_file(o->initrd, &b->initrd, &b->initrd_size, err) != KEEL_OK) goto fail;
        /* Far enough above the kernel that it can decompress, as QEMU places it. */
        uint64_t gap = b->ram_size / 2 < 128 * MiB ? b->ram_size / 2 : 128 * MiB;
        b->initrd_start = b->kernel_entry + gap;
        if (b->initrd_start + b->initrd_size > b->ram_base + b->ram_size) {
            k->error_set(err,
                         "%s: %zu bytes do not fit in RAM at 0x%llx (give the machine more memory with -m)",
                         o->initrd, b->initrd_size, (unsigned long long)b->initrd_start);
            goto fail;
        }
    }
    if (o->append && !(b->append = strdup(o->append))) {
        k->error_set(err, "out of memory");
        goto fail;
    }
    void *rom;
    if (k->machine_add_rom(m, "mrom", MROM_BASE, MROM_SIZE, &rom, err) != KEEL_OK) goto fail;
    b->rom = rom;
    return b;
fail:
    board_free(b);
    return NULL;
}

static int board_boot(KeelMachine *m, void *state, KeelError *err)
{
    const KeelServices *k = keel_services;
    Board *b = state;
    if (b->bios && k->image_write(m, b->bios, err) != KEEL_OK) return KEEL_ERR;
    if (b->kernel && k->image_write(m, b->kernel, err) != KEEL_OK) return KEEL_ERR;
    if (b->initrd && k->machine_write(m, b->initrd_start, b->initrd, b->initrd_size, err) != KEEL_OK)
        return KEEL_ERR;

    KeelFdtChosen chosen = {sizeof(chosen), b->append, 0, 0};
    if (b->initrd) {
        chosen.initrd_start = b->initrd_start;
        chosen.initrd_end = b->initrd_start + b->initrd_size;
    }
    const void *fdt;
    size_t fdt_size;
    if (k->fdt_build(m, &chosen, &fdt, &fdt_size, err) != KEEL_OK) return KEEL_ERR;
    /* As far up as possible (out of the kernel's and initrd's way) but below 3 GiB so 32-bit code
       reaches it, 2 MiB aligned. */
    uint64_t end = b->ram_base + b->ram_size;
    if (b->ram_base < 3 * GiB && end > 3 * GiB) end = 3 * GiB;
    if (fdt_size > end - b->ram_base) {
        k->error_set(err, "the %zu-byte device tree does not fit in RAM", fdt_size);
        return KEEL_ERR;
    }
    uint64_t fdt_addr = (end - fdt_size) & ~(2 * MiB - 1);
    if (fdt_addr < b->ram_base) fdt_addr = b->ram_base; /* a tiny RAM: keep it inside */
    if (k->machine_write(m, fdt_addr, fdt, fdt_size, err) != KEEL_OK) return KEEL_ERR;

    uint8_t rom[ROM_INFO_OFFSET + 6 * 8];
    memset(rom, 0, sizeof(rom));
    for (size_t i = 0; i < KEEL_ARRAY_SIZE(reset_code); i++)
        for (int j = 0; j < 4; j++)
            rom[i * 4 + j] = (uint8_t)(reset_code[i] >> (8 * j));
    put64(rom + ROM_ENTRY_OFFSET, b->entry);
    put64(rom + ROM_FDT_OFFSET, fdt_addr);
    uint8_t *info = rom + ROM_INFO_OFFSET;
    put64(info + 0, FW_DYNAMIC_MAGIC);
    put64(info + 8, FW_DYNAMIC_VERSION);
    put64(info + 16, b->kernel_entry); /* next_addr: where OpenSBI's fw_dynamic goes next */
    put64(info + 24, FW_DYNAMIC_NEXT_MODE_S);
    put64(info + 32, 0);          /* options */
    put64(info + 40, ~0ull);      /* boot_hart: any (OpenSBI picks one by lottery) */
    memset(b->rom, 0, MROM_SIZE); /* the ROM's own bytes: guest writes never reach them */
    memcpy(b->rom, rom, sizeof(rom));
    return KEEL_OK;
}

static void board_destroy(KeelMachine *m, void *state)
{
    (void)m;
    if (state) board_free(state);
}

static const KeelMachineOps riscv_generic_ops = {
    .size = sizeof(KeelMachineOps),
    .create = board_create,
    .boot = board_boot,
    .destroy = board_destroy,
};

static const KeelMachineTypeInfo riscv_generic_type = {
    .size = sizeof(KeelMachineTypeInfo),
    .name = "riscv-generic",
    .description =
        "RISC-V board logic: QEMU virt's reset ROM, fw_dynamic/fw_jump firmware, generated device tree",
    .arch = "riscv",
    .ops = &riscv_generic_ops,
};

static int riscv_generic_init(KeelRegistrar *reg, KeelError *err)
{
    return reg->register_machine(reg, &riscv_generic_type, err);
}

KEEL_MODULE("riscv-generic", KEEL_MODULE_MACHINE, "1.0.0", "RISC-V board logic (QEMU virt boot protocol)",
            "MIT", riscv_generic_init)
