// SPDX-License-Identifier: MIT
// Traps from U, S and M (ecall causes, mepc, mtval, MPP), delegation to S via medeleg/mideleg,
// illegal instructions with mtval = the bits, instruction access faults on unmapped physical memory.
#include "rt.h"

// ecall with a7 = 0 (not rt_run's return); returns the ecall's own address.
static uint64_t do_ecall(void)
{
    uint64_t at;
    __asm__ volatile("li a7, 0\n 1: ecall\n la %0, 1b" : "=r"(at)::"a7");
    return at;
}
static uint64_t do_ebreak(void)
{
    uint64_t at;
    __asm__ volatile("1: ebreak\n la %0, 1b" : "=r"(at));
    return at;
}
// An undefined opcode (custom-3 major opcode, nothing implemented there); returns its address.
#define UNDEF_INSN 0x1234507bu
static uint64_t do_undef(void)
{
    uint64_t at;
    __asm__ volatile("1: .word 0x1234507b\n la %0, 1b" : "=r"(at));
    return at;
}
// Sets SIE and SSIE in S and spins until the delegated software interrupt has been taken.
static uint64_t s_wait_ssi(void)
{
    CSR_SET(sie, 2);
    CSR_SET(sstatus, MSTATUS_SIE);
    for (int i = 0; i < 1000000 && rt_strap.count == 0; i++) {
    }
    CSR_CLEAR(sstatus, MSTATUS_SIE);
    return rt_strap.count;
}

static void ecalls(void)
{
    static const struct {
        int mode;
        uint64_t cause;
    } m[] = {{MODE_U, 8}, {MODE_S, 9}, {MODE_M, 11}};
    for (int i = 0; i < 3; i++) {
        rt_expect_trap();
        uint64_t at = rt_run(m[i].mode, do_ecall, 0, 0);
        rt_expect_done();
        CHECK_EQ(rt_mtrap.count, 1);
        CHECK_EQ(rt_mtrap.cause, m[i].cause);
        CHECK_EQ(rt_mtrap.epc, at);
        CHECK_EQ(rt_mtrap.tval, 0);
        CHECK_EQ(rt_mtrap.mode, (uint64_t)m[i].mode); // mstatus.MPP
    }
    rt_expect_trap();
    uint64_t at = rt_run(MODE_U, do_ebreak, 0, 0);
    rt_expect_done();
    CHECK_EQ(rt_mtrap.cause, 3);
    CHECK_EQ(rt_mtrap.epc, at);
}

static void illegal(void)
{
    // An undefined opcode traps with cause 2 and the instruction bits in mtval, from any mode.
    for (int mode = 0; mode <= 3; mode += mode == 1 ? 2 : 1) {
        rt_expect_trap();
        uint64_t at = rt_run(mode, do_undef, 0, 0);
        rt_expect_done();
        CHECK_EQ(rt_mtrap.count, 1);
        CHECK_EQ(rt_mtrap.cause, 2);
        CHECK_EQ(rt_mtrap.epc, at);
        CHECK_EQ(rt_mtrap.tval, UNDEF_INSN);
    }
    // Jumping to unmapped physical memory: instruction access fault, mepc = mtval = the address.
    const uint64_t hole = 0x40000000;
    for (int mode = 0; mode <= 3; mode += mode == 1 ? 2 : 1) {
        rt_expect_trap();
        rt_run(mode, rt_call, hole, 0);
        rt_expect_done();
        CHECK_EQ(rt_mtrap.count, 1);
        CHECK_EQ(rt_mtrap.cause, 1);
        CHECK_EQ(rt_mtrap.epc, hole);
        CHECK_EQ(rt_mtrap.tval, hole);
    }
    // A load from it: load access fault (5).
    rt_expect_trap();
    rt_run(MODE_S, rt_ld, hole + 8, 0);
    CHECK_TRAP(5, hole + 8);
}

static void delegation(void)
{
    CSR_WRITE(stvec, (uint64_t)rt_s_trap_entry);
    CSR_WRITE(medeleg, (1u << 2) | (1u << 3) | (1u << 8));
    CHECK_EQ(CSR_READ(medeleg) & 0x10c, 0x10c);
    // Delegated exceptions from U and S go to stvec with scause/sepc/stval; M sees nothing.
    rt_strap.count = 0;
    rt_expect_trap();
    uint64_t at = rt_run(MODE_U, do_undef, 0, 0);
    CHECK_NO_TRAP();
    CHECK_EQ(rt_strap.count, 1);
    CHECK_EQ(rt_strap.cause, 2);
    CHECK_EQ(rt_strap.epc, at);
    CHECK_EQ(rt_strap.tval, UNDEF_INSN);
    CHECK_EQ(rt_strap.mode, 0); // sstatus.SPP = U
    rt_strap.count = 0;
    rt_expect_trap();
    at = rt_run(MODE_S, do_ebreak, 0, 0);
    CHECK_NO_TRAP();
    CHECK_EQ(rt_strap.count, 1);
    CHECK_EQ(rt_strap.cause, 3);
    CHECK_EQ(rt_strap.epc, at);
    CHECK_EQ(rt_strap.mode, 1); // SPP = S
    rt_strap.count = 0;
    rt_expect_trap();
    at = rt_run(MODE_U, do_ecall, 0, 0);
    CHECK_NO_TRAP();
    CHECK_EQ(rt_strap.count, 1);
    CHECK_EQ(rt_strap.cause, 8);
    CHECK_EQ(rt_strap.epc, at);
    // Not delegated (ecall from S), and never from M even when delegated (illegal in M).
    rt_strap.count = 0;
    rt_expect_trap();
    rt_run(MODE_S, do_ecall, 0, 0);
    rt_expect_done();
    CHECK_EQ(rt_mtrap.cause, 9);
    rt_expect_trap();
    rt_run(MODE_M, do_undef, 0, 0);
    rt_expect_done();
    CHECK_EQ(rt_mtrap.cause, 2);
    CHECK_EQ(rt_strap.count, 0);
    CSR_WRITE(medeleg, 0);

    // mideleg: a supervisor software interrupt (raised by M through mip.SSIP) goes to S.
    CSR_WRITE(mideleg, 1u << 1);
    CHECK_EQ(CSR_READ(mideleg) & 2, 2);
    CSR_SET(mip, 2);
    CHECK(CSR_READ(sip) & 2);
    rt_strap.count = 0;
    rt_expect_trap();
    uint64_t n = rt_run(MODE_S, s_wait_ssi, 0, 0);
    CHECK_NO_TRAP();
    CHECK_EQ(n, 1);
    CHECK_EQ(rt_strap.cause, CAUSE_INTERRUPT | 1);
    CHECK(!(CSR_READ(mip) & 2)); // the S handler cleared it
    CSR_WRITE(mideleg, 0);
    CSR_WRITE(sie, 0);
}

int main(void)
{
    ecalls();
    illegal();
    delegation();
    return 0;
}
