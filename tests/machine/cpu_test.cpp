// SPDX-License-Identifier: MIT
// CPU objects: created from `cpus:` before the devices, indexed, wired, reset; `@symbol` windows.
#include <catch2/catch.hpp>

#include "test_machine.h"
#include "testcpu.h"

using namespace keel;
using keel::test::TempManifest;

namespace
{

std::string board()
{
    return std::string(MACHINE_TEST_DIR) + "/cpuboard.yaml";
}

TestCpu *cpu_state(Machine &m, unsigned i)
{
    REQUIRE(i < m.cpus().size());
    return static_cast<TestCpu *>(m.cpus()[i]->state);
}

} // namespace

TEST_CASE("cpus: creates count CPU objects named cpu0..N-1, first, with their index", "[machine][cpu]")
{
    ManifestOverrides ov;
    ov.smp = 3;
    auto m = keel::test::build_machine(board(), ov);
    REQUIRE(m->cpus().size() == 3);
    for (unsigned i = 0; i < 3; ++i) {
        KeelObject *c = m->cpus()[i];
        CHECK(c->name == "cpu" + std::to_string(i));
        CHECK(c->path == "/machine/cpu" + std::to_string(i));
        CHECK(m->objects()[i].get() == c); // before every device
        CHECK(KEEL_CPU_COMMON(c->state)->cpu_index == i);
        CHECK(cpu_state(*m, i)->index_at_realize == i + 1); // realize saw the index
        CHECK(cpu_state(*m, i)->pc == 0x1000);              // reset ran: pc = resetvec default
    }
    REQUIRE(m->cpu_ops() != nullptr);
    CHECK(std::string(m->cpu_ops()->arch) == "riscv:rv64");
    std::string d = m->describe();
    CHECK(d.find("cpus: 3 x test-cpu") != std::string::npos);
    CHECK(d.find("/machine/cpu2  test-cpu (module testcpu 1.0.0") != std::string::npos);
    CHECK(d.find("resetvec = 0x1000  (default)") != std::string::npos);
}

TEST_CASE("devices wire interrupts to CPU inputs, which kick the CPU", "[machine][cpu][irq]")
{
    auto m = keel::test::build_machine(board());
    TestCpu *c = cpu_state(*m, 0);
    CHECK(c->irq_level[0] == 0);
    REQUIRE(m->system_memory().write(0x2000, 4, 1) == KEEL_MEM_OK); // timer's doorbell -> cpu0.mti
    CHECK(c->irq_level[0] == 1);
    CHECK(c->common.exit_request == 1);
    CHECK(c->irq_level[1] == 0);
    REQUIRE(m->system_memory().write(0x2000, 4, 0) == KEEL_MEM_OK);
    CHECK(c->irq_level[0] == 0);
    CHECK(m->describe().find("irq[0] -> cpu0.mti[0]") != std::string::npos);
}

TEST_CASE("CPU properties come from cpus.properties, a reset resets the CPUs", "[machine][cpu]")
{
    TempManifest f(
        "keel: 1\nname: t\ncpus: { type: test-cpu, count: 2, properties: { resetvec: 0x80000000 } }\n");
    auto m = keel::test::build_machine(f.path);
    REQUIRE(m->cpus().size() == 2);
    TestCpu *c = cpu_state(*m, 1);
    CHECK(c->pc == 0x80000000);
    CHECK(c->resets == 1);
    set_cpu_pc(m->cpus()[1], 0x1234);
    CHECK(c->pc == 0x1234);
    m->reset(KEEL_RESET_WARM);
    CHECK(c->pc == 0x80000000);
    CHECK(c->resets == 2);
}

TEST_CASE("a type that is not a CPU type is refused at the cpus: type", "[machine][cpu][errors]")
{
    TempManifest f("keel: 1\nname: t\ncpus: { type: test-reg, count: 1 }\n");
    Registry &reg = keel::test::test_registry();
    MachineSpec spec = load_manifest(f.path, {}, {}, reg);
    Machine m(reg, std::move(spec), nullptr);
    CHECK_THROWS_WITH(m.build(),
                      f.path + ":3:15: type 'test-reg' is not a CPU type (its module testdevs does not give "
                               "it CPU hooks); 'cpus' needs a CPU type such as riscv64");
}

TEST_CASE("CPU names are taken: no device may be called cpuN, and cpuN must exist to be wired",
          "[machine][cpu][errors]")
{
    Registry &reg = keel::test::test_registry();
    TempManifest a("keel: 1\nname: t\ncpus: { type: test-cpu, count: 2 }\ndevices:\n"
                   "  cpu1: { type: test-reg, reg: 0x1000 }\n");
    CHECK_THROWS_WITH(load_manifest(a.path, {}, {}, reg),
                      a.path + ":5:3: device name 'cpu1' is taken by CPU 1 (the machine names its CPUs cpu0, "
                               "cpu1, ...)");
    TempManifest b("keel: 1\nname: t\ncpus: { type: test-cpu, count: 1 }\ndevices:\n"
                   "  a: { type: test-reg, reg: 0x1000, irq: cpu1.mti }\n");
    CHECK_THROWS_WITH(load_manifest(b.path, {}, {}, reg),
                      b.path + ":5:42: irq target 'cpu1.mti' names no device (did you mean 'cpu0'?)");
    // -smp makes more CPUs to wire to.
    ManifestOverrides ov;
    ov.smp = 2;
    auto m = keel::test::build_machine(b.path, ov);
    CHECK(static_cast<TestCpu *>(m->cpus()[1]->state)->irq_level[0] == 0);
}

TEST_CASE("a @symbol window is placed at the symbol, over RAM, or the device is left out",
          "[machine][symbol]")
{
    SECTION("the symbol is defined: the window overlays RAM")
    {
        auto m = keel::test::build_machine(board(), {}, {{"mailbox", 0x80000800}});
        uint64_t v = 0;
        REQUIRE(m->system_memory().read(0x80000800, 4, v) == KEEL_MEM_OK);
        CHECK(v == 0x77); // the device's register, not RAM
        REQUIRE(m->system_memory().write(0x80000810, 4, 0x1234) == KEEL_MEM_OK);
        REQUIRE(m->system_memory().read(0x80000810, 4, v) == KEEL_MEM_OK);
        CHECK(v == 0x1234); // RAM right after the 16-byte window
        CHECK(m->find("mailbox") != nullptr);
        CHECK(m->left_out().empty());
        CHECK(m->describe().find("reg[0]  0x0000000080000800-0x000000008000080f  (@mailbox)") !=
              std::string::npos);
    }
    SECTION("no loaded image defines it: left out, and said so")
    {
        auto m = keel::test::build_machine(board());
        CHECK(m->find("mailbox") == nullptr);
        REQUIRE(m->left_out().size() == 1);
        CHECK(m->describe().find("mailbox: left out: no loaded image defines symbol 'mailbox'") !=
              std::string::npos);
    }
    SECTION("an overlap with another device is still an error")
    {
        TempManifest f("keel: 1\nname: t\nmemory:\n  - { name: ram, base: 0x80000000, size: 64K }\ndevices:\n"
                       "  a: { type: test-reg, reg: 0x1000, properties: { size: 16, num-regs: 4 } }\n"
                       "  b: { type: test-reg, reg: '@sym', properties: { size: 16, num-regs: 4 } }\n");
        Registry &reg = keel::test::test_registry();
        MachineSpec spec = load_manifest(f.path, {}, {}, reg);
        Machine m(reg, std::move(spec), nullptr);
        m.set_symbols({{"sym", 0x1008}});
        CHECK_THROWS_WITH(m.build(),
                          Catch::Contains("device 'b' window 0x0000000000001008-0x0000000000001017 "
                                          "overlaps device 'a'"));
    }
    SECTION("a wire to a left-out device says why it is missing")
    {
        TempManifest f("keel: 1\nname: t\ndevices:\n"
                       "  i: { type: test-intc, reg: '@intc', properties: { id: 1 } }\n"
                       "  a: { type: test-reg, reg: 0x2000, irq: i.1 }\n");
        Registry &reg = keel::test::test_registry();
        MachineSpec spec = load_manifest(f.path, {}, {}, reg);
        Machine m(reg, std::move(spec), nullptr);
        CHECK_THROWS_WITH(m.build(), f.path + ":5:42: irq target 'i.1' names no device (it was left out: no "
                                              "loaded image defines symbol 'intc')");
    }
}

TEST_CASE("a malformed @symbol is a manifest error", "[machine][symbol][errors]")
{
    TempManifest f("keel: 1\nname: t\ndevices:\n  a: { type: test-reg, reg: '@1x' }\n");
    CHECK_THROWS_WITH(load_manifest(f.path, {}, {}, keel::test::test_registry()),
                      f.path +
                          ":4:29: invalid symbol '@1x' in 'reg' of device 'a' (expected @NAME, NAME an ELF "
                          "symbol such as tohost)");
}
