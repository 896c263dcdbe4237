/* SPDX-License-Identifier: MIT */
/* Memory-mapped I/O: the ops table a device gives for each register window, and DMA results. */
#ifndef KEEL_MEMORY_H
#define KEEL_MEMORY_H

#include <keel/common.h>

KEEL_EXTERN_C_BEGIN

/**
 * Result of a bus transaction. Anything but KEEL_MEM_OK is a bus error
 * that the initiator (a CPU, a DMA engine) turns into an access fault.
 * Since: ABI 1.0
 */
typedef enum KeelMemResult {
    KEEL_MEM_OK = 0,
    KEEL_MEM_DECODE_ERROR = 1, /* nothing is mapped at that address */
    KEEL_MEM_ACCESS_ERROR = 2, /* mapped, but this width/alignment/direction is refused */
    KEEL_MEM_DEVICE_ERROR = 3, /* the device reported an error */
} KeelMemResult;

/** Byte order of a device's registers. Since: ABI 1.0 */
typedef enum KeelEndianness {
    KEEL_ENDIAN_LITTLE = 0,
    KEEL_ENDIAN_BIG = 1,
} KeelEndianness;

/**
 * KeelMemoryOps: how the bus talks to one MMIO window of a device.
 *
 * @size: sizeof(KeelMemoryOps) as the module was compiled; lets the table grow.
 * @read: read @width bytes (1, 2, 4 or 8) at @offset into *@value.
 * @write: write @width bytes of @value at @offset.
 * @valid_min, @valid_max: access widths the bus accepts (0 means 1 and 8).
 *   Accesses outside this range fail with KEEL_MEM_ACCESS_ERROR before the
 *   device sees them.
 * @impl_min, @impl_max: widths the callbacks handle (0 means the valid range).
 *   The kernel splits wider and widens narrower accesses to fit.
 * @unaligned_ok: if false, accesses not aligned to their width are refused.
 * @endianness: byte order of the registers; the kernel converts.
 *
 * Callbacks run with the big lock held and must not block.
 * Since: ABI 1.0
 */
typedef struct KeelMemoryOps {
    size_t size;
    KeelMemResult (*read)(void *opaque, uint64_t offset, unsigned width, uint64_t *value);
    KeelMemResult (*write)(void *opaque, uint64_t offset, unsigned width, uint64_t value);
    uint8_t valid_min;
    uint8_t valid_max;
    uint8_t impl_min;
    uint8_t impl_max;
    bool unaligned_ok;
    KeelEndianness endianness;
    void *reserved[4];
} KeelMemoryOps;

KEEL_EXTERN_C_END

#endif /* KEEL_MEMORY_H */
