/* SPDX-License-Identifier: MIT */
/* The module descriptor, the registrar handed to init, and the KEEL_MODULE macro. */
#ifndef KEEL_MODULE_H
#define KEEL_MODULE_H

#include <keel/accel.h>
#include <keel/block.h>
#include <keel/common.h>
#include <keel/device.h>
#include <keel/machine.h>
#include <keel/services.h>

KEEL_EXTERN_C_BEGIN

/** What a module provides. Since: ABI 1.0 */
typedef enum KeelModuleKind {
    KEEL_MODULE_DEVICE = 1,  /* device types (a CPU is a device) */
    KEEL_MODULE_ACCEL = 2,   /* execution engines */
    KEEL_MODULE_MACHINE = 3, /* board logic */
    KEEL_MODULE_BLOCK = 4,   /* disk formats and protocols */
} KeelModuleKind;

typedef struct KeelRegistrar KeelRegistrar;

/**
 * KeelModuleInfo: the descriptor every module returns from its one exported
 * symbol, keel_module_info(). Write it with KEEL_MODULE().
 *
 * @abi_major, @abi_minor: the ABI the module was built against.
 * @struct_size: sizeof(KeelModuleInfo) as the module was compiled.
 * @name: module name ("ns16550a"); the file is libkeel-<kind>-<name>.so.
 * @kind: KeelModuleKind.
 * @version: semantic version of the module, "MAJOR.MINOR.PATCH".
 * @description, @license: one line each (license as an SPDX identifier).
 * @init: registers the module's types with the registrar; on failure fills
 *   @err and returns KEEL_ERR. Must not have other side effects.
 * @reserved: zero; later minors give these slots a meaning.
 * Since: ABI 1.0
 */
typedef struct KeelModuleInfo {
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t struct_size;
    uint32_t kind;
    const char *name;
    const char *version;
    const char *description;
    const char *license;
    int (*init)(KeelRegistrar *reg, KeelError *err);
    void *reserved[8];
} KeelModuleInfo;

/**
 * KeelRegistrar: handed to a module's init. Types registered with it stay
 * referenced by the kernel for the life of the process, so their
 * descriptors must be static data.
 *
 * @size: sizeof(KeelRegistrar) as the kernel was compiled.
 * @services: the kernel's service table (also stored in keel_services by KEEL_MODULE).
 * @register_device: register a device type; fails (filling @err) if the
 *   name is taken, the descriptor is malformed, or a default value does
 *   not parse.
 * @register_accel: register an accelerator (keel/accel.h).
 * @register_machine: register a board (keel/machine.h). Since: ABI 1.1
 * @register_block_driver: register a disk image format (keel/block.h). Since: ABI 1.1
 * Since: ABI 1.0
 */
struct KeelRegistrar {
    size_t size;
    const KeelServices *services;
    int (*register_device)(KeelRegistrar *reg, const KeelDeviceTypeInfo *type, KeelError *err);
    int (*register_accel)(KeelRegistrar *reg, const KeelAccelTypeInfo *type, KeelError *err);
    int (*register_machine)(KeelRegistrar *reg, const KeelMachineTypeInfo *type, KeelError *err);
    int (*register_block_driver)(KeelRegistrar *reg, const KeelBlockDriverInfo *driver, KeelError *err);
    void *reserved[5];
};

/** Type of the single symbol a module exports. Since: ABI 1.0 */
typedef const KeelModuleInfo *(*KeelModuleInfoFn)(void);

/** Name of the single symbol a module exports. Since: ABI 1.0 */
#define KEEL_MODULE_SYMBOL "keel_module_info"

/**
 * keel_services: the kernel's service table, set before the module's init
 * runs. Defined (hidden) by KEEL_MODULE in exactly one file of the module.
 * Since: ABI 1.0
 */
extern KEEL_HIDDEN const KeelServices *keel_services;

/**
 * KEEL_MODULE(name, kind, version, description, license, init):
 * define the module's descriptor and its one exported symbol. Use once per
 * module, at file scope:
 *
 *   static int my_init(KeelRegistrar *reg, KeelError *err) {
 *       return reg->register_device(reg, &my_type, err);
 *   }
 *   KEEL_MODULE("mydev", KEEL_MODULE_DEVICE, "1.0.0", "My device", "MIT", my_init)
 *
 * No semicolon after it: the macro ends with a function definition, and a
 * stray `;` at file scope is a pedantic warning in C.
 * Since: ABI 1.0
 */
#define KEEL_MODULE(name_, kind_, version_, description_, license_, init_)                              \
    KEEL_HIDDEN const KeelServices *keel_services = NULL;                                               \
    static int keel_module_init_(KeelRegistrar *reg_, KeelError *err_)                                  \
    {                                                                                                   \
        keel_services = reg_->services;                                                                 \
        return init_(reg_, err_);                                                                       \
    }                                                                                                   \
    static const KeelModuleInfo keel_module_info_ = {KEEL_ABI_MAJOR,                                    \
                                                     KEEL_ABI_MINOR,                                    \
                                                     (uint32_t)sizeof(KeelModuleInfo),                  \
                                                     (uint32_t)(kind_),                                 \
                                                     (name_),                                           \
                                                     (version_),                                        \
                                                     (description_),                                    \
                                                     (license_),                                        \
                                                     keel_module_init_,                                 \
                                                     {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL}}; \
    KEEL_EXTERN_C KEEL_EXPORT const KeelModuleInfo *keel_module_info(void);                             \
    KEEL_EXTERN_C KEEL_EXPORT const KeelModuleInfo *keel_module_info(void)                              \
    {                                                                                                   \
        return &keel_module_info_;                                                                      \
    }

KEEL_EXTERN_C_END

#endif /* KEEL_MODULE_H */
