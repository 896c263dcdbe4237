// SPDX-License-Identifier: MIT
// JSON for QMP: values, a strict parser that never trusts its input, QMP's serializer, the stream splitter.
#include "json.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace keel::json
{

double Value::as_double() const
{
    switch (type()) {
    case Type::Int:
        return static_cast<double>(std::get<int64_t>(v_));
    case Type::Uint:
        return static_cast<double>(std::get<uint64_t>(v_));
    default:
        return std::get<double>(v_);
    }
}

const Value *Value::get(std::string_view key) const
{
    if (!is_object()) return nullptr;
    for (const auto &[k, v] : as_object())
        if (k == key) return &v;
    return nullptr;
}

Value &Value::set(std::string key, Value v)
{
    for (auto &[k, old] : as_object())
        if (k == key) {
            old = std::move(v);
            return *this;
        }
    as_object().emplace_back(std::move(key), std::move(v));
    return *this;
}

Value &Value::push(Value v)
{
    as_array().push_back(std::move(v));
    return *this;
}

namespace
{

// Decode one UTF-8 sequence at s[i]; returns its length (0: not valid UTF-8) and the code point.
size_t utf8_decode(std::string_view s, size_t i, uint32_t &cp)
{
    auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
    uint8_t c = b(i);
    size_t n;
    uint32_t min;
    if (c < 0x80) {
        cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        n = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (i + n > s.size()) return 0;
    for (size_t k = 1; k < n; ++k) {
        if ((b(i + k) & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (b(i + k) & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}

void utf8_encode(uint32_t cp, std::string &out)
{
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xc0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xe0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
        out += static_cast<char>(0xf0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    }
}

void quote_to(std::string_view s, std::string &out)
{
    char tmp[16];
    out += '"';
    for (size_t i = 0; i < s.size();) {
        uint32_t cp;
        size_t n = utf8_decode(s, i, cp);
        if (n == 0) {
            cp = 0xfffd; // a byte that is not UTF-8 (guest or file data in HMP output)
            n = 1;
        }
        i += n;
        switch (cp) {
        case '"':
            out += "\\\"";
            continue;
        case '\\':
            out += "\\\\";
            continue;
        case '\b':
            out += "\\b";
            continue;
        case '\f':
            out += "\\f";
            continue;
        case '\n':
            out += "\\n";
            continue;
        case '\r':
            out += "\\r";
            continue;
        case '\t':
            out += "\\t";
            continue;
        default:
            break;
        }
        if (cp >= 0x20 && cp < 0x7f) {
            out += static_cast<char>(cp);
        } else if (cp < 0x10000) {
            std::snprintf(tmp, sizeof tmp, "\\u%04x", static_cast<unsigned>(cp));
            out += tmp;
        } else {
            cp -= 0x10000;
            std::snprintf(tmp, sizeof tmp, "\\u%04x\\u%04x", static_cast<unsigned>(0xd800 + (cp >> 10)),
                          static_cast<unsigned>(0xdc00 + (cp & 0x3ff)));
            out += tmp;
        }
    }
    out += '"';
}

std::string format_double(double d)
{
    // JSON has no infinity or NaN: 1e999 reads back as infinity in every parser that has one.
    if (std::isnan(d)) return "null";
    if (std::isinf(d)) return d > 0 ? "1e999" : "-1e999";
    char buf[32];
    // The shortest spelling that reads back as the same double.
    for (int prec = 15; prec <= 17; ++prec) {
        std::snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (std::strtod(buf, nullptr) == d) break;
    }
    std::string s = buf;
    // Keep it a float when read back ("2" would become an integer).
    if (s.find_first_of(".eE") == std::string::npos) s += ".0";
    return s;
}

void newline(std::string &out, unsigned indent)
{
    out += '\n';
    out.append(4 * indent, ' ');
}

class Parser
{
  public:
    explicit Parser(std::string_view s) : s_(s) {}

    bool run(Value &out, std::string &err)
    {
        skip_ws();
        if (!value(out, 0)) {
            err = err_;
            return false;
        }
        skip_ws();
        if (i_ != s_.size()) {
            err = unexpected();
            return false;
        }
        return true;
    }

  private:
    bool fail(std::string e)
    {
        if (err_.empty()) err_ = std::move(e);
        return false;
    }
    // What stands at i_, for an error message: a word is shown (cut short), a byte as itself.
    std::string unexpected()
    {
        if (i_ >= s_.size()) return "expecting value";
        char c = s_[i_];
        if (std::isalpha(static_cast<unsigned char>(c))) {
            size_t e = i_;
            while (e < s_.size() && std::isalnum(static_cast<unsigned char>(s_[e])))
                ++e;
            std::string w(s_.substr(i_, e - i_));
            if (w.size() > 32) w = w.substr(0, 32) + "...";
            return "invalid keyword '" + w + "'";
        }
        unsigned char u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f) {
            char buf[16];
            std::snprintf(buf, sizeof buf, "stray byte 0x%02x", u);
            return buf;
        }
        return std::string("stray '") + c + "'";
    }
    void skip_ws()
    {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
            ++i_;
    }
    bool literal(std::string_view word)
    {
        if (s_.substr(i_, word.size()) != word) return false;
        size_t e = i_ + word.size();
        if (e < s_.size() && std::isalnum(static_cast<unsigned char>(s_[e]))) return false;
        i_ = e;
        return true;
    }

    bool value(Value &out, unsigned depth)
    {
        if (i_ >= s_.size()) return fail("expecting value");
        char c = s_[i_];
        if (c == '{' || c == '[') {
            if (depth + 1 > kMaxDepth) return fail("nesting depth limit exceeded");
            return c == '{' ? object(out, depth + 1) : array(out, depth + 1);
        }
        if (c == '"') {
            std::string str;
            if (!string(str)) return false;
            out = Value(std::move(str));
            return true;
        }
        if (c == '-' || (c >= '0' && c <= '9')) return number(out);
        if (literal("true")) {
            out = Value(true);
            return true;
        }
        if (literal("false")) {
            out = Value(false);
            return true;
        }
        if (literal("null")) {
            out = Value(nullptr);
            return true;
        }
        return fail(unexpected());
    }

    bool object(Value &out, unsigned depth)
    {
        ++i_; // {
        Value obj = Value::object();
        skip_ws();
        if (i_ < s_.size() && s_[i_] == '}') {
            ++i_;
            out = std::move(obj);
            return true;
        }
        for (;;) {
            skip_ws();
            if (i_ >= s_.size()) return fail("expecting value");
            if (s_[i_] != '"')
                return fail(s_[i_] == '}' ? "expecting value" : "key is not a string in object");
            std::string key;
            if (!string(key)) return false;
            skip_ws();
            if (i_ >= s_.size() || s_[i_] != ':') return fail("missing : in object pair");
            ++i_;
            skip_ws();
            Value v;
            if (!value(v, depth)) return false;
            // A repeated key: the last one wins (QEMU's dict does the same).
            obj.set(std::move(key), std::move(v));
            skip_ws();
            if (i_ < s_.size() && s_[i_] == ',') {
                ++i_;
                continue;
            }
            if (i_ < s_.size() && s_[i_] == '}') {
                ++i_;
                out = std::move(obj);
                return true;
            }
            return fail("expected separator in dict");
        }
    }

    bool array(Value &out, unsigned depth)
    {
        ++i_; // [
        Value arr = Value::array();
        skip_ws();
        if (i_ < s_.size() && s_[i_] == ']') {
            ++i_;
            out = std::move(arr);
            return true;
        }
        for (;;) {
            skip_ws();
            Value v;
            if (!value(v, depth)) return false;
            arr.push(std::move(v));
            skip_ws();
            if (i_ < s_.size() && s_[i_] == ',') {
                ++i_;
                continue;
            }
            if (i_ < s_.size() && s_[i_] == ']') {
                ++i_;
                out = std::move(arr);
                return true;
            }
            return fail("expected separator in list");
        }
    }

    bool hex4(uint32_t &v)
    {
        if (i_ + 4 > s_.size()) return false;
        v = 0;
        for (int k = 0; k < 4; ++k) {
            char c = s_[i_ + k];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= c - '0';
            else if (c >= 'a' && c <= 'f')
                v |= c - 'a' + 10;
            else if (c >= 'A' && c <= 'F')
                v |= c - 'A' + 10;
            else
                return false;
        }
        i_ += 4;
        return true;
    }

    bool string(std::string &out)
    {
        ++i_; // "
        for (;;) {
            if (i_ >= s_.size()) return fail("missing closing quote in string");
            unsigned char c = static_cast<unsigned char>(s_[i_]);
            if (c == '"') {
                ++i_;
                return true;
            }
            if (c < 0x20) return fail("control character in string");
            if (c == '\\') {
                if (++i_ >= s_.size()) return fail("missing closing quote in string");
                char e = s_[i_++];
                switch (e) {
                case '"':
                case '\\':
                case '/':
                    out += e;
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'u': {
                    uint32_t cp;
                    if (!hex4(cp)) return fail("invalid \\u escape in string (\\uXXXX, four hex digits)");
                    if (cp >= 0xd800 && cp <= 0xdbff) {
                        uint32_t lo;
                        if (s_.substr(i_, 2) != "\\u") return fail("unpaired surrogate \\u escape in string");
                        i_ += 2;
                        if (!hex4(lo) || lo < 0xdc00 || lo > 0xdfff)
                            return fail("unpaired surrogate \\u escape in string");
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                        return fail("unpaired surrogate \\u escape in string");
                    }
                    // QEMU refuses NUL: every string ends up as a C string somewhere.
                    if (cp == 0) return fail("\\u0000 is not supported");
                    utf8_encode(cp, out);
                    break;
                }
                default:
                    return fail(std::string("invalid escape sequence '\\") +
                                (static_cast<unsigned char>(e) >= 0x20 && static_cast<unsigned char>(e) < 0x7f
                                     ? std::string(1, e)
                                     : std::string("?")) +
                                "' in string");
                }
                continue;
            }
            uint32_t cp;
            size_t n = utf8_decode(s_, i_, cp);
            if (n == 0) return fail("invalid UTF-8 sequence in string");
            out.append(s_.substr(i_, n));
            i_ += n;
        }
    }

    bool number(Value &out)
    {
        size_t start = i_;
        bool integer = true;
        if (s_[i_] == '-') ++i_;
        auto digits = [&] {
            size_t d = i_;
            while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9')
                ++i_;
            return i_ - d;
        };
        if (i_ < s_.size() && s_[i_] == '0') {
            ++i_;
        } else if (digits() == 0) {
            return fail("invalid number");
        }
        if (i_ < s_.size() && s_[i_] == '.') {
            ++i_;
            integer = false;
            if (digits() == 0) return fail("invalid number");
        }
        if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
            ++i_;
            integer = false;
            if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
            if (digits() == 0) return fail("invalid number");
        }
        if (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.'))
            return fail("invalid number");
        std::string text(s_.substr(start, i_ - start));
        if (integer) {
            // As QEMU: int64 if it fits, else uint64, else a double.
            errno = 0;
            char *end;
            long long v = std::strtoll(text.c_str(), &end, 10);
            if (errno == 0) {
                out = Value(static_cast<int64_t>(v));
                return true;
            }
            if (text[0] != '-') {
                errno = 0;
                unsigned long long u = std::strtoull(text.c_str(), &end, 10);
                if (errno == 0) {
                    out = Value(static_cast<uint64_t>(u));
                    return true;
                }
            }
        }
        out = Value(std::strtod(text.c_str(), nullptr)); // out of range: +-inf or 0, as strtod says
        return true;
    }

    std::string_view s_;
    size_t i_ = 0;
    std::string err_;
};

} // namespace

void Value::dump_to(std::string &out, bool pretty, unsigned indent) const
{
    switch (type()) {
    case Type::Null:
        out += "null";
        return;
    case Type::Bool:
        out += as_bool() ? "true" : "false";
        return;
    case Type::Int:
        out += std::to_string(std::get<int64_t>(v_));
        return;
    case Type::Uint:
        out += std::to_string(std::get<uint64_t>(v_));
        return;
    case Type::Double:
        out += format_double(std::get<double>(v_));
        return;
    case Type::String:
        quote_to(as_string(), out);
        return;
    case Type::Array: {
        const Array &a = as_array();
        out += '[';
        for (size_t k = 0; k < a.size(); ++k) {
            if (k) out += pretty ? "," : ", ";
            if (pretty) newline(out, indent + 1);
            a[k].dump_to(out, pretty, indent + 1);
        }
        if (pretty && !a.empty()) newline(out, indent);
        out += ']';
        return;
    }
    case Type::Object: {
        const Object &o = as_object();
        out += '{';
        for (size_t k = 0; k < o.size(); ++k) {
            if (k) out += pretty ? "," : ", ";
            if (pretty) newline(out, indent + 1);
            quote_to(o[k].first, out);
            out += ": ";
            o[k].second.dump_to(out, pretty, indent + 1);
        }
        if (pretty && !o.empty()) newline(out, indent);
        out += '}';
        return;
    }
    }
}

std::string Value::dump(bool pretty) const
{
    std::string out;
    dump_to(out, pretty, 0);
    return out;
}

bool parse(std::string_view text, Value &out, std::string &err)
{
    return Parser(text).run(out, err);
}

std::string quote(std::string_view s)
{
    std::string out;
    quote_to(s, out);
    return out;
}

void Streamer::emit(const Fn &fn)
{
    std::string msg = std::move(buf_);
    buf_.clear();
    depth_ = 0;
    in_string_ = escape_ = false;
    fn(msg, "");
}

void Streamer::feed(const char *data, size_t len, const Fn &fn)
{
    for (size_t k = 0; k < len; ++k) {
        char c = data[k];
        if (discard_) {
            if (c == '\n') discard_ = false;
            continue;
        }
        auto ws = [](char x) { return x == ' ' || x == '\t' || x == '\n' || x == '\r'; };
        if (in_string_) {
            if (static_cast<unsigned char>(c) < 0x20) {
                // A raw control byte cannot be in a JSON string: this message is bad; start afresh after it.
                buf_ += c;
                emit(fn);
                continue;
            }
            buf_ += c;
            if (escape_)
                escape_ = false;
            else if (c == '\\')
                escape_ = true;
            else if (c == '"')
                in_string_ = false;
        } else if (depth_ == 0) {
            // Anything else at top level is one message up to the end of its line, so a garbage line is
            // one error however long it is.
            if (c == '\n') {
                if (!buf_.empty()) emit(fn);
                continue;
            }
            if (ws(c) && buf_.empty()) continue;
            if ((c == '{' || c == '[') && !buf_.empty()) emit(fn);
            buf_ += c;
            if (c == '{' || c == '[') {
                depth_ = 1;
            } else if (c == '}' || c == ']') {
                emit(fn); // stray closing bracket
                continue;
            } else if (c == '"') {
                in_string_ = true;
            }
        } else {
            buf_ += c;
            if (c == '"') {
                in_string_ = true;
            } else if (c == '{' || c == '[') {
                if (++depth_ > kMaxDepth) {
                    *this = Streamer();
                    discard_ = c != '\n';
                    fn("", "JSON nesting depth limit exceeded");
                    continue;
                }
            } else if (c == '}' || c == ']') {
                if (--depth_ == 0) emit(fn);
                continue;
            }
        }
        if (buf_.size() > kMaxMessage) {
            *this = Streamer();
            discard_ = c != '\n';
            fn("", "JSON token size limit exceeded");
        }
    }
}

} // namespace keel::json
