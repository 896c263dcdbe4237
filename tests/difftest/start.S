// SPDX-License-Identifier: MIT
// Harness of the differential test: run the generated body, store every register and fflags, print them.
    .text
    .globl _start
_start:
    li t0, 0x6000 // mstatus.FS = dirty
    csrs mstatus, t0
    j difftest_body

    .globl difftest_dump
difftest_dump:
    csrw mscratch, x31
    la x31, regs
    .irp n, 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30
    sd x\n, (\n * 8)(x31)
    .endr
    csrr x1, mscratch
    sd x1, 248(x31)
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    fsd f\n, (256 + \n * 8)(x31)
    .endr
    csrr x1, fflags
    sd x1, 512(x31)
    la sp, stack_top
    call print_regs
    li a1, 0x100000 // sifive-test: pass
    li a2, 0x5555
    sw a2, 0(a1)
1:  j 1b

    .data
    .align 12
    .globl sandbox
sandbox: // the body's loads and stores land here: deterministic contents, hashed at the end
    .set v, 0x12345678
    .rept 1024
    .set v, (v * 1103515245 + 12345) & 0xffffffff
    .word v
    .endr
    .globl sandbox_mid
    .set sandbox_mid, sandbox + 2048

    .bss
    .align 4
    .globl regs
regs:
    .space 520
    .space 4096
stack_top:
