// SPDX-License-Identifier: MIT
// RISC-V address translation: Sv39/Sv48 page walks with A/D updates, permission rules and PMP checks.
#include "priv.h"

#include <bit>

namespace keel::rv
{

namespace
{

constexpr uint64_t PTE_V = 1 << 0, PTE_R = 1 << 1, PTE_W = 1 << 2, PTE_X = 1 << 3, PTE_U = 1 << 4,
                   PTE_A = 1 << 6, PTE_D = 1 << 7;
constexpr unsigned PTE_PPN_SHIFT = 10;
constexpr uint64_t PTE_PPN_MASK = (1ull << 44) - 1;
constexpr unsigned PAGE_BITS = 12, LEVEL_BITS = 9;
constexpr uint32_t PROT_RWX = KEEL_PROT_READ | KEEL_PROT_WRITE | KEEL_PROT_EXEC;

uint32_t access_prot(KeelAccess a)
{
    return a == KEEL_ACCESS_WRITE ? KEEL_PROT_WRITE : a == KEEL_ACCESS_EXEC ? KEEL_PROT_EXEC : KEEL_PROT_READ;
}

int fault(RvCpu *cpu, uint64_t vaddr, KeelAccess access, bool page_fault, int probe, const char *why)
{
    if (probe) return KEEL_ERR;
    static const uint64_t page[] = {EXC_LOAD_PAGE_FAULT, EXC_STORE_PAGE_FAULT, EXC_INSN_PAGE_FAULT};
    static const uint64_t acc[] = {EXC_LOAD_ACCESS, EXC_STORE_ACCESS, EXC_INSN_ACCESS};
    raise_exception(cpu, (page_fault ? page : acc)[access], vaddr);
    if (keel_services->log_enabled(KEEL_LOG_MMU))
        keel_services->log_mask(cpu->obj, KEEL_LOG_MMU, "riscv: %s fault at 0x%016llx (%s, access %d)",
                                page_fault ? "page" : "access", (unsigned long long)vaddr, why, int(access));
    return KEEL_ERR;
}

// The physical range [lo, hi) of PMP entry i; lo == hi when it matches nothing.
void pmp_range(const RvCpu *cpu, unsigned i, uint64_t *lo, uint64_t *hi)
{
    uint64_t a = cpu->pmpaddr[i];
    *lo = *hi = 0;
    switch ((cpu->pmpcfg[i] & PMP_A) >> 3) {
    case PMP_TOR:
        *lo = i ? cpu->pmpaddr[i - 1] << 2 : 0;
        *hi = a << 2;
        if (*lo > *hi) *lo = *hi;
        break;
    case PMP_NA4:
        *lo = a << 2;
        *hi = *lo + 4;
        break;
    case PMP_NAPOT: {
        // yyyy0111: n trailing ones encode a 2^(n+3)-byte region.
        unsigned ones = unsigned(std::countr_one(a));
        uint64_t offset_mask = (2ull << ones) - 1;
        *lo = (a & ~offset_mask) << 2;
        *hi = *lo + (8ull << ones);
        break;
    }
    default:
        break;
    }
}

struct PmpDecision {
    uint32_t prot;
    bool uniform; // false: an entry matches part of the range only
};

// What PMP allows on the whole physical range [base, base + size) at privilege priv.
PmpDecision pmp_lookup(const RvCpu *cpu, uint64_t base, uint64_t size, unsigned priv)
{
    if (!cpu->pmp_enabled) return {PROT_RWX, true};
    uint64_t last = base + (size - 1);
    for (unsigned i = 0; i < PMP_ENTRIES; i++) {
        uint64_t lo, hi;
        pmp_range(cpu, i, &lo, &hi);
        if (lo == hi || last < lo || base >= hi) continue;
        // The lowest-numbered entry that matches any byte decides, and must match all of them.
        if (base < lo || last >= hi) return {0, false};
        uint8_t c = cpu->pmpcfg[i];
        if (priv == PRV_M && !(c & PMP_L)) return {PROT_RWX, true};
        uint32_t prot = ((c & PMP_R) ? KEEL_PROT_READ : 0) | ((c & PMP_W) ? KEEL_PROT_WRITE : 0) |
                        ((c & PMP_X) ? KEEL_PROT_EXEC : 0);
        return {prot, true};
    }
    // No match: M is allowed; S and U are denied since PMP entries are implemented.
    return {priv == PRV_M ? PROT_RWX : 0, true};
}

bool pmp_allows(const RvCpu *cpu, uint64_t paddr, uint64_t size, unsigned priv, uint32_t prot)
{
    PmpDecision d = pmp_lookup(cpu, paddr, size, priv);
    return d.uniform && (d.prot & prot) == prot;
}

// Finish a translation: apply PMP to the final physical page and choose how
// much of it the engine may cache. `bits` is the size of the mapping.
int finish(RvCpu *cpu, uint64_t vaddr, uint64_t paddr, KeelAccess access, unsigned priv, uint32_t prot,
           unsigned bits, int probe, KeelTlbFill *out)
{
    // Cache the largest aligned range (mapping, else 4 KiB) that one PMP decision governs, else nothing.
    PmpDecision d{0, false};
    unsigned cache_bits = 0;
    for (unsigned b : {bits, PAGE_BITS}) {
        d = pmp_lookup(cpu, paddr & ~((1ull << b) - 1), 1ull << b, priv);
        if (d.uniform) {
            cache_bits = b;
            break;
        }
    }
    if (!cache_bits) d = pmp_lookup(cpu, paddr, 1, priv);
    prot &= d.prot;
    if (!(prot & access_prot(access))) return fault(cpu, vaddr, access, false, probe, "pmp");
    out->paddr = paddr;
    out->prot = prot;
    out->page_bits = cache_bits;
    return KEEL_OK;
}

} // namespace

int cpu_tlb_fill(void *env, uint64_t vaddr, KeelAccess access, unsigned mmu_idx, int probe, KeelTlbFill *out)
{
    auto *cpu = static_cast<RvCpu *>(env);
    if (unsigned(access) > KEEL_ACCESS_EXEC) access = KEEL_ACCESS_READ;
    unsigned priv = mmu_idx == MMU_M ? PRV_M : mmu_idx == MMU_S ? PRV_S : PRV_U;
    uint32_t mode = uint32_t(cpu->satp >> 60);
    if (priv == PRV_M || mode == SATP_BARE)
        return finish(cpu, vaddr, vaddr, access, priv, PROT_RWX, PAGE_BITS, probe, out);

    unsigned levels = mode == SATP_SV48 ? 4 : 3;
    unsigned va_bits = PAGE_BITS + LEVEL_BITS * levels;
    // The bits above the virtual address width must copy its top bit.
    if (uint64_t(int64_t(vaddr << (64 - va_bits)) >> (64 - va_bits)) != vaddr)
        return fault(cpu, vaddr, access, true, probe, "non-canonical");

    uint64_t table = (cpu->satp & PTE_PPN_MASK) << PAGE_BITS;
    for (int level = int(levels) - 1; level >= 0; level--) {
        unsigned shift = PAGE_BITS + LEVEL_BITS * unsigned(level);
        uint64_t pte_addr = table + ((vaddr >> shift) & 0x1ff) * 8;
        // Page-table accesses are S-mode accesses for PMP.
        if (!pmp_allows(cpu, pte_addr, 8, PRV_S, KEEL_PROT_READ))
            return fault(cpu, vaddr, access, false, probe, "pmp on pte");
        uint64_t pte;
        if (keel_services->dma_read(cpu->obj, pte_addr, &pte, 8) != KEEL_MEM_OK)
            return fault(cpu, vaddr, access, false, probe, "pte not readable");
        // Bits 63:54 (N, PBMT, reserved): no Svnapot or Svpbmt here.
        if (!(pte & PTE_V) || (pte >> 54) || ((pte & PTE_W) && !(pte & PTE_R)))
            return fault(cpu, vaddr, access, true, probe, "invalid pte");
        uint64_t ppn = (pte >> PTE_PPN_SHIFT) & PTE_PPN_MASK;
        if (!(pte & (PTE_R | PTE_X))) {
            table = ppn << PAGE_BITS; // pointer to the next level
            continue;
        }

        // A leaf. Permissions first, then alignment, then A/D (spec order).
        bool u_page = pte & PTE_U;
        bool sum = cpu->mstatus & MSTATUS_SUM, mxr = cpu->mstatus & MSTATUS_MXR;
        if (priv == PRV_U && !u_page) return fault(cpu, vaddr, access, true, probe, "supervisor page");
        uint32_t prot = ((pte & PTE_R) || (mxr && (pte & PTE_X)) ? KEEL_PROT_READ : 0) |
                        ((pte & PTE_W) ? KEEL_PROT_WRITE : 0) | ((pte & PTE_X) ? KEEL_PROT_EXEC : 0);
        if (priv == PRV_S && u_page) {
            // S never executes user pages, and reads or writes them only with SUM.
            prot &= sum ? ~uint32_t(KEEL_PROT_EXEC) : 0;
        }
        if (!(prot & access_prot(access))) return fault(cpu, vaddr, access, true, probe, "permission");
        uint64_t low_ppn_mask = (1ull << (LEVEL_BITS * unsigned(level))) - 1;
        if (ppn & low_ppn_mask) return fault(cpu, vaddr, access, true, probe, "misaligned superpage");

        uint64_t want = PTE_A | (access == KEEL_ACCESS_WRITE ? PTE_D : 0);
        if ((pte & want) != want) {
            if (!pmp_allows(cpu, pte_addr, 8, PRV_S, KEEL_PROT_WRITE))
                return fault(cpu, vaddr, access, false, probe, "pmp on pte update");
            pte |= want;
            if (keel_services->dma_write(cpu->obj, pte_addr, &pte, 8) != KEEL_MEM_OK)
                return fault(cpu, vaddr, access, false, probe, "pte not writable");
        }
        // Writes must come back here to set D.
        if (!(pte & PTE_D)) prot &= ~uint32_t(KEEL_PROT_WRITE);
        uint64_t paddr = ((ppn & ~low_ppn_mask) << PAGE_BITS) | (vaddr & ((1ull << shift) - 1));
        return finish(cpu, vaddr, paddr, access, priv, prot, shift, probe, out);
    }
    return fault(cpu, vaddr, access, true, probe, "no leaf");
}

bool cpu_debug_translate(RvCpu *cpu, uint64_t vaddr, uint64_t *paddr)
{
    unsigned priv = cpu->priv;
    if (priv == PRV_M && (cpu->mstatus & MSTATUS_MPRV))
        priv = unsigned((cpu->mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT);
    uint32_t mode = uint32_t(cpu->satp >> 60);
    if (priv == PRV_M || mode == SATP_BARE) {
        *paddr = vaddr;
        return true;
    }
    unsigned levels = mode == SATP_SV48 ? 4 : 3;
    unsigned va_bits = PAGE_BITS + LEVEL_BITS * levels;
    if (uint64_t(int64_t(vaddr << (64 - va_bits)) >> (64 - va_bits)) != vaddr) return false;
    uint64_t table = (cpu->satp & PTE_PPN_MASK) << PAGE_BITS;
    for (int level = int(levels) - 1; level >= 0; level--) {
        unsigned shift = PAGE_BITS + LEVEL_BITS * unsigned(level);
        uint64_t pte;
        if (keel_services->dma_read(cpu->obj, table + ((vaddr >> shift) & 0x1ff) * 8, &pte, 8) != KEEL_MEM_OK)
            return false;
        if (!(pte & PTE_V) || (pte >> 54) || ((pte & PTE_W) && !(pte & PTE_R))) return false;
        uint64_t ppn = (pte >> PTE_PPN_SHIFT) & PTE_PPN_MASK;
        if (!(pte & (PTE_R | PTE_X))) {
            table = ppn << PAGE_BITS;
            continue;
        }
        uint64_t low_ppn_mask = (1ull << (LEVEL_BITS * unsigned(level))) - 1;
        if (ppn & low_ppn_mask) return false;
        *paddr = ((ppn & ~low_ppn_mask) << PAGE_BITS) | (vaddr & ((1ull << shift) - 1));
        return true;
    }
    return false;
}

} // namespace keel::rv
