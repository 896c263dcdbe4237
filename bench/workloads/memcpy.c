// SPDX-License-Identifier: MIT
// memcpy/memset: word-sized fill and copy loops over 256 KiB buffers, plus a misaligned byte copy.
#include "bench.h"

#ifndef ROUNDS
#define ROUNDS 1260
#endif
#define WORDS (256 * 1024 / 8)

static uint64_t src[WORDS], dst[WORDS];

static void fill64(uint64_t *d, uint64_t v, unsigned long n)
{
    for (unsigned long i = 0; i < n; i += 4) {
        d[i] = v;
        d[i + 1] = v;
        d[i + 2] = v;
        d[i + 3] = v;
    }
}

static void copy64(uint64_t *d, const uint64_t *s, unsigned long n)
{
    for (unsigned long i = 0; i < n; i += 4) {
        uint64_t a = s[i], b = s[i + 1], c = s[i + 2], e = s[i + 3];
        d[i] = a;
        d[i + 1] = b;
        d[i + 2] = c;
        d[i + 3] = e;
    }
}

static void copy8(uint8_t *d, const uint8_t *s, unsigned long n)
{
    while (n--)
        *d++ = *s++;
}

int main(void)
{
    uint64_t sum = 0;
    for (unsigned r = 0; r < ROUNDS; r++) {
        fill64(src, 0x0101010101010101ull * (r + 1), WORDS);
        src[r * 97 % WORDS] = r;
        copy64(dst, src, WORDS);
        copy8((uint8_t *)dst + 1 + r % 7, (const uint8_t *)src + 3, 32 * 1024);
        for (unsigned long i = 0; i < WORDS; i += 509)
            sum = sum * 31 + dst[i];
        sum += dst[(r * 7919) % WORDS];
    }
    bench_finish(sum);
}
