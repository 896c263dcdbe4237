// SPDX-License-Identifier: MIT
// H6 guest (with h6_mem.c): void h6_mem_region(uint8_t *buf) makes a known list of memory accesses, from
// h6_mem_begin to h6_mem_end (global symbols the probe plugin finds with qemu_plugin_insn_symbol). The
// list h6_check.py expects (offsets into h6_buf, sizes, values) follows this code line by line.
    .text
    .globl h6_mem_region, h6_mem_begin, h6_mem_end
h6_mem_region:
    mv a1, a0
h6_mem_begin:
    lb t0, 15(a1)             // 0x88, sign-extended
    lbu t0, 8(a1)             // 0xff
    lh t0, 14(a1)             // 0x8899, sign-extended
    lhu t0, 12(a1)            // 0xaabb
    lw t0, 12(a1)             // 0x8899aabb, sign-extended
    lwu t0, 4(a1)             // 0xfedcba98
    ld t0, 0(a1)              // 0xfedcba9876543210
    li t1, 0x5a
    sb t1, 16(a1)
    li t1, 0x1234
    sh t1, 18(a1)
    li t1, 0xdeadbeef
    sw t1, 20(a1)
    li t1, 0x0123456789abcdef
    sd t1, 24(a1)
    addi t2, a1, 32
    li t3, 3
    amoadd.d t4, t3, (t2)     // loads 5, stores 8
    addi t2, a1, 40
    lr.d t4, (t2)             // 7
    addi t4, t4, 2
    sc.d t5, t4, (t2)         // stores 9
    sd t5, 96(a1)             // the sc result (0)
    flw ft0, 48(a1)           // 0x3fc00000 (1.5f)
    fld ft1, 0(a1)            // 0xfedcba9876543210
    fsd ft1, 56(a1)
    c.ld a2, 8(a1)            // 0x8899aabbccddeeff
    li a3, 0x55aa55aa
    c.sw a3, 64(a1)
    ld t0, 1(a1)              // misaligned: 0xfffedcba98765432
    li t1, 0xbeef
    sh t1, 83(a1)             // misaligned store
    addi t2, a1, 88
    amoswap.w t4, t3, (t2)    // loads 0x80000001 (sign-extended into t4), stores 3
    // MMIO: the UART's scratch register and line status, the sifive-test finisher (a read, and a write
    // of 0, which it ignores).
    li a4, 0x10000000
    li t1, 0xa5
    sb t1, 7(a4)
    lbu t0, 7(a4)             // 0xa5
    lbu t0, 5(a4)             // LSR: transmitter empty (0x60)
    li a5, 0x100000
    lw t0, 0(a5)              // 0
    sw zero, 0(a5)
h6_mem_end:
    ret

    .data
    .balign 64
    .globl h6_buf
h6_buf:
    .quad 0xfedcba9876543210  // 0
    .quad 0x8899aabbccddeeff  // 8
    .quad 0                   // 16: sb, sh, sw
    .quad 0                   // 24: sd
    .quad 5                   // 32: amoadd.d
    .quad 7                   // 40: lr.d / sc.d
    .word 0x3fc00000, 0       // 48: flw
    .quad 0                   // 56: fsd
    .quad 0                   // 64: c.sw
    .quad 0                   // 72
    .quad 0                   // 80: misaligned sh at 83
    .quad 0x80000001          // 88: amoswap.w
    .quad 1                   // 96: the sc result
