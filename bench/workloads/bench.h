// SPDX-License-Identifier: MIT
// Benchmark runtime for riscv-virt: UART output, the checksum/instret report, sifive-test exit (built on
// the guest test runtime, tests/guest/rt, with RT_VIRT).
#ifndef KEEL_BENCH_H
#define KEEL_BENCH_H

#include <stdint.h>

#include "rt.h"

void bench_puts(const char *s);
void bench_put_hex(uint64_t v);
void bench_put_dec(uint64_t v);
// Prints "checksum: <hex>" then "instret: <n>" (minstret at this point) and powers off with status 0.
__attribute__((noreturn)) void bench_finish(uint64_t checksum);

void *memset(void *d, int c, unsigned long n);
void *memcpy(void *d, const void *s, unsigned long n);

// A small deterministic generator (xorshift64*), the same on every emulator.
static inline uint64_t bench_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

#endif
