// SPDX-License-Identifier: MIT
// qcow2 check: recount every reference (header, tables, data, snapshots), compare with the refcounts, repair
// leaks.
#include "qcow2.h"

#include <cinttypes>
#include <cstdarg>
#include <cstdio>

namespace qcow2
{

namespace
{

struct Checker {
    State *s;
    KeelBlockCheckResult *res;
    KeelBlockReport report;
    void *ctx;
    uint64_t flen;
    std::vector<uint64_t> ref;
    uint64_t prev_data = 0;

    void say(const char *fmt, ...) KEEL_PRINTF(2, 3)
    {
        char line[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        if (report) report(ctx, line);
    }

    // Count one reference to every cluster of [off, off + bytes).
    void inc(uint64_t off, uint64_t bytes)
    {
        if (bytes == 0) return;
        if (off >= flen || bytes > flen - off) {
            say("ERROR: reference to 0x%" PRIx64 "+0x%" PRIx64 " is past the end of the image", off, bytes);
            res->corruptions++;
            return;
        }
        for (uint64_t c = off >> s->cluster_bits; c <= (off + bytes - 1) >> s->cluster_bits; c++)
            ref[c]++;
    }

    // Whether @cluster's refcount block is in the table and readable (a repair then writes only there).
    bool has_block(uint64_t cluster)
    {
        uint64_t idx = cluster >> s->rb_bits, off = idx < s->rt.size() ? s->rt[idx] & kRefTableOffsetMask : 0;
        return off && is_aligned(s, off) && off < flen && flen - off >= s->cluster_size;
    }

    uint64_t stored(uint64_t cluster)
    {
        uint64_t v = 0;
        if (get_refcount(s, cluster, &v, nullptr) != KEEL_OK) return 0;
        return v;
    }

    void walk_l2(uint64_t l2_off, bool active)
    {
        uint64_t cs = s->cluster_size;
        std::vector<uint8_t> raw(cs);
        if (keel_services->block_file_pread(s->file, l2_off, raw.data(), cs, nullptr) != KEEL_OK) {
            res->check_errors++;
            return;
        }
        for (uint64_t j = 0; j < cs / 8; j++) {
            uint64_t e = be64(&raw[j * 8]);
            if (e & kOflagCompressed) {
                uint64_t host, len;
                compressed_range(s, e, &host, &len);
                // The last sector of compressed data may extend past the end of the file; by a whole
                // cluster or more (qemu-img's limit) the descriptor is corrupt.
                if (host < flen && len > flen - host && len - (flen - host) < s->cluster_size)
                    len = flen - host;
                inc(host, len);
                if (active) {
                    res->allocated_clusters++;
                    res->compressed_clusters++;
                }
                continue;
            }
            uint64_t off = e & kOffsetMask;
            if (!off) continue;
            if (!is_aligned(s, off)) {
                say("ERROR offset=%" PRIx64 ": Cluster is not properly aligned; L2 entry corrupted.", off);
                res->corruptions++;
                continue;
            }
            inc(off, cs);
            if (active) {
                res->allocated_clusters++;
                if (prev_data && off != prev_data + cs) res->fragmented_clusters++;
                prev_data = off;
            }
        }
    }

    void walk_l1(uint64_t l1_off, uint64_t l1_size, bool active)
    {
        std::vector<uint8_t> raw(l1_size * 8);
        if (l1_size && keel_services->block_file_pread(s->file, l1_off, raw.data(), raw.size(), nullptr)) {
            res->check_errors++;
            return;
        }
        inc(l1_off, l1_size * 8);
        for (uint64_t i = 0; i < l1_size; i++) {
            uint64_t e = be64(&raw[i * 8]), off = e & kOffsetMask;
            if (!off) {
                // Flags on an entry without a table: qemu-img reads the header cluster as its L2 table.
                if (e) {
                    say("ERROR l1_index=%" PRIu64 " l1_entry=%" PRIx64 ": L1 entry has flags but no L2 table",
                        i, e);
                    res->corruptions++;
                }
                continue;
            }
            if (!is_aligned(s, off) || off >= flen || flen - off < s->cluster_size) {
                say("ERROR l2_offset=%" PRIx64
                    ": Table is not cluster aligned or outside the image; L1 entry "
                    "corrupted",
                    off);
                res->corruptions++;
                continue;
            }
            inc(off, s->cluster_size);
            walk_l2(off, active);
        }
    }

    // OFLAG_COPIED must be set exactly where the refcount is 1 (checked on the active tables only).
    void check_copied()
    {
        for (uint64_t i = 0; i < s->l1.size(); i++) {
            uint64_t e = s->l1[i], off = e & kOffsetMask;
            if (!off || !is_aligned(s, off) || off >= flen || flen - off < s->cluster_size) continue;
            uint64_t rc = stored(off >> s->cluster_bits);
            if ((rc == 1) != !!(e & kOflagCopied)) {
                say("ERROR OFLAG_COPIED L2 cluster: l1_index=%" PRIu64 " l1_entry=%" PRIx64
                    " refcount=%" PRIu64,
                    i, e, rc);
                res->corruptions++;
            }
            std::vector<uint8_t> raw(s->cluster_size);
            if (keel_services->block_file_pread(s->file, off, raw.data(), raw.size(), nullptr) != KEEL_OK)
                continue;
            for (uint64_t j = 0; j < s->cluster_size / 8; j++) {
                uint64_t l2e = be64(&raw[j * 8]), d = l2e & kOffsetMask;
                if ((l2e & kOflagCompressed) || !d || !is_aligned(s, d)) continue;
                uint64_t drc = stored(d >> s->cluster_bits);
                if ((drc == 1) != !!(l2e & kOflagCopied)) {
                    say("ERROR OFLAG_COPIED data cluster: l2_entry=%" PRIx64 " refcount=%" PRIu64, l2e, drc);
                    res->corruptions++;
                }
            }
        }
    }
};

} // namespace

int check(void *state, uint32_t fix, KeelBlockCheckResult *result, KeelBlockReport report, void *ctx,
          KeelError *err)
{
    State *s = static_cast<State *>(state);
    if (fix && !(s->flags & KEEL_BLOCK_RDWR))
        return Q_FAIL(err, "%s: cannot repair an image opened read-only", fname(s));
    KeelBlockCheckResult r{};
    r.size = sizeof r;
    Checker c{s, &r, report, ctx, file_length(s), {}};
    uint64_t cs = s->cluster_size;
    c.ref.assign((c.flen + cs - 1) / cs, 0);
    c.inc(0, cs < c.flen ? cs : c.flen); // the header cluster
    c.walk_l1(s->l1_offset, s->l1_size, true);
    for (const Snapshot &sn : s->snapshots)
        c.walk_l1(sn.l1_offset, sn.l1_size, false);
    if (s->nb_snapshots) c.inc(s->snapshots_offset, s->snapshots_bytes);
    c.inc(s->rt_offset, (uint64_t)s->rt_clusters * cs);
    for (uint64_t i = 0; i < s->rt.size(); i++) {
        uint64_t off = s->rt[i] & kRefTableOffsetMask;
        if (!off) continue;
        if (!is_aligned(s, off)) {
            c.say("ERROR refcount block %" PRIu64 " is not cluster aligned; refcount table entry corrupted",
                  i);
            r.corruptions++;
        } else if (off >= c.flen || c.flen - off < cs) {
            c.say("ERROR refcount block %" PRIu64 " is outside image", i);
            r.corruptions++;
        } else {
            c.inc(off, cs);
        }
    }

    uint64_t highest = 0;
    bool any = false;
    for (uint64_t i = 0; i < c.ref.size(); i++) {
        uint64_t st = c.stored(i), want = c.ref[i];
        // As qemu-img: the image ends after the last cluster that is referenced or has a refcount (leaked
        // clusters included).
        if (want || st) {
            highest = i;
            any = true;
        }
        if (st == want) continue;
        bool leak = st > want;
        // -r leaks lowers refcounts nothing uses; -r all also raises refcounts that are too low (what a crash
        // with lazy refcounts leaves), where the refcount block exists and the count fits in it.
        bool repair = leak ? (fix & KEEL_BLOCK_FIX_LEAKS) != 0
                           : (fix & KEEL_BLOCK_FIX_ERRORS) && want <= s->max_refcount && c.has_block(i);
        c.say("%s cluster %" PRIu64 " refcount=%" PRIu64 " reference=%" PRIu64,
              repair ? "Repairing"
              : leak ? "Leaked"
                     : "ERROR",
              i, st, want);
        if (repair) {
            if (set_refcount(s, i, want, err) != KEEL_OK) return KEEL_ERR;
            (leak ? r.leaks_fixed : r.corruptions_fixed)++;
        } else {
            (leak ? r.leaks : r.corruptions)++;
        }
    }
    c.check_copied();
    if (fix && r.corruptions == 0 && r.leaks == 0 && (s->incompat & kIncompatDirty)) {
        s->incompat &= ~kIncompatDirty;
        if (write_header(s, err) != KEEL_OK) return KEEL_ERR;
    }
    r.image_end_offset = any ? (int64_t)((highest + 1) * cs) : (int64_t)cs;
    r.total_clusters = (int64_t)((s->size + cs - 1) / cs);
    *result = r;
    return KEEL_OK;
}

} // namespace qcow2
