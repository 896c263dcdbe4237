// SPDX-License-Identifier: MIT
// Sieve of Eratosthenes over a byte array of 4 million entries, repeated; counts and sums the primes.
#include "bench.h"

#ifndef ROUNDS
#define ROUNDS 18
#endif
#define LIMIT 4000000

static uint8_t composite[LIMIT];

int main(void)
{
    uint64_t sum = 0;
    for (int r = 0; r < ROUNDS; r++) {
        memset(composite, 0, sizeof composite);
        uint64_t count = 0, total = 0;
        for (uint64_t i = 2; i < LIMIT; i++) {
            if (composite[i]) continue;
            count++;
            total += i;
            for (uint64_t j = i * i; j < LIMIT; j += i)
                composite[j] = 1;
        }
        sum = sum * 31 + count + (total << 20);
    }
    bench_finish(sum);
}
