// SPDX-License-Identifier: MIT
// The goldfish-rtc module against the fake kernel: time and its latch, setting the time, the alarm and IRQ.
#include <catch2/catch.hpp>

#include "fake_services.h"

using namespace keel::test;

namespace
{

constexpr uint64_t kTimeLow = 0x00, kTimeHigh = 0x04, kAlarmLow = 0x08, kAlarmHigh = 0x0c, kIrqEnabled = 0x10,
                   kClearAlarm = 0x14, kAlarmStatus = 0x18, kClearInterrupt = 0x1c;

// 2026-11-25 in ns since the epoch: the fake's host clock is its one clock, so tests start it here.
constexpr int64_t kEpochNs = 1'795'000'000'000'000'000LL;

struct Rtc {
    FakeKernel k;
    std::unique_ptr<FakeDevice> dev;

    Rtc()
    {
        REQUIRE(k.load_module(MODULE_PATH));
        k.advance_to(kEpochNs);
        dev = k.create("goldfish-rtc", "rtc");
        INFO(k.error());
        REQUIRE(dev);
    }
    uint32_t rd(uint64_t off) { return static_cast<uint32_t>(dev->read(off, 4)); }
    void wr(uint64_t off, uint32_t v) { dev->write(off, 4, v); }
    uint64_t time()
    {
        uint64_t lo = rd(kTimeLow);
        return (static_cast<uint64_t>(rd(kTimeHigh)) << 32) | lo;
    }
    // Arm the alarm the way Linux does: high half first, the low half arms it.
    void arm(uint64_t t)
    {
        wr(kAlarmHigh, static_cast<uint32_t>(t >> 32));
        wr(kAlarmLow, static_cast<uint32_t>(t));
    }
    int irq() const { return dev->irq_level(); }
};

} // namespace

TEST_CASE("goldfish-rtc has a 4 KiB window of 32-bit registers and one interrupt", "[device][goldfish-rtc]")
{
    Rtc r;
    const KeelDeviceTypeInfo *t = r.k.find_type("goldfish-rtc");
    REQUIRE(t);
    CHECK(t->n_properties == 0);
    CHECK(r.dev->window_count() == 1);
    CHECK(r.dev->window_size() == 0x1000);
    CHECK(r.dev->window_ops().valid_min == 4);
    CHECK(r.dev->window_ops().valid_max == 4);
    CHECK(r.dev->irq_out_count() == 1);
    CHECK(r.irq() == 0);
    uint64_t v = 0;
    CHECK(r.dev->write(0, kTimeLow, 8, 0) != KEEL_MEM_OK);
    CHECK(r.dev->read(0, kTimeLow, 1, &v) != KEEL_MEM_OK);
}

TEST_CASE("goldfish-rtc time is the host clock in ns and TIME_LOW latches TIME_HIGH",
          "[device][goldfish-rtc]")
{
    Rtc r;
    CHECK(r.time() == static_cast<uint64_t>(kEpochNs));
    r.k.advance_by(12345);
    CHECK(r.time() == static_cast<uint64_t>(kEpochNs) + 12345);

    SECTION("TIME_HIGH keeps the value latched by the last TIME_LOW read")
    {
        // Just below a carry into the high half: the latch keeps LOW and HIGH consistent.
        r.k.advance_to((kEpochNs | 0xffffffffLL) - 10);
        uint32_t lo = r.rd(kTimeLow);
        r.k.advance_by(100); // the clock crosses into the next high word
        uint32_t hi = r.rd(kTimeHigh);
        CHECK(((static_cast<uint64_t>(hi) << 32) | lo) ==
              static_cast<uint64_t>((kEpochNs | 0xffffffffLL) - 10));
        CHECK(r.rd(kTimeHigh) == hi); // reading HIGH again does not relatch
        r.rd(kTimeLow);
        CHECK(r.rd(kTimeHigh) == hi + 1);
    }
}

TEST_CASE("goldfish-rtc time writes move an offset and the clock keeps running", "[device][goldfish-rtc]")
{
    Rtc r;
    SECTION("both halves")
    {
        r.wr(kTimeHigh, 0x12);
        r.wr(kTimeLow, 0x34560000);
        CHECK(r.time() == 0x12'3456'0000ull);
        r.k.advance_by(1000);
        CHECK(r.time() == 0x12'3456'0000ull + 1000);
    }
    SECTION("the low half alone keeps the high half")
    {
        uint64_t before = r.time();
        r.wr(kTimeLow, 7);
        CHECK(r.time() == ((before & ~0xffffffffull) | 7));
    }
    SECTION("the offset survives a reset like a battery-backed clock")
    {
        r.wr(kTimeHigh, 0);
        r.wr(kTimeLow, 500);
        r.dev->reset(KEEL_RESET_WARM);
        r.k.advance_by(20);
        CHECK(r.time() == 520);
    }
}

TEST_CASE("goldfish-rtc alarm fires at the programmed time and raises the IRQ when enabled",
          "[device][goldfish-rtc]")
{
    Rtc r;
    uint64_t now = r.time();
    r.wr(kIrqEnabled, 1);
    CHECK(r.rd(kIrqEnabled) == 1);
    r.arm(now + 5000);
    CHECK(r.rd(kAlarmStatus) == 1);
    CHECK(r.rd(kAlarmLow) == static_cast<uint32_t>(now + 5000));
    CHECK(r.rd(kAlarmHigh) == static_cast<uint32_t>((now + 5000) >> 32));
    CHECK(r.dev->armed_timers() == 1);
    r.k.advance_by(4999);
    CHECK(r.irq() == 0);
    CHECK(r.rd(kAlarmStatus) == 1);
    r.k.advance_by(1);
    CHECK(r.irq() == 1);
    CHECK(r.rd(kAlarmStatus) == 0);
    CHECK(r.dev->armed_timers() == 0);

    // The interrupt stays pending until cleared; masking only gates the line.
    r.wr(kIrqEnabled, 0);
    CHECK(r.irq() == 0);
    r.wr(kIrqEnabled, 1);
    CHECK(r.irq() == 1);
    r.wr(kClearInterrupt, 1);
    CHECK(r.irq() == 0);
    r.wr(kIrqEnabled, 0xfffffffe); // only bit 0 exists
    CHECK(r.rd(kIrqEnabled) == 0);
}

TEST_CASE("goldfish-rtc alarm follows a guest-set time base", "[device][goldfish-rtc]")
{
    Rtc r;
    r.wr(kIrqEnabled, 1);
    r.wr(kTimeHigh, 0);
    r.wr(kTimeLow, 1000);
    r.arm(3000);
    r.k.advance_by(1999);
    CHECK(r.irq() == 0);
    r.k.advance_by(1);
    CHECK(r.irq() == 1);
}

TEST_CASE("goldfish-rtc alarm edge cases", "[device][goldfish-rtc]")
{
    Rtc r;
    r.wr(kIrqEnabled, 1);
    uint64_t now = r.time();

    SECTION("an alarm in the past fires at once")
    {
        r.arm(now - 1);
        CHECK(r.irq() == 1);
        CHECK(r.rd(kAlarmStatus) == 0);
        CHECK(r.dev->armed_timers() == 0);
    }
    SECTION("ALARM_HIGH alone does not arm")
    {
        r.wr(kAlarmHigh, static_cast<uint32_t>(now >> 32) + 1);
        CHECK(r.rd(kAlarmStatus) == 0);
        CHECK(r.dev->armed_timers() == 0);
    }
    SECTION("CLEAR_ALARM disarms")
    {
        r.arm(now + 100);
        r.wr(kClearAlarm, 1);
        CHECK(r.rd(kAlarmStatus) == 0);
        r.k.advance_by(1000);
        CHECK(r.irq() == 0);
    }
    SECTION("a disabled alarm still sets the pending flag; enabling shows it")
    {
        r.wr(kIrqEnabled, 0);
        r.arm(now + 100);
        r.k.advance_by(100);
        CHECK(r.irq() == 0);
        r.wr(kIrqEnabled, 1);
        CHECK(r.irq() == 1);
    }
    SECTION("rearming moves the deadline")
    {
        r.arm(now + 100);
        r.arm(now + 300);
        r.k.advance_by(200);
        CHECK(r.irq() == 0);
        r.k.advance_by(100);
        CHECK(r.irq() == 1);
    }
    SECTION("reset disarms, clears the interrupt and the enable")
    {
        r.arm(now - 1);
        CHECK(r.irq() == 1);
        r.arm(now + 100);
        r.dev->reset(KEEL_RESET_WARM);
        CHECK(r.irq() == 0);
        CHECK(r.rd(kIrqEnabled) == 0);
        CHECK(r.rd(kAlarmStatus) == 0);
        CHECK(r.rd(kAlarmLow) == 0);
        CHECK(r.dev->armed_timers() == 0);
    }
}

TEST_CASE("goldfish-rtc logs bad offsets and write-only reads as guest errors", "[device][goldfish-rtc]")
{
    Rtc r;
    CHECK(r.rd(kClearAlarm) == 0);
    CHECK(r.k.logged(KEEL_LOG_GUEST_ERROR, "0x14"));
    CHECK(r.rd(0x20) == 0);
    CHECK(r.k.logged(KEEL_LOG_GUEST_ERROR, "0x20"));
    r.wr(kAlarmStatus, 1);
    CHECK(r.k.logged(KEEL_LOG_GUEST_ERROR, "write of offset 0x18"));
    CHECK(r.rd(kAlarmStatus) == 0);
    r.wr(0xffc, 1);
    CHECK(r.k.logged(KEEL_LOG_GUEST_ERROR, "0xffc"));
}
