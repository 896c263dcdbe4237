// SPDX-License-Identifier: MIT
// RISC-V instruction decoder: turns a 16- or 32-bit instruction into an Insn using the table in rv_insns.inc.
#pragma once

#include <cstdint>

namespace keel::rv
{

// One enumerator per table row: the 32-bit rows first, then the compressed
// rows (C_*), then ILLEGAL.
enum class Op : uint16_t {
#define RV_INSN(id, name, mask, match, fmt, ext, flags) id,
#define RV_CINSN(id, name, mask, match, fmt, xop, c1, c2) id,
#include "rv_insns.inc"
    ILLEGAL
};

// Where the operands of an instruction sit and how objdump prints them.
// Register letters: x = integer register, f = FP register.
enum class Fmt : uint8_t {
    NONE,     // no operands (ecall, fence.i, ...)
    R,        // xd,xs1,xs2
    R_SH,     // xd,xs1,shamt (6 bits)
    R_SHW,    // xd,xs1,shamt (5 bits)
    R_UN,     // xd,xs1
    I,        // xd,xs1,imm12
    LOAD,     // xd,imm(xs1)
    JALR,     // xd,imm(xs1)
    STORE,    // xs2,imm(xs1)
    B,        // xs1,xs2,target
    U,        // xd,imm20 (imm holds the shifted, sign-extended value)
    J,        // xd,target
    FENCE,    // pred,succ (imm holds bits 31:20: fm, pred, succ)
    SFENCE,   // xs1,xs2
    CSR,      // xd,csr,xs1
    CSRI,     // xd,csr,uimm5 (imm holds the uimm; rs1 is 0)
    AMO,      // xd,xs2,(xs1) with .aq/.rl
    LR,       // xd,(xs1) with .aq/.rl
    FLOAD,    // fd,imm(xs1)
    FSTORE,   // fs2,imm(xs1)
    F_RRR_RM, // fd,fs1,fs2[,rm]
    F_RRR,    // fd,fs1,fs2
    F_R4,     // fd,fs1,fs2,fs3[,rm]
    F_RR_RM,  // fd,fs1[,rm]
    F_RR,     // fd,fs1
    F_X_RM,   // xd,fs1[,rm]
    F_X,      // xd,fs1
    X_F_RM,   // fd,xs1[,rm]
    X_F,      // fd,xs1
    FCMP,     // xd,fs1,fs2
    // Compressed forms: the immediate layout of the parcel and how the c.*
    // mnemonic prints. Operand fields of the Insn are those of the expansion.
    C_NONE,
    C_ADDI4SPN,
    C_LW,
    C_LD,
    C_SW,
    C_SD,
    C_ADDI,
    C_LI,
    C_ADDI16SP,
    C_LUI,
    C_SHIFT,
    C_SHIFT64,
    C_ANDI,
    C_CA,
    C_J,
    C_B,
    C_SLLI,
    C_SLLI64,
    C_LWSP,
    C_LDSP,
    C_SWSP,
    C_SDSP,
    C_JR,
    C_JALR,
    C_MV,
    C_ADD,
};

enum class Ext : uint8_t { I, M, A, F, D, C, Zicsr, Zifencei, Priv, Zba, Zbb, Zbs, Zicond };

// Facts about an instruction the translator wants without switching on Op.
enum InsnFlag : uint32_t {
    kBranch = 1u << 0,       // conditional branch
    kJump = 1u << 1,         // jal/jalr
    kLoad = 1u << 2,         // reads memory
    kStore = 1u << 3,        // writes memory
    kAtomic = 1u << 4,       // lr/sc/amo
    kFloat = 1u << 5,        // uses the FP unit (needs mstatus.FS != Off)
    kEndsBlock = 1u << 6,    // a translation block must end after it
    kPrivileged = 1u << 7,   // mret/sret/wfi/sfence.vma: mode and TVM/TW/TSR checks
    kRoundingMode = 1u << 8, // has a live rm field
    kCsr = 1u << 9,          // CSR access
    kFence = 1u << 10,       // memory or instruction-fetch ordering
};

// A table constraint on compressed parcels: holds iff (parcel & mask) != value.
struct CConstraint {
    uint16_t mask;
    uint16_t value;
};

// One row of the table.
struct InsnInfo {
    const char *name; // mnemonic as objdump spells it
    uint32_t mask;
    uint32_t match;
    Fmt fmt;
    Ext ext;
    uint32_t flags;      // InsnFlag bits; for C rows those of the expansion
    Op expands_to;       // C rows: the 32-bit op; ILLEGAL for 32-bit rows
    CConstraint cons[2]; // C rows only
};

struct Insn {
    Op op = Op::ILLEGAL; // 32-bit semantics (compressed forms already expanded)
    uint8_t len = 4;     // 2 or 4 bytes
    uint8_t rd = 0, rs1 = 0, rs2 = 0, rs3 = 0;
    uint8_t rm = 0; // rounding mode for kRoundingMode ops, else 0
    bool aq = false, rl = false;
    uint16_t csr = 0;
    int64_t imm = 0;      // sign-extended; shift amount; CSR uimm; fence bits 31:20
    uint32_t raw = 0;     // the 32-bit (expanded) word; the parcel for an illegal 16-bit one
    uint16_t craw = 0;    // original 16-bit parcel, or 0
    Op cop = Op::ILLEGAL; // the compressed form's op, for disassembly
};

inline constexpr unsigned kNumOps = static_cast<unsigned>(Op::ILLEGAL);

// Decodes the instruction whose first parcel is the low 16 bits of `bits`: if
// those end in 0b11 it is a 32-bit instruction, otherwise a 16-bit one which is
// expanded to its 32-bit equivalent. Reserved and unknown encodings (including
// 48-bit and longer ones) give Op::ILLEGAL.
Insn decode(uint32_t bits);

// The table row of op (ILLEGAL has a row too, named "illegal").
const InsnInfo &info(Op op);

inline bool is_compressed_op(Op op)
{
    return op >= Op::C_ADDI4SPN && op < Op::ILLEGAL;
}

// Builds the 32-bit word of a 32-bit op from operand fields (what the table
// says is fixed comes from match). Used to expand compressed forms; tests use
// it to build words.
uint32_t encode(Op op, unsigned rd, unsigned rs1, unsigned rs2, int64_t imm);

} // namespace keel::rv
