// SPDX-License-Identifier: MIT
// Three fence.i, each dropping every translated block of the hart: h5_plugin.c (mode=flush) counts its
// flush callbacks: 3.
    .section .text.init, "ax"
    .globl _start
_start:
    li t0, 3
1:  fence.i
    addi t0, t0, -1
    bnez t0, 1b
    li t1, 0x100000
    li t2, 0x5555
    sw t2, 0(t1)
    wfi
    j .
