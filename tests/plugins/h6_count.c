// SPDX-License-Identifier: MIT
// H6 guest: the guest's own instruction count (minstret) over a region of code whose length depends on
// data, for h6_probe.c (mode=count) to count the same region. h6_count_region.S brackets the region with
// two csrr minstret at the global symbols h6_begin and h6_end; the region calls h6_work below (loops,
// calls, loads and stores, compressed instructions from -march=rv64gc), runs a few explicit compressed
// instructions and takes an ecall into the M trap handler and back.
//
// Output (riscv-virt UART), one line per region run: "h6 region N: delta=D ecalls=E", D being minstret
// at h6_end minus minstret at h6_begin: the instructions from h6_begin (the first csrr itself) up to,
// not including, h6_end. An ecall does not retire (it traps), so it is not in D; E counts those the
// handler saw during the run.
#include "rt.h"

#define H6_ECALL 0x68360001 // a7 of the region's ecall

uint64_t h6_measure(uint64_t n);

static volatile uint64_t ecalls;
static uint64_t table[64];

static int ecall_hook(struct rt_frame *f)
{
    if (f->mcause != 11 || f->x[17] != H6_ECALL) return 0;
    ecalls++;
    f->mepc += 4;
    return 1;
}

__attribute__((noinline)) static uint64_t collatz(uint64_t x)
{
    uint64_t steps = 0;
    while (x != 1) {
        x = (x & 1) ? 3 * x + 1 : x / 2;
        steps++;
    }
    return steps;
}

// Data-dependent work: the number of instructions depends on n through collatz() and the table walk.
uint64_t h6_work(uint64_t n)
{
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        table[i & 63] += collatz(i + n) ^ sum;
        sum += table[(i * 7) & 63];
    }
    return sum;
}

int main(void)
{
    static const uint64_t inputs[] = {3, 17, 40};
    rt_trap_hook = ecall_hook;
    for (unsigned r = 0; r < sizeof(inputs) / sizeof(inputs[0]); r++) {
        uint64_t before = ecalls;
        uint64_t delta = h6_measure(inputs[r]);
        rt_printf("h6 region %u: delta=%lu ecalls=%lu\n", r, delta, ecalls - before);
    }
    rt_trap_hook = 0;
    return 0;
}
