// SPDX-License-Identifier: MIT
// Logging: -d categories (QEMU's names), -D file, and messages for users.
#pragma once

#include <cstdint>
#include <string>

namespace keel
{

struct LogCategory {
    const char *name;
    uint32_t mask;
    const char *help;
};

// Every -d category, in `-d help` order.
const LogCategory *log_categories(size_t *count);
// Parse "in_asm,int,guest_errors"; throws keel::Error naming the bad item and the valid ones.
uint32_t parse_log_mask(const std::string &spec);
std::string log_help();

void log_set_mask(uint32_t mask);
uint32_t log_mask();
inline bool log_enabled(uint32_t category)
{
    return (log_mask() & category) != 0;
}
// -D: where category logs go (stderr by default). Throws keel::Error if it cannot be opened.
void log_set_file(const std::string &path);
// Write to the log (the -D file or stderr).
void log_write(const std::string &text);

} // namespace keel
