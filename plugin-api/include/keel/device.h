/* SPDX-License-Identifier: MIT */
/* Device types: property schemas, lifecycle ops and the description a module registers. */
#ifndef KEEL_DEVICE_H
#define KEEL_DEVICE_H

#include <keel/block.h>
#include <keel/chardev.h>
#include <keel/common.h>

KEEL_EXTERN_C_BEGIN

/**
 * Property types, and the C type the kernel stores the value as, at
 * KeelPropertyInfo.offset inside the instance state:
 *
 * | type               | stored as            | manifest / -device spelling        |
 * |--------------------|----------------------|------------------------------------|
 * | KEEL_PROP_BOOL     | bool                 | true/false, on/off, yes/no         |
 * | KEEL_PROP_INT      | int64_t              | decimal, 0x hex, 0b binary, 0o oct |
 * | KEEL_PROP_UINT     | uint64_t             | as INT, no sign                    |
 * | KEEL_PROP_SIZE     | uint64_t             | as UINT, or with K/M/G/T suffix    |
 * | KEEL_PROP_STRING   | const char *         | any string (kernel-owned)          |
 * | KEEL_PROP_ENUM     | int32_t (the index)  | one of enum_values                 |
 * | KEEL_PROP_LINK     | KeelObject *         | name of another object             |
 * | KEEL_PROP_CHARDEV  | KeelChardev *        | id of a chardev (serial0, ...)     |
 * | KEEL_PROP_DRIVE    | KeelDrive *          | id of a -drive                     |
 *
 * Since: ABI 1.0
 */
typedef enum KeelPropType {
    KEEL_PROP_BOOL = 1,
    KEEL_PROP_INT = 2,
    KEEL_PROP_UINT = 3,
    KEEL_PROP_SIZE = 4,
    KEEL_PROP_STRING = 5,
    KEEL_PROP_ENUM = 6,
    KEEL_PROP_LINK = 7,
    KEEL_PROP_CHARDEV = 8,
    KEEL_PROP_DRIVE = 9,
} KeelPropType;

/** Property flags. Since: ABI 1.0 */
enum {
    KEEL_PROPF_REQUIRED = 1u << 0, /* the manifest must set it */
    KEEL_PROPF_RANGE = 1u << 1,    /* min/max apply (INT: as int64_t, UINT/SIZE: as uint64_t) */
    KEEL_PROPF_SETTABLE = 1u << 2, /* may change after realize (qom-set); ops.property_changed is told */
};

/**
 * KeelPropertyInfo: one entry of a type's property schema. The same schema
 * validates manifests, prints `-device TYPE,help`, and generates the JSON
 * Schema of `keel --manifest-schema`.
 *
 * @name: property name, lower-case with dashes ("clock-frequency").
 * @type: see KeelPropType.
 * @flags: KEEL_PROPF_*.
 * @offset: where the value is stored in the instance state (offsetof).
 * @default_value: the default in manifest spelling, or NULL for none
 *   (the stored value is then zero/NULL).
 * @doc: one line for humans.
 * @min, @max: the valid range when KEEL_PROPF_RANGE is set.
 * @enum_values: NULL-terminated names for KEEL_PROP_ENUM.
 * @link_type: for KEEL_PROP_LINK, the type name the target must have, or NULL.
 * Since: ABI 1.0
 */
typedef struct KeelPropertyInfo {
    const char *name;
    KeelPropType type;
    uint32_t flags;
    size_t offset;
    const char *default_value;
    const char *doc;
    uint64_t min;
    uint64_t max;
    const char *const *enum_values;
    const char *link_type;
    void *reserved[4];
} KeelPropertyInfo;

/** How thorough a reset is. Since: ABI 1.0 */
typedef enum KeelResetType {
    KEEL_RESET_COLD = 0, /* power-on */
    KEEL_RESET_WARM = 1, /* system_reset, guest-requested reset */
} KeelResetType;

/** KeelSerializer: snapshot stream handed to the serialize hook (later). Since: ABI 1.0 */
typedef struct KeelSerializer KeelSerializer;

/**
 * KeelDeviceOps: the lifecycle of an instance. Every hook may be NULL.
 * The kernel allocates instance_size zeroed bytes of state, then:
 * init → properties set (defaults, then manifest values) → realize →
 * reset … → unrealize → state freed.
 *
 * @size: sizeof(KeelDeviceOps) as the module was compiled.
 * @init: set up internal state that does not depend on properties.
 * @realize: properties are set: validate them, create MMIO windows, IRQ
 *   lines, timers; the kernel maps and wires them after realize returns.
 * @reset: put registers in their reset state.
 * @unrealize: release what realize acquired (timers, chardev handlers).
 * @property_changed: a KEEL_PROPF_SETTABLE property was set after realize
 *   (the new value is already stored); return KEEL_ERR to refuse it.
 * @serialize: save or load the state to/from a snapshot stream (later).
 * Since: ABI 1.0
 */
typedef struct KeelDeviceOps {
    size_t size;
    int (*init)(KeelObject *dev, void *state, KeelError *err);
    int (*realize)(KeelObject *dev, void *state, KeelError *err);
    void (*reset)(KeelObject *dev, void *state, KeelResetType type);
    void (*unrealize)(KeelObject *dev, void *state);
    int (*property_changed)(KeelObject *dev, void *state, const char *name, KeelError *err);
    int (*serialize)(KeelObject *dev, void *state, KeelSerializer *s, KeelError *err);
} KeelDeviceOps;

/**
 * KeelDeviceTypeInfo: what a module registers for each device type.
 *
 * @size: sizeof(KeelDeviceTypeInfo) as the module was compiled.
 * @name: the type name used in manifests and -device ("ns16550a").
 * @description: one line for `-device help`.
 * @instance_size: bytes of state per instance (allocated zeroed, 16-byte aligned).
 * @properties, @n_properties: the property schema.
 * @ops: lifecycle hooks (may be NULL).
 * @cpu: CPU hooks for CPU types (keel/cpu.h).
 * @fdt: how the type appears in the generated device tree (keel/fdt.h). Since: ABI 1.1
 * @reserved: must be zero; later ABI minors give these slots a meaning.
 * Since: ABI 1.0
 */
typedef struct KeelDeviceTypeInfo {
    size_t size;
    const char *name;
    const char *description;
    size_t instance_size;
    const KeelPropertyInfo *properties;
    size_t n_properties;
    const KeelDeviceOps *ops;
    const struct KeelCpuOps *cpu;  /* non-NULL for CPU types (keel/cpu.h) */
    const struct KeelFdtInfo *fdt; /* its device-tree node (keel/fdt.h), NULL = none. Since: ABI 1.1 */
    void *reserved[6];
} KeelDeviceTypeInfo;

/*
 * Property schema helpers, for C and C++20 alike:
 *   static const KeelPropertyInfo props[] = {
 *       KEEL_PROP_UINT_RANGE("num-sources", Plic, num_sources, "96", 1, 1023, "interrupt sources"),
 *       KEEL_PROP_CHARDEV("chardev", Uart, chr, "backend for the serial line"),
 *   };
 */
/**
 * KEEL_PROP_FULL: a schema entry with every field spelled out, for flags
 * such as KEEL_PROPF_REQUIRED or KEEL_PROPF_SETTABLE.
 * Since: ABI 1.0
 */
/* clang-format off */
#define KEEL_PROP_FULL(name_, type_, flags_, State, field, def, doc_, min_, max_, enums_, link_) \
    {(name_), (type_), (flags_), offsetof(State, field), (def), (doc_), (uint64_t)(min_), (uint64_t)(max_), \
     (enums_), (link_), {0, 0, 0, 0}}
/* clang-format on */
/** Since: ABI 1.0 */
#define KEEL_PROP_BOOL(name, State, field, def, doc) \
    KEEL_PROP_FULL(name, KEEL_PROP_BOOL, 0, State, field, def, doc, 0, 0, NULL, NULL)
/** Since: ABI 1.0 */
#define KEEL_PROP_INT(name, State, field, def, doc) \
    KEEL_PROP_FULL(name, KEEL_PROP_INT, 0, State, field, def, doc, 0, 0, NULL, NULL)
/** Since: ABI 1.0 */
#define KEEL_PROP_INT_RANGE(name, State, field, def, lo, hi, doc)                                \
    KEEL_PROP_FULL(name, KEEL_PROP_INT, KEEL_PROPF_RANGE, State, field, def, doc, (int64_t)(lo), \
                   (int64_t)(hi), NULL, NULL)
/** Since: ABI 1.0 */
#define KEEL_PROP_UINT(name, State, field, def, doc) \
    KEEL_PROP_FULL(name, KEEL_PROP_UINT, 0, State, field, def, doc, 0, 0, NULL, NULL)
/** Since: ABI 1.0 */
#define KEEL_PROP_UINT_RANGE(name, State, field, def, lo, hi, doc) \
    KEEL_PROP_FULL(name, KEEL_PROP_UINT, KEEL_PROPF_RANGE, State, field, def, doc, lo, hi, NULL, NULL)
/** Since: ABI 1.0 */
#define KEEL_PROP_SIZE(name, State, field, def, doc) \
    KEEL_PROP_FULL(name, KEEL_PROP_SIZE, 0, State, field, def, doc, 0, 0, NULL, NULL)
/** Since: ABI 1.0 */
#define KEEL_PROP_STRING(name, State, field, def, doc) \
    KEEL_PROP_FULL(name, KEEL_PROP_STRING, 0, State, field, def, doc, 0, 0, NULL, NULL)
/** @values: a NULL-terminated array of names. Since: ABI 1.0 */
#define KEEL_PROP_ENUM(name, State, field, def, values, doc) \
    KEEL_PROP_FULL(name, KEEL_PROP_ENUM, 0, State, field, def, doc, 0, 0, values, NULL)
/** @target_type: required type of the target object, or NULL. Since: ABI 1.0 */
#define KEEL_PROP_LINK(name, State, field, target_type, doc) \
    KEEL_PROP_FULL(name, KEEL_PROP_LINK, 0, State, field, NULL, doc, 0, 0, NULL, target_type)
/** Since: ABI 1.0 */
#define KEEL_PROP_CHARDEV(name, State, field, doc) \
    KEEL_PROP_FULL(name, KEEL_PROP_CHARDEV, 0, State, field, NULL, doc, 0, 0, NULL, NULL)
/** Since: ABI 1.0 */
#define KEEL_PROP_DRIVE(name, State, field, doc) \
    KEEL_PROP_FULL(name, KEEL_PROP_DRIVE, 0, State, field, NULL, doc, 0, 0, NULL, NULL)

KEEL_EXTERN_C_END

#endif /* KEEL_DEVICE_H */
