// SPDX-License-Identifier: MIT
// Device-tree generation with libfdt's read-write API: nodes are addressed by path, so a node can be
// revisited (phandles are written at the end, once every reference is known).
#include "devicetree.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <variant>

extern "C" {
#include <libfdt.h>
}

#include "error.h"
#include "machine.h"
#include "util.h"

namespace keel
{
class FdtBuilder;
}

// The writer handed to KeelFdtInfo hooks: a position in the tree being built.
struct KeelFdt {
    keel::FdtBuilder *builder = nullptr;
    std::string path;          // current node
    KeelObject *obj = nullptr; // the object being populated
    std::vector<std::string> stack;
};

namespace keel
{

class FdtBuilder
{
  public:
    FdtBuilder() : buf_(16384)
    {
        check(fdt_create_empty_tree(buf_.data(), static_cast<int>(buf_.size())), "create");
    }

    // Create `name` under `parent` ("/" for the root); returns the new node's path.
    std::string add_node(const std::string &parent, const std::string &name)
    {
        std::string path = parent == "/" ? "/" + name : parent + "/" + name;
        for (;;) {
            int off = offset(parent);
            int r = fdt_add_subnode(buf_.data(), off, name.c_str());
            if (r == -FDT_ERR_NOSPACE) {
                grow();
                continue;
            }
            if (r == -FDT_ERR_EXISTS) throw Error("device tree: two nodes are named " + path);
            check(r, "add node " + path);
            return path;
        }
    }

    void set(const std::string &path, const std::string &name, const void *data, size_t len)
    {
        for (;;) {
            int r = fdt_setprop(buf_.data(), offset(path), name.c_str(), data, static_cast<int>(len));
            if (r == -FDT_ERR_NOSPACE) {
                grow();
                continue;
            }
            check(r, "property " + name + " of " + path);
            return;
        }
    }
    void set_cells(const std::string &path, const std::string &name, const std::vector<uint32_t> &cells)
    {
        std::vector<fdt32_t> be;
        for (uint32_t c : cells)
            be.push_back(cpu_to_fdt32(c));
        set(path, name, be.data(), be.size() * sizeof(fdt32_t));
    }
    void set_u32(const std::string &path, const std::string &name, uint32_t v) { set_cells(path, name, {v}); }
    void set_strings(const std::string &path, const std::string &name, const std::vector<std::string> &list)
    {
        std::string data;
        for (const auto &s : list) {
            data += s;
            data += '\0';
        }
        set(path, name, data.data(), data.size());
    }
    void remove(const std::string &path, const std::string &name)
    {
        int r = fdt_delprop(buf_.data(), offset(path), name.c_str());
        if (r != -FDT_ERR_NOTFOUND) check(r, "remove " + name + " of " + path);
    }
    bool exists(const std::string &path) const { return fdt_path_offset(buf_.data(), path.c_str()) >= 0; }

    // The phandle of `obj`'s node (or its interrupt-controller node), written at finish().
    uint32_t phandle(KeelObject *obj)
    {
        auto it = phandles_.find(obj);
        if (it != phandles_.end()) return it->second;
        if (!node_of_.count(obj)) return 0;
        uint32_t p = next_phandle_++;
        phandles_[obj] = p;
        return p;
    }
    void set_node(KeelObject *obj, const std::string &path) { node_of_[obj] = path; }
    const std::string *node(KeelObject *obj) const
    {
        auto it = node_of_.find(obj);
        return it == node_of_.end() ? nullptr : &it->second;
    }
    void set_intc_node(KeelObject *obj, const std::string &path) { intc_of_[obj] = path; }
    bool is_intc(KeelObject *obj) const { return intc_of_.count(obj) > 0; }

    std::vector<uint8_t> finish()
    {
        for (const auto &[obj, ph] : phandles_) {
            auto it = intc_of_.find(obj);
            set_u32(it != intc_of_.end() ? it->second : node_of_.at(obj), "phandle", ph);
        }
        check(fdt_pack(buf_.data()), "pack");
        buf_.resize(fdt_totalsize(buf_.data()));
        return std::move(buf_);
    }

    // Start from an existing tree (a -dtb file) instead of an empty one.
    void adopt(const std::vector<uint8_t> &blob)
    {
        buf_.assign(blob.size() + 16384, 0);
        check(fdt_open_into(blob.data(), buf_.data(), static_cast<int>(buf_.size())), "open");
    }

  private:
    int offset(const std::string &path) const
    {
        int off = fdt_path_offset(buf_.data(), path.c_str());
        if (off < 0) throw Error("device tree: no node " + path + " (" + fdt_strerror(off) + ")");
        return off;
    }
    void grow()
    {
        std::vector<uint8_t> bigger(buf_.size() * 2);
        check(fdt_open_into(buf_.data(), bigger.data(), static_cast<int>(bigger.size())), "grow");
        buf_ = std::move(bigger);
    }
    static void check(int r, const std::string &what)
    {
        if (r < 0) throw Error("device tree: " + what + ": " + fdt_strerror(r));
    }

    std::vector<uint8_t> buf_;
    std::map<KeelObject *, uint32_t> phandles_;
    std::map<KeelObject *, std::string> node_of_; // every object with a node
    std::map<KeelObject *, std::string> intc_of_; // where its inputs are described, if not its node
    uint32_t next_phandle_ = 1;
};

namespace
{

const KeelFdtInfo *fdt_info(const KeelObject &o)
{
    const KeelDeviceTypeInfo *t = o.type ? o.type->info : nullptr;
    if (!t || !t->fdt || t->fdt->size < offsetof(KeelFdtInfo, reserved)) return nullptr;
    return t->fdt;
}

std::vector<std::string> string_list(const char *const *list)
{
    std::vector<std::string> out;
    for (; list && *list; ++list)
        out.emplace_back(*list);
    return out;
}

std::optional<uint64_t> uint_value(const KeelObject &o, const std::string &name)
{
    auto it = o.values.find(name);
    if (it == o.values.end()) return std::nullopt;
    if (const uint64_t *u = std::get_if<uint64_t>(&it->second)) return *u;
    return std::nullopt;
}

void run_hook(int (*hook)(KeelObject *, void *, KeelFdt *, KeelError *), KeelObject &o, KeelFdt &w,
              const char *what)
{
    if (!hook) return;
    KeelError err;
    int rc = hook(&o, o.state, &w, &err);
    if (rc != KEEL_OK || !w.stack.empty())
        throw Error("device '" + o.name + "' (" + o.type->name + "): its device-tree " + what + " failed: " +
                    (err.is_set         ? err.message
                     : !w.stack.empty() ? "a subnode was left open"
                                        : "no reason given"));
}

// Where the manifest wired output `index` of group `group` of `o`.
Location wiring_loc(const KeelObject &o, const std::string &group, size_t index)
{
    if (!o.spec) return {};
    const std::vector<IrqRef> *refs = &o.spec->irq;
    if (!group.empty()) {
        auto it = o.spec->irq_out.find(group);
        if (it == o.spec->irq_out.end()) return o.spec->loc;
        refs = &it->second;
    }
    return index < refs->size() ? (*refs)[index].loc : o.spec->loc;
}

// Where `o`'s output lines go, as (phandle, specifier cells) per wired line
// whose target is described in the tree. Groups are interleaved by line
// index (msi0, mti0, msi1, mti1, ...): per hart, as QEMU lists a CLINT's lines.
std::vector<std::pair<uint32_t, std::vector<uint32_t>>> interrupt_targets(FdtBuilder &b, KeelObject &o)
{
    std::vector<std::pair<uint32_t, std::vector<uint32_t>>> out;
    size_t most = 0;
    for (const auto &g : o.outputs)
        most = std::max(most, g.lines.size());
    for (size_t i = 0; i < most; ++i)
        for (const auto &g : o.outputs) {
            if (i >= g.lines.size() || !g.lines[i]->target) continue;
            const KeelIrqLine &line = *g.lines[i];
            KeelObject *t = line.target->owner;
            const KeelFdtInfo *ti = t ? fdt_info(*t) : nullptr;
            if (!ti || !b.is_intc(t)) continue;
            uint32_t cells[4] = {line.target_index, 0, 0, 0};
            unsigned n = 1;
            if (ti->irq_specifier)
                n = ti->irq_specifier(t, t->state, line.target->name.c_str(), line.target_index, cells);
            if (n == 0)
                throw Error(wiring_loc(o, g.name, i),
                            strprintf("device '%s' is wired to input %u of '%s' (%s), which that type cannot "
                                      "describe in the device tree (not an interrupt source it has)",
                                      o.name.c_str(), line.target_index, t->name.c_str(),
                                      t->type->name.c_str()));
            out.emplace_back(b.phandle(t), std::vector<uint32_t>(cells, cells + std::min(n, 4u)));
        }
    return out;
}

// A type may describe more than its registers (the board's slot); those
// ranges must not overlap either, or the guest would see two devices claim
// one address.
void check_described_ranges(const std::vector<std::pair<KeelObject *, std::string>> &devices)
{
    struct Range {
        const KeelObject *o;
        size_t window;
        uint64_t base, size;
    };
    std::vector<Range> ranges;
    for (const auto &[o, path] : devices) {
        const KeelFdtInfo *fi = fdt_info(*o);
        for (size_t i = 0; i < o->windows.size(); ++i)
            ranges.push_back(
                {o, i, o->windows[i].base, fi->reg_size ? fi->reg_size : o->windows[i].region->size()});
    }
    for (size_t i = 0; i < ranges.size(); ++i)
        for (size_t j = 0; j < i; ++j) {
            const Range &a = ranges[i], &c = ranges[j];
            if (a.o == c.o || a.base > c.base + (c.size - 1) || c.base > a.base + (a.size - 1)) continue;
            auto where = [](const Range &r) {
                return r.o->spec && r.window < r.o->spec->reg.size() ? r.o->spec->reg[r.window].loc
                                                                     : Location{};
            };
            throw Error(where(a),
                        strprintf("device '%s' is described in the device tree as %s-%s (its type's slot "
                                  "size), which overlaps device '%s' %s-%s (at %s); move one of them",
                                  a.o->name.c_str(), format_hex(a.base).c_str(),
                                  format_hex(a.base + a.size - 1).c_str(), c.o->name.c_str(),
                                  format_hex(c.base).c_str(), format_hex(c.base + c.size - 1).c_str(),
                                  where(c).str().c_str()));
        }
}

bool to_cpu(const KeelObject &o)
{
    for (const auto &g : o.outputs)
        for (const auto &line : g.lines)
            if (line->target && line->target->owner && line->target->owner->type->info->cpu) return true;
    return false;
}

void apply_manifest(FdtBuilder &b, const std::string &path, const FdtNodeSpec &spec)
{
    if (!spec.compatible.empty()) b.set_strings(path, "compatible", spec.compatible);
    for (const auto &p : spec.props) {
        try {
            switch (p.kind) {
            case FdtPropSpec::Kind::Empty:
                b.set(path, p.name, nullptr, 0);
                break;
            case FdtPropSpec::Kind::Cells:
                b.set_cells(path, p.name, p.cells);
                break;
            case FdtPropSpec::Kind::Strings:
                b.set_strings(path, p.name, p.strings);
                break;
            case FdtPropSpec::Kind::Delete:
                b.remove(path, p.name);
                break;
            }
        } catch (const Error &e) {
            throw Error(p.loc, e.what());
        }
    }
}

// libfdt's read-write API puts each new node and property first among its
// siblings, so a generated tree comes out in reverse creation order. Written
// again back to front with the sequential API, it reads in creation order
// (cpu@0 before cpu@1, compatible before reg), as dumps of QEMU's trees do.
void emit_reversed(const void *in, int node, void *out)
{
    std::vector<int> props, children;
    int off;
    fdt_for_each_property_offset(off, in, node) props.push_back(off);
    fdt_for_each_subnode(off, in, node) children.push_back(off);
    const char *name = fdt_get_name(in, node, nullptr);
    fdt_begin_node(out, node == 0 ? "" : name);
    for (auto it = props.rbegin(); it != props.rend(); ++it) {
        const char *pname;
        int len;
        const void *data = fdt_getprop_by_offset(in, *it, &pname, &len);
        fdt_property(out, pname, data, len);
    }
    for (auto it = children.rbegin(); it != children.rend(); ++it)
        emit_reversed(in, *it, out);
    fdt_end_node(out);
}

std::vector<uint8_t> in_creation_order(const std::vector<uint8_t> &blob)
{
    std::vector<uint8_t> out(blob.size() + 1024);
    int r = fdt_create(out.data(), static_cast<int>(out.size()));
    if (r == 0) r = fdt_finish_reservemap(out.data());
    if (r == 0) emit_reversed(blob.data(), 0, out.data());
    if (r == 0) r = fdt_finish(out.data());
    if (r != 0) throw Error(std::string("device tree: reorder: ") + fdt_strerror(r));
    out.resize(fdt_totalsize(out.data()));
    return out;
}

void write_chosen(FdtBuilder &b, const FdtChosen &chosen)
{
    if (!b.exists("/chosen")) b.add_node("/", "chosen");
    if (!chosen.bootargs.empty()) b.set_strings("/chosen", "bootargs", {chosen.bootargs});
    if (chosen.initrd_end > chosen.initrd_start) {
        auto u64 = [](uint64_t v) { return std::vector<uint32_t>{uint32_t(v >> 32), uint32_t(v)}; };
        b.set_cells("/chosen", "linux,initrd-start", u64(chosen.initrd_start));
        b.set_cells("/chosen", "linux,initrd-end", u64(chosen.initrd_end));
    }
}

} // namespace

std::vector<uint8_t> generate_fdt(Machine &m, const FdtChosen &chosen)
{
    FdtBuilder b;
    const MachineSpec &spec = m.spec();
    b.set_u32("/", "#address-cells", 2);
    b.set_u32("/", "#size-cells", 2);
    b.set_strings("/", "compatible", {"keel," + spec.name});
    b.set_strings("/", "model", {"keel," + spec.name});
    apply_manifest(b, "/", spec.fdt_root);
    b.add_node("/", "chosen");

    for (const auto &mem : spec.memory) {
        if (mem.kind != "ram") continue;
        std::string path =
            b.add_node("/", strprintf("memory@%llx", static_cast<unsigned long long>(mem.base)));
        b.set_strings(path, "device_type", {"memory"});
        b.set_cells(
            path, "reg",
            {uint32_t(mem.base >> 32), uint32_t(mem.base), uint32_t(mem.size >> 32), uint32_t(mem.size)});
    }

    auto writer = [&](KeelObject &o, const std::string &path) {
        KeelFdt w;
        w.builder = &b;
        w.path = path;
        w.obj = &o;
        return w;
    };

    if (!m.cpus().empty()) {
        b.add_node("/", "cpus");
        b.set_u32("/cpus", "#address-cells", 1);
        b.set_u32("/cpus", "#size-cells", 0);
        if (auto tb = uint_value(*m.cpus()[0], "timebase-frequency"))
            b.set_u32("/cpus", "timebase-frequency", static_cast<uint32_t>(*tb));
        for (size_t i = 0; i < m.cpus().size(); ++i) {
            KeelObject &c = *m.cpus()[i];
            const KeelFdtInfo *fi = fdt_info(c);
            if (!fi) continue;
            std::string path = b.add_node("/cpus", strprintf("cpu@%zx", i));
            b.set_node(&c, path);
            b.set_strings(path, "device_type", {"cpu"});
            b.set_u32(path, "reg", static_cast<uint32_t>(i));
            b.set_strings(path, "status", {"okay"});
            if (fi->compatible) b.set_strings(path, "compatible", string_list(fi->compatible));
            KeelFdt w = writer(c, path);
            run_hook(fi->populate, c, w, "node");
        }
    }

    b.add_node("/", "soc");
    b.set_u32("/soc", "#address-cells", 2);
    b.set_u32("/soc", "#size-cells", 2);
    b.set_strings("/soc", "compatible", {"simple-bus"});
    b.set("/soc", "ranges", nullptr, 0);

    // Nodes first, so interrupt controllers declared after their users are known as such.
    std::vector<std::pair<KeelObject *, std::string>> devices;
    for (const auto &op : m.objects()) {
        KeelObject &o = *op;
        const KeelFdtInfo *fi = fdt_info(o);
        if (!fi || b.node(&o) || !o.spec || o.spec->fdt.disabled) continue;
        const FdtNodeSpec &fs = o.spec->fdt;
        std::string name = !fs.node_name.empty() ? fs.node_name : fi->node_name ? fi->node_name : o.name;
        if (!o.windows.empty())
            name += strprintf("@%llx", static_cast<unsigned long long>(o.windows[0].base));
        std::string path;
        try {
            path = b.add_node("/soc", name);
        } catch (const Error &e) {
            throw Error(o.spec->loc,
                        std::string(e.what()) + " (give one of them another 'fdt: { node: NAME }')");
        }
        b.set_node(&o, path);
        if (fi->flags & KEEL_FDT_INTERRUPT_CONTROLLER) b.set_intc_node(&o, path);
        devices.emplace_back(&o, path);
    }
    check_described_ranges(devices);
    for (auto &[op, path] : devices) {
        KeelObject &o = *op;
        const KeelFdtInfo *fi = fdt_info(o);
        if (fi->compatible) b.set_strings(path, "compatible", string_list(fi->compatible));
        if (!o.windows.empty()) {
            std::vector<uint32_t> reg;
            for (const auto &w : o.windows) {
                uint64_t size = fi->reg_size ? fi->reg_size : w.region->size();
                reg.insert(reg.end(),
                           {uint32_t(w.base >> 32), uint32_t(w.base), uint32_t(size >> 32), uint32_t(size)});
            }
            b.set_cells(path, "reg", reg);
        }
        if (fi->flags & KEEL_FDT_CLOCK_FREQUENCY)
            if (auto f = uint_value(o, "clock-frequency")) b.set_u32(path, "clock-frequency", uint32_t(*f));
        if (fi->flags & KEEL_FDT_INTERRUPT_CONTROLLER) {
            b.set(path, "interrupt-controller", nullptr, 0);
            b.set_u32(path, "#interrupt-cells", fi->interrupt_cells ? fi->interrupt_cells : 1);
        }
    }
    // Interrupts once every controller (CPUs' included) has said where its node is.
    for (auto &[op, path] : devices) {
        auto targets = interrupt_targets(b, *op);
        if (targets.empty()) continue;
        // Lines to harts' own controllers are always listed per hart (interrupts-extended): firmware
        // maps PLIC contexts and CLINT slots to harts from that property alone.
        bool one_parent = !to_cpu(*op) && std::all_of(targets.begin(), targets.end(), [&](const auto &t) {
            return t.first == targets[0].first;
        });
        std::vector<uint32_t> cells;
        for (const auto &[ph, spec_cells] : targets) {
            if (!one_parent) cells.push_back(ph);
            cells.insert(cells.end(), spec_cells.begin(), spec_cells.end());
        }
        if (one_parent) {
            b.set_u32(path, "interrupt-parent", targets[0].first);
            b.set_cells(path, "interrupts", cells);
        } else {
            b.set_cells(path, "interrupts-extended", cells);
        }
    }
    for (auto &[op, path] : devices) {
        KeelFdt w = writer(*op, path);
        run_hook(fdt_info(*op)->populate, *op, w, "node");
    }
    for (auto &[op, path] : devices) {
        KeelFdt w = writer(*op, "/");
        run_hook(fdt_info(*op)->populate_root, *op, w, "root nodes");
    }
    for (auto &[op, path] : devices)
        apply_manifest(b, path, op->spec->fdt);

    // The console: the described device whose chardev property is serial0.
    for (auto &[op, path] : devices) {
        bool serial0 = false;
        for (const auto &p : op->type->props)
            if (p.type == KEEL_PROP_CHARDEV)
                if (auto it = op->values.find(p.name); it != op->values.end())
                    if (const auto *s = std::get_if<std::string>(&it->second))
                        serial0 = serial0 || *s == "serial0";
        if (serial0) {
            b.set_strings("/chosen", "stdout-path", {path});
            break;
        }
    }
    write_chosen(b, chosen);
    return in_creation_order(b.finish());
}

std::vector<uint8_t> load_fdt_file(const std::string &file, const FdtChosen &chosen)
{
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error(file + ": cannot read the device tree: " + std::strerror(errno));
    std::vector<uint8_t> blob((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (blob.size() < sizeof(fdt_header) || fdt_magic(blob.data()) != FDT_MAGIC)
        throw Error(file +
                    ": not a flattened device tree (dtb): no FDT magic; compile a .dts with dtc first");
    if (fdt_totalsize(blob.data()) > blob.size())
        throw Error(file + strprintf(": truncated device tree: the header says %u bytes, the file has %zu",
                                     fdt_totalsize(blob.data()), blob.size()));
    if (int r = fdt_check_header(blob.data()); r != 0)
        throw Error(file + ": invalid device tree: " + fdt_strerror(r));
    FdtBuilder b;
    b.adopt(blob);
    write_chosen(b, chosen);
    return b.finish();
}

} // namespace keel

// ---- the writer services (KeelServices.fdt_*) ----

namespace keel
{

int fdt_write(KeelFdt *w, const char *name, const void *value, size_t len)
{
    if (!w || !name) return KEEL_ERR;
    try {
        w->builder->set(w->path, name, value, len);
    } catch (const Error &) {
        return KEEL_ERR;
    }
    return KEEL_OK;
}

int fdt_begin(KeelFdt *w, const char *name)
{
    if (!w || !name) return KEEL_ERR;
    try {
        std::string p = w->builder->add_node(w->path, name);
        w->stack.push_back(w->path);
        w->path = p;
    } catch (const Error &) {
        return KEEL_ERR;
    }
    return KEEL_OK;
}

int fdt_end(KeelFdt *w)
{
    if (!w || w->stack.empty()) return KEEL_ERR;
    w->path = w->stack.back();
    w->stack.pop_back();
    return KEEL_OK;
}

uint32_t fdt_phandle_of(KeelFdt *w, KeelObject *obj)
{
    return w && obj ? w->builder->phandle(obj) : 0;
}

int fdt_interrupt_node(KeelFdt *w, uint32_t cells)
{
    if (!w || !w->obj) return KEEL_ERR;
    w->builder->set_intc_node(w->obj, w->path);
    try {
        w->builder->set(w->path, "interrupt-controller", nullptr, 0);
        w->builder->set_u32(w->path, "#interrupt-cells", cells ? cells : 1);
    } catch (const Error &) {
        return KEEL_ERR;
    }
    return KEEL_OK;
}

} // namespace keel
