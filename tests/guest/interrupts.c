// SPDX-License-Identifier: MIT
// Machine interrupts from the CLINT: timer (mtimecmp) with wfi, software (msip), priority, interrupts
// while in U with MIE clear, and mtvec vectored mode (timer lands at base + 4 * 7).
#include "rt.h"

#define CLINT 0x2000000ul
#define MSIP (*(volatile uint32_t *)(CLINT + 0x0))
#define MTIMECMP (*(volatile uint64_t *)(CLINT + 0x4000))
#define MTIME (*(volatile uint64_t *)(CLINT + 0xbff8))
#define MIP_MSIP (1u << 3)
#define MIP_MTIP (1u << 7)

static volatile uint64_t seen[8];
static volatile unsigned nseen;
static volatile uint64_t seen_mode;

// Records each interrupt and silences its source.
static int irq_hook(struct rt_frame *f)
{
    if (!(f->mcause & CAUSE_INTERRUPT)) return 0;
    if (nseen < 8) seen[nseen] = f->mcause;
    nseen++;
    seen_mode = (f->mstatus >> 11) & 3;
    if (f->mcause == (CAUSE_INTERRUPT | 7))
        MTIMECMP = ~0ull;
    else if (f->mcause == (CAUSE_INTERRUPT | 3))
        MSIP = 0;
    return 1;
}

static void reset_seen(void)
{
    nseen = 0;
    for (int i = 0; i < 8; i++)
        seen[i] = 0;
}

static void timer_wfi(void)
{
    MTIMECMP = ~0ull;
    CHECK(!(CSR_READ(mip) & MIP_MTIP));
    // mtime runs at 10 MHz.
    uint64_t t0 = MTIME;
    for (int i = 0; i < 1000000 && MTIME == t0; i++) {
    }
    CHECK(MTIME != t0);
    // wfi wakes on a pending enabled interrupt even with mstatus.MIE clear; the trap waits for MIE.
    reset_seen();
    CSR_WRITE(mie, MIP_MTIP);
    MTIMECMP = MTIME + 1000; // 100 us
    while (!(CSR_READ(mip) & MIP_MTIP))
        __asm__ volatile("wfi");
    CHECK(MTIME >= MTIMECMP);
    CHECK_EQ(nseen, 0);
    CSR_SET(mstatus, MSTATUS_MIE);
    __asm__ volatile("nop");
    CSR_CLEAR(mstatus, MSTATUS_MIE);
    CHECK_EQ(nseen, 1);
    CHECK_EQ(seen[0], CAUSE_INTERRUPT | 7);
    CHECK_EQ(seen_mode, MODE_M);
    CHECK(!(CSR_READ(mip) & MIP_MTIP)); // cleared by the new mtimecmp
    CSR_WRITE(mie, 0);
}

static void software(void)
{
    reset_seen();
    MSIP = 1;
    CHECK(CSR_READ(mip) & MIP_MSIP);
    CHECK_EQ(MSIP, 1);
    CSR_WRITE(mie, MIP_MSIP);
    CSR_SET(mstatus, MSTATUS_MIE);
    __asm__ volatile("nop");
    CSR_CLEAR(mstatus, MSTATUS_MIE);
    CHECK_EQ(nseen, 1);
    CHECK_EQ(seen[0], CAUSE_INTERRUPT | 3);
    CHECK(!(CSR_READ(mip) & MIP_MSIP));
    // Both pending: the software interrupt is taken first (MEI > MSI > MTI > SEI > SSI > STI).
    reset_seen();
    MSIP = 1;
    MTIMECMP = 0;
    CSR_WRITE(mie, MIP_MSIP | MIP_MTIP);
    CSR_SET(mstatus, MSTATUS_MIE);
    __asm__ volatile("nop");
    CSR_CLEAR(mstatus, MSTATUS_MIE);
    CHECK_EQ(nseen, 2);
    CHECK_EQ(seen[0], CAUSE_INTERRUPT | 3);
    CHECK_EQ(seen[1], CAUSE_INTERRUPT | 7);
    CSR_WRITE(mie, 0);
}

// In U (or S), M interrupts are taken whatever mstatus.MIE says.
static uint64_t u_wait(void)
{
    for (int i = 0; i < 10000000 && nseen == 0; i++) {
    }
    return nseen;
}

static void from_lower_mode(void)
{
    reset_seen();
    CSR_CLEAR(mstatus, MSTATUS_MIE);
    CSR_WRITE(mie, MIP_MTIP);
    MTIMECMP = MTIME + 1000;
    uint64_t n = rt_run(MODE_U, u_wait, 0, 0);
    CHECK_EQ(n, 1);
    CHECK_EQ(seen[0], CAUSE_INTERRUPT | 7);
    CHECK_EQ(seen_mode, MODE_U);
    CSR_WRITE(mie, 0);
}

// Vectored mtvec: a table of jumps; exceptions use entry 0, interrupt i entry i.
extern char vec_table[];
volatile uint64_t vec_timer_cause, vec_timer_hits;
__asm__(".pushsection .text\n"
        ".option push\n"
        ".option norvc\n"
        ".balign 256\n"
        "vec_table:\n"
        "    j rt_trap_entry\n" // 0: exceptions
        ".rept 6\n"
        "    j rt_trap_entry\n" // 1..6: unexpected, reported by rt_trap
        ".endr\n"
        "    j vec_timer\n" // 7: machine timer
        ".rept 8\n"
        "    j rt_trap_entry\n"
        ".endr\n"
        "vec_timer:\n"
        "    csrw mscratch, t0\n" // rt's trap stack top is restored below
        "    csrr t0, mcause\n"
        "    sd t0, vec_timer_cause, t1\n"
        "    ld t0, vec_timer_hits\n"
        "    addi t0, t0, 1\n"
        "    sd t0, vec_timer_hits, t1\n"
        "    li t0, -1\n"
        "    li t1, 0x2004000\n"
        "    sd t0, 0(t1)\n"
        "    la t0, _trap_stack_top\n"
        "    csrrw t0, mscratch, t0\n"
        "    mret\n"
        ".option pop\n"
        ".popsection\n");

static void vectored(void)
{
    uint64_t base = (uint64_t)vec_table;
    CSR_WRITE(mtvec, base | 1);
    CHECK_EQ(CSR_READ(mtvec), base | 1);
    vec_timer_hits = 0;
    CSR_WRITE(mie, MIP_MTIP);
    MTIMECMP = 0;
    CSR_SET(mstatus, MSTATUS_MIE);
    __asm__ volatile("nop");
    CSR_CLEAR(mstatus, MSTATUS_MIE);
    CHECK_EQ(vec_timer_hits, 1);
    CHECK_EQ(vec_timer_cause, CAUSE_INTERRUPT | 7);
    // An exception in vectored mode still goes to the base.
    rt_expect_trap();
    __asm__ volatile("ebreak");
    rt_expect_done();
    CHECK_EQ(rt_mtrap.cause, 3);
    CSR_WRITE(mie, 0);
    CSR_WRITE(mtvec, (uint64_t)rt_trap_entry);
}

int main(void)
{
    rt_trap_hook = irq_hook;
    timer_wfi();
    software();
    from_lower_mode();
    vectored();
    return 0;
}
