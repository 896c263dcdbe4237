// SPDX-License-Identifier: MIT
// Internals of the hart's privileged side shared by cpu.cpp, csr.cpp, trap.cpp and mmu.cpp (not by the
// translator).
#pragma once

#include "rv_cpu.h"

namespace keel::rv
{

// mstatus fields (privileged spec 1.12, RV64).
constexpr uint64_t MSTATUS_SIE = 1ull << 1, MSTATUS_MIE = 1ull << 3, MSTATUS_SPIE = 1ull << 5,
                   MSTATUS_UBE = 1ull << 6, MSTATUS_MPIE = 1ull << 7, MSTATUS_SPP = 1ull << 8,
                   MSTATUS_VS = 3ull << 9, MSTATUS_MPP = 3ull << 11, MSTATUS_FS = 3ull << 13,
                   MSTATUS_XS = 3ull << 15, MSTATUS_MPRV = 1ull << 17, MSTATUS_SUM = 1ull << 18,
                   MSTATUS_MXR = 1ull << 19, MSTATUS_TVM = 1ull << 20, MSTATUS_TW = 1ull << 21,
                   MSTATUS_TSR = 1ull << 22, MSTATUS_UXL = 3ull << 32, MSTATUS_SXL = 3ull << 34,
                   MSTATUS_SD = 1ull << 63;
constexpr unsigned MSTATUS_MPP_SHIFT = 11, MSTATUS_FS_SHIFT = 13;
// UXL = SXL = 2: U and S run with XLEN 64, read-only.
constexpr uint64_t MSTATUS_XL64 = (2ull << 32) | (2ull << 34);
constexpr uint64_t FS_OFF = 0, FS_DIRTY = 3;

constexpr uint64_t MIP_SSIP = 1ull << IRQ_SSI, MIP_MSIP = 1ull << IRQ_MSI, MIP_STIP = 1ull << IRQ_STI,
                   MIP_MTIP = 1ull << IRQ_MTI, MIP_SEIP = 1ull << IRQ_SEI, MIP_MEIP = 1ull << IRQ_MEI;
constexpr uint64_t S_INTERRUPTS = MIP_SSIP | MIP_STIP | MIP_SEIP;
constexpr uint64_t ALL_INTERRUPTS = S_INTERRUPTS | MIP_MSIP | MIP_MTIP | MIP_MEIP;

constexpr uint64_t MENVCFG_FIOM = 1ull << 0, MENVCFG_STCE = 1ull << 63;

// satp.MODE values (bits 63:60), as the `mmu` property stores them too.
constexpr uint32_t SATP_BARE = 0, SATP_SV39 = 8, SATP_SV48 = 9;

// misa extension bits.
constexpr uint64_t misa_bit(char c)
{
    return 1ull << (c - 'a');
}

// CSR numbers.
enum : unsigned {
    CSR_FFLAGS = 0x001,
    CSR_FRM = 0x002,
    CSR_FCSR = 0x003,
    CSR_SEED = 0x015,
    CSR_CYCLE = 0xc00,
    CSR_TIME = 0xc01,
    CSR_INSTRET = 0xc02,
    CSR_HPMCOUNTER3 = 0xc03,
    CSR_HPMCOUNTER31 = 0xc1f,
    CSR_SSTATUS = 0x100,
    CSR_SIE = 0x104,
    CSR_STVEC = 0x105,
    CSR_SCOUNTEREN = 0x106,
    CSR_SENVCFG = 0x10a,
    CSR_SSCRATCH = 0x140,
    CSR_SEPC = 0x141,
    CSR_SCAUSE = 0x142,
    CSR_STVAL = 0x143,
    CSR_SIP = 0x144,
    CSR_STIMECMP = 0x14d,
    CSR_SATP = 0x180,
    CSR_MSTATUS = 0x300,
    CSR_MISA = 0x301,
    CSR_MEDELEG = 0x302,
    CSR_MIDELEG = 0x303,
    CSR_MIE = 0x304,
    CSR_MTVEC = 0x305,
    CSR_MCOUNTEREN = 0x306,
    CSR_MENVCFG = 0x30a,
    CSR_MCOUNTINHIBIT = 0x320,
    CSR_MHPMEVENT3 = 0x323,
    CSR_MHPMEVENT31 = 0x33f,
    CSR_MSCRATCH = 0x340,
    CSR_MEPC = 0x341,
    CSR_MCAUSE = 0x342,
    CSR_MTVAL = 0x343,
    CSR_MIP = 0x344,
    CSR_PMPCFG0 = 0x3a0,
    CSR_PMPCFG15 = 0x3af,
    CSR_PMPADDR0 = 0x3b0,
    CSR_PMPADDR63 = 0x3ef,
    CSR_TSELECT = 0x7a0,
    CSR_TDATA1 = 0x7a1,
    CSR_TDATA3 = 0x7a3,
    CSR_MCYCLE = 0xb00,
    CSR_MINSTRET = 0xb02,
    CSR_MHPMCOUNTER3 = 0xb03,
    CSR_MHPMCOUNTER31 = 0xb1f,
    CSR_MVENDORID = 0xf11,
    CSR_MARCHID = 0xf12,
    CSR_MIMPID = 0xf13,
    CSR_MHARTID = 0xf14,
    CSR_MCONFIGPTR = 0xf15,
};

// PMP configuration byte.
constexpr uint8_t PMP_R = 1, PMP_W = 2, PMP_X = 4, PMP_A = 3 << 3, PMP_L = 0x80;
enum : unsigned { PMP_OFF = 0, PMP_TOR = 1, PMP_NA4 = 2, PMP_NAPOT = 3 };

inline unsigned mstatus_fs(const RvCpu *cpu)
{
    return unsigned((cpu->mstatus >> MSTATUS_FS_SHIFT) & 3);
}
inline bool has_ext(const RvCpu *cpu, char c)
{
    return (cpu->misa & misa_bit(c)) != 0;
}

// mip as the hart sees it: the device lines (and Sstc's STIP) in `mip` plus
// the bits M-mode software wrote. With Sstc active, STIP is stimecmp's alone.
uint64_t effective_mip(const RvCpu *cpu);
// The time CSR: virtual nanoseconds scaled to timebase-frequency.
uint64_t read_time(const RvCpu *cpu);
// Sstc: recompute STIP from time and stimecmp, arming the timer when it is not yet due.
void update_stip(RvCpu *cpu);
// Timer callback of RvCpu.stimecmp_timer (opaque = the RvCpu).
void stimecmp_timer_fired(void *opaque);

// Debugger (gdb, monitors) access to a CSR: M privilege, no FS or counter
// gating, no exception. false if the CSR does not exist.
bool csr_read_debug(RvCpu *cpu, unsigned csr, uint64_t *value);
bool csr_write_debug(RvCpu *cpu, unsigned csr, uint64_t value);

// Deliver a trap (exception or interrupt `cause`) at cpu->pc, with delegation.
void do_trap(RvCpu *cpu, uint64_t cause, bool interrupt, uint64_t tval);

// Engine hooks implemented in trap.cpp (tlb_fill: rv_cpu.h).
void cpu_exec_exception(void *env);
int cpu_exec_interrupt(void *env);
int cpu_has_work(void *env);

// Debuggers (gdb.cpp): the hart's KeelCpuDebugOps, and the physical address of vaddr as a data access
// sees it now (privilege after MPRV, satp) without side effects: no A/D updates, no exception; PTE
// permission bits and PMP are not checked (a debugger may look at any mapped page). false: not mapped.
extern const KeelCpuDebugOps kCpuDebugOps;
bool cpu_debug_translate(RvCpu *cpu, uint64_t vaddr, uint64_t *paddr);

// Drop the engine's cached translations (no-op before an engine runs the hart).
inline void flush_tlb(RvCpu *cpu)
{
    const KeelCpuEngine *e = cpu->common.engine;
    if (e && e->tlb_flush) e->tlb_flush(&cpu->common);
}

// Make the engine return to its loop (and so call exec_interrupt) at the next block boundary.
inline void request_exit(RvCpu *cpu)
{
    cpu->common.exit_request = 1;
}

} // namespace keel::rv
