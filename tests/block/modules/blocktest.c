// SPDX-License-Identifier: MIT
// A test format for the block layer: "test-backed" names a backing file.
#include <stdlib.h>
#include <string.h>

#include <keel/module.h>

// test-backed: "KEELTEST" then the backing file's name (NUL-terminated) in
// the first 512 bytes; a 1 MiB disk that reads through to its backing file.
typedef struct Backed {
    char backing[504];
    KeelBlockNode *backing_node;
} Backed;

static const char kMagic[8] = "KEELTEST";

static int backed_probe(const uint8_t *buf, size_t len, const char *filename)
{
    (void)filename;
    return len >= 8 && memcmp(buf, kMagic, 8) == 0 ? 100 : 0;
}

static void *backed_open(KeelBlockNode *node, KeelBlockFile *file, uint32_t flags,
                         const KeelBlockOption *opts, KeelError *err)
{
    (void)node;
    (void)flags;
    (void)opts;
    uint8_t head[512];
    if (keel_services->block_file_pread(file, 0, head, sizeof head, err) != KEEL_OK) return NULL;
    Backed *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    memcpy(b->backing, head + 8, sizeof b->backing - 1);
    return b;
}

static void backed_close(void *state)
{
    free(state);
}

static void backed_set_backing(void *state, KeelBlockNode *backing)
{
    ((Backed *)state)->backing_node = backing;
}

static int backed_preadv(void *state, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt, KeelError *err)
{
    Backed *b = state;
    if (b->backing_node) return keel_services->block_node_preadv(b->backing_node, offset, iov, iovcnt, err);
    for (unsigned i = 0; i < iovcnt; ++i)
        memset(iov[i].base, 0, iov[i].len);
    return KEEL_OK;
}

static int backed_info(void *state, KeelBlockInfo *info)
{
    Backed *b = state;
    info->virtual_size = 1 << 20;
    info->backing_file = b->backing[0] ? b->backing : NULL;
    info->backing_fmt = NULL;
    return KEEL_OK;
}

static const KeelBlockDriverOps backed_ops = {
    .size = sizeof(KeelBlockDriverOps),
    .probe = backed_probe,
    .open = backed_open,
    .close = backed_close,
    .set_backing = backed_set_backing,
    .preadv = backed_preadv,
    .info = backed_info,
};

static const KeelBlockDriverInfo backed_driver = {
    .size = sizeof(KeelBlockDriverInfo),
    .name = "test-backed",
    .description = "test format with a backing file",
    .ops = &backed_ops,
};

static int blocktest_init(KeelRegistrar *reg, KeelError *err)
{
    return reg->register_block_driver(reg, &backed_driver, err);
}

KEEL_MODULE("blocktest", KEEL_MODULE_BLOCK, "1.0.0", "block layer test formats", "MIT", blocktest_init)
