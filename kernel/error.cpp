// SPDX-License-Identifier: MIT
// Errors inside the kernel: locations and formatting.
#include "error.h"

#include <cstdarg>
#include <cstdio>

namespace keel
{

std::string Location::str() const
{
    if (line <= 0) return file;
    if (col <= 0) return file + ":" + std::to_string(line);
    return file + ":" + std::to_string(line) + ":" + std::to_string(col);
}

Error::Error(const Location &loc, const std::string &msg)
    : std::runtime_error(loc.valid() ? loc.str() + ": " + msg : msg), located_(loc.valid() && loc.line > 0)
{
}

std::string vstrprintf(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = std::vsnprintf(nullptr, 0, fmt, ap2);
    va_end(ap2);
    std::string out(n > 0 ? static_cast<size_t>(n) : 0, '\0');
    if (n > 0) std::vsnprintf(out.data(), out.size() + 1, fmt, ap);
    return out;
}

std::string strprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    std::string out = vstrprintf(fmt, ap);
    va_end(ap);
    return out;
}

} // namespace keel
