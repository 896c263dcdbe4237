/* SPDX-License-Identifier: MIT */
/* Block drivers: disk image formats (raw, qcow2) over the kernel's protocol layer, and drives for devices. */
#ifndef KEEL_BLOCK_H
#define KEEL_BLOCK_H

#include <keel/common.h>

KEEL_EXTERN_C_BEGIN

/*
 * The layers, bottom up:
 *   KeelBlockFile  the protocol: a host file the kernel opened (and locked)
 *                  for a format driver; read with the block_file_* services.
 *   KeelBlockNode  an open image: a format driver's state over its file, and
 *                  the node of its backing image if it has one. The kernel
 *                  opens backing chains (relative names resolved against the
 *                  image's directory, formats probed or taken from the
 *                  image, loops refused) and hands the backing node to the
 *                  driver with set_backing; the driver reads it with
 *                  block_node_preadv.
 *   KeelDrive      what a device sees (a KEEL_PROP_DRIVE property): the top
 *                  node of a -drive, read and written with the drive_*
 *                  services, sector-free byte offsets.
 * All calls are synchronous. Offsets and lengths are bytes. Every KeelError *
 * parameter of a service may be NULL for a best-effort call: the kernel then
 * logs the failure itself.
 */

/** Since: ABI 1.1 */
typedef struct KeelBlockFile KeelBlockFile;
/** Since: ABI 1.1 */
typedef struct KeelBlockNode KeelBlockNode;
/** Since: ABI 1.1 */
typedef struct KeelDrive KeelDrive;

/** One piece of a scatter-gather buffer. Since: ABI 1.1 */
typedef struct KeelIoVec {
    void *base;
    size_t len;
} KeelIoVec;

/** KeelBlockDriverOps.open flags. Since: ABI 1.1 */
enum {
    KEEL_BLOCK_RDWR = 1u << 0,       /* writes will come (else the image is never modified) */
    KEEL_BLOCK_NO_BACKING = 1u << 1, /* the backing file will not be opened (info, rebase -u) */
    KEEL_BLOCK_CHECK = 1u << 2,      /* opened to be checked: accept a corrupt image, refuse nothing
                                        that check() can report */
};

/** block_status flags. Since: ABI 1.1 */
enum {
    KEEL_BLOCK_STATUS_DATA = 1u << 0,       /* the range is stored in this node's file at *map */
    KEEL_BLOCK_STATUS_ZERO = 1u << 1,       /* the range reads as zeroes */
    KEEL_BLOCK_STATUS_ALLOCATED = 1u << 2,  /* decided by this node (else: by the backing node) */
    KEEL_BLOCK_STATUS_COMPRESSED = 1u << 3, /* stored compressed: no *map, and DATA is not set */
};

/** write_zeroes flags. Since: ABI 1.1 */
enum {
    KEEL_BLOCK_MAY_UNMAP = 1u << 0, /* the range may be deallocated if it then reads as zeroes */
};

/** check() fix flags (keel-img check -r). Since: ABI 1.1 */
enum {
    KEEL_BLOCK_FIX_LEAKS = 1u << 0,
    KEEL_BLOCK_FIX_ERRORS = 1u << 1,
};

/** A create option (-o key=value), as given. Since: ABI 1.1 */
typedef struct KeelBlockOption {
    const char *key;
    const char *value;
} KeelBlockOption;

/** A create option a driver accepts, for `keel-img create -o help`. Since: ABI 1.1 */
typedef struct KeelBlockOptionInfo {
    const char *key;  /* "cluster_size" */
    const char *type; /* "size", "bool", "string", "number" */
    const char *help; /* one line */
} KeelBlockOptionInfo;

/**
 * KeelBlockInfo: what `keel-img info` shows of an open node. Strings stay
 * owned by the driver (valid until the next call on that node).
 * @virtual_size: the disk's size as the guest sees it.
 * @cluster_size: 0 if the format has no clusters.
 * @backing_file, @backing_fmt: as written in the image (NULL: none).
 * Since: ABI 1.1
 */
typedef struct KeelBlockInfo {
    size_t size;
    uint64_t virtual_size;
    uint32_t cluster_size;
    bool dirty;
    bool corrupt;
    const char *backing_file;
    const char *backing_fmt;
} KeelBlockInfo;

/** A format-specific info item: its JSON key, its label for humans, its value. Since: ABI 1.1 */
typedef enum KeelBlockInfoKind {
    KEEL_BLOCK_INFO_BOOL = 0,
    KEEL_BLOCK_INFO_INT = 1,
    KEEL_BLOCK_INFO_STRING = 2,
} KeelBlockInfoKind;
typedef void (*KeelBlockInfoEmit)(void *ctx, const char *json_key, const char *label, KeelBlockInfoKind kind,
                                  int64_t i, const char *s);

/**
 * KeelBlockCheckResult: what check() found, as `qemu-img check` reports it
 * (-1 in the *_clusters and image_end_offset fields: not known).
 * Since: ABI 1.1
 */
typedef struct KeelBlockCheckResult {
    size_t size;
    int64_t corruptions;
    int64_t leaks;
    int64_t check_errors;
    int64_t corruptions_fixed;
    int64_t leaks_fixed;
    int64_t image_end_offset;
    int64_t total_clusters;
    int64_t allocated_clusters;
    int64_t fragmented_clusters;
    int64_t compressed_clusters;
} KeelBlockCheckResult;
/** One line about a problem check() found ("Leaked cluster 5 refcount=1 reference=0"). */
typedef void (*KeelBlockReport)(void *ctx, const char *line);

/**
 * KeelBlockSnapshot: an internal snapshot (strings valid during the callback).
 * Since: ABI 1.1
 */
typedef struct KeelBlockSnapshot {
    size_t size;
    const char *id;
    const char *name;
    uint64_t vm_state_size;
    uint32_t date_sec, date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t icount; /* UINT64_MAX: none */
} KeelBlockSnapshot;
typedef void (*KeelBlockSnapshotCallback)(void *ctx, const KeelBlockSnapshot *snap);

/**
 * KeelBlockDriverOps: a format. Every hook gets the state open() returned.
 * Hooks that fail fill @err ("what is wrong, where": "L2 table at 0x50000
 * is past the end of the file") and return KEEL_ERR; a corrupt image is an
 * error, never a crash or a write outside the file. Optional hooks may be
 * NULL (the operation is then "not supported by format X").
 *
 * @probe: how sure (0..100) the driver is that a file starting with @buf
 *   (@len bytes, at least 512 unless the file is shorter) is its format.
 *   raw answers 1: it is never chosen over another, and the kernel warns
 *   when it guessed raw, as QEMU does.
 * @create: write a new, empty image of @virtual_size into the (empty) @file,
 *   with the -o options (NULL-terminated by a NULL key); refuse unknown keys.
 * @open: read and check the image's metadata. @opts: the format's runtime
 *   options from -drive (e.g. qcow2's l2-cache-size), NULL-terminated by a
 *   NULL key, or NULL; refuse unknown keys.
 * @set_backing: the kernel opened the backing node the image names (NULL:
 *   none, or KEEL_BLOCK_NO_BACKING); unallocated ranges read from it.
 * @preadv, @pwritev: @iov covers exactly the bytes to transfer.
 * @block_status: what the range [@offset, @offset + @bytes) is, for its
 *   first *@pnum bytes (> 0) that share the same answer; *@map the offset
 *   in the file with KEEL_BLOCK_STATUS_DATA.
 * @make_empty: drop every allocation (keel-img commit empties the top).
 * @change_backing: rewrite the backing file name and format (rebase).
 * @pwritev_compressed: write whole clusters (@offset cluster-aligned, the
 *   data one cluster, or the rest of the disk) stored compressed, into
 *   unallocated space (keel-img convert -c).
 * Since: ABI 1.1
 */
typedef struct KeelBlockDriverOps {
    size_t size;
    int (*probe)(const uint8_t *buf, size_t len, const char *filename);
    int (*create)(KeelBlockFile *file, uint64_t virtual_size, const KeelBlockOption *opts, KeelError *err);
    void *(*open)(KeelBlockNode *node, KeelBlockFile *file, uint32_t flags, const KeelBlockOption *opts,
                  KeelError *err);
    void (*close)(void *state);
    void (*set_backing)(void *state, KeelBlockNode *backing);
    int (*preadv)(void *state, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt, KeelError *err);
    int (*pwritev)(void *state, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt, KeelError *err);
    int (*flush)(void *state, KeelError *err);
    int (*discard)(void *state, uint64_t offset, uint64_t bytes, KeelError *err);
    int (*write_zeroes)(void *state, uint64_t offset, uint64_t bytes, uint32_t flags, KeelError *err);
    int (*truncate)(void *state, uint64_t virtual_size, KeelError *err);
    int (*block_status)(void *state, uint64_t offset, uint64_t bytes, uint64_t *pnum, uint64_t *map,
                        uint32_t *flags, KeelError *err);
    int (*info)(void *state, KeelBlockInfo *info);
    void (*info_specific)(void *state, KeelBlockInfoEmit emit, void *ctx);
    int (*check)(void *state, uint32_t fix, KeelBlockCheckResult *result, KeelBlockReport report, void *ctx,
                 KeelError *err);
    int (*snapshot_list)(void *state, KeelBlockSnapshotCallback cb, void *ctx, KeelError *err);
    int (*snapshot_create)(void *state, const char *name, KeelError *err);
    int (*snapshot_apply)(void *state, const char *id_or_name, KeelError *err);
    int (*snapshot_delete)(void *state, const char *id_or_name, KeelError *err);
    int (*make_empty)(void *state, KeelError *err);
    int (*change_backing)(void *state, const char *backing_file, const char *backing_fmt, KeelError *err);
    int (*pwritev_compressed)(void *state, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt,
                              KeelError *err);
    void *reserved[8];
} KeelBlockDriverOps;

/**
 * KeelBlockDriverInfo: what a block module registers (register_block_driver).
 * @name: the format name of -drive format= and keel-img -f ("qcow2").
 * @create_options: what create accepts (for -o help), @n_create_options of them.
 * Since: ABI 1.1
 */
typedef struct KeelBlockDriverInfo {
    size_t size;
    const char *name;
    const char *description;
    const KeelBlockDriverOps *ops;
    const KeelBlockOptionInfo *create_options;
    size_t n_create_options;
    void *reserved[8];
} KeelBlockDriverInfo;

KEEL_EXTERN_C_END

#endif /* KEEL_BLOCK_H */
