// SPDX-License-Identifier: MIT
// The block layer. Placeholder until the layer lands: every service says it is not there.
#include "block.h"

#include "error.h"

namespace keel
{

namespace
{

int none(KeelError *err)
{
    if (err) {
        err->is_set = true;
        err->message = "this keel has no block layer yet";
    }
    return KEEL_ERR;
}

} // namespace

int block_file_pread(KeelBlockFile *, uint64_t, void *, size_t, KeelError *err)
{
    return none(err);
}
int block_file_pwrite(KeelBlockFile *, uint64_t, const void *, size_t, KeelError *err)
{
    return none(err);
}
int block_file_flush(KeelBlockFile *, KeelError *err)
{
    return none(err);
}
uint64_t block_file_length(KeelBlockFile *)
{
    return 0;
}
int block_file_truncate(KeelBlockFile *, uint64_t, KeelError *err)
{
    return none(err);
}
int block_file_discard(KeelBlockFile *, uint64_t, uint64_t, KeelError *err)
{
    return none(err);
}
const char *block_file_name(KeelBlockFile *)
{
    return "";
}
int block_node_preadv(KeelBlockNode *, uint64_t, const KeelIoVec *, unsigned, KeelError *err)
{
    return none(err);
}
uint64_t block_node_length(KeelBlockNode *)
{
    return 0;
}
int drive_preadv(KeelDrive *, uint64_t, const KeelIoVec *, unsigned, KeelError *err)
{
    return none(err);
}
int drive_pwritev(KeelDrive *, uint64_t, const KeelIoVec *, unsigned, KeelError *err)
{
    return none(err);
}
int drive_flush(KeelDrive *, KeelError *err)
{
    return none(err);
}
int drive_discard(KeelDrive *, uint64_t, uint64_t, KeelError *err)
{
    return none(err);
}
int drive_write_zeroes(KeelDrive *, uint64_t, uint64_t, uint32_t, KeelError *err)
{
    return none(err);
}
uint64_t drive_length(KeelDrive *)
{
    return 0;
}
bool drive_read_only(KeelDrive *)
{
    return true;
}
const char *drive_id(KeelDrive *)
{
    return "";
}

} // namespace keel
