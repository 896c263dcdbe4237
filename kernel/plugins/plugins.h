// SPDX-License-Identifier: MIT
// The QEMU instrumentation plugin host (-plugin): loading, the qemu_plugin_* API, and the IR it inserts.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <keel/accel.h>
#include <keel/cpu.h>
#include <keel/ir.h>
#include <keel/services.h>

namespace keel::plugins
{

/*
 * How it works (docs/plugins.md, docs/drafts/qemu-plugin-abi.md):
 *  - load() dlopens each plugin, checks qemu_plugin_version (1..7) and calls qemu_plugin_install;
 *  - the engine calls instrument() for every block it translates: the plugins' tb_trans callbacks run
 *    on a view of the block, and what they register becomes IR inserted through the builder's cursor
 *    (helper calls whose constant argument is a registration record, inline ops as load_host/alu/
 *    store_host on host memory), so both engines run it without special paths;
 *  - every call into a plugin is made with the signature of the API version the plugin declared.
 * Everything here runs on the vCPU thread, except load() and at_exit() (main thread, vCPUs stopped).
 */

// One -plugin option: the shared object and its `name=value` arguments, as the plugin sees them.
struct PluginSpec {
    std::string path;
    std::vector<std::string> args;
};

// Parses the value of -plugin ("[file=]PATH[,NAME=VALUE...]", and QEMU's deprecated "arg=VALUE", which
// becomes "VALUE=on" as in QEMU 7.2). Throws keel::Error("-plugin VALUE: what is wrong").
PluginSpec parse_spec(const std::string &value);

struct MachineInfo {
    int smp_vcpus = 1;
    int max_vcpus = 1;
};

// Loads and installs every plugin, in order. Throws keel::Error with QEMU's message
// ("Could not load plugin PATH: ...") on the first failure; the plugins loaded so far are unloaded.
void load(const std::vector<PluginSpec> &specs, const MachineInfo &info);
// Whether any plugin is installed.
bool active();
// Runs the atexit callbacks (once), then unloads every plugin and frees everything.
void at_exit();
// Unloads everything without calling atexit callbacks (tests, error paths).
void unload_all();

// Guest ELF symbols, for qemu_plugin_insn_symbol.
void set_symbols(const std::map<std::string, uint64_t> &by_name);
// Where qemu_plugin_outs writes. Default (empty): the -d plugin log (nothing without -d plugin).
void set_output(std::function<void(const char *)> sink);

// vCPU events from the engine.
void vcpu_init(const KeelCpuHandle &cpu, unsigned index);
void vcpu_exit(unsigned index);
void vcpu_idle(unsigned index);
void vcpu_resume(unsigned index);
// A discontinuity (QEMU_PLUGIN_DISCON_INTERRUPT = 1, EXCEPTION = 2, HOSTCALL = 4) of vCPU @index.
void discon(unsigned index, int type, uint64_t from_pc, uint64_t to_pc);
// The engine running on the calling thread attaches its hooks (nullptr detaches): reset, uninstall and
// plugin memory writes reach the translated code through them. Without hooks there is no translated code
// to drop: reset/uninstall callbacks run at once.
void attach(const KeelPluginHooks *hooks);
// The calling thread runs vCPU @index from now on (directly called callbacks find their vCPU here).
void vcpu_run(unsigned index);
// The engine threw all translated code of a vCPU away: flush callbacks, then the reset/uninstall
// callbacks that waited for it.
void flushed();
// After a block left on an exception: whether a callback called qemu_plugin_set_pc, and where to go.
bool redirect(unsigned index, uint64_t *pc);

// Instruments the block of vCPU @index just translated into @b (before verification).
void instrument(unsigned index, KeelIrBuilder *b, const KeelIrBuilderOps *ops);

} // namespace keel::plugins
