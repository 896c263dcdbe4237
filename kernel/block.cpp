// SPDX-License-Identifier: MIT
// The block layer: the file protocol with QEMU-compatible image locks, format probing, backing chains,
// and the drives devices use.
#include "block.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "kernel.h"
#include "log.h"
#include "util.h"

KeelBlockFile::~KeelBlockFile()
{
    if (fd >= 0) ::close(fd); // closing the descriptor drops its OFD locks
}

KeelBlockNode::~KeelBlockNode()
{
    if (state && driver && driver->ops->close) driver->ops->close(state);
    state = nullptr;
}

namespace keel
{

namespace
{

int fail(KeelError *err, const std::string &msg)
{
    if (err) {
        err->is_set = true;
        err->message = msg;
    }
    return KEEL_ERR;
}

std::string errno_text(int e)
{
    return std::strerror(e);
}

// Turn a failed driver call into the exception the C++ helpers throw.
void check(int rc, KeelError &err, const std::string &what)
{
    if (rc == KEEL_OK) return;
    throw Error(err.is_set ? err.message : what + " failed");
}

std::function<void(const std::string &)> &warning_sink()
{
    static std::function<void(const std::string &)> sink = [](const std::string &m) {
        std::fprintf(stderr, "keel: warning: %s\n", m.c_str());
    };
    return sink;
}

// Image locking as QEMU does it, so keel, keel-img and QEMU's tools see each
// other: one byte per permission at 100 + bit ("I use it") and 200 + bit ("I do
// not let others use it"), shared OFD locks that live as long as the
// descriptor. Bits: 0 consistent read, 1 write.
constexpr off_t kLockPermBase = 100;
constexpr off_t kLockSharedBase = 200;
constexpr int kPermRead = 0;
constexpr int kPermWrite = 1;

bool lock_byte(int fd, off_t byte)
{
    struct flock fl = {};
    fl.l_type = F_RDLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = byte;
    fl.l_len = 1;
    return ::fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

// Whether another open file description holds a lock on `byte`.
bool byte_taken(int fd, off_t byte)
{
    struct flock fl = {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = byte;
    fl.l_len = 1;
    if (::fcntl(fd, F_OFD_GETLK, &fl) != 0) return false; // no lock support: no locking
    return fl.l_type != F_UNLCK;
}

void lock_image(KeelBlockFile &f)
{
    // Every user reads; nobody lets others write; writers say so.
    bool ok = lock_byte(f.fd, kLockPermBase + kPermRead) && lock_byte(f.fd, kLockSharedBase + kPermWrite) &&
              (!f.writable || lock_byte(f.fd, kLockPermBase + kPermWrite));
    if (ok) {
        if (f.writable && byte_taken(f.fd, kLockSharedBase + kPermWrite))
            ok = false;
        else if (byte_taken(f.fd, kLockPermBase + kPermWrite))
            ok = false;
        else
            return;
    } else if (errno == ENOLCK || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
        return; // the file system has no OFD locks: open unlocked, as QEMU does
    }
    throw Error(
        std::string(f.writable ? "Failed to get \"write\" lock" : "Failed to get shared \"write\" lock") +
        "\nIs another process using the image [" + f.name + "]?");
}

std::unique_ptr<KeelBlockFile> open_file(const std::string &path, bool writable, bool create = false)
{
    auto f = std::make_unique<KeelBlockFile>();
    f->name = path;
    f->writable = writable;
    // Never O_TRUNC: an image in use must survive a create that then fails to get its lock.
    int flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | (create ? O_CREAT : 0);
    do
        f->fd = ::open(path.c_str(), flags, 0644);
    while (f->fd < 0 && errno == EINTR);
    if (f->fd < 0) throw Error("Could not open '" + path + "': " + errno_text(errno));
    struct stat st;
    if (::fstat(f->fd, &st) != 0) throw Error("Could not stat '" + path + "': " + errno_text(errno));
    if (S_ISDIR(st.st_mode)) throw Error("Could not open '" + path + "': Is a directory");
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    return f;
}

const KeelBlockDriverInfo *driver_info(const std::string &format)
{
    return kernel().registry().require_block_driver(format).info;
}

// raw is never chosen silently (QEMU's rule): the best-scoring driver wins.
std::string probe_buffer(const std::string &path, const uint8_t *buf, size_t len, bool *guessed_raw)
{
    Registry &reg = kernel().registry();
    std::string best;
    int best_score = 0;
    for (const auto &name : reg.block_driver_names()) {
        const KeelBlockDriverInfo *info = reg.require_block_driver(name).info;
        if (!info->ops->probe) continue;
        int score = info->ops->probe(buf, len, path.c_str());
        if (score > best_score) {
            best_score = score;
            best = name;
        }
    }
    if (best.empty())
        throw Error("Could not determine the format of '" + path +
                    "' (no block driver claims it); give format=");
    if (guessed_raw) *guessed_raw = best == "raw";
    return best;
}

std::vector<uint8_t> read_head(KeelBlockFile &f)
{
    uint64_t n = std::min<uint64_t>(512, block_file_length(&f));
    std::vector<uint8_t> head(n);
    KeelError err;
    if (n && block_file_pread(&f, 0, head.data(), n, &err) != KEEL_OK) throw Error(err.message);
    return head;
}

std::string dir_of(const std::string &path)
{
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

BlockNodePtr open_node(const std::string &path, const std::string &format, uint32_t flags,
                       std::vector<std::pair<dev_t, ino_t>> &chain)
{
    if (chain.size() > kMaxBackingDepth)
        throw Error(strprintf("the backing chain is deeper than %u images (at '%s')", kMaxBackingDepth,
                              path.c_str()));
    auto file = open_file(path, flags & KEEL_BLOCK_RDWR);
    for (const auto &[dev, ino] : chain)
        if (dev == file->dev && ino == file->ino)
            throw Error("backing chain loop: '" + path + "' is already in the chain");
    chain.emplace_back(file->dev, file->ino);
    if (!(flags & kBlockForceShare)) lock_image(*file);

    auto node = std::make_unique<KeelBlockNode>();
    node->filename = path;
    node->flags = flags;
    std::string fmt = format;
    if (fmt.empty()) {
        std::vector<uint8_t> head = read_head(*file);
        bool raw = false;
        fmt = probe_buffer(path, head.data(), head.size(), &raw);
        if (raw) {
            node->probed_raw = true;
            warning_sink()("Image format was not specified for '" + path +
                           "' and probing guessed raw.\n"
                           "         Automatically detecting the format is dangerous for raw images, write "
                           "operations on block 0 will be restricted.\n"
                           "         Specify the 'raw' format explicitly to remove the restrictions.");
        }
    }
    node->driver = driver_info(fmt);
    node->format = fmt;
    node->file = std::move(file);
    KeelError err;
    node->state = node->driver->ops->open(node.get(), node->file.get(), flags & 0xffffu, nullptr, &err);
    if (!node->state) throw Error(err.is_set ? err.message : "Could not open '" + path + "' as " + fmt);

    if (!(flags & KEEL_BLOCK_NO_BACKING)) {
        KeelBlockInfo info = node_info(node.get());
        if (info.backing_file && *info.backing_file) {
            std::string b = info.backing_file;
            if (b[0] != '/') b = dir_of(path) + "/" + b;
            std::string bfmt = info.backing_fmt ? info.backing_fmt : "";
            try {
                node->backing = open_node(b, bfmt, (flags & ~KEEL_BLOCK_RDWR) & ~KEEL_BLOCK_CHECK, chain);
            } catch (const Error &e) {
                throw Error("Could not open backing file of '" + path + "': " + e.what());
            }
            if (node->driver->ops->set_backing)
                node->driver->ops->set_backing(node->state, node->backing.get());
        }
    }
    return node;
}

// A raw image whose format was guessed must not become another format by a
// write to its first sector (QEMU's restriction on probed raw images).
void check_probed_raw_write(KeelBlockNode *node, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt)
{
    if (!node->probed_raw || offset >= 512) return;
    uint8_t head[512] = {};
    size_t have = std::min<uint64_t>(512, block_node_length(node));
    KeelError err;
    KeelIoVec v{head, have};
    if (have && block_node_preadv(node, 0, &v, 1, &err) != KEEL_OK) throw Error(err.message);
    uint64_t pos = offset;
    for (unsigned i = 0; i < iovcnt && pos < 512; ++i) {
        size_t n = std::min<uint64_t>(iov[i].len, 512 - pos);
        std::memcpy(head + pos, iov[i].base, n);
        pos += iov[i].len;
        have = std::max<size_t>(have, std::min<uint64_t>(pos, 512));
    }
    bool raw = false;
    probe_buffer(node->filename, head, have, &raw);
    if (!raw)
        throw Error("'" + node->filename +
                    "': refusing a write that would make the first sector of a probed raw image look like "
                    "another format; specify format=raw");
}

uint64_t iov_size(const KeelIoVec *iov, unsigned iovcnt)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < iovcnt; ++i)
        n += iov[i].len;
    return n;
}

std::mutex &drives_lock()
{
    static std::mutex m;
    return m;
}
std::map<std::string, std::unique_ptr<KeelDrive>> &drives()
{
    static std::map<std::string, std::unique_ptr<KeelDrive>> d;
    return d;
}

} // namespace

void set_block_warning_sink(std::function<void(const std::string &)> sink)
{
    warning_sink() = std::move(sink);
}

BlockNodePtr open_image(const std::string &path, const std::string &format, uint32_t flags)
{
    std::vector<std::pair<dev_t, ino_t>> chain;
    return open_node(path, format, flags, chain);
}

std::string probe_format(const std::string &path, bool *guessed_raw)
{
    auto f = open_file(path, false);
    std::vector<uint8_t> head = read_head(*f);
    return probe_buffer(path, head.data(), head.size(), guessed_raw);
}

void create_image(const std::string &path, const std::string &format, uint64_t size,
                  const std::vector<std::pair<std::string, std::string>> &options)
{
    const KeelBlockDriverInfo *info = driver_info(format);
    if (!info->ops->create) throw Error("Format driver '" + format + "' does not support image creation");
    std::vector<KeelBlockOption> opts;
    for (const auto &[k, v] : options)
        opts.push_back({k.c_str(), v.c_str()});
    opts.push_back({nullptr, nullptr});
    auto f = open_file(path, true, true);
    lock_image(*f);
    KeelError err;
    check(block_file_truncate(f.get(), 0, &err), err, "emptying '" + path + "'");
    check(info->ops->create(f.get(), size, opts.data(), &err), err, "creating '" + path + "'");
}

// --- node helpers ---

void node_read(KeelBlockNode *node, uint64_t offset, void *buf, size_t len)
{
    // Only backing reads (block_node_preadv) see zeroes past the end; a caller asking for them is wrong.
    uint64_t size = block_node_length(node);
    if (offset > size || len > size - offset)
        throw Error(strprintf("'%s': read of %zu bytes at offset %llu is past the end of the %llu-byte image",
                              node->filename.c_str(), len, static_cast<unsigned long long>(offset),
                              static_cast<unsigned long long>(size)));
    KeelIoVec v{buf, len};
    KeelError err;
    check(block_node_preadv(node, offset, &v, 1, &err), err, "read");
}

void node_write(KeelBlockNode *node, uint64_t offset, const void *buf, size_t len)
{
    if (!(node->flags & KEEL_BLOCK_RDWR)) throw Error("'" + node->filename + "' is opened read-only");
    if (!node->driver->ops->pwritev) throw Error("Format '" + node->format + "' does not support writing");
    KeelIoVec v{const_cast<void *>(buf), len};
    check_probed_raw_write(node, offset, &v, 1);
    KeelError err;
    check(node->driver->ops->pwritev(node->state, offset, &v, 1, &err), err, "write");
}

void node_write_compressed(KeelBlockNode *node, uint64_t offset, const void *buf, size_t len)
{
    if (!(node->flags & KEEL_BLOCK_RDWR)) throw Error("'" + node->filename + "' is opened read-only");
    if (!node->driver->ops->pwritev_compressed)
        throw Error("Compression not supported by format '" + node->format + "'");
    KeelIoVec v{const_cast<void *>(buf), len};
    KeelError err;
    check(node->driver->ops->pwritev_compressed(node->state, offset, &v, 1, &err), err, "compressed write");
}

bool format_supports_compression(const std::string &format)
{
    return driver_info(format)->ops->pwritev_compressed != nullptr;
}

#define KEEL_NODE_OP(hook, what, ...)                                                                    \
    do {                                                                                                 \
        if (!node->driver->ops->hook)                                                                    \
            throw Error(std::string("Operation not supported by format '") + node->format + "': " what); \
        KeelError err;                                                                                   \
        check(node->driver->ops->hook(node->state, ##__VA_ARGS__, &err), err, what);                     \
    } while (0)

void node_flush(KeelBlockNode *node)
{
    KEEL_NODE_OP(flush, "flush");
}
void node_discard(KeelBlockNode *node, uint64_t offset, uint64_t bytes)
{
    KEEL_NODE_OP(discard, "discard", offset, bytes);
}
void node_write_zeroes(KeelBlockNode *node, uint64_t offset, uint64_t bytes, uint32_t flags)
{
    KEEL_NODE_OP(write_zeroes, "write_zeroes", offset, bytes, flags);
}
void node_truncate(KeelBlockNode *node, uint64_t size)
{
    KEEL_NODE_OP(truncate, "resize", size);
}
void node_snapshot_create(KeelBlockNode *node, const std::string &name)
{
    KEEL_NODE_OP(snapshot_create, "snapshot create", name.c_str());
}
void node_snapshot_apply(KeelBlockNode *node, const std::string &id_or_name)
{
    KEEL_NODE_OP(snapshot_apply, "snapshot apply", id_or_name.c_str());
}
void node_snapshot_delete(KeelBlockNode *node, const std::string &id_or_name)
{
    KEEL_NODE_OP(snapshot_delete, "snapshot delete", id_or_name.c_str());
}
void node_make_empty(KeelBlockNode *node)
{
    KEEL_NODE_OP(make_empty, "make empty");
}
void node_change_backing(KeelBlockNode *node, const std::string &backing_file, const std::string &backing_fmt)
{
    KEEL_NODE_OP(change_backing, "change backing file", backing_file.empty() ? nullptr : backing_file.c_str(),
                 backing_fmt.empty() ? nullptr : backing_fmt.c_str());
}
#undef KEEL_NODE_OP

KeelBlockInfo node_info(KeelBlockNode *node)
{
    KeelBlockInfo info = {};
    info.size = sizeof info;
    if (node->driver->ops->info(node->state, &info) != KEEL_OK)
        throw Error("'" + node->filename + "': the " + node->format + " driver could not describe the image");
    return info;
}

std::vector<InfoItem> node_info_specific(KeelBlockNode *node)
{
    std::vector<InfoItem> items;
    if (!node->driver->ops->info_specific) return items;
    node->driver->ops->info_specific(
        node->state,
        [](void *ctx, const char *key, const char *label, KeelBlockInfoKind kind, int64_t i, const char *s) {
            static_cast<std::vector<InfoItem> *>(ctx)->push_back(
                {key ? key : "", label ? label : "", kind, i, s ? s : ""});
        },
        &items);
    return items;
}

BlockStatus node_block_status(KeelBlockNode *node, uint64_t offset, uint64_t bytes)
{
    BlockStatus st;
    if (!node->driver->ops->block_status) {
        // Without the hook, everything is data of this node (as QEMU assumes).
        st.pnum = bytes;
        st.flags = KEEL_BLOCK_STATUS_DATA | KEEL_BLOCK_STATUS_ALLOCATED;
        st.map = offset;
        return st;
    }
    KeelError err;
    check(node->driver->ops->block_status(node->state, offset, bytes, &st.pnum, &st.map, &st.flags, &err),
          err, "block status");
    if (st.pnum == 0 || st.pnum > bytes)
        throw Error("'" + node->filename + "': the " + node->format + " driver answered block status for " +
                    std::to_string(st.pnum) + " bytes of " + std::to_string(bytes));
    return st;
}

KeelBlockCheckResult node_check(KeelBlockNode *node, uint32_t fix,
                                const std::function<void(const std::string &)> &report)
{
    KeelBlockCheckResult r = {};
    r.size = sizeof r;
    r.image_end_offset = r.total_clusters = r.allocated_clusters = r.fragmented_clusters =
        r.compressed_clusters = -1;
    if (!node->driver->ops->check)
        throw Error("This image format does not support checks"); // qemu-img's words for raw
    KeelError err;
    auto cb = [](void *ctx, const char *line) {
        (*static_cast<const std::function<void(const std::string &)> *>(ctx))(line ? line : "");
    };
    check(node->driver->ops->check(node->state, fix, &r, cb,
                                   const_cast<std::function<void(const std::string &)> *>(&report), &err),
          err, "check");
    return r;
}

std::vector<SnapshotInfo> node_snapshot_list(KeelBlockNode *node)
{
    std::vector<SnapshotInfo> out;
    if (!node->driver->ops->snapshot_list) return out; // a format without snapshots has none
    KeelError err;
    auto cb = [](void *ctx, const KeelBlockSnapshot *s) {
        static_cast<std::vector<SnapshotInfo> *>(ctx)->push_back({s->id ? s->id : "", s->name ? s->name : "",
                                                                  s->vm_state_size, s->date_sec, s->date_nsec,
                                                                  s->vm_clock_nsec, s->icount});
    };
    check(node->driver->ops->snapshot_list(node->state, cb, &out, &err), err, "snapshot list");
    return out;
}

// --- the file protocol ---

int block_file_pread(KeelBlockFile *f, uint64_t offset, void *buf, size_t len, KeelError *err)
{
    auto *p = static_cast<uint8_t *>(buf);
    while (len) {
        ssize_t n = ::pread(f->fd, p, len, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            return fail(err, strprintf("%s: read error at offset %llu: %s", f->name.c_str(),
                                       static_cast<unsigned long long>(offset), errno_text(errno).c_str()));
        if (n == 0)
            return fail(err, strprintf("%s: read past the end of the file at offset %llu (%zu bytes missing)",
                                       f->name.c_str(), static_cast<unsigned long long>(offset), len));
        p += n;
        offset += static_cast<uint64_t>(n);
        len -= static_cast<size_t>(n);
    }
    return KEEL_OK;
}

int block_file_pwrite(KeelBlockFile *f, uint64_t offset, const void *buf, size_t len, KeelError *err)
{
    if (!f->writable) return fail(err, f->name + ": the image is opened read-only");
    auto *p = static_cast<const uint8_t *>(buf);
    while (len) {
        ssize_t n = ::pwrite(f->fd, p, len, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            return fail(err, strprintf("%s: write error at offset %llu: %s", f->name.c_str(),
                                       static_cast<unsigned long long>(offset),
                                       n < 0 ? errno_text(errno).c_str() : "nothing written"));
        p += n;
        offset += static_cast<uint64_t>(n);
        len -= static_cast<size_t>(n);
    }
    return KEEL_OK;
}

int block_file_flush(KeelBlockFile *f, KeelError *err)
{
    if (!f->writable) return KEEL_OK;
    int rc;
    do
        rc = ::fdatasync(f->fd);
    while (rc != 0 && errno == EINTR);
    if (rc != 0) return fail(err, f->name + ": flush failed: " + errno_text(errno));
    return KEEL_OK;
}

uint64_t block_file_length(KeelBlockFile *f)
{
    struct stat st;
    if (::fstat(f->fd, &st) != 0) return 0;
    return static_cast<uint64_t>(st.st_size);
}

int block_file_truncate(KeelBlockFile *f, uint64_t length, KeelError *err)
{
    if (!f->writable) return fail(err, f->name + ": the image is opened read-only");
    int rc;
    do
        rc = ::ftruncate(f->fd, static_cast<off_t>(length));
    while (rc != 0 && errno == EINTR);
    if (rc != 0)
        return fail(err, strprintf("%s: cannot resize to %llu bytes: %s", f->name.c_str(),
                                   static_cast<unsigned long long>(length), errno_text(errno).c_str()));
    return KEEL_OK;
}

int block_file_discard(KeelBlockFile *f, uint64_t offset, uint64_t len, KeelError *err)
{
    if (!f->writable) return fail(err, f->name + ": the image is opened read-only");
    uint64_t size = block_file_length(f);
    if (offset >= size || len == 0) return KEEL_OK; // past the end reads as zeroes already
    len = std::min(len, size - offset);
    if (::fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                    static_cast<off_t>(len)) == 0)
        return KEEL_OK;
    // No hole punching here: keep the promise that the range reads as zeroes.
    static const std::vector<uint8_t> zeroes(1 << 20);
    while (len) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(len, zeroes.size()));
        if (block_file_pwrite(f, offset, zeroes.data(), n, err) != KEEL_OK) return KEEL_ERR;
        offset += n;
        len -= n;
    }
    return KEEL_OK;
}

const char *block_file_name(KeelBlockFile *f)
{
    return f->name.c_str();
}

int block_file_status(KeelBlockFile *f, uint64_t offset, uint64_t bytes, uint64_t *pnum, bool *hole,
                      KeelError *err)
{
    if (!pnum || !hole || bytes == 0) return fail(err, f->name + ": block_file_status of 0 bytes");
    *pnum = bytes;
    *hole = false;
    uint64_t size = block_file_length(f);
    if (offset >= size) { // past the end: reads as zeroes, like a hole
        *hole = true;
        return KEEL_OK;
    }
    off_t data = ::lseek(f->fd, static_cast<off_t>(offset), SEEK_DATA);
    if (data < 0) {
        if (errno == ENXIO) *hole = true; // nothing but a hole to the end
        return KEEL_OK;                   // else: no hole support, all data
    }
    if (static_cast<uint64_t>(data) > offset) {
        *hole = true;
        *pnum = std::min<uint64_t>(bytes, static_cast<uint64_t>(data) - offset);
        return KEEL_OK;
    }
    off_t end = ::lseek(f->fd, static_cast<off_t>(offset), SEEK_HOLE);
    if (end > static_cast<off_t>(offset))
        *pnum = std::min<uint64_t>(bytes, static_cast<uint64_t>(end) - offset);
    return KEEL_OK;
}

// Parts past the node's end read as zeroes: an overlay may be larger than its backing image.
int block_node_preadv(KeelBlockNode *node, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt,
                      KeelError *err)
{
    uint64_t size = block_node_length(node);
    uint64_t total = iov_size(iov, iovcnt);
    if (offset + total <= size) return node->driver->ops->preadv(node->state, offset, iov, iovcnt, err);
    std::vector<KeelIoVec> in;
    uint64_t pos = offset;
    for (unsigned i = 0; i < iovcnt; ++i) {
        uint64_t end = pos + iov[i].len;
        if (pos >= size) {
            std::memset(iov[i].base, 0, iov[i].len);
        } else if (end > size) {
            in.push_back({iov[i].base, static_cast<size_t>(size - pos)});
            std::memset(static_cast<uint8_t *>(iov[i].base) + (size - pos), 0,
                        static_cast<size_t>(end - size));
        } else {
            in.push_back(iov[i]);
        }
        pos = end;
    }
    if (in.empty()) return KEEL_OK;
    return node->driver->ops->preadv(node->state, offset, in.data(), static_cast<unsigned>(in.size()), err);
}

uint64_t block_node_length(KeelBlockNode *node)
{
    KeelBlockInfo info = {};
    info.size = sizeof info;
    if (node->driver->ops->info(node->state, &info) != KEEL_OK) return 0;
    return info.virtual_size;
}

// --- drives ---

DriveSpec parse_drive(const std::string &arg)
{
    DriveSpec d;
    bool have_file = false;
    static const std::vector<std::string> keys = {"file", "format", "if", "id", "readonly", "snapshot"};
    std::vector<std::string> parts = split_option(arg);
    for (const auto &p : parts) {
        auto eq = p.find('=');
        if (eq == std::string::npos) {
            if (p.empty()) continue;
            throw Error("-drive " + arg + ": option '" + p + "' needs a value (" + p + "=...)");
        }
        std::string k = p.substr(0, eq), v = p.substr(eq + 1);
        if (k == "file") {
            if (v.empty()) throw Error("-drive " + arg + ": file= is empty");
            d.file = v;
            have_file = true;
        } else if (k == "format") {
            if (v.empty()) throw Error("-drive " + arg + ": format= is empty");
            d.format = v;
        } else if (k == "if") {
            if (v != "virtio" && v != "none")
                throw Error("-drive " + arg + ": unsupported bus type '" + v + "' for if= (virtio or none)");
            d.interface = v;
        } else if (k == "id") {
            if (!v.empty() && std::isalpha(static_cast<unsigned char>(v[0])) &&
                std::all_of(v.begin(), v.end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
                }))
                d.id = v;
            else
                throw Error("-drive " + arg + ": invalid id '" + v +
                            "' (a letter, then letters, digits, '-', '.', '_')");
        } else if (k == "readonly" || k == "snapshot") {
            auto b = parse_bool(v);
            if (!b) throw Error("-drive " + arg + ": invalid value '" + v + "' for '" + k + "' (on or off)");
            (k == "readonly" ? d.read_only : d.snapshot) = *b;
        } else {
            throw Error("-drive " + arg + ": invalid option '" + k + "'" + did_you_mean(k, keys) +
                        " (valid: file, format, if, id, readonly, snapshot)");
        }
    }
    if (!have_file) throw Error("-drive " + arg + ": file= is required");
    return d;
}

namespace
{

// The directory of -snapshot overlays: $TMPDIR, else /var/tmp (QEMU's choice: /tmp may be a small tmpfs).
std::string snapshot_dir()
{
    const char *t = std::getenv("TMPDIR");
    return t && *t ? t : "/var/tmp";
}

// snapshot=on, as QEMU does it: a temporary qcow2 overlay whose backing node is the image, opened
// read-only. The file is unlinked once open, so it goes away however keel ends; only its descriptor keeps
// it, and the guest's writes fill the disk of the temporary directory, not keel's memory.
BlockNodePtr snapshot_overlay(BlockNodePtr image, const std::string &name)
{
    std::string dir = snapshot_dir();
    std::string path = dir + "/keel-snapshot-XXXXXX";
    int fd = ::mkostemp(path.data(), O_CLOEXEC);
    if (fd < 0)
        throw Error("Could not create the temporary -snapshot overlay in '" + dir +
                    "': " + errno_text(errno));
    ::close(fd);
    BlockNodePtr top;
    try {
        // The backing file name is informative only (the image's node is attached below); absolute, so
        // that the overlay would be valid on its own.
        char *real = ::realpath(image->filename.c_str(), nullptr);
        std::string backing = real ? real : image->filename;
        std::free(real);
        // qcow2 sizes are whole sectors: an odd-sized image gets zeroes up to the next one (as in QEMU).
        uint64_t size = (block_node_length(image.get()) + 511) / 512 * 512;
        create_image(path, "qcow2", size, {{"backing_file", backing}, {"backing_fmt", image->format}});
        top = open_image(path, "qcow2", KEEL_BLOCK_RDWR | KEEL_BLOCK_NO_BACKING);
    } catch (const Error &e) {
        ::unlink(path.c_str());
        throw Error("Could not create the temporary -snapshot overlay of '" + name + "' in '" + dir +
                    "': " + e.what());
    }
    ::unlink(path.c_str());
    top->filename = top->file->name = path + " (the -snapshot overlay of " + name + ")";
    top->backing = std::move(image);
    if (top->driver->ops->set_backing) top->driver->ops->set_backing(top->state, top->backing.get());
    return top;
}

} // namespace

KeelDrive *add_drive(const DriveSpec &spec)
{
    std::lock_guard<std::mutex> g(drives_lock());
    auto &all = drives();
    std::string id = spec.id;
    if (id.empty()) {
        for (unsigned i = 0; id.empty() || all.count(id); ++i)
            id = "drive" + std::to_string(i);
    } else if (all.count(id)) {
        throw Error("-drive " + spec.file + ": Duplicate ID '" + id + "' for drive");
    }
    auto d = std::make_unique<KeelDrive>();
    d->id = id;
    d->interface = spec.interface;
    d->read_only = spec.read_only;
    d->snapshot = spec.snapshot && !spec.read_only;
    uint32_t flags = (spec.read_only || spec.snapshot) ? 0 : KEEL_BLOCK_RDWR;
    try {
        d->node = open_image(spec.file, spec.format, flags);
        if (d->snapshot) d->node = snapshot_overlay(std::move(d->node), spec.file);
        d->length = block_node_length(d->node.get());
    } catch (const Error &e) {
        throw Error("-drive file=" + spec.file + ": " + e.what());
    }
    KeelDrive *raw = d.get();
    all.emplace(id, std::move(d));
    return raw;
}

KeelDrive *find_drive(const std::string &id)
{
    std::lock_guard<std::mutex> g(drives_lock());
    auto it = drives().find(id);
    return it == drives().end() ? nullptr : it->second.get();
}

std::vector<std::string> drive_ids()
{
    std::lock_guard<std::mutex> g(drives_lock());
    std::vector<std::string> ids;
    for (const auto &[id, d] : drives())
        ids.push_back(id);
    return ids;
}

std::vector<KeelDrive *> all_drives()
{
    std::lock_guard<std::mutex> g(drives_lock());
    std::vector<KeelDrive *> out;
    for (const auto &[id, d] : drives())
        out.push_back(d.get());
    return out;
}

void close_drives()
{
    std::lock_guard<std::mutex> g(drives_lock());
    for (auto &[id, d] : drives()) {
        if (d->node && !d->snapshot && (d->node->flags & KEEL_BLOCK_RDWR) && d->node->driver->ops->flush) {
            KeelError err;
            if (d->node->driver->ops->flush(d->node->state, &err) != KEEL_OK)
                warning_sink()("drive '" + id + "': " + (err.is_set ? err.message : "flush failed"));
        }
    }
    drives().clear();
}

namespace
{

int drive_range(KeelDrive *d, uint64_t offset, uint64_t bytes, KeelError *err)
{
    uint64_t size = drive_length(d);
    if (offset > size || bytes > size - offset)
        return fail(err, strprintf("%s: access of %llu bytes at offset %llu is past the end of the %llu-byte "
                                   "disk",
                                   d->node->filename.c_str(), static_cast<unsigned long long>(bytes),
                                   static_cast<unsigned long long>(offset),
                                   static_cast<unsigned long long>(size)));
    return KEEL_OK;
}

int drive_writable(KeelDrive *d, KeelError *err)
{
    if (d->read_only) return fail(err, "drive '" + d->id + "' (" + d->node->filename + ") is read-only");
    return KEEL_OK;
}

} // namespace

static int drive_preadv_impl(KeelDrive *d, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt,
                             KeelError *err)
{
    uint64_t total = iov_size(iov, iovcnt);
    if (drive_range(d, offset, total, err) != KEEL_OK) return KEEL_ERR;
    return d->node->driver->ops->preadv(d->node->state, offset, iov, iovcnt, err);
}

static int drive_pwritev_impl(KeelDrive *d, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt,
                              KeelError *err)
{
    uint64_t total = iov_size(iov, iovcnt);
    if (drive_writable(d, err) != KEEL_OK || drive_range(d, offset, total, err) != KEEL_OK) return KEEL_ERR;
    if (!d->node->driver->ops->pwritev) return fail(err, "format '" + d->node->format + "' cannot write");
    try {
        check_probed_raw_write(d->node.get(), offset, iov, iovcnt);
    } catch (const Error &e) {
        return fail(err, e.what());
    }
    return d->node->driver->ops->pwritev(d->node->state, offset, iov, iovcnt, err);
}

static int drive_flush_impl(KeelDrive *d, KeelError *err)
{
    // A -snapshot overlay is thrown away at exit: nothing to make durable (QEMU: cache=unsafe).
    if (d->snapshot || d->read_only || !d->node->driver->ops->flush) return KEEL_OK;
    return d->node->driver->ops->flush(d->node->state, err);
}

static int drive_discard_impl(KeelDrive *d, uint64_t offset, uint64_t bytes, KeelError *err)
{
    if (drive_writable(d, err) != KEEL_OK || drive_range(d, offset, bytes, err) != KEEL_OK) return KEEL_ERR;
    // A discard is a hint: without support it does nothing, as in QEMU.
    if (!d->node->driver->ops->discard) return KEEL_OK;
    return d->node->driver->ops->discard(d->node->state, offset, bytes, err);
}

static int drive_write_zeroes_impl(KeelDrive *d, uint64_t offset, uint64_t bytes, uint32_t flags,
                                   KeelError *err)
{
    if (drive_writable(d, err) != KEEL_OK || drive_range(d, offset, bytes, err) != KEEL_OK) return KEEL_ERR;
    if (d->node->driver->ops->write_zeroes)
        return d->node->driver->ops->write_zeroes(d->node->state, offset, bytes, flags, err);
    // Fall back to writing zeroes.
    static const std::vector<uint8_t> zeroes(1 << 20);
    while (bytes) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(bytes, zeroes.size()));
        KeelIoVec v{const_cast<uint8_t *>(zeroes.data()), n};
        if (drive_pwritev_impl(d, offset, &v, 1, err) != KEEL_OK) return KEEL_ERR;
        offset += n;
        bytes -= n;
    }
    return KEEL_OK;
}

namespace
{

// A device may pass no KeelError (outside realize): the kernel then logs the failure itself.
template <class Fn> int logged(KeelDrive *d, KeelError *err, Fn fn)
{
    if (err) return fn(err);
    KeelError local;
    int rc = fn(&local);
    if (rc != KEEL_OK)
        log_write("keel: drive '" + d->id + "': " + (local.is_set ? local.message : "I/O error"));
    return rc;
}

} // namespace

int drive_preadv(KeelDrive *d, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt, KeelError *err)
{
    return logged(d, err, [&](KeelError *e) { return drive_preadv_impl(d, offset, iov, iovcnt, e); });
}

int drive_pwritev(KeelDrive *d, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt, KeelError *err)
{
    return logged(d, err, [&](KeelError *e) { return drive_pwritev_impl(d, offset, iov, iovcnt, e); });
}

int drive_flush(KeelDrive *d, KeelError *err)
{
    return logged(d, err, [&](KeelError *e) { return drive_flush_impl(d, e); });
}

int drive_discard(KeelDrive *d, uint64_t offset, uint64_t bytes, KeelError *err)
{
    return logged(d, err, [&](KeelError *e) { return drive_discard_impl(d, offset, bytes, e); });
}

int drive_write_zeroes(KeelDrive *d, uint64_t offset, uint64_t bytes, uint32_t flags, KeelError *err)
{
    return logged(d, err, [&](KeelError *e) { return drive_write_zeroes_impl(d, offset, bytes, flags, e); });
}

uint64_t drive_length(KeelDrive *d)
{
    return d->length;
}

bool drive_read_only(KeelDrive *d)
{
    return d->read_only;
}

const char *drive_id(KeelDrive *d)
{
    return d->id.c_str();
}

} // namespace keel
