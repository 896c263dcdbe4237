// SPDX-License-Identifier: MIT
// qcow2 refcounts: refcount blocks (cached, written through), table growth, cluster allocation and freeing.
#include "qcow2.h"

#include <algorithm>
#include <cinttypes>

namespace qcow2
{

static uint64_t rc_get(const State *s, const uint8_t *block, uint64_t j)
{
    uint32_t bits = 1u << s->refcount_order;
    if (bits >= 8) {
        uint64_t v = 0;
        for (uint32_t i = 0; i < bits / 8; i++)
            v = (v << 8) | block[j * (bits / 8) + i];
        return v;
    }
    // Narrow entries are packed from the least significant bit of each byte up.
    uint64_t bit = j * bits;
    return (block[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
}

// Store entry @j; returns the byte range touched (for the write-through).
void put_refcount(const State *s, uint8_t *block, uint64_t j, uint64_t v, uint64_t *at, uint64_t *len)
{
    uint32_t bits = 1u << s->refcount_order;
    if (bits >= 8) {
        uint32_t n = bits / 8;
        for (uint32_t i = 0; i < n; i++)
            block[j * n + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
        *at = j * n;
        *len = n;
        return;
    }
    uint64_t bit = j * bits;
    uint8_t mask = (uint8_t)(((1u << bits) - 1) << (bit % 8));
    block[bit / 8] = (uint8_t)((block[bit / 8] & ~mask) | ((v << (bit % 8)) & mask));
    *at = bit / 8;
    *len = 1;
}

static int get_rb(State *s, uint64_t offset, CachedBlock **out, KeelError *err)
{
    CachedBlock *victim = &s->rb_cache[0];
    for (CachedBlock &c : s->rb_cache) {
        if (c.offset == offset) {
            c.lru = ++s->lru_clock;
            *out = &c;
            return KEEL_OK;
        }
        if (c.lru < victim->lru) victim = &c;
    }
    uint64_t flen = file_length(s);
    if (!is_aligned(s, offset) || offset == 0 || offset > flen || flen - offset < s->cluster_size)
        return Q_FAIL(err, "%s: refcount block at 0x%" PRIx64 " is unaligned or past the end of the file",
                      fname(s), offset);
    victim->offset = 0;
    victim->data.resize(s->cluster_size);
    if (keel_services->block_file_pread(s->file, offset, victim->data.data(), s->cluster_size, err) !=
        KEEL_OK)
        return KEEL_ERR;
    victim->offset = offset;
    victim->lru = ++s->lru_clock;
    *out = victim;
    return KEEL_OK;
}

int get_refcount(State *s, uint64_t cluster, uint64_t *value, KeelError *err)
{
    uint64_t idx = cluster >> s->rb_bits;
    *value = 0;
    if (idx >= s->rt.size() || (s->rt[idx] & kRefTableOffsetMask) == 0) return KEEL_OK;
    CachedBlock *b;
    if (get_rb(s, s->rt[idx] & kRefTableOffsetMask, &b, err) != KEEL_OK) return KEEL_ERR;
    *value = rc_get(s, b->data.data(), cluster & ((1ull << s->rb_bits) - 1));
    return KEEL_OK;
}

static bool pending(const State *s, uint64_t c)
{
    return c >= s->pending_start && c < s->pending_end;
}

static uint64_t end_cluster(const State *s)
{
    uint64_t e = (file_length(s) + s->cluster_size - 1) >> s->cluster_bits;
    return e > s->pending_end ? e : s->pending_end;
}

// Grow the refcount table to hold index @need_idx. The new table and the refcount blocks that describe it go
// after the end of the file; the header switches to it only when it is complete, so a crash leaks at worst.
static int grow_table(State *s, uint64_t need_idx, KeelError *err)
{
    uint64_t cs = s->cluster_size, per_block = 1ull << s->rb_bits;
    uint64_t start = end_cluster(s);
    uint64_t entries = s->rt.size() * 2 > need_idx + 1 ? s->rt.size() * 2 : need_idx + 1;
    uint64_t tc = 0, nb = 0;
    for (;;) {
        tc = (entries * 8 + cs - 1) / cs;
        uint64_t first = start >> s->rb_bits, last = (start + tc + nb - 1) >> s->rb_bits;
        uint64_t want = 0;
        for (uint64_t j = first; j <= last; j++)
            if (j >= s->rt.size() || (s->rt[j] & kRefTableOffsetMask) == 0) want++;
        if (last + 1 > entries) {
            entries = last + 1;
            continue;
        }
        if (want == nb) break;
        nb = want;
    }
    if (tc * cs > kMaxRefTableBytes) return Q_FAIL(err, "%s: refcount table would grow too large", fname(s));
    std::vector<uint64_t> nt(tc * cs / 8, 0);
    std::copy(s->rt.begin(), s->rt.end(), nt.begin());
    uint64_t region_end = start + tc + nb;
    uint64_t next_block = start + tc;
    std::vector<uint8_t> blk(cs);
    for (uint64_t j = start >> s->rb_bits; j <= (region_end - 1) >> s->rb_bits; j++) {
        if (nt[j] & kRefTableOffsetMask) continue;
        std::fill(blk.begin(), blk.end(), 0);
        uint64_t at, len;
        for (uint64_t c = start; c < region_end; c++)
            if ((c >> s->rb_bits) == j) put_refcount(s, blk.data(), c & (per_block - 1), 1, &at, &len);
        if (keel_services->block_file_pwrite(s->file, next_block * cs, blk.data(), cs, err) != KEEL_OK)
            return KEEL_ERR;
        nt[j] = next_block * cs;
        next_block++;
    }
    std::vector<uint8_t> raw(nt.size() * 8);
    for (size_t i = 0; i < nt.size(); i++)
        put64(&raw[i * 8], nt[i]);
    if (keel_services->block_file_pwrite(s->file, start * cs, raw.data(), raw.size(), err) != KEEL_OK)
        return KEEL_ERR;
    // Clusters of the region that fall in blocks that already existed get their refcounts there.
    uint64_t old_off = s->rt_offset, old_bytes = (uint64_t)s->rt_clusters * cs;
    size_t old_n = s->rt.size();
    for (uint64_t c = start; c < region_end; c++)
        if ((c >> s->rb_bits) < old_n && (s->rt[c >> s->rb_bits] & kRefTableOffsetMask))
            if (set_refcount(s, c, 1, err) != KEEL_OK) return KEEL_ERR;
    uint8_t h[12];
    put64(h, start * cs);
    put32(h + 8, (uint32_t)tc);
    if (keel_services->block_file_pwrite(s->file, 48, h, 12, err) != KEEL_OK) return KEEL_ERR;
    s->rt = std::move(nt);
    s->rt_offset = start * cs;
    s->rt_clusters = (uint32_t)tc;
    return update_refcount(s, old_off, old_bytes, -1, err);
}

// A new refcount block for table slot @idx, placed inside the range it describes (so it counts itself).
static int alloc_block(State *s, uint64_t idx, KeelError *err)
{
    uint64_t per_block = 1ull << s->rb_bits, cs = s->cluster_size;
    uint64_t c = idx * per_block;
    while (c < (idx + 1) * per_block && (pending(s, c) || c == 0))
        c++;
    if (c >= (idx + 1) * per_block) return Q_FAIL(err, "%s: no room for a refcount block", fname(s));
    std::vector<uint8_t> blk(cs, 0);
    uint64_t at, len;
    put_refcount(s, blk.data(), c & (per_block - 1), 1, &at, &len);
    if (keel_services->block_file_pwrite(s->file, c * cs, blk.data(), cs, err) != KEEL_OK) return KEEL_ERR;
    uint8_t e[8];
    put64(e, c * cs);
    if (keel_services->block_file_pwrite(s->file, s->rt_offset + idx * 8, e, 8, err) != KEEL_OK)
        return KEEL_ERR;
    s->rt[idx] = c * cs;
    return KEEL_OK;
}

int set_refcount(State *s, uint64_t cluster, uint64_t value, KeelError *err)
{
    uint64_t idx = cluster >> s->rb_bits;
    if (idx >= s->rt.size() && grow_table(s, idx, err) != KEEL_OK) return KEEL_ERR;
    if ((s->rt[idx] & kRefTableOffsetMask) == 0) {
        if (value == 0) return KEEL_OK;
        if (alloc_block(s, idx, err) != KEEL_OK) return KEEL_ERR;
    }
    CachedBlock *b;
    if (get_rb(s, s->rt[idx] & kRefTableOffsetMask, &b, err) != KEEL_OK) return KEEL_ERR;
    uint64_t at, len;
    put_refcount(s, b->data.data(), cluster & ((1ull << s->rb_bits) - 1), value, &at, &len);
    return keel_services->block_file_pwrite(s->file, b->offset + at, b->data.data() + at, len, err);
}

static int out_of_range(State *s, uint64_t cluster, uint64_t v, int64_t delta, KeelError *err)
{
    if ((delta < 0 && v < (uint64_t)-delta) || (delta > 0 && s->max_refcount - v < (uint64_t)delta))
        return Q_FAIL(err, "%s: refcount of cluster %" PRIu64 " (%" PRIu64 ") would leave its range",
                      fname(s), cluster, v);
    return KEEL_OK;
}

// A cluster's refcount dropped to 0: it may be allocated again.
static void now_free(State *s, uint64_t cluster)
{
    if (cluster < s->free_hint) s->free_hint = cluster;
    if (s->free_byte_offset >> s->cluster_bits == cluster) s->free_byte_offset = 0;
}

int update_refcount(State *s, uint64_t offset, uint64_t bytes, int64_t delta, KeelError *err)
{
    if (bytes == 0) return KEEL_OK;
    uint64_t first = offset >> s->cluster_bits, last = (offset + bytes - 1) >> s->cluster_bits;
    uint64_t per_block = 1ull << s->rb_bits;
    for (uint64_t c = first; c <= last;) {
        uint64_t idx = c >> s->rb_bits;
        if (idx >= s->rt.size() || (s->rt[idx] & kRefTableOffsetMask) == 0) {
            // No refcount block yet: set_refcount grows the table or allocates the block, one cluster.
            uint64_t v;
            if (get_refcount(s, c, &v, err) != KEEL_OK || out_of_range(s, c, v, delta, err) != KEEL_OK ||
                set_refcount(s, c, v + delta, err) != KEEL_OK)
                return KEEL_ERR;
            if (v + delta == 0) now_free(s, c);
            c++;
            continue;
        }
        // The clusters of [c, end) share one block: change them in the cache, write the bytes once.
        uint64_t end = std::min(last + 1, (idx + 1) * per_block);
        CachedBlock *b;
        if (get_rb(s, s->rt[idx] & kRefTableOffsetMask, &b, err) != KEEL_OK) return KEEL_ERR;
        uint8_t *data = b->data.data();
        for (uint64_t j = c; j < end; j++) // all or nothing within the block
            if (out_of_range(s, j, rc_get(s, data, j & (per_block - 1)), delta, err) != KEEL_OK)
                return KEEL_ERR;
        uint64_t lo = UINT64_MAX, hi = 0;
        for (uint64_t j = c; j < end; j++) {
            uint64_t v = rc_get(s, data, j & (per_block - 1)) + delta, at, len;
            put_refcount(s, data, j & (per_block - 1), v, &at, &len);
            lo = std::min(lo, at);
            hi = std::max(hi, at + len);
            if (v == 0) now_free(s, j);
        }
        if (keel_services->block_file_pwrite(s->file, b->offset + lo, data + lo, hi - lo, err) != KEEL_OK) {
            b->offset = 0; // the cache no longer matches the file: read the block again next time
            return KEEL_ERR;
        }
        c = end;
    }
    if (delta > 0) s->pending_start = s->pending_end = 0;
    return KEEL_OK;
}

int64_t alloc_clusters(State *s, uint64_t n, KeelError *err)
{
    uint64_t end = end_cluster(s);
    uint64_t c = s->free_hint ? s->free_hint : 1, run = c, first_free = UINT64_MAX;
    while (c - run < n) {
        if (c >= end) break; // everything past the end of the file is free
        uint64_t v;
        if (get_refcount(s, c, &v, err) != KEEL_OK) return KEEL_ERR;
        if (v != 0) {
            run = c + 1;
        } else if (first_free == UINT64_MAX) {
            first_free = c;
        }
        c++;
    }
    s->free_hint = first_free == UINT64_MAX ? run : first_free;
    if (run == s->free_hint) s->free_hint = run + n;
    s->pending_start = run;
    s->pending_end = run + n;
    return (int64_t)(run << s->cluster_bits);
}

// Shrinking: a refcount block whose entries are all 0 but the one for its own cluster describes nothing in
// use; like qemu-img, take it out of the table (entries zeroed in the file first) and free its cluster.
int drop_unused_refblocks(State *s, KeelError *err)
{
    uint64_t per_block = 1ull << s->rb_bits;
    std::vector<uint64_t> dropped;
    for (uint64_t i = 1; i < s->rt.size(); i++) { // block 0 describes the header: always in use
        uint64_t off = s->rt[i] & kRefTableOffsetMask;
        if (!off) continue;
        CachedBlock *b;
        if (get_rb(s, off, &b, err) != KEEL_OK) return KEEL_ERR;
        uint64_t self = off >> s->cluster_bits;
        bool unused = true;
        for (uint64_t j = 0; j < per_block && unused; j++)
            unused = rc_get(s, b->data.data(), j) == 0 ||
                     (self >> s->rb_bits == i && (self & (per_block - 1)) == j);
        if (!unused) continue;
        uint8_t zero[8] = {};
        if (keel_services->block_file_pwrite(s->file, s->rt_offset + i * 8, zero, 8, err) != KEEL_OK)
            return KEEL_ERR;
        s->rt[i] = 0;
        b->offset = 0;
        b->lru = 0;
        if (self >> s->rb_bits != i) dropped.push_back(off); // else its refcount went with it
    }
    for (uint64_t off : dropped)
        if (free_clusters(s, off, s->cluster_size, err) != KEEL_OK) return KEEL_ERR;
    return KEEL_OK;
}

// The last cluster of the file with a refcount (the header's at least).
int64_t last_used_cluster(State *s, KeelError *err)
{
    for (uint64_t c = (file_length(s) + s->cluster_size - 1) >> s->cluster_bits; c-- > 0;) {
        uint64_t idx = c >> s->rb_bits;
        if (idx >= s->rt.size() || (s->rt[idx] & kRefTableOffsetMask) == 0) {
            c &= ~((1ull << s->rb_bits) - 1); // a whole block's range with no block: all free
            continue;
        }
        uint64_t v;
        if (get_refcount(s, c, &v, err) != KEEL_OK) return -1;
        if (v) return (int64_t)c;
    }
    return 0;
}

int free_clusters(State *s, uint64_t offset, uint64_t bytes, KeelError *err)
{
    if (update_refcount(s, offset, bytes, -1, err) != KEEL_OK) return KEEL_ERR;
    // Give whole freed clusters back to the host file system.
    uint64_t first = offset >> s->cluster_bits, last = (offset + bytes - 1) >> s->cluster_bits;
    for (uint64_t c = first; c <= last; c++) {
        uint64_t v;
        if (get_refcount(s, c, &v, err) != KEEL_OK) return KEEL_ERR;
        if (v == 0)
            keel_services->block_file_discard(s->file, c << s->cluster_bits, s->cluster_size, nullptr);
    }
    return KEEL_OK;
}

} // namespace qcow2
