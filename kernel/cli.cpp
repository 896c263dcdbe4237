// SPDX-License-Identifier: MIT
// The command line: QEMU's option names parsed into a RunConfig.
#include "cli.h"

#include <map>

#include "error.h"
#include "util.h"

namespace keel
{

namespace
{

// Options that take a value, by their canonical name (aliases map onto them).
const std::map<std::string, std::string> kWithValue = {
    {"M", "machine"},     {"machine", "machine"}, {"m", "m"},
    {"smp", "smp"},       {"accel", "accel"},     {"device", "device"},
    {"serial", "serial"}, {"chardev", "chardev"}, {"d", "d"},
    {"D", "D"},           {"bios", "bios"},       {"kernel", "kernel"},
    {"initrd", "initrd"}, {"append", "append"},   {"dtb", "dtb"},
    {"drive", "drive"},   {"icount", "icount"},   {"plugin", "plugin"},
    {"qmp", "qmp"},       {"monitor", "monitor"}, {"mon", "mon"},
    {"gdb", "gdb"},
};
const std::map<std::string, std::string> kFlags = {
    {"nographic", "nographic"},
    {"version", "version"},
    {"help", "help"},
    {"h", "help"},
    {"list-modules", "list-modules"},
    {"rebuild-index", "rebuild-index"},
    {"dry-run", "dry-run"},
    {"manifest-schema", "manifest-schema"},
    {"snapshot", "snapshot"},
    {"s", "s"},
    {"S", "S"},
};

// "size=256M" or "256M" -> "256M"; other keys are errors.
std::string main_value(const std::string &opt, const std::string &arg, const std::string &key)
{
    auto parts = split(arg, ',');
    std::string value;
    for (const auto &p : parts) {
        auto eq = p.find('=');
        if (eq == std::string::npos) {
            if (!value.empty()) throw Error("-" + opt + " " + arg + ": more than one value given");
            value = p;
        } else if (p.substr(0, eq) == key) {
            value = p.substr(eq + 1);
        } else {
            throw Error("-" + opt + " " + arg + ": unknown option '" + p.substr(0, eq) + "' (valid: " + key +
                        ")");
        }
    }
    if (value.empty()) throw Error("-" + opt + " " + arg + ": no value given");
    return value;
}

// -accel NAME[,thread=single]: QEMU's spelling. keel runs every vCPU on one
// thread, so thread=single is accepted and thread=multi refused.
std::string accel_value(const std::string &arg)
{
    std::string name;
    for (const auto &p : split(arg, ',')) {
        auto eq = p.find('=');
        std::string k = eq == std::string::npos ? "" : p.substr(0, eq);
        std::string v = eq == std::string::npos ? p : p.substr(eq + 1);
        if (k.empty() || k == "accel") {
            if (!name.empty()) throw Error("-accel " + arg + ": more than one accelerator given");
            name = v;
        } else if (k == "thread") {
            if (v == "multi")
                throw Error("-accel " + arg +
                            ": thread=multi is not supported: keel runs every vCPU on one "
                            "thread (thread=single)");
            if (v != "single")
                throw Error("-accel " + arg + ": invalid value '" + v + "' for 'thread' (single or multi)");
        } else {
            throw Error("-accel " + arg + ": unknown option '" + k + "' (valid: accel, thread)");
        }
    }
    if (name.empty()) throw Error("-accel " + arg + ": no accelerator given");
    return name;
}

// -icount [shift=]N[,sleep=on|off]: QEMU's instruction counting, N in 0..10.
void icount_value(const std::string &arg, RunConfig &c)
{
    const std::string supported = "supported: -icount [shift=]N[,sleep=on|off] with N from 0 to 10";
    bool have_shift = false;
    for (const auto &p : split(arg, ',')) {
        auto eq = p.find('=');
        std::string k = eq == std::string::npos ? "shift" : p.substr(0, eq);
        std::string v = eq == std::string::npos ? p : p.substr(eq + 1);
        if (k == "shift") {
            if (v == "auto")
                throw Error("-icount " + arg + ": shift=auto (adaptive) is not supported; " + supported);
            auto n = parse_uint(v);
            if (v.empty() || !n || *n > 10)
                throw Error("-icount " + arg + ": invalid shift '" + v + "' (0 to 10); " + supported);
            c.icount_shift = static_cast<int>(*n);
            have_shift = true;
        } else if (k == "sleep") {
            if (v != "on" && v != "off")
                throw Error("-icount " + arg + ": invalid value '" + v + "' for 'sleep' (on or off)");
            c.icount_sleep = v == "on";
        } else if (k == "align" || k == "rr" || k == "rrfile" || k == "rrsnapshot") {
            throw Error("-icount " + arg + ": '" + k + "' is not supported; " + supported);
        } else {
            throw Error("-icount " + arg + ": unknown option '" + k + "'; " + supported);
        }
    }
    if (!have_shift) throw Error("-icount " + arg + ": no shift given; " + supported);
}

} // namespace

RunConfig parse_command_line(const std::vector<std::string> &args)
{
    RunConfig c;
    std::vector<std::string> all;
    for (const auto &[k, v] : kWithValue)
        all.push_back(k);
    for (const auto &[k, v] : kFlags)
        all.push_back(k);
    for (size_t i = 0; i < args.size(); ++i) {
        std::string a = args[i];
        if (a.size() < 2 || a[0] != '-')
            throw Error(a + ": unexpected argument (options start with '-'; see keel --help)");
        std::string name = a.substr(a[1] == '-' ? 2 : 1);
        std::string inline_value;
        bool has_inline = false;
        if (auto eq = name.find('='); eq != std::string::npos && a[1] == '-') {
            inline_value = name.substr(eq + 1);
            name = name.substr(0, eq);
            has_inline = true;
        }
        if (auto f = kFlags.find(name); f != kFlags.end()) {
            const std::string &n = f->second;
            if (n == "nographic")
                c.nographic = true;
            else if (n == "version")
                c.version = true;
            else if (n == "help")
                c.help = true;
            else if (n == "list-modules")
                c.list_modules = true;
            else if (n == "rebuild-index")
                c.rebuild_index = true;
            else if (n == "dry-run")
                c.dry_run = true;
            else if (n == "manifest-schema")
                c.manifest_schema = true;
            else if (n == "snapshot")
                c.snapshot = true;
            else if (n == "s")
                c.gdb = "tcp::1234"; // QEMU: -s is -gdb tcp::1234
            else if (n == "S")
                c.start_paused = true;
            continue;
        }
        auto o = kWithValue.find(name);
        if (o == kWithValue.end())
            throw Error(a + ": invalid option" + did_you_mean(name, all) +
                        "; see keel --help for the valid ones");
        std::string v;
        if (has_inline)
            v = inline_value;
        else if (i + 1 < args.size())
            v = args[++i];
        else
            throw Error(a + ": requires an argument");
        const std::string &n = o->second;
        if (n == "machine") {
            // QEMU: -machine [type=]NAME[,dumpdtb=FILE]; a later -machine adds options.
            for (const auto &p : split(v, ',')) {
                auto eq = p.find('=');
                std::string key = eq == std::string::npos ? "type" : p.substr(0, eq);
                std::string val = eq == std::string::npos ? p : p.substr(eq + 1);
                if (key == "type") {
                    if (val.empty()) throw Error("-machine " + v + ": empty machine name");
                    c.machine = val;
                } else if (key == "dumpdtb") {
                    if (val.empty()) throw Error("-machine " + v + ": dumpdtb needs a file name");
                    c.dumpdtb = val;
                } else {
                    std::vector<std::string> valid = {"type", "dumpdtb"};
                    std::string hint = did_you_mean(key, valid);
                    throw Error("-machine " + v + ": unknown machine option '" + key + "'" +
                                (hint.empty() ? " (valid: type, dumpdtb)" : hint));
                }
            }
        } else if (n == "initrd") {
            c.initrd = v;
        } else if (n == "append") {
            c.append = v;
        } else if (n == "dtb") {
            c.dtb = v;
        } else if (n == "m") {
            c.overrides.memory_size = main_value("m", v, "size");
        } else if (n == "smp") {
            std::string s = main_value("smp", v, "cpus");
            auto count = parse_uint(s);
            if (!count || *count < 1 || *count > 512)
                throw Error("-smp " + v + ": invalid number of CPUs '" + s + "' (1 to 512)");
            c.overrides.smp = static_cast<unsigned>(*count);
        } else if (n == "accel") {
            if (v == "help" || v == "?")
                c.accel_help = true;
            else
                c.overrides.accel = accel_value(v);
        } else if (n == "bios") {
            c.bios = v;
        } else if (n == "kernel") {
            c.kernel = v;
        } else if (n == "device") {
            auto parts = split(v, ',');
            if (v == "help" || v == "?" || (parts.size() == 2 && (parts[1] == "help" || parts[1] == "?")))
                c.device_help.push_back(parts[0] == "?" ? "help" : parts[0]);
            else
                c.overrides.devices.push_back(v);
        } else if (n == "serial") {
            c.serial.push_back(v);
        } else if (n == "chardev") {
            c.chardev.push_back(v);
        } else if (n == "d") {
            c.log_items = v;
        } else if (n == "D") {
            c.log_file = v;
        } else if (n == "drive") {
            c.drives.push_back(parse_drive(v));
        } else if (n == "icount") {
            icount_value(v, c);
        } else if (n == "plugin") {
            c.plugins.push_back(v);
        } else if (n == "qmp") {
            c.qmp.push_back(v);
        } else if (n == "monitor") {
            c.monitor.push_back(v);
        } else if (n == "mon") {
            c.mon.push_back(v);
        } else if (n == "gdb") {
            c.gdb = v;
        }
    }
    // -snapshot applies to every drive, wherever it stands on the line (QEMU).
    if (c.snapshot)
        for (auto &d : c.drives)
            d.snapshot = true;
    return c;
}

std::string usage_text()
{
    return R"(usage: keel [options]

keel runs a machine described by a YAML manifest, with QEMU's option names.

Machine:
  -M, -machine NAME|FILE[,dumpdtb=FILE]
                           the board: a manifest file, or NAME.yaml from the
                           configs directory (-M help lists them); dumpdtb
                           writes the board's device tree to FILE and exits
  -m SIZE                  RAM size (size of the first RAM region), e.g. 256M
  -smp N                   number of CPUs (cpus=N also accepted)
  -accel NAME[,thread=single]
                           execution engine: tcg (JIT, x86-64 hosts) or tci
                           (interpreter); default: the manifest's, else tcg
                           on x86-64, tci elsewhere; -accel help lists them
  -icount [shift=]N[,sleep=on|off]
                           deterministic virtual time: it advances 2^N ns
                           (N from 0 to 10) per guest instruction executed;
                           while every CPU idles, sleep=on (default) waits
                           in host time for the next timer, sleep=off jumps
                           to it at once
  -device TYPE,id=NAME[,reg=ADDR][,irq=TARGET][,PROP=VALUE...]
                           add a device; -device help lists device types,
                           -device TYPE,help lists a type's properties
  --dry-run                validate the machine, print its tree and memory map,
                           and exit without running it

Boot:
  -bios FILE|none|default  firmware: FILE (ELF or raw at the start of RAM),
                           none, or the board's default (riscv-generic
                           boards: OpenSBI's fw_dynamic.bin)
  -kernel FILE             the kernel: ELF at its addresses, or raw at the
                           first 2 MiB boundary after the firmware; with
                           -bios none the CPUs start at its entry
  -initrd FILE             initial ram disk, its range in /chosen
  -append CMDLINE          kernel command line (/chosen/bootargs)
  -dtb FILE                use this device tree instead of the generated one

Block devices:
  -drive file=FILE[,format=raw|qcow2][,if=virtio|none][,id=ID][,readonly=on]
         [,snapshot=on]
                           a disk image; if=virtio (the default) gives the
                           guest a virtio-blk disk, if=none leaves it for
                           -device virtio-blk-device,drive=ID; without id=
                           drives are drive0, drive1, ...; without format=
                           the format is probed (raw with a warning)
  -snapshot                every drive as snapshot=on: writes go to a
                           temporary overlay and never reach the image

Character devices:
  -nographic               no graphics; serial0 on mon:stdio (C-a h for
                           help, C-a x quits); without -nographic and
                           -serial, serial0 is on plain stdio
  -serial DEV              next serial port: stdio, null, none, pty,
                           file:PATH, unix:PATH[,server=on,wait=off],
                           tcp:[HOST]:PORT[,server=on,wait=off], chardev:ID,
                           mon:DEV (DEV with the C-a keys)
  -chardev BACKEND,id=ID[,OPTIONS]
                           a named backend (null, stdio, file, socket, pty;
                           mux=on adds the C-a keys)

Monitor and debugging:
  -monitor DEV             the human monitor (HMP) on DEV: stdio, pty,
                           unix:PATH,server=on,wait=off,
                           tcp:[HOST]:PORT,server=on,wait=off; -nographic
                           has it on C-a c (docs/monitor.md)
  -qmp DEV                 QMP (QEMU's JSON protocol) on DEV:
                           unix:PATH,server=on,wait=off (mode 0600) or
                           tcp:[HOST]:PORT,server=on,wait=off, any number
                           of clients; wait=on waits for the first one
  -mon [chardev=]ID[,mode=readline|control]
                           a monitor on -chardev ID: readline (the default)
                           is HMP, control is QMP; on a mux=on chardev HMP
                           shares it with the serial port through C-a c
  -gdb DEV                 wait for gdb on DEV: tcp::PORT, tcp:HOST:PORT,
                           unix:PATH[,server=on] (owner-only), none;
                           one debugger at a time (docs/debugging.md)
  -s                       -gdb tcp::1234
  -S                       do not start the CPUs: `cont` (monitor) or gdb's
                           `continue` starts them

Logging:
  -d ITEM[,ITEM...]        enable log categories (-d help lists them)
  -D FILE                  write the log to FILE instead of stderr

Instrumentation:
  -plugin [file=]LIB.so[,NAME=VALUE...]
                           load a QEMU TCG plugin (API versions 1 to 7; may
                           be repeated); its output needs -d plugin
                           (docs/plugins.md)

Modules:
  --list-modules           the module search path, then every module found,
                           with kind, version, ABI, file and where it came
                           from (refused modules say why)
  --rebuild-index          rescan the module directories and rewrite their
                           indexes (KEEL_MODULE_PATH, <prefix>/lib/keel,
                           ~/.local/lib/keel); a new or changed .so is
                           noticed without it (mtime and size)
  --manifest-schema        print the JSON Schema of manifests for editors

  -h, --help               this text
  --version                version and module ABI
)";
}

} // namespace keel
