// SPDX-License-Identifier: MIT
// keel's entry point: parse the command line, find modules, build the machine, run it.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <iostream>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

#include <keel/common.h>

#include "block.h"
#include "cli.h"
#include "devicetree.h"
#include "error.h"
#include "kernel.h"
#include "loader.h"
#include "log.h"
#include "manifest.h"
#include "monitor/monitor.h"
#include "plugins/plugins.h"
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
    // Manifests in each directory and in its subdirectories one level down (examples/dual-uart).
    auto scan = [&](const std::string &dir, const std::string &prefix, auto &&self) -> void {
        DIR *dp = ::opendir(dir.c_str());
        if (!dp) return;
        while (dirent *e = ::readdir(dp)) {
            std::string n = e->d_name;
            if (n.size() > 5 && n.substr(n.size() - 5) == ".yaml")
                names.push_back(prefix + n.substr(0, n.size() - 5));
            else if (prefix.empty() && e->d_type == DT_DIR && n[0] != '.')
                self(dir + "/" + n, n + "/", self);
        }
        ::closedir(dp);
    };
    for (const auto &d : config_dirs())
        scan(d, "", scan);
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    for (const auto &n : names)
        std::printf("%s\n", n.c_str());
}

void list_modules(Registry &reg)
{
    // Where modules come from, in search order: the first directory to provide a type wins.
    std::printf("Module search path (first wins):\n");
    for (const auto &d : reg.search_path()) {
        size_t n = 0;
        for (const auto &m : reg.modules())
            n += m->dir == d;
        struct stat st;
        bool there = ::stat(d.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
        std::printf("  %s (%s): %s\n", d.c_str(), Registry::dir_origin(d).c_str(),
                    there ? strprintf("%zu module(s)", n).c_str() : "not present");
    }
    std::printf("\n%-16s %-8s %-9s %-5s %s\n", "NAME", "KIND", "VERSION", "ABI", "FILE (FROM)");
    bool stale = false;
    for (const auto &m : reg.modules()) {
        if (!m->ok) continue;
        // An older minor loads (docs/abi-policy.md) but cannot use what came after it: marked with *.
        bool old = m->abi_major == KEEL_ABI_MAJOR && m->abi_minor < KEEL_ABI_MINOR;
        stale |= old;
        std::string abi = strprintf("%u.%u%s", m->abi_major, m->abi_minor, old ? "*" : "");
        std::printf("%-16s %-8s %-9s %-5s %s (%s)\n", m->name.c_str(), m->kind.c_str(), m->version.c_str(),
                    abi.c_str(), m->file.c_str(), Registry::dir_origin(m->dir).c_str());
        for (const auto &t : m->types)
            std::printf("    type %s\n", t.c_str());
        for (const auto &a : m->accels)
            std::printf("    accel %s\n", a.c_str());
        for (const auto &b : m->boards)
            std::printf("    board %s\n", b.c_str());
        for (const auto &b : m->blocks)
            std::printf("    block %s\n", b.c_str());
    }
    if (stale)
        std::printf("\n* built against an older ABI minor: still loads; rebuild it against ABI %d.%d to use "
                    "what that minor added\n",
                    KEEL_ABI_MAJOR, KEEL_ABI_MINOR);
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

// The accelerator keel uses when neither -accel nor the manifest names one:
// the JIT where it has a backend for the host, else the portable interpreter.
#if defined(__x86_64__)
constexpr const char *kDefaultAccel = "tcg";
#else
constexpr const char *kDefaultAccel = "tci";
#endif

void accel_help(Registry &reg)
{
    // QEMU prints "Accelerators supported in QEMU binary:" and one name a line.
    std::printf("Accelerators supported by this keel (modules found):\n");
    for (const auto &n : reg.accel_names())
        std::printf("%s\n", n.c_str());
}

// The accelerator to run: -accel, else the manifest's `accel:`, else kDefaultAccel.
const AccelRecord &choose_accel(Registry &reg, const MachineSpec &spec)
{
    std::string name = spec.accel.empty() ? kDefaultAccel : spec.accel;
    try {
        return reg.require_accel(name);
    } catch (const Error &e) {
        if (spec.accel.empty())
            throw Error(std::string(e.what()) + "; keel's default accelerator is " + name);
        throw Error(spec.accel_loc, e.what());
    }
}

// The guest images and where the CPUs start.
struct BootPlan {
    std::vector<GuestImage> images; // loaded in this order
    std::optional<uint64_t> entry;  // none: the CPUs start at their reset vector
};

BootPlan plan_boot(const RunConfig &cfg, const MachineSpec &spec, bool dry_run)
{
    std::string bios = cfg.bios.value_or("default");
    // Raw images go to the start of the first RAM region, as QEMU's RISC-V boards put firmware there.
    std::optional<uint64_t> ram;
    for (const auto &m : spec.memory)
        if (m.kind == "ram" && !ram) ram = m.base;
    auto read = [&](const std::string &file, uint64_t base) {
        GuestImage img = read_guest_image(file, base);
        if (!img.elf && !ram)
            throw Error(file + ": a raw image is loaded at the start of RAM, and machine '" + spec.name +
                        "' has none");
        return img;
    };
    BootPlan plan;
    if (bios == "none") {
        if (cfg.kernel.empty()) {
            if (dry_run) return plan;
            throw Error("-bios none: nothing to run; give the program with -kernel FILE");
        }
        plan.images.push_back(read(cfg.kernel, ram.value_or(0)));
        plan.entry = plan.images[0].entry;
    } else if (bios == "default") {
        // Default firmware is a board module's business; a manifest without one has none.
        if (!dry_run)
            throw Error("machine '" + spec.name +
                        "' has no default firmware (its manifest names no board module); run a "
                        "bare-metal program with -bios none -kernel FILE, or give -bios FILE");
        if (!cfg.kernel.empty()) plan.images.push_back(read(cfg.kernel, ram.value_or(0)));
    } else {
        plan.images.push_back(read(bios, ram.value_or(0)));
        plan.entry = plan.images[0].entry;
        if (!cfg.kernel.empty()) {
            // A raw kernel goes to the first 2 MiB boundary after the firmware, as QEMU does on RV64.
            uint64_t after = (plan.images[0].high() + 0x1fffff) & ~uint64_t{0x1fffff};
            plan.images.push_back(read(cfg.kernel, after));
        }
    }
    return plan;
}

// `@symbol` addresses: -kernel's symbols win over -bios's, as in QEMU's spike
// where the last image loaded sets tohost.
SymbolTable symbols_of(const BootPlan &plan)
{
    SymbolTable out;
    for (auto it = plan.images.rbegin(); it != plan.images.rend(); ++it)
        for (const auto &[name, addr] : it->symbols)
            out.emplace(name, addr);
    return out;
}

// The guest symbols of -kernel and -bios files a board module loads itself (qemu_plugin_insn_symbol):
// -kernel's win, as in symbols_of. Files that are not ELF have none; errors are the board's to report.
SymbolTable symbols_of_files(const RunConfig &cfg)
{
    SymbolTable out;
    std::vector<std::string> files;
    if (!cfg.kernel.empty()) files.push_back(cfg.kernel);
    if (cfg.bios && *cfg.bios != "none" && *cfg.bios != "default") files.push_back(*cfg.bios);
    for (const std::string &f : files) {
        try {
            for (const auto &[name, addr] : read_guest_image(f, 0).symbols)
                out.emplace(name, addr);
        } catch (const Error &) {
        }
    }
    return out;
}

// A manifest's `board:` module: checked against the CPUs, given the boot options.
// Its state is destroyed however the run ends (dumpdtb, an error, the guest).
struct Board {
    const BoardRecord *record = nullptr;
    KeelMachine *machine = nullptr;
    void *state = nullptr;
    KeelBootOptions opts{};

    Board() = default;
    Board(const Board &) = delete;
    Board &operator=(const Board &) = delete;
    ~Board()
    {
        if (state && record->info->ops->destroy) record->info->ops->destroy(machine, state);
    }
};

const BoardRecord &choose_board(Registry &reg, const MachineSpec &spec)
{
    const BoardRecord *b;
    try {
        b = &reg.require_board(spec.board);
    } catch (const Error &e) {
        throw Error(spec.board_loc, e.what());
    }
    return *b;
}

void write_file(const std::string &path, const std::vector<uint8_t> &bytes)
{
    FILE *f = std::fopen(path.c_str(), "wb");
    if (!f) throw Error("cannot write '" + path + "': " + std::strerror(errno));
    bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
    ok = std::fclose(f) == 0 && ok;
    if (!ok) throw Error("cannot write '" + path + "': " + std::strerror(errno));
}

// A disk for a virtio-mmio slot: -device virtio-blk-device,drive=ID[,bus=virtio-mmio-bus.N], or a
// -drive with if=virtio.
struct BlkDevice {
    std::string drive;
    std::optional<unsigned> bus;
    Location loc;
};

// Take QEMU's -device virtio-blk-device,... out of the -device list (it is no manifest type: keel's
// virtio-mmio slots take the disk).
std::vector<BlkDevice> take_blk_devices(std::vector<std::string> &devices)
{
    std::vector<BlkDevice> out;
    std::vector<std::string> rest;
    for (const auto &arg : devices) {
        auto fields = split(arg, ',');
        if (fields[0] != "virtio-blk-device" && fields[0] != "virtio-blk") {
            rest.push_back(arg);
            continue;
        }
        BlkDevice b;
        b.loc = Location{"-device " + arg, 0, 0};
        for (size_t i = 1; i < fields.size(); ++i) {
            auto eq = fields[i].find('=');
            std::string k = fields[i].substr(0, eq),
                        v = eq == std::string::npos ? "" : fields[i].substr(eq + 1);
            if (k == "drive") {
                b.drive = v;
            } else if (k == "bus") {
                const std::string prefix = "virtio-mmio-bus.";
                auto n = v.rfind(prefix, 0) == 0 ? parse_uint(v.substr(prefix.size())) : std::nullopt;
                if (!n || *n > 1000) throw Error(b.loc, "invalid bus '" + v + "' (virtio-mmio-bus.N)");
                b.bus = static_cast<unsigned>(*n);
            } else if (k != "id") {
                throw Error(b.loc, "virtio-blk-device has no option '" + k + "' (valid: drive, bus, id)");
            }
        }
        if (b.drive.empty())
            throw Error(b.loc, "virtio-blk-device needs drive=ID (a -drive ...,id=ID,if=none)");
        out.push_back(b);
    }
    devices = std::move(rest);
    return out;
}

// Put each disk on a virtio-mmio slot of the manifest (declaration order is the bus number): the
// one its bus names, else the first empty one (device-id 0), as QEMU fills virt's slots.
void attach_blk_devices(MachineSpec &spec, const std::vector<BlkDevice> &disks)
{
    std::vector<DeviceSpec *> slots;
    for (auto &d : spec.devices)
        if (d.type == "virtio-mmio") slots.push_back(&d);
    auto taken = [](const DeviceSpec &d) {
        for (const auto &p : d.props)
            if (p.name == "device-id" && std::get<uint64_t>(p.value) != 0) return true;
        return false;
    };
    for (const auto &b : disks) {
        DeviceSpec *slot = nullptr;
        if (b.bus) {
            if (*b.bus >= slots.size())
                throw Error(b.loc,
                            strprintf("machine '%s' has %zu virtio-mmio slots (virtio-mmio-bus.0 to .%zu)",
                                      spec.name.c_str(), slots.size(), slots.size() - 1));
            slot = slots[*b.bus];
            if (taken(*slot)) throw Error(b.loc, "virtio-mmio-bus." + std::to_string(*b.bus) + " is in use");
        } else {
            for (DeviceSpec *s : slots)
                if (!taken(*s)) {
                    slot = s;
                    break;
                }
            if (!slot && slots.empty())
                throw Error(b.loc, "machine '" + spec.name + "' has no virtio-mmio slot for a disk");
            if (!slot)
                throw Error(
                    b.loc,
                    strprintf("no free virtio-mmio slot for drive '%s' (machine '%s' has %zu, all in use)",
                              b.drive.c_str(), spec.name.c_str(), slots.size()));
        }
        std::erase_if(slot->props,
                      [](const PropSetting &p) { return p.name == "device-id" || p.name == "drive"; });
        slot->props.push_back(PropSetting{"device-id", "2", PropValue(uint64_t{2}), b.loc});
        slot->props.push_back(PropSetting{"drive", b.drive, PropValue(b.drive), b.loc});
    }
}

// Drives are flushed and closed however the run ends.
struct DrivesCloser {
    ~DrivesCloser() { close_drives(); }
};

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
    if (cfg.accel_help) {
        accel_help(reg);
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

    // serialN come from -serial in order. keel has no display, so without
    // -serial (with or without -nographic) serial0 is on stdio, unless the
    // manifest or a -chardev already gives serial0 or uses stdio.
    std::vector<std::string> serial = cfg.serial;
    std::vector<ChardevSpec> cmd_chardevs;
    for (const auto &c : cfg.chardev) {
        ChardevSpec s = parse_chardev_option(c);
        cfg.overrides.chardev_ids.push_back(s.id);
        cmd_chardevs.push_back(s);
        k.declare_chardev(std::move(s));
    }

    std::vector<BlkDevice> disks = take_blk_devices(cfg.overrides.devices);
    MachineSpec spec = load_manifest(cfg.machine, config_dirs(), cfg.overrides, reg);
    DrivesCloser drives_closer;
    if (!cfg.dry_run)
        for (const auto &d : cfg.drives) {
            KeelDrive *drive = add_drive(d);
            if (d.interface == "virtio")
                disks.push_back({drive_id(drive), std::nullopt, Location{"-drive " + d.file, 0, 0}});
        }
    attach_blk_devices(spec, disks);
    for (const auto &c : spec.chardevs)
        k.declare_chardev(c);
    if (serial.empty()) {
        bool taken = false;
        for (const auto *list : {&spec.chardevs, &cmd_chardevs})
            for (const auto &c : *list)
                taken = taken || c.id == "serial0" || c.backend == "stdio";
        // -monitor stdio takes the terminal. With -nographic both would want it (QEMU refuses that too);
        // without, serial0 goes to null, said once, and -serial puts it elsewhere.
        bool monitor_stdio = false;
        for (const auto &dev : cfg.monitor)
            monitor_stdio = monitor_stdio || dev == "stdio";
        if (!taken && monitor_stdio && cfg.nographic)
            throw Error("-monitor stdio: cannot use stdio by multiple character devices (-nographic puts "
                        "serial0 on stdio and its monitor on C-a c; drop -monitor stdio, or give -serial)");
        if (!taken && monitor_stdio)
            std::fprintf(stderr, "keel: note: -monitor stdio has the terminal, so serial0 is on null "
                                 "(-serial DEV puts it elsewhere; -nographic shares stdio through C-a c)\n");
        if (!taken) serial.push_back(monitor_stdio ? "null" : cfg.nographic ? "mon:stdio" : "stdio");
    }
    for (size_t i = 0; i < serial.size(); ++i)
        if (serial[i] != "none")
            k.declare_chardev(parse_serial_option(serial[i], "serial" + std::to_string(i)));
    k.set_dry_run(cfg.dry_run);
    if (cfg.icount_shift >= 0) {
        // -icount: the vCPU thread drives virtual time; a virtual timer armed elsewhere kicks it.
        k.vclock().set_icount(cfg.icount_shift, cfg.icount_sleep);
        k.timers().set_icount_wake([&k] {
            if (Machine *mm = k.machine(); mm && !mm->cpus().empty()) k.kick_cpu(mm->cpus()[0]);
        });
    }

    if (!spec.cpus && !cfg.dry_run)
        throw Error("machine '" + spec.name +
                    "' has no CPUs to run; give it a 'cpus:' section, or use --dry-run "
                    "to inspect it");

    // A board module boots the machine (images, boot ROM, device tree);
    // without one, keel loads -bios/-kernel itself.
    Board board;
    if (!spec.board.empty()) {
        board.record = &choose_board(reg, spec);
    } else {
        for (const auto &[given, what] :
             {std::pair{!cfg.initrd.empty(), "-initrd"}, std::pair{cfg.append.has_value(), "-append"},
              std::pair{!cfg.dtb.empty(), "-dtb"}, std::pair{!cfg.dumpdtb.empty(), "-machine dumpdtb"}})
            if (given)
                throw Error(std::string(what) + ": machine '" + spec.name +
                            "' has no board module to boot it (the manifest's 'board:' key, e.g. "
                            "riscv-generic), so it has no device tree, initrd or command line");
    }
    // Images are read (and their symbols known) before the machine is
    // built: `reg: '@tohost'` places devices by them.
    BootPlan boot;
    if (!board.record) boot = plan_boot(cfg, spec, cfg.dry_run);
    // An accelerator named explicitly must exist even for a dry run; the default is checked only to run.
    const AccelRecord *accel = nullptr;
    if (!cfg.dry_run || !spec.accel.empty()) accel = &choose_accel(reg, spec);

    auto machine =
        std::make_unique<Machine>(reg, std::move(spec), [&k](const std::string &id, const Location &loc) {
            return k.chardev(id, loc);
        });
    Machine *m = machine.get();
    m->set_symbols(symbols_of(boot));
    if (!cfg.dtb.empty()) load_fdt_file(cfg.dtb, {}); // a bad -dtb stops keel before anything is built
    m->set_dtb_file(cfg.dtb);
    k.set_machine(std::move(machine));
    {
        std::lock_guard<std::recursive_mutex> g(big_lock());
        m->build();
    }
    const KeelMachineOps *bops = board.record ? board.record->info->ops : nullptr;
    if (bops && m->cpu_ops()) {
        std::string arch = board.record->info->arch, cpu = m->cpu_ops()->arch ? m->cpu_ops()->arch : "";
        if (cpu.rfind(arch + ":", 0) != 0)
            throw Error(m->spec().board_loc, "board '" + board.record->name + "' boots " + arch +
                                                 " CPUs, but '" + m->spec().cpus->type + "' is " + cpu);
    }
    if (bops && !cfg.dry_run) {
        std::string bios = cfg.bios.value_or("default");
        board.opts.size = sizeof board.opts;
        board.opts.bios = bios == "default" ? nullptr : bios.c_str();
        board.opts.kernel = cfg.kernel.empty() ? nullptr : cfg.kernel.c_str();
        board.opts.initrd = cfg.initrd.empty() ? nullptr : cfg.initrd.c_str();
        board.opts.append = cfg.append ? cfg.append->c_str() : nullptr;
        KeelError err;
        std::lock_guard<std::recursive_mutex> g(big_lock());
        board.machine = m->handle();
        board.state = bops->create(m->handle(), &board.opts, &err);
        if (!board.state)
            throw Error("board '" + board.record->name +
                        "': " + (err.is_set ? err.message : "create failed"));
    }
    auto board_boot = [&] {
        KeelError err;
        if (bops->boot(m->handle(), board.state, &err) != KEEL_OK) {
            if (err.located) throw Error::prelocated(err.message); // a manifest mistake: its place first
            throw Error("board '" + board.record->name + "': " + (err.is_set ? err.message : "boot failed"));
        }
    };
    if (!cfg.dumpdtb.empty() && !cfg.dry_run) {
        // QEMU's dumpdtb: the tree exactly as the guest would get it, then exit.
        {
            std::lock_guard<std::recursive_mutex> g(big_lock());
            board_boot();
        }
        if (m->fdt_blob().empty())
            throw Error("-machine dumpdtb: board '" + board.record->name + "' made no device tree");
        try {
            write_file(cfg.dumpdtb, m->fdt_blob());
        } catch (const Error &e) {
            throw Error(std::string("-machine dumpdtb: ") + e.what());
        }
        return 0;
    }
    if (cfg.dry_run) {
        std::fputs(m->describe().c_str(), stdout);
        for (const auto &img : boot.images)
            std::printf("image %s: %s %s-%s\n", img.file.c_str(), img.elf ? "ELF" : "raw",
                        format_hex(img.low()).c_str(), format_hex(img.high() - 1).c_str());
        if (boot.entry) std::printf("entry: %s\n", format_hex(*boot.entry).c_str());
        return 0;
    }
    // -plugin: loaded once the machine exists (vCPU counts, guest symbols); atexit callbacks after the run.
    std::vector<plugins::PluginSpec> plugin_specs;
    for (const std::string &p : cfg.plugins)
        plugin_specs.push_back(plugins::parse_spec(p));
    if (!plugin_specs.empty()) {
        int n = static_cast<int>(m->cpus().size());
        plugins::set_symbols(board.record ? symbols_of_files(cfg) : symbols_of(boot));
        plugins::load(plugin_specs, {n, n});
    }
    // Monitors and the gdbstub (kernel/monitor): listening before the guest runs (with -S it waits for them).
    struct MonitorsCloser {
        ~MonitorsCloser() { monitor::stop_all(); }
    } monitors_closer;
    monitor::start_qmp(cfg);
    monitor::start_hmp(cfg);
    monitor::start_gdbstub(cfg);
    k.set_start_paused(cfg.start_paused);
    int status = bops ? k.run(*accel, board_boot) : k.run(*accel, [&] {
        for (const auto &img : boot.images)
            load_guest_image(img, m->system_memory(), m->spec().name, Machine::kOverlayPriority);
        if (boot.entry)
            for (KeelObject *c : m->cpus())
                set_cpu_pc(c, *boot.entry);
    });
    monitor::gdb_exit(status);
    plugins::at_exit();
    return status;
}

// After "unknown device type 'x'" (or accelerator, board, ...): the modules that were refused may be the
// ones meant to provide it, so say why each was (docs/abi-policy.md). Such errors come only after the
// registry was filled.
void note_refused_modules(const std::string &what)
{
    if (what.find("unknown ") == std::string::npos) return;
    for (const auto &m : kernel().registry().modules())
        if (!m->ok) std::fprintf(stderr, "keel: note: a module was refused: %s\n", m->error.c_str());
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
        note_refused_modules(e.what());
        return 1;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "keel: internal error: %s\n", e.what());
        return 2;
    }
}
