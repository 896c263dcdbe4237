// SPDX-License-Identifier: MIT
// qcow2 header: probe, open (every field checked against the file), create, header rewrite, info.
#include "qcow2.h"

#include <algorithm>
#include <cinttypes>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace qcow2
{

const char *fname(const State *s)
{
    const char *n = keel_services->block_file_name(s->file);
    return n ? n : "qcow2 image";
}

void setup_derived(State *s)
{
    s->cluster_size = 1ull << s->cluster_bits;
    s->l2_bits = s->cluster_bits - 3;
    uint32_t bits = 1u << s->refcount_order;
    s->rb_bits = s->cluster_bits + 3 - s->refcount_order;
    s->max_refcount = bits == 64 ? UINT64_MAX : (1ull << bits) - 1;
}

int probe(const uint8_t *buf, size_t len, const char *)
{
    if (len >= 8 && be32(buf) == kMagic && (be32(buf + 4) == 2 || be32(buf + 4) == 3)) return 100;
    return 0;
}

static std::string feature_name(const State *s, uint8_t type, unsigned bit)
{
    for (const Feature &f : s->features)
        if (f.type == type && f.bit == bit) return f.name;
    return "bit " + std::to_string(bit);
}

static int parse_extensions(State *s, uint64_t end, KeelError *err)
{
    uint64_t off = s->header_length;
    while (off + 8 <= end) {
        uint8_t h[8];
        if (keel_services->block_file_pread(s->file, off, h, 8, err) != KEEL_OK) return KEEL_ERR;
        uint32_t type = be32(h), len = be32(h + 4);
        off += 8;
        if (type == kExtEnd) return KEEL_OK;
        if (len > end - off)
            return Q_FAIL(err,
                          "%s: header extension 0x%08" PRIx32 " at 0x%" PRIx64 " (%" PRIu32
                          " bytes) runs past the end of the header cluster",
                          fname(s), type, off - 8, len);
        std::vector<uint8_t> data(len);
        if (len && keel_services->block_file_pread(s->file, off, data.data(), len, err) != KEEL_OK)
            return KEEL_ERR;
        off += (len + 7ull) & ~7ull;
        if (type == kExtBackingFormat) {
            if (len > 1023)
                return Q_FAIL(err, "%s: backing format name too long (%" PRIu32 " bytes)", fname(s), len);
            s->backing_fmt.assign(data.begin(), data.end());
            continue;
        }
        if (type == kExtFeatureTable) {
            for (size_t i = 0; i + 48 <= data.size(); i += 48) {
                const char *n = (const char *)&data[i + 2];
                s->features.push_back({data[i], data[i + 1], std::string(n, strnlen(n, 46))});
            }
        }
        s->extensions.push_back({type, std::move(data)});
    }
    return KEEL_OK; // no end marker before the end of the area: tolerated, as QEMU does
}

static int read_table(State *s, uint64_t offset, uint64_t count, std::vector<uint64_t> &out, KeelError *err)
{
    std::vector<uint8_t> raw(count * 8);
    out.assign(count, 0);
    if (count && keel_services->block_file_pread(s->file, offset, raw.data(), raw.size(), err) != KEEL_OK)
        return KEEL_ERR;
    for (uint64_t i = 0; i < count; i++)
        out[i] = be64(&raw[i * 8]);
    return KEEL_OK;
}

namespace
{

// A metadata structure's clusters, [start, end) in the file, for the overlap checks of open.
struct Region {
    uint64_t start, end;
    int kind;       // kRegion*
    uint64_t index; // snapshot number for kRegionSnapshotL1
};
enum { kRegionHeader, kRegionL1, kRegionRefTable, kRegionSnapTable, kRegionSnapshotL1 };

std::string region_name(const State *s, const Region &r)
{
    switch (r.kind) {
    case kRegionHeader:
        return "the header";
    case kRegionL1:
        return "the active L1 table";
    case kRegionRefTable:
        return "the refcount table";
    case kRegionSnapTable:
        return "the snapshot table";
    default:
        return "the L1 table of snapshot " + s->snapshots[r.index].id;
    }
}

// The region of the sorted, non-overlapping @regions that [start, start + cluster) falls in, or NULL.
const Region *region_at(const std::vector<Region> &regions, uint64_t start)
{
    auto it = std::upper_bound(regions.begin(), regions.end(), start,
                               [](uint64_t v, const Region &r) { return v < r.start; });
    if (it == regions.begin()) return nullptr;
    --it;
    return start < it->end ? &*it : nullptr;
}

} // namespace

// What open can see without reading more than it already has: the tables it read (L1, refcount table,
// snapshot headers) must not overlap each other or the header, and every L2 table and refcount block they
// point to must be in the file, aligned, and not one of them. A corrupt image is refused here rather than
// at the first guest access (or, worse, a write that lands in metadata). check() reports the same problems,
// so an image opened to be checked skips this.
static int validate_metadata(State *s, uint64_t flen, KeelError *err)
{
    uint64_t cs = s->cluster_size;
    auto clusters = [cs](uint64_t off, uint64_t bytes, int kind, uint64_t index) {
        return Region{off & ~(cs - 1), (off + bytes + cs - 1) & ~(cs - 1), kind, index};
    };
    std::vector<Region> regions;
    regions.push_back({0, cs, kRegionHeader, 0});
    if (s->l1_size) regions.push_back(clusters(s->l1_offset, s->l1_size * 8ull, kRegionL1, 0));
    regions.push_back(clusters(s->rt_offset, (uint64_t)s->rt_clusters * cs, kRegionRefTable, 0));
    if (s->nb_snapshots && s->snapshots_bytes)
        regions.push_back(clusters(s->snapshots_offset, s->snapshots_bytes, kRegionSnapTable, 0));
    for (size_t i = 0; i < s->snapshots.size(); i++)
        if (s->snapshots[i].l1_size)
            regions.push_back(
                clusters(s->snapshots[i].l1_offset, s->snapshots[i].l1_size * 8ull, kRegionSnapshotL1, i));
    std::sort(regions.begin(), regions.end(), [](const Region &a, const Region &b) {
        return a.start != b.start ? a.start < b.start : a.kind < b.kind;
    });
    for (size_t i = 1; i < regions.size(); i++)
        if (regions[i].start < regions[i - 1].end) {
            const Region &a = regions[i - 1], &b = regions[i];
            const Region &later = b.kind > a.kind ? b : a, &earlier = b.kind > a.kind ? a : b;
            return Q_FAIL(err, "%s: %s at 0x%" PRIx64 " overlaps %s", fname(s), region_name(s, later).c_str(),
                          later.start, region_name(s, earlier).c_str());
        }

    constexpr uint64_t kL1Reserved = 0x7f000000000001ffull; // bits 0-8 and 56-62
    std::vector<uint64_t> l2_tables;
    for (uint64_t i = 0; i < s->l1.size(); i++) {
        uint64_t e = s->l1[i], off = e & kOffsetMask;
        if (!e) continue;
        if (e & kL1Reserved)
            return Q_FAIL(err, "%s: L1 entry %" PRIu64 " (0x%016" PRIx64 ") has reserved bits set", fname(s),
                          i, e);
        if (!off)
            return Q_FAIL(err,
                          "%s: L1 entry %" PRIu64 " (0x%016" PRIx64
                          ") has flags but no L2 table (it points at the header)",
                          fname(s), i, e);
        if (!is_aligned(s, off))
            return Q_FAIL(err, "%s: L2 table at 0x%" PRIx64 " (L1 entry %" PRIu64 ") is not cluster aligned",
                          fname(s), off, i);
        if (off > flen || flen - off < cs)
            return Q_FAIL(err,
                          "%s: L2 table at 0x%" PRIx64 " (L1 entry %" PRIu64
                          ") is past the end of the file (%" PRIu64 " bytes)",
                          fname(s), off, i, flen);
        if (const Region *r = region_at(regions, off))
            return Q_FAIL(err, "%s: L2 table at 0x%" PRIx64 " (L1 entry %" PRIu64 ") overlaps %s", fname(s),
                          off, i, region_name(s, *r).c_str());
        l2_tables.push_back(off);
    }
    std::sort(l2_tables.begin(), l2_tables.end());
    for (uint64_t i = 0; i < s->rt.size(); i++) {
        uint64_t off = s->rt[i] & kRefTableOffsetMask;
        if (!s->rt[i]) continue;
        if (!off || !is_aligned(s, off) || off > flen || flen - off < cs)
            return Q_FAIL(err,
                          "%s: refcount block %" PRIu64 " at 0x%" PRIx64
                          " is unaligned or past the end of the file",
                          fname(s), i, s->rt[i]);
        if (const Region *r = region_at(regions, off))
            return Q_FAIL(err, "%s: refcount block %" PRIu64 " at 0x%" PRIx64 " overlaps %s", fname(s), i,
                          off, region_name(s, *r).c_str());
        if (std::binary_search(l2_tables.begin(), l2_tables.end(), off))
            return Q_FAIL(err, "%s: refcount block %" PRIu64 " at 0x%" PRIx64 " is also an L2 table",
                          fname(s), i, off);
    }
    return KEEL_OK;
}

// Before the first write: every cluster of metadata open knows of must have a refcount, or the allocator
// would hand it out for data and a guest write would overwrite a table. check() reports the same (a refcount
// lower than its references), so an image opened to be checked skips this.
static int check_metadata_refcounts(State *s, KeelError *err)
{
    uint64_t cs = s->cluster_size;
    // @what names the structure, @index (when not UINT64_MAX) goes after it: built only for the message.
    auto counted = [&](uint64_t off, uint64_t bytes, const char *what, uint64_t index = UINT64_MAX) {
        for (uint64_t c = off >> s->cluster_bits; bytes && c <= (off + bytes - 1) >> s->cluster_bits; c++) {
            uint64_t v = 0;
            if (get_refcount(s, c, &v, err) != KEEL_OK) return false;
            if (v == 0) {
                std::string name = what + (index == UINT64_MAX ? "" : std::to_string(index));
                Q_FAIL(err,
                       "%s: %s at 0x%" PRIx64
                       " has refcount 0: the image is corrupt (repair it with 'keel-img check -r all')",
                       fname(s), name.c_str(), c << s->cluster_bits);
                return false;
            }
        }
        return true;
    };
    if (!counted(0, cs, "the header") || !counted(s->l1_offset, s->l1_size * 8ull, "the active L1 table") ||
        !counted(s->rt_offset, (uint64_t)s->rt_clusters * cs, "the refcount table") ||
        (s->nb_snapshots && !counted(s->snapshots_offset, s->snapshots_bytes, "the snapshot table")))
        return KEEL_ERR;
    for (uint64_t i = 0; i < s->snapshots.size(); i++)
        if (!counted(s->snapshots[i].l1_offset, s->snapshots[i].l1_size * 8ull, "the L1 table of snapshot #",
                     i))
            return KEEL_ERR;
    for (uint64_t i = 0; i < s->rt.size(); i++)
        if ((s->rt[i] & kRefTableOffsetMask) &&
            !counted(s->rt[i] & kRefTableOffsetMask, cs, "refcount block ", i))
            return KEEL_ERR;
    for (uint64_t i = 0; i < s->l1.size(); i++)
        if ((s->l1[i] & kOffsetMask) && !counted(s->l1[i] & kOffsetMask, cs, "the L2 table of L1 entry ", i))
            return KEEL_ERR;
    return KEEL_OK;
}

// A dirty image (a crash while lazy refcounts were on) may count its clusters too low, and the first
// allocation would then reuse a cluster in use. Before the first write, as QEMU does: when check finds only
// leaks, repair them and clear the bit; when it finds corruptions, refuse and leave the file as it is.
static int repair_dirty(State *s, KeelError *err)
{
    KeelBlockCheckResult r{};
    r.size = sizeof r;
    if (check(s, 0, &r, nullptr, nullptr, err) != KEEL_OK) return KEEL_ERR;
    if (r.corruptions || r.check_errors)
        return Q_FAIL(err,
                      "%s: the image was not closed cleanly (dirty bit) and check finds %" PRId64
                      " corruptions; repair it with 'keel-img check -r all' before opening it read/write",
                      fname(s), r.corruptions + r.check_errors);
    if (check(s, KEEL_BLOCK_FIX_LEAKS, &r, nullptr, nullptr, err) != KEEL_OK) return KEEL_ERR;
    if (s->incompat & kIncompatDirty)
        return Q_FAIL(err, "%s: could not repair the dirty image (%" PRId64 " leaks left)", fname(s),
                      r.leaks);
    keel_services->log(nullptr, KEEL_LOG_WARNING,
                       "%s: the image was not closed cleanly (dirty bit): repaired %" PRId64
                       " leaked clusters",
                       fname(s), r.leaks_fixed);
    return KEEL_OK;
}

static int do_open(State *s, KeelError *err)
{
    uint64_t flen = file_length(s);
    uint8_t h[112] = {};
    if (flen < kHeaderV2Length)
        return Q_FAIL(err, "%s: file too short for a qcow2 header (%" PRIu64 " bytes)", fname(s), flen);
    if (keel_services->block_file_pread(s->file, 0, h, flen < 112 ? flen : 112, err) != KEEL_OK)
        return KEEL_ERR;
    if (be32(h) != kMagic) return Q_FAIL(err, "%s: image is not in qcow2 format", fname(s));
    s->version = be32(h + 4);
    if (s->version != 2 && s->version != 3)
        return Q_FAIL(err, "%s: unsupported qcow2 version %" PRIu32, fname(s), s->version);
    s->backing_file_offset = be64(h + 8);
    s->backing_file_size = be32(h + 16);
    s->cluster_bits = be32(h + 20);
    s->size = be64(h + 24);
    uint32_t crypt = be32(h + 32);
    s->l1_size = be32(h + 36);
    s->l1_offset = be64(h + 40);
    s->rt_offset = be64(h + 48);
    s->rt_clusters = be32(h + 56);
    s->nb_snapshots = be32(h + 60);
    s->snapshots_offset = be64(h + 64);
    if (s->cluster_bits < 9 || s->cluster_bits > 21)
        return Q_FAIL(err, "%s: unsupported cluster size: 2^%" PRIu32 " (must be 2^9 to 2^21)", fname(s),
                      s->cluster_bits);
    if (s->version == 2) {
        s->header_length = kHeaderV2Length;
        s->refcount_order = 4;
    } else {
        if (flen < kHeaderV3Length) return Q_FAIL(err, "%s: file too short for a qcow2 v3 header", fname(s));
        s->incompat = be64(h + 72);
        s->compat = be64(h + 80);
        s->autoclear = be64(h + 88);
        s->refcount_order = be32(h + 96);
        s->header_length = be32(h + 100);
        if (s->header_length < kHeaderV3Length || s->header_length % 8)
            return Q_FAIL(err, "%s: invalid qcow2 header length %" PRIu32, fname(s), s->header_length);
        if (s->refcount_order > 6)
            return Q_FAIL(err,
                          "%s: reference count entry width too large (refcount_order %" PRIu32
                          "; may not exceed 64 bits)",
                          fname(s), s->refcount_order);
    }
    setup_derived(s);
    if (s->header_length > s->cluster_size || s->header_length > flen)
        return Q_FAIL(err, "%s: qcow2 header length %" PRIu32 " exceeds the cluster or the file", fname(s),
                      s->header_length);
    s->raw_header.resize(s->header_length);
    if (keel_services->block_file_pread(s->file, 0, s->raw_header.data(), s->header_length, err) != KEEL_OK)
        return KEEL_ERR;
    if (s->header_length > 104) s->compression_type = s->raw_header[104];

    // Extensions live between the header and the backing file name (or the end of cluster 0).
    uint64_t ext_end = s->cluster_size < flen ? s->cluster_size : flen;
    if (s->backing_file_offset) {
        if (s->backing_file_size > 1023 || s->backing_file_offset > ext_end ||
            s->backing_file_size > ext_end - s->backing_file_offset ||
            s->backing_file_offset < s->header_length)
            return Q_FAIL(err, "%s: invalid backing file name (offset 0x%" PRIx64 ", %" PRIu32 " bytes)",
                          fname(s), s->backing_file_offset, s->backing_file_size);
        ext_end = s->backing_file_offset;
    }
    if (s->version == 3 && parse_extensions(s, ext_end, err) != KEEL_OK) return KEEL_ERR;
    if (s->backing_file_offset && s->backing_file_size) {
        s->backing_file.resize(s->backing_file_size);
        if (keel_services->block_file_pread(s->file, s->backing_file_offset, s->backing_file.data(),
                                            s->backing_file_size, err) != KEEL_OK)
            return KEEL_ERR;
    }

    // Features: the dirty bit is tolerated, the corrupt bit refuses writes, anything else unknown refuses.
    if (crypt != 0)
        return Q_FAIL(err, "%s: encrypted images are not supported (crypt_method %" PRIu32 ")", fname(s),
                      crypt);
    uint64_t unsupported = s->incompat & ~(kIncompatDirty | kIncompatCorrupt | kIncompatCompression);
    if (unsupported) {
        std::string names;
        for (unsigned b = 0; b < 64; b++)
            if (unsupported & (1ull << b)) names += (names.empty() ? "" : ", ") + feature_name(s, 0, b);
        return Q_FAIL(err, "%s: unsupported qcow2 feature(s): %s", fname(s), names.c_str());
    }
    if ((s->incompat & kIncompatCompression) ? s->compression_type != 0 : s->compression_type != 0)
        return Q_FAIL(err, "%s: unsupported compression type %u (only zlib)", fname(s), s->compression_type);
    if ((s->incompat & kIncompatCorrupt) && (s->flags & KEEL_BLOCK_RDWR) && !(s->flags & KEEL_BLOCK_CHECK))
        return Q_FAIL(err, "%s: image is corrupt; cannot be opened read/write", fname(s));
    if ((s->incompat & kIncompatDirty) && !(s->flags & KEEL_BLOCK_RDWR))
        keel_services->log(nullptr, KEEL_LOG_WARNING,
                           "%s: the dirty bit is set (not closed cleanly); 'check -r leaks' repairs leaks",
                           fname(s));

    // Sizes and tables, against the file.
    if (s->size > (1ull << 61))
        return Q_FAIL(err, "%s: virtual size 0x%" PRIx64 " is too large", fname(s), s->size);
    uint64_t l2_span = s->cluster_size << s->l2_bits;
    uint64_t need_l1 = (s->size + l2_span - 1) / l2_span;
    if (s->l1_size > kMaxL1Entries)
        return Q_FAIL(err, "%s: active L1 table too large (%" PRIu32 " entries)", fname(s), s->l1_size);
    if (s->l1_size < need_l1)
        return Q_FAIL(err, "%s: L1 table is too small (%" PRIu32 " entries for a %" PRIu64 "-byte disk)",
                      fname(s), s->l1_size, s->size);
    if (s->l1_size && (!is_aligned(s, s->l1_offset) || s->l1_offset == 0 || s->l1_offset > flen ||
                       (flen - s->l1_offset) / 8 < s->l1_size))
        return Q_FAIL(
            err, "%s: invalid L1 table offset 0x%" PRIx64 " (%" PRIu32 " entries; file is %" PRIu64 " bytes)",
            fname(s), s->l1_offset, s->l1_size, flen);
    if (s->rt_clusters == 0 || (uint64_t)s->rt_clusters * s->cluster_size > kMaxRefTableBytes)
        return Q_FAIL(err, "%s: invalid refcount table size (%" PRIu32 " clusters)", fname(s),
                      s->rt_clusters);
    uint64_t rt_bytes = (uint64_t)s->rt_clusters * s->cluster_size;
    if (!is_aligned(s, s->rt_offset) || s->rt_offset == 0 || s->rt_offset > flen ||
        flen - s->rt_offset < rt_bytes)
        return Q_FAIL(err, "%s: invalid refcount table offset 0x%" PRIx64 " (%" PRIu32 " clusters)", fname(s),
                      s->rt_offset, s->rt_clusters);
    if (s->nb_snapshots > 65536)
        return Q_FAIL(err, "%s: too many snapshots (%" PRIu32 ")", fname(s), s->nb_snapshots);
    if (s->nb_snapshots &&
        (!is_aligned(s, s->snapshots_offset) || s->snapshots_offset == 0 || s->snapshots_offset >= flen))
        return Q_FAIL(err, "%s: invalid snapshot table offset 0x%" PRIx64, fname(s), s->snapshots_offset);

    if (read_table(s, s->l1_offset, s->l1_size, s->l1, err) != KEEL_OK ||
        read_table(s, s->rt_offset, rt_bytes / 8, s->rt, err) != KEEL_OK)
        return KEEL_ERR;
    if (read_snapshots(s, err) != KEEL_OK) return KEEL_ERR;
    if (!(s->flags & KEEL_BLOCK_CHECK) && validate_metadata(s, flen, err) != KEEL_OK) return KEEL_ERR;

    // l2-cache-size, as QEMU's option: bytes of L2 tables kept, at least one table.
    uint64_t tables = s->l2_cache_bytes ? s->l2_cache_bytes / s->cluster_size : 16;
    s->l2_cache.resize(static_cast<size_t>(std::clamp<uint64_t>(tables, 1, 65536)));
    s->rb_cache.resize(4);
    if ((s->flags & KEEL_BLOCK_RDWR) && !(s->flags & KEEL_BLOCK_CHECK)) {
        if ((s->incompat & kIncompatDirty) && repair_dirty(s, err) != KEEL_OK) return KEEL_ERR;
        if (check_metadata_refcounts(s, err) != KEEL_OK) return KEEL_ERR;
    }
    // Autoclear bits name extensions we do not maintain: clear them before the first write, as the spec asks.
    if ((s->flags & KEEL_BLOCK_RDWR) && s->version == 3 && s->autoclear) {
        s->autoclear = 0;
        if (write_header(s, err) != KEEL_OK) return KEEL_ERR;
    }
    return KEEL_OK;
}

void *open(KeelBlockNode *node, KeelBlockFile *file, uint32_t flags, const KeelBlockOption *opts,
           KeelError *err)
{
    auto s = std::make_unique<State>();
    s->node = node;
    s->file = file;
    s->flags = flags;
    for (const KeelBlockOption *o = opts; o && o->key; ++o) {
        char *end = nullptr;
        unsigned long long v = o->value ? std::strtoull(o->value, &end, 0) : 0;
        if (std::strcmp(o->key, "l2-cache-size") != 0 || !o->value || !*o->value || *end) {
            Q_FAIL(err, "%s: invalid option '%s%s%s' (qcow2 takes l2-cache-size=BYTES)", fname(s.get()),
                   o->key, o->value ? "=" : "", o->value ? o->value : "");
            return nullptr;
        }
        s->l2_cache_bytes = v;
    }
    if (do_open(s.get(), err) != KEEL_OK) return nullptr;
    return s.release();
}

void close(void *state)
{
    delete static_cast<State *>(state);
}

int write_header(State *s, KeelError *err)
{
    std::vector<uint8_t> b(s->version == 2 ? kHeaderV2Length : s->header_length, 0);
    if (s->raw_header.size() >= b.size()) memcpy(b.data(), s->raw_header.data(), b.size());
    put32(&b[0], kMagic);
    put32(&b[4], s->version);
    put32(&b[20], s->cluster_bits);
    put64(&b[24], s->size);
    put32(&b[32], 0);
    put32(&b[36], s->l1_size);
    put64(&b[40], s->l1_offset);
    put64(&b[48], s->rt_offset);
    put32(&b[56], s->rt_clusters);
    put32(&b[60], s->nb_snapshots);
    put64(&b[64], s->snapshots_offset);
    if (s->version == 3) {
        put64(&b[72], s->incompat);
        put64(&b[80], s->compat);
        put64(&b[88], s->autoclear);
        put32(&b[96], s->refcount_order);
        put32(&b[100], s->header_length);
        if (s->header_length > 104) b[104] = s->compression_type;
    }
    auto add_ext = [&b](uint32_t type, const uint8_t *data, size_t len) {
        size_t at = b.size();
        b.resize(at + 8 + ((len + 7) & ~size_t(7)), 0);
        put32(&b[at], type);
        put32(&b[at + 4], (uint32_t)len);
        if (len) memcpy(&b[at + 8], data, len);
    };
    if (s->version == 3) {
        if (!s->backing_fmt.empty())
            add_ext(kExtBackingFormat, (const uint8_t *)s->backing_fmt.data(), s->backing_fmt.size());
        for (const Extension &e : s->extensions)
            add_ext(e.type, e.data.data(), e.data.size());
        add_ext(kExtEnd, nullptr, 0);
    }
    uint64_t bf_off = 0;
    if (!s->backing_file.empty()) {
        bf_off = b.size();
        b.insert(b.end(), s->backing_file.begin(), s->backing_file.end());
    }
    put64(&b[8], bf_off);
    put32(&b[16], (uint32_t)s->backing_file.size());
    if (b.size() > s->cluster_size)
        return Q_FAIL(err,
                      "%s: the header, its extensions and the backing file name do not fit in one cluster",
                      fname(s));
    if (keel_services->block_file_pwrite(s->file, 0, b.data(), b.size(), err) != KEEL_OK) return KEEL_ERR;
    s->backing_file_offset = bf_off;
    s->backing_file_size = (uint32_t)s->backing_file.size();
    s->raw_header.assign(b.begin(), b.begin() + (s->version == 2 ? kHeaderV2Length : s->header_length));
    return KEEL_OK;
}

// The feature name table qemu-img writes: names of every feature bit the format defines.
static std::vector<uint8_t> default_feature_table()
{
    static const struct {
        uint8_t type, bit;
        const char *name;
    } table[] = {
        {0, 0, "dirty bit"},        {0, 1, "corrupt bit"},         {0, 2, "external data file"},
        {0, 3, "compression type"}, {0, 4, "extended L2 entries"}, {1, 0, "lazy refcounts"},
        {2, 0, "bitmaps"},          {2, 1, "raw external data"},
    };
    std::vector<uint8_t> d(KEEL_ARRAY_SIZE(table) * 48, 0);
    for (size_t i = 0; i < KEEL_ARRAY_SIZE(table); i++) {
        d[i * 48] = table[i].type;
        d[i * 48 + 1] = table[i].bit;
        memcpy(&d[i * 48 + 2], table[i].name, strlen(table[i].name));
    }
    return d;
}

static bool parse_size(const char *v, uint64_t *out)
{
    char *end;
    unsigned long long n = strtoull(v, &end, 0);
    uint64_t mul = 1;
    switch (*end) {
    case 'k':
    case 'K':
        mul = 1ull << 10;
        end++;
        break;
    case 'M':
        mul = 1ull << 20;
        end++;
        break;
    case 'G':
        mul = 1ull << 30;
        end++;
        break;
    case 'T':
        mul = 1ull << 40;
        end++;
        break;
    default:
        break;
    }
    if (end == v || *end) return false;
    *out = n * mul;
    return true;
}

int create(KeelBlockFile *file, uint64_t virtual_size, const KeelBlockOption *opts, KeelError *err)
{
    State st;
    State *s = &st;
    s->file = file;
    s->flags = KEEL_BLOCK_RDWR;
    uint64_t cluster_size = 65536, refcount_bits = 16;
    for (const KeelBlockOption *o = opts; o && o->key; o++) {
        std::string k = o->key, v = o->value ? o->value : "";
        if (k == "cluster_size") {
            if (!parse_size(v.c_str(), &cluster_size) || cluster_size < 512 || cluster_size > (2u << 20) ||
                (cluster_size & (cluster_size - 1)))
                return Q_FAIL(err, "Cluster size must be a power of two between 512 and 2048k");
        } else if (k == "refcount_bits") {
            if (!parse_size(v.c_str(), &refcount_bits) || refcount_bits < 1 || refcount_bits > 64 ||
                (refcount_bits & (refcount_bits - 1)))
                return Q_FAIL(err, "Refcount width must be a power of two and may not exceed 64 bits");
        } else if (k == "backing_file") {
            if (v.size() > 1023) return Q_FAIL(err, "backing file name too long");
            s->backing_file = v;
        } else if (k == "backing_fmt") {
            s->backing_fmt = v;
        } else if (k == "lazy_refcounts") {
            if (v != "off")
                return Q_FAIL(err, "qcow2: lazy_refcounts=%s is not supported (only off)", v.c_str());
        } else if (k == "compat") {
            if (v != "1.1" && v != "v3")
                return Q_FAIL(err, "qcow2: compat=%s is not supported (only 1.1)", v.c_str());
        } else if (k == "preallocation") {
            if (v != "off")
                return Q_FAIL(err, "qcow2: preallocation=%s is not supported (only off)", v.c_str());
        } else if (k == "compression_type") {
            if (v != "zlib")
                return Q_FAIL(err, "qcow2: compression_type=%s is not supported (only zlib)", v.c_str());
        } else {
            return Q_FAIL(err, "qcow2 does not support the option '%s'", k.c_str());
        }
    }
    if (!s->backing_fmt.empty() && s->backing_file.empty())
        return Q_FAIL(err, "qcow2: backing_fmt given without backing_file");
    if (virtual_size > (1ull << 61)) return Q_FAIL(err, "qcow2: virtual size too large");
    s->version = 3;
    s->cluster_bits = (uint32_t)__builtin_ctzll(cluster_size);
    s->refcount_order = (uint32_t)__builtin_ctzll(refcount_bits);
    s->header_length = 112;
    s->raw_header.assign(112, 0);
    s->extensions.push_back({kExtFeatureTable, default_feature_table()});
    setup_derived(s);
    uint64_t cs = s->cluster_size;
    // Layout as qemu-img's: header, refcount table, refcount block, then the L1 table.
    s->rt_offset = cs;
    s->rt_clusters = 1;
    s->rt.assign(cs / 8, 0);
    s->rt[0] = 2 * cs;
    s->l2_cache.resize(16);
    s->rb_cache.resize(4);
    if (write_header(s, err) != KEEL_OK) return KEEL_ERR;
    std::vector<uint8_t> c(cs, 0);
    put64(c.data(), 2 * cs);
    if (keel_services->block_file_pwrite(file, cs, c.data(), cs, err) != KEEL_OK) return KEEL_ERR;
    put64(c.data(), 0);
    if (keel_services->block_file_pwrite(file, 2 * cs, c.data(), cs, err) != KEEL_OK) return KEEL_ERR;
    for (uint64_t i = 0; i < 3; i++)
        if (set_refcount(s, i, 1, err) != KEEL_OK) return KEEL_ERR;
    s->free_hint = 3;
    return truncate(s, virtual_size, err);
}

int info(void *state, KeelBlockInfo *out)
{
    State *s = static_cast<State *>(state);
    out->virtual_size = s->size;
    out->cluster_size = (uint32_t)s->cluster_size;
    out->dirty = s->incompat & kIncompatDirty;
    out->corrupt = s->incompat & kIncompatCorrupt;
    out->backing_file = s->backing_file.empty() ? nullptr : s->backing_file.c_str();
    out->backing_fmt = s->backing_fmt.empty() ? nullptr : s->backing_fmt.c_str();
    return KEEL_OK;
}

void info_specific(void *state, KeelBlockInfoEmit emit, void *ctx)
{
    State *s = static_cast<State *>(state);
    emit(ctx, "compat", "compat", KEEL_BLOCK_INFO_STRING, 0, s->version == 2 ? "0.10" : "1.1");
    emit(ctx, "compression-type", "compression type", KEEL_BLOCK_INFO_STRING, 0, "zlib");
    if (s->version == 3) {
        emit(ctx, "lazy-refcounts", "lazy refcounts", KEEL_BLOCK_INFO_BOOL,
             !!(s->compat & kCompatLazyRefcounts), nullptr);
    }
    emit(ctx, "refcount-bits", "refcount bits", KEEL_BLOCK_INFO_INT, 1ll << s->refcount_order, nullptr);
    emit(ctx, "corrupt", "corrupt", KEEL_BLOCK_INFO_BOOL, !!(s->incompat & kIncompatCorrupt), nullptr);
    emit(ctx, "extended-l2", "extended l2", KEEL_BLOCK_INFO_BOOL, !!(s->incompat & kIncompatExtL2), nullptr);
}

int change_backing(void *state, const char *backing_file, const char *backing_fmt, KeelError *err)
{
    State *s = static_cast<State *>(state);
    if (s->version == 2 && backing_fmt && *backing_fmt)
        return Q_FAIL(err, "%s: a qcow2 v2 image cannot record a backing format", fname(s));
    s->backing_file = backing_file ? backing_file : "";
    s->backing_fmt = backing_fmt && s->backing_file.size() ? backing_fmt : "";
    return write_header(s, err);
}

} // namespace qcow2
