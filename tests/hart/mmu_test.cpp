// SPDX-License-Identifier: MIT
// Address translation on the hart: Sv39/Sv48 walks over fake RAM, superpages, faults, A/D updates and PMP.
#include <catch2/catch.hpp>

#include "hart.h"

using namespace hart_test;

namespace
{

constexpr uint64_t V = 1, R = 2, W = 4, X = 8, U = 16, A = 64, D = 128;
constexpr uint64_t ROOT = 0x80100000;

// Page tables built in the fake RAM, tables allocated after the root.
struct PageTables {
    Hart &h;
    unsigned levels;
    uint64_t next = ROOT + 0x1000;

    PageTables(Hart &hart, unsigned n) : h(hart), levels(n) {}

    // Map `va` with a leaf at `leaf_level` (0: 4 KiB, 1: 2 MiB, 2: 1 GiB) to `pa`; returns the PTE address.
    uint64_t map(uint64_t va, uint64_t pa, uint64_t flags, unsigned leaf_level = 0)
    {
        uint64_t table = ROOT;
        for (unsigned l = levels - 1; l > leaf_level; l--) {
            uint64_t a = table + ((va >> (12 + 9 * l)) & 511) * 8;
            uint64_t pte = h.get64(a);
            if (!(pte & V)) {
                pte = ((next >> 12) << 10) | V;
                next += 0x1000;
                h.put64(a, pte);
            }
            table = (pte >> 10) << 12;
        }
        uint64_t a = table + ((va >> (12 + 9 * leaf_level)) & 511) * 8;
        h.put64(a, ((pa >> 12) << 10) | flags);
        return a;
    }
    uint64_t satp() const { return (uint64_t(levels == 3 ? SATP_SV39 : SATP_SV48) << 60) | (ROOT >> 12); }
};

struct Fill {
    int rc;
    KeelTlbFill out;
};

Fill fill(Hart &h, uint64_t va, KeelAccess access, unsigned idx, int probe = 0)
{
    Fill f{};
    f.rc = cpu_tlb_fill(&h.cpu, va, access, idx, probe, &f.out);
    return f;
}

constexpr uint32_t RWX = KEEL_PROT_READ | KEEL_PROT_WRITE | KEEL_PROT_EXEC;

} // namespace

TEST_CASE("M mode and satp Bare translate to the same address", "[hart][mmu]")
{
    Hart h;
    h.cpu.satp = (8ull << 60) | (ROOT >> 12); // ignored in M
    Fill f = fill(h, 0x80001234, KEEL_ACCESS_WRITE, MMU_M);
    REQUIRE(f.rc == KEEL_OK);
    CHECK(f.out.paddr == 0x80001234);
    CHECK(f.out.prot == RWX);
    CHECK(f.out.page_bits == 12);

    h.cpu.satp = 0;
    h.pmp_allow_all();
    f = fill(h, 0x80005678, KEEL_ACCESS_EXEC, MMU_S);
    REQUIRE(f.rc == KEEL_OK);
    CHECK(f.out.paddr == 0x80005678);
    CHECK(h.clean());
}

TEST_CASE("Sv39 4 KiB pages: translation, A and D updates, write permission after D", "[hart][mmu]")
{
    Hart h;
    h.pmp_allow_all();
    PageTables pt(h, 3);
    uint64_t pte = pt.map(0x40001000, 0x80200000, V | R | W);
    h.cpu.satp = pt.satp();

    Fill f = fill(h, 0x40001abc, KEEL_ACCESS_READ, MMU_S);
    REQUIRE(f.rc == KEEL_OK);
    CHECK(f.out.paddr == 0x80200abc);
    CHECK(f.out.page_bits == 12);
    CHECK(f.out.prot == KEEL_PROT_READ); // no WRITE until D is set
    CHECK(h.get64(pte) == (((0x80200000ull >> 12) << 10) | V | R | W | A));

    f = fill(h, 0x40001abc, KEEL_ACCESS_WRITE, MMU_S);
    REQUIRE(f.rc == KEEL_OK);
    CHECK(f.out.prot == (KEEL_PROT_READ | KEEL_PROT_WRITE));
    CHECK(h.get64(pte) == (((0x80200000ull >> 12) << 10) | V | R | W | A | D));

    // Negative addresses are canonical: the top half maps through vpn[2] = 256.
    pt.map(0xffffffc000002000, 0x80201000, V | X | A);
    f = fill(h, 0xffffffc000002010, KEEL_ACCESS_EXEC, MMU_S);
    REQUIRE(f.rc == KEEL_OK);
    CHECK(f.out.paddr == 0x80201010);
    CHECK(f.out.prot == KEEL_PROT_EXEC);
    CHECK(h.clean());
}

TEST_CASE("Sv48 walks and superpages", "[hart][mmu]")
{
    Hart h;
    h.pmp_allow_all();
    PageTables pt(h, 4);
    h.cpu.satp = pt.satp();
    pt.map(0x0000100000000000, 0x80003000, V | R | A);
    pt.map(0x0000200000200000, 0x80200000, V | R | W | A | D, 1); // 2 MiB
    pt.map(0x0000300040000000, 0x80000000, V | R | X | A, 2);     // 1 GiB
    pt.map(0x0000400000400000, 0x80201000, V | R | A, 1);         // 2 MiB, misaligned target

    Fill f = fill(h, 0x0000100000000008, KEEL_ACCESS_READ, MMU_S);
    REQUIRE(f.rc == KEEL_OK);
    CHECK(f.out.paddr == 0x80003008);

    f = fill(h, 0x00002000003f0123, KEEL_ACCESS_WRITE, MMU_S);
    REQUIRE(f.rc == KEEL_OK);
    CHECK(f.out.paddr == 0x803f0123);
    CHECK(f.out.page_bits == 21);
    CHECK(f.out.prot == (KEEL_PROT_READ | KEEL_PROT_WRITE));

    f = fill(h, 0x0000300040123456, KEEL_ACCESS_EXEC, MMU_S);
    REQUIRE(f.rc == KEEL_OK);
    CHECK(f.out.paddr == 0x80123456);
    CHECK(f.out.page_bits == 30);

    f = fill(h, 0x0000400000400000, KEEL_ACCESS_READ, MMU_S);
    CHECK(f.rc == KEEL_ERR);
    CHECK(h.cpu.exc_tval == 0x0000400000400000);
    CHECK(h.raised(EXC_LOAD_PAGE_FAULT));

    // Sv48 canonical: bit 47 copied upward.
    fill(h, 0x0000800000000000, KEEL_ACCESS_READ, MMU_S);
    CHECK(h.raised(EXC_LOAD_PAGE_FAULT));
}

TEST_CASE("Page faults: invalid and reserved PTEs, non-canonical addresses, missing leaf", "[hart][mmu]")
{
    Hart h;
    h.pmp_allow_all();
    PageTables pt(h, 3);
    h.cpu.satp = pt.satp();
    pt.map(0x1000, 0x80200000, R | W | A | D);            // V = 0
    pt.map(0x2000, 0x80200000, V | W | A | D);            // W without R
    pt.map(0x3000, 0x80200000, V | R | A | (1ull << 54)); // reserved bit
    pt.map(0x4000, 0x80200000, V | R | A | (1ull << 61)); // PBMT
    pt.map(0x5000, 0x80200000, V | R | A | (1ull << 63)); // Svnapot N
    uint64_t ptr = pt.map(0x6000, 0x80300000, V);         // a pointer at level 0

    for (uint64_t va : {0x1000ull, 0x2000ull, 0x3000ull, 0x4000ull, 0x5000ull, 0x6000ull}) {
        INFO("va " << va);
        CHECK(fill(h, va, KEEL_ACCESS_READ, MMU_S).rc == KEEL_ERR);
        CHECK(h.cpu.exc_tval == va);
        CHECK(h.raised(EXC_LOAD_PAGE_FAULT));
        fill(h, va, KEEL_ACCESS_WRITE, MMU_S);
        CHECK(h.raised(EXC_STORE_PAGE_FAULT));
        fill(h, va, KEEL_ACCESS_EXEC, MMU_U);
        CHECK(h.raised(EXC_INSN_PAGE_FAULT));
    }
    CHECK(h.get64(ptr) == (((0x80300000ull >> 12) << 10) | V));
    fill(h, 0x0000008000000000, KEEL_ACCESS_READ, MMU_S); // bit 38 clear, bit 39 set
    CHECK(h.raised(EXC_LOAD_PAGE_FAULT));
    fill(h, 0x7000, KEEL_ACCESS_READ, MMU_S); // nothing mapped
    CHECK(h.raised(EXC_LOAD_PAGE_FAULT));
}

TEST_CASE("U, SUM and MXR permission rules", "[hart][mmu]")
{
    Hart h;
    h.pmp_allow_all();
    PageTables pt(h, 3);
    h.cpu.satp = pt.satp();
    uint64_t user = pt.map(0x10000, 0x80200000, V | R | W | X | U);
    pt.map(0x11000, 0x80201000, V | R | W | X | A | D);
    pt.map(0x12000, 0x80202000, V | X | A | U);

    // S on a user page: not without SUM; with SUM loads/stores but never fetches.
    fill(h, 0x10000, KEEL_ACCESS_READ, MMU_S);
    CHECK(h.raised(EXC_LOAD_PAGE_FAULT));
    CHECK((h.get64(user) & A) == 0); // a failed check does not set A
    h.cpu.mstatus |= MSTATUS_SUM;
    Fill f = fill(h, 0x10000, KEEL_ACCESS_READ, MMU_S);
    REQUIRE(f.rc == KEEL_OK);
    CHECK(f.out.prot == KEEL_PROT_READ);
    fill(h, 0x10000, KEEL_ACCESS_EXEC, MMU_S);
    CHECK(h.raised(EXC_INSN_PAGE_FAULT));

    // U on a supervisor page: never.
    fill(h, 0x11000, KEEL_ACCESS_READ, MMU_U);
    CHECK(h.raised(EXC_LOAD_PAGE_FAULT));
    f = fill(h, 0x10000, KEEL_ACCESS_EXEC, MMU_U);
    REQUIRE(f.rc == KEEL_OK);
    CHECK(f.out.prot == (KEEL_PROT_READ | KEEL_PROT_EXEC)); // D still clear: no WRITE

    // Execute-only pages are readable with MXR only.
    fill(h, 0x12000, KEEL_ACCESS_READ, MMU_U);
    CHECK(h.raised(EXC_LOAD_PAGE_FAULT));
    h.cpu.mstatus |= MSTATUS_MXR;
    f = fill(h, 0x12000, KEEL_ACCESS_READ, MMU_U);
    REQUIRE(f.rc == KEEL_OK);
    CHECK(f.out.prot == (KEEL_PROT_READ | KEEL_PROT_EXEC));
    fill(h, 0x12000, KEEL_ACCESS_WRITE, MMU_U);
    CHECK(h.raised(EXC_STORE_PAGE_FAULT));
}

TEST_CASE("Access faults: page tables outside RAM, probe records nothing", "[hart][mmu]")
{
    Hart h;
    h.pmp_allow_all();
    h.cpu.satp = (8ull << 60) | (0x10000000ull >> 12); // root in MMIO space: nothing answers
    CHECK(fill(h, 0x1000, KEEL_ACCESS_READ, MMU_S).rc == KEEL_ERR);
    CHECK(h.raised(EXC_LOAD_ACCESS));
    fill(h, 0x1000, KEEL_ACCESS_WRITE, MMU_S);
    CHECK(h.raised(EXC_STORE_ACCESS));
    fill(h, 0x1000, KEEL_ACCESS_EXEC, MMU_S);
    CHECK(h.cpu.exc_tval == 0x1000);
    CHECK(h.raised(EXC_INSN_ACCESS));

    CHECK(fill(h, 0x1000, KEEL_ACCESS_READ, MMU_S, 1).rc == KEEL_ERR);
    CHECK(h.clean());
    CHECK(h.cpu.exc_cause == EXC_INSN_ACCESS); // unchanged
}

TEST_CASE("PMP: S and U need a matching entry, M needs one only when it is locked", "[hart][mmu][pmp]")
{
    Hart h;
    SECTION("no entries")
    {
        CHECK(fill(h, 0x80000000, KEEL_ACCESS_READ, MMU_M).rc == KEEL_OK);
        CHECK(fill(h, 0x80000000, KEEL_ACCESS_READ, MMU_S).rc == KEEL_ERR);
        CHECK(h.raised(EXC_LOAD_ACCESS));
        fill(h, 0x80000000, KEEL_ACCESS_EXEC, MMU_U);
        CHECK(h.raised(EXC_INSN_ACCESS));
    }
    SECTION("pmp=false checks nothing")
    {
        h.cpu.pmp_enabled = false;
        CHECK(fill(h, 0x80000000, KEEL_ACCESS_WRITE, MMU_U).rc == KEEL_OK);
    }
    SECTION("TOR region with R|W")
    {
        h.cpu.pmpaddr[0] = 0x80000000 >> 2;
        h.cpu.pmpaddr[1] = 0x80010000 >> 2;
        h.cpu.pmpcfg[1] = PMP_R | PMP_W | (PMP_TOR << 3);
        Fill f = fill(h, 0x80008000, KEEL_ACCESS_WRITE, MMU_S);
        REQUIRE(f.rc == KEEL_OK);
        CHECK(f.out.prot == (KEEL_PROT_READ | KEEL_PROT_WRITE));
        CHECK(f.out.page_bits == 12);
        fill(h, 0x80008000, KEEL_ACCESS_EXEC, MMU_S);
        CHECK(h.raised(EXC_INSN_ACCESS));
        fill(h, 0x80010000, KEEL_ACCESS_READ, MMU_S); // just above the top
        CHECK(h.raised(EXC_LOAD_ACCESS));
        fill(h, 0x7ffffffc, KEEL_ACCESS_READ, MMU_S); // just below the base
        CHECK(h.raised(EXC_LOAD_ACCESS));
    }
    SECTION("the lowest-numbered matching entry decides")
    {
        h.cpu.pmpaddr[0] = (0x80300000 >> 2) | 0x1ff; // NAPOT 4 KiB, no permissions
        h.cpu.pmpcfg[0] = PMP_NAPOT << 3;
        h.pmp_allow_all();
        fill(h, 0x80300800, KEEL_ACCESS_READ, MMU_S);
        CHECK(h.raised(EXC_LOAD_ACCESS));
        CHECK(fill(h, 0x80301000, KEEL_ACCESS_READ, MMU_S).rc == KEEL_OK);
        // Unlocked entries do not bind M; locked ones do.
        CHECK(fill(h, 0x80300800, KEEL_ACCESS_READ, MMU_M).rc == KEEL_OK);
        h.cpu.pmpcfg[0] |= PMP_L;
        fill(h, 0x80300800, KEEL_ACCESS_READ, MMU_M);
        CHECK(h.raised(EXC_LOAD_ACCESS));
    }
    SECTION("a region smaller than a page is not cached")
    {
        h.cpu.pmpaddr[0] = (0x80200000 >> 2) | 0x7; // NAPOT 64 bytes, read-only, locked
        h.cpu.pmpcfg[0] = PMP_R | PMP_L | (PMP_NAPOT << 3);
        h.pmp_allow_all();
        Fill f = fill(h, 0x80200010, KEEL_ACCESS_READ, MMU_M);
        REQUIRE(f.rc == KEEL_OK);
        CHECK(f.out.prot == KEEL_PROT_READ);
        CHECK(f.out.page_bits == 0);
        fill(h, 0x80200010, KEEL_ACCESS_WRITE, MMU_M);
        CHECK(h.raised(EXC_STORE_ACCESS));
        f = fill(h, 0x80200040, KEEL_ACCESS_WRITE, MMU_M); // same page, outside the region
        REQUIRE(f.rc == KEEL_OK);
        CHECK(f.out.prot == RWX);
        CHECK(f.out.page_bits == 0);
        f = fill(h, 0x80201000, KEEL_ACCESS_WRITE, MMU_M);
        REQUIRE(f.rc == KEEL_OK);
        CHECK(f.out.page_bits == 12);
    }
    SECTION("NA4")
    {
        h.cpu.pmpaddr[2] = 0x80000004 >> 2;
        h.cpu.pmpcfg[2] = PMP_X | (PMP_NA4 << 3);
        CHECK(fill(h, 0x80000004, KEEL_ACCESS_EXEC, MMU_U).rc == KEEL_OK);
        fill(h, 0x80000008, KEEL_ACCESS_EXEC, MMU_U);
        CHECK(h.raised(EXC_INSN_ACCESS));
    }
}

TEST_CASE("PMP applies to page-table accesses and limits superpage caching", "[hart][mmu][pmp]")
{
    Hart h;
    PageTables pt(h, 3);
    h.cpu.satp = pt.satp();
    pt.map(0x40000000, 0x80200000, V | R | W | A | D, 1); // 2 MiB over 0x80200000-0x803fffff
    h.pmp_allow_all();

    SECTION("a PMP region inside the superpage: cache 4 KiB pages")
    {
        h.cpu.pmpaddr[0] = (0x80300000 >> 2) | 0x1ff; // 4 KiB, read-only
        h.cpu.pmpcfg[0] = PMP_R | (PMP_NAPOT << 3);
        Fill f = fill(h, 0x40000000, KEEL_ACCESS_WRITE, MMU_S);
        REQUIRE(f.rc == KEEL_OK);
        CHECK(f.out.page_bits == 12);
        f = fill(h, 0x40100000, KEEL_ACCESS_READ, MMU_S);
        REQUIRE(f.rc == KEEL_OK);
        CHECK(f.out.prot == KEEL_PROT_READ);
        fill(h, 0x40100000, KEEL_ACCESS_WRITE, MMU_S);
        CHECK(h.raised(EXC_STORE_ACCESS)); // PMP: access fault, not page fault
    }
    SECTION("page tables PMP-protected from S: access fault at the walk")
    {
        h.cpu.pmpaddr[0] = (ROOT >> 2) | 0x1fff; // 64 KiB over the tables, no permissions
        h.cpu.pmpcfg[0] = PMP_NAPOT << 3;
        fill(h, 0x40000000, KEEL_ACCESS_READ, MMU_S);
        CHECK(h.cpu.exc_tval == 0x40000000);
        CHECK(h.raised(EXC_LOAD_ACCESS));
    }
    SECTION("page tables read-only under PMP: the A/D update is an access fault")
    {
        pt.map(0x50000000, 0x80200000, V | R | W); // A and D clear
        h.cpu.pmpaddr[0] = (ROOT >> 2) | 0x1fff;
        h.cpu.pmpcfg[0] = PMP_R | (PMP_NAPOT << 3);
        fill(h, 0x50000000, KEEL_ACCESS_READ, MMU_S);
        CHECK(h.raised(EXC_LOAD_ACCESS));
        CHECK(fill(h, 0x40000000, KEEL_ACCESS_READ, MMU_S).rc == KEEL_OK); // A already set
    }
}
