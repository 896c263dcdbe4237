// SPDX-License-Identifier: MIT
// keel-img: create, inspect, check and convert disk images, with qemu-img's commands and output.
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <keel/block.h>

#include "block.h"
#include "error.h"
#include "kernel.h"
#include "registry.h"
#include "util.h"

#include "json.h"

using keel::Error;
using keelimg::Json;

namespace
{

// The exit status of a usage or I/O error, as qemu-img's.
constexpr int kExitError = 1;
// qemu-img check's "this format has no check" status.
constexpr int kExitCheckUnsupported = 63;

// Bytes a copying command moves at a time.
constexpr uint64_t kChunk = 2 * 1024 * 1024;

// A usage error: keel-img prints it and the "Try --help" hint.
struct UsageError : Error {
    using Error::Error;
};

bool quiet = false;

void out(const std::string &s)
{
    if (!quiet) std::fputs(s.c_str(), stdout);
}

// Human sizes as qemu-img prints them: three significant digits in the
// largest binary unit that keeps the number below 1000.
std::string size_str(uint64_t v)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int u = 0;
    double d = static_cast<double>(v);
    while (u < 6 && d >= 1000.0) {
        d /= 1024.0;
        ++u;
    }
    return keel::strprintf("%0.3g %s", d, units[u]);
}

// A size argument: bytes, or with a k/M/G/T/P/E suffix (powers of 1024).
uint64_t parse_size_arg(const std::string &s, const char *what)
{
    auto v = keel::parse_size(s);
    if (!v || s.empty() || s[0] == '-')
        throw UsageError(std::string("Invalid ") + what +
                         " specified. You may use k, M, G, T, P or E suffixes "
                         "for kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.");
    return *v;
}

uint64_t file_disk_usage(const std::string &path)
{
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return 0;
    return static_cast<uint64_t>(st.st_blocks) * 512;
}

// -o k=v,k=v (",," is a literal comma, as in QEMU's option syntax).
std::vector<std::pair<std::string, std::string>> parse_options(const std::string &arg)
{
    std::vector<std::pair<std::string, std::string>> opts;
    std::vector<std::string> parts = keel::split_option(arg);
    for (const auto &p : parts) {
        if (p.empty()) continue;
        auto eq = p.find('=');
        if (eq == std::string::npos) {
            if (p == "help" || p == "?") {
                opts.emplace_back("help", "");
                continue;
            }
            throw UsageError("Invalid option '" + p + "': expected key=value");
        }
        opts.emplace_back(p.substr(0, eq), p.substr(eq + 1));
    }
    return opts;
}

// Command-line parsing shared by the commands: short options with a value
// ("-f qcow2", "-fqcow2"), long options ("--output=json", "--output json").
class Args
{
  public:
    Args(const std::vector<std::string> &argv, std::string with_value, std::vector<std::string> long_value,
         std::vector<std::string> long_flags)
    {
        for (size_t i = 0; i < argv.size(); ++i) {
            const std::string &a = argv[i];
            if (a == "--") {
                for (++i; i < argv.size(); ++i)
                    positional.push_back(argv[i]);
                break;
            }
            if (a.rfind("--", 0) == 0) {
                std::string name = a.substr(2), value;
                auto eq = name.find('=');
                bool has_value = eq != std::string::npos;
                if (has_value) {
                    value = name.substr(eq + 1);
                    name = name.substr(0, eq);
                }
                if (std::find(long_value.begin(), long_value.end(), name) != long_value.end()) {
                    if (!has_value) {
                        if (i + 1 >= argv.size())
                            throw UsageError("option '--" + name + "' requires an argument");
                        value = argv[++i];
                    }
                    opts.emplace_back(name, value);
                } else if (std::find(long_flags.begin(), long_flags.end(), name) != long_flags.end() &&
                           !has_value) {
                    opts.emplace_back(name, "");
                } else {
                    throw UsageError("unrecognized option '" + a + "'");
                }
                continue;
            }
            // qemu-img dd's operands and sizes like "-1G" for resize are not options.
            if (a.size() < 2 || a[0] != '-' || std::isdigit(static_cast<unsigned char>(a[1]))) {
                positional.push_back(a);
                continue;
            }
            for (size_t k = 1; k < a.size(); ++k) {
                std::string name(1, a[k]);
                if (with_value.find(a[k]) != std::string::npos) {
                    std::string value;
                    if (k + 1 < a.size())
                        value = a.substr(k + 1);
                    else if (i + 1 < argv.size())
                        value = argv[++i];
                    else
                        throw UsageError("option requires an argument -- '" + name + "'");
                    opts.emplace_back(name, value);
                    break;
                }
                opts.emplace_back(name, "");
            }
        }
    }

    bool has(const std::string &name) const
    {
        return std::any_of(opts.begin(), opts.end(), [&](const auto &o) { return o.first == name; });
    }
    // The last value given for `name`, or `def`.
    std::string get(const std::string &name, const std::string &def = "") const
    {
        std::string v = def;
        for (const auto &[k, val] : opts)
            if (k == name) v = val;
        return v;
    }
    std::vector<std::string> all(const std::string &name) const
    {
        std::vector<std::string> v;
        for (const auto &[k, val] : opts)
            if (k == name) v.push_back(val);
        return v;
    }
    // Refuse options the command does not know (`known`: the accepted names).
    void only(const std::vector<std::string> &known) const
    {
        for (const auto &[k, v] : opts)
            if (std::find(known.begin(), known.end(), k) == known.end())
                throw UsageError(k.size() == 1 ? "invalid option -- '" + k + "'"
                                               : "unrecognized option '--" + k + "'");
    }

    std::vector<std::pair<std::string, std::string>> opts;
    std::vector<std::string> positional;
};

enum class Output { Human, Json };

Output parse_output(const Args &a)
{
    std::string o = a.get("output", "human");
    if (o == "human") return Output::Human;
    if (o == "json") return Output::Json;
    throw UsageError("--output must be used with human or json as argument.");
}

uint32_t share_flag(const Args &a)
{
    return a.has("U") || a.has("force-share") ? keel::kBlockForceShare : 0;
}

// Where the image's backing file is, as qemu-img resolves it: relative to the image's directory.
std::string full_backing_name(const std::string &image, const std::string &backing)
{
    if (backing.empty() || backing[0] == '/') return backing;
    auto slash = image.rfind('/');
    if (slash == std::string::npos) return backing;
    return image.substr(0, slash + 1) + backing;
}

// --- info ---

std::string snapshot_date(uint32_t sec)
{
    time_t t = static_cast<time_t>(sec);
    struct tm tm;
    localtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

std::string snapshot_clock(uint64_t nsec)
{
    uint64_t ms = nsec / 1000000;
    return keel::strprintf("%02llu:%02llu:%02llu.%03llu", static_cast<unsigned long long>(ms / 3600000),
                           static_cast<unsigned long long>(ms / 60000 % 60),
                           static_cast<unsigned long long>(ms / 1000 % 60),
                           static_cast<unsigned long long>(ms % 1000));
}

// qemu-img 7.2's columns, to the byte (a name longer than its column pushes the rest right).
std::string snapshot_table(const std::vector<keel::SnapshotInfo> &snaps)
{
    const char *fmt = "%-9s %-16s %8s%20s%13s%11s\n";
    std::string s = keel::strprintf(fmt, "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT");
    for (const auto &sn : snaps) {
        std::string icount = sn.icount == UINT64_MAX ? "" : std::to_string(sn.icount);
        s += keel::strprintf(fmt, sn.id.c_str(), sn.name.c_str(), size_str(sn.vm_state_size).c_str(),
                             snapshot_date(sn.date_sec).c_str(), snapshot_clock(sn.vm_clock_nsec).c_str(),
                             icount.c_str());
    }
    return s;
}

Json snapshots_json(const std::vector<keel::SnapshotInfo> &snaps)
{
    Json arr = Json::array();
    for (const auto &sn : snaps) {
        Json o = Json::object();
        if (sn.icount != UINT64_MAX) o.set("icount", Json::integer(static_cast<int64_t>(sn.icount)));
        o.set("vm-clock-nsec", Json::integer(static_cast<int64_t>(sn.vm_clock_nsec % 1000000000)));
        o.set("name", Json::string(sn.name));
        o.set("date-sec", Json::integer(sn.date_sec));
        o.set("date-nsec", Json::integer(sn.date_nsec));
        o.set("vm-clock-sec", Json::integer(static_cast<int64_t>(sn.vm_clock_nsec / 1000000000)));
        o.set("id", Json::string(sn.id));
        o.set("vm-state-size", Json::integer(static_cast<int64_t>(sn.vm_state_size)));
        arr.push(std::move(o));
    }
    return arr;
}

struct ImageDescription {
    Json json;
    std::string human;
};

ImageDescription describe(KeelBlockNode *node, const std::string &filename)
{
    KeelBlockInfo info = keel::node_info(node);
    std::string bfile = info.backing_file ? info.backing_file : "";
    std::string bfmt = info.backing_fmt ? info.backing_fmt : "";
    auto snaps = keel::node_snapshot_list(node);
    auto specific = keel::node_info_specific(node);
    uint64_t disk = file_disk_usage(filename);

    // JSON keys in the order qemu-img 7.2 prints them.
    Json j = Json::object();
    if (!bfmt.empty()) j.set("backing-filename-format", Json::string(bfmt));
    if (!snaps.empty()) j.set("snapshots", snapshots_json(snaps));
    j.set("virtual-size", Json::integer(static_cast<int64_t>(info.virtual_size)));
    j.set("filename", Json::string(filename));
    if (info.cluster_size) j.set("cluster-size", Json::integer(info.cluster_size));
    j.set("format", Json::string(node->format));
    j.set("actual-size", Json::integer(static_cast<int64_t>(disk)));
    if (!specific.empty()) {
        Json data = Json::object();
        for (const auto &it : specific) {
            switch (it.kind) {
            case KEEL_BLOCK_INFO_BOOL:
                data.set(it.json_key, Json::boolean(it.i != 0));
                break;
            case KEEL_BLOCK_INFO_INT:
                data.set(it.json_key, Json::integer(it.i));
                break;
            default:
                data.set(it.json_key, Json::string(it.s));
                break;
            }
        }
        Json fs = Json::object();
        fs.set("type", Json::string(node->format));
        fs.set("data", std::move(data));
        j.set("format-specific", std::move(fs));
    }
    if (!bfile.empty()) {
        j.set("full-backing-filename", Json::string(full_backing_name(filename, bfile)));
        j.set("backing-filename", Json::string(bfile));
    }
    j.set("dirty-flag", Json::boolean(info.dirty));

    std::string h;
    h += "image: " + filename + "\n";
    h += "file format: " + node->format + "\n";
    h += "virtual size: " + size_str(info.virtual_size) + " (" + std::to_string(info.virtual_size) +
         " bytes)\n";
    h += "disk size: " + size_str(disk) + "\n";
    if (info.cluster_size) h += "cluster_size: " + std::to_string(info.cluster_size) + "\n";
    if (!bfile.empty()) {
        std::string full = full_backing_name(filename, bfile);
        h += "backing file: " + bfile + (full != bfile ? " (actual path: " + full + ")" : "") + "\n";
        if (!bfmt.empty()) h += "backing file format: " + bfmt + "\n";
    }
    if (info.dirty) h += "cleanly shut down: no\n";
    if (!snaps.empty()) h += "Snapshot list:\n" + snapshot_table(snaps);
    if (!specific.empty()) {
        h += "Format specific information:\n";
        for (const auto &it : specific) {
            std::string v = it.kind == KEEL_BLOCK_INFO_BOOL  ? (it.i ? "true" : "false")
                            : it.kind == KEEL_BLOCK_INFO_INT ? std::to_string(it.i)
                                                             : it.s;
            h += "    " + it.label + ": " + v + "\n";
        }
    }
    return {std::move(j), std::move(h)};
}

int cmd_info(const std::vector<std::string> &argv)
{
    Args a(argv, "f", {"output", "format"}, {"backing-chain", "force-share", "image-opts"});
    a.only({"f", "U", "q", "output", "format", "backing-chain", "force-share"});
    if (a.positional.size() != 1) throw UsageError("Expecting one image file name");
    Output o = parse_output(a);
    std::string fmt = a.get("format", a.get("f"));
    // Only the top image is needed; with --backing-chain each image is opened on its own.
    uint32_t flags = KEEL_BLOCK_NO_BACKING | share_flag(a);
    std::string file = a.positional[0];
    std::vector<ImageDescription> chain;
    std::vector<std::string> seen;
    for (;;) {
        if (std::find(seen.begin(), seen.end(), file) != seen.end())
            throw Error("Backing file '" + file + "' creates an infinite loop.");
        seen.push_back(file);
        keel::BlockNodePtr node = keel::open_image(file, fmt, flags);
        chain.push_back(describe(node.get(), file));
        if (!a.has("backing-chain")) break;
        KeelBlockInfo info = keel::node_info(node.get());
        if (!info.backing_file || !*info.backing_file) break;
        fmt = info.backing_fmt ? info.backing_fmt : "";
        file = full_backing_name(file, info.backing_file);
    }
    if (o == Output::Json) {
        if (a.has("backing-chain")) {
            Json arr = Json::array();
            for (auto &d : chain)
                arr.push(std::move(d.json));
            std::printf("%s\n", arr.dump().c_str());
        } else {
            std::printf("%s\n", chain[0].json.dump().c_str());
        }
    } else {
        for (size_t i = 0; i < chain.size(); ++i)
            std::printf("%s%s", i ? "\n" : "", chain[i].human.c_str());
    }
    return 0;
}

// --- create ---

void print_option_help(const std::string &fmt)
{
    const KeelBlockDriverInfo *info = keel::kernel().registry().require_block_driver(fmt).info;
    std::printf("Supported %s options:\n", fmt.c_str());
    for (size_t i = 0; i < info->n_create_options; ++i) {
        const KeelBlockOptionInfo &o = info->create_options[i];
        std::string t = o.type ? o.type : "str";
        std::string shown = t == "size"     ? "<size>"
                            : t == "bool"   ? "<bool (on/off)>"
                            : t == "number" ? "<num>"
                                            : "<str>";
        std::printf("  %-22s - %s\n", (std::string(o.key) + "=" + shown).c_str(), o.help ? o.help : "");
    }
}

int cmd_create(const std::vector<std::string> &argv)
{
    Args a(argv, "foFbB", {}, {});
    a.only({"f", "o", "F", "b", "q", "u"});
    std::string fmt = a.get("f", "raw");
    std::vector<std::pair<std::string, std::string>> opts;
    for (const auto &o : a.all("o"))
        for (auto &kv : parse_options(o))
            opts.push_back(kv);
    if (std::any_of(opts.begin(), opts.end(), [](const auto &kv) { return kv.first == "help"; })) {
        print_option_help(fmt);
        return 0;
    }
    if (a.positional.empty()) throw UsageError("Expecting image file name");
    if (a.positional.size() > 2) throw UsageError("Unexpected argument: " + a.positional[2]);
    std::string file = a.positional[0];
    std::string backing = a.get("b"), backing_fmt = a.get("F");
    for (const auto &[k, v] : opts) {
        if (k == "backing_file") backing = v;
        if (k == "backing_fmt") backing_fmt = v;
    }
    std::erase_if(opts,
                  [](const auto &kv) { return kv.first == "backing_file" || kv.first == "backing_fmt"; });
    std::optional<uint64_t> size;
    for (const auto &[k, v] : opts)
        if (k == "size") size = parse_size_arg(v, "image size");
    std::erase_if(opts, [](const auto &kv) { return kv.first == "size"; });
    if (a.positional.size() == 2) size = parse_size_arg(a.positional[1], "image size");
    if (!backing.empty()) {
        if (backing_fmt.empty()) throw Error(file + ": Backing file specified without backing format");
        // The backing file must open (relative names are relative to the new image), unless -u.
        if (!size || !a.has("u")) {
            auto b = keel::open_image(full_backing_name(file, backing), backing_fmt,
                                      KEEL_BLOCK_NO_BACKING | keel::kBlockForceShare);
            if (!size) size = keel::block_node_length(b.get());
        }
        opts.emplace_back("backing_file", backing);
        opts.emplace_back("backing_fmt", backing_fmt);
    }
    if (!size) throw UsageError("Image creation needs a size parameter");
    std::string shown = "Formatting '" + file + "', fmt=" + fmt;
    for (const auto &[k, v] : opts)
        if (k != "backing_file" && k != "backing_fmt") shown += " " + k + "=" + v;
    shown += " size=" + std::to_string(*size);
    if (!backing.empty()) shown += " backing_file=" + backing + " backing_fmt=" + backing_fmt;
    out(shown + "\n");
    keel::create_image(file, fmt, *size, opts);
    return 0;
}

// --- check ---

Json check_json(const KeelBlockCheckResult &r, const std::string &file, const std::string &fmt)
{
    Json j = Json::object();
    if (r.image_end_offset > 0) j.set("image-end-offset", Json::integer(r.image_end_offset));
    if (r.total_clusters > 0) j.set("total-clusters", Json::integer(r.total_clusters));
    j.set("check-errors", Json::integer(r.check_errors));
    if (r.leaks) j.set("leaks", Json::integer(r.leaks));
    if (r.leaks_fixed) j.set("leaks-fixed", Json::integer(r.leaks_fixed));
    if (r.corruptions) j.set("corruptions", Json::integer(r.corruptions));
    if (r.corruptions_fixed) j.set("corruptions-fixed", Json::integer(r.corruptions_fixed));
    if (r.allocated_clusters > 0) j.set("allocated-clusters", Json::integer(r.allocated_clusters));
    if (r.fragmented_clusters > 0) j.set("fragmented-clusters", Json::integer(r.fragmented_clusters));
    if (r.compressed_clusters > 0) j.set("compressed-clusters", Json::integer(r.compressed_clusters));
    j.set("filename", Json::string(file));
    j.set("format", Json::string(fmt));
    return j;
}

std::string check_human(const KeelBlockCheckResult &r)
{
    std::string s;
    if (!r.corruptions && !r.leaks && !r.check_errors) s += "No errors were found on the image.\n";
    if (r.corruptions)
        s += keel::strprintf("\n%lld errors were found on the image.\n"
                             "Data may be corrupted, or further writes to the image may corrupt it.\n",
                             static_cast<long long>(r.corruptions));
    if (r.leaks)
        s += keel::strprintf("\n%lld leaked clusters were found on the image.\n"
                             "This means waste of disk space, but no harm to data.\n",
                             static_cast<long long>(r.leaks));
    if (r.check_errors)
        s += keel::strprintf("\n%lld internal errors have occurred during the check.\n",
                             static_cast<long long>(r.check_errors));
    if (r.total_clusters > 0 && r.allocated_clusters > 0) {
        double t = static_cast<double>(r.total_clusters), al = static_cast<double>(r.allocated_clusters);
        s += keel::strprintf(
            "%lld/%lld = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% compressed clusters\n",
            static_cast<long long>(r.allocated_clusters), static_cast<long long>(r.total_clusters),
            al * 100.0 / t, std::max<int64_t>(r.fragmented_clusters, 0) * 100.0 / al,
            std::max<int64_t>(r.compressed_clusters, 0) * 100.0 / al);
    }
    if (r.image_end_offset > 0)
        s += keel::strprintf("Image end offset: %lld\n", static_cast<long long>(r.image_end_offset));
    return s;
}

int cmd_check(const std::vector<std::string> &argv)
{
    Args a(argv, "fr", {"output", "format"}, {"force-share"});
    a.only({"f", "r", "q", "U", "output", "format", "force-share"});
    if (a.positional.size() != 1) throw UsageError("Expecting one image file name");
    Output o = parse_output(a);
    uint32_t fix = 0;
    if (a.has("r")) {
        std::string r = a.get("r");
        if (r == "leaks")
            fix = KEEL_BLOCK_FIX_LEAKS;
        else if (r == "all")
            fix = KEEL_BLOCK_FIX_LEAKS | KEEL_BLOCK_FIX_ERRORS;
        else
            throw UsageError("Unknown option value for -r (expecting 'leaks' or 'all'): " + r);
    }
    std::string file = a.positional[0];
    // The backing chain is opened too, as qemu-img does: a missing backing file or a loop is an error.
    uint32_t flags = KEEL_BLOCK_CHECK | (fix ? KEEL_BLOCK_RDWR : 0) | share_flag(a);
    keel::BlockNodePtr node = keel::open_image(file, a.get("format", a.get("f")), flags);
    if (!node->driver->ops->check) {
        std::fprintf(stderr, "keel-img: This image format does not support checks\n");
        return kExitCheckUnsupported;
    }
    auto report = [](const std::string &line) { std::fprintf(stderr, "%s\n", line.c_str()); };
    KeelBlockCheckResult r = keel::node_check(node.get(), fix, report);
    if (r.leaks_fixed || r.corruptions_fixed) {
        if (o == Output::Human)
            out(keel::strprintf("The following inconsistencies were found and repaired:\n\n"
                                "    %lld leaked clusters\n    %lld corruptions\n\n"
                                "Double checking the fixed image now...\n",
                                static_cast<long long>(r.leaks_fixed),
                                static_cast<long long>(r.corruptions_fixed)));
        KeelBlockCheckResult again = keel::node_check(node.get(), 0, report);
        again.leaks_fixed = r.leaks_fixed;
        again.corruptions_fixed = r.corruptions_fixed;
        r = again;
    }
    if (o == Output::Json)
        std::printf("%s\n", check_json(r, file, node->format).dump().c_str());
    else
        out(check_human(r));
    if (r.check_errors) return 1;
    if (r.corruptions) return 2;
    if (r.leaks) return 3;
    return 0;
}

// --- block status through a chain ---

struct ChainStatus {
    uint64_t pnum;
    bool zero;    // reads as zeroes
    bool data;    // stored as data somewhere in the chain
    bool present; // allocated in some node of the chain
    int depth;    // the node that decided (0 = top)
    uint64_t map; // the offset in that node's file, with has_map
    bool has_map;
    KeelBlockNode *node;
};

// What [offset, offset+bytes) of `top` is, following unallocated ranges down the backing chain.
ChainStatus chain_status(KeelBlockNode *top, uint64_t offset, uint64_t bytes)
{
    KeelBlockNode *n = top;
    int depth = 0;
    for (;;) {
        uint64_t len = keel::block_node_length(n);
        if (offset >= len) // past a shorter backing image: zeroes, decided here
            return {bytes, true, false, false, depth, 0, false, n};
        keel::BlockStatus st = keel::node_block_status(n, offset, std::min(bytes, len - offset));
        bool alloc = st.flags & KEEL_BLOCK_STATUS_ALLOCATED;
        if (alloc || !n->backing) {
            ChainStatus c{st.pnum,
                          (st.flags & KEEL_BLOCK_STATUS_ZERO) != 0,
                          (st.flags & (KEEL_BLOCK_STATUS_DATA | KEEL_BLOCK_STATUS_COMPRESSED)) != 0,
                          alloc,
                          depth,
                          st.map,
                          (st.flags & KEEL_BLOCK_STATUS_DATA) != 0 ||
                              (n->format == "raw" && alloc), // raw's holes still map to the file
                          n};
            return c;
        }
        bytes = st.pnum;
        n = n->backing.get();
        ++depth;
    }
}

bool all_zero(const uint8_t *p, size_t n)
{
    // Comparing the buffer with itself shifted by one byte lets memcmp's vectorised loop do the scan.
    return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

// --- convert ---

class Progress
{
  public:
    explicit Progress(bool on) : on_(on) { show(0); }
    void show(double pct)
    {
        if (!on_ || (pct < last_ + 1.0 && pct != 0 && pct < 100)) return;
        last_ = pct;
        std::printf("    (%3.2f/100%%)\r", pct);
        std::fflush(stdout);
    }
    void done()
    {
        if (!on_) return;
        if (last_ < 100) show(100);
        std::printf("\n");
    }

  private:
    bool on_;
    double last_ = -100;
};

// The source of a convert read ahead on a second thread while the caller writes, so that reading and
// writing (mostly the host kernel's copies) overlap, as qemu-img's requests in flight make them. Only this
// thread touches the source node, only the caller the target.
class ReadAhead
{
  public:
    struct Chunk {
        uint64_t off = 0;
        ChainStatus st{};
        std::vector<uint8_t> data; // empty for a range that reads as zeroes
    };

    ReadAhead(KeelBlockNode *in, uint64_t size) : thread_([this, in, size] { run(in, size); }) {}
    ~ReadAhead()
    {
        {
            std::lock_guard<std::mutex> lk(m_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }
    ReadAhead(const ReadAhead &) = delete;
    ReadAhead &operator=(const ReadAhead &) = delete;

    // The next chunk in order; false at the end. Rethrows the reader's error.
    bool next(Chunk &c)
    {
        std::unique_lock<std::mutex> lk(m_);
        if (!c.data.empty()) spare_.push_back(std::move(c.data)); // its buffer serves again
        cv_.wait(lk, [this] { return !queue_.empty() || done_; });
        if (queue_.empty()) {
            if (error_) std::rethrow_exception(error_);
            return false;
        }
        c = std::move(queue_.front());
        queue_.pop_front();
        cv_.notify_all();
        return true;
    }

  private:
    static constexpr size_t kDepth = 4;

    void run(KeelBlockNode *in, uint64_t size)
    {
        try {
            for (uint64_t off = 0; off < size;) {
                Chunk c;
                c.off = off;
                c.st = chain_status(in, off, std::min(kChunk, size - off));
                if (!(c.st.zero && !c.st.data)) {
                    {
                        std::lock_guard<std::mutex> lk(m_);
                        if (!spare_.empty()) {
                            c.data = std::move(spare_.back());
                            spare_.pop_back();
                        }
                    }
                    c.data.resize(c.st.pnum);
                    keel::node_read(in, off, c.data.data(), c.st.pnum);
                }
                off += c.st.pnum;
                std::unique_lock<std::mutex> lk(m_);
                cv_.wait(lk, [this] { return queue_.size() < kDepth || stop_; });
                if (stop_) return;
                queue_.push_back(std::move(c));
                cv_.notify_all();
            }
        } catch (...) {
            std::lock_guard<std::mutex> lk(m_);
            error_ = std::current_exception();
        }
        std::lock_guard<std::mutex> lk(m_);
        done_ = true;
        cv_.notify_all();
    }

    std::mutex m_;
    std::condition_variable cv_;
    std::deque<Chunk> queue_;
    std::vector<std::vector<uint8_t>> spare_;
    bool done_ = false, stop_ = false;
    std::exception_ptr error_;
    std::thread thread_; // last: starts once the members above exist
};

// convert without -c: each range the chain reports as data is read and written, but for its 4 KiB pieces
// that are all zeroes (the target stays sparse).
void convert_plain(KeelBlockNode *in, KeelBlockNode *out, uint64_t size, bool fresh, Progress &prog)
{
    ReadAhead source(in, size);
    ReadAhead::Chunk c;
    while (source.next(c)) {
        uint64_t off = c.off;
        const ChainStatus &st = c.st;
        if (c.data.empty()) {
            if (!fresh) keel::node_write_zeroes(out, off, st.pnum, KEEL_BLOCK_MAY_UNMAP);
        } else {
            const std::vector<uint8_t> &buf = c.data;
            constexpr uint64_t kSparse = 4096;
            for (uint64_t p = 0; p < st.pnum;) {
                uint64_t n = std::min(kSparse - (off + p) % kSparse, st.pnum - p);
                uint64_t run = p;
                bool z = all_zero(buf.data() + p, n);
                while (run < st.pnum) {
                    uint64_t m = std::min(kSparse - (off + run) % kSparse, st.pnum - run);
                    if (all_zero(buf.data() + run, m) != z) break;
                    run += m;
                }
                if (!z)
                    keel::node_write(out, off + p, buf.data() + p, run - p);
                else if (!fresh)
                    keel::node_write_zeroes(out, off + p, run - p, KEEL_BLOCK_MAY_UNMAP);
                p = run;
            }
        }
        prog.show(100.0 * static_cast<double>(off + st.pnum) / static_cast<double>(size));
    }
}

// convert -c: the target's clusters one by one, each stored compressed unless it is all zeroes (then it
// stays unallocated, as with qemu-img); the disk's last cluster may be partial.
void convert_compressed(KeelBlockNode *in, KeelBlockNode *out, uint64_t size, bool fresh, Progress &prog)
{
    uint64_t cs = keel::node_info(out).cluster_size;
    if (cs == 0) throw Error("Compression not supported for this file format");
    uint64_t span_max = std::max(cs, kChunk / cs * cs);
    std::vector<uint8_t> buf;
    for (uint64_t off = 0; off < size;) {
        uint64_t span = std::min(span_max, size - off);
        ChainStatus st = chain_status(in, off, span);
        uint64_t zeroes = st.pnum == size - off ? st.pnum : st.pnum / cs * cs; // whole clusters of zeroes
        if (st.zero && !st.data && zeroes) {
            if (!fresh) keel::node_write_zeroes(out, off, zeroes, KEEL_BLOCK_MAY_UNMAP);
            off += zeroes;
        } else {
            buf.resize(span);
            keel::node_read(in, off, buf.data(), span);
            for (uint64_t p = 0; p < span; p += cs) {
                uint64_t n = std::min(cs, span - p);
                if (!all_zero(buf.data() + p, n))
                    keel::node_write_compressed(out, off + p, buf.data() + p, n);
                else if (!fresh)
                    keel::node_write_zeroes(out, off + p, n, KEEL_BLOCK_MAY_UNMAP);
            }
            off += span;
        }
        prog.show(100.0 * static_cast<double>(off) / static_cast<double>(size));
    }
}

int cmd_convert(const std::vector<std::string> &argv)
{
    Args a(argv, "fOoBSt", {}, {"force-share"});
    a.only({"f", "O", "o", "p", "c", "q", "n", "t", "U", "force-share"});
    if (a.positional.size() != 2) throw UsageError("Expecting a source and a target image file name");
    std::string src = a.positional[0], dst = a.positional[1];
    std::string ofmt = a.get("O", "raw");
    // qemu-img's default for convert is "unsafe": the target is not flushed at the end (an interrupted
    // convert leaves a useless target whatever the order its blocks reached the disk in).
    std::string cache = a.get("t", "unsafe");
    static const char *const caches[] = {"none", "writeback", "writethrough", "directsync", "unsafe"};
    if (std::find(std::begin(caches), std::end(caches), cache) == std::end(caches))
        throw Error("Invalid cache option: " + cache);
    std::vector<std::pair<std::string, std::string>> opts;
    for (const auto &o : a.all("o"))
        for (auto &kv : parse_options(o))
            opts.push_back(kv);
    if (std::any_of(opts.begin(), opts.end(), [](const auto &kv) { return kv.first == "help"; })) {
        print_option_help(ofmt);
        return 0;
    }
    bool compress = a.has("c");
    if (compress && !keel::format_supports_compression(ofmt))
        throw Error("Compression not supported for this file format");
    keel::BlockNodePtr in = keel::open_image(src, a.get("f"), share_flag(a));
    uint64_t size = keel::block_node_length(in.get());
    if (!a.has("n")) keel::create_image(dst, ofmt, size, opts);
    keel::BlockNodePtr outn = keel::open_image(dst, ofmt, KEEL_BLOCK_RDWR);
    if (a.has("n") && keel::block_node_length(outn.get()) < size)
        throw Error("The target '" + dst + "' is smaller than the source");
    Progress prog(a.has("p"));
    // A freshly created target reads as zeroes; with -n it must be told.
    bool fresh = !a.has("n");
    if (compress)
        convert_compressed(in.get(), outn.get(), size, fresh, prog);
    else
        convert_plain(in.get(), outn.get(), size, fresh, prog);
    if (cache != "unsafe") keel::node_flush(outn.get());
    prog.done();
    return 0;
}

// --- resize ---

int cmd_resize(const std::vector<std::string> &argv)
{
    Args a(argv, "f", {}, {"shrink", "preallocation"});
    a.only({"f", "q", "shrink"});
    if (a.positional.size() != 2) throw UsageError("Expecting image file name and size");
    std::string file = a.positional[0], arg = a.positional[1];
    keel::BlockNodePtr node = keel::open_image(file, a.get("f"), KEEL_BLOCK_RDWR);
    uint64_t cur = keel::block_node_length(node.get());
    uint64_t size;
    if (!arg.empty() && (arg[0] == '+' || arg[0] == '-')) {
        uint64_t d = parse_size_arg(arg.substr(1), "image size");
        if (arg[0] == '-' && d > cur) throw Error("New image size must be positive");
        size = arg[0] == '+' ? cur + d : cur - d;
    } else {
        size = parse_size_arg(arg, "image size");
    }
    if (size == 0) throw Error("New image size must be positive");
    if (size < cur && !a.has("shrink")) {
        std::fprintf(stderr, "keel-img: Use the --shrink option to perform a shrink operation.\n");
        std::fprintf(stderr,
                     "keel-img: warning: Shrinking an image will delete all data beyond the shrunken "
                     "image's end. Before performing such an operation, make sure there is no important "
                     "data there.\n");
        return kExitError;
    }
    keel::node_truncate(node.get(), size);
    keel::node_flush(node.get());
    out("Image resized.\n");
    return 0;
}

// --- compare ---

int cmd_compare(const std::vector<std::string> &argv)
{
    Args a(argv, "fF", {}, {"force-share"});
    a.only({"f", "F", "s", "q", "p", "U", "force-share"});
    if (a.positional.size() != 2) throw UsageError("Expecting two image file names");
    std::string fa = a.get("f"), fb = a.get("F");
    keel::BlockNodePtr na, nb;
    try {
        na = keel::open_image(a.positional[0], fa, share_flag(a));
        nb = keel::open_image(a.positional[1], fb, share_flag(a));
    } catch (const Error &e) {
        std::fprintf(stderr, "keel-img: %s\n", e.what());
        return 2; // compare: errors are 2, differences 1
    }
    uint64_t sa = keel::block_node_length(na.get()), sb = keel::block_node_length(nb.get());
    if (sa != sb && a.has("s")) {
        out("Strict mode: Image size mismatch!\n");
        return 1;
    }
    uint64_t common = std::min(sa, sb);
    std::vector<uint8_t> ba, bb;
    // Differences are reported at the first differing 512-byte sector, as qemu-img does.
    auto mismatch = [](uint64_t at) {
        out(keel::strprintf("Content mismatch at offset %llu!\n",
                            static_cast<unsigned long long>(at & ~511ull)));
        return 1;
    };
    try {
        for (uint64_t off = 0; off < common;) {
            uint64_t want = std::min(kChunk, common - off);
            ChainStatus x = chain_status(na.get(), off, want);
            ChainStatus y = chain_status(nb.get(), off, x.pnum);
            uint64_t n = y.pnum;
            if (a.has("s") && x.present != y.present) {
                out(keel::strprintf("Strict mode: Offset %llu block status mismatch!\n",
                                    static_cast<unsigned long long>(off)));
                return 1;
            }
            bool xz = x.zero && !x.data, yz = y.zero && !y.data;
            if (!(xz && yz)) {
                ba.resize(n);
                bb.resize(n);
                keel::node_read(na.get(), off, ba.data(), n);
                keel::node_read(nb.get(), off, bb.data(), n);
                if (std::memcmp(ba.data(), bb.data(), n) != 0)
                    for (uint64_t i = 0; i < n; ++i)
                        if (ba[i] != bb[i]) return mismatch(off + i);
            }
            off += n;
        }
        if (sa != sb) {
            out("Warning: Image size mismatch!\n");
            KeelBlockNode *big = sa > sb ? na.get() : nb.get();
            uint64_t end = std::max(sa, sb);
            for (uint64_t off = common; off < end;) {
                ChainStatus x = chain_status(big, off, std::min(kChunk, end - off));
                if (!(x.zero && !x.data)) {
                    ba.resize(x.pnum);
                    keel::node_read(big, off, ba.data(), x.pnum);
                    for (uint64_t i = 0; i < x.pnum; ++i)
                        if (ba[i]) return mismatch(off + i);
                }
                off += x.pnum;
            }
        }
    } catch (const Error &e) {
        std::fprintf(stderr, "keel-img: %s\n", e.what());
        return 2;
    }
    out("Images are identical.\n");
    return 0;
}

// --- map ---

int cmd_map(const std::vector<std::string> &argv)
{
    Args a(argv, "f", {"output", "format", "start-offset", "max-length"}, {"force-share"});
    a.only({"f", "U", "output", "format", "start-offset", "max-length", "force-share"});
    if (a.positional.size() != 1) throw UsageError("Expecting one image file name");
    Output o = parse_output(a);
    keel::BlockNodePtr node = keel::open_image(a.positional[0], a.get("format", a.get("f")), share_flag(a));
    uint64_t size = keel::block_node_length(node.get());
    uint64_t start = a.has("start-offset") ? parse_size_arg(a.get("start-offset"), "start offset") : 0;
    uint64_t end = size;
    if (a.has("max-length")) end = std::min(size, start + parse_size_arg(a.get("max-length"), "max length"));

    // Merge neighbours that say the same (and map contiguously), as qemu-img does.
    struct Range {
        uint64_t start, length;
        ChainStatus st;
    };
    std::vector<Range> ranges;
    for (uint64_t off = start; off < end;) {
        ChainStatus st = chain_status(node.get(), off, end - off);
        if (!ranges.empty()) {
            Range &r = ranges.back();
            bool same = r.st.depth == st.depth && r.st.present == st.present && r.st.zero == st.zero &&
                        r.st.data == st.data && r.st.has_map == st.has_map && r.st.node == st.node &&
                        (!st.has_map || r.st.map + r.length == st.map);
            if (same) {
                r.length += st.pnum;
                off += st.pnum;
                continue;
            }
        }
        ranges.push_back({off, st.pnum, st});
        off += st.pnum;
    }
    if (o == Output::Json) {
        std::string s = "[";
        for (size_t i = 0; i < ranges.size(); ++i) {
            const Range &r = ranges[i];
            s += keel::strprintf(
                "{ \"start\": %llu, \"length\": %llu, \"depth\": %d, \"present\": %s, \"zero\": %s, "
                "\"data\": %s",
                static_cast<unsigned long long>(r.start), static_cast<unsigned long long>(r.length),
                r.st.depth, r.st.present ? "true" : "false", r.st.zero ? "true" : "false",
                r.st.data ? "true" : "false");
            if (r.st.has_map)
                s += keel::strprintf(", \"offset\": %llu", static_cast<unsigned long long>(r.st.map));
            s += i + 1 < ranges.size() ? "},\n" : "}";
        }
        std::printf("%s]\n", s.c_str());
        return 0;
    }
    // Each node's name as qemu-img shows it: backing files resolved against their overlay's directory.
    std::vector<std::string> names;
    std::string name = a.positional[0];
    for (KeelBlockNode *n = node.get(); n; n = n->backing.get()) {
        names.push_back(name);
        KeelBlockInfo info = keel::node_info(n);
        if (info.backing_file) name = full_backing_name(name, info.backing_file);
    }
    std::printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
    for (const auto &r : ranges) {
        if (!r.st.data || !r.st.has_map) continue;
        std::printf("%#-15llx %#-15llx %#-15llx %s\n", static_cast<unsigned long long>(r.start),
                    static_cast<unsigned long long>(r.length), static_cast<unsigned long long>(r.st.map),
                    names[static_cast<size_t>(r.st.depth)].c_str());
    }
    return 0;
}

// --- dd ---

int cmd_dd(const std::vector<std::string> &argv)
{
    Args a(argv, "fO", {}, {"force-share"});
    a.only({"f", "O", "U", "force-share"});
    std::string in, of;
    uint64_t bs = 512;
    std::optional<uint64_t> count;
    uint64_t skip = 0;
    for (const auto &p : a.positional) {
        auto eq = p.find('=');
        if (eq == std::string::npos) throw UsageError("unrecognized operand " + p);
        std::string k = p.substr(0, eq), v = p.substr(eq + 1);
        if (k == "if")
            in = v;
        else if (k == "of")
            of = v;
        else if (k == "bs") {
            bs = parse_size_arg(v, "buffer size");
            if (!bs) throw UsageError("invalid number: '" + v + "'");
        } else if (k == "count")
            count = parse_size_arg(v, "count");
        else if (k == "skip")
            skip = parse_size_arg(v, "skip");
        else
            throw UsageError("unrecognized operand " + p);
    }
    if (in.empty()) throw UsageError("Must specify both input and output files");
    if (of.empty()) throw UsageError("Must specify both input and output files");
    keel::BlockNodePtr src = keel::open_image(in, a.get("f"), share_flag(a));
    uint64_t isize = keel::block_node_length(src.get());
    // As qemu-img dd counts: count= blocks from the start of the input, the skipped ones included.
    if (skip > isize / bs) throw Error(in + ": cannot skip to specified offset");
    uint64_t from = skip * bs;
    uint64_t stop = isize;
    if (count && *count <= isize / bs) stop = *count * bs;
    uint64_t len = stop > from ? stop - from : 0;
    std::string ofmt = a.get("O", "raw");
    keel::create_image(of, ofmt, len, {});
    keel::BlockNodePtr dst = keel::open_image(of, ofmt, KEEL_BLOCK_RDWR);
    std::vector<uint8_t> buf;
    for (uint64_t done = 0; done < len;) {
        uint64_t n = std::min<uint64_t>({bs, len - done, kChunk});
        buf.resize(n);
        keel::node_read(src.get(), from + done, buf.data(), n);
        if (!all_zero(buf.data(), n)) keel::node_write(dst.get(), done, buf.data(), n);
        done += n;
    }
    keel::node_flush(dst.get());
    return 0;
}

// --- snapshot ---

int cmd_snapshot(const std::vector<std::string> &argv)
{
    Args a(argv, "fcad", {}, {"force-share"});
    a.only({"f", "l", "c", "a", "d", "q", "U", "force-share"});
    int actions = a.has("l") + a.has("c") + a.has("a") + a.has("d");
    if (actions != 1) throw UsageError("Cannot mix '-l', '-a', '-c', '-d'");
    if (a.positional.size() != 1) throw UsageError("Expecting one image file name");
    std::string file = a.positional[0];
    bool list = a.has("l");
    uint32_t flags = KEEL_BLOCK_NO_BACKING | (list ? share_flag(a) : uint32_t{KEEL_BLOCK_RDWR});
    keel::BlockNodePtr node = keel::open_image(file, a.get("f"), flags);
    if (list) {
        auto snaps = keel::node_snapshot_list(node.get());
        if (!snaps.empty()) std::printf("Snapshot list:\n%s", snapshot_table(snaps).c_str());
        return 0;
    }
    try {
        if (a.has("c")) keel::node_snapshot_create(node.get(), a.get("c"));
        if (a.has("a")) keel::node_snapshot_apply(node.get(), a.get("a")); // by ID, else by name
        if (a.has("d")) {
            // qemu-img deletes by name only (an ID is not looked up), and says so when there is none.
            auto snaps = keel::node_snapshot_list(node.get());
            auto it =
                std::find_if(snaps.begin(), snaps.end(), [&](const auto &s) { return s.name == a.get("d"); });
            if (it == snaps.end()) throw Error("snapshot not found");
            keel::node_snapshot_delete(node.get(), it->id);
        }
    } catch (const Error &e) {
        const char *what = a.has("c") ? "create" : a.has("a") ? "apply" : "delete";
        std::string name = a.get("c") + a.get("a") + a.get("d");
        throw Error(std::string("Could not ") + what + " snapshot '" + name + "': " + e.what());
    }
    keel::node_flush(node.get());
    return 0;
}

// --- rebase ---

int cmd_rebase(const std::vector<std::string> &argv)
{
    Args a(argv, "fbFt", {}, {"force-share"});
    a.only({"f", "b", "F", "u", "q", "p", "t"});
    if (a.positional.size() != 1) throw UsageError("Expecting one image file name");
    if (!a.has("b")) throw UsageError("Must specify backing file (-b) or use '-b \"\"' to remove it");
    std::string file = a.positional[0], nb = a.get("b"), nbfmt = a.get("F");
    if (!nb.empty() && nbfmt.empty()) {
        // qemu-img probes the new backing file's format when -F is not given.
        nbfmt = keel::probe_format(full_backing_name(file, nb));
    }
    if (a.has("u")) {
        keel::BlockNodePtr node = keel::open_image(file, a.get("f"), KEEL_BLOCK_RDWR | KEEL_BLOCK_NO_BACKING);
        keel::node_change_backing(node.get(), nb, nb.empty() ? "" : nbfmt);
        keel::node_flush(node.get());
        return 0;
    }
    // Safe mode: every range the image leaves to its backing chain must read the same afterwards,
    // so ranges where the old and the new backing differ are copied into the image first.
    keel::BlockNodePtr node = keel::open_image(file, a.get("f"), KEEL_BLOCK_RDWR);
    keel::BlockNodePtr newb;
    if (!nb.empty()) newb = keel::open_image(full_backing_name(file, nb), nbfmt, keel::kBlockForceShare);
    uint64_t size = keel::block_node_length(node.get());
    uint64_t newsize = newb ? keel::block_node_length(newb.get()) : 0;
    Progress prog(a.has("p"));
    std::vector<uint8_t> oldbuf, newbuf;
    for (uint64_t off = 0; off < size;) {
        keel::BlockStatus st = keel::node_block_status(node.get(), off, std::min(kChunk, size - off));
        if (!(st.flags & KEEL_BLOCK_STATUS_ALLOCATED)) {
            uint64_t n = st.pnum;
            oldbuf.resize(n);
            newbuf.assign(n, 0);
            keel::node_read(node.get(), off, oldbuf.data(), n); // through the old chain
            if (newb && off < newsize) {
                uint64_t m = std::min(n, newsize - off);
                keel::node_read(newb.get(), off, newbuf.data(), m);
            }
            if (std::memcmp(oldbuf.data(), newbuf.data(), n) != 0)
                keel::node_write(node.get(), off, oldbuf.data(), n);
        }
        off += st.pnum;
        prog.show(100.0 * static_cast<double>(off) / static_cast<double>(size));
    }
    keel::node_change_backing(node.get(), nb, nb.empty() ? "" : nbfmt);
    keel::node_flush(node.get());
    prog.done();
    return 0;
}

// --- commit ---

int cmd_commit(const std::vector<std::string> &argv)
{
    Args a(argv, "ftb", {}, {});
    a.only({"f", "t", "q", "p", "d"});
    if (a.positional.size() != 1) throw UsageError("Expecting one image file name");
    std::string file = a.positional[0];
    // The top alone (its backing is opened writable below, which the chain's read lock would forbid).
    keel::BlockNodePtr top = keel::open_image(file, a.get("f"), KEEL_BLOCK_RDWR | KEEL_BLOCK_NO_BACKING);
    KeelBlockInfo info = keel::node_info(top.get());
    if (!info.backing_file || !*info.backing_file)
        throw Error("Image '" + file + "' does not have a backing file");
    std::string bname = full_backing_name(file, info.backing_file);
    keel::BlockNodePtr base =
        keel::open_image(bname, info.backing_fmt ? info.backing_fmt : "", KEEL_BLOCK_RDWR);
    uint64_t size = keel::block_node_length(top.get());
    if (keel::block_node_length(base.get()) < size) keel::node_truncate(base.get(), size);
    Progress prog(a.has("p"));
    std::vector<uint8_t> buf;
    for (uint64_t off = 0; off < size;) {
        keel::BlockStatus st = keel::node_block_status(top.get(), off, std::min(kChunk, size - off));
        if (st.flags & KEEL_BLOCK_STATUS_ALLOCATED) {
            if ((st.flags & KEEL_BLOCK_STATUS_ZERO) && !(st.flags & KEEL_BLOCK_STATUS_DATA)) {
                keel::node_write_zeroes(base.get(), off, st.pnum, 0);
            } else {
                buf.resize(st.pnum);
                keel::node_read(top.get(), off, buf.data(), st.pnum);
                keel::node_write(base.get(), off, buf.data(), st.pnum);
            }
        }
        off += st.pnum;
        prog.show(100.0 * static_cast<double>(off) / static_cast<double>(size));
    }
    // The data is safe in the base before the top forgets it.
    keel::node_flush(base.get());
    if (!a.has("d")) {
        keel::node_make_empty(top.get());
        keel::node_flush(top.get());
    }
    prog.done();
    out("Image committed.\n");
    return 0;
}

const char *kUsage =
    "keel-img version " KEEL_VERSION ", a qemu-img for keel's disk images\n"
    "usage: keel-img [standard options] command [command options]\n"
    "\n"
    "Command syntax:\n"
    "  check [-q] [-f fmt] [--output=ofmt] [-r [leaks | all]] [-U] filename\n"
    "  commit [-q] [-f fmt] [-d] [-p] filename\n"
    "  compare [-f fmt] [-F fmt] [-p] [-q] [-s] [-U] filename1 filename2\n"
    "  convert [-c] [-p] [-q] [-n] [-f fmt] [-t cache] [-O output_fmt] [-o options] [-U] filename "
    "output_filename\n"
    "  create [-q] [-f fmt] [-b backing_file -F backing_fmt] [-u] [-o options] filename [size]\n"
    "  dd [-f fmt] [-O output_fmt] [-U] [bs=block_size] [count=blocks] [skip=blocks] if=input of=output\n"
    "  info [-f fmt] [--output=ofmt] [--backing-chain] [-U] filename\n"
    "  map [-f fmt] [--output=ofmt] [--start-offset=offset] [--max-length=len] [-U] filename\n"
    "  snapshot [-q] [-l | -a snapshot | -c snapshot | -d snapshot] [-U] filename\n"
    "  rebase [-q] [-f fmt] [-p] [-u] -b backing_file [-F backing_fmt] filename\n"
    "  resize [-q] [-f fmt] [--shrink] filename [+ | -]size\n"
    "\n"
    "Exit status: 0 success, 1 error; check: 2 corruptions, 3 leaks, 63 no check for the format;\n"
    "compare: 1 images differ, 2 error. See docs/keel-img.md.\n";

} // namespace

int main(int argc, char **argv)
{
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) {
        std::fprintf(stderr, "keel-img: Not enough arguments\nTry 'keel-img --help' for more information\n");
        return kExitError;
    }
    if (args[0] == "-h" || args[0] == "--help") {
        std::fputs(kUsage, stdout);
        return 0;
    }
    if (args[0] == "-V" || args[0] == "--version") {
        std::printf("keel-img version %s\n", KEEL_VERSION);
        return 0;
    }
    std::string cmd = args[0];
    std::vector<std::string> rest(args.begin() + 1, args.end());
    quiet = std::find(rest.begin(), rest.end(), "-q") != rest.end();
    try {
        keel::set_block_warning_sink(
            [](const std::string &m) { std::fprintf(stderr, "WARNING: %s\n", m.c_str()); });
        keel::Registry &reg = keel::kernel().registry();
        reg.set_search_path(keel::Registry::default_search_path());
        reg.refresh(false);
        if (cmd == "info") return cmd_info(rest);
        if (cmd == "create") return cmd_create(rest);
        if (cmd == "check") return cmd_check(rest);
        if (cmd == "convert") return cmd_convert(rest);
        if (cmd == "resize") return cmd_resize(rest);
        if (cmd == "compare") return cmd_compare(rest);
        if (cmd == "map") return cmd_map(rest);
        if (cmd == "dd") return cmd_dd(rest);
        if (cmd == "snapshot") return cmd_snapshot(rest);
        if (cmd == "rebase") return cmd_rebase(rest);
        if (cmd == "commit") return cmd_commit(rest);
        std::fprintf(stderr, "keel-img: Command not found: %s\nTry 'keel-img --help' for more information\n",
                     cmd.c_str());
        return kExitError;
    } catch (const UsageError &e) {
        std::fprintf(stderr, "keel-img: %s\nTry 'keel-img --help' for more information\n", e.what());
        return kExitError;
    } catch (const Error &e) {
        std::fprintf(stderr, "keel-img: %s\n", e.what());
        return kExitError;
    }
}
