// SPDX-License-Identifier: MIT
// -d out_asm text: Capstone 4 (Debian's libcapstone4) loaded at run time, so it is no build dependency.
#include "disas.h"

#include <cinttypes>
#include <cstdio>
#include <dlfcn.h>

namespace keel::tcg
{

namespace
{

// The parts of Capstone 4's C API used here (capstone.h, v4 layout: bytes[16]).
struct CsInsn {
    unsigned int id;
    uint64_t address;
    uint16_t size;
    uint8_t bytes[16];
    char mnemonic[32];
    char op_str[160];
    void *detail;
};
using Csh = size_t;
constexpr int kCsArchX86 = 3;
constexpr int kCsMode64 = 1 << 3;

struct Capstone {
    int (*open)(int arch, int mode, Csh *handle) = nullptr;
    size_t (*disasm)(Csh handle, const uint8_t *code, size_t size, uint64_t address, size_t count,
                     CsInsn **insn) = nullptr;
    void (*free)(CsInsn *insn, size_t count) = nullptr;
    int (*close)(Csh *handle) = nullptr;
    bool ok = false;

    Capstone()
    {
        void *h = dlopen("libcapstone.so.4", RTLD_NOW | RTLD_LOCAL);
        if (!h) return;
        open = reinterpret_cast<decltype(open)>(dlsym(h, "cs_open"));
        disasm = reinterpret_cast<decltype(disasm)>(dlsym(h, "cs_disasm"));
        free = reinterpret_cast<decltype(free)>(dlsym(h, "cs_free"));
        close = reinterpret_cast<decltype(close)>(dlsym(h, "cs_close"));
        ok = open && disasm && free && close;
    }
};

const Capstone &capstone()
{
    static const Capstone cs;
    return cs;
}

std::string hex_dump(const uint8_t *code, size_t size, uint64_t address, const char *note)
{
    std::string s = note;
    char line[128];
    for (size_t i = 0; i < size; i += 16) {
        int n = std::snprintf(line, sizeof line, "0x%016" PRIx64 ": ", address + i);
        for (size_t j = i; j < size && j < i + 16; ++j)
            n += std::snprintf(line + n, sizeof line - static_cast<size_t>(n), " %02x", code[j]);
        s += line;
        s += '\n';
    }
    return s;
}

} // namespace

std::string disassemble(const uint8_t *code, size_t size, uint64_t address)
{
    const Capstone &cs = capstone();
    Csh h = 0;
    if (!cs.ok || cs.open(kCsArchX86, kCsMode64, &h) != 0)
        return hex_dump(code, size, address,
                        "(no disassembler: install libcapstone4 for x86-64 disassembly; raw bytes follow)\n");
    CsInsn *insn = nullptr;
    size_t n = cs.disasm(h, code, size, address, 0, &insn);
    std::string s;
    char line[256];
    size_t done = 0;
    for (size_t i = 0; i < n; ++i) {
        std::snprintf(line, sizeof line, "0x%016" PRIx64 ":  %-8s %s\n", insn[i].address, insn[i].mnemonic,
                      insn[i].op_str);
        s += line;
        done += insn[i].size;
    }
    if (n) cs.free(insn, n);
    cs.close(&h);
    if (done < size) s += hex_dump(code + done, size - done, address + done, "(not decoded)\n");
    return s;
}

} // namespace keel::tcg
