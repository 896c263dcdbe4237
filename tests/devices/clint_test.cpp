// SPDX-License-Identifier: MIT
// The clint module against the fake kernel: msip, mtimecmp and mtime at both widths, MTIP as a level.
#include <catch2/catch.hpp>

#include "fake_services.h"

using namespace keel::test;

namespace
{

constexpr uint64_t kMsip = 0x0, kMtimecmp = 0x4000, kMtime = 0xbff8;

// A CLINT with default properties (10 MHz: one tick every 100 ns) unless told otherwise.
struct Clint {
    FakeKernel k;
    std::unique_ptr<FakeDevice> dev;

    explicit Clint(const PropValues &props = {})
    {
        REQUIRE(k.load_module(MODULE_PATH));
        dev = k.create("clint", "clint", props);
        INFO(k.error());
        REQUIRE(dev);
    }
    uint64_t rd(uint64_t off, unsigned width = 8) { return dev->read(off, width); }
    void wr(uint64_t off, uint64_t v, unsigned width = 8) { dev->write(off, width, v); }
    int mti(unsigned hart = 0) const { return dev->irq_level("mti", hart); }
    int msi(unsigned hart = 0) const { return dev->irq_level("msi", hart); }
};

} // namespace

TEST_CASE("clint registers its schema, window and interrupt groups", "[device][clint]")
{
    Clint c(PropValues{{"num-harts", "3"}});
    const KeelDeviceTypeInfo *t = c.k.find_type("clint");
    REQUIRE(t);
    REQUIRE(t->n_properties == 2);
    CHECK(std::string(t->properties[0].name) == "num-harts");
    CHECK(std::string(t->properties[0].default_value) == "0"); // one per CPU of the machine
    CHECK((t->properties[0].min == 0 && t->properties[0].max == 4095));
    CHECK(std::string(t->properties[1].name) == "timebase-frequency");
    CHECK(std::string(t->properties[1].default_value) == "10000000");
    CHECK(c.dev->window_count() == 1);
    CHECK(c.dev->window_size() == 0x10000);
    CHECK(c.dev->window_ops().valid_min == 4);
    CHECK(c.dev->window_ops().valid_max == 8);
    CHECK(c.dev->irq_out_count("msi") == 3);
    CHECK(c.dev->irq_out_count("mti") == 3);
    CHECK(c.dev->irq_out_count() == 0);
}

TEST_CASE("clint refuses bad properties", "[device][clint]")
{
    FakeKernel k;
    REQUIRE(k.load_module(MODULE_PATH));
    CHECK_FALSE(k.create("clint", "c", {{"num-harts", "4096"}}));
    CHECK(k.error().find("num-harts") != std::string::npos);
    CHECK_FALSE(k.create("clint", "c", {{"timebase-frequency", "0"}}));
    CHECK(k.create("clint", "c", {{"num-harts", "4095"}}));
}

TEST_CASE("clint serves one hart per CPU of the machine by default", "[device][clint]")
{
    FakeKernel k;
    REQUIRE(k.load_module(MODULE_PATH));
    k.set_cpu_count(5);
    auto d = k.create("clint", "c", {});
    REQUIRE(d);
    CHECK(d->irq_out_count("msi") == 5);
    CHECK(d->irq_out_count("mti") == 5);
    k.set_cpu_count(0); // a machine without CPUs: nothing to serve
    CHECK_FALSE(k.create("clint", "c2", {}));
    CHECK(k.error().find("num-harts") != std::string::npos);
}

TEST_CASE("clint resets like QEMU: mtimecmp 0 so MTIP is pending, msip 0, mtime = virtual clock",
          "[device][clint]")
{
    Clint c(PropValues{{"num-harts", "2"}});
    for (unsigned h = 0; h < 2; ++h) {
        CHECK(c.rd(kMsip + 4 * h, 4) == 0);
        CHECK(c.rd(kMtimecmp + 8 * h) == 0);
        CHECK(c.msi(h) == 0);
        CHECK(c.mti(h) == 1);
    }
    CHECK(c.rd(kMtime) == 0);

    c.k.advance_by(5000);
    c.wr(kMsip, 1, 4);
    c.wr(kMtimecmp, 0x1234);
    c.wr(kMtime, 0x99999);
    c.dev->reset(KEEL_RESET_WARM);
    // The guest's write is undone: mtime counts the virtual clock again, like the hart's time CSR.
    CHECK(c.rd(kMtime) == 50);
    CHECK(c.rd(kMtimecmp) == 0);
    CHECK(c.rd(kMsip, 4) == 0);
    CHECK(c.msi() == 0);
    CHECK(c.mti() == 1);
    c.k.advance_by(1000);
    CHECK(c.rd(kMtime) == 60);
}

TEST_CASE("clint msip drives the software interrupt line of its hart", "[device][clint]")
{
    Clint c(PropValues{{"num-harts", "2"}});
    c.wr(kMsip + 4, 1, 4);
    CHECK(c.msi(1) == 1);
    CHECK(c.msi(0) == 0);
    CHECK(c.rd(kMsip + 4, 4) == 1);
    c.wr(kMsip + 4, 0xfffffffe, 4); // only bit 0 exists
    CHECK(c.msi(1) == 0);
    CHECK(c.rd(kMsip + 4, 4) == 0);
    c.wr(kMsip, 0xffffffff, 4);
    CHECK(c.rd(kMsip, 4) == 1);
    CHECK(c.msi(0) == 1);

    SECTION("a 64-bit access covers two harts")
    {
        c.wr(kMsip, 0x0000000100000000ull);
        CHECK(c.msi(0) == 0);
        CHECK(c.msi(1) == 1);
        CHECK(c.rd(kMsip) == 0x0000000100000000ull);
    }
    SECTION("rewriting the same level does not toggle the line")
    {
        unsigned raises = c.dev->irq_out("msi", 0).raises;
        c.wr(kMsip, 1, 4);
        CHECK(c.dev->irq_out("msi", 0).raises == raises);
    }
}

TEST_CASE("clint mtime follows the virtual clock at the timebase frequency", "[device][clint]")
{
    SECTION("10 MHz")
    {
        Clint c;
        c.k.advance_by(1000);
        CHECK(c.rd(kMtime) == 10);
        c.k.advance_by(99);
        CHECK(c.rd(kMtime) == 10); // ticks are whole periods of 100 ns
        c.k.advance_by(1);
        CHECK(c.rd(kMtime) == 11);
        c.k.advance_to(3'000'000'000'000'000LL); // 3e15 ns: ticks must not overflow in the scaling
        CHECK(c.rd(kMtime) == 30'000'000'000'000ull);
    }
    SECTION("another frequency")
    {
        Clint c(PropValues{{"timebase-frequency", "1000000"}});
        c.k.advance_by(2'500'000);
        CHECK(c.rd(kMtime) == 2500);
    }
}

TEST_CASE("clint mtime is writable at both widths and keeps counting", "[device][clint]")
{
    Clint c;
    c.k.advance_by(1000);
    c.wr(kMtime, 0x1'0000'0000ull);
    CHECK(c.rd(kMtime) == 0x1'0000'0000ull);
    c.k.advance_by(500);
    CHECK(c.rd(kMtime) == 0x1'0000'0005ull);
    CHECK(c.rd(kMtime, 4) == 5);
    CHECK(c.rd(kMtime + 4, 4) == 1);

    c.wr(kMtime + 4, 0xabcd, 4); // high half only: the low half keeps counting where it was
    CHECK(c.rd(kMtime) == 0xabcd'0000'0005ull);
    c.wr(kMtime, 0xfffffff0, 4);
    CHECK(c.rd(kMtime) == 0xabcd'ffff'fff0ull);
    c.k.advance_by(1700);
    CHECK(c.rd(kMtime) == 0xabce'0000'0001ull); // carries into the high half
}

TEST_CASE("clint mtimecmp is read and written at both widths", "[device][clint]")
{
    Clint c(PropValues{{"num-harts", "2"}});
    c.wr(kMtimecmp + 8, 0x1122334455667788ull);
    CHECK(c.rd(kMtimecmp + 8) == 0x1122334455667788ull);
    CHECK(c.rd(kMtimecmp + 8, 4) == 0x55667788);
    CHECK(c.rd(kMtimecmp + 12, 4) == 0x11223344);
    c.wr(kMtimecmp + 12, 0xaabbccdd, 4);
    CHECK(c.rd(kMtimecmp + 8) == 0xaabbccdd55667788ull);
    c.wr(kMtimecmp + 8, 0x01020304, 4);
    CHECK(c.rd(kMtimecmp + 8) == 0xaabbccdd01020304ull);
    CHECK(c.rd(kMtimecmp) == 0); // hart 0 untouched
}

TEST_CASE("clint MTIP is the level mtime >= mtimecmp, checked on every write", "[device][clint]")
{
    Clint c(PropValues{{"num-harts", "2"}});
    c.k.advance_by(100'000); // mtime = 1000
    c.wr(kMtimecmp, 1001);
    CHECK(c.mti(0) == 0);
    CHECK(c.mti(1) == 1); // other harts keep their own comparison
    c.wr(kMtimecmp, 1000);
    CHECK(c.mti(0) == 1);
    c.wr(kMtimecmp, ~0ull);
    CHECK(c.mti(0) == 0);
    c.wr(kMtimecmp, 5);
    CHECK(c.mti(0) == 1);

    SECTION("the usual 32-bit sequence: high to all ones, low, then high")
    {
        c.wr(kMtimecmp + 4, 0xffffffff, 4);
        CHECK(c.mti(0) == 0);
        c.wr(kMtimecmp, 2000, 4);
        CHECK(c.mti(0) == 0);
        c.wr(kMtimecmp + 4, 0, 4);
        CHECK(c.mti(0) == 0); // 2000 is still ahead
        CHECK(c.rd(kMtimecmp) == 2000);
        c.k.advance_by(100'000);
        CHECK(c.mti(0) == 1);
    }
    SECTION("writing mtime re-evaluates every hart")
    {
        c.wr(kMtimecmp, 5000);
        c.wr(kMtimecmp + 8, 6000);
        CHECK(c.mti(0) == 0);
        CHECK(c.mti(1) == 0);
        c.wr(kMtime, 5500);
        CHECK(c.mti(0) == 1);
        CHECK(c.mti(1) == 0);
        c.wr(kMtime, 0);
        CHECK(c.mti(0) == 0);
        CHECK(c.mti(1) == 0);
        // The deadlines moved with mtime: 5000 ticks from now.
        c.k.advance_by(5000 * 100 - 1);
        CHECK(c.mti(0) == 0);
        c.k.advance_by(1);
        CHECK(c.mti(0) == 1);
        CHECK(c.mti(1) == 0);
        c.k.advance_by(1000 * 100);
        CHECK(c.mti(1) == 1);
    }
}

TEST_CASE("clint raises MTIP from a timer when virtual time reaches mtimecmp", "[device][clint]")
{
    Clint c;
    c.wr(kMtimecmp, 1000); // 100 us at 10 MHz
    CHECK(c.mti() == 0);
    CHECK(c.dev->armed_timers() == 1);
    unsigned raises = c.dev->irq_out("mti").raises;
    c.k.advance_to(99'999);
    CHECK(c.mti() == 0);
    c.k.advance_to(100'000);
    CHECK(c.mti() == 1);
    CHECK(c.dev->irq_out("mti").raises == raises + 1);
    CHECK(c.dev->armed_timers() == 0); // nothing to wait for while MTIP is high

    SECTION("moving mtimecmp ahead lowers MTIP and re-arms")
    {
        c.wr(kMtimecmp, 1500);
        CHECK(c.mti() == 0);
        c.k.advance_to(149'999);
        CHECK(c.mti() == 0);
        c.k.advance_to(150'000);
        CHECK(c.mti() == 1);
    }
    SECTION("a compare value moved before the deadline replaces the old one")
    {
        c.wr(kMtimecmp, 3000);
        c.wr(kMtimecmp, 2000);
        c.k.advance_to(199'999);
        CHECK(c.mti() == 0);
        c.k.advance_to(200'000);
        CHECK(c.mti() == 1);
    }
    SECTION("all ones never fires")
    {
        c.wr(kMtimecmp, ~0ull);
        CHECK(c.dev->armed_timers() == 0);
        c.k.advance_by(1'000'000'000'000LL);
        CHECK(c.mti() == 0);
    }
}

TEST_CASE("clint deadlines round up to the first nanosecond the tick is reached", "[device][clint]")
{
    Clint c(PropValues{{"timebase-frequency", "32768"}}); // 30517.578125 ns per tick
    c.wr(kMtimecmp, 3);
    c.k.advance_to(91'552); // 3 ticks = 91552.73 ns
    CHECK(c.rd(kMtime) == 2);
    CHECK(c.mti() == 0);
    c.k.advance_to(91'553);
    CHECK(c.rd(kMtime) == 3);
    CHECK(c.mti() == 1);
}

TEST_CASE("clint wires its outputs to a hart's inputs", "[device][clint]")
{
    FakeKernel k;
    REQUIRE(k.load_module(MODULE_PATH));
    REQUIRE(k.load_module(TESTDEVS_PATH));
    auto clint = k.create("clint", "clint", {});
    REQUIRE(clint);
    // A test-intc stands in for the hart: its pending register shows the level of each input line.
    auto cpu = k.create("test-intc", "cpu0", {{"num-inputs", "2"}, {"id", "1"}});
    INFO(k.error());
    REQUIRE(cpu);
    REQUIRE(clint->connect("msi", 0, *cpu, "", 0));
    REQUIRE(clint->connect("mti", 0, *cpu, "", 1));
    auto level = [&](unsigned n) { return (cpu->read(0, 4) >> n) & 1; };
    CHECK(level(0) == 0);
    CHECK(level(1) == 1); // driven with the current level when wired
    clint->write(kMtimecmp, 8, 100);
    CHECK(level(1) == 0);
    clint->write(kMsip, 4, 1);
    CHECK(level(0) == 1);
    k.advance_by(10'000);
    CHECK(level(1) == 1);
}

TEST_CASE("clint ignores reserved offsets and bad widths", "[device][clint]")
{
    Clint c(PropValues{{"num-harts", "2"}});
    uint64_t v = 0;
    CHECK(c.dev->read(0, kMtime, 2, &v) == KEEL_MEM_ACCESS_ERROR);
    CHECK(c.dev->write(0, kMsip, 1, 1) == KEEL_MEM_ACCESS_ERROR);
    CHECK(c.dev->read(0, kMtimecmp + 4, 8, &v) == KEEL_MEM_ACCESS_ERROR); // misaligned
    CHECK(c.msi() == 0);

    c.wr(kMsip + 8, 1, 4); // hart 2 does not exist
    CHECK(c.k.logged(KEEL_LOG_GUEST_ERROR, "0x8"));
    CHECK(c.rd(kMsip + 8, 4) == 0);
    c.k.clear_logs();
    c.wr(kMtimecmp + 16, 5); // mtimecmp of hart 2
    CHECK(c.k.logged(KEEL_LOG_GUEST_ERROR, "0x4010"));
    CHECK(c.rd(kMtimecmp + 16) == 0);
    CHECK(c.rd(0xc000) == 0);
    CHECK(c.rd(0xfff8) == 0);
    CHECK(c.mti(0) == 1);
    CHECK(c.mti(1) == 1);
}
