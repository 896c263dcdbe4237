// SPDX-License-Identifier: MIT
// Run control in the execution core (KeelAccelOps pause/resume/set_debug, ABI 1.4): parking, single steps,
// breakpoints inside blocks, watchpoints through the slow path — on tci with the fake CPU.
#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "control.h"
#include "fake_cpu.h"

using namespace keel;
using namespace keel::exec;
using namespace keel::irtest;

namespace
{

using Ops = const KeelIrBuilderOps *;
using B = KeelIrBuilder *;

KeelIrValue g(B b, Ops o, unsigned i)
{
    return o->global(b, i);
}
KeelIrValue c64(B b, Ops o, uint64_t v)
{
    return o->const_int(b, KEEL_IR_I64, v);
}

constexpr uint64_t kLoop = kRam + 0x400;
constexpr uint64_t kSlot = kData + 0x10;

// Instruction i (0-3) of the loop: 0: x0 += 1; 1: store x0 to kSlot; 2: x1 += 1; 3: x2 += 1.
void loop_insn(B b, Ops o, unsigned i)
{
    switch (i) {
    case 0:
        o->alu(b, KEEL_IR_ADD, g(b, o, X0), g(b, o, X0), c64(b, o, 1));
        break;
    case 1:
        o->store(b, g(b, o, X0), c64(b, o, kSlot), KEEL_MO_64, 0);
        break;
    case 2:
        o->alu(b, KEEL_IR_ADD, g(b, o, X1), g(b, o, X1), c64(b, o, 1));
        break;
    default:
        o->alu(b, KEEL_IR_ADD, g(b, o, X2), g(b, o, X2), c64(b, o, 1));
        break;
    }
}

// The loop's block at kLoop honours max_insns: a block cut after n instructions goes on at instruction n,
// whose block (kLoop + 4n) runs the rest one instruction per block; instruction 3 goes back to kLoop
// (goto_tb).
void define_loop(Rig &r)
{
    for (unsigned k = 0; k < 4; ++k)
        r.blocks[kLoop + 4 * k] = [&r, k](B b, Ops o, uint64_t) {
            unsigned n = k ? 1 : std::min(4u, r.max_insns ? r.max_insns : 4u);
            for (unsigned i = 0; i < n; ++i) {
                if (i) o->insn_start(b, kLoop + 4 * (k + i), 4, 0); // the fake translator started the first
                loop_insn(b, o, k + i);
            }
            unsigned next = (k + n) % 4;
            o->alu(b, KEEL_IR_MOV, g(b, o, PC), c64(b, o, kLoop + 4 * next), 0);
            o->goto_tb(b, 0);
        };
}

// The engine's reports (KeelServices.debug_stopped → control()'s debug listener).
struct Stops {
    std::mutex m;
    std::condition_variable cv;
    std::vector<DebugStop> seen;
    Stops()
    {
        control().set_debug_listener([this](const DebugStop &s) {
            std::lock_guard<std::mutex> g(m);
            seen.push_back(s);
            cv.notify_all();
        });
    }
    ~Stops() { control().set_debug_listener(nullptr); }
    DebugStop wait(size_t n)
    {
        std::unique_lock<std::mutex> lk(m);
        bool ok = cv.wait_for(lk, std::chrono::seconds(20), [&] { return seen.size() >= n; });
        REQUIRE(ok);
        return seen[n - 1];
    }
};

// run() on a thread of its own, stopped and joined at the end.
struct Runner {
    Rig &r;
    std::thread t;
    int rc = -2;
    Runner(Rig &rig, uint64_t pc) : r(rig)
    {
        r.env.pc = pc;
        t = std::thread([this] { rc = r.core->run(); });
    }
    ~Runner()
    {
        r.core->stop();
        t.join();
    }
};

void resume(Rig &r, uint8_t mode)
{
    r.core->resume(&mode, 1);
}

} // namespace

TEST_CASE("run control: pause parks an endless chained loop, nothing runs while parked, resume goes on",
          "[exec][debug]")
{
    Rig r;
    define_loop(r);
    Runner run(r, kLoop);
    while (r.env.x[0] < 10000)
        std::this_thread::yield();
    r.core->pause();
    uint64_t x0 = r.env.x[0];
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    CHECK(r.env.x[0] == x0);
    // Parked between two instructions of the loop: the pc is one of them.
    CHECK((r.env.pc - kLoop) % 4 == 0);
    CHECK(r.env.pc - kLoop < 16);
    resume(r, KEEL_RUN_CONTINUE);
    while (r.env.x[0] < x0 + 10000)
        std::this_thread::yield();
}

TEST_CASE("run control: a step runs exactly one instruction, also in the middle of a block", "[exec][debug]")
{
    Rig r;
    define_loop(r);
    Stops stops;
    r.core->pause(); // before run(): it parks at once
    Runner run(r, kLoop);
    for (unsigned i = 1; i <= 6; ++i) {
        resume(r, KEEL_RUN_STEP);
        DebugStop s = stops.wait(i);
        CHECK(s.reason == DebugStop::Step);
        CHECK(s.cpu == 0);
        CHECK(r.env.pc == kLoop + 4 * (i % 4));
    }
    // Six instructions: x0 += 1 twice, the store twice, x1 and x2 once each.
    CHECK(r.env.x[0] == 2);
    CHECK(r.env.x[1] == 1);
    CHECK(r.env.x[2] == 1);
    uint64_t slot;
    std::memcpy(&slot, r.ram(kSlot), 8);
    CHECK(slot == 2);
}

TEST_CASE("run control: a breakpoint inside a block stops before its instruction, every time it is reached",
          "[exec][debug]")
{
    Rig r;
    define_loop(r);
    Stops stops;
    KeelDebugPoint bp{kLoop + 8, 0, KEEL_DEBUG_BREAK, 0};
    REQUIRE(r.core->set_debug(&bp, 1, nullptr) == 0);
    Runner run(r, kLoop);
    DebugStop s = stops.wait(1);
    CHECK(s.reason == DebugStop::Break);
    CHECK(s.addr == kLoop + 8);
    CHECK(r.env.pc == kLoop + 8);
    CHECK(r.env.x[0] == 1);
    CHECK(r.env.x[1] == 0);
    // Continuing at the breakpoint stops there again at once (as QEMU: the debugger steps over it).
    resume(r, KEEL_RUN_CONTINUE);
    s = stops.wait(2);
    CHECK(s.reason == DebugStop::Break);
    CHECK(r.env.x[1] == 0);
    resume(r, KEEL_RUN_STEP);
    s = stops.wait(3);
    CHECK(s.reason == DebugStop::Step);
    CHECK(r.env.x[1] == 1);
    resume(r, KEEL_RUN_CONTINUE);
    s = stops.wait(4);
    CHECK(s.reason == DebugStop::Break);
    CHECK(r.env.pc == kLoop + 8);
    CHECK(r.env.x[0] == 2);
    CHECK(r.env.x[1] == 1);
    CHECK(r.env.x[2] == 1);
    // Removed: the loop runs freely.
    REQUIRE(r.core->set_debug(nullptr, 0, nullptr) == 0);
    resume(r, KEEL_RUN_CONTINUE);
    while (r.env.x[1] < 1000)
        std::this_thread::yield();
}

TEST_CASE("run control: a write watchpoint stops after the storing instruction, a read one ignores stores",
          "[exec][debug]")
{
    Rig r;
    define_loop(r);
    Stops stops;
    KeelDebugPoint rd{kSlot + 4, 2, KEEL_DEBUG_WATCH_READ, 0};
    REQUIRE(r.core->set_debug(&rd, 1, nullptr) == 0);
    {
        Runner run(r, kLoop);
        while (r.env.x[1] < 1000)
            std::this_thread::yield();
        std::lock_guard<std::mutex> g(stops.m);
        CHECK(stops.seen.empty());
    }
    KeelDebugPoint wr{kSlot + 4, 2, KEEL_DEBUG_WATCH_WRITE, 0};
    REQUIRE(r.core->set_debug(&wr, 1, nullptr) == 0);
    r.env.x[0] = r.env.x[1] = r.env.x[2] = 0;
    Runner run(r, kLoop);
    DebugStop s = stops.wait(1);
    CHECK(s.reason == DebugStop::Watch);
    CHECK(s.kind == KEEL_DEBUG_WATCH_WRITE);
    CHECK(s.addr == kSlot + 4);
    CHECK(r.env.pc == kLoop + 8); // just after the store
    uint64_t slot;
    std::memcpy(&slot, r.ram(kSlot), 8);
    CHECK(slot == 1);
    CHECK(r.env.x[1] == 0);
    resume(r, KEEL_RUN_CONTINUE);
    s = stops.wait(2);
    CHECK(s.reason == DebugStop::Watch);
    CHECK(r.env.pc == kLoop + 8);
    std::memcpy(&slot, r.ram(kSlot), 8);
    CHECK(slot == 2);
    CHECK(r.env.x[1] == 1);
}

TEST_CASE("run control: a breakpoint set while the loop runs chained stops it (its blocks are dropped)",
          "[exec][debug]")
{
    Rig r;
    define_loop(r);
    Stops stops;
    Runner run(r, kLoop);
    while (r.env.x[2] < 10000) // long chained by now
        std::this_thread::yield();
    KeelDebugPoint bp{kLoop + 12, 0, KEEL_DEBUG_BREAK, 0};
    REQUIRE(r.core->set_debug(&bp, 1, nullptr) == 0);
    DebugStop s = stops.wait(1);
    CHECK(s.reason == DebugStop::Break);
    CHECK(r.env.pc == kLoop + 12);
    CHECK(r.env.x[1] == r.env.x[0]); // x1 += 1 ran in this iteration, x2 += 1 not yet
    CHECK(r.env.x[2] == r.env.x[0] - 1);
}
