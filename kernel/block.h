// SPDX-License-Identifier: MIT
// The block layer: image files (the protocol), open image nodes with their backing chains, drives for
// devices.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

#include <keel/services.h>

// The C ABI's opaque types, defined by the kernel.

// A host file opened (and locked) for a format driver.
struct KeelBlockFile {
    int fd = -1;
    std::string name; // as the user gave it
    bool writable = false;
    dev_t dev = 0;
    ino_t ino = 0;
    KeelBlockFile() = default;
    KeelBlockFile(const KeelBlockFile &) = delete;
    KeelBlockFile &operator=(const KeelBlockFile &) = delete;
    ~KeelBlockFile();
};

// An open image: a driver's state over its file, and its backing node.
struct KeelBlockNode {
    const KeelBlockDriverInfo *driver = nullptr;
    std::string format;   // the driver's name
    std::string filename; // as given (backing files: as resolved)
    uint32_t flags = 0;   // the KEEL_BLOCK_* open flags
    // Probing guessed raw: writes that would make block 0 look like another format are refused.
    bool probed_raw = false;
    std::unique_ptr<KeelBlockFile> file;
    void *state = nullptr;
    std::unique_ptr<KeelBlockNode> backing; // destroyed after the driver closed (it may still flush)
    KeelBlockNode() = default;
    KeelBlockNode(const KeelBlockNode &) = delete;
    KeelBlockNode &operator=(const KeelBlockNode &) = delete;
    ~KeelBlockNode();
};

// A -drive: what a device reads and writes.
struct KeelDrive {
    std::string id;
    std::string interface; // "virtio" or "none"
    std::unique_ptr<KeelBlockNode> node;
    // The disk's size, read once when the drive opens: nothing resizes an open drive, and asking the
    // driver on every request cost raw images an fstat each (keel-bench-blockio).
    uint64_t length = 0;
    bool read_only = false;
    // snapshot=on: `node` is a temporary qcow2 overlay (in $TMPDIR, default
    // /var/tmp, unlinked as soon as it is open) whose backing node is the
    // image, opened read-only; the guest's writes vanish when keel exits.
    bool snapshot = false;
    std::string user; // the device that uses it ("" = none yet)
};

namespace keel
{

// Open flags of the kernel's own, above the contract's KEEL_BLOCK_* bits.
// Share the image with writers (keel-img -U, QEMU's force-share): take no lock.
constexpr uint32_t kBlockForceShare = 1u << 16;

// Longest backing chain open_image follows.
constexpr unsigned kMaxBackingDepth = 256;

using BlockNodePtr = std::unique_ptr<KeelBlockNode>;

// Where the probing warning goes (default: "keel: warning: ..." lines on stderr).
void set_block_warning_sink(std::function<void(const std::string &)> sink);

// Open `path` as `format` ("" = probe it), with KEEL_BLOCK_* flags (and
// kBlockForceShare). Opens the backing chain unless KEEL_BLOCK_NO_BACKING.
// Throws keel::Error naming the file.
BlockNodePtr open_image(const std::string &path, const std::string &format, uint32_t flags);
// Create `path` (truncating an existing file) as a new empty image of `format`.
void create_image(const std::string &path, const std::string &format, uint64_t size,
                  const std::vector<std::pair<std::string, std::string>> &options);
// The format a file would be probed as (loads every block driver), and whether that was a guess of raw.
std::string probe_format(const std::string &path, bool *guessed_raw = nullptr);

// Node helpers for keel-img; all throw keel::Error on failure.
void node_read(KeelBlockNode *node, uint64_t offset, void *buf, size_t len);
void node_write(KeelBlockNode *node, uint64_t offset, const void *buf, size_t len);
// One whole cluster (or the disk's last part) stored compressed, into unallocated space (convert -c).
void node_write_compressed(KeelBlockNode *node, uint64_t offset, const void *buf, size_t len);
// Whether `format` (a registered block driver; throws if none) can write compressed clusters.
bool format_supports_compression(const std::string &format);
void node_flush(KeelBlockNode *node);
void node_discard(KeelBlockNode *node, uint64_t offset, uint64_t bytes);
void node_write_zeroes(KeelBlockNode *node, uint64_t offset, uint64_t bytes, uint32_t flags);
void node_truncate(KeelBlockNode *node, uint64_t size);
KeelBlockInfo node_info(KeelBlockNode *node);
// Format-specific items (empty when the driver has none).
struct InfoItem {
    std::string json_key, label;
    KeelBlockInfoKind kind;
    int64_t i;
    std::string s;
};
std::vector<InfoItem> node_info_specific(KeelBlockNode *node);
struct BlockStatus {
    uint64_t pnum = 0;
    uint64_t map = 0;
    uint32_t flags = 0;
};
BlockStatus node_block_status(KeelBlockNode *node, uint64_t offset, uint64_t bytes);
KeelBlockCheckResult node_check(KeelBlockNode *node, uint32_t fix,
                                const std::function<void(const std::string &)> &report);
struct SnapshotInfo {
    std::string id, name;
    uint64_t vm_state_size;
    uint32_t date_sec, date_nsec;
    uint64_t vm_clock_nsec, icount;
};
std::vector<SnapshotInfo> node_snapshot_list(KeelBlockNode *node);
void node_snapshot_create(KeelBlockNode *node, const std::string &name);
void node_snapshot_apply(KeelBlockNode *node, const std::string &id_or_name);
void node_snapshot_delete(KeelBlockNode *node, const std::string &id_or_name);
void node_make_empty(KeelBlockNode *node);
void node_change_backing(KeelBlockNode *node, const std::string &backing_file,
                         const std::string &backing_fmt);

// A -drive as parsed from the command line (cli.cpp).
struct DriveSpec {
    std::string file;
    std::string format; // "" = probe
    std::string interface = "virtio";
    std::string id; // "" = drive0, drive1, ...
    bool read_only = false;
    bool snapshot = false;
};
// Parse "file=F[,format=..][,if=..][,id=..][,readonly=on][,snapshot=on]"; errors name the option.
DriveSpec parse_drive(const std::string &arg);

// The drives of this process, by id. add_drive opens the image (throws keel::Error).
KeelDrive *add_drive(const DriveSpec &spec);
KeelDrive *find_drive(const std::string &id);
std::vector<std::string> drive_ids();
std::vector<KeelDrive *> all_drives();
// Flush and close every drive (at exit).
void close_drives();

// The block_* and drive_* services of KeelServices.
int block_file_pread(KeelBlockFile *f, uint64_t offset, void *buf, size_t len, KeelError *err);
int block_file_pwrite(KeelBlockFile *f, uint64_t offset, const void *buf, size_t len, KeelError *err);
int block_file_flush(KeelBlockFile *f, KeelError *err);
uint64_t block_file_length(KeelBlockFile *f);
int block_file_truncate(KeelBlockFile *f, uint64_t length, KeelError *err);
int block_file_discard(KeelBlockFile *f, uint64_t offset, uint64_t len, KeelError *err);
const char *block_file_name(KeelBlockFile *f);
int block_file_status(KeelBlockFile *f, uint64_t offset, uint64_t bytes, uint64_t *pnum, bool *hole,
                      KeelError *err);
int block_node_preadv(KeelBlockNode *node, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt,
                      KeelError *err);
uint64_t block_node_length(KeelBlockNode *node);
int drive_preadv(KeelDrive *d, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt, KeelError *err);
int drive_pwritev(KeelDrive *d, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt, KeelError *err);
int drive_flush(KeelDrive *d, KeelError *err);
int drive_discard(KeelDrive *d, uint64_t offset, uint64_t bytes, KeelError *err);
int drive_write_zeroes(KeelDrive *d, uint64_t offset, uint64_t bytes, uint32_t flags, KeelError *err);
uint64_t drive_length(KeelDrive *d);
bool drive_read_only(KeelDrive *d);
const char *drive_id(KeelDrive *d);

} // namespace keel
