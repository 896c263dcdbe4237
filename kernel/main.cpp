// SPDX-License-Identifier: MIT
// keel's entry point: parse the command line, find modules, build the machine, run it.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <iostream>
#include <unistd.h>

#include <keel/common.h>

#include "cli.h"
#include "error.h"
#include "kernel.h"
#include "log.h"
#include "manifest.h"
#include "util.h"

using namespace keel;

namespace
{

std::string exe_prefix()
{
    char exe[4096];
    ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return ".";
    exe[n] = 0;
    std::string p(exe);
    p = p.substr(0, p.rfind('/'));
    return p.substr(0, p.rfind('/'));
}

// Where -M NAME is looked up: KEEL_CONFIG_PATH, then <prefix>/share/keel/configs.
std::vector<std::string> config_dirs()
{
    std::vector<std::string> dirs;
    if (const char *env = std::getenv("KEEL_CONFIG_PATH"); env && *env)
        for (auto &d : split(env, ':'))
            if (!d.empty()) dirs.push_back(d);
    dirs.push_back(exe_prefix() + "/share/keel/configs");
    return dirs;
}

void list_machines()
{
    std::printf("Supported machines are (manifests in %s):\n", join(config_dirs(), ", ").c_str());
    std::vector<std::string> names;
    for (const auto &d : config_dirs()) {
        DIR *dp = ::opendir(d.c_str());
        if (!dp) continue;
        while (dirent *e = ::readdir(dp)) {
            std::string n = e->d_name;
            if (n.size() > 5 && n.substr(n.size() - 5) == ".yaml") names.push_back(n.substr(0, n.size() - 5));
        }
        ::closedir(dp);
    }
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    for (const auto &n : names)
        std::printf("%s\n", n.c_str());
}

void list_modules(Registry &reg)
{
    std::printf("%-16s %-8s %-9s %-5s %s\n", "NAME", "KIND", "VERSION", "ABI", "FILE");
    for (const auto &m : reg.modules()) {
        if (!m->ok) continue;
        std::printf("%-16s %-8s %-9s %u.%-3u %s\n", m->name.c_str(), m->kind.c_str(), m->version.c_str(),
                    m->abi_major, m->abi_minor, m->file.c_str());
        for (const auto &t : m->types)
            std::printf("    type %s\n", t.c_str());
    }
    bool header = false;
    for (const auto &m : reg.modules()) {
        if (m->ok) continue;
        if (!header) std::printf("\nRefused modules:\n");
        header = true;
        std::printf("  %s\n", m->error.c_str());
    }
}

void device_help(Registry &reg, const std::string &what)
{
    if (what == "help") {
        std::printf("Device types (keel -device TYPE,help lists properties):\n");
        for (const auto &n : reg.type_names()) {
            const TypeSchema *t = reg.find_type(n);
            std::printf("name \"%s\", module %s %s, desc \"%s\"\n", n.c_str(), t->module_name.c_str(),
                        t->module_version.c_str(), t->description.c_str());
        }
        return;
    }
    const TypeSchema *t = reg.find_type(what);
    if (!t)
        throw Error("-device " + what + ",help: unknown device type '" + what + "'" +
                    did_you_mean(what, reg.type_names()));
    std::printf("%s options (module %s %s):\n", t->name.c_str(), t->module_name.c_str(),
                t->module_version.c_str());
    for (const auto &p : t->props) {
        std::string lhs = "  " + p.name + "=<" + prop_type_name(p.type) + ">";
        std::string rhs = p.doc;
        if (p.type == KEEL_PROP_ENUM) rhs += " (" + join(p.enum_values, "/") + ")";
        if (p.flags & KEEL_PROPF_RANGE) {
            if (p.type == KEEL_PROP_INT)
                rhs +=
                    strprintf(" [%lld..%lld]", static_cast<long long>(p.min), static_cast<long long>(p.max));
            else
                rhs += strprintf(" [%llu..%llu]", static_cast<unsigned long long>(p.min),
                                 static_cast<unsigned long long>(p.max));
        }
        if (p.has_default) rhs += " (default: " + p.default_value + ")";
        if (p.required()) rhs += " (required)";
        std::printf("%-32s - %s\n", lhs.c_str(), rhs.c_str());
    }
}

int run(const std::vector<std::string> &args)
{
    RunConfig cfg = parse_command_line(args);
    if (cfg.log_items == "help") {
        std::fputs(log_help().c_str(), stdout);
        return 0;
    }
    if (!cfg.log_items.empty()) log_set_mask(parse_log_mask(cfg.log_items));
    if (!cfg.log_file.empty()) log_set_file(cfg.log_file);
    if (cfg.help) {
        std::fputs(usage_text().c_str(), stdout);
        return 0;
    }
    if (cfg.version) {
        std::printf("keel version %s (module ABI %d.%d)\n", KEEL_VERSION, KEEL_ABI_MAJOR, KEEL_ABI_MINOR);
        return 0;
    }
    if (cfg.machine == "help" || cfg.machine == "?") {
        list_machines();
        return 0;
    }

    Kernel &k = kernel();
    Registry &reg = k.registry();
    reg.set_search_path(Registry::default_search_path());
    reg.refresh(cfg.rebuild_index);
    bool acted = false;
    if (cfg.rebuild_index) {
        size_t ok = 0;
        for (const auto &m : reg.modules())
            ok += m->ok;
        std::printf("indexed %zu module(s) (%zu refused) in %s\n", ok, reg.modules().size() - ok,
                    join(reg.search_path(), ":").c_str());
        acted = true;
    }
    if (cfg.list_modules) {
        list_modules(reg);
        acted = true;
    }
    for (const auto &d : cfg.device_help) {
        device_help(reg, d);
        acted = true;
    }
    if (cfg.manifest_schema) {
        std::fputs(manifest_json_schema(reg).c_str(), stdout);
        acted = true;
    }
    if (cfg.machine.empty()) {
        if (acted) return 0;
        throw Error("no machine specified; use -M NAME or -M FILE.yaml (keel -M help lists the boards)");
    }

    // serialN come from -serial in order; -nographic puts serial0 on stdio.
    std::vector<std::string> serial = cfg.serial;
    if (serial.empty() && cfg.nographic) serial.push_back("stdio");
    for (const auto &c : cfg.chardev) {
        ChardevSpec s = parse_chardev_option(c);
        cfg.overrides.chardev_ids.push_back(s.id);
        k.declare_chardev(std::move(s));
    }

    MachineSpec spec = load_manifest(cfg.machine, config_dirs(), cfg.overrides, reg);
    for (const auto &c : spec.chardevs)
        k.declare_chardev(c);
    for (size_t i = 0; i < serial.size(); ++i)
        if (serial[i] != "none")
            k.declare_chardev(parse_serial_option(serial[i], "serial" + std::to_string(i)));
    k.set_dry_run(cfg.dry_run);

    auto machine =
        std::make_unique<Machine>(reg, std::move(spec), [&k](const std::string &id, const Location &loc) {
            return k.chardev(id, loc);
        });
    Machine *m = machine.get();
    k.set_machine(std::move(machine));
    {
        std::lock_guard<std::recursive_mutex> g(big_lock());
        m->build();
    }
    if (cfg.dry_run) {
        std::fputs(m->describe().c_str(), stdout);
        return 0;
    }
    if (!m->spec().cpus)
        throw Error("machine '" + m->spec().name +
                    "' has no CPUs to run; give it a 'cpus:' section, or use --dry-run "
                    "to inspect it");
    throw Error("no accelerator module is available to run the CPUs of machine '" + m->spec().name + "'");
}

} // namespace

int main(int argc, char **argv)
{
    std::vector<std::string> args(argv + 1, argv + argc);
    try {
        return run(args);
    } catch (const Error &e) {
        if (e.located())
            std::fprintf(stderr, "%s\n", e.what());
        else
            std::fprintf(stderr, "keel: %s\n", e.what());
        return 1;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "keel: internal error: %s\n", e.what());
        return 2;
    }
}
