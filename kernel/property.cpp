// SPDX-License-Identifier: MIT
// Property values: parsing manifest/-device spellings against a schema, and formatting them back.
#include <string>

#include "error.h"
#include "schema.h"
#include "util.h"

namespace keel
{

namespace
{

// The bounds of a range as the user would write them.
std::string bound(const PropSchema &p, uint64_t v)
{
    if (p.type == KEEL_PROP_INT) return std::to_string(static_cast<int64_t>(v));
    if (p.type == KEEL_PROP_SIZE) return format_prop_value(p, PropValue(v));
    return std::to_string(v);
}

std::string out_of_range(const PropSchema &p, std::string_view text)
{
    return "value " + std::string(text) + " is out of range " + bound(p, p.min) + ".." + bound(p, p.max) +
           " for property '" + p.name + "'";
}

} // namespace

const char *prop_type_name(KeelPropType t)
{
    switch (t) {
    case KEEL_PROP_BOOL:
        return "bool";
    case KEEL_PROP_INT:
        return "int";
    case KEEL_PROP_UINT:
        return "uint";
    case KEEL_PROP_SIZE:
        return "size";
    case KEEL_PROP_STRING:
        return "string";
    case KEEL_PROP_ENUM:
        return "enum";
    case KEEL_PROP_LINK:
        return "link";
    case KEEL_PROP_CHARDEV:
        return "chardev";
    case KEEL_PROP_DRIVE:
        return "drive";
    }
    return "unknown";
}

bool parse_prop_value(const PropSchema &p, std::string_view text, PropValue &out, std::string &err)
{
    const std::string q = "'" + std::string(text) + "'";
    const std::string prop = "property '" + p.name + "'";
    const bool ranged = p.flags & KEEL_PROPF_RANGE;
    switch (p.type) {
    case KEEL_PROP_BOOL: {
        auto b = parse_bool(text);
        if (!b) {
            err = q + " is not a valid value for " + prop + " (expected true/false, on/off or yes/no)";
            return false;
        }
        out = *b;
        return true;
    }
    case KEEL_PROP_INT: {
        auto v = parse_int(text);
        if (!v) {
            err = q + " is not a valid integer for " + prop;
            return false;
        }
        if (ranged && (*v < static_cast<int64_t>(p.min) || *v > static_cast<int64_t>(p.max))) {
            err = out_of_range(p, text);
            return false;
        }
        out = *v;
        return true;
    }
    case KEEL_PROP_UINT:
    case KEEL_PROP_SIZE: {
        bool size = p.type == KEEL_PROP_SIZE;
        auto v = size ? parse_size(text) : parse_uint(text);
        if (!v) {
            err = size ? q + " is not a valid size for " + prop +
                             " (a number with an optional K, M, G or T suffix)"
                       : q + " is not a valid unsigned integer for " + prop;
            return false;
        }
        if (ranged && (*v < p.min || *v > p.max)) {
            err = out_of_range(p, text);
            return false;
        }
        out = *v;
        return true;
    }
    case KEEL_PROP_ENUM:
        for (size_t i = 0; i < p.enum_values.size(); ++i)
            if (p.enum_values[i] == text) {
                out = static_cast<uint64_t>(i);
                return true;
            }
        err =
            q + " is not a valid value for " + prop + " (expected one of: " + join(p.enum_values, ", ") + ")";
        return false;
    case KEEL_PROP_STRING:
        out = std::string(text);
        return true;
    case KEEL_PROP_LINK:
    case KEEL_PROP_CHARDEV:
    case KEEL_PROP_DRIVE:
        // Only the shape is checked here; what the name refers to is
        // resolved against the manifest and the command line later.
        if (text.empty()) {
            err = prop + " needs " +
                  (p.type == KEEL_PROP_LINK      ? "a device name"
                   : p.type == KEEL_PROP_CHARDEV ? "a chardev id"
                                                 : "a drive id");
            return false;
        }
        out = std::string(text);
        return true;
    }
    err = prop + " has an unknown type";
    return false;
}

std::string format_prop_value(const PropSchema &p, const PropValue &v)
{
    if (const auto *b = std::get_if<bool>(&v)) return *b ? "true" : "false";
    if (const auto *i = std::get_if<int64_t>(&v)) return std::to_string(*i);
    if (const auto *s = std::get_if<std::string>(&v)) return *s;
    uint64_t u = std::get<uint64_t>(v);
    switch (p.type) {
    case KEEL_PROP_ENUM:
        return u < p.enum_values.size() ? p.enum_values[u] : std::to_string(u);
    case KEEL_PROP_SIZE: {
        static const char suffix[] = "KMGTPE";
        int unit = -1;
        while (u != 0 && (u & 1023) == 0 && unit < 5) {
            u >>= 10;
            ++unit;
        }
        return std::to_string(u) + (unit < 0 ? "" : std::string(1, suffix[unit]));
    }
    default:
        // Addresses and masks read best in hex, counts and frequencies in
        // decimal; a value that is a multiple of 64 KiB is most likely the former.
        if (u != 0 && (u & 0xffff) == 0) return format_hex(u, 1);
        return std::to_string(u);
    }
}

} // namespace keel
