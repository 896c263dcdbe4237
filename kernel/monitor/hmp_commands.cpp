// SPDX-License-Identifier: MIT
// The human monitor's commands (QEMU's HMP names and output forms): help, info, x/xp, stop/cont, reset,
// quit, gdbserver, cpu.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>

#include "block.h"
#include "control.h"
#include "error.h"
#include "hmp.h"
#include "kernel.h"
#include "monitor.h"
#include "plugins/plugins.h"
#include "util.h"

namespace keel::monitor
{

namespace
{

std::string trim(const std::string &s)
{
    size_t b = s.find_first_not_of(" \t");
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

bool all_digits(const std::string &s)
{
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::mutex g_plugins_lock;
std::vector<std::string> g_plugins;

// ---- the CPU and its registers ----

const KeelCpuOps *cpu_ops()
{
    Machine *m = kernel().machine();
    return m ? m->cpu_ops() : nullptr;
}

bool is_riscv()
{
    const KeelCpuOps *ops = cpu_ops();
    return ops && ops->arch && std::strncmp(ops->arch, "riscv", 5) == 0;
}

unsigned pc_reg(unsigned cpu)
{
    const KeelCpuDebugOps *d = control().cpu_debug(cpu);
    return d ? d->gdb_pc_reg : 32; // RISC-V's gdb numbering: x0..x31, then pc
}

bool read_reg(unsigned cpu, unsigned n, uint64_t &value)
{
    std::vector<uint8_t> bytes;
    if (!control().read_reg(cpu, n, bytes) || bytes.empty()) return false;
    value = 0;
    for (size_t i = 0; i < bytes.size() && i < 8; ++i)
        value |= uint64_t(bytes[i]) << (8 * i);
    return true;
}

// A register named as `$NAME` in an expression: its gdb number, or nullopt.
std::optional<unsigned> register_number(unsigned cpu, const std::string &name)
{
    if (name == "pc") return pc_reg(cpu);
    if (!is_riscv()) return std::nullopt;
    static const char *const abi[32] = {"zero", "ra", "sp", "gp", "tp",  "t0",  "t1", "t2", "s0", "s1", "a0",
                                        "a1",   "a2", "a3", "a4", "a5",  "a6",  "a7", "s2", "s3", "s4", "s5",
                                        "s6",   "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6"};
    for (unsigned i = 0; i < 32; ++i)
        if (name == abi[i]) return i;
    if (name == "fp") return 8;
    if (name.size() >= 2 && (name[0] == 'x' || name[0] == 'f')) {
        auto n = parse_uint(name.substr(1));
        if (n && *n < 32 && all_digits(name.substr(1))) return unsigned(*n) + (name[0] == 'f' ? 33 : 0);
    }
    return std::nullopt;
}

// ---- expressions: numbers, $registers, + - * and parentheses ----

class Expr
{
  public:
    Expr(unsigned cpu, const std::string &text) : cpu_(cpu), s_(text) {}
    // The value, or nullopt and `err`.
    std::optional<uint64_t> parse(std::string &err)
    {
        try {
            uint64_t v = sum();
            skip();
            if (p_ < s_.size()) fail(std::string("invalid char '") + s_[p_] + "' in expression");
            return v;
        } catch (const Error &e) {
            err = e.what();
            return std::nullopt;
        }
    }

  private:
    [[noreturn]] void fail(const std::string &what) { throw Error(what); }
    void skip()
    {
        while (p_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[p_])))
            ++p_;
    }
    uint64_t sum()
    {
        uint64_t v = product();
        for (;;) {
            skip();
            if (p_ >= s_.size() || (s_[p_] != '+' && s_[p_] != '-')) return v;
            char op = s_[p_++];
            uint64_t r = product();
            v = op == '+' ? v + r : v - r;
        }
    }
    uint64_t product()
    {
        uint64_t v = unary();
        for (;;) {
            skip();
            if (p_ >= s_.size() || s_[p_] != '*') return v;
            ++p_;
            v *= unary();
        }
    }
    uint64_t unary()
    {
        skip();
        if (p_ >= s_.size()) fail("address expected");
        char c = s_[p_];
        if (c == '-') {
            ++p_;
            return -unary();
        }
        if (c == '+') {
            ++p_;
            return unary();
        }
        if (c == '(') {
            ++p_;
            uint64_t v = sum();
            skip();
            if (p_ >= s_.size() || s_[p_] != ')') fail("')' expected");
            ++p_;
            return v;
        }
        if (c == '$') {
            size_t start = ++p_;
            while (p_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[p_])) || s_[p_] == '_'))
                ++p_;
            std::string name = s_.substr(start, p_ - start);
            auto n = register_number(cpu_, name);
            uint64_t v = 0;
            if (!n) fail("unknown register '$" + name + "'");
            if (!read_reg(cpu_, *n, v)) fail("cannot read register '$" + name + "'");
            return v;
        }
        if (std::isdigit(static_cast<unsigned char>(c))) {
            // C's bases, as QEMU: 0x hex, 0 octal, else decimal.
            const char *begin = s_.c_str() + p_;
            char *end = nullptr;
            errno = 0;
            uint64_t v = std::strtoull(begin, &end, 0);
            if (errno == ERANGE) fail("number too large: " + s_.substr(p_, size_t(end - begin)));
            p_ += size_t(end - begin);
            if (p_ < s_.size() && std::isalnum(static_cast<unsigned char>(s_[p_])))
                fail("invalid number '" + s_.substr(p_ - size_t(end - begin)) + "'");
            return v;
        }
        fail(std::string("invalid char '") + c + "' in expression");
    }

    unsigned cpu_;
    const std::string &s_;
    size_t p_ = 0;
};

// ---- x and xp ----

constexpr uint64_t kMaxCount = 65536;

struct Format {
    unsigned count = 1;
    char format = 'x';
    int size = -1; // bytes; -1: not given
};

// "/[COUNT][FORMAT][SIZE]" (format and size letters in any order), after the command name. Updates the
// session's defaults as QEMU does. "" and the rest of the line in `rest`, or an error message.
std::string parse_format(HmpSession &s, std::string &args, Format &f)
{
    size_t p = 0;
    while (p < args.size() && std::isspace(static_cast<unsigned char>(args[p])))
        ++p;
    if (p < args.size() && args[p] == '/') {
        ++p;
        size_t digits = p;
        while (p < args.size() && std::isdigit(static_cast<unsigned char>(args[p])))
            ++p;
        if (p > digits) {
            auto n = parse_uint(args.substr(digits, p - digits));
            // Commands run on the main loop thread, which also serves the consoles and the other
            // monitors: a dump is kept to what a person reads.
            if (!n || *n > kMaxCount)
                return "count out of range: " + args.substr(digits, p - digits) + " (at most " +
                       std::to_string(kMaxCount) + ")";
            f.count = unsigned(*n);
        }
        int format = -1;
        for (; p < args.size() && !std::isspace(static_cast<unsigned char>(args[p])); ++p) {
            char c = args[p];
            switch (c) {
            case 'x':
            case 'd':
            case 'u':
            case 'o':
            case 't':
            case 'c':
            case 'i':
                format = c;
                break;
            case 'b':
                f.size = 1;
                break;
            case 'h':
                f.size = 2;
                break;
            case 'w':
                f.size = 4;
                break;
            case 'g':
            case 'L':
                f.size = 8;
                break;
            default:
                return std::string("invalid char in format: '") + c + "'";
            }
        }
        f.format = format < 0 ? s.last_format : char(format);
        if (f.format != 'i') {
            if (f.size < 0) f.size = int(s.last_size);
            s.last_size = unsigned(f.size);
        }
        s.last_format = f.format;
    } else {
        f.format = s.last_format;
        if (f.format != 'i') f.size = int(s.last_size);
    }
    args = args.substr(p);
    return "";
}

std::string char_literal(uint8_t c)
{
    switch (c) {
    case '\'':
        return "'\\''";
    case '\\':
        return "'\\\\'";
    case '\n':
        return "'\\n'";
    case '\r':
        return "'\\r'";
    default:
        if (c >= 32 && c <= 126) return std::string("'") + char(c) + "'";
        return strprintf("'\\x%02x'", c);
    }
}

bool read_mem(unsigned cpu, bool physical, uint64_t addr, uint8_t *buf, size_t len)
{
    return physical ? control().read_phys(addr, buf, len) : control().read_virt(cpu, addr, buf, len);
}

std::string disassemble(unsigned cpu, bool physical, uint64_t addr, unsigned count)
{
    const KeelCpuOps *ops = cpu_ops();
    void *env = control().cpu_env(cpu);
    if (!ops || !ops->disas || !env) return "this CPU cannot disassemble\n";
    std::string out;
    for (unsigned i = 0; i < count; ++i) {
        uint8_t bytes[32];
        size_t want = std::min<size_t>(ops->max_insn_bytes ? ops->max_insn_bytes : 4, sizeof bytes);
        // The last instruction before unmapped memory may be shorter than the longest one.
        size_t have = want;
        while (have > 0 && !read_mem(cpu, physical, addr, bytes, have))
            --have;
        out += strprintf("0x%016" PRIx64 ":  ", addr);
        if (have == 0) return out + "Cannot access memory\n";
        char text[256];
        size_t len = ops->disas(env, addr, bytes, have, text, sizeof text);
        if (len == 0) return out + "(cannot disassemble)\n";
        text[sizeof text - 1] = '\0';
        out += text;
        out += "\n";
        addr += len;
    }
    return out;
}

// QEMU's memory_dump: 16 bytes a line (8 for bytes), each line starting with its address.
std::string memory_dump(unsigned cpu, bool physical, uint64_t addr, const Format &f)
{
    if (f.format == 'i') return disassemble(cpu, physical, addr, f.count);
    unsigned wsize = f.format == 'c' ? 1 : unsigned(f.size);
    unsigned line_size = wsize == 1 ? 8 : 16;
    int digits = 0;
    switch (f.format) {
    case 'o':
        digits = int((wsize * 8 + 2) / 3);
        break;
    case 'u':
    case 'd':
        digits = int((wsize * 8 * 10 + 32) / 33);
        break;
    case 't':
        digits = int(wsize * 8);
        break;
    default:
        digits = int(wsize * 2);
        break;
    }
    std::string out;
    uint64_t len = uint64_t(wsize) * f.count;
    while (len > 0) {
        out += strprintf("%016" PRIx64 ":", addr);
        unsigned l = unsigned(std::min<uint64_t>(len, line_size));
        uint8_t buf[16];
        if (!read_mem(cpu, physical, addr, buf, l)) return out + " Cannot access memory\n";
        for (unsigned i = 0; i < l; i += wsize) {
            uint64_t v = 0;
            for (unsigned b = 0; b < wsize; ++b)
                v |= uint64_t(buf[i + b]) << (8 * b); // the guest is little-endian
            out += " ";
            switch (f.format) {
            case 'o':
                out += strprintf("%#*" PRIo64, digits, v);
                break;
            case 'u':
                out += strprintf("%*" PRIu64, digits, v);
                break;
            case 'd': {
                unsigned shift = 64 - 8 * wsize;
                int64_t sv = int64_t(v << shift) >> shift;
                out += strprintf("%*" PRId64, digits, sv);
                break;
            }
            case 't':
                for (int bit = digits - 1; bit >= 0; --bit)
                    out += char('0' + ((v >> bit) & 1));
                break;
            case 'c':
                out += char_literal(uint8_t(v));
                break;
            default:
                out += strprintf("0x%0*" PRIx64, digits, v);
                break;
            }
        }
        out += "\n";
        addr += l;
        len -= l;
    }
    return out;
}

std::string cmd_x(HmpSession &s, std::string args, bool physical)
{
    Format f;
    if (std::string e = parse_format(s, args, f); !e.empty()) return e + "\n";
    if (trim(args).empty()) return std::string(physical ? "xp" : "x") + ": address expected\n";
    if (s.cpu >= control().n_cpus()) return "no CPU " + std::to_string(s.cpu) + "\n";
    std::string err;
    auto addr = Expr(s.cpu, args).parse(err);
    if (!addr) return err + "\n";
    return memory_dump(s.cpu, physical, *addr, f);
}

// ---- info ----

std::string info_status()
{
    RunState st = control().state();
    std::string out = "VM status: ";
    if (st == RunState::Running) return out + "running\n";
    out += "paused";
    if (st != RunState::Paused) out += std::string(" (") + run_state_name(st) + ")";
    return out + "\n";
}

std::string dump_cpu(unsigned cpu)
{
    const KeelCpuOps *ops = cpu_ops();
    void *env = control().cpu_env(cpu);
    if (!ops || !ops->dump_state || !env) return "no CPU " + std::to_string(cpu) + "\n";
    std::string buf(16384, '\0');
    size_t need = ops->dump_state(env, buf.data(), buf.size());
    if (need >= buf.size()) {
        buf.assign(need + 1, '\0');
        need = ops->dump_state(env, buf.data(), buf.size());
    }
    buf.resize(std::min(need, buf.size() - 1));
    if (!buf.empty() && buf.back() != '\n') buf += "\n";
    return buf;
}

std::string info_registers(HmpSession &s, const std::string &args)
{
    std::string a = trim(args);
    unsigned n = control().n_cpus();
    if (a == "-a") {
        std::string out;
        for (unsigned i = 0; i < n; ++i)
            out += "\nCPU#" + std::to_string(i) + "\n" + dump_cpu(i);
        return out;
    }
    unsigned cpu = s.cpu;
    if (!a.empty()) {
        auto v = all_digits(a) ? parse_uint(a) : std::nullopt;
        if (!v || *v >= n)
            return "invalid vcpu '" + a + "' (0 to " + std::to_string(n ? n - 1 : 0) + ", or -a)\n";
        cpu = unsigned(*v);
    }
    return dump_cpu(cpu);
}

std::string info_cpus(HmpSession &s)
{
    std::string out;
    for (unsigned i = 0; i < control().n_cpus(); ++i) {
        uint64_t pc = 0;
        out += strprintf("%c CPU #%u:", i == s.cpu ? '*' : ' ', i);
        if (read_reg(i, pc_reg(i), pc)) out += strprintf(" pc=0x%016" PRIx64, pc);
        out += strprintf(" thread_id=%d\n", kernel().vcpu_thread_id());
    }
    return out;
}

std::string info_mtree(const std::string &args)
{
    Machine *m = kernel().machine();
    if (!m) return "no machine\n";
    std::lock_guard<std::recursive_mutex> g(big_lock());
    bool flat = false;
    for (const std::string &a : split(args, ' '))
        flat = flat || a == "-f";
    return flat ? m->system_memory().mtree() : m->system_memory().mtree_tree();
}

std::string info_qtree()
{
    Machine *m = kernel().machine();
    if (!m) return "no machine\n";
    std::lock_guard<std::recursive_mutex> g(big_lock()); // QMP's qom-set may change values meanwhile
    std::string out = "bus: main-system-bus\n  type System\n";
    for (const auto &o : m->objects()) {
        out += "  dev: " + o->type->name + ", id \"" + o->name + "\"\n";
        for (const auto &w : o->windows)
            if (w.mapped)
                out += strprintf("    mmio %016" PRIx64 "/%016" PRIx64 "\n", w.base, w.region->size());
        for (const auto &p : o->type->props) {
            auto it = o->values.find(p.name);
            if (it != o->values.end())
                out += "    " + p.name + " = " + format_prop_value(p, it->second) + "\n";
        }
    }
    return out;
}

std::string info_chardev()
{
    std::string out;
    for (const auto &[id, c] : kernel().chardevs())
        out += id + ": filename=" + c->describe() + "\n";
    return out;
}

std::string info_block()
{
    std::string out;
    for (KeelDrive *d : all_drives()) {
        out += d->id + ": " + (d->node ? d->node->filename + " (" + d->node->format + ")" : "[not inserted]");
        if (d->read_only) out += ", read-only";
        out += "\n";
        if (!d->user.empty()) out += "    Attached to:      " + d->user + "\n";
        out += strprintf("    Size:             %" PRIu64 " bytes\n", d->length);
    }
    return out;
}

std::string info_plugins()
{
    std::vector<std::string> specs;
    {
        std::lock_guard<std::mutex> g(g_plugins_lock);
        specs = g_plugins;
    }
    if (specs.empty()) return "no plugins loaded (-plugin loads one)\n";
    std::string out;
    for (const auto &s : specs) {
        try {
            plugins::PluginSpec p = plugins::parse_spec(s);
            out += p.path;
            if (!p.args.empty()) out += " (" + join(p.args, ", ") + ")";
            out += "\n";
        } catch (const Error &) {
            out += s + "\n";
        }
    }
    return out;
}

std::string info_modules()
{
    std::string out;
    for (const auto &m : kernel().registry().modules()) {
        std::string file = m->file.substr(m->file.rfind('/') + 1);
        if (m->ok)
            out += strprintf("%-24s %-8s %-10s ABI %u.%u  %s%s\n", m->name.c_str(), m->kind.c_str(),
                             m->version.c_str(), m->abi_major, m->abi_minor, file.c_str(),
                             m->handle ? " (loaded)" : "");
        else
            out += file + ": refused: " + m->error + "\n";
    }
    return out;
}

// ---- the command tables ----

struct Command {
    const char *name; // "cont|c": the first is the name, the others aliases
    const char *params;
    const char *help;
    std::function<std::string(HmpSession &, const std::string &args)> run;
};

bool name_matches(const char *names, const std::string &word)
{
    for (const std::string &n : split(names, '|'))
        if (n == word) return true;
    return false;
}

std::string help_lines(const std::vector<Command> &table, const std::string &prefix, const std::string &only)
{
    std::string out;
    for (const Command &c : table)
        if (only.empty() || name_matches(c.name, only))
            out += prefix + c.name + " " + c.params + " -- " + c.help + "\n";
    return out;
}

const std::vector<Command> &info_table()
{
    static const std::vector<Command> table = {
        {"block", "", "the drives: image, format, the device using it",
         [](HmpSession &, const std::string &) { return info_block(); }},
        {"chardev", "", "the character devices and their backends",
         [](HmpSession &, const std::string &) { return info_chardev(); }},
        {"cpus", "", "every CPU and its pc (* marks the monitor's CPU)",
         [](HmpSession &s, const std::string &) { return info_cpus(s); }},
        {"modules", "", "keel's modules found by the registry",
         [](HmpSession &, const std::string &) { return info_modules(); }},
        {"mtree", "[-f]", "the memory regions as a tree (-f: the flat view the CPUs see)",
         [](HmpSession &, const std::string &a) { return info_mtree(a); }},
        {"plugins", "", "the TCG plugins loaded with -plugin",
         [](HmpSession &, const std::string &) { return info_plugins(); }},
        {"qtree", "", "the devices and their properties",
         [](HmpSession &, const std::string &) { return info_qtree(); }},
        {"registers", "[-a|vcpu]", "the CPU's registers (-a: every CPU; vcpu: that one)",
         [](HmpSession &s, const std::string &a) { return info_registers(s, a); }},
        {"status", "", "whether the VM runs (running|paused)",
         [](HmpSession &, const std::string &) { return info_status(); }},
        {"version", "", "keel's version",
         [](HmpSession &, const std::string &) { return std::string(KEEL_VERSION) + "\n"; }},
    };
    return table;
}

std::string with_error(bool ok, const std::string &err)
{
    return ok ? "" : err + "\n";
}

const std::vector<Command> &command_table();

// The first word of `line` (a command name ends at a space or at '/') and the rest.
std::pair<std::string, std::string> split_command(const std::string &line)
{
    size_t p = 0;
    while (p < line.size() && std::isspace(static_cast<unsigned char>(line[p])))
        ++p;
    size_t start = p;
    while (p < line.size() && !std::isspace(static_cast<unsigned char>(line[p])) && line[p] != '/')
        ++p;
    return {line.substr(start, p - start), line.substr(p)};
}

std::string cmd_help(const std::string &args)
{
    std::string word = trim(args);
    if (word.empty()) return help_lines(command_table(), "", "");
    if (word == "info") return help_lines(info_table(), "info ", "");
    std::string out = help_lines(command_table(), "", word);
    return out.empty() ? "unknown command: '" + word + "'\n" : out;
}

std::string cmd_info(HmpSession &s, const std::string &args)
{
    auto [sub, rest] = split_command(args);
    if (sub.empty()) return help_lines(info_table(), "info ", "");
    for (const Command &c : info_table())
        if (name_matches(c.name, sub)) return c.run(s, rest);
    return "unknown command: 'info " + sub + "'\n";
}

const std::vector<Command> &command_table()
{
    static const std::vector<Command> table = {
        {"cont|c", "", "resume the VM",
         [](HmpSession &, const std::string &) {
             std::string err;
             return with_error(control().resume(err), err);
         }},
        {"cpu", "index", "select the CPU that info registers, x and $REG use",
         [](HmpSession &s, const std::string &a) -> std::string {
             auto n = all_digits(trim(a)) ? parse_uint(trim(a)) : std::nullopt;
             if (!n || *n >= control().n_cpus()) return "invalid CPU index\n";
             s.cpu = unsigned(*n);
             return "";
         }},
        {"gdbserver", "[device]", "start the gdbstub on device (default tcp::1234; none stops it)",
         [](HmpSession &, const std::string &a) -> std::string {
             std::string dev = trim(a).empty() ? "tcp::1234" : trim(a);
             std::string err;
             if (!gdbserver_start(dev, err)) {
                 // The gdbstub's message may name the command already.
                 std::string prefix = "gdbserver " + dev + ": ";
                 if (err.rfind(prefix, 0) == 0) err = err.substr(prefix.size());
                 return "Could not open gdbserver on device '" + dev + "'" + (err.empty() ? "" : ": " + err) +
                        "\n";
             }
             if (dev == "none") return "Disabled gdbserver\n";
             return "Waiting for gdb connection on device '" + dev + "'\n";
         }},
        {"help|?", "[cmd]", "list the commands, or describe one ('help info' lists info's)",
         [](HmpSession &, const std::string &a) { return cmd_help(a); }},
        {"info", "[subcommand]", "show the state of the machine ('info' alone lists what)",
         [](HmpSession &s, const std::string &a) { return cmd_info(s, a); }},
        {"quit|q", "", "end keel (exit status 0)",
         [](HmpSession &s, const std::string &) {
             s.quit = true;
             control().quit("host-ui");
             return std::string();
         }},
        {"stop", "", "pause the VM",
         [](HmpSession &, const std::string &) {
             std::string err;
             return with_error(control().pause(RunState::Paused, err), err);
         }},
        {"system_powerdown", "", "ask the guest to power down",
         [](HmpSession &, const std::string &) {
             control().system_powerdown();
             return std::string();
         }},
        {"system_reset", "", "reset the machine",
         [](HmpSession &, const std::string &) {
             control().system_reset();
             return std::string();
         }},
        {"x", "/fmt addr", "dump memory at virtual address addr (fmt: count, x d u o t c i, b h w g)",
         [](HmpSession &s, const std::string &a) { return cmd_x(s, a, false); }},
        {"xp", "/fmt addr", "dump memory at physical address addr (fmt as for x)",
         [](HmpSession &s, const std::string &a) { return cmd_x(s, a, true); }},
    };
    return table;
}

} // namespace

void hmp_set_plugins(std::vector<std::string> plugins)
{
    std::lock_guard<std::mutex> g(g_plugins_lock);
    g_plugins = std::move(plugins);
}

std::string hmp_run(HmpSession &s, const std::string &line)
{
    auto [name, args] = split_command(line);
    if (name.empty()) return "";
    try {
        for (const Command &c : command_table())
            if (name_matches(c.name, name)) return c.run(s, args);
    } catch (const std::exception &e) {
        return std::string("error: ") + e.what() + "\n";
    }
    return "unknown command: '" + name + "'\n";
}

} // namespace keel::monitor
