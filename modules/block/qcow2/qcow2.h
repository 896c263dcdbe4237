// SPDX-License-Identifier: MIT
// qcow2 driver state and the helpers shared by its parts (header, clusters, refcounts, check).
#pragma once

#include <keel/block.h>
#include <keel/module.h>
#include <keel/services.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace qcow2
{

constexpr uint32_t kMagic = 0x514649fb; // "QFI\xfb"
constexpr uint32_t kHeaderV2Length = 72;
constexpr uint32_t kHeaderV3Length = 104;

// Incompatible / compatible / autoclear feature bits of the v3 header.
constexpr uint64_t kIncompatDirty = 1ull << 0;
constexpr uint64_t kIncompatCorrupt = 1ull << 1;
constexpr uint64_t kIncompatDataFile = 1ull << 2;
constexpr uint64_t kIncompatCompression = 1ull << 3;
constexpr uint64_t kIncompatExtL2 = 1ull << 4;
constexpr uint64_t kCompatLazyRefcounts = 1ull << 0;

// Header extension types.
constexpr uint32_t kExtEnd = 0;
constexpr uint32_t kExtBackingFormat = 0xe2792aca;
constexpr uint32_t kExtFeatureTable = 0x6803f857;

// Table entry bits.
constexpr uint64_t kOflagCopied = 1ull << 63;
constexpr uint64_t kOflagCompressed = 1ull << 62;
constexpr uint64_t kOflagZero = 1ull << 0;
constexpr uint64_t kOffsetMask = 0x00fffffffffffe00ull; // bits 9..55
constexpr uint64_t kRefTableOffsetMask = 0xfffffffffffffe00ull;

constexpr uint64_t kMaxL1Entries = 32 * 1024 * 1024; // 256 MiB of L1: far more than any sane image
constexpr uint64_t kMaxRefTableBytes = 8ull * 1024 * 1024 * 8;

inline uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}
inline uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
inline uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}
inline void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}
inline void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

struct Extension {
    uint32_t type;
    std::vector<uint8_t> data;
};

struct Feature {
    uint8_t type, bit;
    std::string name;
};

struct Snapshot {
    uint64_t l1_offset;
    uint32_t l1_size;
    std::string id, name;
    uint32_t date_sec, date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t vm_state_size;
    uint64_t disk_size;
    uint64_t icount;
    uint32_t extra_size = 0;            // extra data bytes in the entry as read (0: a new entry)
    std::vector<uint8_t> extra_unknown; // extra data past the fields we know, kept as read
};

struct CachedTable {
    uint64_t offset = 0; // 0: slot empty
    uint64_t lru = 0;
    std::vector<uint64_t> entries;
};

struct CachedBlock {
    uint64_t offset = 0;
    uint64_t lru = 0;
    std::vector<uint8_t> data;
};

// Fill @err and evaluate to KEEL_ERR.
#define Q_FAIL(err, ...) (keel_services->error_set((err), __VA_ARGS__), KEEL_ERR)

struct State {
    KeelBlockNode *node = nullptr;
    KeelBlockFile *file = nullptr;
    KeelBlockNode *backing = nullptr;
    uint32_t flags = 0;

    // The header as read (and as rewritten).
    uint32_t version = 3;
    uint64_t backing_file_offset = 0;
    uint32_t backing_file_size = 0;
    uint32_t cluster_bits = 16;
    uint64_t size = 0;
    uint32_t l1_size = 0;
    uint64_t l1_offset = 0;
    uint64_t rt_offset = 0;
    uint32_t rt_clusters = 0;
    uint32_t nb_snapshots = 0;
    uint64_t snapshots_offset = 0;
    uint64_t incompat = 0, compat = 0, autoclear = 0;
    uint32_t refcount_order = 4;
    uint32_t header_length = kHeaderV2Length;
    uint8_t compression_type = 0;
    std::string backing_file, backing_fmt;
    std::vector<uint8_t> raw_header;   // header_length bytes: fields we do not know are kept
    std::vector<Extension> extensions; // every extension but the backing format, in file order
    std::vector<Feature> features;

    // Derived.
    uint64_t cluster_size = 0;
    uint32_t l2_bits = 0; // entries per L2 table = 1 << l2_bits
    uint32_t rb_bits = 0; // entries per refcount block = 1 << rb_bits
    uint64_t max_refcount = 0;

    std::vector<uint64_t> l1;
    std::vector<uint64_t> rt;
    std::vector<Snapshot> snapshots;
    uint64_t snapshots_bytes = 0; // the table's size in the file

    // Write-through caches: the file always holds what they hold.
    std::vector<CachedTable> l2_cache;
    uint64_t l2_cache_bytes = 0;       // -drive l2-cache-size (0: 16 tables)
    std::vector<CachedBlock> rb_cache; // refcount blocks, raw bytes
    uint64_t lru_clock = 0;

    // The last decompressed cluster (compressed images are read sequentially).
    uint64_t zcache_entry = 0;
    std::vector<uint8_t> zcache;

    // Compressed data: where the next one is packed (0: at the start of a new cluster).
    uint64_t free_byte_offset = 0;
    uint64_t free_hint = 0;                          // no free cluster below this index
    uint64_t pending_start = 0, pending_end = 0;     // clusters being allocated (not yet refcounted)
    std::string info_backing_file, info_backing_fmt; // for info()
};

inline bool is_aligned(const State *s, uint64_t off)
{
    return (off & (s->cluster_size - 1)) == 0;
}
inline uint64_t file_length(const State *s)
{
    return keel_services->block_file_length(s->file);
}
const char *fname(const State *s);
void setup_derived(State *s);

// qcow2_header.cpp
void *open(KeelBlockNode *node, KeelBlockFile *file, uint32_t flags, const KeelBlockOption *opts,
           KeelError *err);
void close(void *state);
int create(KeelBlockFile *file, uint64_t virtual_size, const KeelBlockOption *opts, KeelError *err);
int probe(const uint8_t *buf, size_t len, const char *filename);
int info(void *state, KeelBlockInfo *info);
void info_specific(void *state, KeelBlockInfoEmit emit, void *ctx);
int change_backing(void *state, const char *backing_file, const char *backing_fmt, KeelError *err);
int write_header(State *s, KeelError *err);

// qcow2_cluster.cpp
int get_l2(State *s, uint64_t l2_offset, CachedTable **out, KeelError *err);
int preadv(void *state, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt, KeelError *err);
int pwritev(void *state, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt, KeelError *err);
int discard(void *state, uint64_t offset, uint64_t bytes, KeelError *err);
int write_zeroes(void *state, uint64_t offset, uint64_t bytes, uint32_t flags, KeelError *err);
int truncate(void *state, uint64_t virtual_size, KeelError *err);
int block_status(void *state, uint64_t offset, uint64_t bytes, uint64_t *pnum, uint64_t *map, uint32_t *flags,
                 KeelError *err);
int flush(void *state, KeelError *err);
int make_empty(void *state, KeelError *err);
void compressed_range(const State *s, uint64_t entry, uint64_t *host, uint64_t *len);
int grow_l1(State *s, uint64_t min_size, KeelError *err);
int writable_l2(State *s, uint64_t offset, CachedTable **out, KeelError *err);
int set_l2_entries(State *s, CachedTable *t, uint64_t idx, const uint64_t *values, uint64_t n,
                   KeelError *err);
int check_access(State *s, uint64_t offset, uint64_t n, KeelError *err); // writable, inside the disk

// qcow2_compress.cpp
int pwritev_compressed(void *state, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt, KeelError *err);

// qcow2_refcount.cpp
int get_refcount(State *s, uint64_t cluster, uint64_t *value, KeelError *err);
int set_refcount(State *s, uint64_t cluster, uint64_t value, KeelError *err);
// Store entry @j of refcount block @block; *at, *len: the bytes touched.
void put_refcount(const State *s, uint8_t *block, uint64_t j, uint64_t v, uint64_t *at, uint64_t *len);
int update_refcount(State *s, uint64_t offset, uint64_t bytes, int64_t delta, KeelError *err);
int64_t alloc_clusters(State *s, uint64_t n, KeelError *err); // byte offset, refcount still 0
int free_clusters(State *s, uint64_t offset, uint64_t bytes, KeelError *err);
int drop_unused_refblocks(State *s, KeelError *err);
int64_t last_used_cluster(State *s, KeelError *err); // -1: error

// qcow2_check.cpp
int check(void *state, uint32_t fix, KeelBlockCheckResult *result, KeelBlockReport report, void *ctx,
          KeelError *err);

// qcow2_snapshot.cpp
int read_snapshots(State *s, KeelError *err);
int snapshot_list(void *state, KeelBlockSnapshotCallback cb, void *ctx, KeelError *err);
int snapshot_create(void *state, const char *name, KeelError *err);
int snapshot_apply(void *state, const char *id_or_name, KeelError *err);
int snapshot_delete(void *state, const char *id_or_name, KeelError *err);

} // namespace qcow2
