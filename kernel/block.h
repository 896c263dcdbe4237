// SPDX-License-Identifier: MIT
// The block layer: image files (the protocol), open image nodes with their backing chains, drives for
// devices.
#pragma once

#include <keel/services.h>

namespace keel
{

// The block_* and drive_* services of KeelServices.
int block_file_pread(KeelBlockFile *f, uint64_t offset, void *buf, size_t len, KeelError *err);
int block_file_pwrite(KeelBlockFile *f, uint64_t offset, const void *buf, size_t len, KeelError *err);
int block_file_flush(KeelBlockFile *f, KeelError *err);
uint64_t block_file_length(KeelBlockFile *f);
int block_file_truncate(KeelBlockFile *f, uint64_t length, KeelError *err);
int block_file_discard(KeelBlockFile *f, uint64_t offset, uint64_t len, KeelError *err);
const char *block_file_name(KeelBlockFile *f);
int block_node_preadv(KeelBlockNode *node, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt,
                      KeelError *err);
uint64_t block_node_length(KeelBlockNode *node);
int drive_preadv(KeelDrive *d, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt, KeelError *err);
int drive_pwritev(KeelDrive *d, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt, KeelError *err);
int drive_flush(KeelDrive *d, KeelError *err);
int drive_discard(KeelDrive *d, uint64_t offset, uint64_t bytes, KeelError *err);
int drive_write_zeroes(KeelDrive *d, uint64_t offset, uint64_t bytes, uint32_t flags, KeelError *err);
uint64_t drive_length(KeelDrive *d);
bool drive_read_only(KeelDrive *d);
const char *drive_id(KeelDrive *d);

} // namespace keel
