// SPDX-License-Identifier: MIT
// The qcow2 test harness: a KeelServices table whose block_file_* work on host files.
#include "harness.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#ifdef KEEL_QCOW2_LINKED
extern "C" const KeelModuleInfo *keel_module_info(void);
#endif

namespace qcow2test
{
namespace
{

void error_set(KeelError *err, const char *fmt, ...)
{
    if (!err) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    err->set = true;
    err->message = buf;
}

void log(KeelObject *, KeelLogLevel, const char *, ...) {}

int file_pread(KeelBlockFile *f, uint64_t offset, void *buf, size_t len, KeelError *err)
{
    struct stat st;
    fstat(f->fd, &st);
    if (offset > (uint64_t)st.st_size || len > (uint64_t)st.st_size - offset) {
        error_set(err, "%s: read of %zu bytes at 0x%llx is past the end of the file", f->name.c_str(), len,
                  (unsigned long long)offset);
        return KEEL_ERR;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(f->fd, (char *)buf + done, len - done, (off_t)(offset + done));
        if (n <= 0) {
            error_set(err, "%s: read failed: %s", f->name.c_str(), strerror(errno));
            return KEEL_ERR;
        }
        done += (size_t)n;
    }
    return KEEL_OK;
}

int file_pwrite(KeelBlockFile *f, uint64_t offset, const void *buf, size_t len, KeelError *err)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(f->fd, (const char *)buf + done, len - done, (off_t)(offset + done));
        if (n <= 0) {
            error_set(err, "%s: write failed: %s", f->name.c_str(), strerror(errno));
            return KEEL_ERR;
        }
        done += (size_t)n;
    }
    return KEEL_OK;
}

int file_flush(KeelBlockFile *f, KeelError *err)
{
    if (fdatasync(f->fd) != 0) {
        error_set(err, "%s: flush failed", f->name.c_str());
        return KEEL_ERR;
    }
    return KEEL_OK;
}

uint64_t file_length(KeelBlockFile *f)
{
    struct stat st;
    fstat(f->fd, &st);
    return (uint64_t)st.st_size;
}

int file_truncate(KeelBlockFile *f, uint64_t length, KeelError *err)
{
    if (ftruncate(f->fd, (off_t)length) != 0) {
        error_set(err, "%s: truncate failed", f->name.c_str());
        return KEEL_ERR;
    }
    return KEEL_OK;
}

int file_discard(KeelBlockFile *f, uint64_t offset, uint64_t len, KeelError *)
{
    fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)len);
    return KEEL_OK;
}

const char *file_name(KeelBlockFile *f)
{
    return f->name.c_str();
}

int node_preadv(KeelBlockNode *node, uint64_t offset, const KeelIoVec *iov, unsigned iovcnt, KeelError *err)
{
    for (unsigned i = 0; i < iovcnt; i++) {
        if (offset + iov[i].len > node->length) {
            error_set(err, "backing node read past its end");
            return KEEL_ERR;
        }
        if (node->read(offset, (uint8_t *)iov[i].base, iov[i].len, err) != KEEL_OK) return KEEL_ERR;
        offset += iov[i].len;
    }
    return KEEL_OK;
}

uint64_t node_length(KeelBlockNode *node)
{
    return node->length;
}

KeelServices make_services()
{
    KeelServices s{};
    s.size = sizeof s;
    s.abi_major = KEEL_ABI_MAJOR;
    s.abi_minor = KEEL_ABI_MINOR;
    s.error_set = error_set;
    s.log = log;
    s.block_file_pread = file_pread;
    s.block_file_pwrite = file_pwrite;
    s.block_file_flush = file_flush;
    s.block_file_length = file_length;
    s.block_file_truncate = file_truncate;
    s.block_file_discard = file_discard;
    s.block_file_name = file_name;
    s.block_node_preadv = node_preadv;
    s.block_node_length = node_length;
    return s;
}

const KeelServices services = make_services();
const KeelBlockDriverInfo *registered = nullptr;

int register_block_driver(KeelRegistrar *, const KeelBlockDriverInfo *d, KeelError *)
{
    registered = d;
    return KEEL_OK;
}

} // namespace

const KeelBlockDriverInfo *driver()
{
    if (registered) return registered;
#ifdef KEEL_QCOW2_LINKED
    KeelModuleInfoFn fn = keel_module_info;
#else
    void *h = dlopen(MODULE_PATH, RTLD_NOW | RTLD_LOCAL);
    if (!h) throw std::runtime_error(std::string("dlopen: ") + dlerror());
    auto fn = (KeelModuleInfoFn)dlsym(h, KEEL_MODULE_SYMBOL);
    if (!fn) throw std::runtime_error("no keel_module_info");
#endif
    const KeelModuleInfo *mi = fn();
    KeelRegistrar reg{};
    reg.size = sizeof reg;
    reg.services = &services;
    reg.register_block_driver = register_block_driver;
    KeelError err;
    if (mi->kind != KEEL_MODULE_BLOCK || mi->init(&reg, &err) != KEEL_OK || !registered)
        throw std::runtime_error("module init failed: " + err.message);
    return registered;
}

File::File(const std::string &path, bool create)
{
    f.fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0), 0644);
    if (f.fd < 0) throw std::runtime_error("cannot open " + path);
    f.name = path;
}

File::File(int fd, const std::string &name)
{
    f.fd = fd;
    f.name = name;
}

File::~File()
{
    ::close(f.fd);
}

Image::Image(const std::string &path, uint32_t flags, const KeelBlockOption *opts) : file(path)
{
    state = ops()->open(&node, &file.f, flags, opts, &err);
}

Image::Image(int fd, const std::string &name, uint32_t flags) : file(fd, name)
{
    state = ops()->open(&node, &file.f, flags, nullptr, &err);
}

Image::~Image()
{
    if (state) ops()->close(state);
}

int Image::read(uint64_t off, void *buf, size_t len)
{
    KeelIoVec v{buf, len};
    return ops()->preadv(state, off, &v, 1, &err);
}

int Image::write(uint64_t off, const void *buf, size_t len)
{
    KeelIoVec v{const_cast<void *>(buf), len};
    return ops()->pwritev(state, off, &v, 1, &err);
}

KeelBlockNode raw_node(const std::string &path)
{
    KeelBlockNode n;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot open " + path);
    struct stat st;
    fstat(fd, &st);
    n.length = (uint64_t)st.st_size;
    // The fd lives as long as the test process: nodes are few.
    n.read = [fd](uint64_t off, uint8_t *buf, size_t len, KeelError *) {
        return pread(fd, buf, len, (off_t)off) == (ssize_t)len ? KEEL_OK : KEEL_ERR;
    };
    return n;
}

std::string create(const std::string &path, uint64_t size,
                   const std::vector<std::pair<std::string, std::string>> &opts)
{
    std::vector<KeelBlockOption> o;
    for (auto &p : opts)
        o.push_back({p.first.c_str(), p.second.c_str()});
    o.push_back({nullptr, nullptr});
    File f(path, true);
    KeelError err;
    if (driver()->ops->create(&f.f, size, o.data(), &err) != KEEL_OK)
        return err.message.empty() ? "unknown error" : err.message;
    return "";
}

int run(const std::string &cmd, std::string *out)
{
    FILE *p = popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return -1;
    std::string s;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        s.append(buf, n);
    int st = pclose(p);
    if (out) *out = s;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TmpDir::TmpDir()
{
    const char *base = getenv("TMPDIR");
    path = std::string(base ? base : "/tmp") + "/keel-qcow2-XXXXXX";
    if (!mkdtemp(path.data())) throw std::runtime_error("mkdtemp failed");
}

TmpDir::~TmpDir()
{
    run("rm -rf '" + path + "'");
}

std::vector<uint8_t> read_file(const std::string &path)
{
    std::vector<uint8_t> d;
    FILE *f = fopen(path.c_str(), "rb");
    if (!f) return d;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        d.insert(d.end(), buf, buf + n);
    fclose(f);
    return d;
}

} // namespace qcow2test
