// SPDX-License-Identifier: MIT
// The gdbstub: gdb's remote serial protocol on a TCP or unix socket (-gdb, -s, HMP gdbserver). One client at
// a time; everything runs on the main loop thread (no big lock), stop reports from the vCPU thread are
// queued to it. Threads are harts: thread id N is CPU N-1.
#include "monitor.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <glib-unix.h>

#include "control.h"
#include "error.h"
#include "kernel.h"

namespace keel::monitor
{

namespace
{

constexpr size_t kPacketSize = 0x4000;   // PacketSize we announce (bytes of packet data)
constexpr size_t kMaxInPacket = 0x20000; // longer incoming packets are dropped (NAK)

const char kHex[] = "0123456789abcdef";

std::string to_hex(const uint8_t *p, size_t n)
{
    std::string s;
    s.reserve(n * 2);
    for (size_t i = 0; i < n; i++) {
        s += kHex[p[i] >> 4];
        s += kHex[p[i] & 15];
    }
    return s;
}

std::string to_hex(const std::string &s)
{
    return to_hex(reinterpret_cast<const uint8_t *>(s.data()), s.size());
}

int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Hex bytes; false on an odd length or a bad digit.
bool from_hex(const std::string &s, std::vector<uint8_t> &out)
{
    if (s.size() % 2) return false;
    out.clear();
    for (size_t i = 0; i < s.size(); i += 2) {
        int h = hex_digit(s[i]), l = hex_digit(s[i + 1]);
        if (h < 0 || l < 0) return false;
        out.push_back(uint8_t(h << 4 | l));
    }
    return true;
}

// A hex number filling all of s (1-16 digits).
bool parse_num(const std::string &s, uint64_t &v)
{
    if (s.empty() || s.size() > 16) return false;
    v = 0;
    for (char c : s) {
        int d = hex_digit(c);
        if (d < 0) return false;
        v = v << 4 | unsigned(d);
    }
    return true;
}

// "ADDR,LEN" (what follows up to `end`, or the whole string).
bool parse_addr_len(const std::string &s, uint64_t &addr, uint64_t &len)
{
    size_t comma = s.find(',');
    return comma != std::string::npos && parse_num(s.substr(0, comma), addr) &&
           parse_num(s.substr(comma + 1), len);
}

std::vector<std::string> split(const std::string &s, char sep)
{
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        size_t p = s.find(sep, start);
        out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
        if (p == std::string::npos) return out;
        start = p + 1;
    }
}

// A thread id: "N", "-1" (all), "0" (any), or the multiprocess "pP.N". -1 for all, 0 for any, -2 if bad.
long parse_thread(std::string s)
{
    if (!s.empty() && s[0] == 'p') {
        size_t dot = s.find('.');
        if (dot == std::string::npos) return -1; // pP: all threads of the process
        s = s.substr(dot + 1);
    }
    if (s == "-1") return -1;
    uint64_t v;
    if (!parse_num(s, v) || v > 0xffffffff) return -2;
    return long(v);
}

// Binary data of X packets and qXfer replies: '#', '$', '}' and '*' escaped as '}' then c ^ 0x20.
std::string escape_binary(const char *p, size_t n)
{
    std::string s;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '#' || c == '$' || c == '}' || c == '*') {
            s += '}';
            s += char(c ^ 0x20);
        } else {
            s += c;
        }
    }
    return s;
}

struct Endpoint {
    std::string where; // "tcp:HOST:PORT" / "unix:PATH" for messages
    bool unix_socket = false;
    std::string host, port, path;
    bool wait = false;
};

Endpoint parse_dev(const std::string &dev, const std::string &what)
{
    auto bad = [&](const std::string &why) {
        return Error(what + " " + dev + ": " + why +
                     " (expected tcp::PORT, tcp:HOST:PORT, unix:PATH[,server=on][,wait=off] or none)");
    };
    std::vector<std::string> parts = split(dev, ',');
    std::string base = parts[0];
    Endpoint ep;
    for (size_t i = 1; i < parts.size(); i++) {
        const std::string &o = parts[i];
        if (o == "server=on" || o == "server" || o == "server=yes") continue;
        if (o == "nowait" || o == "wait=off" || o == "wait=no") {
            ep.wait = false;
        } else if (o == "wait=on" || o == "wait=yes") {
            ep.wait = true;
        } else if (o == "server=off" || o == "server=no") {
            throw bad("the gdbstub listens: server=off is not supported");
        } else if (o.rfind("nodelay", 0) == 0 || o.rfind("ipv4", 0) == 0 || o.rfind("ipv6", 0) == 0) {
            continue;
        } else {
            throw bad("unknown option '" + o + "'");
        }
    }
    if (base.rfind("unix:", 0) == 0) {
        ep.unix_socket = true;
        ep.path = base.substr(5);
        if (ep.path.empty()) throw bad("empty socket path");
        sockaddr_un sa{};
        if (ep.path.size() >= sizeof sa.sun_path) throw bad("socket path too long");
        ep.where = "unix:" + ep.path;
        return ep;
    }
    std::string hp;
    if (base.rfind("tcp:", 0) == 0)
        hp = base.substr(4);
    else if (!base.empty() && base.find_first_not_of("0123456789") == std::string::npos)
        hp = ":" + base; // a bare port, as QEMU's gdbserver accepts
    else
        throw bad("unknown device");
    size_t colon = hp.rfind(':');
    if (colon == std::string::npos) throw bad("missing ':PORT'");
    ep.host = hp.substr(0, colon);
    ep.port = hp.substr(colon + 1);
    if (ep.host.size() >= 2 && ep.host.front() == '[' && ep.host.back() == ']')
        ep.host = ep.host.substr(1, ep.host.size() - 2);
    if (ep.port.empty() || ep.port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(ep.port.substr(0, 6)) > 65535)
        throw bad("bad port '" + ep.port + "'");
    ep.where = "tcp:" + ep.host + ":" + ep.port;
    return ep;
}

int listen_on(Endpoint &ep, const std::string &what)
{
    if (ep.unix_socket) return listen_unix_socket(what, ep.path, 1);
    return listen_tcp_socket(what, ep.host, ep.port, 1, ep.where);
}

class GdbStub
{
  public:
    ~GdbStub() { close_all(); }

    void start(const std::string &dev, const std::string &what);
    void close_all();
    bool active() const { return listen_fd_ >= 0; }
    // A monitor paused the machine while gdb waited for it: stop reply T02.
    void stopped_by_monitor();
    // The run ended: an attached gdb hears the exit status (`W` packet).
    void exited(int status)
    {
        if (client_fd_ < 0) return;
        char buf[8];
        std::snprintf(buf, sizeof buf, "W%02x", status & 0xff);
        send_packet(buf);
    }
    // From the debug listener (any thread).
    void on_debug_stop(const DebugStop &s);

  private:
    static gboolean listen_ready(gint fd, GIOCondition, gpointer self);
    static gboolean client_ready(gint fd, GIOCondition, gpointer self);
    void accept_client();
    void attach(int fd);
    void close_client();
    void read_client();
    void feed(const char *p, size_t n);
    void send_raw(const std::string &s);
    void send_packet(const std::string &data);
    void interrupt();
    void handle_stop(const DebugStop &s);
    void handle(const std::string &pkt);
    void handle_query(const std::string &pkt);
    void handle_vcont(const std::string &args);
    void resume(const std::vector<uint8_t> &modes);
    void update_points();
    std::string stop_reply(const DebugStop &s);
    std::string read_regs();
    unsigned cur_cpu() const { return g_cpu_ < ncpus() ? g_cpu_ : 0; }
    static unsigned ncpus() { return control().n_cpus(); }

    std::string where_;
    std::string unix_path_;
    int listen_fd_ = -1, client_fd_ = -1;
    guint listen_src_ = 0, client_src_ = 0;

    // Protocol state (loop thread).
    enum { Idle, InPacket, Checksum1, Checksum2 } rx_ = Idle;
    std::string pkt_;
    int sum_hi_ = 0;
    bool overflow_ = false;
    bool no_ack_ = false;
    std::string last_sent_;
    bool waiting_ = false; // gdb continued or stepped: a stop reply is owed
    std::atomic<uint64_t> epoch_{0};
    unsigned g_cpu_ = 0, c_cpu_ = 0; // Hg / Hc threads (CPU indexes)
    std::vector<KeelDebugPoint> points_;
    DebugStop last_stop_{};
    int events_id_ = 0; // control().subscribe() while a client is attached
};

std::mutex g_stub_lock; // guards the pointer (gdb_stop may come from another thread)
// Never destroyed: a stub still there at exit (gdb_stop not called) must not run its destructor after the
// kernel's static objects are gone.
std::unique_ptr<GdbStub> &g_stub = *new std::unique_ptr<GdbStub>;

void GdbStub::start(const std::string &dev, const std::string &what)
{
    Endpoint ep = parse_dev(dev, what);
    int fd = listen_on(ep, what);
    listen_fd_ = fd;
    where_ = ep.where;
    if (ep.unix_socket) unix_path_ = ep.path;
    if (ep.wait) {
        std::fprintf(stderr, "keel: waiting for gdb connection on: %s\n", where_.c_str());
        for (;;) {
            pollfd p{listen_fd_, POLLIN, 0};
            if (poll(&p, 1, -1) < 0 && errno != EINTR) break;
            int c = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (c >= 0) {
                client_fd_ = c;
                break;
            }
        }
    }
    GSource *src = g_unix_fd_source_new(listen_fd_, G_IO_IN);
    g_source_set_callback(src, reinterpret_cast<GSourceFunc>(reinterpret_cast<void (*)()>(listen_ready)),
                          this, nullptr);
    listen_src_ = g_source_attach(src, kernel().loop().context());
    g_source_unref(src);
    if (client_fd_ >= 0) {
        int c = client_fd_;
        client_fd_ = -1;
        // Attach (and pause the machine) on the loop thread once it runs, unless the stub went away.
        kernel().loop().invoke([this, c] {
            bool live;
            {
                std::lock_guard<std::mutex> g(g_stub_lock);
                live = g_stub.get() == this;
            }
            if (live)
                attach(c);
            else
                ::close(c);
        });
    }
}

void GdbStub::close_all()
{
    close_client();
    if (listen_src_) {
        GSource *s = g_main_context_find_source_by_id(kernel().loop().context(), listen_src_);
        if (s) g_source_destroy(s);
        listen_src_ = 0;
    }
    if (listen_fd_ >= 0) ::close(listen_fd_);
    listen_fd_ = -1;
    if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
    unix_path_.clear();
}

gboolean GdbStub::listen_ready(gint, GIOCondition, gpointer self)
{
    static_cast<GdbStub *>(self)->accept_client();
    return G_SOURCE_CONTINUE;
}

gboolean GdbStub::client_ready(gint, GIOCondition, gpointer self)
{
    auto *st = static_cast<GdbStub *>(self);
    st->read_client();
    return st->client_fd_ >= 0 ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

void GdbStub::accept_client()
{
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (client_fd_ >= 0) {
        // One debugger at a time, as QEMU.
        ::close(fd);
        return;
    }
    attach(fd);
}

void GdbStub::attach(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); // fails harmlessly on unix sockets
    client_fd_ = fd;
    rx_ = Idle;
    pkt_.clear();
    overflow_ = false;
    no_ack_ = false;
    last_sent_.clear();
    waiting_ = false;
    g_cpu_ = c_cpu_ = 0;
    points_.clear();
    last_stop_ = DebugStop{};
    epoch_++;
    // As QEMU: a debugger attaching stops the machine (prelaunch stays as it is until gdb continues).
    std::string err;
    RunState st = control().state();
    if (st == RunState::Running) control().pause(RunState::Debug, err);
    // Stops are reported to the debugger from now on (and only while one is attached).
    control().set_debug_listener([](const DebugStop &s) {
        std::lock_guard<std::mutex> g(g_stub_lock);
        if (g_stub) g_stub->on_debug_stop(s);
    });
    // A monitor's `stop` while gdb waits for the guest: gdb hears SIGINT, as from QEMU.
    events_id_ = control().subscribe([](const std::string &event) {
        if (event.find("\"event\": \"STOP\"") == std::string::npos) return;
        kernel().loop().invoke([] {
            std::lock_guard<std::mutex> g(g_stub_lock);
            if (g_stub) g_stub->stopped_by_monitor();
        });
    });
    GSource *src = g_unix_fd_source_new(fd, GIOCondition(G_IO_IN | G_IO_HUP | G_IO_ERR));
    g_source_set_callback(src, reinterpret_cast<GSourceFunc>(reinterpret_cast<void (*)()>(client_ready)),
                          this, nullptr);
    client_src_ = g_source_attach(src, kernel().loop().context());
    g_source_unref(src);
}

void GdbStub::close_client()
{
    if (client_src_) {
        GSource *s = g_main_context_find_source_by_id(kernel().loop().context(), client_src_);
        if (s) g_source_destroy(s);
        client_src_ = 0;
    }
    if (client_fd_ >= 0) {
        ::close(client_fd_);
        control().set_debug_listener(nullptr);
        control().unsubscribe(events_id_);
    }
    client_fd_ = -1;
    waiting_ = false;
    epoch_++;
}

void GdbStub::read_client()
{
    char buf[4096];
    for (;;) {
        ssize_t n = ::recv(client_fd_, buf, sizeof buf, 0);
        if (n > 0) {
            feed(buf, size_t(n));
            if (client_fd_ < 0) return; // detached or killed
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        // The debugger went away: as a detach (QEMU keeps the machine as it was; we let it run, since
        // nobody is left to continue it), debug points removed.
        bool had = !points_.empty();
        points_.clear();
        std::string err;
        if (had) control().set_debug_points(points_, err);
        RunState st = control().state();
        close_client();
        if (st == RunState::Debug) control().resume(err);
        return;
    }
}

void GdbStub::send_raw(const std::string &s)
{
    size_t off = 0;
    int waited = 0;
    while (off < s.size() && client_fd_ >= 0) {
        ssize_t n = ::send(client_fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            off += size_t(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && waited < 5000) {
            pollfd p{client_fd_, POLLOUT, 0};
            poll(&p, 1, 10);
            waited += 10;
            continue;
        }
        // A client that vanished or stopped reading: the read side sees the end and cleans up.
        ::shutdown(client_fd_, SHUT_RDWR);
        return;
    }
}

void GdbStub::send_packet(const std::string &data)
{
    unsigned sum = 0;
    for (unsigned char c : data)
        sum += c;
    std::string s = "$" + data + "#";
    s += kHex[(sum >> 4) & 15];
    s += kHex[sum & 15];
    last_sent_ = s;
    send_raw(s);
}

void GdbStub::feed(const char *p, size_t n)
{
    for (size_t i = 0; i < n && client_fd_ >= 0; i++) {
        char c = p[i];
        switch (rx_) {
        case Idle:
            if (c == '$') {
                rx_ = InPacket;
                pkt_.clear();
                overflow_ = false;
            } else if (c == '\x03') {
                interrupt();
            } else if (c == '-' && !no_ack_ && !last_sent_.empty()) {
                send_raw(last_sent_);
            }
            // '+' and noise between packets: ignored.
            break;
        case InPacket:
            if (c == '#') {
                rx_ = Checksum1;
            } else if (pkt_.size() < kMaxInPacket) {
                pkt_ += c;
            } else {
                overflow_ = true;
            }
            break;
        case Checksum1:
            sum_hi_ = hex_digit(c);
            rx_ = Checksum2;
            break;
        case Checksum2: {
            rx_ = Idle;
            int lo = hex_digit(c);
            unsigned sum = 0;
            for (unsigned char b : pkt_)
                sum += b;
            bool ok = !overflow_ && sum_hi_ >= 0 && lo >= 0 && unsigned(sum_hi_ << 4 | lo) == (sum & 0xff);
            if (!ok) {
                if (!no_ack_) send_raw("-");
                break;
            }
            if (!no_ack_) send_raw("+");
            // Undo the binary escapes ('}' then c ^ 0x20); gdb sends no run-length encoding.
            std::string data;
            data.reserve(pkt_.size());
            for (size_t j = 0; j < pkt_.size(); j++) {
                if (pkt_[j] == '}' && j + 1 < pkt_.size())
                    data += char(pkt_[++j] ^ 0x20);
                else
                    data += pkt_[j];
            }
            handle(data);
            break;
        }
        }
    }
}

std::string GdbStub::stop_reply(const DebugStop &s)
{
    char buf[96];
    unsigned thread = s.cpu + 1;
    if (s.reason == DebugStop::Paused) {
        // As QEMU: a stop the debugger asked for (Ctrl-C) is SIGINT.
        std::snprintf(buf, sizeof buf, "T02thread:%x;", thread);
    } else if (s.reason == DebugStop::Watch) {
        const char *kind = s.kind == KEEL_DEBUG_WATCH_READ     ? "rwatch"
                           : s.kind == KEEL_DEBUG_WATCH_ACCESS ? "awatch"
                                                               : "watch";
        std::snprintf(buf, sizeof buf, "T05%s:%llx;thread:%x;", kind, (unsigned long long)s.addr, thread);
    } else {
        std::snprintf(buf, sizeof buf, "T05thread:%x;", thread);
    }
    return buf;
}

void GdbStub::on_debug_stop(const DebugStop &s)
{
    if (kernel().loop().on_loop_thread()) {
        handle_stop(s);
        return;
    }
    uint64_t epoch = epoch_.load();
    kernel().loop().invoke([this, s, epoch] {
        std::lock_guard<std::mutex> g(g_stub_lock);
        if (g_stub.get() != this || epoch != epoch_.load()) return; // a stale report
        handle_stop(s);
    });
}

void GdbStub::handle_stop(const DebugStop &s)
{
    if (client_fd_ < 0 || !waiting_) return;
    waiting_ = false;
    epoch_++;
    last_stop_ = s;
    if (s.cpu < ncpus()) g_cpu_ = c_cpu_ = s.cpu;
    send_packet(stop_reply(s));
}

void GdbStub::stopped_by_monitor()
{
    // Paused, not Debug: gdb's own interrupt and the engine's stops (Debug) are reported where they happen.
    if (client_fd_ < 0 || !waiting_ || control().state() != RunState::Paused) return;
    DebugStop s;
    s.reason = DebugStop::Paused;
    s.cpu = cur_cpu();
    handle_stop(s);
}

void GdbStub::interrupt()
{
    if (!waiting_) return; // already stopped: gdb gets its stop reply from what it asked
    std::string err;
    control().pause(RunState::Debug, err);
    if (waiting_) {
        // The listener did not report it (the machine was not running any more): report a pause.
        DebugStop s;
        s.reason = DebugStop::Paused;
        s.cpu = cur_cpu();
        handle_stop(s);
    }
}

void GdbStub::resume(const std::vector<uint8_t> &modes)
{
    std::string err;
    bool all_continue = true;
    for (uint8_t m : modes)
        all_continue = all_continue && m == KEEL_RUN_CONTINUE;
    waiting_ = true;
    epoch_++;
    bool ok = all_continue ? control().resume(err) : control().resume_modes(modes, err);
    if (!ok && waiting_) {
        // Nothing runs: say so at once (gdb would wait forever). The machine ended or cannot run.
        waiting_ = false;
        RunState st = control().state();
        if (st == RunState::Shutdown)
            send_packet("W00");
        else
            send_packet("E01");
    }
}

void GdbStub::update_points()
{
    std::string err;
    control().set_debug_points(points_, err);
}

std::string GdbStub::read_regs()
{
    const KeelCpuDebugOps *d = control().cpu_debug(cur_cpu());
    unsigned n = d ? d->gdb_g_regs : 0;
    std::string out;
    for (unsigned r = 0; r < n; r++) {
        std::vector<uint8_t> v;
        if (!control().read_reg(cur_cpu(), r, v)) return "E14";
        out += to_hex(v.data(), v.size());
    }
    return out.empty() ? "E14" : out;
}

void GdbStub::handle_vcont(const std::string &args)
{
    // vCont;ACTION[:THREAD];... : the leftmost action that applies to a thread wins.
    unsigned n = ncpus();
    std::vector<int> mode(n, -1);
    for (const std::string &a : split(args, ';')) {
        if (a.empty()) continue;
        std::string act = a, thr;
        size_t colon = a.find(':');
        if (colon != std::string::npos) {
            act = a.substr(0, colon);
            thr = a.substr(colon + 1);
        }
        int m;
        if (act == "c" || (act.size() == 3 && act[0] == 'C'))
            m = KEEL_RUN_CONTINUE;
        else if (act == "s" || (act.size() == 3 && act[0] == 'S'))
            m = KEEL_RUN_STEP;
        else
            return send_packet("E22");
        if (thr.empty()) {
            for (auto &x : mode)
                if (x < 0) x = m;
            continue;
        }
        long t = parse_thread(thr);
        if (t == -2 || t == 0 || t > long(n)) return send_packet("E22");
        if (t == -1) {
            for (auto &x : mode)
                if (x < 0) x = m;
        } else if (mode[size_t(t - 1)] < 0) {
            mode[size_t(t - 1)] = m;
        }
    }
    // With a step, the CPUs not named wait; otherwise they run.
    std::vector<uint8_t> modes(n);
    for (unsigned i = 0; i < n; i++)
        modes[i] = uint8_t(mode[i] < 0 ? KEEL_RUN_HOLD : mode[i]);
    resume(modes);
}

void GdbStub::handle_query(const std::string &pkt)
{
    if (pkt.rfind("qSupported", 0) == 0) {
        char buf[128];
        std::snprintf(buf, sizeof buf, "PacketSize=%zx;qXfer:features:read+;vContSupported+;QStartNoAckMode+",
                      kPacketSize);
        return send_packet(buf);
    }
    if (pkt == "QStartNoAckMode") {
        send_packet("OK");
        no_ack_ = true;
        return;
    }
    if (pkt.rfind("qXfer:features:read:", 0) == 0) {
        std::string rest = pkt.substr(20);
        size_t colon = rest.find(':');
        uint64_t off, len;
        if (colon == std::string::npos || !parse_addr_len(rest.substr(colon + 1), off, len))
            return send_packet("E00");
        const KeelCpuDebugOps *d = control().cpu_debug(cur_cpu());
        std::string annex = rest.substr(0, colon);
        const char *xml = d && d->gdb_xml ? d->gdb_xml(control().cpu_env(cur_cpu()), annex.c_str()) : nullptr;
        if (!xml) return send_packet("E00");
        size_t total = std::strlen(xml);
        if (off > total) return send_packet("E00");
        len = std::min<uint64_t>(len, kPacketSize / 2);
        size_t n = std::min<size_t>(size_t(len), total - size_t(off));
        return send_packet((off + n < total ? "m" : "l") + escape_binary(xml + off, n));
    }
    if (pkt.rfind("qXfer:", 0) == 0) return send_packet("");
    if (pkt == "qfThreadInfo") {
        std::string s = "m";
        for (unsigned i = 0; i < ncpus(); i++) {
            char b[16];
            std::snprintf(b, sizeof b, "%s%x", i ? "," : "", i + 1);
            s += b;
        }
        return send_packet(s);
    }
    if (pkt == "qsThreadInfo") return send_packet("l");
    if (pkt == "qC") {
        char b[24];
        std::snprintf(b, sizeof b, "QC%x", cur_cpu() + 1);
        return send_packet(b);
    }
    if (pkt.rfind("qAttached", 0) == 0) return send_packet("1");
    if (pkt == "qOffsets") return send_packet("Text=0;Data=0;Bss=0");
    if (pkt.rfind("qThreadExtraInfo,", 0) == 0) {
        long t = parse_thread(pkt.substr(17));
        if (t < 1 || t > long(ncpus())) return send_packet("E22");
        char b[48];
        std::snprintf(b, sizeof b, "hart %ld [%s]", t - 1,
                      control().state() == RunState::Running ? "running" : "paused");
        return send_packet(to_hex(b));
    }
    if (pkt.rfind("qRcmd,", 0) == 0) {
        std::vector<uint8_t> cmd;
        if (!from_hex(pkt.substr(6), cmd)) return send_packet("E01");
        std::string out = hmp_execute(std::string(cmd.begin(), cmd.end()));
        // Console output in pieces that fit a packet.
        for (size_t i = 0; i < out.size(); i += kPacketSize / 2 - 16)
            send_packet("O" + to_hex(out.substr(i, kPacketSize / 2 - 16)));
        return send_packet("OK");
    }
    return send_packet("");
}

void GdbStub::handle(const std::string &pkt)
{
    if (pkt.empty()) return send_packet("");
    // While the guest runs, gdb only sends the interrupt byte; anything else waits for the stop.
    char c = pkt[0];
    std::string rest = pkt.substr(1);
    switch (c) {
    case '?': {
        DebugStop s = last_stop_;
        s.cpu = cur_cpu();
        if (s.reason == DebugStop::Paused) {
            char b[32];
            std::snprintf(b, sizeof b, "T05thread:%x;", s.cpu + 1);
            return send_packet(b);
        }
        return send_packet(stop_reply(s));
    }
    case 'q':
    case 'Q':
        return handle_query(pkt);
    case 'g':
        return send_packet(read_regs());
    case 'G': {
        std::vector<uint8_t> bytes;
        if (!from_hex(rest, bytes)) return send_packet("E01");
        const KeelCpuDebugOps *d = control().cpu_debug(cur_cpu());
        size_t off = 0;
        for (unsigned r = 0; d && r < d->gdb_g_regs && off < bytes.size(); r++) {
            std::vector<uint8_t> cur;
            if (!control().read_reg(cur_cpu(), r, cur) || off + cur.size() > bytes.size()) break;
            std::vector<uint8_t> v(bytes.begin() + long(off), bytes.begin() + long(off + cur.size()));
            control().write_reg(cur_cpu(), r, v);
            off += cur.size();
        }
        return send_packet("OK");
    }
    case 'p': {
        uint64_t n;
        std::vector<uint8_t> v;
        if (!parse_num(rest, n) || n > 0xffffffff || !control().read_reg(cur_cpu(), unsigned(n), v))
            return send_packet("E14");
        return send_packet(to_hex(v.data(), v.size()));
    }
    case 'P': {
        size_t eq = rest.find('=');
        uint64_t n;
        std::vector<uint8_t> v;
        if (eq == std::string::npos || !parse_num(rest.substr(0, eq), n) || n > 0xffffffff ||
            !from_hex(rest.substr(eq + 1), v))
            return send_packet("E01");
        return send_packet(control().write_reg(cur_cpu(), unsigned(n), v) ? "OK" : "E14");
    }
    case 'm': {
        uint64_t addr, len;
        if (!parse_addr_len(rest, addr, len)) return send_packet("E01");
        len = std::min<uint64_t>(len, kPacketSize / 2);
        std::vector<uint8_t> buf(len);
        if (len && !control().read_virt(cur_cpu(), addr, buf.data(), len)) return send_packet("E14");
        return send_packet(to_hex(buf.data(), buf.size()));
    }
    case 'M':
    case 'X': {
        size_t colon = rest.find(':');
        uint64_t addr, len;
        if (colon == std::string::npos || !parse_addr_len(rest.substr(0, colon), addr, len))
            return send_packet("E01");
        std::vector<uint8_t> data;
        if (c == 'M') {
            if (!from_hex(rest.substr(colon + 1), data)) return send_packet("E01");
        } else {
            data.assign(rest.begin() + long(colon + 1), rest.end());
        }
        if (data.size() != len) return send_packet("E01");
        if (len && !control().write_virt(cur_cpu(), addr, data.data(), len)) return send_packet("E14");
        return send_packet("OK");
    }
    case 'Z':
    case 'z': {
        std::vector<std::string> f = split(rest, ',');
        uint64_t type, addr, kind;
        if (f.size() < 3 || !parse_num(f[0], type) || !parse_num(f[1], addr) ||
            !parse_num(f[2].substr(0, f[2].find(';')), kind))
            return send_packet("E01");
        if (type > 4) return send_packet("");
        KeelDebugPoint pt{};
        pt.addr = addr;
        pt.kind = type <= 1   ? KEEL_DEBUG_BREAK
                  : type == 2 ? KEEL_DEBUG_WATCH_WRITE
                  : type == 3 ? KEEL_DEBUG_WATCH_READ
                              : KEEL_DEBUG_WATCH_ACCESS;
        pt.len = type <= 1 ? 0 : kind;
        if (type >= 2 && kind == 0) return send_packet("E22");
        auto same = [&](const KeelDebugPoint &p) {
            return p.addr == pt.addr && p.kind == pt.kind && (pt.kind == KEEL_DEBUG_BREAK || p.len == pt.len);
        };
        std::vector<KeelDebugPoint> old = points_;
        if (c == 'Z') {
            points_.push_back(pt);
        } else {
            for (size_t i = 0; i < points_.size(); i++)
                if (same(points_[i])) {
                    points_.erase(points_.begin() + long(i));
                    break;
                }
        }
        std::string err;
        if (!control().set_debug_points(points_, err)) {
            points_ = old;
            return send_packet("E22");
        }
        return send_packet("OK");
    }
    case 'H': {
        if (rest.empty()) return send_packet("E01");
        long t = parse_thread(rest.substr(1));
        if (t == -2 || t > long(ncpus())) return send_packet("E22");
        unsigned cpu = t <= 0 ? 0 : unsigned(t - 1);
        if (rest[0] == 'g')
            g_cpu_ = t <= 0 ? g_cpu_ : cpu;
        else if (rest[0] == 'c')
            c_cpu_ = t <= 0 ? c_cpu_ : cpu;
        else
            return send_packet("E22");
        return send_packet("OK");
    }
    case 'T': {
        long t = parse_thread(rest);
        return send_packet(t >= 1 && t <= long(ncpus()) ? "OK" : "E22");
    }
    case 'c':
    case 'C':
    case 's':
    case 'S': {
        // The optional address to resume at (c/s ADDR; C/S SIG;ADDR) goes to the current CPU's pc.
        std::string addr = c == 'c' || c == 's'
                               ? rest
                               : (rest.find(';') == std::string::npos ? "" : rest.substr(rest.find(';') + 1));
        if (!addr.empty()) {
            uint64_t a;
            const KeelCpuDebugOps *d = control().cpu_debug(c_cpu_);
            if (!parse_num(addr, a) || !d) return send_packet("E01");
            std::vector<uint8_t> v(8);
            for (unsigned i = 0; i < 8; i++)
                v[i] = uint8_t(a >> (8 * i));
            control().write_reg(c_cpu_, d->gdb_pc_reg, v);
        }
        std::vector<uint8_t> modes(ncpus(), KEEL_RUN_CONTINUE);
        if (c == 's' || c == 'S') {
            for (unsigned i = 0; i < modes.size(); i++)
                modes[i] = i == c_cpu_ ? KEEL_RUN_STEP : KEEL_RUN_HOLD;
        }
        return resume(modes);
    }
    case 'v':
        if (pkt == "vCont?") return send_packet("vCont;c;C;s;S");
        if (pkt.rfind("vCont;", 0) == 0) return handle_vcont(pkt.substr(6));
        if (pkt.rfind("vKill", 0) == 0 || pkt.rfind("vAttach", 0) == 0 || pkt.rfind("vRun", 0) == 0) {
            if (pkt.rfind("vKill", 0) == 0) {
                send_packet("OK");
                close_client();
                control().quit("host-qmp-quit");
                return;
            }
            return send_packet("E01");
        }
        return send_packet("");
    case 'D': {
        // Detach: points gone, the machine runs on.
        points_.clear();
        update_points();
        send_packet("OK");
        RunState st = control().state();
        close_client();
        std::string err;
        if (st == RunState::Debug || st == RunState::Prelaunch) control().resume(err);
        return;
    }
    case 'k':
        // As QEMU: kill ends the emulator.
        close_client();
        control().quit("host-qmp-quit");
        return;
    default:
        return send_packet("");
    }
}

} // namespace

void gdb_stop()
{
    std::unique_ptr<GdbStub> old;
    {
        std::lock_guard<std::mutex> g(g_stub_lock);
        old = std::move(g_stub);
    }
    if (!old) return;
    MainLoop &loop = kernel().loop();
    if (!loop.running()) {
        old.reset();
        return;
    }
    if (loop.on_loop_thread()) {
        // Perhaps from inside the stub itself (gdb's `monitor gdbserver ...`): close now, free later.
        old->close_all();
        GdbStub *raw = old.release();
        loop.invoke([raw] { delete raw; });
        return;
    }
    // The sources are the loop thread's: close there.
    auto done = std::make_shared<std::promise<void>>();
    std::future<void> f = done->get_future();
    GdbStub *raw = old.release();
    loop.invoke([raw, done] {
        delete raw;
        done->set_value();
    });
    f.wait_for(std::chrono::seconds(2));
}

void gdb_exit(int status)
{
    MainLoop &loop = kernel().loop();
    if (!loop.running() || loop.on_loop_thread()) return;
    auto done = std::make_shared<std::promise<void>>();
    std::future<void> f = done->get_future();
    loop.invoke([status, done] {
        {
            std::lock_guard<std::mutex> g(g_stub_lock);
            if (g_stub) g_stub->exited(status);
        }
        done->set_value();
    });
    f.wait_for(std::chrono::seconds(2));
}

namespace
{

void start_stub(const std::string &dev, const std::string &what)
{
    // Installed before it listens: a client accepted in start() (wait=on) attaches once the loop runs.
    auto st = std::make_unique<GdbStub>();
    GdbStub *p = st.get();
    {
        std::lock_guard<std::mutex> g(g_stub_lock);
        g_stub = std::move(st);
    }
    try {
        p->start(dev, what);
    } catch (...) {
        std::lock_guard<std::mutex> g(g_stub_lock);
        g_stub.reset(); // start() threw before attaching anything to the loop
        throw;
    }
}

} // namespace

void start_gdbstub(const RunConfig &cfg)
{
    if (cfg.gdb.empty() || cfg.gdb == "none") return;
    start_stub(cfg.gdb, "-gdb");
}

bool gdbserver_start(const std::string &dev, std::string &err)
{
    std::string d = dev.empty() ? "tcp::1234" : dev;
    try {
        if (d == "none") {
            gdb_stop();
            return true;
        }
        Endpoint ep = parse_dev(d, "gdbserver"); // validate before dropping the old one
        (void)ep;
        gdb_stop();
        start_stub(d, "gdbserver");
    } catch (const Error &e) {
        err = e.what();
        return false;
    }
    return true;
}

} // namespace keel::monitor
