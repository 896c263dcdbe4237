// SPDX-License-Identifier: MIT
// RISC-V decoder: lookup structures built once from rv_insns.inc, operand extraction, RVC expansion.
#include "decode.h"

#include <array>
#include <vector>

namespace keel::rv
{

namespace
{

// Flags of the 32-bit rows, so a compressed row can report those of its expansion.
constexpr uint32_t kFlags32[] = {
#define RV_INSN(id, name, mask, match, fmt, ext, flags) flags,
#include "rv_insns.inc"
};

// Constraint spellings used by the RV_CINSN rows (see rv_insns.inc).
constexpr CConstraint nz(uint16_t m)
{
    return {m, 0};
}
constexpr CConstraint ne(uint16_t m, uint16_t v)
{
    return {m, v};
}
constexpr CConstraint any()
{
    return {0, 1};
}
#define NZ(m) nz(m)
#define NE(m, v) ne(m, v)
#define ANY any()
constexpr InsnInfo kInfo[kNumOps + 1] = {
#define RV_INSN(id, name, mask, match, fmt, ext, flags) \
    {name, mask, match, Fmt::fmt, Ext::ext, flags, Op::ILLEGAL, {any(), any()}},
#define RV_CINSN(id, name, mask, match, fmt, xop, c1, c2) \
    {name, mask, match, Fmt::fmt, Ext::C, kFlags32[static_cast<unsigned>(Op::xop)], Op::xop, {c1, c2}},
#include "rv_insns.inc"
    {"illegal", 0, 0, Fmt::NONE, Ext::I, 0, Op::ILLEGAL, {any(), any()}},
};
#undef NZ
#undef NE
#undef ANY

constexpr unsigned kFirstC = static_cast<unsigned>(Op::C_ADDI4SPN);
constexpr unsigned kNumC = kNumOps - kFirstC;
static_assert(kNumC < 255, "compressed op index must fit the uint8_t lookup table");

constexpr uint32_t bits(uint32_t w, unsigned hi, unsigned lo)
{
    return (w >> lo) & ((1u << (hi - lo + 1)) - 1);
}
constexpr int64_t sext(uint64_t v, unsigned width)
{
    const uint64_t m = 1ull << (width - 1);
    return static_cast<int64_t>((v ^ m) - m);
}

// The 32-bit lookup key: opcode[6:2], funct3 and bits 31:27. Together they
// leave at most a handful of rows per bucket (e.g. clz/ctz/cpop/sext.*), so a
// decode is one index plus a short scan instead of a pass over the table.
constexpr uint32_t kKeyMask = 0xf800707c;
constexpr unsigned key_of(uint32_t w)
{
    return bits(w, 6, 2) | bits(w, 14, 12) << 5 | bits(w, 31, 27) << 8;
}
constexpr uint32_t word_of_key(unsigned k)
{
    return (k & 31) << 2 | ((k >> 5) & 7) << 12 | ((k >> 8) & 31) << 27;
}

bool constraints_hold(const InsnInfo &r, uint32_t p)
{
    return (p & r.cons[0].mask) != r.cons[0].value && (p & r.cons[1].mask) != r.cons[1].value;
}

struct Tables {
    std::array<uint16_t, 8193> start{}; // bucket k holds rows[start[k] .. start[k+1])
    std::vector<uint16_t> rows;
    std::array<uint8_t, 65536> ctab{}; // parcel -> compressed row index (minus kFirstC), or 0xff

    Tables()
    {
        for (unsigned k = 0; k < 8192; k++) {
            start[k] = static_cast<uint16_t>(rows.size());
            const uint32_t kw = word_of_key(k);
            for (unsigned i = 0; i < kFirstC; i++) {
                const uint32_t fixed = kInfo[i].mask & kKeyMask;
                if ((kw & fixed) == (kInfo[i].match & fixed)) rows.push_back(static_cast<uint16_t>(i));
            }
        }
        start[8192] = static_cast<uint16_t>(rows.size());
        ctab.fill(0xff);
        for (uint32_t p = 0; p < 65536; p++) {
            if ((p & 3) == 3) continue;
            for (unsigned i = kFirstC; i < kNumOps; i++) {
                if ((p & kInfo[i].mask) == kInfo[i].match && constraints_hold(kInfo[i], p)) {
                    ctab[p] = static_cast<uint8_t>(i - kFirstC);
                    break;
                }
            }
        }
    }
};

const Tables &tables()
{
    static const Tables t;
    return t;
}

Insn illegal(uint32_t bits, unsigned len)
{
    Insn in;
    in.len = static_cast<uint8_t>(len);
    in.raw = bits;
    if (len == 2) in.craw = static_cast<uint16_t>(bits);
    return in;
}

int64_t imm_i(uint32_t w)
{
    return sext(w >> 20, 12);
}
int64_t imm_s(uint32_t w)
{
    return sext(bits(w, 31, 25) << 5 | bits(w, 11, 7), 12);
}
int64_t imm_b(uint32_t w)
{
    return sext(bits(w, 31, 31) << 12 | bits(w, 7, 7) << 11 | bits(w, 30, 25) << 5 | bits(w, 11, 8) << 1, 13);
}
int64_t imm_u(uint32_t w)
{
    return sext(w & 0xfffff000u, 32);
}
int64_t imm_j(uint32_t w)
{
    return sext(bits(w, 31, 31) << 20 | bits(w, 19, 12) << 12 | bits(w, 20, 20) << 11 | bits(w, 30, 21) << 1,
                21);
}

Insn decode32(uint32_t w)
{
    // Lengths of 48 bits and more (bits 4:2 all set) are not part of RV64GC.
    if ((w & 0x1c) == 0x1c) return illegal(w, 4);
    const Tables &t = tables();
    const unsigned k = key_of(w);
    unsigned idx = kNumOps;
    for (unsigned i = t.start[k]; i < t.start[k + 1]; i++) {
        const InsnInfo &r = kInfo[t.rows[i]];
        if ((w & r.mask) == r.match) {
            idx = t.rows[i];
            break;
        }
    }
    if (idx == kNumOps) return illegal(w, 4);
    const InsnInfo &r = kInfo[idx];

    Insn in;
    in.op = static_cast<Op>(idx);
    in.len = 4;
    in.raw = w;
    const uint8_t rd = static_cast<uint8_t>(bits(w, 11, 7));
    const uint8_t rs1 = static_cast<uint8_t>(bits(w, 19, 15));
    const uint8_t rs2 = static_cast<uint8_t>(bits(w, 24, 20));
    if (r.flags & kRoundingMode) {
        in.rm = static_cast<uint8_t>(bits(w, 14, 12));
        if (in.rm == 5 || in.rm == 6) return illegal(w, 4); // reserved rounding modes
    }
    switch (r.fmt) {
    case Fmt::NONE:
        break;
    case Fmt::R:
    case Fmt::F_RRR_RM:
    case Fmt::F_RRR:
    case Fmt::FCMP:
        in.rd = rd, in.rs1 = rs1, in.rs2 = rs2;
        break;
    case Fmt::R_SH:
        in.rd = rd, in.rs1 = rs1, in.imm = bits(w, 25, 20);
        break;
    case Fmt::R_SHW:
        in.rd = rd, in.rs1 = rs1, in.imm = bits(w, 24, 20);
        break;
    case Fmt::R_UN:
    case Fmt::F_RR_RM:
    case Fmt::F_RR:
    case Fmt::F_X_RM:
    case Fmt::F_X:
    case Fmt::X_F_RM:
    case Fmt::X_F:
        in.rd = rd, in.rs1 = rs1;
        break;
    case Fmt::I:
    case Fmt::LOAD:
    case Fmt::JALR:
    case Fmt::FLOAD:
        in.rd = rd, in.rs1 = rs1, in.imm = imm_i(w);
        break;
    case Fmt::STORE:
    case Fmt::FSTORE:
        in.rs1 = rs1, in.rs2 = rs2, in.imm = imm_s(w);
        break;
    case Fmt::B:
        in.rs1 = rs1, in.rs2 = rs2, in.imm = imm_b(w);
        break;
    case Fmt::U:
        in.rd = rd, in.imm = imm_u(w);
        break;
    case Fmt::J:
        in.rd = rd, in.imm = imm_j(w);
        break;
    case Fmt::FENCE:
        in.imm = w >> 20;
        break;
    case Fmt::SFENCE:
        in.rs1 = rs1, in.rs2 = rs2;
        break;
    case Fmt::CSR:
        in.rd = rd, in.rs1 = rs1, in.csr = static_cast<uint16_t>(w >> 20);
        break;
    case Fmt::CSRI:
        in.rd = rd, in.imm = rs1, in.csr = static_cast<uint16_t>(w >> 20);
        break;
    case Fmt::AMO:
        in.rd = rd, in.rs1 = rs1, in.rs2 = rs2, in.aq = bits(w, 26, 26), in.rl = bits(w, 25, 25);
        break;
    case Fmt::LR:
        in.rd = rd, in.rs1 = rs1, in.aq = bits(w, 26, 26), in.rl = bits(w, 25, 25);
        break;
    case Fmt::F_R4:
        in.rd = rd, in.rs1 = rs1, in.rs2 = rs2, in.rs3 = static_cast<uint8_t>(w >> 27);
        break;
    default: // compressed formats never reach here
        return illegal(w, 4);
    }
    return in;
}

// Operands of a compressed parcel in terms of its 32-bit expansion.
struct COperands {
    unsigned rd = 0, rs1 = 0, rs2 = 0;
    int64_t imm = 0;
};

COperands c_operands(Fmt fmt, uint32_t p)
{
    COperands o;
    const unsigned r_hi = bits(p, 11, 7);     // full register field at 11:7
    const unsigned r_lo = bits(p, 6, 2);      // full register field at 6:2
    const unsigned rp_hi = 8 + bits(p, 9, 7); // x8..x15 at 9:7
    const unsigned rp_lo = 8 + bits(p, 4, 2); // x8..x15 at 4:2
    const int64_t ci = sext(bits(p, 12, 12) << 5 | bits(p, 6, 2), 6);
    const unsigned shamt = bits(p, 12, 12) << 5 | bits(p, 6, 2);
    switch (fmt) {
    case Fmt::C_NONE:
        break;
    case Fmt::C_ADDI4SPN:
        o.rd = rp_lo, o.rs1 = 2;
        o.imm = bits(p, 12, 11) << 4 | bits(p, 10, 7) << 6 | bits(p, 6, 6) << 2 | bits(p, 5, 5) << 3;
        break;
    case Fmt::C_LW:
        o.rd = rp_lo, o.rs1 = rp_hi;
        o.imm = bits(p, 12, 10) << 3 | bits(p, 6, 6) << 2 | bits(p, 5, 5) << 6;
        break;
    case Fmt::C_LD:
        o.rd = rp_lo, o.rs1 = rp_hi;
        o.imm = bits(p, 12, 10) << 3 | bits(p, 6, 5) << 6;
        break;
    case Fmt::C_SW:
        o.rs2 = rp_lo, o.rs1 = rp_hi;
        o.imm = bits(p, 12, 10) << 3 | bits(p, 6, 6) << 2 | bits(p, 5, 5) << 6;
        break;
    case Fmt::C_SD:
        o.rs2 = rp_lo, o.rs1 = rp_hi;
        o.imm = bits(p, 12, 10) << 3 | bits(p, 6, 5) << 6;
        break;
    case Fmt::C_ADDI:
        o.rd = o.rs1 = r_hi, o.imm = ci;
        break;
    case Fmt::C_LI:
        o.rd = r_hi, o.imm = ci;
        break;
    case Fmt::C_ADDI16SP:
        o.rd = o.rs1 = 2;
        o.imm = sext(bits(p, 12, 12) << 9 | bits(p, 6, 6) << 4 | bits(p, 5, 5) << 6 | bits(p, 4, 3) << 7 |
                         bits(p, 2, 2) << 5,
                     10);
        break;
    case Fmt::C_LUI:
        o.rd = r_hi, o.imm = sext(bits(p, 12, 12) << 17 | bits(p, 6, 2) << 12, 18);
        break;
    case Fmt::C_SHIFT:
    case Fmt::C_SHIFT64:
        o.rd = o.rs1 = rp_hi, o.imm = shamt;
        break;
    case Fmt::C_ANDI:
        o.rd = o.rs1 = rp_hi, o.imm = ci;
        break;
    case Fmt::C_CA:
        o.rd = o.rs1 = rp_hi, o.rs2 = rp_lo;
        break;
    case Fmt::C_J:
        o.imm =
            sext(bits(p, 12, 12) << 11 | bits(p, 11, 11) << 4 | bits(p, 10, 9) << 8 | bits(p, 8, 8) << 10 |
                     bits(p, 7, 7) << 6 | bits(p, 6, 6) << 7 | bits(p, 5, 3) << 1 | bits(p, 2, 2) << 5,
                 12);
        break;
    case Fmt::C_B:
        o.rs1 = rp_hi;
        o.imm = sext(bits(p, 12, 12) << 8 | bits(p, 11, 10) << 3 | bits(p, 6, 5) << 6 | bits(p, 4, 3) << 1 |
                         bits(p, 2, 2) << 5,
                     9);
        break;
    case Fmt::C_SLLI:
    case Fmt::C_SLLI64:
        o.rd = o.rs1 = r_hi, o.imm = shamt;
        break;
    case Fmt::C_LWSP:
        o.rd = r_hi, o.rs1 = 2;
        o.imm = bits(p, 12, 12) << 5 | bits(p, 6, 4) << 2 | bits(p, 3, 2) << 6;
        break;
    case Fmt::C_LDSP:
        o.rd = r_hi, o.rs1 = 2;
        o.imm = bits(p, 12, 12) << 5 | bits(p, 6, 5) << 3 | bits(p, 4, 2) << 6;
        break;
    case Fmt::C_SWSP:
        o.rs2 = r_lo, o.rs1 = 2;
        o.imm = bits(p, 12, 9) << 2 | bits(p, 8, 7) << 6;
        break;
    case Fmt::C_SDSP:
        o.rs2 = r_lo, o.rs1 = 2;
        o.imm = bits(p, 12, 10) << 3 | bits(p, 9, 7) << 6;
        break;
    case Fmt::C_JR:
        o.rs1 = r_hi;
        break;
    case Fmt::C_JALR:
        o.rd = 1, o.rs1 = r_hi;
        break;
    case Fmt::C_MV:
        o.rd = r_hi, o.rs2 = r_lo;
        break;
    case Fmt::C_ADD:
        o.rd = o.rs1 = r_hi, o.rs2 = r_lo;
        break;
    default:
        break;
    }
    return o;
}

} // namespace

const InsnInfo &info(Op op)
{
    const unsigned i = static_cast<unsigned>(op);
    return kInfo[i <= kNumOps ? i : kNumOps];
}

uint32_t encode(Op op, unsigned rd, unsigned rs1, unsigned rs2, int64_t imm)
{
    const InsnInfo &r = info(op);
    const uint32_t u = static_cast<uint32_t>(imm);
    const uint32_t regs = (rd & 31) << 7 | (rs1 & 31) << 15 | (rs2 & 31) << 20;
    switch (r.fmt) {
    case Fmt::NONE:
        return r.match;
    case Fmt::I:
    case Fmt::LOAD:
    case Fmt::JALR:
    case Fmt::FLOAD:
        return r.match | (rd & 31) << 7 | (rs1 & 31) << 15 | (u & 0xfff) << 20;
    case Fmt::R_SH:
        return r.match | (rd & 31) << 7 | (rs1 & 31) << 15 | (u & 0x3f) << 20;
    case Fmt::R_SHW:
        return r.match | (rd & 31) << 7 | (rs1 & 31) << 15 | (u & 0x1f) << 20;
    case Fmt::STORE:
    case Fmt::FSTORE:
        return r.match | (rs1 & 31) << 15 | (rs2 & 31) << 20 | (u & 0x1f) << 7 | ((u >> 5) & 0x7f) << 25;
    case Fmt::B:
        return r.match | (rs1 & 31) << 15 | (rs2 & 31) << 20 | ((u >> 12) & 1) << 31 |
               ((u >> 5) & 0x3f) << 25 | ((u >> 1) & 0xf) << 8 | ((u >> 11) & 1) << 7;
    case Fmt::U:
        return r.match | (rd & 31) << 7 | (u & 0xfffff000u);
    case Fmt::J:
        return r.match | (rd & 31) << 7 | ((u >> 20) & 1) << 31 | ((u >> 1) & 0x3ff) << 21 |
               ((u >> 11) & 1) << 20 | ((u >> 12) & 0xff) << 12;
    default:
        return r.match | (regs & ~r.mask);
    }
}

Insn decode(uint32_t bits)
{
    if ((bits & 3) == 3) return decode32(bits);
    const uint16_t p = static_cast<uint16_t>(bits);
    const uint8_t ci = tables().ctab[p];
    if (ci == 0xff) return illegal(p, 2);
    const Op cop = static_cast<Op>(kFirstC + ci);
    const InsnInfo &r = kInfo[kFirstC + ci];
    const COperands o = c_operands(r.fmt, p);
    Insn in = decode32(encode(r.expands_to, o.rd, o.rs1, o.rs2, o.imm));
    in.len = 2;
    in.craw = p;
    in.cop = cop;
    return in;
}

} // namespace keel::rv
