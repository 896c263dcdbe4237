// SPDX-License-Identifier: MIT
// The tci engine: each block becomes an array of words (handler address, then pre-resolved operands) run by
// a direct-threaded interpreter; guest loads and stores inline the soft-TLB hit; helpers go through libffi.
#include "tci.h"

#include <cstring>
#include <ffi.h>
#include <map>

#include "tci_alu.h"

namespace keel::tci
{

using namespace keel::exec;

namespace
{

// A TLB where nothing ever hits (every tag is the invalid pattern).
TlbEntry *never_hit_tlb()
{
    static TlbEntry *table = [] {
        static TlbEntry t[kTlbSize];
        std::memset(static_cast<void *>(t), 0xff, sizeof t);
        return t;
    }();
    return table;
}

/*
 * The compiled form
 * -----------------
 * A block is a vector of Words. Each operation is one handler address (a
 * label of run(), for computed goto) followed by its operands, already
 * resolved: a pointer to where the value lives (a temporary in the block's
 * slot array, a constant in the same array, a global inside the CPU's env),
 * an immediate, a branch target (a Word pointer), the CPU's TLB array for
 * the operation's MMU index, or a CallInfo. No handler looks at operand
 * kinds at run time. Values are read and written at their type's width
 * (4 bytes for I32/F32, 8 otherwise), so I32 globals are never overrun.
 * Blocks belong to one CPU, so env and TLB addresses are baked in.
 */

union Word {
    const void *h;
    uint64_t *p;
    uint64_t u;
    Word *w;
    TlbEntry *tlb;
    struct CallInfo *ci;
    Tb *tb;
};

struct CallInfo {
    ffi_cif *cif;
    void (*fn)(void);
    void *argv[KEEL_IR_MAX_HELPER_ARGS];
    uint64_t *dst;
    bool raise;
    uint64_t pc; // of the calling instruction, for a raised exception
    // Integer arguments only (I32/I64/PTR, at most 6) on a host whose C calling convention passes them all
    // in registers (x86-64 SysV, AArch64): called directly, not through libffi. Bit k: argument k is I32.
    bool direct;
    uint8_t narrow;
    uint8_t nargs;
};

#if (defined(__x86_64__) || defined(__aarch64__)) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr bool kDirectCalls = true;
#else
constexpr bool kDirectCalls = false;
#endif

// A direct call: every integer argument as a 64-bit register value (I32 ones zero-extended), so one
// function type serves every integer signature; a callee ignores the registers it does not take.
inline uint64_t call_direct(const CallInfo *ci)
{
    uint64_t a[6] = {0, 0, 0, 0, 0, 0};
    for (unsigned i = 0; i < ci->nargs; ++i) {
        if (ci->narrow & (1u << i)) {
            uint32_t v;
            std::memcpy(&v, ci->argv[i], 4);
            a[i] = v;
        } else {
            std::memcpy(&a[i], ci->argv[i], 8);
        }
    }
    using Fn = uint64_t (*)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
    return reinterpret_cast<Fn>(ci->fn)(a[0], a[1], a[2], a[3], a[4], a[5]);
}

struct Code {
    Word *entry;
    std::vector<Word> words;
    std::vector<size_t> goto_sites[2]; // word index of each goto_tb of slot 0 and 1, patched when chained
    std::unique_ptr<uint64_t[]> slots; // temporaries, constants, the env pointer
    std::vector<CallInfo> calls;
};

// Handlers, in one list: the enum of handler numbers and run()'s label table come from it.
// clang-format off
#define TCI_BIN_OPS(F, X)                                                                                \
    F(X, add)                                                                                            \
    F(X, sub) F(X, mul) F(X, mulhs) F(X, mulhu) F(X, mulhsu) F(X, divs) F(X, divu) F(X, rems) F(X, remu) \
        F(X, band) F(X, bor) F(X, bxor) F(X, andc) F(X, orc) F(X, xnor) F(X, shl) F(X, shr) F(X, sar)    \
            F(X, rotl) F(X, rotr) F(X, mins) F(X, minu) F(X, maxs) F(X, maxu)
#define TCI_UN_OPS(F, X)                                                                                  \
    F(X, mov)                                                                                             \
    F(X, bnot) F(X, neg) F(X, clz) F(X, ctz) F(X, ctpop) F(X, bswap) F(X, ext8s) F(X, ext8u) F(X, ext16s) \
        F(X, ext16u)
#define TCI_IMM_OPS(F, X) F(X, add) F(X, band) F(X, bor) F(X, bxor) F(X, shl) F(X, shr) F(X, sar)
#define TCI_CONDS(F, X)                                                                            \
    F(X, eq, EQ)                                                                                   \
    F(X, ne, NE) F(X, lt, LT) F(X, ge, GE) F(X, le, LE) F(X, gt, GT) F(X, ltu, LTU) F(X, geu, GEU) \
        F(X, leu, LEU) F(X, gtu, GTU)
#define TCI_LOADS(F, X)                                                                             \
    F(X, 8u, 1, false)                                                                              \
    F(X, 8s, 1, true) F(X, 16u, 2, false) F(X, 16s, 2, true) F(X, 32u, 4, false) F(X, 32s, 4, true) \
        F(X, 64, 8, false)

#define TCI_BIN_NAMES(X, n) X(bin_##n##_32) X(bin_##n##_64)
#define TCI_UN_NAMES(X, n) X(un_##n##_32) X(un_##n##_64)
#define TCI_IMM_NAMES(X, n) X(imm_##n##_32) X(imm_##n##_64)
#define TCI_BR_NAMES(X, c, C) X(br_##c##_32) X(br_##c##_64) X(bri_##c##_32) X(bri_##c##_64)
#define TCI_LD_NAMES(X, k, size, sign) X(ld_##k##_32) X(ld_##k##_64)

#define TCI_HANDLERS(X)                                                                                     \
    TCI_BIN_OPS(TCI_BIN_NAMES, X)                                                                           \
    TCI_UN_OPS(TCI_UN_NAMES, X)                                                                             \
    TCI_IMM_OPS(TCI_IMM_NAMES, X)                                                                           \
    TCI_CONDS(TCI_BR_NAMES, X)                                                                              \
    TCI_LOADS(TCI_LD_NAMES, X)                                                                              \
    X(un_ext32s_64)                                                                                         \
    X(un_ext32u_64) X(exts_i32_i64) X(extu_i32_i64) X(trunc_i64_i32) X(movi_32) X(movi_64) X(setcond_32_32) \
        X(setcond_32_64) X(setcond_64_32) X(setcond_64_64) X(movcond_32_32) X(movcond_32_64)                \
            X(movcond_64_32) X(movcond_64_64) X(br) X(st_1) X(st_2) X(st_4) X(st_8) X(ldh) X(sth)           \
                X(call_void) X(call_r32) X(call_r64) X(goto_tb) X(lookup) X(exit_tb)
// clang-format on

enum Handler : unsigned {
#define TCI_ENUM(n) H_##n,
    TCI_HANDLERS(TCI_ENUM)
#undef TCI_ENUM
        H_COUNT
};

// ALU semantics by handler name.
template <typename U> inline U op_add(U a, U b)
{
    return a + b;
}
template <typename U> inline U op_sub(U a, U b)
{
    return a - b;
}
template <typename U> inline U op_mul(U a, U b)
{
    return a * b;
}
template <typename U> inline U op_mulhs(U a, U b)
{
    return alu::mulhs(a, b);
}
template <typename U> inline U op_mulhu(U a, U b)
{
    return alu::mulhu(a, b);
}
template <typename U> inline U op_mulhsu(U a, U b)
{
    return alu::mulhsu(a, b);
}
template <typename U> inline U op_divs(U a, U b)
{
    return alu::divs(a, b);
}
template <typename U> inline U op_divu(U a, U b)
{
    return alu::divu(a, b);
}
template <typename U> inline U op_rems(U a, U b)
{
    return alu::rems(a, b);
}
template <typename U> inline U op_remu(U a, U b)
{
    return alu::remu(a, b);
}
template <typename U> inline U op_band(U a, U b)
{
    return a & b;
}
template <typename U> inline U op_bor(U a, U b)
{
    return a | b;
}
template <typename U> inline U op_bxor(U a, U b)
{
    return a ^ b;
}
template <typename U> inline U op_andc(U a, U b)
{
    return a & ~b;
}
template <typename U> inline U op_orc(U a, U b)
{
    return a | ~b;
}
template <typename U> inline U op_xnor(U a, U b)
{
    return ~(a ^ b);
}
template <typename U> inline U op_shl(U a, U b)
{
    return alu::shl(a, b);
}
template <typename U> inline U op_shr(U a, U b)
{
    return alu::shr(a, b);
}
template <typename U> inline U op_sar(U a, U b)
{
    return alu::sar(a, b);
}
template <typename U> inline U op_rotl(U a, U b)
{
    return alu::rotl(a, b);
}
template <typename U> inline U op_rotr(U a, U b)
{
    return alu::rotr(a, b);
}
template <typename U> inline U op_mins(U a, U b)
{
    return alu::mins(a, b);
}
template <typename U> inline U op_minu(U a, U b)
{
    return alu::minu(a, b);
}
template <typename U> inline U op_maxs(U a, U b)
{
    return alu::maxs(a, b);
}
template <typename U> inline U op_maxu(U a, U b)
{
    return alu::maxu(a, b);
}
template <typename U> inline U op_mov(U a)
{
    return a;
}
template <typename U> inline U op_bnot(U a)
{
    return ~a;
}
template <typename U> inline U op_neg(U a)
{
    return U(0) - a;
}
template <typename U> inline U op_clz(U a)
{
    return static_cast<U>(std::countl_zero(a));
}
template <typename U> inline U op_ctz(U a)
{
    return static_cast<U>(std::countr_zero(a));
}
template <typename U> inline U op_ctpop(U a)
{
    return static_cast<U>(std::popcount(a));
}
template <typename U> inline U op_bswap(U a)
{
    return alu::bswap(a);
}
template <typename U> inline U op_ext8s(U a)
{
    return alu::exts<U, uint8_t>(a);
}
template <typename U> inline U op_ext8u(U a)
{
    return alu::extu<U, uint8_t>(a);
}
template <typename U> inline U op_ext16s(U a)
{
    return alu::exts<U, uint16_t>(a);
}
template <typename U> inline U op_ext16u(U a)
{
    return alu::extu<U, uint16_t>(a);
}

// Host loads for the TLB fast path: guest memory is little-endian, like the host.
template <unsigned Size, bool Sign> inline uint64_t host_load(uintptr_t p)
{
    if constexpr (Size == 1) {
        uint8_t v;
        std::memcpy(&v, reinterpret_cast<void *>(p), 1);
        return Sign ? static_cast<uint64_t>(static_cast<int8_t>(v)) : v;
    } else if constexpr (Size == 2) {
        uint16_t v;
        std::memcpy(&v, reinterpret_cast<void *>(p), 2);
        return Sign ? static_cast<uint64_t>(static_cast<int16_t>(v)) : v;
    } else if constexpr (Size == 4) {
        uint32_t v;
        std::memcpy(&v, reinterpret_cast<void *>(p), 4);
        return Sign ? static_cast<uint64_t>(static_cast<int32_t>(v)) : v;
    } else {
        uint64_t v;
        std::memcpy(&v, reinterpret_cast<void *>(p), 8);
        return v;
    }
}

inline uint32_t rd32(const uint64_t *p)
{
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}
inline void wr32(uint64_t *p, uint32_t v)
{
    std::memcpy(p, &v, 4);
}

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

// Runs `tb` and what it chains to; with tb == nullptr, hands out the label table instead.
ExecResult run(CpuState *cpu, Tb *tb, const void *const **table_out)
{
#define TCI_ADDR(n) &&L_##n,
    static const void *const table[] = {TCI_HANDLERS(TCI_ADDR)};
#undef TCI_ADDR
    if (!tb) {
        *table_out = table;
        return {nullptr, ExitKind::ExitTb, 0};
    }
    CpuState &c = *cpu;
    KeelCpuCommon *const cc = c.common;
    Word *ip = static_cast<Code *>(tb->code)->entry;
    // The time slice (instructions) lives in a register while blocks chain; written back on every exit.
    int64_t budget = c.budget;
#define NEXT goto * ip->h
#define RET(...)                        \
    do {                                \
        c.budget = budget;              \
        return ExecResult{__VA_ARGS__}; \
    } while (0)
#define R32(i) rd32(ip[i].p)
#define R64(i) (*ip[i].p)
#define EXC() RET(tb, ExitKind::Exception, 0)
    NEXT;

#define TCI_BIN_BODY(X, n)                                            \
    L_bin_##n##_32 : wr32(ip[1].p, op_##n<uint32_t>(R32(2), R32(3))); \
    ip += 4;                                                          \
    NEXT;                                                             \
    L_bin_##n##_64 : *ip[1].p = op_##n<uint64_t>(R64(2), R64(3));     \
    ip += 4;                                                          \
    NEXT;
    TCI_BIN_OPS(TCI_BIN_BODY, _)

#define TCI_UN_BODY(X, n)                                    \
    L_un_##n##_32 : wr32(ip[1].p, op_##n<uint32_t>(R32(2))); \
    ip += 3;                                                 \
    NEXT;                                                    \
    L_un_##n##_64 : *ip[1].p = op_##n<uint64_t>(R64(2));     \
    ip += 3;                                                 \
    NEXT;
    TCI_UN_OPS(TCI_UN_BODY, _)

#define TCI_IMM_BODY(X, n)                                                                    \
    L_imm_##n##_32 : wr32(ip[1].p, op_##n<uint32_t>(R32(2), static_cast<uint32_t>(ip[3].u))); \
    ip += 4;                                                                                  \
    NEXT;                                                                                     \
    L_imm_##n##_64 : *ip[1].p = op_##n<uint64_t>(R64(2), ip[3].u);                            \
    ip += 4;                                                                                  \
    NEXT;
    TCI_IMM_OPS(TCI_IMM_BODY, _)

#define TCI_BR_BODY(X, c_, C)                                                                               \
    L_br_##c_##_32 : ip = alu::cond<uint32_t>(KEEL_IR_##C, R32(1), R32(2)) ? ip[3].w : ip + 4;              \
    NEXT;                                                                                                   \
    L_br_##c_##_64 : ip = alu::cond<uint64_t>(KEEL_IR_##C, R64(1), R64(2)) ? ip[3].w : ip + 4;              \
    NEXT;                                                                                                   \
    L_bri_##c_##_32                                                                                         \
        : ip = alu::cond<uint32_t>(KEEL_IR_##C, R32(1), static_cast<uint32_t>(ip[2].u)) ? ip[3].w : ip + 4; \
    NEXT;                                                                                                   \
    L_bri_##c_##_64 : ip = alu::cond<uint64_t>(KEEL_IR_##C, R64(1), ip[2].u) ? ip[3].w : ip + 4;            \
    NEXT;
    TCI_CONDS(TCI_BR_BODY, _)

    // A load: words are dst, addr, tlb, memop | mmu << 8, insn pc. The tag
    // compare includes the low address bits, so misaligned accesses (which
    // may cross a page, or fault under KEEL_MO_ALIGN) take the slow path.
#define TCI_LD_ONE(k, dw, size, sign)                                                     \
    L_ld_##k##_##dw:                                                                      \
    {                                                                                     \
        uint64_t a = R64(2);                                                              \
        const TlbEntry *e = &ip[3].tlb[tlb_index(a)];                                     \
        uint64_t v;                                                                       \
        if (LIKELY(e->tag[KEEL_ACCESS_READ] == (a & (kPageMask | (size - 1))))) {         \
            v = host_load<size, sign>(a + e->addend);                                     \
        } else if (!c.core->load_slow(c, a, static_cast<uint32_t>(ip[4].u & 0xff),        \
                                      static_cast<unsigned>(ip[4].u >> 8), ip[5].u, v)) { \
            EXC();                                                                        \
        }                                                                                 \
        if (dw == 32) {                                                                   \
            wr32(ip[1].p, static_cast<uint32_t>(v));                                      \
        } else {                                                                          \
            *ip[1].p = v;                                                                 \
        }                                                                                 \
        ip += 6;                                                                          \
        NEXT;                                                                             \
    }
#define TCI_LD_BODY(X, k, size, sign) TCI_LD_ONE(k, 32, size, sign) TCI_LD_ONE(k, 64, size, sign)
    TCI_LOADS(TCI_LD_BODY, _)

    // A store: words are value, addr, tlb, memop | mmu << 8, insn pc.
#define TCI_ST_ONE(size)                                                                   \
    L_st_##size:                                                                           \
    {                                                                                      \
        uint64_t a = R64(2);                                                               \
        uint64_t v = size == 8 ? R64(1) : R32(1);                                          \
        const TlbEntry *e = &ip[3].tlb[tlb_index(a)];                                      \
        if (LIKELY(e->tag[KEEL_ACCESS_WRITE] == (a & (kPageMask | (size - 1))))) {         \
            std::memcpy(reinterpret_cast<void *>(a + e->addend), &v, size);                \
        } else if (!c.core->store_slow(c, a, static_cast<uint32_t>(ip[4].u & 0xff),        \
                                       static_cast<unsigned>(ip[4].u >> 8), ip[5].u, v)) { \
            EXC();                                                                         \
        }                                                                                  \
        ip += 6;                                                                           \
        NEXT;                                                                              \
    }
    TCI_ST_ONE(1)
    TCI_ST_ONE(2)
    TCI_ST_ONE(4)
    TCI_ST_ONE(8)

L_un_ext32s_64:
    *ip[1].p = static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(R64(2))));
    ip += 3;
    NEXT;
L_un_ext32u_64:
    *ip[1].p = static_cast<uint32_t>(R64(2));
    ip += 3;
    NEXT;
L_exts_i32_i64:
    *ip[1].p = static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(R32(2))));
    ip += 3;
    NEXT;
L_extu_i32_i64:
    *ip[1].p = R32(2);
    ip += 3;
    NEXT;
L_trunc_i64_i32:
    wr32(ip[1].p, static_cast<uint32_t>(R64(2)));
    ip += 3;
    NEXT;
L_movi_32:
    wr32(ip[1].p, static_cast<uint32_t>(ip[2].u));
    ip += 3;
    NEXT;
L_movi_64:
    *ip[1].p = ip[2].u;
    ip += 3;
    NEXT;

    // setcond: dst, a, b, cond; movcond: dst, a, b, vt, vf, cond.
#define TCI_SETCOND(cw, dw)                                                                      \
    L_setcond_##cw##_##dw:                                                                       \
    {                                                                                            \
        bool r = cw == 32 ? alu::cond<uint32_t>(static_cast<unsigned>(ip[4].u), R32(2), R32(3))  \
                          : alu::cond<uint64_t>(static_cast<unsigned>(ip[4].u), R64(2), R64(3)); \
        if (dw == 32) {                                                                          \
            wr32(ip[1].p, r);                                                                    \
        } else {                                                                                 \
            *ip[1].p = r;                                                                        \
        }                                                                                        \
        ip += 5;                                                                                 \
        NEXT;                                                                                    \
    }
    TCI_SETCOND(32, 32)
    TCI_SETCOND(32, 64)
    TCI_SETCOND(64, 32)
    TCI_SETCOND(64, 64)
#define TCI_MOVCOND(cw, vw)                                                                      \
    L_movcond_##cw##_##vw:                                                                       \
    {                                                                                            \
        bool r = cw == 32 ? alu::cond<uint32_t>(static_cast<unsigned>(ip[6].u), R32(2), R32(3))  \
                          : alu::cond<uint64_t>(static_cast<unsigned>(ip[6].u), R64(2), R64(3)); \
        if (vw == 32) {                                                                          \
            wr32(ip[1].p, r ? R32(4) : R32(5));                                                  \
        } else {                                                                                 \
            *ip[1].p = r ? R64(4) : R64(5);                                                      \
        }                                                                                        \
        ip += 7;                                                                                 \
        NEXT;                                                                                    \
    }
    TCI_MOVCOND(32, 32)
    TCI_MOVCOND(32, 64)
    TCI_MOVCOND(64, 32)
    TCI_MOVCOND(64, 64)

L_br:
    ip = ip[1].w;
    NEXT;

    // Host memory: dst/value, base (a PTR value), offset, memop | dst width << 8.
L_ldh : {
    const char *p = reinterpret_cast<const char *>(*ip[2].p) + ip[3].u;
    uint64_t v = 0;
    uint32_t mop = static_cast<uint32_t>(ip[4].u & 0xff);
    switch (mop & (KEEL_MO_SIZE_MASK | KEEL_MO_SIGN)) {
    case KEEL_MO_8:
        v = host_load<1, false>(reinterpret_cast<uintptr_t>(p));
        break;
    case KEEL_MO_8 | KEEL_MO_SIGN:
        v = host_load<1, true>(reinterpret_cast<uintptr_t>(p));
        break;
    case KEEL_MO_16:
        v = host_load<2, false>(reinterpret_cast<uintptr_t>(p));
        break;
    case KEEL_MO_16 | KEEL_MO_SIGN:
        v = host_load<2, true>(reinterpret_cast<uintptr_t>(p));
        break;
    case KEEL_MO_32:
        v = host_load<4, false>(reinterpret_cast<uintptr_t>(p));
        break;
    case KEEL_MO_32 | KEEL_MO_SIGN:
        v = host_load<4, true>(reinterpret_cast<uintptr_t>(p));
        break;
    default:
        v = host_load<8, false>(reinterpret_cast<uintptr_t>(p));
        break;
    }
    if ((ip[4].u >> 8) == 32) {
        wr32(ip[1].p, static_cast<uint32_t>(v));
    } else {
        *ip[1].p = v;
    }
    ip += 5;
    NEXT;
}
L_sth : {
    char *p = reinterpret_cast<char *>(*ip[2].p) + ip[3].u;
    unsigned size = 1u << (ip[4].u & KEEL_MO_SIZE_MASK);
    uint64_t v = size == 8 ? R64(1) : R32(1);
    std::memcpy(p, &v, size);
    ip += 5;
    NEXT;
}

    // Helper calls: one word, the CallInfo with the cif and the argument pointers prepared at compile time.
L_call_void : {
    CallInfo *ci = ip[1].ci;
    if (ci->direct) {
        call_direct(ci);
    } else {
        ffi_call(ci->cif, ci->fn, nullptr, ci->argv);
    }
    if (ci->raise && cc->exception) {
        *c.pc = ci->pc;
        EXC();
    }
    ip += 2;
    NEXT;
}
L_call_r32 : {
    CallInfo *ci = ip[1].ci;
    ffi_arg r = 0;
    if (ci->direct) {
        r = static_cast<ffi_arg>(call_direct(ci));
    } else {
        ffi_call(ci->cif, ci->fn, &r, ci->argv);
    }
    if (ci->raise && cc->exception) {
        *c.pc = ci->pc;
        EXC();
    }
    uint32_t v;
    std::memcpy(&v, &r, 4);
    if (ci->dst) wr32(ci->dst, v);
    ip += 2;
    NEXT;
}
L_call_r64 : {
    CallInfo *ci = ip[1].ci;
    uint64_t r = 0;
    if (ci->direct) {
        r = call_direct(ci);
    } else {
        ffi_call(ci->cif, ci->fn, &r, ci->argv);
    }
    if (ci->raise && cc->exception) {
        *c.pc = ci->pc;
        EXC();
    }
    if (ci->dst) *ci->dst = r;
    ip += 2;
    NEXT;
}

    // Block exits. A chained entry is a block entry: exit_request and the time slice are checked; a block
    // is entered only if all its instructions fit in the slice (-icount: before the next deadline).
    // Words: slot, the chained block's entry (patched by link(), null when unlinked), that block.
L_goto_tb : {
    Word *to = ip[2].w;
    if (LIKELY(to != nullptr) && LIKELY(!cc->exit_request)) {
        Tb *n = ip[3].tb;
        if (LIKELY(budget >= static_cast<int64_t>(n->n_insns))) {
            c.icount_pub = budget; // for the clock (-icount): what was left when this block began
            budget -= n->n_insns;
            tb = n;
            ip = to;
            NEXT;
        }
    }
    RET(tb, cc->exit_request ? ExitKind::Request : ExitKind::GotoTb, static_cast<unsigned>(ip[1].u));
}
L_lookup : {
    if (LIKELY(c.chain) && LIKELY(!cc->exit_request) && LIKELY(budget > 0)) {
        Tb *n = jc_lookup(c, *c.pc, c.ops->tb_flags(c.env));
        if (n && LIKELY(budget >= static_cast<int64_t>(n->n_insns))) {
            c.icount_pub = budget;
            budget -= n->n_insns;
            tb = n;
            ip = static_cast<Code *>(n->code)->entry;
            NEXT;
        }
    }
    RET(tb, ExitKind::Lookup, 0);
}
L_exit_tb:
    RET(tb, ExitKind::ExitTb, 0);

#undef NEXT
#undef R32
#undef R64
#undef EXC
#undef RET
}

ffi_type *ffi_of(unsigned t)
{
    switch (t) {
    case KEEL_IR_I32:
        return &ffi_type_uint32;
    case KEEL_IR_I64:
        return &ffi_type_uint64;
    case KEEL_IR_F32:
        return &ffi_type_float;
    case KEEL_IR_F64:
        return &ffi_type_double;
    default:
        return &ffi_type_pointer;
    }
}

bool wide(KeelIrType t)
{
    return t != KEEL_IR_I32 && t != KEEL_IR_F32;
}

class TciEngine final : public Engine
{
  public:
    TciEngine() { run(nullptr, nullptr, &table_); }

    bool compile(CpuState &cpu, const IrBlock &b, Tb &tb, std::string &err) override;
    void release(Tb &tb) override
    {
        delete static_cast<Code *>(tb.code);
        tb.code = nullptr;
    }
    ExecResult exec(CpuState &cpu, Tb *tb) override { return run(&cpu, tb, nullptr); }
    // Chaining patches the goto_tb words, so a chained exit costs no lookups at run time.
    void link(Tb &from, unsigned slot, Tb &to) override
    {
        from.jmp[slot] = &to;
        patch(from, slot, static_cast<Code *>(to.code)->entry, &to);
    }
    void unlink(Tb &from, unsigned slot) override
    {
        from.jmp[slot] = nullptr;
        patch(from, slot, nullptr, nullptr);
    }

  private:
    static void patch(Tb &from, unsigned slot, Word *entry, Tb *to)
    {
        auto *code = static_cast<Code *>(from.code);
        if (!code || slot > 1) return;
        for (size_t at : code->goto_sites[slot]) {
            code->words[at + 2].w = entry;
            code->words[at + 3].tb = to;
        }
    }
    struct Cif {
        ffi_cif cif;
        ffi_type *args[KEEL_IR_MAX_HELPER_ARGS];
    };
    ffi_cif *cif_for(const KeelIrHelper *h, std::string &err);

    const void *const *table_ = nullptr;
    std::map<const KeelIrHelper *, std::unique_ptr<Cif>> cifs_;
};

ffi_cif *TciEngine::cif_for(const KeelIrHelper *h, std::string &err)
{
    auto &slot = cifs_[h];
    if (slot) return &slot->cif;
    auto c = std::make_unique<Cif>();
    for (unsigned i = 0; i < h->nargs; ++i)
        c->args[i] = ffi_of(h->args[i]);
    ffi_type *ret = h->has_ret ? ffi_of(h->ret) : &ffi_type_void;
    if (ffi_prep_cif(&c->cif, FFI_DEFAULT_ABI, h->nargs, ret, c->args) != FFI_OK) {
        cifs_.erase(h);
        err = std::string("libffi cannot call helper ") + (h->name ? h->name : "?");
        return nullptr;
    }
    slot = std::move(c);
    return &slot->cif;
}

bool TciEngine::compile(CpuState &cpu, const IrBlock &b, Tb &tb, std::string &err)
{
    auto code = std::make_unique<Code>();
    // Slots: temporaries first, then one per constant, then the env pointer.
    size_t n_consts = 0, n_calls = 0;
    for (const IrVal &v : b.values)
        n_consts += v.kind == ValKind::Const;
    for (const IrOp &op : b.ops)
        n_calls += op.kind == OpKind::Call;
    size_t n_slots = b.n_temps + n_consts + 1;
    code->slots = std::make_unique<uint64_t[]>(n_slots);
    code->calls.reserve(n_calls);
    uint64_t *slots = code->slots.get();
    uint64_t *env_slot = &slots[n_slots - 1];
    *env_slot = reinterpret_cast<uintptr_t>(cpu.env);
    std::vector<uint64_t *> loc(b.values.size(), nullptr);
    size_t next_const = b.n_temps;
    for (size_t i = 1; i < b.values.size(); ++i) {
        const IrVal &v = b.values[i];
        switch (v.kind) {
        case ValKind::Temp:
            loc[i] = &slots[v.index];
            break;
        case ValKind::Const:
            slots[next_const] = v.imm;
            loc[i] = &slots[next_const++];
            break;
        case ValKind::Global:
            loc[i] = reinterpret_cast<uint64_t *>(static_cast<char *>(cpu.env) + v.imm);
            break;
        case ValKind::Env:
            loc[i] = env_slot;
            break;
        case ValKind::None:
            break;
        }
    }

    std::vector<Word> &w = code->words;
    std::vector<size_t> label_at(b.labels.size(), SIZE_MAX);
    std::vector<std::pair<size_t, uint32_t>> fixups; // word index -> label
    auto h = [&](unsigned id) { w.push_back(Word{.h = table_[id]}); };
    auto p = [&](KeelIrValue v) { w.push_back(Word{.p = loc[v]}); };
    auto u = [&](uint64_t x) { w.push_back(Word{.u = x}); };
    auto is_const = [&](KeelIrValue v) { return b.val(v).kind == ValKind::Const; };
    auto type_of = [&](KeelIrValue v) { return b.val(v).type; };

    uint64_t insn_pc = 0;
    bool dead = false;
    for (const IrOp &op : b.ops) {
        if (op.kind == OpKind::SetLabel) {
            label_at[op.label] = w.size();
            dead = false;
            continue;
        }
        if (op.kind == OpKind::InsnStart) {
            insn_pc = static_cast<uint64_t>(op.imm);
            continue;
        }
        if (dead) continue; // unreachable until the next label
        unsigned w64 = wide(op.type) ? 1 : 0;
        switch (op.kind) {
        case OpKind::Alu: {
            KeelIrValue d = op.v[0], a = op.v[1], c = op.v[2];
            unsigned alu = op.alu;
            if ((alu == KEEL_IR_MOV || alu == KEEL_IR_BITCAST) && is_const(a)) {
                h(w64 ? H_movi_64 : H_movi_32);
                p(d);
                u(b.val(a).imm);
                break;
            }
            if (alu_arity(alu) == 2 && is_const(c) && !is_const(a)) {
                uint64_t imm = b.val(c).imm;
                unsigned id = H_COUNT;
                unsigned width_mask = w64 ? 63 : 31;
                switch (alu) {
                case KEEL_IR_ADD:
                    id = H_imm_add_32;
                    break;
                case KEEL_IR_SUB:
                    id = H_imm_add_32;
                    imm = 0 - imm;
                    break;
                case KEEL_IR_AND:
                    id = H_imm_band_32;
                    break;
                case KEEL_IR_OR:
                    id = H_imm_bor_32;
                    break;
                case KEEL_IR_XOR:
                    id = H_imm_bxor_32;
                    break;
                case KEEL_IR_SHL:
                    id = H_imm_shl_32;
                    imm &= width_mask;
                    break;
                case KEEL_IR_SHR:
                    id = H_imm_shr_32;
                    imm &= width_mask;
                    break;
                case KEEL_IR_SAR:
                    id = H_imm_sar_32;
                    imm &= width_mask;
                    break;
                default:
                    break;
                }
                if (id != H_COUNT && !(type_of(c) == KEEL_IR_I64 && !w64)) {
                    h(id + w64);
                    p(d);
                    p(a);
                    u(w64 ? imm : static_cast<uint32_t>(imm));
                    break;
                }
            }
            unsigned id;
            switch (alu) {
#define TCI_MAP(ir, name)   \
    case KEEL_IR_##ir:      \
        id = H_##name##_32; \
        break;
                TCI_MAP(ADD, bin_add)
                TCI_MAP(SUB, bin_sub)
                TCI_MAP(MUL, bin_mul)
                TCI_MAP(MULHS, bin_mulhs)
                TCI_MAP(MULHU, bin_mulhu)
                TCI_MAP(MULHSU, bin_mulhsu)
                TCI_MAP(DIVS, bin_divs)
                TCI_MAP(DIVU, bin_divu)
                TCI_MAP(REMS, bin_rems)
                TCI_MAP(REMU, bin_remu)
                TCI_MAP(AND, bin_band)
                TCI_MAP(OR, bin_bor)
                TCI_MAP(XOR, bin_bxor)
                TCI_MAP(ANDC, bin_andc)
                TCI_MAP(ORC, bin_orc)
                TCI_MAP(XNOR, bin_xnor)
                TCI_MAP(SHL, bin_shl)
                TCI_MAP(SHR, bin_shr)
                TCI_MAP(SAR, bin_sar)
                TCI_MAP(ROTL, bin_rotl)
                TCI_MAP(ROTR, bin_rotr)
                TCI_MAP(MINS, bin_mins)
                TCI_MAP(MINU, bin_minu)
                TCI_MAP(MAXS, bin_maxs)
                TCI_MAP(MAXU, bin_maxu)
                TCI_MAP(MOV, un_mov)
                TCI_MAP(BITCAST, un_mov)
                TCI_MAP(NOT, un_bnot)
                TCI_MAP(NEG, un_neg)
                TCI_MAP(CLZ, un_clz)
                TCI_MAP(CTZ, un_ctz)
                TCI_MAP(CTPOP, un_ctpop)
                TCI_MAP(BSWAP, un_bswap)
                TCI_MAP(EXT8S, un_ext8s)
                TCI_MAP(EXT8U, un_ext8u)
                TCI_MAP(EXT16S, un_ext16s)
                TCI_MAP(EXT16U, un_ext16u)
#undef TCI_MAP
            case KEEL_IR_EXT32S:
                id = H_un_ext32s_64;
                w64 = 0;
                break;
            case KEEL_IR_EXT32U:
                id = H_un_ext32u_64;
                w64 = 0;
                break;
            case KEEL_IR_EXTS_I32_I64:
                id = H_exts_i32_i64;
                w64 = 0;
                break;
            case KEEL_IR_EXTU_I32_I64:
                id = H_extu_i32_i64;
                w64 = 0;
                break;
            case KEEL_IR_TRUNC_I64_I32:
                id = H_trunc_i64_i32;
                w64 = 0;
                break;
            default:
                err = std::string("no handler for ") + alu_name(alu);
                return false;
            }
            h(id + w64);
            p(d);
            p(a);
            if (alu_arity(alu) == 2) p(c);
            break;
        }
        case OpKind::SetCond: {
            unsigned cw = wide(type_of(op.v[1])) ? 1 : 0;
            h(H_setcond_32_32 + cw * 2 + w64);
            p(op.v[0]);
            p(op.v[1]);
            p(op.v[2]);
            u(op.cond);
            break;
        }
        case OpKind::MovCond: {
            unsigned cw = wide(type_of(op.v[1])) ? 1 : 0;
            h(H_movcond_32_32 + cw * 2 + w64);
            p(op.v[0]);
            p(op.v[1]);
            p(op.v[2]);
            p(op.v[3]);
            p(op.extra);
            u(op.cond);
            break;
        }
        case OpKind::BrCond: {
            unsigned cw = wide(type_of(op.v[0])) ? 1 : 0;
            bool imm = is_const(op.v[1]);
            // br_<cond>_32, _64, bri_<cond>_32, _64 are consecutive, conditions in KeelIrCond order.
            h(H_br_eq_32 + op.cond * 4 + (imm ? 2 : 0) + cw);
            p(op.v[0]);
            if (imm) {
                u(b.val(op.v[1]).imm);
            } else {
                p(op.v[1]);
            }
            fixups.emplace_back(w.size(), op.label);
            u(0);
            break;
        }
        case OpKind::Br:
            h(H_br);
            fixups.emplace_back(w.size(), op.label);
            u(0);
            dead = true;
            break;
        case OpKind::Load: {
            static constexpr unsigned kLd[8] = {H_ld_8u_32, H_ld_16u_32, H_ld_32u_32, H_ld_64_32,
                                                H_ld_8s_32, H_ld_16s_32, H_ld_32s_32, H_ld_64_32};
            unsigned k = (op.memop & KEEL_MO_SIZE_MASK) | ((op.memop & KEEL_MO_SIGN) ? 4 : 0);
            h(kLd[k] + w64);
            p(op.v[0]);
            p(op.v[1]);
            // The read of a read-modify-write must find the page writable: it always takes the slow
            // path, through a table that never hits (atomics are rare).
            w.push_back(Word{.tlb = (op.memop & KEEL_MO_RMW) ? never_hit_tlb() : cpu.tlb[op.mmu_idx]});
            u(op.memop | static_cast<uint64_t>(op.mmu_idx) << 8);
            u(insn_pc);
            break;
        }
        case OpKind::Store: {
            static constexpr unsigned kSt[4] = {H_st_1, H_st_2, H_st_4, H_st_8};
            h(kSt[op.memop & KEEL_MO_SIZE_MASK]);
            p(op.v[0]);
            p(op.v[1]);
            w.push_back(Word{.tlb = cpu.tlb[op.mmu_idx]});
            u(op.memop | static_cast<uint64_t>(op.mmu_idx) << 8);
            u(insn_pc);
            break;
        }
        case OpKind::LoadHost:
        case OpKind::StoreHost:
            h(op.kind == OpKind::LoadHost ? H_ldh : H_sth);
            p(op.v[0]);
            p(op.v[1]);
            u(static_cast<uint64_t>(op.imm));
            u(op.memop | (w64 ? 64u : 32u) << 8);
            break;
        case OpKind::Call: {
            const KeelIrHelper *hp = op.helper;
            ffi_cif *cif = cif_for(hp, err);
            if (!cif) return false;
            CallInfo ci{};
            ci.cif = cif;
            ci.fn = hp->fn;
            for (unsigned i = 0; i < op.nargs; ++i)
                ci.argv[i] = loc[b.call_args[op.args_at + i]];
            ci.dst = op.v[0] ? loc[op.v[0]] : nullptr;
            ci.raise = (hp->flags & KEEL_HELPER_MAY_RAISE) != 0;
            ci.pc = insn_pc;
            ci.nargs = static_cast<uint8_t>(op.nargs);
            ci.direct = kDirectCalls && op.nargs <= 6 &&
                        (!hp->has_ret || (hp->ret != KEEL_IR_F32 && hp->ret != KEEL_IR_F64));
            for (unsigned i = 0; i < op.nargs; ++i) {
                if (hp->args[i] == KEEL_IR_F32 || hp->args[i] == KEEL_IR_F64) ci.direct = false;
                if (hp->args[i] == KEEL_IR_I32) ci.narrow |= static_cast<uint8_t>(1u << i);
            }
            code->calls.push_back(ci);
            h(!hp->has_ret ? H_call_void : wide(static_cast<KeelIrType>(hp->ret)) ? H_call_r64 : H_call_r32);
            w.push_back(Word{.ci = &code->calls.back()});
            break;
        }
        case OpKind::GotoTb:
            h(H_goto_tb);
            code->goto_sites[op.imm & 1].push_back(w.size() - 1);
            u(static_cast<uint64_t>(op.imm));
            u(0); // entry of the chained block
            u(0); // the chained block
            dead = true;
            break;
        case OpKind::LookupGoto:
            h(H_lookup);
            dead = true;
            break;
        case OpKind::ExitTb:
            h(H_exit_tb);
            dead = true;
            break;
        case OpKind::SetLabel:
        case OpKind::InsnStart:
            break;
        }
    }
    // A label at the very end (only reachable by a branch the verifier let
    // through) must still land on an exit.
    h(H_exit_tb);
    for (auto &[at, label] : fixups) {
        if (label >= label_at.size() || label_at[label] == SIZE_MAX) {
            err = "branch to unset label L" + std::to_string(label);
            return false;
        }
        w[at].w = &w[label_at[label]];
    }
    code->entry = w.data();
    tb.code = code.release();
    return true;
}

} // namespace

std::unique_ptr<exec::Engine> make_engine()
{
    return std::make_unique<TciEngine>();
}

} // namespace keel::tci
