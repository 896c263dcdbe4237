// SPDX-License-Identifier: MIT
// The benchmark runtime for a workload compiled for the host (bench/run's native column): the same
// checksum line as bench.c on stdout; there is no instret to report.
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

void bench_puts(const char *s)
{
    fputs(s, stdout);
}

void bench_put_hex(uint64_t v)
{
    printf("%016llx", (unsigned long long)v);
}

void bench_put_dec(uint64_t v)
{
    printf("%llu", (unsigned long long)v);
}

void bench_finish(uint64_t checksum)
{
    printf("checksum: %016llx\n", (unsigned long long)checksum);
    exit(0);
}
