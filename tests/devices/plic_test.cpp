// SPDX-License-Identifier: MIT
// The plic module against the fake kernel: register layout, gateways, claim/complete, priorities, contexts.
#include <catch2/catch.hpp>

#include "fake_services.h"

using namespace keel::test;

namespace
{

constexpr uint64_t kPriority = 0x0, kPending = 0x1000, kEnable = 0x2000, kContext = 0x200000;

constexpr uint64_t prio(unsigned src)
{
    return kPriority + 4 * src;
}
constexpr uint64_t enable(unsigned ctx, unsigned word = 0)
{
    return kEnable + 0x80 * ctx + 4 * word;
}
constexpr uint64_t threshold(unsigned ctx)
{
    return kContext + 0x1000 * ctx;
}
constexpr uint64_t claim(unsigned ctx)
{
    return kContext + 0x1000 * ctx + 4;
}

// A PLIC with default properties (96 sources, priorities 0..7, 2 contexts) unless told otherwise.
struct Plic {
    FakeKernel k;
    std::unique_ptr<FakeDevice> dev;

    explicit Plic(const PropValues &props = {})
    {
        REQUIRE(k.load_module(MODULE_PATH));
        dev = k.create("plic", "plic", props);
        INFO(k.error());
        REQUIRE(dev);
    }
    uint32_t rd(uint64_t off) { return static_cast<uint32_t>(dev->read(off, 4)); }
    void wr(uint64_t off, uint32_t v) { dev->write(off, 4, v); }
    void line(unsigned src, int level) { REQUIRE(dev->set_irq("", src, level)); }
    int out(unsigned ctx) const { return dev->irq_level("", ctx); }
    // Enable @src for @ctx, keeping the other bits of its word.
    void enable_src(unsigned ctx, unsigned src)
    {
        wr(enable(ctx, src / 32), rd(enable(ctx, src / 32)) | 1u << src % 32);
    }
};

} // namespace

TEST_CASE("plic registers its schema, window and interrupt groups", "[device][plic]")
{
    Plic p(PropValues{{"num-sources", "53"}, {"num-contexts", "4"}});
    const KeelDeviceTypeInfo *t = p.k.find_type("plic");
    REQUIRE(t);
    REQUIRE(t->n_properties == 3);
    CHECK(std::string(t->properties[0].name) == "num-sources");
    CHECK(std::string(t->properties[0].default_value) == "96");
    CHECK((t->properties[0].min == 1 && t->properties[0].max == 1023));
    CHECK(std::string(t->properties[1].name) == "num-priorities");
    CHECK(std::string(t->properties[1].default_value) == "7");
    CHECK(std::string(t->properties[2].name) == "num-contexts");
    CHECK(std::string(t->properties[2].default_value) == "0"); // M and S of each CPU
    CHECK((t->properties[2].min == 0 && t->properties[2].max == 15872));
    CHECK(p.dev->window_count() == 1);
    CHECK(p.dev->window_size() == 0x4000000);
    CHECK(p.dev->window_ops().valid_min == 4);
    CHECK(p.dev->window_ops().valid_max == 4);
    CHECK(p.dev->irq_in_count() == 54); // line 0 stands for the nonexistent source 0
    CHECK(p.dev->irq_out_count() == 4);
}

TEST_CASE("plic refuses bad properties", "[device][plic]")
{
    FakeKernel k;
    REQUIRE(k.load_module(MODULE_PATH));
    CHECK_FALSE(k.create("plic", "p", {{"num-sources", "0"}}));
    CHECK(k.error().find("num-sources") != std::string::npos);
    CHECK_FALSE(k.create("plic", "p", {{"num-sources", "1024"}}));
    CHECK_FALSE(k.create("plic", "p", {{"num-contexts", "15873"}}));
    CHECK_FALSE(k.create("plic", "p", {{"num-priorities", "0"}}));
    CHECK(k.create("plic", "p", {{"num-sources", "1023"}, {"num-contexts", "15872"}}));
}

TEST_CASE("plic has an M and an S context per CPU of the machine by default", "[device][plic]")
{
    FakeKernel k;
    REQUIRE(k.load_module(MODULE_PATH));
    k.set_cpu_count(3);
    auto d = k.create("plic", "p", {});
    REQUIRE(d);
    CHECK(d->irq_out_count() == 6);
    k.set_cpu_count(0);
    CHECK_FALSE(k.create("plic", "p2", {}));
    CHECK(k.error().find("num-contexts") != std::string::npos);
}

TEST_CASE("plic register layout: priorities, pending, enables, thresholds and claims", "[device][plic]")
{
    Plic p(PropValues{{"num-sources", "40"}, {"num-contexts", "3"}});
    // Each register sits at its own offset: write distinct values everywhere and read them back.
    for (unsigned s = 1; s <= 40; ++s)
        p.wr(prio(s), s % 8);
    for (unsigned c = 0; c < 3; ++c) {
        p.wr(enable(c, 0), 0x11110000u << c);
        p.wr(enable(c, 1), 0x10u << c);
        p.wr(threshold(c), c + 1);
    }
    for (unsigned s = 1; s <= 40; ++s)
        CHECK(p.rd(prio(s)) == s % 8);
    for (unsigned c = 0; c < 3; ++c) {
        CHECK(p.rd(enable(c, 0)) == 0x11110000u << c);
        CHECK(p.rd(enable(c, 1)) == 0x10u << c);
        CHECK(p.rd(threshold(c)) == c + 1);
    }
    p.line(3, 1);
    p.line(33, 1);
    p.line(40, 1);
    CHECK(p.rd(kPending) == 1u << 3);
    CHECK(p.rd(kPending + 4) == (1u << 1 | 1u << 8));
    CHECK(p.rd(claim(0)) == 0); // nothing enabled for context 0 is pending
}

TEST_CASE("plic hardwires source 0 and the bits past the last source to zero", "[device][plic]")
{
    Plic p(PropValues{{"num-sources", "40"}});
    p.wr(prio(0), 7);
    CHECK(p.rd(prio(0)) == 0);
    p.wr(enable(0, 0), 0xffffffff);
    CHECK(p.rd(enable(0, 0)) == 0xfffffffe);
    p.wr(enable(1, 1), 0xffffffff);
    CHECK(p.rd(enable(1, 1)) == 0x1ff); // sources 32..40
    p.line(0, 1);                       // the unused line 0 changes nothing
    CHECK(p.rd(kPending) == 0);
    CHECK(p.out(0) == 0);
}

TEST_CASE("plic enable words end at the last source", "[device][plic]")
{
    SECTION("31 sources fill word 0 exactly")
    {
        Plic q(PropValues{{"num-sources", "31"}});
        q.wr(enable(0, 0), 0xffffffff);
        CHECK(q.rd(enable(0, 0)) == 0xfffffffe);
        CHECK(q.rd(enable(0, 1)) == 0);
    }
    SECTION("32 sources spill one bit into word 1")
    {
        Plic q(PropValues{{"num-sources", "32"}});
        q.wr(enable(0, 1), 0xffffffff);
        CHECK(q.rd(enable(0, 1)) == 1);
    }
}

TEST_CASE("plic claim returns the source and complete re-arms the gateway", "[device][plic]")
{
    Plic p;
    p.wr(prio(10), 1);
    p.enable_src(0, 10);
    CHECK(p.out(0) == 0);
    p.line(10, 1);
    CHECK(p.rd(kPending) == 1u << 10);
    CHECK(p.out(0) == 1);
    CHECK(p.out(1) == 0); // not enabled for context 1

    CHECK(p.rd(claim(0)) == 10);
    CHECK(p.rd(kPending) == 0);
    CHECK(p.out(0) == 0);
    CHECK(p.rd(claim(0)) == 0); // claimed once only

    SECTION("a line still high at completion is pending again")
    {
        p.wr(claim(0), 10);
        CHECK(p.rd(kPending) == 1u << 10);
        CHECK(p.out(0) == 1);
        CHECK(p.rd(claim(0)) == 10);
    }
    SECTION("a line that dropped while claimed is not")
    {
        p.line(10, 0);
        p.wr(claim(0), 10);
        CHECK(p.rd(kPending) == 0);
        CHECK(p.out(0) == 0);
        CHECK(p.rd(claim(0)) == 0);
    }
    SECTION("the gateway stays closed until completion, whatever the line does")
    {
        p.line(10, 0);
        p.line(10, 1);
        CHECK(p.rd(kPending) == 0);
        CHECK(p.out(0) == 0);
        p.wr(claim(0), 10);
        CHECK(p.out(0) == 1);
    }
    SECTION("a completion for a source the context has not enabled is ignored")
    {
        p.wr(claim(1), 10);
        CHECK(p.rd(kPending) == 0);
        CHECK(p.k.logged(KEEL_LOG_GUEST_ERROR, "context 1"));
        p.wr(claim(0), 0); // source 0 does not exist
        p.wr(claim(0), 97);
        CHECK(p.rd(kPending) == 0);
        p.wr(claim(0), 10);
        CHECK(p.rd(kPending) == 1u << 10);
    }
}

TEST_CASE("plic pending follows the line level until the source is claimed", "[device][plic]")
{
    Plic p;
    p.wr(prio(5), 3);
    p.enable_src(0, 5);
    p.line(5, 1);
    CHECK(p.out(0) == 1);
    p.line(5, 0);
    CHECK(p.rd(kPending) == 0);
    CHECK(p.out(0) == 0);
    CHECK(p.rd(claim(0)) == 0);
    // Pending does not depend on priority or enables: a disabled source with priority 0 is pending too.
    p.line(6, 1);
    CHECK(p.rd(kPending) == 1u << 6);
    CHECK(p.out(0) == 0);
}

TEST_CASE("plic claims the highest priority above the threshold, lowest ID on ties", "[device][plic]")
{
    Plic p;
    for (unsigned s : {3u, 4u, 40u, 70u}) {
        p.enable_src(0, s);
        p.line(s, 1);
    }
    CHECK(p.out(0) == 0); // priority 0 never interrupts
    CHECK(p.rd(claim(0)) == 0);
    p.wr(prio(3), 2);
    p.wr(prio(4), 5);
    p.wr(prio(40), 5);
    p.wr(prio(70), 6);
    CHECK(p.out(0) == 1);

    SECTION("claim order")
    {
        CHECK(p.rd(claim(0)) == 70);
        CHECK(p.rd(claim(0)) == 4); // ties with 40: lower ID first
        CHECK(p.rd(claim(0)) == 40);
        CHECK(p.rd(claim(0)) == 3);
        CHECK(p.rd(claim(0)) == 0);
        CHECK(p.out(0) == 0);
    }
    SECTION("the threshold masks priorities at or below it")
    {
        p.wr(threshold(0), 6);
        CHECK(p.out(0) == 0);
        CHECK(p.rd(claim(0)) == 0);
        p.wr(threshold(0), 5);
        CHECK(p.out(0) == 1);
        CHECK(p.rd(claim(0)) == 70);
        CHECK(p.out(0) == 0);
        CHECK(p.rd(claim(0)) == 0); // 4 and 40 are at the threshold
        p.wr(threshold(0), 1);
        CHECK(p.out(0) == 1);
        CHECK(p.rd(claim(0)) == 4);
    }
    SECTION("raising a priority changes the winner")
    {
        p.wr(prio(3), 7);
        CHECK(p.rd(claim(0)) == 3);
    }
}

TEST_CASE("plic priorities and thresholds are WARL to num-priorities", "[device][plic]")
{
    SECTION("7: three bits")
    {
        Plic p;
        p.wr(prio(1), 0xffffffff);
        CHECK(p.rd(prio(1)) == 7);
        p.wr(prio(1), 0xd);
        CHECK(p.rd(prio(1)) == 5);
        p.wr(threshold(1), 0x1f);
        CHECK(p.rd(threshold(1)) == 7);
    }
    SECTION("5: three bits, values above 5 clamped")
    {
        Plic p(PropValues{{"num-priorities", "5"}});
        p.wr(prio(1), 6);
        CHECK(p.rd(prio(1)) == 5);
        p.wr(prio(1), 4);
        CHECK(p.rd(prio(1)) == 4);
        p.wr(threshold(0), 7);
        CHECK(p.rd(threshold(0)) == 5);
    }
    SECTION("1: on or off")
    {
        Plic p(PropValues{{"num-priorities", "1"}});
        p.wr(prio(2), 6);
        CHECK(p.rd(prio(2)) == 0);
        p.wr(prio(2), 3);
        CHECK(p.rd(prio(2)) == 1);
    }
}

TEST_CASE("plic contexts have their own enables, thresholds and outputs", "[device][plic]")
{
    Plic p(PropValues{{"num-contexts", "4"}});
    p.wr(prio(1), 1);
    p.wr(prio(2), 2);
    p.enable_src(0, 1);
    p.enable_src(3, 1);
    p.enable_src(3, 2);
    p.line(1, 1);
    CHECK(p.out(0) == 1);
    CHECK(p.out(1) == 0);
    CHECK(p.out(2) == 0);
    CHECK(p.out(3) == 1);
    p.wr(threshold(3), 1);
    CHECK(p.out(3) == 0);
    CHECK(p.out(0) == 1);
    p.line(2, 1);
    CHECK(p.out(3) == 1);

    // A claim by one context takes the source from every context.
    CHECK(p.rd(claim(0)) == 1);
    CHECK(p.out(0) == 0);
    CHECK(p.rd(claim(3)) == 2);
    CHECK(p.out(3) == 0);
    // Context 3 may complete source 1 although context 0 claimed it: both enable it.
    p.wr(claim(3), 1);
    CHECK(p.out(0) == 1);
    p.wr(enable(0, 0), 0);
    CHECK(p.out(0) == 0);
}

TEST_CASE("plic outputs change only when their level does", "[device][plic]")
{
    Plic p;
    p.wr(prio(1), 1);
    p.wr(prio(2), 1);
    p.enable_src(0, 1);
    p.enable_src(0, 2);
    unsigned raises = p.dev->irq_out("", 0).raises;
    p.line(1, 1);
    p.line(2, 1);
    CHECK(p.dev->irq_out("", 0).raises == raises + 1);
    CHECK(p.rd(claim(0)) == 1);
    CHECK(p.out(0) == 1); // 2 is still pending
    CHECK(p.dev->irq_out("", 0).lowers == 0);
}

TEST_CASE("plic reset clears the registers and keeps the line levels", "[device][plic]")
{
    Plic p;
    p.wr(prio(1), 4);
    p.wr(prio(2), 4);
    p.enable_src(1, 1);
    p.enable_src(1, 2);
    p.wr(threshold(1), 2);
    p.line(1, 1);
    p.line(2, 1);
    CHECK(p.rd(claim(1)) == 1);
    CHECK(p.out(1) == 1);
    p.dev->reset(KEEL_RESET_WARM);
    CHECK(p.rd(prio(1)) == 0);
    CHECK(p.rd(enable(1)) == 0);
    CHECK(p.rd(threshold(1)) == 0);
    CHECK(p.out(1) == 0);
    CHECK(p.rd(kPending) == (1u << 1 | 1u << 2)); // the claim was forgotten with the closed gateway
    p.wr(prio(1), 1);
    p.enable_src(1, 1);
    CHECK(p.out(1) == 1);
    CHECK(p.rd(claim(1)) == 1);
}

TEST_CASE("plic drives a hart's external interrupt inputs", "[device][plic]")
{
    FakeKernel k;
    REQUIRE(k.load_module(MODULE_PATH));
    REQUIRE(k.load_module(TESTDEVS_PATH));
    auto plic = k.create("plic", "plic", {});
    REQUIRE(plic);
    // A test-intc stands in for the hart: input 0 as MEIP, input 1 as SEIP.
    auto cpu = k.create("test-intc", "cpu0", {{"num-inputs", "2"}, {"id", "1"}});
    INFO(k.error());
    REQUIRE(cpu);
    REQUIRE(plic->connect("", 0, *cpu, "", 0));
    REQUIRE(plic->connect("", 1, *cpu, "", 1));
    auto level = [&](unsigned n) { return (cpu->read(0, 4) >> n) & 1; };
    plic->write(prio(7), 4, 1);
    plic->write(enable(1), 4, 1u << 7);
    REQUIRE(plic->set_irq("", 7, 1));
    CHECK(level(0) == 0);
    CHECK(level(1) == 1);
    CHECK(plic->read(claim(1), 4) == 7);
    CHECK(level(1) == 0);
}

TEST_CASE("plic refuses other widths and ignores reserved offsets", "[device][plic]")
{
    Plic p(PropValues{{"num-sources", "40"}});
    uint64_t v = 0;
    CHECK(p.dev->read(0, prio(1), 8, &v) == KEEL_MEM_ACCESS_ERROR);
    CHECK(p.dev->read(0, prio(1), 1, &v) == KEEL_MEM_ACCESS_ERROR);
    CHECK(p.dev->write(0, threshold(0), 2, 1) == KEEL_MEM_ACCESS_ERROR);
    CHECK(p.dev->write(0, prio(1) + 2, 4, 1) == KEEL_MEM_ACCESS_ERROR); // misaligned
    CHECK(p.rd(prio(1)) == 0);
    CHECK(p.rd(threshold(0)) == 0);

    p.wr(prio(41), 3); // source 41 does not exist
    CHECK(p.k.logged(KEEL_LOG_GUEST_ERROR, "0xa4"));
    CHECK(p.rd(prio(41)) == 0);
    p.k.clear_logs();
    p.line(1, 1);
    p.wr(kPending, 0); // pending bits are read-only
    CHECK(p.k.logged(KEEL_LOG_GUEST_ERROR, "0x1000"));
    CHECK(p.rd(kPending) == 2);
    CHECK(p.rd(kPending + 8) == 0); // past source 40
    p.wr(enable(2), 0xff);          // context 2 does not exist
    CHECK(p.rd(enable(2)) == 0);
    CHECK(p.rd(enable(0, 2)) == 0); // past source 40 in the enables of context 0
    p.wr(enable(0, 2), 0xff);
    CHECK(p.rd(enable(0, 2)) == 0);
    p.wr(threshold(2), 1); // context 2
    CHECK(p.rd(threshold(2)) == 0);
    CHECK(p.rd(claim(2)) == 0);
    CHECK(p.rd(threshold(0) + 8) == 0); // reserved within a context block
    CHECK(p.rd(0x1f00000) == 0);
    CHECK(p.rd(0x3fffffc) == 0); // last word of the window
    p.k.clear_logs();
    p.wr(0x3fffffc, 1);
    CHECK(p.k.logged(KEEL_LOG_GUEST_ERROR, "0x3fffffc"));
    CHECK(p.dev->read(0, 0x4000000, 4, &v) != KEEL_MEM_OK); // outside the window
}
