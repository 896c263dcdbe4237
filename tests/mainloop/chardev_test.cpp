// SPDX-License-Identifier: MIT
// Tests of the chardev backends (unix/tcp socket servers, file, stdio, null) and of -chardev/-serial parsing.
#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../support/chardev_helpers.h"
#include "chardev.h"

using namespace keel;
using namespace keel::test;
using namespace std::chrono_literals;

namespace
{

int connect_tcp(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(uint16_t(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

void send_all(int fd, const std::string &s)
{
    size_t off = 0;
    while (off < s.size()) {
        ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return;
        off += size_t(n);
    }
}

// Read exactly n bytes (or what arrives within the timeout).
std::string read_n(int fd, size_t n, int timeout_ms = 5000)
{
    std::string out;
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (out.size() < n && std::chrono::steady_clock::now() < end) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        char buf[4096];
        ssize_t r = read(fd, buf, std::min(sizeof buf, n - out.size()));
        if (r <= 0) break;
        out.append(buf, size_t(r));
    }
    return out;
}

std::string slurp(const std::string &path)
{
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

} // namespace

// ---- sockets ----

TEST_CASE("unix socket chardev: connect, input, output, close, reconnect", "[chardev]")
{
    TmpDir dir;
    std::string path = dir / "serial.sock";
    MainLoop loop;
    loop.start();
    Frontend fe; // outlives chr, which calls into it
    auto chr = open_chardev(parse_chardev_option("socket,id=s0,path=" + path + ",server=on,wait=off"), loop);
    CHECK(chr->id() == "s0");
    CHECK(chr->describe() == "socket unix:" + path + " (server)");
    CHECK_FALSE(chr->connected());

    struct stat st;
    REQUIRE(lstat(path.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 0777) == 0600);

    chr->set_handlers(&fe.h, &fe);

    // Nobody connected: output is dropped at once.
    auto t0 = std::chrono::steady_clock::now();
    CHECK(write_str(*chr, "lost") == 4);
    CHECK(std::chrono::steady_clock::now() - t0 < 50ms);

    int c = connect_unix(path);
    REQUIRE(c >= 0);
    REQUIRE(fe.wait_events(1));
    CHECK(fe.events[0] == KEEL_CHARDEV_OPENED);
    CHECK(chr->connected());

    send_all(c, "hello");
    CHECK(fe.wait_got("hello"));
    CHECK(write_str(*chr, "world") == 5);
    CHECK(read_n(c, 5) == "world");

    close(c);
    REQUIRE(fe.wait_events(2));
    CHECK(fe.events[1] == KEEL_CHARDEV_CLOSED);
    CHECK_FALSE(chr->connected());
    CHECK(write_str(*chr, "dropped") == 7);

    // The next client is accepted once the previous one has gone.
    int c2 = connect_unix(path);
    REQUIRE(c2 >= 0);
    REQUIRE(fe.wait_events(3));
    CHECK(fe.events[2] == KEEL_CHARDEV_OPENED);
    send_all(c2, "again");
    CHECK(fe.wait_got("helloagain"));
    write_str(*chr, "ok");
    CHECK(read_n(c2, 2) == "ok"); // nothing dropped earlier leaks into this client
    CHECK_FALSE(fe.overrun);
    CHECK_FALSE(fe.lock_missing);

    chr.reset();
    CHECK(read_n(c2, 1, 2000).empty()); // EOF: the server closed the client
    close(c2);
    CHECK(lstat(path.c_str(), &st) != 0); // unlinked on close
}

TEST_CASE("one client at a time: a second client waits until the first leaves", "[chardev]")
{
    TmpDir dir;
    std::string path = dir / "s";
    MainLoop loop;
    loop.start();
    Frontend fe; // outlives chr, which calls into it
    auto chr = open_chardev(parse_serial_option("unix:" + path + ",server=on,wait=off", "serial0"), loop);
    chr->set_handlers(&fe.h, &fe);
    int a = connect_unix(path);
    REQUIRE(fe.wait_events(1));
    int b = connect_unix(path); // queued in the backlog
    REQUIRE(b >= 0);
    send_all(b, "from-b");
    send_all(a, "from-a");
    CHECK(fe.wait_got("from-a"));
    write_str(*chr, "to-a");
    CHECK(read_n(a, 4) == "to-a");
    close(a);
    REQUIRE(fe.wait_events(3)); // CLOSED, then OPENED for b
    CHECK(fe.events ==
          std::vector<KeelChardevEvent>{KEEL_CHARDEV_OPENED, KEEL_CHARDEV_CLOSED, KEEL_CHARDEV_OPENED});
    CHECK(fe.wait_got("from-afrom-b"));
    close(b);
}

TEST_CASE("can_receive 0 pauses input, accept_input resumes with nothing lost or duplicated", "[chardev]")
{
    TmpDir dir;
    std::string path = dir / "s";
    MainLoop loop;
    loop.start();
    Frontend fe; // outlives chr, which calls into it
    auto chr = open_chardev(parse_serial_option("unix:" + path + ",server=on,wait=off", "serial0"), loop);
    fe.budget = 0;
    chr->set_handlers(&fe.h, &fe);
    int c = connect_unix(path);
    REQUIRE(c >= 0);
    REQUIRE(fe.wait_events(1));

    send_all(c, "abcdef");
    REQUIRE(fe.wait([&] { return fe.can_calls >= 1; })); // the backend has the bytes and was refused
    std::this_thread::sleep_for(20ms);
    {
        std::lock_guard<std::mutex> g(fe.m);
        CHECK(fe.got.empty());
    }
    send_all(c, "ghij"); // arrives while paused: stays in the socket

    fe.set_budget(4);
    chr->accept_input();
    CHECK(fe.wait_got("abcd"));
    std::this_thread::sleep_for(20ms);
    {
        std::lock_guard<std::mutex> g(fe.m);
        CHECK(fe.got == "abcd"); // budget used up: delivery stopped again
    }
    fe.set_budget(SIZE_MAX);
    chr->accept_input();
    CHECK(fe.wait_got("abcdefghij"));
    CHECK_FALSE(fe.overrun);

    // A client closing while input is paused: its bytes still come first, then CLOSED.
    fe.set_budget(0);
    send_all(c, "tail");
    REQUIRE(fe.wait([&] { return fe.can_calls >= 4; }));
    close(c);
    std::this_thread::sleep_for(20ms);
    {
        std::lock_guard<std::mutex> g(fe.m);
        CHECK(fe.events.size() == 1);
    }
    fe.set_budget(SIZE_MAX);
    chr->accept_input();
    CHECK(fe.wait_got("abcdefghijtail"));
    REQUIRE(fe.wait_events(2));
    CHECK(fe.events[1] == KEEL_CHARDEV_CLOSED);
}

TEST_CASE("a stream through a slow front end arrives intact", "[chardev]")
{
    TmpDir dir;
    std::string path = dir / "s";
    MainLoop loop;
    loop.start();
    Frontend fe; // outlives chr, which calls into it
    auto chr = open_chardev(parse_serial_option("unix:" + path + ",server=on,wait=off", "serial0"), loop);
    fe.budget = 0;
    chr->set_handlers(&fe.h, &fe);
    int c = connect_unix(path);
    REQUIRE(c >= 0);

    std::string data;
    std::mt19937 rng(42);
    for (int i = 0; i < 200000; ++i)
        data.push_back(char(rng()));
    std::thread sender([&] { send_all(c, data); }); // blocks while we push back
    // Like a UART FIFO draining: small random budgets, then accept_input().
    while (true) {
        {
            std::unique_lock<std::mutex> g(fe.m);
            if (fe.got.size() >= data.size()) break;
            bool progressed =
                fe.cv.wait_for(g, 5s, [&] { return fe.budget == 0 || fe.got.size() >= data.size(); });
            if (!progressed || fe.got.size() >= data.size()) break;
            fe.budget = 1 + rng() % 3000;
        }
        chr->accept_input();
    }
    sender.join();
    {
        std::lock_guard<std::mutex> g(fe.m);
        CHECK(fe.got.size() == data.size());
        CHECK(fe.got == data);
        CHECK_FALSE(fe.overrun);
    }
    close(c);
}

TEST_CASE("writes to a client that vanished do not hang or kill the process", "[chardev]")
{
    TmpDir dir;
    std::string path = dir / "s";
    MainLoop loop;
    loop.start();
    Frontend fe; // outlives chr, which calls into it
    auto chr = open_chardev(parse_serial_option("unix:" + path + ",server=on,wait=off", "serial0"), loop);
    chr->set_handlers(&fe.h, &fe);
    int c = connect_unix(path);
    REQUIRE(fe.wait_events(1));
    close(c);
    // Write before the loop noticed: EPIPE must not raise SIGPIPE.
    std::string big(100000, 'x');
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i)
        CHECK(write_str(*chr, big) == big.size());
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);
    REQUIRE(fe.wait_events(2));
    CHECK(fe.events[1] == KEEL_CHARDEV_CLOSED);
}

TEST_CASE("a client that does not read stalls writes only briefly", "[chardev]")
{
    TmpDir dir;
    std::string path = dir / "s";
    MainLoop loop;
    loop.start();
    Frontend fe; // outlives chr, which calls into it
    auto chr = open_chardev(parse_serial_option("unix:" + path + ",server=on,wait=off", "serial0"), loop);
    chr->set_handlers(&fe.h, &fe);
    int c = connect_unix(path);
    REQUIRE(fe.wait_events(1));
    std::string big(1 << 20, 'y'); // more than the socket buffers hold
    auto t0 = std::chrono::steady_clock::now();
    CHECK(write_str(*chr, big) == big.size());
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);
    close(c);
}

TEST_CASE("handlers attached after a client connected get OPENED, size limits what is read", "[chardev]")
{
    TmpDir dir;
    std::string path = dir / "s";
    MainLoop loop;
    loop.start();
    Frontend fe; // outlives chr, which calls into it
    auto chr = open_chardev(parse_serial_option("unix:" + path + ",server=on,wait=off", "serial0"), loop);
    int c = connect_unix(path);
    REQUIRE(c >= 0);
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!chr->connected() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    REQUIRE(chr->connected());
    send_all(c, "early"); // no front end yet: kept until one attaches

    chr->set_handlers(&fe.h, &fe);
    REQUIRE(fe.wait_events(1));
    CHECK(fe.events[0] == KEEL_CHARDEV_OPENED);
    CHECK(fe.wait_got("early"));

    // A module built against an older, smaller struct without `event`.
    Frontend old;
    old.h.size = offsetof(KeelChardevHandlers, event);
    old.h.event = [](void *, KeelChardevEvent) { FAIL("event is outside the declared size"); };
    chr->set_handlers(&old.h, &old);
    send_all(c, "x");
    CHECK(old.wait_got("x"));

    chr->set_handlers(nullptr, nullptr);
    close(c);
    std::this_thread::sleep_for(20ms);
}

TEST_CASE("tcp socket chardev on 127.0.0.1", "[chardev]")
{
    MainLoop loop;
    loop.start();
    Frontend fe; // outlives chr, which calls into it
    auto chr = open_chardev(parse_serial_option("tcp:127.0.0.1:0,server=on,wait=off", "serial1"), loop);
    std::string d = chr->describe();
    REQUIRE(d.rfind("socket tcp:127.0.0.1:", 0) == 0);
    int port = std::stoi(d.substr(std::string("socket tcp:127.0.0.1:").size()));
    CHECK(port > 0);
    CHECK(d == "socket tcp:127.0.0.1:" + std::to_string(port) + " (server)");

    chr->set_handlers(&fe.h, &fe);
    int c = connect_tcp(port);
    REQUIRE(c >= 0);
    REQUIRE(fe.wait_events(1));
    send_all(c, "ping");
    CHECK(fe.wait_got("ping"));
    write_str(*chr, "pong");
    CHECK(read_n(c, 4) == "pong");
    close(c);
    REQUIRE(fe.wait_events(2));
    CHECK(fe.events[1] == KEEL_CHARDEV_CLOSED);

    // The port is taken now.
    auto spec = parse_chardev_option("socket,id=t2,host=127.0.0.1,port=" + std::to_string(port) +
                                     ",server=on,wait=off");
    CHECK_THAT(error_of([&] { open_chardev(spec, loop); }),
               Catch::StartsWith("-chardev socket,id=t2,host=127.0.0.1,port=" + std::to_string(port) +
                                 ",server=on,wait=off: chardev 't2': cannot listen on tcp 127.0.0.1:" +
                                 std::to_string(port) + ": Address already in use"));
}

TEST_CASE("wait=on (the QEMU default for servers) blocks until a client connects", "[chardev]")
{
    TmpDir dir;
    std::string path = dir / "s";
    MainLoop loop;
    loop.start();
    std::thread client([&] {
        int c = -1;
        for (int i = 0; i < 500 && c < 0; ++i) {
            std::this_thread::sleep_for(5ms);
            c = connect_unix(path);
        }
        if (c >= 0) {
            send_all(c, "hi");
            read_n(c, 3);
            close(c);
        }
    });
    Frontend fe; // outlives chr, which calls into it
    auto chr = open_chardev(parse_serial_option("unix:" + path + ",server=on", "serial0"), loop);
    CHECK(chr->connected());
    chr->set_handlers(&fe.h, &fe);
    REQUIRE(fe.wait_events(1));
    CHECK(fe.events[0] == KEEL_CHARDEV_OPENED);
    CHECK(fe.wait_got("hi"));
    write_str(*chr, "bye");
    client.join();
}

TEST_CASE("unix socket paths: a stale socket is replaced, other files are left alone", "[chardev]")
{
    TmpDir dir;
    MainLoop loop;
    std::string stale = dir / "stale";
    {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", stale.c_str());
        REQUIRE(bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) == 0);
        close(fd); // the file stays behind, as after a crash
    }
    auto chr = open_chardev(parse_serial_option("unix:" + stale + ",server=on,wait=off", "serial0"), loop);
    loop.start();
    int c = connect_unix(stale);
    CHECK(c >= 0);
    if (c >= 0) close(c);
    chr.reset();

    std::string regular = dir / "notes.txt";
    std::ofstream(regular) << "keep me";
    CHECK(error_of([&] {
              open_chardev(parse_serial_option("unix:" + regular + ",server=on,wait=off", "serial0"), loop);
          }) == "-serial unix:" + regular +
                    ",server=on,wait=off: chardev 'serial0': cannot create unix socket '" + regular +
                    "': a file that is not a socket exists there");
    CHECK(slurp(regular) == "keep me");

    std::string missing = dir / "no/such/dir/s";
    CHECK(error_of([&] {
              open_chardev(parse_serial_option("unix:" + missing + ",server=on,wait=off", "serial0"), loop);
          }) == "-serial unix:" + missing +
                    ",server=on,wait=off: chardev 'serial0': cannot bind unix socket '" + missing +
                    "': No such file or directory");

    std::string longp = dir / std::string(120, 'a');
    CHECK_THAT(error_of([&] {
                   open_chardev(parse_serial_option("unix:" + longp + ",server=on,wait=off", "s"), loop);
               }),
               Catch::Contains("is too long (1 to 107 bytes)"));
}

TEST_CASE("client-mode sockets are refused with a hint", "[chardev]")
{
    MainLoop loop;
    ChardevSpec s = parse_chardev_option("socket,id=c,path=/tmp/x");
    CHECK(error_of([&] { open_chardev(s, loop); }) == "-chardev socket,id=c,path=/tmp/x: chardev 'c': client "
                                                      "mode sockets are not supported yet; add server=on to "
                                                      "listen for a client");
}

// ---- file, null, stdio ----

TEST_CASE("file chardev writes the file, truncates unless append=on", "[chardev]")
{
    TmpDir dir;
    std::string path = dir / "out.txt";
    MainLoop loop;
    {
        auto chr = open_chardev(parse_serial_option("file:" + path, "serial0"), loop);
        CHECK(chr->describe() == "file:" + path);
        CHECK(write_str(*chr, "hello\n") == 6);
        write_str(*chr, "world\n");
        CHECK(slurp(path) == "hello\nworld\n"); // unbuffered: visible at once
    }
    {
        auto chr = open_chardev(parse_chardev_option("file,id=f,path=" + path), loop);
        write_str(*chr, "new");
    }
    CHECK(slurp(path) == "new");
    {
        auto chr = open_chardev(parse_chardev_option("file,id=f,path=" + path + ",append=on"), loop);
        write_str(*chr, "+more");
    }
    CHECK(slurp(path) == "new+more");

    std::string bad = dir / "missing/out.txt";
    CHECK(error_of([&] { open_chardev(parse_serial_option("file:" + bad, "serial0"), loop); }) ==
          "-serial file:" + bad + ": chardev 'serial0': cannot open '" + bad +
              "' for writing: No such file or directory");

    // From a manifest: the location prefixes the message.
    ChardevSpec m;
    m.id = "log";
    m.backend = "file";
    m.options["path"] = bad;
    m.loc = Location{"riscv-virt.yaml", 12, 5};
    CHECK_THAT(error_of([&] { open_chardev(m, loop); }),
               Catch::StartsWith("riscv-virt.yaml:12:5: chardev 'log': "));
}

TEST_CASE("null and none chardevs discard output", "[chardev]")
{
    MainLoop loop;
    auto n = open_chardev(parse_serial_option("null", "serial0"), loop);
    CHECK(n->describe() == "null");
    CHECK(write_str(*n, "gone") == 4);
    Frontend fe;
    n->set_handlers(&fe.h, &fe);
    n->accept_input();
    auto none = open_chardev(parse_serial_option("none", "serial1"), loop);
    CHECK(none->describe() == "none");
    CHECK(write_str(*none, "x") == 1);
}

TEST_CASE("stdio chardev reads stdin and writes stdout", "[chardev]")
{
    // Stand-ins for the terminal: pipes on fds 0 and 1.
    int in[2], out[2];
    REQUIRE(pipe(in) == 0);
    REQUIRE(pipe(out) == 0);
    std::fflush(stdout);
    int saved0 = dup(0), saved1 = dup(1);
    dup2(in[0], 0);
    dup2(out[1], 1);

    std::string got_out, second_error;
    bool got_in = false;
    std::string describe;
    {
        MainLoop loop;
        loop.start();
        Frontend fe; // outlives chr, which calls into it
        auto chr = open_chardev(parse_serial_option("stdio", "serial0"), loop);
        describe = chr->describe();
        second_error = error_of([&] { open_chardev(parse_chardev_option("stdio,id=again"), loop); });
        chr->set_handlers(&fe.h, &fe);
        [[maybe_unused]] ssize_t w = write(in[1], "typed", 5);
        got_in = fe.wait_got("typed");
        write_str(*chr, "printed");
        got_out = read_n(out[0], 7);
        // EOF on stdin ends input without spinning or events.
        close(in[1]);
        std::this_thread::sleep_for(20ms);
        chr.reset();
        // Only one user of stdio at a time, but it is free again now.
        chr = open_chardev(parse_chardev_option("stdio,id=again,signal=off"), loop);
    }
    dup2(saved0, 0);
    dup2(saved1, 1);
    close(saved0);
    close(saved1);
    close(in[0]);
    close(out[0]);
    close(out[1]);
    CHECK(describe == "stdio");
    CHECK(got_in);
    CHECK(got_out == "printed");
    CHECK(second_error == "-chardev stdio,id=again: chardev 'again': stdio is already used by another "
                          "chardev (only one may use it)");
}

// ---- parsing ----

TEST_CASE("parse_chardev_option: -chardev accepts every documented spelling", "[chardev]")
{
    auto s = parse_chardev_option("socket,id=mon0,path=/tmp/m.sock,server=on,wait=off");
    CHECK(s.id == "mon0");
    CHECK(s.backend == "socket");
    CHECK(s.options ==
          std::map<std::string, std::string>{{"path", "/tmp/m.sock"}, {"server", "on"}, {"wait", "off"}});
    CHECK(s.loc.file == "-chardev socket,id=mon0,path=/tmp/m.sock,server=on,wait=off");
    CHECK(s.loc.line == 0);

    s = parse_chardev_option("socket,id=t,host=127.0.0.1,port=4444,server=yes,wait=no");
    CHECK(s.options == std::map<std::string, std::string>{
                           {"host", "127.0.0.1"}, {"port", "4444"}, {"server", "on"}, {"wait", "off"}});
    s = parse_chardev_option("socket,id=t,port=4444,server,nowait"); // QEMU's old flag forms
    CHECK(s.options ==
          std::map<std::string, std::string>{{"port", "4444"}, {"server", "on"}, {"wait", "off"}});
    s = parse_chardev_option("socket,id=t,host=,port=0,server=on");
    CHECK(s.options.at("host").empty());

    s = parse_chardev_option("file,id=log,path=out.txt,append=on");
    CHECK(s.backend == "file");
    CHECK(s.options == std::map<std::string, std::string>{{"path", "out.txt"}, {"append", "on"}});
    s = parse_chardev_option("stdio,id=con");
    CHECK(s.backend == "stdio");
    CHECK(s.options.empty());
    CHECK(parse_chardev_option("stdio,id=con,signal=off").options.at("signal") == "off");
    s = parse_chardev_option("null,id=n");
    CHECK(s.backend == "null");
    CHECK(s.id == "n");
}

TEST_CASE("parse_chardev_option: -chardev rejects bad input naming what is valid", "[chardev]")
{
    auto err = [](const std::string &a) { return error_of([&] { parse_chardev_option(a); }); };
    CHECK(err("foo,id=x") ==
          "-chardev foo,id=x: unknown chardev backend 'foo' (valid: null, stdio, file, socket, pty)");
    CHECK(err("sokcet,id=x") ==
          "-chardev sokcet,id=x: unknown chardev backend 'sokcet' (did you mean 'socket'?)");
    CHECK(err("") == "-chardev : expected BACKEND first (valid: null, stdio, file, socket, pty)");
    CHECK(err("id=x,socket") ==
          "-chardev id=x,socket: expected BACKEND first (valid: null, stdio, file, socket, pty)");
    CHECK(err("null") == "-chardev null: missing id=ID");
    CHECK(err("null,id=") == "-chardev null,id=: missing id=ID");
    CHECK(err("null,id=a,id=b") == "-chardev null,id=a,id=b: option 'id' given twice");
    CHECK(err("socket,id=s,colour=red") == "-chardev socket,id=s,colour=red: the socket backend has no "
                                           "option 'colour' (valid: path, host, port, "
                                           "server, wait, mux)");
    CHECK(err("socket,id=s,path=/x,sever=on") == "-chardev socket,id=s,path=/x,sever=on: the socket backend "
                                                 "has no option 'sever' (did you mean 'server'?)");
    CHECK(err("null,id=n,path=x") ==
          "-chardev null,id=n,path=x: the null backend has no option 'path' (it takes none)");
    CHECK(err("socket,id=s,path=/x,server=maybe") ==
          "-chardev socket,id=s,path=/x,server=maybe: invalid value 'maybe' for 'server' (use on or off)");
    CHECK(err("socket,id=s,path=/x,path=/y") ==
          "-chardev socket,id=s,path=/x,path=/y: option 'path' given twice");
    CHECK(err("socket,id=s,path") == "-chardev socket,id=s,path: option 'path' needs a value (path=...)");
    CHECK(err("socket,id=s") ==
          "-chardev socket,id=s: the socket backend needs path=PATH (unix) or port=PORT (tcp)");
    CHECK(err("socket,id=s,path=/x,port=1") == "-chardev socket,id=s,path=/x,port=1: give either path= (a "
                                               "unix socket) or host=/port= (tcp), not both");
    CHECK(err("socket,id=s,port=70000") ==
          "-chardev socket,id=s,port=70000: invalid port '70000' (0 to 65535)");
    CHECK(err("socket,id=s,port=http") == "-chardev socket,id=s,port=http: invalid port 'http' (0 to 65535)");
    CHECK(err("file,id=f") == "-chardev file,id=f: the file backend needs path=FILE");
    CHECK(err("file,id=f,path=") == "-chardev file,id=f,path=: the file backend needs path=FILE");
}

TEST_CASE("parse_serial_option: -serial accepts every documented spelling", "[chardev]")
{
    using Opts = std::map<std::string, std::string>;
    auto s = parse_serial_option("stdio", "serial0");
    CHECK(s.id == "serial0");
    CHECK(s.backend == "stdio");
    CHECK(s.loc.file == "-serial stdio");
    CHECK(parse_serial_option("null", "serial1").backend == "null");
    CHECK(parse_serial_option("none", "serial1").backend == "none");

    s = parse_serial_option("file:/tmp/out.log", "serial0");
    CHECK(s.backend == "file");
    CHECK(s.options == Opts{{"path", "/tmp/out.log"}});

    s = parse_serial_option("unix:/tmp/s.sock,server=on,wait=off", "serial0");
    CHECK(s.backend == "socket");
    CHECK(s.options == Opts{{"path", "/tmp/s.sock"}, {"server", "on"}, {"wait", "off"}});
    s = parse_serial_option("unix:/tmp/s.sock,server,nowait", "serial0");
    CHECK(s.options == Opts{{"path", "/tmp/s.sock"}, {"server", "on"}, {"wait", "off"}});

    s = parse_serial_option("tcp:127.0.0.1:4444,server=on,wait=off", "serial0");
    CHECK(s.backend == "socket");
    CHECK(s.options == Opts{{"host", "127.0.0.1"}, {"port", "4444"}, {"server", "on"}, {"wait", "off"}});
    s = parse_serial_option("tcp::4444,server=on,wait=off", "serial0");
    CHECK(s.options == Opts{{"host", ""}, {"port", "4444"}, {"server", "on"}, {"wait", "off"}});
    s = parse_serial_option("tcp:[::1]:4444,server=on", "serial0");
    CHECK(s.options == Opts{{"host", "::1"}, {"port", "4444"}, {"server", "on"}});
    s = parse_serial_option("tcp:localhost:4444", "serial0");
    CHECK(s.options == Opts{{"host", "localhost"}, {"port", "4444"}});

    s = parse_serial_option("chardev:mon0", "serial0");
    CHECK(s.backend == "alias");
    CHECK(s.options == Opts{{"target", "mon0"}});
}

TEST_CASE("parse_serial_option: -serial rejects bad input naming what is valid", "[chardev]")
{
    auto err = [](const std::string &a) { return error_of([&] { parse_serial_option(a, "serial0"); }); };
    const std::string valid = " (valid: stdio, null, none, pty, file:PATH, unix:PATH, tcp:[HOST]:PORT, "
                              "chardev:ID, mon:DEV)";
    CHECK(err("foo") == "-serial foo: unknown chardev backend 'foo'" + valid);
    CHECK(err("") == "-serial : unknown chardev backend ''" + valid);
    CHECK(err("file:") == "-serial file:: file: needs a path (file:PATH)");
    CHECK(err("unix:") == "-serial unix:: unix: needs a path (unix:PATH)");
    CHECK(err("unix:,server=on") == "-serial unix:,server=on: unix: needs a path (unix:PATH)");
    CHECK(err("chardev:") == "-serial chardev:: chardev: needs the id of a -chardev (chardev:ID)");
    CHECK(err("tcp:4444") ==
          "-serial tcp:4444: tcp: needs [HOST]:PORT, e.g. tcp:127.0.0.1:4444 or tcp::4444");
    CHECK(err("tcp:localhost:") == "-serial tcp:localhost:: tcp: missing port ([HOST]:PORT)");
    CHECK(err("tcp::99999,server=on") == "-serial tcp::99999,server=on: invalid port '99999' (0 to 65535)");
    CHECK(err("unix:/tmp/s,server=on,telnet=on") ==
          "-serial unix:/tmp/s,server=on,telnet=on: unknown socket option 'telnet' (valid: server, wait)");
    CHECK(err("unix:/tmp/s,sever=on") ==
          "-serial unix:/tmp/s,sever=on: unknown socket option 'sever' (did you mean "
          "'server'?)");
    CHECK(err("unix:/tmp/s,wait=sometimes") ==
          "-serial unix:/tmp/s,wait=sometimes: invalid value 'sometimes' for 'wait' (use on or off)");
}
