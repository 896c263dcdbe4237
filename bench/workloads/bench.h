// SPDX-License-Identifier: MIT
// Benchmark runtime for riscv-virt: UART output, the checksum/instret report, sifive-test exit (built on
// the guest test runtime, tests/guest/rt, with RT_VIRT); with BENCH_NATIVE, for the host (bench_native.c).
#ifndef KEEL_BENCH_H
#define KEEL_BENCH_H

#include <stdint.h>

#ifdef BENCH_NATIVE
// The same workload compiled for the host (bench/run's native column): the C library's string functions,
// bench_native.c's report.
#include <string.h>
#else
#include "rt.h"
#endif

void bench_puts(const char *s);
void bench_put_hex(uint64_t v);
void bench_put_dec(uint64_t v);
// Prints "checksum: <hex>" then "instret: <n>" (minstret at this point) and powers off with status 0.
__attribute__((noreturn)) void bench_finish(uint64_t checksum);

#ifndef BENCH_NATIVE
void *memset(void *d, int c, unsigned long n);
void *memcpy(void *d, const void *s, unsigned long n);
#endif

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
