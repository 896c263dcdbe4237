// SPDX-License-Identifier: MIT
// A misaligned AMO raises store/AMO address-misaligned (cause 6), with the address in mtval.
#include "rt.h"

// QEMU 7.2 deviation: without MTTCG it emulates an AMO as a load then a store and reports a misaligned
// AMO as a *load* address-misaligned exception (cause 4). The spec classes AMOs with stores (cause 6,
// or the store/AMO access fault 7 for accesses that should not be emulated). This program checks the
// spec's behaviour, which keel implements; tests/guest/run-qemu lists it as a known QEMU 7.2 failure.

static volatile uint64_t mem[4] __attribute__((aligned(32)));

#define AMO(insn, addr, v) __asm__ volatile(insn " zero, %1, (%0)" ::"r"(addr), "r"((uint64_t)(v)) : "memory")

int main(void)
{
    mem[0] = 0x0123456789abcdefull;
    mem[1] = 0;
    uint64_t a = (uint64_t)&mem[0] + 4;
    rt_expect_trap();
    AMO("amoadd.d", a, 1);
    CHECK_TRAP(6, a);
    a = (uint64_t)&mem[0] + 2;
    rt_expect_trap();
    AMO("amoswap.w", a, 1);
    CHECK_TRAP(6, a);
    a = (uint64_t)&mem[0] + 1;
    rt_expect_trap();
    AMO("amoor.d", a, 1);
    CHECK_TRAP(6, a);
    // Nothing was written.
    CHECK_EQ(mem[0], 0x0123456789abcdefull);
    CHECK_EQ(mem[1], 0);
    return 0;
}
