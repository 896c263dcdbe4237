// SPDX-License-Identifier: MIT
// Prints the registers difftest_dump stored, one per line, on the riscv-virt/QEMU virt UART.
#include <stdint.h>

extern uint64_t regs[65];
extern uint8_t sandbox[4096];
extern uint64_t trap_area[3 + 64 * 2];

static void putc_uart(char c)
{
    *(volatile uint8_t *)0x10000000 = (uint8_t)c;
}

static void put_hex(uint64_t v)
{
    for (int i = 60; i >= 0; i -= 4)
        putc_uart("0123456789abcdef"[(v >> i) & 15]);
}

static void line(char kind, int n, uint64_t v)
{
    putc_uart(kind);
    putc_uart((char)('0' + n / 10));
    putc_uart((char)('0' + n % 10));
    putc_uart(' ');
    put_hex(v);
    putc_uart('\n');
}

void print_regs(void)
{
    for (int i = 1; i < 32; i++)
        line('x', i, regs[i]);
    for (int i = 0; i < 32; i++)
        line('f', i, regs[32 + i]);
    line('c', 1, regs[64]);             // fflags
    uint64_t h = 0xcbf29ce484222325ull; // FNV-1a of the memory the body wrote
    for (int i = 0; i < 4096; i++)
        h = (h ^ sandbox[i]) * 0x100000001b3ull;
    line('m', 0, h);
    // The traps the body took (gen.py --control): how many, and a hash of their causes and mtvals.
    uint64_t n = trap_area[2], t = 0xcbf29ce484222325ull;
    for (uint64_t i = 0; i < 2 * n; i++)
        t = (t ^ trap_area[3 + i]) * 0x100000001b3ull;
    line('t', (int)n, t);
}
