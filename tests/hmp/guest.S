# SPDX-License-Identifier: MIT
# Bare-metal guest for the monitor tests on riscv-virt: prints "hmp ready", then echoes every byte the
# UART receives, and keeps known values at `magic` for x/xp to read.
    .equ UART, 0x10000000
    .equ LSR, 5
    .equ LSR_DR, 0x01
    .equ LSR_THRE, 0x20

    .section .text.init
    .globl _start
_start:
    li s0, UART
    la s1, ready
1:  lbu a0, 0(s1)
    beqz a0, loop
    call putc
    addi s1, s1, 1
    j 1b

    .globl loop
loop:
    lbu t0, LSR(s0)
    andi t0, t0, LSR_DR
    beqz t0, loop
    lbu a0, 0(s0)
    call putc
    j loop

# putc(a0): wait for room in the transmitter, then send a0. Clobbers t0.
    .globl putc
putc:
    lbu t0, LSR(s0)
    andi t0, t0, LSR_THRE
    beqz t0, putc
    sb a0, 0(s0)
    ret
    .globl putc_end
putc_end:

    .section .rodata
ready: .string "hmp ready\n"

    .data
    .balign 8
    .globl magic
magic:
    .dword 0x0123456789abcdef
    .dword 0xfedcba9876543210
    .dword 0xffffffffffffffff
    .ascii "keel\n'\\\0"
