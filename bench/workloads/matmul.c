// SPDX-License-Identifier: MIT
// Dense matrix multiply: 96x96 doubles (i-k-j order) and 96x96 int32, repeated.
#include "bench.h"

#ifndef ROUNDS
#define ROUNDS 50
#endif
#define N 96

static double a[N][N], b[N][N], c[N][N];
static int32_t ia[N][N], ib[N][N], ic[N][N];

int main(void)
{
    uint64_t seed = 0xa4093822299f31d0ull, sum = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            a[i][j] = (double)(bench_rand(&seed) % 2001) / 1000.0 - 1.0;
            b[i][j] = (double)(bench_rand(&seed) % 2001) / 1000.0 - 1.0;
            ia[i][j] = (int32_t)(bench_rand(&seed) % 201) - 100;
            ib[i][j] = (int32_t)(bench_rand(&seed) % 201) - 100;
        }
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                c[i][j] = 0;
                ic[i][j] = 0;
            }
        for (int i = 0; i < N; i++)
            for (int k = 0; k < N; k++) {
                double x = a[i][k];
                int32_t y = ia[i][k];
                for (int j = 0; j < N; j++) {
                    c[i][j] += x * b[k][j];
                    ic[i][j] += y * ib[k][j];
                }
            }
        // Feed the result back so rounds differ.
        a[r % N][(r * 7) % N] = c[(r * 3) % N][(r * 5) % N] / 64.0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                union {
                    double d;
                    uint64_t u;
                } bits = {c[i][j]};
                sum = sum * 31 + (bits.u ^ (uint32_t)ic[i][j]);
            }
    }
    bench_finish(sum);
}
