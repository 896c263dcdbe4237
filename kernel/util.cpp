// SPDX-License-Identifier: MIT
// Small parsing and formatting helpers shared by the manifest, the CLI and properties.
#include "util.h"

#include <algorithm>
#include <cctype>

#include "error.h"

namespace keel
{

namespace
{

std::string lower(std::string_view s)
{
    std::string out(s);
    for (auto &c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

} // namespace

std::optional<uint64_t> parse_uint(std::string_view s)
{
    unsigned base = 10;
    if (s.size() > 2 && s[0] == '0') {
        char p = static_cast<char>(std::tolower(static_cast<unsigned char>(s[1])));
        if (p == 'x')
            base = 16;
        else if (p == 'o')
            base = 8;
        else if (p == 'b')
            base = 2;
        if (base != 10) s.remove_prefix(2);
    }
    if (s.empty() || s.front() == '_' || s.back() == '_') return std::nullopt;
    uint64_t v = 0;
    for (char c : s) {
        if (c == '_') continue;
        unsigned d;
        if (c >= '0' && c <= '9')
            d = static_cast<unsigned>(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = static_cast<unsigned>(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = static_cast<unsigned>(c - 'A' + 10);
        else
            return std::nullopt;
        if (d >= base) return std::nullopt;
        if (v > (UINT64_MAX - d) / base) return std::nullopt; // overflow
        v = v * base + d;
    }
    return v;
}

std::optional<int64_t> parse_int(std::string_view s)
{
    bool neg = false;
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        s.remove_prefix(1);
    }
    auto u = parse_uint(s);
    if (!u) return std::nullopt;
    if (neg) {
        if (*u > static_cast<uint64_t>(INT64_MAX) + 1) return std::nullopt;
        return static_cast<int64_t>(0 - *u);
    }
    if (*u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<int64_t>(*u);
}

std::optional<uint64_t> parse_size(std::string_view s)
{
    std::string l = lower(s);
    std::string_view v(l);
    if (v.size() > 2 && v.substr(v.size() - 2) == "ib")
        v.remove_suffix(2);
    else if (v.size() > 1 && v.back() == 'b' && !(v.size() > 2 && v[0] == '0' && v[1] == 'x') &&
             !std::isdigit(static_cast<unsigned char>(v[v.size() - 2])))
        v.remove_suffix(1); // "128MB" but not "0x1b" or "11b"
    unsigned shift = 0;
    if (!v.empty() && !(v.size() > 2 && v[0] == '0' && v[1] == 'x')) {
        switch (v.back()) {
        case 'k':
            shift = 10;
            break;
        case 'm':
            shift = 20;
            break;
        case 'g':
            shift = 30;
            break;
        case 't':
            shift = 40;
            break;
        case 'p':
            shift = 50;
            break;
        case 'e':
            shift = 60;
            break;
        default:
            break;
        }
        if (shift) v.remove_suffix(1);
    }
    auto n = parse_uint(v);
    if (!n) return std::nullopt;
    if (shift && *n > (UINT64_MAX >> shift)) return std::nullopt;
    return *n << shift;
}

std::optional<bool> parse_bool(std::string_view s)
{
    std::string l = lower(s);
    if (l == "true" || l == "on" || l == "yes" || l == "1") return true;
    if (l == "false" || l == "off" || l == "no" || l == "0") return false;
    return std::nullopt;
}

std::string format_size(uint64_t bytes)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    unsigned u = 0;
    while (u < 6 && bytes != 0 && (bytes & 1023) == 0) {
        bytes >>= 10;
        ++u;
    }
    return std::to_string(bytes) + " " + units[u];
}

std::string format_hex(uint64_t v, int width)
{
    return strprintf("0x%0*llx", width, static_cast<unsigned long long>(v));
}

// Optimal string alignment distance: insertions, deletions, substitutions and
// swaps of two neighbouring letters ("modle" is one edit from "model").
size_t edit_distance(std::string_view a, std::string_view b)
{
    std::vector<size_t> prev2(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j)
        prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                cur[j] = std::min(cur[j], prev2[j - 2] + 1);
        }
        std::swap(prev2, prev);
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

std::string closest_match(std::string_view word, const std::vector<std::string> &candidates)
{
    size_t limit = std::max<size_t>(1, word.size() / 3);
    size_t best = limit + 1;
    std::string match;
    for (const auto &c : candidates) {
        size_t d = edit_distance(lower(word), lower(c));
        if (d < best) {
            best = d;
            match = c;
        }
    }
    return best <= limit ? match : std::string();
}

std::string did_you_mean(std::string_view word, const std::vector<std::string> &candidates)
{
    std::string m = closest_match(word, candidates);
    return m.empty() ? std::string() : " (did you mean '" + m + "'?)";
}

std::vector<std::string> split(std::string_view s, char delim)
{
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        size_t pos = s.find(delim, start);
        out.emplace_back(
            s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
        if (pos == std::string_view::npos) break;
        start = pos + 1;
    }
    return out;
}

std::string join(const std::vector<std::string> &parts, std::string_view sep)
{
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) {
        if (i) out += sep;
        out += parts[i];
    }
    return out;
}

// QEMU's option syntax: split at ',', where ',,' is a literal comma inside a value.
std::vector<std::string> split_option(std::string_view s)
{
    std::vector<std::string> out(1);
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == ',') {
            if (i + 1 < s.size() && s[i + 1] == ',') {
                out.back() += ',';
                ++i;
            } else {
                out.emplace_back();
            }
        } else {
            out.back() += s[i];
        }
    }
    return out;
}

} // namespace keel
