// SPDX-License-Identifier: MIT
// Tests of the main loop thread: invoke() ordering and threading, start/stop, the big lock.
#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "main_loop.h"

using namespace keel;
using namespace std::chrono_literals;

namespace
{

// Collects values pushed from the loop thread; waits with a generous timeout
// so a loaded CI machine does not make the tests flaky.
struct Collector {
    std::mutex m;
    std::condition_variable cv;
    std::vector<int> got;
    void push(int v)
    {
        std::lock_guard<std::mutex> g(m);
        got.push_back(v);
        cv.notify_all();
    }
    bool wait_for(size_t n)
    {
        std::unique_lock<std::mutex> g(m);
        return cv.wait_for(g, 5s, [&] { return got.size() >= n; });
    }
};

} // namespace

TEST_CASE("invoke runs functions on the loop thread in order", "[mainloop]")
{
    MainLoop loop;
    loop.start();
    Collector c;
    bool on_loop[3] = {};
    for (int i = 0; i < 3; ++i)
        loop.invoke([&, i] {
            on_loop[i] = loop.on_loop_thread();
            c.push(i);
        });
    REQUIRE(c.wait_for(3));
    CHECK(c.got == std::vector<int>{0, 1, 2});
    CHECK(on_loop[0]);
    CHECK(on_loop[2]);
    CHECK_FALSE(loop.on_loop_thread());
}

TEST_CASE("invoke from the loop thread is deferred, never nested", "[mainloop]")
{
    MainLoop loop;
    loop.start();
    Collector c;
    loop.invoke([&] {
        loop.invoke([&] { c.push(2); });
        c.push(1); // must come first: the inner function has not run yet
    });
    REQUIRE(c.wait_for(2));
    CHECK(c.got == std::vector<int>{1, 2});
}

TEST_CASE("functions queued before start run once the loop starts", "[mainloop]")
{
    MainLoop loop;
    Collector c;
    loop.invoke([&] { c.push(7); });
    std::this_thread::sleep_for(20ms);
    {
        std::lock_guard<std::mutex> g(c.m);
        CHECK(c.got.empty());
    }
    loop.start();
    REQUIRE(c.wait_for(1));
    CHECK(c.got == std::vector<int>{7});
}

TEST_CASE("start and stop are idempotent and the loop restarts", "[mainloop]")
{
    MainLoop loop;
    loop.stop(); // never started: nothing to do
    loop.start();
    loop.start();
    CHECK(loop.running());
    loop.stop();
    loop.stop();
    CHECK_FALSE(loop.running());
    loop.start();
    Collector c;
    loop.invoke([&] { c.push(1); });
    REQUIRE(c.wait_for(1));
    // Destroying a running loop stops it (no hang, no leak under ASan).
}

TEST_CASE("stop right after start does not lose the quit", "[mainloop]")
{
    for (int i = 0; i < 50; ++i) {
        MainLoop loop;
        loop.start();
        loop.stop();
        CHECK_FALSE(loop.running());
    }
}

TEST_CASE("the big lock is one recursive lock for the process", "[mainloop]")
{
    CHECK(&big_lock() == &big_lock());
    std::lock_guard<std::recursive_mutex> a(big_lock());
    std::lock_guard<std::recursive_mutex> b(big_lock()); // a callback re-entering a service
    bool other_got_it = true;
    std::thread t([&] { other_got_it = big_lock().try_lock(); });
    t.join();
    CHECK_FALSE(other_got_it);
}
