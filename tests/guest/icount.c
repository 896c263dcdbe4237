// SPDX-License-Identifier: MIT
// -icount: prints the time, mtime and instret it samples, and where CLINT timer interrupts land, for
// icount_test.py to compare across runs and engines and check against the arithmetic (time ticks of 100 ns
// at 10 MHz; 2^shift ns per instruction). Every sample is taken at the first instruction of a block (after
// a jump), where keel's virtual time is exact; instret counts the instructions before each csrr.
#include "rt.h"

#define CLINT 0x2000000ul
#define MTIMECMP (*(volatile uint64_t *)(CLINT + 0x4000))
#define MTIME_ADDR (CLINT + 0xbff8)
#define MIP_MTIP (1u << 7)

static volatile uint64_t irq_count, irq_epc, irq_a0, irq_instret;

// The spin loop of arm_and_spin, exported so the hook knows where the interrupt landed.
extern char spin_loop[], spin_branch[];

static int hook(struct rt_frame *f)
{
    if (f->mcause != (CAUSE_INTERRUPT | 7)) return 0;
    irq_count++;
    irq_epc = f->mepc;
    irq_a0 = f->x[10];
    f->x[11] = 1; // ends the spin loop
    MTIMECMP = ~0ull;
    return 1;
}

// time and instret at the start of a block: instret counts the instructions before its csrr, so the
// instructions before the time read are instret - 1.
static void sample(const char *what)
{
    uint64_t t, n;
    __asm__ volatile("j 1f\n"
                     "1: csrr %0, time\n"
                     "csrr %1, minstret\n"
                     : "=r"(t), "=r"(n));
    rt_printf("%s: time %lu insns %lu\n", what, (unsigned long)t, (unsigned long)(n - 1));
}

static void sample_mtime(void)
{
    uint64_t t, n;
    __asm__ volatile("li t0, %2\n"
                     "j 1f\n"
                     "1: ld %0, 0(t0)\n"
                     "csrr %1, minstret\n"
                     : "=&r"(t), "=r"(n)
                     : "i"(MTIME_ADDR)
                     : "t0");
    rt_printf("mtime: time %lu insns %lu\n", (unsigned long)t, (unsigned long)(n - 1));
}

// Arms mtimecmp `delta` ticks after the time it reads, then spins (2 instructions a turn) until the
// interrupt. Prints the deadline, the instructions before the spin and where the interrupt landed.
static void arm_and_spin(uint64_t delta)
{
    uint64_t cmp, n0;
    irq_count = 0;
    uint64_t now;
    __asm__ volatile("j 1f\n1: csrr %0, time" : "=r"(now));
    cmp = now + delta;
    MTIMECMP = cmp;
    __asm__ volatile("li a0, 0\n"
                     "li a1, 0\n"
                     "csrs mstatus, %1\n"
                     "csrr %0, minstret\n" // the instructions before this one
                     ".globl spin_loop\n"
                     "spin_loop: addi a0, a0, 1\n"
                     ".globl spin_branch\n"
                     "spin_branch: beqz a1, spin_loop\n"
                     "csrc mstatus, %1\n"
                     : "=&r"(n0)
                     : "r"(MSTATUS_MIE)
                     : "a0", "a1", "memory");
    CHECK_EQ(irq_count, 1);
    // Instructions executed when the interrupt was taken: the csrr, then a0 turns (the last one cut
    // after its addi when the interrupt landed on the branch).
    uint64_t done = n0 + 1 + 2 * irq_a0;
    if (irq_epc == (uint64_t)spin_branch)
        done -= 1;
    else
        CHECK_EQ(irq_epc, (uint64_t)spin_loop);
    rt_printf("irq: mtimecmp %lu insns %lu cut %d\n", (unsigned long)cmp, (unsigned long)done,
              irq_epc == (uint64_t)spin_branch);
}

// Exceptions inside blocks: the instructions before the faulting one count; it does not, and the rest of
// the block (run after the trap) is not counted twice. The load fault starts its block and 60 instructions
// follow it in the same block, so counting the whole faulted block would show in the time.
#define HOLE 0x40000000ul // unmapped: load access fault

static void faults(void)
{
    for (int i = 0; i < 10; i++) {
        rt_expect_trap();
        __asm__ volatile("j 1f\n"
                         "1: nop\n"
                         "nop\n"
                         "nop\n"
                         "csrw cycle, zero\n" // read-only: illegal
                         "nop\n");
        rt_expect_done();
        CHECK_EQ(rt_mtrap.count, 1);
        CHECK_EQ(rt_mtrap.cause, 2);
        rt_expect_trap();
        __asm__ volatile("li t0, %0\n"
                         "j 1f\n"
                         "1: ld t1, 0(t0)\n"
                         ".rept 60\n"
                         "nop\n"
                         ".endr\n"
                         :
                         : "i"(HOLE)
                         : "t0", "t1");
        rt_expect_done();
        CHECK_EQ(rt_mtrap.count, 1);
        CHECK_EQ(rt_mtrap.cause, 5);
    }
    sample("faults");
}

// wfi with the interrupt enabled in mie but not mstatus: the hart halts until mtime reaches mtimecmp, and
// wakes without a trap. keel's idle vCPU jumps virtual time exactly to the deadline (sleep=on after waiting
// as long in host time), so the time read first thing after the wfi is exactly mtimecmp.
static void wfi_wait(uint64_t delta)
{
    uint64_t now, before, after, t;
    __asm__ volatile("j 1f\n1: csrr %0, time" : "=r"(now));
    MTIMECMP = now + delta;
    CSR_WRITE(mie, MIP_MTIP);
    __asm__ volatile("csrr %0, minstret\n"
                     "wfi\n"
                     "csrr %1, time\n"
                     "csrr %2, minstret\n"
                     : "=&r"(before), "=&r"(t), "=r"(after));
    CHECK(CSR_READ(mip) & MIP_MTIP);
    MTIMECMP = ~0ull;
    CHECK_EQ(after, before + 3); // csrr, wfi, csrr time
    CHECK_EQ(t, now + delta);
    rt_printf("wfi: mtimecmp %lu halted-at %lu\n", (unsigned long)(now + delta), (unsigned long)(before + 2));
    sample("after-wfi");
}

int main(void)
{
    rt_trap_hook = hook;
    MTIMECMP = ~0ull;
    CSR_WRITE(mie, MIP_MTIP);
    sample("start");
    uint64_t k = 0;
    for (int i = 0; i < 100000; i++)
        k += (uint64_t)i * 7 ^ k;
    sample("loop");
    sample_mtime();
    arm_and_spin(20);
    arm_and_spin(77);
    arm_and_spin(1000);
    arm_and_spin(12345);
    sample("spins");
    faults();
    // 3 s of virtual time: with sleep=off the idle vCPU gets there at once.
    wfi_wait(30000000);
    arm_and_spin(50);
    sample_mtime();
    rt_printf("k %lu\n", (unsigned long)k);
    return 0;
}
