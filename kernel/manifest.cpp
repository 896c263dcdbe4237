// SPDX-License-Identifier: MIT
// Machine manifests: YAML files with includes, merged, validated against type schemas, into a MachineSpec.
#include "manifest.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "util.h"

namespace keel
{

namespace
{

namespace fs = std::filesystem;

constexpr int kSchemaVersion = 1;
constexpr unsigned kMaxCpus = 512;
// Bounds on what one manifest may expand to, so a hostile file (alias bombs,
// include fans) fails with a message instead of eating the machine.
constexpr size_t kMaxNodes = 200000;
constexpr size_t kMaxFiles = 256;
constexpr int kMaxDepth = 64;

const std::vector<std::string> kTopKeys = {"keel", "name", "description", "include",  "accel",  "board",
                                           "fdt",  "cpus", "memory",      "chardevs", "devices"};
const std::vector<std::string> kDeviceKeys = {"type",    "version",    "reg", "irq",
                                              "irq-out", "properties", "fdt"};
const std::vector<std::string> kFdtDeviceKeys = {"node", "compatible", "properties"};
const std::vector<std::string> kFdtRootKeys = {"model", "compatible", "properties"};
const std::vector<std::string> kCpuKeys = {"type", "count", "properties"};
const std::vector<std::string> kMemoryKeys = {"name", "base", "size", "kind"};
const std::vector<std::string> kMemoryKinds = {"ram", "rom"};
const std::vector<std::string> kRegKeys = {"base", "size"};
const std::vector<std::string> kChardevBackends = {"null", "stdio", "file", "socket", "pty"};
const std::vector<std::string> kChardevBoolOptions = {"server", "wait", "append", "signal", "mux"};

// ---- a YAML tree that remembers file:line:col for every node ----
//
// yaml-cpp's Mark has no file name, and merging includes mixes nodes from
// several files, so the manifest works on its own tree.

struct Node;
using NodeP = std::shared_ptr<const Node>;

struct Entry {
    std::string key;
    Location key_loc;
    NodeP value;
};

struct Node {
    enum class Kind { Null, Scalar, Seq, Map } kind = Kind::Null;
    std::string text;           // Scalar
    std::vector<NodeP> items;   // Seq
    std::vector<Entry> entries; // Map, in document order
    Location loc;

    bool is_map() const { return kind == Kind::Map; }
    bool is_seq() const { return kind == Kind::Seq; }
    bool is_scalar() const { return kind == Kind::Scalar; }
    const Entry *find(std::string_view k) const
    {
        for (const auto &e : entries)
            if (e.key == k) return &e;
        return nullptr;
    }
    const Node *get(std::string_view k) const
    {
        const Entry *e = find(k);
        return e ? e->value.get() : nullptr;
    }
};

const char *kind_name(const Node &n)
{
    switch (n.kind) {
    case Node::Kind::Null:
        return "empty";
    case Node::Kind::Scalar:
        return "a single value";
    case Node::Kind::Seq:
        return "a list";
    case Node::Kind::Map:
        return "a mapping";
    }
    return "?";
}

// did_you_mean, plus a unique completion of a cut-short name
// ("clock-freq" -> "clock-frequency"), which edit distance alone misses.
std::string suggest(std::string_view word, const std::vector<std::string> &candidates)
{
    std::string hint = did_you_mean(word, candidates);
    if (!hint.empty() || word.size() < 3) return hint;
    std::string found;
    for (const auto &c : candidates) {
        if (c.size() <= word.size() || c.compare(0, word.size(), word) != 0) continue;
        if (!found.empty()) return {};
        found = c;
    }
    return found.empty() ? std::string() : " (did you mean '" + found + "'?)";
}

bool valid_name(std::string_view s)
{
    if (s.empty() || !(s[0] >= 'a' && s[0] <= 'z')) return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
    return true;
}

const char *kNameRule = "names use a-z, 0-9, '-' and '_', and start with a letter";

std::string span(uint64_t base, uint64_t size)
{
    return format_hex(base) + "-" + format_hex(base + (size - 1));
}

Location mark_loc(const std::string &file, const YAML::Mark &m, const Location &fallback)
{
    if (m.line < 0 || m.column < 0) return fallback;
    return Location{file, m.line + 1, m.column + 1};
}

// ---- reading files ----

class Reader
{
  public:
    std::string file;
    size_t *budget;

    // `fallback`: where the node is if yaml-cpp has no good mark for it (an
    // empty mapping value is marked on the next line, so it gets its key's).
    NodeP convert(const YAML::Node &y, const Location &fallback, int depth, bool map_value = false)
    {
        if (depth > kMaxDepth) throw Error(fallback, strprintf("nesting deeper than %d levels", kMaxDepth));
        if (*budget == 0)
            throw Error(fallback, "manifest too large (more than 200000 nodes after expanding aliases)");
        --*budget;
        auto n = std::make_shared<Node>();
        n->loc = mark_loc(file, y.Mark(), fallback);
        switch (y.Type()) {
        case YAML::NodeType::Undefined:
        case YAML::NodeType::Null:
            n->kind = Node::Kind::Null;
            if (map_value || !n->loc.valid()) n->loc = fallback;
            break;
        case YAML::NodeType::Scalar:
            n->kind = Node::Kind::Scalar;
            n->text = y.Scalar();
            break;
        case YAML::NodeType::Sequence:
            n->kind = Node::Kind::Seq;
            for (const auto &item : y)
                n->items.push_back(convert(item, n->loc, depth + 1));
            break;
        case YAML::NodeType::Map:
            n->kind = Node::Kind::Map;
            for (auto it = y.begin(); it != y.end(); ++it) {
                Location kl = mark_loc(file, it->first.Mark(), n->loc);
                if (!it->first.IsScalar())
                    throw Error(kl, it->first.IsNull() ? "empty mapping key"
                                                       : "mapping keys must be plain names");
                std::string key = it->first.Scalar();
                for (const auto &e : n->entries)
                    if (e.key == key)
                        throw Error(kl, "duplicate key '" + key + "' (first at " + e.key_loc.str() + ")");
                n->entries.push_back({key, kl, convert(it->second, kl, depth + 1, true)});
            }
            break;
        }
        return n;
    }
};

std::string read_text(const std::string &path, std::string &error)
{
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
        error = "is a directory";
        return {};
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        error = std::strerror(errno ? errno : ENOENT);
        return {};
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) {
        error = std::strerror(errno ? errno : EIO);
        return {};
    }
    return ss.str();
}

// ---- merging ----

NodeP merge(const NodeP &base, const NodeP &over, std::string_view path);

// A mapping with null values dropped: "key: ~" means "not set" (and, over an
// include, "remove what the include set").
NodeP normalize(const NodeP &n, std::string_view path)
{
    if (n->is_map() || n->is_seq()) return merge(nullptr, n, path);
    return n;
}

NodeP merge_memory(const Node &base, const Node &over)
{
    auto out = std::make_shared<Node>(base);
    std::vector<bool> matched(base.items.size(), false);
    auto name_of = [](const Node &e) -> const Node * {
        const Node *nm = e.is_map() ? e.get("name") : nullptr;
        return nm && nm->is_scalar() ? nm : nullptr;
    };
    for (const auto &o : over.items) {
        const Node *on = name_of(*o);
        bool done = false;
        for (size_t i = 0; on && i < base.items.size() && !done; ++i) {
            const Node *bn = name_of(*base.items[i]);
            if (matched[i] || !bn || bn->text != on->text) continue;
            matched[i] = true;
            out->items[i] = merge(base.items[i], o, "memory[]");
            done = true;
        }
        if (!done) out->items.push_back(normalize(o, "memory[]"));
    }
    return out;
}

NodeP merge(const NodeP &base, const NodeP &over, std::string_view path)
{
    if (over->is_seq()) {
        if (path == "memory" && base && base->is_seq()) return merge_memory(*base, *over);
        auto out = std::make_shared<Node>(*over);
        for (auto &item : out->items)
            item = normalize(item, std::string(path) + "[]");
        return out;
    }
    if (!over->is_map()) return over;
    std::shared_ptr<Node> out;
    if (base && base->is_map()) {
        out = std::make_shared<Node>(*base);
    } else {
        out = std::make_shared<Node>();
        out->kind = Node::Kind::Map;
        out->loc = over->loc;
    }
    for (const auto &e : over->entries) {
        auto it = std::find_if(out->entries.begin(), out->entries.end(),
                               [&](const Entry &x) { return x.key == e.key; });
        if (e.value->kind == Node::Kind::Null) {
            if (it != out->entries.end()) out->entries.erase(it);
            continue;
        }
        std::string sub = path.empty() ? e.key : std::string(path) + "." + e.key;
        if (it != out->entries.end())
            it->value = merge(it->value, e.value, sub); // keeps the first declaration's key and position
        else
            out->entries.push_back({e.key, e.key_loc, normalize(e.value, sub)});
    }
    return out;
}

// ---- includes ----

class Loader
{
  public:
    size_t budget = kMaxNodes;
    size_t files = 0;
    struct Frame {
        std::string canon, display;
    };
    std::vector<Frame> stack;

    // The file's tree with its includes merged under it. `from` is the
    // include entry naming it (invalid for the top file).
    NodeP load(const std::string &path, const Location &from)
    {
        bool top = !from.valid();
        if (++files > kMaxFiles)
            throw Error(from, strprintf("more than %zu manifest files included", kMaxFiles));
        std::string err;
        std::string text = read_text(path, err);
        if (!err.empty()) {
            if (top) throw Error("cannot read manifest '" + path + "': " + err);
            throw Error(from, "cannot read included file '" + path + "': " + err);
        }
        YAML::Node y;
        try {
            y = YAML::Load(text);
        } catch (const YAML::ParserException &e) {
            // yaml-cpp reports its nesting limit (DeepRecursion) as "bad file".
            throw Error(mark_loc(path, e.mark, Location{path, 1, 1}),
                        "YAML syntax error: " +
                            (e.msg == "bad file" ? std::string("nesting too deep") : e.msg));
        } catch (const YAML::Exception &e) {
            throw Error(mark_loc(path, e.mark, Location{path, 1, 1}), "invalid YAML: " + e.msg);
        }
        Reader r{path, &budget};
        Location start{path, 1, 1};
        NodeP root = r.convert(y, start, 0);
        if (root->kind == Node::Kind::Null) {
            if (top) throw Error(start, "the manifest is empty; it needs at least 'keel: 1'");
            return root;
        }
        if (!root->is_map())
            throw Error(root->loc, "a manifest must be a mapping (keel: 1, name: ..., devices: ...), not " +
                                       std::string(kind_name(*root)));

        // The version comes first: a newer file may use keys this keel does not know.
        const Entry *ver = root->find("keel");
        if (!ver) {
            if (top) throw Error(start, "missing 'keel:' schema version (add 'keel: 1' at the top)");
        } else {
            const Node &v = *ver->value;
            auto n = v.is_scalar() ? parse_uint(v.text) : std::nullopt;
            if (!v.is_scalar())
                throw Error(v.loc, std::string("'keel' must be the schema version number, not ") +
                                       kind_name(v) + " (this keel reads version 1)");
            if (!n)
                throw Error(v.loc,
                            "invalid manifest schema version '" + v.text + "' (this keel reads version 1)");
            if (*n != kSchemaVersion)
                throw Error(v.loc,
                            strprintf("unsupported manifest schema version %llu (this keel reads version %d)",
                                      static_cast<unsigned long long>(*n), kSchemaVersion));
        }
        for (const auto &e : root->entries)
            if (std::find(kTopKeys.begin(), kTopKeys.end(), e.key) == kTopKeys.end())
                throw Error(e.key_loc,
                            "unknown key '" + e.key + "'" +
                                (suggest(e.key, kTopKeys).empty() ? " (valid: " + join(kTopKeys, ", ") + ")"
                                                                  : suggest(e.key, kTopKeys)));

        NodeP acc;
        if (const Entry *inc = root->find("include")) {
            std::vector<const Node *> list;
            const Node &iv = *inc->value;
            if (iv.is_scalar())
                list.push_back(&iv);
            else if (iv.is_seq())
                for (const auto &i : iv.items)
                    list.push_back(i.get());
            else if (iv.kind != Node::Kind::Null)
                throw Error(iv.loc, "'include' must be a file name or a list of file names");
            std::error_code ec;
            fs::path self = fs::weakly_canonical(fs::absolute(path, ec), ec);
            stack.push_back({self.string(), path});
            for (const Node *i : list) {
                if (!i->is_scalar() || i->text.empty())
                    throw Error(i->loc, "an include entry must be a file name");
                fs::path p(i->text);
                std::string shown = p.is_absolute()
                                        ? p.lexically_normal().string()
                                        : (fs::path(path).parent_path() / p).lexically_normal().string();
                std::string canon = fs::weakly_canonical(fs::absolute(shown, ec), ec).string();
                for (size_t k = 0; k < stack.size(); ++k) {
                    if (stack[k].canon != canon) continue;
                    std::vector<std::string> chain;
                    for (size_t j = k; j < stack.size(); ++j)
                        chain.push_back(stack[j].display);
                    chain.push_back(shown);
                    throw Error(i->loc, "include cycle: " + join(chain, " -> "));
                }
                NodeP sub = load(shown, i->loc);
                if (sub->kind != Node::Kind::Null) acc = acc ? merge(acc, sub, "") : sub;
            }
            stack.pop_back();
        }

        auto own = std::make_shared<Node>(*root);
        std::erase_if(own->entries, [](const Entry &e) { return e.key == "include" || e.key == "keel"; });
        return merge(acc, own, "");
    }
};

// ---- validation into a MachineSpec ----

struct DeviceRef {
    std::string type; // as written, maybe empty
    Location loc;
};

class Validator
{
  public:
    Validator(const SchemaProvider &types, const ManifestOverrides &ov) : types_(types), ov_(ov) {}

    const SchemaProvider &types_;
    const ManifestOverrides &ov_;
    std::vector<std::string> device_names_;
    std::map<std::string, DeviceRef> devices_; // every device, for links and IRQ targets
    std::vector<std::string> chardev_ids_;
    const std::vector<MemorySpec> *memory_ = nullptr;
    unsigned cpu_count_ = 0; // after -smp: what `cpu*.` expands to

    static const Node &need_map(const Node &n, const std::string &what)
    {
        if (!n.is_map()) throw Error(n.loc, what + " must be a mapping, not " + kind_name(n));
        return n;
    }
    static const std::string &need_scalar(const Node &n, const std::string &what)
    {
        if (!n.is_scalar()) throw Error(n.loc, what + " must be a single value, not " + kind_name(n));
        return n.text;
    }
    static void check_keys(const Node &map, const std::vector<std::string> &allowed, const std::string &where)
    {
        for (const auto &e : map.entries)
            if (std::find(allowed.begin(), allowed.end(), e.key) == allowed.end()) {
                std::string hint = suggest(e.key, allowed);
                throw Error(e.key_loc, "unknown key '" + e.key + "' in " + where +
                                           (hint.empty() ? " (valid: " + join(allowed, ", ") + ")" : hint));
            }
    }

    const TypeSchema &find_type(const Node &n, const std::string &what)
    {
        const std::string &t = need_scalar(n, what);
        const TypeSchema *ts = types_.find_type(t);
        if (!ts) {
            std::string hint = suggest(t, types_.type_names());
            throw Error(n.loc, "unknown device type '" + t + "'" +
                                   (hint.empty() ? " (keel -device help lists the known types)" : hint));
        }
        return *ts;
    }

    // `subject` reads "device 'uart0' (ns16550a)"; `owner` reads "device 'uart0'".
    std::vector<PropSetting> props(const Node *pn, const TypeSchema &t, const std::string &subject,
                                   const std::string &owner, const Location &missing_loc)
    {
        std::vector<PropSetting> out;
        if (pn) {
            need_map(*pn, "'properties' of " + owner);
            for (const auto &e : pn->entries) {
                const PropSchema *p = t.find_prop(e.key);
                if (!p)
                    throw Error(e.key_loc, subject + " has no property '" + e.key + "'" +
                                               suggest(e.key, t.prop_names()));
                const Node &v = *e.value;
                if (!v.is_scalar())
                    throw Error(v.loc, "property '" + e.key + "' of " + owner +
                                           " must be a single value, not " + kind_name(v));
                PropSetting s;
                s.name = e.key;
                s.text = v.text;
                s.loc = v.loc;
                std::string err;
                if (!parse_prop_value(*p, v.text, s.value, err)) throw Error(v.loc, err);
                check_reference(*p, v.text, owner, v.loc);
                out.push_back(std::move(s));
            }
        }
        for (const auto &p : t.props)
            if (p.required() &&
                std::none_of(out.begin(), out.end(), [&](auto &s) { return s.name == p.name; }))
                throw Error(missing_loc, subject + " needs property '" + p.name + "'");
        return out;
    }

    void check_reference(const PropSchema &p, const std::string &v, const std::string &owner,
                         const Location &loc)
    {
        if (p.type == KEEL_PROP_LINK) {
            auto it = devices_.find(v);
            if (it == devices_.end())
                throw Error(loc, "property '" + p.name + "' of " + owner + " links to '" + v +
                                     "', which is not a device" + suggest(v, device_names_));
            if (!p.link_type.empty() && it->second.type != p.link_type)
                throw Error(loc, "property '" + p.name + "' of " + owner + " must link to a " + p.link_type +
                                     ", but '" + v + "' is a " +
                                     (it->second.type.empty() ? "device without a type" : it->second.type));
        } else if (p.type == KEEL_PROP_CHARDEV) {
            if (std::find(chardev_ids_.begin(), chardev_ids_.end(), v) == chardev_ids_.end()) {
                std::string hint = suggest(v, chardev_ids_);
                throw Error(loc, "property '" + p.name + "' of " + owner + " names no chardev '" + v + "'" +
                                     (hint.empty() ? " (chardevs: " + join(chardev_ids_, ", ") + ")" : hint));
            }
        }
    }

    uint64_t address(const Node &n, const std::string &what)
    {
        const std::string &t = need_scalar(n, what);
        auto v = parse_uint(t);
        if (!v)
            throw Error(n.loc,
                        "invalid address '" + t + "' in " + what + " (expected a number like 0x10000000)");
        return *v;
    }

    uint64_t size(const Node &n, const std::string &what)
    {
        const std::string &t = need_scalar(n, what);
        auto v = parse_size(t);
        if (!v)
            throw Error(n.loc, "invalid size '" + t + "' in " + what +
                                   " (a number with an optional K, M, G or T suffix, like 128M)");
        if (*v == 0) throw Error(n.loc, what + " must not be zero");
        return *v;
    }

    RegSpec reg_entry(const Node &n, const std::string &owner)
    {
        std::string what = "'reg' of " + owner;
        RegSpec r;
        r.loc = n.loc;
        if (n.is_scalar() && !n.text.empty() && n.text[0] == '@') {
            // The address of a symbol of the loaded guest image, resolved when the machine is built.
            r.symbol = n.text.substr(1);
            bool ok = !r.symbol.empty() && !std::isdigit(static_cast<unsigned char>(r.symbol[0]));
            for (char c : r.symbol)
                ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '$');
            if (!ok)
                throw Error(n.loc, "invalid symbol '" + n.text + "' in " + what +
                                       " (expected @NAME, NAME an ELF symbol such as tohost)");
            return r;
        }
        if (n.is_map()) {
            check_keys(n, kRegKeys, what);
            const Node *b = n.get("base");
            if (!b) throw Error(n.loc, what + " needs a 'base' address");
            r.base = address(*b, what);
            if (const Node *s = n.get("size")) {
                r.size = size(*s, "the size in " + what);
                if (r.base > UINT64_MAX - (*r.size - 1))
                    throw Error(s->loc, what + ": the window goes past the end of the address space");
            }
            return r;
        }
        if (!n.is_scalar())
            throw Error(n.loc, what + " must be an address, {base: A, size: S}, or a list of those");
        r.base = address(n, what);
        return r;
    }

    // `cpu*.GROUP` stands for that input of every CPU: a run of such
    // targets in a list repeats per CPU, so [cpu*.mei, cpu*.sei] wires
    // cpu0.mei, cpu0.sei, cpu1.mei, cpu1.sei, ... whatever -smp says.
    static bool all_cpus(const Node &n) { return n.is_scalar() && n.text.rfind("cpu*.", 0) == 0; }

    std::vector<IrqRef> irq_list(const Node &n, const std::string &what)
    {
        std::vector<const Node *> items;
        if (n.is_seq())
            for (const auto &i : n.items)
                items.push_back(i.get());
        else
            items.push_back(&n);
        std::vector<IrqRef> out;
        for (size_t i = 0; i < items.size();) {
            if (!all_cpus(*items[i])) {
                out.push_back(irq_ref(*items[i++], what));
                continue;
            }
            size_t end = i;
            while (end < items.size() && all_cpus(*items[end]))
                ++end;
            if (cpu_count_ == 0)
                throw Error(items[i]->loc, "irq target '" + items[i]->text + "': the machine has no CPUs");
            for (unsigned c = 0; c < cpu_count_; ++c)
                for (size_t j = i; j < end; ++j) {
                    Node one = *items[j];
                    one.text = "cpu" + std::to_string(c) + one.text.substr(4);
                    out.push_back(irq_ref(one, what));
                }
            i = end;
        }
        return out;
    }

    // A device's or the root's `fdt:` section.
    FdtNodeSpec fdt_node(const Node &n, const std::string &owner, bool root)
    {
        FdtNodeSpec f;
        f.loc = n.loc;
        if (!root && n.is_scalar() && (n.text == "false" || n.text == "off")) {
            f.disabled = true;
            return f;
        }
        need_map(n, "'fdt' of " + owner);
        check_keys(n, root ? kFdtRootKeys : kFdtDeviceKeys, "'fdt' of " + owner);
        if (const Node *nn = n.get("node")) {
            f.node_name = need_scalar(*nn, "'fdt: node' of " + owner);
            if (f.node_name.empty() || f.node_name.find_first_of("@/ ") != std::string::npos)
                throw Error(nn->loc, "invalid node name '" + f.node_name +
                                         "' (no '@', '/' or spaces: keel adds "
                                         "@ADDRESS)");
        }
        if (const Node *m = n.get("model")) {
            FdtPropSpec p;
            p.kind = FdtPropSpec::Kind::Strings;
            p.name = "model";
            p.strings.push_back(need_scalar(*m, "'fdt: model' of " + owner));
            p.loc = m->loc;
            f.props.push_back(std::move(p));
        }
        if (const Node *c = n.get("compatible")) {
            if (c->is_seq())
                for (const auto &i : c->items)
                    f.compatible.push_back(need_scalar(*i, "'fdt: compatible' of " + owner));
            else
                f.compatible.push_back(need_scalar(*c, "'fdt: compatible' of " + owner));
            if (f.compatible.empty())
                throw Error(c->loc, "'fdt: compatible' of " + owner + " is an empty list");
        }
        if (const Node *pn = n.get("properties")) {
            need_map(*pn, "'fdt: properties' of " + owner);
            for (const auto &e : pn->entries)
                f.props.push_back(fdt_prop(e, owner));
        }
        return f;
    }

    // A property value: a number (one cell), a list of numbers (cells), a
    // string, a list of strings, `true` (an empty property, a DT boolean) or
    // `false` (remove the property keel would write).
    static FdtPropSpec fdt_prop(const Entry &e, const std::string &owner)
    {
        FdtPropSpec p;
        p.name = e.key;
        p.loc = e.key_loc;
        if (e.key.empty() || e.key.size() > 31 || e.key.find_first_of("/@ ") != std::string::npos)
            throw Error(e.key_loc, "invalid device-tree property name '" + e.key + "'");
        const Node &v = *e.value;
        auto cell = [&](const Node &x) -> std::optional<uint32_t> {
            auto u = parse_uint(x.text);
            if (!u) return std::nullopt;
            if (*u > UINT32_MAX)
                throw Error(x.loc, "value " + x.text + " of device-tree property '" + e.key +
                                       "' does not fit a 32-bit cell; write it as a list [HIGH, LOW]");
            return static_cast<uint32_t>(*u);
        };
        std::string what = "device-tree property '" + e.key + "' of " + owner;
        if (v.kind == Node::Kind::Null || (v.is_scalar() && v.text == "true")) {
            p.kind = FdtPropSpec::Kind::Empty;
        } else if (v.is_scalar() && v.text == "false") {
            p.kind = FdtPropSpec::Kind::Delete;
        } else if (v.is_scalar()) {
            if (auto c = cell(v)) {
                p.kind = FdtPropSpec::Kind::Cells;
                p.cells.push_back(*c);
            } else {
                p.kind = FdtPropSpec::Kind::Strings;
                p.strings.push_back(v.text);
            }
        } else if (v.is_seq() && !v.items.empty()) {
            bool numbers = v.items[0]->is_scalar() && parse_uint(v.items[0]->text).has_value();
            p.kind = numbers ? FdtPropSpec::Kind::Cells : FdtPropSpec::Kind::Strings;
            for (const auto &i : v.items) {
                const std::string &t = need_scalar(*i, what);
                if (numbers) {
                    auto c = cell(*i);
                    if (!c) throw Error(i->loc, what + " mixes numbers and strings ('" + t + "')");
                    p.cells.push_back(*c);
                } else {
                    p.strings.push_back(t);
                }
            }
        } else {
            throw Error(v.loc, what + " must be a number, a string, a list of either, true or false");
        }
        return p;
    }

    IrqRef irq_ref(const Node &n, const std::string &what)
    {
        if (!n.is_scalar())
            throw Error(n.loc, what + " must be an interrupt target like 'plic.10' or a list of them, not " +
                                   kind_name(n));
        const std::string &t = n.text;
        auto bad = [&]() {
            return Error(n.loc, "invalid irq target '" + t +
                                    "' (expected DEVICE.N, DEVICE.GROUP or DEVICE.GROUP[N])");
        };
        IrqRef r;
        r.loc = n.loc;
        auto dot = t.find('.');
        if (dot == std::string::npos) throw bad();
        r.device = t.substr(0, dot);
        std::string rest = t.substr(dot + 1);
        if (!valid_name(r.device)) throw bad();
        auto index = [&](const std::string &s) -> unsigned {
            if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
                throw bad();
            return static_cast<unsigned>(std::stoul(s));
        };
        if (!rest.empty() && rest[0] >= '0' && rest[0] <= '9') {
            r.index = index(rest);
        } else {
            auto br = rest.find('[');
            r.group = rest.substr(0, br);
            if (!valid_name(r.group)) throw bad();
            if (br != std::string::npos) {
                if (rest.back() != ']') throw bad();
                r.index = index(rest.substr(br + 1, rest.size() - br - 2));
            }
        }
        if (!devices_.count(r.device))
            throw Error(n.loc, "irq target '" + t + "' names no device" + suggest(r.device, device_names_));
        return r;
    }

    DeviceSpec device(const std::string &name, const Location &key_loc, const Node &dn)
    {
        std::string owner = "device '" + name + "'";
        if (!valid_name(name)) throw Error(key_loc, "invalid device name '" + name + "' (" + kNameRule + ")");
        if (memory_)
            for (const auto &m : *memory_)
                if (m.name == name)
                    throw Error(key_loc, "device name '" + name + "' is already used by memory '" + name +
                                             "' (at " + m.loc.str() + ")");
        need_map(dn, owner);
        const Node *tn = dn.get("type");
        for (const auto &e : dn.entries) {
            if (std::find(kDeviceKeys.begin(), kDeviceKeys.end(), e.key) != kDeviceKeys.end()) continue;
            // A property written one level too high is the likely mistake.
            const TypeSchema *ts = tn && tn->is_scalar() ? types_.find_type(tn->text) : nullptr;
            if (ts && ts->find_prop(e.key))
                throw Error(e.key_loc, "unknown key '" + e.key + "' in " + owner + "; '" + e.key +
                                           "' is a property of " + ts->name +
                                           ", so it goes under 'properties:'");
            check_keys(dn, kDeviceKeys, owner);
        }
        if (!tn) throw Error(key_loc, owner + " has no 'type'");
        DeviceSpec d;
        d.name = name;
        d.loc = key_loc;
        d.type_loc = tn->loc;
        const TypeSchema &t = find_type(*tn, "'type' of " + owner);
        d.type = t.name;
        if (const Node *vn = dn.get("version")) {
            d.version_req = need_scalar(*vn, "'version' of " + owner);
            bool ok;
            try {
                ok = semver_valid(t.module_version) && semver_satisfies(t.module_version, d.version_req);
            } catch (const Error &e) {
                throw Error(vn->loc, e.what());
            }
            if (!ok)
                throw Error(vn->loc, "type '" + t.name + "' is provided by module " + t.module_name + " " +
                                         t.module_version + ", which does not satisfy '" + d.version_req +
                                         "'");
        }
        std::string subject = owner + " (" + t.name + ")";
        d.props = props(dn.get("properties"), t, subject, owner, key_loc);
        if (const Node *rn = dn.get("reg")) {
            if (rn->is_seq()) {
                if (rn->items.empty()) throw Error(rn->loc, "'reg' of " + owner + " is an empty list");
                for (const auto &i : rn->items)
                    d.reg.push_back(reg_entry(*i, owner));
            } else {
                d.reg.push_back(reg_entry(*rn, owner));
            }
        }
        if (const Node *in = dn.get("irq")) d.irq = irq_list(*in, "'irq' of " + owner);
        if (const Node *fn = dn.get("fdt")) d.fdt = fdt_node(*fn, owner, false);
        if (const Node *on = dn.get("irq-out")) {
            need_map(*on, "'irq-out' of " + owner);
            for (const auto &e : on->entries) {
                if (!valid_name(e.key))
                    throw Error(e.key_loc,
                                "invalid interrupt output group '" + e.key + "' (" + kNameRule + ")");
                d.irq_out[e.key] = irq_list(*e.value, "'irq-out: " + e.key + "' of " + owner);
            }
        }
        return d;
    }

    void check_memory_region(const MemorySpec &m, const std::vector<MemorySpec> &others, const Location &loc)
    {
        if (m.base > UINT64_MAX - (m.size - 1))
            throw Error(loc, "memory '" + m.name + "' at " + format_hex(m.base) + " with size " +
                                 format_size(m.size) + " goes past the end of the address space");
        for (const auto &o : others) {
            if (&o == &m || o.name == m.name) continue;
            if (m.base <= o.base + (o.size - 1) && o.base <= m.base + (m.size - 1))
                throw Error(loc, "memory '" + m.name + "' " + span(m.base, m.size) + " overlaps memory '" +
                                     o.name + "' " + span(o.base, o.size) + " (at " + o.loc.str() + ")");
        }
    }

    std::vector<MemorySpec> memory(const Node &n)
    {
        if (!n.is_seq())
            throw Error(
                n.loc,
                "'memory' must be a list of regions ({name: dram, base: 0x80000000, size: 128M}), not " +
                    std::string(kind_name(n)));
        std::vector<MemorySpec> out;
        for (const auto &ip : n.items) {
            const Node &e = *ip;
            need_map(e, "a memory region");
            check_keys(e, kMemoryKeys, "a memory region");
            MemorySpec m;
            m.loc = e.loc;
            const Node *nm = e.get("name");
            if (!nm) throw Error(e.loc, "a memory region needs a 'name'");
            m.name = need_scalar(*nm, "the name of a memory region");
            if (!valid_name(m.name))
                throw Error(nm->loc, "invalid memory name '" + m.name + "' (" + kNameRule + ")");
            for (const auto &o : out)
                if (o.name == m.name)
                    throw Error(nm->loc,
                                "duplicate memory region '" + m.name + "' (first at " + o.loc.str() + ")");
            std::string what = "memory '" + m.name + "'";
            if (const Node *k = e.get("kind")) {
                m.kind = need_scalar(*k, "the kind of " + what);
                if (std::find(kMemoryKinds.begin(), kMemoryKinds.end(), m.kind) == kMemoryKinds.end()) {
                    std::string hint = suggest(m.kind, kMemoryKinds);
                    throw Error(k->loc, "unknown memory kind '" + m.kind + "'" +
                                            (hint.empty() ? " (expected ram or rom)" : hint));
                }
            }
            const Node *b = e.get("base");
            if (!b) throw Error(e.loc, what + " needs a 'base' address");
            m.base = address(*b, "the base of " + what);
            const Node *s = e.get("size");
            if (!s) throw Error(e.loc, what + " needs a 'size'");
            m.size = size(*s, "the size of " + what);
            out.push_back(std::move(m));
            check_memory_region(out.back(), out, out.back().loc);
        }
        return out;
    }

    std::vector<ChardevSpec> chardevs(const Node &n)
    {
        need_map(n, "'chardevs'");
        std::vector<ChardevSpec> out;
        for (const auto &e : n.entries) {
            ChardevSpec c;
            c.id = e.key;
            c.loc = e.key_loc;
            std::string owner = "chardev '" + e.key + "'";
            const Node &v = need_map(*e.value, owner);
            const Node *b = v.get("backend");
            if (!b)
                throw Error(e.key_loc, owner + " needs a 'backend' (" + join(kChardevBackends, ", ") + ")");
            c.backend = need_scalar(*b, "the backend of " + owner);
            if (std::find(kChardevBackends.begin(), kChardevBackends.end(), c.backend) ==
                kChardevBackends.end()) {
                std::string hint = suggest(c.backend, kChardevBackends);
                throw Error(b->loc,
                            "unknown chardev backend '" + c.backend + "'" +
                                (hint.empty() ? " (valid: " + join(kChardevBackends, ", ") + ")" : hint));
            }
            for (const auto &o : v.entries) {
                if (o.key == "backend") continue;
                std::string val = need_scalar(*o.value, "option '" + o.key + "' of " + owner);
                // QEMU spells booleans on/off; YAML users write true/false.
                if (std::find(kChardevBoolOptions.begin(), kChardevBoolOptions.end(), o.key) !=
                    kChardevBoolOptions.end()) {
                    auto bv = parse_bool(val);
                    if (!bv)
                        throw Error(o.value->loc,
                                    "invalid value '" + val + "' for '" + o.key + "' (use on or off)");
                    val = *bv ? "on" : "off";
                }
                c.options[o.key] = val;
            }
            out.push_back(std::move(c));
        }
        return out;
    }

    CpuSpec cpus(const Node &n, const Location &key_loc)
    {
        need_map(n, "'cpus'");
        check_keys(n, kCpuKeys, "'cpus'");
        CpuSpec c;
        c.loc = key_loc;
        const Node *tn = n.get("type");
        if (!tn) throw Error(key_loc, "'cpus' needs a 'type' (the CPU device type, like riscv64)");
        const TypeSchema &t = find_type(*tn, "the type of 'cpus'");
        c.type = t.name;
        c.type_loc = tn->loc;
        if (const Node *cn = n.get("count")) {
            const std::string &s = need_scalar(*cn, "'count' of 'cpus'");
            auto v = parse_uint(s);
            if (!v || *v < 1 || *v > kMaxCpus)
                throw Error(cn->loc, strprintf("invalid CPU count '%s' (1 to %u)", s.c_str(), kMaxCpus));
            c.count = static_cast<unsigned>(*v);
        }
        c.props = props(n.get("properties"), t, "cpu type '" + t.name + "'", "'cpus'", key_loc);
        return c;
    }
};

// -device TYPE,id=NAME,reg=ADDR,irq=TARGET,prop=value: QEMU's option syntax,
// ",," standing for a literal comma.
struct CmdDevice {
    std::string id;
    NodeP node;
    Location loc;
};

CmdDevice parse_device_option(const std::string &arg)
{
    CmdDevice d;
    d.loc = Location{"-device " + arg, 0, 0};
    auto fields = split_option(arg);
    auto scalar = [&](const std::string &t) {
        auto n = std::make_shared<Node>();
        n->kind = Node::Kind::Scalar;
        n->text = t;
        n->loc = d.loc;
        return n;
    };
    auto map = [&]() {
        auto n = std::make_shared<Node>();
        n->kind = Node::Kind::Map;
        n->loc = d.loc;
        return n;
    };
    if (fields[0].empty() || fields[0].find('=') != std::string::npos)
        throw Error(d.loc, "expected the device type first (-device TYPE,id=NAME,...)");
    auto dev = map();
    auto props = map();
    auto regs = std::make_shared<Node>();
    regs->kind = Node::Kind::Seq;
    regs->loc = d.loc;
    auto irqs = std::make_shared<Node>(*regs);
    dev->entries.push_back({"type", d.loc, scalar(fields[0])});
    bool have_id = false;
    for (size_t i = 1; i < fields.size(); ++i) {
        const std::string &f = fields[i];
        auto eq = f.find('=');
        // A bare word is a switch turned on, as in QEMU.
        std::string k = f.substr(0, eq), v = eq == std::string::npos ? "on" : f.substr(eq + 1);
        if (k.empty()) throw Error(d.loc, "option '" + f + "' has no name");
        if (k == "id") {
            if (have_id) throw Error(d.loc, "option 'id' given twice");
            d.id = v;
            have_id = true;
        } else if (k == "reg") {
            regs->items.push_back(scalar(v));
        } else if (k == "irq") {
            irqs->items.push_back(scalar(v));
        } else if (k == "version") {
            if (dev->find("version")) throw Error(d.loc, "option 'version' given twice");
            dev->entries.push_back({"version", d.loc, scalar(v)});
        } else {
            if (props->find(k)) throw Error(d.loc, "property '" + k + "' given twice");
            props->entries.push_back({k, d.loc, scalar(v)});
        }
    }
    if (!have_id || d.id.empty()) throw Error(d.loc, "needs an id (-device " + fields[0] + ",id=NAME,...)");
    if (!regs->items.empty()) dev->entries.push_back({"reg", d.loc, regs});
    if (!irqs->items.empty()) dev->entries.push_back({"irq", d.loc, irqs});
    if (!props->entries.empty()) dev->entries.push_back({"properties", d.loc, props});
    d.node = dev;
    return d;
}

// QEMU's -m: a bare number is MiB.
uint64_t parse_memory_option(const std::string &s, const Location &loc)
{
    std::optional<uint64_t> v;
    if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos) {
        v = parse_uint(s);
        if (v && *v > (UINT64_MAX >> 20)) v.reset();
        if (v) *v <<= 20;
    } else {
        v = parse_size(s);
    }
    if (!v) throw Error(loc, "invalid size '" + s + "'");
    if (*v == 0) throw Error(loc, "memory size must not be zero");
    return *v;
}

bool looks_like_path(const std::string &name)
{
    auto ends = [&](std::string_view suf) {
        return name.size() >= suf.size() && name.compare(name.size() - suf.size(), suf.size(), suf) == 0;
    };
    return name.find('/') != std::string::npos || ends(".yaml") || ends(".yml");
}

} // namespace

std::string IrqRef::str() const
{
    if (group.empty()) return device + "." + std::to_string(index);
    return device + "." + group + (index ? "[" + std::to_string(index) + "]" : "");
}

std::string find_manifest(const std::string &name, const std::vector<std::string> &search_dirs)
{
    std::error_code ec;
    if (name.empty()) return {};
    if (looks_like_path(name) && fs::is_regular_file(name, ec)) return name;
    // A relative name with '/' that is not a file here may be one under the configs: examples/dual-uart.
    if (name.front() == '/' || name.find("..") != std::string::npos) return {};
    for (const auto &d : search_dirs) {
        for (const char *ext : {"", ".yaml", ".yml"}) {
            if (!*ext && name.find('.') == std::string::npos) continue;
            fs::path p = fs::path(d) / (name + ext);
            if (fs::is_regular_file(p, ec)) return p.string();
        }
    }
    return {};
}

MachineSpec load_manifest(const std::string &name, const std::vector<std::string> &search_dirs,
                          const ManifestOverrides &overrides, const SchemaProvider &types)
{
    std::string file = find_manifest(name, search_dirs);
    if (file.empty()) {
        if (looks_like_path(name))
            throw Error("cannot read manifest '" + name + "': " + std::strerror(ENOENT));
        std::vector<std::string> known;
        std::error_code ec;
        for (const auto &d : search_dirs)
            for (auto it = fs::directory_iterator(d, ec); !ec && it != fs::directory_iterator();
                 it.increment(ec))
                if (it->path().extension() == ".yaml") known.push_back(it->path().stem().string());
        throw Error("unknown machine '" + name + "'" + suggest(name, known) + " (looked in " +
                    (search_dirs.empty() ? std::string("no directories") : join(search_dirs, ", ")) +
                    "; keel -M help lists the boards)");
    }

    Loader loader;
    NodeP root = loader.load(file, Location{});
    const Node &r = *root;

    MachineSpec spec;
    spec.file = file;
    spec.schema_version = kSchemaVersion;
    Validator v(types, overrides);
    auto text = [&](const char *key) -> std::string {
        const Node *n = r.get(key);
        return n ? Validator::need_scalar(*n, std::string("'") + key + "'") : std::string();
    };
    spec.name = text("name");
    if (spec.name.empty()) spec.name = fs::path(file).stem().string();
    spec.description = text("description");
    spec.accel = text("accel");
    if (const Node *a = r.get("accel")) spec.accel_loc = a->loc;
    spec.board = text("board");
    if (const Node *b = r.get("board")) spec.board_loc = b->loc;
    if (const Node *f = r.get("fdt")) spec.fdt_root = v.fdt_node(*f, "the machine", true);

    // What devices may refer to: every device name (including -device ids)
    // and every chardev id, known before any device is checked.
    std::vector<CmdDevice> cmd;
    for (const auto &arg : overrides.devices)
        cmd.push_back(parse_device_option(arg));
    const Node *devs = r.get("devices");
    if (devs) Validator::need_map(*devs, "'devices'");
    auto note_device = [&](const std::string &n, const Node &d) {
        DeviceRef ref;
        const Node *t = d.is_map() ? d.get("type") : nullptr;
        if (t && t->is_scalar()) ref.type = t->text;
        if (!v.devices_.count(n)) v.device_names_.push_back(n);
        v.devices_.emplace(n, ref);
    };
    if (devs)
        for (const auto &e : devs->entries)
            note_device(e.key, *e.value);
    for (const auto &c : cmd)
        note_device(c.id, *c.node);
    for (int i = 0; i < 4; ++i)
        v.chardev_ids_.push_back("serial" + std::to_string(i));
    const Node *chr = r.get("chardevs");
    if (chr && chr->is_map())
        for (const auto &e : chr->entries)
            v.chardev_ids_.push_back(e.key);
    for (const auto &id : overrides.chardev_ids)
        v.chardev_ids_.push_back(id);

    if (const Entry *c = r.find("cpus")) {
        spec.cpus = v.cpus(*c->value, c->key_loc);
        // The machine names its CPUs cpu0, cpu1, ...: devices wire interrupts
        // to them (cpu0.mti), so they are devices for validation, and no
        // device may take their names.
        unsigned n = overrides.smp && *overrides.smp <= kMaxCpus ? *overrides.smp : spec.cpus->count;
        for (unsigned i = 0; i < n; ++i) {
            std::string name = "cpu" + std::to_string(i);
            if (auto it = v.devices_.find(name); it != v.devices_.end()) {
                Location loc = c->key_loc;
                if (devs)
                    for (const auto &e : devs->entries)
                        if (e.key == name) loc = e.key_loc;
                for (const auto &cd : cmd)
                    if (cd.id == name) loc = cd.loc;
                throw Error(loc, "device name '" + name + "' is taken by CPU " + std::to_string(i) +
                                     " (the machine names its CPUs cpu0, cpu1, ...)");
            }
            v.device_names_.push_back(name);
            v.devices_.emplace(name, DeviceRef{spec.cpus->type, c->key_loc});
        }
        v.cpu_count_ = n;
    }
    if (const Node *m = r.get("memory")) spec.memory = v.memory(*m);
    v.memory_ = &spec.memory;
    if (chr) spec.chardevs = v.chardevs(*chr);
    if (devs)
        for (const auto &e : devs->entries)
            spec.devices.push_back(v.device(e.key, e.key_loc, *e.value));

    // Command-line overrides, each error pointing at its option.
    if (overrides.accel) {
        spec.accel = *overrides.accel;
        spec.accel_loc = Location{"-accel " + *overrides.accel, 0, 0};
    }
    if (overrides.memory_size) {
        Location loc{"-m " + *overrides.memory_size, 0, 0};
        uint64_t sz = parse_memory_option(*overrides.memory_size, loc);
        auto it =
            std::find_if(spec.memory.begin(), spec.memory.end(), [](auto &m) { return m.kind == "ram"; });
        if (it == spec.memory.end())
            throw Error(loc, "machine '" + spec.name + "' has no RAM region to resize");
        it->size = sz;
        v.check_memory_region(*it, spec.memory, loc);
    }
    if (overrides.smp) {
        Location loc{"-smp " + std::to_string(*overrides.smp), 0, 0};
        if (!spec.cpus)
            throw Error(loc, "machine '" + spec.name + "' has no 'cpus:' section to set the count of");
        if (*overrides.smp < 1 || *overrides.smp > kMaxCpus)
            throw Error(loc, strprintf("invalid number of CPUs '%u' (1 to %u)", *overrides.smp, kMaxCpus));
        spec.cpus->count = *overrides.smp;
    }
    for (const auto &c : cmd) {
        for (const auto &d : spec.devices)
            if (d.name == c.id)
                throw Error(c.loc,
                            "a device named '" + c.id + "' already exists (first at " + d.loc.str() + ")");
        spec.devices.push_back(v.device(c.id, c.loc, *c.node));
    }
    return spec;
}

// ---- JSON Schema ----

namespace
{

// Just enough JSON to write the schema: ordered objects, pretty-printed.
struct Json {
    enum class K { Str, Num, Bool, Raw, Arr, Obj } k = K::Obj;
    std::string s;
    std::vector<Json> arr;
    std::vector<std::pair<std::string, Json>> obj;

    static Json str(std::string v) { return Json{K::Str, std::move(v), {}, {}}; }
    static Json num(long long v) { return Json{K::Num, std::to_string(v), {}, {}}; }
    static Json unum(unsigned long long v) { return Json{K::Num, std::to_string(v), {}, {}}; }
    static Json boolean(bool v) { return Json{K::Bool, v ? "true" : "false", {}, {}}; }
    static Json array(std::vector<Json> v = {}) { return Json{K::Arr, {}, std::move(v), {}}; }
    static Json object() { return Json{}; }
    Json &set(const std::string &key, Json v)
    {
        obj.emplace_back(key, std::move(v));
        return *this;
    }

    static void quote(std::string &out, const std::string &v)
    {
        out += '"';
        for (unsigned char c : v) {
            switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (c < 0x20)
                    out += strprintf("\\u%04x", c);
                else
                    out += static_cast<char>(c);
            }
        }
        out += '"';
    }

    void write(std::string &out, int indent) const
    {
        std::string pad(static_cast<size_t>(indent + 2), ' ');
        switch (k) {
        case K::Str:
            quote(out, s);
            return;
        case K::Num:
        case K::Bool:
        case K::Raw:
            out += s;
            return;
        case K::Arr:
            if (arr.empty()) {
                out += "[]";
                return;
            }
            out += "[\n";
            for (size_t i = 0; i < arr.size(); ++i) {
                out += pad;
                arr[i].write(out, indent + 2);
                out += i + 1 < arr.size() ? ",\n" : "\n";
            }
            out += std::string(static_cast<size_t>(indent), ' ') + "]";
            return;
        case K::Obj:
            if (obj.empty()) {
                out += "{}";
                return;
            }
            out += "{\n";
            for (size_t i = 0; i < obj.size(); ++i) {
                out += pad;
                quote(out, obj[i].first);
                out += ": ";
                obj[i].second.write(out, indent + 2);
                out += i + 1 < obj.size() ? ",\n" : "\n";
            }
            out += std::string(static_cast<size_t>(indent), ' ') + "}";
            return;
        }
    }
};

Json strings(const std::vector<std::string> &v)
{
    Json a = Json::array();
    for (const auto &s : v)
        a.arr.push_back(Json::str(s));
    return a;
}

Json ref(const std::string &def)
{
    return Json::object().set("$ref", Json::str("#/$defs/" + def));
}

Json any_of(std::vector<Json> alts)
{
    return Json::object().set("anyOf", Json::array(std::move(alts)));
}

const char *kUintPattern = "^(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|[0-9][0-9_]*)$";
const char *kIntPattern = "^[+-]?(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|[0-9][0-9_]*)$";
const char *kSizePattern =
    "^(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|[0-9][0-9_]*([kKmMgGtTpPeE]([iI]?[bB])?)?)$";
const char *kNamePattern = "^[a-z][a-z0-9_-]*$";
const char *kIrqPattern =
    "^([a-z][a-z0-9_-]*\\.([0-9]+|[a-z][a-z0-9_-]*(\\[[0-9]+\\])?)|cpu\\*\\.[a-z][a-z0-9_-]*)$";

// "[Tt][Rr][Uu][Ee]": JSON Schema regexes have no case-insensitive flag.
std::string any_case(const std::string &w)
{
    std::string out;
    for (char c : w) {
        if (std::isalpha(static_cast<unsigned char>(c)))
            out +=
                std::string("[") + static_cast<char>(std::toupper(static_cast<unsigned char>(c))) + c + "]";
        else
            out += c;
    }
    return out;
}

Json prop_schema(const PropSchema &p)
{
    Json j;
    bool ranged = p.flags & KEEL_PROPF_RANGE;
    switch (p.type) {
    case KEEL_PROP_BOOL: {
        std::vector<std::string> words;
        for (const char *w : {"true", "false", "on", "off", "yes", "no"})
            words.push_back(any_case(w));
        j = any_of({Json::object().set("type", Json::str("boolean")),
                    Json::object()
                        .set("type", Json::str("string"))
                        .set("pattern", Json::str("^(" + join(words, "|") + "|1|0)$"))});
        break;
    }
    case KEEL_PROP_INT:
    case KEEL_PROP_UINT:
    case KEEL_PROP_SIZE: {
        Json num = Json::object().set("type", Json::str("integer"));
        if (p.type == KEEL_PROP_INT && ranged) {
            num.set("minimum", Json::num(static_cast<int64_t>(p.min)));
            num.set("maximum", Json::num(static_cast<int64_t>(p.max)));
        } else if (p.type != KEEL_PROP_INT) {
            num.set("minimum", Json::unum(ranged ? p.min : 0));
            if (ranged) num.set("maximum", Json::unum(p.max));
        }
        const char *pat = p.type == KEEL_PROP_INT    ? kIntPattern
                          : p.type == KEEL_PROP_UINT ? kUintPattern
                                                     : kSizePattern;
        j = any_of({num, Json::object().set("type", Json::str("string")).set("pattern", Json::str(pat))});
        break;
    }
    case KEEL_PROP_ENUM:
        j = Json::object().set("enum", strings(p.enum_values));
        break;
    case KEEL_PROP_STRING:
        // YAML turns `label: 42` into a number; keel takes the text as written.
        j = Json::object().set("type", strings({"string", "number", "boolean"}));
        break;
    case KEEL_PROP_LINK:
        j = Json::object().set("type", Json::str("string")).set("pattern", Json::str(kNamePattern));
        break;
    case KEEL_PROP_CHARDEV:
    case KEEL_PROP_DRIVE:
        j = Json::object().set("type", Json::str("string")).set("minLength", Json::num(1));
        break;
    }
    std::string doc = p.doc;
    if (p.type == KEEL_PROP_LINK && !p.link_type.empty()) doc += " (a " + p.link_type + " device)";
    if (p.required()) doc += " (required)";
    j.set("description", Json::str(doc.empty() ? std::string(prop_type_name(p.type)) : doc));
    if (p.has_default) j.set("default", Json::str(p.default_value));
    return j;
}

Json props_object(const TypeSchema &t)
{
    Json props = Json::object();
    std::vector<std::string> required;
    for (const auto &p : t.props) {
        props.set(p.name, prop_schema(p));
        if (p.required()) required.push_back(p.name);
    }
    Json o = Json::object()
                 .set("type", Json::str("object"))
                 .set("properties", props)
                 .set("additionalProperties", Json::boolean(false));
    if (!required.empty()) o.set("required", strings(required));
    return o;
}

// allOf: [ {if: {properties: {type: {const: T}}}, then: {properties: {properties: <T's props>}}}, ... ]
Json per_type(const std::vector<const TypeSchema *> &types, bool require_props)
{
    Json all = Json::array();
    for (const TypeSchema *t : types) {
        Json cond = Json::object()
                        .set("properties",
                             Json::object().set("type", Json::object().set("const", Json::str(t->name))))
                        .set("required", strings({"type"}));
        Json then = Json::object().set("properties", Json::object().set("properties", props_object(*t)));
        bool has_required =
            std::any_of(t->props.begin(), t->props.end(), [](auto &p) { return p.required(); });
        if (require_props && has_required) then.set("required", strings({"properties"}));
        if (!t->description.empty()) then.set("description", Json::str(t->description));
        all.arr.push_back(Json::object().set("if", cond).set("then", then));
    }
    return all;
}

} // namespace

std::string manifest_json_schema(const SchemaProvider &types)
{
    std::vector<const TypeSchema *> ts;
    std::vector<std::string> names = types.type_names();
    for (const auto &n : names)
        if (const TypeSchema *t = types.find_type(n)) ts.push_back(t);

    Json defs = Json::object();
    defs.set(
        "uint",
        any_of({Json::object().set("type", Json::str("integer")).set("minimum", Json::num(0)),
                Json::object().set("type", Json::str("string")).set("pattern", Json::str(kUintPattern))}));
    defs.set(
        "size",
        any_of({Json::object().set("type", Json::str("integer")).set("minimum", Json::num(1)),
                Json::object().set("type", Json::str("string")).set("pattern", Json::str(kSizePattern))}));
    defs.set("irq-target", Json::object()
                               .set("type", Json::str("string"))
                               .set("pattern", Json::str(kIrqPattern))
                               .set("description", Json::str("DEVICE.N, DEVICE.GROUP or DEVICE.GROUP[N]")));
    defs.set("irq-list",
             any_of({ref("irq-target"),
                     Json::object().set("type", Json::str("array")).set("items", ref("irq-target"))}));
    Json reg_obj = Json::object()
                       .set("type", Json::str("object"))
                       .set("properties", Json::object().set("base", ref("uint")).set("size", ref("size")))
                       .set("required", strings({"base"}))
                       .set("additionalProperties", Json::boolean(false));
    Json reg_symbol =
        Json::object()
            .set("type", Json::str("string"))
            .set("pattern", Json::str("^@[A-Za-z_.$][A-Za-z0-9_.$]*$"))
            .set("description", Json::str("@NAME: the address of ELF symbol NAME of the loaded image"));
    defs.set("reg-entry", any_of({ref("uint"), reg_obj, reg_symbol}));
    Json string_or_list = any_of({Json::object().set("type", Json::str("string")),
                                  Json::object()
                                      .set("type", Json::str("array"))
                                      .set("items", Json::object().set("type", Json::str("string")))});
    Json cell = any_of({Json::object().set("type", Json::str("integer")).set("minimum", Json::num(0)),
                        Json::object().set("type", Json::str("string"))});
    defs.set(
        "fdt-properties",
        Json::object()
            .set("type", Json::str("object"))
            .set("description", Json::str("device-tree properties to add or replace: a number or list of "
                                          "numbers (cells), a string or list of strings, true (empty), "
                                          "false (remove)"))
            .set("additionalProperties",
                 any_of({cell, Json::object().set("type", Json::str("boolean")),
                         Json::object().set("type", Json::str("array")).set("items", cell)})));
    defs.set("fdt-node",
             any_of({Json::object()
                         .set("type", Json::str("object"))
                         .set("properties", Json::object()
                                                .set("node", Json::object().set("type", Json::str("string")))
                                                .set("compatible", string_or_list)
                                                .set("properties", ref("fdt-properties")))
                         .set("additionalProperties", Json::boolean(false)),
                     Json::object().set("const", Json::boolean(false))}));
    // `type` is not required: a file that includes a board may change a
    // device's properties without repeating its type.
    defs.set("device",
             Json::object()
                 .set("type", Json::str("object"))
                 .set("properties",
                      Json::object()
                          .set("type", Json::object()
                                           .set("enum", strings(names))
                                           .set("description", Json::str("device type")))
                          .set("version", Json::object()
                                              .set("type", Json::str("string"))
                                              .set("description",
                                                   Json::str("semver requirement on the module, e.g. ^1.2")))
                          .set("reg", any_of({ref("reg-entry"), Json::object()
                                                                    .set("type", Json::str("array"))
                                                                    .set("items", ref("reg-entry"))}))
                          .set("irq", ref("irq-list"))
                          .set("irq-out", Json::object()
                                              .set("type", Json::str("object"))
                                              .set("propertyNames",
                                                   Json::object().set("pattern", Json::str(kNamePattern)))
                                              .set("additionalProperties", ref("irq-list")))
                          .set("properties", Json::object().set("type", Json::str("object")))
                          .set("fdt", ref("fdt-node")))
                 .set("additionalProperties", Json::boolean(false))
                 .set("allOf", per_type(ts, true)));

    Json props = Json::object();
    props.set("keel", Json::object()
                          .set("const", Json::num(kSchemaVersion))
                          .set("description", Json::str("manifest schema version")));
    props.set("name", Json::object().set("type", Json::str("string")));
    props.set("description", Json::object().set("type", Json::str("string")));
    props.set("include", any_of({Json::object().set("type", Json::str("string")),
                                 Json::object()
                                     .set("type", Json::str("array"))
                                     .set("items", Json::object().set("type", Json::str("string")))}));
    props.set("accel", Json::object()
                           .set("type", Json::str("string"))
                           .set("description", Json::str("execution engine (tcg, tci)")));
    props.set("board",
              Json::object()
                  .set("type", Json::str("string"))
                  .set("description", Json::str("board module that boots the machine (riscv-generic)")));
    props.set("fdt", Json::object()
                         .set("type", Json::str("object"))
                         .set("properties", Json::object()
                                                .set("model", Json::object().set("type", Json::str("string")))
                                                .set("compatible", string_or_list)
                                                .set("properties", ref("fdt-properties")))
                         .set("additionalProperties", Json::boolean(false)));
    props.set("cpus",
              Json::object()
                  .set("type", Json::str("object"))
                  .set("properties", Json::object()
                                         .set("type", Json::object().set("enum", strings(names)))
                                         .set("count", any_of({Json::object()
                                                                   .set("type", Json::str("integer"))
                                                                   .set("minimum", Json::num(1))
                                                                   .set("maximum", Json::num(kMaxCpus)),
                                                               Json::object()
                                                                   .set("type", Json::str("string"))
                                                                   .set("pattern", Json::str(kUintPattern))}))
                                         .set("properties", Json::object().set("type", Json::str("object"))))
                  .set("additionalProperties", Json::boolean(false))
                  .set("allOf", per_type(ts, false)));
    props.set("memory",
              Json::object()
                  .set("type", Json::str("array"))
                  .set("items", Json::object()
                                    .set("type", Json::str("object"))
                                    .set("properties",
                                         Json::object()
                                             .set("name", Json::object()
                                                              .set("type", Json::str("string"))
                                                              .set("pattern", Json::str(kNamePattern)))
                                             .set("base", ref("uint"))
                                             .set("size", ref("size"))
                                             .set("kind", Json::object().set("enum", strings(kMemoryKinds))))
                                    .set("required", strings({"name"}))
                                    .set("additionalProperties", Json::boolean(false))));
    props.set(
        "chardevs",
        Json::object()
            .set("type", Json::str("object"))
            .set("additionalProperties",
                 Json::object()
                     .set("type", Json::str("object"))
                     .set("properties", Json::object().set(
                                            "backend", Json::object().set("enum", strings(kChardevBackends))))
                     .set("required", strings({"backend"}))
                     .set("additionalProperties",
                          Json::object().set("type", strings({"string", "number", "boolean"})))));
    props.set("devices", Json::object()
                             .set("type", Json::str("object"))
                             .set("propertyNames", Json::object().set("pattern", Json::str(kNamePattern)))
                             .set("additionalProperties",
                                  any_of({ref("device"), Json::object().set("type", Json::str("null"))})));

    Json root = Json::object()
                    .set("$schema", Json::str("https://json-schema.org/draft/2020-12/schema"))
                    .set("$id", Json::str("https://keel.invalid/schemas/manifest-v1.json"))
                    .set("title", Json::str("keel machine manifest"))
                    .set("type", Json::str("object"))
                    .set("properties", props)
                    .set("additionalProperties", Json::boolean(false))
                    .set("$defs", defs);
    std::string out;
    root.write(out, 0);
    out += "\n";
    return out;
}

} // namespace keel
