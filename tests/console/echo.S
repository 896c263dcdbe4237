# SPDX-License-Identifier: MIT
# Bare-metal UART echo for riscv-virt's ns16550a: prints "echo ready", then echoes every byte it reads,
# control bytes as ^X (0x01 -> "^A") so a test sees exactly what reached the guest.
    .equ UART, 0x10000000
    .equ RBR, 0
    .equ THR, 0
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

loop:
    lbu t0, LSR(s0)
    andi t0, t0, LSR_DR
    beqz t0, loop
    lbu s1, RBR(s0)
    li t0, 0x20
    bgeu s1, t0, plain
    li t0, '\r'
    beq s1, t0, plain
    li t0, '\n'
    beq s1, t0, plain
    li a0, '^'
    call putc
    addi s1, s1, '@'
plain:
    mv a0, s1
    call putc
    j loop

# putc(a0): wait for room in the transmitter, then send a0. Clobbers t0.
putc:
    lbu t0, LSR(s0)
    andi t0, t0, LSR_THRE
    beqz t0, putc
    sb a0, THR(s0)
    ret

    .section .rodata
ready: .string "echo ready\n"
