// SPDX-License-Identifier: MIT
// Reference semantics of the IR's ALU operations and conditions, written from ir.h's definitions and
// independent of any engine: what tests check engines (tests/ir) and run translated IR (tests/translate)
// against.
#pragma once

#include <bit>
#include <cstdint>

#include <keel/ir.h>

namespace keel::irref
{

inline uint64_t mask_of(KeelIrType t)
{
    return t == KEEL_IR_I32 || t == KEEL_IR_F32 ? 0xffffffffull : ~0ull;
}

inline int64_t sx(uint64_t v, unsigned bits)
{
    return bits >= 64 ? static_cast<int64_t>(v) : static_cast<int64_t>(v << (64 - bits)) >> (64 - bits);
}

inline uint64_t alu_eval(KeelIrAluOp op, KeelIrType t, uint64_t a, uint64_t c)
{
    const unsigned w = t == KEEL_IR_I32 ? 32 : 64;
    const uint64_t m = mask_of(t);
    a &= m;
    c &= m;
    const int64_t sa = sx(a, w), sc = sx(c, w);
    const int64_t smin = w == 32 ? INT32_MIN : INT64_MIN;
    const unsigned sh = static_cast<unsigned>(c & (w - 1));
    auto rotl = [&](uint64_t x, unsigned s) { return s ? ((x << s) | (x >> (w - s))) & m : x; };
    switch (op) {
    case KEEL_IR_MOV:
        return a;
    case KEEL_IR_ADD:
        return (a + c) & m;
    case KEEL_IR_SUB:
        return (a - c) & m;
    case KEEL_IR_MUL:
        return (a * c) & m;
    case KEEL_IR_MULHS:
        return static_cast<uint64_t>((static_cast<__int128>(sa) * sc) >> w) & m;
    case KEEL_IR_MULHU:
        return static_cast<uint64_t>((static_cast<unsigned __int128>(a) * c) >> w) & m;
    case KEEL_IR_MULHSU:
        return static_cast<uint64_t>((static_cast<__int128>(sa) * static_cast<__int128>(c)) >> w) & m;
    case KEEL_IR_DIVS:
        if (c == 0) return m;
        if (sa == smin && sc == -1) return a;
        return static_cast<uint64_t>(sa / sc) & m;
    case KEEL_IR_DIVU:
        return c == 0 ? m : a / c;
    case KEEL_IR_REMS:
        if (c == 0) return a;
        if (sa == smin && sc == -1) return 0;
        return static_cast<uint64_t>(sa % sc) & m;
    case KEEL_IR_REMU:
        return c == 0 ? a : a % c;
    case KEEL_IR_AND:
        return a & c;
    case KEEL_IR_OR:
        return a | c;
    case KEEL_IR_XOR:
        return a ^ c;
    case KEEL_IR_ANDC:
        return a & ~c & m;
    case KEEL_IR_ORC:
        return (a | ~c) & m;
    case KEEL_IR_XNOR:
        return ~(a ^ c) & m;
    case KEEL_IR_NOT:
        return ~a & m;
    case KEEL_IR_NEG:
        return (0 - a) & m;
    case KEEL_IR_SHL:
        return (a << sh) & m;
    case KEEL_IR_SHR:
        return a >> sh;
    case KEEL_IR_SAR:
        return static_cast<uint64_t>(sa >> sh) & m;
    case KEEL_IR_ROTL:
        return rotl(a, sh);
    case KEEL_IR_ROTR:
        return rotl(a, (w - sh) & (w - 1));
    case KEEL_IR_CLZ:
        return a == 0 ? w : static_cast<uint64_t>(std::countl_zero(a) - (64 - w));
    case KEEL_IR_CTZ:
        return a == 0 ? w : static_cast<uint64_t>(std::countr_zero(a));
    case KEEL_IR_CTPOP:
        return static_cast<uint64_t>(std::popcount(a));
    case KEEL_IR_BSWAP:
        return w == 32 ? __builtin_bswap32(static_cast<uint32_t>(a)) : __builtin_bswap64(a);
    case KEEL_IR_EXT8S:
        return static_cast<uint64_t>(sx(a, 8)) & m;
    case KEEL_IR_EXT8U:
        return a & 0xff;
    case KEEL_IR_EXT16S:
        return static_cast<uint64_t>(sx(a, 16)) & m;
    case KEEL_IR_EXT16U:
        return a & 0xffff;
    case KEEL_IR_EXT32S:
    case KEEL_IR_EXTS_I32_I64:
        return static_cast<uint64_t>(sx(a, 32));
    case KEEL_IR_EXT32U:
    case KEEL_IR_EXTU_I32_I64:
    case KEEL_IR_TRUNC_I64_I32:
        return a & 0xffffffffu;
    case KEEL_IR_BITCAST:
        return a;
    case KEEL_IR_MINS:
        return sa < sc ? a : c;
    case KEEL_IR_MINU:
        return a < c ? a : c;
    case KEEL_IR_MAXS:
        return sa > sc ? a : c;
    case KEEL_IR_MAXU:
        return a > c ? a : c;
    default:
        return 0;
    }
}

inline bool cond_eval(KeelIrCond cond, KeelIrType t, uint64_t a, uint64_t c)
{
    const unsigned w = t == KEEL_IR_I32 ? 32 : 64;
    a &= mask_of(t);
    c &= mask_of(t);
    const int64_t sa = sx(a, w), sc = sx(c, w);
    switch (cond) {
    case KEEL_IR_EQ:
        return a == c;
    case KEEL_IR_NE:
        return a != c;
    case KEEL_IR_LT:
        return sa < sc;
    case KEEL_IR_GE:
        return sa >= sc;
    case KEEL_IR_LE:
        return sa <= sc;
    case KEEL_IR_GT:
        return sa > sc;
    case KEEL_IR_LTU:
        return a < c;
    case KEEL_IR_GEU:
        return a >= c;
    case KEEL_IR_LEU:
        return a <= c;
    default:
        return a > c;
    }
}

} // namespace keel::irref
