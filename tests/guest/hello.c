// SPDX-License-Identifier: MIT
// Bare-metal hello for riscv-virt: a line on the ns16550a UART, then power off through sifive-test.
#include "rt.h"

int main(void)
{
    rt_puts("Hello from keel\n");
    return 0;
}
