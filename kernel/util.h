// SPDX-License-Identifier: MIT
// Small parsing and formatting helpers shared by the manifest, the CLI and properties.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keel
{

// Unsigned integer: decimal, 0x hex, 0o octal, 0b binary; '_' separators allowed.
std::optional<uint64_t> parse_uint(std::string_view s);
// Signed integer: optional leading '-' or '+', then as parse_uint.
std::optional<int64_t> parse_int(std::string_view s);
// Size: an unsigned integer with an optional K/M/G/T/P/E suffix (powers of
// 1024, case-insensitive, optional trailing "B" or "iB"): "4K", "128M", "0x1000".
std::optional<uint64_t> parse_size(std::string_view s);
// true/false, on/off, yes/no, 1/0 (case-insensitive).
std::optional<bool> parse_bool(std::string_view s);

// "128 MiB", "4 KiB", "1000 B": largest exact binary unit.
std::string format_size(uint64_t bytes);
// "0x0000000080000000"
std::string format_hex(uint64_t v, int width = 16);

// Levenshtein distance.
size_t edit_distance(std::string_view a, std::string_view b);
// The closest candidate to `word` if it is close enough to be a likely typo
// (distance <= max(1, len/3)), else empty.
std::string closest_match(std::string_view word, const std::vector<std::string> &candidates);
// " (did you mean 'x'?)" when closest_match finds one, else "".
std::string did_you_mean(std::string_view word, const std::vector<std::string> &candidates);

// Split on a delimiter; keeps empty fields.
std::vector<std::string> split(std::string_view s, char delim);
// "a, b, c"
std::string join(const std::vector<std::string> &parts, std::string_view sep);

// QEMU's option syntax: "a=1,b=x,,y" -> {"a=1", "b=x,y"} (',,' is a literal comma).
std::vector<std::string> split_option(std::string_view s);

} // namespace keel
