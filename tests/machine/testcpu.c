/* SPDX-License-Identifier: MIT */
/* A CPU type for kernel tests: KeelCpuCommon, a pc set through write_reg, two interrupt inputs. */
#include <string.h>

#include <keel/module.h>

#include "testcpu.h"

static void test_cpu_irq(void *opaque, unsigned line, int level)
{
    (void)line;
    TestCpu *s = opaque;
    s->irq_level[0] = (uint32_t)level;
    s->common.exit_request = 1;
    keel_services->cpu_kick(s->obj);
}

static void test_cpu_irq_msi(void *opaque, unsigned line, int level)
{
    (void)line;
    TestCpu *s = opaque;
    s->irq_level[1] = (uint32_t)level;
    s->common.exit_request = 1;
    keel_services->cpu_kick(s->obj);
}

static int test_cpu_init(KeelObject *dev, void *state, KeelError *err)
{
    (void)err;
    ((TestCpu *)state)->obj = dev;
    return KEEL_OK;
}

static int test_cpu_realize(KeelObject *dev, void *state, KeelError *err)
{
    TestCpu *s = state;
    s->index_at_realize = s->common.cpu_index + 1;
    if (keel_services->irq_init_inputs(dev, "mti", 1, test_cpu_irq, s, err) != KEEL_OK) return KEEL_ERR;
    return keel_services->irq_init_inputs(dev, "msi", 1, test_cpu_irq_msi, s, err);
}

static void test_cpu_reset(KeelObject *dev, void *state, KeelResetType type)
{
    (void)dev;
    (void)type;
    TestCpu *s = state;
    s->pc = s->resetvec;
    s->resets++;
}

static unsigned test_cpu_read_reg(void *env, unsigned n, uint8_t *buf, size_t bufsize)
{
    if (n != 32 || bufsize < 8) return 0;
    memcpy(buf, &((TestCpu *)env)->pc, 8);
    return 8;
}

static unsigned test_cpu_write_reg(void *env, unsigned n, const uint8_t *buf, size_t len)
{
    if (n != 32 || len != 8) return 0;
    memcpy(&((TestCpu *)env)->pc, buf, 8);
    return 8;
}

static int test_cpu_has_work(void *env)
{
    TestCpu *s = env;
    return s->irq_level[0] || s->irq_level[1];
}

static const KeelIrGlobal test_cpu_globals[] = {{"pc", offsetof(TestCpu, pc), KEEL_IR_I64}};

static const KeelCpuOps test_cpu_ops = {
    .size = sizeof(KeelCpuOps),
    .arch = "riscv:rv64", /* so the kernel sets the entry through write_reg(32) */
    .globals = test_cpu_globals,
    .n_globals = 1,
    .pc_global = 0,
    .n_mmu_idx = 1,
    .max_insn_bytes = TEST_RECORD_SIZE,
    .has_work = test_cpu_has_work,
    .read_reg = test_cpu_read_reg,
    .write_reg = test_cpu_write_reg,
};

static const KeelPropertyInfo test_cpu_props[] = {
    KEEL_PROP_UINT("resetvec", TestCpu, resetvec, "0x1000", "pc after reset"),
};

static const KeelDeviceOps test_cpu_dev_ops = {
    .size = sizeof(KeelDeviceOps),
    .init = test_cpu_init,
    .realize = test_cpu_realize,
    .reset = test_cpu_reset,
};

static const KeelDeviceTypeInfo test_cpu_type = {
    .size = sizeof(KeelDeviceTypeInfo),
    .name = "test-cpu",
    .description = "CPU for kernel tests (runs store records)",
    .instance_size = sizeof(TestCpu),
    .properties = test_cpu_props,
    .n_properties = KEEL_ARRAY_SIZE(test_cpu_props),
    .ops = &test_cpu_dev_ops,
    .cpu = &test_cpu_ops,
};

static int test_cpu_module_init(KeelRegistrar *reg, KeelError *err)
{
    return reg->register_device(reg, &test_cpu_type, err);
}

KEEL_MODULE("testcpu", KEEL_MODULE_DEVICE, "1.0.0", "CPU type for kernel tests", "MIT", test_cpu_module_init)
