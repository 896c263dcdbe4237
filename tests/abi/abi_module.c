/* SPDX-License-Identifier: MIT */
/* One source, built once per ABI_CASE_* into a good module and each kind of broken one. */
#include <keel/module.h>

typedef struct AbiState {
    uint64_t value;
    bool flag;
} AbiState;

static const KeelPropertyInfo abi_props[] = {
    KEEL_PROP_UINT("value", AbiState, value, "7", "a number"),
    KEEL_PROP_BOOL("flag", AbiState, flag, "off", "a switch"),
};

#if defined(ABI_CASE_dup_a) || defined(ABI_CASE_dup_b)
#define TYPE_NAME "abi-shared"
#elif defined(ABI_CASE_bad_default)
#define TYPE_NAME "abi-bad-default"
#else
#define TYPE_NAME "abi-good"
#endif

static const KeelDeviceTypeInfo abi_type = {sizeof(KeelDeviceTypeInfo),
                                            TYPE_NAME,
                                            "ABI test device",
                                            sizeof(AbiState),
                                            abi_props,
                                            KEEL_ARRAY_SIZE(abi_props),
                                            NULL,
                                            NULL,
                                            NULL,
                                            {0}};

#ifdef ABI_CASE_bad_default
static const KeelPropertyInfo bad_props[] = {
    KEEL_PROP_UINT_RANGE("value", AbiState, value, "2000", 1, 1023, "a number"),
};
static const KeelDeviceTypeInfo bad_type = {sizeof(KeelDeviceTypeInfo),
                                            TYPE_NAME,
                                            "ABI test device",
                                            sizeof(AbiState),
                                            bad_props,
                                            1,
                                            NULL,
                                            NULL,
                                            NULL,
                                            {0}};
#endif

#if defined(ABI_CASE_accel_good) || defined(ABI_CASE_accel_null_ops) || defined(ABI_CASE_accel_no_run) || \
    defined(ABI_CASE_accel_dup)
#define ABI_ACCEL 1
static void *abi_accel_create(const KeelCpuHandle *cpus, unsigned n, KeelError *err)
{
    (void)cpus;
    (void)n;
    keel_services->error_set(err, "the abi accelerator runs nothing");
    return NULL;
}
static int abi_accel_run(void *a)
{
    (void)a;
    return 0;
}
static void abi_accel_stop(void *a)
{
    (void)a;
}
static const KeelAccelOps abi_accel_ops = {sizeof(KeelAccelOps),
#if defined(ABI_CASE_accel_no_run)
                                           abi_accel_create,     NULL,
#else
                                           abi_accel_create,
                                           abi_accel_run,
#endif
                                           abi_accel_stop,       NULL, NULL, {0}, NULL, NULL, NULL, NULL};
static const KeelAccelTypeInfo abi_accel = {sizeof(KeelAccelTypeInfo),
                                            "abi-accel",
                                            "ABI test accelerator",
#if defined(ABI_CASE_accel_null_ops)
                                            NULL,
#else
                                            &abi_accel_ops,
#endif
                                            {0}};
#endif

#if defined(ABI_CASE_board_good) || defined(ABI_CASE_board_no_arch) || defined(ABI_CASE_board_no_boot)
#define ABI_BOARD 1
static void *abi_board_create(KeelMachine *m, const KeelBootOptions *o, KeelError *err)
{
    (void)m;
    (void)o;
    keel_services->error_set(err, "the abi board boots nothing");
    return NULL;
}
static int abi_board_boot(KeelMachine *m, void *state, KeelError *err)
{
    (void)m;
    (void)state;
    (void)err;
    return KEEL_OK;
}
static const KeelMachineOps abi_board_ops = {sizeof(KeelMachineOps), abi_board_create,
#if defined(ABI_CASE_board_no_boot)
                                             NULL,
#else
                                             abi_board_boot,
#endif
                                             NULL};
static const KeelMachineTypeInfo abi_board = {sizeof(KeelMachineTypeInfo),
                                              "abi-board",
                                              "ABI test board",
#if defined(ABI_CASE_board_no_arch)
                                              NULL,
#else
                                              "riscv",
#endif
                                              &abi_board_ops,
                                              {0}};
#endif

static int abi_init(KeelRegistrar *reg, KeelError *err)
{
#if defined(ABI_BOARD)
    return reg->register_machine(reg, &abi_board, err);
#elif defined(ABI_ACCEL)
    if (reg->register_accel(reg, &abi_accel, err) != KEEL_OK) return KEEL_ERR;
#if defined(ABI_CASE_accel_dup)
    if (reg->register_accel(reg, &abi_accel, err) != KEEL_OK) return KEEL_ERR;
#endif
    return KEEL_OK;
#elif defined(ABI_CASE_init_fails)
    keel_services->error_set(err, "the hardware it needs is missing");
    return KEEL_ERR;
#elif defined(ABI_CASE_bad_default)
    return reg->register_device(reg, &bad_type, err);
#else
    return reg->register_device(reg, &abi_type, err);
#endif
}

#if defined(ABI_BOARD)
KEEL_MODULE("abi", KEEL_MODULE_MACHINE, "1.2.3", "ABI test board module", "MIT", abi_init)
#elif defined(ABI_ACCEL)
KEEL_MODULE("abi", KEEL_MODULE_ACCEL, "1.2.3", "ABI test accelerator module", "MIT", abi_init)
#elif defined(ABI_CASE_good) || defined(ABI_CASE_dup_a) || defined(ABI_CASE_dup_b) || \
    defined(ABI_CASE_init_fails) || defined(ABI_CASE_bad_default)
KEEL_MODULE("abi", KEEL_MODULE_DEVICE, "1.2.3", "ABI test module", "MIT", abi_init)
#elif defined(ABI_CASE_no_symbol)
/* A shared object with keel-looking contents but no entry point. */
KEEL_HIDDEN const KeelServices *keel_services = NULL;
KEEL_EXPORT int keel_something_else(void)
{
    return abi_init(NULL, NULL);
}
#else
/* Hand-written descriptors, each wrong in one way. */
KEEL_HIDDEN const KeelServices *keel_services = NULL;
#if !defined(ABI_CASE_null_info)
static const KeelModuleInfo info = {
#if defined(ABI_CASE_wrong_major)
    KEEL_ABI_MAJOR + 1, 0,   sizeof(KeelModuleInfo), KEEL_MODULE_DEVICE, "abi", "1.0.0", "", "MIT",
    abi_init,           {0},
#elif defined(ABI_CASE_newer_minor)
    KEEL_ABI_MAJOR,
    KEEL_ABI_MINOR + 1,
    sizeof(KeelModuleInfo),
    KEEL_MODULE_DEVICE,
    "abi",
    "1.0.0",
    "",
    "MIT",
    abi_init,
    {0},
#elif defined(ABI_CASE_small_struct)
    KEEL_ABI_MAJOR, KEEL_ABI_MINOR, 16, KEEL_MODULE_DEVICE, "abi", "1.0.0", "", "MIT", abi_init, {0},
#elif defined(ABI_CASE_null_init)
    KEEL_ABI_MAJOR,
    KEEL_ABI_MINOR,
    sizeof(KeelModuleInfo),
    KEEL_MODULE_DEVICE,
    "abi",
    "1.0.0",
    "",
    "MIT",
    NULL,
    {0},
#elif defined(ABI_CASE_bad_version)
    KEEL_ABI_MAJOR,
    KEEL_ABI_MINOR,
    sizeof(KeelModuleInfo),
    KEEL_MODULE_DEVICE,
    "abi",
    "one",
    "",
    "MIT",
    abi_init,
    {0},
#endif
};
#endif
KEEL_EXPORT const KeelModuleInfo *keel_module_info(void);
KEEL_EXPORT const KeelModuleInfo *keel_module_info(void)
{
#if defined(ABI_CASE_null_info)
    return NULL;
#else
    return &info;
#endif
}
#endif
