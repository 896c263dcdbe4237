// SPDX-License-Identifier: MIT
// The JIT's code cache: a memfd mapped read-write and read-execute at two addresses.
#include "code_cache.h"

#include <cerrno>
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>

namespace keel::tcg
{

CodeCache::~CodeCache()
{
    if (rw_) munmap(rw_, size_);
    if (rx_) munmap(rx_, size_);
}

bool CodeCache::init(size_t size, std::string &err)
{
    int fd = memfd_create("keel-tcg-code", MFD_CLOEXEC);
    if (fd < 0) {
        err = std::string("cannot create the code cache (memfd_create): ") + std::strerror(errno);
        return false;
    }
    if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
        err = std::string("cannot size the code cache: ") + std::strerror(errno);
        close(fd);
        return false;
    }
    void *rw = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    void *rx = rw == MAP_FAILED ? MAP_FAILED : mmap(nullptr, size, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (rw == MAP_FAILED || rx == MAP_FAILED) {
        if (rw != MAP_FAILED) munmap(rw, size);
        err = std::string("cannot map the code cache: ") + std::strerror(e);
        return false;
    }
    rw_ = static_cast<uint8_t *>(rw);
    rx_ = static_cast<uint8_t *>(rx);
    size_ = size;
    used_ = 0;
    delta_ = rx_ - rw_;
    return true;
}

} // namespace keel::tcg
