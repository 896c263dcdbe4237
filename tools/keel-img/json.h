// SPDX-License-Identifier: MIT
// A small ordered JSON value and the pretty printer keel-img uses, laid out as qemu-img prints JSON.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace keelimg
{

class Json
{
  public:
    enum class Kind { Null, Bool, Int, String, Object, Array };

    Json() = default;
    static Json boolean(bool b);
    static Json integer(int64_t i);
    static Json string(const std::string &s);
    static Json object();
    static Json array();

    // Objects keep their keys in insertion order: scripts see qemu-img's order.
    Json &set(const std::string &key, Json value);
    Json &push(Json value);
    bool empty() const { return members_.empty() && items_.empty(); }

    // qemu-img's layout: 4-space indent, "key": value, one member per line.
    std::string dump(int indent = 0) const;

  private:
    Kind kind_ = Kind::Null;
    bool b_ = false;
    int64_t i_ = 0;
    std::string s_;
    std::vector<std::pair<std::string, Json>> members_;
    std::vector<Json> items_;
};

// A JSON string literal (quotes included).
std::string json_quote(const std::string &s);

} // namespace keelimg
