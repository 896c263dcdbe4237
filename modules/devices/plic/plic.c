/* SPDX-License-Identifier: MIT */
/* SiFive PLIC (sifive,plic-1.0.0): level-triggered sources routed by priority to per-hart contexts. */
#include <keel/module.h>

#include <stdlib.h>

/* Register layout of the RISC-V PLIC specification (the one QEMU's virt board uses). */
enum {
    PLIC_PRIORITY = 0x000000, /* 4 bytes per source; source 0 does not exist */
    PLIC_PENDING = 0x001000,  /* one bit per source, 32 sources per word, read-only */
    PLIC_ENABLE = 0x002000,   /* 0x80 bytes per context, one bit per source */
    PLIC_ENABLE_STRIDE = 0x80,
    PLIC_CONTEXT = 0x200000, /* 0x1000 bytes per context: threshold at +0, claim/complete at +4 */
    PLIC_CONTEXT_STRIDE = 0x1000,
    PLIC_CLAIM = 4,
    PLIC_SIZE = 0x4000000,
    PLIC_MAX_SOURCES = 1023,
    PLIC_MAX_CONTEXTS = (PLIC_SIZE - PLIC_CONTEXT) / PLIC_CONTEXT_STRIDE, /* 15872, as in the spec */
};

/* Words of a bitmap covering sources 0..num_sources. */
#define PLIC_WORDS(n) (((n) + 1 + 31) / 32)

typedef struct Plic {
    KeelObject *dev;
    /* properties */
    uint64_t num_sources;
    uint64_t num_priorities;
    uint64_t num_contexts;
    /* wiring */
    KeelIrqLine **out;
    /* state; bitmaps are PLIC_WORDS(num_sources) words, bit i of word i/32 is source i */
    unsigned words;
    uint32_t prio_mask; /* smallest all-ones mask covering num_priorities */
    uint32_t *priority; /* num_sources + 1 entries, [0] stays 0 */
    uint32_t *level;    /* input line levels: the wires, not PLIC state, so reset keeps them */
    uint32_t *pending;
    uint32_t *claimed; /* gateway closed: claimed and not yet completed */
    uint32_t *enable;  /* num_contexts * words */
    uint32_t *threshold;
    bool *out_level;
} Plic;

static bool bit_get(const uint32_t *map, unsigned i)
{
    return (map[i / 32] >> (i % 32)) & 1;
}

static void bit_put(uint32_t *map, unsigned i, bool v)
{
    if (v)
        map[i / 32] |= 1u << (i % 32);
    else
        map[i / 32] &= ~(1u << (i % 32));
}

/*
 * Priorities and thresholds are WARL: keep the bits that exist (enough for num-priorities), and clamp a
 * value above num-priorities (possible when num-priorities + 1 is not a power of two) to the highest.
 */
static uint32_t legal_priority(const Plic *s, uint32_t value)
{
    value &= s->prio_mask;
    return value > s->num_priorities ? (uint32_t)s->num_priorities : value;
}

/* Highest-priority pending source enabled for @ctx with priority above its threshold (ties: lowest ID). */
static unsigned best_source(const Plic *s, unsigned ctx)
{
    const uint32_t *en = &s->enable[(size_t)ctx * s->words];
    uint32_t best_prio = s->threshold[ctx];
    unsigned best = 0;
    for (unsigned w = 0; w < s->words; w++) {
        uint32_t bits = s->pending[w] & en[w];
        while (bits) {
            unsigned i = w * 32 + (unsigned)__builtin_ctz(bits);
            bits &= bits - 1;
            if (s->priority[i] > best_prio) {
                best_prio = s->priority[i];
                best = i;
            }
        }
    }
    return best;
}

static void update_outputs(Plic *s, bool force)
{
    for (unsigned c = 0; c < s->num_contexts; c++) {
        bool level = best_source(s, c) != 0;
        if (level != s->out_level[c] || force) {
            s->out_level[c] = level;
            keel_services->irq_set(s->out[c], level);
        }
    }
}

/* The gateway of a level-triggered source: while it is open the pending bit follows the line. */
static void gateway_sync(Plic *s, unsigned src)
{
    if (!bit_get(s->claimed, src)) bit_put(s->pending, src, bit_get(s->level, src));
}

static void plic_input(void *opaque, unsigned n, int level)
{
    Plic *s = opaque;
    if (n == 0 || n > s->num_sources) return; /* line 0 is source 0, which does not exist */
    bit_put(s->level, n, level != 0);
    gateway_sync(s, n);
    update_outputs(s, false);
}

static void bad_access(Plic *s, const char *what, uint64_t offset)
{
    keel_services->log_mask(s->dev, KEEL_LOG_GUEST_ERROR, "plic: %s of reserved offset 0x%llx", what,
                            (unsigned long long)offset);
}

static uint32_t claim(Plic *s, unsigned ctx)
{
    unsigned src = best_source(s, ctx);
    if (src) {
        bit_put(s->pending, src, false);
        bit_put(s->claimed, src, true);
        update_outputs(s, false);
    }
    return src;
}

/* The spec ignores a completion for a source not enabled for the context that writes it. */
static void complete(Plic *s, unsigned ctx, uint32_t src, uint64_t offset)
{
    if (src == 0 || src > s->num_sources || !bit_get(&s->enable[(size_t)ctx * s->words], src)) {
        keel_services->log_mask(s->dev, KEEL_LOG_GUEST_ERROR,
                                "plic: context %u completes source %u it has not enabled (0x%llx)", ctx, src,
                                (unsigned long long)offset);
        return;
    }
    bit_put(s->claimed, src, false);
    gateway_sync(s, src); /* a line still high is pending again */
    update_outputs(s, false);
}

/* Index of the bitmap word at @offset_in_block (a pending or enable array), or -1 past the last source. */
static int bitmap_word(const Plic *s, uint64_t offset_in_block)
{
    uint64_t w = offset_in_block / 4;
    return w < s->words ? (int)w : -1;
}

static KeelMemResult plic_read(void *opaque, uint64_t offset, unsigned width, uint64_t *value)
{
    Plic *s = opaque;
    (void)width;
    *value = 0;
    if (offset < PLIC_PENDING) {
        uint64_t src = offset / 4;
        if (src == 0 || src > s->num_sources) goto bad;
        *value = s->priority[src];
    } else if (offset < PLIC_ENABLE) {
        int w = bitmap_word(s, offset - PLIC_PENDING);
        if (w < 0) goto bad;
        *value = s->pending[w];
    } else if (offset < PLIC_CONTEXT) {
        uint64_t ctx = (offset - PLIC_ENABLE) / PLIC_ENABLE_STRIDE;
        int w = bitmap_word(s, (offset - PLIC_ENABLE) % PLIC_ENABLE_STRIDE);
        if (ctx >= s->num_contexts || w < 0) goto bad;
        *value = s->enable[ctx * s->words + (unsigned)w];
    } else {
        uint64_t ctx = (offset - PLIC_CONTEXT) / PLIC_CONTEXT_STRIDE;
        uint64_t reg = (offset - PLIC_CONTEXT) % PLIC_CONTEXT_STRIDE;
        if (ctx >= s->num_contexts || reg > PLIC_CLAIM) goto bad;
        *value = reg == PLIC_CLAIM ? claim(s, (unsigned)ctx) : s->threshold[ctx];
    }
    return KEEL_MEM_OK;
bad:
    bad_access(s, "read", offset);
    return KEEL_MEM_OK;
}

static KeelMemResult plic_write(void *opaque, uint64_t offset, unsigned width, uint64_t value64)
{
    Plic *s = opaque;
    uint32_t value = (uint32_t)value64;
    (void)width;
    if (offset < PLIC_PENDING) {
        uint64_t src = offset / 4;
        if (src == 0 || src > s->num_sources) goto bad;
        s->priority[src] = legal_priority(s, value);
    } else if (offset < PLIC_ENABLE) {
        goto bad; /* pending bits are read-only; only the gateways set them and claims clear them */
    } else if (offset < PLIC_CONTEXT) {
        uint64_t ctx = (offset - PLIC_ENABLE) / PLIC_ENABLE_STRIDE;
        int w = bitmap_word(s, (offset - PLIC_ENABLE) % PLIC_ENABLE_STRIDE);
        if (ctx >= s->num_contexts || w < 0) goto bad;
        /* Source 0 and sources past num-sources have no enable bit. */
        uint32_t valid = ~0u;
        if (w == 0) valid &= ~1u;
        unsigned last = (unsigned)s->num_sources; /* highest source, bit last % 32 of word last / 32 */
        if ((unsigned)w == last / 32 && last % 32 != 31) valid &= (2u << (last % 32)) - 1;
        s->enable[ctx * s->words + (unsigned)w] = value & valid;
    } else {
        uint64_t ctx = (offset - PLIC_CONTEXT) / PLIC_CONTEXT_STRIDE;
        uint64_t reg = (offset - PLIC_CONTEXT) % PLIC_CONTEXT_STRIDE;
        if (ctx >= s->num_contexts || reg > PLIC_CLAIM) goto bad;
        if (reg == PLIC_CLAIM) {
            complete(s, (unsigned)ctx, value, offset);
            return KEEL_MEM_OK;
        }
        s->threshold[ctx] = legal_priority(s, value);
    }
    update_outputs(s, false);
    return KEEL_MEM_OK;
bad:
    bad_access(s, "write", offset);
    return KEEL_MEM_OK;
}

static const KeelMemoryOps plic_ops = {
    .size = sizeof(KeelMemoryOps),
    .read = plic_read,
    .write = plic_write,
    .valid_min = 4, /* the spec defines 32-bit registers only */
    .valid_max = 4,
    .impl_min = 4,
    .impl_max = 4,
    .unaligned_ok = false,
    .endianness = KEEL_ENDIAN_LITTLE,
};

static void plic_release(Plic *s)
{
    free(s->out);
    free(s->priority);
    free(s->level);
    free(s->pending);
    free(s->claimed);
    free(s->enable);
    free(s->threshold);
    free(s->out_level);
    s->out = NULL;
    s->priority = s->level = s->pending = s->claimed = s->enable = s->threshold = NULL;
    s->out_level = NULL;
}

static int plic_realize(KeelObject *dev, void *state, KeelError *err)
{
    Plic *s = state;
    const KeelServices *k = keel_services;
    if (s->num_contexts == 0) s->num_contexts = 2ull * k->machine_cpu_count(dev);
    if (s->num_contexts == 0 || s->num_contexts > PLIC_MAX_CONTEXTS) {
        k->error_set(err, "num-contexts: the machine has %u CPUs; give 1..%u contexts",
                     k->machine_cpu_count(dev), (unsigned)PLIC_MAX_CONTEXTS);
        return KEEL_ERR;
    }
    unsigned nsrc = (unsigned)s->num_sources, nctx = (unsigned)s->num_contexts;
    s->dev = dev;
    s->words = PLIC_WORDS(nsrc);
    s->prio_mask = 1;
    while (s->prio_mask < s->num_priorities)
        s->prio_mask = s->prio_mask << 1 | 1;
    s->out = calloc(nctx, sizeof(*s->out));
    s->priority = calloc(nsrc + 1, sizeof(*s->priority));
    s->level = calloc(s->words, sizeof(uint32_t));
    s->pending = calloc(s->words, sizeof(uint32_t));
    s->claimed = calloc(s->words, sizeof(uint32_t));
    s->enable = calloc((size_t)nctx * s->words, sizeof(uint32_t));
    s->threshold = calloc(nctx, sizeof(*s->threshold));
    s->out_level = calloc(nctx, sizeof(*s->out_level));
    if (!s->out || !s->priority || !s->level || !s->pending || !s->claimed || !s->enable || !s->threshold ||
        !s->out_level) {
        plic_release(s);
        k->error_set(err, "out of memory for %u sources and %u contexts", nsrc, nctx);
        return KEEL_ERR;
    }
    if (k->device_init_mmio(dev, 0, "plic", PLIC_SIZE, &plic_ops, s, err) != KEEL_OK ||
        k->irq_init_inputs(dev, NULL, nsrc + 1, plic_input, s, err) != KEEL_OK ||
        k->irq_init_outputs(dev, NULL, nctx, s->out, err) != KEEL_OK) {
        plic_release(s);
        return KEEL_ERR;
    }
    return KEEL_OK;
}

/*
 * Priorities, enables, thresholds and claims all go back to 0. The input levels are the state of the
 * wires, not of the PLIC: a source that keeps its line high across the reset is pending again at once,
 * as its now open gateway sees the level.
 */
static void plic_reset(KeelObject *dev, void *state, KeelResetType type)
{
    Plic *s = state;
    (void)dev;
    (void)type;
    for (unsigned i = 0; i <= s->num_sources; i++)
        s->priority[i] = 0;
    for (unsigned w = 0; w < s->words; w++) {
        s->claimed[w] = 0;
        s->pending[w] = s->level[w];
    }
    for (size_t i = 0; i < (size_t)s->num_contexts * s->words; i++)
        s->enable[i] = 0;
    for (unsigned c = 0; c < s->num_contexts; c++)
        s->threshold[c] = 0;
    update_outputs(s, true);
}

static void plic_unrealize(KeelObject *dev, void *state)
{
    (void)dev;
    plic_release(state);
}

static const KeelPropertyInfo plic_props[] = {
    KEEL_PROP_UINT_RANGE("num-sources", Plic, num_sources, "96", 1, PLIC_MAX_SOURCES,
                         "interrupt sources 1..N: input lines and priority/pending/enable bits"),
    KEEL_PROP_UINT_RANGE("num-priorities", Plic, num_priorities, "7", 1, UINT32_MAX,
                         "highest priority and threshold value; 0 means never"),
    KEEL_PROP_UINT_RANGE("num-contexts", Plic, num_contexts, "0", 0, PLIC_MAX_CONTEXTS,
                         "interrupt targets, one output line each: 2k is hart k's M mode, 2k+1 its S mode; "
                         "0 = two per CPU"),
};

static const KeelDeviceOps plic_dev_ops = {
    .size = sizeof(KeelDeviceOps),
    .realize = plic_realize,
    .reset = plic_reset,
    .unrealize = plic_unrealize,
};

static int plic_fdt_populate(KeelObject *dev, void *state, KeelFdt *fdt, KeelError *err)
{
    Plic *s = state;
    const KeelServices *k = keel_services;
    (void)dev;
    (void)err;
    if (k->fdt_prop_u32(fdt, "riscv,ndev", (uint32_t)s->num_sources) != KEEL_OK) return KEEL_ERR;
    return k->fdt_prop_u32(fdt, "#address-cells", 0);
}

/* Source N is described by one cell, N; input 0 stands for "no interrupt" and is no source. */
static unsigned plic_irq_specifier(KeelObject *dev, void *state, const char *group, unsigned index,
                                   uint32_t cells[4])
{
    (void)dev;
    (void)state;
    (void)group;
    if (index == 0) return 0;
    cells[0] = index;
    return 1;
}

static const char *const plic_compatible[] = {"sifive,plic-1.0.0", "riscv,plic0", NULL};

static const KeelFdtInfo plic_fdt = {
    .size = sizeof(KeelFdtInfo),
    .node_name = "plic",
    .compatible = plic_compatible,
    .flags = KEEL_FDT_INTERRUPT_CONTROLLER,
    .interrupt_cells = 1,
    .populate = plic_fdt_populate,
    .irq_specifier = plic_irq_specifier,
};

static const KeelDeviceTypeInfo plic_type = {
    .size = sizeof(KeelDeviceTypeInfo),
    .name = "plic",
    .description = "SiFive PLIC: platform-level interrupt controller (sifive,plic-1.0.0)",
    .instance_size = sizeof(Plic),
    .properties = plic_props,
    .n_properties = KEEL_ARRAY_SIZE(plic_props),
    .ops = &plic_dev_ops,
    .fdt = &plic_fdt,
};

static int plic_module_init(KeelRegistrar *reg, KeelError *err)
{
    return reg->register_device(reg, &plic_type, err);
}

KEEL_MODULE("plic", KEEL_MODULE_DEVICE, "1.0.0", "SiFive PLIC", "MIT", plic_module_init)
