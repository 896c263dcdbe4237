// SPDX-License-Identifier: MIT
// The QOM view of the machine: "/" holds "machine", which holds every CPU and device by name.
#include "qom.h"

#include <cstddef>
#include <cstring>
#include <mutex>
#include <optional>

#include "error.h"
#include "kernel.h"
#include "main_loop.h"
#include "schema.h"

namespace keel::qom
{

namespace
{

// What a path names: the root container, the machine, or one of its objects.
struct Target {
    enum Kind { Root, MachineNode, Object } kind = Root;
    KeelObject *obj = nullptr;
};

std::string machine_type(Machine &m)
{
    return m.spec().name + "-machine";
}

bool resolve(const std::string &path, Machine *m, Target &t, Failure &err)
{
    std::string p = path;
    while (p.size() > 1 && p.back() == '/')
        p.pop_back();
    if (p == "/") {
        t.kind = Target::Root;
        return true;
    }
    if (m && (p == "/machine" || p == "machine")) {
        t.kind = Target::MachineNode;
        return true;
    }
    if (m)
        for (const auto &o : m->objects())
            if (o->path == p || (p.find('/') == std::string::npos && o->name == p)) {
                t.kind = Target::Object;
                t.obj = o.get();
                return true;
            }
    err = {"DeviceNotFound", "Device '" + path + "' not found"};
    return false;
}

std::string type_name(const Target &t, Machine *m)
{
    switch (t.kind) {
    case Target::Root:
        return "container";
    case Target::MachineNode:
        return machine_type(*m);
    case Target::Object:
        break;
    }
    return t.obj->type->name;
}

std::string prop_qom_type(const PropSchema &p)
{
    switch (p.type) {
    case KEEL_PROP_BOOL:
        return "bool";
    case KEEL_PROP_INT:
        return "int64";
    case KEEL_PROP_UINT:
        return "uint64";
    case KEEL_PROP_SIZE:
        return "size";
    case KEEL_PROP_LINK:
        return "link<" + (p.link_type.empty() ? std::string("device") : p.link_type) + ">";
    case KEEL_PROP_CHARDEV:
    case KEEL_PROP_DRIVE:
        return "str"; // QEMU's chardev and drive properties
    case KEEL_PROP_STRING:
    case KEEL_PROP_ENUM:
        break;
    }
    return "string";
}

json::Value to_json(const PropSchema &p, const KeelObject &o)
{
    auto it = o.values.find(p.name);
    if (it == o.values.end()) {
        // Never set and no default: the zero value the device sees.
        if (p.type == KEEL_PROP_BOOL) return false;
        if (p.type == KEEL_PROP_INT || p.type == KEEL_PROP_UINT || p.type == KEEL_PROP_SIZE) return 0;
        return "";
    }
    const PropValue &v = it->second;
    if (p.type == KEEL_PROP_ENUM) {
        uint64_t i = std::get<uint64_t>(v);
        return i < p.enum_values.size() ? json::Value(p.enum_values[i]) : json::Value(i);
    }
    if (auto *b = std::get_if<bool>(&v)) return *b;
    if (auto *i = std::get_if<int64_t>(&v)) return *i;
    if (auto *u = std::get_if<uint64_t>(&v)) return *u;
    return std::get<std::string>(v);
}

Failure not_found(const KeelObject &o, const std::string &prop)
{
    return {"GenericError", "Property '" + o.type->name + "." + prop + "' not found"};
}

} // namespace

bool list(const std::string &path, std::vector<PropInfo> &out, Failure &err)
{
    std::lock_guard<std::recursive_mutex> g(big_lock());
    Machine *m = kernel().machine();
    Target t;
    if (!resolve(path, m, t, err)) return false;
    out.clear();
    out.push_back({"type", "string"});
    switch (t.kind) {
    case Target::Root:
        if (m) out.push_back({"machine", "child<" + machine_type(*m) + ">"});
        break;
    case Target::MachineNode:
        for (const auto &o : m->objects())
            out.push_back({o->name, "child<" + o->type->name + ">"});
        break;
    case Target::Object:
        for (const auto &p : t.obj->type->props)
            out.push_back({p.name, prop_qom_type(p)});
        break;
    }
    return true;
}

bool get(const std::string &path, const std::string &prop, json::Value &out, Failure &err)
{
    std::lock_guard<std::recursive_mutex> g(big_lock());
    Machine *m = kernel().machine();
    Target t;
    if (!resolve(path, m, t, err)) return false;
    if (prop == "type") {
        out = type_name(t, m);
        return true;
    }
    if (t.kind == Target::Object) {
        if (const PropSchema *p = t.obj->type->find_prop(prop)) {
            out = to_json(*p, *t.obj);
            return true;
        }
        err = not_found(*t.obj, prop);
        return false;
    }
    // Children are objects, not values: QEMU answers with their path.
    if (t.kind == Target::MachineNode)
        for (const auto &o : m->objects())
            if (o->name == prop) {
                out = o->path;
                return true;
            }
    if (t.kind == Target::Root && m && prop == "machine") {
        out = "/machine";
        return true;
    }
    err = {"GenericError", "Property '" + type_name(t, m) + "." + prop + "' not found"};
    return false;
}

bool set(const std::string &path, const std::string &prop, const json::Value &value, Failure &err)
{
    std::lock_guard<std::recursive_mutex> g(big_lock());
    Machine *m = kernel().machine();
    Target t;
    if (!resolve(path, m, t, err)) return false;
    auto not_writable = [&] {
        err = {"GenericError", "Property '" + type_name(t, m) + "." + prop + "' is not writable"};
        return false;
    };
    if (t.kind != Target::Object) {
        if (prop == "type" || (t.kind == Target::MachineNode && m->find(prop))) return not_writable();
        err = {"GenericError", "Property '" + type_name(t, m) + "." + prop + "' not found"};
        return false;
    }
    KeelObject &o = *t.obj;
    const PropSchema *p = prop == "type" ? nullptr : o.type->find_prop(prop);
    if (prop == "type") return not_writable();
    if (!p) {
        err = not_found(o, prop);
        return false;
    }
    bool reference = p->type == KEEL_PROP_LINK || p->type == KEEL_PROP_CHARDEV || p->type == KEEL_PROP_DRIVE;
    if (!(p->flags & KEEL_PROPF_SETTABLE) || reference) return not_writable();
    // The value in manifest spelling, so the schema's own parser checks ranges and enum names.
    std::string text;
    const char *expected = nullptr;
    switch (p->type) {
    case KEEL_PROP_BOOL:
        if (value.is_bool())
            text = value.as_bool() ? "true" : "false";
        else
            expected = "boolean";
        break;
    case KEEL_PROP_INT:
        if (value.type() == json::Value::Type::Int)
            text = std::to_string(value.as_int());
        else
            expected = "integer";
        break;
    case KEEL_PROP_UINT:
    case KEEL_PROP_SIZE:
        if (value.type() == json::Value::Type::Uint || (value.is_integer() && value.as_int() >= 0))
            text = std::to_string(value.as_uint());
        else if (value.is_integer())
            err = {"GenericError", "Parameter '" + prop + "' expects uint64"};
        else
            expected = "integer";
        break;
    default:
        if (value.is_string())
            text = value.as_string();
        else
            expected = "string";
        break;
    }
    if (expected) err = {"GenericError", "Invalid parameter type for '" + prop + "', expected: " + expected};
    if (!err.desc.empty()) return false;
    PropValue v;
    std::string perr;
    if (!parse_prop_value(*p, text, v, perr)) {
        err = {"GenericError", perr};
        return false;
    }
    // Keep the old value and bytes: a device that refuses the change gets them back.
    auto old_it = o.values.find(p->name);
    std::optional<PropValue> old_value;
    if (old_it != o.values.end()) old_value = old_it->second;
    uint8_t old_bytes[sizeof(uint64_t)];
    size_t n = prop_storage_size(p->type);
    std::memcpy(old_bytes, static_cast<uint8_t *>(o.state) + p->offset, n);
    store_scalar_property(o, *p, v);
    o.values[p->name] = v;
    // Modules built before the hook existed have a shorter ops table.
    const KeelDeviceOps *ops = o.ops();
    auto f = ops && KEEL_HAS_FIELD(ops, KeelDeviceOps, property_changed) ? ops->property_changed : nullptr;
    if (f) {
        KeelError kerr;
        if (f(&o, o.state, p->name.c_str(), &kerr) != KEEL_OK) {
            std::memcpy(static_cast<uint8_t *>(o.state) + p->offset, old_bytes, n);
            if (old_value)
                o.values[p->name] = *old_value;
            else
                o.values.erase(p->name);
            err = {"GenericError", "device '" + o.name + "' refused " + prop + "=" + text + ": " +
                                       (kerr.is_set ? kerr.message : "no reason given")};
            return false;
        }
    }
    return true;
}

} // namespace keel::qom
