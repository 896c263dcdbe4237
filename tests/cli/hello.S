# SPDX-License-Identifier: MIT
# The README's bare-metal "hello": print over the ns16550a UART of riscv-virt, then power off through sifive-test.
    .section .text.init
    .globl _start
_start:
    li t0, 0x10000000
    la t1, msg
1:  lbu t2, 0(t1)
    beqz t2, 2f
    sb t2, 0(t0)
    addi t1, t1, 1
    j 1b
2:  li t0, 0x100000
    li t1, 0x5555
    sw t1, 0(t0)
3:  j 3b
    .section .rodata
msg: .string "hello from keel\n"
