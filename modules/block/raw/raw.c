// SPDX-License-Identifier: MIT
// The raw image format: the guest's disk byte for byte, with holes for discarded ranges.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <keel/module.h>

typedef struct Raw {
    KeelBlockFile *file;
    bool writable;
} Raw;

static int raw_error(KeelError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int raw_error(KeelError *err, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    keel_services->error_set(err, "%s", buf);
    return KEEL_ERR;
}

static uint64_t raw_size(Raw *r)
{
    return keel_services->block_file_length(r->file);
}

// Whether [offset, offset + bytes) lies inside the disk.
static int raw_check_range(Raw *r, uint64_t offset, uint64_t bytes, KeelError *err)
{
    uint64_t size = raw_size(r);
    if (offset > size || bytes > size - offset)
        return raw_error(err,
                         "%s: access of %" PRIu64 " bytes at offset %" PRIu64
                         " is past the end of the %" PRIu64 "-byte image",
                         keel_services->block_file_name(r->file), bytes, offset, size);
    return KEEL_OK;
}

static int raw_probe(const uint8_t *buf, size_t len, const char *filename)
{
    (void)buf;
    (void)len;
    (void)filename;
    return 1; // anything is raw, but anything else wins
}

static int raw_create(KeelBlockFile *file, uint64_t virtual_size, const KeelBlockOption *opts, KeelError *err)
{
    for (const KeelBlockOption *o = opts; o && o->key; ++o) {
        if (strcmp(o->key, "preallocation") == 0) {
            if (strcmp(o->value ? o->value : "", "off") != 0)
                return raw_error(err, "Unsupported preallocation mode '%s' (only 'off' is supported)",
                                 o->value ? o->value : "");
        } else if (strcmp(o->key, "size") != 0) {
            return raw_error(err, "Invalid parameter '%s' (raw accepts size and preallocation)", o->key);
        }
    }
    return keel_services->block_file_truncate(file, virtual_size, err);
}

static void *raw_open(KeelBlockNode *node, KeelBlockFile *file, uint32_t flags, const KeelBlockOption *opts,
                      KeelError *err)
{
    (void)node;
    if (opts && opts->key) {
        raw_error(err, "Invalid parameter '%s' (raw has no runtime options)", opts->key);
        return NULL;
    }
    Raw *r = calloc(1, sizeof *r);
    if (!r) {
        raw_error(err, "out of memory");
        return NULL;
    }
    r->file = file;
    r->writable = (flags & KEEL_BLOCK_RDWR) != 0;
    return r;
}

static void raw_close(void *state)
{
    free(state);
}

// The iovecs one after another from @offset, read or written through the file layer.
static int raw_io(Raw *r, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt, bool write, KeelError *err)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < iovcnt; ++i)
        total += iov[i].len;
    if (raw_check_range(r, offset, total, err) != KEEL_OK) return KEEL_ERR;
    for (unsigned i = 0; i < iovcnt; ++i) {
        int rc = KEEL_OK;
        if (iov[i].len && write)
            rc = keel_services->block_file_pwrite(r->file, offset, iov[i].base, iov[i].len, err);
        else if (iov[i].len)
            rc = keel_services->block_file_pread(r->file, offset, iov[i].base, iov[i].len, err);
        if (rc != KEEL_OK) return KEEL_ERR;
        offset += iov[i].len;
    }
    return KEEL_OK;
}

static int raw_preadv(void *state, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt, KeelError *err)
{
    return raw_io(state, offset, iov, iovcnt, false, err);
}

static int raw_pwritev(void *state, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt, KeelError *err)
{
    return raw_io(state, offset, iov, iovcnt, true, err);
}

static int raw_flush(void *state, KeelError *err)
{
    Raw *r = state;
    return keel_services->block_file_flush(r->file, err);
}

static int raw_discard(void *state, uint64_t offset, uint64_t bytes, KeelError *err)
{
    Raw *r = state;
    if (raw_check_range(r, offset, bytes, err) != KEEL_OK) return KEEL_ERR;
    return keel_services->block_file_discard(r->file, offset, bytes, err);
}

static int raw_write_zeroes(void *state, uint64_t offset, uint64_t bytes, uint32_t flags, KeelError *err)
{
    (void)flags; // the file layer's discard already guarantees zeroes, with or without MAY_UNMAP
    Raw *r = state;
    if (raw_check_range(r, offset, bytes, err) != KEEL_OK) return KEEL_ERR;
    return keel_services->block_file_discard(r->file, offset, bytes, err);
}

static int raw_truncate(void *state, uint64_t virtual_size, KeelError *err)
{
    Raw *r = state;
    return keel_services->block_file_truncate(r->file, virtual_size, err);
}

static int raw_block_status(void *state, uint64_t offset, uint64_t bytes, uint64_t *pnum, uint64_t *map,
                            uint32_t *flags, KeelError *err)
{
    Raw *r = state;
    if (bytes == 0 || raw_check_range(r, offset, bytes, err) != KEEL_OK)
        return bytes ? KEEL_ERR : raw_error(err, "block_status of 0 bytes");
    bool hole;
    if (keel_services->block_file_status(r->file, offset, bytes, pnum, &hole, err) != KEEL_OK)
        return KEEL_ERR;
    *map = offset;
    *flags = KEEL_BLOCK_STATUS_ALLOCATED | (hole ? KEEL_BLOCK_STATUS_ZERO : KEEL_BLOCK_STATUS_DATA);
    return KEEL_OK;
}

static int raw_info(void *state, KeelBlockInfo *info)
{
    Raw *r = state;
    info->virtual_size = raw_size(r);
    info->cluster_size = 0;
    info->dirty = false;
    info->corrupt = false;
    info->backing_file = NULL;
    info->backing_fmt = NULL;
    return KEEL_OK;
}

static const KeelBlockDriverOps raw_ops = {
    .size = sizeof(KeelBlockDriverOps),
    .probe = raw_probe,
    .create = raw_create,
    .open = raw_open,
    .close = raw_close,
    .preadv = raw_preadv,
    .pwritev = raw_pwritev,
    .flush = raw_flush,
    .discard = raw_discard,
    .write_zeroes = raw_write_zeroes,
    .truncate = raw_truncate,
    .block_status = raw_block_status,
    .info = raw_info,
};

static const KeelBlockOptionInfo raw_options[] = {
    {"size", "size", "Virtual disk size"},
    {"preallocation", "string", "Preallocation mode (allowed values: off)"},
};

static const KeelBlockDriverInfo raw_driver = {
    .size = sizeof(KeelBlockDriverInfo),
    .name = "raw",
    .description = "raw disk image: the disk's bytes as they are",
    .ops = &raw_ops,
    .create_options = raw_options,
    .n_create_options = sizeof raw_options / sizeof raw_options[0],
};

static int raw_init(KeelRegistrar *reg, KeelError *err)
{
    return reg->register_block_driver(reg, &raw_driver, err);
}

KEEL_MODULE("raw", KEEL_MODULE_BLOCK, "1.0.0", "raw disk image format", "MIT", raw_init)
