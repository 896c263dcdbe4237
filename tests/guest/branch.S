// SPDX-License-Identifier: MIT
// Conditional branches (every condition, taken and not taken, signed/unsigned edges), jal and jalr links.
#include "rt.h"
#include "asm.h"

// BR insn, a, b, taken(0/1), id: run the branch on two values and check whether it was taken.
.macro BR insn, a, b, taken, id
    li t0, \a
    li t1, \b
    li a0, 1
    \insn t0, t1, 1f
    li a0, 0
1:  CHECK_EQ_I a0, \taken, \id
.endm

    .option norvc
    .text
    .globl main
main:
    addi sp, sp, -16
    sd ra, 8(sp)
    sd s1, 0(sp)

    BR beq, 5, 5, 1, 1
    BR beq, 5, -5, 0, 2
    BR bne, 5, -5, 1, 3
    BR bne, -1, -1, 0, 4
    BR blt, -1, 0, 1, 5
    BR blt, 0, -1, 0, 6
    BR blt, 3, 3, 0, 7
    BR blt, 0x8000000000000000, 0x7fffffffffffffff, 1, 8
    BR bge, 0, -1, 1, 9
    BR bge, 3, 3, 1, 10
    BR bge, -1, 0, 0, 11
    BR bltu, 0, -1, 1, 12
    BR bltu, -1, 0, 0, 13
    BR bltu, 7, 7, 0, 14
    BR bgeu, -1, 0, 1, 15
    BR bgeu, 7, 7, 1, 16
    BR bgeu, 0, -1, 0, 17
    BR bgeu, 0x7fffffffffffffff, 0x8000000000000000, 0, 18

    // A backward branch.
    li a0, 0
    li t0, 10
2:  addi a0, a0, 3
    addi t0, t0, -1
    bnez t0, 2b
    CHECK_EQ_I a0, 30, 19

    // jal: link is the address of the next instruction; rd = x0 links nothing.
    jal a0, 3f
3:  la s1, 3b
    CHECK_EQ_R a0, s1, 20
    li a0, 7
    jal zero, 4f
    li a0, 8
4:  CHECK_EQ_I a0, 7, 21

    // jalr: target (rs1 + imm) with bit 0 cleared; link = pc + 4 even when rd == rs1.
    la t0, 5f - 7
    jalr a0, 8(t0) // rs1 + 8 = 5f + 1: bit 0 dropped
    li a0, 0
5:  la s1, 5b - 4
    CHECK_EQ_R a0, s1, 22
    la a1, 6f
    jalr a1, 0(a1)
6:  la s1, 6b
    CHECK_EQ_R a1, s1, 23
    li a0, 0
    la t0, 7f + 4
    jalr zero, -4(t0)
    li a0, 9
7:  CHECK_EQ_I a0, 0, 24
    // auipc + jalr long form (call) returns to the following instruction.
    call branch_leaf
8:  la s1, 8b
    CHECK_EQ_R a0, s1, 25

    li a0, 0
    ld s1, 0(sp)
    ld ra, 8(sp)
    addi sp, sp, 16
    ret

branch_leaf:
    mv a0, ra
    ret
