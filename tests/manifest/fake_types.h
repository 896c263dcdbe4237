// SPDX-License-Identifier: MIT
// A SchemaProvider mirroring the real test modules' schemas, so manifest tests need no .so files.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "schema.h"

namespace keel::test
{

inline PropSchema prop(std::string name, KeelPropType type, const char *def = nullptr, uint32_t flags = 0,
                       uint64_t min = 0, uint64_t max = 0)
{
    PropSchema p;
    p.name = std::move(name);
    p.type = type;
    p.flags = flags;
    p.has_default = def != nullptr;
    p.default_value = def ? def : "";
    p.doc = "the " + p.name;
    p.min = min;
    p.max = max;
    return p;
}

inline PropSchema ranged(PropSchema p, uint64_t min, uint64_t max)
{
    p.flags |= KEEL_PROPF_RANGE;
    p.min = min;
    p.max = max;
    return p;
}

// test-reg, test-intc, test-dma as module testdevs 1.0.0 registers them
// (tests/devices/testdevs.c), plus the schemas of the real ns16550a and
// sifive-test modules so "did you mean" sees the same candidates as keel
// itself, and a CPU type for the `cpus:` section.
class FakeTypes : public SchemaProvider
{
  public:
    FakeTypes()
    {
        TypeSchema reg = base("test-reg", "testdevs");
        reg.props = {
            ranged(prop("size", KEEL_PROP_SIZE, "4K"), 16, 1u << 20),
            ranged(prop("num-regs", KEEL_PROP_UINT, "16"), 1, 1024),
            prop("reset-value", KEEL_PROP_UINT, "0"),
            prop("mode", KEEL_PROP_ENUM, "normal"),
            prop("label", KEEL_PROP_STRING),
            prop("enabled", KEEL_PROP_BOOL, "true"),
            ranged(prop("offset-adjust", KEEL_PROP_INT, "0"), static_cast<uint64_t>(int64_t{-100}), 100),
        };
        reg.props[3].enum_values = {"normal", "sticky"};
        add(reg);

        TypeSchema intc = base("test-intc", "testdevs");
        intc.props = {
            ranged(prop("num-inputs", KEEL_PROP_UINT, "32"), 1, 32),
            ranged(prop("id", KEEL_PROP_UINT, nullptr, KEEL_PROPF_REQUIRED), 0, 255),
        };
        add(intc);

        TypeSchema dma = base("test-dma", "testdevs");
        dma.props = {
            prop("peer", KEEL_PROP_LINK),
            prop("chardev", KEEL_PROP_CHARDEV),
            prop("max-len", KEEL_PROP_SIZE, "64K"),
        };
        dma.props[0].link_type = "test-reg";
        add(dma);

        TypeSchema uart = base("ns16550a", "ns16550a");
        uart.props = {
            ranged(prop("reg-shift", KEEL_PROP_UINT, "0"), 0, 2),
            prop("clock-frequency", KEEL_PROP_UINT, "3686400"),
            prop("chardev", KEEL_PROP_CHARDEV),
        };
        add(uart);

        add(base("sifive-test", "sifive-test"));

        TypeSchema cpu = base("fake-cpu", "fakecpu");
        cpu.props = {prop("isa", KEEL_PROP_STRING, "rv64gc"), prop("drive", KEEL_PROP_DRIVE)};
        add(cpu);
    }

    const TypeSchema *find_type(std::string_view name) const override
    {
        auto it = types_.find(std::string(name));
        return it == types_.end() ? nullptr : &it->second;
    }
    std::vector<std::string> type_names() const override
    {
        std::vector<std::string> out;
        for (const auto &[n, t] : types_)
            out.push_back(n);
        return out;
    }

  private:
    static TypeSchema base(const std::string &name, const std::string &module)
    {
        TypeSchema t;
        t.name = name;
        t.description = "fake " + name;
        t.module_name = module;
        t.module_file = "/fake/libkeel-device-" + module + ".so";
        t.module_version = "1.0.0";
        return t;
    }
    void add(TypeSchema t) { types_[t.name] = std::move(t); }
    std::map<std::string, TypeSchema> types_;
};

} // namespace keel::test
