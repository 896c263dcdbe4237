// SPDX-License-Identifier: MIT
// A plugin memory write over translated code (h5_plugin.c, mode=patch / patch-hw): the block holding
// h5_patched (li a0, 1) runs once, then at h5_patch the plugin rewrites that instruction as li a0, 7 and
// the block runs again, with no fence.i: the write must drop the old translation (as a guest store
// does). h5_report: a1 = 1 (first pass), a2 = 7 (second pass).
    .section .text.init, "ax"
    .globl _start
_start:
    la a4, h5_patched
    li s0, 0
    li a1, 0
    li a2, 0
    li a3, 0
    .globl h5_patched
h5_patched:
    li a0, 1
    beqz s0, first
    mv a2, a0
    j h5_report
first:
    mv a1, a0
    li s0, 1
    .globl h5_patch
h5_patch:
    nop
    j h5_patched
    .globl h5_report
h5_report:
    nop
    li t1, 0x100000
    li t2, 0x5555
    sw t2, 0(t1)
    wfi
    j .
