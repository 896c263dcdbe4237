// SPDX-License-Identifier: MIT
// qemu_plugin_set_pc (h5_plugin.c, mode=setpc): the plugin skips the instruction at h5_skip (after writing
// a2 = 0x1234) and sends the hart from h5_jump to where a4 points; h5_report shows the registers:
// a0 = 2 (the skipped addi did not run), a1 = 3 (minstret counted csrr, li and addi: not the skipped one),
// a2 = 0x1234 (the callback's register write stayed), a3 = 0x600d (the handler ran, not `fail`).
// Without the plugin: a0 = 3, a1 = 4, a2 = 0, a3 = 0xbad.
    .section .text.init, "ax"
    .globl _start
_start:
    li a2, 0
    li a3, 0
    csrr s0, minstret
    li a0, 0
    .globl h5_skip
h5_skip:
    addi a0, a0, 1
    addi a0, a0, 2
    csrr s1, minstret
    sub a1, s1, s0
    la a4, h5_handler
    .globl h5_jump
h5_jump:
    j fail
fail:
    li a3, 0xbad
    j h5_report
    .globl h5_handler
h5_handler:
    li a3, 0x600d
    .globl h5_report
h5_report:
    nop
    li t1, 0x100000       // sifive-test: pass
    li t2, 0x5555
    sw t2, 0(t1)
    wfi
    j .
