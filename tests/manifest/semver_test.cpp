// SPDX-License-Identifier: MIT
// Semantic versions and npm-style requirements (`version:` pins in manifests).
#include <catch2/catch.hpp>

#include "manifest.h"

using keel::semver_satisfies;
using keel::semver_valid;

TEST_CASE("semver_valid", "[semver]")
{
    CHECK(semver_valid("1.0.0"));
    CHECK(semver_valid("0.0.0"));
    CHECK(semver_valid("10.20.30"));
    CHECK(semver_valid("1.0.0-rc.1"));
    CHECK(semver_valid("1.0.0-alpha-1+build.5"));
    CHECK(semver_valid("1.0.0+20240101"));
    CHECK_FALSE(semver_valid(""));
    CHECK_FALSE(semver_valid("1"));
    CHECK_FALSE(semver_valid("1.0"));
    CHECK_FALSE(semver_valid("1.0.0.0"));
    CHECK_FALSE(semver_valid("01.0.0"));
    CHECK_FALSE(semver_valid("1.0.x"));
    CHECK_FALSE(semver_valid("v1.0.0"));
    CHECK_FALSE(semver_valid("1.0.0-"));
    CHECK_FALSE(semver_valid("1.0.0-01"));
    CHECK_FALSE(semver_valid("1.0.0-a..b"));
    CHECK_FALSE(semver_valid("1.-1.0"));
}

TEST_CASE("exact, wildcard and x-ranges", "[semver]")
{
    CHECK(semver_satisfies("1.2.3", "*"));
    CHECK(semver_satisfies("0.0.1", "x"));
    CHECK(semver_satisfies("1.2.3", "1.2.3"));
    CHECK(semver_satisfies("1.2.3", "=1.2.3"));
    CHECK(semver_satisfies("1.2.3", "v1.2.3"));
    CHECK_FALSE(semver_satisfies("1.2.4", "1.2.3"));
    CHECK(semver_satisfies("1.9.0", "1.x"));
    CHECK(semver_satisfies("1.9.0", "1"));
    CHECK_FALSE(semver_satisfies("2.0.0", "1.x"));
    CHECK(semver_satisfies("1.2.9", "1.2.x"));
    CHECK(semver_satisfies("1.2.9", "1.2"));
    CHECK_FALSE(semver_satisfies("1.3.0", "1.2.x"));
    CHECK(semver_satisfies("1.2.0", "1.2.*"));
}

TEST_CASE("caret ranges, including 0.x", "[semver]")
{
    CHECK(semver_satisfies("1.2.3", "^1.2.3"));
    CHECK(semver_satisfies("1.9.9", "^1.2.3"));
    CHECK_FALSE(semver_satisfies("2.0.0", "^1.2.3"));
    CHECK_FALSE(semver_satisfies("1.2.2", "^1.2.3"));
    CHECK(semver_satisfies("1.2.0", "^1.2"));
    CHECK_FALSE(semver_satisfies("1.1.9", "^1.2"));
    CHECK(semver_satisfies("1.0.0", "^1"));
    CHECK_FALSE(semver_satisfies("2.0.0", "^1"));
    CHECK(semver_satisfies("0.2.5", "^0.2.3"));
    CHECK_FALSE(semver_satisfies("0.3.0", "^0.2.3"));
    CHECK(semver_satisfies("0.0.3", "^0.0.3"));
    CHECK_FALSE(semver_satisfies("0.0.4", "^0.0.3"));
    CHECK(semver_satisfies("0.0.9", "^0.0"));
    CHECK_FALSE(semver_satisfies("0.1.0", "^0.0"));
    CHECK(semver_satisfies("0.9.0", "^0"));
    CHECK_FALSE(semver_satisfies("1.0.0", "^0"));
    CHECK(semver_satisfies("0.5.0", "^0.x"));
    CHECK(semver_satisfies("1.0.0", "^1.0"));
    CHECK_FALSE(semver_satisfies("1.0.0", "^2"));
}

TEST_CASE("tilde ranges", "[semver]")
{
    CHECK(semver_satisfies("1.2.3", "~1.2.3"));
    CHECK(semver_satisfies("1.2.9", "~1.2.3"));
    CHECK_FALSE(semver_satisfies("1.3.0", "~1.2.3"));
    CHECK(semver_satisfies("1.2.0", "~1.2"));
    CHECK_FALSE(semver_satisfies("1.3.0", "~1.2"));
    CHECK(semver_satisfies("1.9.0", "~1"));
    CHECK(semver_satisfies("0.2.9", "~0.2.3"));
    CHECK_FALSE(semver_satisfies("0.3.0", "~0.2.3"));
    CHECK(semver_satisfies("1.2.4", "~>1.2.3"));
}

TEST_CASE("comparisons and conjunctions", "[semver]")
{
    CHECK(semver_satisfies("1.0.0", ">=1.0.0"));
    CHECK(semver_satisfies("1.0.0", ">=1.0"));
    CHECK_FALSE(semver_satisfies("0.9.9", ">=1"));
    CHECK(semver_satisfies("1.0.1", ">1.0.0"));
    CHECK_FALSE(semver_satisfies("1.0.0", ">1.0.0"));
    CHECK_FALSE(semver_satisfies("1.2.9", ">1.2"));
    CHECK(semver_satisfies("1.3.0", ">1.2"));
    CHECK(semver_satisfies("1.9.9", "<2"));
    CHECK_FALSE(semver_satisfies("2.0.0", "<2"));
    CHECK(semver_satisfies("1.2.3", "<=1.2.3"));
    CHECK(semver_satisfies("1.2.9", "<=1.2"));
    CHECK_FALSE(semver_satisfies("1.3.0", "<=1.2"));
    CHECK(semver_satisfies("1.5.0", ">=1.0 <2"));
    CHECK_FALSE(semver_satisfies("2.0.0", ">=1.0 <2"));
    CHECK_FALSE(semver_satisfies("0.9.0", ">=1.0 <2"));
    CHECK(semver_satisfies("1.5.0", ">= 1.0  < 2"));
    CHECK(semver_satisfies("3.0.0", "^1 || ^3"));
    CHECK_FALSE(semver_satisfies("2.0.0", "^1 || ^3"));
    CHECK_FALSE(semver_satisfies("1.0.0", ">*"));
    CHECK(semver_satisfies("1.0.0", "<=*"));
}

TEST_CASE("prereleases", "[semver]")
{
    CHECK_FALSE(semver_satisfies("2.0.0-rc.1", "^1.2"));
    CHECK_FALSE(semver_satisfies("2.0.0-rc.1", "<2"));
    CHECK(semver_satisfies("1.2.3-beta.2", ">=1.2.3-beta.1"));
    CHECK_FALSE(semver_satisfies("1.2.3-beta.1", ">=1.2.3-beta.2"));
    CHECK(semver_satisfies("1.2.3-rc.10", ">1.2.3-rc.9"));
    CHECK(semver_satisfies("1.2.3", ">1.2.3-rc.9"));
    CHECK_FALSE(semver_satisfies("1.2.4-rc.1", ">1.2.3-rc.9")); // other tuple: prereleases excluded
    CHECK(semver_satisfies("1.0.0+build.7", "1.0.0"));
}

TEST_CASE("malformed requirements throw", "[semver]")
{
    for (const char *bad :
         {"", "   ", "^", "^x.1", "1.x.3", "1.2.3.4", ">=a", "~01.2", "1.2.3-", "^1 ||", "=>1"})
        CHECK_THROWS_AS(semver_satisfies("1.0.0", bad), keel::Error);
    try {
        semver_satisfies("1.0.0", "^x.1");
    } catch (const keel::Error &e) {
        CHECK(std::string(e.what()) ==
              "invalid version requirement '^x.1' (expected e.g. ^1.2, ~1.2.3, >=1.0 <2, 1.x, *)");
    }
    CHECK_THROWS_AS(semver_satisfies("1.0", "*"), keel::Error);
}
