// SPDX-License-Identifier: MIT
// Guest runtime entry and trap glue: stack, bss, M trap vector, rt_run mode switches, S trap vector.
#include "rt.h"

#define FRAME_SIZE (36 * 8)
#define F_MEPC (32 * 8)
#define F_MCAUSE (33 * 8)
#define F_MTVAL (34 * 8)
#define F_MSTATUS (35 * 8)

    .section .text.init, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    csrw mie, zero
    // FS = Initial so FP instructions are legal in every mode; interrupts off.
    li t0, MSTATUS_FS
    csrw mstatus, t0
    csrw fcsr, zero
    la sp, _stack_top
    la t0, _trap_stack_top
    csrw mscratch, t0
    la t0, rt_trap_entry
    csrw mtvec, t0
    la t0, __bss_start
    la t1, __bss_end
1:  bgeu t0, t1, 2f
    sd zero, 0(t0)
    addi t0, t0, 8
    j 1b
    // S and U have no memory access while no PMP entry matches (spec), so allow everything first, as
    // firmware does. (QEMU 7.2 even makes an mret to S/U illegal while no PMP entry is programmed.)
2:  call rt_pmp_allow_all
    call main
    call rt_exit

// The M-mode trap vector (direct mode; also entry 0 of a vectored table). All registers go to a frame on
// the trap stack (mscratch holds its top) so the C handler can inspect and edit them.
    .text
    .align 2
    .globl rt_trap_entry
rt_trap_entry:
    csrrw sp, mscratch, sp
    addi sp, sp, -FRAME_SIZE
    .irp r, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    sd x\r, (\r * 8)(sp)
    .endr
    csrr t0, mscratch
    sd t0, (2 * 8)(sp)
    addi t0, sp, FRAME_SIZE
    csrw mscratch, t0
    csrr t0, mepc
    sd t0, F_MEPC(sp)
    csrr t0, mcause
    sd t0, F_MCAUSE(sp)
    csrr t0, mtval
    sd t0, F_MTVAL(sp)
    csrr t0, mstatus
    sd t0, F_MSTATUS(sp)
    mv a0, sp
    call rt_trap
    ld t0, F_MEPC(sp)
    csrw mepc, t0
    ld t0, F_MSTATUS(sp)
    csrw mstatus, t0
    .irp r, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    ld x\r, (\r * 8)(sp)
    .endr
    ld sp, (2 * 8)(sp)
    mret

// uint64_t rt_run(int mode, void *fn, uint64_t a0, uint64_t a1)
    .globl rt_run
rt_run:
    la t0, rt_jmpbuf
    sd ra, 0(t0)
    sd sp, 8(t0)
    .irp r, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
    sd s\r, (16 + \r * 8)(t0)
    .endr
    li t1, MSTATUS_MPP
    csrc mstatus, t1
    slli t1, a0, 11
    csrs mstatus, t1
    csrw mepc, a1
    la ra, rt_lower_exit
    la sp, _lower_stack_top
    mv a0, a2
    mv a1, a3
    mret

// Where functions run by rt_run return: the trap handler sees this ecall and resumes at rt_run_resume.
    .globl rt_lower_exit
rt_lower_exit:
    li a7, RT_ECALL_RETURN
    ecall
1:  j 1b

    .globl rt_run_resume
rt_run_resume:
    la t0, rt_jmpbuf
    ld ra, 0(t0)
    ld sp, 8(t0)
    .irp r, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
    ld s\r, (16 + \r * 8)(t0)
    .endr
    ret

    .globl rt_ld, rt_lw, rt_sd, rt_call
rt_ld:
    ld a0, 0(a0)
    ret
rt_lw:
    lw a0, 0(a0)
    ret
rt_sd:
    sd a1, 0(a0)
    li a0, 0
    ret
rt_call:
    addi sp, sp, -16
    sd ra, 0(sp)
    jalr a0
    ld ra, 0(sp)
    addi sp, sp, 16
    ret

// S-mode trap vector. Uses sscratch to free two registers; S-mode code it serves runs on a valid stack.
    .align 2
    .globl rt_s_trap_entry
rt_s_trap_entry:
    csrw sscratch, t0
    la t0, rt_strap
    sd t1, 40(t0) // spill t1 into the record's padding slot (see rt.c)
    // A delegated "return to rt_run" ecall from U: pass it on to M with an ecall from S.
    csrr t1, scause
    li t0, 8
    bne t1, t0, 1f
    li t0, RT_ECALL_RETURN
    bne a7, t0, 1f
    ecall
1:  la t0, rt_strap
    sd t1, 0(t0)
    csrr t1, sepc
    sd t1, 8(t0)
    csrr t1, stval
    sd t1, 16(t0)
    csrr t1, sstatus
    srli t1, t1, 8
    andi t1, t1, 1
    sd t1, 24(t0)
    ld t1, 32(t0)
    addi t1, t1, 1
    sd t1, 32(t0)
    // Resume: interrupts where they struck (clearing SSIP, which only software clears), fetch faults
    // (0, 1, 12) at ra, other exceptions after the instruction.
    csrr t1, scause
    bgez t1, 5f
    li t0, 2
    csrc sip, t0
    j 4f
5:
    li t0, 1
    bleu t1, t0, 3f
    li t0, 12
    beq t1, t0, 3f
    csrr t0, sepc
    lhu t1, 0(t0)
    andi t1, t1, 3
    xori t1, t1, 3 // zero for a 32-bit instruction
    addi t0, t0, 2
    bnez t1, 2f
    addi t0, t0, 2
2:  csrw sepc, t0
    j 4f
3:  csrw sepc, ra
4:  la t0, rt_strap
    ld t1, 40(t0)
    csrr t0, sscratch
    sret
