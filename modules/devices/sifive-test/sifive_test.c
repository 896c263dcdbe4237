/* SPDX-License-Identifier: MIT */
/* SiFive test finisher: a guest write at offset 0 ends the run (pass or fail with a code) or resets. */
#include <keel/module.h>

/* Register offsets and the values a guest writes to the finisher register. */
enum {
    FINISHER_REG = 0x0,
    FINISHER_FAIL = 0x3333, /* exit status in bits 31..16 */
    FINISHER_PASS = 0x5555,
    FINISHER_RESET = 0x7777,
    SIFIVE_TEST_SIZE = 0x1000,
};

typedef struct SifiveTest {
    KeelObject *dev;
} SifiveTest;

static KeelMemResult sifive_test_read(void *opaque, uint64_t offset, unsigned width, uint64_t *value)
{
    (void)opaque;
    (void)offset;
    (void)width;
    *value = 0;
    return KEEL_MEM_OK;
}

static KeelMemResult sifive_test_write(void *opaque, uint64_t offset, unsigned width, uint64_t value)
{
    SifiveTest *s = opaque;
    (void)width;
    if (offset == FINISHER_REG) {
        int code = (int)((value >> 16) & 0xffff);
        switch (value & 0xffff) {
        case FINISHER_FAIL:
            keel_services->system_request(KEEL_SYSTEM_SHUTDOWN, code);
            return KEEL_MEM_OK;
        case FINISHER_PASS:
            keel_services->system_request(KEEL_SYSTEM_SHUTDOWN, 0);
            return KEEL_MEM_OK;
        case FINISHER_RESET:
            keel_services->system_request(KEEL_SYSTEM_RESET, 0);
            return KEEL_MEM_OK;
        default:
            break;
        }
    }
    keel_services->log_mask(s->dev, KEEL_LOG_GUEST_ERROR,
                            "sifive-test: write of 0x%llx at offset 0x%llx ignored",
                            (unsigned long long)value, (unsigned long long)offset);
    return KEEL_MEM_OK;
}

static const KeelMemoryOps sifive_test_ops = {
    .size = sizeof(KeelMemoryOps),
    .read = sifive_test_read,
    .write = sifive_test_write,
    .valid_min = 2,
    .valid_max = 4,
    .endianness = KEEL_ENDIAN_LITTLE,
};

static int sifive_test_realize(KeelObject *dev, void *state, KeelError *err)
{
    SifiveTest *s = state;
    s->dev = dev;
    return keel_services->device_init_mmio(dev, 0, "finisher", SIFIVE_TEST_SIZE, &sifive_test_ops, s, err);
}

static const KeelDeviceOps sifive_test_dev_ops = {
    .size = sizeof(KeelDeviceOps),
    .realize = sifive_test_realize,
};

/* A syscon: /poweroff and /reboot tell the firmware which value to write at offset 0. */
static int syscon_node(KeelObject *dev, KeelFdt *fdt, const char *name, const char *compatible,
                       uint32_t value)
{
    const KeelServices *k = keel_services;
    uint32_t regmap = k->fdt_phandle(fdt, dev);
    if (!regmap || k->fdt_begin_node(fdt, name) != KEEL_OK) return KEEL_ERR;
    int rc = k->fdt_prop_string(fdt, "compatible", compatible);
    if (rc == KEEL_OK) rc = k->fdt_prop_u32(fdt, "regmap", regmap);
    if (rc == KEEL_OK) rc = k->fdt_prop_u32(fdt, "offset", 0);
    if (rc == KEEL_OK) rc = k->fdt_prop_u32(fdt, "value", value);
    if (k->fdt_end_node(fdt) != KEEL_OK) rc = KEEL_ERR;
    return rc;
}

static int sifive_test_fdt_root(KeelObject *dev, void *state, KeelFdt *fdt, KeelError *err)
{
    (void)state;
    if (syscon_node(dev, fdt, "poweroff", "syscon-poweroff", FINISHER_PASS) != KEEL_OK ||
        syscon_node(dev, fdt, "reboot", "syscon-reboot", FINISHER_RESET) != KEEL_OK) {
        keel_services->error_set(err, "cannot write the /poweroff and /reboot nodes");
        return KEEL_ERR;
    }
    return KEEL_OK;
}

static const char *const sifive_test_compatible[] = {"sifive,test1", "sifive,test0", "syscon", NULL};

static const KeelFdtInfo sifive_test_fdt = {
    .size = sizeof(KeelFdtInfo),
    .node_name = "test",
    .compatible = sifive_test_compatible,
    .populate_root = sifive_test_fdt_root,
};

static const KeelDeviceTypeInfo sifive_test_type = {
    .size = sizeof(KeelDeviceTypeInfo),
    .name = "sifive-test",
    .description = "SiFive test finisher (pass, fail with code, reset)",
    .instance_size = sizeof(SifiveTest),
    .ops = &sifive_test_dev_ops,
    .fdt = &sifive_test_fdt,
};

static int sifive_test_module_init(KeelRegistrar *reg, KeelError *err)
{
    return reg->register_device(reg, &sifive_test_type, err);
}

KEEL_MODULE("sifive-test", KEEL_MODULE_DEVICE, "1.0.0", "SiFive test finisher", "MIT",
            sifive_test_module_init)
