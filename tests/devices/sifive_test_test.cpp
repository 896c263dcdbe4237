// SPDX-License-Identifier: MIT
// The sifive-test finisher against the fake kernel: each code becomes the right system request.
#include <catch2/catch.hpp>

#include "fake_services.h"

using namespace keel::test;

namespace
{

struct Finisher {
    FakeKernel k;
    std::unique_ptr<FakeDevice> dev;
    Finisher()
    {
        REQUIRE(k.load_module(MODULE_PATH));
        dev = k.create("sifive-test", "test0");
        INFO(k.error());
        REQUIRE(dev);
    }
};

} // namespace

TEST_CASE("sifive-test registers one window of 0x1000 with widths 2 to 4", "[device][sifive-test]")
{
    Finisher f;
    const KeelModuleInfo *mi = f.k.module_info("sifive-test");
    REQUIRE(mi);
    CHECK(std::string(mi->version) == "1.0.0");
    const KeelDeviceTypeInfo *t = f.k.find_type("sifive-test");
    REQUIRE(t);
    CHECK(t->n_properties == 0);
    CHECK(f.dev->window_count() == 1);
    CHECK(f.dev->window_size() == 0x1000);
    CHECK(f.dev->window_ops().valid_min == 2);
    CHECK(f.dev->window_ops().valid_max == 4);
}

TEST_CASE("sifive-test turns each code into a system request", "[device][sifive-test]")
{
    Finisher f;
    SECTION("PASS shuts down with status 0")
    {
        f.dev->write(0, 4, 0x5555);
        REQUIRE(f.k.system_requests().size() == 1);
        CHECK(f.k.system_requests()[0].req == KEEL_SYSTEM_SHUTDOWN);
        CHECK(f.k.system_requests()[0].status == 0);
    }
    SECTION("FAIL shuts down with the code in the upper half")
    {
        f.dev->write(0, 4, (42u << 16) | 0x3333);
        REQUIRE(f.k.system_requests().size() == 1);
        CHECK(f.k.system_requests()[0].req == KEEL_SYSTEM_SHUTDOWN);
        CHECK(f.k.system_requests()[0].status == 42);
    }
    SECTION("FAIL with code 0xffff")
    {
        f.dev->write(0, 4, 0xffff3333u);
        REQUIRE(f.k.system_requests().size() == 1);
        CHECK(f.k.system_requests()[0].status == 0xffff);
    }
    SECTION("RESET resets")
    {
        f.dev->write(0, 4, 0x7777);
        REQUIRE(f.k.system_requests().size() == 1);
        CHECK(f.k.system_requests()[0].req == KEEL_SYSTEM_RESET);
    }
    SECTION("a 16-bit write works too")
    {
        f.dev->write(0, 2, 0x5555);
        REQUIRE(f.k.system_requests().size() == 1);
        CHECK(f.k.system_requests()[0].req == KEEL_SYSTEM_SHUTDOWN);
    }
    CHECK(f.k.logs().empty());
}

TEST_CASE("sifive-test refuses bad widths before it sees them", "[device][sifive-test]")
{
    Finisher f;
    uint64_t v;
    CHECK(f.dev->write(0, 0, 1, 0x55) == KEEL_MEM_ACCESS_ERROR);
    CHECK(f.dev->write(0, 0, 8, 0x5555) == KEEL_MEM_ACCESS_ERROR);
    CHECK(f.dev->read(0, 0, 8, &v) == KEEL_MEM_ACCESS_ERROR);
    CHECK(f.k.system_requests().empty());
}

TEST_CASE("sifive-test logs unknown values as guest errors and reads as zero", "[device][sifive-test]")
{
    Finisher f;
    f.dev->write(0, 4, 0x1234);
    CHECK(f.k.system_requests().empty());
    CHECK(f.k.logged(KEEL_LOG_GUEST_ERROR, "0x1234"));
    f.k.clear_logs();
    f.dev->write(8, 4, 0x5555); // the right value at the wrong offset
    CHECK(f.k.system_requests().empty());
    CHECK(f.k.logged(KEEL_LOG_GUEST_ERROR, "offset 0x8"));
    CHECK(f.dev->read(0, 4) == 0);
    CHECK(f.dev->read(0xffc, 4) == 0);
}

TEST_CASE("sifive-test decodes the low 16 bits as the command, as QEMU does", "[device][sifive-test]")
{
    Finisher f;
    SECTION("PASS with stray upper bits still passes")
    {
        f.dev->write(0, 4, 0x00015555);
        REQUIRE(f.k.system_requests().size() == 1);
        CHECK(f.k.system_requests()[0].req == KEEL_SYSTEM_SHUTDOWN);
        CHECK(f.k.system_requests()[0].status == 0);
    }
    SECTION("FAIL with code 0 exits with status 0")
    {
        f.dev->write(0, 4, 0x3333);
        REQUIRE(f.k.system_requests().size() == 1);
        CHECK(f.k.system_requests()[0].req == KEEL_SYSTEM_SHUTDOWN);
        CHECK(f.k.system_requests()[0].status == 0);
    }
    SECTION("RESET with upper bits still resets")
    {
        f.dev->write(0, 4, 0xabcd7777u);
        REQUIRE(f.k.system_requests().size() == 1);
        CHECK(f.k.system_requests()[0].req == KEEL_SYSTEM_RESET);
    }
    SECTION("a value whose low half is no command is ignored")
    {
        f.dev->write(0, 4, 0x55550000u);
        CHECK(f.k.system_requests().empty());
        CHECK(f.k.logged(KEEL_LOG_GUEST_ERROR, "0x55550000"));
    }
}
