// SPDX-License-Identifier: MIT
// libFuzzer target for the qcow2 opener: any file opens with an error or works (reads, check, block status,
// snapshots; read-only opens never write to the file; a read/write open takes one write) without a crash, a
// leak or undefined behaviour.
#include "harness.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

using namespace qcow2test;

namespace
{

// The input as a file: a memfd, so that no run touches the disk.
int file_of(const uint8_t *data, size_t size)
{
    int fd = memfd_create("qcow2-fuzz", MFD_CLOEXEC);
    if (fd < 0) {
        perror("memfd_create");
        abort();
    }
    for (size_t done = 0; done < size;) {
        ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);
        if (n <= 0) {
            perror("pwrite");
            abort();
        }
        done += (size_t)n;
    }
    return fd;
}

// The file's bytes must be what they were: nothing here asks for a write.
void expect_unchanged(int fd, const uint8_t *data, size_t size)
{
    std::vector<uint8_t> now(size + 1);
    ssize_t n = pread(fd, now.data(), now.size(), 0);
    if (n != (ssize_t)size || !std::equal(data, data + size, now.begin())) {
        fprintf(stderr, "qcow2_open_fuzz: the image was modified\n");
        abort();
    }
}

void snapshot_cb(void *, const KeelBlockSnapshot *snap)
{
    // Touch the strings: they must be valid during the callback.
    volatile size_t n = strlen(snap->id) + strlen(snap->name);
    (void)n;
}

void info_cb(void *, const char *json_key, const char *label, KeelBlockInfoKind kind, int64_t, const char *s)
{
    volatile size_t n = strlen(json_key) + strlen(label) + (kind == KEEL_BLOCK_INFO_STRING ? strlen(s) : 0);
    (void)n;
}

// What a guest and keel-img do with an image that opened.
void exercise(Image &im)
{
    const KeelBlockDriverOps *ops = im.ops();
    KeelBlockInfo info{};
    info.size = sizeof info;
    if (ops->info(im.state, &info) != KEEL_OK) abort();
    ops->info_specific(im.state, info_cb, nullptr);
    uint64_t vsize = info.virtual_size;

    // The first clusters, a few places spread over the disk, and its last sector: bounded work per input.
    std::vector<uint8_t> buf(64 * 1024);
    uint64_t offsets[] = {0, 64 * 1024, vsize / 3, vsize / 2, vsize > 512 ? vsize - 512 : 0};
    for (uint64_t off : offsets) {
        if (off >= vsize) continue;
        off &= ~511ull;
        size_t len = (size_t)std::min<uint64_t>(buf.size(), vsize - off);
        im.err = KeelError{};
        if (im.read(off, buf.data(), len) != KEEL_OK && im.err.message.empty()) {
            fprintf(stderr, "qcow2_open_fuzz: a read failed without a message\n");
            abort();
        }
    }
    // A scatter-gather read across a cluster boundary.
    if (vsize >= 4096) {
        uint8_t a[1000], b[3000];
        KeelIoVec v[2] = {{a, sizeof a}, {b, sizeof b}};
        im.err = KeelError{};
        ops->preadv(im.state, 1096 & ~511ull, v, 2, &im.err);
    }

    // Block status over the start of the disk, as keel-img map walks it.
    uint64_t end = std::min<uint64_t>(vsize, 64ull << 20);
    for (uint64_t off = 0, steps = 0; off < end && steps < 256; steps++) {
        uint64_t pnum = 0, map = 0;
        uint32_t flags = 0;
        im.err = KeelError{};
        if (ops->block_status(im.state, off, end - off, &pnum, &map, &flags, &im.err) != KEEL_OK) break;
        if (pnum == 0 || pnum > end - off) {
            fprintf(stderr, "qcow2_open_fuzz: block_status answered %llu bytes of %llu\n",
                    (unsigned long long)pnum, (unsigned long long)(end - off));
            abort();
        }
        off += pnum;
    }
    im.err = KeelError{};
    ops->snapshot_list(im.state, snapshot_cb, nullptr, &im.err);
}

void report_line(void *, const char *line)
{
    volatile size_t n = strlen(line);
    (void)n;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
    driver(); // register the module before the first input
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = file_of(data, size);
    bool consistent = false; // check found nothing wrong
    {
        // As keel -drive (read-only) and keel-img info open it: every check of open applies.
        Image im(dup(fd), "fuzz.qcow2", 0);
        if (im.ok())
            exercise(im);
        else if (im.err.message.empty())
            abort(); // a refusal must say why
    }
    {
        // As keel-img check opens it: a corrupt image opens, and check reports instead of crashing.
        Image im(dup(fd), "fuzz.qcow2", KEEL_BLOCK_CHECK);
        if (im.ok()) {
            KeelBlockCheckResult r{};
            r.size = sizeof r;
            consistent = im.ops()->check(im.state, 0, &r, report_line, nullptr, &im.err) == KEEL_OK &&
                         !r.corruptions && !r.check_errors;
            exercise(im);
        } else if (im.err.message.empty()) {
            abort();
        }
    }
    expect_unchanged(fd, data, size);
    close(fd);
    {
        // As keel -drive opens it read/write (on a copy): a dirty image is repaired or refused, autoclear
        // bits are cleared; then one guest write and a flush. What is written must read back when check
        // found the image consistent; a corrupt one that opens must still not crash.
        int copy = file_of(data, size);
        Image im(copy, "fuzz.qcow2", KEEL_BLOCK_RDWR);
        if (im.ok()) {
            KeelBlockInfo info{};
            info.size = sizeof info;
            im.ops()->info(im.state, &info);
            uint8_t sector[512];
            memset(sector, 0x5a, sizeof sector);
            if (info.virtual_size >= sizeof sector && im.write(0, sector, sizeof sector) == KEEL_OK) {
                uint8_t back[512];
                if (consistent && im.read(0, back, sizeof back) == KEEL_OK &&
                    memcmp(back, sector, sizeof back) != 0) {
                    fprintf(stderr, "qcow2_open_fuzz: a sector written does not read back\n");
                    abort();
                }
            }
            im.ops()->flush(im.state, &im.err);
        } else if (im.err.message.empty()) {
            abort();
        }
    }
    return 0;
}
