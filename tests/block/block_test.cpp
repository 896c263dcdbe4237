// SPDX-License-Identifier: MIT
// The block layer through the kernel: raw round trips, probing, backing chains, image locks, drives, -drive.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block.h"
#include "cli.h"
#include "error.h"
#include "kernel.h"

using namespace keel;

namespace
{

std::string tmp_path(const std::string &name)
{
    ::mkdir(BLOCK_TEST_TMP, 0755);
    std::string p = std::string(BLOCK_TEST_TMP) + "/" + name;
    ::unlink(p.c_str());
    return p;
}

void write_file(const std::string &path, const std::string &bytes, size_t size)
{
    std::string data = bytes;
    data.resize(std::max(size, bytes.size()), '\0');
    std::ofstream(path, std::ios::binary).write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::string read_file(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// The registry finds the modules of KEEL_MODULE_PATH (set by CMake for this test).
void ready()
{
    static bool done = false;
    if (done) return;
    kernel().registry().set_search_path(Registry::default_search_path());
    kernel().registry().refresh();
    done = true;
}

// Collects the layer's warnings instead of printing them.
struct Warnings {
    std::vector<std::string> seen;
    Warnings()
    {
        set_block_warning_sink([this](const std::string &m) { seen.push_back(m); });
    }
    ~Warnings()
    {
        set_block_warning_sink(
            [](const std::string &m) { std::fprintf(stderr, "warning: %s\n", m.c_str()); });
    }
};

std::string error_of(const std::function<void()> &fn)
{
    try {
        fn();
    } catch (const Error &e) {
        return e.what();
    }
    return "";
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed)
{
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i)
        v[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 9));
    return v;
}

} // namespace

TEST_CASE("the raw module registers a block driver the registry lists")
{
    ready();
    const BlockDriverRecord *raw = kernel().registry().find_block_driver("raw");
    REQUIRE(raw);
    REQUIRE(raw->module);
    CHECK(raw->module->kind == "block");
    CHECK(std::find(raw->module->blocks.begin(), raw->module->blocks.end(), "raw") !=
          raw->module->blocks.end());
    CHECK(kernel().registry().require_block_driver("raw").info->ops->probe(nullptr, 0, "x") == 1);
    CHECK_THROWS_WITH(kernel().registry().require_block_driver("qcow3"),
                      Catch::Contains("unknown block driver 'qcow3'"));
}

TEST_CASE("raw images: create, write, read, discard, write_zeroes, bounds")
{
    ready();
    std::string p = tmp_path("rw.raw");
    create_image(p, "raw", 4 << 20, {});
    struct stat st;
    REQUIRE(::stat(p.c_str(), &st) == 0);
    CHECK(st.st_size == 4 << 20);
    CHECK_THROWS_WITH(create_image(tmp_path("bad.raw"), "raw", 1 << 20, {{"preallocation", "full"}}),
                      Catch::Contains("preallocation"));
    CHECK_THROWS_WITH(create_image(tmp_path("bad.raw"), "raw", 1 << 20, {{"cluster_size", "64k"}}),
                      Catch::Contains("cluster_size"));

    auto node = open_image(p, "raw", KEEL_BLOCK_RDWR);
    CHECK(node_info(node.get()).virtual_size == 4u << 20);
    auto data = pattern(300000, 3);
    node_write(node.get(), 12345, data.data(), data.size());
    std::vector<uint8_t> back(data.size());
    node_read(node.get(), 12345, back.data(), back.size());
    CHECK(back == data);
    node_flush(node.get());
    // The bytes are in the file where the guest put them.
    std::string file = read_file(p);
    CHECK(std::memcmp(file.data() + 12345, data.data(), data.size()) == 0);

    // Scatter-gather through the node read path.
    std::vector<uint8_t> a(1000), b(5000);
    KeelIoVec iov[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
    KeelError err;
    REQUIRE(block_node_preadv(node.get(), 12345, iov, 2, &err) == KEEL_OK);
    CHECK(std::memcmp(a.data(), data.data(), a.size()) == 0);
    CHECK(std::memcmp(b.data(), data.data() + a.size(), b.size()) == 0);

    // Discard of whole 64 KiB blocks: a hole that reads as zeroes.
    node_discard(node.get(), 65536, 131072);
    std::vector<uint8_t> z(131072, 0xff);
    node_read(node.get(), 65536, z.data(), z.size());
    CHECK(std::all_of(z.begin(), z.end(), [](uint8_t c) { return c == 0; }));
    BlockStatus s = node_block_status(node.get(), 65536, 1 << 20);
    CHECK((s.flags & KEEL_BLOCK_STATUS_ZERO));
    CHECK(s.pnum == 131072);
    BlockStatus d = node_block_status(node.get(), 12345, 1000);
    CHECK(d.flags == (KEEL_BLOCK_STATUS_DATA | KEEL_BLOCK_STATUS_ALLOCATED));
    CHECK(d.map == 12345);
    // Bytes around the discarded range are untouched.
    uint8_t edge[2];
    node_read(node.get(), 65535, edge, 1);
    node_read(node.get(), 65536 + 131072, edge + 1, 1);
    CHECK(edge[0] == data[65535 - 12345]);
    CHECK(edge[1] == data[65536 + 131072 - 12345]);

    node_write_zeroes(node.get(), 20000, 100, 0);
    uint8_t w[102];
    node_read(node.get(), 19999, w, sizeof w);
    CHECK(w[0] == data[19999 - 12345]);
    CHECK(std::all_of(w + 1, w + 101, [](uint8_t c) { return c == 0; }));
    CHECK(w[101] == data[20100 - 12345]);

    // Beyond the virtual size: errors, nothing written.
    uint8_t one = 1;
    CHECK_THROWS_WITH(node_write(node.get(), 4 << 20, &one, 1), Catch::Contains("past the end"));
    CHECK_THROWS_WITH(node_read(node.get(), (4 << 20) - 1, w, 2), Catch::Contains("past the end"));
    CHECK(node_info(node.get()).virtual_size == 4u << 20);

    node_truncate(node.get(), 8 << 20);
    CHECK(node_info(node.get()).virtual_size == 8u << 20);
}

TEST_CASE("the file layer names the file and offset of a read past its end")
{
    ready();
    std::string p = tmp_path("short.raw");
    write_file(p, "abc", 100);
    auto node = open_image(p, "raw", 0);
    uint8_t buf[16];
    KeelError err;
    CHECK(block_file_pread(node->file.get(), 96, buf, 8, &err) == KEEL_ERR);
    CHECK_THAT(err.message, Catch::Contains(p) && Catch::Contains("offset 100"));
    // A read-only open refuses writes at the file layer too.
    KeelError err2;
    CHECK(block_file_pwrite(node->file.get(), 0, buf, 1, &err2) == KEEL_ERR);
    CHECK_THAT(err2.message, Catch::Contains("read-only"));
}

TEST_CASE("probing guesses raw with QEMU's warning and restricts block 0")
{
    ready();
    Warnings w;
    std::string p = tmp_path("probe.raw");
    write_file(p, "just some bytes", 1 << 20);
    bool guessed = false;
    CHECK(probe_format(p, &guessed) == "raw");
    CHECK(guessed);
    auto node = open_image(p, "", KEEL_BLOCK_RDWR);
    CHECK(node->format == "raw");
    REQUIRE(w.seen.size() == 1);
    CHECK_THAT(w.seen[0],
               Catch::Contains("Image format was not specified for '" + p + "' and probing guessed raw.") &&
                   Catch::Contains("Specify the 'raw' format explicitly to remove the restrictions."));
    // A write that would make it probe as another format is refused; others pass.
    // (qcow2's magic and version 3: what qcow2's probe claims.)
    CHECK_THROWS_WITH(node_write(node.get(), 0, "QFI\xfb\0\0\0\3", 8), Catch::Contains("probed raw"));
    node_write(node.get(), 0, "hello", 5);
    node_write(node.get(), 512, "QFI\xfb", 4);
    node.reset();
    CHECK(read_file(p).substr(0, 5) == "hello");

    // With format=raw: no warning, no restriction.
    w.seen.clear();
    auto explicit_raw = open_image(p, "raw", KEEL_BLOCK_RDWR);
    CHECK(w.seen.empty());
    node_write(explicit_raw.get(), 0, "QFI\xfb", 4);
}

TEST_CASE("a file starting with the qcow2 magic is not guessed raw")
{
    ready();
    Warnings w;
    std::string p = tmp_path("magic.img");
    create_image(p, "qcow2", 1 << 20, {});
    bool guessed = true;
    CHECK(probe_format(p, &guessed) == "qcow2");
    CHECK_FALSE(guessed);
    auto node = open_image(p, "", 0);
    CHECK(node->format == "qcow2");
    CHECK(w.seen.empty());
}

TEST_CASE("backing chains: relative names, reads through, loops and depth refused")
{
    ready();
    Warnings quiet; // the backing files here are probed
    auto backed = [](const std::string &path, const std::string &backing) {
        write_file(path, std::string("KEELTEST") + backing, 512);
    };
    // top -> base.raw (relative to top's directory).
    std::string base = tmp_path("base.raw");
    auto data = pattern(4096, 9);
    write_file(base, std::string(data.begin(), data.end()), 1 << 20);
    std::string top = tmp_path("top.tb");
    backed(top, "base.raw");
    {
        auto node = open_image(top, "test-backed", 0);
        REQUIRE(node->backing);
        CHECK(node->backing->filename == std::string(BLOCK_TEST_TMP) + "/base.raw");
        std::vector<uint8_t> back(4096);
        node_read(node.get(), 0, back.data(), back.size());
        CHECK(back == data);
        // NO_BACKING: the chain is not opened.
        auto alone = open_image(top, "test-backed", KEEL_BLOCK_NO_BACKING);
        CHECK_FALSE(alone->backing);
    }

    // a -> b -> a
    std::string a = tmp_path("loop-a.tb"), b = tmp_path("loop-b.tb");
    backed(a, "loop-b.tb");
    backed(b, "loop-a.tb");
    CHECK_THAT(error_of([&] { open_image(a, "", 0); }),
               Catch::Contains("backing chain loop") && Catch::Contains("loop-a.tb"));
    // An image that is its own backing file, through a different name.
    std::string self = tmp_path("self.tb");
    backed(self, "./self.tb");
    CHECK_THAT(error_of([&] { open_image(self, "", 0); }), Catch::Contains("backing chain loop"));

    // 258 images: deeper than the limit.
    std::string last = tmp_path("deep-258.raw");
    write_file(last, "", 512);
    for (int i = 257; i >= 0; --i)
        backed(tmp_path("deep-" + std::to_string(i) + ".tb"),
               i == 257 ? "deep-258.raw" : "deep-" + std::to_string(i + 1) + ".tb");
    CHECK_THAT(error_of([&] { open_image(std::string(BLOCK_TEST_TMP) + "/deep-0.tb", "", 0); }),
               Catch::Contains("deeper than 256"));
    // 200 deep is fine.
    CHECK_NOTHROW(open_image(std::string(BLOCK_TEST_TMP) + "/deep-58.tb", "", 0));
}

TEST_CASE("image locks: one writer, readers share, as QEMU's messages say")
{
    ready();
    std::string p = tmp_path("lock.raw");
    create_image(p, "raw", 1 << 20, {});
    {
        auto w1 = open_image(p, "raw", KEEL_BLOCK_RDWR);
        std::string e = error_of([&] { open_image(p, "raw", KEEL_BLOCK_RDWR); });
        CHECK_THAT(e, Catch::Contains("Failed to get \"write\" lock") &&
                          Catch::Contains("Is another process using the image [" + p + "]?"));
        CHECK_THAT(error_of([&] { open_image(p, "raw", 0); }),
                   Catch::Contains("Failed to get shared \"write\" lock"));
        // Force-share (keel-img -U) opens anyway.
        CHECK_NOTHROW(open_image(p, "raw", kBlockForceShare));
        // Creating over an image in use fails before it empties it.
        node_write(w1.get(), 100, "kept", 4);
        CHECK_THAT(error_of([&] { create_image(p, "raw", 4096, {}); }),
                   Catch::Contains("Failed to get \"write\" lock"));
        char kept[4];
        node_read(w1.get(), 100, kept, 4);
        CHECK(std::string(kept, 4) == "kept");
        CHECK(node_info(w1.get()).virtual_size == 1u << 20);
    }
    {
        auto r1 = open_image(p, "raw", 0);
        auto r2 = open_image(p, "raw", 0);
        CHECK_THAT(error_of([&] { open_image(p, "raw", KEEL_BLOCK_RDWR); }),
                   Catch::Contains("Failed to get \"write\" lock"));
    }
    // All closed: a writer gets it again.
    CHECK_NOTHROW(open_image(p, "raw", KEEL_BLOCK_RDWR));
}

TEST_CASE("image locks are seen by another process")
{
    ready();
    std::string p = tmp_path("lock2.raw");
    create_image(p, "raw", 1 << 20, {});
    auto w = open_image(p, "raw", KEEL_BLOCK_RDWR);
    // qemu-io from Debian's QEMU, when it is installed, must be refused too.
    if (::access("/usr/bin/qemu-io", X_OK) == 0) {
        std::string cmd = "/usr/bin/qemu-io -f raw -c 'write 0 512' '" + p + "' 2>&1";
        FILE *f = ::popen(cmd.c_str(), "r");
        REQUIRE(f);
        std::string out;
        char buf[256];
        while (size_t n = std::fread(buf, 1, sizeof buf, f))
            out.append(buf, n);
        ::pclose(f);
        CHECK_THAT(out, Catch::Contains("Failed to get \"write\" lock"));
    } else {
        // Without it: a child process of ours.
        pid_t pid = ::fork();
        if (pid == 0) {
            bool refused = !error_of([&] { open_image(p, "raw", KEEL_BLOCK_RDWR); }).empty();
            ::_exit(refused ? 0 : 1);
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    }
}

TEST_CASE("drives: ids, reads and writes, read-only, snapshot overlays")
{
    ready();
    std::string p = tmp_path("drive.raw");
    create_image(p, "raw", 1 << 20, {});
    KeelDrive *d = add_drive(parse_drive("file=" + p + ",format=raw,if=none"));
    CHECK(std::string(drive_id(d)).rfind("drive", 0) == 0);
    CHECK(find_drive(drive_id(d)) == d);
    CHECK(drive_length(d) == 1u << 20);
    auto data = pattern(70000, 1);
    KeelIoVec v{data.data(), data.size()};
    KeelError err;
    REQUIRE(drive_pwritev(d, 1000, &v, 1, &err) == KEEL_OK);
    REQUIRE(drive_flush(d, &err) == KEEL_OK);
    std::vector<uint8_t> back(data.size());
    KeelIoVec bv{back.data(), back.size()};
    REQUIRE(drive_preadv(d, 1000, &bv, 1, &err) == KEEL_OK);
    CHECK(back == data);
    KeelError past;
    CHECK(drive_preadv(d, (1 << 20) - 10, &bv, 1, &past) == KEEL_ERR);
    CHECK_THAT(past.message, Catch::Contains("past the end"));
    // Without a KeelError (a device outside realize) the failure is still reported, and nothing crashes.
    CHECK(drive_preadv(d, (1 << 20) - 10, &bv, 1, nullptr) == KEEL_ERR);
    REQUIRE(drive_write_zeroes(d, 2000, 10, 0, &err) == KEEL_OK);
    REQUIRE(drive_discard(d, 0, 65536, &err) == KEEL_OK);
    close_drives();
    CHECK(find_drive("drive0") == nullptr);
    std::string file = read_file(p);
    CHECK(std::memcmp(file.data() + 65536, data.data() + 65536 - 1000, 70000 - (65536 - 1000)) == 0);
    CHECK(std::all_of(file.begin(), file.begin() + 65536, [](char c) { return c == 0; }));

    // readonly=on: writes refused.
    KeelDrive *ro = add_drive(parse_drive("file=" + p + ",format=raw,readonly=on,id=ro"));
    CHECK(drive_read_only(ro));
    KeelError rerr;
    CHECK(drive_pwritev(ro, 0, &v, 1, &rerr) == KEEL_ERR);
    CHECK_THAT(rerr.message, Catch::Contains("read-only"));
    CHECK_THROWS_WITH(add_drive(parse_drive("file=" + p + ",format=raw,readonly=on,id=ro")),
                      Catch::Contains("Duplicate ID 'ro'"));
    close_drives();

    // snapshot=on: the guest sees its writes, the image never changes.
    std::string before = read_file(p);
    KeelDrive *s = add_drive(parse_drive("file=" + p + ",format=raw,snapshot=on,id=snap"));
    CHECK_FALSE(drive_read_only(s));
    auto more = pattern(200000, 77);
    KeelIoVec mv[2] = {{more.data(), 150000}, {more.data() + 150000, 50000}};
    REQUIRE(drive_pwritev(s, 30000, mv, 2, &err) == KEEL_OK);
    REQUIRE(drive_write_zeroes(s, 40000, 5, 0, &err) == KEEL_OK);
    std::vector<uint8_t> all(1 << 20);
    KeelIoVec av{all.data(), all.size()};
    REQUIRE(drive_preadv(s, 0, &av, 1, &err) == KEEL_OK);
    std::vector<uint8_t> expect(before.begin(), before.end());
    std::copy(more.begin(), more.end(), expect.begin() + 30000);
    std::fill(expect.begin() + 40000, expect.begin() + 40005, 0);
    CHECK(all == expect);
    // Another writer may not take the image while it is in use, even by a snapshot drive.
    CHECK_THAT(error_of([&] { open_image(p, "raw", KEEL_BLOCK_RDWR); }), Catch::Contains("lock"));
    close_drives();
    CHECK(read_file(p) == before);
}

TEST_CASE("the command line: -drive and -snapshot")
{
    RunConfig c = parse_command_line({"-drive", "file=a.img,format=qcow2,if=none,id=d0", "-drive",
                                      "file=b,,c.img,readonly=on", "-snapshot"});
    REQUIRE(c.drives.size() == 2);
    CHECK(c.drives[0].file == "a.img");
    CHECK(c.drives[0].format == "qcow2");
    CHECK(c.drives[0].interface == "none");
    CHECK(c.drives[0].id == "d0");
    CHECK(c.drives[0].snapshot);
    CHECK(c.drives[1].file == "b,c.img");
    CHECK(c.drives[1].interface == "virtio");
    CHECK(c.drives[1].read_only);
    CHECK(c.drives[1].id.empty());

    auto err = [](std::vector<std::string> args) { return error_of([&] { parse_command_line(args); }); };
    CHECK_THAT(err({"-drive", "format=raw"}), Catch::Contains("-drive format=raw: file= is required"));
    CHECK_THAT(err({"-drive", "file=x,fromat=raw"}),
               Catch::Contains("invalid option 'fromat'") && Catch::Contains("did you mean 'format'"));
    CHECK_THAT(err({"-drive", "file=x,if=scsi"}), Catch::Contains("unsupported bus type 'scsi'"));
    CHECK_THAT(err({"-drive", "file=x,readonly=maybe"}),
               Catch::Contains("invalid value 'maybe' for 'readonly'"));
    CHECK_THAT(err({"-drive", "file=x,id=0bad"}), Catch::Contains("invalid id '0bad'"));
    CHECK_THAT(err({"-drive", "file=x,raw"}), Catch::Contains("option 'raw' needs a value"));
    CHECK_THAT(err({"-drive"}), Catch::Contains("requires an argument"));
}

TEST_CASE("a drive of a missing file or an unknown format names it")
{
    ready();
    CHECK_THAT(error_of([] { add_drive(parse_drive("file=/nonexistent/x.img,format=raw")); }),
               Catch::Contains("/nonexistent/x.img") && Catch::Contains("No such file"));
    std::string p = tmp_path("fmt.raw");
    write_file(p, "", 4096);
    CHECK_THAT(error_of([&] { add_drive(parse_drive("file=" + p + ",format=vmdk")); }),
               Catch::Contains("unknown block driver 'vmdk'"));
    CHECK(drive_ids().empty());
}

namespace
{

// The entries of a directory (without . and ..).
std::vector<std::string> dir_entries(const std::string &dir)
{
    std::vector<std::string> out;
    for (const auto &e : std::filesystem::directory_iterator(dir))
        out.push_back(e.path().filename().string());
    return out;
}

// What this process's descriptors point to under `dir` (a deleted file reads "... (deleted)").
std::vector<std::string> open_files_in(const std::string &dir)
{
    std::vector<std::string> out;
    for (const auto &e : std::filesystem::directory_iterator("/proc/self/fd")) {
        std::error_code ec;
        std::string target = std::filesystem::read_symlink(e.path(), ec).string();
        if (!ec && target.rfind(dir + "/", 0) == 0) out.push_back(e.path().string() + " -> " + target);
    }
    return out;
}

// Sets an environment variable for one scope.
struct ScopedEnv {
    std::string name;
    std::optional<std::string> old;
    ScopedEnv(const std::string &n, const std::string &v) : name(n)
    {
        if (const char *o = std::getenv(n.c_str())) old = o;
        ::setenv(n.c_str(), v.c_str(), 1);
    }
    ~ScopedEnv()
    {
        if (old)
            ::setenv(name.c_str(), old->c_str(), 1);
        else
            ::unsetenv(name.c_str());
    }
};

} // namespace

TEST_CASE("snapshot=on writes to a temporary qcow2 overlay in TMPDIR that is unlinked at once")
{
    ready();
    std::string tmpdir = tmp_path("snapdir");
    std::filesystem::remove_all(tmpdir);
    std::filesystem::create_directory(tmpdir);
    ScopedEnv env("TMPDIR", tmpdir);

    // A qcow2 image with data in its first MiB.
    std::string p = tmp_path("snap.qcow2");
    create_image(p, "qcow2", 8 << 20, {});
    auto first = pattern(1 << 20, 5);
    {
        auto node = open_image(p, "qcow2", KEEL_BLOCK_RDWR);
        node_write(node.get(), 0, first.data(), first.size());
    }
    std::string before = read_file(p);

    KeelDrive *d = add_drive(parse_drive("file=" + p + ",format=qcow2,snapshot=on,id=snap2"));
    CHECK(d->snapshot);
    CHECK(drive_length(d) == 8u << 20);
    // The overlay is already unlinked, yet open: a file on disk, not memory.
    CHECK(dir_entries(tmpdir).empty());
    auto open = open_files_in(tmpdir);
    REQUIRE(open.size() == 1);
    CHECK_THAT(open[0], Catch::Contains("/keel-snapshot-") && Catch::EndsWith("(deleted)"));
    CHECK(d->node->format == "qcow2");
    REQUIRE(d->node->backing);
    CHECK(d->node->backing->filename == p);
    CHECK_FALSE(d->node->backing->flags & KEEL_BLOCK_RDWR);

    // 6 MiB of writes over the image's data and past it, zeroes, a discard: all read back.
    auto big = pattern(6 << 20, 9);
    KeelError err;
    for (size_t off = 0; off < big.size(); off += 1 << 20) {
        KeelIoVec v{big.data() + off, 1 << 20};
        REQUIRE(drive_pwritev(d, 512 * 1024 + off, &v, 1, &err) == KEEL_OK);
    }
    REQUIRE(drive_write_zeroes(d, 2 << 20, 4096, 0, &err) == KEEL_OK);
    REQUIRE(drive_flush(d, &err) == KEEL_OK);
    std::vector<uint8_t> all(8 << 20);
    KeelIoVec av{all.data(), all.size()};
    REQUIRE(drive_preadv(d, 0, &av, 1, &err) == KEEL_OK);
    std::vector<uint8_t> expect(8 << 20, 0);
    std::copy(first.begin(), first.begin() + 512 * 1024, expect.begin());
    std::copy(big.begin(), big.end(), expect.begin() + 512 * 1024);
    std::fill(expect.begin() + (2 << 20), expect.begin() + (2 << 20) + 4096, 0);
    CHECK(all == expect);
    // The writes are in the overlay's file: it grew by at least their size.
    struct stat st;
    REQUIRE(::stat(open[0].substr(0, open[0].find(" -> ")).c_str(), &st) == 0);
    CHECK(st.st_size >= 6 << 20);
    // The image is in use (shared read-only): no writer may take it meanwhile.
    CHECK_THAT(error_of([&] { open_image(p, "qcow2", KEEL_BLOCK_RDWR); }), Catch::Contains("lock"));
    CHECK_NOTHROW(open_image(p, "qcow2", 0)); // readers may

    close_drives();
    // Gone with the drive, and the image byte-identical, clean and writable again.
    CHECK(open_files_in(tmpdir).empty());
    CHECK(dir_entries(tmpdir).empty());
    CHECK(read_file(p) == before);
    auto node = open_image(p, "qcow2", KEEL_BLOCK_RDWR | KEEL_BLOCK_CHECK);
    KeelBlockCheckResult r = node_check(node.get(), 0, [](const std::string &) {});
    CHECK(r.corruptions == 0);
    CHECK(r.leaks == 0);
}

TEST_CASE("snapshot=on with an unusable TMPDIR names the directory and changes nothing")
{
    ready();
    std::string p = tmp_path("snap-fail.raw");
    create_image(p, "raw", 1 << 20, {});
    std::string before = read_file(p);
    ScopedEnv env("TMPDIR", "/nonexistent/keel-tmp");
    CHECK_THAT(
        error_of([&] { add_drive(parse_drive("file=" + p + ",format=raw,snapshot=on")); }),
        Catch::Contains("-drive file=" + p) &&
            Catch::Contains("Could not create the temporary -snapshot overlay in '/nonexistent/keel-tmp'") &&
            Catch::Contains("No such file or directory"));
    CHECK(drive_ids().empty());
    CHECK(read_file(p) == before);
    // Nothing holds the image: a writer gets it.
    CHECK_NOTHROW(open_image(p, "raw", KEEL_BLOCK_RDWR));
}

TEST_CASE("snapshot=on over an image of a size that is not whole sectors rounds up as QEMU does")
{
    ready();
    std::string p = tmp_path("odd.raw");
    write_file(p, "odd-sized image", 1000);
    std::string before = read_file(p);
    KeelDrive *d = add_drive(parse_drive("file=" + p + ",format=raw,snapshot=on"));
    CHECK(drive_length(d) == 1024);
    std::vector<uint8_t> all(1024, 0xff);
    KeelIoVec v{all.data(), all.size()};
    KeelError err;
    REQUIRE(drive_preadv(d, 0, &v, 1, &err) == KEEL_OK);
    CHECK(std::string(all.begin(), all.begin() + 1000) == before);
    CHECK(std::all_of(all.begin() + 1000, all.end(), [](uint8_t b) { return b == 0; }));
    std::vector<uint8_t> ones(1024, 1);
    KeelIoVec w{ones.data(), ones.size()};
    REQUIRE(drive_pwritev(d, 0, &w, 1, &err) == KEEL_OK);
    REQUIRE(drive_preadv(d, 0, &v, 1, &err) == KEEL_OK);
    CHECK(all == ones);
    close_drives();
    CHECK(read_file(p) == before);
}
