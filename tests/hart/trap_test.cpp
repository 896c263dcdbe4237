// SPDX-License-Identifier: MIT
// Traps on the hart: delegation, vectored entry, interrupt priority and enables, xRET, wfi, fences.
#include <catch2/catch.hpp>

#include "hart.h"

using namespace hart_test;

namespace
{

uint64_t mpp(const RvCpu &c)
{
    return (c.mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT;
}

} // namespace

TEST_CASE("An exception in U delegated by medeleg goes to S", "[hart][trap]")
{
    Hart h;
    h.cpu.priv = PRV_U;
    h.cpu.pc = 0x1000;
    h.cpu.medeleg = 1ull << EXC_LOAD_PAGE_FAULT;
    h.cpu.stvec = 0x80002001; // vectored: exceptions still go to BASE
    h.cpu.mtvec = 0x80001000;
    h.cpu.mstatus |= MSTATUS_SIE | MSTATUS_MIE;
    h.cpu.res_addr = 0x80000000;
    raise_exception(&h.cpu, EXC_LOAD_PAGE_FAULT, 0xdead000);
    CHECK(h.cpu.common.exception);
    cpu_exec_exception(&h.cpu);
    CHECK(h.cpu.priv == PRV_S);
    CHECK(h.cpu.pc == 0x80002000);
    CHECK(h.cpu.scause == EXC_LOAD_PAGE_FAULT);
    CHECK(h.cpu.sepc == 0x1000);
    CHECK(h.cpu.stval == 0xdead000);
    CHECK((h.cpu.mstatus & MSTATUS_SIE) == 0);
    CHECK(h.cpu.mstatus & MSTATUS_SPIE);
    CHECK((h.cpu.mstatus & MSTATUS_SPP) == 0);
    CHECK(h.cpu.mstatus & MSTATUS_MIE); // M state untouched
    CHECK(h.cpu.mcause == 0);
    CHECK(h.cpu.res_addr == ~0ull);
    CHECK(h.k.logged(KEEL_LOG_INT, "cause:000000000000000d"));
    CHECK(h.k.logged(KEEL_LOG_INT, "priv U -> S"));

    // The same exception from S with SPP = S; from M it is never delegated.
    h.cpu.pc = 0x2000;
    do_trap(&h.cpu, EXC_LOAD_PAGE_FAULT, false, 1);
    CHECK(h.cpu.priv == PRV_S);
    CHECK(h.cpu.mstatus & MSTATUS_SPP);
    CHECK((h.cpu.mstatus & MSTATUS_SPIE) == 0); // SIE was 0 when this trap came
    h.cpu.priv = PRV_M;
    h.cpu.pc = 0x3000;
    do_trap(&h.cpu, EXC_LOAD_PAGE_FAULT, false, 2);
    CHECK(h.cpu.priv == PRV_M);
    CHECK(h.cpu.pc == 0x80001000);
    CHECK(h.cpu.mcause == EXC_LOAD_PAGE_FAULT);
    CHECK(h.cpu.mepc == 0x3000);
    CHECK(h.cpu.mtval == 2);
    CHECK(mpp(h.cpu) == PRV_M);
    CHECK(h.cpu.mstatus & MSTATUS_MPIE);
    CHECK((h.cpu.mstatus & MSTATUS_MIE) == 0);
}

TEST_CASE("Undelegated exceptions from S go to M with MPP = S", "[hart][trap]")
{
    Hart h;
    h.cpu.priv = PRV_S;
    h.cpu.pc = 0x80000010;
    h.cpu.mtvec = 0x80000100;
    rv_helper_ecall(&h.cpu);
    CHECK(h.cpu.exc_cause == EXC_ECALL_S);
    cpu_exec_exception(&h.cpu);
    CHECK(h.cpu.priv == PRV_M);
    CHECK(h.cpu.mcause == EXC_ECALL_S);
    CHECK(h.cpu.mtval == 0);
    CHECK(mpp(h.cpu) == PRV_S);
    CHECK(h.cpu.pc == 0x80000100);
}

TEST_CASE("ecall causes follow the privilege, ebreak reports its pc", "[hart][trap]")
{
    Hart h;
    for (auto [p, cause] : {std::pair{PRV_U, EXC_ECALL_U}, {PRV_S, EXC_ECALL_S}, {PRV_M, EXC_ECALL_M}}) {
        h.cpu.priv = p;
        rv_helper_ecall(&h.cpu);
        CHECK(h.raised(cause));
    }
    h.cpu.priv = PRV_M;
    h.cpu.pc = 0x1234;
    rv_helper_ebreak(&h.cpu);
    cpu_exec_exception(&h.cpu);
    CHECK(h.cpu.mcause == EXC_BREAKPOINT);
    CHECK(h.cpu.mtval == 0x1234);
    rv_helper_raise(&h.cpu, EXC_ILLEGAL_INSN, 0xffffffff);
    CHECK(h.cpu.exc_tval == 0xffffffff);
    CHECK(h.raised(EXC_ILLEGAL_INSN));
}

TEST_CASE("Vectored interrupts go to BASE + 4 * cause with the interrupt bit in mcause", "[hart][trap][irq]")
{
    Hart h;
    h.cpu.priv = PRV_M;
    h.cpu.pc = 0x80000500;
    h.cpu.mtvec = 0x80000001;
    h.cpu.mstatus |= MSTATUS_MIE;
    h.cpu.mie = MIP_MTIP;
    h.cpu.mip = MIP_MTIP;
    h.cpu.common.halted = 1;
    CHECK(cpu_exec_interrupt(&h.cpu) == 1);
    CHECK(h.cpu.pc == 0x80000000 + 4 * IRQ_MTI);
    CHECK(h.cpu.mcause == ((1ull << 63) | IRQ_MTI));
    CHECK(h.cpu.mepc == 0x80000500);
    CHECK(h.cpu.mtval == 0);
    CHECK((h.cpu.mstatus & MSTATUS_MIE) == 0);
    CHECK(h.cpu.common.halted == 0);
    CHECK(h.k.logged(KEEL_LOG_INT, "async:1"));
    // MIE is now 0: nothing more is taken in M.
    CHECK(cpu_exec_interrupt(&h.cpu) == 0);
}

TEST_CASE("Interrupt priority: MEI MSI MTI SEI SSI STI, M-level before S-level", "[hart][trap][irq]")
{
    Hart h;
    h.cpu.mtvec = 0x80000000;
    h.cpu.stvec = 0x80001000;
    h.cpu.mie = ALL_INTERRUPTS;
    const std::pair<uint64_t, unsigned> order[] = {{MIP_MEIP, IRQ_MEI}, {MIP_MSIP, IRQ_MSI},
                                                   {MIP_MTIP, IRQ_MTI}, {MIP_SEIP, IRQ_SEI},
                                                   {MIP_SSIP, IRQ_SSI}, {MIP_STIP, IRQ_STI}};
    uint64_t pending = ALL_INTERRUPTS;
    for (auto [bit, irq] : order) {
        h.cpu.priv = PRV_U;
        h.cpu.mip = pending & (MIP_MEIP | MIP_MSIP | MIP_MTIP | MIP_SEIP); // device lines
        h.cpu.mip_sw = pending & (MIP_SSIP | MIP_STIP);
        REQUIRE(cpu_exec_interrupt(&h.cpu) == 1);
        CHECK(h.cpu.mcause == ((1ull << 63) | irq));
        pending &= ~bit;
    }

    // A delegated SEI with a higher number than the undelegated MTI still waits for it.
    h.cpu.priv = PRV_S;
    h.cpu.mideleg = MIP_SEIP;
    h.cpu.mip_sw = MIP_SEIP | MIP_STIP;
    h.cpu.mstatus |= MSTATUS_SIE;
    REQUIRE(cpu_exec_interrupt(&h.cpu) == 1);
    CHECK(h.cpu.priv == PRV_M);
    CHECK(h.cpu.mcause == ((1ull << 63) | IRQ_STI));
}

TEST_CASE("Interrupt enables depend on the privilege", "[hart][trap][irq]")
{
    Hart h;
    h.cpu.mie = MIP_MTIP | MIP_STIP;
    h.cpu.stvec = 0x80001000;

    SECTION("M-level: masked in M by MIE, always taken below M")
    {
        h.cpu.mip = MIP_MTIP;
        h.cpu.priv = PRV_M;
        CHECK(cpu_exec_interrupt(&h.cpu) == 0);
        CHECK(cpu_has_work(&h.cpu)); // pending even though disabled: wfi wakes
        h.cpu.priv = PRV_S;
        CHECK(cpu_exec_interrupt(&h.cpu) == 1);
        CHECK(h.cpu.priv == PRV_M);
    }
    SECTION("S-level: never in M, in S with SIE, always in U")
    {
        h.cpu.mideleg = MIP_STIP;
        h.cpu.mip_sw = MIP_STIP;
        h.cpu.priv = PRV_M;
        h.cpu.mstatus |= MSTATUS_MIE | MSTATUS_SIE;
        CHECK(cpu_exec_interrupt(&h.cpu) == 0);
        h.cpu.priv = PRV_S;
        h.cpu.mstatus &= ~MSTATUS_SIE;
        CHECK(cpu_exec_interrupt(&h.cpu) == 0);
        h.cpu.priv = PRV_U;
        h.cpu.pc = 0x4000;
        CHECK(cpu_exec_interrupt(&h.cpu) == 1);
        CHECK(h.cpu.priv == PRV_S);
        CHECK(h.cpu.scause == ((1ull << 63) | IRQ_STI));
        CHECK(h.cpu.sepc == 0x4000);
        CHECK(h.cpu.pc == 0x80001000);
    }
    SECTION("nothing enabled in mie: no work")
    {
        h.cpu.mip = MIP_MSIP;
        CHECK_FALSE(cpu_has_work(&h.cpu));
        h.cpu.priv = PRV_U;
        CHECK(cpu_exec_interrupt(&h.cpu) == 0);
    }
}

TEST_CASE("mret restores MIE from MPIE, drops to MPP and clears MPRV below M", "[hart][trap][xret]")
{
    Hart h;
    h.cpu.priv = PRV_M;
    h.cpu.mepc = 0x80200000;
    h.cpu.mstatus |= MSTATUS_MPIE | MSTATUS_MPRV | (uint64_t(PRV_S) << MSTATUS_MPP_SHIFT);
    h.cpu.res_addr = 0x100;
    rv_helper_mret(&h.cpu);
    CHECK(h.clean());
    CHECK(h.cpu.common.exit_request); // the restored MIE may let a pending interrupt in
    CHECK(h.cpu.priv == PRV_S);
    CHECK(h.cpu.pc == 0x80200000);
    CHECK(h.cpu.mstatus & MSTATUS_MIE);
    CHECK(h.cpu.mstatus & MSTATUS_MPIE);
    CHECK(mpp(h.cpu) == PRV_U);
    CHECK((h.cpu.mstatus & MSTATUS_MPRV) == 0);
    CHECK(h.cpu.res_addr == ~0ull);
    CHECK(calls.tlb_flush == 1);

    // mret to M keeps MPRV.
    h.cpu.priv = PRV_M;
    h.cpu.mstatus |= MSTATUS_MPRV | MSTATUS_MPP;
    h.cpu.mstatus &= ~MSTATUS_MPIE;
    rv_helper_mret(&h.cpu);
    CHECK(h.cpu.priv == PRV_M);
    CHECK(h.cpu.mstatus & MSTATUS_MPRV);
    CHECK((h.cpu.mstatus & MSTATUS_MIE) == 0);

    // Not in M: illegal, with the instruction as tval.
    h.cpu.priv = PRV_S;
    rv_helper_mret(&h.cpu);
    CHECK(h.raised_illegal(0x30200073));
    CHECK(h.cpu.priv == PRV_S);
}

TEST_CASE("sret: SPP, SPIE, TSR and U mode make it illegal", "[hart][trap][xret]")
{
    Hart h;
    h.cpu.priv = PRV_S;
    h.cpu.sepc = 0x4000;
    h.cpu.mstatus |= MSTATUS_SPIE;
    rv_helper_sret(&h.cpu);
    CHECK(h.clean());
    CHECK(h.cpu.common.exit_request);
    CHECK(h.cpu.priv == PRV_U);
    CHECK(h.cpu.pc == 0x4000);
    CHECK(h.cpu.mstatus & MSTATUS_SIE);
    CHECK(h.cpu.mstatus & MSTATUS_SPIE);

    rv_helper_sret(&h.cpu);
    CHECK(h.raised_illegal(0x10200073));

    h.cpu.priv = PRV_M; // from M, back to S, MPRV cleared
    h.cpu.mstatus |= MSTATUS_SPP | MSTATUS_MPRV;
    rv_helper_sret(&h.cpu);
    CHECK(h.cpu.priv == PRV_S);
    CHECK((h.cpu.mstatus & (MSTATUS_SPP | MSTATUS_MPRV)) == 0);

    h.cpu.mstatus |= MSTATUS_TSR;
    rv_helper_sret(&h.cpu);
    CHECK(h.raised(EXC_ILLEGAL_INSN));
    h.cpu.priv = PRV_M; // TSR only traps S
    rv_helper_sret(&h.cpu);
    CHECK(h.clean());
}

TEST_CASE("wfi halts unless an interrupt is pending, U and TW make it illegal", "[hart][trap]")
{
    Hart h;
    h.cpu.priv = PRV_M;
    rv_helper_wfi(&h.cpu);
    CHECK(h.clean());
    CHECK(h.cpu.common.halted == 1);

    h.cpu.common.halted = 0;
    h.cpu.mie = MIP_MSIP;
    h.cpu.mip = MIP_MSIP; // pending though MIE = 0
    rv_helper_wfi(&h.cpu);
    CHECK(h.cpu.common.halted == 0);

    h.cpu.priv = PRV_S;
    h.cpu.mip = 0;
    rv_helper_wfi(&h.cpu);
    CHECK(h.cpu.common.halted == 1);
    h.cpu.common.halted = 0;
    h.cpu.mstatus |= MSTATUS_TW;
    rv_helper_wfi(&h.cpu);
    CHECK(h.raised_illegal(0x10500073));
    h.cpu.priv = PRV_M; // TW does not apply to M
    rv_helper_wfi(&h.cpu);
    CHECK(h.clean());
    h.cpu.mstatus &= ~MSTATUS_TW;
    h.cpu.priv = PRV_U;
    rv_helper_wfi(&h.cpu);
    CHECK(h.raised(EXC_ILLEGAL_INSN));
}

TEST_CASE("sfence.vma flushes all or one page, U and TVM make it illegal", "[hart][trap]")
{
    Hart h;
    uint32_t all = 0x12000073;                // sfence.vma x0, x0
    uint32_t page = 0x12000073 | (10u << 15); // sfence.vma a0, x0
    h.cpu.priv = PRV_S;
    rv_helper_sfence_vma(&h.cpu, 0, 0, all);
    CHECK(calls.tlb_flush == 1);
    rv_helper_sfence_vma(&h.cpu, 0x40001000, 0, page);
    REQUIRE(calls.tlb_flush_page.size() == 1);
    CHECK(calls.tlb_flush_page[0] == 0x40001000);
    CHECK(h.clean());

    h.cpu.mstatus |= MSTATUS_TVM;
    rv_helper_sfence_vma(&h.cpu, 0, 0, all);
    CHECK(h.raised_illegal(all));
    h.cpu.priv = PRV_M;
    rv_helper_sfence_vma(&h.cpu, 0, 0, all);
    CHECK(h.clean());
    CHECK(calls.tlb_flush == 2);
    h.cpu.priv = PRV_U;
    rv_helper_sfence_vma(&h.cpu, 0, 0, page);
    CHECK(h.raised_illegal(page));
}

TEST_CASE("fence.i drops translated blocks, fs_dirty and check_frm", "[hart][trap]")
{
    Hart h;
    rv_helper_fence_i(&h.cpu);
    CHECK(calls.tb_flush == 1);
    rv_helper_fs_dirty(&h.cpu);
    CHECK(mstatus_fs(&h.cpu) == FS_DIRTY);
    CHECK(h.cpu.mstatus & MSTATUS_SD);
    for (uint32_t rm = 0; rm < 8; rm++) {
        h.cpu.frm = rm;
        rv_helper_check_frm(&h.cpu, 0x12345);
        if (rm <= 4)
            CHECK(h.clean());
        else
            CHECK(h.raised_illegal(0x12345));
    }
    // No engine yet: the fences do nothing rather than crash.
    h.cpu.common.engine = nullptr;
    rv_helper_fence_i(&h.cpu);
    rv_helper_sfence_vma(&h.cpu, 0, 0, 0x12000073);
    CHECK(calls.tb_flush == 1);
}
