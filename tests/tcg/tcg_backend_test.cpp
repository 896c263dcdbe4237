// SPDX-License-Identifier: MIT
// The tcg back end: random IR blocks give the same state under tci and tcg; every op on edge values against
// tci; code cache full -> flush and retranslate; -d out_asm text.
#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <sstream>

#include "backend/x86_64/disas.h"
#include "fake_cpu.h"
#include "rig_engine.h"
#include "tcg.h"

using namespace keel::exec;
using namespace keel::irtest;
using keel::tcgtest::UseEngine;

namespace
{

using Ops = const KeelIrBuilderOps *;
using B = KeelIrBuilder *;

constexpr uint64_t kEdge[] = {0,
                              1,
                              2,
                              31,
                              32,
                              63,
                              64,
                              0x7f,
                              0x80,
                              0xff,
                              0x7fff,
                              0x8000,
                              0xffff,
                              0x7fffffff,
                              0x80000000,
                              0xffffffff,
                              0x100000000,
                              0x123456789abcdef0ull,
                              0x7fffffffffffffffull,
                              0x8000000000000000ull,
                              0xfffffffffffffffeull,
                              0xffffffffffffffffull};

// The architectural state of the fake CPU and its data page, for comparing two runs.
struct State {
    uint64_t x[4];
    uint32_t w[3];
    uint32_t f0;
    uint64_t d0, pc;
    int exceptions;
    uint64_t exception_pc;
    std::vector<uint8_t> data;
    bool operator==(const State &) const = default;
};

std::string show(const State &s)
{
    std::ostringstream o;
    o << std::hex;
    for (int i = 0; i < 4; ++i)
        o << "x" << i << "=0x" << s.x[i] << " ";
    for (int i = 0; i < 3; ++i)
        o << "w" << i << "=0x" << s.w[i] << " ";
    o << "f0=0x" << s.f0 << " d0=0x" << s.d0 << " pc=0x" << s.pc << " exceptions=" << s.exceptions << " at 0x"
      << s.exception_pc;
    return o.str();
}

constexpr size_t kDataBytes = 2 * 4096;

State run_block(bool tci, const BlockFn &fn, uint64_t seed, bool optimize = true)
{
    UseEngine use(tci, 0, optimize);
    Rig r;
    r.blocks[kRam] = fn;
    std::mt19937_64 rng(seed);
    for (uint64_t &x : r.env.x)
        x = kEdge[rng() % std::size(kEdge)] ^ (rng() % 3 == 0 ? rng() : 0);
    for (uint32_t &w : r.env.w)
        w = static_cast<uint32_t>(kEdge[rng() % std::size(kEdge)]);
    r.env.f0 = static_cast<uint32_t>(rng());
    r.env.d0 = rng();
    uint8_t *data = r.ram(kData);
    for (size_t i = 0; i < kDataBytes; ++i)
        data[i] = static_cast<uint8_t>(rng());
    REQUIRE(r.run_from(kRam) == 0);
    State s{};
    std::memcpy(s.x, r.env.x, sizeof s.x);
    std::memcpy(s.w, r.env.w, sizeof s.w);
    s.f0 = r.env.f0;
    s.d0 = r.env.d0;
    s.pc = r.env.pc;
    s.exceptions = r.env.exceptions;
    s.exception_pc = r.env.exception_pc;
    s.data.assign(data, data + kDataBytes);
    return s;
}

const KeelIrAluOp kBinOps[] = {KEEL_IR_ADD,    KEEL_IR_SUB,  KEEL_IR_MUL,  KEEL_IR_MULHS, KEEL_IR_MULHU,
                               KEEL_IR_MULHSU, KEEL_IR_DIVS, KEEL_IR_DIVU, KEEL_IR_REMS,  KEEL_IR_REMU,
                               KEEL_IR_AND,    KEEL_IR_OR,   KEEL_IR_XOR,  KEEL_IR_ANDC,  KEEL_IR_ORC,
                               KEEL_IR_XNOR,   KEEL_IR_SHL,  KEEL_IR_SHR,  KEEL_IR_SAR,   KEEL_IR_ROTL,
                               KEEL_IR_ROTR,   KEEL_IR_MINS, KEEL_IR_MINU, KEEL_IR_MAXS,  KEEL_IR_MAXU};
const KeelIrAluOp kUnOps[] = {KEEL_IR_MOV,   KEEL_IR_NOT,    KEEL_IR_NEG,   KEEL_IR_CLZ,
                              KEEL_IR_CTZ,   KEEL_IR_CTPOP,  KEEL_IR_BSWAP, KEEL_IR_EXT8S,
                              KEEL_IR_EXT8U, KEEL_IR_EXT16S, KEEL_IR_EXT16U};

// A random block over the fake CPU's globals: ALU ops of both widths with register and constant operands,
// conversions, setcond/movcond, forward branches, loads and stores (misaligned and page-crossing ones too)
// into the data pages, a MAY_RAISE helper that sometimes raises, and an exit.
BlockFn random_block(uint64_t seed, unsigned n_ops)
{
    return [seed, n_ops](B b, Ops o, uint64_t pc) {
        std::mt19937_64 rng(seed);
        auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
        std::vector<KeelIrValue> v64 = {o->global(b, X0), o->global(b, X1), o->global(b, X2),
                                        o->global(b, X3)};
        std::vector<KeelIrValue> v32 = {o->global(b, W0), o->global(b, W1), o->global(b, W2)};
        for (int i = 0; i < 3; ++i) {
            KeelIrValue t = o->temp(b, KEEL_IR_I64);
            o->alu(b, KEEL_IR_MOV, t, o->const_int(b, KEEL_IR_I64, kEdge[pick(std::size(kEdge))]), 0);
            v64.push_back(t);
            KeelIrValue u = o->temp(b, KEEL_IR_I32);
            o->alu(b, KEEL_IR_MOV, u, o->const_int(b, KEEL_IR_I32, kEdge[pick(std::size(kEdge))]), 0);
            v32.push_back(u);
        }
        auto src = [&](bool w64) -> KeelIrValue {
            if (rng() % 4 == 0)
                return o->const_int(b, w64 ? KEEL_IR_I64 : KEEL_IR_I32, kEdge[pick(std::size(kEdge))]);
            auto &l = w64 ? v64 : v32;
            return l[pick(l.size())];
        };
        auto dst = [&](bool w64) -> KeelIrValue {
            auto &l = w64 ? v64 : v32;
            return l[pick(l.size())];
        };
        std::vector<KeelIrLabel> open; // forward branches waiting for their label
        uint64_t at = pc;
        for (unsigned i = 0; i < n_ops; ++i) {
            if (rng() % 6 == 0) {
                at += 4;
                o->insn_start(b, at, 4, 0);
            }
            if (!open.empty() && rng() % 5 == 0) {
                o->set_label(b, open.back());
                open.pop_back();
            }
            bool w64 = rng() % 2;
            unsigned k = static_cast<unsigned>(pick(100));
            if (k < 40) {
                o->alu(b, kBinOps[pick(std::size(kBinOps))], dst(w64), src(w64), src(w64));
            } else if (k < 50) {
                KeelIrValue a = src(w64);
                if (w64 && rng() % 3 == 0) {
                    o->alu(b, rng() % 2 ? KEEL_IR_EXT32S : KEEL_IR_EXT32U, dst(true), a, 0);
                } else {
                    o->alu(b, kUnOps[pick(std::size(kUnOps))], dst(w64), a, 0);
                }
            } else if (k < 56) {
                switch (pick(3)) {
                case 0:
                    o->alu(b, KEEL_IR_EXTS_I32_I64, dst(true), src(false), 0);
                    break;
                case 1:
                    o->alu(b, KEEL_IR_EXTU_I32_I64, dst(true), src(false), 0);
                    break;
                default:
                    o->alu(b, KEEL_IR_TRUNC_I64_I32, dst(false), src(true), 0);
                    break;
                }
            } else if (k < 62) {
                bool cw = rng() % 2;
                o->setcond(b, static_cast<KeelIrCond>(pick(10)), dst(w64), src(cw), src(cw));
            } else if (k < 68) {
                bool cw = rng() % 2;
                o->movcond(b, static_cast<KeelIrCond>(pick(10)), dst(w64), src(cw), src(cw), src(w64),
                           src(w64));
            } else if (k < 74) {
                KeelIrLabel l = o->label(b);
                bool cw = rng() % 2;
                o->brcond(b, static_cast<KeelIrCond>(pick(10)), src(cw), src(cw), l);
                open.push_back(l);
            } else if (k < 96) {
                // Guest memory: an address in the data pages, sometimes misaligned or crossing into page 2.
                uint64_t off = rng() % 3 == 0 ? 4096 - 1 - pick(7) : pick(kDataBytes - 8);
                KeelIrValue addr = o->temp(b, KEEL_IR_I64);
                o->alu(b, KEEL_IR_MOV, addr, o->const_int(b, KEEL_IR_I64, kData + off), 0);
                KeelIrMemOp mop = static_cast<KeelIrMemOp>(pick(4));
                if (rng() % 2) mop |= KEEL_MO_SIGN;
                if (rng() % 8 == 0) mop |= KEEL_MO_ALIGN; // faults when misaligned
                if (k < 86) {
                    if (rng() % 6 == 0) mop |= KEEL_MO_RMW;
                    o->load(b, dst(w64 || (mop & KEEL_MO_SIZE_MASK) == KEEL_MO_64), addr, mop, 0);
                } else {
                    o->store(b, src(w64 || (mop & KEEL_MO_SIZE_MASK) == KEEL_MO_64), addr,
                             mop & ~KEEL_MO_SIGN, 0);
                }
            } else if (k < 98) {
                // host memory: a field of env
                KeelIrValue e = o->env(b);
                o->load_host(b, dst(true), e, static_cast<int64_t>(offsetof(FakeEnv, x) + 8 * pick(4)),
                             KEEL_MO_64);
                o->store_host(b, src(false), e, static_cast<int64_t>(offsetof(FakeEnv, w) + 4 * pick(3)),
                              KEEL_MO_32);
            } else {
                // A rare early exit through the pc global.
                KeelIrLabel skip = o->label(b);
                o->brcond(b, KEEL_IR_NE, src(true), o->const_int(b, KEEL_IR_I64, 0x123), skip);
                o->alu(b, KEEL_IR_MOV, o->global(b, PC), o->const_int(b, KEEL_IR_I64, kStopPc), 0);
                o->exit_tb(b);
                o->set_label(b, skip);
            }
        }
        while (!open.empty()) {
            o->set_label(b, open.back());
            open.pop_back();
        }
        o->alu(b, KEEL_IR_MOV, o->global(b, PC), o->const_int(b, KEEL_IR_I64, kStopPc), 0);
        o->exit_tb(b);
    };
}

} // namespace

TEST_CASE("tcg: random IR blocks leave the same state and memory as under tci", "[tcg][diff]")
{
    // With the opt/ passes (the default) and without them (the back end alone).
    bool optimize = GENERATE(true, false);
    INFO("optimize " << optimize);
    unsigned mismatches = 0, ran_through = 0;
    for (uint64_t seed = 1; seed <= 300; ++seed) {
        BlockFn fn = random_block(seed, 60);
        State ref = run_block(true, fn, seed);
        State got = run_block(false, fn, seed, optimize);
        ran_through += ref.exceptions == 0;
        if (ref == got) continue;
        ++mismatches;
        // The smallest op count that still differs: the reproducer.
        unsigned n = 1;
        for (; n < 60; ++n)
            if (!(run_block(true, random_block(seed, n), seed) ==
                  run_block(false, random_block(seed, n), seed)))
                break;
        INFO("seed " << seed << ": first differs with " << n << " ops\n tci " << show(ref) << "\n tcg "
                     << show(got) << (ref.data != got.data ? "\n (data pages differ)" : ""));
        CHECK(ref == got);
        if (mismatches > 3) break;
    }
    CHECK(mismatches == 0);
    CHECK(ran_through > 100); // most blocks run to their end rather than stopping at a fault
}

TEST_CASE("tcg: a full code cache is flushed and blocks are translated again", "[tcg][cache]")
{
    // A cache of 64 KiB holds a few dozen of these blocks: running 200 different ones twice overflows it
    // several times; every result must still be right.
    UseEngine use(false, 64 * 1024);
    Rig r;
    constexpr unsigned kBlocks = 200;
    for (unsigned i = 0; i < kBlocks; ++i) {
        uint64_t pc = kRam + 0x100 * i;
        uint64_t next = i + 1 < kBlocks ? pc + 0x100 : kStopPc;
        r.blocks[pc] = [i, next](B b, Ops o, uint64_t) {
            KeelIrValue x0 = o->global(b, X0), x1 = o->global(b, X1);
            for (unsigned k = 0; k < 40; ++k) { // (x1 looks at each sum: the additions cannot merge)
                o->alu(b, KEEL_IR_ADD, x0, x0, o->const_int(b, KEEL_IR_I64, i + k));
                o->alu(b, KEEL_IR_XOR, x1, x1, x0);
            }
            o->alu(b, KEEL_IR_MOV, o->global(b, PC), o->const_int(b, KEEL_IR_I64, next), 0);
            o->lookup_and_goto(b);
        };
    }
    uint64_t want = 0;
    for (unsigned i = 0; i < kBlocks; ++i)
        for (unsigned k = 0; k < 40; ++k)
            want += i + k;
    for (int round = 0; round < 2; ++round) {
        r.env.x[0] = 0;
        REQUIRE(r.run_from(kRam) == 0);
        CHECK(r.env.x[0] == want);
    }
    keel::tcg::EngineStats st = keel::tcg::engine_stats(r.core->engine());
    CHECK(st.cache_flushes >= 2);
    CHECK(st.blocks_compiled > kBlocks);
    CHECK(st.cache_used <= 64 * 1024);
    // Blocks were translated again after each flush.
    CHECK(r.translations[kRam] >= 2);
}

TEST_CASE("tcg: blocks with more temporaries than the first frame", "[tcg][temps]")
{
    Rig r;
    r.blocks[kRam] = [](B b, Ops o, uint64_t) {
        std::vector<KeelIrValue> t;
        for (unsigned i = 0; i < 3000; ++i) {
            t.push_back(o->temp(b, KEEL_IR_I64));
            o->alu(b, KEEL_IR_MOV, t.back(), o->const_int(b, KEEL_IR_I64, i), 0);
        }
        KeelIrValue x0 = o->global(b, X0);
        o->alu(b, KEEL_IR_MOV, x0, o->const_int(b, KEEL_IR_I64, 0), 0);
        for (KeelIrValue v : t)
            o->alu(b, KEEL_IR_ADD, x0, x0, v);
        o->alu(b, KEEL_IR_MOV, o->global(b, PC), o->const_int(b, KEEL_IR_I64, kStopPc), 0);
        o->exit_tb(b);
    };
    REQUIRE(r.run_from(kRam) == 0);
    CHECK(r.env.x[0] == 2999ull * 3000 / 2);
}

TEST_CASE("tcg: -d out_asm shows host instructions", "[tcg][log]")
{
    const uint8_t code[] = {0x48, 0x89, 0xd8, 0xc3}; // mov rax, rbx; ret
    std::string s = keel::tcg::disassemble(code, sizeof code, 0x1000);
    INFO(s);
    if (s.find("no disassembler") != std::string::npos) {
        // Without libcapstone4: the bytes, with their addresses.
        CHECK(s.find("0x0000000000001000:  48 89 d8 c3") != std::string::npos);
    } else {
        CHECK(s.find("0x0000000000001000:  mov      rax, rbx") != std::string::npos);
        CHECK(s.find("0x0000000000001003:  ret") != std::string::npos);
    }
}

TEST_CASE("tcg: movcond with a constant zero operand keeps the comparison's flags", "[tcg][movcond]")
{
    // Loading a constant 0 is an xor on x86, which clobbers the flags: the back end must load the values
    // before it compares. 1 < 2 holds, so every cond that is true for (1, 2) picks x3, the others 0.
    const KeelIrCond conds[] = {KEEL_IR_LT, KEEL_IR_LE, KEEL_IR_LTU, KEEL_IR_LEU, KEEL_IR_NE,
                                KEEL_IR_EQ, KEEL_IR_GE, KEEL_IR_GT,  KEEL_IR_GEU, KEEL_IR_GTU};
    for (bool tci : {true, false}) {
        for (KeelIrCond cond : conds) {
            UseEngine use(tci, 0, false);
            Rig r;
            r.blocks[kRam] = [cond](B b, Ops o, uint64_t) {
                KeelIrValue zero = o->const_int(b, KEEL_IR_I64, 0);
                o->movcond(b, cond, o->global(b, X0), o->global(b, X1), o->global(b, X2), o->global(b, X3),
                           zero);
                // vt = 0 the other way round.
                o->movcond(b, cond, o->global(b, W0), o->global(b, X1), o->global(b, X2),
                           o->const_int(b, KEEL_IR_I32, 0), o->global(b, W1));
                o->alu(b, KEEL_IR_MOV, o->global(b, PC), o->const_int(b, KEEL_IR_I64, kStopPc), 0);
                o->exit_tb(b);
            };
            r.env.x[0] = 77;
            r.env.x[1] = 1;
            r.env.x[2] = 2;
            r.env.x[3] = 0x1234;
            r.env.w[0] = 99;
            r.env.w[1] = 0x55;
            REQUIRE(r.run_from(kRam) == 0);
            bool holds = cond == KEEL_IR_LT || cond == KEEL_IR_LE || cond == KEEL_IR_LTU ||
                         cond == KEEL_IR_LEU || cond == KEEL_IR_NE;
            INFO("tci " << tci << " cond " << int(cond));
            CHECK(r.env.x[0] == (holds ? 0x1234u : 0u));
            CHECK(r.env.w[0] == (holds ? 0u : 0x55u));
        }
    }
}

TEST_CASE("tcg: results straight into the destination register, globals updated in memory", "[tcg][alu]")
{
    // d = a op c with d, a and c all different (the three-address form), d = a op d (not in place), a
    // global updated once with a constant (in memory), and a constant to a global before an exit.
    for (bool tci : {true, false}) {
        UseEngine use(tci, 0, false);
        Rig r;
        r.blocks[kRam] = [](B b, Ops o, uint64_t) {
            KeelIrValue x0 = o->global(b, X0), x1 = o->global(b, X1), x2 = o->global(b, X2),
                        x3 = o->global(b, X3);
            KeelIrValue t = o->temp(b, KEEL_IR_I64);
            o->alu(b, KEEL_IR_SUB, t, x0, x1);                                // t = 100 - 7
            o->alu(b, KEEL_IR_SHL, x1, t, o->const_int(b, KEEL_IR_I64, 4));   // x1 = 93 << 4
            o->alu(b, KEEL_IR_SUB, x0, x2, x0);                               // x0 = 1000 - 100
            o->alu(b, KEEL_IR_EXT8S, o->global(b, W0), o->global(b, W1), 0);  // w0 = sext8(0x80) (32 bits)
            o->alu(b, KEEL_IR_ADD, x3, x3, o->const_int(b, KEEL_IR_I64, -5)); // in memory
            o->alu(b, KEEL_IR_XOR, o->global(b, W2), o->global(b, W2), o->const_int(b, KEEL_IR_I32, 0xff));
            o->alu(b, KEEL_IR_MOV, o->global(b, PC), o->const_int(b, KEEL_IR_I64, kStopPc), 0);
            o->exit_tb(b);
        };
        r.env.x[0] = 100;
        r.env.x[1] = 7;
        r.env.x[2] = 1000;
        r.env.x[3] = 3;
        r.env.w[0] = 1;
        r.env.w[1] = 0x180;
        r.env.w[2] = 0xf0f0f0f0;
        REQUIRE(r.run_from(kRam) == 0);
        INFO("tci " << tci);
        CHECK(r.env.x[0] == 900);
        CHECK(r.env.x[1] == 93u << 4);
        CHECK(r.env.x[2] == 1000);
        CHECK(r.env.x[3] == uint64_t(-2));
        CHECK(r.env.w[0] == 0xffffff80u);
        CHECK(r.env.w[1] == 0x180u);
        CHECK(r.env.w[2] == 0xf0f0f00fu);
    }
}

namespace
{

uint64_t h_add3(uint64_t a, uint64_t b, uint64_t c)
{
    return a + 10 * b + 100 * c;
}
uint64_t h_maybe_raise(void *env, uint64_t v)
{
    if (v == 1) static_cast<FakeEnv *>(env)->common.exception = 1;
    return v * 3;
}
const KeelIrHelper kAdd3 = {"add3",
                            reinterpret_cast<void (*)(void)>(h_add3),
                            1,
                            KEEL_IR_I64,
                            3,
                            {KEEL_IR_I64, KEEL_IR_I64, KEEL_IR_I64},
                            KEEL_HELPER_PURE,
                            {}};
const KeelIrHelper kMaybeRaise = {"maybe_raise",
                                  reinterpret_cast<void (*)(void)>(h_maybe_raise),
                                  1,
                                  KEEL_IR_I64,
                                  2,
                                  {KEEL_IR_PTR, KEEL_IR_I64},
                                  KEEL_HELPER_MAY_RAISE,
                                  {}};

} // namespace

TEST_CASE("tcg: dirty globals stay cached across helpers that do not look at them, and are exact when one "
          "raises",
          "[tcg][helper]")
{
    for (bool tci : {true, false}) {
        for (uint64_t x2 : {uint64_t(1), uint64_t(5)}) {
            UseEngine use(tci, 0, false);
            Rig r;
            r.blocks[kRam] = [](B b, Ops o, uint64_t pc) {
                KeelIrValue x0 = o->global(b, X0), x1 = o->global(b, X1), x2 = o->global(b, X2),
                            x3 = o->global(b, X3);
                o->alu(b, KEEL_IR_ADD, x0, x0, o->const_int(b, KEEL_IR_I64, 1)); // dirty in a register
                o->alu(b, KEEL_IR_ADD, x1, x1, x0);
                KeelIrValue a3[] = {x0, x1, o->const_int(b, KEEL_IR_I64, 7)};
                o->call(b, &kAdd3, x3, a3, 3); // pure: x0 and x1 need not be in memory
                o->insn_start(b, pc + 4, 4, 0);
                KeelIrValue args[] = {o->env(b), x2};
                o->call(b, &kMaybeRaise, x2, args, 2); // raises for 1: x0, x1, x3 must be in memory
                o->alu(b, KEEL_IR_ADD, x0, x0, x2);
                o->alu(b, KEEL_IR_MOV, o->global(b, PC), o->const_int(b, KEEL_IR_I64, kStopPc), 0);
                o->exit_tb(b);
            };
            r.env.x[0] = 10;
            r.env.x[1] = 20;
            r.env.x[2] = x2;
            REQUIRE(r.run_from(kRam) == 0);
            INFO("tci " << tci << " x2 " << x2);
            CHECK(r.env.x[1] == 31);
            CHECK(r.env.x[3] == 11 + 310 + 700);
            if (x2 == 1) {
                CHECK(r.env.exceptions == 1);
                CHECK(r.env.exception_pc == kRam + 4);
                CHECK(r.env.x[0] == 11);
                CHECK(r.env.x[2] == 1);
            } else {
                CHECK(r.env.exceptions == 0);
                CHECK(r.env.x[0] == 11 + 15);
                CHECK(r.env.x[2] == 15);
            }
        }
    }
}

TEST_CASE("tcg: inline counters count every instruction up to a fault, and leave cached globals alone",
          "[tcg][counter]")
{
    // Four instructions, each with a plugin-style inline counter; the third loads from x3 (faulting or
    // not). The counter must read 3 after a fault (the faulting instruction's own count ran before it), 4
    // otherwise, on both engines, and dirty globals around the counters must come out exact.
    static uint64_t counter;
    for (bool tci : {true, false}) {
        for (bool fault : {false, true}) {
            UseEngine use(tci);
            Rig r;
            r.blocks[kRam] = [](B b, Ops o, uint64_t pc) {
                auto count = [&] {
                    KeelIrValue t = o->temp(b, KEEL_IR_I64), p = o->const_ptr(b, &counter);
                    o->load_host(b, t, p, 0, KEEL_MO_64);
                    o->alu(b, KEEL_IR_ADD, t, t, o->const_int(b, KEEL_IR_I64, 1));
                    o->store_host(b, t, p, 0, KEEL_MO_64);
                };
                KeelIrValue x0 = o->global(b, X0), x1 = o->global(b, X1), x2 = o->global(b, X2);
                count();
                o->alu(b, KEEL_IR_ADD, x0, x0, o->const_int(b, KEEL_IR_I64, 1));
                o->insn_start(b, pc + 4, 4, 0);
                count();
                o->alu(b, KEEL_IR_ADD, x1, x1, x0);
                o->insn_start(b, pc + 8, 4, 0);
                count();
                KeelIrValue v = o->temp(b, KEEL_IR_I64);
                o->load(b, v, o->global(b, X3), KEEL_MO_64, 0);
                o->alu(b, KEEL_IR_MOV, x2, v, 0);
                o->insn_start(b, pc + 12, 4, 0);
                count();
                o->alu(b, KEEL_IR_ADD, x0, x0, x1);
                o->alu(b, KEEL_IR_MOV, o->global(b, PC), o->const_int(b, KEEL_IR_I64, kStopPc), 0);
                o->exit_tb(b);
            };
            counter = 0;
            r.env.x[0] = 10;
            r.env.x[1] = 20;
            r.env.x[3] = fault ? kData + 0x1000 : kData;
            r.env.unmapped_page = kData + 0x1000;
            std::memcpy(r.ram(kData), "\x2a\0\0\0\0\0\0\0", 8);
            REQUIRE(r.run_from(kRam) == 0);
            INFO("tci " << tci << " fault " << fault);
            CHECK(r.env.x[1] == 31);
            if (fault) {
                CHECK(counter == 3);
                CHECK(r.env.exception_pc == kRam + 8);
                CHECK(r.env.x[0] == 11);
            } else {
                CHECK(counter == 4);
                CHECK(r.env.x[2] == 42);
                CHECK(r.env.x[0] == 11 + 31);
            }
        }
    }
}
