// SPDX-License-Identifier: MIT
// QMP: QEMU's JSON machine protocol on unix/tcp sockets (any number of clients) and on chardevs (-mon).
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <future>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib-unix.h>

#include "block.h"
#include "control.h"
#include "error.h"
#include "json.h"
#include "kernel.h"
#include "monitor.h"
#include "qom.h"
#include "util.h"

namespace keel::monitor
{

namespace
{

using json::Value;

// The QEMU release whose QMP keel speaks: what clients that gate features on a version see.
constexpr int kQemuMajor = 7, kQemuMinor = 2, kQemuMicro = 0;
// A client that does not read its replies and events is dropped past this much unsent output.
constexpr size_t kMaxPendingOutput = 64u << 20;

struct QmpError {
    std::string cls;
    std::string desc;
};

QmpError generic(std::string desc)
{
    return {"GenericError", std::move(desc)};
}

Value version_value()
{
    return Value::object()
        .set("qemu",
             Value::object().set("micro", kQemuMicro).set("minor", kQemuMinor).set("major", kQemuMajor))
        .set("package", std::string("keel ") + KEEL_VERSION);
}

// ---- sessions ----

class Session
{
  public:
    virtual ~Session() = default;
    bool negotiated = false;
    bool pretty = false;
    bool dead = false;

    void greet()
    {
        negotiated = false;
        streamer_.reset();
        send(Value::object().set(
            "QMP", Value::object().set("version", version_value()).set("capabilities", Value::array())));
    }
    void send(const Value &v) { write_raw(v.dump(pretty) + "\r\n"); }
    // An event as Control formatted it (compact JSON).
    void send_event(const std::string &text)
    {
        if (!pretty) {
            write_raw(text + "\r\n");
            return;
        }
        Value v;
        std::string err;
        write_raw((json::parse(text, v, err) ? v.dump(true) : text) + "\r\n");
    }
    // Bytes from the client. Runs commands: never call it holding the big lock.
    void input(const char *data, size_t len);

  protected:
    virtual void write_raw(const std::string &bytes) = 0;

  private:
    void message(std::string_view text);
    json::Streamer streamer_;
};

// A client of one of our listening sockets.
class SocketSession : public Session
{
  public:
    explicit SocketSession(int fd);
    ~SocketSession() override { kill(); }
    void kill();

  protected:
    void write_raw(const std::string &bytes) override;

  private:
    static gboolean on_input(gint fd, GIOCondition cond, gpointer self);
    static gboolean on_output(gint fd, GIOCondition cond, gpointer self);
    void flush();
    int fd_;
    GSource *in_ = nullptr;
    GSource *out_ = nullptr;
    std::string pending_;
};

// -mon chardev=ID,mode=control: the chardev's one client. Input arrives holding the big lock, so it is
// queued and handled from MainLoop::invoke (commands may pause the machine).
class ChardevSession : public Session
{
  public:
    explicit ChardevSession(KeelChardev *chr);
    void detach();

  protected:
    void write_raw(const std::string &bytes) override
    {
        if (chr_) chr_->write(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size());
    }

  private:
    KeelChardev *chr_;
    KeelChardevHandlers handlers_{};
};

// A listening socket of -qmp unix:/tcp:.
struct Listener {
    int fd = -1;
    std::string unix_path; // removed at exit
    std::string filename;  // query-chardev's spelling: "unix:/tmp/q,server=on"
    std::string label;
    GSource *src = nullptr;
};

// Everything QMP owns; touched on the main loop thread only (start_qmp runs before the loop serves us),
// except `lock` and what it guards.
struct Server {
    std::list<std::unique_ptr<Session>> sessions;
    std::vector<std::unique_ptr<Listener>> listeners;
    std::vector<std::unique_ptr<Session>> retired; // detached chardev sessions (see teardown)
    int subscription = 0;
    std::mutex lock;                 // guards the two below
    std::vector<std::string> events; // emitted, not yet sent
    std::vector<std::string> paths;  // unix sockets to remove at exit
};
Server *g_server = nullptr;

void reap()
{
    if (!g_server) return;
    g_server->sessions.remove_if([](const std::unique_ptr<Session> &s) { return s->dead; });
}

// Send every queued event to every negotiated client, in emission order (loop thread).
void flush_events()
{
    if (!g_server) return;
    std::vector<std::string> ev;
    {
        std::lock_guard<std::mutex> g(g_server->lock);
        ev.swap(g_server->events);
    }
    for (const auto &e : ev)
        for (auto &s : g_server->sessions)
            if (s->negotiated && !s->dead) s->send_event(e);
}

// ---- sockets ----

SocketSession::SocketSession(int fd) : fd_(fd)
{
    in_ = g_unix_fd_source_new(fd_, GIOCondition(G_IO_IN | G_IO_HUP | G_IO_ERR));
    g_source_set_callback(in_, reinterpret_cast<GSourceFunc>(reinterpret_cast<void (*)()>(&on_input)), this,
                          nullptr);
    g_source_attach(in_, kernel().loop().context());
}

void SocketSession::kill()
{
    for (GSource **s : {&in_, &out_})
        if (*s) {
            g_source_destroy(*s);
            g_source_unref(*s);
            *s = nullptr;
        }
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    dead = true;
}

gboolean SocketSession::on_input(gint, GIOCondition, gpointer self)
{
    auto *s = static_cast<SocketSession *>(self);
    char buf[65536];
    ssize_t n = ::recv(s->fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
        s->input(buf, static_cast<size_t>(n));
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        s->kill();
    }
    bool gone = s->dead;
    reap(); // may delete s
    return gone ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

gboolean SocketSession::on_output(gint, GIOCondition, gpointer self)
{
    auto *s = static_cast<SocketSession *>(self);
    s->flush();
    bool keep = !s->dead && s->out_;
    reap();
    return keep ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

void SocketSession::write_raw(const std::string &bytes)
{
    if (dead) return;
    pending_ += bytes;
    if (pending_.size() > kMaxPendingOutput) {
        kill();
        return;
    }
    flush();
}

void SocketSession::flush()
{
    size_t done = 0;
    while (done < pending_.size() && !dead) {
        ssize_t n = ::send(fd_, pending_.data() + done, pending_.size() - done, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            done += static_cast<size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            kill();
            return;
        }
    }
    pending_.erase(0, done);
    if (pending_.empty() && out_) {
        g_source_destroy(out_);
        g_source_unref(out_);
        out_ = nullptr;
    } else if (!pending_.empty() && !out_) {
        out_ = g_unix_fd_source_new(fd_, G_IO_OUT);
        g_source_set_callback(out_, reinterpret_cast<GSourceFunc>(reinterpret_cast<void (*)()>(&on_output)),
                              this, nullptr);
        g_source_attach(out_, kernel().loop().context());
    }
}

gboolean on_accept(gint fd, GIOCondition, gpointer)
{
    for (;;) {
        int c = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) break;
        auto s = std::make_unique<SocketSession>(c);
        s->greet();
        if (!s->dead) g_server->sessions.push_back(std::move(s));
    }
    return G_SOURCE_CONTINUE;
}

std::string errstr(int e)
{
    return std::strerror(e);
}

// ---- chardev sessions ----

ChardevSession::ChardevSession(KeelChardev *chr) : chr_(chr)
{
    handlers_.size = sizeof handlers_;
    handlers_.can_receive = [](void *) -> size_t { return 4096; };
    handlers_.receive = [](void *opaque, const uint8_t *buf, size_t len) {
        auto *s = static_cast<ChardevSession *>(opaque);
        std::string data(reinterpret_cast<const char *>(buf), len);
        kernel().loop().invoke([s, data] {
            if (!s->dead) s->input(data.data(), data.size());
        });
    };
    handlers_.event = [](void *opaque, KeelChardevEvent ev) {
        auto *s = static_cast<ChardevSession *>(opaque);
        if (ev == KEEL_CHARDEV_OPENED)
            kernel().loop().invoke([s] {
                if (!s->dead) s->greet();
            });
        else if (ev == KEEL_CHARDEV_CLOSED)
            kernel().loop().invoke([s] { s->negotiated = false; });
    };
    chr_->set_handlers(&handlers_, this);
    // A backend with nobody to connect (stdio, pty, file) is open from the start.
    if (chr_->connected())
        kernel().loop().invoke([this] {
            if (!dead) greet();
        });
}

void ChardevSession::detach()
{
    if (chr_) chr_->set_handlers(nullptr, nullptr);
    chr_ = nullptr;
    dead = true;
}

// ---- commands ----

// An argument: name, JSON type ('s' string, 'i' integer, 'b' bool, 'a' any, 'l' list), optional.
struct Arg {
    const char *name;
    char type;
    bool optional = false;
};

using Handler = std::function<bool(Session &, const Value &args, Value &ret, QmpError &err)>;
struct Command {
    std::vector<Arg> args;
    Handler run;
};

const Value *arg(const Value &args, const char *name)
{
    return args.get(name);
}

// The arguments against their declaration, with QEMU's messages.
bool check_args(const std::vector<Arg> &decl, const Value &args, QmpError &err)
{
    for (const Arg &a : decl) {
        const Value *v = args.get(a.name);
        if (!v) {
            if (a.optional) continue;
            err = generic(std::string("Parameter '") + a.name + "' is missing");
            return false;
        }
        const char *expected = nullptr;
        switch (a.type) {
        case 's':
            if (!v->is_string()) expected = "string";
            break;
        case 'i':
            if (!v->is_integer()) expected = "integer";
            break;
        case 'b':
            if (!v->is_bool()) expected = "boolean";
            break;
        case 'l':
            if (!v->is_array()) expected = "array";
            break;
        default:
            break;
        }
        if (expected) {
            err = generic(std::string("Invalid parameter type for '") + a.name + "', expected: " + expected);
            return false;
        }
    }
    for (const auto &[k, v] : args.as_object()) {
        bool known = false;
        for (const Arg &a : decl)
            known = known || k == a.name;
        if (!known) {
            err = generic("Parameter '" + k + "' is unexpected");
            return false;
        }
    }
    return true;
}

bool run_control(bool ok, const std::string &why, QmpError &err)
{
    if (!ok) err = generic(why);
    return ok;
}

// query-chardev's filename from the backend's description ("socket unix:/p (server)" -> "unix:/p,server=on").
std::string chardev_filename(std::string d)
{
    if (d.size() > 6 && d.compare(d.size() - 6, 6, " (mux)") == 0) d.resize(d.size() - 6);
    if (d.rfind("socket ", 0) == 0) {
        d = d.substr(7);
        auto sp = d.find(" (server)");
        if (sp != std::string::npos) d = d.substr(0, sp) + ",server=on";
        return d;
    }
    if (d.rfind("pty ", 0) == 0) return "pty:" + d.substr(4);
    return d;
}

// memsave/pmemsave: `size` bytes from `addr` into `file` (mode 0600, as QEMU). The range is checked before
// the file is touched, so a bad address leaves it alone.
bool save_memory(const std::function<bool(uint64_t, uint8_t *, size_t)> &read, uint64_t addr, int64_t size,
                 const std::string &file, QmpError &err)
{
    auto bad = [&] {
        err = generic(strprintf("Invalid addr 0x%016" PRIx64 "/size %" PRId64 " specified", addr, size));
        return false;
    };
    if (size < 0 || (size > 0 && addr + static_cast<uint64_t>(size - 1) < addr)) return bad();
    uint8_t probe;
    uint64_t n = static_cast<uint64_t>(size);
    for (uint64_t off = 0; off < n; off = (off | 0xfff) + 1)
        if (!read(addr + off, &probe, 1)) return bad();
    if (n && !read(addr + n - 1, &probe, 1)) return bad();
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        err = generic("Could not open '" + file + "': " + errstr(errno));
        return false;
    }
    std::vector<uint8_t> buf(std::min<uint64_t>(n, 1u << 16));
    for (uint64_t off = 0; off < n;) {
        size_t chunk = static_cast<size_t>(std::min<uint64_t>(n - off, buf.size()));
        if (!read(addr + off, buf.data(), chunk)) {
            ::close(fd);
            return bad();
        }
        size_t w = 0;
        while (w < chunk) {
            ssize_t r = ::write(fd, buf.data() + w, chunk - w);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                int e = errno;
                ::close(fd);
                err = generic("writing memory to '" + file + "' failed: " + errstr(e));
                return false;
            }
            w += static_cast<size_t>(r);
        }
        off += chunk;
    }
    if (::close(fd) != 0) {
        err = generic("writing memory to '" + file + "' failed: " + errstr(errno));
        return false;
    }
    return true;
}

const std::map<std::string, Command> &commands();

Value query_status()
{
    RunState st = control().state();
    return Value::object()
        .set("status", run_state_name(st))
        .set("singlestep", false)
        .set("running", st == RunState::Running);
}

Value query_cpus_fast()
{
    Value out = Value::array();
    std::lock_guard<std::recursive_mutex> g(big_lock());
    Machine *m = kernel().machine();
    if (!m) return out;
    // QEMU's target name: gdb's "riscv:rv64" is "riscv64".
    std::string target;
    if (const KeelCpuOps *ops = m->cpu_ops(); ops && ops->arch) {
        std::string a = ops->arch;
        auto c = a.find(':');
        target = c == std::string::npos ? a : a.substr(0, c);
        if (c != std::string::npos && a.compare(c + 1, 2, "rv") == 0) target += a.substr(c + 3);
    }
    for (size_t i = 0; i < m->cpus().size(); ++i)
        out.push(Value::object()
                     .set("thread-id",
                          static_cast<int64_t>(kernel().vcpu_thread_id())) // one vCPU thread runs them all
                     .set("props", Value::object().set("core-id", i))
                     .set("qom-path", m->cpus()[i]->path)
                     .set("cpu-index", i)
                     .set("target", target));
    return out;
}

Value query_block()
{
    Value out = Value::array();
    std::lock_guard<std::recursive_mutex> g(big_lock());
    for (KeelDrive *d : all_drives()) {
        Value dev = Value::object().set("device", d->id).set("locked", false).set("removable", false);
        if (d->node) {
            unsigned depth = 0;
            for (KeelBlockNode *b = d->node->backing.get(); b; b = b->backing.get())
                ++depth;
            Value image = Value::object()
                              .set("filename", d->node->filename)
                              .set("format", d->node->format)
                              .set("virtual-size", d->length);
            Value ins = Value::object()
                            .set("ro", d->read_only)
                            .set("drv", d->node->format)
                            .set("encrypted", false)
                            .set("file", d->node->filename);
            if (d->node->backing) ins.set("backing_file", d->node->backing->filename);
            ins.set("backing_file_depth", depth).set("image", std::move(image));
            dev.set("inserted", std::move(ins));
        }
        if (!d->user.empty()) dev.set("qdev", "/machine/" + d->user);
        dev.set("type", "unknown");
        out.push(std::move(dev));
    }
    return out;
}

Value query_chardev()
{
    Value out = Value::array();
    {
        std::lock_guard<std::recursive_mutex> g(big_lock());
        for (const auto &[id, chr] : kernel().chardevs())
            out.push(Value::object()
                         .set("frontend-open", chr->connected())
                         .set("filename", chardev_filename(chr->describe()))
                         .set("label", id));
    }
    if (g_server)
        for (const auto &l : g_server->listeners)
            out.push(Value::object()
                         .set("frontend-open", true)
                         .set("filename", l->filename)
                         .set("label", l->label));
    return out;
}

bool qom_fail(const qom::Failure &f, QmpError &err)
{
    err = {f.cls, f.desc};
    return false;
}

const std::map<std::string, Command> &commands()
{
    static const std::map<std::string, Command> table = {
        {"qmp_capabilities",
         {{{"enable", 'l', true}},
          [](Session &s, const Value &a, Value &ret, QmpError &err) {
              if (const Value *en = arg(a, "enable"))
                  for (const Value &c : en->as_array()) {
                      if (!c.is_string()) {
                          err = generic("Invalid parameter type for 'enable', expected: string");
                          return false;
                      }
                      err = generic("Capability '" + c.as_string() + "' not available");
                      return false;
                  }
              s.negotiated = true;
              ret = Value::object();
              return true;
          }}},
        {"query-version",
         {{},
          [](Session &, const Value &, Value &ret, QmpError &) {
              ret = version_value();
              return true;
          }}},
        {"query-commands",
         {{},
          [](Session &, const Value &, Value &ret, QmpError &) {
              ret = Value::array();
              for (const auto &[name, c] : commands())
                  ret.push(Value::object().set("name", name));
              return true;
          }}},
        {"query-status",
         {{},
          [](Session &, const Value &, Value &ret, QmpError &) {
              ret = query_status();
              return true;
          }}},
        {"stop",
         {{},
          [](Session &, const Value &, Value &ret, QmpError &err) {
              std::string why;
              ret = Value::object();
              return run_control(control().pause(RunState::Paused, why), why, err);
          }}},
        {"cont",
         {{},
          [](Session &, const Value &, Value &ret, QmpError &err) {
              std::string why;
              ret = Value::object();
              return run_control(control().resume(why), why, err);
          }}},
        {"system_reset",
         {{},
          [](Session &, const Value &, Value &ret, QmpError &) {
              control().system_reset();
              ret = Value::object();
              return true;
          }}},
        {"system_powerdown",
         {{},
          [](Session &, const Value &, Value &ret, QmpError &) {
              control().system_powerdown();
              ret = Value::object();
              return true;
          }}},
        {"quit",
         {{},
          [](Session &, const Value &, Value &ret, QmpError &) {
              control().quit("host-qmp-quit");
              ret = Value::object();
              return true;
          }}},
        {"query-cpus-fast",
         {{},
          [](Session &, const Value &, Value &ret, QmpError &) {
              ret = query_cpus_fast();
              return true;
          }}},
        {"query-block",
         {{},
          [](Session &, const Value &, Value &ret, QmpError &) {
              ret = query_block();
              return true;
          }}},
        {"query-chardev",
         {{},
          [](Session &, const Value &, Value &ret, QmpError &) {
              ret = query_chardev();
              return true;
          }}},
        {"qom-list",
         {{{"path", 's'}},
          [](Session &, const Value &a, Value &ret, QmpError &err) {
              std::vector<qom::PropInfo> props;
              qom::Failure f;
              if (!qom::list(arg(a, "path")->as_string(), props, f)) return qom_fail(f, err);
              ret = Value::array();
              for (const auto &p : props)
                  ret.push(Value::object().set("name", p.name).set("type", p.type));
              return true;
          }}},
        {"qom-get",
         {{{"path", 's'}, {"property", 's'}},
          [](Session &, const Value &a, Value &ret, QmpError &err) {
              qom::Failure f;
              if (!qom::get(arg(a, "path")->as_string(), arg(a, "property")->as_string(), ret, f))
                  return qom_fail(f, err);
              return true;
          }}},
        {"qom-set",
         {{{"path", 's'}, {"property", 's'}, {"value", 'a'}},
          [](Session &, const Value &a, Value &ret, QmpError &err) {
              qom::Failure f;
              if (!qom::set(arg(a, "path")->as_string(), arg(a, "property")->as_string(), *arg(a, "value"),
                            f))
                  return qom_fail(f, err);
              ret = Value::object();
              return true;
          }}},
        {"human-monitor-command",
         {{{"command-line", 's'}, {"cpu-index", 'i', true}},
          [](Session &, const Value &a, Value &ret, QmpError &err) {
              if (const Value *c = arg(a, "cpu-index");
                  c && (c->as_int() < 0 || static_cast<uint64_t>(c->as_int()) >= control().n_cpus())) {
                  err = generic("Parameter 'cpu-index' expects a CPU number");
                  return false;
              }
              ret = hmp_execute(arg(a, "command-line")->as_string());
              return true;
          }}},
        {"memsave",
         {{{"val", 'i'}, {"size", 'i'}, {"filename", 's'}, {"cpu-index", 'i', true}},
          [](Session &, const Value &a, Value &ret, QmpError &err) {
              int64_t cpu = arg(a, "cpu-index") ? arg(a, "cpu-index")->as_int() : 0;
              if (cpu < 0 || static_cast<uint64_t>(cpu) >= control().n_cpus()) {
                  err = generic("Parameter 'cpu-index' expects a CPU number");
                  return false;
              }
              auto read = [cpu](uint64_t addr, uint8_t *buf, size_t len) {
                  return control().read_virt(static_cast<unsigned>(cpu), addr, buf, len);
              };
              ret = Value::object();
              return save_memory(read, arg(a, "val")->as_uint(), arg(a, "size")->as_int(),
                                 arg(a, "filename")->as_string(), err);
          }}},
        {"pmemsave",
         {{{"val", 'i'}, {"size", 'i'}, {"filename", 's'}},
          [](Session &, const Value &a, Value &ret, QmpError &err) {
              auto read = [](uint64_t addr, uint8_t *buf, size_t len) {
                  // As QEMU's pmemsave: what nothing answers at (unmapped physical memory) reads as zeros.
                  if (control().read_phys(addr, buf, len)) return true;
                  for (size_t i = 0; i < len; ++i)
                      if (!control().read_phys(addr + i, buf + i, 1)) buf[i] = 0;
                  return true;
              };
              ret = Value::object();
              return save_memory(read, arg(a, "val")->as_uint(), arg(a, "size")->as_int(),
                                 arg(a, "filename")->as_string(), err);
          }}},
    };
    return table;
}

void Session::input(const char *data, size_t len)
{
    streamer_.feed(data, len, [this](std::string_view text, const std::string &error) {
        if (dead) return;
        if (!error.empty()) {
            send(Value::object().set("error",
                                     Value::object().set("class", "GenericError").set("desc", error)));
            return;
        }
        message(text);
    });
}

void Session::message(std::string_view text)
{
    Value req;
    std::string perr;
    auto reply_error = [&](const Value *id, const QmpError &e) {
        Value r = Value::object();
        if (id) r.set("id", *id);
        r.set("error", Value::object().set("class", e.cls).set("desc", e.desc));
        send(r);
    };
    if (!json::parse(text, req, perr)) {
        reply_error(nullptr, generic("JSON parse error, " + perr));
        return;
    }
    if (!req.is_object()) {
        reply_error(nullptr, generic("QMP input must be a JSON object"));
        return;
    }
    const Value *id = req.get("id");
    const Value *execute = nullptr;
    const Value *arguments = nullptr;
    for (const auto &[k, v] : req.as_object()) {
        if (k == "execute") {
            if (!v.is_string())
                return reply_error(id, generic("QMP input member 'execute' must be a string"));
            execute = &v;
        } else if (k == "arguments") {
            if (!v.is_object())
                return reply_error(id, generic("QMP input member 'arguments' must be an object"));
            arguments = &v;
        } else if (k != "id") {
            return reply_error(id, generic("QMP input member '" + k + "' is unexpected"));
        }
    }
    if (!execute) return reply_error(id, generic("QMP input lacks member 'execute'"));
    const std::string &name = execute->as_string();
    bool caps = name == "qmp_capabilities";
    if (!negotiated && !caps)
        return reply_error(id,
                           {"CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'"});
    if (negotiated && caps)
        return reply_error(
            id, {"CommandNotFound", "Capabilities negotiation is already complete, command ignored"});
    auto it = commands().find(name);
    if (it == commands().end())
        return reply_error(id, {"CommandNotFound", "The command " + name + " has not been found"});
    static const Value no_args = Value::object();
    const Value &args = arguments ? *arguments : no_args;
    QmpError err;
    if (!check_args(it->second.args, args, err)) return reply_error(id, err);
    Value ret;
    if (!it->second.run(*this, args, ret, err)) return reply_error(id, err);
    // Events the command caused (STOP, RESUME, SHUTDOWN...) go out before its reply, as QEMU sends them.
    flush_events();
    Value r = Value::object().set("return", std::move(ret));
    if (id) r.set("id", *id);
    send(r);
}

std::string strip_prefix(const std::string &msg, const std::string &prefix)
{
    return msg.rfind(prefix, 0) == 0 ? msg.substr(prefix.size()) : msg;
}

void start_server()
{
    if (g_server) return;
    g_server = new Server; // lives to the end of the process: events may arrive until then
    g_server->subscription = control().subscribe([](const std::string &ev) {
        if (!g_server) return;
        {
            std::lock_guard<std::mutex> g(g_server->lock);
            g_server->events.push_back(ev);
        }
        // Flushed on the loop thread, in order; an event emitted there (by a command) goes out at once.
        if (kernel().loop().on_loop_thread())
            flush_events();
        else
            kernel().loop().invoke([] {
                flush_events();
                reap();
            });
    });
}

void add_listener(const std::string &opt, const ChardevSpec &spec, unsigned n)
{
    auto o = [&](const char *k) {
        auto it = spec.options.find(k);
        return it == spec.options.end() ? std::string() : it->second;
    };
    if (o("server") != "on")
        throw Error(opt + ": keel's QMP listens as a server: add server=on,wait=off (connecting out is not "
                          "supported)");
    if (o("mux") == "on") throw Error(opt + ": mux=on is not supported for QMP");
    auto l = std::make_unique<Listener>();
    l->label = "qmp_monitor" + std::to_string(n);
    if (spec.options.count("path")) {
        l->unix_path = o("path");
        l->fd = listen_unix_socket(opt, l->unix_path, 16);
        l->filename = "unix:" + l->unix_path + ",server=on";
        std::lock_guard<std::mutex> g(g_server->lock);
        g_server->paths.push_back(l->unix_path);
    } else {
        std::string where;
        l->fd = listen_tcp_socket(opt, o("host"), o("port"), 16, where);
        l->filename = where + ",server=on";
    }
    // wait=on (QEMU's default for a server): the first client is awaited here, before the guest starts.
    if (o("wait") != "off") {
        std::fprintf(stderr, "keel: QMP waiting for connection on %s\n", l->filename.c_str());
        pollfd p{l->fd, POLLIN, 0};
        int c = -1;
        while (c < 0) {
            if (::poll(&p, 1, -1) < 0 && errno != EINTR) throw Error(opt + ": " + errstr(errno));
            c = ::accept4(l->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        }
        auto s = std::make_unique<SocketSession>(c);
        s->greet();
        g_server->sessions.push_back(std::move(s));
    }
    l->src = g_unix_fd_source_new(l->fd, G_IO_IN);
    g_source_set_callback(l->src, reinterpret_cast<GSourceFunc>(reinterpret_cast<void (*)()>(&on_accept)),
                          nullptr, nullptr);
    g_source_attach(l->src, kernel().loop().context());
    g_server->listeners.push_back(std::move(l));
}

void teardown()
{
    if (!g_server) return;
    for (auto &s : g_server->sessions) {
        if (auto *c = dynamic_cast<ChardevSession *>(s.get())) {
            // Input it already queued with invoke() may still run (if the loop runs again): it finds the
            // session dead, so the session is kept (in `retired`) until the process ends.
            c->detach();
            g_server->retired.push_back(std::move(s));
        } else if (auto *k = dynamic_cast<SocketSession *>(s.get())) {
            k->kill();
        }
    }
    g_server->sessions.clear();
    for (auto &l : g_server->listeners) {
        if (l->src) {
            g_source_destroy(l->src);
            g_source_unref(l->src);
        }
        if (l->fd >= 0) ::close(l->fd);
    }
    g_server->listeners.clear();
}

} // namespace

void start_qmp(const RunConfig &cfg)
{
    Kernel &k = kernel();
    unsigned n = 0;
    for (const std::string &dev : cfg.qmp) {
        const std::string opt = "-qmp " + dev;
        if (dev == "none") continue;
        ChardevSpec spec;
        try {
            spec = parse_serial_option(dev, "qmp_monitor" + std::to_string(n));
        } catch (const Error &e) {
            throw Error(opt + ": " + strip_prefix(e.what(), "-serial " + dev + ": "));
        }
        start_server();
        if (spec.backend == "socket") {
            add_listener(opt, spec, n++);
            continue;
        }
        // Anything else (stdio, pty, chardev:ID): one client on a chardev, as QEMU.
        if (spec.backend == "none" || spec.backend == "null") continue;
        spec.loc = Location{opt, 0, 0};
        KeelChardev *chr;
        if (spec.backend == "alias") {
            chr = k.chardev(spec.options["target"], spec.loc);
        } else {
            std::string id = spec.id;
            k.declare_chardev(std::move(spec));
            chr = k.chardev(id, Location{opt, 0, 0});
        }
        if (chr->has_frontend()) throw Error(opt + ": Device '" + chr->id() + "' is in use");
        ++n;
        g_server->sessions.push_back(std::make_unique<ChardevSession>(chr));
    }
    // -mon [chardev=]ID,mode=control[,pretty=on]; other modes are the human monitor's (hmp.cpp).
    for (const std::string &arg : cfg.mon) {
        const std::string opt = "-mon " + arg;
        std::string id, mode = "readline";
        bool pretty = false;
        for (const std::string &f : split(arg, ',')) {
            auto eq = f.find('=');
            std::string key = eq == std::string::npos ? "" : f.substr(0, eq);
            std::string val = eq == std::string::npos ? f : f.substr(eq + 1);
            if (key.empty() || key == "chardev") {
                id = val;
            } else if (key == "mode") {
                mode = val;
            } else if (key == "pretty") {
                auto b = parse_bool(val);
                if (!b) throw Error(opt + ": invalid value '" + val + "' for 'pretty' (use on or off)");
                pretty = *b;
            }
        }
        if (mode != "control") continue;
        if (id.empty()) throw Error(opt + ": needs chardev=ID (a -chardev's id)");
        KeelChardev *chr = k.chardev(id, Location{opt, 0, 0});
        if (chr->has_frontend()) throw Error(opt + ": Device '" + id + "' is in use");
        start_server();
        auto s = std::make_unique<ChardevSession>(chr);
        s->pretty = pretty;
        g_server->sessions.push_back(std::move(s));
    }
}

void qmp_stop()
{
    if (!g_server) return;
    control().unsubscribe(g_server->subscription);
    {
        std::lock_guard<std::mutex> g(g_server->lock);
        for (const auto &p : g_server->paths)
            ::unlink(p.c_str());
        g_server->paths.clear();
    }
    MainLoop &loop = kernel().loop();
    if (loop.running() && !loop.on_loop_thread()) {
        // On the loop thread, after what it is doing (a reply to quit goes out first).
        auto done = std::make_shared<std::promise<void>>();
        std::future<void> f = done->get_future();
        loop.invoke([done] {
            teardown();
            done->set_value();
        });
        if (f.wait_for(std::chrono::seconds(5)) == std::future_status::ready) return;
        return; // the loop is stuck: leave the sockets to the exit
    }
    teardown();
}

} // namespace keel::monitor
