// SPDX-License-Identifier: MIT
// Errors inside the kernel: source locations and the one exception type; KeelError for the C ABI.
#pragma once

#include <cstdarg>
#include <stdexcept>
#include <string>

namespace keel
{

// A place in a manifest (or on the command line) that an error points at.
struct Location {
    std::string file; // "configs/riscv-virt.yaml", or "-device" for command-line input
    int line = 0;     // 1-based; 0 = unknown
    int col = 0;      // 1-based; 0 = unknown

    bool valid() const { return !file.empty(); }
    // "file:line:col" (or just "file" when line is unknown).
    std::string str() const;
};

// The kernel's only exception type. what() is the complete user-facing
// message, already prefixed with its location where there is one.
class Error : public std::runtime_error
{
  public:
    explicit Error(const std::string &msg) : std::runtime_error(msg) {}
    Error(const Location &loc, const std::string &msg);
    // A message that already starts with its location (one carried through a KeelError).
    static Error prelocated(const std::string &msg)
    {
        Error e(msg);
        e.located_ = true;
        return e;
    }
    // Whether what() starts with a location ("file:line:col: ").
    bool located() const { return located_; }

  private:
    bool located_ = false;
};

// printf into a std::string.
std::string strprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
std::string vstrprintf(const char *fmt, va_list ap);

} // namespace keel

// The C ABI's error object: the kernel owns it, modules fill it through
// KeelServices.error_set.
struct KeelError {
    bool is_set = false;
    std::string message;
    bool located = false; // message starts with "file:line:col: " (a manifest mistake found by a service)
};
