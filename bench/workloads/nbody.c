// SPDX-License-Identifier: MIT
// Floating-point kernel: a 5-body gravitational simulation in double (sqrt, div, fused multiply-adds).
#include "bench.h"

#ifndef STEPS
#define STEPS 600000
#endif
#define NB 5

struct body {
    double x, y, z, vx, vy, vz, m;
};

static double sqrt_d(double v)
{
#if defined(__riscv)
    double r;
    __asm__("fsqrt.d %0, %1" : "=f"(r) : "f"(v));
    return r;
#else
    return __builtin_sqrt(v); // the native build (bench/run's host column)
#endif
}

int main(void)
{
    // Sun and four planets, in AU, AU/day scaled to years, solar masses (4 pi^2 units).
    const double pi = 3.141592653589793, days = 365.24, sm = 4 * pi * pi;
    struct body s[NB] = {
        {0, 0, 0, 0, 0, 0, sm},
        {4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
         1.66007664274403694e-03 * days, 7.69901118419740425e-03 * days, -6.90460016972063023e-05 * days,
         9.54791938424326609e-04 * sm},
        {8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
         -2.76742510726862411e-03 * days, 4.99852801234917238e-03 * days, 2.30417297573763929e-05 * days,
         2.85885980666130812e-04 * sm},
        {1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
         2.96460137564761618e-03 * days, 2.37847173959480950e-03 * days, -2.96589568540237556e-05 * days,
         4.36624404335156298e-05 * sm},
        {1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
         2.68067772490389322e-03 * days, 1.62824170038242295e-03 * days, -9.51592254519715870e-05 * days,
         5.15138902046611451e-05 * sm},
    };
    const double dt = 0.01;
    for (long n = 0; n < STEPS; n++) {
        for (int i = 0; i < NB; i++)
            for (int j = i + 1; j < NB; j++) {
                double dx = s[i].x - s[j].x, dy = s[i].y - s[j].y, dz = s[i].z - s[j].z;
                double d2 = dx * dx + dy * dy + dz * dz;
                double mag = dt / (d2 * sqrt_d(d2));
                s[i].vx -= dx * s[j].m * mag;
                s[i].vy -= dy * s[j].m * mag;
                s[i].vz -= dz * s[j].m * mag;
                s[j].vx += dx * s[i].m * mag;
                s[j].vy += dy * s[i].m * mag;
                s[j].vz += dz * s[i].m * mag;
            }
        for (int i = 0; i < NB; i++) {
            s[i].x += dt * s[i].vx;
            s[i].y += dt * s[i].vy;
            s[i].z += dt * s[i].vz;
        }
    }
    double e = 0;
    for (int i = 0; i < NB; i++) {
        e += 0.5 * s[i].m * (s[i].vx * s[i].vx + s[i].vy * s[i].vy + s[i].vz * s[i].vz);
        for (int j = i + 1; j < NB; j++) {
            double dx = s[i].x - s[j].x, dy = s[i].y - s[j].y, dz = s[i].z - s[j].z;
            e -= s[i].m * s[j].m / sqrt_d(dx * dx + dy * dy + dz * dz);
        }
    }
    union {
        double d;
        uint64_t u;
    } bits = {e};
    uint64_t sum = bits.u;
    for (int i = 0; i < NB; i++) {
        union {
            double d;
            uint64_t u;
        } x = {s[i].x};
        sum = sum * 31 + x.u;
    }
    bench_finish(sum);
}
