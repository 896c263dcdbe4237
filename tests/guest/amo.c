// SPDX-License-Identifier: MIT
// A extension: LR/SC reservations and every AMO (.w and .d), results and memory.
#include "rt.h"

static volatile uint64_t mem[1024] __attribute__((aligned(4096)));
static volatile uint64_t far_word __attribute__((aligned(4096)));

#define AMO(insn, addr, v)                                                                            \
    ({                                                                                                \
        uint64_t _r;                                                                                  \
        __asm__ volatile(insn " %0, %2, (%1)" : "=r"(_r) : "r"(addr), "r"((uint64_t)(v)) : "memory"); \
        _r;                                                                                           \
    })
#define LR(insn, addr)                                                        \
    ({                                                                        \
        uint64_t _r;                                                          \
        __asm__ volatile(insn " %0, (%1)" : "=r"(_r) : "r"(addr) : "memory"); \
        _r;                                                                   \
    })
#define SC(insn, addr, v)                                                                              \
    ({                                                                                                 \
        uint64_t _r;                                                                                   \
        __asm__ volatile(insn " %0, %2, (%1)" : "=&r"(_r) : "r"(addr), "r"((uint64_t)(v)) : "memory"); \
        _r;                                                                                            \
    })

static void lr_sc(void)
{
    volatile uint64_t *p = &mem[0];
    *p = 100;
    // Success: SC writes and returns 0.
    CHECK_EQ(LR("lr.d", p), 100);
    CHECK_EQ(SC("sc.d", p, 101), 0);
    CHECK_EQ(*p, 101);
    // A second SC without a new LR fails: the first SC consumed the reservation (the spec requires an SC
    // to fail if another SC came between it and the LR).
    CHECK(SC("sc.d", p, 102) != 0);
    CHECK_EQ(*p, 101);
    // SC to an address outside the reservation set (another page) fails and does not write.
    far_word = 7;
    LR("lr.d", p);
    CHECK(SC("sc.d", &far_word, 8) != 0);
    CHECK_EQ(far_word, 7);
    // An intervening store of a different value between LR and SC. The spec only requires failure for
    // stores by other harts or devices; keel (like QEMU) validates the reservation by comparing the
    // loaded value, so a same-hart store that changes the value makes the SC fail.
    LR("lr.d", p);
    *p = 555;
    CHECK(SC("sc.d", p, 103) != 0);
    CHECK_EQ(*p, 555);
    // Word forms: lr.w sign-extends, sc.w writes 32 bits only.
    mem[1] = 0x1111111180000000ull;
    volatile uint32_t *w = (volatile uint32_t *)&mem[1];
    CHECK_EQ(LR("lr.w", w), 0xffffffff80000000ull);
    CHECK_EQ(SC("sc.w", w, 0xabcdef0123456789ull), 0);
    CHECK_EQ(mem[1], 0x1111111123456789ull);
    CHECK(SC("sc.w", w, 1) != 0);
    CHECK_EQ(mem[1], 0x1111111123456789ull);
}

// Runs one AMO on `init` with operand `v`; the neighbouring word/doubleword must stay intact.
#define AMO_D(insn, init, v, want_mem)           \
    do {                                         \
        mem[8] = (init);                         \
        mem[9] = 0x5a5a5a5a5a5a5a5aull;          \
        CHECK_EQ(AMO(insn, &mem[8], v), (init)); \
        CHECK_EQ(mem[8], want_mem);              \
        CHECK_EQ(mem[9], 0x5a5a5a5a5a5a5a5aull); \
    } while (0)
#define SX32(v) ((uint64_t)(int64_t)(int32_t)(uint32_t)(v))
#define AMO_W(insn, init, v, want_mem)                                  \
    do {                                                                \
        mem[8] = 0xa5a5a5a500000000ull | (uint32_t)(init);              \
        CHECK_EQ(AMO(insn, &mem[8], v), SX32(init));                    \
        CHECK_EQ(mem[8], 0xa5a5a5a500000000ull | (uint32_t)(want_mem)); \
    } while (0)

static void amos(void)
{
    const uint64_t neg = 0x8000000000000001ull; // negative signed, large unsigned
    AMO_D("amoswap.d", 0x1122334455667788ull, 0xdeadbeefcafef00dull, 0xdeadbeefcafef00dull);
    AMO_D("amoadd.d", 0xffffffffffffffffull, 2, 1);
    AMO_D("amoand.d", 0xff00ff00ff00ff00ull, 0x0ff00ff00ff00ff0ull, 0x0f000f000f000f00ull);
    AMO_D("amoor.d", 0xff00ull, 0x00ffull, 0xffffull);
    AMO_D("amoxor.d", 0xffffull, 0x0ff0ull, 0xf00full);
    AMO_D("amomin.d", neg, 1, neg);
    AMO_D("amomin.d", 1, neg, neg);
    AMO_D("amomax.d", neg, 1, 1);
    AMO_D("amomax.d", 1, neg, 1);
    AMO_D("amominu.d", neg, 1, 1);
    AMO_D("amominu.d", 1, neg, 1);
    AMO_D("amomaxu.d", neg, 1, neg);
    AMO_D("amomaxu.d", 1, neg, neg);

    const uint32_t negw = 0x80000001u;
    AMO_W("amoswap.w", 0x11223344u, 0xfeedfacecafef00dull, 0xcafef00du);
    AMO_W("amoadd.w", 0xffffffffu, 0x100000002ull, 1); // upper operand bits ignored, carry dropped
    AMO_W("amoand.w", 0xff00ff00u, 0x0ff00ff0u, 0x0f000f00u);
    AMO_W("amoor.w", 0xff00u, 0x00ffu, 0xffffu);
    AMO_W("amoxor.w", 0xffffu, 0x0ff0u, 0xf00fu);
    AMO_W("amomin.w", negw, 1, negw);
    AMO_W("amomin.w", 1, negw, negw);
    AMO_W("amomax.w", negw, 1, 1);
    AMO_W("amomax.w", 1, negw, 1);
    AMO_W("amominu.w", negw, 1, 1);
    AMO_W("amominu.w", 1, negw, 1);
    AMO_W("amomaxu.w", negw, 1, negw);
    AMO_W("amomaxu.w", 1, negw, negw);
    // The comparison uses only the low 32 bits of the operand: 0x1_0000_0000 is 0 as a word.
    AMO_W("amomaxu.w", 5, 0x100000000ull, 5);
    AMO_W("amomin.w", 5, 0x1ffffffffull, 0xffffffffu);
}

int main(void)
{
    lr_sc();
    amos();
    return 0;
}
