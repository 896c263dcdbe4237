// SPDX-License-Identifier: MIT
// CSR access rights: privilege checks (illegal with mtval = the instruction), read-only CSRs, counter
// misa, sstatus as a view of mstatus, TVM/TSR/TW. Counter gating is in counters.c.
#include "rt.h"

static uint64_t read_mstatus(void)
{
    return CSR_READ(mstatus);
}
static uint64_t read_sstatus(void)
{
    return CSR_READ(sstatus);
}
static uint64_t read_satp(void)
{
    return CSR_READ(satp);
}
static uint64_t do_sret(void)
{
    __asm__ volatile("sret");
    return 0;
}
static uint64_t do_wfi(void)
{
    __asm__ volatile("wfi");
    return 0;
}

// The trap was an illegal instruction, and mtval holds that instruction's bits.
static void check_illegal(uint32_t csr)
{
    rt_expect_done();
    CHECK_EQ(rt_mtrap.count, 1);
    CHECK_EQ(rt_mtrap.cause, 2);
    uint32_t insn = *(volatile uint32_t *)rt_mtrap.epc;
    CHECK_EQ(rt_mtrap.tval, insn);
    CHECK_EQ(insn & 0x7f, 0x73); // SYSTEM
    if (csr) CHECK_EQ(insn >> 20, csr);
}

static void privilege(void)
{
    rt_expect_trap();
    rt_run(MODE_U, read_mstatus, 0, 0);
    check_illegal(0x300);
    rt_expect_trap();
    rt_run(MODE_S, read_mstatus, 0, 0);
    check_illegal(0x300);
    rt_expect_trap();
    rt_run(MODE_U, read_sstatus, 0, 0);
    check_illegal(0x100);
    // S may read sstatus, and sees mstatus' S fields through it.
    CSR_SET(mstatus, MSTATUS_SUM);
    rt_expect_trap();
    uint64_t v = rt_run(MODE_S, read_sstatus, 0, 0);
    CHECK_NO_TRAP();
    CHECK(v & MSTATUS_SUM);
    CHECK(!(v & MSTATUS_MPP)); // M-only fields are invisible
    CSR_CLEAR(mstatus, MSTATUS_SUM);
}

static void read_only(void)
{
    // Writing a read-only CSR (address bits 11:10 = 11) is illegal, even the same value.
    rt_expect_trap();
    __asm__ volatile("csrw mvendorid, zero");
    check_illegal(0xf11);
    rt_expect_trap();
    __asm__ volatile("csrw cycle, zero");
    check_illegal(0xc00);
    rt_expect_trap();
    __asm__ volatile("csrrw zero, mhartid, zero"); // rd = x0 still writes
    check_illegal(0xf14);
    // Reads through csrrs/csrrc/csrrsi with x0/0 as the source do not write, so they are legal.
    rt_expect_trap();
    uint64_t a, b;
    __asm__ volatile("csrrs %0, mhartid, zero\n csrrci %1, mimpid, 0" : "=r"(a), "=r"(b));
    CHECK_NO_TRAP();
    CHECK_EQ(a, 0);
    // A scratch register keeps what is written (mscratch holds rt's trap stack: put it back).
    uint64_t saved = CSR_READ(mscratch);
    CSR_WRITE(mscratch, 0x0123456789abcdefull);
    __asm__ volatile("csrrw %0, mscratch, %1" : "=r"(a) : "r"(42ull));
    b = CSR_READ(mscratch);
    CSR_WRITE(mscratch, saved);
    CHECK_EQ(a, 0x0123456789abcdefull);
    CHECK_EQ(b, 42);
}

static void misa(void)
{
    uint64_t m = CSR_READ(misa);
    CHECK_EQ(m >> 62, 2); // MXL = 64
    const char *ext = "ACDFIMSU";
    for (const char *e = ext; *e; e++)
        CHECK_EQ((m >> (*e - 'A')) & 1, 1);
}

static void traps_for_s(void)
{
    // TVM: S access to satp (and sfence.vma) is illegal.
    CSR_SET(mstatus, 1ul << 20);
    rt_expect_trap();
    rt_run(MODE_S, read_satp, 0, 0);
    check_illegal(0x180);
    CSR_CLEAR(mstatus, 1ul << 20);
    rt_expect_trap();
    rt_run(MODE_S, read_satp, 0, 0);
    CHECK_NO_TRAP();
    // TSR: sret in S is illegal.
    CSR_SET(mstatus, 1ul << 22);
    rt_expect_trap();
    rt_run(MODE_S, do_sret, 0, 0);
    check_illegal(0);
    CSR_CLEAR(mstatus, 1ul << 22);
    // sret in U is always illegal.
    rt_expect_trap();
    rt_run(MODE_U, do_sret, 0, 0);
    check_illegal(0);
    // TW: wfi in S traps (nothing is enabled, so it could never complete). wfi in U traps regardless.
    CSR_SET(mstatus, 1ul << 21);
    rt_expect_trap();
    rt_run(MODE_S, do_wfi, 0, 0);
    check_illegal(0);
    CSR_CLEAR(mstatus, 1ul << 21);
    rt_expect_trap();
    rt_run(MODE_U, do_wfi, 0, 0);
    check_illegal(0);
}

int main(void)
{
    privilege();
    read_only();
    misa();
    traps_for_s();
    return 0;
}
