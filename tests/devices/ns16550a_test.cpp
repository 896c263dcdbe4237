// SPDX-License-Identifier: MIT
// The ns16550a module against the fake kernel: registers, FIFOs, interrupts and their priority, loopback.
#include <catch2/catch.hpp>

#include <cstring>

#include "fake_services.h"

using namespace keel::test;

namespace
{

enum Reg : unsigned {
    RBR = 0,
    THR = 0,
    DLL = 0,
    IER = 1,
    DLM = 1,
    IIR = 2,
    FCR = 2,
    LCR = 3,
    MCR = 4,
    LSR = 5,
    MSR = 6,
    SCR = 7
};

constexpr uint8_t kLsrDR = 0x01, kLsrOE = 0x02, kLsrBI = 0x10, kLsrTHRE = 0x20, kLsrTEMT = 0x40;
constexpr uint8_t kIirNone = 0x01, kIirMsi = 0x00, kIirThri = 0x02, kIirRdi = 0x04, kIirRlsi = 0x06,
                  kIirCti = 0x0c, kIirFifo = 0xc0;
constexpr uint8_t kIerRx = 0x01, kIerTx = 0x02, kIerLs = 0x04, kIerMs = 0x08;

// A UART wired to chardev "serial0", realized and reset.
struct Uart {
    FakeKernel k;
    FakeChardev &chr;
    std::unique_ptr<FakeDevice> dev;
    unsigned shift = 0;

    explicit Uart(PropValues props = {}) : chr(k.add_chardev("serial0"))
    {
        REQUIRE(k.load_module(MODULE_PATH));
        props.emplace("chardev", "serial0");
        if (props.count("reg-shift")) shift = static_cast<unsigned>(std::stoul(props["reg-shift"]));
        dev = k.create("ns16550a", "uart0", props);
        INFO(k.error());
        REQUIRE(dev);
    }
    uint8_t rd(unsigned reg) { return static_cast<uint8_t>(dev->read(reg << shift, 1)); }
    void wr(unsigned reg, uint8_t v) { dev->write(reg << shift, 1, v); }
    int irq() const { return dev->irq_level(); }
    // 8N1 at 9600 baud from the default 3.6864 MHz clock: divisor 24, 10 bits per character.
    void set_9600_8n1()
    {
        wr(LCR, 0x80);
        wr(DLL, 24);
        wr(DLM, 0);
        wr(LCR, 0x03);
    }
};

// Four 10-bit characters at 9600 baud.
constexpr int64_t kTimeoutNs = 4 * 10 * 24 * 16 * 1000000000LL / 3686400;

} // namespace

TEST_CASE("ns16550a registers with its module info and schema", "[device][ns16550a]")
{
    FakeKernel k;
    REQUIRE(k.load_module(MODULE_PATH));
    const KeelModuleInfo *mi = k.module_info("ns16550a");
    REQUIRE(mi);
    CHECK(std::string(mi->version) == "1.0.1");
    CHECK(mi->kind == KEEL_MODULE_DEVICE);
    const KeelDeviceTypeInfo *t = k.find_type("ns16550a");
    REQUIRE(t);
    REQUIRE(t->n_properties == 3);
    const KeelPropertyInfo &rs = t->properties[0];
    CHECK(std::string(rs.name) == "reg-shift");
    CHECK(rs.type == KEEL_PROP_UINT);
    CHECK(std::string(rs.default_value) == "0");
    CHECK(rs.flags == KEEL_PROPF_RANGE);
    CHECK((rs.min == 0 && rs.max == 2));
    CHECK(std::string(t->properties[1].name) == "clock-frequency");
    CHECK(t->properties[1].type == KEEL_PROP_UINT);
    CHECK(std::string(t->properties[1].default_value) == "3686400");
    CHECK(std::string(t->properties[2].name) == "chardev");
    CHECK(t->properties[2].type == KEEL_PROP_CHARDEV);
}

TEST_CASE("ns16550a resets to the datasheet values", "[device][ns16550a]")
{
    Uart u;
    CHECK(u.dev->window_size() == 8);
    CHECK(u.dev->irq_out_count() == 1);
    auto check_reset = [&] {
        CHECK(u.rd(IER) == 0);
        CHECK(u.rd(IIR) == kIirNone);
        CHECK(u.rd(LCR) == 0);
        CHECK(u.rd(MCR) == 0);
        CHECK(u.rd(LSR) == 0x60);
        CHECK((u.rd(MSR) & 0xf0) == 0xb0); // DCD, DSR, CTS asserted by a connected line
        CHECK(u.rd(SCR) == 0);
        CHECK(u.irq() == 0);
    };
    check_reset();

    u.wr(FCR, 0x01);
    u.wr(IER, 0x0f);
    u.wr(LCR, 0x1b);
    u.wr(MCR, 0x0b);
    u.wr(SCR, 0x5a);
    u.chr.feed("x");
    CHECK(u.irq() == 1);
    u.dev->reset(KEEL_RESET_WARM);
    check_reset();
    CHECK(u.dev->armed_timers() == 0);
}

TEST_CASE("ns16550a divisor latch is reached through DLAB", "[device][ns16550a]")
{
    Uart u;
    u.wr(LCR, 0x83);
    u.wr(DLL, 0x0c);
    u.wr(DLM, 0x01);
    CHECK(u.rd(DLL) == 0x0c);
    CHECK(u.rd(DLM) == 0x01);
    CHECK(u.chr.output().empty()); // DLL is not THR
    u.wr(LCR, 0x03);
    CHECK(u.rd(IER) == 0); // DLM is not IER
    u.wr(IER, 0x05);
    u.wr(LCR, 0x83);
    CHECK(u.rd(DLL) == 0x0c);
    CHECK(u.rd(DLM) == 0x01);
    u.wr(LCR, 0x03);
    CHECK(u.rd(IER) == 0x05);
    CHECK(u.rd(LCR) == 0x03);
}

TEST_CASE("ns16550a transmits to the chardev with THR empty at once", "[device][ns16550a]")
{
    Uart u;
    for (char c : std::string("hello\n")) {
        u.wr(THR, static_cast<uint8_t>(c));
        CHECK((u.rd(LSR) & (kLsrTHRE | kLsrTEMT)) == (kLsrTHRE | kLsrTEMT));
    }
    CHECK(u.chr.output() == "hello\n");
}

TEST_CASE("ns16550a receives bytes from the chardev", "[device][ns16550a]")
{
    Uart u;
    REQUIRE(u.chr.has_handlers());

    SECTION("without FIFOs it holds one byte and asks for more when it is read")
    {
        CHECK(u.chr.feed("xyz") == 1);
        CHECK(u.chr.queued() == 2);
        CHECK((u.rd(LSR) & kLsrDR) == kLsrDR);
        unsigned accepts = u.chr.accept_input_calls();
        CHECK(u.rd(RBR) == 'x');
        CHECK((u.rd(LSR) & kLsrDR) == 0);
        CHECK(u.chr.accept_input_calls() == accepts + 1);
        CHECK(u.chr.pump() == 1);
        CHECK(u.rd(RBR) == 'y');
        u.chr.pump();
        CHECK(u.rd(RBR) == 'z');
        CHECK((u.rd(LSR) & kLsrDR) == 0);
    }

    SECTION("with FIFOs it takes 16 bytes, in order")
    {
        u.wr(FCR, 0x01);
        CHECK(u.chr.feed("0123456789abcdefXYZ") == 16);
        std::string got;
        while (u.rd(LSR) & kLsrDR)
            got += static_cast<char>(u.rd(RBR));
        CHECK(got == "0123456789abcdef");
        u.chr.pump();
        CHECK(u.rd(RBR) == 'X');
        CHECK((u.rd(LSR) & kLsrOE) == 0);
    }

    SECTION("FCR bit 1 empties the receive FIFO")
    {
        u.wr(FCR, 0x01);
        u.chr.feed("abc");
        u.wr(FCR, 0x03);
        CHECK((u.rd(LSR) & kLsrDR) == 0);
        u.chr.feed("d");
        CHECK(u.rd(RBR) == 'd');
    }
}

TEST_CASE("ns16550a raises received-data-available at the trigger level", "[device][ns16550a]")
{
    Uart u;
    u.wr(FCR, 0x81); // FIFOs on, trigger level 8
    u.wr(IER, kIerRx);
    u.chr.feed("1234567");
    CHECK(u.irq() == 0);
    CHECK(u.rd(IIR) == (kIirFifo | kIirNone));
    u.chr.feed("8");
    CHECK(u.irq() == 1);
    CHECK(u.rd(IIR) == (kIirFifo | kIirRdi));
    CHECK(u.rd(RBR) == '1'); // below the trigger level again
    CHECK(u.irq() == 0);

    SECTION("each trigger level")
    {
        const std::pair<uint8_t, size_t> levels[] = {{0x01, 1}, {0x41, 4}, {0x81, 8}, {0xc1, 14}};
        for (auto [fcr, level] : levels) {
            u.wr(FCR, static_cast<uint8_t>(fcr | 0x02));
            u.chr.feed(std::string(level - 1, 'a'));
            CHECK(u.irq() == 0);
            u.chr.feed("b");
            CHECK(u.irq() == 1);
        }
    }
}

TEST_CASE("ns16550a FIFO overrun sets OE and the line status interrupt", "[device][ns16550a]")
{
    Uart u;
    u.wr(FCR, 0x01);
    u.wr(IER, kIerLs);

    SECTION("through loopback")
    {
        u.wr(MCR, 0x10);
        for (int i = 0; i < 17; ++i)
            u.wr(THR, static_cast<uint8_t>('A' + i));
    }
    SECTION("from a backend that ignores can_receive")
    {
        u.chr.feed_unchecked("ABCDEFGHIJKLMNOPQ");
    }

    CHECK(u.irq() == 1);
    CHECK(u.rd(IIR) == (kIirFifo | kIirRlsi));
    uint8_t lsr = u.rd(LSR);
    CHECK((lsr & (kLsrOE | kLsrDR)) == (kLsrOE | kLsrDR));
    CHECK((u.rd(LSR) & kLsrOE) == 0); // reading LSR clears OE
    CHECK(u.irq() == 0);
    std::string got;
    while (u.rd(LSR) & kLsrDR)
        got += static_cast<char>(u.rd(RBR));
    CHECK(got == "ABCDEFGHIJKLMNOP"); // the 17th byte was lost
}

TEST_CASE("ns16550a non-FIFO overrun replaces the held byte", "[device][ns16550a]")
{
    Uart u;
    u.chr.feed_unchecked("pq");
    CHECK((u.rd(LSR) & (kLsrOE | kLsrDR)) == (kLsrOE | kLsrDR));
    CHECK(u.rd(RBR) == 'q');
}

TEST_CASE("ns16550a character timeout fires after four idle character times", "[device][ns16550a]")
{
    Uart u;
    u.set_9600_8n1();
    u.wr(FCR, 0xc1); // trigger level 14
    u.wr(IER, kIerRx);
    u.chr.feed("abc");
    CHECK(u.irq() == 0);
    u.k.advance_by(kTimeoutNs - 10000);
    CHECK(u.irq() == 0);
    u.chr.feed("d"); // a new byte restarts the timer
    u.k.advance_by(kTimeoutNs - 10000);
    CHECK(u.irq() == 0);
    u.k.advance_by(20000);
    CHECK(u.irq() == 1);
    CHECK(u.rd(IIR) == (kIirFifo | kIirCti));

    CHECK(u.rd(RBR) == 'a'); // reading clears the timeout and restarts the timer
    CHECK(u.irq() == 0);
    u.k.advance_by(kTimeoutNs + 1);
    CHECK(u.irq() == 1);
    u.rd(RBR);
    u.rd(RBR);
    u.rd(RBR);
    CHECK(u.irq() == 0);
    CHECK(u.dev->armed_timers() == 0); // an empty FIFO has nothing to time out
    u.k.advance_by(10 * kTimeoutNs);
    CHECK(u.irq() == 0);

    SECTION("the timeout scales with the divisor")
    {
        u.wr(LCR, 0x83);
        u.wr(DLL, 48); // 4800 baud: twice as long
        u.wr(LCR, 0x03);
        u.chr.feed("e");
        u.k.advance_by(2 * kTimeoutNs - 10000);
        CHECK(u.irq() == 0);
        u.k.advance_by(20000);
        CHECK(u.irq() == 1);
    }
    SECTION("no timeout without FIFOs")
    {
        u.wr(FCR, 0x00);
        u.wr(IER, 0);
        u.chr.feed("e");
        u.k.advance_by(10 * kTimeoutNs);
        CHECK(u.rd(IIR) == kIirNone);
    }
}

TEST_CASE("ns16550a THR-empty interrupt is raised and cleared by the rules", "[device][ns16550a]")
{
    Uart u;
    u.wr(IER, kIerTx);
    CHECK(u.irq() == 1); // THR is empty when ETBEI is enabled
    CHECK(u.rd(IIR) == kIirThri);
    CHECK(u.irq() == 0); // reading IIR that reported it clears it
    CHECK(u.rd(IIR) == kIirNone);

    unsigned raises = u.dev->irq_out().raises;
    u.wr(THR, 'x'); // THR empties again at once: a new THRE interrupt
    CHECK(u.irq() == 1);
    CHECK(u.dev->irq_out().raises == raises + 1);
    CHECK(u.chr.output() == "x");

    SECTION("writing THR clears a pending THRE before the next one")
    {
        unsigned lowers = u.dev->irq_out().lowers;
        u.wr(THR, 'y');
        CHECK(u.dev->irq_out().lowers == lowers + 1);
        CHECK(u.irq() == 1);
    }
    SECTION("disabling ETBEI drops it")
    {
        u.wr(IER, 0);
        CHECK(u.irq() == 0);
        CHECK(u.rd(IIR) == kIirNone);
    }
    SECTION("IIR read clears THRE only when it is the reported source")
    {
        u.wr(IER, kIerTx | kIerRx);
        u.chr.feed("r");
        CHECK(u.rd(IIR) == kIirRdi);
        CHECK(u.rd(RBR) == 'r');
        CHECK(u.rd(IIR) == kIirThri); // still pending after the RDA was served
        CHECK(u.rd(IIR) == kIirNone);
    }
}

TEST_CASE("ns16550a reports interrupts in priority order", "[device][ns16550a]")
{
    Uart u;
    u.wr(FCR, 0x01); // trigger level 1
    u.wr(IER, kIerRx | kIerTx | kIerLs | kIerMs);
    u.wr(MCR, 0x10); // loopback: CTS/DSR/DCD drop, so modem-status deltas are pending too
    for (int i = 0; i < 17; ++i)
        u.wr(THR, static_cast<uint8_t>(i)); // overrun + data + THRE

    CHECK(u.rd(IIR) == (kIirFifo | kIirRlsi));
    u.rd(LSR);
    CHECK(u.rd(IIR) == (kIirFifo | kIirRdi));
    while (u.rd(LSR) & kLsrDR)
        u.rd(RBR);
    CHECK(u.rd(IIR) == (kIirFifo | kIirThri));
    CHECK(u.rd(IIR) == (kIirFifo | kIirMsi));
    CHECK(u.irq() == 1);
    CHECK((u.rd(MSR) & 0x0f) != 0);
    CHECK(u.rd(IIR) == (kIirFifo | kIirNone));
    CHECK(u.irq() == 0);

    SECTION("character timeout outranks THR empty")
    {
        u.wr(FCR, 0xc3); // trigger 14, clear
        u.wr(THR, 'a');  // THRE pending again, one byte in the FIFO
        u.k.advance_by(1000000000);
        CHECK(u.rd(IIR) == (kIirFifo | kIirCti));
        CHECK(u.rd(IIR) == (kIirFifo | kIirCti)); // reading IIR does not clear the timeout
        u.rd(RBR);
        CHECK(u.rd(IIR) == (kIirFifo | kIirThri));
    }
}

TEST_CASE("ns16550a loopback routes TX to RX and MCR to MSR", "[device][ns16550a]")
{
    Uart u;
    u.wr(MCR, 0x10);
    u.wr(THR, 'Z');
    CHECK(u.chr.output().empty());
    CHECK((u.rd(LSR) & kLsrDR) == kLsrDR);
    CHECK(u.rd(RBR) == 'Z');

    u.rd(MSR);
    u.wr(MCR, 0x1f); // DTR RTS OUT1 OUT2 -> DSR CTS RI DCD
    CHECK((u.rd(MSR) & 0xf0) == 0xf0);
    u.wr(MCR, 0x12); // RTS only -> CTS
    CHECK((u.rd(MSR) & 0xf0) == 0x10);

    // The outside line is disconnected in loopback; its bytes wait until loopback ends.
    CHECK(u.chr.feed("q") == 0);
    unsigned accepts = u.chr.accept_input_calls();
    u.wr(MCR, 0x00);
    CHECK(u.chr.accept_input_calls() > accepts);
    CHECK(u.chr.pump() == 1);
    CHECK(u.rd(RBR) == 'q');
    u.wr(THR, 'o');
    CHECK(u.chr.output() == "o");
}

TEST_CASE("ns16550a with reg-shift 2 spaces registers four bytes apart", "[device][ns16550a]")
{
    Uart u(PropValues{{"reg-shift", "2"}});
    CHECK(u.dev->window_size() == 32);
    CHECK(u.dev->read(0x14, 4) == 0x60); // LSR, read 32 bits wide
    CHECK(u.dev->read(0x14, 1) == 0x60);
    CHECK(u.dev->read(0x15, 1) == 0); // upper byte lanes are not registers
    u.dev->write(0x1c, 4, 0xa5);
    CHECK(u.dev->read(0x1c, 4) == 0xa5);
    CHECK(u.dev->read(0x07, 1) == 0); // SCR is not at 7 any more
    u.dev->write(0x00, 4, 'k');
    CHECK(u.chr.output() == "k");
    u.dev->write(0x0c, 4, 0x80);
    CHECK(u.dev->read(0x0c, 4) == 0x80); // LCR
}

TEST_CASE("ns16550a declares access widths 1 to 4", "[device][ns16550a]")
{
    Uart u;
    const KeelMemoryOps &ops = u.dev->window_ops();
    CHECK(ops.valid_min == 1);
    CHECK(ops.valid_max == 4);
    uint64_t v = 0xdead;
    CHECK(u.dev->read(0, 0, 8, &v) == KEEL_MEM_ACCESS_ERROR);
    CHECK(u.dev->write(0, 0, 8, 'x') == KEEL_MEM_ACCESS_ERROR);
    CHECK(u.chr.output().empty());
    CHECK(u.dev->read(0, 4, 4, &v) == KEEL_MEM_OK); // MCR, 32 bits wide
    CHECK(v == 0);
    u.wr(SCR, 0x77);
    CHECK(u.dev->read(0, 6, 2, &v) == KEEL_MEM_OK);
    CHECK(v == 0xb0); // MSR alone: wider reads return the byte register, not SCR above it
    CHECK(u.dev->read(0, 2, 4, &v) == KEEL_MEM_ACCESS_ERROR); // misaligned
    CHECK(u.dev->read(0, 6, 4, &v) == KEEL_MEM_ACCESS_ERROR); // misaligned and past the window
}

TEST_CASE("ns16550a turns a break into a zero byte with BI", "[device][ns16550a]")
{
    Uart u;
    u.wr(IER, kIerLs);
    u.chr.event(KEEL_CHARDEV_BREAK);
    CHECK(u.irq() == 1);
    CHECK((u.rd(LSR) & (kLsrBI | kLsrDR)) == (kLsrBI | kLsrDR));
    CHECK(u.rd(RBR) == 0);
    CHECK(u.irq() == 0);
}

TEST_CASE("ns16550a registers chardev handlers in realize and removes them in unrealize",
          "[device][ns16550a]")
{
    FakeKernel k;
    FakeChardev &chr = k.add_chardev("serial0");
    REQUIRE(k.load_module(MODULE_PATH));
    auto dev = k.create("ns16550a", "uart0", {{"chardev", "serial0"}}, false);
    REQUIRE(dev);
    CHECK_FALSE(chr.has_handlers());
    REQUIRE(dev->realize());
    CHECK(chr.has_handlers());
    dev->unrealize();
    CHECK_FALSE(chr.has_handlers());

    SECTION("it works without a chardev")
    {
        auto lone = k.create("ns16550a", "uart1");
        REQUIRE(lone);
        lone->write(0, 1, 'x');
        CHECK(lone->read(5, 1) == 0x60);
    }
}

TEST_CASE("ns16550a refuses bad properties", "[device][ns16550a]")
{
    FakeKernel k;
    REQUIRE(k.load_module(MODULE_PATH));
    CHECK_FALSE(k.create("ns16550a", "u", {{"reg-shift", "3"}}));
    CHECK(k.error().find("reg-shift") != std::string::npos);
    CHECK_FALSE(k.create("ns16550a", "u", {{"clock-frequency", "0"}}));
    CHECK(k.error().find("clock-frequency") != std::string::npos);
    CHECK_FALSE(k.create("ns16550a", "u", {{"chardev", "nope"}}));
}

TEST_CASE("ns16550a in FIFO mode reports a break when its character reaches the top", "[device][ns16550a]")
{
    Uart u;
    constexpr uint8_t kLsrFifoErr = 0x80;
    u.wr(FCR, 0x01);
    u.wr(IER, kIerLs);
    u.chr.feed("ab");
    u.chr.event(KEEL_CHARDEV_BREAK);
    u.chr.feed("c");

    // The break is third in the FIFO: LSR7 says an error is queued, BI and the interrupt wait.
    uint8_t lsr = u.rd(LSR);
    CHECK((lsr & (kLsrFifoErr | kLsrBI | kLsrDR)) == (kLsrFifoErr | kLsrDR));
    CHECK(u.irq() == 0);
    CHECK(u.rd(RBR) == 'a');
    CHECK((u.rd(LSR) & kLsrBI) == 0);
    CHECK(u.rd(RBR) == 'b');

    // Now on top: BI and the line status interrupt appear; reading LSR reports them once.
    CHECK(u.irq() == 1);
    CHECK(u.rd(IIR) == (kIirFifo | kIirRlsi));
    lsr = u.rd(LSR);
    CHECK((lsr & (kLsrFifoErr | kLsrBI)) == (kLsrFifoErr | kLsrBI));
    CHECK(u.irq() == 0);
    CHECK((u.rd(LSR) & (kLsrFifoErr | kLsrBI)) == 0); // no other error left in the FIFO
    CHECK(u.rd(RBR) == 0);
    CHECK(u.rd(RBR) == 'c');
    CHECK((u.rd(LSR) & kLsrDR) == 0);
}

TEST_CASE("ns16550a ignores FCR bits other than FCR0 while FIFOs are off", "[device][ns16550a]")
{
    Uart u;
    u.chr.feed("x");
    u.wr(FCR, 0x02); // "clear RX" without FCR0: not programmed
    CHECK((u.rd(LSR) & kLsrDR) == kLsrDR);
    CHECK(u.rd(IIR) == kIirNone); // FIFOs still off
    CHECK(u.rd(RBR) == 'x');

    SECTION("turning FIFOs off empties them")
    {
        u.wr(FCR, 0x01);
        u.chr.feed("yz");
        u.wr(FCR, 0x00);
        CHECK((u.rd(LSR) & kLsrDR) == 0);
        CHECK(u.rd(IIR) == kIirNone);
    }
}
