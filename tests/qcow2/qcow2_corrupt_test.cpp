// SPDX-License-Identifier: MIT
// Hand-made corrupt qcow2 images: every one gives a clear error (never a crash) and is never modified.
#include <catch2/catch.hpp>

#include "harness.h"

#include <unistd.h>

#include <random>

using namespace qcow2test;

namespace
{

void put_be(std::vector<uint8_t> &d, size_t at, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        d[at + i] = (uint8_t)v;
}

void write_file(const std::string &path, const std::vector<uint8_t> &d)
{
    FILE *f = fopen(path.c_str(), "wb");
    if (!d.empty()) fwrite(d.data(), 1, d.size(), f);
    fclose(f);
}

// A valid image qemu-img made (64k clusters, 2 MiB, data in the first two clusters; some compressed).
std::vector<uint8_t> good_image(const TmpDir &t, bool compressed = false)
{
    std::string p = t / "good.qcow2", out;
    if (compressed) {
        REQUIRE(run("qemu-img create -q -f qcow2 '" + t / "tmp.qcow2" + "' 2M", &out) == 0);
        REQUIRE(run("qemu-io -c 'write -P 0x41 0 128k' '" + t / "tmp.qcow2" + "'", &out) == 0);
        REQUIRE(run("qemu-img convert -c -O qcow2 '" + t / "tmp.qcow2" + "' '" + p + "'", &out) == 0);
    } else {
        REQUIRE(run("qemu-img create -q -f qcow2 '" + p + "' 2M", &out) == 0);
        REQUIRE(run("qemu-io -c 'write -P 0x41 0 128k' '" + p + "'", &out) == 0);
    }
    return read_file(p);
}

// Open @d (and read all of it if it opens): return the first error, "" if none.
std::string try_image(const TmpDir &t, const std::vector<uint8_t> &d, uint32_t flags = 0)
{
    std::string p = t / "bad.qcow2";
    write_file(p, d);
    std::string msg;
    {
        Image im(p, flags);
        if (!im.ok()) {
            msg = im.err.message.empty() ? "(no message)" : im.err.message;
        } else {
            KeelBlockInfo info{};
            info.size = sizeof info;
            im.ops()->info(im.state, &info);
            std::vector<uint8_t> buf(65536);
            for (uint64_t off = 0; off < info.virtual_size && msg.empty(); off += buf.size())
                if (im.read(off, buf.data(), std::min<uint64_t>(buf.size(), info.virtual_size - off)) !=
                    KEEL_OK)
                    msg = im.err.message.empty() ? "(no message)" : im.err.message;
        }
    }
    CHECK(read_file(p) == d); // never modified
    return msg;
}

uint64_t be_at(const std::vector<uint8_t> &d, size_t at)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | d[at + i];
    return v;
}

} // namespace

TEST_CASE("qcow2 refuses corrupt headers with a clear error", "[qcow2][corrupt]")
{
    TmpDir t;
    std::vector<uint8_t> good = good_image(t);
    REQUIRE(try_image(t, good) == "");
    struct Case {
        const char *what;
        size_t at;
        uint64_t value;
        int bytes;
        const char *expect;
    };
    const uint64_t l1 = be_at(good, 40);
    auto c = GENERATE_COPY(values<Case>({
        {"bad magic", 0, 0x514649fa, 4, "not in qcow2 format"},
        {"version 4", 4, 4, 4, "unsupported qcow2 version 4"},
        {"version 1", 4, 1, 4, "unsupported qcow2 version 1"},
        {"cluster_bits 8", 20, 8, 4, "cluster size"},
        {"huge cluster_bits", 20, 40, 4, "cluster size"},
        {"encrypted", 32, 1, 4, "encrypted"},
        {"absurd L1 size", 36, 0x7fffffff, 4, "L1 table too large"},
        {"L1 too small for the disk", 36, 0, 4, "L1 table is too small"},
        {"L1 past EOF", 40, 0x100000000ull, 8, "invalid L1 table offset"},
        {"L1 unaligned", 40, 0x30200, 8, "invalid L1 table offset"},
        {"refcount table past EOF", 48, 0x10000000ull, 8, "invalid refcount table offset"},
        {"refcount table unaligned", 48, 0x10008, 8, "invalid refcount table offset"},
        {"no refcount table clusters", 56, 0, 4, "invalid refcount table size"},
        {"too many snapshots", 60, 100000, 4, "too many snapshots"},
        {"snapshot table past EOF", 64, 0x7fff0000ull, 8, "invalid snapshot table offset"},
        {"unknown incompatible bit", 72, 1ull << 40, 8, "unsupported qcow2 feature(s): bit 40"},
        {"external data file", 72, 1ull << 2, 8, "external data file"},
        {"extended L2", 72, 1ull << 4, 8, "extended L2 entries"},
        {"refcount order 7", 96, 7, 4, "refcount_order 7"},
        {"header length too short", 100, 96, 4, "header length"},
        {"header length past the cluster", 100, 0x20000, 4, "header length"},
        {"backing name past the cluster", 8, 0xfff0, 8, "backing file name"},
        {"L2 table unaligned", l1 + 0, 0x8000000000040200ull, 8, "L2 table at 0x40200"},
        {"L2 table past EOF", l1 + 0, 0x8000000010000000ull, 8, "L2 table at 0x10000000"},
        {"header extension too long", 112 + 4, 0x100000, 4, "header extension"},
        {"refcount block past EOF", 0x10000, 0x10000000, 8,
         "refcount block 0 at 0x10000000 is unaligned or past"},
        {"refcount block on the L1 table", 0x10000, l1, 8,
         "refcount block 0 at 0x30000 overlaps the active L1"},
        {"L2 table on the refcount table", l1 + 0, 0x8000000000010000ull, 8, "overlaps the refcount table"},
        {"L2 table on the header", l1 + 0, 0x8000000000000000ull, 8, "has flags but no L2 table"},
        {"L1 entry reserved bits", l1 + 0, 0x8000000000040001ull, 8, "has reserved bits set"},
        {"L1 table on the refcount table", 40, 0x10000, 8,
         "the refcount table at 0x10000 overlaps the active L1"},
    }));
    INFO(c.what);
    std::vector<uint8_t> d = good;
    if (c.at == 8) put_be(d, 16, 100, 4); // with a name length
    put_be(d, c.at, c.value, c.bytes);
    if (c.at == 60) put_be(d, 64, 0x10000, 8);
    if (c.at == 64) put_be(d, 60, 1, 4);
    std::string msg = try_image(t, d);
    INFO(msg);
    CHECK(msg.find(c.expect) != std::string::npos);
}

TEST_CASE("qcow2 refuses truncated files and bad data cluster pointers", "[qcow2][corrupt]")
{
    TmpDir t;
    std::vector<uint8_t> good = good_image(t);
    SECTION("truncated header")
    {
        std::vector<uint8_t> d(good.begin(), good.begin() + 50);
        CHECK(try_image(t, d).find("too short") != std::string::npos);
    }
    SECTION("empty file")
    {
        CHECK(try_image(t, {}).find("too short") != std::string::npos);
    }
    SECTION("truncated tables")
    {
        std::vector<uint8_t> d(good.begin(), good.begin() + 0x18000);
        CHECK(try_image(t, d).find("invalid L1 table offset") != std::string::npos);
    }
    SECTION("data cluster unaligned or past EOF")
    {
        uint64_t l2 = be_at(good, be_at(good, 40)) & 0x00fffffffffffe00ull;
        std::vector<uint8_t> d = good;
        put_be(d, l2, 0x8000000000050200ull, 8);
        CHECK(try_image(t, d).find("unaligned") != std::string::npos);
        put_be(d, l2, 0x8000000100000000ull, 8);
        CHECK(try_image(t, d).find("past the end of the file") != std::string::npos);
    }
}

TEST_CASE("qcow2 refuses compressed clusters out of range", "[qcow2][corrupt]")
{
    TmpDir t;
    std::vector<uint8_t> good = good_image(t, true);
    REQUIRE(try_image(t, good) == "");
    uint64_t l2 = be_at(good, be_at(good, 40)) & 0x00fffffffffffe00ull;
    uint64_t e = be_at(good, l2);
    REQUIRE((e >> 62) == 1); // compressed
    std::vector<uint8_t> d = good;
    SECTION("offset past EOF")
    {
        put_be(d, l2, (1ull << 62) | 0x10000000ull, 8);
        CHECK(try_image(t, d).find("past the end of the file") != std::string::npos);
    }
    SECTION("garbage instead of deflate data")
    {
        uint64_t host = e & ((1ull << 54) - 1);
        for (size_t i = 0; i < 64; i++)
            d[host + i] = 0xff;
        CHECK(try_image(t, d).find("does not decompress") != std::string::npos);
    }
}

TEST_CASE("qcow2 honours the dirty and corrupt bits", "[qcow2][corrupt]")
{
    TmpDir t;
    std::vector<uint8_t> d = good_image(t);
    SECTION("dirty: read-only opens say so, read/write opens repair leaks and clear the bit")
    {
        put_be(d, 72, 1, 8);
        d.resize(9 * 65536);
        put_be(d, 0x20000 + 2 * 8, 1, 2); // a leaked cluster 8
        std::string p = t / "dirty.qcow2";
        write_file(p, d);
        KeelBlockInfo info{};
        info.size = sizeof info;
        {
            Image im(p, 0);
            REQUIRE(im.ok());
            im.ops()->info(im.state, &info);
            CHECK(info.dirty);
        }
        CHECK(read_file(p) == d);
        {
            Image im(p, KEEL_BLOCK_RDWR);
            INFO(im.err.message);
            REQUIRE(im.ok());
            im.ops()->info(im.state, &info);
            CHECK_FALSE(info.dirty);
        }
        std::string out;
        CHECK(run("qemu-img check '" + p + "'", &out) == 0);
    }
    SECTION("dirty with a refcount too low: read/write refused untouched, check -r all repairs")
    {
        put_be(d, 72, 1, 8);
        put_be(d, 0x20000 + 2 * 5, 0, 2); // guest cluster 0's data has refcount 0
        std::string p = t / "dirty.qcow2";
        write_file(p, d);
        {
            Image im(p, KEEL_BLOCK_RDWR);
            REQUIRE_FALSE(im.ok());
            CHECK(im.err.message.find("check finds 2 corruptions") != std::string::npos);
        }
        CHECK(read_file(p) == d);
        Image im(p, KEEL_BLOCK_RDWR | KEEL_BLOCK_CHECK);
        REQUIRE(im.ok());
        KeelBlockCheckResult r{};
        r.size = sizeof r;
        REQUIRE(im.ops()->check(im.state, KEEL_BLOCK_FIX_LEAKS | KEEL_BLOCK_FIX_ERRORS, &r, nullptr, nullptr,
                                &im.err) == KEEL_OK);
        CHECK(r.corruptions_fixed == 1);
        CHECK(r.corruptions == 0);
        std::string out;
        CHECK(run("qemu-img check '" + p + "'", &out) == 0);
        INFO(out);
    }
    SECTION("corrupt: read-only yes, read-write no")
    {
        put_be(d, 72, 2, 8);
        CHECK(try_image(t, d) == "");
        CHECK(try_image(t, d, KEEL_BLOCK_RDWR).find("corrupt") != std::string::npos);
        CHECK(try_image(t, d, KEEL_BLOCK_RDWR | KEEL_BLOCK_CHECK) == "");
    }
}

TEST_CASE("qcow2 create refuses bad options", "[qcow2][create]")
{
    TmpDir t;
    std::string p = t / "x.qcow2";
    CHECK(create(p, 1 << 20, {{"cluster_size", "1000"}}).find("power of two") != std::string::npos);
    CHECK(create(p, 1 << 20, {{"cluster_size", "4M"}}).find("power of two") != std::string::npos);
    CHECK(create(p, 1 << 20, {{"cluster_size", "256"}}).find("power of two") != std::string::npos);
    CHECK(create(p, 1 << 20, {{"refcount_bits", "128"}}).find("Refcount width") != std::string::npos);
    CHECK(create(p, 1 << 20, {{"refcount_bits", "3"}}).find("Refcount width") != std::string::npos);
    CHECK(create(p, 1 << 20, {{"lazy_refcounts", "on"}}).find("lazy_refcounts") != std::string::npos);
    CHECK(create(p, 1 << 20, {{"nonsense", "1"}}).find("'nonsense'") != std::string::npos);
    CHECK(create(p, 1 << 20, {{"cluster_size", "2M"}, {"refcount_bits", "1"}}) == "");
    std::string out;
    CHECK(run("qemu-img check '" + p + "'", &out) == 0);
}

TEST_CASE("qcow2 survives randomly damaged metadata", "[qcow2][corrupt]")
{
    TmpDir t;
    std::vector<uint8_t> good = good_image(t, GENERATE(false, true));
    std::mt19937 rng(99);
    std::string p = t / "fuzz.qcow2";
    int opened = 0;
    for (int round = 0; round < 300; round++) {
        std::vector<uint8_t> d = good;
        // Damage the header, the tables (L1 at 0x30000, L2 at 0x40000, refcounts at 0x10000..0x2ffff).
        static const uint64_t areas[] = {0, 0x10000, 0x20000, 0x30000, 0x40000};
        for (int k = 0; k < 1 + (int)(rng() % 4); k++) {
            uint64_t at = areas[rng() % 5] + rng() % (rng() % 2 ? 120 : 4096);
            if (at < d.size()) d[at] = (uint8_t)rng();
        }
        write_file(p, d);
        Image im(p, KEEL_BLOCK_CHECK);
        if (!im.ok()) {
            CHECK(!im.err.message.empty());
            continue;
        }
        opened++;
        KeelBlockInfo info{};
        info.size = sizeof info;
        im.ops()->info(im.state, &info);
        std::vector<uint8_t> buf(65536);
        for (uint64_t off = 0; off < std::min<uint64_t>(info.virtual_size, 4 << 20); off += buf.size()) {
            im.err = KeelError{};
            if (im.read(off, buf.data(), std::min<uint64_t>(buf.size(), info.virtual_size - off)) != KEEL_OK)
                CHECK(!im.err.message.empty());
        }
        KeelBlockCheckResult r{};
        r.size = sizeof r;
        im.ops()->check(im.state, 0, &r, nullptr, nullptr, &im.err);
        CHECK(read_file(p) == d);
    }
    CHECK(opened > 0);
}

TEST_CASE("qcow2 check reports what open refuses, and counts leaks in the image end", "[qcow2][corrupt]")
{
    TmpDir t;
    std::vector<uint8_t> good = good_image(t);
    const uint64_t l1 = be_at(good, 40);
    std::string p = t / "bad.qcow2";
    auto check_image = [&](const std::vector<uint8_t> &d) {
        write_file(p, d);
        Image im(p, KEEL_BLOCK_CHECK);
        INFO(im.err.message);
        REQUIRE(im.ok());
        KeelBlockCheckResult r{};
        r.size = sizeof r;
        REQUIRE(im.ops()->check(im.state, 0, &r, nullptr, nullptr, &im.err) == KEEL_OK);
        CHECK(read_file(p) == d);
        return r;
    };
    SECTION("metadata open refuses")
    {
        std::vector<uint8_t> d = good;
        put_be(d, l1, 0x8000000000010000ull, 8); // the L2 table is the refcount table
        CHECK(check_image(d).corruptions > 0);
        d = good;
        put_be(d, l1, 0x8000000000000000ull, 8); // flags, no table: qemu-img reads the header as its L2 table
        CHECK(check_image(d).corruptions == 1);
    }
    SECTION("a compressed descriptor running a cluster or more past the end is corrupt, as in qemu-img")
    {
        std::vector<uint8_t> c = good_image(t, true);
        uint64_t l2 = be_at(c, be_at(c, 40)) & 0x00fffffffffffe00ull;
        CHECK(check_image(c).corruptions == 0);
        put_be(c, l2, be_at(c, l2) | (0xffull << 54), 8); // 256 sectors
        CHECK(check_image(c).corruptions == 1);
        std::string out;
        CHECK(run("qemu-img check '" + p + "'", &out) == 2);
    }
    SECTION("leaked clusters past the data move the image end, as qemu-img counts it")
    {
        // The good image is 7 clusters (header, refcount table and block, L1, L2, two data clusters).
        REQUIRE(good.size() == 7 * 65536);
        std::vector<uint8_t> d = good;
        d.resize(10 * 65536);
        put_be(d, 0x20000 + 2 * 9, 1, 2); // cluster 9: refcount 1, referenced by nothing
        KeelBlockCheckResult r = check_image(d);
        CHECK(r.leaks == 1);
        CHECK(r.corruptions == 0);
        CHECK(r.image_end_offset == 10 * 65536);
        std::string out;
        CHECK(run("qemu-img check --output=json '" + p + "'", &out) == 3);
        CHECK(out.find("\"image-end-offset\": 655360") != std::string::npos);
    }
}
