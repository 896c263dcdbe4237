// SPDX-License-Identifier: MIT
// HMP: QEMU's human monitor on a chardev (-monitor DEV, -mon chardev=ID, and C-a c on a multiplexed console):
// the banner, the `(qemu) ` prompt and line editing. The commands are in hmp_commands.cpp.
#include <atomic>
#include <memory>
#include <mutex>

#include "chardev.h"
#include "error.h"
#include "hmp.h"
#include "kernel.h"
#include "monitor.h"
#include "util.h"

namespace keel::monitor
{

namespace
{

// QEMU's prompt, kept so expect scripts written for QEMU work unchanged.
constexpr const char *kPrompt = "(qemu) ";
constexpr size_t kMaxLine = 4096; // longer input lines are cut (QEMU's readline keeps 1024)

// One monitor on one chardev. Everything but attach/detach runs on the main loop thread: input and
// events come from the chardev there, and commands run there through MainLoop::invoke (without the big
// lock, as stop/cont need).
class Monitor : public std::enable_shared_from_this<Monitor>
{
  public:
    Monitor(KeelChardev *chr, bool mux) : chr_(chr), mux_(mux) {}

    void attach()
    {
        static const KeelChardevHandlers handlers = {
            sizeof(KeelChardevHandlers), can_receive_cb, receive_cb, event_cb, {}};
        std::weak_ptr<Monitor> weak = weak_from_this();
        if (mux_) {
            chr_->set_monitor(&handlers, this, [weak](bool in) {
                if (auto m = weak.lock()) m->on_focus(in);
            });
        } else {
            chr_->set_handlers(&handlers, this);
            // A backend that is there from the start (stdio) sends no OPENED: greet it now. A socket or
            // pty greets each client when it connects.
            kernel().loop().invoke([weak] {
                auto m = weak.lock();
                if (m && !m->closed_ && !m->greeted_ && m->chr_->connected()) m->greet();
            });
        }
    }

    void detach()
    {
        closed_ = true;
        if (mux_)
            chr_->set_monitor(nullptr, nullptr, nullptr);
        else
            chr_->set_handlers(nullptr, nullptr);
    }

    KeelChardev *chardev() const { return chr_; }

  private:
    static size_t can_receive_cb(void *o)
    {
        auto *m = static_cast<Monitor *>(o);
        return m->busy_ ? 0 : 256;
    }
    static void receive_cb(void *o, const uint8_t *buf, size_t len)
    {
        static_cast<Monitor *>(o)->input(buf, len);
    }
    static void event_cb(void *o, KeelChardevEvent ev)
    {
        auto *m = static_cast<Monitor *>(o);
        if (m->mux_) return; // a multiplexed monitor greets when C-a c gives it the focus
        if (ev == KEEL_CHARDEV_OPENED && !m->greeted_) {
            m->line_.clear();
            m->greet();
        } else if (ev == KEEL_CHARDEV_CLOSED) {
            m->greeted_ = false;
        }
    }

    void on_focus(bool in)
    {
        if (!in) return;
        if (!greeted_) {
            greet();
        } else {
            out("\n");
            out(kPrompt + line_);
        }
    }

    void greet()
    {
        greeted_ = true;
        out("keel " KEEL_VERSION " monitor - type 'help' for more information\n");
        out(kPrompt);
    }

    // Text to the terminal: "\n" becomes "\r\n" (a pty or socket peer gets no output processing).
    void out(const std::string &text)
    {
        if (closed_) return;
        std::string s;
        s.reserve(text.size() + 16);
        for (char c : text) {
            if (c == '\n') s += '\r';
            s += c;
        }
        chr_->write(reinterpret_cast<const uint8_t *>(s.data()), s.size());
    }

    void input(const uint8_t *buf, size_t len)
    {
        for (size_t i = 0; i < len; ++i) {
            if (busy_) {
                // A command line ended earlier in this chunk: the rest waits for it.
                held_.append(reinterpret_cast<const char *>(buf + i), len - i);
                return;
            }
            key(buf[i]);
        }
    }

    void replace_line(const std::string &text)
    {
        line_ = text;
        out(std::string("\r") + kPrompt + line_ + "\x1b[K");
    }

    void key(uint8_t c)
    {
        bool after_cr = last_cr_;
        last_cr_ = false;
        if (esc_ == 1) { // ESC seen: CSI or SS3 follows, anything else ends it
            esc_ = c == '[' || c == 'O' ? 2 : 0;
            return;
        }
        if (esc_ == 2) { // inside an escape sequence: parameters, then a final byte
            if (c >= 0x40 && c <= 0x7e) {
                esc_ = 0;
                history_key(c);
            }
            return;
        }
        switch (c) {
        case '\r':
        case '\n':
            if (c == '\n' && after_cr) return; // CR LF is one Enter
            last_cr_ = c == '\r';
            out("\n");
            enter();
            return;
        case 0x7f: // backspace (DEL) and Ctrl-H
        case 0x08:
            if (!line_.empty()) {
                line_.pop_back();
                out("\b \b");
            }
            return;
        case 0x03: // Ctrl-C and Ctrl-U: forget the line
        case 0x15:
            replace_line("");
            return;
        case 0x1b:
            esc_ = 1;
            return;
        default:
            if (c < 0x20 || line_.size() >= kMaxLine) return; // other control keys do nothing
            line_ += char(c);
            out(std::string(1, char(c)));
        }
    }

    // Up and down arrows walk the history.
    void history_key(uint8_t c)
    {
        if (c == 'A' && hist_pos_ > 0) {
            --hist_pos_;
            replace_line(history_[hist_pos_]);
        } else if (c == 'B' && hist_pos_ < history_.size()) {
            ++hist_pos_;
            replace_line(hist_pos_ < history_.size() ? history_[hist_pos_] : "");
        }
    }

    void enter()
    {
        std::string line = line_;
        line_.clear();
        if (line.find_first_not_of(" \t") == std::string::npos) {
            out(kPrompt);
            return;
        }
        if (history_.empty() || history_.back() != line) history_.push_back(line);
        hist_pos_ = history_.size();
        busy_ = true;
        std::weak_ptr<Monitor> weak = weak_from_this();
        // Not here: the chardev calls us holding the big lock, and stop/cont wait for the vCPUs.
        kernel().loop().invoke([weak, line] {
            if (auto m = weak.lock()) m->run(line);
        });
    }

    void run(const std::string &line)
    {
        if (closed_) return;
        std::string result = hmp_run(session_, line);
        out(result);
        if (session_.quit) return; // keel is ending: no prompt, no more input
        out(kPrompt);
        busy_ = false;
        std::string held = std::move(held_);
        held_.clear();
        input(reinterpret_cast<const uint8_t *>(held.data()), held.size());
        if (!busy_) chr_->accept_input();
    }

    KeelChardev *chr_;
    bool mux_;
    std::atomic<bool> closed_{false};
    bool greeted_ = false;
    bool busy_ = false; // a command runs: input waits in the chardev
    std::string line_;
    std::string held_; // typed after a command line, in the same chunk
    std::vector<std::string> history_;
    size_t hist_pos_ = 0;
    int esc_ = 0;
    bool last_cr_ = false;
    HmpSession session_;
};

std::vector<std::shared_ptr<Monitor>> g_monitors;

void add_monitor(KeelChardev *chr, bool mux)
{
    auto m = std::make_shared<Monitor>(chr, mux);
    m->attach();
    g_monitors.push_back(m);
}

bool has_monitor(KeelChardev *chr)
{
    for (const auto &m : g_monitors)
        if (m->chardev() == chr) return true;
    return false;
}

// -mon [chardev=]ID[,mode=readline|control][,pretty=on|off]: the chardev id, or "" for a QMP monitor.
std::string hmp_chardev_of(const std::string &arg)
{
    auto fail = [&](const std::string &msg) { return Error("-mon " + arg + ": " + msg); };
    std::string id, mode = "readline";
    auto fields = split(arg, ',');
    for (size_t i = 0; i < fields.size(); ++i) {
        const std::string &f = fields[i];
        auto eq = f.find('=');
        std::string k = eq == std::string::npos ? "" : f.substr(0, eq);
        std::string v = eq == std::string::npos ? f : f.substr(eq + 1);
        if ((i == 0 && eq == std::string::npos) || k == "chardev")
            id = v;
        else if (k == "mode")
            mode = v;
        else if (k != "pretty")
            throw fail("unknown option '" + (k.empty() ? f : k) + "' (valid: chardev, mode, pretty)");
    }
    if (mode != "readline" && mode != "control")
        throw fail("invalid mode '" + mode + "' (readline or control)");
    if (id.empty()) throw fail("needs chardev=ID (a -chardev's id)");
    return mode == "readline" ? id : "";
}

} // namespace

void start_hmp(const RunConfig &cfg)
{
    hmp_set_plugins(cfg.plugins);
    Kernel &k = kernel();
    unsigned n = 0;
    for (const std::string &dev : cfg.monitor) {
        if (dev == "none") continue; // QEMU's "no monitor"
        ChardevSpec spec;
        try {
            spec = parse_serial_option(dev, "compat_monitor" + std::to_string(n++));
        } catch (const Error &e) {
            std::string m = e.what(), prefix = "-serial " + dev + ": ";
            throw Error("-monitor " + dev + ": " + (m.rfind(prefix, 0) == 0 ? m.substr(prefix.size()) : m));
        }
        spec.loc = Location{"-monitor " + dev, 0, 0};
        if (spec.backend == "none") continue;
        KeelChardev *chr;
        if (spec.backend == "alias") { // -monitor chardev:ID
            chr = k.chardev(spec.options["target"], spec.loc);
        } else {
            std::string id = spec.id;
            k.declare_chardev(std::move(spec));
            chr = k.chardev(id, Location{"-monitor " + dev, 0, 0});
        }
        if (has_monitor(chr))
            throw Error("-monitor " + dev + ": chardev '" + chr->id() + "' has a monitor already");
        if (!chr->multiplexed() && chr->has_frontend())
            throw Error("-monitor " + dev + ": Device '" + chr->id() +
                        "' is in use (give its -chardev mux=on to "
                        "share it with the monitor)");
        add_monitor(chr, chr->multiplexed());
    }
    for (const std::string &arg : cfg.mon) {
        std::string id = hmp_chardev_of(arg);
        if (id.empty()) continue; // mode=control: QMP's (qmp.cpp)
        KeelChardev *chr = k.chardev(id, Location{"-mon " + arg, 0, 0});
        if (has_monitor(chr)) throw Error("-mon " + arg + ": chardev '" + id + "' has a monitor already");
        if (!chr->multiplexed() && chr->has_frontend())
            throw Error("-mon " + arg + ": Device '" + id +
                        "' is in use (give its -chardev mux=on to share it with "
                        "the monitor)");
        add_monitor(chr, chr->multiplexed());
    }
    // -serial mon:DEV (and -nographic's mon:stdio) come with a monitor behind C-a c, as in QEMU. A
    // -chardev ...,mux=on gets one only through -mon.
    for (const auto &[id, chr] : k.chardevs())
        if (chr->multiplexed() && id.rfind("serial", 0) == 0 && !has_monitor(chr.get()))
            add_monitor(chr.get(), true);
}

std::string hmp_execute(const std::string &line)
{
    static std::mutex lock;
    static HmpSession session;
    std::lock_guard<std::mutex> g(lock);
    session.quit = false;
    return hmp_run(session, line);
}

void stop_all()
{
    qmp_stop();
    gdb_stop();
    for (const auto &m : g_monitors)
        m->detach();
    g_monitors.clear();
}

} // namespace keel::monitor
