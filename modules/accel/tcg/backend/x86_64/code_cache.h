// SPDX-License-Identifier: MIT
// The JIT's code cache: one memory region mapped twice (writable, and executable), filled by a bump pointer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace keel::tcg
{

/*
 * W^X without mprotect: the same memory (a memfd) is mapped once read-write,
 * where code is emitted and patched, and once read-execute, where it runs.
 * Addresses in generated code (jump targets, block entries) are execute-view
 * addresses; rx(p)/rw(p) convert between the two views. x86 keeps
 * instruction fetch coherent with stores to the same physical memory, so a
 * patched jump is seen by the next execution without any flush.
 */
class CodeCache
{
  public:
    CodeCache() = default;
    ~CodeCache();
    CodeCache(const CodeCache &) = delete;
    CodeCache &operator=(const CodeCache &) = delete;

    // Maps `size` bytes; false and `err` if the host refuses.
    bool init(size_t size, std::string &err);

    uint8_t *rw_base() const { return rw_; }
    size_t size() const { return size_; }
    // Bytes in use; code is appended at rw_base() + used().
    size_t used() const { return used_; }
    void set_used(size_t n) { used_ = n; }
    // Everything after `keep` bytes (the fixed trampolines) is given back.
    void reset(size_t keep) { used_ = keep; }

    uint8_t *rx(uint8_t *rw) const { return rw + delta_; }
    uint8_t *rw(uint8_t *rx) const { return rx - delta_; }
    const uint8_t *rw(const uint8_t *rx) const { return rx - delta_; }

  private:
    uint8_t *rw_ = nullptr;
    uint8_t *rx_ = nullptr;
    size_t size_ = 0;
    size_t used_ = 0;
    ptrdiff_t delta_ = 0;
};

} // namespace keel::tcg
