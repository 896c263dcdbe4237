// SPDX-License-Identifier: MIT
// Counters cycle/time/instret: always readable in M, gated for S by mcounteren and for U by scounteren too.
#include "rt.h"

// Runs on riscv-virt: QEMU's spike board has no time source for the time CSR (reads are illegal there),
// while both its virt board and keel's riscv-virt have the CLINT's mtime behind it.

static uint64_t read_cycle(void)
{
    return CSR_READ(cycle);
}
static uint64_t read_time(void)
{
    return CSR_READ(time);
}
static uint64_t read_instret(void)
{
    return CSR_READ(instret);
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

struct counter {
    const char *name;
    uint64_t (*read)(void);
    unsigned bit;
};

static void counters(void)
{
    static const struct counter cs[] = {
        {"cycle", read_cycle, 0}, {"time", read_time, 1}, {"instret", read_instret, 2}};
    // M always reads them; instret advances.
    uint64_t i0 = CSR_READ(instret), i1 = CSR_READ(instret);
    CHECK(i1 > i0);
    CHECK(CSR_READ(minstret) >= i1);
    // time is the CLINT's mtime.
    uint64_t t0 = CSR_READ(time);
    uint64_t mt = *(volatile uint64_t *)0x200bff8;
    uint64_t t1 = CSR_READ(time);
    CHECK(t0 <= mt && mt <= t1);
    for (unsigned i = 0; i < 3; i++) {
        const struct counter *c = &cs[i];
        // Gated off for S by mcounteren (and so for U too).
        CSR_WRITE(mcounteren, 0);
        CSR_WRITE(scounteren, 7);
        rt_expect_trap();
        rt_run(MODE_S, c->read, 0, 0);
        check_illegal(0xc00 + c->bit);
        rt_expect_trap();
        rt_run(MODE_U, c->read, 0, 0);
        check_illegal(0xc00 + c->bit);
        // Open for S, closed for U by scounteren.
        CSR_WRITE(mcounteren, 1u << c->bit);
        CSR_WRITE(scounteren, 0);
        rt_expect_trap();
        rt_run(MODE_S, c->read, 0, 0);
        CHECK_NO_TRAP();
        rt_expect_trap();
        rt_run(MODE_U, c->read, 0, 0);
        check_illegal(0xc00 + c->bit);
        // Open for both.
        CSR_WRITE(scounteren, 1u << c->bit);
        rt_expect_trap();
        uint64_t v = rt_run(MODE_U, c->read, 0, 0);
        CHECK_NO_TRAP();
        if (c->bit != 1) // time may not have ticked since reset on a fast host; cycle and instret have
            CHECK(v != 0);
    }
    CSR_WRITE(mcounteren, 0);
    CSR_WRITE(scounteren, 0);
}

// minstret when the last trap was taken, read first thing in the M handler (through rt_trap_hook).
static volatile uint64_t instret_at_trap;
static int record_instret(struct rt_frame *f)
{
    (void)f;
    instret_at_trap = CSR_READ(minstret);
    return 0; // and let the runtime record and skip the trapping instruction
}

// minstret counts exactly the instructions that retired before a trap, also when the trapping one is
// in the middle of a straight run of code (one translated block): a misaligned LR (load address
// misaligned; it does not retire) must leave the same count as an EBREAK in the same place, through
// the same handler. (ECALL and EBREAK do not retire: the unprivileged spec says so in its section on
// them. QEMU 7.2 with -icount counts the EBREAK, so its reference run differs by one here; without
// -icount its minstret is not an instruction count at all.)
static void instret_before_traps(void)
{
    static uint32_t word[2];
    uint64_t start_lr, start_ebreak;
    rt_trap_hook = record_instret;
    rt_expect_trap();
    __asm__ volatile("csrr %0, minstret\n nop\n nop\n nop\n nop\n nop\n nop\n nop\n"
                     "lr.w zero, (%1)"
                     : "=&r"(start_lr)
                     : "r"((uintptr_t)word + 2)
                     : "memory");
    CHECK_TRAP(4, (uint64_t)(uintptr_t)word + 2);
    uint64_t lr = instret_at_trap - start_lr;
    rt_expect_trap();
    __asm__ volatile("csrr %0, minstret\n nop\n nop\n nop\n nop\n nop\n nop\n nop\n ebreak"
                     : "=&r"(start_ebreak)::"memory");
    rt_expect_done();
    CHECK_EQ(rt_mtrap.cause, 3);
    uint64_t ebreak = instret_at_trap - start_ebreak;
    rt_trap_hook = 0;
    CHECK_EQ(lr, ebreak);
    CHECK(lr >= 8); // the csrr and the seven nops retired, at least
}

int main(void)
{
    counters();
    instret_before_traps();
    return 0;
}
