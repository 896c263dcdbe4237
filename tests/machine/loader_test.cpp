// SPDX-License-Identifier: MIT
// The guest image loader: ELF segments and raw images land in RAM/ROM, bss is zeroed, symbols are found,
// and every broken file (including fuzzed ones) is an error naming the file, never a crash.
#include <catch2/catch.hpp>

#include <fstream>
#include <random>

#include "loader.h"
#include "test_machine.h"

using namespace keel;

namespace
{

std::string image(const std::string &name)
{
    return std::string(TEST_IMAGE_DIR) + "/" + name;
}

std::vector<uint8_t> bytes_of(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::unique_ptr<Machine> board()
{
    return keel::test::build_machine(std::string(MACHINE_TEST_DIR) + "/cpuboard.yaml");
}

uint64_t rd(Machine &m, uint64_t addr, unsigned w = 8)
{
    uint64_t v = 0;
    REQUIRE(m.system_memory().read(addr, w, v) == KEEL_MEM_OK);
    return v;
}

std::string load_error(const std::string &name)
{
    auto m = board();
    try {
        GuestImage img = read_guest_image(image(name), 0x80000000);
        load_guest_image(img, m->system_memory(), "cpuboard", Machine::kOverlayPriority);
    } catch (const Error &e) {
        return e.what();
    }
    return "(loaded)";
}

} // namespace

TEST_CASE("an ELF's segments land in RAM with its entry and symbols", "[loader]")
{
    GuestImage img = read_guest_image(image("exit42.elf"), 0);
    CHECK(img.elf);
    CHECK(img.entry == 0x80000000);
    REQUIRE(img.segments.size() == 1);
    CHECK(img.segments[0].memsz == 0x1000);
    CHECK(img.symbols.at("_start") == 0x80000000);
    CHECK(img.symbols.at("mailbox") == 0x80000800);
    CHECK(img.symbols.at("local_only") == 0x80000010);
    auto m = board();
    // Garbage where the segment's zero-filled tail goes: the loader must clear it.
    std::vector<uint8_t> junk(0x2000, 0xa5);
    REQUIRE(m->system_memory().write_buf(0x80000000, junk.data(), junk.size()) == KEEL_MEM_OK);
    load_guest_image(img, m->system_memory(), "cpuboard", Machine::kOverlayPriority);
    CHECK(rd(*m, 0x80000000) == 1);        // first record: op STORE32
    CHECK(rd(*m, 0x80000008) == 0x100000); // to sifive-test
    CHECK(rd(*m, 0x80000010) == (0x3333u | (42u << 16)));
    CHECK(rd(*m, 0x80000030) == 0);                  // after filesz: zeroed
    CHECK(rd(*m, 0x80000ff8) == 0);                  // up to memsz
    CHECK(rd(*m, 0x80001000) == 0xa5a5a5a5a5a5a5a5); // beyond memsz: untouched
}

TEST_CASE("segments in ROM are loaded, bss in a second segment is zeroed", "[loader]")
{
    auto m = board();
    GuestImage img = read_guest_image(image("rom.elf"), 0);
    REQUIRE(img.segments.size() == 2);
    std::vector<uint8_t> junk(0x1000, 0xff);
    REQUIRE(m->system_memory().write_buf(0x80002000, junk.data(), junk.size()) == KEEL_MEM_OK);
    load_guest_image(img, m->system_memory(), "cpuboard", Machine::kOverlayPriority);
    CHECK(rd(*m, 0x20000000) == 1); // ROM holds the program
    CHECK(rd(*m, 0x80002000) == 0x1111111111111111);
    CHECK(rd(*m, 0x80002010) == 0);
    CHECK(rd(*m, 0x80002ff8) == 0);
    // The guest cannot write ROM; the loader could.
    REQUIRE(m->system_memory().write(0x20000000, 8, 0) == KEEL_MEM_OK);
    CHECK(rd(*m, 0x20000000) == 1);
}

TEST_CASE("ELF headers and padding below RAM in the first segment are skipped, as QEMU does", "[loader]")
{
    auto m = board();
    GuestImage img = read_guest_image(image("headers-below.elf"), 0);
    load_guest_image(img, m->system_memory(), "cpuboard", Machine::kOverlayPriority);
    CHECK(rd(*m, 0x80000008) == 0x100000);
    CHECK(rd(*m, 0x80000010) == (0x3333u | (42u << 16)));
    CHECK(load_error("junk-below.elf") ==
          image("junk-below.elf") +
              ": segment 0 (0x7ffff000..0x80000100) is not in RAM or ROM of machine 'cpuboard'");
}

TEST_CASE("a raw image is loaded whole at the given address", "[loader]")
{
    GuestImage img = read_guest_image(image("exit42.bin"), 0x80000100);
    CHECK_FALSE(img.elf);
    CHECK(img.entry == 0x80000100);
    CHECK(img.symbols.empty());
    auto m = board();
    load_guest_image(img, m->system_memory(), "cpuboard", Machine::kOverlayPriority);
    CHECK(rd(*m, 0x80000100) == 1);
    CHECK(rd(*m, 0x80000110) == (0x3333u | (42u << 16)));
}

TEST_CASE("the loader skips a device window placed on one of the image's symbols", "[loader][symbol]")
{
    GuestImage img = read_guest_image(image("exit42.elf"), 0);
    auto m = keel::test::build_machine(std::string(MACHINE_TEST_DIR) + "/cpuboard.yaml", {}, img.symbols);
    load_guest_image(img, m->system_memory(), "cpuboard", Machine::kOverlayPriority);
    CHECK(rd(*m, 0x80000800, 4) == 0x77); // the mailbox register, untouched by the load
    CHECK(rd(*m, 0x80000000) == 1);
}

TEST_CASE("every broken image is an error naming the file", "[loader][errors]")
{
    CHECK(load_error("outside.elf") ==
          image("outside.elf") + ": segment 1 (0x90000000..0x90001000) is not in RAM or ROM of machine "
                                 "'cpuboard'");
    CHECK(load_error("truncated.elf") ==
          image("truncated.elf") + ": program headers are past the end of the file (truncated?)");
    CHECK(load_error("aarch64.elf") ==
          image("aarch64.elf") + ": is an ELF file for AArch64 (machine 183), not for RISC-V (machine 243)");
    CHECK(load_error("elf32.elf") ==
          image("elf32.elf") + ": is a 32-bit ELF file (ELFCLASS32); keel loads 64-bit (ELFCLASS64) images");
    CHECK(load_error("bigendian.elf") ==
          image("bigendian.elf") + ": is a big-endian ELF file; RISC-V images are little-endian");
    CHECK(load_error("relocatable.elf") ==
          image("relocatable.elf") +
              ": is not an executable (ELF type 1: relocatable object); link it into a static executable");
    CHECK(load_error("short-segment.elf") ==
          image("short-segment.elf") + ": segment 0: its file bytes (offset 0x1000, 0x30 bytes) are past the "
                                       "end of the file (truncated?)");
    CHECK(load_error("no-such-file.elf") ==
          image("no-such-file.elf") + ": cannot open: No such file or directory");
    // A raw image too large for RAM.
    std::vector<uint8_t> big(2 << 20, 0);
    auto m = board();
    GuestImage raw = parse_guest_image("big.bin", big, 0x80000000);
    CHECK_THROWS_WITH(load_guest_image(raw, m->system_memory(), "cpuboard", 1),
                      "big.bin: image (0x80000000..0x80200000) is not in RAM or ROM of machine 'cpuboard'");
    CHECK_THROWS_WITH(parse_guest_image("empty.bin", {}, 0x80000000), "empty.bin: is empty");
}

TEST_CASE("fuzzed ELF files give errors, never crashes", "[loader][fuzz]")
{
    const std::vector<uint8_t> good = bytes_of(image("rom.elf"));
    REQUIRE(good.size() > 0x1000);
    std::mt19937_64 rng(12345);
    auto m = board();
    unsigned errors = 0, loaded = 0;
    for (int i = 0; i < 3000; ++i) {
        std::vector<uint8_t> b = good;
        // Mostly corrupt the headers (where the loader's trust is tested), sometimes anywhere.
        int flips = 1 + static_cast<int>(rng() % 8);
        for (int k = 0; k < flips; ++k) {
            size_t at = rng() % 4 ? rng() % 0x100 : rng() % b.size();
            if (at < 4) continue; // keep the magic: otherwise it is a raw image
            b[at] = static_cast<uint8_t>(rng());
        }
        if (rng() % 4 == 0) b.resize(rng() % b.size());
        try {
            GuestImage img = parse_guest_image("fuzz.elf", std::move(b), 0x80000000);
            load_guest_image(img, m->system_memory(), "cpuboard", 1);
            ++loaded;
        } catch (const Error &e) {
            CHECK(std::string(e.what()).rfind("fuzz.elf: ", 0) == 0);
            ++errors;
        }
    }
    CHECK(errors > 0);
    CHECK(loaded > 0);
}
