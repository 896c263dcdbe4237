// SPDX-License-Identifier: MIT
// Time control (h5_plugin.c, mode=time): the plugin holds the virtual clock and moves it forward by 100 ns
// (one 10 MHz mtime tick) before every instruction, so the guest's `time` is its own instruction count.
// a0: time at the first csrr (7: the reset vector's 6 instructions, then this one); a1: time passed over
// the 22 instructions between the two reads; then a CLINT timer 20 ticks ahead fires while the hart spins
// (update_ns runs the due timer): a2 = mcause (machine timer interrupt), a3 = ticks past mtimecmp when the
// handler reads time.
    .section .text.init, "ax"
    .globl _start
_start:
    csrr a0, time
    li t0, 10
1:  addi t0, t0, -1
    bnez t0, 1b
    csrr a1, time
    sub a1, a1, a0
    la t0, trap
    csrw mtvec, t0
    li t1, 0x2004000      // CLINT mtimecmp, hart 0
    li t2, 0x200bff8      // CLINT mtime
    ld t3, 0(t2)
    addi t3, t3, 20
    sd t3, 0(t1)
    li t0, 0x80           // MTIE
    csrw mie, t0
    csrsi mstatus, 8      // MIE
spin:
    j spin
    .align 2
trap:
    csrr a3, time
    sub a3, a3, t3
    csrr a2, mcause
    .globl h5_report
h5_report:
    nop
    li t1, 0x100000
    li t2, 0x5555
    sw t2, 0(t1)
    wfi
    j .
