// SPDX-License-Identifier: MIT
// qcow2 internal snapshots through the driver, checked against qemu-img (check, snapshot -l, convert -l).
#include <catch2/catch.hpp>

#include "harness.h"

#include <algorithm>
#include <csignal>
#include <cstring>
#include <map>
#include <random>

#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace qcow2test;

namespace
{

using Bytes = std::vector<uint8_t>;

// REQUIRE that a driver call on @im succeeded, showing the driver's message when it did not.
#define REQUIRE_OK(im, call)     \
    do {                         \
        int rc_ = (call);        \
        INFO((im).err.message);  \
        REQUIRE(rc_ == KEEL_OK); \
    } while (0)

#define REQUIRE_OPEN(im)        \
    do {                        \
        INFO((im).err.message); \
        REQUIRE((im).ok());     \
    } while (0)

std::string q(const std::string &s)
{
    return "'" + s + "'";
}

uint64_t disk_size(Image &im)
{
    KeelBlockInfo info{};
    info.size = sizeof info;
    im.ops()->info(im.state, &info);
    return info.virtual_size;
}

Bytes read_disk(Image &im)
{
    Bytes d(disk_size(im));
    for (uint64_t off = 0; off < d.size(); off += 1 << 20) {
        size_t n = std::min<uint64_t>(1 << 20, d.size() - off);
        if (im.read(off, d.data() + off, n) != KEEL_OK) FAIL("read at " << off);
    }
    return d;
}

// "" when equal, else where they first differ (Catch would print megabytes of both).
std::string diff(const Bytes &got, const Bytes &want)
{
    if (got.size() != want.size())
        return "size " + std::to_string(got.size()) + ", expected " + std::to_string(want.size());
    auto m = std::mismatch(got.begin(), got.end(), want.begin());
    if (m.first == got.end()) return "";
    return "byte " + std::to_string(m.first - got.begin()) + " is " + std::to_string(*m.first) +
           ", expected " + std::to_string(*m.second);
}

void write_file(const std::string &path, const Bytes &d)
{
    FILE *f = fopen(path.c_str(), "wb");
    REQUIRE(f);
    REQUIRE(fwrite(d.data(), 1, d.size(), f) == d.size());
    fclose(f);
}

void sh(const std::string &cmd)
{
    std::string out;
    int rc = run(cmd, &out);
    INFO(cmd << "\n" << out);
    REQUIRE(rc == 0);
}

// qemu-img check finds nothing at all: no corruption, no leak.
void require_clean(const std::string &img)
{
    std::string out;
    int rc = run("qemu-img check " + q(img), &out);
    INFO(out);
    REQUIRE(rc == 0);
    REQUIRE(out.find("No errors were found on the image.") != std::string::npos);
}

// "ID:NAME" of every snapshot, as qemu-img's JSON lists them.
std::vector<std::string> qemu_snapshots(const std::string &img)
{
    std::string out;
    REQUIRE(run("qemu-img info --output=json " + q(img) +
                    " | python3 -c 'import json,sys; [print(s[\"id\"] + \":\" + s[\"name\"]) for s in "
                    "json.load(sys.stdin).get(\"snapshots\", [])]'",
                &out) == 0);
    std::vector<std::string> v;
    for (size_t at = 0, nl; (nl = out.find('\n', at)) != std::string::npos; at = nl + 1)
        v.push_back(out.substr(at, nl - at));
    return v;
}

std::vector<std::string> our_snapshots(Image &im)
{
    std::vector<std::string> v;
    REQUIRE(im.ops()->snapshot_list(
                im.state,
                [](void *ctx, const KeelBlockSnapshot *s) {
                    static_cast<std::vector<std::string> *>(ctx)->push_back(std::string(s->id) + ":" +
                                                                            s->name);
                },
                &v, &im.err) == KEEL_OK);
    return v;
}

// @d cut or padded with zeroes to @n bytes.
Bytes sized(Bytes d, uint64_t n)
{
    d.resize(n, 0);
    return d;
}

// A snapshot's disk as QEMU reads it without applying it (at the size of the active disk).
Bytes qemu_snapshot_data(const TmpDir &t, const std::string &img, const std::string &id)
{
    std::string out = t / "snap.raw";
    sh("qemu-img convert -f qcow2 -l snapshot.id=" + id + " -O raw " + q(img) + " " + q(out));
    return read_file(out);
}

void require_active(const TmpDir &t, const std::string &img, const Bytes &want)
{
    write_file(t / "want.raw", want);
    std::string out;
    int rc = run("qemu-img compare -f qcow2 -F raw " + q(img) + " " + q(t / "want.raw"), &out);
    INFO(out);
    REQUIRE(rc == 0);
}

int op(Image &im, int (*KeelBlockDriverOps::*hook)(void *, const char *, KeelError *), const std::string &arg)
{
    im.err = KeelError{};
    return (im.ops()->*hook)(im.state, arg.c_str(), &im.err);
}
int create_snap(Image &im, const std::string &name)
{
    return op(im, &KeelBlockDriverOps::snapshot_create, name);
}
int apply_snap(Image &im, const std::string &id)
{
    return op(im, &KeelBlockDriverOps::snapshot_apply, id);
}
int delete_snap(Image &im, const std::string &id)
{
    return op(im, &KeelBlockDriverOps::snapshot_delete, id);
}

void fill(Bytes &d, uint64_t off, uint64_t len, std::mt19937_64 &rng)
{
    for (uint64_t i = 0; i < len; i++)
        d[off + i] = (uint8_t)rng();
}

// Discard in the image and in @model: whole clusters only (no backing file: they then read as zeroes).
void discard(Image &im, Bytes &model, uint64_t off, uint64_t len)
{
    INFO("discard " << off << "+" << len);
    REQUIRE_OK(im, im.ops()->discard(im.state, off, len, &im.err));
    KeelBlockInfo info{};
    im.ops()->info(im.state, &info);
    uint64_t cs = info.cluster_size, a = (off + cs - 1) / cs * cs;
    uint64_t e = off + len == model.size() ? off + len : (off + len) / cs * cs;
    if (e > a) std::fill(model.begin() + (long)a, model.begin() + (long)e, 0);
}

// Write [off, off + len) of @model into the image.
void put(Image &im, const Bytes &model, uint64_t off, uint64_t len)
{
    INFO("write " << off << "+" << len);
    REQUIRE_OK(im, im.write(off, model.data() + off, len));
}

struct Cfg {
    const char *cluster_size, *refcount_bits;
};

// Run @fn in a child process traced by this one and kill it at the entry of its @n-th pwrite (before the
// write happens; 0: let it finish). Returns how many pwrites the child had started.
int run_killed_at(int n, const std::function<void()> &fn)
{
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, nullptr, nullptr);
        raise(SIGSTOP);
        fn();
        _exit(0);
    }
    int st = 0, count = 0, sig = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    REQUIRE(ptrace(PTRACE_SETOPTIONS, pid, nullptr, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL) == 0);
    for (;;) {
        REQUIRE(ptrace(PTRACE_SYSCALL, pid, nullptr, sig) == 0);
        sig = 0;
        REQUIRE(waitpid(pid, &st, 0) == pid);
        if (WIFEXITED(st)) {
            REQUIRE(WEXITSTATUS(st) == 0);
            return count;
        }
        REQUIRE(WIFSTOPPED(st));
        if (WSTOPSIG(st) != (SIGTRAP | 0x80)) {
            sig = WSTOPSIG(st); // a signal for the child: deliver it
            continue;
        }
        __ptrace_syscall_info info{};
        REQUIRE(ptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof info, &info) > 0);
        if (info.op == PTRACE_SYSCALL_INFO_ENTRY && info.entry.nr == SYS_pwrite64 && ++count == n) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return count;
        }
    }
}

} // namespace

TEST_CASE("qcow2 snapshots keep their data through create, apply and delete", "[qcow2][snapshot]")
{
    auto cfg = GENERATE(Cfg{"64k", "16"}, Cfg{"512", "64"}, Cfg{"4k", "4"}, Cfg{"2M", "8"});
    INFO("cluster_size=" << cfg.cluster_size << " refcount_bits=" << cfg.refcount_bits);
    TmpDir t;
    std::string img = t / "s.qcow2";
    const uint64_t size = 8 << 20;
    REQUIRE(create(img, size, {{"cluster_size", cfg.cluster_size}, {"refcount_bits", cfg.refcount_bits}}) ==
            "");
    std::mt19937_64 rng(5);
    Bytes a(size, 0), b, c;
    {
        Image im(img, KEEL_BLOCK_RDWR);
        REQUIRE_OPEN(im);
        fill(a, 1000, 300000, rng);
        fill(a, 5 << 20, 70000, rng);
        put(im, a, 1000, 300000);
        put(im, a, 5 << 20, 70000);
        REQUIRE_OK(im, create_snap(im, "one"));
        b = a;
        fill(b, 4096, 8192, rng); // overwrites part of what "one" holds
        fill(b, 7 << 20, 4096, rng);
        put(im, b, 4096, 8192);
        put(im, b, 7 << 20, 4096);
        discard(im, b, 5 << 20, 2 << 20);
        REQUIRE_OK(im, create_snap(im, "two"));
        c = b;
        fill(c, 0, 100, rng);
        put(im, c, 0, 100);
        CHECK(diff(read_disk(im), c) == "");
        CHECK(our_snapshots(im) == std::vector<std::string>{"1:one", "2:two"});
    }
    require_clean(img);
    CHECK(qemu_snapshots(img) == std::vector<std::string>{"1:one", "2:two"});
    CHECK(diff(qemu_snapshot_data(t, img, "1"), a) == "");
    CHECK(diff(qemu_snapshot_data(t, img, "2"), b) == "");
    require_active(t, img, c);
    {
        Image im(img, KEEL_BLOCK_RDWR);
        REQUIRE_OPEN(im);
        REQUIRE_OK(im, apply_snap(im, "one")); // by name
        CHECK(diff(read_disk(im), a) == "");
        REQUIRE_OK(im, apply_snap(im, "2")); // by ID
        CHECK(diff(read_disk(im), b) == "");
    }
    require_clean(img);
    require_active(t, img, b);
    {
        Image im(img, KEEL_BLOCK_RDWR);
        REQUIRE_OPEN(im);
        REQUIRE_OK(im, delete_snap(im, "one"));
        CHECK(our_snapshots(im) == std::vector<std::string>{"2:two"});
        require_clean(img);
        CHECK(diff(qemu_snapshot_data(t, img, "2"), b) == "");
        REQUIRE_OK(im, delete_snap(im, "2"));
        CHECK(our_snapshots(im).empty());
        CHECK(diff(read_disk(im), b) == "");
    }
    require_clean(img);
    require_active(t, img, b);
    CHECK(qemu_snapshots(img).empty());
}

TEST_CASE("qcow2 snapshots can be deleted in any order", "[qcow2][snapshot]")
{
    TmpDir t;
    std::string base = t / "base.qcow2";
    const uint64_t size = 4 << 20;
    REQUIRE(create(base, size, {{"cluster_size", "4k"}}) == "");
    std::mt19937_64 rng(11);
    std::vector<Bytes> data;
    Bytes cur(size, 0);
    {
        Image im(base, KEEL_BLOCK_RDWR);
        REQUIRE_OPEN(im);
        for (int i = 0; i < 3; i++) {
            // Each snapshot shares some clusters with the others and has some of its own.
            uint64_t off = (uint64_t)i * 1000000;
            fill(cur, off, 1500000, rng);
            put(im, cur, off, 1500000);
            data.push_back(cur);
            REQUIRE_OK(im, create_snap(im, "s" + std::to_string(i + 1)));
        }
        fill(cur, 200000, 5000, rng);
        put(im, cur, 200000, 5000);
    }
    std::vector<int> order = {0, 1, 2};
    do {
        INFO("delete order " << order[0] + 1 << order[1] + 1 << order[2] + 1);
        std::string img = t / "d.qcow2";
        sh("cp " + q(base) + " " + q(img));
        Image im(img, KEEL_BLOCK_RDWR);
        REQUIRE_OPEN(im);
        std::vector<int> left = {0, 1, 2};
        for (int k : order) {
            // Alternately by ID and by name.
            std::string which = k % 2 ? std::to_string(k + 1) : "s" + std::to_string(k + 1);
            REQUIRE_OK(im, delete_snap(im, which));
            left.erase(std::find(left.begin(), left.end(), k));
            std::vector<std::string> want;
            for (int l : left)
                want.push_back(std::to_string(l + 1) + ":s" + std::to_string(l + 1));
            CHECK(our_snapshots(im) == want);
            CHECK(qemu_snapshots(img) == want);
            require_clean(img);
            for (int l : left)
                CHECK(diff(qemu_snapshot_data(t, img, std::to_string(l + 1)), data[l]) == "");
        }
        CHECK(diff(read_disk(im), cur) == "");
        require_active(t, img, cur);
    } while (std::next_permutation(order.begin(), order.end()));
}

TEST_CASE("qcow2 random writes, discards, snapshots and growth agree with qemu-img", "[qcow2][snapshot]")
{
    auto cfg = GENERATE(Cfg{"512", "16"}, Cfg{"64k", "16"}, Cfg{"4k", "64"});
    INFO("cluster_size=" << cfg.cluster_size << " refcount_bits=" << cfg.refcount_bits);
    TmpDir t;
    std::string img = t / "r.qcow2";
    uint64_t size = 6 << 20;
    REQUIRE(create(img, size, {{"cluster_size", cfg.cluster_size}, {"refcount_bits", cfg.refcount_bits}}) ==
            "");
    Bytes cur(size, 0);
    std::map<std::string, Bytes> snaps; // by ID
    std::mt19937_64 rng(std::hash<std::string>{}(cfg.cluster_size));
    Image im(img, KEEL_BLOCK_RDWR);
    REQUIRE_OPEN(im);
    for (int i = 0; i < 160; i++) {
        int what = (int)(rng() % 20);
        uint64_t len = 1 + rng() % 300000, off = rng() % (cur.size() - len);
        if (what < 9) {
            fill(cur, off, len, rng);
            put(im, cur, off, len);
        } else if (what < 11) {
            discard(im, cur, off, len);
        } else if (what < 12) {
            INFO("write_zeroes " << off << "+" << len);
            REQUIRE_OK(im, im.ops()->write_zeroes(im.state, off, len, KEEL_BLOCK_MAY_UNMAP, &im.err));
            std::fill(cur.begin() + off, cur.begin() + off + len, 0);
        } else if (what < 15 || snaps.empty()) {
            int largest = 0; // QEMU's choice: one more than the largest ID
            for (auto &s : snaps)
                largest = std::max(largest, std::stoi(s.first));
            std::string id = std::to_string(largest + 1);
            INFO("create " << id);
            REQUIRE_OK(im, create_snap(im, "n" + id));
            snaps[id] = cur;
        } else if (what < 17) {
            auto it = std::next(snaps.begin(), (long)(rng() % snaps.size()));
            INFO("apply " << it->first);
            REQUIRE_OK(im, apply_snap(im, it->first));
            cur = it->second;
            CHECK(disk_size(im) == cur.size());
        } else if (what < 19) {
            auto it = std::next(snaps.begin(), (long)(rng() % snaps.size()));
            INFO("delete " << it->first);
            REQUIRE_OK(im, delete_snap(im, it->first));
            snaps.erase(it);
        } else {
            uint64_t grown = cur.size() + (rng() % 3 + 1) * 1000 * 512;
            INFO("grow to " << grown);
            REQUIRE_OK(im, im.ops()->truncate(im.state, grown, &im.err));
            cur.resize(grown, 0);
        }
        { // our own check after every step: not a leak, not a wrong COPIED flag
            KeelBlockCheckResult r{};
            r.size = sizeof r;
            REQUIRE_OK(im, im.ops()->check(im.state, 0, &r, nullptr, nullptr, &im.err));
            INFO("step " << i << " (" << what << ")");
            REQUIRE(r.leaks == 0);
            REQUIRE(r.corruptions == 0);
        }
        if (i % 40 == 39) {
            require_clean(img);
            CHECK(diff(read_disk(im), cur) == "");
        }
    }
    CHECK(diff(read_disk(im), cur) == "");
    REQUIRE_OK(im, im.ops()->flush(im.state, &im.err));
    require_clean(img);
    require_active(t, img, cur);
    std::vector<std::string> want;
    for (auto &[id, d] : snaps) {
        want.push_back(id + ":n" + id);
        INFO("snapshot " << id);
        CHECK(diff(qemu_snapshot_data(t, img, id), sized(d, cur.size())) == "");
    }
    auto by_number = [](const std::string &a, const std::string &b) {
        return std::stoi(a.substr(0, a.find(':'))) < std::stoi(b.substr(0, b.find(':')));
    };
    std::sort(want.begin(), want.end(), by_number);
    std::vector<std::string> listed = qemu_snapshots(img);
    std::sort(listed.begin(), listed.end(), by_number);
    CHECK(listed == want);
    // Each snapshot whole, at its own size.
    for (auto &[id, d] : snaps) {
        INFO("apply " << id);
        REQUIRE_OK(im, apply_snap(im, id));
        CHECK(diff(read_disk(im), d) == "");
    }
    require_clean(img);
}

TEST_CASE("qcow2 picks snapshot IDs as qemu-img does", "[qcow2][snapshot]")
{
    TmpDir t;
    std::string img = t / "i.qcow2";
    REQUIRE(create(img, 1 << 20, {}) == "");
    auto step = [&](const std::function<void(Image &)> &change) {
        {
            Image im(img, KEEL_BLOCK_RDWR);
            REQUIRE_OPEN(im);
            change(im);
        }
        sh("cp " + q(img) + " " + q(t / "q.qcow2"));
        sh("qemu-img snapshot -c next " + q(t / "q.qcow2"));
        Image im(img, KEEL_BLOCK_RDWR);
        REQUIRE_OPEN(im);
        REQUIRE_OK(im, create_snap(im, "next"));
        CHECK(our_snapshots(im) == qemu_snapshots(t / "q.qcow2"));
        REQUIRE_OK(im, delete_snap(im, "next"));
    };
    step([](Image &) {});
    step([](Image &im) {
        for (const char *n : {"a", "b", "c"})
            REQUIRE_OK(im, create_snap(im, n));
    });
    step([](Image &im) { REQUIRE_OK(im, delete_snap(im, "2")); }); // 1 3 -> 4
    step([](Image &im) { REQUIRE_OK(im, delete_snap(im, "3")); }); // 1 -> 2
    require_clean(img);
}

TEST_CASE("qcow2 snapshot errors are clear and change nothing", "[qcow2][snapshot]")
{
    TmpDir t;
    std::string img = t / "e.qcow2";
    REQUIRE(create(img, 1 << 20, {}) == "");
    {
        Image im(img, KEEL_BLOCK_RDWR);
        REQUIRE_OPEN(im);
        Bytes d(70000, 0x5c);
        REQUIRE_OK(im, im.write(0, d.data(), d.size()));
        REQUIRE_OK(im, create_snap(im, "one"));
    }
    Bytes before = read_file(img);
    {
        Image im(img, KEEL_BLOCK_RDWR);
        REQUIRE_OPEN(im);
        CHECK(create_snap(im, "one") == KEEL_ERR);
        CHECK(im.err.message == "Snapshot with name 'one' already exists on device '" + img + "'");
        CHECK(apply_snap(im, "two") == KEEL_ERR);
        CHECK(im.err.message == img + ": snapshot not found");
        CHECK(delete_snap(im, "2") == KEEL_ERR);
        CHECK(im.err.message == img + ": snapshot not found");
        CHECK(create_snap(im, std::string(256, 'x')) == KEEL_ERR);
        CHECK(im.err.message == img + ": snapshot name too long (256 bytes; at most 255)");
        CHECK(our_snapshots(im) == std::vector<std::string>{"1:one"});
    }
    CHECK(read_file(img) == before);
    {
        Image ro(img, 0);
        REQUIRE_OPEN(ro);
        CHECK(create_snap(ro, "two") == KEEL_ERR);
        CHECK(ro.err.message == img + ": image is opened read-only");
        CHECK(apply_snap(ro, "one") == KEEL_ERR);
        CHECK(ro.err.message == img + ": image is opened read-only");
        CHECK(delete_snap(ro, "one") == KEEL_ERR);
        CHECK(ro.err.message == img + ": image is opened read-only");
    }
    CHECK(read_file(img) == before);
    require_clean(img);
}

TEST_CASE("qcow2 refuses a snapshot its refcounts cannot count, as QEMU does", "[qcow2][snapshot]")
{
    TmpDir t;
    std::string img = t / "r1.qcow2";
    REQUIRE(create(img, 1 << 20, {{"refcount_bits", "1"}}) == "");
    {
        // Nothing allocated yet: nothing needs a second reference, so the snapshot fits (QEMU agrees).
        Image im(img, KEEL_BLOCK_RDWR);
        REQUIRE_OPEN(im);
        REQUIRE_OK(im, create_snap(im, "empty"));
        Bytes d(4096, 0x11);
        REQUIRE_OK(im, im.write(0, d.data(), d.size()));
    }
    require_clean(img);
    Bytes before = read_file(img);
    {
        Image im(img, KEEL_BLOCK_RDWR);
        REQUIRE_OPEN(im);
        CHECK(create_snap(im, "full") == KEEL_ERR);
        INFO(im.err.message);
        CHECK(im.err.message.rfind(img + ": the refcount of cluster ", 0) == 0);
        CHECK(im.err.message.find(" would exceed 1 (refcount_bits=1)") != std::string::npos);
        CHECK(our_snapshots(im) == std::vector<std::string>{"1:empty"});
        Bytes d(4096);
        REQUIRE_OK(im, im.read(0, d.data(), d.size()));
        CHECK(diff(d, Bytes(4096, 0x11)) == "");
    }
    CHECK(read_file(img) == before);
    require_clean(img);
    // QEMU refuses it too.
    std::string out;
    sh("cp " + q(img) + " " + q(t / "copy.qcow2"));
    CHECK(run("qemu-img snapshot -c full " + q(t / "copy.qcow2"), &out) != 0);
}

TEST_CASE("qcow2 applies and deletes snapshots qemu-img made", "[qcow2][snapshot][interop]")
{
    auto compressed = GENERATE(false, true);
    INFO("compressed " << compressed);
    TmpDir t;
    std::string img = t / "q.qcow2";
    Bytes base(3 << 20, 0);
    std::mt19937_64 rng(3);
    fill(base, 0, 1 << 20, rng);
    for (size_t i = 1 << 20; i < (2u << 20); i++)
        base[i] = (uint8_t)("snapshot "[i % 9]);
    write_file(t / "base.raw", base);
    if (compressed) {
        sh("qemu-img convert -c -O qcow2 -o cluster_size=4k " + q(t / "base.raw") + " " + q(img));
    } else {
        sh("qemu-img convert -O qcow2 " + q(t / "base.raw") + " " + q(img));
    }
    sh("qemu-img snapshot -c first " + q(img));
    sh("qemu-io -c 'write -P 0x71 100k 1M' -c 'write -z 2M 64k' " + q(img));
    sh("qemu-img snapshot -c second " + q(img));
    sh("qemu-io -c 'write -P 0x72 0 8k' -c 'discard 1M 1M' " + q(img));
    Bytes second = qemu_snapshot_data(t, img, "2");
    sh("cp " + q(img) + " " + q(t / "orig.qcow2"));
    {
        Image im(img, KEEL_BLOCK_RDWR);
        REQUIRE_OPEN(im);
        REQUIRE_OK(im, apply_snap(im, "first"));
        CHECK(diff(read_disk(im), base) == "");
    }
    require_clean(img);
    require_active(t, img, base);
    {
        Image im(img, KEEL_BLOCK_RDWR);
        REQUIRE_OPEN(im);
        REQUIRE_OK(im, delete_snap(im, "1"));
        REQUIRE_OK(im, apply_snap(im, "second"));
        CHECK(diff(read_disk(im), second) == "");
    }
    require_clean(img);
    require_active(t, img, second);
    CHECK(qemu_snapshots(img) == std::vector<std::string>{"2:second"});
    // And QEMU writes on over what keel left.
    sh("qemu-io -c 'write -P 0x73 0 3M' " + q(img));
    sh("qemu-img snapshot -d second " + q(img));
    require_clean(img);
}

TEST_CASE("qcow2 keeps snapshot table extra data it does not know", "[qcow2][snapshot]")
{
    TmpDir t;
    std::string img = t / "x.qcow2";
    sh("qemu-img create -q -f qcow2 " + q(img) + " 1M");
    sh("qemu-img snapshot -c one " + q(img));
    // Grow the entry's extra data from 24 to 32 bytes: 8 bytes a later QEMU might write.
    Bytes f = read_file(img);
    auto be64 = [&](size_t at) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v = v << 8 | f[at + i];
        return v;
    };
    size_t tab = (size_t)be64(64);
    REQUIRE(f[tab + 39] == 24);
    Bytes tail(f.begin() + (long)tab + 64, f.begin() + (long)tab + 64 + 4); // id "1", name "one"
    f.resize(std::max(f.size(), tab + 76));                                 // the table ends the file
    f[tab + 39] = 32;
    const uint8_t unknown[8] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4};
    std::copy(unknown, unknown + 8, f.begin() + (long)tab + 64);
    std::copy(tail.begin(), tail.end(), f.begin() + (long)tab + 72);
    write_file(img, f);
    require_clean(img);
    {
        Image im(img, KEEL_BLOCK_RDWR);
        REQUIRE_OPEN(im);
        REQUIRE_OK(im, create_snap(im, "two")); // rewrites the table
    }
    require_clean(img);
    CHECK(qemu_snapshots(img) == std::vector<std::string>{"1:one", "2:two"});
    f = read_file(img);
    tab = (size_t)be64(64);
    CHECK(f[tab + 39] == 32);
    CHECK(diff(Bytes(f.begin() + (long)tab + 64, f.begin() + (long)tab + 72), Bytes(unknown, unknown + 8)) ==
          "");
    // The new entry carries QEMU's 24 bytes: vm_state_size_large, disk_size, icount.
    size_t second = tab + ((40 + 32 + 1 + 3 + 7) & ~size_t(7));
    CHECK(f[second + 39] == 24);
    CHECK(be64(second + 48) == 1 << 20);
    CHECK(be64(second + 56) == 0);
}

TEST_CASE("qcow2 resizes an image with snapshots, each keeping its size", "[qcow2][snapshot]")
{
    TmpDir t;
    std::string img = t / "g.qcow2";
    REQUIRE(create(img, 4 << 20, {{"cluster_size", "512"}}) == "");
    Bytes small(4 << 20, 0);
    std::fill(small.begin() + 1000, small.begin() + 9000, 0x21);
    {
        Image im(img, KEEL_BLOCK_RDWR);
        REQUIRE_OPEN(im);
        put(im, small, 1000, 8000);
        REQUIRE_OK(im, create_snap(im, "small"));
        // 512-byte clusters: the L1 table outgrows its cluster and moves.
        REQUIRE_OK(im, im.ops()->truncate(im.state, 40 << 20, &im.err));
        Bytes d(4096, 0x22);
        REQUIRE_OK(im, im.write((40 << 20) - 4096, d.data(), d.size()));
        REQUIRE_OK(im, create_snap(im, "big"));
    }
    require_clean(img);
    std::string out;
    REQUIRE(run("qemu-img info --output=json " + q(img), &out) == 0);
    CHECK(out.find("\"virtual-size\": 41943040") != std::string::npos);
    CHECK(diff(qemu_snapshot_data(t, img, "1"), sized(small, 40 << 20)) == "");
    {
        Image im(img, KEEL_BLOCK_RDWR);
        REQUIRE_OPEN(im);
        REQUIRE_OK(im, apply_snap(im, "small"));
        CHECK(disk_size(im) == 4 << 20);
        CHECK(diff(read_disk(im), small) == "");
        REQUIRE_OK(im, apply_snap(im, "big"));
        CHECK(disk_size(im) == 40 << 20);
        // Shrinking is allowed too (QEMU 7.2 allows it): the snapshots keep what is cut off.
        REQUIRE_OK(im, im.ops()->truncate(im.state, 2 << 20, &im.err));
        CHECK(diff(read_disk(im), sized(small, 2 << 20)) == "");
    }
    require_clean(img);
    {
        Image im(img, KEEL_BLOCK_RDWR);
        REQUIRE_OPEN(im);
        REQUIRE_OK(im, apply_snap(im, "small"));
        CHECK(diff(read_disk(im), small) == "");
        REQUIRE_OK(im, apply_snap(im, "big"));
        Bytes tail(4096);
        REQUIRE_OK(im, im.read((40 << 20) - 4096, tail.data(), tail.size()));
        CHECK(diff(tail, Bytes(4096, 0x22)) == "");
    }
    require_clean(img);
    // v2 images cannot resize with snapshots (qemu-img's message).
    std::string v2 = t / "v2.qcow2";
    sh("qemu-img create -q -f qcow2 -o compat=0.10 " + q(v2) + " 1M");
    sh("qemu-img snapshot -c one " + q(v2));
    Image im(v2, KEEL_BLOCK_RDWR);
    REQUIRE_OPEN(im);
    CHECK(im.ops()->truncate(im.state, 2 << 20, &im.err) == KEEL_ERR);
    CHECK(im.err.message == v2 + ": Can't resize a v2 image which has snapshots");
}

TEST_CASE("qcow2 snapshot metadata survives a process killed at random points", "[qcow2][snapshot][crash]")
{
    TmpDir t;
    std::string img = t / "k.qcow2";
    const uint64_t size = 16 << 20;
    REQUIRE(create(img, size, {{"cluster_size", "512"}, {"refcount_bits", "16"}}) == "");
    std::mt19937 rng(99);
    int leaky = 0;
    for (int round = 0; round < 16; round++) {
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            Image im(img, KEEL_BLOCK_RDWR);
            if (!im.ok()) _exit(2);
            std::mt19937_64 r((uint64_t)round);
            Bytes b(100000, (uint8_t)round);
            for (int n = 0;; n++) {
                uint64_t len = 1 + r() % b.size(), off = r() % (size - len);
                if (im.write(off, b.data(), len) != KEEL_OK) _exit(3);
                std::vector<std::string> have = our_snapshots(im);
                auto any_id = [&] {
                    std::string s = have[r() % have.size()];
                    return s.substr(0, s.find(':'));
                };
                std::string name = "r" + std::to_string(round) + "-" + std::to_string(n);
                int rc = KEEL_OK;
                if (have.size() < 4) {
                    rc = create_snap(im, name);
                } else if (r() % 3 == 0) {
                    rc = apply_snap(im, any_id());
                } else {
                    rc = delete_snap(im, any_id());
                }
                if (rc != KEEL_OK) _exit(4);
            }
        }
        usleep(30000 + rng() % 200000);
        kill(pid, SIGKILL);
        int st = 0;
        waitpid(pid, &st, 0);
        REQUIRE(WIFSIGNALED(st)); // it was still working, not failed
        std::string out;
        int rc = run("qemu-img check " + q(img), &out);
        INFO("round " << round << "\n" << out);
        CHECK((rc == 0 || rc == 3)); // clean, or leaked clusters only
        CHECK(out.find("ERROR") == std::string::npos);
        leaky += rc == 3;
    }
    INFO(leaky << " rounds left leaks");
    Image im(img, KEEL_BLOCK_RDWR);
    REQUIRE_OPEN(im);
    CHECK(our_snapshots(im).size() <= 4);
    KeelBlockCheckResult r{};
    r.size = sizeof r;
    REQUIRE_OK(im, im.ops()->check(im.state, KEEL_BLOCK_FIX_LEAKS, &r, nullptr, nullptr, &im.err));
    CHECK(r.corruptions == 0);
    require_clean(img);
}

TEST_CASE("qcow2 snapshot operations killed before any of their writes leave the old or the new image",
          "[qcow2][snapshot][crash]")
{
    TmpDir t;
    std::string base = t / "base.qcow2", img = t / "k.qcow2";
    // 4 KiB clusters: an L2 table maps 2 MiB, so the disk has four, all with data.
    REQUIRE(create(base, 8 << 20, {{"cluster_size", "4k"}}) == "");
    std::mt19937_64 rng(17);
    Bytes d(8 << 20, 0);
    {
        Image im(base, KEEL_BLOCK_RDWR);
        REQUIRE_OPEN(im);
        for (uint64_t off = 0; off < d.size(); off += 1 << 20) {
            fill(d, off, 40000, rng);
            put(im, d, off, 40000);
        }
        REQUIRE_OK(im, create_snap(im, "a"));
        fill(d, 3 << 20, 8192, rng);
        put(im, d, 3 << 20, 8192);
        REQUIRE_OK(im, create_snap(im, "b"));
        fill(d, 5 << 20, 8192, rng);
        put(im, d, 5 << 20, 8192);
    }
    require_clean(base);
    struct State {
        std::vector<std::string> snapshots;
        Bytes data;
    };
    auto state_of = [&](const std::string &path) {
        Image im(path, 0);
        REQUIRE_OPEN(im);
        return State{our_snapshots(im), read_disk(im)};
    };
    const State before = state_of(base);
    struct Op {
        const char *what;
        int (*fn)(Image &, const std::string &);
        const char *arg;
    };
    auto o = GENERATE(Op{"create", create_snap, "c"}, Op{"apply", apply_snap, "a"},
                      Op{"delete", delete_snap, "a"}, Op{"delete", delete_snap, "2"});
    INFO(o.what << " " << o.arg);
    auto do_op = [&] {
        Image im(img, KEEL_BLOCK_RDWR);
        if (!im.ok() || o.fn(im, o.arg) != KEEL_OK) _exit(3);
    };
    sh("cp " + q(base) + " " + q(img));
    int writes = run_killed_at(0, do_op);
    REQUIRE(writes > 3);
    const State after = state_of(img);
    REQUIRE((after.snapshots != before.snapshots || after.data != before.data));
    for (int n = 1; n <= writes; n++) {
        INFO("killed before write " << n << " of " << writes);
        sh("cp " + q(base) + " " + q(img));
        REQUIRE(run_killed_at(n, do_op) == n);
        require_clean(img); // not even a leak
        State now = state_of(img);
        bool old_one = now.snapshots == before.snapshots && now.data == before.data;
        bool new_one = now.snapshots == after.snapshots && now.data == after.data;
        CHECK((old_one || new_one));
    }
}
