// SPDX-License-Identifier: MIT
// Guest images: ELF64 (RISC-V) executables and raw binaries, read, checked and written into a machine.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "memory.h"

namespace keel
{

// A file to load into guest memory, read and checked completely before the
// machine is touched. Every error message starts with the file name.
struct GuestImage {
    struct Segment {
        uint64_t paddr = 0;
        uint64_t filesz = 0; // bytes from the file
        uint64_t memsz = 0;  // filesz, then zeroes up to memsz
        uint64_t offset = 0; // in the file
        unsigned index = 0;  // program header index, for messages
    };

    std::string file;
    bool elf = false;
    uint64_t entry = 0; // ELF: e_entry; raw: the load address
    std::vector<Segment> segments;
    std::map<std::string, uint64_t> symbols; // ELF symbol table: defined symbols only
    std::vector<uint8_t> bytes;              // the whole file
    // ELF: file bytes [0, header_end) are the ELF and program headers, which linkers often place in
    // the first segment below the code (e.g. -Ttext=RAM_BASE); like QEMU, those need no memory.
    uint64_t header_end = 0;

    // The lowest and one past the highest address the image occupies.
    uint64_t low() const;
    uint64_t high() const;
};

// The ELF machine keel runs (EM_RISCV) unless a test asks for another.
constexpr uint16_t kElfMachineRiscv = 243;

// Read `path`: an ELF file (little-endian ELF64 executable for `machine`) or,
// if it does not start with the ELF magic, a raw binary to be placed at
// `raw_base`. Throws keel::Error("FILE: what is wrong").
GuestImage read_guest_image(const std::string &path, uint64_t raw_base, uint16_t machine = kElfMachineRiscv);
// The same from bytes already in memory (`name` stands for the file in messages).
GuestImage parse_guest_image(const std::string &name, std::vector<uint8_t> bytes, uint64_t raw_base,
                             uint16_t machine = kElfMachineRiscv);

// Write every segment through `as` with write_rom (so ROM is loaded too),
// zeroing memsz beyond filesz. A segment must lie in RAM or ROM; parts of it
// covered by MMIO windows mapped with a priority of at least
// `overlay_priority` (device registers placed on a variable of the image, like
// htif's tohost) are skipped, as their device owns those bytes. Throws
// keel::Error("FILE: segment N (A..B) is not in RAM or ROM of machine 'M'").
void load_guest_image(const GuestImage &img, AddressSpace &as, const std::string &machine_name,
                      int overlay_priority);

} // namespace keel
