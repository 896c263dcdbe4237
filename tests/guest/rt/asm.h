// SPDX-License-Identifier: MIT
// Checks for assembly tests: compare a register and, on mismatch, report through rt_fail (rt.c).
#ifndef KEEL_GUEST_ASM_H
#define KEEL_GUEST_ASM_H

// Assembler macros, not C: kept out of clang-format.
// clang-format off

// CHECK_EQ_R got, want, id: fail with exit code `id` unless the two registers are equal. Clobbers a0-a2
// only on failure; `got` and `want` must not be a1 or a2 (they are moved there for the report).
.macro CHECK_EQ_R got, want, id
    beq \got, \want, 1f
    mv a1, \got
    mv a2, \want
    li a0, \id
    j rt_fail
1:
.endm

// CHECK_EQ_I got, imm, id (clobbers t6; `got` must not be t6).
.macro CHECK_EQ_I got, imm, id
    li t6, \imm
    CHECK_EQ_R \got, t6, \id
.endm
// clang-format on

#endif
