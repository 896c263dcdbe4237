// SPDX-License-Identifier: MIT
// Integer loop kernel: adds, shifts, xors, multiplies, a data-dependent branch and an occasional division.
#include "bench.h"

#ifndef ITERS
#define ITERS 160000000
#endif

int main(void)
{
    uint64_t a = 0x9e3779b97f4a7c15ull, b = 1, c = 0;
    for (uint64_t i = 0; i < ITERS; i++) {
        a = (a << 7 | a >> 57) ^ (a + i);
        b = b * 6364136223846793005ull + 1442695040888963407ull;
        if ((a ^ b) & 0x100)
            c += a >> 3;
        else
            c -= b >> 5;
        if ((i & 1023) == 0) c += a / (b | 1);
    }
    bench_finish(a ^ b ^ c);
}
