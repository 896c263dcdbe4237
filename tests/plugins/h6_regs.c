// SPDX-License-Identifier: MIT
// H6 guest: registers at marker instructions (h6_regs_region.S) for h6_probe.c (mode=regs). Prints the
// guest's own view: "h6 guest NAME 0x.." for the pc of h6_regs_mark and the CSRs there, and
// "h6 guest write a1=0x.. a2=0x.. fa1=0x.. mem=0x.." for what it saw after the plugin's writes.
#include "rt.h"

void h6_regs(uint64_t *view);
void h6_write(uint64_t *out);
extern char h6_regs_mark[];

int main(void)
{
    static const char *const names[] = {"minstret", "mstatus", "mepc",    "mscratch",
                                        "mtvec",    "misa",    "mhartid", "fcsr"};
    uint64_t view[8], out[4];
    h6_regs(view);
    rt_printf("h6 guest pc 0x%lx\n", (uint64_t)(uintptr_t)h6_regs_mark);
    for (unsigned i = 0; i < 8; i++)
        rt_printf("h6 guest %s 0x%lx\n", names[i], view[i]);
    h6_write(out);
    rt_printf("h6 guest write a1=0x%lx a2=0x%lx fa1=0x%lx mem=0x%lx\n", out[0], out[1], out[2], out[3]);
    return 0;
}
