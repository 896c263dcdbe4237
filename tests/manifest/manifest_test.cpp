// SPDX-License-Identifier: MIT
// Manifest loading: includes and merging, overrides, every bad/*.yaml against its .err, the JSON Schema.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

#include "fake_types.h"
#include "manifest.h"

using namespace keel;
namespace fs = std::filesystem;

namespace
{

// The .err files spell paths relative to this directory, as a user running
// keel from there would see them.
const bool in_test_dir = ::chdir(MANIFEST_TEST_DIR) == 0;

const test::FakeTypes &types()
{
    static test::FakeTypes t;
    return t;
}

MachineSpec load(const std::string &file, const ManifestOverrides &ov = {})
{
    REQUIRE(in_test_dir);
    return load_manifest(file, {}, ov, types());
}

std::string error_of(const std::string &file, const ManifestOverrides &ov = {})
{
    try {
        load(file, ov);
    } catch (const Error &e) {
        return e.what();
    }
    return "(no error)";
}

const DeviceSpec &dev(const MachineSpec &m, const std::string &name)
{
    for (const auto &d : m.devices)
        if (d.name == name) return d;
    FAIL("no device " << name);
    throw;
}

const PropSetting *prop(const DeviceSpec &d, const std::string &name)
{
    for (const auto &p : d.props)
        if (p.name == name) return &p;
    return nullptr;
}

std::string read_file(const fs::path &p)
{
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
        s.pop_back();
    return s;
}

} // namespace

TEST_CASE("includes are merged and overridden", "[manifest]")
{
    MachineSpec m = load("good/board.yaml");
    CHECK(m.name == "board");
    CHECK(m.description == "a board for the manifest tests");
    CHECK(m.file == "good/board.yaml");
    CHECK(m.schema_version == 1);
    CHECK(m.accel == "tci");
    CHECK(m.accel_loc.str() == "good/common.yaml:2:8");

    REQUIRE(m.cpus);
    CHECK(m.cpus->type == "fake-cpu");
    CHECK(m.cpus->count == 2);
    REQUIRE(m.cpus->props.size() == 1);
    CHECK(m.cpus->props[0].name == "isa");
    CHECK(std::get<std::string>(m.cpus->props[0].value) == "rv64imac");

    // dram: size changed by name, position kept; flash appended.
    REQUIRE(m.memory.size() == 3);
    CHECK(m.memory[0].name == "dram");
    CHECK(m.memory[0].base == 0x80000000);
    CHECK(m.memory[0].size == 256ull << 20);
    CHECK(m.memory[0].kind == "ram");
    CHECK(m.memory[0].loc.str() == "good/base.yaml:6:5");
    CHECK(m.memory[1].name == "boot");
    CHECK(m.memory[1].kind == "rom");
    CHECK(m.memory[1].size == 0x1000);
    CHECK(m.memory[2].name == "flash");
    CHECK(m.memory[2].base == 0x20000000);
    CHECK(m.memory[2].size == 32ull << 20);

    REQUIRE(m.chardevs.size() == 1);
    CHECK(m.chardevs[0].id == "con");
    CHECK(m.chardevs[0].backend == "socket");
    CHECK(m.chardevs[0].options.at("path") == "/tmp/k.sock");
    CHECK(m.chardevs[0].options.at("server") == "on"); // true -> QEMU's spelling
    CHECK(m.chardevs[0].options.at("wait") == "off");
    CHECK(m.chardevs[0].loc.str() == "good/base.yaml:9:3");

    // Includes first (deepest first), then this file's new ones; uart1 removed.
    std::vector<std::string> order;
    for (const auto &d : m.devices)
        order.push_back(d.name);
    CHECK(order == std::vector<std::string>{"test", "intc", "regs", "dma", "uart0"});

    const DeviceSpec &test = dev(m, "test");
    CHECK(test.type == "sifive-test");
    CHECK(test.loc.str() == "good/common.yaml:5:3");
    REQUIRE(test.reg.size() == 1);
    CHECK(test.reg[0].base == 0x100000);
    CHECK(!test.reg[0].size);

    const DeviceSpec &intc = dev(m, "intc");
    CHECK(std::get<uint64_t>(prop(intc, "id")->value) == 7);
    CHECK(std::get<uint64_t>(prop(intc, "num-inputs")->value) == 16);

    const DeviceSpec &regs = dev(m, "regs");
    CHECK(regs.loc.str() == "good/base.yaml:13:3"); // the first declaration
    CHECK(regs.type_loc.str() == "good/base.yaml:14:11");
    REQUIRE(regs.reg.size() == 2);
    CHECK(regs.reg[0].base == 0x3000000);
    CHECK(regs.reg[1].base == 0x3001000);
    CHECK(regs.reg[1].size == 0x1000u);
    REQUIRE(regs.irq.size() == 1);
    CHECK(regs.irq[0].device == "intc");
    CHECK(regs.irq[0].group == "nmi");
    CHECK(regs.irq[0].index == 0);
    CHECK(regs.irq[0].str() == "intc.nmi");
    std::vector<std::string> pnames;
    for (const auto &p : regs.props)
        pnames.push_back(p.name);
    CHECK(pnames == std::vector<std::string>{"size", "mode", "label", "offset-adjust"});
    CHECK(std::get<uint64_t>(prop(regs, "size")->value) == 4096);
    CHECK(std::get<uint64_t>(prop(regs, "mode")->value) == 1); // sticky, from base.yaml
    CHECK(prop(regs, "mode")->loc.str() == "good/base.yaml:17:35");
    CHECK(std::get<std::string>(prop(regs, "label")->value) == "second");
    CHECK(prop(regs, "label")->text == "second");
    CHECK(prop(regs, "label")->loc.str() == "good/board.yaml:12:26");
    CHECK(std::get<int64_t>(prop(regs, "offset-adjust")->value) == -5);

    const DeviceSpec &dma = dev(m, "dma");
    CHECK(dma.version_req == "^1.0");
    REQUIRE(dma.reg.size() == 1);
    CHECK(dma.reg[0].base == 0x4000000);
    CHECK(dma.reg[0].size == 0x20u);
    REQUIRE(dma.irq.size() == 1);
    CHECK(dma.irq[0].str() == "intc.3");
    CHECK(dma.irq[0].loc.str() == "good/board.yaml:17:11");
    REQUIRE(dma.irq_out.count("done"));
    REQUIRE(dma.irq_out.at("done").size() == 2);
    CHECK(dma.irq_out.at("done")[0].str() == "intc.4");
    CHECK(dma.irq_out.at("done")[1].group == "nmi");
    CHECK(dma.irq_out.at("done")[1].index == 0);
    CHECK(std::get<std::string>(prop(dma, "peer")->value) == "regs");
    CHECK(std::get<std::string>(prop(dma, "chardev")->value) == "con");
    CHECK(std::get<uint64_t>(prop(dma, "max-len")->value) == 1 << 20);

    const DeviceSpec &uart = dev(m, "uart0");
    CHECK(uart.irq[0].index == 10);
    CHECK(std::get<uint64_t>(prop(uart, "clock-frequency")->value) == 3686400);
    CHECK(prop(uart, "clock-frequency")->text == "0x384000");
}

TEST_CASE("a minimal manifest", "[manifest]")
{
    MachineSpec m = load("good/minimal.yaml");
    CHECK(m.name == "minimal"); // from the file name
    CHECK(!m.cpus);
    CHECK(m.memory.empty());
    CHECK(m.devices.empty());
    CHECK(m.accel.empty());
}

TEST_CASE("a board name given with -M is found in the search directories", "[manifest]")
{
    REQUIRE(in_test_dir);
    CHECK(find_manifest("board", {"nowhere", "good"}) == "good/board.yaml");
    CHECK(find_manifest("good/board.yaml", {}) == "good/board.yaml");
    CHECK(find_manifest("nope", {"good"}).empty());
    MachineSpec m = load_manifest("board", {"good"}, {}, types());
    CHECK(m.name == "board");
    try {
        load_manifest("boad", {"good"}, {}, types());
        FAIL("no error");
    } catch (const Error &e) {
        CHECK(
            std::string(e.what()) ==
            "unknown machine 'boad' (did you mean 'board'?) (looked in good; keel -M help lists the boards)");
        CHECK(!e.located());
    }
    CHECK(error_of("good/nope.yaml") == "cannot read manifest 'good/nope.yaml': No such file or directory");
}

TEST_CASE("command-line overrides", "[manifest]")
{
    ManifestOverrides ov;
    ov.memory_size = "512M";
    ov.smp = 4;
    ov.accel = "tcg";
    ov.devices = {"test-reg,id=extra,reg=0x5000000,reg=0x5001000,irq=intc.5,mode=sticky,label=a,,b",
                  "test-dma,id=dma2,peer=extra,chardev=mon"};
    ov.chardev_ids = {"mon"};
    MachineSpec m = load("good/board.yaml", ov);
    CHECK(m.memory[0].size == 512ull << 20);
    CHECK(m.cpus->count == 4);
    CHECK(m.accel == "tcg");
    CHECK(m.accel_loc.file == "-accel tcg");
    REQUIRE(m.devices.size() == 7);
    const DeviceSpec &x = m.devices[5];
    CHECK(x.name == "extra");
    CHECK(x.type == "test-reg");
    REQUIRE(x.reg.size() == 2);
    CHECK(x.reg[1].base == 0x5001000);
    REQUIRE(x.irq.size() == 1);
    CHECK(x.irq[0].str() == "intc.5");
    CHECK(std::get<uint64_t>(prop(x, "mode")->value) == 1);
    CHECK(std::get<std::string>(prop(x, "label")->value) == "a,b");
    CHECK(x.loc.file == "-device " + ov.devices[0]);
    CHECK(m.devices[6].name == "dma2");

    SECTION("-m without a unit is MiB, as in QEMU")
    {
        ManifestOverrides o;
        o.memory_size = "64";
        CHECK(load("good/board.yaml", o).memory[0].size == 64ull << 20);
    }
}

TEST_CASE("command-line override errors", "[manifest]")
{
    auto with = [](auto set) {
        ManifestOverrides o;
        set(o);
        return o;
    };
    CHECK(error_of("good/board.yaml", with([](auto &o) { o.memory_size = "12X"; })) ==
          "-m 12X: invalid size '12X'");
    CHECK(error_of("good/board.yaml", with([](auto &o) { o.memory_size = "0"; })) ==
          "-m 0: memory size must not be zero");
    CHECK(error_of("good/minimal.yaml", with([](auto &o) { o.memory_size = "1G"; })) ==
          "-m 1G: machine 'minimal' has no RAM region to resize");
    CHECK(
        error_of("good/board.yaml", with([](auto &o) { o.memory_size = "17179869183G"; })) ==
        "-m 17179869183G: memory 'dram' at 0x0000000080000000 with size 17179869183 GiB goes past the end of "
        "the address space");
    CHECK(error_of("good/minimal.yaml", with([](auto &o) { o.smp = 2; })) ==
          "-smp 2: machine 'minimal' has no 'cpus:' section to set the count of");
    CHECK(error_of("good/board.yaml", with([](auto &o) { o.smp = 513; })) ==
          "-smp 513: invalid number of CPUs '513' (1 to 512)");
    CHECK(error_of("good/board.yaml",
                   with([](auto &o) { o.devices = {"ns16550a,id=uart0,reg=0x10000100"}; })) ==
          "-device ns16550a,id=uart0,reg=0x10000100: a device named 'uart0' already exists (first at "
          "good/board.yaml:20:3)");
    CHECK(error_of("good/board.yaml",
                   with([](auto &o) { o.devices = {"test-reg,id=x,reg=0x9000,colour=red"}; })) ==
          "-device test-reg,id=x,reg=0x9000,colour=red: device 'x' (test-reg) has no property 'colour'");
    CHECK(error_of("good/board.yaml", with([](auto &o) { o.devices = {"test-reg,reg=0x9000"}; })) ==
          "-device test-reg,reg=0x9000: needs an id (-device test-reg,id=NAME,...)");
    CHECK(error_of("good/board.yaml", with([](auto &o) { o.devices = {"id=x"}; })) ==
          "-device id=x: expected the device type first (-device TYPE,id=NAME,...)");
    CHECK(error_of("good/board.yaml", with([](auto &o) { o.devices = {"test-rgg,id=x"}; })) ==
          "-device test-rgg,id=x: unknown device type 'test-rgg' (did you mean 'test-reg'?)");
    CHECK(error_of("good/board.yaml", with([](auto &o) { o.devices = {"test-intc,id=i2"}; })) ==
          "-device test-intc,id=i2: device 'i2' (test-intc) needs property 'id'");
    CHECK(error_of("good/board.yaml", with([](auto &o) { o.devices = {"test-reg,id=r,irq=intx.1"}; })) ==
          "-device test-reg,id=r,irq=intx.1: irq target 'intx.1' names no device (did you mean 'intc'?)");
    CHECK(error_of("good/board.yaml", with([](auto &o) { o.devices = {"test-reg,id=r,num-regs=0"}; })) ==
          "-device test-reg,id=r,num-regs=0: value 0 is out of range 1..1024 for property 'num-regs'");
    CHECK(error_of("good/board.yaml", with([](auto &o) { o.devices = {"test-reg,id=r,mode=a,mode=b"}; })) ==
          "-device test-reg,id=r,mode=a,mode=b: property 'mode' given twice");
    CHECK(error_of("good/board.yaml", with([](auto &o) { o.devices = {"test-dma,id=d,chardev=zzz"}; })) ==
          "-device test-dma,id=d,chardev=zzz: property 'chardev' of device 'd' names no chardev 'zzz' "
          "(chardevs: serial0, serial1, serial2, serial3, con)");
    CHECK(error_of("good/board.yaml", with([](auto &o) { o.devices = {"test-reg,id=Bad"}; })) ==
          "-device test-reg,id=Bad: invalid device name 'Bad' (names use a-z, 0-9, '-' and '_', and start "
          "with a "
          "letter)");
    CHECK(error_of("good/board.yaml", with([](auto &o) { o.devices = {"test-reg,id=dram"}; })) ==
          "-device test-reg,id=dram: device name 'dram' is already used by memory 'dram' (at "
          "good/base.yaml:6:5)");
}

TEST_CASE("every bad manifest fails with its .err message", "[manifest]")
{
    REQUIRE(in_test_dir);
    std::vector<fs::path> files;
    for (const auto &e : fs::directory_iterator("bad"))
        if (e.path().extension() == ".yaml") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    REQUIRE(files.size() >= 18);
    for (const auto &f : files) {
        DYNAMIC_SECTION(f.string())
        {
            fs::path err = f;
            err.replace_extension(".err");
            REQUIRE(fs::exists(err));
            std::string want = read_file(err);
            std::string got = error_of(f.string());
            CHECK(got == want);
            // The message must name the file it is in, at a line and column.
            CHECK(got.rfind("bad/", 0) == 0);
        }
    }
}

TEST_CASE("an inline manifest with every syntax of reg and irq", "[manifest]")
{
    REQUIRE(in_test_dir);
    fs::path tmp = fs::temp_directory_path() / ("keel-manifest-" + std::to_string(::getpid()) + ".yaml");
    {
        std::ofstream out(tmp);
        out << "keel: 1\n"
               "devices:\n"
               "  intc: { type: test-intc, properties: { id: 0 } }\n"
               "  a: { type: test-reg, reg: [0x1000, 0x2000], irq: [intc.1, intc.nmi, \"intc.nmi[0]\"] }\n"
               "  b: { type: test-reg, reg: [{ base: 0x3000 }, { base: 0x4000, size: 4K }], "
               "irq-out: { x: intc.2, y: [intc.3] } }\n"
               "  c: { type: test-reg, properties: { enabled: off, label: \"\", offset-adjust: -100 } }\n";
    }
    MachineSpec m = load_manifest(tmp.string(), {}, {}, types());
    fs::remove(tmp);
    const DeviceSpec &a = dev(m, "a");
    REQUIRE(a.reg.size() == 2);
    CHECK(a.reg[1].base == 0x2000);
    REQUIRE(a.irq.size() == 3);
    CHECK(a.irq[0].index == 1);
    CHECK(a.irq[0].group.empty());
    CHECK(a.irq[1].group == "nmi");
    CHECK(a.irq[2].group == "nmi");
    const DeviceSpec &b = dev(m, "b");
    CHECK(!b.reg[0].size);
    CHECK(b.reg[1].size == 4096u);
    CHECK(b.irq_out.at("x")[0].index == 2);
    CHECK(b.irq_out.at("y")[0].index == 3);
    const DeviceSpec &c = dev(m, "c");
    CHECK(std::get<bool>(prop(c, "enabled")->value) == false);
    CHECK(std::get<std::string>(prop(c, "label")->value).empty());
    CHECK(std::get<int64_t>(prop(c, "offset-adjust")->value) == -100);
}

TEST_CASE("the JSON Schema is valid JSON and covers every type", "[manifest][schema]")
{
    REQUIRE(in_test_dir);
    std::string s = manifest_json_schema(types());
    for (const char *t : {"test-reg", "test-intc", "test-dma", "ns16550a", "sifive-test", "fake-cpu"})
        CHECK(s.find(std::string("\"") + t + "\"") != std::string::npos);
    CHECK(s.find("\"https://json-schema.org/draft/2020-12/schema\"") != std::string::npos);
    CHECK(s.find("\"clock-frequency\"") != std::string::npos);
    CHECK(s.find("\"sticky\"") != std::string::npos);
#ifdef PYTHON3
    fs::path tmp = fs::temp_directory_path() / ("keel-schema-" + std::to_string(::getpid()) + ".json");
    {
        std::ofstream out(tmp);
        out << s;
    }
    std::string cmd = std::string(PYTHON3) + " check_schema.py " + tmp.string() +
                      " --valid good/board.yaml good/base.yaml good/common.yaml good/minimal.yaml"
                      " --invalid bad/unknown-property.yaml bad/enum-value.yaml bad/unknown-top-key.yaml";
    int rc = std::system(cmd.c_str());
    fs::remove(tmp);
    REQUIRE(WIFEXITED(rc));
    int status = WEXITSTATUS(rc);
    if (status == 77) WARN("jsonschema/PyYAML missing: checked only that the schema is JSON");
    CHECK((status == 0 || status == 77));
#endif
}
