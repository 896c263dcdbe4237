// SPDX-License-Identifier: MIT
// qcow2 internal snapshots: the snapshot table, and create/apply/delete, each switched in by one header
// write.
#include "qcow2.h"

#include <algorithm>
#include <cinttypes>
#include <cstdlib>
#include <ctime>
#include <map>
#include <set>

/*
 * Crash safety. A snapshot operation changes, for thousands of clusters at once, both a refcount and the
 * COPIED flag of the active table entry that maps the cluster, and `qemu-img check` reports an error for any
 * entry whose flag disagrees with its refcount: no order of in-place writes is safe. So an operation never
 * changes the image in place. It is built in memory as a transaction and written in this order:
 *   1. into clusters that are free in the current image: the new active L1 table, copies of the active L2
 *      tables whose COPIED flags change, the new snapshot table, a copy of every refcount block whose counts
 *      change (with the new counts, which already treat everything the new image drops as free) and a new
 *      refcount table pointing at them; L2 tables that only snapshots use and that become active get their
 *      flags rewritten in place (nothing checks or reads the flags of a snapshot's tables);
 *   2. a flush, then one 48-byte write of the header (virtual size, L1 table, refcount table, snapshot
 *      table), then a flush.
 * A crash before the header write leaves the old image, untouched (step 1 wrote only free space); after it,
 * the new image, complete, with exact refcounts: not even a leak.
 */

namespace qcow2
{

namespace
{

constexpr uint32_t kMaxSnapshots = 65536; // QEMU's limits
constexpr uint64_t kMaxSnapshotTableBytes = 64ull << 20;
constexpr uint32_t kMaxSnapshotExtra = 1024;
constexpr uint32_t kKnownExtra = 24;  // vm_state_size_large, disk_size, icount
constexpr size_t kMaxNameBytes = 255; // what QEMU keeps of a name

} // namespace

int read_snapshots(State *s, KeelError *err)
{
    s->snapshots.clear();
    uint64_t off = s->snapshots_offset, flen = file_length(s), end = off;
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        uint8_t h[40];
        if (off > flen || flen - off < 40)
            return Q_FAIL(err,
                          "%s: snapshot table entry %" PRIu32 " at 0x%" PRIx64 " is past the end of the file",
                          fname(s), i, off);
        if (keel_services->block_file_pread(s->file, off, h, 40, err) != KEEL_OK) return KEEL_ERR;
        Snapshot sn{};
        sn.l1_offset = be64(h);
        sn.l1_size = be32(h + 8);
        uint16_t id_len = be16(h + 12), name_len = be16(h + 14);
        sn.date_sec = be32(h + 16);
        sn.date_nsec = be32(h + 20);
        sn.vm_clock_nsec = be64(h + 24);
        sn.vm_state_size = be32(h + 32);
        uint32_t extra = be32(h + 36);
        sn.icount = UINT64_MAX;
        if (extra > kMaxSnapshotExtra)
            return Q_FAIL(err, "%s: snapshot %" PRIu32 " has %" PRIu32 " bytes of extra data (too many)",
                          fname(s), i, extra);
        uint64_t total = 40ull + extra + id_len + name_len;
        if (flen - off < total)
            return Q_FAIL(err,
                          "%s: snapshot table entry %" PRIu32 " at 0x%" PRIx64 " is past the end of the file",
                          fname(s), i, off);
        std::vector<uint8_t> rest(total - 40);
        if (!rest.empty() &&
            keel_services->block_file_pread(s->file, off + 40, rest.data(), rest.size(), err))
            return KEEL_ERR;
        if (extra >= 8) sn.vm_state_size = be64(&rest[0]);
        sn.disk_size = s->size;
        if (extra >= 16) sn.disk_size = be64(&rest[8]);
        if (extra >= 24) sn.icount = be64(&rest[16]);
        sn.extra_size = extra;
        if (extra > kKnownExtra) sn.extra_unknown.assign(rest.begin() + kKnownExtra, rest.begin() + extra);
        sn.id.assign((const char *)rest.data() + extra, id_len);
        sn.name.assign((const char *)rest.data() + extra + id_len, name_len);
        if (!is_aligned(s, sn.l1_offset) || sn.l1_size > kMaxL1Entries ||
            (sn.l1_size && (sn.l1_offset > flen || (flen - sn.l1_offset) / 8 < sn.l1_size)))
            return Q_FAIL(
                err, "%s: snapshot %s has an invalid L1 table (offset 0x%" PRIx64 ", %" PRIu32 " entries)",
                fname(s), sn.id.c_str(), sn.l1_offset, sn.l1_size);
        s->snapshots.push_back(std::move(sn));
        end = off + total; // the padding after the last entry need not be in the file
        off += (total + 7) & ~7ull;
    }
    s->snapshots_bytes = end - s->snapshots_offset;
    return KEEL_OK;
}

int snapshot_list(void *state, KeelBlockSnapshotCallback cb, void *ctx, KeelError *)
{
    State *s = static_cast<State *>(state);
    for (const Snapshot &sn : s->snapshots) {
        KeelBlockSnapshot k{};
        k.size = sizeof k;
        k.id = sn.id.c_str();
        k.name = sn.name.c_str();
        k.vm_state_size = sn.vm_state_size;
        k.date_sec = sn.date_sec;
        k.date_nsec = sn.date_nsec;
        k.vm_clock_nsec = sn.vm_clock_nsec;
        k.icount = sn.icount;
        cb(ctx, &k);
    }
    return KEEL_OK;
}

namespace
{

uint64_t clusters_for(const State *s, uint64_t bytes)
{
    return (bytes + s->cluster_size - 1) >> s->cluster_bits;
}

std::vector<uint8_t> table_bytes(const std::vector<uint64_t> &entries, uint64_t size)
{
    std::vector<uint8_t> b(size, 0);
    for (size_t i = 0; i < entries.size(); i++)
        put64(&b[i * 8], entries[i]);
    return b;
}

std::vector<uint8_t> snapshot_table_bytes(const std::vector<Snapshot> &list)
{
    std::vector<uint8_t> b;
    for (const Snapshot &sn : list) {
        b.resize((b.size() + 7) & ~size_t(7), 0);
        size_t at = b.size();
        uint32_t extra = std::max(kKnownExtra, sn.extra_size);
        b.resize(at + 40 + extra + sn.id.size() + sn.name.size(), 0);
        uint8_t *p = &b[at];
        put64(p, sn.l1_offset);
        put32(p + 8, sn.l1_size);
        put32(p + 12, (uint32_t)(sn.id.size() << 16 | sn.name.size()));
        put32(p + 16, sn.date_sec);
        put32(p + 20, sn.date_nsec);
        put64(p + 24, sn.vm_clock_nsec);
        // A VM state too large for the old field reads there as none, as QEMU writes it.
        put32(p + 32, sn.vm_state_size <= UINT32_MAX ? (uint32_t)sn.vm_state_size : 0);
        put32(p + 36, extra);
        put64(p + 40, sn.vm_state_size);
        put64(p + 48, sn.disk_size);
        put64(p + 56, sn.icount);
        std::copy(sn.extra_unknown.begin(), sn.extra_unknown.end(), p + 40 + kKnownExtra);
        std::copy(sn.id.begin(), sn.id.end(), p + 40 + extra);
        std::copy(sn.name.begin(), sn.name.end(), p + 40 + extra + sn.id.size());
    }
    return b;
}

// What the header switches to.
struct Switch {
    uint64_t size = 0;
    std::vector<uint64_t> l1; // the active L1 table, flags included
    uint64_t l1_offset = 0;
    std::vector<Snapshot> snapshots;
    uint64_t snapshots_offset = 0, snapshots_bytes = 0;
};

// One operation, gathered before anything is written.
struct Txn {
    State *s;
    std::vector<int64_t> delta; // refcount change, by cluster
    std::set<uint64_t> taken;   // clusters allocated here (free in the current image)
    uint64_t cursor = 1;
    std::set<uint64_t> active;                                     // L2 tables of the current active L1
    std::map<uint64_t, std::vector<uint64_t>> tables;              // L2 tables read, by offset
    std::vector<std::pair<uint64_t, std::vector<uint8_t>>> writes; // before the switch

    void bump(uint64_t c, int64_t d)
    {
        if (c >= delta.size()) delta.resize(std::max<size_t>(c + 1, delta.size() * 2), 0);
        delta[c] += d;
    }
    // One reference more (@d = 1) or less (-1) to every cluster of [off, off + bytes).
    void add(uint64_t off, uint64_t bytes, int64_t d)
    {
        if (bytes == 0) return;
        for (uint64_t c = off >> s->cluster_bits; c <= (off + bytes - 1) >> s->cluster_bits; c++)
            bump(c, d);
    }
    int64_t change(uint64_t c) const { return c < delta.size() ? delta[c] : 0; }
};

// Drops the metadata caches when an operation ends: tables may have moved or been rewritten in the file.
struct CacheReset {
    State *s;
    ~CacheReset()
    {
        for (CachedTable &c : s->l2_cache)
            c.offset = c.lru = 0;
        for (CachedBlock &c : s->rb_cache)
            c.offset = c.lru = 0;
        s->zcache.clear();
        s->zcache_entry = 0;
    }
};

// @n contiguous clusters that are free in the current image (refcount 0) and not yet taken.
int64_t alloc(Txn &t, uint64_t n, KeelError *err)
{
    uint64_t run = t.cursor, c = t.cursor;
    while (c - run < n) {
        uint64_t v = 0;
        bool used = t.taken.count(c) != 0;
        if (!used && get_refcount(t.s, c, &v, err) != KEEL_OK) return -1;
        if (used || v != 0) run = c + 1;
        c++;
    }
    for (uint64_t i = run; i < run + n; i++) {
        t.taken.insert(i);
        t.bump(i, 1);
    }
    t.cursor = run + n;
    return (int64_t)(run << t.s->cluster_bits);
}

void release(Txn &t, uint64_t off, uint64_t n)
{
    for (uint64_t c = off >> t.s->cluster_bits, i = 0; i < n; i++, c++) {
        t.taken.erase(c);
        t.bump(c, -1);
    }
}

int table(Txn &t, uint64_t off, const std::vector<uint64_t> **out, KeelError *err)
{
    auto it = t.tables.find(off);
    if (it == t.tables.end()) {
        CachedTable *c;
        if (get_l2(t.s, off, &c, err) != KEEL_OK) return KEEL_ERR;
        it = t.tables.emplace(off, c->entries).first;
    }
    *out = &it->second;
    return KEEL_OK;
}

// Count (@d = 1) or uncount (-1) one path through each L2 table @tables names (offsets; 0: none) to every
// cluster it maps, as check counts them.
int walk(Txn &t, const std::vector<uint64_t> &tables, int64_t d, KeelError *err)
{
    State *s = t.s;
    uint64_t flen = file_length(s);
    for (uint64_t l2 : tables) {
        if (!l2) continue;
        const std::vector<uint64_t> *entries;
        if (table(t, l2, &entries, err) != KEEL_OK) return KEEL_ERR;
        t.add(l2, s->cluster_size, d);
        for (uint64_t e : *entries) {
            if (e & kOflagCompressed) {
                uint64_t host, len;
                compressed_range(s, e, &host, &len);
                if (host >= flen)
                    return Q_FAIL(err, "%s: compressed cluster at 0x%" PRIx64 " is past the end of the file",
                                  fname(s), host);
                t.add(host, len, d);
            } else if (uint64_t off = e & kOffsetMask) {
                if (!is_aligned(s, off) || off >= flen)
                    return Q_FAIL(err,
                                  "%s: data cluster at 0x%" PRIx64 " (L2 table at 0x%" PRIx64
                                  ") is unaligned or past the end of the file",
                                  fname(s), off, l2);
                t.add(off, s->cluster_size, d);
            }
        }
    }
    return KEEL_OK;
}

int new_refcount(Txn &t, uint64_t c, uint64_t *v, KeelError *err)
{
    if (get_refcount(t.s, c, v, err) != KEEL_OK) return KEEL_ERR;
    *v += (uint64_t)t.change(c); // out-of-range results are refused by commit()
    return KEEL_OK;
}

// The active L1 table that maps the L2 tables @tables, every COPIED flag (L1 and L2) as the new refcounts
// say. A table whose entries' flags change is rewritten before the switch: in place if only snapshots use it
// now, else as a copy (the current active tables must stay as they are until the switch).
int activate(Txn &t, const std::vector<uint64_t> &tables, std::vector<uint64_t> *out, KeelError *err)
{
    State *s = t.s;
    out->assign(tables.size(), 0);
    for (size_t i = 0; i < tables.size(); i++) {
        uint64_t at = tables[i], rc;
        if (!at) continue;
        const std::vector<uint64_t> *old;
        if (table(t, at, &old, err) != KEEL_OK) return KEEL_ERR;
        std::vector<uint64_t> entries = *old;
        bool changed = false;
        for (uint64_t &e : entries) {
            if ((e & kOflagCompressed) || !(e & kOffsetMask)) continue;
            if (new_refcount(t, (e & kOffsetMask) >> s->cluster_bits, &rc, err) != KEEL_OK) return KEEL_ERR;
            uint64_t ne = rc == 1 ? e | kOflagCopied : e & ~kOflagCopied;
            changed |= ne != e;
            e = ne;
        }
        if (changed && t.active.count(at)) {
            int64_t c = alloc(t, 1, err);
            if (c < 0) return KEEL_ERR;
            t.bump(at >> s->cluster_bits, -1); // the copy takes this path
            at = (uint64_t)c;
        }
        if (changed) t.writes.push_back({at, table_bytes(entries, s->cluster_size)});
        if (new_refcount(t, at >> s->cluster_bits, &rc, err) != KEEL_OK) return KEEL_ERR;
        (*out)[i] = at | (rc == 1 ? kOflagCopied : 0);
    }
    return KEEL_OK;
}

// Clusters for the new active L1 table w.l1.
int place_l1(Txn &t, Switch &w, KeelError *err)
{
    w.l1_offset = 0;
    if (w.l1.empty()) return KEEL_OK;
    uint64_t n = clusters_for(t.s, w.l1.size() * 8);
    int64_t off = alloc(t, n, err);
    if (off < 0) return KEEL_ERR;
    w.l1_offset = (uint64_t)off;
    t.writes.push_back({w.l1_offset, table_bytes(w.l1, n << t.s->cluster_bits)});
    return KEEL_OK;
}

// Clusters for the snapshot table of w.snapshots; the current table is dropped.
int place_snapshot_table(Txn &t, Switch &w, KeelError *err)
{
    State *s = t.s;
    if (s->nb_snapshots) t.add(s->snapshots_offset, s->snapshots_bytes, -1);
    w.snapshots_offset = w.snapshots_bytes = 0;
    if (w.snapshots.empty()) return KEEL_OK;
    std::vector<uint8_t> b = snapshot_table_bytes(w.snapshots);
    if (b.size() > kMaxSnapshotTableBytes)
        return Q_FAIL(err, "%s: the snapshot table would be too large", fname(s));
    w.snapshots_bytes = b.size();
    uint64_t n = clusters_for(s, b.size());
    int64_t off = alloc(t, n, err);
    if (off < 0) return KEEL_ERR;
    w.snapshots_offset = (uint64_t)off;
    b.resize(n << s->cluster_bits, 0);
    t.writes.push_back({w.snapshots_offset, std::move(b)});
    return KEEL_OK;
}

// A new refcount block for every refcount table slot whose counts change (the new blocks change counts too).
int shadow_blocks(Txn &t, std::map<uint64_t, uint64_t> &blocks, KeelError *err)
{
    State *s = t.s;
    for (;;) {
        std::vector<uint64_t> need;
        for (uint64_t c = 0; c < t.delta.size();) {
            uint64_t j = c >> s->rb_bits;
            if (blocks.count(j) || t.delta[c]) {
                if (!blocks.count(j)) need.push_back(j);
                c = (j + 1) << s->rb_bits;
            } else {
                c++;
            }
        }
        if (need.empty()) return KEEL_OK;
        for (uint64_t j : need) {
            int64_t off = alloc(t, 1, err);
            if (off < 0) return KEEL_ERR;
            blocks[j] = (uint64_t)off;
            if (j < s->rt.size() && (s->rt[j] & kRefTableOffsetMask))
                t.add(s->rt[j] & kRefTableOffsetMask, s->cluster_size, -1);
        }
    }
}

int write_all(State *s, const std::vector<std::pair<uint64_t, std::vector<uint8_t>>> &w, KeelError *err)
{
    for (const auto &[off, bytes] : w)
        if (keel_services->block_file_pwrite(s->file, off, bytes.data(), bytes.size(), err) != KEEL_OK)
            return KEEL_ERR;
    return KEEL_OK;
}

// Write the transaction and switch the header to it (see the order at the top of this file).
int commit(Txn &t, Switch &w, KeelError *err)
{
    State *s = t.s;
    uint64_t cs = s->cluster_size;
    std::map<uint64_t, uint64_t> blocks; // refcount table slot -> its new block
    t.add(s->rt_offset, (uint64_t)s->rt_clusters * cs, -1);
    uint64_t rt_off = 0, rt_n = 0;
    for (;;) {
        if (shadow_blocks(t, blocks, err) != KEEL_OK) return KEEL_ERR;
        uint64_t slots = std::max<uint64_t>(s->rt.size(), blocks.empty() ? 0 : blocks.rbegin()->first + 1);
        uint64_t n = clusters_for(s, slots * 8);
        if (rt_off && n <= rt_n) break;
        if (n * cs > kMaxRefTableBytes)
            return Q_FAIL(err, "%s: refcount table would grow too large", fname(s));
        if (rt_off) release(t, rt_off, rt_n);
        int64_t off = alloc(t, n, err);
        if (off < 0) return KEEL_ERR;
        rt_off = (uint64_t)off;
        rt_n = n;
    }

    // The new counts, checked: never below zero (the image would be corrupt), never above the maximum.
    std::vector<std::pair<uint64_t, std::vector<uint8_t>>> rc_writes;
    std::vector<uint64_t> freed;
    std::vector<uint64_t> rt(rt_n * cs / 8, 0);
    std::copy(s->rt.begin(), s->rt.end(), rt.begin());
    for (const auto &[j, off] : blocks) {
        std::vector<uint8_t> b(cs, 0);
        uint64_t old = j < s->rt.size() ? s->rt[j] & kRefTableOffsetMask : 0;
        if (old && keel_services->block_file_pread(s->file, old, b.data(), cs, err) != KEEL_OK)
            return KEEL_ERR;
        uint64_t first = j << s->rb_bits,
                 last = std::min<uint64_t>(first + (1ull << s->rb_bits), t.delta.size());
        for (uint64_t c = first; c < last; c++) {
            int64_t d = t.delta[c];
            if (!d) continue;
            uint64_t v;
            if (get_refcount(s, c, &v, err) != KEEL_OK) return KEEL_ERR;
            if (d < 0 && v < (uint64_t)-d)
                return Q_FAIL(err,
                              "%s: cluster %" PRIu64 " has refcount %" PRIu64
                              " but more references: the image is corrupt (see 'check')",
                              fname(s), c, v);
            if (d > 0 && s->max_refcount - v < (uint64_t)d)
                return Q_FAIL(err,
                              "%s: the refcount of cluster %" PRIu64 " would exceed %" PRIu64
                              " (refcount_bits=%u)",
                              fname(s), c, s->max_refcount, 1u << s->refcount_order);
            uint64_t at, len;
            put_refcount(s, b.data(), c - first, v + d, &at, &len);
            if (v + d == 0) freed.push_back(c);
        }
        rt[j] = off;
        rc_writes.push_back({off, std::move(b)});
    }
    rc_writes.push_back({rt_off, table_bytes(rt, rt.size() * 8)});

    if (write_all(s, t.writes, err) != KEEL_OK || write_all(s, rc_writes, err) != KEEL_OK ||
        keel_services->block_file_flush(s->file, err) != KEEL_OK)
        return KEEL_ERR;
    uint8_t h[48] = {};
    put64(h, w.size);
    put32(h + 12, (uint32_t)w.l1.size());
    put64(h + 16, w.l1_offset);
    put64(h + 24, rt_off);
    put32(h + 32, (uint32_t)rt_n);
    put32(h + 36, (uint32_t)w.snapshots.size());
    put64(h + 40, w.snapshots_offset);
    if (keel_services->block_file_pwrite(s->file, 24, h, sizeof h, err) != KEEL_OK) return KEEL_ERR;

    // Switched: the state follows the file.
    std::copy(h, h + sizeof h, s->raw_header.begin() + 24);
    s->size = w.size;
    s->l1 = std::move(w.l1);
    s->l1_size = (uint32_t)s->l1.size();
    s->l1_offset = w.l1_offset;
    s->rt = std::move(rt);
    s->rt_offset = rt_off;
    s->rt_clusters = (uint32_t)rt_n;
    s->snapshots = std::move(w.snapshots);
    s->nb_snapshots = (uint32_t)s->snapshots.size();
    s->snapshots_offset = w.snapshots_offset;
    s->snapshots_bytes = w.snapshots_bytes;
    s->free_hint = 0;
    s->pending_start = s->pending_end = 0;
    for (uint64_t c : freed)
        keel_services->block_file_discard(s->file, c << s->cluster_bits, cs, nullptr);
    return keel_services->block_file_flush(s->file, err);
}

int begin(State *s, Txn &t, KeelError *err)
{
    if (!(s->flags & KEEL_BLOCK_RDWR)) return Q_FAIL(err, "%s: image is opened read-only", fname(s));
    if (flush(s, err) != KEEL_OK) return KEEL_ERR; // whatever a cache holds is in the file from here on
    t.s = s;
    for (uint64_t e : s->l1)
        if (e & kOffsetMask) t.active.insert(e & kOffsetMask);
    return KEEL_OK;
}

std::vector<uint64_t> table_offsets(const std::vector<uint64_t> &l1)
{
    std::vector<uint64_t> v(l1.size());
    std::transform(l1.begin(), l1.end(), v.begin(), [](uint64_t e) { return e & kOffsetMask; });
    return v;
}

int read_l1(State *s, const Snapshot &sn, std::vector<uint64_t> *out, KeelError *err)
{
    std::vector<uint8_t> raw((size_t)sn.l1_size * 8);
    if (!raw.empty() &&
        keel_services->block_file_pread(s->file, sn.l1_offset, raw.data(), raw.size(), err) != KEEL_OK)
        return KEEL_ERR;
    out->resize(sn.l1_size);
    for (size_t i = 0; i < out->size(); i++)
        (*out)[i] = be64(&raw[i * 8]) & kOffsetMask;
    return KEEL_OK;
}

// The snapshot @id_or_name names, as QEMU looks it up: by ID first, then by name (-1: none).
int find(const State *s, const char *id_or_name)
{
    for (size_t i = 0; i < s->snapshots.size(); i++)
        if (s->snapshots[i].id == id_or_name) return (int)i;
    for (size_t i = 0; i < s->snapshots.size(); i++)
        if (s->snapshots[i].name == id_or_name) return (int)i;
    return -1;
}

} // namespace

int snapshot_create(void *state, const char *name, KeelError *err)
{
    State *s = static_cast<State *>(state);
    CacheReset reset{s};
    Txn t{};
    if (begin(s, t, err) != KEEL_OK) return KEEL_ERR;
    if (strlen(name) > kMaxNameBytes)
        return Q_FAIL(err, "%s: snapshot name too long (%zu bytes; at most %zu)", fname(s), strlen(name),
                      kMaxNameBytes);
    for (const Snapshot &sn : s->snapshots)
        if (sn.name == name)
            return Q_FAIL(err, "Snapshot with name '%s' already exists on device '%s'", name, fname(s));
    if (s->snapshots.size() >= kMaxSnapshots)
        return Q_FAIL(err, "%s: too many snapshots (at most %" PRIu32 ")", fname(s), kMaxSnapshots);

    // The snapshot takes the current active L1 table as it is; a new one, mapping the same L2 tables (or
    // copies), becomes active.
    Snapshot sn{};
    sn.l1_offset = s->l1_offset;
    sn.l1_size = s->l1_size;
    unsigned long max_id = 0; // QEMU's choice of ID: one more than the largest numeric ID
    for (const Snapshot &o : s->snapshots)
        max_id = std::max(max_id, std::strtoul(o.id.c_str(), nullptr, 10));
    sn.id = std::to_string(max_id + 1);
    sn.name = name;
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    sn.date_sec = (uint32_t)now.tv_sec;
    sn.date_nsec = (uint32_t)(now.tv_nsec / 1000 * 1000);
    sn.disk_size = s->size;
    sn.icount = 0; // what qemu-img snapshot -c writes (a VM without record/replay writes -1)

    Switch w;
    w.size = s->size;
    w.snapshots = s->snapshots;
    w.snapshots.push_back(std::move(sn));
    std::vector<uint64_t> tables = table_offsets(s->l1);
    if (walk(t, tables, 1, err) != KEEL_OK || activate(t, tables, &w.l1, err) != KEEL_OK ||
        place_l1(t, w, err) != KEEL_OK || place_snapshot_table(t, w, err) != KEEL_OK)
        return KEEL_ERR;
    return commit(t, w, err);
}

int snapshot_apply(void *state, const char *id_or_name, KeelError *err)
{
    State *s = static_cast<State *>(state);
    CacheReset reset{s};
    Txn t{};
    if (begin(s, t, err) != KEEL_OK) return KEEL_ERR;
    int i = find(s, id_or_name);
    if (i < 0) return Q_FAIL(err, "%s: snapshot not found", fname(s));
    const Snapshot &sn = s->snapshots[i];
    uint64_t l2_span = s->cluster_size << s->l2_bits;
    if (sn.disk_size > (1ull << 61))
        return Q_FAIL(err, "%s: snapshot %s has an invalid disk size (0x%" PRIx64 ")", fname(s),
                      sn.id.c_str(), sn.disk_size);
    std::vector<uint64_t> tables;
    if (read_l1(s, sn, &tables, err) != KEEL_OK) return KEEL_ERR;
    // The disk takes the snapshot's size; the L1 table covers it even if the snapshot's does not.
    tables.resize(std::max<uint64_t>(tables.size(), (sn.disk_size + l2_span - 1) / l2_span), 0);

    Switch w;
    w.size = sn.disk_size;
    w.snapshots = s->snapshots;
    w.snapshots_offset = s->snapshots_offset;
    w.snapshots_bytes = s->snapshots_bytes;
    t.add(s->l1_offset, (uint64_t)s->l1_size * 8, -1);
    if (walk(t, tables, 1, err) != KEEL_OK || walk(t, table_offsets(s->l1), -1, err) != KEEL_OK ||
        activate(t, tables, &w.l1, err) != KEEL_OK || place_l1(t, w, err) != KEEL_OK)
        return KEEL_ERR;
    return commit(t, w, err);
}

int snapshot_delete(void *state, const char *id_or_name, KeelError *err)
{
    State *s = static_cast<State *>(state);
    CacheReset reset{s};
    Txn t{};
    if (begin(s, t, err) != KEEL_OK) return KEEL_ERR;
    int i = find(s, id_or_name);
    if (i < 0) return Q_FAIL(err, "%s: snapshot not found", fname(s));
    std::vector<uint64_t> sn_tables;
    if (read_l1(s, s->snapshots[i], &sn_tables, err) != KEEL_OK) return KEEL_ERR;
    t.add(s->snapshots[i].l1_offset, (uint64_t)s->snapshots[i].l1_size * 8, -1);
    if (walk(t, sn_tables, -1, err) != KEEL_OK) return KEEL_ERR;

    Switch w;
    w.size = s->size;
    w.snapshots = s->snapshots;
    w.snapshots.erase(w.snapshots.begin() + i);
    // Tables the snapshot shared with the active L1 may now be the active one's alone: their flags change.
    if (activate(t, table_offsets(s->l1), &w.l1, err) != KEEL_OK) return KEEL_ERR;
    if (w.l1 == s->l1) {
        w.l1_offset = s->l1_offset;
    } else {
        t.add(s->l1_offset, (uint64_t)s->l1_size * 8, -1);
        if (place_l1(t, w, err) != KEEL_OK) return KEEL_ERR;
    }
    if (place_snapshot_table(t, w, err) != KEEL_OK) return KEEL_ERR;
    return commit(t, w, err);
}

} // namespace qcow2
