// SPDX-License-Identifier: MIT
// Whole machines built from manifests with the real test-device modules, driven through the system bus.
#include <catch2/catch.hpp>

#include "test_machine.h"

using namespace keel;

using keel::test::TempManifest;
using keel::test::test_registry;

namespace
{

std::unique_ptr<Machine> build(const std::string &manifest, ManifestOverrides ov = {})
{
    return keel::test::build_machine(std::string(MACHINE_TEST_DIR) + "/" + manifest, std::move(ov));
}

uint64_t rd(Machine &m, uint64_t addr, unsigned w = 4)
{
    uint64_t v = 0;
    REQUIRE(m.system_memory().read(addr, w, v) == KEEL_MEM_OK);
    return v;
}

void wr(Machine &m, uint64_t addr, uint64_t v, unsigned w = 4)
{
    REQUIRE(m.system_memory().write(addr, w, v) == KEEL_MEM_OK);
}

} // namespace

TEST_CASE("properties from the manifest and defaults reach the device", "[machine]")
{
    auto m = build("wired.yaml");
    CHECK(rd(*m, 0x100c) == 42);   // intc id
    CHECK(rd(*m, 0x2004) == 0x55); // a: reset-value on every register
    CHECK(rd(*m, 0x3004) == 0);    // b: default reset-value
    // a has size 0x100: 0x2100 is unmapped; b has the default 4K.
    uint64_t v;
    CHECK(m->system_memory().read(0x2100, 4, v) == KEEL_MEM_DECODE_ERROR);
    CHECK(m->system_memory().read(0x3ffc, 4, v) == KEEL_MEM_OK);
    // test-reg declares 4-byte access only: the bus refuses other widths.
    CHECK(m->system_memory().read(0x2000, 1, v) == KEEL_MEM_ACCESS_ERROR);
}

TEST_CASE("irq lines are wired as the manifest says", "[machine][irq]")
{
    auto m = build("wired.yaml");
    wr(*m, 0x1004, 0xff); // enable every input
    CHECK(rd(*m, 0x1000) == 0);
    wr(*m, 0x2000, 1); // a's doorbell -> intc input 3
    CHECK(rd(*m, 0x1000) == (1u << 3));
    wr(*m, 0x2000, 0);
    CHECK(rd(*m, 0x1000) == 0);
    wr(*m, 0x3000, 1); // b's doorbell -> intc nmi
    CHECK(rd(*m, 0x1008) == 1);
    CHECK(rd(*m, 0x1000) == 0);
}

TEST_CASE("a device does DMA into RAM and raises its completion interrupt", "[machine][dma]")
{
    auto m = build("wired.yaml");
    const char msg[] = "hello, keel";
    REQUIRE(m->system_memory().write_buf(0x80000000, msg, sizeof msg) == KEEL_MEM_OK);
    wr(*m, 0x4000, 0x80000000, 8);
    wr(*m, 0x4008, 0x80001000, 8);
    wr(*m, 0x4010, sizeof msg, 8);
    wr(*m, 0x4018, 1, 4);
    CHECK(rd(*m, 0x4018, 4) == 2);
    char back[sizeof msg] = {};
    REQUIRE(m->system_memory().read_buf(0x80001000, back, sizeof back) == KEEL_MEM_OK);
    CHECK(std::string(back) == msg);
    CHECK(rd(*m, 0x1000) == (1u << 5));
    // Beyond max-len: refused with an error status.
    wr(*m, 0x4018, 0, 4);
    wr(*m, 0x4010, 8192, 8);
    wr(*m, 0x4018, 1, 4);
    CHECK(rd(*m, 0x4018, 4) == 3);
}

TEST_CASE("a machine reset restores device registers", "[machine]")
{
    auto m = build("wired.yaml");
    wr(*m, 0x2008, 0x1234);
    CHECK(rd(*m, 0x2008) == 0x1234);
    m->reset(KEEL_RESET_WARM);
    CHECK(rd(*m, 0x2008) == 0x55);
}

TEST_CASE("a -device option adds a wired device to a manifest", "[machine][cli]")
{
    ManifestOverrides ov;
    ov.devices.push_back("test-reg,id=extra,reg=0x5000,irq=intc.7,reset-value=9");
    auto m = build("wired.yaml", ov);
    CHECK(rd(*m, 0x5000) == 9);
    wr(*m, 0x1004, 0xff);
    wr(*m, 0x5000, 1);
    CHECK(rd(*m, 0x1000) == (1u << 7));
}

TEST_CASE("mistakes found when the machine is built point at the manifest", "[machine][errors]")
{
    // `msg` is the expected message after "FILE:", with FILE standing for the manifest's path.
    auto expect = [](const std::string &body, std::string msg) {
        TempManifest f(
            "keel: 1\nname: t\nmemory:\n  - { name: ram, base: 0x80000000, size: 64K }\ndevices:\n" + body);
        for (size_t p; (p = msg.find("FILE")) != std::string::npos;)
            msg.replace(p, 4, f.path);
        Registry &reg = test_registry();
        MachineSpec spec = load_manifest(f.path, {}, {}, reg);
        Machine m(reg, std::move(spec), nullptr);
        CHECK_THROWS_WITH(m.build(), f.path + ":" + msg);
    };
    expect("  a: { type: test-reg, reg: 0x1000 }\n"
           "  b: { type: test-reg, reg: 0x1800 }\n",
           "7:29: device 'b' window 0x0000000000001800-0x00000000000027ff overlaps device 'a' "
           "0x0000000000001000-0x0000000000001fff (at FILE:6:29)");
    expect("  a: { type: test-reg, reg: 0x8000f000, properties: { size: 8K } }\n",
           "6:29: device 'a' window 0x000000008000f000-0x0000000080010fff overlaps memory 'ram' "
           "0x0000000080000000-0x000000008000ffff (at FILE:4:5)");
    expect("  a: { type: test-reg, reg: [0x1000, 0x2000] }\n",
           "6:38: device 'a' (test-reg) has 1 register window(s); this address has no window to map");
    expect("  a: { type: test-reg }\n",
           "6:3: device 'a' (test-reg) has 1 register window(s) but 'reg' gives 0 address(es)");
    expect("  a: { type: test-reg, reg: { base: 0x1000, size: 0x2000 } }\n",
           "6:29: device 'a' (test-reg): window 0 is 0x1000 bytes, not 0x2000 as 'reg' says");
    expect("  i: { type: test-intc, reg: 0x1000, properties: { id: 1, num-inputs: 4 } }\n"
           "  a: { type: test-reg, reg: 0x2000, irq: i.4 }\n",
           "7:42: irq target 'i.4': device 'i' (test-intc) has default inputs 0..3");
    expect("  i: { type: test-intc, reg: 0x1000, properties: { id: 1 } }\n"
           "  a: { type: test-reg, reg: 0x2000, irq: [i.1, i.2] }\n",
           "7:48: device 'a' (test-reg) has 1 default interrupt output(s); 'i.2' has no line to connect");
    expect("  i: { type: test-intc, reg: 0x1000, properties: { id: 1 } }\n"
           "  a: { type: test-reg, reg: 0x2000, irq: i.1 }\n"
           "  b: { type: test-reg, reg: 0x3000, irq: i.1 }\n",
           "8:42: irq target 'i.1' is already driven by device 'a'");
    expect("  i: { type: test-intc, reg: 0x1000, properties: { id: 1 } }\n"
           "  a: { type: test-reg, reg: 0x2000, irq: a.0 }\n",
           "7:42: irq target 'a.0': device 'a' (test-reg) has no default interrupt inputs");
    expect("  i: { type: test-intc, reg: 0x1000, properties: { id: 1 } }\n"
           "  a: { type: test-reg, reg: 0x2000, irq: i.mni }\n",
           "7:42: irq target 'i.mni': device 'i' (test-intc) has no 'mni' interrupt inputs (it has: N, nmi)");
}
