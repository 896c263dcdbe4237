// SPDX-License-Identifier: MIT
// H6 guest (with h6_regs.c): known register values at marker instructions for h6_probe.c (mode=regs).
//
// void h6_regs(struct h6_view *v): sets mscratch, mepc, fcsr and mstatus.MPIE, then f0..f31 to
// 0x4000000000000000 + n * 0x100000001 and x1..x31 to n * 0x0101010101010101 (h6_check.py knows both
// formulas), and reaches h6_regs_mark, where the plugin reads every register. The marker instruction is
// csrr minstret, which reads what the plugin's minstret must be; the guest's own view of the CSRs goes to
// *v afterwards.
//
// void h6_write(uint64_t *out): a1 = 0 and fa1 = 0 before h6_write_mark, where the plugin writes a1 and
// fa1; out[0..2] get a1, a copy made by the marker instruction and fa1's bits. Then a4 = &h6_target
// (8 zero bytes) before h6_memw_mark, where the plugin writes 8 bytes there; the marker instruction
// loads them into out[3].
    .text
    .globl h6_regs, h6_regs_mark, h6_write, h6_write_mark, h6_memw_mark
h6_regs:
    addi sp, sp, -224
    sd ra, 0(sp)
    sd gp, 8(sp)
    sd tp, 16(sp)
    .irp r, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
    sd s\r, (24 + \r * 8)(sp)
    fsd fs\r, (120 + \r * 8)(sp)
    .endr
    la t0, h6_saved
    sd sp, 0(t0)
    sd a0, 8(t0)
    li t0, 0x6836000000001230
    csrw mscratch, t0
    li t0, 0x80001234
    csrw mepc, t0
    li t0, 0x65               // frm 3 (rup), fflags NV | OF
    csrw fcsr, t0
    li t0, 0x80               // MPIE
    csrs mstatus, t0
    .irp r, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    li t0, 0x4000000000000000 + \r * 0x100000001
    fmv.d.x f\r, t0
    .endr
    .irp r, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    li x\r, \r * 0x0101010101010101
    .endr
h6_regs_mark:
    csrr t0, minstret
    la t1, h6_saved
    ld sp, 0(t1)
    ld a0, 8(t1)
    sd t0, 0(a0)
    csrr t0, mstatus
    sd t0, 8(a0)
    csrr t0, mepc
    sd t0, 16(a0)
    csrr t0, mscratch
    sd t0, 24(a0)
    csrr t0, mtvec
    sd t0, 32(a0)
    csrr t0, misa
    sd t0, 40(a0)
    csrr t0, mhartid
    sd t0, 48(a0)
    csrr t0, fcsr
    sd t0, 56(a0)
    // Back to the runtime's values: its trap stack, no pending mret state, clear FP flags.
    la t0, _trap_stack_top
    csrw mscratch, t0
    csrw fcsr, zero
    ld ra, 0(sp)
    ld gp, 8(sp)
    ld tp, 16(sp)
    .irp r, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
    ld s\r, (24 + \r * 8)(sp)
    fld fs\r, (120 + \r * 8)(sp)
    .endr
    addi sp, sp, 224
    ret

h6_write:
    li a1, 0
    fmv.d.x fa1, zero
h6_write_mark:
    mv a2, a1
    fmv.x.d a3, fa1
    sd a1, 0(a0)
    sd a2, 8(a0)
    sd a3, 16(a0)
    la a4, h6_target
h6_memw_mark:
    ld a5, 0(a4)
    sd a5, 24(a0)
    ret

    .data
    .balign 8
h6_saved:
    .quad 0, 0
h6_target:
    .quad 0
