// SPDX-License-Identifier: MIT
// Tests of the RISC-V translator: the shape of the IR it emits (exact text for representative instructions)
// and, through a small IR interpreter, what that IR computes.
#include <catch2/catch.hpp>

#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "decode.h"
#include "ir_recorder.h"
#include "rv_cpu.h"
#include "translate.h"

using namespace keel::rv;

extern int g_stub_tlb_fill_result;

namespace
{

constexpr uint64_t kBase = 0x80000000;
constexpr uint64_t kMisaImafdc = (1u << ('I' - 'A')) | (1u << ('M' - 'A')) | (1u << ('A' - 'A')) |
                                 (1u << ('F' - 'A')) | (1u << ('D' - 'A')) | (1u << ('C' - 'A'));

uint64_t flags(unsigned priv = PRV_M, unsigned fs = 3)
{
    return uint64_t{priv} << TBF_FETCH_SHIFT | uint64_t{priv} << TBF_DATA_SHIFT |
           uint64_t{fs} << TBF_FS_SHIFT;
}

uint32_t enc(Op op, unsigned rd, unsigned rs1, unsigned rs2, int64_t imm = 0)
{
    return encode(op, rd, rs1, rs2, imm);
}

uint32_t csr_insn(Op op, unsigned rd, unsigned rs1, unsigned csr)
{
    return enc(op, rd, rs1, 0) | csr << 20;
}

// One block: code, a hart state and the recorded IR.
struct Block {
    irrec::Recorder rec{kGlobals, NUM_GLOBALS};
    std::unique_ptr<RvCpu> cpu = std::make_unique<RvCpu>();
    std::vector<std::string> calls_seen;

    Block() { cpu->misa = kMisaImafdc; }

    void words(std::vector<uint32_t> ws, uint64_t at = kBase)
    {
        for (uint32_t w : ws) {
            if ((w & 3) == 3) {
                rec.put32(at, w);
                at += 4;
            } else {
                rec.put16(at, static_cast<uint16_t>(w));
                at += 2;
            }
        }
    }

    // Translates and checks the block; returns the IR text (without insn_start).
    std::string tr(uint64_t pc = kBase, uint64_t fl = flags(), unsigned max_insns = 512)
    {
        translate(cpu.get(), reinterpret_cast<KeelIrBuilder *>(&rec), &rec.ops, pc, fl, max_insns);
        rec.check_structure();
        std::string errs;
        for (const std::string &e : rec.errors)
            errs += e + "\n";
        INFO(rec.text(true));
        INFO(errs);
        REQUIRE(rec.errors.empty());
        return rec.text();
    }

    unsigned n_insns() const
    {
        unsigned n = 0;
        for (const irrec::IrOp &o : rec.ops_list)
            n += o.kind == irrec::OpKind::InsnStart;
        return n;
    }

    irrec::RunResult run() { return rec.run(cpu.get()); }
};

// Runs one instruction on x6 = a, x7 = b and returns x5.
uint64_t run_alu(uint32_t insn, uint64_t a, uint64_t b)
{
    Block t;
    t.words({insn});
    t.tr(kBase, flags(), 1);
    t.cpu->x[6] = a;
    t.cpu->x[7] = b;
    auto r = t.run();
    REQUIRE(t.rec.errors.empty());
    REQUIRE(r.kind == irrec::RunResult::GotoTb);
    REQUIRE(t.cpu->pc == kBase + 4);
    return t.cpu->x[5];
}

int64_t s32(uint64_t v)
{
    return static_cast<int32_t>(static_cast<uint32_t>(v));
}

} // namespace

TEST_CASE("x0 reads are constants, writes to x0 are dropped, identities fold", "[translate]")
{
    Block t;
    t.words({enc(Op::ADDI, 5, 0, 0, 5), enc(Op::ADD, 6, 5, 0), enc(Op::ADDI, 0, 5, 0, 1),
             enc(Op::SUB, 7, 0, 5), enc(Op::LB, 0, 5, 0, 0), enc(Op::ADDI, 0, 0, 0, 0) /* nop */});
    CHECK(t.tr(kBase, flags(), 6) == "mov x5, $0x5\n"
                                     "mov x6, x5\n"
                                     "neg x7, x5\n"
                                     "add instret, instret, $0x4\n" // before the access: it may fault
                                     "ld t0, x5, mo=8s, mmu=3\n"
                                     "add instret, instret, $0x2\n"
                                     "mov pc, $0x80000018\n"
                                     "goto_tb 0\n");
    for (const irrec::Value &v : t.rec.values)
        CHECK_FALSE((v.kind == irrec::VKind::Global && v.payload == 0)); // x0 is never named

    // Compressed forms expand to the same lean IR; insn_start carries the parcel.
    Block c;
    c.words({0x852e /* c.mv a0,a1 */, 0x4515 /* c.li a0,5 */, 0x0505 /* c.addi a0,1 */});
    CHECK(c.tr(kBase, flags(), 3) == "mov x10, x11\n"
                                     "mov x10, $0x5\n"
                                     "add x10, x10, $0x1\n"
                                     "add instret, instret, $0x3\n"
                                     "mov pc, $0x80000006\n"
                                     "goto_tb 0\n");
    CHECK(c.rec.ops_list[0].len == 2);
    CHECK(c.rec.ops_list[0].raw == 0x852e);
}

TEST_CASE("loads and stores: one memory op each, data MMU index from the flags", "[translate]")
{
    Block t;
    // MPRV-like flags: fetch as M, data as S.
    const uint64_t fl = uint64_t{PRV_M} | uint64_t{PRV_S} << TBF_DATA_SHIFT | uint64_t{3} << TBF_FS_SHIFT;
    t.words({enc(Op::LW, 5, 10, 0, -8), enc(Op::LWU, 6, 0, 0, 0x100), enc(Op::SD, 0, 10, 0, 16),
             enc(Op::SH, 0, 10, 11, 0)});
    // Before each access, instret counts the instructions before it: a fault ends the block there.
    CHECK(t.tr(kBase, fl, 4) == "add t0, x10, $0xfffffffffffffff8\n"
                                "ld x5, t0, mo=32s, mmu=1\n"
                                "add instret, instret, $0x1\n"
                                "ld x6, $0x100, mo=32, mmu=1\n"
                                "add t1, x10, $0x10\n"
                                "add instret, instret, $0x1\n"
                                "st $0x0, t1, mo=64, mmu=1\n"
                                "add instret, instret, $0x1\n"
                                "st x11, x10, mo=16, mmu=1\n"
                                "add instret, instret, $0x1\n"
                                "mov pc, $0x80000010\n"
                                "goto_tb 0\n");
}

TEST_CASE("*W and bit-manipulation ops compute what the ISA says", "[translate]")
{
    Block shape;
    shape.words({enc(Op::ADDW, 5, 6, 7), enc(Op::ADDIW, 5, 6, 0, 0)});
    CHECK(shape.tr(kBase, flags(), 2) == "add x5, x6, x7\n"
                                         "ext32s x5, x5\n"
                                         "ext32s x5, x6\n" // sext.w
                                         "add instret, instret, $0x2\n"
                                         "mov pc, $0x80000008\n"
                                         "goto_tb 0\n");

    using Ref = uint64_t (*)(uint64_t, uint64_t);
    struct Case {
        const char *name;
        uint32_t insn;
        Ref ref;
    };
    // References written from the ISA text, on host integers.
    const Case cases[] = {
        {"addw", enc(Op::ADDW, 5, 6, 7), [](uint64_t a, uint64_t b) -> uint64_t { return s32(a + b); }},
        {"subw", enc(Op::SUBW, 5, 6, 7), [](uint64_t a, uint64_t b) -> uint64_t { return s32(a - b); }},
        {"mulw", enc(Op::MULW, 5, 6, 7), [](uint64_t a, uint64_t b) -> uint64_t { return s32(a * b); }},
        {"sllw", enc(Op::SLLW, 5, 6, 7), [](uint64_t a, uint64_t b) -> uint64_t { return s32(a << (b & 31)); }},
        {"srlw", enc(Op::SRLW, 5, 6, 7),
         [](uint64_t a, uint64_t b) -> uint64_t { return s32(static_cast<uint32_t>(a) >> (b & 31)); }},
        {"sraw", enc(Op::SRAW, 5, 6, 7),
         [](uint64_t a, uint64_t b) -> uint64_t { return static_cast<uint64_t>(s32(a) >> (b & 31)); }},
        {"divw", enc(Op::DIVW, 5, 6, 7),
         [](uint64_t a, uint64_t b) -> uint64_t {
             int32_t x = static_cast<int32_t>(a), y = static_cast<int32_t>(b);
             if (y == 0) return ~0ull;
             if (x == INT32_MIN && y == -1) return static_cast<uint64_t>(int64_t{INT32_MIN});
             return static_cast<uint64_t>(int64_t{x / y});
         }},
        {"divuw", enc(Op::DIVUW, 5, 6, 7),
         [](uint64_t a, uint64_t b) -> uint64_t {
             uint32_t x = static_cast<uint32_t>(a), y = static_cast<uint32_t>(b);
             return y == 0 ? ~0ull : s32(x / y);
         }},
        {"remw", enc(Op::REMW, 5, 6, 7),
         [](uint64_t a, uint64_t b) -> uint64_t {
             int32_t x = static_cast<int32_t>(a), y = static_cast<int32_t>(b);
             if (y == 0) return s32(a);
             if (x == INT32_MIN && y == -1) return 0;
             return static_cast<uint64_t>(int64_t{x % y});
         }},
        {"remuw", enc(Op::REMUW, 5, 6, 7),
         [](uint64_t a, uint64_t b) -> uint64_t {
             uint32_t x = static_cast<uint32_t>(a), y = static_cast<uint32_t>(b);
             return y == 0 ? s32(x) : s32(x % y);
         }},
        {"rolw", enc(Op::ROLW, 5, 6, 7),
         [](uint64_t a, uint64_t b) -> uint64_t {
             uint32_t x = static_cast<uint32_t>(a), s = b & 31;
             return s32(s ? (x << s) | (x >> (32 - s)) : x);
         }},
        {"srliw 0", enc(Op::SRLIW, 5, 6, 0, 0), [](uint64_t a, uint64_t) -> uint64_t { return s32(a); }},
        {"srliw 7", enc(Op::SRLIW, 5, 6, 0, 7),
         [](uint64_t a, uint64_t) -> uint64_t { return s32(static_cast<uint32_t>(a) >> 7); }},
        {"sraiw 31", enc(Op::SRAIW, 5, 6, 0, 31),
         [](uint64_t a, uint64_t) -> uint64_t { return static_cast<uint64_t>(s32(a) >> 31); }},
        {"slliw 31", enc(Op::SLLIW, 5, 6, 0, 31), [](uint64_t a, uint64_t) -> uint64_t { return s32(a << 31); }},
        {"roriw 5", enc(Op::RORIW, 5, 6, 0, 5),
         [](uint64_t a, uint64_t) -> uint64_t {
             uint32_t x = static_cast<uint32_t>(a);
             return s32((x >> 5) | (x << 27));
         }},
        {"clzw", enc(Op::CLZW, 5, 6, 0),
         [](uint64_t a, uint64_t) -> uint64_t {
             uint32_t x = static_cast<uint32_t>(a);
             return x ? static_cast<uint64_t>(__builtin_clz(x)) : 32;
         }},
        {"ctzw", enc(Op::CTZW, 5, 6, 0),
         [](uint64_t a, uint64_t) -> uint64_t {
             uint32_t x = static_cast<uint32_t>(a);
             return x ? static_cast<uint64_t>(__builtin_ctz(x)) : 32;
         }},
        {"cpopw", enc(Op::CPOPW, 5, 6, 0),
         [](uint64_t a, uint64_t) -> uint64_t { return static_cast<uint64_t>(__builtin_popcount(uint32_t(a))); }},
        {"orc.b", enc(Op::ORC_B, 5, 6, 0),
         [](uint64_t a, uint64_t) -> uint64_t {
             uint64_t r = 0;
             for (unsigned i = 0; i < 64; i += 8)
                 if ((a >> i) & 0xff) r |= 0xffull << i;
             return r;
         }},
        {"add.uw", enc(Op::ADD_UW, 5, 6, 7),
         [](uint64_t a, uint64_t b) -> uint64_t { return (a & 0xffffffffu) + b; }},
        {"sh3add.uw", enc(Op::SH3ADD_UW, 5, 6, 7),
         [](uint64_t a, uint64_t b) -> uint64_t { return ((a & 0xffffffffu) << 3) + b; }},
        {"sh2add", enc(Op::SH2ADD, 5, 6, 7), [](uint64_t a, uint64_t b) -> uint64_t { return (a << 2) + b; }},
        {"slli.uw 40", enc(Op::SLLI_UW, 5, 6, 0, 40),
         [](uint64_t a, uint64_t) -> uint64_t { return (a & 0xffffffffu) << 40; }},
        {"bclr", enc(Op::BCLR, 5, 6, 7), [](uint64_t a, uint64_t b) -> uint64_t { return a & ~(1ull << (b & 63)); }},
        {"binv", enc(Op::BINV, 5, 6, 7), [](uint64_t a, uint64_t b) -> uint64_t { return a ^ (1ull << (b & 63)); }},
        {"bext", enc(Op::BEXT, 5, 6, 7), [](uint64_t a, uint64_t b) -> uint64_t { return (a >> (b & 63)) & 1; }},
        {"bseti 63", enc(Op::BSETI, 5, 6, 0, 63), [](uint64_t a, uint64_t) -> uint64_t { return a | 1ull << 63; }},
        {"bexti 33", enc(Op::BEXTI, 5, 6, 0, 33), [](uint64_t a, uint64_t) -> uint64_t { return (a >> 33) & 1; }},
        {"czero.eqz", enc(Op::CZERO_EQZ, 5, 6, 7), [](uint64_t a, uint64_t b) -> uint64_t { return b ? a : 0; }},
        {"czero.nez", enc(Op::CZERO_NEZ, 5, 6, 7), [](uint64_t a, uint64_t b) -> uint64_t { return b ? 0 : a; }},
        {"sltu", enc(Op::SLTU, 5, 6, 7), [](uint64_t a, uint64_t b) -> uint64_t { return a < b; }},
        {"slti -1", enc(Op::SLTI, 5, 6, 0, -1),
         [](uint64_t a, uint64_t) -> uint64_t { return static_cast<int64_t>(a) < -1; }},
        {"sltiu -1", enc(Op::SLTIU, 5, 6, 0, -1), [](uint64_t a, uint64_t) -> uint64_t { return a < ~0ull; }},
        {"mulhsu", enc(Op::MULHSU, 5, 6, 7),
         [](uint64_t a, uint64_t b) -> uint64_t {
             return static_cast<uint64_t>((static_cast<__int128>(static_cast<int64_t>(a)) * b) >> 64);
         }},
    };
    std::mt19937_64 rng(12345);
    std::vector<uint64_t> vals = {0,
                                  1,
                                  ~0ull,
                                  0x7fffffff,
                                  0x80000000,
                                  0xffffffff80000000ull,
                                  0xffffffff,
                                  0x100000000,
                                  31,
                                  32,
                                  63,
                                  0x8000000000000000ull,
                                  0x00ff0000ff000001ull};
    for (int i = 0; i < 6; i++)
        vals.push_back(rng());
    for (const Case &c : cases) {
        for (uint64_t a : vals) {
            for (uint64_t b : vals) {
                INFO(c.name << " a=" << std::hex << a << " b=" << b);
                CHECK(run_alu(c.insn, a, b) == c.ref(a, b));
            }
        }
    }
}

TEST_CASE("branches chain inside the block's page and look up outside it", "[translate]")
{
    Block t;
    t.words({enc(Op::BEQ, 0, 5, 6, 16)});
    CHECK(t.tr() == "add instret, instret, $0x1\n"
                    "brcond_eq x5, x6, L0\n"
                    "mov pc, $0x80000004\n"
                    "goto_tb 0\n"
                    "L0:\n"
                    "mov pc, $0x80000010\n"
                    "goto_tb 1\n");
    t.cpu->x[5] = t.cpu->x[6] = 7;
    auto r = t.run();
    CHECK(r.kind == irrec::RunResult::GotoTb);
    CHECK(r.slot == 1);
    CHECK(t.cpu->pc == kBase + 16);
    CHECK(t.cpu->instret == 1);

    // Last instruction of the page: both the fall-through and a forward
    // target are in the next page.
    Block e;
    e.words({enc(Op::BNE, 0, 5, 6, 8)}, kBase + 0xffc);
    CHECK(e.tr(kBase + 0xffc) == "add instret, instret, $0x1\n"
                                 "brcond_ne x5, x6, L0\n"
                                 "mov pc, $0x80001000\n"
                                 "lookup_and_goto\n"
                                 "L0:\n"
                                 "mov pc, $0x80001004\n"
                                 "lookup_and_goto\n");

    // Compare with x0: the constant goes on the right (bgtz).
    Block z;
    z.words({enc(Op::BLT, 0, 0, 5, -4), enc(Op::BEQ, 0, 0, 0, 8)}, kBase + 4);
    CHECK(z.tr(kBase + 4) == "add instret, instret, $0x1\n"
                             "brcond_gt x5, $0x0, L0\n"
                             "mov pc, $0x80000008\n"
                             "goto_tb 0\n"
                             "L0:\n"
                             "mov pc, $0x80000000\n"
                             "goto_tb 1\n");
    // beq x0, x0 is a jump decided at translation time.
    Block j;
    j.words({enc(Op::BEQ, 0, 0, 0, -0x1000)});
    CHECK(j.tr() == "add instret, instret, $0x1\n"
                    "mov pc, $0x7ffff000\n"
                    "lookup_and_goto\n");
}

TEST_CASE("jal and jalr", "[translate]")
{
    Block t;
    t.words({enc(Op::JAL, 1, 0, 0, 0x800)});
    CHECK(t.tr() == "mov x1, $0x80000004\n"
                    "add instret, instret, $0x1\n"
                    "mov pc, $0x80000800\n"
                    "goto_tb 0\n");

    // rd == rs1: the target is computed from the old value.
    Block r;
    r.words({enc(Op::JALR, 5, 5, 0, 4)});
    CHECK(r.tr() == "add pc, x5, $0x4\n"
                    "and pc, pc, $0xfffffffffffffffe\n"
                    "mov x5, $0x80000004\n"
                    "add instret, instret, $0x1\n"
                    "lookup_and_goto\n");
    r.cpu->x[5] = 0x1001;
    CHECK(r.run().kind == irrec::RunResult::Lookup);
    CHECK(r.cpu->pc == 0x1004);
    CHECK(r.cpu->x[5] == kBase + 4);

    Block ret;
    ret.words({enc(Op::JALR, 0, 1, 0, 0)});
    CHECK(ret.tr() == "and pc, x1, $0xfffffffffffffffe\n"
                      "add instret, instret, $0x1\n"
                      "lookup_and_goto\n");
}

TEST_CASE("blocks end at the instruction limit, the page end and after system instructions", "[translate]")
{
    Block lim;
    lim.words({enc(Op::ADDI, 5, 5, 0, 1), enc(Op::ADDI, 5, 5, 0, 1), enc(Op::ADDI, 5, 5, 0, 1)});
    lim.tr(kBase, flags(), 2);
    CHECK(lim.n_insns() == 2);
    CHECK(lim.rec.ops_list.back().kind == irrec::OpKind::GotoTb);

    // c.addi at 0xffc, then a 32-bit addi at 0xffe that crosses into the next
    // page (it starts in the block's page, so it belongs to it), then the
    // block ends: the next instruction starts in another page.
    Block pg;
    pg.words({0x0505 /* c.addi a0,1 */, enc(Op::ADDI, 5, 5, 0, 1), enc(Op::ADDI, 5, 5, 0, 1)}, kBase + 0xffc);
    CHECK(pg.tr(kBase + 0xffc) == "add x10, x10, $0x1\n"
                                  "add x5, x5, $0x1\n"
                                  "add instret, instret, $0x2\n"
                                  "mov pc, $0x80001002\n"
                                  "lookup_and_goto\n");

    // A CSR read does not end the block; a CSR write does.
    Block rd;
    rd.words({csr_insn(Op::CSRRS, 5, 0, 0x300), csr_insn(Op::CSRRW, 0, 5, 0x340), enc(Op::ADDI, 5, 5, 0, 1)});
    CHECK(rd.tr() == "call rv_helper_csr -> t0 (env, $0x0, $0x300022f3:32)\n"
                     "mov x5, t0\n"
                     "add instret, instret, $0x1\n"
                     "call rv_helper_csr -> t1 (env, x5, $0x34029073:32)\n"
                     "mov pc, $0x80000008\n"
                     "add instret, instret, $0x1\n"
                     "exit_tb\n");

    struct {
        uint32_t insn;
        const char *helper;
    } sys[] = {
        {enc(Op::ECALL, 0, 0, 0), "rv_helper_ecall"},
        {enc(Op::EBREAK, 0, 0, 0), "rv_helper_ebreak"},
        {enc(Op::FENCE_I, 0, 0, 0), "rv_helper_fence_i"},
        {enc(Op::WFI, 0, 0, 0), "rv_helper_wfi"},
        {enc(Op::SFENCE_VMA, 0, 5, 6), "rv_helper_sfence_vma"},
        {enc(Op::MRET, 0, 0, 0), "rv_helper_mret"},
    };
    for (const auto &s : sys) {
        Block b;
        b.words({s.insn, enc(Op::ADDI, 5, 5, 0, 1)});
        const std::string ir = b.tr();
        INFO(ir);
        CHECK(b.n_insns() == 1);
        CHECK(ir.find(std::string("call ") + s.helper) != std::string::npos);
        CHECK(b.rec.ops_list.back().kind == irrec::OpKind::ExitTb);
    }
    Block sf;
    sf.words({enc(Op::SFENCE_VMA, 0, 5, 6)});
    CHECK(sf.tr() == "call rv_helper_sfence_vma (env, x5, x6, $0x12628073:32)\n"
                     "mov pc, $0x80000004\n"
                     "add instret, instret, $0x1\n"
                     "exit_tb\n");

    // fence is a no-op that does not end the block.
    Block f;
    f.words({enc(Op::FENCE, 0, 0, 0, 0x0ff), enc(Op::ADDI, 5, 5, 0, 1)});
    f.tr(kBase, flags(), 2);
    CHECK(f.n_insns() == 2);
    CHECK(f.rec.n_ops() == 4);
}

TEST_CASE("instret is exact at exits and before CSR reads", "[translate]")
{
    Block t;
    t.words({enc(Op::ADDI, 5, 5, 0, 1), enc(Op::ADDI, 5, 5, 0, 1), enc(Op::ADDI, 5, 5, 0, 1),
             csr_insn(Op::CSRRS, 6, 0, 0xc02), enc(Op::ADDI, 5, 5, 0, 1), enc(Op::JAL, 0, 0, 0, -20)});
    t.tr();
    t.cpu->instret = 100;
    uint64_t seen = 0;
    RvCpu *cpu = t.cpu.get();
    t.rec.on_call = [&](const KeelIrHelper *h, const std::vector<uint64_t> &, bool *) -> uint64_t {
        if (h == &helper::csr) seen = cpu->instret;
        return cpu->instret;
    };
    auto r = t.run();
    CHECK(r.kind == irrec::RunResult::GotoTb);
    CHECK(seen == 103); // the three addi before the read
    CHECK(t.cpu->x[6] == 103);
    CHECK(t.cpu->instret == 106);
    CHECK(t.cpu->pc == kBase);

    // A write to minstret replaces the writing instruction's increment.
    Block w;
    w.words({enc(Op::ADDI, 5, 5, 0, 1), csr_insn(Op::CSRRW, 0, 5, 0xb02)});
    CHECK(w.tr() == "add x5, x5, $0x1\n"
                    "add instret, instret, $0x1\n"
                    "call rv_helper_csr -> t0 (env, x5, $0xb0229073:32)\n"
                    "mov pc, $0x80000008\n"
                    "exit_tb\n");
}

TEST_CASE("LR/SC and AMOs", "[translate]")
{
    const uint32_t lr_w = enc(Op::LR_W, 5, 10, 0), sc_w = enc(Op::SC_W, 6, 10, 7);
    Block shape;
    shape.words({lr_w, sc_w});
    CHECK(shape.tr(kBase, flags(), 2) == "ld t0, x10, mo=32sa, mmu=3\n"
                                         "mov res_addr, x10\n"
                                         "mov res_val, t0\n"
                                         "mov x5, t0\n"
                                         "add instret, instret, $0x1\n" // on both of SC's paths
                                         "brcond_ne res_addr, x10, L0\n"
                                         "ld t1, x10, mo=32sar, mmu=3\n"
                                         "brcond_ne t1, res_val, L0\n"
                                         "st x7, x10, mo=32a, mmu=3\n"
                                         "mov res_addr, $0xffffffffffffffff\n"
                                         "mov x6, $0x0\n"
                                         "br L1\n"
                                         "L0:\n"
                                         "mov res_addr, $0xffffffffffffffff\n"
                                         "mov x6, $0x1\n"
                                         "L1:\n"
                                         "add instret, instret, $0x1\n"
                                         "mov pc, $0x80000008\n"
                                         "goto_tb 0\n");

    const uint64_t a = 0x1000;
    SECTION("lr then sc succeeds")
    {
        Block t;
        t.words({lr_w, sc_w});
        t.tr(kBase, flags(), 2);
        t.rec.write_mem(a, 0x80000001, 8);
        t.cpu->x[10] = a;
        t.cpu->x[7] = 0x1122334455667788;
        t.cpu->res_addr = ~0ull;
        CHECK(t.run().kind == irrec::RunResult::GotoTb);
        CHECK(t.cpu->x[5] == 0xffffffff80000001ull); // lr.w sign-extends
        CHECK(t.cpu->x[6] == 0);
        CHECK(t.rec.read_mem(a, 8) == 0x55667788);
        CHECK(t.cpu->res_addr == ~0ull);
    }
    SECTION("sc without a reservation fails and leaves memory alone")
    {
        Block t;
        t.words({sc_w});
        t.tr(kBase, flags(), 1);
        t.rec.write_mem(a, 42, 4);
        t.cpu->x[10] = a;
        t.cpu->x[7] = 7;
        t.cpu->res_addr = ~0ull;
        t.cpu->x[6] = 99;
        CHECK(t.run().kind == irrec::RunResult::GotoTb);
        CHECK(t.cpu->x[6] == 1);
        CHECK(t.rec.read_mem(a, 4) == 42);
    }
    SECTION("sc.d fails when memory changed since lr.d")
    {
        Block t;
        t.words({enc(Op::SC_D, 6, 10, 7)});
        t.tr(kBase, flags(), 1);
        t.rec.write_mem(a, 5, 8);
        t.cpu->x[10] = a;
        t.cpu->res_addr = a;
        t.cpu->res_val = 4;
        CHECK(t.run().kind == irrec::RunResult::GotoTb);
        CHECK(t.cpu->x[6] == 1);
        CHECK(t.rec.read_mem(a, 8) == 5);
        CHECK(t.cpu->res_addr == ~0ull);
    }
    SECTION("a misaligned AMO faults through its read-modify-write load (a store/AMO fault)")
    {
        Block t;
        t.words({enc(Op::AMOADD_W, 5, 10, 6)});
        t.tr(kBase, flags(), 1);
        t.cpu->x[10] = a + 2;
        t.cpu->x[5] = 99;
        irrec::RunResult r = t.run();
        CHECK(r.kind == irrec::RunResult::MemFault);
        CHECK(r.unaligned);
        CHECK(r.rmw);
        CHECK(r.fault_addr == a + 2);
        CHECK(t.cpu->x[5] == 99);
    }
    SECTION("amoadd.w and amomaxu.w/amomin.w on words")
    {
        Block t;
        t.words({enc(Op::AMOADD_W, 5, 10, 6), enc(Op::AMOMAXU_W, 7, 11, 6), enc(Op::AMOMIN_W, 8, 12, 6)});
        t.tr(kBase, flags(), 3);
        t.rec.write_mem(a, 0xfffffffe, 4);
        t.rec.write_mem(a + 8, 0x00000001, 4);
        t.rec.write_mem(a + 16, 0x00000001, 4);
        t.cpu->x[10] = a;
        t.cpu->x[11] = a + 8;
        t.cpu->x[12] = a + 16;
        t.cpu->x[6] = 0x00000000ffffffffull; // word -1, upper bits not sign bits
        CHECK(t.run().kind == irrec::RunResult::GotoTb);
        CHECK(t.cpu->x[5] == 0xfffffffffffffffeull); // old value, sign-extended
        CHECK(t.rec.read_mem(a, 4) == 0xfffffffd);
        CHECK(t.rec.read_mem(a + 8, 4) == 0xffffffff); // unsigned max of 1 and 0xffffffff
        CHECK(t.cpu->x[7] == 1);
        CHECK(t.rec.read_mem(a + 16, 4) == 0xffffffff); // signed min of 1 and -1
    }
    SECTION("amoswap.d writes rd after the store")
    {
        Block t;
        t.words({enc(Op::AMOSWAP_D, 10, 10, 10)});
        CHECK(t.tr(kBase, flags(), 1) == "ld t0, x10, mo=64ar, mmu=3\n"
                                         "st x10, x10, mo=64a, mmu=3\n"
                                         "mov x10, t0\n"
                                         "add instret, instret, $0x1\n"
                                         "mov pc, $0x80000004\n"
                                         "goto_tb 0\n");
    }
}

TEST_CASE("FP: FS off is illegal, FS dirtied once, rm=7 checked once, NaN boxing", "[translate]")
{
    const uint32_t fadd_dyn = 0x023170d3, fadd_rne = 0x023100d3; // fadd.d ft1,ft2,ft3[,rne]
    SECTION("FS off")
    {
        for (uint32_t insn : {fadd_dyn, enc(Op::FLW, 1, 10, 0, 0), enc(Op::FMV_X_D, 5, 1, 0)}) {
            Block t;
            t.words({insn});
            char expect[96];
            std::snprintf(expect, sizeof expect, "call rv_helper_raise (env, $0x2, $0x%x)\nexit_tb\n", insn);
            CHECK(t.tr(kBase, flags(PRV_M, 0)) == expect);
        }
    }
    SECTION("rm=7 and FS clean")
    {
        Block t;
        t.words({fadd_dyn, fadd_dyn, fadd_rne});
        CHECK(t.tr(kBase, flags(PRV_M, 2), 3) == "call rv_helper_check_frm (env, $0x23170d3:32)\n"
                                                 "call rv_helper_fs_dirty (env)\n"
                                                 "call rv_fadd_d -> f1 (env, f2, f3, $0x7:32)\n"
                                                 "call rv_fadd_d -> f1 (env, f2, f3, $0x7:32)\n"
                                                 "call rv_fadd_d -> f1 (env, f2, f3, $0x0:32)\n"
                                                 "add instret, instret, $0x3\n"
                                                 "mov pc, $0x8000000c\n"
                                                 "goto_tb 0\n");
        Block d;
        d.words({fadd_rne});
        CHECK(d.tr(kBase, flags(PRV_M, 3), 1).find("fs_dirty") == std::string::npos);
    }
    SECTION("reserved rm is illegal")
    {
        Block t;
        t.words({(fadd_rne & ~0x7000u) | 5u << 12});
        CHECK(t.tr().find("call rv_helper_raise (env, $0x2,") == 0);
    }
    SECTION("flw boxes, fmv.x.w sign-extends, fmv.w.x boxes, fsw stores the low word")
    {
        Block t;
        t.words({enc(Op::FLW, 1, 10, 0, 4), enc(Op::FMV_X_W, 5, 1, 0), enc(Op::FMV_W_X, 2, 6, 0),
                 enc(Op::FSW, 0, 10, 2, 8)});
        CHECK(t.tr(kBase, flags(PRV_M, 1), 4) == "add t0, x10, $0x4\n"
                                                 "ld t1, t0, mo=32, mmu=3\n"
                                                 "call rv_helper_fs_dirty (env)\n"
                                                 "or f1, t1, $0xffffffff00000000\n"
                                                 "ext32s x5, f1\n"
                                                 "or f2, x6, $0xffffffff00000000\n"
                                                 "add t2, x10, $0x8\n"
                                                 "add instret, instret, $0x3\n"
                                                 "st f2, t2, mo=32, mmu=3\n"
                                                 "add instret, instret, $0x1\n"
                                                 "mov pc, $0x80000010\n"
                                                 "goto_tb 0\n");
        t.rec.write_mem(0x2004, 0x80000000, 4);
        t.rec.write_mem(0x2008, 0, 8);
        t.cpu->x[10] = 0x2000;
        t.cpu->x[6] = 0x12345678abcdef01ull;
        CHECK(t.run().kind == irrec::RunResult::GotoTb);
        CHECK(t.cpu->f[1] == 0xffffffff80000000ull);
        CHECK(t.cpu->x[5] == 0xffffffff80000000ull);
        CHECK(t.cpu->f[2] == 0xffffffffabcdef01ull);
        CHECK(t.rec.read_mem(0x2008, 8) == 0xabcdef01);
    }
    SECTION("fsgnj.d family inline")
    {
        const uint64_t vals[] = {0x3ff0000000000000ull, 0xbff0000000000000ull, 0x7ff8000000000000ull,
                                 0xfff0000000000001ull};
        for (Op op : {Op::FSGNJ_D, Op::FSGNJN_D, Op::FSGNJX_D}) {
            for (bool same : {false, true}) {
                Block t;
                t.words({enc(op, 1, 2, same ? 2 : 3)});
                t.tr(kBase, flags(), 1);
                for (uint64_t a : vals) {
                    for (uint64_t b : vals) {
                        if (same) b = a;
                        t.cpu->f[2] = a;
                        t.cpu->f[3] = b;
                        REQUIRE(t.run().kind == irrec::RunResult::GotoTb);
                        const uint64_t sb = b & (1ull << 63), sa = a & (1ull << 63);
                        const uint64_t sign = op == Op::FSGNJ_D    ? sb
                                              : op == Op::FSGNJN_D ? sb ^ (1ull << 63)
                                                                   : sa ^ sb;
                        CHECK(t.cpu->f[1] == ((a & ~(1ull << 63)) | sign));
                    }
                }
                if (same) CHECK(t.rec.n_ops() == 4u); // one op, then instret, pc and the exit
            }
        }
    }
    SECTION("conversions to x0 still run (they set flags); misa without D makes D illegal")
    {
        Block t;
        t.words({enc(Op::FCVT_W_D, 0, 1, 0) | 1u << 12 /* rtz */});
        CHECK(t.tr(kBase, flags(), 1).find("call rv_fcvt_w_d -> t0 (env, f1, $0x1:32)\n") == 0);
        Block n;
        n.cpu->misa &= ~(1ull << ('D' - 'A'));
        n.words({fadd_rne, 0x2588 /* c.fld */});
        CHECK(n.tr().find("call rv_helper_raise (env, $0x2, $0x23100d3)") == 0);
        Block c;
        c.cpu->misa &= ~(1ull << ('D' - 'A'));
        c.words({0x2588});
        CHECK(c.tr() == "call rv_helper_raise (env, $0x2, $0x2588)\nexit_tb\n");
    }
}

TEST_CASE("illegal encodings and privilege violations raise illegal instruction", "[translate]")
{
    struct {
        uint32_t insn;
        unsigned priv;
    } bad[] = {
        {0x0000, PRV_M},                 // c.addi4spn with imm 0 / all-zero parcel
        {0xffffffff, PRV_M},             // no such instruction
        {enc(Op::MRET, 0, 0, 0), PRV_S}, // mret below M
        {enc(Op::SRET, 0, 0, 0), PRV_U}, // sret in U
        {enc(Op::WFI, 0, 0, 0), PRV_U},  // wfi in U
        {enc(Op::SFENCE_VMA, 0, 0, 0), PRV_U},
        {0x0000501b | 1u << 25, PRV_M}, // srliw with shamt[5] set: reserved on RV64
    };
    for (const auto &c : bad) {
        Block t;
        t.words({c.insn});
        char expect[96];
        std::snprintf(expect, sizeof expect, "call rv_helper_raise (env, $0x2, $0x%x)\nexit_tb\n", c.insn);
        CHECK(t.tr(kBase, flags(c.priv)) == expect);
    }
    // sret in S and mret in M are translated.
    Block s;
    s.words({enc(Op::SRET, 0, 0, 0)});
    CHECK(s.tr(kBase, flags(PRV_S)) == "call rv_helper_sret (env)\nadd instret, instret, $0x1\nexit_tb\n");

    // Without M in misa, mul is illegal; instructions before it are counted.
    Block m;
    m.cpu->misa &= ~(1ull << ('M' - 'A'));
    m.words({enc(Op::ADDI, 5, 5, 0, 1), enc(Op::MUL, 5, 5, 5)});
    CHECK(m.tr() == "add x5, x5, $0x1\n"
                    "add instret, instret, $0x1\n"
                    "call rv_helper_raise (env, $0x2, $0x25282b3)\n"
                    "exit_tb\n");
}

TEST_CASE("fetch failures: end before the instruction, or raise for the first one", "[translate]")
{
    // First instruction crosses into a page that cannot be fetched.
    Block t;
    t.rec.put16(kBase + 0xffe, 0x0513); // low half of a 32-bit addi
    CHECK(t.tr(kBase + 0xffe) == "call rv_helper_fetch_fault (env, $0x80001000)\n"
                                 "mov pc, $0x80000ffe\n"
                                 "exit_tb\n");
    CHECK(t.rec.ops_list[0].pc == kBase + 0xffe);
    CHECK(t.rec.ops_list[0].len == 4);

    // A later instruction cannot be fetched: the block ends before it.
    Block l;
    l.words({enc(Op::ADDI, 5, 5, 0, 1)});
    l.rec.put16(kBase + 4, 0x0513);
    CHECK(l.tr() == "add x5, x5, $0x1\n"
                    "add instret, instret, $0x1\n"
                    "mov pc, $0x80000004\n"
                    "goto_tb 0\n");

    // The helper asks the MMU; if the page has become fetchable it drops the
    // stale translations instead of raising.
    RvCpu cpu{};
    g_stub_tlb_fill_result = KEEL_OK;
    static int flushes;
    flushes = 0;
    KeelCpuEngine engine{};
    engine.tb_flush = [](KeelCpuCommon *) { flushes++; };
    cpu.common.engine = &engine;
    rv_helper_fetch_fault(&cpu, 0x1000);
    CHECK(flushes == 1);
    g_stub_tlb_fill_result = KEEL_ERR;
    rv_helper_fetch_fault(&cpu, 0x1000);
    CHECK(flushes == 1);
}

TEST_CASE("every instruction of the table translates (M mode, FS dirty)", "[translate]")
{
    for (unsigned i = 0; i < static_cast<unsigned>(Op::C_ADDI4SPN); i++) {
        const Op op = static_cast<Op>(i);
        const uint32_t w = encode(op, 5, 6, 7, 8);
        REQUIRE(decode(w).op == op);
        Block t;
        t.words({w});
        INFO(info(op).name);
        const std::string ir = t.tr(kBase, flags(), 1);
        CHECK(ir.find("rv_helper_raise (env, $0x2,") == std::string::npos);
        CHECK(t.n_insns() == 1);
    }
}

TEST_CASE("helper descriptors match the FP helpers' signatures and flags", "[translate]")
{
    const KeelIrHelper *h = fp_helper(Op::FMADD_D);
    REQUIRE(h);
    CHECK(h->nargs == 5);
    CHECK(h->args[0] == KEEL_IR_PTR);
    CHECK(h->args[4] == KEEL_IR_I32);
    CHECK(h->flags == 0);
    h = fp_helper(Op::FSGNJX_S);
    REQUIRE(h);
    CHECK(h->nargs == 2);
    CHECK(h->flags == KEEL_HELPER_PURE);
    CHECK(fp_helper(Op::ADD) == nullptr);
    CHECK((helper::csr.flags & KEEL_HELPER_MAY_RAISE));
    CHECK((helper::csr.flags & KEEL_HELPER_READS_GLOBALS));
    CHECK((helper::mret.flags & KEEL_HELPER_WRITES_GLOBALS));
    CHECK(helper::fs_dirty.flags == 0);
    CHECK(kGlobals[GLOBAL_PC].offset == offsetof(RvCpu, pc));
    CHECK(kGlobals[GLOBAL_F0 + 31].offset == offsetof(RvCpu, f) + 31 * 8);
    CHECK(std::string(kGlobals[GLOBAL_INSTRET].name) == "instret");
}
