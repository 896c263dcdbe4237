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

static int set_l2_entry(State *s, CachedTable *t, uint64_t idx, uint64_t value, KeelError *err)
{
    uint8_t b[8];
    put64(b, value);
    t->entries[idx] = value;
    return keel_services->block_file_pwrite(s->file, t->offset + idx * 8, b, 8, err);
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
        return free_clusters(s, host, len, err);
    }
    if (e & kOffsetMask) return free_clusters(s, e & kOffsetMask, s->cluster_size, err);
    return KEEL_OK;
}

// The L2 table for guest @offset, made writable (allocated, or copied if shared with a snapshot).
static int writable_l2(State *s, uint64_t offset, CachedTable **out, KeelError *err)
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
        for (size_t i = 0; i < entries.size(); i++)
            entries[i] = old->entries[i] & ~kOflagCopied; // now shared by two tables
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
    for (uint64_t e : entries) {
        if (e & kOflagCompressed) {
            uint64_t host, len;
            compressed_range(s, e, &host, &len);
            if (update_refcount(s, host, len, 1, err) != KEEL_OK) return KEEL_ERR;
        } else if (e & kOffsetMask) {
            if (update_refcount(s, e & kOffsetMask, cs, 1, err) != KEEL_OK) return KEEL_ERR;
        }
    }
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

static int write_linear(State *s, uint64_t offset, const uint8_t *buf, uint64_t n, KeelError *err)
{
    while (n) {
        uint64_t chunk = std::min(n, s->cluster_size - (offset & (s->cluster_size - 1)));
        if (write_cluster(s, offset, buf, chunk, err) != KEEL_OK) return KEEL_ERR;
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

int truncate(void *state, uint64_t virtual_size, KeelError *err)
{
    State *s = static_cast<State *>(state);
    if (check_writable(s, err) != KEEL_OK) return KEEL_ERR;
    if (virtual_size < s->size) return Q_FAIL(err, "%s: qcow2 images cannot be shrunk", fname(s));
    if (!s->snapshots.empty() && virtual_size != s->size)
        return Q_FAIL(err, "%s: cannot resize an image with internal snapshots", fname(s));
    if (virtual_size > (1ull << 61)) return Q_FAIL(err, "%s: virtual size too large", fname(s));
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
