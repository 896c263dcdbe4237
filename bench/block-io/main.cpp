// SPDX-License-Identifier: MIT
// keel-bench-blockio: sequential and random 4 KiB I/O through the block layer's drives (the path a
// virtio-blk request takes), a qcow2 image against a raw one, in-process.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "block.h"
#include "error.h"
#include "kernel.h"
#include "registry.h"

namespace
{

constexpr const char *kUsage =
    "usage: keel-bench-blockio [--size MiB] [--bs KiB] [--ops N] [--seed N] [--dir DIR] [--cold] [--keep]\n"
    "\n"
    "Creates a qcow2 and a raw image of --size MiB (default 1024) in --dir (default $TMPDIR, else\n"
    "/var/tmp), opens each as a -drive would, and times, with --bs KiB requests (default 4):\n"
    "  seq-write       the whole image, front to back, into a new image, then a flush\n"
    "  seq-read        the whole image\n"
    "  rand-write      --ops (default 50000) writes at random aligned offsets (seed --seed), then a flush\n"
    "  rand-read       --ops reads at random aligned offsets\n"
    "  rand-write-new  --ops random writes into another new image (qcow2: every write may allocate)\n"
    "No O_DIRECT: reads come from the page cache unless --cold evicts the image files from it (fadvise\n"
    "DONTNEED after each write phase). Both images get the same writes; at the end their contents are\n"
    "compared, so a fast wrong answer does not count. Prints MiB/s and IOPS per format, qcow2/raw (the\n"
    "ratio of throughputs: below 1.0 qcow2 is slower) and the process's CPU time per request (user +\n"
    "system, microseconds), which a busy machine disturbs less than wall time.\n";

struct Options {
    uint64_t size = 1024ull << 20;
    uint64_t bs = 4096;
    uint64_t ops = 50000;
    uint64_t seed = 1;
    std::string dir;
    bool cold = false;
    bool keep = false;
};

struct Result {
    double secs = 0;
    double cpu =
        0; // seconds of this process's CPU time (user + system): steadier than wall time on a busy machine
    uint64_t ops = 0;
    uint64_t bytes = 0;
};

using Clock = std::chrono::steady_clock;

double cpu_now()
{
    timespec ts;
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Data to write: a pool of random bytes, so no format can recognise zeroes or repeats.
std::vector<uint8_t> make_pool(uint64_t seed)
{
    std::vector<uint8_t> pool(4u << 20);
    std::mt19937_64 rng(seed ^ 0x6b65656cull);
    for (size_t i = 0; i < pool.size(); i += 8) {
        uint64_t v = rng();
        std::memcpy(pool.data() + i, &v, 8);
    }
    return pool;
}

void check(int rc, const KeelError &err, const char *what)
{
    if (rc != KEEL_OK) throw keel::Error(std::string(what) + ": " + (err.is_set ? err.message : "failed"));
}

// Drop the file's clean pages from the page cache (no root needed), so the next reads go to the disk.
void evict(const std::string &path)
{
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
}

class Bench
{
  public:
    Bench(const Options &o) : o_(o), pool_(make_pool(o.seed)), buf_(o.bs) {}

    KeelDrive *open(const std::string &format, const std::string &tag)
    {
        std::string path = o_.dir + "/keel-bench-blockio-" + tag + "." + format;
        keel::create_image(path, format, o_.size, {});
        paths_.push_back(path);
        keel::DriveSpec spec;
        spec.file = path;
        spec.format = format;
        spec.interface = "none";
        spec.id = format + "-" + tag;
        return keel::add_drive(spec);
    }

    const std::string &path_of(KeelDrive *d) const { return d->node->filename; }

    Result sequential(KeelDrive *d, bool write)
    {
        Result r;
        auto t0 = Clock::now();
        double c0 = cpu_now();
        for (uint64_t off = 0; off < o_.size; off += o_.bs)
            io(d, off, write, r);
        if (write) flush(d);
        r.secs = std::chrono::duration<double>(Clock::now() - t0).count();
        r.cpu = cpu_now() - c0;
        return r;
    }

    Result random(KeelDrive *d, bool write, uint64_t stream)
    {
        Result r;
        std::mt19937_64 rng(o_.seed * 1000003 + stream);
        std::uniform_int_distribution<uint64_t> block(0, o_.size / o_.bs - 1);
        std::vector<uint64_t> offs(o_.ops);
        for (auto &x : offs)
            x = block(rng) * o_.bs;
        auto t0 = Clock::now();
        double c0 = cpu_now();
        for (uint64_t off : offs)
            io(d, off, write, r);
        if (write) flush(d);
        r.secs = std::chrono::duration<double>(Clock::now() - t0).count();
        r.cpu = cpu_now() - c0;
        return r;
    }

    // Whether two drives hold the same bytes; else the first differing offset in *where.
    bool same(KeelDrive *a, KeelDrive *b, uint64_t *where)
    {
        std::vector<uint8_t> x(1u << 20), y(1u << 20);
        for (uint64_t off = 0; off < o_.size; off += x.size()) {
            size_t n = static_cast<size_t>(std::min<uint64_t>(x.size(), o_.size - off));
            KeelIoVec vx{x.data(), n}, vy{y.data(), n};
            KeelError err;
            check(keel::drive_preadv(a, off, &vx, 1, &err), err, "verify read");
            check(keel::drive_preadv(b, off, &vy, 1, &err), err, "verify read");
            if (std::memcmp(x.data(), y.data(), n) != 0) {
                *where = off;
                return false;
            }
        }
        return true;
    }

    const std::vector<std::string> &paths() const { return paths_; }

  private:
    void io(KeelDrive *d, uint64_t off, bool write, Result &r)
    {
        KeelError err;
        if (write) {
            // The data depends on the offset only, so both formats get the same bytes whatever the order.
            KeelIoVec v{pool_.data() + (off * 7) % (pool_.size() - o_.bs + 1) / o_.bs * o_.bs, o_.bs};
            check(keel::drive_pwritev(d, off, &v, 1, &err), err, "write");
        } else {
            KeelIoVec v{buf_.data(), o_.bs};
            check(keel::drive_preadv(d, off, &v, 1, &err), err, "read");
        }
        r.ops++;
        r.bytes += o_.bs;
    }

    void flush(KeelDrive *d)
    {
        KeelError err;
        check(keel::drive_flush(d, &err), err, "flush");
    }

    const Options &o_;
    std::vector<uint8_t> pool_;
    std::vector<uint8_t> buf_;
    std::vector<std::string> paths_;
};

uint64_t parse_num(const std::string &opt, const char *v)
{
    char *end = nullptr;
    unsigned long long n = std::strtoull(v, &end, 10);
    if (!*v || *end || n == 0) throw keel::Error(opt + ": not a positive number: '" + v + "'");
    return n;
}

Options parse(int argc, char **argv)
{
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> const char * {
            if (i + 1 >= argc) throw keel::Error(a + " needs a value");
            return argv[++i];
        };
        if (a == "--size")
            o.size = parse_num(a, value()) << 20;
        else if (a == "--bs")
            o.bs = parse_num(a, value()) << 10;
        else if (a == "--ops")
            o.ops = parse_num(a, value());
        else if (a == "--seed")
            o.seed = parse_num(a, value());
        else if (a == "--dir")
            o.dir = value();
        else if (a == "--cold")
            o.cold = true;
        else if (a == "--keep")
            o.keep = true;
        else if (a == "-h" || a == "--help") {
            std::fputs(kUsage, stdout);
            std::exit(0);
        } else
            throw keel::Error("unknown option '" + a + "' (--help lists them)");
    }
    if (o.bs & (o.bs - 1) || o.bs > (1u << 20)) throw keel::Error("--bs: a power of two up to 1024 KiB");
    if (o.size % o.bs) throw keel::Error("--size must be a multiple of --bs");
    if (o.dir.empty()) {
        const char *t = std::getenv("TMPDIR");
        o.dir = t && *t ? t : "/var/tmp";
    }
    return o;
}

} // namespace

int main(int argc, char **argv)
{
    Options o;
    try {
        o = parse(argc, argv);
    } catch (const keel::Error &e) {
        std::fprintf(stderr, "keel-bench-blockio: %s\n", e.what());
        return 2;
    }
    Bench b(o);
    int status = 0;
    try {
        keel::Registry &reg = keel::kernel().registry();
        reg.set_search_path(keel::Registry::default_search_path());
        reg.refresh(false);

        const std::vector<std::string> formats = {"qcow2", "raw"};
        const std::vector<std::string> tests = {"seq-write", "seq-read", "rand-write", "rand-read",
                                                "rand-write-new"};
        std::map<std::pair<std::string, std::string>, Result> res;
        std::map<std::string, KeelDrive *> main_drive, new_drive;
        for (const auto &f : formats) {
            KeelDrive *d = main_drive[f] = b.open(f, "a");
            res[{f, "seq-write"}] = b.sequential(d, true);
            if (o.cold) evict(b.path_of(d));
            res[{f, "seq-read"}] = b.sequential(d, false);
            res[{f, "rand-write"}] = b.random(d, true, 1);
            if (o.cold) evict(b.path_of(d));
            res[{f, "rand-read"}] = b.random(d, false, 2);
            KeelDrive *n = new_drive[f] = b.open(f, "b");
            res[{f, "rand-write-new"}] = b.random(n, true, 3);
        }

        std::printf("%llu MiB images in %s, %llu KiB requests, %llu random ops (seed %llu), page cache: %s\n",
                    static_cast<unsigned long long>(o.size >> 20), o.dir.c_str(),
                    static_cast<unsigned long long>(o.bs >> 10), static_cast<unsigned long long>(o.ops),
                    static_cast<unsigned long long>(o.seed),
                    o.cold ? "evicted before reads (--cold)" : "warm (reads may come from it)");
        std::printf("%-15s %11s %11s %11s %11s %10s %12s %12s\n", "test", "qcow2 MiB/s", "qcow2 IOPS",
                    "raw MiB/s", "raw IOPS", "qcow2/raw", "qcow2 CPU us", "raw CPU us");
        for (const auto &t : tests) {
            const Result &q = res[{"qcow2", t}], &r = res[{"raw", t}];
            double qm = q.bytes / q.secs / (1 << 20), rm = r.bytes / r.secs / (1 << 20);
            std::printf("%-15s %11.1f %11.0f %11.1f %11.0f %10.2f %12.2f %12.2f\n", t.c_str(), qm,
                        q.ops / q.secs, rm, r.ops / r.secs, qm / rm, q.cpu * 1e6 / q.ops,
                        r.cpu * 1e6 / r.ops);
        }
        uint64_t where = 0;
        if (!b.same(main_drive["qcow2"], main_drive["raw"], &where) ||
            !b.same(new_drive["qcow2"], new_drive["raw"], &where)) {
            std::fprintf(stderr, "keel-bench-blockio: the qcow2 and raw images differ at offset %llu\n",
                         static_cast<unsigned long long>(where));
            status = 1;
        } else {
            std::printf("verified: the qcow2 and raw images hold the same bytes\n");
        }
    } catch (const keel::Error &e) {
        std::fprintf(stderr, "keel-bench-blockio: %s\n", e.what());
        status = 2;
    }
    keel::close_drives();
    if (!o.keep)
        for (const auto &p : b.paths())
            ::unlink(p.c_str());
    return status;
}
