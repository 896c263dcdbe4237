// SPDX-License-Identifier: MIT
// Every RV64C instruction at least once, written with explicit c.* mnemonics so each is really compressed.
#include "rt.h"
#include "asm.h"

    .option rvc
    .text
    .globl main
main:
    addi sp, sp, -128
    sd ra, 120(sp)
    sd s0, 112(sp)
    sd s1, 104(sp)

    // Constants and immediates.
    c.li a0, -32
    CHECK_EQ_I a0, -32, 1
    c.li a0, 31
    c.addi a0, -1
    CHECK_EQ_I a0, 30, 2
    c.lui a1, 0xfffff
    CHECK_EQ_I a1, 0xfffffffffffff000, 3
    c.lui a1, 0x1f
    CHECK_EQ_I a1, 0x1f000, 4
    li a0, 0x7fffffff
    c.addiw a0, 1
    CHECK_EQ_I a0, 0xffffffff80000000, 5
    li a0, 0x100000005
    c.addiw a0, 0 // sext.w
    CHECK_EQ_I a0, 5, 6
    c.nop

    // Stack-pointer adjustments.
    mv t0, sp
    c.addi16sp sp, -64
    sub t1, t0, sp
    CHECK_EQ_I t1, 64, 7
    c.addi16sp sp, 64
    CHECK_EQ_R sp, t0, 8
    c.addi4spn s0, sp, 16
    addi t1, sp, 16
    CHECK_EQ_R s0, t1, 9

    // Shifts and logic.
    li a0, 1
    c.slli a0, 63
    CHECK_EQ_I a0, 0x8000000000000000, 10
    c.srai a0, 3
    CHECK_EQ_I a0, 0xf000000000000000, 11
    c.srli a0, 60
    CHECK_EQ_I a0, 0xf, 12
    li s1, -1
    c.andi s1, -16
    CHECK_EQ_I s1, -16, 13
    c.andi s1, 0x1f
    CHECK_EQ_I s1, 0x10, 14
    li a2, 0x0ff0
    li a3, 0x00ff
    c.mv a4, a2
    c.and a4, a3
    CHECK_EQ_I a4, 0xf0, 15
    c.mv a4, a2
    c.or a4, a3
    CHECK_EQ_I a4, 0xfff, 16
    c.mv a4, a2
    c.xor a4, a3
    CHECK_EQ_I a4, 0xf0f, 17
    c.mv a4, a2
    c.sub a4, a3
    CHECK_EQ_I a4, 0xef1, 18
    c.mv a4, a2
    c.add a4, a3
    CHECK_EQ_I a4, 0x10ef, 19
    li a4, 0x80000000
    li a5, 1
    c.subw a4, a5
    CHECK_EQ_I a4, 0x7fffffff, 20
    c.addw a4, a5
    CHECK_EQ_I a4, 0xffffffff80000000, 21

    // Loads and stores through a register (x8-x15) and through sp.
    c.addi4spn s0, sp, 32
    li a0, 0x8877665544332211
    c.sd a0, 8(s0)
    c.ld a1, 8(s0)
    CHECK_EQ_R a1, a0, 22
    li a0, 0xfedcba98
    c.sw a0, 16(s0)
    c.lw a1, 16(s0)
    CHECK_EQ_I a1, 0xfffffffffedcba98, 23
    c.sdsp a0, 0(sp)
    c.ldsp a3, 0(sp)
    CHECK_EQ_R a3, a0, 24
    li a0, 0x87654321
    c.swsp a0, 8(sp)
    c.lwsp a3, 8(sp)
    CHECK_EQ_I a3, 0xffffffff87654321, 25
    ld a3, 8(sp)
    srli a3, a3, 32
    li t0, 0x12345678
    c.swsp t0, 12(sp)
    c.lwsp a3, 12(sp)
    CHECK_EQ_I a3, 0x12345678, 26
    li a0, 0x400921fb54442d18 // pi
    fmv.d.x fa0, a0
    c.fsd fa0, 24(s0)
    c.fld fa1, 24(s0)
    fmv.x.d a1, fa1
    CHECK_EQ_R a1, a0, 27
    c.fsdsp fa0, 16(sp)
    c.fldsp fa2, 16(sp)
    fmv.x.d a1, fa2
    CHECK_EQ_R a1, a0, 28

    // Control flow.
    li a0, 0
    c.j 1f
    li a0, 99
1:  CHECK_EQ_I a0, 0, 29
    li s1, 0
    c.beqz s1, 2f
    li a0, 1
2:  c.bnez s1, 3f // not taken
    li a0, 2
3:  CHECK_EQ_I a0, 2, 30
    li s1, 5
    c.bnez s1, 4f
    li a0, 3
4:  c.beqz s1, 5f // not taken
    li a0, 4
5:  CHECK_EQ_I a0, 4, 31
    la t0, rvc_callee
    la s1, 6f
    c.jalr t0 // ra = 6f
6:  CHECK_EQ_R a0, s1, 32
    la t0, 7f
    li a0, 1
    c.jr t0
    li a0, 2
7:  CHECK_EQ_I a0, 1, 33

    // c.ebreak: breakpoint trap (cause 3) at its address; the handler steps over its 2 bytes.
    call rt_expect_trap
    la s1, 8f
8:  c.ebreak
    call rt_expect_done
    la t0, rt_mtrap
    ld a0, 0(t0)
    CHECK_EQ_I a0, 3, 34
    ld a0, 8(t0)
    CHECK_EQ_R a0, s1, 35
    ld a0, 32(t0)
    CHECK_EQ_I a0, 1, 36

    li a0, 0
    ld s1, 104(sp)
    ld s0, 112(sp)
    ld ra, 120(sp)
    addi sp, sp, 128
    ret

// Returns its own return address, so the caller can check c.jalr's link value.
rvc_callee:
    c.mv a0, ra
    c.jr ra
