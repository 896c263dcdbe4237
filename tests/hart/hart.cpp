// SPDX-License-Identifier: MIT
// The hart test fixture: wires the linked privileged-side sources to the fake kernel and a recording engine.
#include "hart.h"

#include <cstring>

// The privileged side linked into this test reaches the kernel through this
// table, as a module does through the one KEEL_MODULE defines.
KEEL_HIDDEN const KeelServices *keel_services = nullptr;

namespace hart_test
{

Calls calls;

namespace
{

void eng_tlb_flush(KeelCpuCommon *)
{
    ++calls.tlb_flush;
}
void eng_tlb_flush_page(KeelCpuCommon *, uint64_t vaddr)
{
    calls.tlb_flush_page.push_back(vaddr);
}
void eng_tb_flush(KeelCpuCommon *)
{
    ++calls.tb_flush;
}
void kick(KeelObject *)
{
    ++calls.kicks;
}

const KeelCpuEngine kEngine = {sizeof(KeelCpuEngine), eng_tlb_flush, eng_tlb_flush_page, eng_tb_flush, {}};

} // namespace

uint32_t csr_insn(unsigned funct3, unsigned rd, unsigned csr, unsigned rs1)
{
    return (csr << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | 0x73;
}

Hart::Hart()
{
    calls = Calls{};
    svc = *k.services();
    svc.cpu_kick = kick;
    keel_services = &svc;
    cpu.common.engine = &kEngine;
    cpu.priv = PRV_M;
    cpu.misa = (2ull << 62) | misa_bit('i') | misa_bit('m') | misa_bit('a') | misa_bit('f') | misa_bit('d') |
               misa_bit('c') | misa_bit('s') | misa_bit('u');
    cpu.mstatus = MSTATUS_XL64;
    cpu.mmu_mode = SATP_SV48;
    cpu.timebase_freq = 10000000;
    cpu.pmp_enabled = true;
    cpu.res_addr = ~0ull;
}

Hart::~Hart()
{
    if (cpu.stimecmp_timer) keel_services->timer_free(cpu.stimecmp_timer);
    keel_services = nullptr;
}

uint64_t Hart::csr(unsigned funct3, unsigned rd, unsigned num, unsigned rs1, uint64_t src)
{
    return rv_helper_csr(&cpu, src, csr_insn(funct3, rd, num, rs1));
}

bool Hart::raised(uint64_t cause)
{
    bool r = cpu.common.exception && cpu.exc_cause == cause;
    cpu.common.exception = 0;
    return r;
}

void Hart::put64(uint64_t paddr, uint64_t v)
{
    std::memcpy(k.ram().data() + (paddr - RAM_BASE), &v, 8);
}

uint64_t Hart::get64(uint64_t paddr)
{
    uint64_t v;
    std::memcpy(&v, k.ram().data() + (paddr - RAM_BASE), 8);
    return v;
}

void Hart::pmp_allow_all()
{
    cpu.pmpaddr[15] = (1ull << 54) - 1;
    cpu.pmpcfg[15] = PMP_R | PMP_W | PMP_X | (PMP_NAPOT << 3);
}

} // namespace hart_test
