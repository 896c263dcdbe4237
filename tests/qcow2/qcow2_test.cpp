// SPDX-License-Identifier: MIT
// qcow2 interoperability: qemu-img's images read byte-identical here; ours pass qemu-img check and compare.
#include <catch2/catch.hpp>

#include "harness.h"

#include <csignal>
#include <cstring>
#include <random>

#include <sys/wait.h>
#include <unistd.h>

using namespace qcow2test;

namespace
{

// The whole virtual disk of an image read through the module.
std::vector<uint8_t> read_all(Image &img, size_t chunk = 65536 + 512)
{
    KeelBlockInfo info{};
    info.size = sizeof info;
    img.ops()->info(img.state, &info);
    std::vector<uint8_t> d(info.virtual_size);
    // Odd-sized chunks so that reads straddle cluster boundaries.
    for (uint64_t off = 0; off < d.size(); off += chunk) {
        size_t n = std::min<uint64_t>(chunk, d.size() - off);
        if (img.read(off, d.data() + off, n) != KEEL_OK) FAIL("read at " << off << ": " << img.err.message);
    }
    return d;
}

void sh(const std::string &cmd)
{
    std::string out;
    int rc = run(cmd, &out);
    INFO(cmd << "\n" << out);
    REQUIRE(rc == 0);
}

// Check that the module reads @img exactly as qemu-img converts it to raw.
void require_same_as_qemu(const TmpDir &t, const std::string &img, KeelBlockNode *backing = nullptr)
{
    sh("qemu-img convert -O raw '" + img + "' '" + t / "ref.raw" + "'");
    Image im(img, 0);
    INFO(im.err.message);
    REQUIRE(im.ok());
    if (backing) im.ops()->set_backing(im.state, backing);
    std::vector<uint8_t> want = read_file(t / "ref.raw"), got = read_all(im);
    REQUIRE(got.size() == want.size());
    CHECK(got == want);
}

struct CheckOut {
    KeelBlockCheckResult r{};
    std::vector<std::string> lines;
};

CheckOut our_check(Image &im, uint32_t fix)
{
    CheckOut c;
    c.r.size = sizeof c.r;
    int rc = im.ops()->check(
        im.state, fix, &c.r,
        [](void *ctx, const char *line) { static_cast<CheckOut *>(ctx)->lines.push_back(line); }, &c,
        &im.err);
    REQUIRE(rc == KEEL_OK);
    return c;
}

} // namespace

TEST_CASE("qcow2 reads images qemu-img wrote, at every cluster size", "[qcow2][interop]")
{
    auto cs = GENERATE(as<std::string>{}, "512", "4k", "64k", "2M");
    TmpDir t;
    std::string img = t / "a.qcow2";
    sh("qemu-img create -q -f qcow2 -o cluster_size=" + cs + " '" + img + "' 9M");
    sh("qemu-io -c 'write -P 0xab 0 64k' -c 'write -P 0x12 3000 70000' -c 'write -P 0x77 5M 1M' "
       "-c 'write -z 5242880 4096' -c 'write -P 0x5a 9436160 1024' '" +
       img + "'");
    require_same_as_qemu(t, img);
}

TEST_CASE("qcow2 reads a v2 (compat 0.10) image", "[qcow2][interop]")
{
    TmpDir t;
    std::string img = t / "v2.qcow2";
    sh("qemu-img create -q -f qcow2 -o compat=0.10 '" + img + "' 4M");
    sh("qemu-io -c 'write -P 0xcd 4096 100000' -c 'write -z 0 4096' '" + img + "'");
    require_same_as_qemu(t, img);
    Image im(img, 0);
    REQUIRE(im.ok());
    std::vector<std::string> items;
    im.ops()->info_specific(
        im.state,
        [](void *ctx, const char *key, const char *, KeelBlockInfoKind, int64_t i, const char *s) {
            static_cast<std::vector<std::string> *>(ctx)->push_back(std::string(key) + "=" +
                                                                    (s ? s : std::to_string(i)));
        },
        &items);
    CHECK(std::find(items.begin(), items.end(), "compat=0.10") != items.end());
    CHECK(std::find(items.begin(), items.end(), "refcount-bits=16") != items.end());
}

TEST_CASE("qcow2 reads compressed clusters made by qemu-img convert -c", "[qcow2][interop]")
{
    auto cs = GENERATE(as<std::string>{}, "4k", "64k", "2M");
    TmpDir t;
    // Mixed data: random bytes (incompressible), text-like runs, zeroes.
    std::vector<uint8_t> raw(6 << 20, 0);
    std::mt19937 rng(7);
    for (size_t i = 0; i < (1u << 20); i++)
        raw[i] = (uint8_t)rng();
    for (size_t i = 2u << 20; i < (4u << 20); i++)
        raw[i] = (uint8_t)("the quick brown fox "[i % 20] ^ (i >> 16));
    FILE *f = fopen((t / "src.raw").c_str(), "wb");
    fwrite(raw.data(), 1, raw.size(), f);
    fclose(f);
    std::string img = t / "c.qcow2";
    sh("qemu-img convert -c -O qcow2 -o cluster_size=" + cs + " '" + t / "src.raw" + "' '" + img + "'");
    Image im(img, 0);
    INFO(im.err.message);
    REQUIRE(im.ok());
    CHECK(read_all(im) == raw);
    CheckOut c = our_check(im, 0);
    CHECK(c.r.corruptions == 0);
    CHECK(c.r.leaks == 0);
    CHECK(c.r.compressed_clusters > 0);
}

TEST_CASE("qcow2 reads unallocated clusters from the backing node", "[qcow2][interop]")
{
    TmpDir t;
    std::vector<uint8_t> base(3 << 20);
    for (size_t i = 0; i < base.size(); i++)
        base[i] = (uint8_t)(i * 7 + (i >> 12));
    FILE *f = fopen((t / "base.raw").c_str(), "wb");
    fwrite(base.data(), 1, base.size(), f);
    fclose(f);
    std::string img = t / "top.qcow2";
    // The overlay is larger than its backing file: the tail past the backing reads as zeroes.
    sh("qemu-img create -q -f qcow2 -b '" + t / "base.raw" + "' -F raw '" + img + "' 4M");
    sh("qemu-io -c 'write -P 0x99 1000 5000' -c 'write -z 1M 64k' -c 'write -P 1 3670016 512' '" + img + "'");
    KeelBlockNode node = raw_node(t / "base.raw");
    require_same_as_qemu(t, img, &node);
    Image im(img, KEEL_BLOCK_NO_BACKING);
    KeelBlockInfo info{};
    info.size = sizeof info;
    im.ops()->info(im.state, &info);
    REQUIRE(info.backing_file);
    CHECK(std::string(info.backing_file) == t / "base.raw");
    REQUIRE(info.backing_fmt);
    CHECK(std::string(info.backing_fmt) == "raw");
}

TEST_CASE("qcow2 lists snapshots qemu-img made", "[qcow2][interop]")
{
    TmpDir t;
    std::string img = t / "s.qcow2";
    sh("qemu-img create -q -f qcow2 '" + img + "' 1M");
    sh("qemu-io -c 'write -P 0x11 0 64k' '" + img + "'");
    sh("qemu-img snapshot -c first '" + img + "'");
    sh("qemu-io -c 'write -P 0x22 0 4k' '" + img + "'");
    sh("qemu-img snapshot -c second '" + img + "'");
    require_same_as_qemu(t, img);
    Image im(img, 0);
    REQUIRE(im.ok());
    std::vector<std::string> names;
    REQUIRE(im.ops()->snapshot_list(
                im.state,
                [](void *ctx, const KeelBlockSnapshot *s) {
                    static_cast<std::vector<std::string> *>(ctx)->push_back(std::string(s->id) + ":" +
                                                                            s->name);
                },
                &names, &im.err) == KEEL_OK);
    CHECK(names == std::vector<std::string>{"1:first", "2:second"});
    CheckOut c = our_check(im, 0);
    for (auto &l : c.lines)
        UNSCOPED_INFO(l);
    CHECK(c.r.corruptions == 0);
    CHECK(c.r.leaks == 0);
}

TEST_CASE("qcow2 images written here pass qemu-img check and compare", "[qcow2][interop]")
{
    struct Cfg {
        const char *cluster_size, *refcount_bits;
    };
    auto cfg = GENERATE(Cfg{"64k", "16"}, Cfg{"512", "64"}, Cfg{"512", "1"}, Cfg{"4k", "8"}, Cfg{"2M", "2"});
    TmpDir t;
    std::string img = t / "w.qcow2", rawp = t / "w.raw";
    const uint64_t size = 24 << 20;
    REQUIRE(create(img, size, {{"cluster_size", cfg.cluster_size}, {"refcount_bits", cfg.refcount_bits}}) ==
            "");
    {
        std::string out;
        REQUIRE(run("qemu-img check '" + img + "'", &out) == 0);
    }
    std::vector<uint8_t> raw(size, 0);
    {
        Image im(img, KEEL_BLOCK_RDWR);
        INFO(im.err.message);
        REQUIRE(im.ok());
        std::mt19937_64 rng(std::hash<std::string>{}(std::string(cfg.cluster_size) + cfg.refcount_bits));
        std::vector<uint8_t> buf;
        for (int i = 0; i < 300; i++) {
            uint64_t len = 1 + rng() % (i % 10 == 0 ? (3 << 20) : 70000);
            uint64_t off = rng() % (size - len);
            int op = (int)(rng() % 10);
            if (op < 7) {
                buf.resize(len);
                for (auto &b : buf)
                    b = (uint8_t)rng();
                INFO("write " << off << "+" << len);
                REQUIRE(im.write(off, buf.data(), len) == KEEL_OK);
                memcpy(&raw[off], buf.data(), len);
            } else if (op < 9) {
                uint32_t flags = op == 7 ? KEEL_BLOCK_MAY_UNMAP : 0;
                INFO("write_zeroes " << off << "+" << len << ": " << im.err.message);
                REQUIRE(im.ops()->write_zeroes(im.state, off, len, flags, &im.err) == KEEL_OK);
                memset(&raw[off], 0, len);
            } else {
                // Discard: no backing, so whole discarded clusters read as zeroes, partial ones are kept.
                INFO("discard " << off << "+" << len << ": " << im.err.message);
                REQUIRE(im.ops()->discard(im.state, off, len, &im.err) == KEEL_OK);
                KeelBlockInfo info{};
                im.ops()->info(im.state, &info);
                uint64_t cs = info.cluster_size, a = (off + cs - 1) / cs * cs, e = (off + len) / cs * cs;
                if (e > a) memset(&raw[a], 0, e - a);
            }
        }
        CHECK(read_all(im) == raw);
        REQUIRE(im.ops()->flush(im.state, &im.err) == KEEL_OK);
        CheckOut c = our_check(im, 0);
        CHECK(c.r.corruptions == 0);
        CHECK(c.r.leaks == 0);
        CHECK(c.lines.empty());
    }
    if (std::string(cfg.cluster_size) == "512" && std::string(cfg.refcount_bits) == "64") {
        // 32 KiB per refcount block, 64 blocks per table cluster: the table must have grown.
        std::vector<uint8_t> h = read_file(img);
        CHECK((h[56] << 24 | h[57] << 16 | h[58] << 8 | h[59]) > 1);
    }
    FILE *f = fopen(rawp.c_str(), "wb");
    fwrite(raw.data(), 1, raw.size(), f);
    fclose(f);
    std::string out;
    CHECK(run("qemu-img check '" + img + "'", &out) == 0);
    INFO(out);
    CHECK(out.find("No errors were found on the image.") != std::string::npos);
    CHECK(run("qemu-img compare -f qcow2 -F raw '" + img + "' '" + rawp + "'", &out) == 0);
    CHECK(out.find("Images are identical.") != std::string::npos);
}

TEST_CASE("qcow2 grows an image it made and qemu-img agrees", "[qcow2][interop]")
{
    TmpDir t;
    std::string img = t / "g.qcow2";
    // 512-byte clusters: one L1 cluster covers 2 MiB of disk, so growing to 100 MiB moves the L1 table.
    REQUIRE(create(img, 1 << 20, {{"cluster_size", "512"}}) == "");
    {
        Image im(img, KEEL_BLOCK_RDWR);
        REQUIRE(im.ok());
        std::vector<uint8_t> b(4096, 0x3c);
        REQUIRE(im.write(4096, b.data(), b.size()) == KEEL_OK);
        REQUIRE(im.ops()->truncate(im.state, 100 << 20, &im.err) == KEEL_OK);
        REQUIRE(im.write((100 << 20) - 4096, b.data(), b.size()) == KEEL_OK);
    }
    std::string out;
    REQUIRE(run("qemu-img check '" + img + "'", &out) == 0);
    REQUIRE(run("qemu-img info --output=json '" + img + "'", &out) == 0);
    CHECK(out.find("\"virtual-size\": 104857600") != std::string::npos);
    REQUIRE(
        run("qemu-io -c 'read -P 0x3c 4096 4096' -c 'read -P 0x3c 104853504 4096' -c 'read -P 0 8192 1M' '" +
                img + "'",
            &out) == 0);
    CHECK(out.find("Pattern verification failed") == std::string::npos);
}

TEST_CASE("qcow2 create writes backing options qemu-img understands, and copies on write", "[qcow2][interop]")
{
    TmpDir t;
    std::vector<uint8_t> base(1 << 20);
    for (size_t i = 0; i < base.size(); i++)
        base[i] = (uint8_t)(i ^ (i >> 9));
    FILE *f = fopen((t / "base.raw").c_str(), "wb");
    fwrite(base.data(), 1, base.size(), f);
    fclose(f);
    std::string img = t / "top.qcow2";
    REQUIRE(create(img, 1 << 20, {{"backing_file", t / "base.raw"}, {"backing_fmt", "raw"}}) == "");
    std::vector<uint8_t> want = base;
    {
        Image im(img, KEEL_BLOCK_RDWR);
        REQUIRE(im.ok());
        KeelBlockNode node = raw_node(t / "base.raw");
        im.ops()->set_backing(im.state, &node);
        std::vector<uint8_t> b(1000, 0xee);
        REQUIRE(im.write(70000, b.data(), b.size()) ==
                KEEL_OK); // a partial cluster: the rest comes from base
        memcpy(&want[70000], b.data(), b.size());
        // Discarding a whole cluster over a backing file leaves a zero cluster, not the backing data.
        REQUIRE(im.ops()->discard(im.state, 131072, 65536, &im.err) == KEEL_OK);
        memset(&want[131072], 0, 65536);
        CHECK(read_all(im) == want);
        uint64_t pnum = 0, map = 0;
        uint32_t flags = 0;
        REQUIRE(im.ops()->block_status(im.state, 0, 1 << 20, &pnum, &map, &flags, &im.err) == KEEL_OK);
        CHECK(pnum == 65536);
        CHECK(flags == 0); // from the backing node
        REQUIRE(im.ops()->block_status(im.state, 65536, (1 << 20) - 65536, &pnum, &map, &flags, &im.err) ==
                KEEL_OK);
        CHECK(flags == (KEEL_BLOCK_STATUS_DATA | KEEL_BLOCK_STATUS_ALLOCATED));
        CHECK(pnum == 65536);
    }
    FILE *w = fopen((t / "want.raw").c_str(), "wb");
    fwrite(want.data(), 1, want.size(), w);
    fclose(w);
    std::string out;
    CHECK(run("qemu-img check '" + img + "'", &out) == 0);
    REQUIRE(run("qemu-img info '" + img + "'", &out) == 0);
    CHECK(out.find("backing file format: raw") != std::string::npos);
    CHECK(run("qemu-img compare -F raw '" + img + "' '" + t / "want.raw" + "'", &out) == 0);
    INFO(out);
    CHECK(out.find("Images are identical.") != std::string::npos);
}

TEST_CASE("qcow2 check reports and repairs leaked clusters", "[qcow2][check]")
{
    TmpDir t;
    std::string img = t / "l.qcow2";
    REQUIRE(create(img, 4 << 20, {}) == "");
    uint64_t l2_offset;
    {
        Image im(img, KEEL_BLOCK_RDWR);
        REQUIRE(im.ok());
        std::vector<uint8_t> b(3 * 65536, 0x42);
        REQUIRE(im.write(0, b.data(), b.size()) == KEEL_OK);
        uint8_t e[8];
        // Find the L2 table through the L1 table at the offset the header gives.
        File f(img);
        pread(f.f.fd, e, 8, 40);
        uint64_t l1 = 0;
        for (int i = 0; i < 8; i++)
            l1 = l1 << 8 | e[i];
        pread(f.f.fd, e, 8, (off_t)l1);
        l2_offset = 0;
        for (int i = 0; i < 8; i++)
            l2_offset = l2_offset << 8 | e[i];
        l2_offset &= 0x00fffffffffffe00ull;
    }
    // Drop the L2 entries of the second and third data clusters behind the driver's back: they leak.
    {
        File f(img);
        uint8_t zero[16] = {};
        REQUIRE(pwrite(f.f.fd, zero, 16, (off_t)(l2_offset + 8)) == 16);
    }
    std::string out;
    CHECK(run("qemu-img check '" + img + "'", &out) == 3); // 3: leaks only
    CHECK(out.find("2 leaked clusters were found on the image.") != std::string::npos);
    Image im(img, KEEL_BLOCK_RDWR);
    REQUIRE(im.ok());
    CheckOut c = our_check(im, 0);
    CHECK(c.r.leaks == 2);
    CHECK(c.r.corruptions == 0);
    REQUIRE(c.lines.size() == 2);
    CHECK(c.lines[0].rfind("Leaked cluster ", 0) == 0);
    CHECK(c.lines[0].find("refcount=1 reference=0") != std::string::npos);
    c = our_check(im, KEEL_BLOCK_FIX_LEAKS);
    CHECK(c.r.leaks_fixed == 2);
    CHECK(c.r.leaks == 0);
    c = our_check(im, 0);
    CHECK(c.r.leaks == 0);
    CHECK(c.r.allocated_clusters == 1);
    CHECK(run("qemu-img check '" + img + "'", &out) == 0);
}

TEST_CASE("qcow2 check finds a refcount that is too low", "[qcow2][check]")
{
    TmpDir t;
    std::string img = t / "c.qcow2";
    sh("qemu-img create -q -f qcow2 '" + img + "' 1M");
    sh("qemu-io -c 'write -P 1 0 64k' '" + img + "'");
    // The refcount block sits at 0x20000 with 16-bit entries; cluster 5 (the data, after the L2
    // table in cluster 4) gets refcount 0.
    {
        File f(img);
        uint8_t zero[2] = {};
        REQUIRE(pwrite(f.f.fd, zero, 2, 0x20000 + 2 * 5) == 2);
    }
    std::string out;
    run("qemu-img check '" + img + "'", &out);
    Image im(img, 0);
    REQUIRE(im.ok());
    CheckOut c = our_check(im, 0);
    INFO(out);
    CHECK(c.r.corruptions >= 1);
    CHECK(std::find(c.lines.begin(), c.lines.end(), "ERROR cluster 5 refcount=0 reference=1") !=
          c.lines.end());
    CHECK(out.find("ERROR cluster 5 refcount=0 reference=1") != std::string::npos);
}

TEST_CASE("qcow2 metadata survives a writer killed at random points", "[qcow2][crash]")
{
    TmpDir t;
    std::string img = t / "k.qcow2";
    // Small clusters and wide refcounts: allocations, refcount blocks and table growth happen all the time.
    REQUIRE(create(img, 64 << 20, {{"cluster_size", "512"}, {"refcount_bits", "64"}}) == "");
    std::mt19937 rng(1234);
    for (int round = 0; round < 12; round++) {
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            Image im(img, KEEL_BLOCK_RDWR);
            if (!im.ok()) _exit(2);
            std::mt19937_64 r((uint64_t)round);
            std::vector<uint8_t> b(200000, (uint8_t)round);
            for (;;) {
                uint64_t len = 1 + r() % b.size(), off = r() % ((64 << 20) - len);
                int rc = r() % 4 == 0 ? im.ops()->discard(im.state, off, len, &im.err)
                                      : im.write(off, b.data(), len);
                if (rc != KEEL_OK) _exit(3);
            }
        }
        usleep(20000 + rng() % 150000);
        kill(pid, SIGKILL);
        int st = 0;
        waitpid(pid, &st, 0);
        REQUIRE(WIFSIGNALED(st)); // it was still writing, not failed
        std::string out;
        int rc = run("qemu-img check '" + img + "'", &out);
        INFO("round " << round << "\n" << out);
        CHECK((rc == 0 || rc == 3)); // clean, or leaked clusters only
        CHECK(out.find("ERROR") == std::string::npos);
    }
    Image im(img, KEEL_BLOCK_RDWR);
    REQUIRE(im.ok());
    CheckOut c = our_check(im, KEEL_BLOCK_FIX_LEAKS);
    CHECK(c.r.corruptions == 0);
    std::string out;
    CHECK(run("qemu-img check '" + img + "'", &out) == 0);
}

TEST_CASE("qcow2 make_empty drops every allocation", "[qcow2][commit]")
{
    TmpDir t;
    std::string img = t / "e.qcow2";
    REQUIRE(create(img, 8 << 20, {{"cluster_size", "4k"}}) == "");
    {
        Image im(img, KEEL_BLOCK_RDWR);
        REQUIRE(im.ok());
        std::vector<uint8_t> b(3 << 20, 0x5e);
        REQUIRE(im.write(1000, b.data(), b.size()) == KEEL_OK);
        REQUIRE(im.write(7 << 20, b.data(), 4096) == KEEL_OK);
        REQUIRE(im.ops()->make_empty(im.state, &im.err) == KEEL_OK);
        CHECK(read_all(im) == std::vector<uint8_t>(8 << 20, 0));
        CheckOut c = our_check(im, 0);
        CHECK(c.r.allocated_clusters == 0);
        CHECK(c.r.leaks == 0);
        CHECK(c.r.corruptions == 0);
    }
    std::string out;
    CHECK(run("qemu-img check '" + img + "'", &out) == 0);
    REQUIRE(run("qemu-img map --output=json '" + img + "'", &out) == 0);
    CHECK(out.find("\"data\": true") == std::string::npos);
}

TEST_CASE("qcow2 takes l2-cache-size and refuses other runtime options", "[qcow2]")
{
    TmpDir t;
    std::string img = t / "c.qcow2";
    sh("qemu-img create -q -f qcow2 '" + img + "' 64M");
    sh("qemu-io -c 'write -P 0x3c 0 1M' -c 'write -P 0x4d 40M 1M' '" + img + "'");
    // One 64 KiB L2 table cached: reads that alternate between two L2 tables still read right.
    KeelBlockOption small[] = {{"l2-cache-size", "65536"}, {nullptr, nullptr}};
    Image im(img, 0, small);
    REQUIRE(im.ok());
    std::vector<uint8_t> a(4096), b(4096);
    for (int i = 0; i < 4; ++i) {
        REQUIRE(im.read(0, a.data(), a.size()) == KEEL_OK);
        REQUIRE(im.read(40 << 20, b.data(), b.size()) == KEEL_OK);
        CHECK(a[100] == 0x3c);
        CHECK(b[100] == 0x4d);
    }
    KeelBlockOption bad[] = {{"l2-cache-sise", "65536"}, {nullptr, nullptr}};
    Image wrong(img, 0, bad);
    CHECK_FALSE(wrong.ok());
    CHECK(wrong.err.message.find("invalid option 'l2-cache-sise=65536'") != std::string::npos);
}
