// SPDX-License-Identifier: MIT
// RISC-V control and status registers: Zicsr access rules, WARL fields, counters, Sstc and PMP registers.
#include "priv.h"

namespace keel::rv
{

namespace
{

constexpr uint64_t SSTATUS_READ = MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_UBE | MSTATUS_SPP | MSTATUS_VS |
                                  MSTATUS_FS | MSTATUS_XS | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_UXL |
                                  MSTATUS_SD;
constexpr uint64_t SSTATUS_WRITE =
    MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_FS | MSTATUS_SUM | MSTATUS_MXR;
constexpr uint64_t MSTATUS_WRITE = SSTATUS_WRITE | MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP | MSTATUS_MPRV |
                                   MSTATUS_TVM | MSTATUS_TW | MSTATUS_TSR;
// Exceptions S-mode may handle: not ecall from M (11) nor the reserved/H causes.
constexpr uint64_t DELEGABLE_EXCEPTIONS =
    0x3ffull | (1ull << EXC_INSN_PAGE_FAULT) | (1ull << EXC_LOAD_PAGE_FAULT) | (1ull << EXC_STORE_PAGE_FAULT);
// pmpaddr holds physical address bits 55:2.
constexpr uint64_t PMPADDR_MASK = (1ull << 54) - 1;
constexpr unsigned COUNTER_TM = 1; // mcounteren/scounteren/mcountinhibit bit of time

uint64_t with_sd(uint64_t s)
{
    bool dirty =
        (s & MSTATUS_FS) == MSTATUS_FS || (s & MSTATUS_XS) == MSTATUS_XS || (s & MSTATUS_VS) == MSTATUS_VS;
    return dirty ? s | MSTATUS_SD : s & ~MSTATUS_SD;
}

uint64_t epc_mask(const RvCpu *cpu)
{
    return has_ext(cpu, 'c') ? ~1ull : ~3ull;
}

bool stce(const RvCpu *cpu)
{
    return cpu->sstc && (cpu->menvcfg & MENVCFG_STCE);
}

// cycle/time/instret/hpmcounterN from S or U mode need their bit in mcounteren (and scounteren for U).
bool counter_enabled(const RvCpu *cpu, unsigned bit, unsigned priv)
{
    if (priv == PRV_M) return true;
    if (!((cpu->mcounteren >> bit) & 1)) return false;
    return priv == PRV_S || ((cpu->scounteren >> bit) & 1);
}

bool is_pmp_csr(unsigned csr)
{
    return csr >= CSR_PMPCFG0 && csr <= CSR_PMPADDR63;
}

bool pmp_locked(const RvCpu *cpu, unsigned i)
{
    return i < PMP_ENTRIES && (cpu->pmpcfg[i] & PMP_L);
}

// Checks that depend on the hart's state rather than on the CSR number: FS,
// counter enables, TVM, Sstc's STCE. false: illegal instruction.
bool csr_state_allows(const RvCpu *cpu, unsigned csr, unsigned priv)
{
    switch (csr) {
    case CSR_FFLAGS:
    case CSR_FRM:
    case CSR_FCSR:
        return has_ext(cpu, 'f') && mstatus_fs(cpu) != FS_OFF;
    case CSR_SATP:
        return !(priv == PRV_S && (cpu->mstatus & MSTATUS_TVM));
    case CSR_STIMECMP:
        return cpu->sstc && (priv == PRV_M || (stce(cpu) && ((cpu->mcounteren >> COUNTER_TM) & 1)));
    default:
        if (csr >= CSR_CYCLE && csr <= CSR_HPMCOUNTER31) return counter_enabled(cpu, csr & 31, priv);
        if (is_pmp_csr(csr)) return cpu->pmp_enabled;
        return true;
    }
}

// The value of `csr`; false if it does not exist.
bool csr_read(RvCpu *cpu, unsigned csr, uint64_t *v)
{
    switch (csr) {
    case CSR_FFLAGS:
        *v = cpu->fflags & 0x1f;
        return true;
    case CSR_FRM:
        *v = cpu->frm & 7;
        return true;
    case CSR_FCSR:
        *v = ((cpu->frm & 7) << 5) | (cpu->fflags & 0x1f);
        return true;
    // cycle counts retired instructions: keel has no cycle model.
    case CSR_CYCLE:
    case CSR_INSTRET:
    case CSR_MCYCLE:
    case CSR_MINSTRET:
        *v = cpu->instret;
        return true;
    case CSR_TIME:
        *v = read_time(cpu);
        return true;
    case CSR_SSTATUS:
        *v = cpu->mstatus & SSTATUS_READ;
        return true;
    case CSR_SIE:
        *v = cpu->mie & cpu->mideleg & S_INTERRUPTS;
        return true;
    case CSR_STVEC:
        *v = cpu->stvec;
        return true;
    case CSR_SCOUNTEREN:
        *v = cpu->scounteren;
        return true;
    case CSR_SENVCFG:
        *v = cpu->senvcfg;
        return true;
    case CSR_SSCRATCH:
        *v = cpu->sscratch;
        return true;
    case CSR_SEPC:
        *v = cpu->sepc & epc_mask(cpu);
        return true;
    case CSR_SCAUSE:
        *v = cpu->scause;
        return true;
    case CSR_STVAL:
        *v = cpu->stval;
        return true;
    case CSR_SIP:
        *v = effective_mip(cpu) & cpu->mideleg & S_INTERRUPTS;
        return true;
    case CSR_STIMECMP:
        *v = cpu->stimecmp;
        return cpu->sstc;
    case CSR_SATP:
        *v = cpu->satp;
        return true;
    case CSR_MSTATUS:
        *v = cpu->mstatus;
        return true;
    case CSR_MISA:
        *v = cpu->misa;
        return true;
    case CSR_MEDELEG:
        *v = cpu->medeleg;
        return true;
    case CSR_MIDELEG:
        *v = cpu->mideleg;
        return true;
    case CSR_MIE:
        *v = cpu->mie;
        return true;
    case CSR_MTVEC:
        *v = cpu->mtvec;
        return true;
    case CSR_MCOUNTEREN:
        *v = cpu->mcounteren;
        return true;
    case CSR_MENVCFG:
        *v = cpu->menvcfg;
        return true;
    case CSR_MCOUNTINHIBIT:
        *v = cpu->mcountinhibit;
        return true;
    case CSR_MSCRATCH:
        *v = cpu->mscratch;
        return true;
    case CSR_MEPC:
        *v = cpu->mepc & epc_mask(cpu);
        return true;
    case CSR_MCAUSE:
        *v = cpu->mcause;
        return true;
    case CSR_MTVAL:
        *v = cpu->mtval;
        return true;
    case CSR_MIP:
        *v = effective_mip(cpu);
        return true;
    case CSR_MHARTID:
        *v = cpu->mhartid;
        return true;
    case CSR_MVENDORID:
    case CSR_MARCHID:
    case CSR_MIMPID:
    case CSR_MCONFIGPTR:
    // No trigger module: tselect reads 0 and tdata1 = 0 says "no trigger" to OpenSBI's probe.
    case CSR_TSELECT:
        *v = 0;
        return true;
    default:
        break;
    }
    if ((csr >= CSR_HPMCOUNTER3 && csr <= CSR_HPMCOUNTER31) ||
        (csr >= CSR_MHPMCOUNTER3 && csr <= CSR_MHPMCOUNTER31) ||
        (csr >= CSR_MHPMEVENT3 && csr <= CSR_MHPMEVENT31) || (csr >= CSR_TDATA1 && csr <= CSR_TDATA3)) {
        *v = 0;
        return true;
    }
    if (csr >= CSR_PMPCFG0 && csr <= CSR_PMPCFG15) {
        if (csr & 1) return false; // RV64: odd pmpcfg registers do not exist
        unsigned first = (csr - CSR_PMPCFG0) * 4;
        uint64_t r = 0;
        for (unsigned i = 0; i < 8; i++)
            if (first + i < PMP_ENTRIES) r |= uint64_t(cpu->pmpcfg[first + i]) << (8 * i);
        *v = r;
        return true;
    }
    if (csr >= CSR_PMPADDR0 && csr <= CSR_PMPADDR63) {
        unsigned i = csr - CSR_PMPADDR0;
        *v = i < PMP_ENTRIES ? cpu->pmpaddr[i] : 0; // entries 16-63 are not implemented: read-only 0
        return true;
    }
    return false;
}

void write_mstatus(RvCpu *cpu, uint64_t v, uint64_t writable)
{
    uint64_t old = cpu->mstatus;
    if (!has_ext(cpu, 'f')) writable &= ~MSTATUS_FS;
    uint64_t s = (old & ~writable) | (v & writable);
    // MPP is WARL over the implemented modes (U, S, M): the reserved 2 keeps the old mode.
    if (((s & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT) == 2) s = (s & ~MSTATUS_MPP) | (old & MSTATUS_MPP);
    s = with_sd(s | MSTATUS_XL64);
    cpu->mstatus = s;
    // The MMU index already encodes privilege and MPRV/MPP, but SUM and MXR
    // change what a cached S/U translation allows.
    if ((old ^ s) & (MSTATUS_MPRV | MSTATUS_SUM | MSTATUS_MXR)) flush_tlb(cpu);
    request_exit(cpu); // MIE/SIE may have enabled a pending interrupt
}

void write_pmpcfg(RvCpu *cpu, unsigned csr, uint64_t v)
{
    unsigned first = (csr - CSR_PMPCFG0) * 4;
    for (unsigned i = 0; i < 8; i++) {
        unsigned e = first + i;
        if (e >= PMP_ENTRIES || pmp_locked(cpu, e)) continue;
        uint8_t b = uint8_t(v >> (8 * i)) & (PMP_L | PMP_A | PMP_X | PMP_W | PMP_R);
        if ((b & PMP_W) && !(b & PMP_R)) b &= uint8_t(~PMP_W); // R=0 W=1 is reserved
        cpu->pmpcfg[e] = b;
    }
    flush_tlb(cpu);
}

void write_pmpaddr(RvCpu *cpu, unsigned i, uint64_t v)
{
    if (i >= PMP_ENTRIES || pmp_locked(cpu, i)) return;
    // A locked TOR entry also locks the address below it (its lower bound).
    if (i + 1 < PMP_ENTRIES && pmp_locked(cpu, i + 1) && ((cpu->pmpcfg[i + 1] & PMP_A) >> 3) == PMP_TOR)
        return;
    cpu->pmpaddr[i] = v & PMPADDR_MASK;
    flush_tlb(cpu);
}

// Store `v` into `csr` (which exists and may be written); false if it does not exist.
bool csr_write(RvCpu *cpu, unsigned csr, uint64_t v)
{
    switch (csr) {
    case CSR_FFLAGS:
        cpu->fflags = uint32_t(v & 0x1f);
        break;
    case CSR_FRM:
        cpu->frm = uint32_t(v & 7);
        break;
    case CSR_FCSR:
        cpu->fflags = uint32_t(v & 0x1f);
        cpu->frm = uint32_t((v >> 5) & 7);
        break;
    case CSR_MCYCLE:
    case CSR_MINSTRET:
        cpu->instret = v;
        return true;
    case CSR_SSTATUS:
        write_mstatus(cpu, v, SSTATUS_WRITE);
        return true;
    case CSR_SIE: {
        uint64_t m = cpu->mideleg & S_INTERRUPTS;
        cpu->mie = (cpu->mie & ~m) | (v & m);
        request_exit(cpu);
        return true;
    }
    case CSR_STVEC:
    case CSR_MTVEC: {
        // Only direct (0) and vectored (1) modes exist: other modes leave the register unchanged.
        if ((v & 3) >= 2) return true;
        (csr == CSR_STVEC ? cpu->stvec : cpu->mtvec) = v;
        return true;
    }
    case CSR_SCOUNTEREN:
        cpu->scounteren = v & 0xffffffffu;
        return true;
    case CSR_SENVCFG:
        cpu->senvcfg = v & MENVCFG_FIOM;
        return true;
    case CSR_SSCRATCH:
        cpu->sscratch = v;
        return true;
    case CSR_SEPC:
        cpu->sepc = v & epc_mask(cpu);
        return true;
    case CSR_SCAUSE:
        cpu->scause = v;
        return true;
    case CSR_STVAL:
        cpu->stval = v;
        return true;
    case CSR_SIP: {
        // Only SSIP is writable through sip, and only when delegated.
        uint64_t m = cpu->mideleg & MIP_SSIP;
        cpu->mip_sw = (cpu->mip_sw & ~m) | (v & m);
        request_exit(cpu);
        return true;
    }
    case CSR_STIMECMP:
        if (!cpu->sstc) return false;
        cpu->stimecmp = v;
        update_stip(cpu);
        request_exit(cpu);
        return true;
    case CSR_SATP: {
        uint32_t mode = uint32_t(v >> 60);
        // WARL: a MODE this hart does not implement makes the whole write have no effect.
        if (mode != SATP_BARE && !(mode >= SATP_SV39 && mode <= cpu->mmu_mode)) return true;
        cpu->satp = v;
        flush_tlb(cpu);
        return true;
    }
    case CSR_MSTATUS:
        write_mstatus(cpu, v, MSTATUS_WRITE);
        return true;
    case CSR_MISA:
        return true; // the extensions cannot be switched at run time
    case CSR_MEDELEG:
        cpu->medeleg = v & DELEGABLE_EXCEPTIONS;
        return true;
    case CSR_MIDELEG:
        cpu->mideleg = v & S_INTERRUPTS;
        request_exit(cpu);
        return true;
    case CSR_MIE:
        cpu->mie = v & ALL_INTERRUPTS;
        request_exit(cpu);
        return true;
    case CSR_MCOUNTEREN:
        cpu->mcounteren = v & 0xffffffffu;
        return true;
    case CSR_MENVCFG:
        cpu->menvcfg = v & (MENVCFG_FIOM | (cpu->sstc ? MENVCFG_STCE : 0));
        update_stip(cpu);
        request_exit(cpu);
        return true;
    case CSR_MCOUNTINHIBIT:
        cpu->mcountinhibit = v & ~(1ull << COUNTER_TM) & 0xffffffffu;
        return true;
    case CSR_MSCRATCH:
        cpu->mscratch = v;
        return true;
    case CSR_MEPC:
        cpu->mepc = v & epc_mask(cpu);
        return true;
    case CSR_MCAUSE:
        cpu->mcause = v;
        return true;
    case CSR_MTVAL:
        cpu->mtval = v;
        return true;
    case CSR_MIP: {
        // M writes SSIP, SEIP (its software half) and STIP unless Sstc drives STIP.
        uint64_t m = MIP_SSIP | MIP_SEIP | (stce(cpu) ? 0 : MIP_STIP);
        cpu->mip_sw = (cpu->mip_sw & ~m) | (v & m);
        request_exit(cpu);
        return true;
    }
    case CSR_TSELECT:
        return true; // one "trigger" index 0 that is no trigger
    default:
        if ((csr >= CSR_MHPMCOUNTER3 && csr <= CSR_MHPMCOUNTER31) ||
            (csr >= CSR_MHPMEVENT3 && csr <= CSR_MHPMEVENT31) || (csr >= CSR_TDATA1 && csr <= CSR_TDATA3))
            return true; // hardwired to zero
        if (csr >= CSR_PMPCFG0 && csr <= CSR_PMPCFG15) {
            if (csr & 1) return false;
            write_pmpcfg(cpu, csr, v);
            return true;
        }
        if (csr >= CSR_PMPADDR0 && csr <= CSR_PMPADDR63) {
            write_pmpaddr(cpu, csr - CSR_PMPADDR0, v);
            return true;
        }
        return false;
    }
    // fflags/frm/fcsr: the FP state changed.
    cpu->mstatus = with_sd(cpu->mstatus | MSTATUS_FS);
    return true;
}

uint64_t illegal(RvCpu *cpu, uint32_t insn)
{
    raise_exception(cpu, EXC_ILLEGAL_INSN, insn);
    return 0;
}

} // namespace

uint64_t effective_mip(const RvCpu *cpu)
{
    uint64_t sw = cpu->mip_sw;
    if (stce(cpu)) sw &= ~MIP_STIP;
    return cpu->mip.load(std::memory_order_relaxed) | sw;
}

uint64_t read_time(const RvCpu *cpu)
{
    int64_t ns = keel_services->clock_get_ns(KEEL_CLOCK_VIRTUAL);
    if (ns < 0) ns = 0;
    return uint64_t((unsigned __int128)uint64_t(ns) * cpu->timebase_freq / 1000000000u);
}

void update_stip(RvCpu *cpu)
{
    if (!cpu->sstc) return;
    KeelTimer *t = cpu->stimecmp_timer;
    if (!stce(cpu)) {
        cpu->mip.fetch_and(~MIP_STIP);
        if (t) keel_services->timer_del(t);
        return;
    }
    if (read_time(cpu) >= cpu->stimecmp) {
        cpu->mip.fetch_or(MIP_STIP);
        if (t) keel_services->timer_del(t);
        return;
    }
    cpu->mip.fetch_and(~MIP_STIP);
    if (!t || !cpu->timebase_freq) return;
    // The first nanosecond at which time >= stimecmp.
    unsigned __int128 ns =
        ((unsigned __int128)cpu->stimecmp * 1000000000u + cpu->timebase_freq - 1) / cpu->timebase_freq;
    if (ns > (unsigned __int128)INT64_MAX)
        keel_services->timer_del(t); // never, in practice
    else
        keel_services->timer_mod(t, int64_t(ns));
}

void stimecmp_timer_fired(void *opaque)
{
    auto *cpu = static_cast<RvCpu *>(opaque);
    update_stip(cpu);
    request_exit(cpu);
    if (keel_services->cpu_kick) keel_services->cpu_kick(cpu->obj);
}

bool csr_read_debug(RvCpu *cpu, unsigned csr, uint64_t *value)
{
    if (is_pmp_csr(csr) && !cpu->pmp_enabled) return false;
    return csr < 4096 && csr_read(cpu, csr, value);
}

bool csr_write_debug(RvCpu *cpu, unsigned csr, uint64_t value)
{
    uint64_t dummy;
    if (csr >= 4096 || !csr_read_debug(cpu, csr, &dummy)) return false;
    return csr_write(cpu, csr, value);
}

} // namespace keel::rv

using namespace keel::rv;

extern "C" uint64_t rv_helper_csr(void *env, uint64_t src, uint32_t insn)
{
    auto *cpu = static_cast<RvCpu *>(env);
    unsigned csr = insn >> 20;
    unsigned funct3 = (insn >> 12) & 7;
    unsigned rd = (insn >> 7) & 31;
    unsigned rs1 = (insn >> 15) & 31; // the register number, or the uimm
    unsigned op = funct3 & 3;         // 1 RW, 2 RS, 3 RC
    if (op == 0) return illegal(cpu, insn);
    // CSRRW never skips the write; CSRRS/CSRRC with x0/uimm 0 do not write.
    bool writes = op == 1 || rs1 != 0;
    // CSRRW with rd = x0 does not read (no read side effects).
    bool reads = op != 1 || rd != 0;

    // csr[9:8]: lowest privilege allowed; csr[11:10] = 3: read-only.
    if (cpu->priv < ((csr >> 8) & 3)) return illegal(cpu, insn);
    if (writes && (csr >> 10) == 3) return illegal(cpu, insn);
    if (csr == CSR_SEED || !csr_state_allows(cpu, csr, cpu->priv)) return illegal(cpu, insn);

    uint64_t old = 0;
    if (!csr_read(cpu, csr, &old)) {
        keel_services->log_mask(cpu->obj, KEEL_LOG_UNIMP, "riscv: unimplemented CSR 0x%03x (insn 0x%08x)",
                                csr, insn);
        return illegal(cpu, insn);
    }
    if (writes) {
        uint64_t base = old;
        // Read-modify-write of mip uses the software-written SEIP, not the line OR-ed in.
        if (csr == CSR_MIP) base = (old & ~MIP_SEIP) | (cpu->mip_sw & MIP_SEIP);
        uint64_t v = op == 1 ? src : op == 2 ? base | src : base & ~src;
        csr_write(cpu, csr, v);
    }
    return reads ? old : 0;
}
