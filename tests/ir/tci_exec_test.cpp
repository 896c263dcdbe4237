// SPDX-License-Identifier: MIT
// tci running hand-built blocks of the fake CPU: ALU semantics, conditions, guest memory, helpers, exits,
// chaining.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "../support/ir_reference.h"
#include "fake_cpu.h"

using namespace keel::exec;
using namespace keel::irtest;
namespace irref = keel::irref;

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
// Set pc and leave through exit_tb.
void exit_to(B b, Ops o, uint64_t pc)
{
    o->alu(b, KEEL_IR_MOV, g(b, o, PC), c64(b, o, pc), 0);
    o->exit_tb(b);
}

constexpr uint64_t kMin64 = 0x8000000000000000ull;
const uint64_t kValues[] = {0,          1,          2,          3,           31,
                            32,         33,         63,         64,          65,
                            0x7f,       0x80,       0xff,       0x8000,      0xffff,
                            0x7fffffff, 0x80000000, 0xffffffff, 0x100000000, 0x123456789abcdef0ull,
                            kMin64 - 1, kMin64,     ~0ull - 1,  ~0ull};

// Reference semantics written from ir.h's definitions, independent of the engine's.
uint64_t ref_alu(unsigned op, uint64_t a, uint64_t b, bool is64)
{
    return irref::alu_eval(static_cast<KeelIrAluOp>(op), is64 ? KEEL_IR_I64 : KEEL_IR_I32, a, b);
}

bool ref_cond(unsigned c, uint64_t a, uint64_t b, bool is64)
{
    return irref::cond_eval(static_cast<KeelIrCond>(c), is64 ? KEEL_IR_I64 : KEEL_IR_I32, a, b);
}

const unsigned kIntAluOps[] = {
    KEEL_IR_MOV,    KEEL_IR_ADD,    KEEL_IR_SUB,   KEEL_IR_MUL,   KEEL_IR_MULHS, KEEL_IR_MULHU,
    KEEL_IR_MULHSU, KEEL_IR_DIVS,   KEEL_IR_DIVU,  KEEL_IR_REMS,  KEEL_IR_REMU,  KEEL_IR_AND,
    KEEL_IR_OR,     KEEL_IR_XOR,    KEEL_IR_ANDC,  KEEL_IR_ORC,   KEEL_IR_XNOR,  KEEL_IR_NOT,
    KEEL_IR_NEG,    KEEL_IR_SHL,    KEEL_IR_SHR,   KEEL_IR_SAR,   KEEL_IR_ROTL,  KEEL_IR_ROTR,
    KEEL_IR_CLZ,    KEEL_IR_CTZ,    KEEL_IR_CTPOP, KEEL_IR_BSWAP, KEEL_IR_EXT8S, KEEL_IR_EXT8U,
    KEEL_IR_EXT16S, KEEL_IR_EXT16U, KEEL_IR_MINS,  KEEL_IR_MINU,  KEEL_IR_MAXS,  KEEL_IR_MAXU};

bool unary(unsigned op)
{
    static const unsigned kUnary[] = {KEEL_IR_MOV,   KEEL_IR_NOT,    KEEL_IR_NEG,    KEEL_IR_CLZ,
                                      KEEL_IR_CTZ,   KEEL_IR_CTPOP,  KEEL_IR_BSWAP,  KEEL_IR_EXT8S,
                                      KEEL_IR_EXT8U, KEEL_IR_EXT16S, KEEL_IR_EXT16U, KEEL_IR_EXT32S,
                                      KEEL_IR_EXT32U};
    for (unsigned u : kUnary)
        if (u == op) return true;
    return false;
}

} // namespace

TEST_CASE("tci: every integer ALU op, both widths, register and immediate operands", "[tci][alu]")
{
    Rig r;
    // One block per (op, width, immediate form); pc encodes them. x0/x1 (or w0/w1) in, x2 (w2) and x3 (imm)
    // out.
    std::vector<std::tuple<unsigned, bool, uint64_t>> cases; // op, is64, immediate operand
    uint64_t pc = kRam;
    std::map<std::tuple<unsigned, bool, uint64_t>, uint64_t> pcs;
    for (bool is64 : {false, true}) {
        for (unsigned op : kIntAluOps) {
            for (uint64_t imm : {uint64_t(0), uint64_t(1), uint64_t(31), uint64_t(32), uint64_t(63),
                                 uint64_t(64), uint64_t(0xffffffff), ~uint64_t(0), kMin64}) {
                pcs[{op, is64, imm}] = pc;
                r.blocks[pc] = [op, is64, imm](B b, Ops o, uint64_t) {
                    bool u = unary(op);
                    KeelIrValue d = g(b, o, is64 ? X2 : W2), a = g(b, o, is64 ? X0 : W0);
                    KeelIrValue c = u ? 0 : g(b, o, is64 ? X1 : W1);
                    o->alu(b, static_cast<KeelIrAluOp>(op), d, a, c);
                    // The same with a constant second operand (the engine's immediate forms).
                    KeelIrValue t = o->temp(b, is64 ? KEEL_IR_I64 : KEEL_IR_I32);
                    o->alu(b, static_cast<KeelIrAluOp>(op), t, a,
                           u ? 0 : o->const_int(b, is64 ? KEEL_IR_I64 : KEEL_IR_I32, imm));
                    if (is64) {
                        o->alu(b, KEEL_IR_MOV, g(b, o, X3), t, 0);
                    } else {
                        o->alu(b, KEEL_IR_EXTU_I32_I64, g(b, o, X3), t, 0);
                    }
                    exit_to(b, o, kStopPc);
                };
                pc += 4;
                if (unary(op)) break;
            }
        }
    }
    for (auto &[key, at] : pcs) {
        auto [op, is64, imm] = key;
        for (uint64_t a : kValues) {
            for (uint64_t bv : kValues) {
                r.env.x[0] = a;
                r.env.x[1] = bv;
                r.env.w[0] = static_cast<uint32_t>(a);
                r.env.w[1] = static_cast<uint32_t>(bv);
                r.env.w[2] = 0xdeadbeef;
                r.env.x[2] = 0xdeadbeef;
                REQUIRE(r.run_from(at) == 0);
                INFO("op " << keel::exec::alu_name(op) << (is64 ? " i64" : " i32") << " a=0x" << std::hex << a
                           << " b=0x" << bv << " imm=0x" << imm);
                uint64_t got = is64 ? r.env.x[2] : r.env.w[2];
                REQUIRE(got == ref_alu(op, a, bv, is64));
                REQUIRE(r.env.x[3] == ref_alu(op, a, imm, is64));
                if (!is64) REQUIRE(r.env.x[2] == 0xdeadbeef); // I32 writes stay in their 4 bytes
                if (unary(op)) break;
            }
        }
    }
    // Each block was translated once and then found in the cache.
    for (auto &[key, at] : pcs)
        CHECK(r.translations[at] == 1);
}

TEST_CASE("tci: the total-semantics edge cases of ir.h", "[tci][alu]")
{
    Rig r;
    struct Case {
        unsigned op;
        bool is64;
        uint64_t a, b, want;
    };
    const Case cases[] = {
        {KEEL_IR_DIVU, true, 7, 0, ~0ull},
        {KEEL_IR_DIVS, true, 7, 0, ~0ull},
        {KEEL_IR_REMU, true, 7, 0, 7},
        {KEEL_IR_REMS, true, static_cast<uint64_t>(-7), 0, static_cast<uint64_t>(-7)},
        {KEEL_IR_DIVS, true, kMin64, ~0ull, kMin64},
        {KEEL_IR_REMS, true, kMin64, ~0ull, 0},
        {KEEL_IR_DIVU, false, 7, 0, 0xffffffff},
        {KEEL_IR_DIVS, false, 0x80000000, 0xffffffff, 0x80000000},
        {KEEL_IR_REMS, false, 0x80000000, 0xffffffff, 0},
        {KEEL_IR_REMU, false, 9, 0, 9},
        {KEEL_IR_SHL, true, 1, 64, 1},
        {KEEL_IR_SHL, true, 1, 65, 2},
        {KEEL_IR_SHR, false, 0x80000000, 32, 0x80000000},
        {KEEL_IR_SAR, false, 0x80000000, 63, 0xffffffff},
        {KEEL_IR_ROTL, true, 0x8000000000000001ull, 1, 3},
        {KEEL_IR_CLZ, true, 0, 0, 64},
        {KEEL_IR_CLZ, false, 0, 0, 32},
        {KEEL_IR_CTZ, true, 0, 0, 64},
        {KEEL_IR_CTZ, false, 0, 0, 32},
        {KEEL_IR_MULHSU, true, ~0ull, ~0ull, ~0ull},
        {KEEL_IR_MULHU, true, ~0ull, ~0ull, ~0ull - 1},
    };
    uint64_t pc = kRam;
    for (const Case &c : cases) {
        r.blocks[pc] = [c](B b, Ops o, uint64_t) {
            KeelIrValue a = g(b, o, c.is64 ? X0 : W0), bb = unary(c.op) ? 0 : g(b, o, c.is64 ? X1 : W1);
            o->alu(b, static_cast<KeelIrAluOp>(c.op), g(b, o, c.is64 ? X2 : W2), a,
                   c.op == KEEL_IR_CLZ || c.op == KEEL_IR_CTZ ? 0 : bb);
            exit_to(b, o, kStopPc);
        };
        r.env.x[0] = c.a;
        r.env.x[1] = c.b;
        r.env.w[0] = static_cast<uint32_t>(c.a);
        r.env.w[1] = static_cast<uint32_t>(c.b);
        REQUIRE(r.run_from(pc) == 0);
        INFO(keel::exec::alu_name(c.op) << " 0x" << std::hex << c.a << ", 0x" << c.b);
        CHECK((c.is64 ? r.env.x[2] : r.env.w[2]) == c.want);
        pc += 4;
    }
}

TEST_CASE("tci: conversions between widths and bitcasts", "[tci][alu]")
{
    Rig r;
    r.blocks[kRam] = [](B b, Ops o, uint64_t) {
        o->alu(b, KEEL_IR_EXTS_I32_I64, g(b, o, X0), g(b, o, W0), 0);
        o->alu(b, KEEL_IR_EXTU_I32_I64, g(b, o, X1), g(b, o, W0), 0);
        o->alu(b, KEEL_IR_TRUNC_I64_I32, g(b, o, W1), g(b, o, X3), 0);
        o->alu(b, KEEL_IR_EXT32S, g(b, o, X2), g(b, o, X3), 0);
        o->alu(b, KEEL_IR_BITCAST, g(b, o, F0), g(b, o, W2), 0);
        o->alu(b, KEEL_IR_BITCAST, g(b, o, D0), g(b, o, X3), 0);
        exit_to(b, o, kStopPc);
    };
    r.env.w[0] = 0x80000001;
    r.env.w[2] = 0x3f800000;
    r.env.x[3] = 0x12345678fedcba98ull;
    REQUIRE(r.run_from(kRam) == 0);
    CHECK(r.env.x[0] == 0xffffffff80000001ull);
    CHECK(r.env.x[1] == 0x80000001ull);
    CHECK(r.env.w[1] == 0xfedcba98u);
    CHECK(r.env.x[2] == 0xfffffffffedcba98ull);
    CHECK(r.env.f0 == 0x3f800000u);
    CHECK(r.env.d0 == 0x12345678fedcba98ull);
}

TEST_CASE("tci: setcond, movcond and brcond under every condition", "[tci][cond]")
{
    Rig r;
    for (bool is64 : {false, true}) {
        for (unsigned cond = KEEL_IR_EQ; cond <= KEEL_IR_GTU; ++cond) {
            uint64_t pc = kRam + 0x100 * cond + (is64 ? 0x10000 : 0);
            r.blocks[pc] = [cond, is64](B b, Ops o, uint64_t) {
                auto cc = static_cast<KeelIrCond>(cond);
                KeelIrValue a = g(b, o, is64 ? X0 : W0), c = g(b, o, is64 ? X1 : W1);
                o->setcond(b, cc, g(b, o, X2), a, c);
                o->movcond(b, cc, g(b, o, X3), a, c, c64(b, o, 111), c64(b, o, 222));
                // brcond with a register and with an immediate (against 0x80000000).
                KeelIrLabel taken = o->label(b), done = o->label(b), taken2 = o->label(b),
                            done2 = o->label(b);
                o->brcond(b, cc, a, c, taken);
                o->alu(b, KEEL_IR_MOV, g(b, o, W2), o->const_int(b, KEEL_IR_I32, 0), 0);
                o->br(b, done);
                o->set_label(b, taken);
                o->alu(b, KEEL_IR_MOV, g(b, o, W2), o->const_int(b, KEEL_IR_I32, 1), 0);
                o->set_label(b, done);
                o->brcond(b, cc, a, o->const_int(b, is64 ? KEEL_IR_I64 : KEEL_IR_I32, 0x80000000), taken2);
                o->alu(b, KEEL_IR_MOV, g(b, o, W1), o->const_int(b, KEEL_IR_I32, 0), 0);
                o->br(b, done2);
                o->set_label(b, taken2);
                o->alu(b, KEEL_IR_MOV, g(b, o, W1), o->const_int(b, KEEL_IR_I32, 1), 0);
                o->set_label(b, done2);
                exit_to(b, o, kStopPc);
            };
            for (uint64_t a : kValues) {
                for (uint64_t c : kValues) {
                    r.env.x[0] = a;
                    r.env.x[1] = c;
                    r.env.w[0] = static_cast<uint32_t>(a);
                    r.env.w[1] = static_cast<uint32_t>(c);
                    REQUIRE(r.run_from(pc) == 0);
                    INFO(keel::exec::cond_name(cond)
                         << (is64 ? " i64 " : " i32 ") << std::hex << a << " " << c);
                    bool want = ref_cond(cond, a, c, is64);
                    REQUIRE(r.env.x[2] == (want ? 1u : 0u));
                    REQUIRE(r.env.x[3] == (want ? 111u : 222u));
                    REQUIRE(r.env.w[2] == (want ? 1u : 0u));
                    REQUIRE(r.env.w[1] == (ref_cond(cond, a, 0x80000000, is64) ? 1u : 0u));
                }
            }
        }
    }
}

TEST_CASE("tci: loads and stores of every size and sign through RAM", "[tci][mem]")
{
    Rig r;
    // Store x1 at [x0] with the size, then load it back unsigned into x2 and signed into x3, and into w0/w1.
    for (unsigned size = 0; size < 4; ++size) {
        uint64_t pc = kRam + 0x40 * size;
        r.blocks[pc] = [size](B b, Ops o, uint64_t) {
            KeelIrValue a = g(b, o, X0);
            o->store(b, g(b, o, X1), a, size, 0);
            o->load(b, g(b, o, X2), a, size, 1);
            o->load(b, g(b, o, X3), a, size | KEEL_MO_SIGN, 0);
            if (size < 3) {
                o->load(b, g(b, o, W0), a, size, 0);
                o->load(b, g(b, o, W1), a, size | KEEL_MO_SIGN, 0);
            }
            exit_to(b, o, kStopPc);
        };
        for (uint64_t v : kValues) {
            for (uint64_t addr : {kData, kData + 0x100 + (1u << size)}) {
                r.env.x[0] = addr;
                r.env.x[1] = v;
                REQUIRE(r.run_from(pc) == 0);
                unsigned bytes = 1u << size;
                uint64_t mask = bytes == 8 ? ~0ull : (uint64_t(1) << (8 * bytes)) - 1;
                uint64_t in_ram = 0;
                std::memcpy(&in_ram, r.ram(addr), bytes);
                INFO("size " << bytes << " value " << std::hex << v);
                CHECK(in_ram == (v & mask));
                CHECK(r.env.x[2] == (v & mask));
                unsigned shift = 64 - 8 * bytes;
                uint64_t sext = shift ? static_cast<uint64_t>(static_cast<int64_t>(v << shift) >> shift) : v;
                CHECK(r.env.x[3] == sext);
                if (size < 3) {
                    CHECK(r.env.w[0] == static_cast<uint32_t>(v & mask));
                    CHECK(r.env.w[1] == static_cast<uint32_t>(sext));
                }
                CHECK(r.env.exceptions == 0);
            }
        }
    }
}

TEST_CASE("tci: misaligned accesses are performed, also across a page", "[tci][mem]")
{
    Rig r;
    r.blocks[kRam] = [](B b, Ops o, uint64_t) {
        o->store(b, g(b, o, X1), g(b, o, X0), KEEL_MO_64, 0);
        o->load(b, g(b, o, X2), g(b, o, X0), KEEL_MO_64, 0);
        o->load(b, g(b, o, X3), g(b, o, X0), KEEL_MO_32 | KEEL_MO_SIGN, 0);
        exit_to(b, o, kStopPc);
    };
    for (uint64_t addr : {kData + 1, kData + 0xffd, kData + 0xfff, kData + 0x1ffc}) {
        std::memset(r.ram(kData), 0, 0x3000);
        r.env.x[0] = addr;
        r.env.x[1] = 0x8877665544332211ull;
        REQUIRE(r.run_from(kRam) == 0);
        INFO("address " << std::hex << addr);
        CHECK(r.env.exceptions == 0);
        for (unsigned i = 0; i < 8; ++i)
            CHECK(*r.ram(addr + i) == 0x11 * (i + 1));
        CHECK(*r.ram(addr - 1) == 0);
        CHECK(*r.ram(addr + 8) == 0);
        CHECK(r.env.x[2] == 0x8877665544332211ull);
        CHECK(r.env.x[3] == 0x44332211ull);
    }
}

TEST_CASE("tci: a fault in the second page of a crossing store changes nothing", "[tci][mem]")
{
    Rig r;
    r.env.unmapped_page = kData + 0x1000;
    r.blocks[kRam] = [](B b, Ops o, uint64_t) {
        o->alu(b, KEEL_IR_MOV, g(b, o, X2), c64(b, o, 5), 0);
        o->insn_start(b, kRam + 4, 4, 0);
        o->store(b, g(b, o, X1), g(b, o, X0), KEEL_MO_32, 0);
        o->alu(b, KEEL_IR_MOV, g(b, o, X3), c64(b, o, 7), 0);
        exit_to(b, o, kStopPc);
    };
    r.env.x[0] = kData + 0xffe;
    r.env.x[1] = 0xaabbccdd;
    REQUIRE(r.run_from(kRam) == 0);
    CHECK(r.env.exceptions == 1);
    CHECK(r.env.exception_pc == kRam + 4);
    CHECK(r.env.fault_vaddr == kData + 0x1000);
    CHECK(r.env.fault_access == KEEL_ACCESS_WRITE);
    CHECK(*r.ram(kData + 0xffe) == 0);
    CHECK(r.env.x[2] == 5); // written before the faulting instruction
    CHECK(r.env.x[3] == 0); // after it: never
}

TEST_CASE("tci: KEEL_MO_ALIGN faults and bus errors go to mem_fault with the insn's pc", "[tci][mem]")
{
    Rig r;
    struct Case {
        uint32_t memop;
        bool store;
        uint64_t addr;
        bool faults;
        KeelMemFault kind;
    };
    const Case cases[] = {
        {KEEL_MO_32 | KEEL_MO_ALIGN, false, kData + 2, true, KEEL_FAULT_UNALIGNED},
        {KEEL_MO_64 | KEEL_MO_ALIGN, true, kData + 4, true, KEEL_FAULT_UNALIGNED},
        {KEEL_MO_16 | KEEL_MO_ALIGN, false, kData + 2, false, KEEL_FAULT_BUS},
        {KEEL_MO_64, false, 0x40000000, true, KEEL_FAULT_BUS}, // nothing there
        {KEEL_MO_32, true, 0x40000000, true, KEEL_FAULT_BUS},
        {KEEL_MO_32, false, kMmio + 4, false, KEEL_FAULT_BUS}, // test-reg answers 32-bit accesses
        {KEEL_MO_8, false, kMmio + 4, true, KEEL_FAULT_BUS},   // and refuses the rest
        {KEEL_MO_16, true, kMmio + 4, true, KEEL_FAULT_BUS},
        // The read of a read-modify-write faults as the write it leads to.
        {KEEL_MO_32 | KEEL_MO_ALIGN | KEEL_MO_RMW, false, kData + 2, true, KEEL_FAULT_UNALIGNED},
        {KEEL_MO_64 | KEEL_MO_RMW, false, 0x40000000, true, KEEL_FAULT_BUS},
        {KEEL_MO_64 | KEEL_MO_ALIGN | KEEL_MO_RMW, false, kData + 8, false, KEEL_FAULT_BUS},
    };
    uint64_t pc = kRam;
    for (const Case &c : cases) {
        r.blocks[pc] = [c](B b, Ops o, uint64_t at) {
            o->alu(b, KEEL_IR_ADD, g(b, o, X3), g(b, o, X3), c64(b, o, 1));
            o->insn_start(b, at + 4, 4, 0);
            KeelIrValue t = o->temp(b, KEEL_IR_I64);
            if (c.store) {
                o->store(b, g(b, o, X1), g(b, o, X0), c.memop, 0);
                o->alu(b, KEEL_IR_MOV, t, g(b, o, X1), 0);
            } else {
                o->load(b, t, g(b, o, X0), c.memop, 0);
            }
            o->alu(b, KEEL_IR_MOV, g(b, o, X2), t, 0);
            exit_to(b, o, kStopPc);
        };
        r.env = FakeEnv{};
        r.env.x[0] = c.addr;
        r.env.x[1] = 0x5a5a5a5a;
        r.env.x[2] = 99;
        REQUIRE(r.run_from(pc) == 0);
        INFO("memop " << c.memop << (c.store ? " store at " : " load at ") << std::hex << c.addr);
        CHECK(r.env.x[3] == 1); // the first instruction completed
        if (c.faults) {
            CHECK(r.env.faults == 1);
            CHECK(r.env.fault_kind == c.kind);
            CHECK(r.env.fault_vaddr == c.addr);
            bool as_write = c.store || (c.memop & KEEL_MO_RMW);
            CHECK(r.env.fault_access == (as_write ? KEEL_ACCESS_WRITE : KEEL_ACCESS_READ));
            CHECK(r.env.exceptions == 1);
            CHECK(r.env.exception_pc == pc + 4);
            CHECK(r.env.x[2] == 99);
        } else {
            CHECK(r.env.faults == 0);
            CHECK(r.env.exceptions == 0);
            CHECK(r.env.x[2] != 99);
        }
        pc += 0x10;
    }
}

TEST_CASE("tci: MMIO goes through the bus on every access", "[tci][mem]")
{
    Rig r;
    r.blocks[kRam] = [](B b, Ops o, uint64_t) {
        KeelIrValue a = g(b, o, X0), t = o->temp(b, KEEL_IR_I64);
        o->store(b, g(b, o, X1), a, KEEL_MO_32, 0);
        o->load(b, t, a, KEEL_MO_32 | KEEL_MO_SIGN, 0);
        o->alu(b, KEEL_IR_ADD, g(b, o, X2), g(b, o, X2), t);
        exit_to(b, o, kStopPc);
    };
    r.env.x[0] = kMmio + 8;
    r.env.x[1] = 0x80000005;
    REQUIRE(r.run_from(kRam) == 0);
    CHECK(r.env.x[2] == 0xffffffff80000005ull);
    uint64_t v = 0;
    REQUIRE(r.machine->system_memory().read(kMmio + 8, 4, v) == KEEL_MEM_OK);
    CHECK(v == 0x80000005);
    // A device-side change is seen by the next load (nothing cached).
    REQUIRE(r.machine->system_memory().write(kMmio + 8, 4, 0x10) == KEEL_MEM_OK);
    r.env.x[1] = 0x20;
    r.env.x[2] = 0;
    r.blocks[kRam + 4] = [](B b, Ops o, uint64_t) {
        o->load(b, g(b, o, X2), g(b, o, X0), KEEL_MO_32, 0);
        exit_to(b, o, kStopPc);
    };
    REQUIRE(r.run_from(kRam + 4) == 0);
    CHECK(r.env.x[2] == 0x10);
}

TEST_CASE("tci: page_bits 0 fills are not cached", "[tci][mem]")
{
    Rig r;
    r.env.page_bits = 0;
    r.blocks[kRam] = [](B b, Ops o, uint64_t) {
        o->load(b, g(b, o, X2), g(b, o, X0), KEEL_MO_64, 0);
        o->load(b, g(b, o, X3), g(b, o, X0), KEEL_MO_64, 0);
        exit_to(b, o, kStopPc);
    };
    r.env.x[0] = kData;
    REQUIRE(r.run_from(kRam) == 0);
    int per_run = r.env.tlb_fills;
    REQUIRE(r.run_from(kRam) == 0);
    // Every load asked again (blocks are found by the jump cache, which a TLB flush empties).
    CHECK(r.env.tlb_fills - per_run == 2);
    r.env.page_bits = 12;
    r.core->tlb_flush(r.core->cpu(0));
    REQUIRE(r.run_from(kRam) == 0);
    int cached_start = r.env.tlb_fills;
    REQUIRE(r.run_from(kRam) == 0);
    CHECK(r.env.tlb_fills == cached_start);
}

namespace
{

uint64_t h_add3(uint64_t a, uint64_t b, uint64_t c)
{
    return a + 2 * b + 3 * c;
}
uint32_t h_mix32(uint32_t a, uint64_t b, uint32_t c)
{
    return a * 7 + static_cast<uint32_t>(b >> 32) + c;
}
double h_fp(void *env, double d, float f)
{
    return d * 2 + f + static_cast<double>(static_cast<FakeEnv *>(env)->x[0]);
}
float h_f32(float f)
{
    return f * 0.5f;
}
uint64_t h_seven(uint32_t a, uint64_t b, uint32_t c, uint64_t d, void *e, uint64_t f, uint32_t g7)
{
    return a + b * 10 + c * 100 + d * 1000 + (e ? 10000 : 0) + f * 100000 + g7 * 1000000;
}
int g_void_calls = 0;
void h_void(void *env)
{
    g_void_calls++;
    static_cast<FakeEnv *>(env)->x[3] = 42; // WRITES_GLOBALS: the next op must see it
}
void h_raise(void *env)
{
    static_cast<FakeEnv *>(env)->common.exception = 1;
}
void h_maybe(void *env, uint64_t v)
{
    if (v) static_cast<FakeEnv *>(env)->common.exception = 1;
}

#define FN(f) reinterpret_cast<void (*)(void)>(f)
const KeelIrHelper kAdd3 = {
    "add3", FN(h_add3), 1, KEEL_IR_I64, 3, {KEEL_IR_I64, KEEL_IR_I64, KEEL_IR_I64}, KEEL_HELPER_PURE, {}};
const KeelIrHelper kMix32 = {
    "mix32", FN(h_mix32), 1, KEEL_IR_I32, 3, {KEEL_IR_I32, KEEL_IR_I64, KEEL_IR_I32}, KEEL_HELPER_PURE, {}};
const KeelIrHelper kFp = {"fp", FN(h_fp), 1, KEEL_IR_F64, 3, {KEEL_IR_PTR, KEEL_IR_F64, KEEL_IR_F32}, 0, {}};
const KeelIrHelper kF32 = {"f32", FN(h_f32), 1, KEEL_IR_F32, 1, {KEEL_IR_F32}, 0, {}};
const KeelIrHelper kSeven = {
    "seven", FN(h_seven),
    1,       KEEL_IR_I64,
    7,       {KEEL_IR_I32, KEEL_IR_I64, KEEL_IR_I32, KEEL_IR_I64, KEEL_IR_PTR, KEEL_IR_I64, KEEL_IR_I32},
    0,       {}};
const KeelIrHelper kVoid = {"void", FN(h_void), 0, 0, 1, {KEEL_IR_PTR}, KEEL_HELPER_WRITES_GLOBALS, {}};
const KeelIrHelper kRaise = {"raise", FN(h_raise), 0, 0, 1, {KEEL_IR_PTR}, KEEL_HELPER_MAY_RAISE, {}};
const KeelIrHelper kMaybe = {"maybe", FN(h_maybe), 0, 0, 2, {KEEL_IR_PTR, KEEL_IR_I64}, KEEL_HELPER_MAY_RAISE,
                             {}};

} // namespace

TEST_CASE("tci: helpers of several signatures are called through libffi", "[tci][helper]")
{
    Rig r;
    g_void_calls = 0;
    r.blocks[kRam] = [](B b, Ops o, uint64_t) {
        KeelIrValue a3[] = {g(b, o, X0), g(b, o, X1), c64(b, o, 1000)};
        o->call(b, &kAdd3, g(b, o, X2), a3, 3);
        KeelIrValue m3[] = {g(b, o, W0), g(b, o, X1), o->const_int(b, KEEL_IR_I32, 5)};
        o->call(b, &kMix32, g(b, o, W2), m3, 3);
        KeelIrValue fp[] = {o->env(b), g(b, o, D0), g(b, o, F0)};
        o->call(b, &kFp, g(b, o, D0), fp, 3);
        KeelIrValue f1[] = {g(b, o, F0)};
        KeelIrValue ft = o->temp(b, KEEL_IR_F32);
        o->call(b, &kF32, ft, f1, 1);
        o->alu(b, KEEL_IR_MOV, g(b, o, F0), ft, 0);
        KeelIrValue s7[] = {o->const_int(b, KEEL_IR_I32, 1),
                            c64(b, o, 2),
                            o->const_int(b, KEEL_IR_I32, 3),
                            c64(b, o, 4),
                            o->env(b),
                            c64(b, o, 6),
                            o->const_int(b, KEEL_IR_I32, 7)};
        KeelIrValue t = o->temp(b, KEEL_IR_I64);
        o->call(b, &kSeven, t, s7, 7);
        KeelIrValue e = o->env(b);
        o->call(b, &kVoid, 0, &e, 1);
        o->alu(b, KEEL_IR_ADD, g(b, o, X3), g(b, o, X3), t);
        exit_to(b, o, kStopPc);
    };
    r.env.x[0] = 10;
    r.env.x[1] = 0x300000001ull;
    r.env.w[0] = 6;
    double d = 1.25;
    float f = 3.5f;
    std::memcpy(&r.env.d0, &d, 8);
    std::memcpy(&r.env.f0, &f, 4);
    REQUIRE(r.run_from(kRam) == 0);
    CHECK(r.env.x[2] == 10 + 2 * 0x300000001ull + 3000);
    CHECK(r.env.w[2] == 6 * 7 + 3 + 5);
    double dr;
    float fr;
    std::memcpy(&dr, &r.env.d0, 8);
    std::memcpy(&fr, &r.env.f0, 4);
    CHECK(dr == 1.25 * 2 + 3.5 + 10);
    CHECK(fr == 1.75f);
    CHECK(r.env.x[3] == 42 + 7614321); // 1 + 2*10 + 3*100 + 4*1000 + 10000 + 6*100000 + 7*1000000
    CHECK(g_void_calls == 1);
}

TEST_CASE("tci: a MAY_RAISE helper that raised leaves the block with the insn's pc", "[tci][helper]")
{
    Rig r;
    r.blocks[kRam] = [](B b, Ops o, uint64_t pc) {
        o->alu(b, KEEL_IR_MOV, g(b, o, X0), c64(b, o, 1), 0);
        o->insn_start(b, pc + 4, 4, 0);
        KeelIrValue args[] = {o->env(b), g(b, o, X2)};
        o->call(b, &kMaybe, 0, args, 2);
        o->alu(b, KEEL_IR_MOV, g(b, o, X1), c64(b, o, 2), 0);
        o->insn_start(b, pc + 8, 4, 0);
        KeelIrValue e = o->env(b);
        o->call(b, &kRaise, 0, &e, 1);
        o->alu(b, KEEL_IR_MOV, g(b, o, X3), c64(b, o, 3), 0);
        exit_to(b, o, kStopPc);
    };
    r.env.x[2] = 1;
    REQUIRE(r.run_from(kRam) == 0);
    CHECK(r.env.exceptions == 1);
    CHECK(r.env.exception_pc == kRam + 4);
    CHECK(r.env.x[0] == 1);
    CHECK(r.env.x[1] == 0);
    CHECK(r.env.common.exception == 0); // cleared by the engine before exec_exception
    r.env = FakeEnv{};
    REQUIRE(r.run_from(kRam) == 0);
    CHECK(r.env.exceptions == 1);
    CHECK(r.env.exception_pc == kRam + 8);
    CHECK(r.env.x[1] == 2);
    CHECK(r.env.x[3] == 0);
}

TEST_CASE("tci: goto_tb chains blocks, lookup_and_goto finds them, invalidation unlinks", "[tci][chain]")
{
    Rig r;
    // A: x0 += 1; if x0 < x1 goto B (same page, slot 0) else exit to stop. B: x2 += 1; goto A (slot 1).
    const uint64_t A = kRam + 0x100, Bpc = kRam + 0x200;
    r.blocks[A] = [&](B b, Ops o, uint64_t) {
        KeelIrValue x0 = g(b, o, X0);
        o->alu(b, KEEL_IR_ADD, x0, x0, c64(b, o, 1));
        KeelIrLabel out = o->label(b);
        o->brcond(b, KEEL_IR_GEU, x0, g(b, o, X1), out);
        o->alu(b, KEEL_IR_MOV, g(b, o, PC), c64(b, o, Bpc), 0);
        o->goto_tb(b, 0);
        o->set_label(b, out);
        exit_to(b, o, kStopPc);
    };
    r.blocks[Bpc] = [&](B b, Ops o, uint64_t) {
        o->alu(b, KEEL_IR_ADD, g(b, o, X2), g(b, o, X2), c64(b, o, 1));
        o->alu(b, KEEL_IR_MOV, g(b, o, PC), c64(b, o, A), 0);
        o->goto_tb(b, 1);
    };
    r.env.x[1] = 100000;
    REQUIRE(r.run_from(A) == 0);
    CHECK(r.env.x[0] == 100000);
    CHECK(r.env.x[2] == 99999);
    CHECK(r.translations[A] == 1);
    CHECK(r.translations[Bpc] == 1);
    CpuState &c = r.core->cpu(0);
    Tb *ta = jc_lookup(c, A, 0), *tb = jc_lookup(c, Bpc, 0);
    REQUIRE(ta);
    REQUIRE(tb);
    CHECK(ta->jmp[0] == tb);
    CHECK(tb->jmp[1] == ta);
    // A store into the page of A drops A, and B's link to it.
    uint64_t before = r.core->tb_count();
    r.blocks[kRam + 0x3000] = [&](B b, Ops o, uint64_t) {
        o->store(b, c64(b, o, 0), c64(b, o, A + 0x80), KEEL_MO_32, 0);
        exit_to(b, o, kStopPc);
    };
    REQUIRE(r.run_from(kRam + 0x3000) == 0);
    CHECK(jc_lookup(c, A, 0) == nullptr);
    CHECK(jc_lookup(c, Bpc, 0) == nullptr);  // same page
    CHECK(r.core->tb_count() == before + 1); // the store block only
    r.env.x[0] = 0;
    r.env.x[1] = 10;
    REQUIRE(r.run_from(A) == 0);
    CHECK(r.env.x[0] == 10);
    CHECK(r.translations[A] == 2);
    CHECK(r.translations[Bpc] == 2);
    // Indirect jumps: lookup_and_goto.
    const uint64_t L = kRam + 0x5000;
    r.blocks[L] = [&](B b, Ops o, uint64_t) {
        KeelIrValue x0 = g(b, o, X0);
        o->alu(b, KEEL_IR_ADD, x0, x0, c64(b, o, 1));
        KeelIrValue t = o->temp(b, KEEL_IR_I64);
        o->setcond(b, KEEL_IR_LTU, t, x0, g(b, o, X1));
        // pc = t ? L : stop, computed
        o->movcond(b, KEEL_IR_NE, g(b, o, PC), t, c64(b, o, 0), c64(b, o, L), c64(b, o, kStopPc));
        o->lookup_and_goto(b);
    };
    r.env.x[0] = 0;
    r.env.x[1] = 50000;
    REQUIRE(r.run_from(L) == 0);
    CHECK(r.env.x[0] == 50000);
    CHECK(r.translations[L] == 1);
}

TEST_CASE("tci: stop() ends run() even in an endless chained loop, exit_request reaches exec_interrupt",
          "[tci][chain]")
{
    Rig r;
    r.blocks[kRam] = [](B b, Ops o, uint64_t pc) {
        o->alu(b, KEEL_IR_ADD, g(b, o, X0), g(b, o, X0), c64(b, o, 1));
        o->alu(b, KEEL_IR_MOV, g(b, o, PC), c64(b, o, pc), 0);
        o->goto_tb(b, 0);
    };
    // exit_request from another thread: exec_interrupt runs, then the loop goes on.
    std::atomic<int> seen{0};
    r.on_interrupt = [&](FakeEnv &) { seen++; };
    std::thread t([&] {
        while (r.env.x[0] < 1000)
            std::this_thread::yield();
        r.env.common.exit_request = 1;
        while (seen.load() == 0)
            std::this_thread::yield();
        r.core->stop();
    });
    auto t0 = std::chrono::steady_clock::now();
    CHECK(r.run_from(kRam) == 0);
    t.join();
    CHECK(seen.load() >= 1);
    CHECK(r.env.x[0] > 1000);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
    // And a stop() from inside (a helper) works too: the default block at kStopPc.
    CHECK(r.run_from(kStopPc) == 0);
}

TEST_CASE("tci: a halted CPU sleeps until kick() and has_work", "[tci][halt]")
{
    Rig r;
    r.blocks[kRam] = [](B b, Ops o, uint64_t) {
        o->store_host(b, o->const_int(b, KEEL_IR_I32, 1), o->env(b), offsetof(KeelCpuCommon, halted),
                      KEEL_MO_32);
        exit_to(b, o, kRam + 4);
    };
    r.blocks[kRam + 4] = [](B b, Ops o, uint64_t) {
        o->alu(b, KEEL_IR_ADD, g(b, o, X1), g(b, o, X1), c64(b, o, 1));
        exit_to(b, o, kStopPc);
    };
    std::atomic<bool> done{false};
    std::thread t([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        CHECK(r.env.x[1] == 0); // still asleep
        r.env.work = 1;
        r.core->kick(0);
        done = true;
    });
    CHECK(r.run_from(kRam) == 0);
    t.join();
    CHECK(done.load());
    CHECK(r.env.x[1] == 1);
    CHECK(r.env.common.halted == 0);
}

TEST_CASE("tci: stores into translated code invalidate it (self-modifying code)", "[tci][smc]")
{
    Rig r;
    // The block at P reads its own first word (through fetch) and puts it in x2.
    const uint64_t P = kRam + 0x1000;
    r.blocks[P] = [](B b, Ops o, uint64_t pc) {
        uint32_t word = 0;
        REQUIRE(o->fetch(b, pc, 4, &word) == KEEL_OK);
        o->alu(b, KEEL_IR_MOV, g(b, o, X2), c64(b, o, word), 0);
        exit_to(b, o, kStopPc);
    };
    // W stores x1 at P, then goes to P (same block would run stale code; the next one must not).
    const uint64_t W = kRam + 0x2000;
    r.blocks[W] = [&](B b, Ops o, uint64_t) {
        o->store(b, g(b, o, X1), c64(b, o, P), KEEL_MO_32, 0);
        exit_to(b, o, P);
    };
    std::memcpy(r.ram(P), "\x11\x22\x33\x44", 4);
    REQUIRE(r.run_from(P) == 0);
    CHECK(r.env.x[2] == 0x44332211);
    r.env.x[1] = 0xcafef00d;
    REQUIRE(r.run_from(W) == 0);
    CHECK(r.env.x[2] == 0xcafef00d);
    CHECK(r.translations[P] == 2);
    // Stores elsewhere in RAM leave it alone.
    r.blocks[W + 0x10] = [&](B b, Ops o, uint64_t) {
        o->store(b, g(b, o, X1), c64(b, o, kData), KEEL_MO_32, 0);
        exit_to(b, o, P);
    };
    REQUIRE(r.run_from(W + 0x10) == 0);
    CHECK(r.translations[P] == 2);
    // So do stores to data in the code's own page, next to the code (only the 4 bytes fetched are code).
    r.blocks[W + 0x20] = [&](B b, Ops o, uint64_t) {
        o->store(b, g(b, o, X1), c64(b, o, P + 4), KEEL_MO_32, 0);
        o->store(b, g(b, o, X1), c64(b, o, P + 0x800), KEEL_MO_64, 0);
        exit_to(b, o, P);
    };
    REQUIRE(r.run_from(W + 0x20) == 0);
    CHECK(r.translations[P] == 2);
    // A store overlapping the code by one byte is a code write.
    r.blocks[W + 0x30] = [&](B b, Ops o, uint64_t) {
        o->store(b, g(b, o, X1), c64(b, o, P - 1), KEEL_MO_16, 0);
        exit_to(b, o, P);
    };
    REQUIRE(r.run_from(W + 0x30) == 0);
    CHECK(r.translations[P] == 3);
    CHECK(r.env.x[2] == 0xcafef0f0);
    // tb_flush (fence.i) drops everything.
    r.core->tb_flush(r.core->cpu(0));
    REQUIRE(r.run_from(P) == 0);
    CHECK(r.translations[P] == 4);
}

TEST_CASE("tci: a fetch fault at the block start is an exception at that pc", "[tci][mem]")
{
    Rig r;
    r.env.unmapped_page = kRam + 0x7000;
    REQUIRE(r.run_from(kRam + 0x7010) == 0);
    CHECK(r.env.exceptions == 1);
    CHECK(r.env.exception_pc == kRam + 0x7010);
    CHECK(r.env.fault_access == KEEL_ACCESS_EXEC);
    CHECK(r.translations.count(kRam + 0x7010) == 0);
}

namespace
{

std::vector<std::string> g_events;
void h_before_insn(uint64_t pc)
{
    g_events.push_back("insn " + std::to_string(pc & 0xfff));
}
void h_before_mem(uint64_t addr)
{
    g_events.push_back("mem " + std::to_string(addr & 0xfff));
}
void h_after_mem(void *env)
{
    g_events.push_back("after x2=" + std::to_string(static_cast<FakeEnv *>(env)->x[2]));
}
const KeelIrHelper kBeforeInsn = {"before_insn", FN(h_before_insn), 0, 0, 1, {KEEL_IR_I64}, 0, {}};
const KeelIrHelper kBeforeMem = {"before_mem", FN(h_before_mem), 0, 0, 1, {KEEL_IR_I64}, 0, {}};
const KeelIrHelper kAfterMem = {"after_mem",   FN(h_after_mem),           0, 0, 1,
                                {KEEL_IR_PTR}, KEEL_HELPER_READS_GLOBALS, {}};

} // namespace

TEST_CASE("tci: instrumentation inserted with the cursor runs where it was put", "[tci][instrument]")
{
    Rig r;
    g_events.clear();
    uint64_t counter = 0;
    r.core->set_instrument([&](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
        unsigned n = o->num_insns(b);
        for (unsigned i = 0; i < n; ++i) {
            uint64_t pc;
            unsigned len, n_mem;
            uint32_t raw;
            o->insn_info(b, i, &pc, &len, &raw, &n_mem);
            o->set_cursor(b, KEEL_IR_BEFORE_INSN, i, 0);
            KeelIrValue pcv = c64(b, o, pc);
            o->call(b, &kBeforeInsn, 0, &pcv, 1);
            // An inline counter: *counter += 1.
            KeelIrValue p = o->const_ptr(b, &counter), t = o->temp(b, KEEL_IR_I64);
            o->load_host(b, t, p, 0, KEEL_MO_64);
            o->alu(b, KEEL_IR_ADD, t, t, c64(b, o, 1));
            o->store_host(b, t, p, 0, KEEL_MO_64);
            for (unsigned k = 0; k < n_mem; ++k) {
                KeelIrMemOp mop;
                int is_store;
                unsigned mmu;
                KeelIrValue addr;
                o->mem_info(b, i, k, &mop, &is_store, &mmu, &addr);
                o->set_cursor(b, KEEL_IR_BEFORE_MEM, i, k);
                o->call(b, &kBeforeMem, 0, &addr, 1);
                o->set_cursor(b, KEEL_IR_AFTER_MEM, i, k);
                KeelIrValue e = o->env(b);
                o->call(b, &kAfterMem, 0, &e, 1);
            }
        }
        o->set_cursor(b, KEEL_IR_AT_END, 0, 0);
    });
    r.blocks[kRam] = [](B b, Ops o, uint64_t pc) {
        o->alu(b, KEEL_IR_MOV, g(b, o, X2), c64(b, o, 7), 0);
        o->insn_start(b, pc + 4, 4, 0);
        o->load(b, g(b, o, X2), c64(b, o, kData + 8), KEEL_MO_64, 0);
        o->insn_start(b, pc + 8, 4, 0);
        o->store(b, g(b, o, X2), c64(b, o, kData + 16), KEEL_MO_64, 0);
        exit_to(b, o, kStopPc);
    };
    uint64_t v = 123;
    std::memcpy(r.ram(kData + 8), &v, 8);
    REQUIRE(r.run_from(kRam) == 0);
    const std::vector<std::string> want = {"insn 0", "insn 4", "mem 8",       "after x2=123",
                                           "insn 8", "mem 16", "after x2=123"};
    // The stop block is instrumented too: one more insn at its end.
    REQUIRE(g_events.size() == want.size() + 1);
    for (size_t i = 0; i < want.size(); ++i)
        CHECK(g_events[i] == want[i]);
    CHECK(counter == 4);
}

TEST_CASE("tci: an invalid block from the translator stops the engine with an internal error",
          "[tci][verifier]")
{
    Rig r;
    r.blocks[kRam] = [](B b, Ops o, uint64_t) {
        o->alu(b, KEEL_IR_ADD, g(b, o, X0), g(b, o, W0), g(b, o, X0)); // mixed types, and no exit
    };
    CHECK(r.run_from(kRam) == -1);
}
