// SPDX-License-Identifier: MIT
// Zicsr on the hart: access rules (privilege, read-only, suppressed reads/writes), WARL fields, counters, PMP
// CSRs.
#include <catch2/catch.hpp>

#include "hart.h"

using namespace hart_test;

namespace
{

// CSR numbers come from priv.h (CSR_*); a few more for these tests.
enum : unsigned {
    CSR_PMPCFG1 = CSR_PMPCFG0 + 1,
    CSR_PMPCFG2 = CSR_PMPCFG0 + 2,
    CSR_PMPADDR20 = CSR_PMPADDR0 + 20
};

} // namespace

TEST_CASE("CSR privilege comes from csr bits 9:8", "[hart][csr]")
{
    Hart h;
    h.cpu.mscratch = 0x1234;
    CHECK(h.csrr(CSR_MSCRATCH) == 0x1234);
    CHECK(h.clean());

    h.cpu.priv = PRV_S;
    h.csrr(CSR_MSCRATCH);
    CHECK(h.raised_illegal(csr_insn(2, 1, CSR_MSCRATCH, 0)));
    h.cpu.sepc = 0x80000000;
    CHECK(h.csrr(CSR_SEPC) == 0x80000000);
    CHECK(h.clean());

    h.cpu.priv = PRV_U;
    h.csrr(CSR_SSTATUS);
    CHECK(h.raised(EXC_ILLEGAL_INSN));
    // Hypervisor CSRs (csr[9:8] = 2) do not exist: illegal even in M.
    h.cpu.priv = PRV_M;
    h.csrr(0x600);
    CHECK(h.raised(EXC_ILLEGAL_INSN));
}

TEST_CASE("Read-only CSRs trap only when the instruction writes", "[hart][csr]")
{
    Hart h;
    h.cpu.mhartid = 3;
    CHECK(h.csrr(CSR_MHARTID) == 3); // csrrs rd, mhartid, x0: no write
    CHECK(h.clean());
    CHECK(h.csr(6, 1, CSR_MHARTID, 0, 0) == 3); // csrrsi with uimm 0: no write
    CHECK(h.clean());
    // csrrs with a non-zero rs1 writes even if x[rs1] is 0.
    h.csr(2, 1, CSR_MHARTID, 5, 0);
    CHECK(h.raised_illegal(csr_insn(2, 1, CSR_MHARTID, 5)));
    h.csr(1, 0, CSR_MHARTID, 0, 0); // csrrw always writes
    CHECK(h.raised(EXC_ILLEGAL_INSN));
    h.csr(7, 1, CSR_CYCLE, 1, 1);
    CHECK(h.raised(EXC_ILLEGAL_INSN));
}

TEST_CASE("CSRRW/S/C and their immediate forms", "[hart][csr]")
{
    Hart h;
    h.cpu.mscratch = 0xf0;
    CHECK(h.csr(1, 1, CSR_MSCRATCH, 5, 0x0f) == 0xf0); // csrrw
    CHECK(h.cpu.mscratch == 0x0f);
    CHECK(h.csr(2, 1, CSR_MSCRATCH, 5, 0x300) == 0x0f); // csrrs
    CHECK(h.cpu.mscratch == 0x30f);
    CHECK(h.csr(3, 1, CSR_MSCRATCH, 5, 0x3) == 0x30f); // csrrc
    CHECK(h.cpu.mscratch == 0x30c);
    CHECK(h.csr(5, 1, CSR_MSCRATCH, 7, 7) == 0x30c); // csrrwi
    CHECK(h.cpu.mscratch == 7);
    CHECK(h.csr(6, 1, CSR_MSCRATCH, 8, 8) == 7); // csrrsi
    CHECK(h.cpu.mscratch == 15);
    CHECK(h.csr(7, 1, CSR_MSCRATCH, 1, 1) == 15); // csrrci
    CHECK(h.cpu.mscratch == 14);
    // csrrw with rd = x0 performs no read: the helper returns nothing for rd.
    CHECK(h.csr(1, 0, CSR_MSCRATCH, 5, 99) == 0);
    CHECK(h.cpu.mscratch == 99);
    CHECK(h.clean());
}

TEST_CASE("Unknown CSRs and seed are illegal, unknown ones are logged as unimplemented", "[hart][csr]")
{
    Hart h;
    h.csrr(0x7c0);
    CHECK(h.raised_illegal(csr_insn(2, 1, 0x7c0, 0)));
    CHECK(h.k.logged(KEEL_LOG_UNIMP, "0x7c0"));
    h.csrr(CSR_SEED);
    CHECK(h.raised(EXC_ILLEGAL_INSN));
    h.csrr(0x7b0); // dcsr: debug mode only
    CHECK(h.raised(EXC_ILLEGAL_INSN));
}

TEST_CASE("mstatus is WARL: writable fields, legal MPP, SD from FS, fixed UXL/SXL", "[hart][csr]")
{
    Hart h;
    h.csrw(CSR_MSTATUS, ~0ull);
    uint64_t s = h.csrr(CSR_MSTATUS);
    uint64_t writable = MSTATUS_SIE | MSTATUS_MIE | MSTATUS_SPIE | MSTATUS_MPIE | MSTATUS_SPP | MSTATUS_MPP |
                        MSTATUS_FS | MSTATUS_MPRV | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_TVM | MSTATUS_TW |
                        MSTATUS_TSR;
    CHECK(s == (writable | MSTATUS_SD | MSTATUS_XL64));

    h.csrw(CSR_MSTATUS, 0);
    CHECK(h.csrr(CSR_MSTATUS) == MSTATUS_XL64);
    // MPP = 2 is reserved: the previous mode stays.
    h.csrw(CSR_MSTATUS, 1ull << MSTATUS_MPP_SHIFT);
    h.csrw(CSR_MSTATUS, 2ull << MSTATUS_MPP_SHIFT);
    CHECK(((h.cpu.mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT) == PRV_S);
    // FS initial (1) is not dirty.
    h.csrw(CSR_MSTATUS, 1ull << MSTATUS_FS_SHIFT);
    CHECK((h.csrr(CSR_MSTATUS) & MSTATUS_SD) == 0);
    CHECK(h.cpu.common.exit_request); // mie may have enabled an interrupt

    // sstatus is a view: M-only fields are invisible and unaffected.
    h.csrw(CSR_MSTATUS, MSTATUS_MIE | MSTATUS_TSR);
    h.csrw(CSR_SSTATUS, ~0ull);
    CHECK((h.cpu.mstatus & (MSTATUS_MIE | MSTATUS_TSR)) == (MSTATUS_MIE | MSTATUS_TSR));
    CHECK((h.cpu.mstatus & MSTATUS_MPP) == 0);
    uint64_t ss = h.csrr(CSR_SSTATUS);
    CHECK((ss & (MSTATUS_MIE | MSTATUS_TSR | MSTATUS_MPP)) == 0);
    CHECK((ss & (MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_FS |
                 MSTATUS_SD)) ==
          (MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_FS | MSTATUS_SD));
    CHECK((ss & MSTATUS_UXL) == (2ull << 32));
}

TEST_CASE("mstatus writes flush the TLB only when SUM, MXR or MPRV change", "[hart][csr]")
{
    Hart h;
    h.csrw(CSR_MSTATUS, MSTATUS_MIE);
    CHECK(calls.tlb_flush == 0);
    h.csrw(CSR_MSTATUS, MSTATUS_MIE | MSTATUS_SUM);
    CHECK(calls.tlb_flush == 1);
    h.csrw(CSR_MSTATUS, MSTATUS_MIE | MSTATUS_SUM | MSTATUS_MXR);
    CHECK(calls.tlb_flush == 2);
    h.csrw(CSR_MSTATUS, MSTATUS_MIE | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_MPRV);
    CHECK(calls.tlb_flush == 3);
}

TEST_CASE("FP CSRs need FS on and mark it dirty", "[hart][csr]")
{
    Hart h;
    h.csrr(CSR_FFLAGS);
    CHECK(h.raised(EXC_ILLEGAL_INSN));
    h.csrr(CSR_FCSR);
    CHECK(h.raised(EXC_ILLEGAL_INSN));

    h.cpu.mstatus |= 1ull << MSTATUS_FS_SHIFT; // initial
    h.csrw(CSR_FCSR, 0xff);
    CHECK(h.clean());
    CHECK(h.cpu.fflags == 0x1f);
    CHECK(h.cpu.frm == 7);
    CHECK(mstatus_fs(&h.cpu) == FS_DIRTY);
    CHECK(h.cpu.mstatus & MSTATUS_SD);
    h.csrw(CSR_FRM, 2);
    h.csr(3, 0, CSR_FFLAGS, 5, 0x3); // clear NX, UF
    CHECK(h.csrr(CSR_FCSR) == ((2u << 5) | 0x1c));
    CHECK(h.csrr(CSR_FRM) == 2);
    CHECK(h.csrr(CSR_FFLAGS) == 0x1c);
}

TEST_CASE("Without F in misa, FS stays off and the FP CSRs do not exist", "[hart][csr]")
{
    Hart n;
    n.cpu.misa &= ~(misa_bit('f') | misa_bit('d'));
    n.csrw(CSR_MSTATUS, MSTATUS_FS);
    CHECK(mstatus_fs(&n.cpu) == FS_OFF);
    n.csrr(CSR_FFLAGS);
    CHECK(n.raised(EXC_ILLEGAL_INSN));
}

TEST_CASE("Counters: cycle = instret, time from the virtual clock, gating by mcounteren/scounteren",
          "[hart][csr]")
{
    Hart h;
    h.cpu.instret = 1000;
    CHECK(h.csrr(CSR_CYCLE) == 1000);
    CHECK(h.csrr(CSR_INSTRET) == 1000);
    CHECK(h.csrr(CSR_MCYCLE) == 1000);
    h.csrw(CSR_MINSTRET, 5);
    CHECK(h.cpu.instret == 5);
    h.k.advance_to(2500); // 2.5 us at 10 MHz = 25 ticks
    CHECK(h.csrr(CSR_TIME) == 25);
    h.cpu.timebase_freq = 1000000000;
    CHECK(h.csrr(CSR_TIME) == 2500);

    // hpmcounters read 0; their M versions and the event selectors ignore writes.
    CHECK(h.csrr(CSR_HPMCOUNTER3) == 0);
    h.csrw(CSR_MHPMCOUNTER3, 77);
    h.csrw(CSR_MHPMEVENT3, 77);
    CHECK(h.csrr(CSR_MHPMCOUNTER3) == 0);
    CHECK(h.csrr(CSR_MHPMEVENT3) == 0);
    CHECK(h.clean());
    // mcountinhibit has no TM bit.
    h.csrw(CSR_MCOUNTINHIBIT, ~0ull);
    CHECK(h.csrr(CSR_MCOUNTINHIBIT) == 0xfffffffdu);

    h.cpu.priv = PRV_S;
    h.csrr(CSR_TIME);
    CHECK(h.raised(EXC_ILLEGAL_INSN));
    h.cpu.mcounteren = 1u << 1; // TM
    h.csrr(CSR_TIME);
    CHECK(h.clean());
    h.csrr(CSR_CYCLE);
    CHECK(h.raised(EXC_ILLEGAL_INSN));

    h.cpu.priv = PRV_U;
    h.csrr(CSR_TIME);
    CHECK(h.raised(EXC_ILLEGAL_INSN)); // scounteren.TM is 0
    h.cpu.scounteren = 1u << 1;
    h.csrr(CSR_TIME);
    CHECK(h.clean());
    h.cpu.mcounteren = 0;
    h.csrr(CSR_TIME);
    CHECK(h.raised(EXC_ILLEGAL_INSN)); // both must allow it
}

TEST_CASE("Delegation and interrupt-enable registers keep only their legal bits", "[hart][csr]")
{
    Hart h;
    h.csrw(CSR_MEDELEG, ~0ull);
    CHECK(h.csrr(CSR_MEDELEG) == 0xb3ff); // not ecall-from-M (11), not the reserved 10 and 14
    h.csrw(CSR_MIDELEG, ~0ull);
    CHECK(h.csrr(CSR_MIDELEG) == (MIP_SSIP | MIP_STIP | MIP_SEIP));
    h.csrw(CSR_MIE, ~0ull);
    CHECK(h.csrr(CSR_MIE) == 0xaaa);

    // sie shows only delegated interrupts, and writes only those.
    h.csrw(CSR_MIDELEG, MIP_STIP);
    CHECK(h.csrr(CSR_SIE) == MIP_STIP);
    h.csrw(CSR_SIE, 0);
    CHECK(h.cpu.mie == (0xaaa & ~MIP_STIP));

    h.cpu.common.exit_request = 0;
    h.csrw(CSR_MIE, MIP_MTIP);
    CHECK(h.cpu.common.exit_request);
}

TEST_CASE("mip: software bits, device lines, sip view", "[hart][csr]")
{
    Hart h;
    // M writes SSIP, STIP and SEIP; the lines MSIP/MTIP/MEIP are read-only.
    h.csrw(CSR_MIP, ~0ull);
    CHECK(h.csrr(CSR_MIP) == (MIP_SSIP | MIP_STIP | MIP_SEIP));
    h.csrw(CSR_MIP, 0);
    h.cpu.mip = MIP_MTIP | MIP_SEIP; // device lines
    CHECK(h.csrr(CSR_MIP) == (MIP_MTIP | MIP_SEIP));
    h.csrw(CSR_MIP, 0);
    CHECK(h.csrr(CSR_MIP) == (MIP_MTIP | MIP_SEIP)); // the SEIP line cannot be cleared by software

    // Read-modify-write uses the software SEIP only: setting SSIP does not latch the line's SEIP.
    h.csr(2, 1, CSR_MIP, 5, MIP_SSIP);
    CHECK(h.cpu.mip_sw == MIP_SSIP);
    h.cpu.mip = 0;
    CHECK(h.csrr(CSR_MIP) == MIP_SSIP);

    // sip: only delegated bits visible; only SSIP writable.
    h.cpu.mip_sw = 0;
    h.csrw(CSR_MIDELEG, MIP_SSIP | MIP_STIP);
    h.csrw(CSR_MIP, MIP_STIP | MIP_SEIP);
    CHECK(h.csrr(CSR_SIP) == MIP_STIP);
    h.csrw(CSR_SIP, MIP_SSIP);
    CHECK(h.cpu.mip_sw == (MIP_SSIP | MIP_STIP | MIP_SEIP));
    h.csrw(CSR_SIP, 0); // clears SSIP only
    CHECK(h.cpu.mip_sw == (MIP_STIP | MIP_SEIP));
    h.csrw(CSR_MIDELEG, MIP_STIP); // SSIP not delegated: read-only 0 in sip
    h.csrw(CSR_SIP, MIP_SSIP);
    CHECK(h.cpu.mip_sw == (MIP_STIP | MIP_SEIP));
}

TEST_CASE("mtvec/stvec: direct and vectored modes only, xepc bit 0 cleared", "[hart][csr]")
{
    Hart h;
    h.csrw(CSR_MTVEC, 0x80000101);
    CHECK(h.csrr(CSR_MTVEC) == 0x80000101);
    h.csrw(CSR_MTVEC, 0x80000202);
    CHECK(h.csrr(CSR_MTVEC) == 0x80000101); // mode 2 is reserved: write ignored
    h.csrw(CSR_STVEC, 0x80000400);
    CHECK(h.csrr(CSR_STVEC) == 0x80000400);
    h.csrw(CSR_MEPC, 0x80000003);
    CHECK(h.csrr(CSR_MEPC) == 0x80000002);
    h.csrw(CSR_SEPC, 0x80000011);
    CHECK(h.csrr(CSR_SEPC) == 0x80000010);
    h.csrw(CSR_MISA, 0);
    CHECK(h.csrr(CSR_MISA) == h.cpu.misa);
    CHECK(h.cpu.misa != 0);
}

TEST_CASE("satp: unsupported modes are ignored, TVM traps S, writes flush the TLB", "[hart][csr]")
{
    Hart h;
    uint64_t sv39 = (8ull << 60) | (5ull << 44) | 0x80123;
    h.csrw(CSR_SATP, sv39);
    CHECK(h.csrr(CSR_SATP) == sv39);
    CHECK(calls.tlb_flush == 1);
    h.csrw(CSR_SATP, (10ull << 60) | 0x80000); // Sv57
    CHECK(h.csrr(CSR_SATP) == sv39);
    h.csrw(CSR_SATP, (1ull << 60) | 0x80000); // reserved
    CHECK(h.csrr(CSR_SATP) == sv39);
    h.csrw(CSR_SATP, (9ull << 60) | 0x80000);
    CHECK(h.csrr(CSR_SATP) == ((9ull << 60) | 0x80000));

    h.cpu.mmu_mode = SATP_SV39; // mmu=sv39: Sv48 is not accepted
    h.csrw(CSR_SATP, sv39);
    h.csrw(CSR_SATP, (9ull << 60) | 0x80000);
    CHECK(h.csrr(CSR_SATP) == sv39);
    h.cpu.mmu_mode = SATP_BARE;
    h.csrw(CSR_SATP, 0);
    h.csrw(CSR_SATP, sv39);
    CHECK(h.csrr(CSR_SATP) == 0);

    h.cpu.priv = PRV_S;
    CHECK(h.csrr(CSR_SATP) == 0);
    CHECK(h.clean());
    h.cpu.mstatus |= MSTATUS_TVM;
    h.csrr(CSR_SATP);
    CHECK(h.raised(EXC_ILLEGAL_INSN));
}

TEST_CASE("menvcfg, senvcfg, debug triggers", "[hart][csr]")
{
    Hart h;
    h.csrw(CSR_MENVCFG, ~0ull);
    CHECK(h.csrr(CSR_MENVCFG) == MENVCFG_FIOM); // no Sstc: STCE reads 0
    h.csrw(CSR_SENVCFG, ~0ull);
    CHECK(h.csrr(CSR_SENVCFG) == 1);
    h.csrw(CSR_TSELECT, 5);
    CHECK(h.csrr(CSR_TSELECT) == 0);
    h.csrw(CSR_TDATA1, ~0ull);
    CHECK(h.csrr(CSR_TDATA1) == 0);
    CHECK(h.clean());
}

TEST_CASE("Sstc: stimecmp drives STIP through a virtual timer", "[hart][csr][sstc]")
{
    Hart h;
    h.csrr(CSR_STIMECMP);
    CHECK(h.raised(EXC_ILLEGAL_INSN)); // no Sstc

    h.cpu.sstc = true;
    h.cpu.stimecmp_timer =
        keel_services->timer_new(nullptr, KEEL_CLOCK_VIRTUAL, stimecmp_timer_fired, &h.cpu);
    h.csrw(CSR_MENVCFG, MENVCFG_STCE);
    CHECK(h.csrr(CSR_MENVCFG) == MENVCFG_STCE);
    h.csrw(CSR_STIMECMP, 100); // 10 us at 10 MHz
    CHECK((h.csrr(CSR_MIP) & MIP_STIP) == 0);
    h.k.advance_to(9999);
    CHECK((h.csrr(CSR_MIP) & MIP_STIP) == 0);
    h.cpu.common.exit_request = 0;
    h.k.advance_to(10000);
    CHECK((h.csrr(CSR_MIP) & MIP_STIP) != 0);
    CHECK(h.cpu.common.exit_request);
    CHECK(calls.kicks == 1);
    // M cannot write STIP while Sstc drives it; moving stimecmp ahead clears it.
    h.csrw(CSR_MIP, 0);
    CHECK((h.csrr(CSR_MIP) & MIP_STIP) != 0);
    h.csrw(CSR_STIMECMP, 200);
    CHECK((h.csrr(CSR_MIP) & MIP_STIP) == 0);
    // A past value sets STIP at once.
    h.csrw(CSR_STIMECMP, 50);
    CHECK((h.csrr(CSR_MIP) & MIP_STIP) != 0);

    // S needs STCE and mcounteren.TM.
    h.cpu.priv = PRV_S;
    h.csrr(CSR_STIMECMP);
    CHECK(h.raised(EXC_ILLEGAL_INSN));
    h.cpu.mcounteren = 2;
    CHECK(h.csrr(CSR_STIMECMP) == 50);
    CHECK(h.clean());

    // Turning STCE off hands STIP back to software.
    h.cpu.priv = PRV_M;
    h.csrw(CSR_MENVCFG, 0);
    CHECK((h.csrr(CSR_MIP) & MIP_STIP) == 0);
    h.csrw(CSR_MIP, MIP_STIP);
    CHECK((h.csrr(CSR_MIP) & MIP_STIP) != 0);
}

TEST_CASE("PMP CSRs: even pmpcfg only, lock bits, TOR lock, reserved R=0 W=1", "[hart][csr][pmp]")
{
    Hart h;
    h.csrw(CSR_PMPCFG0, 0x1f0f);
    CHECK(h.csrr(CSR_PMPCFG0) == 0x1f0f);
    CHECK(h.cpu.pmpcfg[1] == 0x1f);
    CHECK(calls.tlb_flush == 1);
    h.csrr(CSR_PMPCFG1);
    CHECK(h.raised(EXC_ILLEGAL_INSN));
    // Reserved bits 6:5 read 0; W without R is dropped.
    h.csrw(CSR_PMPCFG2, 0x62);
    CHECK(h.cpu.pmpcfg[8] == 0);
    // Entries above 15 are not implemented: read 0, ignore writes.
    h.csrw(CSR_PMPADDR20, 0x1234);
    CHECK(h.csrr(CSR_PMPADDR20) == 0);
    CHECK(h.clean());

    h.csrw(CSR_PMPADDR0, ~0ull);
    CHECK(h.csrr(CSR_PMPADDR0) == (1ull << 54) - 1);
    // Lock entry 1 as TOR: pmpaddr0 (its base) and entry 1 itself stop changing.
    h.csrw(CSR_PMPCFG0, (uint64_t)(PMP_L | (PMP_TOR << 3) | PMP_R) << 8);
    h.csrw(CSR_PMPADDR0, 0x100);
    h.csrw(CSR_PMPADDR0 + 1, 0x200);
    CHECK(h.cpu.pmpaddr[0] == (1ull << 54) - 1);
    CHECK(h.cpu.pmpaddr[1] == 0);
    h.csrw(CSR_PMPCFG0, 0);
    CHECK(h.cpu.pmpcfg[1] == (PMP_L | (PMP_TOR << 3) | PMP_R));
    CHECK(h.cpu.pmpcfg[0] == 0); // entry 0 is not locked
}

TEST_CASE("PMP CSRs do not exist with pmp=false", "[hart][csr][pmp]")
{
    Hart n;
    n.cpu.pmp_enabled = false;
    n.csrr(CSR_PMPCFG0);
    CHECK(n.raised(EXC_ILLEGAL_INSN));
    n.csrr(CSR_PMPADDR0);
    CHECK(n.raised(EXC_ILLEGAL_INSN));
}
