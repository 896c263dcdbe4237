// SPDX-License-Identifier: MIT
// Host code as text for -d out_asm: x86-64 disassembly through Capstone when the host has it, else hex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace keel::tcg
{

// One line per instruction, "0x<address>:  <mnemonic> <operands>", addresses from `address`. Without
// libcapstone.so.4 on the host: a hex dump, 16 bytes a line, and a note saying so.
std::string disassemble(const uint8_t *code, size_t size, uint64_t address);

} // namespace keel::tcg
