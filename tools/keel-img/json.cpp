// SPDX-License-Identifier: MIT
// A small ordered JSON value and its qemu-img-style pretty printer.
#include "json.h"

#include <cstdio>

namespace keelimg
{

Json Json::boolean(bool b)
{
    Json j;
    j.kind_ = Kind::Bool;
    j.b_ = b;
    return j;
}

Json Json::integer(int64_t i)
{
    Json j;
    j.kind_ = Kind::Int;
    j.i_ = i;
    return j;
}

Json Json::string(const std::string &s)
{
    Json j;
    j.kind_ = Kind::String;
    j.s_ = s;
    return j;
}

Json Json::object()
{
    Json j;
    j.kind_ = Kind::Object;
    return j;
}

Json Json::array()
{
    Json j;
    j.kind_ = Kind::Array;
    return j;
}

Json &Json::set(const std::string &key, Json value)
{
    members_.emplace_back(key, std::move(value));
    return *this;
}

Json &Json::push(Json value)
{
    items_.push_back(std::move(value));
    return *this;
}

std::string json_quote(const std::string &s)
{
    std::string out = "\"";
    for (unsigned char c : s) {
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
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            if (c < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", c);
                out += buf;
            } else {
                out += static_cast<char>(c);
            }
        }
    }
    return out + "\"";
}

std::string Json::dump(int indent) const
{
    std::string pad(static_cast<size_t>(indent) * 4, ' ');
    std::string inner(static_cast<size_t>(indent + 1) * 4, ' ');
    switch (kind_) {
    case Kind::Null:
        return "null";
    case Kind::Bool:
        return b_ ? "true" : "false";
    case Kind::Int:
        return std::to_string(i_);
    case Kind::String:
        return json_quote(s_);
    case Kind::Object: {
        if (members_.empty()) return "{\n" + pad + "}";
        std::string out = "{\n";
        for (size_t k = 0; k < members_.size(); ++k) {
            out += inner + json_quote(members_[k].first) + ": " + members_[k].second.dump(indent + 1);
            out += k + 1 < members_.size() ? ",\n" : "\n";
        }
        return out + pad + "}";
    }
    case Kind::Array: {
        if (items_.empty()) return "[\n" + pad + "]";
        std::string out = "[\n";
        for (size_t k = 0; k < items_.size(); ++k) {
            out += inner + items_[k].dump(indent + 1);
            out += k + 1 < items_.size() ? ",\n" : "\n";
        }
        return out + pad + "]";
    }
    }
    return "null";
}

} // namespace keelimg
