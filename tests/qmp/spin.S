# SPDX-License-Identifier: MIT
# A guest for the QMP tests on riscv-virt: prints "spin ready", then counts forever in `counter` and prints a
# '.' every 2^20 counts, so a test sees it run, stop and resume. `pattern` holds 256 known bytes for
# memsave/pmemsave. With -bios none the MMU is off, so virtual and physical addresses are the same.
    .equ UART, 0x10000000
    .equ THR, 0
    .equ LSR, 5
    .equ LSR_THRE, 0x20

    .section .text.init
    .globl _start
_start:
    li s0, UART
    la s1, ready
1:  lbu a0, 0(s1)
    beqz a0, spin
    call putc
    addi s1, s1, 1
    j 1b

spin:
    la s2, counter
    li s3, 0xfffff
2:  ld t1, 0(s2)
    addi t1, t1, 1
    sd t1, 0(s2)
    and t2, t1, s3
    bnez t2, 2b
    li a0, '.'
    call putc
    j 2b

# putc(a0): wait for room in the transmitter, then send a0. Clobbers t0.
putc:
    lbu t0, LSR(s0)
    andi t0, t0, LSR_THRE
    beqz t0, putc
    sb a0, THR(s0)
    ret

ready: .string "spin ready\n"

# Data on pages of their own (0x80001000, 0x80002000): guest stores never touch a page holding code.
    .balign 4096
    .globl pattern
pattern:
    .set i, 0
    .rept 256
    .byte (i * 7 + 3) & 0xff
    .set i, i + 1
    .endr

    .balign 4096
    .globl counter
counter:
    .dword 0
