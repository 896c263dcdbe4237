// SPDX-License-Identifier: MIT
// A minimal block-layer host for the qcow2 module: host-file KeelBlockFiles, fake backing nodes, dlopen.
#pragma once

#include <keel/module.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

// The harness's own definitions of the kernel's opaque types (this test links no kernel).
struct KeelError {
    bool set = false;
    std::string message;
};
struct KeelBlockFile {
    int fd = -1;
    std::string name;
};
struct KeelBlockNode {
    uint64_t length = 0;
    std::function<int(uint64_t, uint8_t *, size_t, KeelError *)> read;
};

namespace qcow2test
{

// The module, loaded once per process: dlopen(MODULE_PATH), or, built with KEEL_QCOW2_LINKED, the qcow2
// sources linked into the test itself (the fuzzer: coverage of a dlopen'ed module needs a runtime in it).
const KeelBlockDriverInfo *driver();

// An open host file (created or truncated when @create).
struct File {
    KeelBlockFile f;
    File(const std::string &path, bool create = false);
    File(int fd, const std::string &name); // takes over @fd (e.g. a memfd)
    ~File();
    File(const File &) = delete;
    File &operator=(const File &) = delete;
};

// An open qcow2 image: the driver's state over a File.
struct Image {
    File file;
    KeelBlockNode node;
    void *state = nullptr;
    KeelError err;
    // @opts: the driver's runtime options (-drive l2-cache-size=...), NULL-key terminated, or NULL.
    Image(const std::string &path, uint32_t flags, const KeelBlockOption *opts = nullptr);
    Image(int fd, const std::string &name, uint32_t flags); // over an fd File takes over
    ~Image();
    const KeelBlockDriverOps *ops() const { return driver()->ops; }
    bool ok() const { return state != nullptr; }
    int read(uint64_t off, void *buf, size_t len);
    int write(uint64_t off, const void *buf, size_t len);
};

// A backing node over a host file read as raw data.
KeelBlockNode raw_node(const std::string &path);

// Create an image; returns the error message ("" on success).
std::string create(const std::string &path, uint64_t size,
                   const std::vector<std::pair<std::string, std::string>> &opts);

// Run a shell command, returning its exit status and (in *out) its stdout.
int run(const std::string &cmd, std::string *out = nullptr);

// A fresh temporary directory for one test, removed with everything in it at the end.
struct TmpDir {
    std::string path;
    TmpDir();
    ~TmpDir();
    std::string operator/(const std::string &name) const { return path + "/" + name; }
};

std::vector<uint8_t> read_file(const std::string &path);

} // namespace qcow2test
