// SPDX-License-Identifier: MIT
// PMP: S/U accesses denied by NAPOT and TOR entries (access faults 1/5/7), priority of the lowest entry,
// M unaffected unless the entry is locked.
#include "rt.h"

#define PMP_R 0x01
#define PMP_W 0x02
#define PMP_X 0x04
#define PMP_TOR 0x08
#define PMP_NAPOT 0x18
#define PMP_L 0x80

static volatile uint64_t region_a[512] __attribute__((aligned(4096)));
static volatile uint64_t region_b[1536] __attribute__((aligned(4096)));

static uint64_t napot(volatile void *base, uint64_t size)
{
    return ((uint64_t)base | (size / 2 - 1)) >> 2;
}

int main(void)
{
    region_a[0] = 0xaaaa;
    region_a[1] = 0x8082; // c.ret
    region_b[0] = 0xbbbb;
    uint64_t a = (uint64_t)region_a, b = (uint64_t)region_b;

    // 0: NAPOT over region_a, no permissions. 1-2: TOR over the first 8 KiB of region_b, read-only.
    // 3: NAPOT over everything, RWX. The lowest-numbered matching entry decides.
    CSR_WRITE(pmpaddr0, napot(region_a, 4096));
    CSR_WRITE(pmpaddr1, b >> 2);
    CSR_WRITE(pmpaddr2, (b + 8192) >> 2);
    CSR_WRITE(pmpaddr3, ~0ull);
    CSR_WRITE(pmpcfg0, (uint64_t)(PMP_NAPOT | PMP_R | PMP_W | PMP_X) << 24 |
                           (uint64_t)(PMP_TOR | PMP_R) << 16 | 0ull << 8 | PMP_NAPOT);
    CHECK_EQ(CSR_READ(pmpaddr1), b >> 2);
    CHECK_EQ(CSR_READ(pmpcfg0) & 0xffffffff,
             (uint64_t)(PMP_NAPOT | 7) << 24 | (PMP_TOR | PMP_R) << 16 | PMP_NAPOT);

    for (int mode = MODE_U; mode <= MODE_S; mode++) {
        rt_expect_trap();
        rt_run(mode, rt_ld, a + 8, 0);
        CHECK_TRAP(5, a + 8);
        rt_expect_trap();
        rt_run(mode, rt_sd, a + 16, 1);
        CHECK_TRAP(7, a + 16);
        rt_expect_trap();
        rt_run(mode, rt_call, a + 8, 0);
        CHECK_TRAP(1, a + 8);
        // TOR region: readable, not writable, at both ends.
        rt_expect_trap();
        uint64_t v = rt_run(mode, rt_ld, b, 0);
        CHECK_NO_TRAP();
        CHECK_EQ(v, 0xbbbb);
        rt_expect_trap();
        rt_run(mode, rt_ld, b + 8184, 0);
        CHECK_NO_TRAP();
        rt_expect_trap();
        rt_run(mode, rt_sd, b + 8184, 2);
        CHECK_TRAP(7, b + 8184);
        // Just past the TOR range, entry 3 allows writes.
        rt_expect_trap();
        rt_run(mode, rt_sd, b + 8192, 3);
        CHECK_NO_TRAP();
    }
    CHECK_EQ(region_a[2], 0);
    CHECK_EQ(region_b[1023], 0);
    CHECK_EQ(region_b[1024], 3);
    // M ignores unlocked entries.
    region_a[2] = 5;
    CHECK_EQ(region_a[2], 5);

    // A locked entry applies to M too (and stays until reset, so this comes last).
    CSR_SET(pmpcfg0, PMP_L);
    CHECK_EQ(CSR_READ(pmpcfg0) & 0xff, PMP_L | PMP_NAPOT);
    rt_expect_trap();
    uint64_t v = rt_ld(a);
    (void)v;
    CHECK_TRAP(5, a);
    rt_expect_trap();
    rt_sd(a + 8, 9);
    CHECK_TRAP(7, a + 8);
    // Locked: writes to the entry's address and configuration are ignored.
    CSR_WRITE(pmpaddr0, 0);
    CHECK_EQ(CSR_READ(pmpaddr0), napot(region_a, 4096));
    CSR_CLEAR(pmpcfg0, 0xff);
    CHECK_EQ(CSR_READ(pmpcfg0) & 0xff, PMP_L | PMP_NAPOT);
    return 0;
}
