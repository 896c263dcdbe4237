// SPDX-License-Identifier: MIT
// The main loop: a glib context on its own thread serving chardevs, timers and monitors; the big lock.
#include "main_loop.h"

namespace keel
{

std::recursive_mutex &big_lock()
{
    static std::recursive_mutex lock;
    return lock;
}

MainLoop::MainLoop() : ctx_(g_main_context_new()), loop_(g_main_loop_new(ctx_, FALSE)) {}

MainLoop::~MainLoop()
{
    stop();
    g_main_loop_unref(loop_);
    g_main_context_unref(ctx_);
}

void MainLoop::run()
{
    loop_thread_.store(std::this_thread::get_id());
    g_main_context_push_thread_default(ctx_);
    g_main_loop_run(loop_);
    g_main_context_pop_thread_default(ctx_);
    loop_thread_.store(std::thread::id{});
}

void MainLoop::start()
{
    std::lock_guard<std::mutex> g(start_stop_);
    if (thread_.joinable()) return;
    thread_ = std::thread([this] { run(); });
}

void MainLoop::stop()
{
    std::lock_guard<std::mutex> g(start_stop_);
    if (!thread_.joinable()) return;
    // Quitting through the context rather than g_main_loop_quit() directly:
    // a quit that lands before g_main_loop_run() has started would be lost.
    invoke([this] { g_main_loop_quit(loop_); });
    if (on_loop_thread()) {
        // Cannot join ourselves; the thread ends once this callback returns.
        thread_.detach();
        return;
    }
    thread_.join();
}

void MainLoop::invoke(std::function<void()> fn)
{
    GSource *src = g_idle_source_new();
    g_source_set_priority(src, G_PRIORITY_DEFAULT);
    g_source_set_callback(
        src,
        [](gpointer p) -> gboolean {
            (*static_cast<std::function<void()> *>(p))();
            return G_SOURCE_REMOVE;
        },
        new std::function<void()>(std::move(fn)),
        [](gpointer p) { delete static_cast<std::function<void()> *>(p); });
    g_source_attach(src, ctx_);
    g_source_unref(src);
}

} // namespace keel
