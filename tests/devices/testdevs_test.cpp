// SPDX-License-Identifier: MIT
// The test-only testdevs module (exact schemas and behaviour), and the fake kernel it runs on.
#include <catch2/catch.hpp>

#include <cstring>
#include <optional>

#include "fake_services.h"

using namespace keel::test;

namespace
{

struct Expect {
    const char *name;
    KeelPropType type;
    uint32_t flags;
    const char *def; // nullptr: no default
    int64_t min, max;
};

const KeelPropertyInfo *prop(const KeelDeviceTypeInfo *t, const std::string &name)
{
    for (size_t i = 0; i < t->n_properties; ++i)
        if (name == t->properties[i].name) return &t->properties[i];
    return nullptr;
}

void check_schema(const KeelDeviceTypeInfo *t, const std::vector<Expect> &want)
{
    REQUIRE(t);
    CHECK(t->n_properties == want.size());
    for (const Expect &e : want) {
        INFO(t->name << "." << e.name);
        const KeelPropertyInfo *p = prop(t, e.name);
        REQUIRE(p);
        CHECK(p->type == e.type);
        CHECK(p->flags == e.flags);
        if (e.def)
            CHECK((p->default_value && std::string(p->default_value) == e.def));
        else
            CHECK(p->default_value == nullptr);
        if (e.flags & KEEL_PROPF_RANGE) {
            CHECK(static_cast<int64_t>(p->min) == e.min);
            CHECK(static_cast<int64_t>(p->max) == e.max);
        }
    }
}

struct Devs {
    FakeKernel k;
    Devs() { REQUIRE(k.load_module(MODULE_PATH)); }
    std::unique_ptr<FakeDevice> make(const std::string &type, const std::string &name,
                                     const PropValues &p = {})
    {
        auto d = k.create(type, name, p);
        INFO(k.error());
        REQUIRE(d);
        return d;
    }
};

} // namespace

TEST_CASE("testdevs registers its three types with the exact schemas", "[device][testdevs]")
{
    FakeKernel k;
    REQUIRE(k.load_module(MODULE_PATH));
    const KeelModuleInfo *mi = k.module_info("testdevs");
    REQUIRE(mi);
    CHECK(std::string(mi->version) == "1.0.0");
    CHECK(k.type_names() == std::vector<std::string>{"test-dma", "test-intc", "test-reg"});

    const KeelDeviceTypeInfo *reg = k.find_type("test-reg");
    check_schema(reg, {
                          {"size", KEEL_PROP_SIZE, KEEL_PROPF_RANGE, "4K", 16, 1 << 20},
                          {"num-regs", KEEL_PROP_UINT, KEEL_PROPF_RANGE, "16", 1, 1024},
                          {"reset-value", KEEL_PROP_UINT, 0, "0", 0, 0},
                          {"mode", KEEL_PROP_ENUM, 0, "normal", 0, 0},
                          {"label", KEEL_PROP_STRING, 0, nullptr, 0, 0},
                          {"enabled", KEEL_PROP_BOOL, 0, "true", 0, 0},
                          {"offset-adjust", KEEL_PROP_INT, KEEL_PROPF_RANGE, "0", -100, 100},
                      });
    const KeelPropertyInfo *mode = prop(reg, "mode");
    REQUIRE(mode->enum_values);
    CHECK(std::string(mode->enum_values[0]) == "normal");
    CHECK(std::string(mode->enum_values[1]) == "sticky");
    CHECK(mode->enum_values[2] == nullptr);

    check_schema(k.find_type("test-intc"),
                 {
                     {"num-inputs", KEEL_PROP_UINT, KEEL_PROPF_RANGE, "32", 1, 32},
                     {"id", KEEL_PROP_UINT, KEEL_PROPF_REQUIRED | KEEL_PROPF_RANGE, nullptr, 0, 255},
                 });

    const KeelDeviceTypeInfo *dma = k.find_type("test-dma");
    check_schema(dma, {
                          {"peer", KEEL_PROP_LINK, 0, nullptr, 0, 0},
                          {"chardev", KEEL_PROP_CHARDEV, 0, nullptr, 0, 0},
                          {"max-len", KEEL_PROP_SIZE, 0, "64K", 0, 0},
                      });
    CHECK(std::string(prop(dma, "peer")->link_type) == "test-reg");
}

TEST_CASE("test-reg is a bank of registers with an interrupt on register 0", "[device][testdevs]")
{
    Devs d;
    SECTION("defaults")
    {
        auto r = d.make("test-reg", "r");
        CHECK(r->window_size() == 4096);
        CHECK(r->window_ops().valid_min == 4);
        CHECK(r->window_ops().valid_max == 4);
        CHECK(r->irq_out_count() == 1);
        for (unsigned i = 0; i < 16; ++i)
            CHECK(r->read(4 * i, 4) == 0);
        r->write(8, 4, 0xcafef00d);
        CHECK(r->read(8, 4) == 0xcafef00d);
        CHECK(r->irq_level() == 0);
        r->write(0, 4, 5);
        CHECK(r->irq_level() == 1);
        r->write(0, 4, 0);
        CHECK(r->irq_level() == 0);
        CHECK(r->read(64, 4) == 0); // past num-regs: reads as zero, writes ignored
        r->write(64, 4, 1);
        CHECK(r->read(64, 4) == 0);
        uint64_t v;
        CHECK(r->read(0, 0, 2, &v) == KEEL_MEM_ACCESS_ERROR);
        CHECK(r->write(0, 0, 8, 1) == KEEL_MEM_ACCESS_ERROR);
        r->reset();
        CHECK(r->read(8, 4) == 0);
    }
    SECTION("reset-value, size, num-regs")
    {
        auto r = d.make("test-reg", "r", {{"size", "0x100"}, {"num-regs", "64"}, {"reset-value", "0xabcd"}});
        CHECK(r->window_size() == 0x100);
        CHECK(r->read(0, 4) == 0xabcd);
        CHECK(r->read(0xfc, 4) == 0xabcd);
        CHECK(r->irq_level() == 0);
    }
    SECTION("sticky mode only sets bits")
    {
        auto r = d.make("test-reg", "r", {{"mode", "sticky"}});
        r->write(4, 4, 0x0f);
        r->write(4, 4, 0xf0);
        CHECK(r->read(4, 4) == 0xff);
        r->write(0, 4, 1);
        CHECK(r->irq_level() == 1);
        r->write(0, 4, 0);
        CHECK(r->read(0, 4) == 1);
        CHECK(r->irq_level() == 0);
    }
    SECTION("other properties parse")
    {
        auto r = d.make("test-reg", "r",
                        {{"label", "hello"}, {"enabled", "off"}, {"offset-adjust", "-100"}, {"size", "1M"}});
        CHECK(r->window_size() == 1024 * 1024);
    }
    SECTION("bad values are refused")
    {
        CHECK_FALSE(d.k.create("test-reg", "r", {{"size", "2M"}}));
        CHECK_FALSE(d.k.create("test-reg", "r", {{"size", "8"}}));
        CHECK_FALSE(d.k.create("test-reg", "r", {{"num-regs", "0"}}));
        CHECK_FALSE(d.k.create("test-reg", "r", {{"num-regs", "1025"}}));
        CHECK_FALSE(d.k.create("test-reg", "r", {{"mode", "bogus"}}));
        CHECK_FALSE(d.k.create("test-reg", "r", {{"enabled", "maybe"}}));
        CHECK_FALSE(d.k.create("test-reg", "r", {{"offset-adjust", "-101"}}));
        CHECK_FALSE(d.k.create("test-reg", "r", {{"no-such", "1"}}));
        CHECK_FALSE(
            d.k.create("test-reg", "r", {{"size", "16"}, {"num-regs", "5"}})); // 20 bytes of registers
        CHECK(d.k.error().find("num-regs") != std::string::npos);
    }
}

TEST_CASE("test-intc reports input levels through pending and enable", "[device][testdevs]")
{
    Devs d;
    CHECK_FALSE(d.k.create("test-intc", "ic"));
    CHECK(d.k.error().find("id") != std::string::npos);
    CHECK_FALSE(d.k.create("test-intc", "ic", {{"id", "256"}}));
    CHECK_FALSE(d.k.create("test-intc", "ic", {{"id", "1"}, {"num-inputs", "33"}}));

    auto ic = d.make("test-intc", "ic", {{"id", "7"}});
    CHECK(ic->window_size() == 0x100);
    CHECK(ic->irq_in_count() == 32);
    CHECK(ic->irq_in_count("nmi") == 1);
    CHECK(ic->irq_out_count() == 1);
    CHECK(ic->read(0xc, 4) == 7);

    CHECK(ic->set_irq("", 3, 1));
    CHECK(ic->set_irq("", 31, 1));
    CHECK(ic->read(0x0, 4) == 0x80000008u);
    CHECK(ic->irq_level() == 0); // nothing enabled
    ic->write(0x4, 4, 0x8);
    CHECK(ic->read(0x4, 4) == 0x8);
    CHECK(ic->irq_level() == 1);
    ic->set_irq("", 3, 0);
    CHECK(ic->read(0x0, 4) == 0x80000000u);
    CHECK(ic->irq_level() == 0);

    ic->set_irq("nmi", 0, 1);
    CHECK(ic->read(0x8, 4) == 1);
    CHECK(ic->irq_level() == 1);
    ic->set_irq("nmi", 0, 0);
    CHECK(ic->irq_level() == 0);

    ic->write(0x0, 4, 0xffffffff); // read-only registers ignore writes
    ic->write(0xc, 4, 99);
    CHECK(ic->read(0x0, 4) == 0x80000000u);
    CHECK(ic->read(0xc, 4) == 7);
    CHECK_FALSE(ic->set_irq("", 32, 1));
    uint64_t v;
    CHECK(ic->read(0, 0, 1, &v) == KEEL_MEM_ACCESS_ERROR);

    SECTION("fewer inputs")
    {
        auto small = d.make("test-intc", "ic2", {{"id", "0"}, {"num-inputs", "4"}});
        CHECK(small->irq_in_count() == 4);
    }
    SECTION("wired to a test-reg")
    {
        auto r = d.make("test-reg", "r");
        REQUIRE(r->connect("", 0, *ic, "", 5));
        ic->write(0x4, 4, 1u << 5);
        r->write(0, 4, 1);
        CHECK(ic->read(0x0, 4) == (0x80000000u | (1u << 5)));
        CHECK(ic->irq_level() == 1);
        r->write(0, 4, 0);
        CHECK(ic->irq_level() == 0);
    }
}

TEST_CASE("test-dma copies guest memory and has a byte port", "[device][testdevs]")
{
    Devs d;
    FakeChardev &chr = d.k.add_chardev("c0");
    auto peer = d.make("test-reg", "r");
    auto intc = d.make("test-intc", "ic", {{"id", "1"}});
    CHECK_FALSE(d.k.create("test-dma", "dma", {{"peer", "ic"}})); // wrong link type
    CHECK(d.k.error().find("test-reg") != std::string::npos);
    CHECK_FALSE(d.k.create("test-dma", "dma", {{"peer", "missing"}}));

    auto dma = d.make("test-dma", "dma", {{"peer", "r"}, {"chardev", "c0"}});
    CHECK(dma->window_size() == 0x20);
    CHECK(dma->window_ops().valid_min == 4);
    CHECK(dma->window_ops().valid_max == 8);
    const uint64_t base = d.k.ram_base();
    auto &ram = d.k.ram();

    SECTION("a copy in several chunks")
    {
        for (size_t i = 0; i < 1000; ++i)
            ram[i] = static_cast<uint8_t>(i * 7);
        dma->write(0x00, 8, base);
        dma->write(0x08, 4, (base + 0x4000) & 0xffffffff); // 32-bit halves
        dma->write(0x0c, 4, (base + 0x4000) >> 32);
        dma->write(0x10, 8, 1000);
        CHECK(dma->read(0x00, 8) == base);
        CHECK(dma->read(0x08, 8) == base + 0x4000);
        CHECK(dma->read(0x14, 4) == 0);
        dma->write(0x18, 4, 1);
        CHECK(dma->read(0x18, 4) == 2);
        CHECK(dma->irq_level() == 1);
        CHECK(std::memcmp(ram.data(), ram.data() + 0x4000, 1000) == 0);
        CHECK(ram[0x4000 + 1000] == 0);
        CHECK(d.k.dma_calls() > 2);
        dma->write(0x18, 4, 0);
        CHECK(dma->read(0x18, 4) == 0);
        CHECK(dma->irq_level() == 0);
    }
    SECTION("outside RAM is an error")
    {
        dma->write(0x00, 8, base + ram.size() - 16);
        dma->write(0x08, 8, base);
        dma->write(0x10, 8, 32);
        dma->write(0x18, 4, 1);
        CHECK(dma->read(0x18, 4) == 3);
        CHECK(dma->irq_level() == 1);
        dma->write(0x00, 8, 0x1000);
        dma->write(0x10, 8, 4);
        dma->write(0x18, 4, 0);
        dma->write(0x18, 4, 1);
        CHECK(dma->read(0x18, 4) == 3);
    }
    SECTION("longer than max-len is an error without touching memory")
    {
        dma->write(0x00, 8, base);
        dma->write(0x08, 8, base + 0x100);
        dma->write(0x10, 8, 64 * 1024 + 1);
        unsigned calls = d.k.dma_calls();
        dma->write(0x18, 4, 1);
        CHECK(dma->read(0x18, 4) == 3);
        CHECK(d.k.dma_calls() == calls);
    }
    SECTION("the byte port")
    {
        dma->write(0x1c, 4, 'h');
        dma->write(0x1c, 4, 'i');
        CHECK(chr.output() == "hi");
        CHECK(dma->read(0x1c, 4) == 0x100);
        CHECK(chr.feed("ab") == 2);
        CHECK(dma->read(0x1c, 4) == 'a');
        CHECK(dma->read(0x1c, 4) == 'b');
        CHECK(dma->read(0x1c, 4) == 0x100);
        CHECK(chr.feed(std::string(20, 'z')) == 16);
        dma->read(0x1c, 4);
        CHECK(chr.accept_input_calls() == 1);
        dma->unrealize();
        CHECK_FALSE(chr.has_handlers());
    }
    SECTION("without a chardev the port is silent")
    {
        auto lone = d.make("test-dma", "dma2", {{"max-len", "1K"}});
        lone->write(0x1c, 4, 'x');
        CHECK(lone->read(0x1c, 4) == 0x100);
        lone->write(0x10, 8, 1025);
        lone->write(0x18, 4, 1);
        CHECK(lone->read(0x18, 4) == 3);
    }
}

TEST_CASE("the fake kernel refuses what the real loader refuses", "[fake]")
{
    FakeKernel k;
    CHECK_FALSE(k.load_module("/nonexistent/libkeel-device-x.so"));
    CHECK(k.error().find("/nonexistent") != std::string::npos);
    REQUIRE(k.load_module(MODULE_PATH));
    REQUIRE(k.load_module(MODULE_PATH)); // loading twice is harmless
    CHECK(k.type_names().size() == 3);
    CHECK_FALSE(k.create("no-such-type", "x"));
    auto a = k.create("test-reg", "same");
    REQUIRE(a);
    CHECK_FALSE(k.create("test-reg", "same")); // names are unique
    CHECK(k.create("test-reg", "hex", {{"size", "0x1000"}, {"reset-value", "0b101"}, {"num-regs", "0o20"}}));
}

TEST_CASE("the fake kernel fires timers in deadline order", "[fake]")
{
    FakeKernel k;
    const KeelServices *s = k.services();
    std::vector<int> fired;
    struct Ctx {
        std::vector<int> *out;
        int id;
    } c1{&fired, 1}, c2{&fired, 2};
    auto cb = [](void *o) {
        auto *c = static_cast<Ctx *>(o);
        c->out->push_back(c->id);
    };
    KeelTimer *t1 = s->timer_new(nullptr, KEEL_CLOCK_VIRTUAL, cb, &c1);
    KeelTimer *t2 = s->timer_new(nullptr, KEEL_CLOCK_VIRTUAL, cb, &c2);
    s->timer_mod(t1, 200);
    s->timer_mod(t2, 100);
    k.advance_to(150);
    CHECK(fired == std::vector<int>{2});
    CHECK(s->clock_get_ns(KEEL_CLOCK_VIRTUAL) == 150);
    s->timer_del(t1);
    k.advance_to(1000);
    CHECK(fired == std::vector<int>{2});
    s->timer_mod(t1, 1000);
    k.advance_to(1000);
    CHECK(fired == std::vector<int>{2, 1});
    s->timer_free(t1);
    s->timer_free(t2);
}
