// SPDX-License-Identifier: MIT
// tcg's opt/ passes on hand-built blocks: what they fold, drop and keep, and that the result verifies.
#include <catch2/catch.hpp>

#include "builder.h"
#include "fake_cpu.h"
#include "opt/opt.h"

using namespace keel::exec;
using namespace keel::irtest;
namespace opt = keel::tcg::opt;

namespace
{

struct Block {
    KeelIrBuilder b;
    const KeelIrBuilderOps *o = &builder_ops();
    Block()
    {
        builder_reset(b, &kFakeCpuOps);
        o->insn_start(&b, kRam, 4, 0);
    }
    KeelIrValue g(unsigned i) { return o->global(&b, i); }
    KeelIrValue c64(uint64_t v) { return o->const_int(&b, KEEL_IR_I64, v); }
    KeelIrValue c32(uint64_t v) { return o->const_int(&b, KEEL_IR_I32, v); }
    void exit()
    {
        o->exit_tb(&b);
        b.at_end = true;
    }
    IrBlock &ir() { return b.block; }
    std::string text() { return print_block(b.block); }
};

} // namespace

TEST_CASE("tcg opt: a chain of constant operations becomes one move per destination", "[tcg][opt]")
{
    Block k;
    KeelIrValue t = k.o->temp(&k.b, KEEL_IR_I64);
    k.o->alu(&k.b, KEEL_IR_MOV, k.g(X0), k.c64(0x80000000), 0);
    k.o->alu(&k.b, KEEL_IR_ADD, k.g(X0), k.g(X0), k.c64(0x123));
    k.o->alu(&k.b, KEEL_IR_SHL, t, k.g(X0), k.c64(68)); // count modulo 64: << 4
    k.o->alu(&k.b, KEEL_IR_DIVU, k.g(X1), t, k.c64(0)); // x / 0 = all ones
    k.o->alu(&k.b, KEEL_IR_TRUNC_I64_I32, k.g(W0), t, 0);
    k.o->setcond(&k.b, KEEL_IR_LTU, k.g(X2), k.g(X0), k.c64(0x80000124));
    k.exit();
    REQUIRE(opt::optimize(k.ir()));
    std::string s = k.text();
    INFO(s);
    CHECK(s.find("mov_i64 x0,$0x80000123") != std::string::npos);
    CHECK(s.find("mov_i64 x1,$0xffffffffffffffff") != std::string::npos);
    CHECK(s.find("mov_i32 w0,$0x1230") != std::string::npos);
    CHECK(s.find("mov_i64 x2,$0x1") != std::string::npos);
    CHECK(s.find("shl") == std::string::npos); // the temp was folded away, and its op is dead
    CHECK(s.find("tmp") == std::string::npos);
}

TEST_CASE("tcg opt: knowledge ends at labels, host stores and calls that write globals", "[tcg][opt]")
{
    Block k;
    k.o->alu(&k.b, KEEL_IR_MOV, k.g(X0), k.c64(5), 0);
    KeelIrLabel l = k.o->label(&k.b);
    k.o->brcond(&k.b, KEEL_IR_EQ, k.g(X3), k.c64(0), l);
    k.o->alu(&k.b, KEEL_IR_MOV, k.g(X0), k.c64(6), 0);
    k.o->set_label(&k.b, l);
    k.o->alu(&k.b, KEEL_IR_ADD, k.g(X1), k.g(X0), k.c64(1)); // x0 is 5 or 6 here: not folded
    k.o->alu(&k.b, KEEL_IR_MOV, k.g(X2), k.c64(7), 0);
    k.o->store_host(&k.b, k.c64(9), k.o->env(&k.b), 0, KEEL_MO_64);
    k.o->alu(&k.b, KEEL_IR_ADD, k.g(X3), k.g(X2), k.c64(1)); // the host store may have changed x2
    k.exit();
    REQUIRE(opt::optimize(k.ir()));
    std::string s = k.text();
    INFO(s);
    CHECK(s.find("add_i64 x1,x0,$0x1") != std::string::npos);
    CHECK(s.find("add_i64 x3,x2,$0x1") != std::string::npos);
}

TEST_CASE("tcg opt: branches on constants become jumps or disappear", "[tcg][opt]")
{
    Block k;
    KeelIrLabel taken = k.o->label(&k.b), never = k.o->label(&k.b);
    k.o->alu(&k.b, KEEL_IR_MOV, k.g(W0), k.c32(3), 0);
    k.o->brcond(&k.b, KEEL_IR_GT, k.g(W0), k.c32(5), never); // 3 > 5: never
    k.o->brcond(&k.b, KEEL_IR_LT, k.g(W0), k.c32(5), taken); // 3 < 5: always
    k.o->alu(&k.b, KEEL_IR_MOV, k.g(X0), k.c64(1), 0);
    k.o->set_label(&k.b, never);
    k.o->alu(&k.b, KEEL_IR_MOV, k.g(X1), k.c64(2), 0);
    k.o->set_label(&k.b, taken);
    k.exit();
    size_t before = k.ir().ops.size();
    REQUIRE(opt::optimize(k.ir()));
    std::string s = k.text();
    INFO(s);
    CHECK(k.ir().ops.size() == before - 1);
    CHECK(s.find("brcond") == std::string::npos);
    CHECK(s.find("br $L1") != std::string::npos);
    // Labels still point at their set_label ops after the removal.
    for (size_t l = 1; l < k.ir().labels.size(); ++l) {
        int32_t at = k.ir().labels[l];
        REQUIRE(at >= 0);
        CHECK(k.ir().ops[static_cast<size_t>(at)].kind == OpKind::SetLabel);
        CHECK(k.ir().ops[static_cast<size_t>(at)].label == l);
    }
}

TEST_CASE("tcg opt: dead code goes, memory operations and side effects stay", "[tcg][opt]")
{
    Block k;
    KeelIrValue t1 = k.o->temp(&k.b, KEEL_IR_I64), t2 = k.o->temp(&k.b, KEEL_IR_I64);
    KeelIrValue t3 = k.o->temp(&k.b, KEEL_IR_I64);
    k.o->alu(&k.b, KEEL_IR_MUL, t1, k.g(X0), k.g(X1)); // read only by t2's op, itself dead
    k.o->alu(&k.b, KEEL_IR_ADD, t2, t1, k.g(X1));
    k.o->load(&k.b, t3, k.g(X2), KEEL_MO_64, 0); // unread, but it may fault: kept
    k.o->alu(&k.b, KEEL_IR_MOV, k.g(X3), k.g(X3), 0);
    k.exit();
    REQUIRE(opt::optimize(k.ir()));
    std::string s = k.text();
    INFO(s);
    CHECK(s.find("mul") == std::string::npos);
    CHECK(s.find("add") == std::string::npos);
    CHECK(s.find("mov_i64 x3,x3") == std::string::npos);
    CHECK(s.find("ld_i64 tmp2,x2") != std::string::npos);
    // The instruction record still points at its load.
    REQUIRE(k.ir().insns.size() == 1);
    REQUIRE(k.ir().insns[0].mem_ops.size() == 1);
    CHECK(k.ir().ops[k.ir().insns[0].mem_ops[0]].kind == OpKind::Load);
}

TEST_CASE("tcg opt: a global written twice keeps only the last write, unless something saw the first",
          "[tcg][opt]")
{
    Block k;
    k.o->alu(&k.b, KEEL_IR_MOV, k.g(X0), k.c64(1), 0); // overwritten below: dropped
    k.o->insn_start(&k.b, kRam + 4, 4, 0);
    k.o->alu(&k.b, KEEL_IR_MOV, k.g(X0), k.g(X3), 0); // read by the next op: kept
    k.o->alu(&k.b, KEEL_IR_ADD, k.g(X1), k.g(X0), k.g(X2));
    k.o->alu(&k.b, KEEL_IR_MOV, k.g(X0), k.c64(3), 0);
    k.o->alu(&k.b, KEEL_IR_MOV, k.g(X2), k.c64(4), 0); // a load that may fault follows: kept
    KeelIrValue t = k.o->temp(&k.b, KEEL_IR_I64);
    k.o->load(&k.b, t, k.g(X3), KEEL_MO_64, 0);
    k.o->alu(&k.b, KEEL_IR_MOV, k.g(X2), t, 0);
    k.exit();
    REQUIRE(opt::optimize(k.ir()));
    std::string s = k.text();
    INFO(s);
    CHECK(s.find("mov_i64 x0,$0x1") == std::string::npos);
    CHECK(s.find("mov_i64 x0,x3") != std::string::npos);
    CHECK(s.find("add_i64 x1,x0,x2") != std::string::npos);
    CHECK(s.find("mov_i64 x0,$0x3") != std::string::npos);
    CHECK(s.find("mov_i64 x2,$0x4") != std::string::npos);
}

TEST_CASE("tcg opt: inline counters merge up to the next memory access, call or exit", "[tcg][opt]")
{
    static uint64_t counter, other;
    Block k;
    auto count = [&](uint64_t *p, uint64_t n) { // what a plugin's inline ADD_U64 becomes
        KeelIrValue t = k.o->temp(&k.b, KEEL_IR_I64), ptr = k.o->const_ptr(&k.b, p);
        k.o->load_host(&k.b, t, ptr, 0, KEEL_MO_64);
        k.o->alu(&k.b, KEEL_IR_ADD, t, t, k.c64(n));
        k.o->store_host(&k.b, t, ptr, 0, KEEL_MO_64);
    };
    count(&counter, 1);
    k.o->alu(&k.b, KEEL_IR_ADD, k.g(X0), k.g(X0), k.c64(1));
    count(&other, 5); // another word in between: no effect on the first
    k.o->insn_start(&k.b, kRam + 4, 4, 0);
    count(&counter, 2); // -> into the first: 3
    k.o->alu(&k.b, KEEL_IR_ADD, k.g(X1), k.g(X1), k.g(X0));
    k.o->insn_start(&k.b, kRam + 8, 4, 0);
    count(&counter, 4); // -> 7; this instruction's load may fault: the count up to it is in memory first
    KeelIrValue v = k.o->temp(&k.b, KEEL_IR_I64);
    k.o->load(&k.b, v, k.g(X3), KEEL_MO_64, 0);
    k.o->alu(&k.b, KEEL_IR_MOV, k.g(X2), v, 0);
    k.o->insn_start(&k.b, kRam + 12, 4, 0);
    count(&counter, 8); // after the load: a new counter
    k.o->insn_start(&k.b, kRam + 16, 4, 0);
    count(&counter, 16); // -> 24
    k.exit();
    REQUIRE(opt::optimize(k.ir()));
    std::string s = k.text();
    INFO(s);
    auto n = [&](const std::string &what) {
        size_t c = 0;
        for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1))
            ++c;
        return c;
    };
    CHECK(n("ld_host_i64") == 3); // counter before the load, counter after it, other
    CHECK(n("st_host_i64") == 3);
    CHECK(s.find(",$0x7\n") != std::string::npos);
    CHECK(s.find(",$0x18\n") != std::string::npos);
    CHECK(s.find(",$0x5\n") != std::string::npos);
    // The load stays between the two counters.
    CHECK(s.find(" ld_i64 ") > s.find(",$0x7\n"));
    CHECK(s.find(" ld_i64 ") < s.find(",$0x18\n"));
}

TEST_CASE("tcg opt: constant additions to a global merge until something may look at it", "[tcg][opt]")
{
    static const KeelIrHelper quiet = {"quiet", reinterpret_cast<void (*)(void)>(+[] {}), 0, 0, 0, {}, 0, {}};
    static const KeelIrHelper reads = {
        "reads", reinterpret_cast<void (*)(void)>(+[] {}), 0, 0, 0, {}, KEEL_HELPER_READS_GLOBALS, {}};
    Block k;
    k.o->alu(&k.b, KEEL_IR_ADD, k.g(X0), k.g(X0), k.c64(1));
    k.o->insn_start(&k.b, kRam + 4, 4, 0);
    k.o->call(&k.b, &quiet, 0, nullptr, 0); // sees no global: passed
    k.o->alu(&k.b, KEEL_IR_ADD, k.g(X1), k.g(X1), k.c64(9));
    k.o->alu(&k.b, KEEL_IR_ADD, k.g(X0), k.g(X0), k.c64(2)); // 1 + 2
    k.o->insn_start(&k.b, kRam + 8, 4, 0);
    k.o->call(&k.b, &reads, 0, nullptr, 0); // reads globals: x0 must hold 3 here
    k.o->alu(&k.b, KEEL_IR_ADD, k.g(X0), k.g(X0), k.c64(4));
    k.o->alu(&k.b, KEEL_IR_MOV, k.g(X2), k.g(X0), 0); // reads x0: 4 stays before it
    k.o->alu(&k.b, KEEL_IR_ADD, k.g(X0), k.g(X0), k.c64(8));
    k.exit();
    REQUIRE(opt::optimize(k.ir()));
    std::string s = k.text();
    INFO(s);
    CHECK(s.find("add_i64 x0,x0,$0x1\n") == std::string::npos);
    CHECK(s.find("add_i64 x0,x0,$0x3\n") != std::string::npos);
    CHECK(s.find("add_i64 x0,x0,$0x3\n") < s.find("call reads"));
    CHECK(s.find("add_i64 x0,x0,$0x4\n") != std::string::npos);
    CHECK(s.find("add_i64 x0,x0,$0x8\n") != std::string::npos);
    CHECK(s.find("add_i64 x1,x1,$0x9\n") != std::string::npos);
}
