// SPDX-License-Identifier: MIT
// Semantic versions and npm-style version requirements, for `version:` pins on module types.
#include <cctype>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "error.h"
#include "manifest.h"
#include "util.h"

namespace keel
{

namespace
{

struct Version {
    uint64_t major = 0, minor = 0, patch = 0;
    std::vector<std::string> pre; // prerelease identifiers; empty = a release
};

bool is_digits(std::string_view s)
{
    if (s.empty()) return false;
    for (char c : s)
        if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    return true;
}

// A numeric component: digits, no leading zero (semver 2.0 §2), fits 64 bits.
std::optional<uint64_t> parse_num(std::string_view s)
{
    if (!is_digits(s) || (s.size() > 1 && s[0] == '0') || s.size() > 19) return std::nullopt;
    uint64_t v = 0;
    for (char c : s)
        v = v * 10 + static_cast<uint64_t>(c - '0');
    return v;
}

bool valid_ident(std::string_view s, bool numeric_no_leading_zero)
{
    if (s.empty()) return false;
    for (char c : s)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    if (numeric_no_leading_zero && is_digits(s) && s.size() > 1 && s[0] == '0') return false;
    return true;
}

// "-pre.1+build" tail after MAJOR.MINOR.PATCH; build metadata is ignored for precedence.
bool parse_tail(std::string_view s, std::vector<std::string> &pre)
{
    auto plus = s.find('+');
    std::string_view build = plus == std::string_view::npos ? std::string_view() : s.substr(plus + 1);
    std::string_view p = s.substr(0, plus);
    if (plus != std::string_view::npos)
        for (const auto &id : split(build, '.'))
            if (!valid_ident(id, false)) return false;
    if (p.empty()) return true;
    if (p[0] != '-') return false;
    for (const auto &id : split(p.substr(1), '.')) {
        if (!valid_ident(id, true)) return false;
        pre.push_back(id);
    }
    return true;
}

std::optional<Version> parse_version(std::string_view s)
{
    size_t end = s.find_first_of("-+");
    auto parts = split(s.substr(0, end), '.');
    if (parts.size() != 3) return std::nullopt;
    Version v;
    auto a = parse_num(parts[0]), b = parse_num(parts[1]), c = parse_num(parts[2]);
    if (!a || !b || !c) return std::nullopt;
    v.major = *a;
    v.minor = *b;
    v.patch = *c;
    if (end != std::string_view::npos && !parse_tail(s.substr(end), v.pre)) return std::nullopt;
    return v;
}

int compare_pre(const std::vector<std::string> &a, const std::vector<std::string> &b)
{
    // A release ranks above any of its prereleases (semver 2.0 §11).
    if (a.empty() || b.empty()) return a.empty() == b.empty() ? 0 : a.empty() ? 1 : -1;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
        bool na = is_digits(a[i]), nb = is_digits(b[i]);
        if (na && nb) {
            if (a[i].size() != b[i].size()) return a[i].size() < b[i].size() ? -1 : 1;
            if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
        } else if (na != nb) {
            return na ? -1 : 1;
        } else if (a[i] != b[i]) {
            return a[i] < b[i] ? -1 : 1;
        }
    }
    return a.size() == b.size() ? 0 : a.size() < b.size() ? -1 : 1;
}

int compare(const Version &a, const Version &b)
{
    if (a.major != b.major) return a.major < b.major ? -1 : 1;
    if (a.minor != b.minor) return a.minor < b.minor ? -1 : 1;
    if (a.patch != b.patch) return a.patch < b.patch ? -1 : 1;
    return compare_pre(a.pre, b.pre);
}

enum class Op { LT, LE, GT, GE, EQ, NONE /* matches nothing */ };

struct Comparator {
    Op op;
    Version v;
};

// A partial version as written in a requirement: "1", "1.2", "1.x", "1.2.3-rc.1".
struct Partial {
    int given = 0; // how many of major/minor/patch are numbers (0 = "*")
    Version v;
};

Partial parse_partial(std::string_view s, const std::string &req)
{
    auto bad = [&]() {
        return Error("invalid version requirement '" + req +
                     "' (expected e.g. ^1.2, ~1.2.3, >=1.0 <2, 1.x, *)");
    };
    if (!s.empty() && (s[0] == 'v' || s[0] == 'V')) s.remove_prefix(1);
    size_t end = s.find_first_of("-+");
    auto parts = split(s.substr(0, end), '.');
    if (parts.empty() || parts.size() > 3) throw bad();
    Partial p;
    bool wild = false;
    for (size_t i = 0; i < parts.size(); ++i) {
        const std::string &x = parts[i];
        if (x == "x" || x == "X" || x == "*") {
            wild = true;
            continue;
        }
        if (wild) throw bad(); // "1.x.3"
        auto n = parse_num(x);
        if (!n) throw bad();
        (i == 0 ? p.v.major : i == 1 ? p.v.minor : p.v.patch) = *n;
        p.given = static_cast<int>(i) + 1;
    }
    if (end != std::string_view::npos) {
        if (p.given != 3 || !parse_tail(s.substr(end), p.v.pre)) throw bad();
    }
    return p;
}

Version ver(uint64_t a, uint64_t b, uint64_t c, bool pre0 = false)
{
    Version v{a, b, c, {}};
    // "-0" is the lowest prerelease: "<2.0.0-0" excludes 2.0.0's prereleases too.
    if (pre0) v.pre.push_back("0");
    return v;
}

// The comparators one simple range stands for (npm's desugaring).
void desugar(const std::string &op, const Partial &p, std::vector<Comparator> &out)
{
    const Version &v = p.v;
    auto add = [&](Op o, Version x) { out.push_back({o, std::move(x)}); };
    if (op.empty() || op == "=") {
        if (p.given == 0) return add(Op::GE, ver(0, 0, 0));
        if (p.given == 3) return add(Op::EQ, v);
        add(Op::GE, ver(v.major, p.given == 2 ? v.minor : 0, 0));
        add(Op::LT, p.given == 1 ? ver(v.major + 1, 0, 0, true) : ver(v.major, v.minor + 1, 0, true));
        return;
    }
    if (op == "^") {
        if (p.given == 0) return add(Op::GE, ver(0, 0, 0));
        Version lo = v;
        if (p.given < 3) lo = ver(v.major, p.given >= 2 ? v.minor : 0, 0);
        add(Op::GE, lo);
        if (v.major != 0 || p.given == 1)
            add(Op::LT, ver(v.major + 1, 0, 0, true));
        else if (v.minor != 0 || p.given == 2)
            add(Op::LT, ver(0, v.minor + 1, 0, true));
        else
            add(Op::LT, ver(0, 0, v.patch + 1, true));
        return;
    }
    if (op == "~") {
        if (p.given == 0) return add(Op::GE, ver(0, 0, 0));
        Version lo = p.given == 3 ? v : ver(v.major, p.given >= 2 ? v.minor : 0, 0);
        add(Op::GE, lo);
        add(Op::LT, p.given == 1 ? ver(v.major + 1, 0, 0, true) : ver(v.major, v.minor + 1, 0, true));
        return;
    }
    if (op == ">") {
        if (p.given == 0) return add(Op::NONE, {});
        if (p.given == 3) return add(Op::GT, v);
        return add(Op::GE, p.given == 1 ? ver(v.major + 1, 0, 0) : ver(v.major, v.minor + 1, 0));
    }
    if (op == ">=") {
        if (p.given == 0) return add(Op::GE, ver(0, 0, 0));
        return add(Op::GE, p.given == 3 ? v : ver(v.major, p.given == 2 ? v.minor : 0, 0));
    }
    if (op == "<") {
        if (p.given == 0) return add(Op::NONE, {});
        if (p.given == 3) return add(Op::LT, v);
        return add(Op::LT, ver(v.major, p.given == 2 ? v.minor : 0, 0, true));
    }
    if (op == "<=") {
        if (p.given == 0) return add(Op::GE, ver(0, 0, 0));
        if (p.given == 3) return add(Op::LE, v);
        return add(Op::LT, p.given == 1 ? ver(v.major + 1, 0, 0, true) : ver(v.major, v.minor + 1, 0, true));
    }
}

bool test(const Comparator &c, const Version &v)
{
    int r = compare(v, c.v);
    switch (c.op) {
    case Op::LT:
        return r < 0;
    case Op::LE:
        return r <= 0;
    case Op::GT:
        return r > 0;
    case Op::GE:
        return r >= 0;
    case Op::EQ:
        return r == 0;
    case Op::NONE:
        return false;
    }
    return false;
}

// One conjunction ("space-separated comparators"); every one must hold.
std::vector<Comparator> parse_set(std::string_view s, const std::string &req)
{
    std::vector<std::string> tokens;
    for (size_t i = 0; i < s.size();) {
        if (std::isspace(static_cast<unsigned char>(s[i]))) {
            ++i;
            continue;
        }
        size_t j = i;
        while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j])))
            ++j;
        tokens.emplace_back(s.substr(i, j - i));
        i = j;
    }
    if (tokens.empty())
        throw Error("invalid version requirement '" + req +
                    "' (expected e.g. ^1.2, ~1.2.3, >=1.0 <2, 1.x, *)");
    std::vector<Comparator> out;
    for (size_t i = 0; i < tokens.size(); ++i) {
        std::string t = tokens[i];
        std::string op;
        for (const char *o : {">=", "<=", "~>", ">", "<", "=", "^", "~"}) {
            std::string_view ov(o);
            if (t.compare(0, ov.size(), ov) == 0) {
                op = o;
                break;
            }
        }
        if (op == "~>") op = "~";
        std::string rest = t.substr(t == "~>" || t.rfind("~>", 0) == 0 ? 2 : op.size());
        // ">= 1.2": an operator standing alone takes the next token.
        if (rest.empty() && !op.empty() && i + 1 < tokens.size()) rest = tokens[++i];
        desugar(op, parse_partial(rest, req), out);
    }
    return out;
}

bool satisfies_set(const Version &v, const std::vector<Comparator> &set)
{
    for (const auto &c : set)
        if (!test(c, v)) return false;
    // npm: a prerelease satisfies a range only if some comparator names a
    // prerelease of the same MAJOR.MINOR.PATCH, so "^1.2" never picks 2.0.0-rc.1.
    if (!v.pre.empty()) {
        for (const auto &c : set)
            if (c.op != Op::NONE && !c.v.pre.empty() && c.v.pre != std::vector<std::string>{"0"} &&
                c.v.major == v.major && c.v.minor == v.minor && c.v.patch == v.patch)
                return true;
        return false;
    }
    return true;
}

} // namespace

bool semver_valid(const std::string &v)
{
    return parse_version(v).has_value();
}

bool semver_satisfies(const std::string &version, const std::string &req)
{
    // Parse the whole requirement first so a malformed one is an error even
    // when an earlier alternative would match.
    std::vector<std::vector<Comparator>> sets;
    std::string_view r(req);
    for (;;) {
        size_t bar = r.find("||");
        sets.push_back(parse_set(r.substr(0, bar), req));
        if (bar == std::string_view::npos) break;
        r.remove_prefix(bar + 2);
    }
    auto v = parse_version(version);
    if (!v) throw Error("invalid version '" + version + "' (expected MAJOR.MINOR.PATCH)");
    for (const auto &s : sets)
        if (satisfies_set(*v, s)) return true;
    return false;
}

} // namespace keel
