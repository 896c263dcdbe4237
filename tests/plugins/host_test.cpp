// SPDX-License-Identifier: MIT
// The kernel's plugin host (kernel/plugins) with the real IR builder and engines: the example plugins are
// loaded by keel's loader, instrument blocks of tests/ir's fake CPU, and run under tci and tcg.
#include <catch2/catch.hpp>

#include <cstring>
#include <functional>
#include <string>

#include "error.h"
#include "fake_cpu.h"
#include "plugins/plugins.h"
#include "rig_engine.h"

using namespace keel::irtest;
namespace plugins = keel::plugins;

namespace
{

using Ops = const KeelIrBuilderOps *;
using B = KeelIrBuilder *;

KeelIrValue c64(B b, Ops o, uint64_t v)
{
    return o->const_int(b, KEEL_IR_I64, v);
}

// A loop of four guest instructions at kRam, run `x0` times, then the stop block (one instruction):
//   0: x0 -= 1      1: x1 = load64 [kData]      2: store32 x1 -> [kData + 8]      3: branch back or stop
void loop_blocks(Rig &r)
{
    r.blocks[kRam] = [](B b, Ops o, uint64_t pc) {
        KeelIrValue x0 = o->global(b, X0), x1 = o->global(b, X1);
        o->alu(b, KEEL_IR_SUB, x0, x0, c64(b, o, 1));
        o->insn_start(b, pc + 4, 4, 0x0002b583);
        o->load(b, x1, c64(b, o, kData), KEEL_MO_64, 0);
        o->insn_start(b, pc + 8, 2, 0xc10c);
        o->store(b, x1, c64(b, o, kData + 8), KEEL_MO_32, 0);
        o->insn_start(b, pc + 10, 4, 0xfe029ee3);
        KeelIrLabel done = o->label(b);
        o->brcond(b, KEEL_IR_EQ, x0, c64(b, o, 0), done);
        o->alu(b, KEEL_IR_MOV, o->global(b, PC), c64(b, o, pc), 0);
        o->exit_tb(b);
        o->set_label(b, done);
        o->alu(b, KEEL_IR_MOV, o->global(b, PC), c64(b, o, kStopPc), 0);
        o->exit_tb(b);
    };
}

struct Run {
    std::string log;
    int rc = -1;
};

// Loads @specs (paths relative to the example plugin directory), runs the loop @loops times on the
// chosen engine, and returns what the plugins printed (their atexit output included).
Run run_loop(bool tci, const std::vector<std::string> &specs, uint64_t loops,
             const std::function<void()> &before_exit = nullptr)
{
    keel::tcgtest::UseEngine use(tci);
    Run out;
    Rig r;
    loop_blocks(r);
    uint64_t v = 0x1122334455667788ull;
    std::memcpy(r.ram(kData), &v, 8);
    std::vector<plugins::PluginSpec> list;
    for (const std::string &s : specs) {
        plugins::PluginSpec p = plugins::parse_spec(std::string(KEEL_QEMU_PLUGIN_DIR) + "/" + s);
        list.push_back(p);
    }
    plugins::set_output([&](const char *s) { out.log += s; });
    plugins::load(list, {1, 1});
    r.core->set_instrument([](B b, Ops o) { plugins::instrument(0, b, o); });
    plugins::vcpu_init(r.handle, 0);
    r.env.x[0] = loops;
    out.rc = r.run_from(kRam);
    if (before_exit) before_exit();
    plugins::at_exit();
    plugins::set_output(nullptr);
    return out;
}

std::string load_error(const std::string &path)
{
    plugins::set_output([](const char *) {});
    try {
        plugins::load({plugins::parse_spec(path)}, {1, 1});
    } catch (const keel::Error &e) {
        plugins::set_output(nullptr);
        CHECK_FALSE(plugins::active());
        return e.what();
    }
    plugins::unload_all();
    plugins::set_output(nullptr);
    return "loaded";
}

} // namespace

TEST_CASE("plugin host: -plugin values parse as QEMU parses them", "[plugins][host]")
{
    plugins::PluginSpec s = plugins::parse_spec("./libinsn.so,inline=on,x=1");
    CHECK(s.path == "./libinsn.so");
    CHECK(s.args == std::vector<std::string>{"inline=on", "x=1"});
    s = plugins::parse_spec("file=/p/libmem.so,rw=w");
    CHECK(s.path == "/p/libmem.so");
    CHECK(s.args == std::vector<std::string>{"rw=w"});
    s = plugins::parse_spec("file=libinsn.so,arg=inline");
    CHECK(s.args == std::vector<std::string>{"inline=on"});
    CHECK_THROWS_WITH(plugins::parse_spec("a=b"), "-plugin a=b: missing the plugin file (file=PATH)");
    CHECK_THROWS_WITH(plugins::parse_spec("libx.so,junk"), "-plugin libx.so,junk: 'junk' is not NAME=VALUE");
}

TEST_CASE("plugin host: bad plugins are refused with QEMU's messages", "[plugins][host]")
{
    const std::string dir = KEEL_BAD_PLUGIN_DIR;
    CHECK(load_error(dir + "/libbad-noinstall.so") ==
          "Could not load plugin " + dir + "/libbad-noinstall.so: 'qemu_plugin_install': " + dir +
              "/libbad-noinstall.so: undefined symbol: qemu_plugin_install");
    CHECK(load_error(dir + "/libbad-noversion.so") ==
          "Could not load plugin " + dir +
              "/libbad-noversion.so: plugin does not declare API version "
              "'qemu_plugin_version': " +
              dir + "/libbad-noversion.so: undefined symbol: qemu_plugin_version");
    CHECK(load_error(dir + "/libbad-v0.so") ==
          "Could not load plugin " + dir +
              "/libbad-v0.so: plugin requires API version 0, but this keel "
              "supports only a minimum version of 1");
    CHECK(load_error(dir + "/libbad-v8.so") ==
          "Could not load plugin " + dir +
              "/libbad-v8.so: plugin requires API version 8, but this keel "
              "supports only up to version 7");
    CHECK(load_error(dir + "/libbad-install.so") ==
          "Could not load plugin " + dir + "/libbad-install.so: qemu_plugin_install returned error code 3");
    CHECK(load_error(std::string(KEEL_TEST_SOURCE_DIR) + "/count.S") ==
          "Could not load plugin " + std::string(KEEL_TEST_SOURCE_DIR) +
              "/count.S: " + std::string(KEEL_TEST_SOURCE_DIR) + "/count.S: invalid ELF header");
    CHECK(load_error(dir + "/missing.so") == "Could not load plugin " + dir + "/missing.so: " + dir +
                                                 "/missing.so: cannot open shared object file: No such file "
                                                 "or directory");
    // A good plugin after a refused argument: the example refuses it in install.
    CHECK(load_error(std::string(KEEL_QEMU_PLUGIN_DIR) + "/libinsn.so,bogus=1") ==
          "Could not load plugin " + std::string(KEEL_QEMU_PLUGIN_DIR) +
              "/libinsn.so: qemu_plugin_install returned error code -1");
}

// 100 iterations of the 4-instruction loop, then the one-instruction stop block: 401 instructions.
TEST_CASE("plugin host: insn counts every instruction, inline and by callback, on tci and tcg",
          "[plugins][host]")
{
    for (bool tci : {true, false}) {
        INFO((tci ? "tci" : "tcg"));
        Run cb = run_loop(tci, {"libinsn.so"}, 100);
        CHECK(cb.rc == 0);
        CHECK(cb.log == "insns: 401\n");
        CHECK(run_loop(tci, {"libinsn.so,inline=on"}, 100).log == "insns: 401\n");
        CHECK(run_loop(tci, {"libinsn.so"}, 7).log == "insns: 29\n");
    }
}

TEST_CASE("plugin host: versions 1, 4 and 7 of insn run together and count the same", "[plugins][host]")
{
    for (bool tci : {true, false}) {
        INFO((tci ? "tci" : "tcg"));
        CHECK(run_loop(tci, {"libinsn-v1.so", "libinsn-v4.so", "libinsn.so"}, 50).log ==
              "insns: 201\ninsns: 201\ninsns: 201\n");
        CHECK(
            run_loop(tci, {"libinsn-v1.so,inline=on", "libinsn-v4.so,inline=on", "libinsn.so,inline=on"}, 50)
                .log == "insns: 201\ninsns: 201\ninsns: 201\n");
    }
}

TEST_CASE("plugin host: bb counts blocks by scoreboard and by callback", "[plugins][host]")
{
    for (bool tci : {true, false}) {
        for (const char *spec : {"libbb.so", "libbb.so,inline=off"}) {
            INFO((tci ? "tci " : "tcg ") << spec);
            CHECK(run_loop(tci, {spec}, 10).log == "cpu 0 bb: 11 insns: 41\nbb: 11 insns: 41\n");
        }
    }
}

TEST_CASE("plugin host: mem sees the loads and stores, inline and by callback", "[plugins][host]")
{
    for (bool tci : {true, false}) {
        INFO((tci ? "tci" : "tcg"));
        CHECK(run_loop(tci, {"libmem.so"}, 10).log == "loads: 10 stores: 10\n");
        CHECK(run_loop(tci, {"libmem.so,rw=w"}, 10).log == "loads: 0 stores: 10\n");
        CHECK(run_loop(tci, {"libmem.so,inline=on"}, 10).log == "accesses: 20\n");
        CHECK(run_loop(tci, {"libmem.so,inline=on,rw=r"}, 10).log == "accesses: 10\n");
        CHECK(run_loop(tci, {"libmem-v1.so"}, 10).log == "loads: 10 stores: 10\n");
        CHECK(run_loop(tci, {"libmem-v1.so,inline=on"}, 10).log == "accesses: 20\n");
    }
}

TEST_CASE("plugin host: hotblocks counts executions of each block", "[plugins][host]")
{
    for (bool tci : {true, false}) {
        INFO((tci ? "tci" : "tcg"));
        CHECK(run_loop(tci, {"libhotblocks.so"}, 10).log ==
              "collected 2 blocks\npc, insns, executions\n0x0000000080000000, 4, 10\n0x00000000800ff000, 1, "
              "1\n");
    }
}

TEST_CASE("plugin host: conditional callbacks, STORE_U64, translation queries and discontinuities",
          "[plugins][host]")
{
    plugins::set_symbols({{"loop", kRam}, {"stop", kStopPc}});
    for (bool tci : {true, false}) {
        INFO((tci ? "tci" : "tcg"));
        Run r = run_loop(tci, {"libprobe.so"}, 5, [] {
            plugins::discon(0, 2, kRam + 4, 0x80001000);
            plugins::discon(0, 1, 1, 2); // an interrupt: not in the plugin's mask
        });
        CHECK(r.log ==
              "install riscv64 v1-7 system=1 smp=1 max=1\n"
              "init 0 of 1\n"
              "trans 0x80000000 insns 4 sym loop; insn1 4 bytes 0002b583 at 0x80000004: .insn 0x0002b583\n"
              "third execution of 0x80000000 on cpu 0\n"
              "discon cpu 0 type 2 0x80000004 -> 0x80001000\n"
              "execs 6 last 0x800ff000\n"
              "each 0\n");
    }
    plugins::set_symbols({});
}

TEST_CASE("plugin host: qemu_plugin_reset drops every callback of the plugin", "[plugins][host]")
{
    CHECK(run_loop(false, {"libprobe.so,reset=on"}, 5).log ==
          "install riscv64 v1-7 system=1 smp=1 max=1\ninit 0 of 1\nreset done\n");
    CHECK(load_error(std::string(KEEL_QEMU_PLUGIN_DIR) + "/libprobe.so,reset=maybe") ==
          "Could not load plugin " + std::string(KEEL_QEMU_PLUGIN_DIR) +
              "/libprobe.so: qemu_plugin_install returned error code 2");
}

TEST_CASE("plugin host: memory callbacks see each access with its value", "[plugins][host]")
{
    for (bool tci : {true, false}) {
        INFO((tci ? "tci" : "tcg"));
        CHECK(run_loop(tci, {"libmem.so,trace=on"}, 2).log ==
              "load vaddr=0x80080000 paddr=0x80080000 size=8 value=0x1122334455667788\n"
              "store vaddr=0x80080008 paddr=0x80080008 size=4 value=0x55667788\n"
              "load vaddr=0x80080000 paddr=0x80080000 size=8 value=0x1122334455667788\n"
              "store vaddr=0x80080008 paddr=0x80080008 size=4 value=0x55667788\n"
              "loads: 2 stores: 2\n");
    }
}

// h5_plugin.c, mode=reset/uninstall: a direct instruction callback counts, and after 10 calls the plugin
// resets (or uninstalls) itself from inside that callback. The rest of the running block still runs its
// old instrumentation (the 3rd loop iteration: calls 11 and 12), then the engines drop every block, then
// the plugin's callback runs; from there no old callback may fire ("late"). After a reset the plugin
// instruments again with a new callback, which sees the other 401 - 12 instructions.
TEST_CASE("plugin host: reset and uninstall drop the old instrumentation before their callback",
          "[plugins][host]")
{
    for (bool tci : {true, false}) {
        INFO((tci ? "tci" : "tcg"));
        CHECK(run_loop(tci, {"libh5.so,mode=reset,after=10"}, 100).log ==
              "reset done after 12\nbefore 12 late 0 after 389\n");
        CHECK(run_loop(tci, {"libh5.so,mode=uninstall,after=10"}, 100).log == "uninstall done after 12\n");
        // Never reached: the old callbacks keep counting and atexit reports them.
        CHECK(run_loop(tci, {"libh5.so,mode=reset,after=1000"}, 100).log == "no reset: before 401\n");
    }
}
