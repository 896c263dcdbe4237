// SPDX-License-Identifier: MIT
// The QMP JSON parser, serializer and stream splitter: exact values, QEMU's spelling, hostile input.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "monitor/json.h"

using keel::json::Value;

namespace
{

Value parse_ok(const std::string &s)
{
    Value v;
    std::string err;
    INFO(s);
    REQUIRE(keel::json::parse(s, v, err));
    CHECK(err.empty());
    return v;
}

std::string parse_err(const std::string &s)
{
    Value v;
    std::string err;
    INFO(s);
    REQUIRE_FALSE(keel::json::parse(s, v, err));
    return err;
}

struct Split {
    std::vector<std::string> messages, errors;
    void feed(keel::json::Streamer &st, const std::string &s)
    {
        st.feed(s.data(), s.size(), [this](std::string_view text, const std::string &error) {
            if (error.empty())
                messages.emplace_back(text);
            else
                errors.push_back(error);
        });
    }
};

} // namespace

TEST_CASE("qmp.json values round-trip in QMP spelling", "[qmp][json]")
{
    Value v = parse_ok(R"({"execute": "qom-get", "id": [1, -2, 3.5, true, false, null], "a": {}})");
    CHECK(v.get("execute")->as_string() == "qom-get");
    CHECK(v.get("id")->as_array()[1].as_int() == -2);
    CHECK(v.dump() == R"({"execute": "qom-get", "id": [1, -2, 3.5, true, false, null], "a": {}})");
    CHECK(parse_ok("[]").dump() == "[]");
    CHECK(Value::object().set("return", Value::object()).dump() == R"({"return": {}})");
    CHECK(Value::object().set("a", 1).set("b", Value::array().push(2)).dump(true) ==
          "{\n    \"a\": 1,\n    \"b\": [\n        2\n    ]\n}");
}

TEST_CASE("qmp.json numbers are int64 then uint64 then double as in QEMU", "[qmp][json]")
{
    CHECK(parse_ok("9223372036854775807").type() == Value::Type::Int);
    CHECK(parse_ok("-9223372036854775808").as_int() == INT64_MIN);
    Value u = parse_ok("18446744073709551615");
    CHECK(u.type() == Value::Type::Uint);
    CHECK(u.as_uint() == UINT64_MAX);
    Value d = parse_ok("18446744073709551616");
    CHECK(d.type() == Value::Type::Double);
    CHECK(d.dump() == "1.8446744073709552e+19");
    CHECK(parse_ok("-9223372036854775809").type() == Value::Type::Double);
    CHECK(parse_ok("1e999").dump() == "1e999"); // infinity stays readable JSON
    CHECK(parse_ok("-1e999").dump() == "-1e999");
    CHECK(parse_ok("2.0").dump() == "2.0");
    CHECK(parse_ok("0.1").dump() == "0.1");
    CHECK(parse_err("01") == "invalid number");
    CHECK(parse_err("1.") == "invalid number");
    CHECK(parse_err("-") == "invalid number");
    CHECK(parse_err("1e") == "invalid number");
    CHECK(parse_err("12abc") == "invalid number");
}

TEST_CASE("qmp.json strings escape and validate UTF-8", "[qmp][json]")
{
    CHECK(parse_ok(R"("a\"b\\c\/d\n\t\u00e9\ud83d\ude00")").as_string() ==
          "a\"b\\c/d\n\t\xc3\xa9\xf0\x9f\x98\x80");
    // Out: ASCII only, non-ASCII as \u escapes (surrogate pairs past the BMP), bad bytes as U+FFFD.
    CHECK(Value("\xc3\xa9\xf0\x9f\x98\x80\x01").dump() == R"("\u00e9\ud83d\ude00\u0001")");
    CHECK(Value(std::string("a\xff"
                            "b"))
              .dump() == R"("a\ufffdb")");
    CHECK(parse_err("\"\xff\"") == "invalid UTF-8 sequence in string");
    CHECK(parse_err("\"\xc0\xaf\"") == "invalid UTF-8 sequence in string");     // overlong '/'
    CHECK(parse_err("\"\xed\xa0\x80\"") == "invalid UTF-8 sequence in string"); // a surrogate
    CHECK(parse_err(R"("\u00zz")") == "invalid \\u escape in string (\\uXXXX, four hex digits)");
    CHECK(parse_err(R"("\ud800")") == "unpaired surrogate \\u escape in string");
    CHECK(parse_err(R"("\udc00x")") == "unpaired surrogate \\u escape in string");
    CHECK(parse_err(R"("\u0000")") == "\\u0000 is not supported");
    CHECK(parse_err(R"("\q")") == "invalid escape sequence '\\q' in string");
    CHECK(parse_err("\"a\nb\"") == "control character in string");
    CHECK(parse_err("\"abc") == "missing closing quote in string");
}

TEST_CASE("qmp.json malformed input gets a precise error", "[qmp][json]")
{
    CHECK(parse_err("") == "expecting value");
    CHECK(parse_err(R"({"execute": query-status})") == "invalid keyword 'query'");
    CHECK(parse_err(R"({"a": 1,})") == "expecting value");
    CHECK(parse_err(R"({"a" 1})") == "missing : in object pair");
    CHECK(parse_err(R"({1: 2})") == "key is not a string in object");
    CHECK(parse_err(R"({"a": 1 "b": 2})") == "expected separator in dict");
    CHECK(parse_err("[1 2]") == "expected separator in list");
    CHECK(parse_err("[1,]") == "stray ']'");
    CHECK(parse_err("{} {}") == "stray '{'");
    CHECK(parse_err("nul") == "invalid keyword 'nul'");
    CHECK(parse_err("truex") == "invalid keyword 'truex'");
    CHECK(parse_err(std::string(100, 'x')) == "invalid keyword '" + std::string(32, 'x') + "...'");
    CHECK(parse_err("\x01") == "stray byte 0x01");
}

TEST_CASE("qmp.json nesting deeper than 1024 is refused without exhausting the stack", "[qmp][json]")
{
    std::string ok = std::string(1024, '[') + std::string(1024, ']');
    parse_ok(ok);
    std::string deep = std::string(1025, '[') + std::string(1025, ']');
    CHECK(parse_err(deep) == "nesting depth limit exceeded");
    CHECK(parse_err(std::string(1000000, '[')) == "nesting depth limit exceeded");
}

TEST_CASE("qmp.json the streamer cuts messages where QEMU does", "[qmp][json]")
{
    keel::json::Streamer st;
    Split s;
    s.feed(st, "{\"execute\":\n\"a\"}{\"b\": \"}{[\"}  [1,\n2]\n");
    REQUIRE(s.messages.size() == 3);
    CHECK(s.messages[0] == "{\"execute\":\n\"a\"}");
    CHECK(s.messages[1] == "{\"b\": \"}{[\"}");
    CHECK(s.messages[2] == "[1,\n2]");
    // Split anywhere, byte by byte.
    Split t;
    for (char c : std::string("{\"x\": [1, {\"y\": \"\\\"}\"}]}\n"))
        t.feed(st, std::string(1, c));
    REQUIRE(t.messages.size() == 1);
    CHECK(t.messages[0] == "{\"x\": [1, {\"y\": \"\\\"}\"}]}");
    CHECK(t.errors.empty());
}

TEST_CASE("qmp.json the streamer makes one message of a garbage line and recovers", "[qmp][json]")
{
    keel::json::Streamer st;
    Split s;
    s.feed(st, std::string(1 << 20, 'x') + " more garbage\n{\"ok\": 1}\n");
    REQUIRE(s.messages.size() == 2);
    CHECK(s.messages[0].size() == (1u << 20) + 13);
    CHECK(s.messages[1] == "{\"ok\": 1}");
    // A control byte inside a string ends the bad message; the next line parses.
    Split u;
    u.feed(st, "{\"execute\": \"abc\n{\"ok\": 2}\n");
    REQUIRE(u.messages.size() == 2);
    CHECK(u.messages[1] == "{\"ok\": 2}");
    // Stray closers are messages of their own (each an error for the parser).
    Split w;
    w.feed(st, "]}\n");
    CHECK(w.messages == std::vector<std::string>{"]", "}"});
}

TEST_CASE("qmp.json the streamer reports too deep input once and skips its line", "[qmp][json]")
{
    keel::json::Streamer st;
    Split s;
    s.feed(st, std::string(5000, '[') + "\n{\"ok\": 3}\n");
    CHECK(s.errors == std::vector<std::string>{"JSON nesting depth limit exceeded"});
    CHECK(s.messages == std::vector<std::string>{"{\"ok\": 3}"});
}
