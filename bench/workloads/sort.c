// SPDX-License-Identifier: MIT
// Quicksort (median of three, insertion sort for short runs) of 100k pseudo-random 32-bit ints, repeated.
#include "bench.h"

#ifndef ROUNDS
#define ROUNDS 60
#endif
#define N 100000

static int32_t v[N];

static void insertion(int32_t *a, long n)
{
    for (long i = 1; i < n; i++) {
        int32_t x = a[i];
        long j = i - 1;
        while (j >= 0 && a[j] > x) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = x;
    }
}

static void quicksort(int32_t *a, long n)
{
    while (n > 16) {
        int32_t x = a[0], y = a[n / 2], z = a[n - 1];
        int32_t p = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        long i = 0, j = n - 1;
        for (;;) {
            while (a[i] < p)
                i++;
            while (a[j] > p)
                j--;
            if (i >= j) break;
            int32_t t = a[i];
            a[i] = a[j];
            a[j] = t;
            i++;
            j--;
        }
        // Recurse into the smaller half, loop on the larger: bounded stack depth.
        if (j + 1 < n - j - 1) {
            quicksort(a, j + 1);
            a += j + 1;
            n -= j + 1;
        } else {
            quicksort(a + j + 1, n - j - 1);
            n = j + 1;
        }
    }
    insertion(a, n);
}

int main(void)
{
    uint64_t seed = 0x243f6a8885a308d3ull, sum = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (long i = 0; i < N; i++)
            v[i] = (int32_t)bench_rand(&seed);
        quicksort(v, N);
        for (long i = 1; i < N; i++)
            if (v[i - 1] > v[i]) bench_finish(0xbad50f7); // not sorted: a checksum no correct run prints
        for (long i = 0; i < N; i += 97)
            sum = sum * 1000003 + (uint32_t)v[i];
    }
    bench_finish(sum);
}
