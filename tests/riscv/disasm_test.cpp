// SPDX-License-Identifier: MIT
// Compares the RISC-V disassembler with riscv64-unknown-elf-objdump -M no-aliases over generated and random
// code.
#include "decode.h"
#include "disasm.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

using namespace keel::rv;

namespace
{

struct Line {
    uint64_t addr;
    std::string text;
};

// Whitespace runs become one space; objdump's " <symbol+off>" after
// addresses and its "# address" comments (it tracks lui/auipc values across
// instructions, which a one-instruction disassembler cannot) are dropped.
std::string normalise(std::string s)
{
    static const std::regex sym(R"( ?<[^>]*>)");
    static const std::regex comment(R"(\s*#.*$)");
    static const std::regex ws(R"(\s+)");
    s = std::regex_replace(s, sym, "");
    s = std::regex_replace(s, comment, "");
    s = std::regex_replace(s, ws, " ");
    while (!s.empty() && s.back() == ' ')
        s.pop_back();
    return s;
}

std::vector<Line> read_listing(const std::string &path)
{
    std::ifstream f(path);
    REQUIRE(f.good());
    std::vector<Line> out;
    static const std::regex line(R"(^\s*([0-9a-f]+):\t[0-9a-f ]+\t(.*)$)");
    std::string l;
    std::smatch m;
    while (std::getline(f, l))
        if (std::regex_match(l, m, line))
            out.push_back({std::stoull(m[1].str(), nullptr, 16), normalise(m[2].str())});
    return out;
}

std::vector<uint8_t> read_bin(const std::string &path)
{
    std::ifstream f(path, std::ios::binary);
    REQUIRE(f.good());
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

struct Walked {
    uint64_t addr;
    Insn insn;
    std::string text;
};

// Walks the bytes the way objdump does: 16-bit parcels, 32 bits when the
// low two bits are 11.
std::vector<Walked> walk(const std::vector<uint8_t> &b, uint64_t base)
{
    std::vector<Walked> out;
    for (size_t off = 0; off + 2 <= b.size();) {
        uint32_t w = b[off] | b[off + 1] << 8;
        if ((w & 3) == 3 && off + 4 <= b.size())
            w |= static_cast<uint32_t>(b[off + 2]) << 16 | static_cast<uint32_t>(b[off + 3]) << 24;
        const Insn in = decode(w);
        out.push_back({base + off, in, normalise(disasm(in, base + off))});
        off += in.len;
    }
    return out;
}

bool objdump_rejects(const std::string &t)
{
    return t.rfind(".4byte", 0) == 0 || t.rfind(".2byte", 0) == 0 || t == "c.unimp" ||
           t.find("unknown") != std::string::npos;
}

} // namespace

TEST_CASE("disassembly of every table row matches objdump", "[riscv][disasm][objdump]")
{
    const auto expected = read_listing(RV_GEN_DIR "/listing.lst");
    const auto got = walk(read_bin(RV_GEN_DIR "/listing.bin"), RV_BASE);
    REQUIRE(expected.size() > 5000);
    REQUIRE(got.size() == expected.size());
    std::map<Op, unsigned> per_op;
    unsigned mismatches = 0;
    for (size_t i = 0; i < got.size(); i++) {
        INFO("line " << i);
        CHECK(got[i].addr == expected[i].addr);
        if (got[i].text != expected[i].text && ++mismatches <= 50) CHECK(got[i].text == expected[i].text);
        per_op[got[i].insn.cop != Op::ILLEGAL ? got[i].insn.cop : got[i].insn.op]++;
    }
    CHECK(mismatches == 0);
    // Every row but Zicond (which binutils 2.40 does not know) is in there.
    for (unsigned i = 0; i < kNumOps; i++) {
        const Op op = static_cast<Op>(i);
        if (info(op).ext == Ext::Zicond) continue;
        INFO(info(op).name);
        CHECK(per_op[op] > 0);
    }
    std::printf("riscv_disasm_test: %zu instructions compared with objdump\n", got.size());
}

TEST_CASE("random words: what objdump rejects is ILLEGAL, the rest prints alike",
          "[riscv][disasm][objdump][random]")
{
    const auto expected = read_listing(RV_GEN_DIR "/random.lst");
    const auto got = walk(read_bin(RV_GEN_DIR "/random.bin"), RV_BASE);
    REQUIRE(got.size() == expected.size());
    unsigned both_legal = 0, both_illegal = 0, stricter = 0, known = 0, mismatches = 0;
    for (size_t i = 0; i < got.size(); i++) {
        const Insn &in = got[i].insn;
        const std::string &theirs = expected[i].text;
        REQUIRE(got[i].addr == expected[i].addr);
        if (got[i].text == theirs) {
            (in.op == Op::ILLEGAL ? both_illegal : both_legal)++;
            continue;
        }
        const bool they_reject = objdump_rejects(theirs);
        if (in.op == Op::ILLEGAL && they_reject) { // e.g. rm=5/6, which objdump prints as "unknown"
            both_illegal++;
            continue;
        }
        if (in.op == Op::ILLEGAL && !they_reject) {
            // Encodings binutils still prints that are reserved in the
            // current specs: c.addi16sp with immediate 0, and
            // instructions of old privileged specs (uret, hret, sfence.vm) or
            // of debug mode (dret), which keel does not implement.
            static const std::regex reserved(R"((c\.addi16sp sp,0|uret|hret|dret|sfence\.vm( \w+)?))");
            const bool allowed = std::regex_match(theirs, reserved);
            INFO("word " << std::hex << in.raw << ": objdump says " << theirs);
            CHECK(allowed);
            stricter++;
            continue;
        }
        if (in.op != Op::ILLEGAL && they_reject) {
            // Encodings binutils 2.40 does not know: Zicond, the exact fp
            // conversions with rm other than 000, and fence with nonzero
            // fm/rs1/rd (reserved fields the spec says to ignore).
            const bool allowed =
                info(in.op).ext == Ext::Zicond || (in.op == Op::FENCE && (in.raw & 0xf00f8f80)) ||
                ((in.op == Op::FCVT_D_W || in.op == Op::FCVT_D_WU || in.op == Op::FCVT_D_S) && in.rm != 0);
            INFO("word " << std::hex << in.raw << ": we say " << got[i].text << ", objdump says " << theirs);
            CHECK(allowed);
            known++;
            continue;
        }
        INFO("word " << std::hex << in.raw);
        if (++mismatches <= 50) CHECK(got[i].text == theirs);
    }
    CHECK(mismatches == 0);
    CHECK(both_legal > 2000);
    std::printf(
        "riscv_disasm_test: random: %zu words, %u legal and identical, %u illegal for both, %u reserved "
        "ones objdump prints, %u objdump does not know\n",
        got.size(), both_legal, both_illegal, stricter, known);
}
