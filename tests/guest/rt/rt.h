// SPDX-License-Identifier: MIT
// Guest test runtime: exit, console output, checks that name the failing check, trap capture, mode switches.
#ifndef KEEL_GUEST_RT_H
#define KEEL_GUEST_RT_H

#define RT_ECALL_RETURN 0x6b65656c // "keel": a7 value of the ecall that ends rt_run

#define MODE_U 0
#define MODE_S 1
#define MODE_M 3

#define MSTATUS_SIE (1ul << 1)
#define MSTATUS_MIE (1ul << 3)
#define MSTATUS_SPP (1ul << 8)
#define MSTATUS_MPP (3ul << 11)
#define MSTATUS_FS (3ul << 13)
#define MSTATUS_MPRV (1ul << 17)
#define MSTATUS_SUM (1ul << 18)
#define MSTATUS_MXR (1ul << 19)

#define CAUSE_INTERRUPT (1ul << 63)

#ifndef __ASSEMBLER__
#include <stdint.h>

#define CSR_READ(name)                                  \
    ({                                                  \
        uint64_t _v;                                    \
        __asm__ volatile("csrr %0, " #name : "=r"(_v)); \
        _v;                                             \
    })
#define CSR_WRITE(name, v) __asm__ volatile("csrw " #name ", %0" ::"r"((uint64_t)(v)) : "memory")
#define CSR_SET(name, v) __asm__ volatile("csrs " #name ", %0" ::"r"((uint64_t)(v)) : "memory")
#define CSR_CLEAR(name, v) __asm__ volatile("csrc " #name ", %0" ::"r"((uint64_t)(v)) : "memory")

// The registers of the interrupted context, as crt0's trap entry saved them; a handler may edit them.
struct rt_frame {
    uint64_t x[32]; // x[2] is the interrupted sp
    uint64_t mepc, mcause, mtval, mstatus;
};

// The last trap taken while a trap was expected (rt_expect_trap), in M or, for delegated traps, in S.
struct rt_trap_record {
    uint64_t cause, epc, tval;
    uint64_t mode; // privilege mode the trap came from
    uint64_t count;
    uint64_t spill; // scratch for the S trap vector
};
extern volatile struct rt_trap_record rt_mtrap, rt_strap;

__attribute__((noreturn)) void rt_exit(int code);
void rt_putchar(int c);
void rt_puts(const char *s);
void rt_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// Checks are numbered in the order they run; a failure prints file, line, expression and values and
// exits with the check's number (capped at 254; 255 means an unexpected trap).
void rt_check(int ok, const char *file, int line, const char *expr, uint64_t got, uint64_t want, int values);
#define CHECK(cond) rt_check(!!(cond), __FILE__, __LINE__, #cond, 0, 0, 0)
#define CHECK_EQ(a, b)                                                   \
    do {                                                                 \
        uint64_t _a = (uint64_t)(a), _b = (uint64_t)(b);                 \
        rt_check(_a == _b, __FILE__, __LINE__, #a " == " #b, _a, _b, 1); \
    } while (0)

// Expected traps: arm, do the faulting thing, then CHECK_TRAP. The M handler records the trap and resumes
// after the faulting instruction (or at ra for instruction fetch faults: call the bad address).
void rt_expect_trap(void);
void rt_expect_done(void);
#define CHECK_TRAP(cause_, tval_)         \
    do {                                  \
        rt_expect_done();                 \
        CHECK_EQ(rt_mtrap.count, 1);      \
        CHECK_EQ(rt_mtrap.cause, cause_); \
        CHECK_EQ(rt_mtrap.tval, tval_);   \
    } while (0)
#define CHECK_NO_TRAP()              \
    do {                             \
        rt_expect_done();            \
        CHECK_EQ(rt_mtrap.count, 0); \
    } while (0)

// A test may take interrupts or unusual traps itself: return 1 if handled.
extern int (*rt_trap_hook)(struct rt_frame *f);

// Run fn(a0, a1) in the given privilege mode (sp on a separate stack) and return its result. The
// function returns into a stub that ecalls back to M. Code and stack must be reachable from that mode.
uint64_t rt_run(int mode, void *fn, uint64_t a0, uint64_t a1);

// Single accesses for rt_run: load/store a doubleword, call an address.
uint64_t rt_ld(uint64_t addr);
uint64_t rt_lw(uint64_t addr);
uint64_t rt_sd(uint64_t addr, uint64_t val);
uint64_t rt_call(uint64_t addr);

// S-mode trap vector: records into rt_strap and skips the instruction (or resumes at ra after a fetch
// fault); a delegated rt_run-return ecall from U is passed on to M.
void rt_s_trap_entry(void);
void rt_trap_entry(void);

// Let S and U access everything, as firmware does (PMP entry 0: NAPOT over all memory, RWX).
void rt_pmp_allow_all(void);

void *memset(void *d, int c, unsigned long n);
void *memcpy(void *d, const void *s, unsigned long n);

#endif // __ASSEMBLER__
#endif
