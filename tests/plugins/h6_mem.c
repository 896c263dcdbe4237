// SPDX-License-Identifier: MIT
// H6 guest: a known list of memory accesses (h6_mem_region.S, between the symbols h6_mem_begin and
// h6_mem_end) for h6_probe.c (mode=mem) to log. Prints "h6 buf 0x.." (the data the region works on)
// before the region, and checks afterwards what the region's loads and stores did in the guest's view.
#include "rt.h"

extern uint8_t h6_buf[];
void h6_mem_region(uint8_t *buf);

static uint64_t rd64(unsigned off)
{
    uint64_t v;
    memcpy(&v, h6_buf + off, sizeof(v));
    return v;
}

int main(void)
{
    rt_printf("h6 buf 0x%lx\n", (uint64_t)(uintptr_t)h6_buf);
    h6_mem_region(h6_buf);
    // The guest's view of the stores (little-endian).
    CHECK_EQ(rd64(16), 0xdeadbeef12340000ull | 0x5a);
    CHECK_EQ(rd64(24), 0x0123456789abcdefull);
    CHECK_EQ(rd64(32), 8);                     // amoadd.d 5 + 3
    CHECK_EQ(rd64(40), 9);                     // lr.d 7, sc.d 9
    CHECK_EQ(rd64(56), 0xfedcba9876543210ull); // fld + fsd
    CHECK_EQ(rd64(64), 0x55aa55aa);            // c.sw
    CHECK_EQ(rd64(80), 0xbeef000000ull);       // misaligned sh at offset 83
    CHECK_EQ(rd64(88), 3);                     // amoswap.w
    CHECK_EQ(rd64(96), 0);                     // the sc.d result: success
    rt_printf("h6 mem done\n");
    return 0;
}
