// SPDX-License-Identifier: MIT
// Tests of the RISC-V decode table and decoder: no overlapping rows, exact operand fields, RVC expansion,
// reserved encodings.
#include "decode.h"
#include "disasm.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <set>
#include <string>

using namespace keel::rv;

namespace
{

constexpr unsigned kFirstC = static_cast<unsigned>(Op::C_ADDI4SPN);

// Tabs become spaces so expectations read like assembly.
std::string text(const Insn &in, uint64_t pc = 0)
{
    std::string s = disasm(in, pc);
    for (char &c : s)
        if (c == '\t') c = ' ';
    return s;
}

bool cons_hold(const InsnInfo &r, uint32_t p)
{
    return (p & r.cons[0].mask) != r.cons[0].value && (p & r.cons[1].mask) != r.cons[1].value;
}

// Whether some parcel could match both rows: their fixed bits agree and
// neither row's constraints are ruled out by the bits the two fix together.
bool c_rows_overlap(const InsnInfo &a, const InsnInfo &b)
{
    if ((a.match ^ b.match) & a.mask & b.mask) return false;
    const uint32_t mask = a.mask | b.mask, match = a.match | b.match;
    for (const InsnInfo *r : {&a, &b})
        for (const CConstraint &c : r->cons)
            if ((c.mask & ~mask) == 0 && (match & c.mask) == c.value) return false;
    return true;
}

} // namespace

TEST_CASE("every row's match lies inside its mask and names are unique", "[riscv][decode][table]")
{
    std::set<std::string> names;
    for (unsigned i = 0; i < kNumOps; i++) {
        const InsnInfo &r = info(static_cast<Op>(i));
        INFO(r.name);
        CHECK((r.match & ~r.mask) == 0);
        CHECK(names.insert(r.name).second);
        if (i < kFirstC) {
            CHECK((r.match & 3) == 3); // 32-bit rows fix the length bits
            CHECK((r.mask & 3) == 3);
            CHECK(r.expands_to == Op::ILLEGAL);
        } else {
            CHECK(r.mask <= 0xffff);
            CHECK((r.mask & 3) == 3);
            CHECK((r.match & 3) != 3);
            CHECK(r.expands_to < Op::C_ADDI4SPN); // expands to a 32-bit row
            CHECK(r.flags == info(r.expands_to).flags);
        }
    }
    CHECK(std::string(info(Op::ILLEGAL).name) == "illegal");
}

TEST_CASE("no two 32-bit rows overlap", "[riscv][decode][table]")
{
    for (unsigned i = 0; i < kFirstC; i++)
        for (unsigned j = i + 1; j < kFirstC; j++) {
            const InsnInfo &a = info(static_cast<Op>(i)), &b = info(static_cast<Op>(j));
            INFO(a.name << " vs " << b.name);
            // A word matching both exists iff the bits both rows fix agree.
            CHECK(((a.match ^ b.match) & a.mask & b.mask) != 0);
        }
}

TEST_CASE("no two 16-bit rows overlap", "[riscv][decode][table]")
{
    for (unsigned i = kFirstC; i < kNumOps; i++)
        for (unsigned j = i + 1; j < kNumOps; j++) {
            const InsnInfo &a = info(static_cast<Op>(i)), &b = info(static_cast<Op>(j));
            INFO(a.name << " vs " << b.name);
            CHECK_FALSE(c_rows_overlap(a, b));
        }
    // The analytic check above is only as good as its reasoning about
    // constraints; with 2^16 parcels the exhaustive one is cheap.
    for (uint32_t p = 0; p < 0x10000; p++) {
        if ((p & 3) == 3) continue;
        unsigned hits = 0;
        for (unsigned i = kFirstC; i < kNumOps; i++) {
            const InsnInfo &r = info(static_cast<Op>(i));
            hits += (p & r.mask) == r.match && cons_hold(r, p);
        }
        INFO("parcel " << p);
        REQUIRE(hits <= 1);
    }
}

TEST_CASE("32-bit formats decode to exact fields", "[riscv][decode]")
{
    SECTION("R")
    {
        const Insn in = decode(0x40b50533); // sub a0,a0,a1
        CHECK(in.op == Op::SUB);
        CHECK(in.len == 4);
        CHECK(in.rd == 10);
        CHECK(in.rs1 == 10);
        CHECK(in.rs2 == 11);
        CHECK(in.raw == 0x40b50533);
        CHECK(in.craw == 0);
        CHECK(in.cop == Op::ILLEGAL);
    }
    SECTION("I with negative and positive edges")
    {
        Insn in = decode(0x80008093); // addi ra,ra,-2048
        CHECK(in.op == Op::ADDI);
        CHECK(in.rd == 1);
        CHECK(in.rs1 == 1);
        CHECK(in.imm == -2048);
        in = decode(0x7ff00093); // addi ra,zero,2047
        CHECK(in.imm == 2047);
        CHECK(in.rs1 == 0);
    }
    SECTION("loads, stores, jalr")
    {
        Insn in = decode(0xffc12503); // lw a0,-4(sp)
        CHECK(in.op == Op::LW);
        CHECK(in.rd == 10);
        CHECK(in.rs1 == 2);
        CHECK(in.imm == -4);
        in = decode(0xfeb53c23); // sd a1,-8(a0)
        CHECK(in.op == Op::SD);
        CHECK(in.rs1 == 10);
        CHECK(in.rs2 == 11);
        CHECK(in.imm == -8);
        CHECK(in.rd == 0);
        in = decode(0x7eb53fa3); // sd a1,2047(a0)
        CHECK(in.imm == 2047);
        in = decode(0x008500e7); // jalr ra,8(a0)
        CHECK(in.op == Op::JALR);
        CHECK(in.rd == 1);
        CHECK(in.rs1 == 10);
        CHECK(in.imm == 8);
    }
    SECTION("branches and jumps")
    {
        Insn in = decode(0x80360063); // beq a2,gp,.-4096
        CHECK(in.op == Op::BEQ);
        CHECK(in.rs1 == 12);
        CHECK(in.rs2 == 3);
        CHECK(in.imm == -4096);
        in = decode(0x7f1c8fe3); // beq s9,a7,.+4094
        CHECK(in.imm == 4094);
        in = decode(0x8000026f); // jal tp,.-1048576
        CHECK(in.op == Op::JAL);
        CHECK(in.rd == 4);
        CHECK(in.imm == -1048576);
        in = decode(0x7ffff6ef); // jal a3,.+1048574
        CHECK(in.imm == 1048574);
    }
    SECTION("U-type immediates are shifted and sign-extended")
    {
        Insn in = decode(0xfffff937); // lui s2,0xfffff
        CHECK(in.op == Op::LUI);
        CHECK(in.rd == 18);
        CHECK(in.imm == -4096);
        in = decode(0x00001897); // auipc a7,0x1
        CHECK(in.op == Op::AUIPC);
        CHECK(in.imm == 4096);
    }
    SECTION("shifts")
    {
        Insn in = decode(0x03f51513); // slli a0,a0,63
        CHECK(in.op == Op::SLLI);
        CHECK(in.imm == 63);
        in = decode(0x41f5551b); // sraiw a0,a0,31
        CHECK(in.op == Op::SRAIW);
        CHECK(in.imm == 31);
        CHECK(decode(0x0205151b).op == Op::ILLEGAL); // slliw with shamt[5] set
    }
    SECTION("CSR forms")
    {
        Insn in = decode(0x30002573); // csrrs a0,mstatus,zero
        CHECK(in.op == Op::CSRRS);
        CHECK(in.csr == 0x300);
        CHECK(in.rd == 10);
        CHECK(in.rs1 == 0);
        in = decode(0x14d2d573); // csrrwi a0,stimecmp,5
        CHECK(in.op == Op::CSRRWI);
        CHECK(in.csr == 0x14d);
        CHECK(in.imm == 5);
        CHECK(in.rs1 == 0);
    }
    SECTION("atomics with aq/rl")
    {
        Insn in = decode(0x1605a52f); // lr.w.aqrl a0,(a1)
        CHECK(in.op == Op::LR_W);
        CHECK(in.aq);
        CHECK(in.rl);
        CHECK(in.rs1 == 11);
        in = decode(0x04c5b52f); // amoadd.d.aq a0,a2,(a1)
        CHECK(in.op == Op::AMOADD_D);
        CHECK(in.aq);
        CHECK_FALSE(in.rl);
        CHECK(in.rs2 == 12);
        CHECK(decode(0x1615a52f).op == Op::ILLEGAL); // lr.w with rs2 != 0
    }
    SECTION("floating point: R4 and rounding modes")
    {
        Insn in = decode(0x6ac5c543); // fmadd.d fa0,fa1,fa2,fa3,rmm
        CHECK(in.op == Op::FMADD_D);
        CHECK(in.rd == 10);
        CHECK(in.rs1 == 11);
        CHECK(in.rs2 == 12);
        CHECK(in.rs3 == 13);
        CHECK(in.rm == 4);
        in = decode(0x00c59553); // fadd.s fa0,fa1,fa2,rtz
        CHECK(in.op == Op::FADD_S);
        CHECK(in.rm == 1);
        CHECK(decode(0x00c5d553).op == Op::ILLEGAL); // rm=5 reserved
        CHECK(decode(0x00c5e553).op == Op::ILLEGAL); // rm=6 reserved
        CHECK(decode(0x00c5f553).rm == 7);           // dyn
        in = decode(0x22b58553);                     // fsgnj.d has a funct3, not an rm
        CHECK(in.op == Op::FSGNJ_D);
        CHECK(in.rm == 0);
        CHECK(decode(0xd2057553).op == Op::FCVT_D_W); // exact conversion, any valid rm
    }
    SECTION("fence and sfence.vma")
    {
        Insn in = decode(0x0310000f); // fence rw,w
        CHECK(in.op == Op::FENCE);
        CHECK(in.imm == 0x031);
        CHECK(decode(0x8330000f).op == Op::FENCE); // fence.tso executes as a fence
        CHECK(decode(0x0000100f).op == Op::FENCE_I);
        in = decode(0x12b50073);
        CHECK(in.op == Op::SFENCE_VMA);
        CHECK(in.rs1 == 10);
        CHECK(in.rs2 == 11);
    }
    SECTION("Zicond (unknown to binutils 2.40, so checked here)")
    {
        Insn in = decode(0x0ec5d533); // czero.eqz a0,a1,a2
        CHECK(in.op == Op::CZERO_EQZ);
        CHECK(text(in) == "czero.eqz a0,a1,a2");
        in = decode(0x0ec5f533);
        CHECK(in.op == Op::CZERO_NEZ);
        CHECK(text(in) == "czero.nez a0,a1,a2");
    }
    SECTION("info() reports format, extension and flags")
    {
        CHECK(info(Op::BEQ).flags & kBranch);
        CHECK(info(Op::BEQ).flags & kEndsBlock);
        CHECK(info(Op::FLD).flags & kLoad);
        CHECK(info(Op::FLD).flags & kFloat);
        CHECK(info(Op::MRET).flags & kPrivileged);
        CHECK(info(Op::AMOSWAP_D).ext == Ext::A);
        CHECK(info(Op::SH1ADD).fmt == Fmt::R);
        CHECK(info(Op::C_LDSP).flags == info(Op::LD).flags);
    }
}

namespace
{
struct CCase {
    uint16_t parcel;
    Op cop;
    const char *c_text;        // how objdump -M no-aliases prints it (pc 0x1000)
    const char *expanded_text; // the 32-bit instruction it stands for
};

// Parcels assembled by GNU as; the expansions are written from the spec.
const CCase kCCases[] = {
    {0x1fe8, Op::C_ADDI4SPN, "c.addi4spn a0,sp,1020", "addi a0,sp,1020"},
    {0x3cfc, Op::C_FLD, "c.fld fa5,248(s1)", "fld fa5,248(s1)"},
    {0x5fe8, Op::C_LW, "c.lw a0,124(a5)", "lw a0,124(a5)"},
    {0x6500, Op::C_LD, "c.ld s0,8(a0)", "ld s0,8(a0)"},
    {0xa100, Op::C_FSD, "c.fsd fs0,0(a0)", "fsd fs0,0(a0)"},
    {0xc2b0, Op::C_SW, "c.sw a2,64(a3)", "sw a2,64(a3)"},
    {0xfcfc, Op::C_SD, "c.sd a5,248(s1)", "sd a5,248(s1)"},
    {0x0001, Op::C_ADDI, "c.addi zero,0", "addi zero,zero,0"}, // c.nop
    {0x1501, Op::C_ADDI, "c.addi a0,-32", "addi a0,a0,-32"},
    {0x25fd, Op::C_ADDIW, "c.addiw a1,31", "addiw a1,a1,31"},
    {0x5ffd, Op::C_LI, "c.li t6,-1", "addi t6,zero,-1"},
    {0x7101, Op::C_ADDI16SP, "c.addi16sp sp,-512", "addi sp,sp,-512"},
    {0x7501, Op::C_LUI, "c.lui a0,0xfffe0", "lui a0,0xfffe0"},
    {0x93fd, Op::C_SRLI, "c.srli a5,0x3f", "srli a5,a5,0x3f"},
    {0x8381, Op::C_SRLI64, "c.srli64 a5", "srli a5,a5,0x0"},
    {0x8485, Op::C_SRAI, "c.srai s1,0x1", "srai s1,s1,0x1"},
    {0x8481, Op::C_SRAI64, "c.srai64 s1", "srai s1,s1,0x0"},
    {0x9b01, Op::C_ANDI, "c.andi a4,-32", "andi a4,a4,-32"},
    {0x8c1d, Op::C_SUB, "c.sub s0,a5", "sub s0,s0,a5"},
    {0x8d2d, Op::C_XOR, "c.xor a0,a1", "xor a0,a0,a1"},
    {0x8e55, Op::C_OR, "c.or a2,a3", "or a2,a2,a3"},
    {0x8f7d, Op::C_AND, "c.and a4,a5", "and a4,a4,a5"},
    {0x9c05, Op::C_SUBW, "c.subw s0,s1", "subw s0,s0,s1"},
    {0x9fa1, Op::C_ADDW, "c.addw a5,s0", "addw a5,a5,s0"},
    {0xb001, Op::C_J, "c.j 800", "jal zero,800"},               // .-2048
    {0xcd7d, Op::C_BEQZ, "c.beqz a0,10fe", "beq a0,zero,10fe"}, // .+254
    {0xf081, Op::C_BNEZ, "c.bnez s1,f00", "bne s1,zero,f00"},   // .-256
    {0x1ffe, Op::C_SLLI, "c.slli t6,0x3f", "slli t6,t6,0x3f"},
    {0x0502, Op::C_SLLI64, "c.slli64 a0", "slli a0,a0,0x0"},
    {0x3ffe, Op::C_FLDSP, "c.fldsp ft11,504(sp)", "fld ft11,504(sp)"},
    {0x50fe, Op::C_LWSP, "c.lwsp ra,252(sp)", "lw ra,252(sp)"},
    {0x6da2, Op::C_LDSP, "c.ldsp s11,8(sp)", "ld s11,8(sp)"},
    {0x8082, Op::C_JR, "c.jr ra", "jalr zero,0(ra)"},
    {0x852e, Op::C_MV, "c.mv a0,a1", "add a0,zero,a1"},
    {0x9002, Op::C_EBREAK, "c.ebreak", "ebreak"},
    {0x9282, Op::C_JALR, "c.jalr t0", "jalr ra,0(t0)"},
    {0x952e, Op::C_ADD, "c.add a0,a1", "add a0,a0,a1"},
    {0xbfee, Op::C_FSDSP, "c.fsdsp fs11,504(sp)", "fsd fs11,504(sp)"},
    {0xdf86, Op::C_SWSP, "c.swsp ra,252(sp)", "sw ra,252(sp)"},
    {0xe07e, Op::C_SDSP, "c.sdsp t6,0(sp)", "sd t6,0(sp)"},
};
} // namespace

TEST_CASE("every RVC form expands to the right 32-bit instruction", "[riscv][decode][rvc]")
{
    std::set<Op> seen;
    for (const CCase &c : kCCases) {
        INFO(c.c_text);
        // The upper half of the word must not matter for a 16-bit parcel.
        const Insn in = decode(0xdead0000u | c.parcel);
        REQUIRE(in.cop == c.cop);
        seen.insert(c.cop);
        CHECK(in.len == 2);
        CHECK(in.craw == c.parcel);
        CHECK(in.op == info(c.cop).expands_to);
        CHECK(text(in, 0x1000) == c.c_text);
        // The expansion is an ordinary 32-bit instruction with the same fields.
        const Insn x = decode(in.raw);
        CHECK(x.len == 4);
        CHECK(x.op == in.op);
        CHECK(x.rd == in.rd);
        CHECK(x.rs1 == in.rs1);
        CHECK(x.rs2 == in.rs2);
        CHECK(x.imm == in.imm);
        CHECK(text(x, 0x1000) == c.expanded_text);
    }
    for (unsigned i = kFirstC; i < kNumOps; i++) {
        INFO(info(static_cast<Op>(i)).name);
        CHECK(seen.count(static_cast<Op>(i)) == 1);
    }
}

TEST_CASE("reserved and unknown encodings are ILLEGAL", "[riscv][decode][illegal]")
{
    const uint16_t reserved16[] = {
        0x0000, // all zeros (c.addi4spn with imm 0)
        0x0004, // c.addi4spn a1,sp,0
        0x6101, // c.addi16sp sp,0
        0x6501, // c.lui a0,0
        0x6001, // c.lui zero,0
        0x8002, // c.jr zero
        0x4002, // c.lwsp zero,...
        0x6002, // c.ldsp zero,0(sp)
        0x7002, // c.ldsp zero,32(sp)
        0x2001, // c.addiw zero,0
        0x2015, // c.addiw zero,5
        0x9c41, // c.subw with funct2=10 (reserved)
        0x9c61, // funct2=11 (reserved)
    };
    for (uint16_t p : reserved16) {
        INFO("parcel " << p);
        const Insn in = decode(p);
        CHECK(in.op == Op::ILLEGAL);
        CHECK(in.len == 2);
        CHECK(in.cop == Op::ILLEGAL);
    }
    const uint32_t reserved32[] = {
        0xffffffff, // bits 4:2 = 111: a longer-than-32-bit encoding
        0x0000001f, // 48-bit prefix
        0x00007003, // funct3 7 load: reserved
        0xfe0000b3, // add with funct7 all ones
        0x0000706b, // reserved opcode
        0x00c5d553, // fadd.s with rm=5
        0x0010100f, // fence.i with imm != 0 (binutils does not accept it either)
        0x10200173, // sret with rd != 0
        0x12b500f3, // sfence.vma with rd != 0
    };
    for (uint32_t w : reserved32) {
        INFO("word " << w);
        const Insn in = decode(w);
        CHECK(in.op == Op::ILLEGAL);
        CHECK(in.len == 4);
    }
    CHECK(text(decode(0x0000706b)) == ".4byte 0x706b");
    CHECK(text(decode(0x6101)) == ".2byte 0x6101");
    CHECK(text(decode(0x0000)) == "c.unimp");
}

TEST_CASE("random words never crash the decoder and decode consistently", "[riscv][decode][random]")
{
    std::mt19937 rng(12345);
    unsigned legal = 0;
    for (int i = 0; i < 200000; i++) {
        const uint32_t w = rng();
        const Insn in = decode(w);
        REQUIRE((in.len == 2 || in.len == 4));
        REQUIRE(in.len == ((w & 3) == 3 ? 4 : 2));
        REQUIRE(in.rd < 32);
        REQUIRE(in.rs1 < 32);
        REQUIRE(in.rs2 < 32);
        REQUIRE(in.rs3 < 32);
        const std::string s = disasm(in, 0x80000000);
        REQUIRE(!s.empty());
        if (in.op == Op::ILLEGAL) continue;
        legal++;
        const InsnInfo &r = info(in.op);
        REQUIRE((in.raw & r.mask) == r.match);
        if (in.len == 2) // the expansion decodes to the same instruction
            REQUIRE(decode(in.raw).op == in.op);
    }
    CHECK(legal > 10000);
}
