// SPDX-License-Identifier: MIT
// Type and property schemas as the kernel sees them: from a loaded module or from the module index.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <keel/device.h>

namespace keel
{

struct PropSchema {
    std::string name;
    KeelPropType type = KEEL_PROP_STRING;
    uint32_t flags = 0; // KEEL_PROPF_*
    bool has_default = false;
    std::string default_value; // manifest spelling
    std::string doc;
    uint64_t min = 0, max = 0; // meaningful with KEEL_PROPF_RANGE (INT: int64_t bit patterns)
    std::vector<std::string> enum_values;
    std::string link_type; // KEEL_PROP_LINK: required target type, or empty
    size_t offset = 0;     // where the value lives in the instance state

    bool required() const { return flags & KEEL_PROPF_REQUIRED; }
};

struct TypeSchema {
    std::string name;
    std::string kind = "device"; // what the module's KeelModuleKind says
    std::string description;
    std::string module_name;    // "ns16550a"
    std::string module_file;    // absolute path of the .so
    std::string module_version; // semver of the module
    std::vector<PropSchema> props;

    const PropSchema *find_prop(std::string_view n) const
    {
        for (const auto &p : props)
            if (p.name == n) return &p;
        return nullptr;
    }
    std::vector<std::string> prop_names() const
    {
        std::vector<std::string> out;
        for (const auto &p : props)
            out.push_back(p.name);
        return out;
    }
};

// Where manifest validation learns which types exist. The registry
// implements it from the module index (no module is loaded to validate).
class SchemaProvider
{
  public:
    virtual ~SchemaProvider() = default;
    virtual const TypeSchema *find_type(std::string_view name) const = 0;
    virtual std::vector<std::string> type_names() const = 0;
};

// A property value parsed against its schema. LINK, CHARDEV and DRIVE keep
// the referenced name as a string; they are resolved when the machine is built.
using PropValue = std::variant<bool, int64_t, uint64_t, std::string>;

// Parse `text` (manifest or -device spelling) for property `p`. On failure
// returns false and sets `err` to a message without location, e.g.
// "value 2000 is out of range 1..1023 for property 'num-sources'" or
// "'fast' is not a valid value for property 'mode' (expected one of: normal, sticky)".
// ENUM values are returned as the uint64_t index into enum_values.
bool parse_prop_value(const PropSchema &p, std::string_view text, PropValue &out, std::string &err);

// The manifest spelling of a value ("0x10000000" for UINT, "128M"-style for
// SIZE when exact, the name for ENUM).
std::string format_prop_value(const PropSchema &p, const PropValue &v);

// "bool", "int", "uint", "size", "string", "enum", "link", "chardev", "drive"
const char *prop_type_name(KeelPropType t);

// Bytes a property of type `t` occupies in the instance state (see
// <keel/device.h>); 0 for an unknown type.
inline size_t prop_storage_size(KeelPropType t)
{
    switch (t) {
    case KEEL_PROP_BOOL:
        return sizeof(bool);
    case KEEL_PROP_INT:
        return sizeof(int64_t);
    case KEEL_PROP_UINT:
    case KEEL_PROP_SIZE:
        return sizeof(uint64_t);
    case KEEL_PROP_ENUM:
        return sizeof(int32_t);
    case KEEL_PROP_STRING:
    case KEEL_PROP_LINK:
    case KEEL_PROP_CHARDEV:
    case KEEL_PROP_DRIVE:
        return sizeof(void *);
    }
    return 0;
}

} // namespace keel
