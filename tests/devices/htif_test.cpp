// SPDX-License-Identifier: MIT
// The htif module against the fake kernel: exit codes, console putchar/getchar, 32-bit halves, syscalls.
#include <catch2/catch.hpp>

#include <cstring>

#include "fake_services.h"

using namespace keel::test;

namespace
{

constexpr unsigned kToHost = 0, kFromHost = 1;

constexpr uint64_t cmd(uint64_t dev, uint64_t c, uint64_t payload)
{
    return dev << 56 | c << 48 | payload;
}

// An htif on chardev "serial0", realized and reset.
struct Htif {
    FakeKernel k;
    FakeChardev &chr;
    std::unique_ptr<FakeDevice> dev;

    Htif() : chr(k.add_chardev("serial0"))
    {
        REQUIRE(k.load_module(MODULE_PATH));
        dev = k.create("htif", "htif", {{"chardev", "serial0"}});
        INFO(k.error());
        REQUIRE(dev);
    }
    void tohost(uint64_t v) { REQUIRE(dev->write(kToHost, 0, 8, v) == KEEL_MEM_OK); }
    uint64_t read(unsigned window, uint64_t off = 0, unsigned width = 8)
    {
        uint64_t v = 0xdeadbeef;
        REQUIRE(dev->read(window, off, width, &v) == KEEL_MEM_OK);
        return v;
    }
    uint64_t fromhost() { return read(kFromHost); }
    void clear_fromhost() { REQUIRE(dev->write(kFromHost, 0, 8, 0) == KEEL_MEM_OK); }

    // Guest RAM as 64-bit little-endian words (the syscall block).
    void poke64(uint64_t addr, uint64_t v)
    {
        for (int i = 0; i < 8; ++i)
            k.ram().at(addr - k.ram_base() + i) = static_cast<uint8_t>(v >> (8 * i));
    }
    uint64_t peek64(uint64_t addr)
    {
        uint64_t v = 0;
        for (int i = 7; i >= 0; --i)
            v = v << 8 | k.ram().at(addr - k.ram_base() + i);
        return v;
    }
};

} // namespace

TEST_CASE("htif registers two 8-byte windows and a chardev property", "[device][htif]")
{
    Htif h;
    const KeelDeviceTypeInfo *t = h.k.find_type("htif");
    REQUIRE(t);
    REQUIRE(t->n_properties == 1);
    CHECK(std::string(t->properties[0].name) == "chardev");
    CHECK(t->properties[0].type == KEEL_PROP_CHARDEV);
    REQUIRE(h.dev->window_count() == 2);
    CHECK(h.dev->window_name(0) == "htif.tohost");
    CHECK(h.dev->window_name(1) == "htif.fromhost");
    CHECK(h.dev->window_size(0) == 8);
    CHECK(h.dev->window_size(1) == 8);
    CHECK(h.read(kToHost) == 0);
    CHECK(h.fromhost() == 0);
}

TEST_CASE("htif exits with payload >> 1 when device 0 gets bit 0 set", "[device][htif]")
{
    Htif h;
    SECTION("pass")
    {
        h.tohost(1);
        REQUIRE(h.k.system_requests().size() == 1);
        CHECK(h.k.system_requests()[0].req == KEEL_SYSTEM_SHUTDOWN);
        CHECK(h.k.system_requests()[0].status == 0);
    }
    SECTION("a failing test number")
    {
        h.tohost(42 << 1 | 1);
        REQUIRE(h.k.system_requests().size() == 1);
        CHECK(h.k.system_requests()[0].status == 42);
    }
    SECTION("as an RV32 guest writes it: low half, then high half")
    {
        REQUIRE(h.dev->write(kToHost, 0, 4, 7 << 1 | 1) == KEEL_MEM_OK);
        CHECK(h.k.system_requests().empty());
        CHECK(h.read(kToHost, 0, 4) == (7 << 1 | 1)); // the half waits for its partner
        REQUIRE(h.dev->write(kToHost, 4, 4, 0) == KEEL_MEM_OK);
        REQUIRE(h.k.system_requests().size() == 1);
        CHECK(h.k.system_requests()[0].status == 7);
    }
    CHECK(h.read(kToHost) == 0);

    // riscv-tests keep storing their result in a loop until the machine stops: one request is enough.
    h.tohost(3);
    CHECK(h.k.system_requests().size() == 1);
    h.dev->reset(KEEL_RESET_WARM);
    h.tohost(5);
    CHECK(h.k.system_requests().size() == 2);
}

TEST_CASE("htif putchar writes to the chardev and acknowledges in fromhost", "[device][htif]")
{
    Htif h;
    h.tohost(cmd(1, 1, 'h'));
    CHECK(h.chr.output() == "h");
    CHECK(h.read(kToHost) == 0);
    CHECK(h.fromhost() == cmd(1, 1, 0x100 | 'h'));

    SECTION("acks queue while the guest has not cleared fromhost")
    {
        h.tohost(cmd(1, 1, 'i'));
        h.tohost(cmd(1, 1, 0));
        CHECK(h.chr.output() == std::string("hi\0", 3));
        CHECK(h.fromhost() == cmd(1, 1, 0x100 | 'h'));
        h.clear_fromhost();
        CHECK(h.fromhost() == cmd(1, 1, 0x100 | 'i'));
        h.clear_fromhost();
        CHECK(h.fromhost() == cmd(1, 1, 0x100)); // a NUL is acknowledged with a non-zero value
        h.clear_fromhost();
        CHECK(h.fromhost() == 0);
    }
    SECTION("a guest that never reads fromhost can print forever")
    {
        std::string text(1000, 'x');
        for (char c : text)
            h.tohost(cmd(1, 1, static_cast<uint8_t>(c)));
        CHECK(h.chr.output() == "h" + text);
        CHECK(h.k.system_requests().empty());
    }
    SECTION("fromhost cleared in two 32-bit halves")
    {
        h.tohost(cmd(1, 1, 'j'));
        REQUIRE(h.dev->write(kFromHost, 0, 4, 0) == KEEL_MEM_OK);
        CHECK(h.read(kFromHost, 4, 4) == 0x01010000u); // the high half is still there
        REQUIRE(h.dev->write(kFromHost, 4, 4, 0) == KEEL_MEM_OK);
        CHECK(h.fromhost() == cmd(1, 1, 0x100 | 'j'));
    }
}

TEST_CASE("htif putchar from 32-bit halves", "[device][htif]")
{
    Htif h;
    uint64_t v = cmd(1, 1, 'Q');
    REQUIRE(h.dev->write(kToHost, 0, 4, static_cast<uint32_t>(v)) == KEEL_MEM_OK);
    CHECK(h.chr.output().empty());
    REQUIRE(h.dev->write(kToHost, 4, 4, v >> 32) == KEEL_MEM_OK);
    CHECK(h.chr.output() == "Q");
    CHECK(h.read(kToHost, 0, 4) == 0);
    CHECK(h.read(kToHost, 4, 4) == 0);
}

TEST_CASE("htif getchar answers with the next input byte when there is one", "[device][htif]")
{
    Htif h;
    REQUIRE(h.chr.has_handlers());
    CHECK(h.chr.feed("ab") == 0); // nobody asked yet: the bytes wait in the backend
    h.tohost(cmd(1, 0, 0));
    CHECK(h.read(kToHost) == 0);
    CHECK(h.chr.accept_input_calls() >= 1);
    CHECK(h.chr.pump() == 1);
    CHECK(h.fromhost() == cmd(1, 0, 0x100 | 'a'));
    h.clear_fromhost();

    h.tohost(cmd(1, 0, 0));
    h.chr.pump();
    CHECK(h.fromhost() == cmd(1, 0, 0x100 | 'b'));
    h.clear_fromhost();

    SECTION("a request waits for input")
    {
        h.tohost(cmd(1, 0, 0));
        CHECK(h.fromhost() == 0);
        CHECK(h.chr.feed(std::string("\0z", 2)) == 1);
        CHECK(h.fromhost() == cmd(1, 0, 0x100)); // a NUL byte is still a non-zero answer
    }
    SECTION("an answer waits behind an unread putchar ack")
    {
        h.tohost(cmd(1, 1, '>'));
        h.tohost(cmd(1, 0, 0));
        h.chr.feed("c");
        CHECK(h.fromhost() == cmd(1, 1, 0x100 | '>'));
        h.clear_fromhost();
        CHECK(h.fromhost() == cmd(1, 0, 0x100 | 'c'));
    }
}

TEST_CASE("htif answers a proxied syscall so the guest does not hang", "[device][htif]")
{
    Htif h;
    const uint64_t block = h.k.ram_base() + 0x100;

    SECTION("unsupported syscalls get -ENOSYS")
    {
        h.poke64(block, 57); // close
        h.poke64(block + 8, 3);
        h.tohost(block);
        CHECK(h.fromhost() == 1);
        CHECK(h.peek64(block) == static_cast<uint64_t>(-38));
        CHECK(h.k.logged(KEEL_LOG_UNIMP, "57"));
        CHECK(h.k.system_requests().empty());
        CHECK(h.read(kToHost) == 0);
    }
    SECTION("write to stdout prints and returns the length")
    {
        const uint64_t buf = h.k.ram_base() + 0x400;
        std::memcpy(&h.k.ram().at(buf - h.k.ram_base()), "hello", 5);
        h.poke64(block, 64);
        h.poke64(block + 8, 1);
        h.poke64(block + 16, buf);
        h.poke64(block + 24, 5);
        h.tohost(block);
        CHECK(h.chr.output() == "hello");
        CHECK(h.peek64(block) == 5);
        CHECK(h.fromhost() == 1);
    }
    SECTION("write to another fd is refused")
    {
        h.poke64(block, 64);
        h.poke64(block + 8, 5);
        h.tohost(block);
        CHECK(h.peek64(block) == static_cast<uint64_t>(-38));
        CHECK(h.fromhost() == 1);
        CHECK(h.chr.output().empty());
    }
    SECTION("a block outside memory is a guest error, still answered")
    {
        h.tohost(0x1000);
        CHECK(h.fromhost() == 1);
        CHECK(h.k.logged(KEEL_LOG_GUEST_ERROR, "0x1000"));
    }
}

TEST_CASE("htif logs unknown devices and commands and takes them", "[device][htif]")
{
    Htif h;
    h.tohost(cmd(2, 0, 5));
    CHECK(h.k.logged(KEEL_LOG_UNIMP, "device 2 command 0"));
    h.tohost(cmd(0, 3, 1));
    CHECK(h.k.logged(KEEL_LOG_UNIMP, "device 0 command 3"));
    h.tohost(cmd(1, 7, 0));
    CHECK(h.k.logged(KEEL_LOG_UNIMP, "device 1 command 7"));
    CHECK(h.read(kToHost) == 0);
    CHECK(h.fromhost() == 0);
    CHECK(h.k.system_requests().empty());
}

TEST_CASE("htif refuses byte accesses and works without a chardev", "[device][htif]")
{
    FakeKernel k;
    REQUIRE(k.load_module(MODULE_PATH));
    auto dev = k.create("htif", "htif", {});
    REQUIRE(dev);
    uint64_t v;
    CHECK(dev->write(kToHost, 0, 1, 1) == KEEL_MEM_ACCESS_ERROR);
    CHECK(dev->read(kFromHost, 0, 2, &v) == KEEL_MEM_ACCESS_ERROR);
    CHECK(dev->write(kToHost, 0, 8, cmd(1, 1, 'x')) == KEEL_MEM_OK);
    CHECK(dev->read(kFromHost, 0, 8, &v) == KEEL_MEM_OK);
    CHECK(v == cmd(1, 1, 0x100 | 'x'));
    CHECK(k.system_requests().empty());
}
