// SPDX-License-Identifier: MIT
// Sv39 (LEVELS=3) or Sv48 (LEVELS=4) paging: identity and remapped pages, 2M/1G superpages, faults (V, U/SUM,
// MXR, W-only, misaligned superpage, non-canonical), A/D updates in memory, sfence.vma after a remap.
#include "rt.h"

#ifndef LEVELS
#error "build with -DLEVELS=3 (Sv39) or -DLEVELS=4 (Sv48)"
#endif

#define V 0x01
#define R 0x02
#define W 0x04
#define X 0x08
#define U 0x10
#define A 0x40
#define D 0x80

#define SATP_MODE (LEVELS == 3 ? 8ull : 9ull)
#define VA_BITS (12 + 9 * LEVELS)

// Test pages (physical), and a 2 MiB region well past the image.
static volatile uint64_t page[8][512] __attribute__((aligned(4096)));
#define BIG_PA 0x81000000ull

#define VA_REMAP 0x40000000ull
#define VA_UPAGE 0x40001000ull
#define VA_XONLY 0x40002000ull
#define VA_AD 0x40003000ull
#define VA_WONLY 0x40004000ull
#define VA_RO 0x40005000ull
#define VA_2M 0x40200000ull
#define VA_BAD2M 0x40400000ull
#define VA_1G 0xc0000000ull
#define VA_HOLE 0x50000000ull

static uint64_t pool[24][512] __attribute__((aligned(4096)));
static unsigned used;

static uint64_t *new_table(void)
{
    uint64_t *t = pool[used++];
    memset(t, 0, 4096);
    return t;
}

// Maps va to pa with a leaf at `level` (0: 4 KiB, 1: 2 MiB, 2: 1 GiB); returns the PTE's address.
static volatile uint64_t *map(uint64_t *root, uint64_t va, uint64_t pa, int level, uint64_t flags)
{
    uint64_t *t = root;
    for (int l = LEVELS - 1; l > level; l--) {
        unsigned i = (va >> (12 + 9 * l)) & 511;
        if (!(t[i] & V)) t[i] = ((uint64_t)new_table() >> 12) << 10 | V;
        t = (uint64_t *)((t[i] >> 10) << 12);
    }
    unsigned i = (va >> (12 + 9 * level)) & 511;
    t[i] = (pa >> 12) << 10 | flags | V;
    return &t[i];
}

static void use(uint64_t *root)
{
    CSR_WRITE(satp, SATP_MODE << 60 | (uint64_t)root >> 12);
    __asm__ volatile("sfence.vma" ::: "memory");
}

static uint64_t pte_of(uint64_t pa, uint64_t flags)
{
    return (pa >> 12) << 10 | flags | V;
}

static volatile uint64_t remap_before, remap_after;
// S mode: read, repoint the PTE, sfence.vma, read again.
static uint64_t s_remap(uint64_t pte_addr, uint64_t new_pte)
{
    remap_before = *(volatile uint64_t *)VA_REMAP;
    *(volatile uint64_t *)pte_addr = new_pte;
    __asm__ volatile("sfence.vma" ::: "memory");
    remap_after = *(volatile uint64_t *)VA_REMAP;
    return 0;
}

static volatile uint64_t marker = 0x5eed5eed5eed5eedull;

// Expect one trap with this cause and tval from fn(arg) in mode.
#define EXPECT_FAULT(mode, fn, arg, cause) \
    do {                                   \
        rt_expect_trap();                  \
        rt_run(mode, fn, arg, 0);          \
        CHECK_TRAP(cause, arg);            \
    } while (0)
#define EXPECT_OK(mode, fn, arg, want)          \
    do {                                        \
        rt_expect_trap();                       \
        uint64_t _v = rt_run(mode, fn, arg, 0); \
        CHECK_NO_TRAP();                        \
        CHECK_EQ(_v, want);                     \
    } while (0)

static void supervisor(void)
{
    uint64_t *root = new_table();
    // Identity map of RAM as one 1 GiB superpage (global, kernel only).
    map(root, 0x80000000, 0x80000000, 2, R | W | X | A | D);
    volatile uint64_t *remap_pte = map(root, VA_REMAP, (uint64_t)page[0], 0, R | W | A | D);
    map(root, VA_UPAGE, (uint64_t)page[1], 0, R | W | X | U | A | D);
    map(root, VA_XONLY, (uint64_t)page[2], 0, X | A);
    volatile uint64_t *ad_pte = map(root, VA_AD, (uint64_t)page[3], 0, R | W);
    map(root, VA_WONLY, (uint64_t)page[4], 0, W | A | D);
    map(root, VA_2M, BIG_PA, 1, R | W | A | D);
    map(root, VA_BAD2M, BIG_PA + 0x1000, 1, R | W | A | D); // PPN[0] != 0: misaligned superpage
    map(root, VA_1G, 0x80000000, 2, R | A);
    for (int i = 0; i < 8; i++)
        page[i][0] = 0x1000 + i;
    page[1][1] = 0x8082; // c.ret, for fetch tests
    *(volatile uint64_t *)(BIG_PA + 0x12340) = 0xb16b16;
    use(root);

    // Translated accesses: a remapped 4 KiB page, a 2 MiB and a 1 GiB superpage.
    EXPECT_OK(MODE_S, rt_ld, VA_REMAP, 0x1000);
    rt_expect_trap();
    rt_run(MODE_S, rt_sd, VA_REMAP + 8, 0xabc);
    CHECK_NO_TRAP();
    CHECK_EQ(page[0][1], 0xabc);
    EXPECT_OK(MODE_S, rt_ld, VA_2M + 0x12340, 0xb16b16);
    EXPECT_OK(MODE_S, rt_ld, VA_1G + ((uint64_t)&marker - 0x80000000), 0x5eed5eed5eed5eedull);
    // Read-only superpage: store fault.
    EXPECT_FAULT(MODE_S, rt_sd, VA_1G + ((uint64_t)&marker - 0x80000000), 15);

    // Invalid PTE: load, store and fetch page faults with the address in stval... here mtval.
    EXPECT_FAULT(MODE_S, rt_ld, VA_HOLE, 13);
    EXPECT_FAULT(MODE_S, rt_sd, VA_HOLE + 0x10, 15);
    EXPECT_FAULT(MODE_S, rt_call, VA_HOLE, 12);
    // Reserved encodings: W without R, and a superpage whose low PPN bits are not zero.
    EXPECT_FAULT(MODE_S, rt_ld, VA_WONLY, 13);
    EXPECT_FAULT(MODE_S, rt_ld, VA_BAD2M, 13);
    // Non-canonical: bits above the top VA bit must copy it.
    EXPECT_FAULT(MODE_S, rt_ld, 1ull << (VA_BITS - 1), 13);
    EXPECT_FAULT(MODE_S, rt_ld, 0x8000000080000000ull, 13);

    // U pages from S: denied unless SUM; never executable from S.
    EXPECT_FAULT(MODE_S, rt_ld, VA_UPAGE, 13);
    CSR_SET(mstatus, MSTATUS_SUM);
    EXPECT_OK(MODE_S, rt_ld, VA_UPAGE, 0x1001);
    EXPECT_FAULT(MODE_S, rt_call, VA_UPAGE + 8, 12);
    CSR_CLEAR(mstatus, MSTATUS_SUM);
    // Execute-only page: readable only with MXR.
    EXPECT_FAULT(MODE_S, rt_ld, VA_XONLY, 13);
    CSR_SET(mstatus, MSTATUS_MXR);
    EXPECT_OK(MODE_S, rt_ld, VA_XONLY, 0x1002);
    CSR_CLEAR(mstatus, MSTATUS_MXR);

    // A and D: a load sets A, a store sets D, in the PTE in memory. (The spec also allows raising page
    // faults instead, Svade; keel and QEMU update the bits, Svadu-style.)
    CHECK_EQ(*ad_pte & (A | D), 0);
    EXPECT_OK(MODE_S, rt_ld, VA_AD, 0x1003);
    CHECK_EQ(*ad_pte & (A | D), A);
    __asm__ volatile("sfence.vma" ::: "memory");
    rt_expect_trap();
    rt_run(MODE_S, rt_sd, VA_AD, 77);
    CHECK_NO_TRAP();
    CHECK_EQ(*ad_pte & (A | D), A | D);
    CHECK_EQ(page[3][0], 77);

    // Remap then sfence.vma (from S): the new translation is used.
    rt_expect_trap();
    rt_run(MODE_S, s_remap, (uint64_t)remap_pte, pte_of((uint64_t)page[5], R | W | A | D));
    CHECK_NO_TRAP();
    CHECK_EQ(remap_before, 0x1000);
    CHECK_EQ(remap_after, 0x1005);

#if LEVELS == 4
    // Sv48 reaches 47-bit addresses (non-canonical in Sv39), and has 512 GiB superpages.
    map(root, 0x0000100000000000ull, (uint64_t)page[6], 0, R | A);
    map(root, 0x0000008000000000ull, 0, 3, R | A); // VA 512 GiB..1 TiB -> PA 0..512 GiB
    __asm__ volatile("sfence.vma" ::: "memory");
    EXPECT_OK(MODE_S, rt_ld, 0x0000100000000000ull, 0x1006);
    EXPECT_OK(MODE_S, rt_ld, 0x0000008000000000ull + (uint64_t)&marker, 0x5eed5eed5eed5eedull);
#endif
    CSR_WRITE(satp, 0);
    __asm__ volatile("sfence.vma" ::: "memory");
}

static void user(void)
{
    uint64_t *root = new_table();
    // Identity map with U set, so U code and its stack are reachable; a kernel page; a read-only page.
    map(root, 0x80000000, 0x80000000, 2, R | W | X | U | A | D);
    map(root, VA_REMAP, (uint64_t)page[0], 0, R | W | A | D);
    map(root, VA_RO, (uint64_t)page[7], 0, R | U | A);
    map(root, VA_UPAGE, (uint64_t)page[1], 0, R | W | X | U | A | D);
    use(root);
    EXPECT_OK(MODE_U, rt_ld, VA_UPAGE, page[1][0]);
    EXPECT_FAULT(MODE_U, rt_ld, VA_REMAP, 13); // not a U page
    EXPECT_FAULT(MODE_U, rt_sd, VA_RO, 15);    // no W
    EXPECT_OK(MODE_U, rt_ld, VA_RO, 0x1007);
    EXPECT_FAULT(MODE_U, rt_call, VA_REMAP, 12); // not a U page (and not X)
    // SUM does not give U access to S pages.
    CSR_SET(mstatus, MSTATUS_SUM);
    EXPECT_FAULT(MODE_U, rt_ld, VA_REMAP, 13);
    CSR_CLEAR(mstatus, MSTATUS_SUM);
    // M is not translated (MPRV clear), even with satp set.
    CHECK_EQ(page[7][0], 0x1007);
    CSR_WRITE(satp, 0);
    __asm__ volatile("sfence.vma" ::: "memory");
}

int main(void)
{
    // satp accepts the mode (a WARL field: an unsupported mode would leave satp unchanged).
    CSR_WRITE(satp, SATP_MODE << 60);
    CHECK_EQ(CSR_READ(satp) >> 60, SATP_MODE);
    CSR_WRITE(satp, 0);
    supervisor();
    user();
    return 0;
}
