// SPDX-License-Identifier: MIT
// Tests of the Ctrl-A multiplexer (mux=on, -serial mon:), the pty backend and their option spellings.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "../support/chardev_helpers.h"
#include "chardev.h"
#include "error.h"

using namespace keel;
using namespace keel::test;
using namespace std::chrono_literals;

namespace
{

void put(int fd, const std::string &s)
{
    REQUIRE(::write(fd, s.data(), s.size()) == ssize_t(s.size()));
}

// What arrives on fd until `want` has been seen (or 5 s pass).
std::string read_until(int fd, const std::string &want)
{
    std::string out;
    auto end = std::chrono::steady_clock::now() + 5s;
    while (out.find(want) == std::string::npos && std::chrono::steady_clock::now() < end) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        char buf[4096];
        ssize_t r = ::read(fd, buf, sizeof buf);
        if (r <= 0) break;
        out.append(buf, size_t(r));
    }
    return out;
}

// Whatever arrives on fd within ms milliseconds.
std::string read_for(int fd, int ms)
{
    std::string out;
    pollfd p{fd, POLLIN, 0};
    while (poll(&p, 1, ms) > 0) {
        char buf[4096];
        ssize_t r = ::read(fd, buf, sizeof buf);
        if (r <= 0) break;
        out.append(buf, size_t(r));
    }
    return out;
}

// A multiplexed unix-socket chardev with a connected client: the socket is
// the "terminal" the user types into.
struct MuxOnSocket {
    TmpDir dir;
    MainLoop loop;
    Frontend fe;
    std::unique_ptr<KeelChardev> chr;
    int client = -1;
    std::atomic<int> quits{0};

    MuxOnSocket()
    {
        set_console_quit([this] { ++quits; });
        loop.start();
        chr = open_chardev(parse_serial_option("mon:unix:" + dir.path + "/s,server=on,wait=off", "serial0"),
                           loop);
        chr->set_handlers(&fe.h, &fe);
        client = connect_unix(dir.path + "/s");
        REQUIRE(client >= 0);
        REQUIRE(fe.has_event(KEEL_CHARDEV_OPENED));
    }
    ~MuxOnSocket()
    {
        chr.reset();
        ::close(client);
        set_console_quit(nullptr);
    }
};

} // namespace

// ---- the multiplexer ----

TEST_CASE("mux: plain input and output pass through unchanged", "[console][mux]")
{
    MuxOnSocket t;
    CHECK(t.chr->describe() == "socket unix:" + t.dir.path + "/s (server) (mux)");
    put(t.client, std::string("hello\r\x03\x1b[A\0\xff", 10));
    CHECK(t.fe.wait_got(std::string("hello\r\x03\x1b[A\0\xff", 10)));
    write_str(*t.chr, "from the guest\r\n");
    CHECK(read_until(t.client, "guest\r\n") == "from the guest\r\n");
}

TEST_CASE("mux: C-a C-a and C-a a send one C-a and other keys after C-a are swallowed", "[console][mux]")
{
    MuxOnSocket t;
    // Split the escape across two writes too: the state survives between reads.
    put(t.client, "1\x01\x01"
                  "2\x01"
                  "a3\x01q4\x01");
    std::this_thread::sleep_for(50ms);
    put(t.client, "\x01"
                  "5\x01Z6");
    CHECK(t.fe.wait_got("1\x01"
                        "2\x01"
                        "34\x01"
                        "56"));
    CHECK(t.quits == 0);
}

TEST_CASE("mux: C-a h and C-a question mark print the keys and C-a c without a monitor stays put",
          "[console][mux]")
{
    MuxOnSocket t;
    put(t.client, "\x01h");
    std::string help = read_until(t.client, "C-a C-a does the same)\r\n");
    for (const char *line :
         {"C-a h    print this help\r\n", "C-a x    exit keel\r\n", "C-a b    send break\r\n",
          "C-a c    switch between console and monitor\r\n", "C-a a    send C-a (C-a C-a does the same)\r\n"})
        CHECK(help.find(line) != std::string::npos);
    // Keys QEMU has but keel does not are not advertised.
    CHECK(help.find("C-a s") == std::string::npos);
    CHECK(help.find("C-a t") == std::string::npos);
    put(t.client, "\x01?");
    CHECK(read_until(t.client, "exit keel\r\n").find("C-a x    exit keel") != std::string::npos);
    put(t.client, "\x01"
                  "c");
    CHECK(read_until(t.client, "line\r\n") ==
          "keel: no monitor on this console; staying on the serial line\r\n");
    // None of it reached the guest, and typing still goes to the guest.
    put(t.client, "k");
    CHECK(t.fe.wait_got("k"));
}

TEST_CASE("mux: C-a c moves the input between the device and the monitor and back", "[console][mux]")
{
    MuxOnSocket t;
    Frontend mon;
    std::mutex fm;
    std::vector<bool> focus;
    t.chr->set_monitor(&mon.h, &mon, [&](bool in) {
        std::lock_guard<std::mutex> g(fm);
        focus.push_back(in);
    });
    CHECK(t.chr->multiplexed());
    CHECK(t.chr->has_monitor());
    // Bytes before C-a c still reach the device; those after it the monitor, a break too.
    put(t.client, "ab\x01"
                  "cmon\x01"
                  "b");
    CHECK(mon.wait_got("mon"));
    CHECK(mon.has_event(KEEL_CHARDEV_BREAK));
    CHECK(t.fe.wait_got("ab"));
    put(t.client, "\x01"
                  "cdev");
    CHECK(t.fe.wait_got("abdev"));
    std::this_thread::sleep_for(50ms);
    {
        std::lock_guard<std::mutex> g(mon.m);
        CHECK(mon.got == "mon");
    }
    {
        std::lock_guard<std::mutex> g(t.fe.m);
        CHECK(std::find(t.fe.events.begin(), t.fe.events.end(), KEEL_CHARDEV_BREAK) == t.fe.events.end());
    }
    {
        std::lock_guard<std::mutex> g(fm);
        CHECK(focus == std::vector<bool>{true, false});
    }
    // Without the monitor C-a c stays on the line.
    t.chr->set_monitor(nullptr, nullptr, nullptr);
    CHECK_FALSE(t.chr->has_monitor());
    put(t.client, "\x01"
                  "c");
    CHECK(read_until(t.client, "line\r\n") ==
          "keel: no monitor on this console; staying on the serial line\r\n");
    put(t.client, "z");
    CHECK(t.fe.wait_got("abdevz"));
}

TEST_CASE("mux: a chardev without mux=on takes no monitor", "[console][mux]")
{
    TmpDir dir;
    MainLoop loop;
    loop.start();
    auto chr =
        open_chardev(parse_serial_option("unix:" + dir.path + "/s,server=on,wait=off", "serial0"), loop);
    Frontend mon;
    CHECK_FALSE(chr->multiplexed());
    chr->set_monitor(&mon.h, &mon, nullptr);
    CHECK_FALSE(chr->has_monitor());
}

TEST_CASE("mux: C-a b sends a break after the bytes typed before it", "[console][mux]")
{
    MuxOnSocket t;
    put(t.client, "ab\x01"
                  "bc");
    CHECK(t.fe.has_event(KEEL_CHARDEV_BREAK));
    CHECK(t.fe.wait_got("abc"));
    std::lock_guard<std::mutex> g(t.fe.m);
    CHECK(t.fe.events == std::vector<KeelChardevEvent>{KEEL_CHARDEV_OPENED, KEEL_CHARDEV_BREAK});
}

TEST_CASE("mux: C-a x prints keel: terminated and asks to quit once and drops later input", "[console][mux]")
{
    MuxOnSocket t;
    put(t.client, "a\x01xb");
    CHECK(read_until(t.client, "\r\n") == "keel: terminated\r\n");
    REQUIRE(t.fe.wait([&] { return t.quits.load() == 1; }));
    put(t.client, "\x01x");
    std::this_thread::sleep_for(100ms);
    CHECK(t.quits == 1);
    CHECK(t.fe.snapshot() == "a");
}

TEST_CASE("mux: escape keys work while the guest takes no input and nothing typed is lost", "[console][mux]")
{
    MuxOnSocket t;
    t.fe.set_budget(0); // the guest's receive FIFO is full
    put(t.client, "queued\x01h");
    CHECK(read_until(t.client, "exit keel").find("C-a x    exit keel") != std::string::npos);
    CHECK(t.fe.snapshot().empty());
    t.fe.set_budget(SIZE_MAX);
    t.chr->accept_input();
    CHECK(t.fe.wait_got("queued"));
}

TEST_CASE("mux: without mux=on C-a is an ordinary byte", "[console][mux]")
{
    TmpDir dir;
    MainLoop loop;
    loop.start();
    Frontend fe;
    auto chr =
        open_chardev(parse_chardev_option("socket,id=s,path=" + dir.path + "/s,server=on,wait=off"), loop);
    chr->set_handlers(&fe.h, &fe);
    int c = connect_unix(dir.path + "/s");
    REQUIRE(c >= 0);
    put(c, "\x01x\x01h");
    CHECK(fe.wait_got("\x01x\x01h"));
    CHECK(read_for(c, 100).empty());
    chr.reset();
    ::close(c);
}

// ---- pty ----

TEST_CASE("pty: drops output while the slave is closed then exchanges bytes raw", "[console][pty]")
{
    MainLoop loop;
    loop.start();
    Frontend fe;
    auto chr = open_chardev(parse_serial_option("pty", "serial0"), loop);
    chr->set_handlers(&fe.h, &fe);
    std::string d = chr->describe();
    REQUIRE(d.rfind("pty /dev/pts/", 0) == 0);
    std::string path = d.substr(4);
    CHECK_FALSE(chr->connected());
    // Nobody there: dropped at once, not queued for a later reader.
    auto t0 = std::chrono::steady_clock::now();
    CHECK(write_str(*chr, "lost") == 4);
    CHECK(std::chrono::steady_clock::now() - t0 < 50ms);

    int s = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    REQUIRE(s >= 0);
    CHECK(fe.has_event(KEEL_CHARDEV_OPENED));
    CHECK(chr->connected());
    // Raw both ways: no echo, no CR/LF translation, every byte value passes.
    put(s, std::string("typed\r\n\x03\x01\0", 10));
    CHECK(fe.wait_got(std::string("typed\r\n\x03\x01\0", 10)));
    write_str(*chr, "out\n");
    CHECK(read_until(s, "\n") == "out\n");
    CHECK(read_for(s, 100).empty()); // "lost" never arrives

    ::close(s);
    CHECK(fe.has_event(KEEL_CHARDEV_CLOSED));
    CHECK(fe.wait([&] { return !chr->connected(); }));
    write_str(*chr, "lost again");
    // A second user opens it again.
    s = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    REQUIRE(s >= 0);
    CHECK(fe.wait([&] { return fe.events.size() == 3; }));
    put(s, "again");
    CHECK(fe.wait_got(std::string("typed\r\n\x03\x01\0", 10) + "again"));
    write_str(*chr, "back\n");
    CHECK(read_until(s, "\n") == "back\n");
    ::close(s);
    chr.reset();
    std::lock_guard<std::mutex> g(fe.m);
    // The last close may or may not be seen before the chardev goes.
    if (fe.events.size() == 4 && fe.events[3] == KEEL_CHARDEV_CLOSED) fe.events.pop_back();
    CHECK(fe.events ==
          std::vector<KeelChardevEvent>{KEEL_CHARDEV_OPENED, KEEL_CHARDEV_CLOSED, KEEL_CHARDEV_OPENED});
}

TEST_CASE("pty with mux=on: C-a keys come from the pty", "[console][pty][mux]")
{
    MainLoop loop;
    loop.start();
    Frontend fe;
    auto chr = open_chardev(parse_chardev_option("pty,id=p,mux=on"), loop);
    chr->set_handlers(&fe.h, &fe);
    std::string d = chr->describe();
    REQUIRE(d.size() > 10);
    CHECK(d.substr(d.size() - 6) == " (mux)");
    int s = ::open(d.substr(4, d.size() - 10).c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    REQUIRE(s >= 0);
    REQUIRE(fe.has_event(KEEL_CHARDEV_OPENED));
    put(s, "x\x01\x01y\x01"
           "c");
    CHECK(read_until(s, "line\r\n") == "keel: no monitor on this console; staying on the serial line\r\n");
    CHECK(fe.wait_got("x\x01y"));
    ::close(s);
    chr.reset();
}

// ---- option spellings ----

TEST_CASE("serial mon:DEV and pty and chardev mux=on spellings", "[console][parse]")
{
    using Opts = std::map<std::string, std::string>;
    auto s = parse_serial_option("mon:stdio", "serial0");
    CHECK(s.id == "serial0");
    CHECK(s.backend == "stdio");
    CHECK(s.options == Opts{{"mux", "on"}});
    CHECK(s.loc.file == "-serial mon:stdio");

    s = parse_serial_option("pty", "serial1");
    CHECK(s.backend == "pty");
    CHECK(s.options.empty());
    CHECK(parse_serial_option("mon:pty", "serial0").options == Opts{{"mux", "on"}});

    s = parse_serial_option("mon:unix:/tmp/m.sock,server=on,wait=off", "serial0");
    CHECK(s.backend == "socket");
    CHECK(s.options == Opts{{"path", "/tmp/m.sock"}, {"server", "on"}, {"wait", "off"}, {"mux", "on"}});
    CHECK(s.loc.file == "-serial mon:unix:/tmp/m.sock,server=on,wait=off");
    s = parse_serial_option("mon:tcp::4444,server,nowait", "serial0");
    CHECK(s.options ==
          Opts{{"host", ""}, {"port", "4444"}, {"server", "on"}, {"wait", "off"}, {"mux", "on"}});

    s = parse_chardev_option("stdio,id=con,mux=on");
    CHECK(s.backend == "stdio");
    CHECK(s.options == Opts{{"mux", "on"}});
    CHECK(parse_chardev_option("stdio,id=con,mux=on,signal=on").options ==
          Opts{{"mux", "on"}, {"signal", "on"}});
    CHECK(parse_chardev_option("stdio,id=con,mux").options == Opts{{"mux", "on"}});
    CHECK(parse_chardev_option("stdio,id=con,mux=no").options == Opts{{"mux", "off"}});
    s = parse_chardev_option("pty,id=p0");
    CHECK(s.backend == "pty");
    CHECK(s.id == "p0");
    CHECK(parse_chardev_option("pty,id=p0,mux=on").options == Opts{{"mux", "on"}});
    CHECK(parse_chardev_option("socket,id=m,path=/tmp/m,server=on,mux=on").options.at("mux") == "on");
}

TEST_CASE("bad mon: and pty and mux spellings name what to fix", "[console][parse]")
{
    auto serial = [](const std::string &a) { return error_of([&] { parse_serial_option(a, "serial0"); }); };
    auto chardev = [](const std::string &a) { return error_of([&] { parse_chardev_option(a); }); };
    CHECK(serial("mon:") == "-serial mon:: mon: needs a device, e.g. mon:stdio");
    CHECK(serial("mon:null") ==
          "-serial mon:null: mon: needs a device with input to watch for Ctrl-A (stdio, "
          "pty, unix:PATH or tcp:[HOST]:PORT), not 'null'");
    CHECK(serial("mon:file:/tmp/x") ==
          "-serial mon:file:/tmp/x: mon: needs a device with input to watch for "
          "Ctrl-A (stdio, pty, unix:PATH or tcp:[HOST]:PORT), not 'file:/tmp/x'");
    CHECK(serial("mon:chardev:c") == "-serial mon:chardev:c: mon: needs a device with input to watch for "
                                     "Ctrl-A (stdio, pty, unix:PATH or tcp:[HOST]:PORT), not 'chardev:c'");
    // An error in the device part names the whole argument.
    CHECK(serial("mon:stdi") == "-serial mon:stdi: unknown chardev backend 'stdi' (valid: stdio, null, none, "
                                "pty, file:PATH, unix:PATH, tcp:[HOST]:PORT, chardev:ID, mon:DEV)");
    CHECK(serial("mon:unix:/tmp/s,sever=on") ==
          "-serial mon:unix:/tmp/s,sever=on: unknown socket option 'sever' (did you mean 'server'?)");
    CHECK(serial("pty:x") == "-serial pty:x: unknown chardev backend 'pty' (valid: stdio, null, none, pty, "
                             "file:PATH, unix:PATH, tcp:[HOST]:PORT, chardev:ID, mon:DEV)");

    CHECK(chardev("ptyy,id=p") == "-chardev ptyy,id=p: unknown chardev backend 'ptyy' (did you mean 'pty'?)");
    CHECK(chardev("pty,id=p,path=/dev/pts/3") ==
          "-chardev pty,id=p,path=/dev/pts/3: the pty backend has no option 'path' (valid: mux)");
    CHECK(chardev("stdio,id=c,mux=maybe") == "-chardev stdio,id=c,mux=maybe: invalid value 'maybe' for 'mux' "
                                             "(use on or off)");
    CHECK(chardev("stdio,id=c,muxx=on") ==
          "-chardev stdio,id=c,muxx=on: the stdio backend has no option 'muxx' (did you mean 'mux'?)");
    CHECK(chardev("file,id=f,path=/tmp/x,mux=on") ==
          "-chardev file,id=f,path=/tmp/x,mux=on: the file backend "
          "has no option 'mux' (valid: path, append)");
    CHECK(chardev("null,id=n,mux=on") ==
          "-chardev null,id=n,mux=on: the null backend has no option 'mux' (it "
          "takes none)");
}
