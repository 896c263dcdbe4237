// SPDX-License-Identifier: MIT
// Entry, trap handler and the hand-written pieces the gdb tests stop in: hart 0 runs main(); other harts
// put a hart-dependent value in a0 and spin. The program ends through HTIF's tohost with main's result.

    .section .text.init, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    la t0, trap_entry
    csrw mtvec, t0
    csrr t0, mhartid
    bnez t0, secondary
    la sp, _stack_top
    call main
    j exit

// Harts 1..: a0 = 0x5ec0 + mhartid, then count in a1 forever.
secondary:
    la sp, _trap_stack_top
    li a0, 0x5ec0
    add a0, a0, t0
    la t1, harts_up
    li t2, 1
    amoadd.d zero, t2, (t1)
    .globl hart_loop
hart_loop:
    addi a1, a1, 1
    j hart_loop

// exit(code): HTIF's exit command.
    .globl exit
exit:
    slli a0, a0, 1
    ori a0, a0, 1
    la t0, tohost
1:  sd a0, 0(t0)
    j 1b

// The M trap handler: resume after the (4-byte) instruction that trapped; t0 is a caller-saved scratch
// register of step_test's callers.
    .text
    .align 2
    .globl trap_entry
trap_entry:
    csrr t0, mepc
    addi t0, t0, 4
    csrw mepc, t0
    mret

// step_test(): a compressed instruction, then an ecall.
    .globl step_test, c_insn, ecall_insn
step_test:
    addi a1, zero, 1
    .option push
    .option rvc
c_insn:
    c.li a1, 5
    .option pop
ecall_insn:
    ecall
    ret

// store_word(p, v): *p = v; after_store is the instruction after the store.
    .globl store_word, after_store
store_word:
    sd a1, 0(a0)
after_store:
    ret

// enter_paged(): S mode under Sv39 at in_s_mode, which exits with 7. VA 0x40000000 maps the RAM at
// 0x80000000 through a PTE with A and D clear that the guest never uses (the debugger's walks must leave
// it so); the RAM is also mapped at its own address; 0xc0000000 is not mapped.
    .text
    .globl enter_paged, in_s_mode
enter_paged:
    li t0, -1
    csrw pmpaddr0, t0
    li t0, 0x1f
    csrw pmpcfg0, t0
    la t0, page_root
    srli t0, t0, 12
    li t1, 8
    slli t1, t1, 60
    or t0, t0, t1
    csrw satp, t0
    sfence.vma
    li t0, 0x1800
    csrc mstatus, t0
    li t0, 0x800
    csrs mstatus, t0
    la t0, in_s_mode
    csrw mepc, t0
    mret
in_s_mode:
    li a0, 7
    j exit

    .data
    .align 12
    .globl page_root
page_root:
    .dword 0
    .dword (0x80000 << 10) | 0x0f
    .dword (0x80000 << 10) | 0xcf
    .fill 509, 8, 0

    .section .tohost, "aw", @progbits
    .align 6
    .globl tohost
tohost: .dword 0
    .align 6
    .globl fromhost
fromhost: .dword 0
