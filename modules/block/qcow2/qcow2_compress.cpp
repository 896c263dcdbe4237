// SPDX-License-Identifier: MIT
// qcow2 compressed writes (keel-img convert -c): whole clusters deflated as QEMU does, packed byte by byte.
#include "qcow2.h"

#include <zlib.h>

#include <cinttypes>

namespace qcow2
{
namespace
{

// Deflate one cluster into @out (@out_max bytes). *len: the compressed size, or 0 when it does not fit,
// i.e. does not come out smaller than a cluster. Raw deflate with QEMU's parameters (default level, 4 KiB
// window, memLevel 9): the same input gives the same sizes, so the same layout, as qemu-img convert -c.
int deflate_cluster(const State *s, const uint8_t *in, uint64_t n, uint8_t *out, uint64_t out_max,
                    uint64_t *len, KeelError *err)
{
    z_stream z{};
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return Q_FAIL(err, "%s: zlib initialisation failed", fname(s));
    z.next_in = const_cast<uint8_t *>(in);
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)out_max;
    int r = deflate(&z, Z_FINISH);
    *len = r == Z_STREAM_END ? out_max - z.avail_out : 0;
    deflateEnd(&z);
    if (r != Z_STREAM_END && r != Z_OK && r != Z_BUF_ERROR)
        return Q_FAIL(err, "%s: zlib compression failed (%d)", fname(s), r);
    return KEEL_OK;
}

// Where @len bytes of compressed data go (their clusters' refcounts not yet counted): right after the
// previous compressed cluster while its host cluster has room and can take one more reference, spilling
// into the next cluster when that is the one allocated; else at the start of a new cluster.
int64_t alloc_bytes(State *s, uint64_t len, KeelError *err)
{
    uint64_t cs = s->cluster_size, off = s->free_byte_offset;
    if (off & (cs - 1)) {
        uint64_t rc;
        if (get_refcount(s, off >> s->cluster_bits, &rc, err) != KEEL_OK) return -1;
        if (rc == 0 || rc >= s->max_refcount) off = 0;
    } else {
        off = 0; // nothing packed yet, or the last one ended exactly at a cluster's end
    }
    if (off && cs - (off & (cs - 1)) >= len) return (int64_t)off;
    int64_t c = alloc_clusters(s, 1, err);
    if (c < 0) return -1;
    if (off && (uint64_t)c == ((off + cs - 1) & ~(cs - 1))) return (int64_t)off;
    return c;
}

} // namespace

int pwritev_compressed(void *state, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt, KeelError *err)
{
    State *s = static_cast<State *>(state);
    uint64_t cs = s->cluster_size, total = 0;
    for (unsigned i = 0; i < iovcnt; i++)
        total += iov[i].len;
    if (check_access(s, offset, total, err) != KEEL_OK) return KEEL_ERR;
    if (!is_aligned(s, offset) || total == 0 || total > cs || (total != cs && offset + total != s->size))
        return Q_FAIL(err,
                      "%s: a compressed write must be one whole cluster (or the disk's last part), not "
                      "0x%" PRIx64 "+0x%" PRIx64,
                      fname(s), offset, total);
    std::vector<uint8_t> in(cs, 0); // the disk's last cluster is compressed padded with zeroes, as QEMU does
    uint64_t at = 0;
    for (unsigned i = 0; i < iovcnt; i++) {
        if (iov[i].len) memcpy(in.data() + at, iov[i].base, iov[i].len);
        at += iov[i].len;
    }
    std::vector<uint8_t> out(cs + 512, 0); // room for the zero padding to the end of the last sector
    uint64_t len;
    if (deflate_cluster(s, in.data(), cs, out.data(), cs - 1, &len, err) != KEEL_OK) return KEEL_ERR;
    if (len == 0) return pwritev(state, offset, iov, iovcnt, err); // incompressible: stored as it is

    CachedTable *t;
    uint64_t l2i = (offset >> s->cluster_bits) & ((1ull << s->l2_bits) - 1);
    if (writable_l2(s, offset, &t, err) != KEEL_OK) return KEEL_ERR;
    uint64_t old = t->entries[l2i];
    if ((old & kOflagCompressed) || (old & kOffsetMask))
        return Q_FAIL(
            err, "%s: cannot write compressed data over the allocated cluster at guest offset 0x%" PRIx64,
            fname(s), offset);
    int64_t host = alloc_bytes(s, len, err);
    if (host < 0) return KEEL_ERR;
    uint32_t x = 62 - (s->cluster_bits - 8);
    if ((uint64_t)host >> x)
        return Q_FAIL(err, "%s: offset 0x%" PRIx64 " is too large for a compressed cluster", fname(s),
                      (uint64_t)host);
    uint64_t sectors = (((uint64_t)host + len - 1) >> 9) - ((uint64_t)host >> 9); // beyond the first one
    uint64_t entry = kOflagCompressed | (sectors << x) | (uint64_t)host;
    uint64_t ref_off, ref_len;
    compressed_range(s, entry, &ref_off, &ref_len);
    // Data (zero-padded to its last sector's end, so that the file ends on a sector as QEMU leaves it),
    // then refcounts, then the L2 entry: a crash in between leaks at worst.
    if (keel_services->block_file_pwrite(s->file, (uint64_t)host, out.data(), ref_len, err) != KEEL_OK ||
        update_refcount(s, ref_off, ref_len, 1, err) != KEEL_OK)
        return KEEL_ERR;
    s->free_byte_offset = (uint64_t)host + len;
    if (writable_l2(s, offset, &t, err) != KEEL_OK || set_l2_entries(s, t, l2i, &entry, 1, err) != KEEL_OK)
        return KEEL_ERR;
    s->zcache.clear(); // its entry could name the same bytes as a cluster freed earlier
    s->zcache_entry = 0;
    return KEEL_OK;
}

} // namespace qcow2
