// SPDX-License-Identifier: MIT
// The IR builder, the verifier (every misuse is a message, never a crash) and the -d op printer.
#include <catch2/catch.hpp>

#include "builder.h"
#include "fake_cpu.h"

using namespace keel::exec;
using namespace keel::irtest;

namespace
{

struct Build {
    KeelIrBuilder b;
    const KeelIrBuilderOps *o = &builder_ops();
    Build() { builder_reset(b, &kFakeCpuOps); }
    IrBlock &blk() { return b.block; }
    std::string errors()
    {
        std::string s;
        for (auto &e : b.block.errors)
            s += e + "\n";
        return s;
    }
};

uint64_t helper_add(uint64_t a, uint64_t b)
{
    return a + b;
}
const KeelIrHelper kAdd = {"add2",
                           reinterpret_cast<void (*)(void)>(helper_add),
                           1,
                           KEEL_IR_I64,
                           2,
                           {KEEL_IR_I64, KEEL_IR_I64},
                           KEEL_HELPER_PURE,
                           {}};

} // namespace

TEST_CASE("a well-formed block verifies and prints like QEMU's -d op", "[ir][printer]")
{
    Build t;
    auto *b = &t.b;
    auto *o = t.o;
    o->insn_start(b, 0x80000000, 4, 0x00128293);
    KeelIrValue x5 = o->global(b, X1);
    o->alu(b, KEEL_IR_ADD, x5, x5, o->const_int(b, KEEL_IR_I64, 1));
    KeelIrValue t1 = o->temp(b, KEEL_IR_I64);
    o->load(b, t1, x5, KEEL_MO_64 | KEEL_MO_SIGN, 1);
    KeelIrLabel l = o->label(b);
    o->brcond(b, KEEL_IR_LTU, t1, x5, l);
    o->store(b, t1, x5, KEEL_MO_32 | KEEL_MO_ALIGN, 0);
    o->set_label(b, l);
    KeelIrValue args[] = {t1, x5};
    o->call(b, &kAdd, t1, args, 2);
    o->store_host(b, t1, o->env(b), 16, KEEL_MO_64);
    o->goto_tb(b, 0);
    REQUIRE(verify(t.blk()));
    CHECK(print_block(t.blk()) == " ---- 0000000080000000 4\n"
                                  " add_i64 x1,x1,$0x1\n"
                                  " ld_i64 tmp0,x1,mo=64s,mmu=1\n"
                                  " brcond_i64 tmp0,x1,ltu,$L1\n"
                                  " st_i64 tmp0,x1,mo=32+al,mmu=0\n"
                                  " set_label $L1\n"
                                  " call add2,$0x1,tmp0,tmp0,x1\n"
                                  " st_host_i64 tmp0,env,$0x10,mo=64\n"
                                  " goto_tb $0\n");
    CHECK(t.blk().insns.size() == 1);
    CHECK(t.blk().insns[0].mem_ops.size() == 2);
}

TEST_CASE("the builder answers the instrumentation queries", "[ir][builder]")
{
    Build t;
    auto *b = &t.b;
    auto *o = t.o;
    KeelIrValue a = o->global(b, X0), v = o->temp(b, KEEL_IR_I64);
    o->insn_start(b, 0x1000, 4, 0xaabbccdd);
    o->load(b, v, a, KEEL_MO_16 | KEEL_MO_SIGN, 1);
    o->insn_start(b, 0x1004, 2, 0x1234);
    o->store(b, v, a, KEEL_MO_8, 0);
    o->load(b, v, a, KEEL_MO_32, 1);
    o->exit_tb(b);
    CHECK(o->num_insns(b) == 2);
    uint64_t pc;
    unsigned len, n_mem;
    uint32_t raw;
    o->insn_info(b, 1, &pc, &len, &raw, &n_mem);
    CHECK(pc == 0x1004);
    CHECK(len == 2);
    CHECK(raw == 0x1234);
    CHECK(n_mem == 2);
    KeelIrMemOp mop;
    int is_store;
    unsigned mmu;
    KeelIrValue addr;
    o->mem_info(b, 1, 0, &mop, &is_store, &mmu, &addr);
    CHECK(mop == KEEL_MO_8);
    CHECK(is_store == 1);
    CHECK(mmu == 0);
    CHECK(addr == a);
    o->mem_info(b, 0, 0, &mop, &is_store, &mmu, &addr);
    CHECK(mop == (KEEL_MO_16 | KEEL_MO_SIGN));
    CHECK(is_store == 0);
    CHECK(mmu == 1);

    // Insert around memory operation 1 of insn 1 and at the start of insn 0.
    KeelIrValue c = o->global(b, X3);
    o->set_cursor(b, KEEL_IR_AFTER_MEM, 1, 1);
    o->alu(b, KEEL_IR_ADD, c, c, o->const_int(b, KEEL_IR_I64, 3));
    o->set_cursor(b, KEEL_IR_BEFORE_MEM, 1, 1);
    o->alu(b, KEEL_IR_ADD, c, c, o->const_int(b, KEEL_IR_I64, 2));
    o->set_cursor(b, KEEL_IR_BEFORE_INSN, 0, 0);
    o->alu(b, KEEL_IR_ADD, c, c, o->const_int(b, KEEL_IR_I64, 1));
    o->alu(b, KEEL_IR_ADD, c, c, o->const_int(b, KEEL_IR_I64, 10));
    o->set_cursor(b, KEEL_IR_AT_END, 0, 0);
    REQUIRE(verify(t.blk()));
    CHECK(print_block(t.blk()) == " ---- 0000000000001000 4\n"
                                  " add_i64 x3,x3,$0x1\n"
                                  " add_i64 x3,x3,$0xa\n"
                                  " ld_i64 tmp0,x0,mo=16s,mmu=1\n"
                                  " ---- 0000000000001004 2\n"
                                  " st_i64 tmp0,x0,mo=8,mmu=0\n"
                                  " add_i64 x3,x3,$0x2\n"
                                  " ld_i64 tmp0,x0,mo=32u,mmu=1\n"
                                  " add_i64 x3,x3,$0x3\n"
                                  " exit_tb\n");
    // The recorded positions followed the insertions.
    CHECK(t.blk().ops[t.blk().insns[1].start_op].kind == OpKind::InsnStart);
    CHECK(t.blk().ops[t.blk().insns[1].mem_ops[1]].kind == OpKind::Load);
    CHECK(t.blk().ops[t.blk().insns[0].mem_ops[0]].kind == OpKind::Load);
}

// Each misuse is reported with a message naming it; nothing crashes.
TEST_CASE("the verifier reports every kind of misuse", "[ir][verifier]")
{
    auto expect = [](const std::function<void(KeelIrBuilder *, const KeelIrBuilderOps *)> &emit,
                     const std::string &needle) {
        Build t;
        emit(&t.b, t.o);
        bool ok = verify(t.blk());
        INFO("expected: " << needle << "\ngot:\n" << t.errors());
        CHECK_FALSE(ok);
        CHECK(t.errors().find(needle) != std::string::npos);
    };
    auto start = [](KeelIrBuilder *b, const KeelIrBuilderOps *o) { o->insn_start(b, 0x1000, 4, 0); };

    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            KeelIrValue t32 = o->temp(b, KEEL_IR_I32), t64 = o->temp(b, KEEL_IR_I64);
            o->alu(b, KEEL_IR_ADD, t64, t64, t32);
            o->exit_tb(b);
        },
        "i32 value where i64 is needed");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            KeelIrValue f = o->temp(b, KEEL_IR_F64);
            o->alu(b, KEEL_IR_MUL, f, f, f);
            o->exit_tb(b);
        },
        "MUL: f64 operands");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            o->alu(b, KEEL_IR_MOV, o->const_int(b, KEEL_IR_I64, 1), o->global(b, X0), 0);
            o->exit_tb(b);
        },
        "cannot write a constant");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            o->alu(b, KEEL_IR_ADD, o->global(b, X0), 12345, o->global(b, X0));
            o->exit_tb(b);
        },
        "no such value 12345");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            KeelIrLabel l = o->label(b);
            o->set_label(b, l);
            o->set_label(b, l);
            o->exit_tb(b);
        },
        "set twice");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            KeelIrLabel l = o->label(b);
            o->br(b, l);
        },
        "used but never set");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            o->br(b, 77);
            o->exit_tb(b);
        },
        "unknown label 77");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            KeelIrValue x = o->global(b, X0);
            o->alu(b, KEEL_IR_ADD, x, x, x);
        },
        "falls off the end");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            KeelIrLabel l = o->label(b);
            o->brcond(b, KEEL_IR_EQ, o->global(b, X0), o->global(b, X1), l);
            o->exit_tb(b);
            o->set_label(b, l);
        },
        "falls off the end");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            KeelIrValue x = o->global(b, X0);
            o->alu(b, KEEL_IR_ADD, x, x, x);
            o->insn_start(b, 0x1000, 4, 0);
            o->exit_tb(b);
        },
        "must start with insn_start");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            KeelIrValue a = o->global(b, X0);
            o->call(b, &kAdd, a, &a, 1);
            o->exit_tb(b);
        },
        "1 arguments, the helper takes 2");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            KeelIrValue args[] = {o->global(b, X0), o->global(b, W0)};
            o->call(b, &kAdd, 0, args, 2);
            o->exit_tb(b);
        },
        "argument 1: i32 value where i64 is needed");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            KeelIrValue args[] = {o->global(b, X0), o->global(b, X1)};
            o->call(b, &kAdd, o->global(b, W0), args, 2);
            o->exit_tb(b);
        },
        "i32 value where i64 is needed");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            o->global(b, N_GLOBALS);
            o->exit_tb(b);
        },
        "out of range");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            o->load(b, o->global(b, W0), o->global(b, X0), KEEL_MO_64, 0);
            o->exit_tb(b);
        },
        "64-bit access to a i32");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            o->load(b, o->global(b, X1), o->global(b, W0), KEEL_MO_8, 0);
            o->exit_tb(b);
        },
        "i32 value where i64 is needed");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            o->load(b, o->global(b, X1), o->global(b, X0), KEEL_MO_8, 5);
            o->exit_tb(b);
        },
        "mmu index 5 out of range");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            o->store(b, o->global(b, X1), o->global(b, X0), KEEL_MO_8 | KEEL_MO_SIGN, 0);
            o->exit_tb(b);
        },
        "sign-extension on a store");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            o->store_host(b, o->global(b, X1), o->global(b, X0), 8, KEEL_MO_64);
            o->exit_tb(b);
        },
        "i64 value where ptr is needed");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            o->setcond(b, KEEL_IR_LT, o->global(b, X0), o->global(b, X1), o->global(b, W0));
            o->exit_tb(b);
        },
        "setcond: i32 value where i64 is needed");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            o->alu(b, KEEL_IR_EXTS_I32_I64, o->global(b, X0), o->global(b, X1), 0);
            o->exit_tb(b);
        },
        "i64 value where i32 is needed");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            o->alu(b, KEEL_IR_BITCAST, o->global(b, X0), o->global(b, F0), 0);
            o->exit_tb(b);
        },
        "BITCAST: f32 to i64");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            o->alu(b, static_cast<KeelIrAluOp>(999), o->global(b, X0), o->global(b, X1), 0);
            o->exit_tb(b);
        },
        "unknown operation 999");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            o->goto_tb(b, 2);
        },
        "slot 2");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            o->exit_tb(b);
            o->set_cursor(b, KEEL_IR_BEFORE_MEM, 0, 0);
        },
        "memory operation 0 of instruction 0 out of range");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            o->exit_tb(b);
            o->set_cursor(b, KEEL_IR_BEFORE_INSN, 0, 0);
            o->load(b, o->global(b, X1), o->global(b, X0), KEEL_MO_8, 0);
        },
        "inserted through the instrumentation cursor");
    expect(
        [&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            start(b, o);
            o->call(b, nullptr, 0, nullptr, 0);
            o->exit_tb(b);
        },
        "call: no helper");
    expect([](KeelIrBuilder *, const KeelIrBuilderOps *) {}, "must start with insn_start");
}

TEST_CASE("fetch without an engine fails instead of crashing", "[ir][builder]")
{
    Build t;
    uint32_t bits = 0;
    CHECK(t.o->fetch(&t.b, 0x1000, 4, &bits) == KEEL_ERR);
    t.b.fetch = [](uint64_t pc, unsigned len, uint32_t *out) {
        *out = static_cast<uint32_t>(pc + len);
        return KEEL_OK;
    };
    CHECK(t.o->fetch(&t.b, 0x1000, 4, &bits) == KEEL_OK);
    CHECK(bits == 0x1004);
    CHECK(t.o->fetch(&t.b, 0x1000, 5, &bits) == KEEL_ERR);
}
