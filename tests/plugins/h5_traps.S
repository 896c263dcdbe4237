// SPDX-License-Identifier: MIT
// Discontinuities (h5_plugin.c, mode=discon): an ecall at h5_ecall traps to h5_trap (exception: from the
// ecall, to the handler), the handler returns past it with mret (not a discontinuity), then a CLINT timer
// interrupts the hart spinning at h5_spin (interrupt: from h5_spin, to h5_trap).
    .section .text.init, "ax"
    .globl _start
_start:
    la t0, h5_trap
    csrw mtvec, t0
    .globl h5_ecall
h5_ecall:
    ecall
    li t1, 0x2004000      // CLINT mtimecmp, hart 0
    li t2, 0x200bff8      // CLINT mtime
    ld t3, 0(t2)
    addi t3, t3, 100
    sd t3, 0(t1)
    li t0, 0x80           // MTIE
    csrw mie, t0
    csrsi mstatus, 8      // MIE
    .globl h5_spin
h5_spin:
    j h5_spin
    .align 2
    .globl h5_trap
h5_trap:
    csrr t0, mcause
    bltz t0, interrupt
    csrr t0, mepc
    addi t0, t0, 4
    csrw mepc, t0
    mret
interrupt:
    li t1, 0x100000
    li t2, 0x5555
    sw t2, 0(t1)
    wfi
    j .
