// SPDX-License-Identifier: MIT
// Chardev test helpers: a temporary directory, a unix-socket client, and a UART-like front end: a receive
// budget (0 = "FIFO full"), a record of what arrived and of events, and checks that the backend keeps to the
// contract (never more than can_receive() allowed, callbacks under the big lock). Callbacks come from the
// main loop thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <keel/chardev.h>

#include "chardev.h"
#include "error.h"
#include "main_loop.h"

namespace keel::test
{

// A directory under /tmp, removed with everything in it. Throws if it cannot be made.
struct TmpDir {
    std::string path;
    TmpDir()
    {
        char tmpl[] = "/tmp/keel-chardev-XXXXXX";
        if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        path = tmpl;
    }
    ~TmpDir() { std::filesystem::remove_all(path); }
    TmpDir(const TmpDir &) = delete;
    TmpDir &operator=(const TmpDir &) = delete;
    std::string operator/(const std::string &name) const { return path + "/" + name; }
};

// A client connected to the unix socket at `path`, or -1.
inline int connect_unix(const std::string &path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
    if (connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

inline size_t write_str(KeelChardev &c, const std::string &s)
{
    return c.write(reinterpret_cast<const uint8_t *>(s.data()), s.size());
}

// The message of the keel::Error `fn` throws, or "(no error)".
inline std::string error_of(const std::function<void()> &fn)
{
    try {
        fn();
    } catch (const Error &e) {
        return e.what();
    }
    return "(no error)";
}

struct Frontend {
    std::mutex m;
    std::condition_variable cv;
    std::string got;
    std::vector<KeelChardevEvent> events;
    size_t budget = SIZE_MAX;
    size_t can_calls = 0;
    size_t last_room = 0;
    bool overrun = false;      // receive() got more than can_receive() allowed
    bool lock_missing = false; // a callback ran without the big lock
    KeelChardevHandlers h{sizeof(KeelChardevHandlers), can_receive, receive, event, {}};

    static bool holds_big_lock()
    {
        // try_lock from another thread fails iff somebody (this thread) holds it.
        bool free = false;
        std::thread t([&] {
            free = big_lock().try_lock();
            if (free) big_lock().unlock();
        });
        t.join();
        return !free;
    }
    static size_t can_receive(void *o)
    {
        auto *f = static_cast<Frontend *>(o);
        std::lock_guard<std::mutex> g(f->m);
        ++f->can_calls;
        f->last_room = f->budget;
        f->cv.notify_all();
        return f->budget;
    }
    static void receive(void *o, const uint8_t *buf, size_t len)
    {
        auto *f = static_cast<Frontend *>(o);
        std::lock_guard<std::mutex> g(f->m);
        if (len > f->last_room || len == 0) f->overrun = true;
        if (f->budget != SIZE_MAX) f->budget -= len;
        f->got.append(reinterpret_cast<const char *>(buf), len);
        f->cv.notify_all();
    }
    static void event(void *o, KeelChardevEvent ev)
    {
        auto *f = static_cast<Frontend *>(o);
        bool locked = holds_big_lock();
        std::lock_guard<std::mutex> g(f->m);
        if (!locked) f->lock_missing = true;
        f->events.push_back(ev);
        f->cv.notify_all();
    }
    template <class Pred> bool wait(Pred p)
    {
        std::unique_lock<std::mutex> g(m);
        return cv.wait_for(g, std::chrono::seconds(5), p);
    }
    bool wait_got(const std::string &s)
    {
        return wait([&] { return got.size() >= s.size(); }) && got == s;
    }
    bool wait_events(size_t n)
    {
        return wait([&] { return events.size() >= n; });
    }
    bool has_event(KeelChardevEvent ev)
    {
        return wait([&] { return std::find(events.begin(), events.end(), ev) != events.end(); });
    }
    void set_budget(size_t b)
    {
        std::lock_guard<std::mutex> g(m);
        budget = b;
    }
    std::string snapshot()
    {
        std::lock_guard<std::mutex> g(m);
        return got;
    }
};

} // namespace keel::test
