// SPDX-License-Identifier: MIT
// H6 guest (with h6_count.c): uint64_t h6_measure(uint64_t n) returns the minstret delta over the region
// from h6_begin (inclusive) to h6_end (exclusive). The global symbols mark the two csrr minstret for the
// probe plugin (qemu_plugin_insn_symbol).
    .text
    .globl h6_measure, h6_begin, h6_end
h6_measure:
    addi sp, sp, -32
    sd ra, 0(sp)
    sd s0, 8(sp)
    sd s1, 16(sp)
    mv s1, a0
h6_begin:
    csrr s0, minstret
    mv a0, s1
    call h6_work
    // A few compressed instructions (the assembler keeps these 16 bits wide).
    c.li a1, 5
    c.addi a1, 3
    c.slli a1, 2
    c.mv a2, a1
    c.add a2, a1
    // A trap taken and returned from: the handler skips the ecall.
    li a7, 0x68360001
    ecall
    c.nop
h6_end:
    csrr a1, minstret
    sub a0, a1, s0
    ld ra, 0(sp)
    ld s0, 8(sp)
    ld s1, 16(sp)
    addi sp, sp, 32
    ret
