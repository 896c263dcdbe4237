// SPDX-License-Identifier: MIT
// qcow2 clusters: L1/L2 lookup with an LRU L2 cache, reads (backing, zero, compressed), allocating writes.
#include "qcow2.h"

#include <zlib.h>

#include <algorithm>
#include <cinttypes>

namespace qcow2
{

int get_l2(State *s, uint64_t l2_offset, CachedTable **out, KeelError *err)
{
    CachedTable *victim = &s->l2_cache[0];
    for (CachedTable &c : s->l2_cache) {
        if (c.offset == l2_offset) {
            c.lru = ++s->lru_clock;
            *out = &c;
            return KEEL_OK;
        }
        if (c.lru < victim->lru) victim = &c;
    }
    uint64_t flen = file_length(s);
    if (!is_aligned(s, l2_offset) || l2_offset > flen || flen - l2_offset < s->cluster_size)
        return Q_FAIL(err, "%s: L2 table at 0x%" PRIx64 " is unaligned or past the end of the file", fname(s),
                      l2_offset);
    std::vector<uint8_t> raw(s->cluster_size);
    victim->offset = 0;
    if (keel_services->block_file_pread(s->file, l2_offset, raw.data(), raw.size(), err) != KEEL_OK)
        return KEEL_ERR;
    victim->entries.resize(s->cluster_size / 8);
    for (size_t i = 0; i < victim->entries.size(); i++)
        victim->entries[i] = be64(&raw[i * 8]);
    victim->offset = l2_offset;
    victim->lru = ++s->lru_clock;
    *out = victim;
    return KEEL_OK;
}

// Set @n entries from @idx on, written through with one write.
int set_l2_entries(State *s, CachedTable *t, uint64_t idx, const uint64_t *values, uint64_t n, KeelError *err)
{
    std::vector<uint8_t> b(n * 8);
    for (uint64_t i = 0; i < n; i++) {
        put64(&b[i * 8], values[i]);
        t->entries[idx + i] = values[i];
    }
    if (keel_services->block_file_pwrite(s->file, t->offset + idx * 8, b.data(), b.size(), err) == KEEL_OK)
        return KEEL_OK;
    t->offset = 0; // the cache no longer matches the file: read the table again next time
    t->lru = 0;
    return KEEL_ERR;
}

static int set_l2_entry(State *s, CachedTable *t, uint64_t idx, uint64_t value, KeelError *err)
{
    return set_l2_entries(s, t, idx, &value, 1, err);
}

static int set_l1_entry(State *s, uint64_t idx, uint64_t value, KeelError *err)
{
    uint8_t b[8];
    put64(b, value);
    s->l1[idx] = value;
    return keel_services->block_file_pwrite(s->file, s->l1_offset + idx * 8, b, 8, err);
}

// The L2 entry that maps guest @offset (0: none).
static int lookup(State *s, uint64_t offset, uint64_t *entry, KeelError *err)
{
    uint64_t l1i = offset >> (s->cluster_bits + s->l2_bits);
    *entry = 0;
    if (l1i >= s->l1.size() || (s->l1[l1i] & kOffsetMask) == 0) return KEEL_OK;
    CachedTable *t;
    if (get_l2(s, s->l1[l1i] & kOffsetMask, &t, err) != KEEL_OK) return KEEL_ERR;
    *entry = t->entries[(offset >> s->cluster_bits) & ((1ull << s->l2_bits) - 1)];
    return KEEL_OK;
}

void compressed_range(const State *s, uint64_t entry, uint64_t *host, uint64_t *len)
{
    uint32_t x = 62 - (s->cluster_bits - 8);
    *host = entry & ((1ull << x) - 1);
    uint64_t sectors = ((entry & ~kOflagCopied & ~kOflagCompressed) >> x) + 1;
    *len = sectors * 512 - (*host & 511);
}

static int decompress(State *s, uint64_t entry, KeelError *err)
{
    if (s->zcache_entry == entry && !s->zcache.empty()) return KEEL_OK;
    uint64_t host, len, flen = file_length(s);
    compressed_range(s, entry, &host, &len);
    if (host >= flen)
        return Q_FAIL(err, "%s: compressed cluster at 0x%" PRIx64 " is past the end of the file", fname(s),
                      host);
    len = std::min(len, flen - host); // the last sector of the data may be cut short by the end of the file
    std::vector<uint8_t> in(len);
    if (keel_services->block_file_pread(s->file, host, in.data(), len, err) != KEEL_OK) return KEEL_ERR;
    s->zcache_entry = 0;
    s->zcache.resize(s->cluster_size);
    z_stream z{};
    if (inflateInit2(&z, -15) != Z_OK) return Q_FAIL(err, "%s: zlib initialisation failed", fname(s));
    z.next_in = in.data();
    z.avail_in = (uInt)len;
    z.next_out = s->zcache.data();
    z.avail_out = (uInt)s->cluster_size;
    int r = inflate(&z, Z_FINISH);
    bool ok = (r == Z_STREAM_END || r == Z_BUF_ERROR || r == Z_OK) && z.avail_out == 0;
    inflateEnd(&z);
    if (!ok)
        return Q_FAIL(err, "%s: compressed cluster at 0x%" PRIx64 " does not decompress to a cluster",
                      fname(s), host);
    s->zcache_entry = entry;
    return KEEL_OK;
}

static int read_backing(State *s, uint64_t offset, uint8_t *buf, uint64_t n, KeelError *err)
{
    uint64_t blen = s->backing ? keel_services->block_node_length(s->backing) : 0;
    uint64_t avail = offset < blen ? std::min(n, blen - offset) : 0;
    if (avail) {
        KeelIoVec v{buf, avail};
        if (keel_services->block_node_preadv(s->backing, offset, &v, 1, err) != KEEL_OK) return KEEL_ERR;
    }
    memset(buf + avail, 0, n - avail);
    return KEEL_OK;
}

static int check_data_cluster(State *s, uint64_t host, uint64_t end, KeelError *err)
{
    uint64_t flen = file_length(s);
    if (!is_aligned(s, host))
        return Q_FAIL(err, "%s: data cluster offset 0x%" PRIx64 " is unaligned", fname(s), host);
    if (end > flen)
        return Q_FAIL(err,
                      "%s: data cluster at 0x%" PRIx64 " is past the end of the file (%" PRIu64 " bytes)",
                      fname(s), host, flen);
    return KEEL_OK;
}

// Read guest [@offset, +@n) into @buf (linear).
static int read_linear(State *s, uint64_t offset, uint8_t *buf, uint64_t n, KeelError *err)
{
    uint64_t cs = s->cluster_size;
    while (n) {
        uint64_t in = offset & (cs - 1), chunk = std::min(n, cs - in), e;
        if (lookup(s, offset, &e, err) != KEEL_OK) return KEEL_ERR;
        if (e & kOflagCompressed) {
            if (decompress(s, e, err) != KEEL_OK) return KEEL_ERR;
            memcpy(buf, s->zcache.data() + in, chunk);
        } else if (s->version == 3 && (e & kOflagZero)) {
            memset(buf, 0, chunk);
        } else if ((e & kOffsetMask) == 0) {
            if (read_backing(s, offset, buf, chunk, err) != KEEL_OK) return KEEL_ERR;
        } else {
            // Take following clusters in the same read while they are contiguous in the file.
            uint64_t host = e & kOffsetMask;
            while (chunk < n) {
                uint64_t e2;
                if (lookup(s, offset + chunk, &e2, err) != KEEL_OK) return KEEL_ERR;
                if ((e2 & (kOflagCompressed | kOflagZero)) || (e2 & kOffsetMask) != host + in + chunk) break;
                chunk += std::min(n - chunk, cs);
            }
            if (check_data_cluster(s, host, host + in + chunk, err) != KEEL_OK) return KEEL_ERR;
            if (keel_services->block_file_pread(s->file, host + in, buf, chunk, err) != KEEL_OK)
                return KEEL_ERR;
        }
        offset += chunk;
        buf += chunk;
        n -= chunk;
    }
    return KEEL_OK;
}

static uint64_t iov_total(const KeelIoVec *iov, unsigned iovcnt)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < iovcnt; i++)
        t += iov[i].len;
    return t;
}

static int check_range(State *s, uint64_t offset, uint64_t n, KeelError *err)
{
    if (offset > s->size || n > s->size - offset)
        return Q_FAIL(err, "%s: access at 0x%" PRIx64 "+0x%" PRIx64 " is past the end of the disk", fname(s),
                      offset, n);
    return KEEL_OK;
}

int preadv(void *state, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt, KeelError *err)
{
    State *s = static_cast<State *>(state);
    uint64_t total = iov_total(iov, iovcnt);
    if (check_range(s, offset, total, err) != KEEL_OK) return KEEL_ERR;
    if (iovcnt == 1) return read_linear(s, offset, (uint8_t *)iov[0].base, total, err);
    std::vector<uint8_t> b(total);
    if (read_linear(s, offset, b.data(), total, err) != KEEL_OK) return KEEL_ERR;
    uint64_t at = 0;
    for (unsigned i = 0; i < iovcnt; i++) {
        memcpy(iov[i].base, b.data() + at, iov[i].len);
        at += iov[i].len;
    }
    return KEEL_OK;
}

// Drop a reference a table entry held (after the entry itself no longer points at it).
static int unref_entry(State *s, uint64_t e, KeelError *err)
{
    if (e & kOflagCompressed) {
        uint64_t host, len;
        compressed_range(s, e, &host, &len);
        // Compressed data is never larger than a cluster: a longer descriptor is corrupt, and freeing its
        // range could free clusters in use (even the one just allocated for the new data).
        if (len > s->cluster_size + 512)
            return Q_FAIL(err,
                          "%s: compressed cluster at 0x%" PRIx64 " claims %" PRIu64 " bytes (corrupt image)",
                          fname(s), host, len);
        return free_clusters(s, host, len, err);
    }
    if (e & kOffsetMask) return free_clusters(s, e & kOffsetMask, s->cluster_size, err);
    return KEEL_OK;
}

// The L2 table for guest @offset, made writable (allocated, or copied if shared with a snapshot).
int writable_l2(State *s, uint64_t offset, CachedTable **out, KeelError *err)
{
    uint64_t l1i = offset >> (s->cluster_bits + s->l2_bits), cs = s->cluster_size;
    if (l1i >= s->l1.size())
        return Q_FAIL(err, "%s: offset 0x%" PRIx64 " is beyond the L1 table", fname(s), offset);
    uint64_t l1e = s->l1[l1i];
    if ((l1e & kOffsetMask) && (l1e & kOflagCopied)) return get_l2(s, l1e & kOffsetMask, out, err);
    std::vector<uint64_t> entries(cs / 8, 0);
    if (l1e & kOffsetMask) {
        CachedTable *old;
        if (get_l2(s, l1e & kOffsetMask, &old, err) != KEEL_OK) return KEEL_ERR;
        // Copied as they are, as QEMU does: a data cluster's refcount counts the L1 tables (active and
        // snapshots) it is reachable from, which copying the table does not change; the entries' COPIED
        // flags were cleared when the table became shared.
        entries = old->entries;
    }
    int64_t c = alloc_clusters(s, 1, err);
    if (c < 0) return KEEL_ERR;
    std::vector<uint8_t> raw(cs);
    for (size_t i = 0; i < entries.size(); i++)
        put64(&raw[i * 8], entries[i]);
    // Data, then refcounts, then the pointer: a crash in between leaks the new cluster at worst.
    if (keel_services->block_file_pwrite(s->file, (uint64_t)c, raw.data(), cs, err) != KEEL_OK ||
        update_refcount(s, (uint64_t)c, cs, 1, err) != KEEL_OK)
        return KEEL_ERR;
    if (set_l1_entry(s, l1i, (uint64_t)c | kOflagCopied, err) != KEEL_OK) return KEEL_ERR;
    if ((l1e & kOffsetMask) && free_clusters(s, l1e & kOffsetMask, cs, err) != KEEL_OK) return KEEL_ERR;
    return get_l2(s, (uint64_t)c, out, err);
}

static int write_cluster(State *s, uint64_t offset, const uint8_t *buf, uint64_t n, KeelError *err)
{
    uint64_t cs = s->cluster_size, in = offset & (cs - 1);
    uint64_t l2i = (offset >> s->cluster_bits) & ((1ull << s->l2_bits) - 1);
    CachedTable *t;
    if (writable_l2(s, offset, &t, err) != KEEL_OK) return KEEL_ERR;
    uint64_t e = t->entries[l2i];
    bool in_place = !(e & kOflagCompressed) && (e & kOffsetMask) && (e & kOflagCopied);
    if (in_place && !((s->version == 3) && (e & kOflagZero))) {
        uint64_t host = e & kOffsetMask;
        if (check_data_cluster(s, host, host + in + n, err) != KEEL_OK) return KEEL_ERR;
        return keel_services->block_file_pwrite(s->file, host + in, buf, n, err);
    }
    // Build the whole new cluster: what it reads as now, with the new bytes over it.
    std::vector<uint8_t> c(cs);
    if (n != cs &&
        read_linear(s, offset - in, c.data(), std::min(cs, s->size - (offset - in)), err) != KEEL_OK)
        return KEEL_ERR;
    memcpy(c.data() + in, buf, n);
    if (in_place) { // a preallocated zero cluster: fill it, then drop the zero flag
        uint64_t host = e & kOffsetMask;
        if (check_data_cluster(s, host, host + cs, err) != KEEL_OK ||
            keel_services->block_file_pwrite(s->file, host, c.data(), cs, err) != KEEL_OK)
            return KEEL_ERR;
        return set_l2_entry(s, t, l2i, host | kOflagCopied, err);
    }
    int64_t host = alloc_clusters(s, 1, err);
    if (host < 0) return KEEL_ERR;
    if (keel_services->block_file_pwrite(s->file, (uint64_t)host, c.data(), cs, err) != KEEL_OK ||
        update_refcount(s, (uint64_t)host, cs, 1, err) != KEEL_OK)
        return KEEL_ERR;
    // The table may have left the cache while refcounts were updated.
    if (writable_l2(s, offset, &t, err) != KEEL_OK ||
        set_l2_entry(s, t, l2i, (uint64_t)host | kOflagCopied, err) != KEEL_OK)
        return KEEL_ERR;
    if (e & kOflagCompressed && s->zcache_entry == e) s->zcache.clear();
    return unref_entry(s, e, err);
}

// Whole clusters from @offset (cluster-aligned, @n at least a cluster) in as few writes as they allow:
// clusters this image alone owns that follow each other in the file are overwritten with one write;
// unallocated ones get a contiguous run of new clusters with one data write, one refcount update and one
// L2 update. *done: the bytes written (0: the first cluster is neither; write_cluster takes it).
static int write_run(State *s, uint64_t offset, const uint8_t *buf, uint64_t n, uint64_t *done,
                     KeelError *err)
{
    uint64_t cs = s->cluster_size, per_l2 = 1ull << s->l2_bits;
    uint64_t l2i = (offset >> s->cluster_bits) & (per_l2 - 1), max = std::min(n / cs, per_l2 - l2i);
    // A new refcount block goes inside the range it describes, outside the run being allocated: a run
    // shorter than that range always leaves it room (small clusters with wide refcounts make it short).
    max = std::min<uint64_t>(max, (1ull << s->rb_bits) - 1);
    auto owned = [s](uint64_t e) {
        return !(e & kOflagCompressed) && (e & kOffsetMask) && (e & kOflagCopied) &&
               !(s->version == 3 && (e & kOflagZero));
    };
    auto fresh = [s](uint64_t e) { return e == 0 || (s->version == 3 && e == kOflagZero); };
    *done = 0;
    CachedTable *t;
    if (writable_l2(s, offset, &t, err) != KEEL_OK) return KEEL_ERR;
    uint64_t e0 = t->entries[l2i], k = 1;
    if (owned(e0)) {
        uint64_t host = e0 & kOffsetMask;
        while (k < max && owned(t->entries[l2i + k]) && (t->entries[l2i + k] & kOffsetMask) == host + k * cs)
            k++;
        if (check_data_cluster(s, host, host + k * cs, err) != KEEL_OK ||
            keel_services->block_file_pwrite(s->file, host, buf, k * cs, err) != KEEL_OK)
            return KEEL_ERR;
        *done = k * cs;
        return KEEL_OK;
    }
    if (!fresh(e0)) return KEEL_OK;
    while (k < max && fresh(t->entries[l2i + k]))
        k++;
    int64_t host = alloc_clusters(s, k, err);
    if (host < 0) return KEEL_ERR;
    // Data, then refcounts, then the pointers: a crash in between leaks the new clusters at worst.
    if (keel_services->block_file_pwrite(s->file, (uint64_t)host, buf, k * cs, err) != KEEL_OK ||
        update_refcount(s, (uint64_t)host, k * cs, 1, err) != KEEL_OK)
        return KEEL_ERR;
    std::vector<uint64_t> entries(k);
    for (uint64_t j = 0; j < k; j++)
        entries[j] = ((uint64_t)host + j * cs) | kOflagCopied;
    if (writable_l2(s, offset, &t, err) != KEEL_OK ||
        set_l2_entries(s, t, l2i, entries.data(), k, err) != KEEL_OK)
        return KEEL_ERR;
    *done = k * cs;
    return KEEL_OK;
}

static int write_linear(State *s, uint64_t offset, const uint8_t *buf, uint64_t n, KeelError *err)
{
    uint64_t cs = s->cluster_size;
    while (n) {
        uint64_t chunk = std::min(n, cs - (offset & (cs - 1))), done = 0;
        if ((offset & (cs - 1)) == 0 && n >= cs && write_run(s, offset, buf, n, &done, err) != KEEL_OK)
            return KEEL_ERR;
        if (done)
            chunk = done;
        else if (write_cluster(s, offset, buf, chunk, err) != KEEL_OK)
            return KEEL_ERR;
        offset += chunk;
        buf += chunk;
        n -= chunk;
    }
    return KEEL_OK;
}

static int check_writable(State *s, KeelError *err)
{
    if (!(s->flags & KEEL_BLOCK_RDWR)) return Q_FAIL(err, "%s: image is opened read-only", fname(s));
    return KEEL_OK;
}

int check_access(State *s, uint64_t offset, uint64_t n, KeelError *err)
{
    if (check_writable(s, err) != KEEL_OK || check_range(s, offset, n, err) != KEEL_OK) return KEEL_ERR;
    return KEEL_OK;
}

int pwritev(void *state, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt, KeelError *err)
{
    State *s = static_cast<State *>(state);
    uint64_t total = iov_total(iov, iovcnt);
    if (check_writable(s, err) != KEEL_OK || check_range(s, offset, total, err) != KEEL_OK) return KEEL_ERR;
    if (iovcnt == 1) return write_linear(s, offset, (const uint8_t *)iov[0].base, total, err);
    std::vector<uint8_t> b(total);
    uint64_t at = 0;
    for (unsigned i = 0; i < iovcnt; i++) {
        memcpy(b.data() + at, iov[i].base, iov[i].len);
        at += iov[i].len;
    }
    return write_linear(s, offset, b.data(), total, err);
}

// Set the entries of the whole clusters in [offset, offset + bytes) to @make(old entry).
template <typename F>
static int rewrite_entries(State *s, uint64_t offset, uint64_t bytes, F make, KeelError *err)
{
    uint64_t cs = s->cluster_size, l2_span = cs << s->l2_bits;
    for (uint64_t off = offset; off < offset + bytes; off += cs) {
        uint64_t l1i = off >> (s->cluster_bits + s->l2_bits);
        if ((s->l1[l1i] & kOffsetMask) == 0 && !s->backing) {
            off = (off & ~(l2_span - 1)) + l2_span - cs; // no table and no backing: already reads as zeroes
            continue;
        }
        CachedTable *t;
        if (writable_l2(s, off, &t, err) != KEEL_OK) return KEEL_ERR;
        uint64_t l2i = (off >> s->cluster_bits) & ((1ull << s->l2_bits) - 1);
        uint64_t e = t->entries[l2i], ne = make(e);
        if (ne == e) continue;
        if (set_l2_entry(s, t, l2i, ne, err) != KEEL_OK) return KEEL_ERR;
        if ((ne & kOffsetMask) != (e & kOffsetMask) || (e & kOflagCompressed)) {
            if (e & kOflagCompressed && s->zcache_entry == e) s->zcache.clear();
            if (unref_entry(s, e, err) != KEEL_OK) return KEEL_ERR;
        }
    }
    return KEEL_OK;
}

int discard(void *state, uint64_t offset, uint64_t bytes, KeelError *err)
{
    State *s = static_cast<State *>(state);
    if (check_writable(s, err) != KEEL_OK || check_range(s, offset, bytes, err) != KEEL_OK) return KEEL_ERR;
    uint64_t cs = s->cluster_size;
    uint64_t start = (offset + cs - 1) & ~(cs - 1), end = std::min(offset + bytes, s->size);
    end = end == s->size ? end : end & ~(cs - 1);
    if (end <= start) return KEEL_OK; // discard is a hint: partial clusters are left alone
    uint64_t after = (s->backing && s->version == 3) ? kOflagZero : 0;
    return rewrite_entries(
        s, start, end - start, [after](uint64_t) { return after; }, err);
}

int write_zeroes(void *state, uint64_t offset, uint64_t bytes, uint32_t flags, KeelError *err)
{
    State *s = static_cast<State *>(state);
    if (check_writable(s, err) != KEEL_OK || check_range(s, offset, bytes, err) != KEEL_OK) return KEEL_ERR;
    uint64_t cs = s->cluster_size;
    uint64_t start = (offset + cs - 1) & ~(cs - 1), end = offset + bytes;
    uint64_t full_end = end == s->size ? end : end & ~(cs - 1);
    if (s->version == 2 || full_end <= start) {
        start = full_end = end; // no zero flag (v2) or no whole cluster: write real zeroes
    }
    std::vector<uint8_t> z(cs, 0);
    auto zero_bytes = [&](uint64_t from, uint64_t to) {
        for (uint64_t o = from; o < to;) {
            uint64_t n = std::min(to - o, cs - (o & (cs - 1)));
            if (write_cluster(s, o, z.data(), n, err) != KEEL_OK) return KEEL_ERR;
            o += n;
        }
        return KEEL_OK;
    };
    if (zero_bytes(offset, std::min(start, end)) != KEEL_OK) return KEEL_ERR;
    bool unmap = flags & KEEL_BLOCK_MAY_UNMAP;
    if (full_end > start && rewrite_entries(
                                s, start, full_end - start,
                                [unmap](uint64_t e) {
                                    // Keep a cluster that is ours alone unless unmapping is allowed.
                                    if (!unmap && !(e & kOflagCompressed) && (e & kOffsetMask) &&
                                        (e & kOflagCopied))
                                        return (e & kOffsetMask) | kOflagCopied | kOflagZero;
                                    return kOflagZero;
                                },
                                err) != KEEL_OK)
        return KEEL_ERR;
    return zero_bytes(std::max(full_end, start), end);
}

int grow_l1(State *s, uint64_t min_size, KeelError *err)
{
    if (min_size <= s->l1.size()) return KEEL_OK;
    if (min_size > kMaxL1Entries) return Q_FAIL(err, "%s: the L1 table would be too large", fname(s));
    uint64_t cs = s->cluster_size, bytes = min_size * 8, clusters = (bytes + cs - 1) / cs;
    int64_t off = alloc_clusters(s, clusters, err);
    if (off < 0) return KEEL_ERR;
    std::vector<uint8_t> raw(bytes, 0);
    for (size_t i = 0; i < s->l1.size(); i++)
        put64(&raw[i * 8], s->l1[i]);
    if (keel_services->block_file_pwrite(s->file, (uint64_t)off, raw.data(), bytes, err) != KEEL_OK ||
        update_refcount(s, (uint64_t)off, clusters * cs, 1, err) != KEEL_OK)
        return KEEL_ERR;
    uint8_t h[12];
    put32(h, (uint32_t)min_size);
    put64(h + 4, (uint64_t)off);
    if (keel_services->block_file_pwrite(s->file, 36, h, 12, err) != KEEL_OK) return KEEL_ERR;
    uint64_t old_off = s->l1_offset, old_bytes = s->l1.size() * 8;
    s->l1.resize(min_size, 0);
    s->l1_size = (uint32_t)min_size;
    s->l1_offset = (uint64_t)off;
    if (old_bytes && free_clusters(s, old_off, old_bytes, err) != KEEL_OK) return KEEL_ERR;
    return KEEL_OK;
}

// Drop what lies past @virtual_size, as qemu-img 7.2 shrinks: the clusters wholly past the new end are
// freed (the tail of a partly covered L2 table zeroed, the L2 tables past it unhooked from the L1 table,
// whose size stays), then refcount blocks left describing nothing but themselves, and the file is cut
// after its last cluster in use. Pointers go first, so a crash leaks clusters at worst.
static int shrink(State *s, uint64_t virtual_size, KeelError *err)
{
    uint64_t cs = s->cluster_size, per_l2 = 1ull << s->l2_bits, l2_span = cs << s->l2_bits;
    uint64_t keep = (virtual_size + cs - 1) & ~(cs - 1); // guest clusters from here on go
    uint64_t new_l1 = (virtual_size + l2_span - 1) / l2_span;
    // The last cluster stays when the new end cuts it: zero its part past the end, so that growing the
    // image again shows zeroes there (qemu-img 7.2 shows the old bytes again).
    uint64_t e = 0;
    if (virtual_size < keep && lookup(s, virtual_size, &e, err) != KEEL_OK) return KEEL_ERR;
    if (virtual_size < keep && ((e & kOffsetMask) || (e & kOflagCompressed)) &&
        !(s->version == 3 && (e & kOflagZero) && !(e & kOflagCompressed))) {
        std::vector<uint8_t> zero(std::min(keep, s->size) - virtual_size, 0);
        if (write_cluster(s, virtual_size, zero.data(), zero.size(), err) != KEEL_OK) return KEEL_ERR;
    }
    if (keep % l2_span && keep / l2_span < s->l1.size() && (s->l1[keep / l2_span] & kOffsetMask)) {
        CachedTable *t;
        if (writable_l2(s, keep, &t, err) != KEEL_OK) return KEEL_ERR; // copied first if a snapshot has it
        uint64_t from = (keep >> s->cluster_bits) & (per_l2 - 1);
        std::vector<uint64_t> old(t->entries.begin() + (long)from, t->entries.end()), zero(per_l2 - from, 0);
        if (set_l2_entries(s, t, from, zero.data(), zero.size(), err) != KEEL_OK) return KEEL_ERR;
        for (uint64_t o : old)
            if (unref_entry(s, o, err) != KEEL_OK) return KEEL_ERR;
    }
    for (uint64_t i = new_l1; i < s->l1.size(); i++) {
        uint64_t l2 = s->l1[i] & kOffsetMask;
        if (!l2) continue;
        CachedTable *t;
        if (get_l2(s, l2, &t, err) != KEEL_OK) return KEEL_ERR;
        std::vector<uint64_t> entries = t->entries;
        t->offset = 0; // a snapshot may still have the table; read it again if asked
        t->lru = 0;
        // Each entry was reachable through the active L1 table once more: drop that reference, then the
        // table's own.
        if (set_l1_entry(s, i, 0, err) != KEEL_OK) return KEEL_ERR;
        for (uint64_t o : entries)
            if (unref_entry(s, o, err) != KEEL_OK) return KEEL_ERR;
        if (free_clusters(s, l2, cs, err) != KEEL_OK) return KEEL_ERR;
    }
    s->zcache.clear();
    s->zcache_entry = 0;
    if (drop_unused_refblocks(s, err) != KEEL_OK) return KEEL_ERR;
    uint8_t b[8];
    put64(b, virtual_size);
    if (keel_services->block_file_pwrite(s->file, 24, b, 8, err) != KEEL_OK) return KEEL_ERR;
    s->size = virtual_size;
    int64_t last = last_used_cluster(s, err);
    if (last < 0) return KEEL_ERR;
    uint64_t end = ((uint64_t)last + 1) * cs;
    if (end < file_length(s)) return keel_services->block_file_truncate(s->file, end, err);
    return KEEL_OK;
}

int truncate(void *state, uint64_t virtual_size, KeelError *err)
{
    State *s = static_cast<State *>(state);
    if (check_writable(s, err) != KEEL_OK) return KEEL_ERR;
    if (virtual_size % 512) return Q_FAIL(err, "%s: The new size must be a multiple of 512", fname(s));
    // As QEMU 7.2: v3 images resize with snapshots (each keeps its own disk size), v2 ones cannot.
    if (!s->snapshots.empty() && s->version == 2 && virtual_size != s->size)
        return Q_FAIL(err, "%s: Can't resize a v2 image which has snapshots", fname(s));
    if (virtual_size > (1ull << 61)) return Q_FAIL(err, "%s: virtual size too large", fname(s));
    if (virtual_size < s->size) return shrink(s, virtual_size, err);
    uint64_t l2_span = s->cluster_size << s->l2_bits;
    if (grow_l1(s, (virtual_size + l2_span - 1) / l2_span, err) != KEEL_OK) return KEEL_ERR;
    uint8_t b[8];
    put64(b, virtual_size);
    if (keel_services->block_file_pwrite(s->file, 24, b, 8, err) != KEEL_OK) return KEEL_ERR;
    s->size = virtual_size;
    return KEEL_OK;
}

int block_status(void *state, uint64_t offset, uint64_t bytes, uint64_t *pnum, uint64_t *map, uint32_t *flags,
                 KeelError *err)
{
    State *s = static_cast<State *>(state);
    if (check_range(s, offset, bytes, err) != KEEL_OK) return KEEL_ERR;
    uint64_t cs = s->cluster_size;
    auto classify = [s](uint64_t e, uint64_t in, uint64_t *m) -> uint32_t {
        *m = 0;
        if (e & kOflagCompressed) return KEEL_BLOCK_STATUS_ALLOCATED | KEEL_BLOCK_STATUS_COMPRESSED;
        if (s->version == 3 && (e & kOflagZero)) return KEEL_BLOCK_STATUS_ALLOCATED | KEEL_BLOCK_STATUS_ZERO;
        if (e & kOffsetMask) {
            *m = (e & kOffsetMask) + in;
            return KEEL_BLOCK_STATUS_ALLOCATED | KEEL_BLOCK_STATUS_DATA;
        }
        return s->backing ? 0u : (uint32_t)KEEL_BLOCK_STATUS_ZERO;
    };
    uint64_t e;
    if (lookup(s, offset, &e, err) != KEEL_OK) return KEEL_ERR;
    uint32_t f = classify(e, offset & (cs - 1), map);
    uint64_t n = std::min(bytes, cs - (offset & (cs - 1)));
    while (n < bytes) {
        uint64_t m2;
        if (lookup(s, offset + n, &e, err) != KEEL_OK) return KEEL_ERR;
        if (classify(e, 0, &m2) != f || (f & KEEL_BLOCK_STATUS_DATA && m2 != *map + n)) break;
        n += std::min(bytes - n, cs);
    }
    *pnum = n;
    *flags = f;
    return KEEL_OK;
}

int flush(void *state, KeelError *err)
{
    State *s = static_cast<State *>(state);
    return keel_services->block_file_flush(s->file, err);
}

} // namespace qcow2

namespace qcow2
{

int make_empty(void *state, KeelError *err)
{
    State *s = static_cast<State *>(state);
    if (check_writable(s, err) != KEEL_OK) return KEEL_ERR;
    if (!s->snapshots.empty())
        return Q_FAIL(err, "%s: cannot empty an image with internal snapshots", fname(s));
    for (uint64_t i = 0; i < s->l1.size(); i++) {
        uint64_t l2 = s->l1[i] & kOffsetMask;
        if (!l2) continue;
        CachedTable *t;
        if (get_l2(s, l2, &t, err) != KEEL_OK) return KEEL_ERR;
        std::vector<uint64_t> entries = t->entries;
        // Unhook the table first: a crash from here on leaks its clusters at worst.
        if (set_l1_entry(s, i, 0, err) != KEEL_OK) return KEEL_ERR;
        t->offset = 0;
        t->lru = 0;
        for (uint64_t e : entries)
            if (unref_entry(s, e, err) != KEEL_OK) return KEEL_ERR;
        if (free_clusters(s, l2, s->cluster_size, err) != KEEL_OK) return KEEL_ERR;
    }
    s->zcache.clear();
    return KEEL_OK;
}

} // namespace qcow2
