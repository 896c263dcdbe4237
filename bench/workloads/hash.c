// SPDX-License-Identifier: MIT
// Hashing a 64 KiB buffer repeatedly: FNV-1a (bytes) and a MurmurHash3-style 64-bit mix (words).
#include "bench.h"

#ifndef ROUNDS
#define ROUNDS 8000
#endif
#define BYTES (64 * 1024)

static uint64_t buf[BYTES / 8];

static uint64_t fnv1a(const uint8_t *p, unsigned long n, uint64_t h)
{
    while (n--)
        h = (h ^ *p++) * 0x100000001b3ull;
    return h;
}

static uint64_t murmur(const uint64_t *p, unsigned long n, uint64_t h)
{
    for (unsigned long i = 0; i < n; i++) {
        uint64_t k = p[i] * 0x87c37b91114253d5ull;
        k = (k << 31 | k >> 33) * 0x4cf5ad432745937full;
        h ^= k;
        h = (h << 27 | h >> 37) * 5 + 0x52dce729;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

int main(void)
{
    uint64_t seed = 0x13198a2e03707344ull, h = 0xcbf29ce484222325ull;
    for (unsigned i = 0; i < BYTES / 8; i++)
        buf[i] = bench_rand(&seed);
    for (unsigned r = 0; r < ROUNDS; r++) {
        buf[r % (BYTES / 8)] ^= h;
        h = fnv1a((const uint8_t *)buf, BYTES, h);
        h ^= murmur(buf, BYTES / 8, h);
    }
    bench_finish(h);
}
