// SPDX-License-Identifier: MIT
// Harness of the differential test: run the generated body, store every register and fflags, print them.
    .text
    .globl _start
_start:
    li t0, 0x6000 // mstatus.FS = dirty
    csrs mstatus, t0
    la t0, difftest_trap
    csrw mtvec, t0
    la t0, trap_area
    csrw mscratch, t0
    j difftest_body

    // A trap in the body (gen.py --control): log mcause and mtval, resume after the 4-byte instruction.
    // x29-x31 are saved in trap_area, which mscratch points to.
    .align 2
difftest_trap:
    csrrw x31, mscratch, x31
    sd x30, 0(x31)
    sd x29, 8(x31)
    ld x30, 16(x31) // entries logged
    li x29, 64
    bgeu x30, x29, 1f
    slli x29, x30, 4
    add x29, x29, x31
    csrr x30, mcause
    sd x30, 24(x29)
    csrr x30, mtval
    sd x30, 32(x29)
    ld x30, 16(x31)
    addi x30, x30, 1
    sd x30, 16(x31)
1:  csrr x30, mepc
    addi x30, x30, 4
    csrw mepc, x30
    ld x30, 0(x31)
    ld x29, 8(x31)
    csrrw x31, mscratch, x31
    mret

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
    .globl trap_area
trap_area: // saved x30, x29; number of traps logged; then (mcause, mtval) pairs
    .space 24 + 64 * 16
    .globl regs
regs:
    .space 520
    .space 4096
stack_top:
