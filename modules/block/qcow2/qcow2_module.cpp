// SPDX-License-Identifier: MIT
// The qcow2 module: registers the qcow2 format with the kernel's block layer.
#include "qcow2.h"

namespace qcow2
{
namespace
{

void set_backing(void *state, KeelBlockNode *backing)
{
    static_cast<State *>(state)->backing = backing;
}

const KeelBlockDriverOps ops = {
    sizeof(KeelBlockDriverOps),
    probe,
    create,
    open,
    close,
    set_backing,
    preadv,
    pwritev,
    flush,
    discard,
    write_zeroes,
    truncate,
    block_status,
    info,
    info_specific,
    check,
    snapshot_list,
    snapshot_create,
    snapshot_apply,
    snapshot_delete,
    make_empty,
    change_backing,
    pwritev_compressed,
    {},
};

const KeelBlockOptionInfo create_options[] = {
    {"cluster_size", "size", "qcow2 cluster size (512 to 2M, a power of two; default 64k)"},
    {"refcount_bits", "number",
     "width of a reference count entry in bits (1 to 64, a power of two; default 16)"},
    {"backing_file", "string", "file name of a base image"},
    {"backing_fmt", "string", "image format of the base image"},
    {"lazy_refcounts", "bool", "postpone refcount updates (only off is supported)"},
    {"compat", "string", "compatibility level (only 1.1)"},
    {"compression_type", "string", "compression method for compressed clusters (only zlib)"},
    {"preallocation", "string", "preallocation mode (only off)"},
};

const KeelBlockDriverInfo driver = {
    sizeof(KeelBlockDriverInfo),
    "qcow2",
    "QEMU copy-on-write image, version 2 and 3",
    &ops,
    create_options,
    KEEL_ARRAY_SIZE(create_options),
    {},
};

int init(KeelRegistrar *reg, KeelError *err)
{
    return reg->register_block_driver(reg, &driver, err);
}

} // namespace
} // namespace qcow2

KEEL_MODULE("qcow2", KEEL_MODULE_BLOCK, "0.1.0", "qcow2 disk image format", "MIT", qcow2::init)
