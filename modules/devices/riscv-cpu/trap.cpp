// SPDX-License-Identifier: MIT
// RISC-V traps: exception and interrupt delivery with delegation, xRET, wfi, fences and the trap helpers.
#include "priv.h"

namespace keel::rv
{

namespace
{

// Fixed encodings, the tval of an illegal-instruction exception from their helpers.
constexpr uint32_t INSN_MRET = 0x30200073, INSN_SRET = 0x10200073, INSN_WFI = 0x10500073;

// Interrupts in decreasing priority (privileged spec 3.1.9).
constexpr unsigned kIrqPriority[] = {IRQ_MEI, IRQ_MSI, IRQ_MTI, IRQ_SEI, IRQ_SSI, IRQ_STI};

const char *exception_name(uint64_t cause)
{
    static const char *const names[] = {
        "insn_misaligned",   "insn_access_fault", "illegal_instruction", "breakpoint",      "load_misaligned",
        "load_access_fault", "store_misaligned",  "store_access_fault",  "ecall_from_u",    "ecall_from_s",
        "reserved",          "ecall_from_m",      "insn_page_fault",     "load_page_fault", "reserved",
        "store_page_fault",
    };
    return cause < KEEL_ARRAY_SIZE(names) ? names[cause] : "reserved";
}

const char *interrupt_name(uint64_t cause)
{
    switch (cause) {
    case IRQ_SSI:
        return "s_software";
    case IRQ_MSI:
        return "m_software";
    case IRQ_STI:
        return "s_timer";
    case IRQ_MTI:
        return "m_timer";
    case IRQ_SEI:
        return "s_external";
    case IRQ_MEI:
        return "m_external";
    default:
        return "reserved";
    }
}

char priv_letter(unsigned p)
{
    return p == PRV_M ? 'M' : p == PRV_S ? 'S' : p == PRV_U ? 'U' : '?';
}

uint64_t trap_vector(uint64_t tvec, uint64_t cause, bool interrupt)
{
    uint64_t base = tvec & ~3ull;
    // Vectored mode applies to interrupts only; exceptions go to BASE.
    return (tvec & 1) && interrupt ? base + 4 * cause : base;
}

void log_xret(RvCpu *cpu, const char *insn, unsigned from)
{
    keel_services->log_mask(cpu->obj, KEEL_LOG_INT, "%s: hart:%u, priv %c -> %c, pc:0x%016llx", insn,
                            cpu->common.cpu_index, priv_letter(from), priv_letter(cpu->priv),
                            (unsigned long long)cpu->pc);
}

} // namespace

void raise_exception(RvCpu *cpu, uint64_t cause, uint64_t tval)
{
    cpu->exc_cause = cause;
    cpu->exc_tval = tval;
    cpu->common.exception = 1;
}

void do_trap(RvCpu *cpu, uint64_t cause, bool interrupt, uint64_t tval)
{
    unsigned from = cpu->priv;
    uint64_t epc = cpu->pc;
    uint64_t deleg = interrupt ? cpu->mideleg : cpu->medeleg;
    // Traps never go to a less privileged mode: only traps from S or U can be delegated to S.
    bool to_s = from <= PRV_S && cause < 64 && ((deleg >> cause) & 1);
    uint64_t xcause = cause | (interrupt ? 1ull << 63 : 0);
    uint64_t s = cpu->mstatus;
    if (to_s) {
        cpu->scause = xcause;
        cpu->sepc = epc;
        cpu->stval = tval;
        s = (s & ~(MSTATUS_SPIE | MSTATUS_SIE | MSTATUS_SPP)) | ((s & MSTATUS_SIE) ? MSTATUS_SPIE : 0) |
            (from == PRV_S ? MSTATUS_SPP : 0);
        cpu->priv = PRV_S;
        cpu->pc = trap_vector(cpu->stvec, cause, interrupt);
    } else {
        cpu->mcause = xcause;
        cpu->mepc = epc;
        cpu->mtval = tval;
        s = (s & ~(MSTATUS_MPIE | MSTATUS_MIE | MSTATUS_MPP)) | ((s & MSTATUS_MIE) ? MSTATUS_MPIE : 0) |
            (uint64_t(from) << MSTATUS_MPP_SHIFT);
        cpu->priv = PRV_M;
        cpu->pc = trap_vector(cpu->mtvec, cause, interrupt);
    }
    cpu->mstatus = s;
    cpu->res_addr = ~0ull; // a trap breaks any LR/SC sequence
    // -plugin: discontinuity callbacks (ABI 1.2 kernels only).
    if (KEEL_SERVICE_AVAILABLE(keel_services, plugins_discon) && keel_services->plugins_discon)
        keel_services->plugins_discon(cpu->common.cpu_index,
                                      interrupt ? KEEL_PLUGIN_DISCON_INTERRUPT : KEEL_PLUGIN_DISCON_EXCEPTION,
                                      epc, cpu->pc);
    keel_services->log_mask(cpu->obj, KEEL_LOG_INT,
                            "riscv_cpu_do_interrupt: hart:%u, async:%d, cause:%016llx, epc:0x%016llx, "
                            "tval:0x%016llx, desc=%s, priv %c -> %c",
                            cpu->common.cpu_index, interrupt ? 1 : 0, (unsigned long long)cause,
                            (unsigned long long)epc, (unsigned long long)tval,
                            interrupt ? interrupt_name(cause) : exception_name(cause), priv_letter(from),
                            priv_letter(cpu->priv));
}

void cpu_exec_exception(void *env)
{
    auto *cpu = static_cast<RvCpu *>(env);
    uint64_t tval = cpu->exc_tval;
    // ebreak's tval is its own address, known exactly only now that the engine has restored the pc.
    if (cpu->exc_cause == EXC_BREAKPOINT) tval = cpu->pc;
    do_trap(cpu, cpu->exc_cause, false, tval);
}

int cpu_exec_interrupt(void *env)
{
    auto *cpu = static_cast<RvCpu *>(env);
    uint64_t pending = effective_mip(cpu) & cpu->mie;
    if (!pending) return 0;
    // M-level interrupts are taken below M or with MIE; S-level ones below S, or in S with SIE.
    // Interrupts for a more privileged mode come first, whatever their number.
    bool m_enabled = cpu->priv < PRV_M || (cpu->mstatus & MSTATUS_MIE);
    bool s_enabled = cpu->priv < PRV_S || (cpu->priv == PRV_S && (cpu->mstatus & MSTATUS_SIE));
    uint64_t m_pending = pending & ~cpu->mideleg, s_pending = pending & cpu->mideleg;
    uint64_t take = m_pending && m_enabled ? m_pending : s_pending && s_enabled ? s_pending : 0;
    for (unsigned irq : kIrqPriority) {
        if ((take >> irq) & 1) {
            cpu->common.halted = 0;
            do_trap(cpu, irq, true, 0);
            return 1;
        }
    }
    return 0;
}

int cpu_has_work(void *env)
{
    auto *cpu = static_cast<RvCpu *>(env);
    return (effective_mip(cpu) & cpu->mie) != 0;
}

} // namespace keel::rv

using namespace keel::rv;

extern "C" {

void rv_helper_raise(void *env, uint64_t cause, uint64_t tval)
{
    raise_exception(static_cast<RvCpu *>(env), cause, tval);
}

void rv_helper_ecall(void *env)
{
    auto *cpu = static_cast<RvCpu *>(env);
    // ECALL_U/S/M are 8 + the privilege.
    raise_exception(cpu, EXC_ECALL_U + cpu->priv, 0);
}

void rv_helper_ebreak(void *env)
{
    auto *cpu = static_cast<RvCpu *>(env);
    raise_exception(cpu, EXC_BREAKPOINT, cpu->pc); // exec_exception uses the restored pc
}

void rv_helper_mret(void *env)
{
    auto *cpu = static_cast<RvCpu *>(env);
    unsigned from = cpu->priv;
    if (from < PRV_M) return raise_exception(cpu, EXC_ILLEGAL_INSN, INSN_MRET);
    uint64_t s = cpu->mstatus;
    unsigned to = unsigned((s & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT);
    // MIE = MPIE, MPIE = 1, MPP = U (the least privileged mode); leaving M clears MPRV.
    s = (s & ~(MSTATUS_MIE | MSTATUS_MPP)) | ((s & MSTATUS_MPIE) ? MSTATUS_MIE : 0) | MSTATUS_MPIE;
    if (to != PRV_M) s &= ~MSTATUS_MPRV;
    if ((s ^ cpu->mstatus) & MSTATUS_MPRV) flush_tlb(cpu);
    cpu->mstatus = s;
    cpu->priv = to;
    cpu->pc = cpu->mepc & (has_ext(cpu, 'c') ? ~1ull : ~3ull);
    cpu->res_addr = ~0ull;
    request_exit(cpu); // the restored MIE may enable a pending interrupt
    log_xret(cpu, "mret", from);
}

void rv_helper_sret(void *env)
{
    auto *cpu = static_cast<RvCpu *>(env);
    unsigned from = cpu->priv;
    if (from < PRV_S || (from == PRV_S && (cpu->mstatus & MSTATUS_TSR)))
        return raise_exception(cpu, EXC_ILLEGAL_INSN, INSN_SRET);
    uint64_t s = cpu->mstatus;
    unsigned to = (s & MSTATUS_SPP) ? PRV_S : PRV_U;
    // SIE = SPIE, SPIE = 1, SPP = U; sret never returns to M, so MPRV is cleared.
    s = (s & ~(MSTATUS_SIE | MSTATUS_SPP | MSTATUS_MPRV)) | ((s & MSTATUS_SPIE) ? MSTATUS_SIE : 0) |
        MSTATUS_SPIE;
    if ((s ^ cpu->mstatus) & MSTATUS_MPRV) flush_tlb(cpu);
    cpu->mstatus = s;
    cpu->priv = to;
    cpu->pc = cpu->sepc & (has_ext(cpu, 'c') ? ~1ull : ~3ull);
    cpu->res_addr = ~0ull;
    request_exit(cpu); // the restored SIE, or the lower mode, may enable a pending interrupt
    log_xret(cpu, "sret", from);
}

void rv_helper_wfi(void *env)
{
    auto *cpu = static_cast<RvCpu *>(env);
    // Like QEMU: illegal at once in U mode, and below M when TW is set (the spec's time limit is 0).
    if (cpu->priv == PRV_U || (cpu->priv < PRV_M && (cpu->mstatus & MSTATUS_TW)))
        return raise_exception(cpu, EXC_ILLEGAL_INSN, INSN_WFI);
    if (!cpu_has_work(cpu)) cpu->common.halted = 1;
}

void rv_helper_sfence_vma(void *env, uint64_t vaddr, uint64_t asid, uint32_t insn)
{
    (void)asid; // translations are not tagged with ASIDs: every flush covers all of them
    auto *cpu = static_cast<RvCpu *>(env);
    if (cpu->priv == PRV_U || (cpu->priv == PRV_S && (cpu->mstatus & MSTATUS_TVM)))
        return raise_exception(cpu, EXC_ILLEGAL_INSN, insn);
    const KeelCpuEngine *e = cpu->common.engine;
    if (!e) return;
    unsigned rs1 = (insn >> 15) & 31;
    if (rs1 == 0 || !e->tlb_flush_page) {
        if (e->tlb_flush) e->tlb_flush(&cpu->common);
    } else {
        e->tlb_flush_page(&cpu->common, vaddr);
    }
}

void rv_helper_fence_i(void *env)
{
    auto *cpu = static_cast<RvCpu *>(env);
    const KeelCpuEngine *e = cpu->common.engine;
    if (e && e->tb_flush) e->tb_flush(&cpu->common);
}

void rv_helper_fs_dirty(void *env)
{
    auto *cpu = static_cast<RvCpu *>(env);
    cpu->mstatus |= MSTATUS_FS | MSTATUS_SD;
}

void rv_helper_check_frm(void *env, uint32_t insn)
{
    auto *cpu = static_cast<RvCpu *>(env);
    if (cpu->frm > 4) raise_exception(cpu, EXC_ILLEGAL_INSN, insn);
}

} // extern "C"
