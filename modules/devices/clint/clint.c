/* SPDX-License-Identifier: MIT */
/* CLINT (SiFive layout = ACLINT MSWI + MTIMER in one window): msip, mtimecmp and mtime for each hart. */
#include <keel/module.h>

#include <stdlib.h>

/* Register offsets, as on QEMU's virt and spike boards. */
enum {
    CLINT_MSIP = 0x0000,     /* 4 bytes per hart, bit 0 is the hart's MSIP */
    CLINT_MTIMECMP = 0x4000, /* 8 bytes per hart */
    CLINT_MTIME = 0xbff8,    /* 8 bytes, shared by all harts */
    CLINT_SIZE = 0x10000,
    CLINT_MAX_HARTS = 4095, /* what fits below mtime: (0xbff8 - 0x4000) / 8 */
};

#define NS_PER_SEC 1000000000ull

typedef struct Clint Clint;

typedef struct ClintHart {
    Clint *s;
    unsigned index;
    KeelTimer *timer; /* armed for the moment mtime reaches mtimecmp while MTIP is low */
    uint64_t mtimecmp;
    bool msip;
    bool mtip;
} ClintHart;

struct Clint {
    KeelObject *dev;
    /* properties */
    uint64_t num_harts;
    uint64_t timebase_freq;
    /* wiring */
    ClintHart *harts;
    KeelIrqLine **msi;
    KeelIrqLine **mti;
    /* mtime = ticks of the virtual clock + mtime_offset (mod 2^64): a guest write to mtime only moves the
     * offset. */
    uint64_t mtime_offset;
};

static int64_t now_ns(void)
{
    int64_t ns = keel_services->clock_get_ns(KEEL_CLOCK_VIRTUAL);
    return ns < 0 ? 0 : ns;
}

/* Timebase ticks elapsed at virtual time @ns; 128-bit so no frequency overflows. */
static uint64_t ticks_at(const Clint *s, int64_t ns)
{
    return (uint64_t)((unsigned __int128)(uint64_t)ns * s->timebase_freq / NS_PER_SEC);
}

static uint64_t mtime_now(const Clint *s)
{
    return ticks_at(s, now_ns()) + s->mtime_offset;
}

/* MTIP is a level: mtime >= mtimecmp. While it is low, a timer waits for the first instant it turns true. */
static void update_mtip(ClintHart *h, bool force)
{
    Clint *s = h->s;
    int64_t ns = now_ns();
    uint64_t ticks = ticks_at(s, ns);
    uint64_t mtime = ticks + s->mtime_offset;
    bool level = mtime >= h->mtimecmp;

    if (level != h->mtip || force) {
        h->mtip = level;
        keel_services->irq_set(s->mti[h->index], level);
    }
    if (level) {
        keel_services->timer_del(h->timer);
        return;
    }
    /* First ns at which ticks_at() reaches the target: ceil(target * 1e9 / freq). */
    unsigned __int128 target = (unsigned __int128)ticks + (h->mtimecmp - mtime);
    unsigned __int128 deadline = (target * NS_PER_SEC + s->timebase_freq - 1) / s->timebase_freq;
    if (deadline <= (unsigned __int128)ns) deadline = (unsigned __int128)ns + 1; /* never re-arm for "now" */
    if (deadline > (unsigned __int128)INT64_MAX)
        keel_services->timer_del(h->timer); /* beyond the end of virtual time */
    else
        keel_services->timer_mod(h->timer, (int64_t)deadline);
}

static void mtimer_fired(void *opaque)
{
    update_mtip(opaque, false);
}

static void set_msip(ClintHart *h, bool level, bool force)
{
    if (level == h->msip && !force) return;
    h->msip = level;
    keel_services->irq_set(h->s->msi[h->index], level);
}

static void bad_access(Clint *s, const char *what, uint64_t offset)
{
    keel_services->log_mask(s->dev, KEEL_LOG_GUEST_ERROR, "clint: %s of reserved offset 0x%llx", what,
                            (unsigned long long)offset);
}

/* One 32-bit register of the msip array. */
static uint32_t msip_read(Clint *s, uint64_t offset)
{
    uint64_t hart = (offset - CLINT_MSIP) / 4;
    if (hart >= s->num_harts) {
        bad_access(s, "read", offset);
        return 0;
    }
    return s->harts[hart].msip;
}

static void msip_write(Clint *s, uint64_t offset, uint32_t value)
{
    uint64_t hart = (offset - CLINT_MSIP) / 4;
    if (hart >= s->num_harts) {
        bad_access(s, "write", offset);
        return;
    }
    set_msip(&s->harts[hart], value & 1, false); /* only bit 0 exists */
}

/* The 64-bit register at 8-aligned @offset (mtimecmp or mtime); NULL hart means mtime. */
static bool timer_reg(Clint *s, uint64_t offset, ClintHart **hart)
{
    if (offset == CLINT_MTIME) {
        *hart = NULL;
        return true;
    }
    uint64_t index = (offset - CLINT_MTIMECMP) / 8;
    if (offset < CLINT_MTIMECMP || index >= s->num_harts) return false;
    *hart = &s->harts[index];
    return true;
}

static KeelMemResult clint_read(void *opaque, uint64_t offset, unsigned width, uint64_t *value)
{
    Clint *s = opaque;
    *value = 0;
    if (offset < CLINT_MTIMECMP) {
        *value = msip_read(s, offset);
        if (width == 8) *value |= (uint64_t)msip_read(s, offset + 4) << 32;
        return KEEL_MEM_OK;
    }
    ClintHart *h;
    uint64_t base = offset & ~(uint64_t)7;
    if (!timer_reg(s, base, &h)) {
        bad_access(s, "read", offset);
        return KEEL_MEM_OK;
    }
    uint64_t reg = h ? h->mtimecmp : mtime_now(s);
    /* The access is aligned to its width: a 4-byte one reads either half. */
    *value = width == 8 ? reg : (uint32_t)(reg >> ((offset & 4) * 8));
    return KEEL_MEM_OK;
}

static KeelMemResult clint_write(void *opaque, uint64_t offset, unsigned width, uint64_t value)
{
    Clint *s = opaque;
    if (offset < CLINT_MTIMECMP) {
        msip_write(s, offset, (uint32_t)value);
        if (width == 8) msip_write(s, offset + 4, (uint32_t)(value >> 32));
        return KEEL_MEM_OK;
    }
    ClintHart *h;
    uint64_t base = offset & ~(uint64_t)7;
    if (!timer_reg(s, base, &h)) {
        bad_access(s, "write", offset);
        return KEEL_MEM_OK;
    }
    uint64_t mask = ~0ull;
    if (width == 4) {
        unsigned shift = (unsigned)(offset & 4) * 8;
        mask = 0xffffffffull << shift;
        value <<= shift;
    }
    if (h) {
        h->mtimecmp = (h->mtimecmp & ~mask) | (value & mask);
        update_mtip(h, false);
    } else {
        /* A new mtime moves the offset; every hart's comparison and deadline changes with it. */
        uint64_t ticks = ticks_at(s, now_ns());
        uint64_t mtime = ((ticks + s->mtime_offset) & ~mask) | (value & mask);
        s->mtime_offset = mtime - ticks;
        for (uint64_t i = 0; i < s->num_harts; i++)
            update_mtip(&s->harts[i], false);
    }
    return KEEL_MEM_OK;
}

static const KeelMemoryOps clint_ops = {
    .size = sizeof(KeelMemoryOps),
    .read = clint_read,
    .write = clint_write,
    .valid_min = 4,
    .valid_max = 8,
    .impl_min = 4,
    .impl_max = 8, /* 64-bit mtime reads are one snapshot, not two halves from different instants */
    .unaligned_ok = false,
    .endianness = KEEL_ENDIAN_LITTLE,
};

static void clint_release(Clint *s)
{
    if (s->harts) {
        for (uint64_t i = 0; i < s->num_harts; i++)
            keel_services->timer_free(s->harts[i].timer);
    }
    free(s->harts);
    free(s->msi);
    free(s->mti);
    s->harts = NULL;
    s->msi = s->mti = NULL;
}

static int clint_realize(KeelObject *dev, void *state, KeelError *err)
{
    Clint *s = state;
    const KeelServices *k = keel_services;
    if (s->num_harts == 0) s->num_harts = k->machine_cpu_count(dev);
    if (s->num_harts == 0 || s->num_harts > CLINT_MAX_HARTS) {
        k->error_set(err, "num-harts: the machine has %u CPUs; give 1..%u harts", k->machine_cpu_count(dev),
                     CLINT_MAX_HARTS);
        return KEEL_ERR;
    }
    unsigned n = (unsigned)s->num_harts;
    s->dev = dev;
    s->harts = calloc(n, sizeof(*s->harts));
    s->msi = calloc(n, sizeof(*s->msi));
    s->mti = calloc(n, sizeof(*s->mti));
    if (!s->harts || !s->msi || !s->mti) {
        clint_release(s);
        k->error_set(err, "out of memory for %u harts", n);
        return KEEL_ERR;
    }
    for (unsigned i = 0; i < n; i++) {
        s->harts[i].s = s;
        s->harts[i].index = i;
        s->harts[i].timer = k->timer_new(dev, KEEL_CLOCK_VIRTUAL, mtimer_fired, &s->harts[i]);
    }
    if (k->device_init_mmio(dev, 0, "clint", CLINT_SIZE, &clint_ops, s, err) != KEEL_OK ||
        k->irq_init_outputs(dev, "msi", n, s->msi, err) != KEEL_OK ||
        k->irq_init_outputs(dev, "mti", n, s->mti, err) != KEEL_OK) {
        clint_release(s);
        return KEEL_ERR;
    }
    return KEEL_OK;
}

/*
 * mtimecmp starts at 0 as on QEMU 7.2 (the ACLINT spec leaves it unknown), so MTIP is pending from reset
 * until the guest programs a compare value; checked on QEMU with a guest reading mip. msip resets to 0.
 * The ACLINT spec also clears mtime, but the hart's time CSR counts the virtual clock from 0 by itself
 * (it cannot read this device), so mtime goes back to that same count: rdtime and mtime must agree or a
 * deadline computed from rdtime (Linux through SBI) would fire late.
 */
static void clint_reset(KeelObject *dev, void *state, KeelResetType type)
{
    Clint *s = state;
    (void)dev;
    (void)type;
    s->mtime_offset = 0;
    for (uint64_t i = 0; i < s->num_harts; i++) {
        s->harts[i].mtimecmp = 0;
        set_msip(&s->harts[i], false, true);
        update_mtip(&s->harts[i], true);
    }
}

static void clint_unrealize(KeelObject *dev, void *state)
{
    (void)dev;
    clint_release(state);
}

static const KeelPropertyInfo clint_props[] = {
    KEEL_PROP_UINT_RANGE("num-harts", Clint, num_harts, "0", 0, CLINT_MAX_HARTS,
                         "harts served: msip/mtimecmp slots and msi/mti output lines; 0 = one per CPU"),
    KEEL_PROP_UINT_RANGE("timebase-frequency", Clint, timebase_freq, "10000000", 1, UINT64_MAX,
                         "mtime rate in Hz"),
};

static const KeelDeviceOps clint_dev_ops = {
    .size = sizeof(KeelDeviceOps),
    .realize = clint_realize,
    .reset = clint_reset,
    .unrealize = clint_unrealize,
};

static const char *const clint_compatible[] = {"sifive,clint0", "riscv,clint0", NULL};

/* interrupts-extended comes from the wiring of the msi/mti outputs to the harts. */
static const KeelFdtInfo clint_fdt = {
    .size = sizeof(KeelFdtInfo),
    .node_name = "clint",
    .compatible = clint_compatible,
};

static const KeelDeviceTypeInfo clint_type = {
    .size = sizeof(KeelDeviceTypeInfo),
    .name = "clint",
    .description = "RISC-V CLINT: machine software and timer interrupts, mtime",
    .instance_size = sizeof(Clint),
    .properties = clint_props,
    .n_properties = KEEL_ARRAY_SIZE(clint_props),
    .ops = &clint_dev_ops,
    .fdt = &clint_fdt,
};

static int clint_module_init(KeelRegistrar *reg, KeelError *err)
{
    return reg->register_device(reg, &clint_type, err);
}

KEEL_MODULE("clint", KEEL_MODULE_DEVICE, "1.0.0", "RISC-V CLINT", "MIT", clint_module_init)
