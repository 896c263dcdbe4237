// SPDX-License-Identifier: MIT
// The riscv64 device type under the fake kernel: properties, realize, reset, interrupt lines and KeelCpuOps
// hooks.
#include <catch2/catch.hpp>

#include "fake_services.h"
#include "priv.h"

#include <cstring>
#include <string>

using namespace keel::rv;
using keel::test::FakeDevice;
using keel::test::FakeKernel;
using keel::test::PropValues;

namespace
{

constexpr uint64_t RV64GC_MISA = 0x800000000014112dull; // what QEMU reports for rv64gc: MXL=2, ACDFIMSU
constexpr unsigned GDB_CSR0 = 65;

struct Cpu {
    FakeKernel k{0x80000000, 64 * 1024};
    std::unique_ptr<FakeDevice> dev;
    const KeelCpuOps *ops = nullptr;
    RvCpu *cpu = nullptr;

    explicit Cpu(const PropValues &props = {})
    {
        REQUIRE(k.load_module(MODULE_PATH));
        const KeelDeviceTypeInfo *t = k.find_type("riscv64");
        REQUIRE(t);
        ops = t->cpu;
        REQUIRE(ops);
        dev = k.create("riscv64", "cpu0", props);
        INFO(k.error());
        REQUIRE(dev);
        cpu = dev->state_as<RvCpu>();
    }
    uint64_t reg(unsigned n)
    {
        uint8_t buf[8];
        REQUIRE(ops->read_reg(cpu, n, buf, sizeof buf) == 8);
        uint64_t v = 0;
        for (int i = 7; i >= 0; i--)
            v = (v << 8) | buf[i];
        return v;
    }
    unsigned set_reg(unsigned n, uint64_t v)
    {
        uint8_t buf[8];
        for (unsigned i = 0; i < 8; i++)
            buf[i] = uint8_t(v >> (8 * i));
        return ops->write_reg(cpu, n, buf, sizeof buf);
    }
};

} // namespace

TEST_CASE("riscv64 registers a CPU type with its hooks", "[hart][device]")
{
    Cpu c;
    CHECK(std::string(c.ops->arch) == "riscv:rv64");
    CHECK(c.ops->n_globals == 68);
    CHECK(c.ops->pc_global == 32);
    CHECK(c.ops->n_mmu_idx == MMU_COUNT);
    CHECK(c.ops->max_insn_bytes == 4);
    for (auto fn : {(void *)c.ops->tb_flags, (void *)c.ops->translate, (void *)c.ops->tlb_fill,
                    (void *)c.ops->mem_fault, (void *)c.ops->exec_exception, (void *)c.ops->exec_interrupt,
                    (void *)c.ops->has_work, (void *)c.ops->disas, (void *)c.ops->dump_state,
                    (void *)c.ops->read_reg, (void *)c.ops->write_reg})
        CHECK(fn != nullptr);
    const KeelModuleInfo *mi = c.k.module_info("riscv-cpu");
    REQUIRE(mi);
    CHECK(mi->kind == KEEL_MODULE_DEVICE);
}

TEST_CASE("riscv64 defaults and the reset state", "[hart][device]")
{
    Cpu c;
    CHECK(c.cpu->misa == RV64GC_MISA);
    CHECK(c.cpu->mmu_mode == SATP_SV48);
    CHECK(c.cpu->mmu_prop == 2); // the property keeps its enum index: it reads back as "sv48"
    CHECK(c.cpu->timebase_freq == 10000000);
    CHECK(c.cpu->pmp_enabled);
    CHECK_FALSE(c.cpu->sstc);
    CHECK(c.cpu->pc == 0x1000);
    CHECK(c.cpu->priv == PRV_M);
    CHECK(c.cpu->mstatus == 0xa00000000ull); // as QEMU: UXL = SXL = 2, everything else 0
    CHECK(c.cpu->res_addr == ~0ull);
    CHECK(c.cpu->mhartid == 0);
    CHECK(c.k.dma_calls() == 0);

    // Reset after running: registers back, device lines kept.
    c.cpu->x[5] = 7;
    c.cpu->priv = PRV_U;
    c.cpu->mscratch = 9;
    c.cpu->pmpcfg[3] = 0x9f;
    c.cpu->mip_sw = MIP_SSIP;
    REQUIRE(c.dev->set_irq("mei", 0, 1));
    c.dev->reset(KEEL_RESET_WARM);
    CHECK(c.cpu->x[5] == 0);
    CHECK(c.cpu->priv == PRV_M);
    CHECK(c.cpu->mscratch == 0);
    CHECK(c.cpu->pmpcfg[3] == 0);
    CHECK(c.cpu->mip.load() == MIP_MEIP);
    CHECK(c.cpu->mip_sw == 0);
}

TEST_CASE("riscv64 properties: isa, mmu, resetvec", "[hart][device]")
{
    SECTION("extensions and Sstc from the isa string")
    {
        Cpu c({{"isa", "rv64imafdc_zicsr_zifencei_zba_zbb_zbs_zicond_sstc"},
               {"mmu", "sv39"},
               {"resetvec", "0x80000000"}});
        CHECK(c.cpu->misa == RV64GC_MISA);
        CHECK(c.cpu->sstc);
        CHECK(c.cpu->mmu_mode == SATP_SV39);
        CHECK(c.cpu->pc == 0x80000000);
        CHECK(c.dev->armed_timers() == 0);
    }
    SECTION("without F and D")
    {
        Cpu c({{"isa", "RV64IMAC"}, {"mmu", "bare"}});
        CHECK(c.cpu->misa == (RV64GC_MISA & ~(misa_bit('f') | misa_bit('d'))));
        CHECK(c.cpu->mmu_mode == SATP_BARE);
    }
    SECTION("bad isa strings are refused at realize")
    {
        FakeKernel k;
        REQUIRE(k.load_module(MODULE_PATH));
        for (const char *isa : {"rv32gc", "rv64gcq", "rv64mafd", "rv64gc_zfh", "rv64id"}) {
            INFO(isa);
            CHECK_FALSE(k.create("riscv64", "cpu0", {{"isa", isa}}));
            CHECK(k.error().find("isa") != std::string::npos);
        }
    }
}

TEST_CASE("riscv64 interrupt lines set and clear mip bits and request an exit", "[hart][device][irq]")
{
    Cpu c;
    const std::pair<const char *, uint64_t> lines[] = {
        {"msi", MIP_MSIP}, {"mti", MIP_MTIP}, {"mei", MIP_MEIP}, {"sei", MIP_SEIP}};
    for (auto [name, bit] : lines) {
        INFO(name);
        CHECK(c.dev->irq_in_count(name) == 1);
        c.cpu->common.exit_request = 0;
        REQUIRE(c.dev->set_irq(name, 0, 1));
        CHECK(c.cpu->mip.load() == bit);
        CHECK(c.cpu->common.exit_request == 1);
        CHECK_FALSE(c.ops->has_work(c.cpu)); // not enabled in mie
        c.cpu->mie = bit;
        CHECK(c.ops->has_work(c.cpu));
        c.cpu->mie = 0;
        REQUIRE(c.dev->set_irq(name, 0, 0));
        CHECK(c.cpu->mip.load() == 0);
    }

    // An M timer interrupt taken through the hooks.
    c.cpu->mie = MIP_MTIP;
    c.cpu->mtvec = 0x80000000;
    c.cpu->priv = PRV_S;
    c.dev->set_irq("mti", 0, 1);
    CHECK(c.ops->exec_interrupt(c.cpu) == 1);
    CHECK(c.cpu->pc == 0x80000000);
    CHECK(c.cpu->mcause == ((1ull << 63) | IRQ_MTI));
}

TEST_CASE("riscv64 Sstc timer wakes the hart when time reaches stimecmp", "[hart][device][sstc]")
{
    Cpu c(PropValues{{"sstc", "true"}});
    REQUIRE(c.set_reg(GDB_CSR0 + 0x30a, MENVCFG_STCE) == 8);
    REQUIRE(c.set_reg(GDB_CSR0 + 0x14d, 1000) == 8); // 100 us at 10 MHz
    CHECK(c.dev->armed_timers() == 1);
    CHECK((c.cpu->mip.load() & MIP_STIP) == 0);
    c.k.advance_to(100000);
    CHECK((c.cpu->mip.load() & MIP_STIP) != 0);
    CHECK(c.cpu->common.exit_request);
    c.cpu->mie = MIP_STIP;
    CHECK(c.ops->has_work(c.cpu));
}

TEST_CASE("riscv64 tb_flags: privilege, data MMU index under MPRV, FS", "[hart][device]")
{
    Cpu c;
    CHECK(c.ops->tb_flags(c.cpu) == (PRV_M | (PRV_M << TBF_DATA_SHIFT)));
    c.cpu->mstatus |= MSTATUS_MPRV | (uint64_t(PRV_S) << MSTATUS_MPP_SHIFT) | (FS_DIRTY << MSTATUS_FS_SHIFT);
    uint64_t f = c.ops->tb_flags(c.cpu);
    CHECK(tbf_priv(f) == PRV_M);
    CHECK(tbf_data_mmu(f) == MMU_S);
    CHECK(tbf_fs(f) == FS_DIRTY);
    c.cpu->priv = PRV_U; // MPRV applies to M only
    f = c.ops->tb_flags(c.cpu);
    CHECK(tbf_priv(f) == PRV_U);
    CHECK(tbf_data_mmu(f) == MMU_U);
}

TEST_CASE("riscv64 mem_fault records misaligned and access faults", "[hart][device]")
{
    Cpu c;
    struct {
        KeelAccess access;
        KeelMemFault kind;
        uint64_t cause;
    } cases[] = {
        {KEEL_ACCESS_READ, KEEL_FAULT_UNALIGNED, EXC_LOAD_MISALIGNED},
        {KEEL_ACCESS_WRITE, KEEL_FAULT_UNALIGNED, EXC_STORE_MISALIGNED},
        {KEEL_ACCESS_READ, KEEL_FAULT_BUS, EXC_LOAD_ACCESS},
        {KEEL_ACCESS_WRITE, KEEL_FAULT_BUS, EXC_STORE_ACCESS},
        {KEEL_ACCESS_EXEC, KEEL_FAULT_BUS, EXC_INSN_ACCESS},
    };
    for (auto &t : cases) {
        c.cpu->common.exception = 0;
        c.ops->mem_fault(c.cpu, 0x10000001, t.access, MMU_M, t.kind);
        CHECK(c.cpu->common.exception);
        CHECK(c.cpu->exc_cause == t.cause);
        CHECK(c.cpu->exc_tval == 0x10000001);
    }
    // Delivered: the engine has put the faulting pc in place.
    c.cpu->common.exception = 0;
    c.cpu->pc = 0x80000040;
    c.cpu->mtvec = 0x80000100;
    c.ops->exec_exception(c.cpu);
    CHECK(c.cpu->pc == 0x80000100);
    CHECK(c.cpu->mepc == 0x80000040);
    CHECK(c.cpu->mcause == EXC_INSN_ACCESS);
    CHECK(c.cpu->mtval == 0x10000001);
}

TEST_CASE("riscv64 gdb registers: x, pc, f, CSRs, priv", "[hart][device][gdb]")
{
    Cpu c;
    c.cpu->x[10] = 0x1122334455667788;
    CHECK(c.reg(10) == 0x1122334455667788);
    CHECK(c.set_reg(5, 42) == 8);
    CHECK(c.cpu->x[5] == 42);
    CHECK(c.set_reg(0, 42) == 8);
    CHECK(c.cpu->x[0] == 0);
    CHECK(c.set_reg(32, 0x80000000) == 8);
    CHECK(c.cpu->pc == 0x80000000);
    CHECK(c.reg(32) == 0x80000000);
    c.cpu->f[3] = 0xffffffff3f800000;
    CHECK(c.reg(33 + 3) == 0xffffffff3f800000);
    CHECK(c.set_reg(GDB_CSR0 + 0x340, 0xabc) == 8);
    CHECK(c.cpu->mscratch == 0xabc);
    CHECK(c.reg(GDB_CSR0 + 0x301) == RV64GC_MISA);
    CHECK(c.reg(GDB_CSR0 + 0x001) == 0); // fflags readable by a debugger with FS off
    CHECK(c.reg(GDB_CSR0 + 4096) == PRV_M);
    CHECK(c.set_reg(GDB_CSR0 + 4096, PRV_S) == 8);
    CHECK(c.cpu->priv == PRV_S);
    CHECK(c.set_reg(GDB_CSR0 + 4096, 2) == 0);

    uint8_t buf[8];
    CHECK(c.ops->read_reg(c.cpu, GDB_CSR0 + 0x7c0, buf, sizeof buf) == 0); // no such CSR
    CHECK(c.ops->read_reg(c.cpu, 10, buf, 4) == 0);                        // buffer too small
    CHECK(c.ops->read_reg(c.cpu, 100000, buf, sizeof buf) == 0);
}

TEST_CASE("riscv64 disassembles and dumps its state", "[hart][device]")
{
    Cpu c;
    char buf[128];
    const uint8_t addi[] = {0x13, 0x05, 0x15, 0x00}; // addi a0,a0,1
    CHECK(c.ops->disas(c.cpu, 0x1000, addi, 4, buf, sizeof buf) == 4);
    CHECK(std::string(buf) == "addi\ta0,a0,1");
    CHECK(c.ops->disas(c.cpu, 0x1000, addi, 3, buf, sizeof buf) == 0);
    const uint8_t caddi[] = {0x05, 0x05}; // c.addi a0,1 (objdump -M no-aliases spelling)
    CHECK(c.ops->disas(c.cpu, 0x1000, caddi, 2, buf, sizeof buf) == 2);
    CHECK(std::string(buf) == "c.addi\ta0,1");

    c.cpu->x[10] = 0xa0a0;
    size_t need = c.ops->dump_state(c.cpu, nullptr, 0);
    std::string s(need, '\0');
    CHECK(c.ops->dump_state(c.cpu, s.data(), s.size()) == need);
    s.resize(std::strlen(s.c_str()));
    CHECK(s.size() + 1 == need);
    CHECK(s.find(" pc       0000000000001000\n") != std::string::npos);
    CHECK(s.find(" mstatus  0000000a00000000\n") != std::string::npos);
    CHECK(s.find("x10/a0   000000000000a0a0") != std::string::npos);
    CHECK(s.find(" priv     M") != std::string::npos);
    char small[8];
    CHECK(c.ops->dump_state(c.cpu, small, sizeof small) == need);
    CHECK(std::strlen(small) == 7);
}
