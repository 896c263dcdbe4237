// SPDX-License-Identifier: MIT
// Logging: -d categories (QEMU's names), -D file, and messages for users.
#include "log.h"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include <keel/log.h>

#include "error.h"
#include "util.h"

namespace keel
{

namespace
{

const LogCategory kCategories[] = {
    {"in_asm", KEEL_LOG_IN_ASM, "show target assembly code for each compiled TB"},
    {"op", KEEL_LOG_OP, "show the IR of each translated block"},
    {"op_opt", KEEL_LOG_OP_OPT, "show the IR of each block after the JIT's optimisation"},
    {"out_asm", KEEL_LOG_OUT_ASM, "show generated host assembly code for each compiled TB"},
    {"exec", KEEL_LOG_EXEC, "show trace before each executed TB"},
    {"int", KEEL_LOG_INT, "show interrupts/exceptions in short format"},
    {"mmu", KEEL_LOG_MMU, "log MMU-related activities"},
    {"plugin", KEEL_LOG_PLUGIN, "output from TCG plugins"},
    {"unimp", KEEL_LOG_UNIMP, "log unimplemented functionality"},
    {"guest_errors", KEEL_LOG_GUEST_ERROR, "log when the guest OS does something invalid"},
    {"cpu", KEEL_LOG_CPU, "show CPU registers before entering a TB"},
};

std::atomic<uint32_t> g_mask{0};
std::mutex g_file_lock;
FILE *g_file = nullptr; // nullptr = stderr

} // namespace

const LogCategory *log_categories(size_t *count)
{
    *count = KEEL_ARRAY_SIZE(kCategories);
    return kCategories;
}

uint32_t parse_log_mask(const std::string &spec)
{
    uint32_t mask = 0;
    std::vector<std::string> names;
    for (const auto &c : kCategories)
        names.emplace_back(c.name);
    for (const auto &item : split(spec, ',')) {
        if (item == "all") {
            for (const auto &c : kCategories)
                mask |= c.mask;
            continue;
        }
        bool found = false;
        for (const auto &c : kCategories)
            if (item == c.name) {
                mask |= c.mask;
                found = true;
            }
        if (!found)
            throw Error("-d " + spec + ": unknown log category '" + item + "'" + did_you_mean(item, names) +
                        "; use -d help for a list");
    }
    return mask;
}

std::string log_help()
{
    std::string out = "Log items (comma separated):\n";
    for (const auto &c : kCategories)
        out += strprintf("%-13s %s\n", c.name, c.help);
    out += strprintf("%-13s %s\n", "all", "all of the above");
    return out;
}

void log_set_mask(uint32_t mask)
{
    g_mask.store(mask, std::memory_order_relaxed);
}
uint32_t log_mask()
{
    return g_mask.load(std::memory_order_relaxed);
}

void log_set_file(const std::string &path)
{
    FILE *f = std::fopen(path.c_str(), "w");
    if (!f) throw Error("-D " + path + ": cannot open log file: " + std::strerror(errno));
    std::lock_guard<std::mutex> g(g_file_lock);
    if (g_file) std::fclose(g_file);
    g_file = f;
}

void log_write(const std::string &text)
{
    std::lock_guard<std::mutex> g(g_file_lock);
    FILE *f = g_file ? g_file : stderr;
    std::fwrite(text.data(), 1, text.size(), f);
    if (text.empty() || text.back() != '\n') std::fputc('\n', f);
    std::fflush(f);
}

} // namespace keel
