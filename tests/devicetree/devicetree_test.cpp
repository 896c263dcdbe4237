// SPDX-License-Identifier: MIT
// The generated device tree of machines built from manifests with the real RISC-V modules, read back with
// libfdt.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

extern "C" {
#include <libfdt.h>
}

#include "devicetree.h"
#include "error.h"
#include "kernel.h"
#include "machine.h"

using namespace keel;

namespace
{

// The kernel's registry over the modules this build made (lib/keel), nothing else: the tree
// must be the one the real device types describe.
Registry &registry()
{
    static bool ready = false;
    Registry &reg = kernel().registry();
    if (!ready) {
        reg.set_search_path({KEEL_MODULE_DIR});
        reg.refresh();
        ready = true;
    }
    return reg;
}

std::unique_ptr<Machine> build(const std::string &manifest)
{
    Registry &reg = registry();
    MachineSpec spec = load_manifest(manifest, {}, {}, reg);
    auto m = std::make_unique<Machine>(reg, std::move(spec), nullptr);
    m->build();
    return m;
}

const std::string kBoard = std::string(DEVICETREE_TEST_DIR) + "/board.yaml";

// A manifest written by the test into a temporary file.
struct TempManifest {
    std::string path;
    explicit TempManifest(const std::string &text)
    {
        char tmpl[] = "/tmp/keel-dt-XXXXXX.yaml";
        int fd = ::mkstemps(tmpl, 5);
        REQUIRE(fd >= 0);
        ::close(fd);
        path = tmpl;
        std::ofstream(path) << text;
    }
    ~TempManifest() { std::filesystem::remove(path); }
};

// A generated tree, read with libfdt; every accessor fails the test when the node or property is missing.
struct Tree {
    std::vector<uint8_t> blob;

    explicit Tree(std::vector<uint8_t> b) : blob(std::move(b))
    {
        REQUIRE(fdt_check_full(blob.data(), blob.size()) == 0);
    }
    const void *fdt() const { return blob.data(); }

    int node(const std::string &path) const
    {
        int off = fdt_path_offset(fdt(), path.c_str());
        INFO("node " << path);
        REQUIRE(off >= 0);
        return off;
    }
    bool exists(const std::string &path) const { return fdt_path_offset(fdt(), path.c_str()) >= 0; }
    bool has(const std::string &path, const char *name) const
    {
        return fdt_getprop(fdt(), node(path), name, nullptr) != nullptr;
    }
    std::vector<uint8_t> raw(const std::string &path, const char *name) const
    {
        int len = 0;
        const auto *p = static_cast<const uint8_t *>(fdt_getprop(fdt(), node(path), name, &len));
        INFO("property " << name << " of " << path);
        REQUIRE(p != nullptr);
        return {p, p + len};
    }
    std::vector<uint32_t> cells(const std::string &path, const char *name) const
    {
        std::vector<uint8_t> r = raw(path, name);
        INFO("property " << name << " of " << path << " has " << r.size() << " bytes");
        REQUIRE(r.size() % 4 == 0);
        std::vector<uint32_t> out;
        for (size_t i = 0; i < r.size(); i += 4)
            out.push_back(uint32_t(r[i]) << 24 | uint32_t(r[i + 1]) << 16 | uint32_t(r[i + 2]) << 8 |
                          r[i + 3]);
        return out;
    }
    uint32_t u32(const std::string &path, const char *name) const
    {
        auto c = cells(path, name);
        INFO("property " << name << " of " << path);
        REQUIRE(c.size() == 1);
        return c[0];
    }
    // A number in one or two cells (Linux reads linux,initrd-* either way).
    uint64_t number(const std::string &path, const char *name) const
    {
        auto c = cells(path, name);
        INFO("property " << name << " of " << path);
        REQUIRE((c.size() == 1 || c.size() == 2));
        return c.size() == 1 ? c[0] : uint64_t(c[0]) << 32 | c[1];
    }
    std::vector<std::string> strings(const std::string &path, const char *name) const
    {
        std::vector<uint8_t> r = raw(path, name);
        INFO("property " << name << " of " << path);
        REQUIRE((!r.empty() && r.back() == 0));
        std::vector<std::string> out;
        for (size_t i = 0; i < r.size();) {
            std::string s(reinterpret_cast<const char *>(r.data() + i));
            i += s.size() + 1;
            out.push_back(std::move(s));
        }
        return out;
    }
    std::string string(const std::string &path, const char *name) const
    {
        auto s = strings(path, name);
        REQUIRE(s.size() == 1);
        return s[0];
    }
    uint32_t phandle(const std::string &path) const
    {
        uint32_t p = fdt_get_phandle(fdt(), node(path));
        INFO("phandle of " << path);
        REQUIRE(p != 0);
        return p;
    }
    std::vector<std::string> children(const std::string &path) const
    {
        std::vector<std::string> out;
        int off;
        fdt_for_each_subnode(off, fdt(), node(path)) out.emplace_back(fdt_get_name(fdt(), off, nullptr));
        return out;
    }
    std::vector<std::string> properties(const std::string &path) const
    {
        std::vector<std::string> out;
        int off;
        fdt_for_each_property_offset(off, fdt(), node(path))
        {
            const char *name;
            fdt_getprop_by_offset(fdt(), off, &name, nullptr);
            out.emplace_back(name);
        }
        return out;
    }
};

Tree board_tree(const FdtChosen &chosen = {})
{
    auto m = build(kBoard);
    return Tree(generate_fdt(*m, chosen));
}

using Cells = std::vector<uint32_t>;
using Strings = std::vector<std::string>;

} // namespace

TEST_CASE("the root, /memory and /cpus of a generated tree", "[devicetree]")
{
    Tree t = board_tree();
    CHECK(t.u32("/", "#address-cells") == 2);
    CHECK(t.u32("/", "#size-cells") == 2);
    CHECK(t.string("/", "model") == "acme,dt-board");
    CHECK(t.strings("/", "compatible") == Strings{"acme,dt-board", "acme,generic"});

    // RAM only: the ROM is no /memory node.
    CHECK(t.string("/memory@80000000", "device_type") == "memory");
    CHECK(t.cells("/memory@80000000", "reg") == Cells{0, 0x80000000, 0, 16 << 20});
    CHECK_FALSE(t.exists("/memory@20000000"));

    CHECK(t.u32("/cpus", "#address-cells") == 1);
    CHECK(t.u32("/cpus", "#size-cells") == 0);
    CHECK(t.u32("/cpus", "timebase-frequency") == 1000000);
    for (uint32_t i = 0; i < 2; ++i) {
        std::string cpu = "/cpus/cpu@" + std::to_string(i);
        INFO(cpu);
        CHECK(t.string(cpu, "device_type") == "cpu");
        CHECK(t.u32(cpu, "reg") == i);
        CHECK(t.string(cpu, "status") == "okay");
        CHECK(t.strings(cpu, "compatible") == Strings{"riscv"});
        std::string isa = t.string(cpu, "riscv,isa");
        CHECK(isa.rfind("rv64imafdc", 0) == 0);
        CHECK(isa.find("_zicsr") != std::string::npos);
        CHECK(isa.find("_zifencei") != std::string::npos);
        CHECK(t.string(cpu, "mmu-type") == "riscv,sv39");
        std::string intc = cpu + "/interrupt-controller";
        CHECK(t.strings(intc, "compatible") == Strings{"riscv,cpu-intc"});
        CHECK(t.has(intc, "interrupt-controller"));
        CHECK(t.raw(intc, "interrupt-controller").empty());
        CHECK(t.u32(intc, "#interrupt-cells") == 1);
        t.phandle(intc);
    }
    CHECK(t.phandle("/cpus/cpu@0/interrupt-controller") != t.phandle("/cpus/cpu@1/interrupt-controller"));
}

TEST_CASE("interrupt controllers and the devices wired to them", "[devicetree][irq]")
{
    Tree t = board_tree();
    uint32_t h0 = t.phandle("/cpus/cpu@0/interrupt-controller");
    uint32_t h1 = t.phandle("/cpus/cpu@1/interrupt-controller");

    const std::string plic = "/soc/plic@c000000";
    CHECK(t.strings("/soc", "compatible") == Strings{"simple-bus"});
    CHECK(t.has("/soc", "ranges"));
    CHECK(t.strings(plic, "compatible") == Strings{"sifive,plic-1.0.0", "riscv,plic0"});
    CHECK(t.cells(plic, "reg") == Cells{0, 0xc000000, 0, 0x4000000});
    CHECK(t.has(plic, "interrupt-controller"));
    CHECK(t.u32(plic, "#interrupt-cells") == 1);
    CHECK(t.u32(plic, "#address-cells") == 0);
    CHECK(t.u32(plic, "riscv,ndev") == 40);
    // Context 2N is hart N's M-mode external interrupt (11), 2N+1 its S-mode one (9): firmware numbers the
    // contexts by the order of this list.
    CHECK(t.cells(plic, "interrupts-extended") == Cells{h0, 11, h0, 9, h1, 11, h1, 9});
    CHECK_FALSE(t.has(plic, "interrupt-parent"));

    // The CLINT's software (3) and timer (7) interrupts of each hart; drivers match each pair by its
    // number, so only the set is checked here (the order is QEMU's in the dtc comparison).
    const std::string clint = "/soc/clint@2000000";
    CHECK(t.strings(clint, "compatible") == Strings{"sifive,clint0", "riscv,clint0"});
    CHECK(t.cells(clint, "reg") == Cells{0, 0x2000000, 0, 0x10000});
    Cells ie = t.cells(clint, "interrupts-extended");
    REQUIRE(ie.size() == 8);
    std::multiset<std::pair<uint32_t, uint32_t>> pairs;
    for (size_t i = 0; i < ie.size(); i += 2)
        pairs.emplace(ie[i], ie[i + 1]);
    CHECK(pairs == std::multiset<std::pair<uint32_t, uint32_t>>{{h0, 3}, {h0, 7}, {h1, 3}, {h1, 7}});
    CHECK_FALSE(t.has(clint, "interrupt-controller"));

    const std::string uart = "/soc/serial@10000000";
    CHECK(t.strings(uart, "compatible") == Strings{"ns16550a"});
    CHECK(t.cells(uart, "reg") == Cells{0, 0x10000000, 0, 0x100}); // the slot, not the 8 registers
    CHECK(t.u32(uart, "clock-frequency") == 1843200);
    CHECK(t.u32(uart, "interrupt-parent") == t.phandle(plic));
    CHECK(t.cells(uart, "interrupts") == Cells{10});
    CHECK_FALSE(t.has(uart, "interrupts-extended"));
    CHECK_FALSE(t.has(uart, "reg-shift"));
}

TEST_CASE("sifive-test describes /poweroff and /reboot as syscon writes", "[devicetree]")
{
    Tree t = board_tree();
    const std::string test = "/soc/test@100000";
    CHECK(t.strings(test, "compatible") == Strings{"sifive,test1", "sifive,test0", "syscon"});
    CHECK(t.cells(test, "reg") == Cells{0, 0x100000, 0, 0x1000});
    uint32_t ph = t.phandle(test);
    CHECK(t.strings("/poweroff", "compatible") == Strings{"syscon-poweroff"});
    CHECK(t.u32("/poweroff", "regmap") == ph);
    CHECK(t.u32("/poweroff", "offset") == 0);
    CHECK(t.u32("/poweroff", "value") == 0x5555);
    CHECK(t.strings("/reboot", "compatible") == Strings{"syscon-reboot"});
    CHECK(t.u32("/reboot", "regmap") == ph);
    CHECK(t.u32("/reboot", "offset") == 0);
    CHECK(t.u32("/reboot", "value") == 0x7777);
}

TEST_CASE("/chosen: the console, and bootargs and the initrd when given", "[devicetree][chosen]")
{
    SECTION("nothing given")
    {
        Tree t = board_tree();
        CHECK(t.string("/chosen", "stdout-path") == "/soc/serial@10000000");
        CHECK(t.properties("/chosen") == Strings{"stdout-path"});
    }
    SECTION("bootargs and an initrd")
    {
        FdtChosen c;
        c.bootargs = "console=ttyS0 root=/dev/ram rw";
        c.initrd_start = 0x80800000;
        c.initrd_end = 0x80812345;
        Tree t = board_tree(c);
        CHECK(t.string("/chosen", "stdout-path") == "/soc/serial@10000000");
        CHECK(t.string("/chosen", "bootargs") == "console=ttyS0 root=/dev/ram rw");
        CHECK(t.number("/chosen", "linux,initrd-start") == 0x80800000);
        CHECK(t.number("/chosen", "linux,initrd-end") == 0x80812345);
    }
    SECTION("an initrd above 4 GiB needs both cells")
    {
        FdtChosen c;
        c.initrd_start = 0x1'0000'1000;
        c.initrd_end = 0x1'0000'2000;
        Tree t = board_tree(c);
        CHECK(t.number("/chosen", "linux,initrd-start") == 0x100001000);
        CHECK(t.number("/chosen", "linux,initrd-end") == 0x100002000);
        CHECK_FALSE(t.has("/chosen", "bootargs"));
    }
}

TEST_CASE("nodes and properties come out in creation order", "[devicetree]")
{
    Tree t = board_tree();
    CHECK(t.children("/") == Strings{"chosen", "memory@80000000", "cpus", "soc", "poweroff", "reboot"});
    CHECK(t.children("/cpus") == Strings{"cpu@0", "cpu@1"});
    // The manifest's order of devices.
    CHECK(t.children("/soc") == Strings{"test@100000", "clint@2000000", "plic@c000000", "serial@10000000"});
    CHECK(t.properties("/cpus/cpu@0") ==
          Strings{"device_type", "reg", "status", "compatible", "riscv,isa", "mmu-type"});
    Strings uart = t.properties("/soc/serial@10000000");
    REQUIRE(uart.size() >= 2);
    CHECK(uart[0] == "compatible");
    CHECK(uart[1] == "reg");
}

TEST_CASE("a manifest's fdt: section adds, replaces and deletes properties, renames or leaves out nodes",
          "[devicetree][manifest]")
{
    TempManifest f(R"(keel: 1
name: overrides
fdt:
  model: acme,override
  properties: { serial-number: "SN 42", "acme,flags": [1, 2, 3] }
cpus: { type: riscv64, count: 1 }
memory:
  - { name: ram, base: 0x80000000, size: 16M }
devices:
  plic: { type: plic, reg: 0xc000000, irq: [cpu*.mei, cpu*.sei] }
  uart0:
    type: ns16550a
    reg: 0x10000000
    irq: plic.10
    properties: { chardev: serial0 }
    fdt:
      node: uart
      compatible: ["acme,uart", ns16550a]
      properties:
        clock-frequency: 7372800
        interrupts: false
        current-speed: 115200
        wakeup-source: true
        label: [first, second]
  uart1:
    type: ns16550a
    reg: 0x10001000
    irq: plic.11
    fdt: false
)");
    auto m = build(f.path);
    Tree t(generate_fdt(*m, {}));

    CHECK(t.string("/", "model") == "acme,override");
    CHECK(t.strings("/", "compatible") == Strings{"keel,overrides"}); // keel's, none given
    CHECK(t.string("/", "serial-number") == "SN 42");
    CHECK(t.cells("/", "acme,flags") == Cells{1, 2, 3});

    const std::string uart = "/soc/uart@10000000";
    CHECK_FALSE(t.exists("/soc/serial@10000000"));
    CHECK(t.strings(uart, "compatible") == Strings{"acme,uart", "ns16550a"}); // replaced
    CHECK(t.u32(uart, "clock-frequency") == 7372800);                         // replaced
    CHECK_FALSE(t.has(uart, "interrupts"));                                   // deleted
    CHECK(t.u32(uart, "interrupt-parent") == t.phandle("/soc/plic@c000000")); // kept
    CHECK(t.u32(uart, "current-speed") == 115200);                            // added
    CHECK(t.has(uart, "wakeup-source"));
    CHECK(t.raw(uart, "wakeup-source").empty());
    CHECK(t.strings(uart, "label") == Strings{"first", "second"});
    CHECK(t.cells(uart, "reg") == Cells{0, 0x10000000, 0, 0x100});
    CHECK(t.string("/chosen", "stdout-path") == uart); // the console follows the rename

    // fdt: false: no node, though the device exists.
    CHECK(t.children("/soc") == Strings{"plic@c000000", "uart@10000000"});
    CHECK(m->find("uart1") != nullptr);
}

TEST_CASE("a second /poweroff is an error naming the device", "[devicetree][errors]")
{
    TempManifest f(R"(keel: 1
name: twice
cpus: { type: riscv64, count: 1 }
memory:
  - { name: ram, base: 0x80000000, size: 16M }
devices:
  a: { type: sifive-test, reg: 0x100000 }
  b: { type: sifive-test, reg: 0x200000 }
)");
    auto m = build(f.path);
    CHECK_THROWS_WITH(generate_fdt(*m, {}),
                      Catch::Contains("device 'b' (sifive-test)") && Catch::Contains("/poweroff"));
}
