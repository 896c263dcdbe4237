/* SPDX-License-Identifier: MIT */
/* Test-only device types (test-reg, test-intc, test-dma) whose schemas kernel and manifest tests rely on. */
#include <keel/module.h>

/* ---- test-reg: a bank of 32-bit registers; register 0 drives the interrupt ---- */

enum {
    TEST_REG_MAX = 1024,
};

typedef struct TestReg {
    KeelObject *dev;
    uint64_t size;
    uint64_t num_regs;
    uint64_t reset_value;
    int32_t mode; /* 0 normal, 1 sticky */
    const char *label;
    bool enabled;
    int64_t offset_adjust;
    KeelIrqLine *irq;
    uint32_t regs[TEST_REG_MAX];
} TestReg;

static KeelMemResult test_reg_read(void *opaque, uint64_t offset, unsigned width, uint64_t *value)
{
    TestReg *s = opaque;
    (void)width;
    *value = offset / 4 < s->num_regs ? s->regs[offset / 4] : 0;
    return KEEL_MEM_OK;
}

static KeelMemResult test_reg_write(void *opaque, uint64_t offset, unsigned width, uint64_t value)
{
    TestReg *s = opaque;
    uint32_t v = (uint32_t)value;
    (void)width;
    if (offset / 4 >= s->num_regs) return KEEL_MEM_OK;
    if (s->mode == 1)
        s->regs[offset / 4] |= v;
    else
        s->regs[offset / 4] = v;
    if (offset == 0) keel_services->irq_set(s->irq, v != 0);
    return KEEL_MEM_OK;
}

static const KeelMemoryOps test_reg_ops = {
    .size = sizeof(KeelMemoryOps),
    .read = test_reg_read,
    .write = test_reg_write,
    .valid_min = 4,
    .valid_max = 4,
};

static int test_reg_realize(KeelObject *dev, void *state, KeelError *err)
{
    TestReg *s = state;
    s->dev = dev;
    if (s->num_regs * 4 > s->size) {
        keel_services->error_set(err, "num-regs (%llu) do not fit in size (%llu bytes)",
                                 (unsigned long long)s->num_regs, (unsigned long long)s->size);
        return KEEL_ERR;
    }
    if (keel_services->device_init_mmio(dev, 0, "regs", s->size, &test_reg_ops, s, err) != KEEL_OK)
        return KEEL_ERR;
    return keel_services->irq_init_outputs(dev, NULL, 1, &s->irq, err);
}

static void test_reg_reset(KeelObject *dev, void *state, KeelResetType type)
{
    TestReg *s = state;
    (void)dev;
    (void)type;
    for (uint64_t i = 0; i < s->num_regs; i++)
        s->regs[i] = (uint32_t)s->reset_value;
    keel_services->irq_set(s->irq, 0);
}

static const char *const test_reg_modes[] = {"normal", "sticky", NULL};

static const KeelPropertyInfo test_reg_props[] = {
    KEEL_PROP_FULL("size", KEEL_PROP_SIZE, KEEL_PROPF_RANGE, TestReg, size, "4K", "window size", 16, 1u << 20,
                   NULL, NULL),
    KEEL_PROP_UINT_RANGE("num-regs", TestReg, num_regs, "16", 1, TEST_REG_MAX, "number of 32-bit registers"),
    KEEL_PROP_UINT("reset-value", TestReg, reset_value, "0", "value of every register after reset"),
    KEEL_PROP_ENUM("mode", TestReg, mode, "normal", test_reg_modes, "sticky: writes only set bits"),
    KEEL_PROP_STRING("label", TestReg, label, NULL, "free text"),
    KEEL_PROP_BOOL("enabled", TestReg, enabled, "true", "a switch"),
    KEEL_PROP_INT_RANGE("offset-adjust", TestReg, offset_adjust, "0", -100, 100, "a signed number"),
};

static const KeelDeviceOps test_reg_dev_ops = {
    .size = sizeof(KeelDeviceOps),
    .realize = test_reg_realize,
    .reset = test_reg_reset,
};

static const KeelDeviceTypeInfo test_reg_type = {
    .size = sizeof(KeelDeviceTypeInfo),
    .name = "test-reg",
    .description = "Test register bank",
    .instance_size = sizeof(TestReg),
    .properties = test_reg_props,
    .n_properties = KEEL_ARRAY_SIZE(test_reg_props),
    .ops = &test_reg_dev_ops,
};

/* ---- test-intc: level inputs, a pending bitmap and an enable mask ---- */

enum {
    INTC_PENDING = 0x0,
    INTC_ENABLE = 0x4,
    INTC_NMI = 0x8,
    INTC_ID = 0xc,
};

typedef struct TestIntc {
    KeelObject *dev;
    uint64_t num_inputs;
    uint64_t id;
    KeelIrqLine *irq;
    uint32_t pending;
    uint32_t enable;
    bool nmi;
} TestIntc;

static void test_intc_update(TestIntc *s)
{
    keel_services->irq_set(s->irq, (s->pending & s->enable) != 0 || s->nmi);
}

static void test_intc_input(void *opaque, unsigned n, int level)
{
    TestIntc *s = opaque;
    if (n >= s->num_inputs) return;
    if (level)
        s->pending |= 1u << n;
    else
        s->pending &= ~(1u << n);
    test_intc_update(s);
}

static void test_intc_nmi(void *opaque, unsigned n, int level)
{
    TestIntc *s = opaque;
    (void)n;
    s->nmi = level != 0;
    test_intc_update(s);
}

static KeelMemResult test_intc_read(void *opaque, uint64_t offset, unsigned width, uint64_t *value)
{
    TestIntc *s = opaque;
    (void)width;
    switch (offset) {
    case INTC_PENDING:
        *value = s->pending;
        break;
    case INTC_ENABLE:
        *value = s->enable;
        break;
    case INTC_NMI:
        *value = s->nmi;
        break;
    case INTC_ID:
        *value = s->id;
        break;
    default:
        *value = 0;
        break;
    }
    return KEEL_MEM_OK;
}

static KeelMemResult test_intc_write(void *opaque, uint64_t offset, unsigned width, uint64_t value)
{
    TestIntc *s = opaque;
    (void)width;
    if (offset == INTC_ENABLE) {
        s->enable = (uint32_t)value;
        test_intc_update(s);
    }
    return KEEL_MEM_OK;
}

static const KeelMemoryOps test_intc_ops = {
    .size = sizeof(KeelMemoryOps),
    .read = test_intc_read,
    .write = test_intc_write,
    .valid_min = 4,
    .valid_max = 4,
};

static int test_intc_realize(KeelObject *dev, void *state, KeelError *err)
{
    TestIntc *s = state;
    const KeelServices *k = keel_services;
    s->dev = dev;
    if (k->device_init_mmio(dev, 0, "regs", 0x100, &test_intc_ops, s, err) != KEEL_OK ||
        k->irq_init_inputs(dev, NULL, (unsigned)s->num_inputs, test_intc_input, s, err) != KEEL_OK ||
        k->irq_init_inputs(dev, "nmi", 1, test_intc_nmi, s, err) != KEEL_OK ||
        k->irq_init_outputs(dev, NULL, 1, &s->irq, err) != KEEL_OK)
        return KEEL_ERR;
    return KEEL_OK;
}

/* Input levels belong to the wires, not to the controller, so reset keeps them. */
static void test_intc_reset(KeelObject *dev, void *state, KeelResetType type)
{
    TestIntc *s = state;
    (void)dev;
    (void)type;
    s->enable = 0;
    test_intc_update(s);
}

static const KeelPropertyInfo test_intc_props[] = {
    KEEL_PROP_UINT_RANGE("num-inputs", TestIntc, num_inputs, "32", 1, 32, "number of interrupt inputs"),
    KEEL_PROP_FULL("id", KEEL_PROP_UINT, KEEL_PROPF_REQUIRED | KEEL_PROPF_RANGE, TestIntc, id, NULL,
                   "identifier read back at 0xc", 0, 255, NULL, NULL),
};

static const KeelDeviceOps test_intc_dev_ops = {
    .size = sizeof(KeelDeviceOps),
    .realize = test_intc_realize,
    .reset = test_intc_reset,
};

static const KeelDeviceTypeInfo test_intc_type = {
    .size = sizeof(KeelDeviceTypeInfo),
    .name = "test-intc",
    .description = "Test interrupt controller",
    .instance_size = sizeof(TestIntc),
    .properties = test_intc_props,
    .n_properties = KEEL_ARRAY_SIZE(test_intc_props),
    .ops = &test_intc_dev_ops,
};

/* ---- test-dma: copies guest memory through the DMA services, and a byte port to a chardev ---- */

enum {
    DMA_SRC = 0x00,
    DMA_DST = 0x08,
    DMA_LEN = 0x10,
    DMA_CTRL = 0x18,
    DMA_CHAR = 0x1c,
    DMA_STATUS_IDLE = 0,
    DMA_STATUS_DONE = 2,
    DMA_STATUS_ERROR = 3,
    DMA_CHUNK = 256,
    DMA_RX_SIZE = 16,
    DMA_NO_CHAR = 0x100,
};

typedef struct TestDma {
    KeelObject *dev;
    KeelObject *peer;
    KeelChardev *chr;
    uint64_t max_len;
    KeelIrqLine *irq;
    uint64_t src, dst, len;
    uint32_t status;
    uint8_t rx[DMA_RX_SIZE];
    unsigned rx_head, rx_count;
    bool rx_blocked;
} TestDma;

static uint32_t test_dma_copy(TestDma *s)
{
    uint8_t buf[DMA_CHUNK];
    if (s->len > s->max_len) return DMA_STATUS_ERROR;
    for (uint64_t done = 0; done < s->len;) {
        uint64_t n = s->len - done < DMA_CHUNK ? s->len - done : DMA_CHUNK;
        if (keel_services->dma_read(s->dev, s->src + done, buf, n) != KEEL_MEM_OK ||
            keel_services->dma_write(s->dev, s->dst + done, buf, n) != KEEL_MEM_OK)
            return DMA_STATUS_ERROR;
        done += n;
    }
    return DMA_STATUS_DONE;
}

/* The 64-bit registers as two 32-bit halves: the bus splits 8-byte accesses into two 4-byte ones. */
static uint64_t *test_dma_reg(TestDma *s, uint64_t offset)
{
    switch (offset & ~(uint64_t)7) {
    case DMA_SRC:
        return &s->src;
    case DMA_DST:
        return &s->dst;
    case DMA_LEN:
        return &s->len;
    default:
        return NULL;
    }
}

static KeelMemResult test_dma_read(void *opaque, uint64_t offset, unsigned width, uint64_t *value)
{
    TestDma *s = opaque;
    uint64_t *reg = test_dma_reg(s, offset);
    (void)width;
    if (reg) {
        *value = (uint32_t)(*reg >> (offset & 4 ? 32 : 0));
    } else if (offset == DMA_CTRL) {
        *value = s->status;
    } else if (s->rx_count == 0) {
        *value = DMA_NO_CHAR;
    } else {
        *value = s->rx[s->rx_head];
        s->rx_head = (s->rx_head + 1) % DMA_RX_SIZE;
        s->rx_count--;
        if (s->rx_blocked && s->chr) {
            s->rx_blocked = false;
            keel_services->chardev_accept_input(s->chr);
        }
    }
    return KEEL_MEM_OK;
}

static KeelMemResult test_dma_write(void *opaque, uint64_t offset, unsigned width, uint64_t value)
{
    TestDma *s = opaque;
    uint64_t *reg = test_dma_reg(s, offset);
    (void)width;
    if (reg) {
        unsigned shift = offset & 4 ? 32 : 0;
        *reg = (*reg & ~((uint64_t)0xffffffffu << shift)) | ((value & 0xffffffffu) << shift);
    } else if (offset == DMA_CTRL) {
        if (value == 1) {
            s->status = test_dma_copy(s);
            keel_services->irq_set(s->irq, 1);
        } else if (value == 0) {
            s->status = DMA_STATUS_IDLE;
            keel_services->irq_set(s->irq, 0);
        }
    } else if (s->chr) {
        uint8_t byte = (uint8_t)value;
        keel_services->chardev_write(s->chr, &byte, 1);
    }
    return KEEL_MEM_OK;
}

static const KeelMemoryOps test_dma_ops = {
    .size = sizeof(KeelMemoryOps),
    .read = test_dma_read,
    .write = test_dma_write,
    .valid_min = 4,
    .valid_max = 8,
    .impl_min = 4,
    .impl_max = 4,
};

static size_t test_dma_can_receive(void *opaque)
{
    TestDma *s = opaque;
    size_t n = DMA_RX_SIZE - s->rx_count;
    if (n == 0) s->rx_blocked = true;
    return n;
}

static void test_dma_receive(void *opaque, const uint8_t *buf, size_t len)
{
    TestDma *s = opaque;
    for (size_t i = 0; i < len && s->rx_count < DMA_RX_SIZE; i++) {
        s->rx[(s->rx_head + s->rx_count) % DMA_RX_SIZE] = buf[i];
        s->rx_count++;
    }
}

static const KeelChardevHandlers test_dma_chr_handlers = {
    .size = sizeof(KeelChardevHandlers),
    .can_receive = test_dma_can_receive,
    .receive = test_dma_receive,
};

static int test_dma_realize(KeelObject *dev, void *state, KeelError *err)
{
    TestDma *s = state;
    s->dev = dev;
    if (keel_services->device_init_mmio(dev, 0, "regs", 0x20, &test_dma_ops, s, err) != KEEL_OK ||
        keel_services->irq_init_outputs(dev, NULL, 1, &s->irq, err) != KEEL_OK)
        return KEEL_ERR;
    if (s->chr) keel_services->chardev_set_handlers(s->chr, &test_dma_chr_handlers, s);
    return KEEL_OK;
}

static void test_dma_reset(KeelObject *dev, void *state, KeelResetType type)
{
    TestDma *s = state;
    (void)dev;
    (void)type;
    s->src = s->dst = s->len = 0;
    s->status = DMA_STATUS_IDLE;
    s->rx_head = s->rx_count = 0;
    keel_services->irq_set(s->irq, 0);
}

static void test_dma_unrealize(KeelObject *dev, void *state)
{
    TestDma *s = state;
    (void)dev;
    if (s->chr) keel_services->chardev_set_handlers(s->chr, NULL, NULL);
}

static const KeelPropertyInfo test_dma_props[] = {
    KEEL_PROP_LINK("peer", TestDma, peer, "test-reg", "a test-reg this engine belongs to"),
    KEEL_PROP_CHARDEV("chardev", TestDma, chr, "backend of the byte port (optional)"),
    KEEL_PROP_SIZE("max-len", TestDma, max_len, "64K", "longest copy accepted"),
};

static const KeelDeviceOps test_dma_dev_ops = {
    .size = sizeof(KeelDeviceOps),
    .realize = test_dma_realize,
    .reset = test_dma_reset,
    .unrealize = test_dma_unrealize,
};

static const KeelDeviceTypeInfo test_dma_type = {
    .size = sizeof(KeelDeviceTypeInfo),
    .name = "test-dma",
    .description = "Test DMA engine",
    .instance_size = sizeof(TestDma),
    .properties = test_dma_props,
    .n_properties = KEEL_ARRAY_SIZE(test_dma_props),
    .ops = &test_dma_dev_ops,
};

static int testdevs_init(KeelRegistrar *reg, KeelError *err)
{
    if (reg->register_device(reg, &test_reg_type, err) != KEEL_OK) return KEEL_ERR;
    if (reg->register_device(reg, &test_intc_type, err) != KEEL_OK) return KEEL_ERR;
    return reg->register_device(reg, &test_dma_type, err);
}

KEEL_MODULE("testdevs", KEEL_MODULE_DEVICE, "1.0.0", "Test-only device types", "MIT", testdevs_init)
