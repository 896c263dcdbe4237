// SPDX-License-Identifier: MIT
// RISC-V disassembler: prints a decoded Insn the way `objdump -d -M no-aliases` (binutils 2.40) does.
#pragma once

#include "decode.h"

#include <cstdint>
#include <string>

namespace keel::rv
{

// Mnemonic, a tab, then the operands (no tab when there are none); compressed
// instructions print in their c.* form; branch and jump targets are absolute
// hex addresses computed from pc; unknown encodings print as objdump's
// ".2byte 0x..."/".4byte 0x...". objdump's "<symbol>" and "# address"
// annotations are not produced.
std::string disasm(const Insn &insn, uint64_t pc);

// ABI names ("a0", "fs1"); n must be < 32.
const char *gpr_name(unsigned n);
const char *fpr_name(unsigned n);

// The CSR's name as objdump (privileged spec 1.12) prints it, or nullptr.
const char *csr_name(unsigned csr);

} // namespace keel::rv
