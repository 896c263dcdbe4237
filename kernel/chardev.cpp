// SPDX-License-Identifier: MIT
// Character backends (null, stdio, file, socket, pty) behind the C ABI's KeelChardev, the Ctrl-A
// multiplexer (mux=on, -serial mon:), and QEMU-style option parsing.
#include "chardev.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "error.h"
#include "util.h"

// ---- the front-end side ----

KeelChardev::KeelChardev(std::string id) : id_(std::move(id)) {}

KeelChardev::~KeelChardev() = default;

void KeelChardev::set_handlers(const KeelChardevHandlers *h, void *opaque)
{
    {
        std::lock_guard<std::recursive_mutex> g(keel::big_lock());
        handlers_ = KeelChardevHandlers{};
        opaque_ = opaque;
        has_handlers_ = h != nullptr;
        if (h) std::memcpy(&handlers_, h, std::min(h->size, sizeof handlers_));
        handlers_.size = sizeof handlers_;
    }
    handlers_changed();
}

void KeelChardev::accept_input()
{
    input_wanted();
}

void KeelChardev::set_monitor(const KeelChardevHandlers *h, void *opaque, std::function<void(bool)> focus)
{
    if (!multiplexed()) return;
    {
        std::lock_guard<std::recursive_mutex> g(keel::big_lock());
        monitor_handlers_ = KeelChardevHandlers{};
        monitor_opaque_ = opaque;
        has_monitor_ = h != nullptr;
        if (h) std::memcpy(&monitor_handlers_, h, std::min(h->size, sizeof monitor_handlers_));
        monitor_handlers_.size = sizeof monitor_handlers_;
        monitor_focus_fn_ = h ? std::move(focus) : nullptr;
        if (!h) monitor_focus_ = false;
    }
    handlers_changed();
}

bool KeelChardev::switch_focus()
{
    if (!has_monitor_) return false;
    monitor_focus_ = !monitor_focus_;
    if (monitor_focus_fn_) monitor_focus_fn_(monitor_focus_);
    input_wanted();
    return true;
}

size_t KeelChardev::fe_can_receive()
{
    const KeelChardevHandlers &h = monitor_focus_ ? monitor_handlers_ : handlers_;
    void *opaque = monitor_focus_ ? monitor_opaque_ : opaque_;
    if (!(monitor_focus_ ? has_monitor_ : has_handlers_) || !h.receive) return 0;
    // A front end without can_receive takes whatever comes.
    return h.can_receive ? h.can_receive(opaque) : SIZE_MAX;
}

void KeelChardev::fe_receive(const uint8_t *buf, size_t len)
{
    if (monitor_focus_) {
        if (has_monitor_ && monitor_handlers_.receive) monitor_handlers_.receive(monitor_opaque_, buf, len);
    } else if (has_handlers_ && handlers_.receive) {
        handlers_.receive(opaque_, buf, len);
    }
}

// A break goes to the front end with the focus; connects and hang-ups to both.
void KeelChardev::fe_event(KeelChardevEvent ev)
{
    bool to_device = ev != KEEL_CHARDEV_BREAK || !monitor_focus_;
    bool to_monitor = ev != KEEL_CHARDEV_BREAK || monitor_focus_;
    if (to_device && has_handlers_ && handlers_.event) handlers_.event(opaque_, ev);
    if (to_monitor && has_monitor_ && monitor_handlers_.event) monitor_handlers_.event(monitor_opaque_, ev);
}

namespace keel
{

namespace
{

// write(2) all of it, retrying on EINTR; on a hard error the rest is dropped.
void write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = ::write(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        buf += n;
        len -= size_t(n);
    }
}

std::string errstr(int err)
{
    return std::strerror(err);
}

// How far a multiplexer reads ahead of a front end that takes no input.
constexpr size_t kMuxReadAhead = 4096;

// ---- null ----

class NullChardev : public KeelChardev
{
  public:
    NullChardev(std::string id, std::string name) : KeelChardev(std::move(id)), name_(std::move(name)) {}
    size_t write(const uint8_t *, size_t len) override { return len; }
    std::string describe() const override { return name_; }

  private:
    std::string name_; // "null" or "none"
};

// ---- file ----

class FileChardev : public KeelChardev
{
  public:
    FileChardev(std::string id, std::string path, int fd)
        : KeelChardev(std::move(id)), path_(std::move(path)), fd_(fd)
    {
    }
    ~FileChardev() override { ::close(fd_); }
    size_t write(const uint8_t *buf, size_t len) override
    {
        std::lock_guard<std::mutex> g(lock_);
        write_all(fd_, buf, len);
        return len;
    }
    std::string describe() const override { return "file:" + path_; }

  private:
    std::string path_;
    int fd_;
    std::mutex lock_;
};

// ---- backends with input: the GSource machinery ----

// A backend reading from an fd (stdin, a socket client) and optionally
// accepting on a listening socket. Everything here runs on the loop thread
// except write(), accept_input() and set_handlers(). Input is read only while
// nothing is buffered, so a front end that says "no room" stops the reading
// (back-pressure to the peer) instead of the backend dropping bytes.
class PolledChardev : public KeelChardev
{
  public:
    bool multiplexed() const override { return mux_; }

  protected:
    PolledChardev(std::string id, MainLoop &loop) : KeelChardev(std::move(id)), loop_(loop) {}

    // Call at the end of the derived constructor, and first thing in the
    // derived destructor (before the fds close).
    void attach_source();
    void detach_source();

    // The fd to read input from now (-1: none) and the fd to accept on now.
    virtual int input_fd() const = 0;
    virtual int listen_fd() const { return -1; }
    virtual void on_listen_ready() {}
    virtual void on_input_end() = 0; // EOF or error on input_fd()
    // Forget the input tag now: the fd is about to close.
    void drop_input_tag();
    // Backends whose state can change without an fd event (a pty's slave
    // being opened): while poll_interval_ms() >= 0 the loop wakes that often
    // and asks state_changed() (loop thread, no big lock); if it says yes,
    // update_state() runs with the big lock.
    virtual int poll_interval_ms() const { return -1; }
    virtual bool state_changed() { return false; }
    virtual void update_state() {}

    // Put the Ctrl-A escape keys in front of the input (mux=on). Call before
    // attach_source().
    void enable_mux() { mux_ = true; }

    void input_wanted() override
    {
        retry_.store(true);
        g_main_context_wakeup(loop_.context());
    }
    void request_open_event()
    {
        announce_open_.store(true);
        input_wanted();
    }

  private:
    struct Source {
        GSource base;
        std::mutex *alive;
        PolledChardev *owner;
    };
    bool prepare();
    bool check();
    void dispatch();
    void sync_tags();
    void read_input();
    void flush_input();
    void mux_input(const uint8_t *buf, size_t len);
    void mux_command(uint8_t key);

    MainLoop &loop_;
    Source *src_ = nullptr;
    gpointer in_tag_ = nullptr, listen_tag_ = nullptr;
    int in_tag_fd_ = -1, listen_tag_fd_ = -1;
    std::string pending_; // read but not yet taken by the front end
    size_t pending_off_ = 0;
    std::atomic<bool> retry_{false};
    std::atomic<bool> announce_open_{false};
    bool mux_ = false;
    bool escape_ = false;   // the last byte was Ctrl-A
    bool quitting_ = false; // Ctrl-A x seen: later input is dropped
};

void PolledChardev::attach_source()
{
    static GSourceFuncs funcs = {
        [](GSource *src, gint *timeout) -> gboolean {
            auto *s = reinterpret_cast<Source *>(src);
            std::lock_guard<std::mutex> g(*s->alive);
            bool ready = s->owner && s->owner->prepare();
            *timeout = ready ? 0 : s->owner ? s->owner->poll_interval_ms() : -1;
            return ready;
        },
        [](GSource *src) -> gboolean {
            auto *s = reinterpret_cast<Source *>(src);
            std::lock_guard<std::mutex> g(*s->alive);
            return s->owner && s->owner->check();
        },
        [](GSource *src, GSourceFunc, gpointer) -> gboolean {
            auto *s = reinterpret_cast<Source *>(src);
            std::lock_guard<std::recursive_mutex> big(big_lock());
            std::lock_guard<std::mutex> g(*s->alive);
            if (s->owner) s->owner->dispatch();
            return G_SOURCE_CONTINUE;
        },
        [](GSource *src) { delete reinterpret_cast<Source *>(src)->alive; },
        nullptr,
        nullptr,
    };
    GSource *src = g_source_new(&funcs, sizeof(Source));
    src_ = reinterpret_cast<Source *>(src);
    src_->alive = new std::mutex;
    src_->owner = this;
    g_source_set_name(src, "keel-chardev");
    // Tags are added by the first prepare(); attaching wakes the loop for it.
    g_source_attach(src, loop_.context());
}

void PolledChardev::detach_source()
{
    if (!src_) return;
    {
        std::lock_guard<std::mutex> g(*src_->alive);
        src_->owner = nullptr;
    }
    g_source_destroy(&src_->base);
    g_source_unref(&src_->base);
    src_ = nullptr;
}

void PolledChardev::drop_input_tag()
{
    if (in_tag_) g_source_remove_unix_fd(&src_->base, in_tag_);
    in_tag_ = nullptr;
    in_tag_fd_ = -1;
}

// Poll the input fd only while nothing is buffered (a paused front end
// must not make a hung-up fd spin the loop), and the listening socket only
// while no client is connected (one client at a time; others wait in the
// backlog).
void PolledChardev::sync_tags()
{
    GSource *src = &src_->base;
    // A multiplexer keeps reading ahead (up to kMuxReadAhead bytes) so its
    // escape keys work while the guest is not taking input.
    size_t buffered = pending_.size() - pending_off_;
    int want_in = (mux_ ? buffered < kMuxReadAhead : buffered == 0) ? input_fd() : -1;
    if (in_tag_ && in_tag_fd_ != want_in) drop_input_tag();
    if (!in_tag_ && want_in >= 0) {
        in_tag_ = g_source_add_unix_fd(src, want_in, GIOCondition(G_IO_IN | G_IO_HUP | G_IO_ERR));
        in_tag_fd_ = want_in;
    }
    int want_listen = listen_fd();
    if (listen_tag_ && listen_tag_fd_ != want_listen) {
        g_source_remove_unix_fd(src, listen_tag_);
        listen_tag_ = nullptr;
        listen_tag_fd_ = -1;
    }
    if (!listen_tag_ && want_listen >= 0) {
        listen_tag_ = g_source_add_unix_fd(src, want_listen, G_IO_IN);
        listen_tag_fd_ = want_listen;
    }
}

bool PolledChardev::prepare()
{
    sync_tags();
    return announce_open_.load() || (retry_.load() && pending_off_ < pending_.size());
}

bool PolledChardev::check()
{
    if (in_tag_ && g_source_query_unix_fd(&src_->base, in_tag_)) return true;
    if (listen_tag_ && g_source_query_unix_fd(&src_->base, listen_tag_)) return true;
    if (poll_interval_ms() >= 0 && state_changed()) return true;
    return announce_open_.load() || (retry_.load() && pending_off_ < pending_.size());
}

void PolledChardev::dispatch()
{
    retry_.store(false);
    if (poll_interval_ms() >= 0 && state_changed()) update_state();
    if (announce_open_.exchange(false) && connected()) fe_event(KEEL_CHARDEV_OPENED);
    if (in_tag_ && g_source_query_unix_fd(&src_->base, in_tag_)) read_input();
    if (listen_tag_ && g_source_query_unix_fd(&src_->base, listen_tag_)) on_listen_ready();
    flush_input();
}

void PolledChardev::read_input()
{
    int fd = input_fd();
    if (fd < 0) return;
    uint8_t buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0 && mux_) {
        mux_input(buf, size_t(n));
    } else if (n > 0) {
        pending_.append(reinterpret_cast<const char *>(buf), size_t(n));
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        drop_input_tag();
        on_input_end();
    }
}

void PolledChardev::flush_input()
{
    while (pending_off_ < pending_.size()) {
        size_t room = fe_can_receive();
        if (room == 0) break; // keep it; accept_input() brings us back
        size_t n = std::min(room, pending_.size() - pending_off_);
        size_t at = pending_off_;
        pending_off_ += n; // before the call: receive() may re-enter via accept_input()
        fe_receive(reinterpret_cast<const uint8_t *>(pending_.data()) + at, n);
    }
    if (pending_off_ >= pending_.size()) {
        pending_.clear();
        pending_off_ = 0;
    }
}

// ---- the Ctrl-A multiplexer (QEMU's mux=on / mon:) ----

std::mutex g_quit_lock;
std::function<void()> g_quit;

constexpr uint8_t kEscape = 0x01; // Ctrl-A

void PolledChardev::mux_input(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len && !quitting_; ++i) {
        uint8_t c = buf[i];
        if (escape_) {
            escape_ = false;
            mux_command(c);
        } else if (c == kEscape) {
            escape_ = true;
        } else {
            pending_.push_back(char(c));
        }
    }
}

// The key after Ctrl-A. As in QEMU, a key with no command is swallowed along
// with the Ctrl-A. Messages go to this chardev's output with "\r\n" since a
// pty or socket peer gets no output post-processing.
void PolledChardev::mux_command(uint8_t key)
{
    auto say = [&](const char *text) { write(reinterpret_cast<const uint8_t *>(text), std::strlen(text)); };
    switch (key) {
    case kEscape: // QEMU's C-a C-a
    case 'a':     // screen's spelling
        pending_.push_back(char(kEscape));
        break;
    case 'h':
    case '?':
        say("\r\n"
            "C-a h    print this help\r\n"
            "C-a x    exit keel\r\n"
            "C-a b    send break\r\n"
            "C-a c    switch between console and monitor\r\n"
            "C-a a    send C-a (C-a C-a does the same)\r\n");
        break;
    case 'x': {
        say("keel: terminated\r\n");
        quitting_ = true;
        std::function<void()> quit;
        {
            std::lock_guard<std::mutex> g(g_quit_lock);
            quit = g_quit;
        }
        if (quit)
            quit();
        else
            std::raise(SIGTERM);
        break;
    }
    case 'b':
        // Bytes typed before the break reach the front end before it, as far
        // as it takes them now.
        flush_input();
        fe_event(KEEL_CHARDEV_BREAK);
        break;
    case 'c':
        // Bytes typed before the switch go where they were meant to go, as
        // far as that front end takes them now.
        flush_input();
        if (!switch_focus()) say("keel: no monitor on this console; staying on the serial line\r\n");
        break;
    default:
        break;
    }
}

// ---- stdio ----

std::atomic<bool> g_stdio_in_use{false};
std::mutex g_tty_lock;
bool g_tty_saved = false;
termios g_tty_orig;

void restore_tty()
{
    std::lock_guard<std::mutex> g(g_tty_lock);
    if (!g_tty_saved) return;
    tcsetattr(0, TCSANOW, &g_tty_orig);
    g_tty_saved = false;
}

class StdioChardev : public PolledChardev
{
  public:
    StdioChardev(std::string id, MainLoop &loop, bool signals, bool mux)
        : PolledChardev(std::move(id), loop), mux_(mux)
    {
        int fl = fcntl(0, F_GETFL);
        readable_ = fl >= 0 && (fl & O_ACCMODE) != O_WRONLY;
        if (readable_ && isatty(0)) make_raw(signals);
        if (mux) enable_mux();
        attach_source();
    }
    ~StdioChardev() override
    {
        detach_source();
        restore_tty();
        g_stdio_in_use.store(false);
    }
    size_t write(const uint8_t *buf, size_t len) override
    {
        std::lock_guard<std::mutex> g(out_lock_);
        write_all(1, buf, len);
        return len;
    }
    std::string describe() const override { return mux_ ? "stdio (mux)" : "stdio"; }

  protected:
    int input_fd() const override { return readable_ && !eof_ ? 0 : -1; }
    void on_input_end() override { eof_ = true; }

  private:
    // Like QEMU's stdio: keys go to the guest unechoed and unbuffered; output
    // post-processing stays on so "\n" still returns the carriage, and with
    // signal=on (the default) ^C still ends keel.
    static void make_raw(bool signals)
    {
        std::lock_guard<std::mutex> g(g_tty_lock);
        termios t;
        if (tcgetattr(0, &t) != 0) return;
        g_tty_orig = t;
        g_tty_saved = true;
        static std::once_flag once;
        std::call_once(once, [] { std::atexit(restore_tty); });
        t.c_iflag &= ~tcflag_t(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
        t.c_oflag |= OPOST;
        t.c_lflag &= ~tcflag_t(ECHO | ECHONL | ICANON | IEXTEN);
        if (!signals) t.c_lflag &= ~tcflag_t(ISIG);
        t.c_cflag |= CS8;
        t.c_cc[VMIN] = 1;
        t.c_cc[VTIME] = 0;
        tcsetattr(0, TCSANOW, &t);
    }

    bool mux_;
    bool readable_ = false;
    bool eof_ = false;
    std::mutex out_lock_;
};

// ---- pty ----

// The master side of a pseudo-terminal; the user opens the slave
// (/dev/pts/N) with a terminal program. The master reports a hang-up while no
// one has the slave open: output is dropped then, and the loop looks every
// kPtyPollMs for someone opening it (there is no event for that).
class PtyChardev : public PolledChardev
{
  public:
    static constexpr int kPtyPollMs = 100;

    PtyChardev(std::string id, MainLoop &loop, int master, std::string path, bool mux)
        : PolledChardev(std::move(id), loop), master_(master), path_(std::move(path)), mux_(mux)
    {
        if (mux) enable_mux();
        attach_source();
    }
    ~PtyChardev() override
    {
        detach_source();
        ::close(master_);
    }

    size_t write(const uint8_t *buf, size_t len) override
    {
        std::lock_guard<std::mutex> g(out_lock_);
        if (!slave_open()) return len; // nobody there: drop, as QEMU does
        // A reader that stalls holds us up at most this long per write.
        constexpr int kBudgetMs = 100;
        int waited = 0;
        size_t off = 0;
        while (off < len) {
            ssize_t n = ::write(master_, buf + off, len - off);
            if (n > 0) {
                off += size_t(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && waited < kBudgetMs) {
                pollfd p{master_, POLLOUT, 0};
                poll(&p, 1, 10);
                waited += 10;
                continue;
            }
            break;
        }
        return len;
    }
    std::string describe() const override { return "pty " + path_ + (mux_ ? " (mux)" : ""); }
    bool connected() const override { return connected_.load(); }

  protected:
    int input_fd() const override { return connected_.load() ? master_ : -1; }
    // The slave closed (read gives EIO): wait for the next opener.
    void on_input_end() override
    {
        connected_.store(false);
        fe_event(KEEL_CHARDEV_CLOSED);
    }
    int poll_interval_ms() const override { return connected_.load() ? -1 : kPtyPollMs; }
    bool state_changed() override { return !connected_.load() && slave_open(); }
    void update_state() override
    {
        connected_.store(true);
        fe_event(KEEL_CHARDEV_OPENED);
    }
    void handlers_changed() override
    {
        if (connected())
            request_open_event();
        else
            input_wanted();
    }

  private:
    bool slave_open() const
    {
        pollfd p{master_, POLLIN, 0};
        return poll(&p, 1, 0) >= 0 && !(p.revents & POLLHUP);
    }

    int master_;
    std::string path_;
    bool mux_;
    std::atomic<bool> connected_{false};
    std::mutex out_lock_;
};

int open_pty(const ChardevSpec &spec, std::string &path)
{
    auto fail = [&](const char *what) {
        return Error(spec.loc, strprintf("chardev '%s': cannot %s a pseudo-terminal: %s", spec.id.c_str(),
                                         what, errstr(errno).c_str()));
    };
    int fd = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) throw fail("open");
    char name[128];
    if (grantpt(fd) != 0 || unlockpt(fd) != 0 || ptsname_r(fd, name, sizeof name) != 0) {
        Error e = fail("set up");
        ::close(fd);
        throw e;
    }
    // Raw, like QEMU: bytes pass unchanged both ways (no echo, no line editing,
    // no CR/LF translation).
    termios t;
    if (tcgetattr(fd, &t) == 0) {
        cfmakeraw(&t);
        tcsetattr(fd, TCSANOW, &t);
    }
    // The master signals a hang-up only once a slave has been opened and
    // closed; until then it looks connected and output would pile up for a
    // later reader. One open and close puts it in the "nobody there" state.
    int slave = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) {
        Error e = fail("open the slave of");
        ::close(fd);
        throw e;
    }
    ::close(slave);
    path = name;
    return fd;
}

// ---- socket (server) ----

class SocketChardev : public PolledChardev
{
  public:
    SocketChardev(std::string id, MainLoop &loop, int listen_fd, std::string where, std::string unix_path)
        : PolledChardev(std::move(id), loop), listen_fd_(listen_fd), where_(std::move(where)),
          unix_path_(std::move(unix_path))
    {
    }
    // mux=on; before start().
    void multiplex()
    {
        enable_mux();
        mux_ = true;
    }
    ~SocketChardev() override
    {
        detach_source();
        if (client_fd_ >= 0) ::close(client_fd_);
        ::close(listen_fd_);
        if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
    }

    // QEMU's wait=on: hold startup until the first client connects.
    void wait_for_client()
    {
        std::fprintf(stderr, "keel: waiting for connection on: %s\n", describe().c_str());
        for (;;) {
            pollfd p{listen_fd_, POLLIN, 0};
            if (poll(&p, 1, -1) < 0 && errno != EINTR) return;
            int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0) {
                std::lock_guard<std::mutex> g(out_lock_);
                client_fd_ = fd;
                return;
            }
        }
    }
    void start() { attach_source(); }

    size_t write(const uint8_t *buf, size_t len) override
    {
        std::lock_guard<std::mutex> g(out_lock_);
        if (client_fd_ < 0 || broken_) return len; // nobody listening: drop
        // A client that stops reading may hold us up this long per write,
        // then its output is dropped rather than stalling the guest.
        constexpr int64_t kBudgetMs = 100;
        int64_t waited = 0;
        size_t off = 0;
        while (off < len) {
            ssize_t n = ::send(client_fd_, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                off += size_t(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                if (waited >= kBudgetMs) break;
                pollfd p{client_fd_, POLLOUT, 0};
                poll(&p, 1, 10);
                waited += 10;
                continue;
            }
            // The client vanished. The loop thread sees the shutdown as EOF,
            // closes the fd and reports CLOSED; writes drop until then.
            broken_ = true;
            ::shutdown(client_fd_, SHUT_RDWR);
            break;
        }
        return len;
    }

    std::string describe() const override
    {
        return "socket " + where_ + " (server)" + (mux_ ? " (mux)" : "");
    }
    bool connected() const override
    {
        std::lock_guard<std::mutex> g(out_lock_);
        return client_fd_ >= 0 && !broken_;
    }

  protected:
    int input_fd() const override { return client_fd_; }
    int listen_fd() const override { return client_fd_ < 0 ? listen_fd_ : -1; }

    void on_listen_ready() override
    {
        int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return; // EAGAIN: the client gave up already
        {
            std::lock_guard<std::mutex> g(out_lock_);
            client_fd_ = fd;
            broken_ = false;
        }
        fe_event(KEEL_CHARDEV_OPENED);
    }

    void on_input_end() override
    {
        {
            std::lock_guard<std::mutex> g(out_lock_);
            ::close(client_fd_);
            client_fd_ = -1;
            broken_ = false;
        }
        fe_event(KEEL_CHARDEV_CLOSED);
    }

    void handlers_changed() override
    {
        if (connected())
            request_open_event();
        else
            input_wanted();
    }

  private:
    int listen_fd_;
    std::string where_;
    std::string unix_path_; // unlinked on close
    mutable std::mutex out_lock_;
    int client_fd_ = -1; // written on the loop thread under out_lock_
    bool broken_ = false;
    bool mux_ = false;
};

// ---- opening ----

std::string socket_where(const ChardevSpec &s)
{
    if (s.options.count("path")) return "unix:" + s.options.at("path");
    std::string host = s.options.count("host") ? s.options.at("host") : "";
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    return "tcp:" + host + ":" + (s.options.count("port") ? s.options.at("port") : "");
}

int listen_unix(const ChardevSpec &spec, const std::string &path)
{
    return listen_unix_socket("chardev '" + spec.id + "'", path, 1, spec.loc);
}

int listen_tcp(const ChardevSpec &spec, const std::string &host, const std::string &port, std::string &where)
{
    return listen_tcp_socket("chardev '" + spec.id + "'", host, port, 1, where, spec.loc);
}

// ---- option checking shared by the parsers and open_chardev ----

const std::vector<std::string> kBackends = {"null", "stdio", "file", "socket", "pty"};

// mux=on needs input to watch for Ctrl-A, so only backends with input take it.
const std::map<std::string, std::vector<std::string>> kOptions = {
    {"null", {}},
    {"none", {}},
    {"stdio", {"signal", "mux"}},
    {"file", {"path", "append"}},
    {"socket", {"path", "host", "port", "server", "wait", "mux"}},
    {"pty", {"mux"}},
};

bool is_bool_option(const std::string &k)
{
    return k == "server" || k == "wait" || k == "append" || k == "signal" || k == "mux";
}

// What is wrong with a spec's options, or "" if nothing. Booleans must
// already be normalised to on/off.
std::string check_options(const ChardevSpec &s)
{
    auto it = kOptions.find(s.backend);
    if (it == kOptions.end()) return "";
    const auto &valid = it->second;
    for (const auto &[k, v] : s.options) {
        if (std::find(valid.begin(), valid.end(), k) == valid.end()) {
            std::string hint = did_you_mean(k, valid);
            if (hint.empty())
                hint = valid.empty() ? " (it takes none)" : " (valid: " + join(valid, ", ") + ")";
            return "the " + s.backend + " backend has no option '" + k + "'" + hint;
        }
        if (is_bool_option(k) && v != "on" && v != "off")
            return "invalid value '" + v + "' for '" + k + "' (use on or off)";
    }
    auto has = [&](const char *k) { return s.options.count(k) > 0; };
    if (s.backend == "file" && (!has("path") || s.options.at("path").empty()))
        return "the file backend needs path=FILE";
    if (s.backend == "socket") {
        if (has("path") && (has("host") || has("port")))
            return "give either path= (a unix socket) or host=/port= (tcp), not both";
        if (has("path") && s.options.at("path").empty()) return "path= is empty";
        if (!has("path") && !has("port"))
            return "the socket backend needs path=PATH (unix) or port=PORT (tcp)";
        if (has("port")) {
            auto p = parse_uint(s.options.at("port"));
            if (!p || *p > 65535) return "invalid port '" + s.options.at("port") + "' (0 to 65535)";
        }
    }
    return "";
}

// key=value (or a bare boolean flag, QEMU style) into opts; "" if fine.
std::string add_option(std::map<std::string, std::string> &opts, const std::string &field)
{
    std::string k, v;
    auto eq = field.find('=');
    if (eq == std::string::npos) {
        if (field == "nowait") {
            k = "wait";
            v = "off";
        } else if (is_bool_option(field)) {
            k = field;
            v = "on";
        } else {
            return "option '" + field + "' needs a value (" + field + "=...)";
        }
    } else {
        k = field.substr(0, eq);
        v = field.substr(eq + 1);
        if (k.empty()) return "option '" + field + "' has no name";
        if (is_bool_option(k)) {
            auto b = parse_bool(v);
            if (!b) return "invalid value '" + v + "' for '" + k + "' (use on or off)";
            v = *b ? "on" : "off";
        }
    }
    if (opts.count(k)) return "option '" + k + "' given twice";
    opts[k] = v;
    return "";
}

} // namespace

ChardevSpec parse_chardev_option(std::string_view arg)
{
    std::string a(arg);
    auto fail = [&](const std::string &msg) { return Error("-chardev " + a + ": " + msg); };
    std::vector<std::string> fields = split(arg, ',');
    ChardevSpec s;
    s.loc.file = "-chardev " + a;
    s.backend = fields[0];
    if (s.backend.empty() || s.backend.find('=') != std::string::npos)
        throw fail("expected BACKEND first (valid: " + join(kBackends, ", ") + ")");
    if (std::find(kBackends.begin(), kBackends.end(), s.backend) == kBackends.end()) {
        std::string hint = did_you_mean(s.backend, kBackends);
        throw fail("unknown chardev backend '" + s.backend + "'" +
                   (hint.empty() ? " (valid: " + join(kBackends, ", ") + ")" : hint));
    }
    bool have_id = false;
    for (size_t i = 1; i < fields.size(); ++i) {
        const std::string &f = fields[i];
        if (f.rfind("id=", 0) == 0) {
            if (have_id) throw fail("option 'id' given twice");
            s.id = f.substr(3);
            have_id = true;
            continue;
        }
        if (std::string e = add_option(s.options, f); !e.empty()) throw fail(e);
    }
    if (s.id.empty()) throw fail("missing id=ID");
    if (std::string e = check_options(s); !e.empty()) throw fail(e);
    return s;
}

ChardevSpec parse_serial_option(std::string_view arg, std::string id)
{
    std::string a(arg);
    auto fail = [&](const std::string &msg) { return Error("-serial " + a + ": " + msg); };
    ChardevSpec s;
    s.id = std::move(id);
    s.loc.file = "-serial " + a;
    if (a == "stdio" || a == "null" || a == "none" || a == "pty") {
        s.backend = a;
        return s;
    }
    auto colon = a.find(':');
    std::string kind = a.substr(0, colon);
    std::string rest = colon == std::string::npos ? "" : a.substr(colon + 1);
    if (kind == "file") {
        if (rest.empty()) throw fail("file: needs a path (file:PATH)");
        s.backend = "file";
        s.options["path"] = rest;
        return s;
    }
    if (kind == "chardev") {
        if (rest.empty()) throw fail("chardev: needs the id of a -chardev (chardev:ID)");
        s.backend = "alias";
        s.options["target"] = rest;
        return s;
    }
    if (kind == "unix" || kind == "tcp") {
        std::vector<std::string> fields = split(rest, ',');
        s.backend = "socket";
        if (kind == "unix") {
            if (fields[0].empty()) throw fail("unix: needs a path (unix:PATH)");
            s.options["path"] = fields[0];
        } else {
            // [HOST]:PORT, HOST possibly a bracketed IPv6 address
            const std::string &hp = fields[0];
            auto c = hp.rfind(':');
            if (c == std::string::npos)
                throw fail("tcp: needs [HOST]:PORT, e.g. tcp:127.0.0.1:4444 or tcp::4444");
            std::string host = hp.substr(0, c);
            if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
                host = host.substr(1, host.size() - 2);
            s.options["host"] = host;
            s.options["port"] = hp.substr(c + 1);
            if (s.options["port"].empty()) throw fail("tcp: missing port ([HOST]:PORT)");
        }
        for (size_t i = 1; i < fields.size(); ++i) {
            const std::string &f = fields[i];
            std::string key = f.substr(0, f.find('='));
            if (key != "server" && key != "wait" && key != "nowait") {
                std::vector<std::string> valid = {"server", "wait"};
                std::string hint = did_you_mean(key, valid);
                throw fail("unknown socket option '" + key + "'" +
                           (hint.empty() ? " (valid: server, wait)" : hint));
            }
            if (std::string e = add_option(s.options, f); !e.empty()) throw fail(e);
        }
        if (std::string e = check_options(s); !e.empty()) throw fail(e);
        return s;
    }
    if (kind == "mon") {
        // QEMU's mon:DEV: DEV behind the Ctrl-A multiplexer.
        if (rest.empty()) throw fail("mon: needs a device, e.g. mon:stdio");
        ChardevSpec inner;
        try {
            inner = parse_serial_option(rest, s.id);
        } catch (const Error &e) {
            // Name the whole argument, not just the part after mon:.
            std::string m = e.what();
            std::string prefix = "-serial " + rest + ": ";
            throw fail(m.rfind(prefix, 0) == 0 ? m.substr(prefix.size()) : m);
        }
        if (inner.backend != "stdio" && inner.backend != "socket" && inner.backend != "pty")
            throw fail("mon: needs a device with input to watch for Ctrl-A (stdio, pty, unix:PATH or "
                       "tcp:[HOST]:PORT), not '" +
                       rest + "'");
        inner.loc = s.loc;
        inner.options["mux"] = "on";
        return inner;
    }
    throw fail(
        "unknown chardev backend '" + kind +
        "' (valid: stdio, null, none, pty, file:PATH, unix:PATH, tcp:[HOST]:PORT, chardev:ID, mon:DEV)");
}

std::unique_ptr<KeelChardev> open_chardev(const ChardevSpec &spec, MainLoop &loop)
{
    auto fail = [&](const std::string &msg) { return Error(spec.loc, "chardev '" + spec.id + "': " + msg); };
    const std::string &b = spec.backend;
    if (b == "alias")
        throw fail("is an alias of '" + (spec.options.count("target") ? spec.options.at("target") : "") +
                   "'; open that one");
    if (!kOptions.count(b)) {
        std::string hint = did_you_mean(b, kBackends);
        throw fail("unknown chardev backend '" + b + "'" +
                   (hint.empty() ? " (valid: " + join(kBackends, ", ") + ")" : hint));
    }
    if (std::string e = check_options(spec); !e.empty()) throw fail(e);
    auto opt = [&](const char *k, const char *dflt = "") {
        auto it = spec.options.find(k);
        return it == spec.options.end() ? std::string(dflt) : it->second;
    };

    if (b == "null" || b == "none") return std::make_unique<NullChardev>(spec.id, b);

    if (b == "file") {
        std::string path = opt("path");
        int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (opt("append") == "on" ? O_APPEND : O_TRUNC);
        int fd = ::open(path.c_str(), flags, 0666);
        if (fd < 0) throw fail("cannot open '" + path + "' for writing: " + errstr(errno));
        return std::make_unique<FileChardev>(spec.id, path, fd);
    }

    bool mux = opt("mux", "off") == "on";
    if (b == "stdio") {
        if (g_stdio_in_use.exchange(true))
            throw fail("stdio is already used by another chardev (only one may use it)");
        try {
            // As in QEMU, a multiplexed stdio passes Ctrl-C to the guest
            // (C-a x quits) unless signal=on says otherwise.
            return std::make_unique<StdioChardev>(spec.id, loop, opt("signal", mux ? "off" : "on") == "on",
                                                  mux);
        } catch (...) {
            g_stdio_in_use.store(false);
            throw;
        }
    }

    if (b == "pty") {
        std::string path;
        int fd = open_pty(spec, path);
        std::fprintf(stderr, "char device redirected to %s (label %s)\n", path.c_str(), spec.id.c_str());
        return std::make_unique<PtyChardev>(spec.id, loop, fd, path, mux);
    }

    // socket
    if (opt("server", "off") != "on")
        throw fail("client mode sockets are not supported yet; add server=on to listen for a client");
    std::string where = socket_where(spec);
    int fd;
    std::string unix_path;
    if (spec.options.count("path")) {
        unix_path = opt("path");
        fd = listen_unix(spec, unix_path);
    } else {
        fd = listen_tcp(spec, opt("host"), opt("port"), where);
    }
    auto c = std::make_unique<SocketChardev>(spec.id, loop, fd, where, unix_path);
    if (mux) c->multiplex();
    if (opt("wait", "on") == "on") c->wait_for_client();
    c->start();
    return c;
}

void set_console_quit(std::function<void()> fn)
{
    std::lock_guard<std::mutex> g(g_quit_lock);
    g_quit = std::move(fn);
}

// ---- listening sockets (chardev.h) ----

namespace
{

// Located where the option or manifest line that asked for the socket is, when known.
Error located(const Location &loc, const std::string &msg)
{
    return loc.valid() ? Error(loc, msg) : Error(msg);
}

} // namespace

int listen_unix_socket(const std::string &what, const std::string &path, int backlog, const Location &loc)
{
    auto fail = [&](const std::string &op, int err) {
        return located(loc, strprintf("%s: cannot %s unix socket '%s': %s", what.c_str(), op.c_str(),
                                      path.c_str(), errstr(err).c_str()));
    };
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof sa.sun_path)
        throw located(loc,
                      strprintf("%s: unix socket path '%s' is %s (1 to %zu bytes)", what.c_str(),
                                path.c_str(), path.empty() ? "empty" : "too long", sizeof sa.sun_path - 1));
    std::memcpy(sa.sun_path, path.data(), path.size());
    struct stat st;
    if (lstat(path.c_str(), &st) == 0) {
        // A socket left by an earlier run is replaced (QEMU does the same);
        // anything else at that path is the user's and stays.
        if (!S_ISSOCK(st.st_mode))
            throw located(loc, strprintf("%s: cannot create unix socket '%s': a file that is not a socket "
                                         "exists there",
                                         what.c_str(), path.c_str()));
        ::unlink(path.c_str());
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw fail("create", errno);
    if (bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0) {
        int err = errno;
        ::close(fd);
        throw fail("bind", err);
    }
    // Owner-only before listen(): a connect() is checked against these
    // permissions, and nobody can connect before listen() anyway.
    if (chmod(path.c_str(), 0600) != 0 || listen(fd, backlog) != 0) {
        int err = errno;
        ::close(fd);
        ::unlink(path.c_str());
        throw fail("listen on", err);
    }
    return fd;
}

int listen_tcp_socket(const std::string &what, const std::string &host, const std::string &port, int backlog,
                      std::string &where, const Location &loc)
{
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo *res = nullptr;
    int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0)
        throw located(loc, strprintf("%s: cannot resolve '%s:%s': %s", what.c_str(), host.c_str(),
                                     port.c_str(), gai_strerror(rc)));
    int last_err = 0;
    int fd = -1;
    // An empty host binds every interface; prefer IPv6 (dual-stack) if present.
    std::vector<addrinfo *> order;
    for (addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family == AF_INET6) order.push_back(a);
    for (addrinfo *a = res; a; a = a->ai_next)
        if (a->ai_family != AF_INET6) order.push_back(a);
    for (addrinfo *a : order) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            last_err = errno;
            continue;
        }
        int on = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        if (a->ai_family == AF_INET6 && host.empty()) {
            int off = 0;
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
        }
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, backlog) == 0) break;
        last_err = errno;
        ::close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        throw located(loc,
                      strprintf("%s: cannot listen on tcp %s:%s: %s", what.c_str(),
                                host.empty() ? "*" : host.c_str(), port.c_str(), errstr(last_err).c_str()));
    // Report the port actually bound (port=0 picks one).
    sockaddr_storage ss{};
    socklen_t sl = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &sl) == 0) {
        int p = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port)
                                         : ntohs(reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
        std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
        where = "tcp:" + h + ":" + std::to_string(p);
    }
    return fd;
}

} // namespace keel
