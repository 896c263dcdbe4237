// SPDX-License-Identifier: MIT
// Benchmark entry: stack, FP on, bss cleared, main(), then power off through sifive-test with main's status.
    .section .text.init, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    li t0, 1 << 13 // mstatus.FS = Initial
    csrw mstatus, t0
    la sp, _stack_top
    la t0, __bss_start
    la t1, __bss_end
1:  bgeu t0, t1, 2f
    sd zero, 0(t0)
    addi t0, t0, 8
    j 1b
2:  call main
    // Nonzero: 0x3333 | code << 16 (fail with that status); zero: 0x5555 (pass).
    li t0, 0x100000
    li t1, 0x5555
    beqz a0, 3f
    slli a0, a0, 16
    li t1, 0x3333
    or t1, t1, a0
3:  sw t1, 0(t0)
4:  j 4b
