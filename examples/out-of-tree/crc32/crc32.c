/* SPDX-License-Identifier: MIT */
/*
 * crc32-dma: a memory-mapped CRC-32 engine for keel, built out of keel's tree against the installed SDK
 * (docs/writing-a-device.md walks through it). The guest gives it an address and a length in guest RAM;
 * it reads the bytes by DMA, computes the CRC-32 (IEEE 802.3, as zlib's crc32()), optionally writes the
 * result back to guest RAM by DMA, and raises its interrupt line.
 *
 * Registers (32-bit accesses only, little-endian):
 *   0x00 ID      RO  0x43524333 ("CRC3")
 *   0x04 CTRL    RW  bit 0 START (write 1: run now; reads 0), bit 1 IRQ_EN (interrupt on completion)
 *   0x08 STATUS  RW1C bit 0 DONE, bit 1 ERROR (length over max-length, or a DMA fault)
 *   0x0c LEN     RW  bytes to read
 *   0x10 SRC_LO, 0x14 SRC_HI   RW  guest physical address of the data
 *   0x18 DST_LO, 0x1c DST_HI   RW  where to write the 4-byte result (0: do not write it)
 *   0x20 RESULT  RO  the last CRC
 * The interrupt line is high while STATUS.DONE and CTRL.IRQ_EN are both set.
 */
#include <keel/module.h>

#ifndef CRC32_VERSION
#define CRC32_VERSION "1.0.0" /* the CMake project passes its own version */
#endif

enum {
    REG_ID = 0x00,
    REG_CTRL = 0x04,
    REG_STATUS = 0x08,
    REG_LEN = 0x0c,
    REG_SRC_LO = 0x10,
    REG_SRC_HI = 0x14,
    REG_DST_LO = 0x18,
    REG_DST_HI = 0x1c,
    REG_RESULT = 0x20,
    CRC_ID = 0x43524333,
    CTRL_START = 1u << 0,
    CTRL_IRQ_EN = 1u << 1,
    STATUS_DONE = 1u << 0,
    STATUS_ERROR = 1u << 1,
};

typedef struct Crc32Dma {
    /* properties, stored by the kernel before realize */
    uint64_t seed;
    uint64_t max_length;
    /* what realize creates */
    KeelObject *dev;
    KeelIrqLine *irq;
    /* registers */
    uint32_t ctrl, status, len, result;
    uint64_t src, dst;
} Crc32Dma;

static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return crc;
}

static void crc32_update_irq(Crc32Dma *s)
{
    keel_services->irq_set(s->irq, (s->status & STATUS_DONE) && (s->ctrl & CTRL_IRQ_EN));
}

/* START: the whole transfer happens now, under the big lock, then the interrupt rises. */
static void crc32_run(Crc32Dma *s)
{
    uint32_t crc = (uint32_t)s->seed;
    uint32_t status = STATUS_DONE;
    if (s->len > s->max_length) {
        keel_services->log_mask(s->dev, KEEL_LOG_GUEST_ERROR, "length %u is over max-length %llu\n", s->len,
                                (unsigned long long)s->max_length);
        status |= STATUS_ERROR;
    } else {
        uint8_t buf[256];
        for (uint64_t done = 0; done < s->len;) {
            uint64_t n = s->len - done < sizeof buf ? s->len - done : sizeof buf;
            if (keel_services->dma_read(s->dev, s->src + done, buf, n) != KEEL_MEM_OK) {
                status |= STATUS_ERROR;
                break;
            }
            crc = crc32_update(crc, buf, (size_t)n);
            done += n;
        }
        crc = ~crc;
        if (!(status & STATUS_ERROR) && s->dst) {
            uint8_t out[4] = {(uint8_t)crc, (uint8_t)(crc >> 8), (uint8_t)(crc >> 16), (uint8_t)(crc >> 24)};
            if (keel_services->dma_write(s->dev, s->dst, out, sizeof out) != KEEL_MEM_OK)
                status |= STATUS_ERROR;
        }
        if (!(status & STATUS_ERROR)) s->result = crc;
    }
    s->status = status;
    crc32_update_irq(s);
}

static KeelMemResult crc32_read(void *opaque, uint64_t off, unsigned width, uint64_t *value)
{
    Crc32Dma *s = opaque;
    (void)width;
    switch (off) {
    case REG_ID:
        *value = CRC_ID;
        break;
    case REG_CTRL:
        *value = s->ctrl & CTRL_IRQ_EN;
        break;
    case REG_STATUS:
        *value = s->status;
        break;
    case REG_LEN:
        *value = s->len;
        break;
    case REG_SRC_LO:
        *value = (uint32_t)s->src;
        break;
    case REG_SRC_HI:
        *value = (uint32_t)(s->src >> 32);
        break;
    case REG_DST_LO:
        *value = (uint32_t)s->dst;
        break;
    case REG_DST_HI:
        *value = (uint32_t)(s->dst >> 32);
        break;
    case REG_RESULT:
        *value = s->result;
        break;
    default:
        *value = 0;
        break; /* reserved: reads as zero */
    }
    return KEEL_MEM_OK;
}

static KeelMemResult crc32_write(void *opaque, uint64_t off, unsigned width, uint64_t value)
{
    Crc32Dma *s = opaque;
    uint32_t v = (uint32_t)value;
    (void)width;
    switch (off) {
    case REG_CTRL:
        s->ctrl = v & CTRL_IRQ_EN;
        if (v & CTRL_START)
            crc32_run(s);
        else
            crc32_update_irq(s);
        break;
    case REG_STATUS:
        s->status &= ~v; /* write 1 to clear */
        crc32_update_irq(s);
        break;
    case REG_LEN:
        s->len = v;
        break;
    case REG_SRC_LO:
        s->src = (s->src & ~0xffffffffull) | v;
        break;
    case REG_SRC_HI:
        s->src = (s->src & 0xffffffffull) | (uint64_t)v << 32;
        break;
    case REG_DST_LO:
        s->dst = (s->dst & ~0xffffffffull) | v;
        break;
    case REG_DST_HI:
        s->dst = (s->dst & 0xffffffffull) | (uint64_t)v << 32;
        break;
    default: /* ID, RESULT and reserved offsets ignore writes */
        keel_services->log_mask(s->dev, KEEL_LOG_GUEST_ERROR, "write to read-only offset 0x%llx\n",
                                (unsigned long long)off);
        break;
    }
    return KEEL_MEM_OK;
}

static const KeelMemoryOps crc32_mmio = {
    .size = sizeof(KeelMemoryOps),
    .read = crc32_read,
    .write = crc32_write,
    .valid_min = 4,
    .valid_max = 4,
};

static int crc32_realize(KeelObject *dev, void *state, KeelError *err)
{
    Crc32Dma *s = state;
    s->dev = dev;
    if (keel_services->device_init_mmio(dev, 0, "regs", 0x100, &crc32_mmio, s, err)) return KEEL_ERR;
    return keel_services->irq_init_outputs(dev, NULL, 1, &s->irq, err);
}

static void crc32_reset(KeelObject *dev, void *state, KeelResetType type)
{
    Crc32Dma *s = state;
    (void)dev;
    (void)type;
    s->ctrl = s->status = s->len = s->result = 0;
    s->src = s->dst = 0;
    keel_services->irq_set(s->irq, 0);
}

static const KeelPropertyInfo crc32_props[] = {
    KEEL_PROP_UINT_RANGE("seed", Crc32Dma, seed, "0xffffffff", 0, 0xffffffffu,
                         "initial CRC register (the result is its final complement)"),
    KEEL_PROP_FULL("max-length", KEEL_PROP_SIZE, KEEL_PROPF_RANGE, Crc32Dma, max_length, "64K",
                   "longest transfer; a longer LEN sets STATUS.ERROR", 1, 0xffffffffu, NULL, NULL),
};

static const KeelDeviceOps crc32_ops = {
    .size = sizeof(KeelDeviceOps),
    .realize = crc32_realize,
    .reset = crc32_reset,
};

static const KeelDeviceTypeInfo crc32_type = {
    .size = sizeof(KeelDeviceTypeInfo),
    .name = "crc32-dma",
    .description = "CRC-32 engine: DMA from guest RAM, result by register and DMA, one interrupt",
    .instance_size = sizeof(Crc32Dma),
    .properties = crc32_props,
    .n_properties = KEEL_ARRAY_SIZE(crc32_props),
    .ops = &crc32_ops,
};

static int crc32_init(KeelRegistrar *reg, KeelError *err)
{
    return reg->register_device(reg, &crc32_type, err);
}

KEEL_MODULE("crc32-dma", KEEL_MODULE_DEVICE, CRC32_VERSION, "CRC-32 DMA engine (out-of-tree example)", "MIT",
            crc32_init)
