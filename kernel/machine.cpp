// SPDX-License-Identifier: MIT
// Instances and the machine: objects from a MachineSpec, properties, MMIO mapping, IRQ wiring, lifecycle.
#include "machine.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "block.h"
#include "error.h"
#include "kernel.h"
#include "util.h"

keel::IrqInputGroup *KeelObject::find_inputs(std::string_view group)
{
    for (auto &g : inputs)
        if (g->name == group) return g.get();
    return nullptr;
}

keel::IrqOutputGroup *KeelObject::find_outputs(std::string_view group)
{
    for (auto &g : outputs)
        if (g.name == group) return &g;
    return nullptr;
}

const KeelDeviceOps *KeelObject::ops() const
{
    return type && type->info ? type->info->ops : nullptr;
}

namespace keel
{

void forget_timers_of(KeelObject *obj); // services.cpp

namespace
{

// A hook of the ops table, or nullptr if the module's table is too old to have it.
template <typename F> F hook(const KeelDeviceOps *ops, F KeelDeviceOps::*member, size_t end_offset)
{
    if (!ops || ops->size < end_offset) return nullptr;
    return ops->*member;
}
#define KEEL_HOOK(ops, field) \
    hook(ops, &KeelDeviceOps::field, offsetof(KeelDeviceOps, field) + sizeof(void *))

std::string group_label(const std::string &g)
{
    return g.empty() ? "default" : "'" + g + "'";
}

std::string span(uint64_t base, uint64_t size)
{
    return format_hex(base) + "-" + format_hex(base + size - 1);
}

} // namespace

Machine::Machine(Registry &registry, MachineSpec spec, ChardevResolver chardevs)
    : registry_(registry), spec_(std::move(spec)), chardevs_(std::move(chardevs))
{
    root_ = MemoryRegion::container("system", UINT64_MAX);
    system_as_ = std::make_unique<AddressSpace>("system", *root_);
}

Machine::~Machine()
{
    for (auto it = objects_.rbegin(); it != objects_.rend(); ++it) {
        KeelObject &o = **it;
        if (o.realized)
            if (auto f = KEEL_HOOK(o.ops(), unrealize)) f(&o, o.state);
        forget_timers_of(&o);
        for (auto &w : o.windows)
            if (w.mapped) root_->remove_subregion(*w.region);
    }
    for (auto &m : memory_)
        root_->remove_subregion(*m);
    for (auto &o : objects_)
        std::free(o->state);
}

KeelObject *Machine::find(std::string_view name)
{
    for (auto &o : objects_)
        if (o->name == name) return o.get();
    return nullptr;
}

const KeelCpuOps *Machine::cpu_ops() const
{
    return cpus_.empty() ? nullptr : cpus_.front()->type->info->cpu;
}

std::string Machine::left_out_note(const std::string &name) const
{
    for (const auto &[n, why] : left_out_)
        if (n == name) return " (it was left out: " + why + ")";
    return {};
}

bool store_scalar_property(KeelObject &o, const PropSchema &p, const PropValue &v)
{
    void *slot = static_cast<uint8_t *>(o.state) + p.offset;
    switch (p.type) {
    case KEEL_PROP_BOOL:
        *static_cast<bool *>(slot) = std::get<bool>(v);
        return true;
    case KEEL_PROP_INT:
        *static_cast<int64_t *>(slot) = std::get<int64_t>(v);
        return true;
    case KEEL_PROP_UINT:
    case KEEL_PROP_SIZE:
        *static_cast<uint64_t *>(slot) = std::get<uint64_t>(v);
        return true;
    case KEEL_PROP_ENUM:
        *static_cast<int32_t *>(slot) = static_cast<int32_t>(std::get<uint64_t>(v));
        return true;
    case KEEL_PROP_STRING:
        o.strings.push_back(std::make_unique<std::string>(std::get<std::string>(v)));
        *static_cast<const char **>(slot) = o.strings.back()->c_str();
        return true;
    default:
        return false;
    }
}

void Machine::set_properties(KeelObject &o, const std::vector<PropSetting> &settings)
{
    auto *base = static_cast<uint8_t *>(o.state);
    for (const PropSchema &p : o.type->props) {
        const PropSetting *set = nullptr;
        for (const auto &s : settings)
            if (s.name == p.name) set = &s;
        PropValue v;
        std::string text;
        Location loc = set ? set->loc : o.spec ? o.spec->loc : Location{};
        if (set) {
            v = set->value;
            text = set->text;
        } else if (p.has_default) {
            std::string err;
            if (!parse_prop_value(p, p.default_value, v, err)) throw Error(loc, err);
            text = p.default_value;
        } else {
            if (p.required())
                throw Error(loc,
                            "device '" + o.name + "' (" + o.type->name + ") needs property '" + p.name + "'");
            continue; // stays zero / NULL
        }
        o.values[p.name] = v;
        if (store_scalar_property(o, p, v)) continue;
        void *slot = base + p.offset;
        switch (p.type) {
        case KEEL_PROP_LINK: {
            const std::string &target = std::get<std::string>(v);
            KeelObject *t = find(target);
            if (!t) {
                std::vector<std::string> names;
                for (auto &x : objects_)
                    names.push_back(x->name);
                std::string note = left_out_note(target);
                throw Error(loc, "property '" + p.name + "' of device '" + o.name + "' links to '" + target +
                                     "', which is not a device" +
                                     (note.empty() ? did_you_mean(target, names) : note));
            }
            if (!p.link_type.empty() && t->type->name != p.link_type)
                throw Error(loc, "property '" + p.name + "' of device '" + o.name + "' must link to a " +
                                     p.link_type + ", but '" + target + "' is a " + t->type->name);
            *static_cast<KeelObject **>(slot) = t;
            break;
        }
        case KEEL_PROP_CHARDEV: {
            KeelChardev *c = chardevs_ ? chardevs_(std::get<std::string>(v), loc) : nullptr;
            *static_cast<KeelChardev **>(slot) = c;
            break;
        }
        case KEEL_PROP_DRIVE: {
            const std::string &id = std::get<std::string>(v);
            KeelDrive *d = find_drive(id);
            if (!d)
                throw Error(loc, "property '" + p.name + "' of device '" + o.name + "': no drive '" + id +
                                     "'" + did_you_mean(id, drive_ids()) +
                                     " (give it with -drive ...,id=" + id + ")");
            // One device per drive, as QEMU ("Drive 'ID' is already in use by another device").
            if (!d->user.empty() && d->user != o.name)
                throw Error(loc, "Drive '" + id + "' is already in use by device '" + d->user + "'");
            d->user = o.name;
            *static_cast<KeelDrive **>(slot) = d;
            break;
        }
        default:
            break; // scalars: stored above
        }
    }
}

void Machine::map_windows(KeelObject &o)
{
    const auto &reg = o.spec->reg;
    if (o.windows.size() != reg.size()) {
        Location loc = reg.empty() ? o.spec->loc : reg.back().loc;
        if (reg.size() < o.windows.size())
            throw Error(
                loc, strprintf("device '%s' (%s) has %zu register window(s) but 'reg' gives %zu address(es)",
                               o.name.c_str(), o.type->name.c_str(), o.windows.size(), reg.size()));
        throw Error(
            reg[o.windows.size()].loc,
            strprintf("device '%s' (%s) has %zu register window(s); this address has no window to map",
                      o.name.c_str(), o.type->name.c_str(), o.windows.size()));
    }
    for (size_t i = 0; i < reg.size(); ++i) {
        Window &w = o.windows[i];
        uint64_t size = w.region->size();
        if (reg[i].size && *reg[i].size != size)
            throw Error(reg[i].loc,
                        strprintf("device '%s' (%s): window %zu is %s bytes, not %s as 'reg' says",
                                  o.name.c_str(), o.type->name.c_str(), i, format_hex(size, 1).c_str(),
                                  format_hex(*reg[i].size, 1).c_str()));
        if (reg[i].base > UINT64_MAX - (size - 1))
            throw Error(reg[i].loc, "device '" + o.name + "': window does not fit below 2^64");
        // Overlaps are checked here rather than in the manifest: a window's
        // size is known only once the device has realized. A window placed
        // on a symbol overlays the RAM holding that variable.
        bool overlay = !reg[i].symbol.empty();
        for (const auto &m : spec_.memory)
            if (!overlay && reg[i].base <= m.base + (m.size - 1) && m.base <= reg[i].base + (size - 1))
                throw Error(reg[i].loc, "device '" + o.name + "' window " + span(reg[i].base, size) +
                                            " overlaps memory '" + m.name + "' " + span(m.base, m.size) +
                                            " (at " + m.loc.str() + ")");
        for (const auto &other : objects_) {
            for (size_t j = 0; j < other->windows.size(); ++j) {
                const Window &ow = other->windows[j];
                if (!ow.mapped) continue;
                uint64_t osz = ow.region->size();
                if (reg[i].base <= ow.base + (osz - 1) && ow.base <= reg[i].base + (size - 1))
                    throw Error(reg[i].loc, "device '" + o.name + "' window " + span(reg[i].base, size) +
                                                " overlaps device '" + other->name + "' " +
                                                span(ow.base, osz) + " (at " + other->spec->reg[j].loc.str() +
                                                ")");
            }
        }
        try {
            root_->add_subregion(reg[i].base, *w.region, overlay ? kOverlayPriority : 0);
        } catch (const Error &e) {
            throw Error(reg[i].loc, e.what());
        }
        w.base = reg[i].base;
        w.mapped = true;
    }
}

void Machine::wire(KeelObject &o)
{
    auto connect = [&](const std::string &group, const std::vector<IrqRef> &refs) {
        IrqOutputGroup *out = o.find_outputs(group);
        size_t have = out ? out->lines.size() : 0;
        for (size_t i = 0; i < refs.size(); ++i) {
            const IrqRef &r = refs[i];
            if (i >= have)
                throw Error(
                    r.loc,
                    strprintf("device '%s' (%s) has %zu %s interrupt output(s); '%s' has no line to connect",
                              o.name.c_str(), o.type->name.c_str(), have, group_label(group).c_str(),
                              r.str().c_str()));
            KeelObject *t = find(r.device);
            if (!t)
                throw Error(r.loc, "irq target '" + r.str() + "' names no device" + left_out_note(r.device));
            IrqInputGroup *in = t->find_inputs(r.group);
            if (!in) {
                std::vector<std::string> groups;
                for (auto &g : t->inputs)
                    groups.push_back(g->name.empty() ? "N" : g->name);
                throw Error(r.loc, "irq target '" + r.str() + "': device '" + t->name + "' (" +
                                       t->type->name + ") has no " + group_label(r.group) +
                                       " interrupt inputs" +
                                       (groups.empty() ? "" : " (it has: " + join(groups, ", ") + ")"));
            }
            if (r.index >= in->count)
                throw Error(r.loc, strprintf("irq target '%s': device '%s' (%s) has %s inputs 0..%u",
                                             r.str().c_str(), t->name.c_str(), t->type->name.c_str(),
                                             group_label(r.group).c_str(), in->count - 1));
            if (const KeelIrqLine *prev = in->driven_by[r.index])
                throw Error(r.loc, "irq target '" + r.str() + "' is already driven by device '" +
                                       prev->owner->name + "'");
            KeelIrqLine *line = out->lines[i].get();
            line->target = in;
            line->target_index = r.index;
            in->driven_by[r.index] = line;
        }
    };
    connect("", o.spec->irq);
    for (const auto &[group, refs] : o.spec->irq_out) {
        if (group.empty()) continue;
        if (!o.find_outputs(group)) {
            std::vector<std::string> names;
            for (auto &g : o.outputs)
                if (!g.name.empty()) names.push_back(g.name);
            Location loc = refs.empty() ? o.spec->loc : refs.front().loc;
            throw Error(loc, "device '" + o.name + "' (" + o.type->name +
                                 ") has no interrupt output group '" + group + "'" +
                                 did_you_mean(group, names));
        }
        connect(group, refs);
    }
}

KeelObject &Machine::create_object(const DeviceSpec &d, const TypeRecord &t)
{
    auto o = std::make_unique<KeelObject>();
    o->name = d.name;
    o->path = "/machine/" + d.name;
    o->type = &t;
    o->spec = &d;
    o->machine = this;
    size_t sz = (std::max<size_t>(t.info->instance_size, 1) + 15) & ~size_t(15);
    o->state = std::aligned_alloc(16, sz);
    std::memset(o->state, 0, sz);
    objects_.push_back(std::move(o));
    return *objects_.back();
}

void Machine::create_cpus()
{
    const CpuSpec &c = *spec_.cpus;
    const TypeRecord *t;
    try {
        t = &registry_.require_type(c.type);
    } catch (const Error &e) {
        throw Error(c.type_loc, e.what());
    }
    const KeelDeviceTypeInfo &info = *t->info;
    // The engine reads the CPU hooks and the KeelCpuCommon at the start of
    // the state: a type without them cannot run, so refuse it here.
    if (info.size < offsetof(KeelDeviceTypeInfo, cpu) + sizeof(info.cpu) || !info.cpu)
        throw Error(c.type_loc, "type '" + c.type + "' is not a CPU type (its module " + t->module_name +
                                    " does not give it CPU hooks); 'cpus' needs a CPU type such as riscv64");
    if (info.cpu->size < offsetof(KeelCpuOps, reserved))
        throw Error(c.type_loc, strprintf("CPU type '%s' has a CPU ops table of %zu bytes, smaller than the "
                                          "%zu bytes of ABI 1.0; its module %s is broken",
                                          c.type.c_str(), info.cpu->size, offsetof(KeelCpuOps, reserved),
                                          t->module_name.c_str()));
    if (info.instance_size < sizeof(KeelCpuCommon))
        throw Error(c.type_loc, strprintf("CPU type '%s' has a %zu-byte state, too small for the %zu-byte "
                                          "KeelCpuCommon it must start with; its module %s is broken",
                                          c.type.c_str(), info.instance_size, sizeof(KeelCpuCommon),
                                          t->module_name.c_str()));
    for (unsigned i = 0; i < c.count; ++i) {
        auto d = std::make_unique<DeviceSpec>();
        d->name = "cpu" + std::to_string(i);
        d->type = c.type;
        d->props = c.props;
        d->loc = c.loc;
        d->type_loc = c.type_loc;
        KeelObject &o = create_object(*d, *t);
        KEEL_CPU_COMMON(o.state)->cpu_index = i;
        cpus_.push_back(&o);
        cpu_specs_.push_back(std::move(d));
    }
}

void Machine::build()
{
    // CPUs first: devices wire their interrupt lines to them (cpu0.mti).
    if (spec_.cpus) create_cpus();

    for (const auto &m : spec_.memory) {
        auto r = m.kind == "rom" ? MemoryRegion::rom(m.name, m.size) : MemoryRegion::ram(m.name, m.size);
        r->set_owner("/machine/" + m.name);
        try {
            root_->add_subregion(m.base, *r, 0);
        } catch (const Error &e) {
            throw Error(m.loc, e.what());
        }
        memory_.push_back(std::move(r));
    }

    // Create every object first so LINK properties may point forward.
    for (auto &d : spec_.devices) {
        // `@symbol` addresses: a device whose symbol no loaded image defines
        // is left out (spike's htif when the program has no tohost).
        std::string missing;
        for (auto &r : d.reg) {
            if (r.symbol.empty()) continue;
            auto it = symbols_.find(r.symbol);
            if (it == symbols_.end()) {
                missing = r.symbol;
                break;
            }
            r.base = it->second;
        }
        if (!missing.empty()) {
            left_out_.emplace_back(d.name, "no loaded image defines symbol '" + missing + "'");
            continue;
        }
        const TypeRecord *t;
        try {
            t = &registry_.require_type(d.type);
        } catch (const Error &e) {
            throw Error(d.type_loc, e.what());
        }
        create_object(d, *t);
    }
    for (auto &o : objects_) {
        KeelError err;
        if (auto f = KEEL_HOOK(o->ops(), init); f && f(o.get(), o->state, &err) != KEEL_OK)
            throw Error(o->spec->loc,
                        "device '" + o->name + "' (" + o->type->name +
                            ") failed to initialise: " + (err.is_set ? err.message : "no reason given"));
    }
    // The CPU index again, in case init cleared the state: realize relies on it.
    for (size_t i = 0; i < cpus_.size(); ++i)
        KEEL_CPU_COMMON(cpus_[i]->state)->cpu_index = static_cast<uint32_t>(i);
    for (auto &o : objects_)
        set_properties(*o, o->spec->props);
    for (auto &o : objects_) {
        KeelError err;
        if (auto f = KEEL_HOOK(o->ops(), realize); f && f(o.get(), o->state, &err) != KEEL_OK)
            throw Error(o->spec->loc, "device '" + o->name + "' (" + o->type->name + "): " +
                                          (err.is_set ? err.message : "realize failed, no reason given"));
        o->realized = true;
        map_windows(*o);
    }
    for (auto &o : objects_)
        wire(*o);
    reset(KEEL_RESET_COLD);
}

uint8_t *Machine::add_rom(const std::string &name, uint64_t base, uint64_t size)
{
    if (size == 0 || base > UINT64_MAX - (size - 1))
        throw Error("ROM '" + name + "' at " + format_hex(base) + " does not fit the address space");
    for (const auto &m : spec_.memory)
        if (base <= m.base + (m.size - 1) && m.base <= base + (size - 1))
            throw Error(m.loc, "memory '" + m.name + "' " + span(m.base, m.size) +
                                   " overlaps the board's ROM '" + name + "' " + span(base, size));
    for (const auto &o : objects_)
        for (size_t j = 0; j < o->windows.size(); ++j) {
            const Window &w = o->windows[j];
            if (w.mapped && base <= w.base + (w.region->size() - 1) && w.base <= base + (size - 1))
                throw Error(o->spec->reg[j].loc,
                            "device '" + o->name + "' window " + span(w.base, w.region->size()) +
                                " overlaps the board's ROM '" + name + "' " + span(base, size));
        }
    auto r = MemoryRegion::rom(name, size);
    r->set_owner("/machine/" + name);
    root_->add_subregion(base, *r, 0);
    roms_.push_back(std::move(r));
    return roms_.back()->host();
}

void Machine::reset(KeelResetType type)
{
    for (auto &o : objects_)
        if (o->realized)
            if (auto f = KEEL_HOOK(o->ops(), reset)) f(o.get(), o->state, type);
}

// Set the entry point: the pc global (KeelCpuOps.pc_global) is the CPU's program counter by contract.
void set_cpu_pc(KeelObject *cpu, uint64_t pc)
{
    const KeelCpuOps *ops = cpu->type->info->cpu;
    if (ops->globals && ops->pc_global < ops->n_globals) {
        const KeelIrGlobal &g = ops->globals[ops->pc_global];
        size_t n = g.type == KEEL_IR_I32 ? 4 : 8;
        if (g.offset + n <= cpu->type->info->instance_size) {
            uint8_t buf[8];
            for (unsigned i = 0; i < 8; ++i)
                buf[i] = static_cast<uint8_t>(pc >> (8 * i));
            std::memcpy(static_cast<uint8_t *>(cpu->state) + g.offset, buf, n);
            return;
        }
    }
    throw Error(cpu->path + ": CPU type '" + cpu->type->name + "' declares no usable pc global");
}

std::string Machine::describe()
{
    std::ostringstream out;
    out << "machine '" << spec_.name << "' from " << spec_.file << "\n";
    if (!spec_.description.empty()) out << "  description: " << spec_.description << "\n";
    out << "  accel: " << (spec_.accel.empty() ? "(default)" : spec_.accel) << "\n";
    if (!spec_.board.empty()) out << "  board: " << spec_.board << "\n";
    if (spec_.cpus) out << "  cpus: " << spec_.cpus->count << " x " << spec_.cpus->type << "\n";
    for (const auto &[name, why] : left_out_)
        out << "  " << name << ": left out: " << why << "\n";
    out << "/machine\n";
    for (const auto &m : spec_.memory)
        out << "  /machine/" << m.name << "  " << m.kind << " " << span(m.base, m.size) << " ("
            << format_size(m.size) << ")\n";
    for (const auto &o : objects_) {
        const TypeRecord &t = *o->type;
        std::string file = t.module_file.substr(t.module_file.rfind('/') + 1);
        out << "  " << o->path << "  " << t.name << " (module " << t.module_name << " " << t.module_version
            << ", " << file << ")\n";
        for (size_t i = 0; i < o->windows.size(); ++i) {
            out << "    reg[" << i << "]  " << span(o->windows[i].base, o->windows[i].region->size());
            if (i < o->spec->reg.size() && !o->spec->reg[i].symbol.empty())
                out << "  (@" << o->spec->reg[i].symbol << ")";
            out << "\n";
        }
        for (const auto &g : o->outputs)
            for (const auto &l : g.lines) {
                out << "    irq" << (g.name.empty() ? "" : "-out " + g.name) << "[" << l->index << "] -> ";
                if (l->target) {
                    KeelObject *to = nullptr;
                    for (auto &x : objects_)
                        for (auto &ig : x->inputs)
                            if (ig.get() == l->target) to = x.get();
                    out << (to ? to->name : "?") << "."
                        << (l->target->name.empty() ? "" : l->target->name + "[") << l->target_index
                        << (l->target->name.empty() ? "" : "]") << "\n";
                } else {
                    out << "(not connected)\n";
                }
            }
        for (const auto &p : t.props) {
            const PropSetting *set = nullptr;
            for (const auto &s : o->spec->props)
                if (s.name == p.name) set = &s;
            std::string v = set             ? format_prop_value(p, set->value)
                            : p.has_default ? p.default_value
                                            : "(unset)";
            out << "    " << p.name << " = " << v << (set ? "" : p.has_default ? "  (default)" : "") << "\n";
        }
    }
    out << system_as_->mtree();
    return out.str();
}

} // namespace keel
