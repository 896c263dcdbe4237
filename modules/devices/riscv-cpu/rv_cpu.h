// SPDX-License-Identifier: MIT
// The RISC-V hart: its state (the "env" of the IR and of every helper), block flags, and the helpers
// the translator calls. Shared by the translator (translate*.cpp), the privileged side (csr.cpp,
// trap.cpp, mmu.cpp, cpu.cpp) and the FPU (fpu.cpp).
#pragma once

#include <atomic>
#include <cstdint>

#include <keel/keel.h>

namespace keel::rv
{

enum Priv : uint32_t { PRV_U = 0, PRV_S = 1, PRV_M = 3 };

// MMU indexes (loads, stores, fetch): the effective privilege. Translation
// and permission rules that also depend on mstatus (SUM, MXR, MPRV) or satp
// flush the engine's TLB when they change.
enum MmuIdx : unsigned { MMU_U = 0, MMU_S = 1, MMU_M = 3, MMU_COUNT = 4 };

// Block flags (KeelCpuOps.tb_flags): bits 0-2 fetch MMU index (= privilege),
// bits 3-5 data MMU index (privilege after MPRV), bits 6-7 mstatus.FS.
constexpr uint64_t TBF_FETCH_SHIFT = 0, TBF_DATA_SHIFT = 3, TBF_FS_SHIFT = 6;
inline unsigned tbf_priv(uint64_t f)
{
    return unsigned(f & 7);
}
inline unsigned tbf_data_mmu(uint64_t f)
{
    return unsigned((f >> TBF_DATA_SHIFT) & 7);
}
inline unsigned tbf_fs(uint64_t f)
{
    return unsigned((f >> TBF_FS_SHIFT) & 3);
}

// Exception causes (mcause without the interrupt bit).
enum Cause : uint64_t {
    EXC_INSN_MISALIGNED = 0,
    EXC_INSN_ACCESS = 1,
    EXC_ILLEGAL_INSN = 2,
    EXC_BREAKPOINT = 3,
    EXC_LOAD_MISALIGNED = 4,
    EXC_LOAD_ACCESS = 5,
    EXC_STORE_MISALIGNED = 6, // also AMO
    EXC_STORE_ACCESS = 7,
    EXC_ECALL_U = 8,
    EXC_ECALL_S = 9,
    EXC_ECALL_M = 11,
    EXC_INSN_PAGE_FAULT = 12,
    EXC_LOAD_PAGE_FAULT = 13,
    EXC_STORE_PAGE_FAULT = 15,
};

// Interrupt numbers = bit numbers in mip/mie.
enum Irq : unsigned { IRQ_SSI = 1, IRQ_MSI = 3, IRQ_STI = 5, IRQ_MTI = 7, IRQ_SEI = 9, IRQ_MEI = 11 };

constexpr unsigned PMP_ENTRIES = 16;

// The instance state of a riscv64 CPU object. Plain data; `common` first.
struct RvCpu {
    KeelCpuCommon common;

    // --- IR globals (see kGlobals in cpu.cpp: x0..x31, pc, f0..f31, res_addr, res_val, instret) ---
    uint64_t x[32]; // x[0] is always 0: the translator never writes it
    uint64_t pc;
    uint64_t f[32];    // raw 64-bit FP registers; singles NaN-boxed
    uint64_t res_addr; // LR reservation: address, or ~0 when none
    uint64_t res_val;  // the value LR loaded (SC succeeds if memory still holds it)
    uint64_t instret;  // retired instructions (the translator adds each block's count at its exits)

    // --- FP control (not IR globals: only helpers and CSR accesses touch them) ---
    uint32_t fflags; // accrued exceptions NV DZ OF UF NX (bits 4..0)
    uint32_t frm;    // dynamic rounding mode

    // --- privileged state ---
    uint32_t priv; // Priv
    uint64_t misa;
    uint64_t mstatus; // the full M view (sstatus is a masked view)
    uint64_t medeleg, mideleg;
    uint64_t mie;
    std::atomic<uint64_t> mip; // device lines (MTIP, MSIP, MEIP, SEIP) change from other threads
    uint64_t mip_sw;           // software-written bits (SSIP, STIP, SEIP as written by M)
    uint64_t mtvec, mscratch, mepc, mcause, mtval;
    uint64_t stvec, sscratch, sepc, scause, stval;
    uint64_t satp;
    uint64_t mcounteren, scounteren, mcountinhibit;
    uint64_t menvcfg, senvcfg;
    uint64_t stimecmp; // Sstc
    uint64_t mhartid;
    uint8_t pmpcfg[PMP_ENTRIES];
    uint64_t pmpaddr[PMP_ENTRIES];

    // --- the exception being raised (set with common.exception) ---
    uint64_t exc_cause, exc_tval;

    // --- properties and wiring ---
    KeelObject *obj;
    uint64_t resetvec;         // property "resetvec"
    char *isa;                 // property "isa" (e.g. "rv64gc")
    uint32_t mmu_prop;         // property "mmu": index of bare/sv39/sv48
    uint32_t mmu_mode;         // from it at realize: 0 bare, 8 sv39, 9 sv48 (the highest satp.MODE accepted)
    uint64_t timebase_freq;    // property "timebase-frequency" (Hz) for the time CSR
    bool pmp_enabled;          // property "pmp"
    bool sstc;                 // property "sstc"
    KeelTimer *stimecmp_timer; // Sstc: fires when time reaches stimecmp
};

static_assert(offsetof(RvCpu, common) == 0, "KeelCpuCommon must come first");

// ---- Helpers called from translated code (declared for the IR in helpers.cpp). ----
// All take the hart as `void *env`. "raises": may set common.exception and
// return (KEEL_HELPER_MAY_RAISE); the engine then delivers the exception with
// the pc of the calling instruction.
extern "C" {
// Zicsr: the whole instruction (csr number, funct3, rd/rs1 fields decide
// whether it reads and writes); `src` is x[rs1] or the zero-extended uimm.
// Returns the old value for rd. Raises illegal-instruction.
uint64_t rv_helper_csr(void *env, uint64_t src, uint32_t insn);
// Raise `cause` with `tval` (illegal instruction: tval = instruction bits).
void rv_helper_raise(void *env, uint64_t cause, uint64_t tval);
void rv_helper_ecall(void *env);
void rv_helper_ebreak(void *env);
// mret/sret: write pc (the pc global) and privilege. Raise illegal when not allowed (TSR, privilege).
void rv_helper_mret(void *env);
void rv_helper_sret(void *env);
// wfi: raises illegal (TW, U-mode); otherwise halts the hart unless an interrupt is pending.
void rv_helper_wfi(void *env);
// sfence.vma rs1, rs2 (values; `insn` for tval/field checks); raises illegal (TVM, U-mode).
void rv_helper_sfence_vma(void *env, uint64_t vaddr, uint64_t asid, uint32_t insn);
void rv_helper_fence_i(void *env);
// Mark mstatus.FS (and SD) dirty.
void rv_helper_fs_dirty(void *env);
// Before an FP instruction with rm = 7: raise illegal (tval = insn) if frm is not a valid mode.
void rv_helper_check_frm(void *env, uint32_t insn);

// ---- FPU (fpu.cpp). a, b, c: raw 64-bit register contents (f registers,
// or x registers for conversions from integers); rm: 0-4, or 7 = frm (the
// translator has checked it). Results are raw: NaN-boxed singles, integer
// results sign-extended to 64 bits as the ISA says. Accrue env->fflags.
// Never raise. ----
// clang-format off
#define RV_FP_BINOPS(X) X(fadd) X(fsub) X(fmul) X(fdiv)
#define RV_FP_DECL_BIN(op)                                                                                     \
    uint64_t rv_##op##_s(void *env, uint64_t a, uint64_t b, uint32_t rm);                                      \
    uint64_t rv_##op##_d(void *env, uint64_t a, uint64_t b, uint32_t rm);
RV_FP_BINOPS(RV_FP_DECL_BIN)
#undef RV_FP_DECL_BIN
uint64_t rv_fsqrt_s(void *env, uint64_t a, uint32_t rm);
uint64_t rv_fsqrt_d(void *env, uint64_t a, uint32_t rm);
uint64_t rv_fmin_s(void *env, uint64_t a, uint64_t b);
uint64_t rv_fmax_s(void *env, uint64_t a, uint64_t b);
uint64_t rv_fmin_d(void *env, uint64_t a, uint64_t b);
uint64_t rv_fmax_d(void *env, uint64_t a, uint64_t b);
// fmadd = a*b+c, fmsub = a*b-c, fnmsub = -(a*b)+c, fnmadd = -(a*b)-c, one rounding.
uint64_t rv_fmadd_s(void *env, uint64_t a, uint64_t b, uint64_t c, uint32_t rm);
uint64_t rv_fmsub_s(void *env, uint64_t a, uint64_t b, uint64_t c, uint32_t rm);
uint64_t rv_fnmsub_s(void *env, uint64_t a, uint64_t b, uint64_t c, uint32_t rm);
uint64_t rv_fnmadd_s(void *env, uint64_t a, uint64_t b, uint64_t c, uint32_t rm);
uint64_t rv_fmadd_d(void *env, uint64_t a, uint64_t b, uint64_t c, uint32_t rm);
uint64_t rv_fmsub_d(void *env, uint64_t a, uint64_t b, uint64_t c, uint32_t rm);
uint64_t rv_fnmsub_d(void *env, uint64_t a, uint64_t b, uint64_t c, uint32_t rm);
uint64_t rv_fnmadd_d(void *env, uint64_t a, uint64_t b, uint64_t c, uint32_t rm);
// Pure (no env): sign injection and classification.
uint64_t rv_fsgnj_s(uint64_t a, uint64_t b);
uint64_t rv_fsgnjn_s(uint64_t a, uint64_t b);
uint64_t rv_fsgnjx_s(uint64_t a, uint64_t b);
uint64_t rv_fsgnj_d(uint64_t a, uint64_t b);
uint64_t rv_fsgnjn_d(uint64_t a, uint64_t b);
uint64_t rv_fsgnjx_d(uint64_t a, uint64_t b);
uint64_t rv_fclass_s(uint64_t a);
uint64_t rv_fclass_d(uint64_t a);
// Comparisons: 0 or 1.
uint64_t rv_feq_s(void *env, uint64_t a, uint64_t b);
uint64_t rv_flt_s(void *env, uint64_t a, uint64_t b);
uint64_t rv_fle_s(void *env, uint64_t a, uint64_t b);
uint64_t rv_feq_d(void *env, uint64_t a, uint64_t b);
uint64_t rv_flt_d(void *env, uint64_t a, uint64_t b);
uint64_t rv_fle_d(void *env, uint64_t a, uint64_t b);
// Conversions. fcvt_<to>_<from>: w/wu/l/lu integers (in x registers), s/d floats.
#define RV_FP_CVTS(X)                                                                                          \
    X(w_s) X(wu_s) X(l_s) X(lu_s) X(w_d) X(wu_d) X(l_d) X(lu_d) X(s_w) X(s_wu) X(s_l) X(s_lu) X(d_w) X(d_wu)    \
        X(d_l) X(d_lu) X(s_d) X(d_s)
#define RV_FP_DECL_CVT(k) uint64_t rv_fcvt_##k(void *env, uint64_t a, uint32_t rm);
RV_FP_CVTS(RV_FP_DECL_CVT)
#undef RV_FP_DECL_CVT
// clang-format on
}

// ---- Privileged side (cpu.cpp, csr.cpp, trap.cpp, mmu.cpp) used by other parts ----
// Record an exception for the engine (sets exc_cause/exc_tval and common.exception).
void raise_exception(RvCpu *cpu, uint64_t cause, uint64_t tval);
// The MMU (mmu.cpp): KeelCpuOps.tlb_fill, also used by the fetch-fault helper.
int cpu_tlb_fill(void *env, uint64_t vaddr, KeelAccess access, unsigned mmu_idx, int probe, KeelTlbFill *out);

} // namespace keel::rv
