// SPDX-License-Identifier: MIT
// RV64IM edge cases: overflow, mul high halves, division by zero and overflow, shift masking, *W sign
// extension.
#include "rt.h"

// Each operation is one instruction in inline asm so the compiler cannot fold it.
#define OP2(insn, a, b)                                                                           \
    ({                                                                                            \
        uint64_t _r;                                                                              \
        __asm__ volatile(insn " %0, %1, %2" : "=r"(_r) : "r"((uint64_t)(a)), "r"((uint64_t)(b))); \
        _r;                                                                                       \
    })
#define OPI(insn, a, imm)                                                               \
    ({                                                                                  \
        uint64_t _r;                                                                    \
        __asm__ volatile(insn " %0, %1, %2" : "=r"(_r) : "r"((uint64_t)(a)), "i"(imm)); \
        _r;                                                                             \
    })

#define MIN64 0x8000000000000000ull
#define MAX64 0x7fffffffffffffffull
#define ALL ~0ull
#define SX32(v) ((uint64_t)(int64_t)(int32_t)(uint32_t)(v))

static void add_sub(void)
{
    CHECK_EQ(OP2("add", MAX64, 1), MIN64);
    CHECK_EQ(OP2("sub", MIN64, 1), MAX64);
    CHECK_EQ(OP2("add", ALL, 1), 0);
    CHECK_EQ(OP2("sub", 0, 1), ALL);
    CHECK_EQ(OPI("addi", MAX64, 1), MIN64);
    CHECK_EQ(OPI("addi", 0, -2048), (uint64_t)-2048);
    // *W: 32-bit result, sign-extended, upper source bits ignored.
    CHECK_EQ(OP2("addw", 0x7fffffff, 1), 0xffffffff80000000ull);
    CHECK_EQ(OP2("addw", 0x123456789ull, 0), 0x23456789);
    CHECK_EQ(OP2("subw", 0x80000000ull, 1), 0x7fffffff);
    CHECK_EQ(OP2("subw", 0, 1), ALL);
    CHECK_EQ(OPI("addiw", 0xffffffff7fffffffull, 1), 0xffffffff80000000ull);
    CHECK_EQ(OPI("addiw", 0x1ffffffffull, 0), ALL); // sext.w
}

static void mul_div(void)
{
    CHECK_EQ(OP2("mul", MAX64, 2), ALL - 1);
    CHECK_EQ(OP2("mulh", MIN64, MIN64), 0x4000000000000000ull);
    CHECK_EQ(OP2("mulh", ALL, ALL), 0); // -1 * -1 = 1
    CHECK_EQ(OP2("mulh", ALL, 1), ALL); // -1 * 1 = -1: high half all ones
    CHECK_EQ(OP2("mulhu", ALL, ALL), ALL - 1);
    CHECK_EQ(OP2("mulhu", ALL, 2), 1);
    CHECK_EQ(OP2("mulhsu", ALL, ALL), ALL); // -1 * (2^64-1) = -(2^64-1): high = -1
    CHECK_EQ(OP2("mulhsu", ALL, 1), ALL);
    CHECK_EQ(OP2("mulhsu", 1, ALL), 0);
    CHECK_EQ(OP2("mulhsu", MIN64, MIN64), 0xc000000000000000ull);
    CHECK_EQ(OP2("mulw", 0x10000, 0x10000), 0);
    CHECK_EQ(OP2("mulw", 0x7fffffff, 2), ALL - 1);
    CHECK_EQ(OP2("mulw", 0x100000003ull, 0x100000005ull), 15);
    // Division by zero: quotient all ones, remainder the dividend (no trap).
    CHECK_EQ(OP2("div", 42, 0), ALL);
    CHECK_EQ(OP2("divu", 42, 0), ALL);
    CHECK_EQ(OP2("rem", (uint64_t)-42, 0), (uint64_t)-42);
    CHECK_EQ(OP2("remu", 42, 0), 42);
    CHECK_EQ(OP2("divw", 42, 0), ALL);
    CHECK_EQ(OP2("divuw", 42, 0), ALL);
    CHECK_EQ(OP2("remw", 0x1fffffff0ull, 0), SX32(0xfffffff0));
    CHECK_EQ(OP2("remuw", 0x1fffffff0ull, 0), SX32(0xfffffff0));
    // Overflow: MIN / -1 = MIN, remainder 0.
    CHECK_EQ(OP2("div", MIN64, ALL), MIN64);
    CHECK_EQ(OP2("rem", MIN64, ALL), 0);
    CHECK_EQ(OP2("divw", 0x80000000ull, ALL), 0xffffffff80000000ull);
    CHECK_EQ(OP2("remw", 0x80000000ull, ALL), 0);
    CHECK_EQ(OP2("div", (uint64_t)-7, 2), (uint64_t)-3); // rounds toward zero
    CHECK_EQ(OP2("rem", (uint64_t)-7, 2), (uint64_t)-1); // sign of the dividend
    CHECK_EQ(OP2("divu", ALL, 2), MAX64);
    CHECK_EQ(OP2("divuw", 0xffffffffull, 1), ALL); // result 0xffffffff sign-extended
    CHECK_EQ(OP2("remuw", 0xfffffffbull, 0x10), 0xb);
}

static void shifts(void)
{
    // Register shift amounts use only the low 6 (RV64) or 5 (*W) bits.
    CHECK_EQ(OP2("sll", 1, 64), 1);
    CHECK_EQ(OP2("sll", 1, 65), 2);
    CHECK_EQ(OP2("srl", MIN64, 127), 1);
    CHECK_EQ(OP2("sra", MIN64, 63), ALL);
    CHECK_EQ(OP2("sra", MIN64, 64 + 4), 0xf800000000000000ull);
    CHECK_EQ(OP2("sllw", 1, 32), 1);
    CHECK_EQ(OP2("sllw", 1, 31), 0xffffffff80000000ull);
    CHECK_EQ(OP2("srlw", 0xffffffff80000000ull, 32 + 31), 1);
    CHECK_EQ(OP2("srlw", 0x80000000ull, 0), 0xffffffff80000000ull); // result bit 31 sign-extends
    CHECK_EQ(OP2("sraw", 0x80000000ull, 4), 0xfffffffff8000000ull);
    CHECK_EQ(OP2("sraw", 0x700000000ull, 1), 0); // upper source bits ignored
    CHECK_EQ(OPI("slli", 1, 63), MIN64);
    CHECK_EQ(OPI("srli", ALL, 63), 1);
    CHECK_EQ(OPI("srai", MIN64, 1), 0xc000000000000000ull);
    CHECK_EQ(OPI("slliw", 3, 31), 0xffffffff80000000ull);
    CHECK_EQ(OPI("srliw", ALL, 1), 0x7fffffff);
    CHECK_EQ(OPI("sraiw", 0x80000000ull, 31), ALL);
}

static void compares_logic(void)
{
    CHECK_EQ(OP2("slt", ALL, 0), 1);
    CHECK_EQ(OP2("slt", 0, ALL), 0);
    CHECK_EQ(OP2("slt", MIN64, MAX64), 1);
    CHECK_EQ(OP2("sltu", ALL, 0), 0);
    CHECK_EQ(OP2("sltu", 0, ALL), 1);
    CHECK_EQ(OP2("sltu", 5, 5), 0);
    CHECK_EQ(OPI("slti", ALL, 0), 1);
    CHECK_EQ(OPI("sltiu", 5, -1), 1); // immediate sign-extended, compared unsigned
    CHECK_EQ(OPI("sltiu", ALL, -1), 0);
    CHECK_EQ(OPI("sltiu", 0, 1), 1); // seqz
    CHECK_EQ(OPI("xori", 0x0f0f, -1), ~0x0f0full);
    CHECK_EQ(OPI("andi", ALL, -2048), ~0x7ffull);
    CHECK_EQ(OPI("ori", 0, -1), ALL);
    CHECK_EQ(OP2("and", 0xff00ff00ff00ff00ull, 0x0ff00ff00ff00ff0ull), 0x0f000f000f000f00ull);
    CHECK_EQ(OP2("or", 0xff00ull, 0x00ffull), 0xffffull);
    CHECK_EQ(OP2("xor", ALL, MIN64), MAX64);
}

static void upper_immediates(void)
{
    uint64_t v;
    __asm__ volatile("lui %0, 0x80000" : "=r"(v));
    CHECK_EQ(v, 0xffffffff80000000ull); // sign-extended on RV64
    __asm__ volatile("lui %0, 0x7ffff" : "=r"(v));
    CHECK_EQ(v, 0x7ffff000);
    uint64_t here, pc;
    __asm__ volatile("1: auipc %0, 0\n la %1, 1b" : "=r"(pc), "=r"(here));
    CHECK_EQ(pc, here);
    __asm__ volatile("1: auipc %0, 0xfffff\n la %1, 1b" : "=r"(pc), "=r"(here));
    CHECK_EQ(pc, here - 0x1000);
}

static void loads_stores(void)
{
    static volatile uint64_t word = 0x8081828384858687ull;
    uint64_t v, a = (uint64_t)&word;
    __asm__ volatile("lb %0, 0(%1)" : "=r"(v) : "r"(a));
    CHECK_EQ(v, 0xffffffffffffff87ull);
    __asm__ volatile("lbu %0, 0(%1)" : "=r"(v) : "r"(a));
    CHECK_EQ(v, 0x87);
    __asm__ volatile("lh %0, 6(%1)" : "=r"(v) : "r"(a));
    CHECK_EQ(v, 0xffffffffffff8081ull);
    __asm__ volatile("lhu %0, 6(%1)" : "=r"(v) : "r"(a));
    CHECK_EQ(v, 0x8081);
    __asm__ volatile("lw %0, 4(%1)" : "=r"(v) : "r"(a));
    CHECK_EQ(v, 0xffffffff80818283ull);
    __asm__ volatile("lwu %0, 4(%1)" : "=r"(v) : "r"(a));
    CHECK_EQ(v, 0x80818283);
    __asm__ volatile("sb %1, 1(%0)\n sh %1, 2(%0)" ::"r"(a), "r"(0x1234567890abcdefull) : "memory");
    CHECK_EQ(word, 0x80818283cdefef87ull);
    __asm__ volatile("sw %1, 4(%0)" ::"r"(a), "r"(0x1122334455667788ull) : "memory");
    CHECK_EQ(word, 0x55667788cdefef87ull);
}

int main(void)
{
    add_sub();
    mul_div();
    shifts();
    compares_logic();
    upper_immediates();
    loads_stores();
    return 0;
}
