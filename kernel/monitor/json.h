// SPDX-License-Identifier: MIT
// A small JSON value, a strict parser with limits (depth, size) and a serializer in QMP's spelling, plus the
// stream splitter that cuts a byte stream into JSON messages as QEMU's does.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace keel::json
{

// Deeper nesting than this is an error (QEMU's limit), so parsing and destroying never exhaust the stack.
constexpr unsigned kMaxDepth = 1024;
// A message longer than this is an error; its bytes are dropped up to the next newline.
constexpr size_t kMaxMessage = 16u << 20;

class Value
{
  public:
    enum class Type { Null, Bool, Int, Uint, Double, String, Array, Object };
    using Array = std::vector<Value>;
    using Object = std::vector<std::pair<std::string, Value>>; // in insertion order, as QEMU prints

    Value() = default;
    Value(std::nullptr_t) {}
    Value(bool b) : v_(b) {}
    template <std::integral T>
    requires(!std::same_as<T, bool>) Value(T i)
    {
        if constexpr (std::is_signed_v<T>)
            v_ = static_cast<int64_t>(i);
        else if (static_cast<uint64_t>(i) <= static_cast<uint64_t>(INT64_MAX))
            v_ = static_cast<int64_t>(i); // one spelling for every non-negative integer that fits
        else
            v_ = static_cast<uint64_t>(i);
    }
    Value(double d) : v_(d) {}
    Value(const char *s) : v_(std::string(s)) {}
    Value(std::string s) : v_(std::move(s)) {}
    Value(std::string_view s) : v_(std::string(s)) {}
    Value(Array a) : v_(std::move(a)) {}
    Value(Object o) : v_(std::move(o)) {}

    static Value object() { return Value(Object{}); }
    static Value array() { return Value(Array{}); }

    Type type() const { return static_cast<Type>(v_.index()); }
    bool is_null() const { return type() == Type::Null; }
    bool is_bool() const { return type() == Type::Bool; }
    // Int or Uint: a number written without fraction or exponent that fits 64 bits.
    bool is_integer() const { return type() == Type::Int || type() == Type::Uint; }
    bool is_number() const { return is_integer() || type() == Type::Double; }
    bool is_string() const { return type() == Type::String; }
    bool is_array() const { return type() == Type::Array; }
    bool is_object() const { return type() == Type::Object; }

    bool as_bool() const { return std::get<bool>(v_); }
    // Int as is, Uint reinterpreted (QEMU's visitors take either for a uint64).
    int64_t as_int() const
    {
        return type() == Type::Int ? std::get<int64_t>(v_) : static_cast<int64_t>(std::get<uint64_t>(v_));
    }
    uint64_t as_uint() const { return static_cast<uint64_t>(as_int()); }
    double as_double() const;
    const std::string &as_string() const { return std::get<std::string>(v_); }
    const Array &as_array() const { return std::get<Array>(v_); }
    Array &as_array() { return std::get<Array>(v_); }
    const Object &as_object() const { return std::get<Object>(v_); }
    Object &as_object() { return std::get<Object>(v_); }

    // Object member `key`, or nullptr (also when this is no object).
    const Value *get(std::string_view key) const;
    // Object: set member `key` (replacing one of that name). Returns *this for chaining.
    Value &set(std::string key, Value v);
    // Array: append.
    Value &push(Value v);

    // Compact QMP spelling ({"a": 1, "b": [1, 2]}), or indented (QEMU's pretty=on). Strings come out as
    // ASCII: other characters as \uXXXX, bytes that are not UTF-8 as \uFFFD.
    std::string dump(bool pretty = false) const;

    bool operator==(const Value &o) const = default;

  private:
    void dump_to(std::string &out, bool pretty, unsigned indent) const;
    std::variant<std::nullptr_t, bool, int64_t, uint64_t, double, std::string, Array, Object> v_;
};

// Parse one complete JSON text. On failure returns false and sets `err` to what is wrong, e.g.
// "expecting value", "invalid keyword 'foo'", "invalid UTF-8 sequence in string".
bool parse(std::string_view text, Value &out, std::string &err);

// The string as a JSON string literal (quotes included).
std::string quote(std::string_view s);

// Cuts a byte stream into messages: a top-level object or array ends when its brackets balance, anything
// else at top level at the end of its line (or an opening bracket). Strings are tracked so brackets inside
// them do not count; a control byte inside a string ends the message (it cannot be valid) so the stream
// resynchronises. Too deep or too long input is reported once and skipped up to the next newline.
class Streamer
{
  public:
    // `text` is a message to parse; `error` (non-empty) is a stream error instead (text empty).
    using Fn = std::function<void(std::string_view text, const std::string &error)>;
    void feed(const char *data, size_t len, const Fn &fn);
    void reset() { *this = Streamer(); }

  private:
    void emit(const Fn &fn);
    std::string buf_;
    unsigned depth_ = 0;
    bool in_string_ = false;
    bool escape_ = false;
    bool discard_ = false; // dropping bytes up to the next newline
};

} // namespace keel::json
