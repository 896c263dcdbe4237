/* SPDX-License-Identifier: MIT */
/* Basic types, ABI version and portability macros shared by every keel public header. */
#ifndef KEEL_COMMON_H
#define KEEL_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * KEEL_ABI_MAJOR / KEEL_ABI_MINOR: the module ABI this header describes.
 * A module loads iff its major equals the kernel's and its minor is not newer.
 * Additive changes bump the minor; removals or reorders bump the major.
 * Since: ABI 1.0
 */
#define KEEL_ABI_MAJOR 1
#define KEEL_ABI_MINOR 4

#ifdef __cplusplus
#define KEEL_EXTERN_C_BEGIN extern "C" {
#define KEEL_EXTERN_C_END }
#define KEEL_EXTERN_C extern "C"
#else
#define KEEL_EXTERN_C_BEGIN
#define KEEL_EXTERN_C_END
#define KEEL_EXTERN_C
#endif

#if defined(__GNUC__) || defined(__clang__)
#define KEEL_EXPORT __attribute__((visibility("default")))
#define KEEL_HIDDEN __attribute__((visibility("hidden")))
#define KEEL_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define KEEL_EXPORT
#define KEEL_HIDDEN
#define KEEL_PRINTF(fmt, args)
#endif

/** Number of elements of a C array. Since: ABI 1.0 */
#define KEEL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/** Whether the table @p (whose first member is `size_t size`) of type @type is large enough to have
 * @field: how the kernel reads hooks added at the end of a table by a later minor. Since: ABI 1.4 */
#define KEEL_HAS_FIELD(p, type, field) ((p)->size >= offsetof(type, field) + sizeof(((type *)0)->field))

KEEL_EXTERN_C_BEGIN

/**
 * KeelObject: an instance in the kernel's object tree (a device, a CPU, the
 * machine). Opaque to modules; every service that acts on an instance takes one.
 * Since: ABI 1.0
 */
typedef struct KeelObject KeelObject;

/**
 * KeelError: where a failing operation describes what went wrong. Owned by
 * the kernel; modules fill it with KeelServices.error_set() and return
 * KEEL_ERR. Errors never cross the ABI as C++ exceptions or abort().
 * Since: ABI 1.0
 */
typedef struct KeelError KeelError;

/** Status values returned by fallible operations. Since: ABI 1.0 */
enum {
    KEEL_OK = 0,
    KEEL_ERR = -1,
};

KEEL_EXTERN_C_END

#endif /* KEEL_COMMON_H */
