// SPDX-License-Identifier: MIT
// Property values against their schemas: parsing, range checks, messages, formatting.
#include <catch2/catch.hpp>

#include "fake_types.h"

using namespace keel;
using keel::test::prop;
using keel::test::ranged;

namespace
{

std::string error(const PropSchema &p, std::string_view text)
{
    PropValue v;
    std::string err;
    if (parse_prop_value(p, text, v, err)) return "(parsed)";
    return err;
}

template <typename T> T value(const PropSchema &p, std::string_view text)
{
    PropValue v;
    std::string err;
    INFO(text);
    REQUIRE(parse_prop_value(p, text, v, err));
    REQUIRE(std::holds_alternative<T>(v));
    return std::get<T>(v);
}

} // namespace

TEST_CASE("bool properties", "[property]")
{
    auto p = prop("enabled", KEEL_PROP_BOOL, "true");
    for (const char *t : {"true", "on", "yes", "1", "TRUE", "On"})
        CHECK(value<bool>(p, t));
    for (const char *t : {"false", "off", "no", "0"})
        CHECK_FALSE(value<bool>(p, t));
    CHECK(error(p, "maybe") ==
          "'maybe' is not a valid value for property 'enabled' (expected true/false, on/off or yes/no)");
    CHECK(format_prop_value(p, true) == "true");
}

TEST_CASE("int properties", "[property]")
{
    auto p = prop("adj", KEEL_PROP_INT);
    CHECK(value<int64_t>(p, "-5") == -5);
    CHECK(value<int64_t>(p, "0x10") == 16);
    CHECK(value<int64_t>(p, "+7") == 7);
    CHECK(value<int64_t>(p, "-9223372036854775808") == INT64_MIN);
    CHECK(error(p, "9223372036854775808") ==
          "'9223372036854775808' is not a valid integer for property 'adj'");
    CHECK(error(p, "1.5") == "'1.5' is not a valid integer for property 'adj'");
    auto r = ranged(prop("offset-adjust", KEEL_PROP_INT), static_cast<uint64_t>(int64_t{-100}), 100);
    CHECK(value<int64_t>(r, "-100") == -100);
    CHECK(value<int64_t>(r, "100") == 100);
    CHECK(error(r, "-101") == "value -101 is out of range -100..100 for property 'offset-adjust'");
    CHECK(error(r, "101") == "value 101 is out of range -100..100 for property 'offset-adjust'");
    CHECK(format_prop_value(r, int64_t{-3}) == "-3");
}

TEST_CASE("uint properties", "[property]")
{
    auto p = ranged(prop("num-sources", KEEL_PROP_UINT), 1, 1023);
    CHECK(value<uint64_t>(p, "96") == 96);
    CHECK(value<uint64_t>(p, "0x3ff") == 1023);
    CHECK(value<uint64_t>(p, "0b11") == 3);
    CHECK(value<uint64_t>(p, "0o17") == 15);
    CHECK(value<uint64_t>(p, "1_000") == 1000);
    CHECK(error(p, "2000") == "value 2000 is out of range 1..1023 for property 'num-sources'");
    CHECK(error(p, "0") == "value 0 is out of range 1..1023 for property 'num-sources'");
    CHECK(error(p, "-1") == "'-1' is not a valid unsigned integer for property 'num-sources'");
    CHECK(error(p, "") == "'' is not a valid unsigned integer for property 'num-sources'");
    CHECK(error(p, "4K") == "'4K' is not a valid unsigned integer for property 'num-sources'");
    auto u = prop("x", KEEL_PROP_UINT);
    CHECK(value<uint64_t>(u, "18446744073709551615") == UINT64_MAX);
    CHECK(format_prop_value(u, uint64_t{3686400}) == "3686400");
    CHECK(format_prop_value(u, uint64_t{0x10000000}) == "0x10000000");
    CHECK(format_prop_value(u, uint64_t{0}) == "0");
}

TEST_CASE("size properties", "[property]")
{
    auto p = ranged(prop("size", KEEL_PROP_SIZE, "4K"), 16, 1 << 20);
    CHECK(value<uint64_t>(p, "4K") == 4096);
    CHECK(value<uint64_t>(p, "1M") == 1 << 20);
    CHECK(value<uint64_t>(p, "0x100") == 256);
    CHECK(value<uint64_t>(p, "64KiB") == 65536);
    CHECK(error(p, "2M") == "value 2M is out of range 16..1M for property 'size'");
    CHECK(error(p, "8") == "value 8 is out of range 16..1M for property 'size'");
    CHECK(error(p, "12X") ==
          "'12X' is not a valid size for property 'size' (a number with an optional K, M, G or T "
          "suffix)");
    auto s = prop("s", KEEL_PROP_SIZE);
    CHECK(format_prop_value(s, uint64_t{128} << 20) == "128M");
    CHECK(format_prop_value(s, uint64_t{4096}) == "4K");
    CHECK(format_prop_value(s, uint64_t{4097}) == "4097");
    CHECK(format_prop_value(s, uint64_t{1} << 40) == "1T");
    CHECK(format_prop_value(s, uint64_t{0}) == "0");
}

TEST_CASE("enum, string and reference properties", "[property]")
{
    auto e = prop("mode", KEEL_PROP_ENUM, "normal");
    e.enum_values = {"normal", "sticky"};
    CHECK(value<uint64_t>(e, "sticky") == 1);
    CHECK(error(e, "fast") ==
          "'fast' is not a valid value for property 'mode' (expected one of: normal, sticky)");
    CHECK(error(e, "Sticky") ==
          "'Sticky' is not a valid value for property 'mode' (expected one of: normal, sticky)");
    CHECK(format_prop_value(e, uint64_t{1}) == "sticky");

    auto s = prop("label", KEEL_PROP_STRING);
    CHECK(value<std::string>(s, "") == "");
    CHECK(value<std::string>(s, "a b, c") == "a b, c");

    auto l = prop("peer", KEEL_PROP_LINK);
    CHECK(value<std::string>(l, "regs") == "regs");
    CHECK(error(l, "") == "property 'peer' needs a device name");
    auto c = prop("chardev", KEEL_PROP_CHARDEV);
    CHECK(value<std::string>(c, "serial0") == "serial0");
    CHECK(error(c, "") == "property 'chardev' needs a chardev id");
    auto d = prop("drive", KEEL_PROP_DRIVE);
    CHECK(value<std::string>(d, "hd0") == "hd0");
    CHECK(error(d, "") == "property 'drive' needs a drive id");
    CHECK(format_prop_value(d, std::string("hd0")) == "hd0");
}

TEST_CASE("type names", "[property]")
{
    CHECK(std::string(prop_type_name(KEEL_PROP_BOOL)) == "bool");
    CHECK(std::string(prop_type_name(KEEL_PROP_INT)) == "int");
    CHECK(std::string(prop_type_name(KEEL_PROP_UINT)) == "uint");
    CHECK(std::string(prop_type_name(KEEL_PROP_SIZE)) == "size");
    CHECK(std::string(prop_type_name(KEEL_PROP_STRING)) == "string");
    CHECK(std::string(prop_type_name(KEEL_PROP_ENUM)) == "enum");
    CHECK(std::string(prop_type_name(KEEL_PROP_LINK)) == "link");
    CHECK(std::string(prop_type_name(KEEL_PROP_CHARDEV)) == "chardev");
    CHECK(std::string(prop_type_name(KEEL_PROP_DRIVE)) == "drive");
}
