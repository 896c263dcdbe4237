// SPDX-License-Identifier: MIT
// Character backends (null, stdio, file, socket, pty) behind the C ABI's KeelChardev, the Ctrl-A
// multiplexer (mux=on, -serial mon:), and QEMU-style option parsing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <keel/chardev.h>

#include "main_loop.h"
#include "manifest.h"

// The C ABI's opaque chardev. Output comes from device code; input is
// delivered on the main loop thread, holding keel::big_lock(), as
// can_receive() -> receive() of at most that many bytes. When can_receive()
// says 0 the backend keeps what it has buffered and stops reading its source
// until accept_input(), so no byte is lost or duplicated.
struct KeelChardev {
  public:
    virtual ~KeelChardev();
    KeelChardev(const KeelChardev &) = delete;
    KeelChardev &operator=(const KeelChardev &) = delete;

    // From device code, any thread (normally holding the big lock). Never
    // blocks for long; output is dropped while nobody is connected (QEMU's
    // wait=off). Returns how many bytes were consumed (written or dropped).
    virtual size_t write(const uint8_t *buf, size_t len) = 0;

    // Install the front end (h == nullptr removes it). Only the fields inside
    // h->size are read, so older modules keep working. A socket with a client
    // already connected reports OPENED to the new front end.
    void set_handlers(const KeelChardevHandlers *h, void *opaque);
    // The front end can take input again: resume delivery. Thread-safe.
    void accept_input();

    const std::string &id() const { return id_; }
    // "stdio", "file:out.txt", "socket unix:/tmp/s (server)", "null", "pty /dev/pts/3";
    // a multiplexed one ends in " (mux)".
    virtual std::string describe() const = 0;
    // Sockets: whether a client is connected; pty: whether the slave side is
    // open; other backends: true.
    virtual bool connected() const { return true; }

    // Multiplexed chardevs (mux=on, -serial mon:DEV) carry a second front end,
    // the human monitor: C-a c moves the input focus between the device and
    // it (QEMU's mux focus). Output of both goes out interleaved.
    virtual bool multiplexed() const { return false; }
    // Install the monitor front end (h == nullptr removes it); `focus` is told
    // true/false (loop thread, big lock held) when C-a c moves the input to it
    // or back to the device. No effect on a chardev that is not multiplexed.
    void set_monitor(const KeelChardevHandlers *h, void *opaque, std::function<void(bool)> focus);
    bool has_monitor() const { return has_monitor_; }
    // A front end (a device, a QMP session) is installed (set_handlers).
    bool has_frontend() const { return has_handlers_; }

  protected:
    explicit KeelChardev(std::string id);

    // For backends, with the big lock held.
    size_t fe_can_receive();
    void fe_receive(const uint8_t *buf, size_t len);
    void fe_event(KeelChardevEvent ev);

    // Called by set_handlers()/accept_input() (any thread) so a backend
    // holding buffered input retries delivery.
    virtual void input_wanted() {}
    virtual void handlers_changed() { input_wanted(); }

    // C-a c (big lock held): input goes to the other front end from now on.
    // False when there is no monitor to switch to.
    bool switch_focus();

  private:
    std::string id_;
    KeelChardevHandlers handlers_{};
    void *opaque_ = nullptr;
    bool has_handlers_ = false;
    KeelChardevHandlers monitor_handlers_{};
    void *monitor_opaque_ = nullptr;
    bool has_monitor_ = false;
    bool monitor_focus_ = false; // the monitor, not the device, gets the input
    std::function<void(bool)> monitor_focus_fn_;
};

namespace keel
{

// -chardev BACKEND,id=ID[,path=P][,host=H,port=N][,server=on|off][,wait=on|off][,append=on][,signal=on|off]
//          [,mux=on|off]
// Backends: null, stdio, file, socket, pty. mux=on (stdio, socket, pty) puts
// QEMU's Ctrl-A escape keys in front of the input. Booleans are normalised to
// "on"/"off". Throws keel::Error starting with "-chardev ARG: " naming what is
// wrong and what is valid.
ChardevSpec parse_chardev_option(std::string_view arg);

// -serial stdio | null | none | pty | file:PATH | unix:PATH[,server=on,wait=off]
//         | tcp:[HOST]:PORT[,server=on,wait=off] | chardev:ID | mon:DEV
// chardev:ID gives backend "alias" with options {"target": ID}; none gives
// backend "none" (opened as null). unix:/tcp: give backend "socket". mon:DEV
// is DEV (stdio, pty, unix:, tcp:) with {"mux": "on"}.
ChardevSpec parse_serial_option(std::string_view arg, std::string id);

// Open a backend: null, none, stdio, file, socket (server=on; wait=on, the
// QEMU default for servers, blocks here until the first client connects), pty
// (prints "char device redirected to /dev/pts/N (label ID)" on stderr).
// Input sources attach to loop's context. Throws keel::Error located at
// spec.loc (when valid) for bad options, unbindable sockets, unopenable files.
std::unique_ptr<KeelChardev> open_chardev(const ChardevSpec &spec, MainLoop &loop);

// What Ctrl-A x on a multiplexed chardev does after printing "keel: terminated":
// the kernel installs a clean shutdown request (exit status 0). Called on the
// main loop thread holding big_lock(). Until one is installed, keel stops as on
// SIGTERM. Thread-safe; fn == nullptr restores that default.
void set_console_quit(std::function<void()> fn);

// Listening sockets of servers (socket chardevs, QMP, the gdbstub), non-blocking and close-on-exec. A unix
// socket is created owner-only (0600); a socket file left by an earlier run is replaced, anything else at
// the path is refused. tcp: an empty host listens on every interface (IPv6 dual-stack first), port 0
// picks a free port; `where` gets "tcp:HOST:PORT" with the port bound. Errors (keel::Error, located at
// `loc` when valid) start with `what`, e.g. "chardev 'serial0'" or "-qmp unix:/tmp/q".
int listen_unix_socket(const std::string &what, const std::string &path, int backlog,
                       const Location &loc = {});
int listen_tcp_socket(const std::string &what, const std::string &host, const std::string &port, int backlog,
                      std::string &where, const Location &loc = {});

} // namespace keel
