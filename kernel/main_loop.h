// SPDX-License-Identifier: MIT
// The main loop: a glib context on its own thread serving chardevs, timers and monitors; the big lock.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include <glib.h>

namespace keel
{

// The one big lock. Device callbacks (MMIO, timers, chardev input) always run
// holding it; recursive because a callback may call back into services that
// take it again.
std::recursive_mutex &big_lock();

// A GMainContext driven by a GMainLoop on a thread of its own. Sources may be
// attached to context() before start(); they run once the thread is up.
class MainLoop
{
  public:
    MainLoop();
    ~MainLoop(); // stops the thread
    MainLoop(const MainLoop &) = delete;
    MainLoop &operator=(const MainLoop &) = delete;

    // Both idempotent; start() after stop() runs the loop again.
    void start();
    void stop();
    bool running() const { return thread_.joinable(); }

    GMainContext *context() { return ctx_; }

    // Run fn on the loop thread, later (never inside this call, even when
    // called from the loop thread). Thread-safe. fn queued while the loop is
    // stopped runs on the next start(), or is dropped with the loop.
    void invoke(std::function<void()> fn);

    bool on_loop_thread() const { return loop_thread_.load() == std::this_thread::get_id(); }

  private:
    void run();

    GMainContext *ctx_;
    GMainLoop *loop_;
    std::thread thread_;
    std::atomic<std::thread::id> loop_thread_{};
    std::mutex start_stop_;
};

} // namespace keel
