// SPDX-License-Identifier: MIT
// Unit tests of kernel/memory: region topology, flattening, CPU-width and DMA accesses, mtree.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "error.h"
#include "memory.h"

using namespace keel;
using Catch::Matchers::Contains;

namespace
{

// A fake device that logs every callback so tests can check exactly what the
// bus asked for. Reads return `byte_base + offset` in each byte (in the
// device's byte order), unless `fixed` is set.
struct FakeDev {
    struct Call {
        bool write;
        uint64_t off;
        unsigned width;
        uint64_t value;
        bool operator==(const Call &) const = default;
    };
    std::vector<Call> calls;
    bool big = false;
    uint8_t byte_base = 0xa0;
    bool use_fixed = false;
    uint64_t fixed = 0;
    KeelMemResult result = KEEL_MEM_OK;
};

KeelMemResult fake_read(void *opaque, uint64_t off, unsigned width, uint64_t *value)
{
    auto *d = static_cast<FakeDev *>(opaque);
    uint64_t v = 0;
    if (d->use_fixed) {
        v = d->fixed;
    } else {
        for (unsigned j = 0; j < width; ++j) {
            uint64_t b = static_cast<uint8_t>(d->byte_base + off + j);
            v |= b << (8 * (d->big ? width - 1 - j : j));
        }
    }
    d->calls.push_back({false, off, width, v});
    *value = v;
    return d->result;
}

KeelMemResult fake_write(void *opaque, uint64_t off, unsigned width, uint64_t value)
{
    auto *d = static_cast<FakeDev *>(opaque);
    d->calls.push_back({true, off, width, value});
    return d->result;
}

KeelMemoryOps make_ops(uint8_t vmin = 0, uint8_t vmax = 0, uint8_t imin = 0, uint8_t imax = 0,
                       bool unaligned = false, KeelEndianness e = KEEL_ENDIAN_LITTLE)
{
    KeelMemoryOps o{};
    o.size = sizeof o;
    o.read = fake_read;
    o.write = fake_write;
    o.valid_min = vmin;
    o.valid_max = vmax;
    o.impl_min = imin;
    o.impl_max = imax;
    o.unaligned_ok = unaligned;
    o.endianness = e;
    return o;
}

using Call = FakeDev::Call;

} // namespace

TEST_CASE("RAM and ROM regions are host-backed and zeroed", "[memory]")
{
    auto ram = MemoryRegion::ram("ram", 0x10000);
    REQUIRE(ram->kind() == RegionKind::Ram);
    REQUIRE(ram->size() == 0x10000);
    REQUIRE(ram->host() != nullptr);
    for (uint64_t i = 0; i < ram->size(); i += 0x1000)
        REQUIRE(ram->host()[i] == 0);
    auto rom = MemoryRegion::rom("rom", 0x1000);
    REQUIRE(rom->host() != nullptr);
    auto ops = make_ops();
    FakeDev d;
    auto io = MemoryRegion::mmio("io", 0x100, &ops, &d);
    REQUIRE(io->host() == nullptr);
    REQUIRE_THROWS_WITH(MemoryRegion::ram("zero", 0), Contains("size is 0"));
}

TEST_CASE("higher priority shadows lower, removing it reveals the lower", "[memory]")
{
    auto root = MemoryRegion::container("system", 0x10000);
    auto lo = MemoryRegion::ram("lo", 0x4000);
    auto hi = MemoryRegion::ram("hi", 0x1000);
    root->add_subregion(0, *lo, 0);
    root->add_subregion(0x1000, *hi, 1);
    AddressSpace as("system", *root);

    REQUIRE(as.find(0x0fff)->region == lo.get());
    const auto *s = as.find(0x1800);
    REQUIRE(s->region == hi.get());
    REQUIRE(s->start == 0x1000);
    REQUIRE(s->offset == 0);
    REQUIRE(s->priority == 1);
    // Above the shadow, lo shows again with the right offset.
    s = as.find(0x2000);
    REQUIRE(s->region == lo.get());
    REQUIRE(s->offset == 0x2000);

    REQUIRE(as.write(0x1800, 1, 0xaa) == KEEL_MEM_OK);
    REQUIRE(hi->host()[0x800] == 0xaa);
    REQUIRE(lo->host()[0x1800] == 0);

    root->remove_subregion(*hi);
    s = as.find(0x1800);
    REQUIRE(s->region == lo.get());
    // lo is one section again.
    REQUIRE(s->start == 0);
    REQUIRE(s->size == 0x4000);
    REQUIRE(s->offset == 0);
    uint64_t v = 1;
    REQUIRE(as.read(0x1800, 1, v) == KEEL_MEM_OK);
    REQUIRE(v == 0);

    // Lower priority than lo: only visible where lo is not.
    auto under = MemoryRegion::ram("under", 0x8000);
    root->add_subregion(0, *under, -1);
    REQUIRE(as.find(0x3fff)->region == lo.get());
    s = as.find(0x4000);
    REQUIRE(s->region == under.get());
    REQUIRE(s->offset == 0x4000);
    REQUIRE(s->priority == -1);
}

TEST_CASE("overlap at the same priority is rejected with a clear message", "[memory]")
{
    auto root = MemoryRegion::container("system", 0x10000);
    auto a = MemoryRegion::ram("a", 0x2000);
    auto b = MemoryRegion::ram("b", 0x1000);
    root->add_subregion(0, *a);
    REQUIRE_THROWS_WITH(root->add_subregion(0x1000, *b),
                        "region 'b' [0x0000000000001000-0x0000000000001fff] overlaps 'a' "
                        "[0x0000000000000000-0x0000000000001fff]");
    REQUIRE(b->parent() == nullptr);
    // Adjacent is fine, and so is a different priority.
    REQUIRE_NOTHROW(root->add_subregion(0x2000, *b));
    root->remove_subregion(*b);
    REQUIRE_NOTHROW(root->add_subregion(0x1000, *b, 2));
}

TEST_CASE("subregions must fit in their container", "[memory]")
{
    auto c = MemoryRegion::container("c", 0x1000);
    auto r = MemoryRegion::ram("r", 0x1000);
    REQUIRE_THROWS_WITH(c->add_subregion(0x800, *r),
                        Contains("region 'r' at 0x0000000000000800 does not fit"));
    REQUIRE_THROWS_WITH(c->add_subregion(0x1000, *r), Contains("does not fit"));
    REQUIRE_NOTHROW(c->add_subregion(0, *r));

    // UINT64_MAX means all of 2^64, and offset + size may not wrap.
    auto sys = MemoryRegion::container("system", UINT64_MAX);
    auto top = MemoryRegion::ram("top", 0x1000);
    REQUIRE_THROWS_WITH(sys->add_subregion(0xffffffffffffff00, *top), Contains("does not fit"));
    REQUIRE_NOTHROW(sys->add_subregion(0xfffffffffffff000, *top));
    AddressSpace as("system", *sys);
    REQUIRE(as.write(0xfffffffffffffff8, 8, 0x0123456789abcdef) == KEEL_MEM_OK);
    uint64_t v = 0;
    REQUIRE(as.read(0xfffffffffffffff8, 8, v) == KEEL_MEM_OK);
    REQUIRE(v == 0x0123456789abcdef);
    REQUIRE(top->host()[0xfff] == 0x01);
    std::vector<uint8_t> buf(16);
    REQUIRE(as.read_buf(0xfffffffffffffff8, buf.data(), 16) == KEEL_MEM_DECODE_ERROR);

    // Not a container, mapped twice, cycles.
    auto other = MemoryRegion::container("other", 0x1000);
    REQUIRE_THROWS_WITH(r->add_subregion(0, *top), Contains("not a container"));
    REQUIRE_THROWS_WITH(other->add_subregion(0, *r), Contains("already mapped in 'c'"));
    REQUIRE_THROWS_WITH(other->add_subregion(0, *other), Contains("cycle"));
    auto loop = MemoryRegion::alias("loop", *other, 0, 0x100);
    REQUIRE_THROWS_WITH(other->add_subregion(0, *loop), Contains("cycle"));
    REQUIRE_THROWS_WITH(other->remove_subregion(*r), Contains("not mapped in 'other'"));
}

TEST_CASE("aliases into RAM apply their offset", "[memory]")
{
    auto root = MemoryRegion::container("system", 0x10000);
    auto ram = MemoryRegion::ram("ram", 0x1000);
    for (int i = 0; i < 0x1000; ++i)
        ram->host()[i] = static_cast<uint8_t>(i);
    auto al = MemoryRegion::alias("ram-alias", *ram, 0x100, 0x200);
    root->add_subregion(0x8000, *al);
    AddressSpace as("system", *root);

    const auto *s = as.find(0x8010);
    REQUIRE(s->region == ram.get()); // flattening resolves the alias to its leaf
    REQUIRE(s->start == 0x8000);
    REQUIRE(s->size == 0x200);
    REQUIRE(s->offset == 0x100);
    uint64_t v = 0;
    REQUIRE(as.read(0x8010, 4, v) == KEEL_MEM_OK);
    REQUIRE(v == 0x13121110);
    REQUIRE(as.find(0x8200) == nullptr);
    REQUIRE(as.write(0x8000, 2, 0xbeef) == KEEL_MEM_OK);
    REQUIRE(ram->host()[0x100] == 0xef);
    REQUIRE(ram->host()[0x101] == 0xbe);

    REQUIRE_THROWS_WITH(MemoryRegion::alias("bad", *ram, 0xf00, 0x200), Contains("outside 'ram'"));

    // An alias whose target dies maps nothing (no dangling pointer).
    ram.reset();
    REQUIRE(al->alias_target() == nullptr);
    REQUIRE(as.find(0x8010) == nullptr);
}

TEST_CASE("aliases of MMIO regions and of containers", "[memory]")
{
    auto root = MemoryRegion::container("system", 0x10000);
    auto ops = make_ops();
    FakeDev d;
    auto io = MemoryRegion::mmio("io", 0x100, &ops, &d);
    auto al = MemoryRegion::alias("io-alias", *io, 8, 8);
    root->add_subregion(0x9000, *al);
    AddressSpace as("system", *root);
    uint64_t v = 0;
    REQUIRE(as.read(0x9004, 4, v) == KEEL_MEM_OK);
    REQUIRE(d.calls == std::vector<Call>{{false, 12, 4, 0xafaeadac}});
    REQUIRE(v == 0xafaeadac);
    REQUIRE(as.find(0x9008) == nullptr);

    // Into a container: the alias's window of the container's contents.
    auto box = MemoryRegion::container("box", 0x1000);
    auto r = MemoryRegion::ram("r", 0x100);
    box->add_subregion(0x200, *r);
    auto bal = MemoryRegion::alias("box-alias", *box, 0x180, 0x100);
    root->add_subregion(0x4000, *bal);
    REQUIRE(as.find(0x407f) == nullptr);
    const auto *s = as.find(0x4080);
    REQUIRE(s->region == r.get());
    REQUIRE(s->start == 0x4080);
    REQUIRE(s->size == 0x80);
    REQUIRE(s->offset == 0);
    REQUIRE(as.find(0x4100) == nullptr);
}

TEST_CASE("nested containers, and topology changes below the root", "[memory]")
{
    auto root = MemoryRegion::container("system", 0x100000);
    auto c1 = MemoryRegion::container("c1", 0x1000);
    auto c2 = MemoryRegion::container("c2", 0x100);
    auto leaf = MemoryRegion::ram("leaf", 0x10);
    c2->add_subregion(0x10, *leaf);
    c1->add_subregion(0x100, *c2);
    root->add_subregion(0x10000, *c1);
    AddressSpace as("system", *root);

    const auto *s = as.find(0x10118);
    REQUIRE(s != nullptr);
    REQUIRE(s->region == leaf.get());
    REQUIRE(s->start == 0x10110);
    REQUIRE(s->offset == 0);
    REQUIRE(as.find(0x10120) == nullptr);
    REQUIRE(as.find(0x1010f) == nullptr);

    // Changing a grandchild after the view was built is seen.
    auto leaf2 = MemoryRegion::ram("leaf2", 0x10);
    c2->add_subregion(0x40, *leaf2);
    s = as.find(0x10140);
    REQUIRE(s != nullptr);
    REQUIRE(s->region == leaf2.get());

    // A destroyed subregion unmaps itself.
    leaf2.reset();
    REQUIRE(as.find(0x10140) == nullptr);
    REQUIRE(c2->subregions().size() == 1);

    // Priorities compete per container: c1's low-priority RAM fills c2's gaps
    // only inside c1.
    auto bg = MemoryRegion::ram("bg", 0x1000);
    c1->add_subregion(0, *bg, -1);
    REQUIRE(as.find(0x10118)->region == leaf.get());
    s = as.find(0x10120);
    REQUIRE(s->region == bg.get());
    REQUIRE(s->offset == 0x120);
}

TEST_CASE("unmapped addresses give DECODE_ERROR", "[memory]")
{
    auto root = MemoryRegion::container("system", 0x10000);
    auto ram = MemoryRegion::ram("ram", 0x1000);
    root->add_subregion(0x1000, *ram);
    AddressSpace as("system", *root);
    uint64_t v = 123;
    REQUIRE(as.find(0) == nullptr);
    REQUIRE(as.read(0, 4, v) == KEEL_MEM_DECODE_ERROR);
    REQUIRE(v == 0);
    REQUIRE(as.write(0x2000, 8, 1) == KEEL_MEM_DECODE_ERROR);
    // Straddling out of RAM into nothing.
    REQUIRE(as.read(0x1ffc, 8, v) == KEEL_MEM_DECODE_ERROR);
    REQUIRE(as.write(0x1ffc, 8, ~0ull) == KEEL_MEM_DECODE_ERROR);
    REQUIRE(ram->host()[0xffc] == 0); // nothing written
    // Widths other than 1/2/4/8.
    REQUIRE(as.read(0x1000, 3, v) == KEEL_MEM_ACCESS_ERROR);
    REQUIRE(as.read(0x1000, 16, v) == KEEL_MEM_ACCESS_ERROR);
}

TEST_CASE("accesses straddling sections", "[memory]")
{
    auto root = MemoryRegion::container("system", 0x10000);
    auto a = MemoryRegion::ram("a", 0x1000);
    auto b = MemoryRegion::rom("b", 0x1000);
    auto ops = make_ops();
    FakeDev d;
    auto io = MemoryRegion::mmio("io", 0x100, &ops, &d);
    root->add_subregion(0, *a);
    root->add_subregion(0x1000, *b);
    root->add_subregion(0x2000, *io);
    AddressSpace as("system", *root);

    b->host()[0] = 0x55;
    b->host()[1] = 0x66;
    a->host()[0xffe] = 0x33;
    a->host()[0xfff] = 0x44;
    uint64_t v = 0;
    REQUIRE(as.read(0xffe, 4, v) == KEEL_MEM_OK);
    REQUIRE(v == 0x66554433);
    // The RAM half is written, the ROM half ignored.
    REQUIRE(as.write(0xffe, 4, 0xddccbbaa) == KEEL_MEM_OK);
    REQUIRE(a->host()[0xffe] == 0xaa);
    REQUIRE(a->host()[0xfff] == 0xbb);
    REQUIRE(b->host()[0] == 0x55);

    // Any MMIO part refuses the access, before the device sees anything.
    REQUIRE(as.read(0x1ffe, 4, v) == KEEL_MEM_ACCESS_ERROR);
    REQUIRE(as.write(0x1ffe, 4, 0) == KEEL_MEM_ACCESS_ERROR);
    REQUIRE(d.calls.empty());
}

TEST_CASE("MMIO refuses widths outside valid_min..valid_max before calling the device", "[memory]")
{
    auto root = MemoryRegion::container("system", 0x10000);
    auto ops = make_ops(4, 4);
    FakeDev d;
    auto io = MemoryRegion::mmio("io", 0x100, &ops, &d);
    root->add_subregion(0x1000, *io);
    AddressSpace as("system", *root);
    uint64_t v = 0;
    REQUIRE(as.read(0x1000, 1, v) == KEEL_MEM_ACCESS_ERROR);
    REQUIRE(as.read(0x1000, 2, v) == KEEL_MEM_ACCESS_ERROR);
    REQUIRE(as.read(0x1000, 8, v) == KEEL_MEM_ACCESS_ERROR);
    REQUIRE(as.write(0x1000, 1, 0) == KEEL_MEM_ACCESS_ERROR);
    REQUIRE(d.calls.empty());
    REQUIRE(as.read(0x1004, 4, v) == KEEL_MEM_OK);
    REQUIRE(d.calls.size() == 1);
    REQUIRE(v == 0xa7a6a5a4);

    // Defaults (0) accept 1..8.
    auto ops_def = make_ops();
    FakeDev d2;
    auto io2 = MemoryRegion::mmio("io2", 0x100, &ops_def, &d2);
    root->add_subregion(0x2000, *io2);
    for (unsigned w : {1u, 2u, 4u, 8u})
        REQUIRE(as.read(0x2000, w, v) == KEEL_MEM_OK);
    REQUIRE(d2.calls.size() == 4);
    REQUIRE(v == 0xa7a6a5a4a3a2a1a0);
}

TEST_CASE("MMIO unaligned accesses are refused unless unaligned_ok", "[memory]")
{
    auto root = MemoryRegion::container("system", 0x10000);
    auto ops = make_ops();
    FakeDev d;
    auto io = MemoryRegion::mmio("io", 0x100, &ops, &d);
    root->add_subregion(0x1000, *io);
    auto ops_u = make_ops(0, 0, 0, 0, true);
    FakeDev du;
    auto iou = MemoryRegion::mmio("iou", 0x100, &ops_u, &du);
    root->add_subregion(0x2000, *iou);
    AddressSpace as("system", *root);

    uint64_t v = 0;
    REQUIRE(as.read(0x1002, 4, v) == KEEL_MEM_ACCESS_ERROR);
    REQUIRE(as.write(0x1001, 2, 0) == KEEL_MEM_ACCESS_ERROR);
    REQUIRE(as.read(0x1004, 8, v) == KEEL_MEM_ACCESS_ERROR);
    REQUIRE(d.calls.empty());
    REQUIRE(as.read(0x1003, 1, v) == KEEL_MEM_OK);
    REQUIRE(d.calls == std::vector<Call>{{false, 3, 1, 0xa3}});

    REQUIRE(as.read(0x2002, 4, v) == KEEL_MEM_OK);
    REQUIRE(du.calls == std::vector<Call>{{false, 2, 4, 0xa5a4a3a2}});
    REQUIRE(v == 0xa5a4a3a2);
}

TEST_CASE("MMIO accesses are split to impl_max and widened to impl_min", "[memory]")
{
    auto root = MemoryRegion::container("system", 0x10000);
    AddressSpace as("system", *root);
    uint64_t v = 0;

    SECTION("impl 1..1, valid 1..4: a 4-byte access is four byte accesses")
    {
        auto ops = make_ops(1, 4, 1, 1);
        FakeDev d;
        auto io = MemoryRegion::mmio("io", 0x100, &ops, &d);
        root->add_subregion(0x1000, *io);
        REQUIRE(as.read(0x1004, 4, v) == KEEL_MEM_OK);
        REQUIRE(d.calls ==
                std::vector<Call>{
                    {false, 4, 1, 0xa4}, {false, 5, 1, 0xa5}, {false, 6, 1, 0xa6}, {false, 7, 1, 0xa7}});
        REQUIRE(v == 0xa7a6a5a4);
        d.calls.clear();
        REQUIRE(as.write(0x1008, 4, 0x44332211) == KEEL_MEM_OK);
        REQUIRE(d.calls ==
                std::vector<Call>{
                    {true, 8, 1, 0x11}, {true, 9, 1, 0x22}, {true, 10, 1, 0x33}, {true, 11, 1, 0x44}});
        // 8 is beyond valid_max: refused, not split.
        d.calls.clear();
        REQUIRE(as.read(0x1008, 8, v) == KEEL_MEM_ACCESS_ERROR);
        REQUIRE(d.calls.empty());
    }

    SECTION("impl 2..4: an 8-byte access is two 4-byte accesses")
    {
        auto ops = make_ops(0, 0, 2, 4);
        FakeDev d;
        auto io = MemoryRegion::mmio("io", 0x100, &ops, &d);
        root->add_subregion(0x1000, *io);
        REQUIRE(as.read(0x1010, 8, v) == KEEL_MEM_OK);
        REQUIRE(d.calls == std::vector<Call>{{false, 0x10, 4, 0xb3b2b1b0}, {false, 0x14, 4, 0xb7b6b5b4}});
        REQUIRE(v == 0xb7b6b5b4b3b2b1b0);
    }

    SECTION("impl 4..4, valid 1..4: narrow accesses widen to an aligned word")
    {
        auto ops = make_ops(1, 4, 4, 4);
        FakeDev d;
        auto io = MemoryRegion::mmio("io", 0x100, &ops, &d);
        root->add_subregion(0x1000, *io);
        REQUIRE(as.read(0x1006, 1, v) == KEEL_MEM_OK);
        REQUIRE(d.calls == std::vector<Call>{{false, 4, 4, 0xa7a6a5a4}});
        REQUIRE(v == 0xa6);
        d.calls.clear();
        REQUIRE(as.read(0x1006, 2, v) == KEEL_MEM_OK);
        REQUIRE(v == 0xa7a6);
        d.calls.clear();
        // The bytes the guest did not write are zero, not read back.
        REQUIRE(as.write(0x1006, 1, 0x5a) == KEEL_MEM_OK);
        REQUIRE(d.calls == std::vector<Call>{{true, 4, 4, 0x005a0000}});
    }

    SECTION("a device error stops the access and is returned")
    {
        auto ops = make_ops(1, 4, 1, 1);
        FakeDev d;
        d.result = KEEL_MEM_DEVICE_ERROR;
        auto io = MemoryRegion::mmio("io", 0x100, &ops, &d);
        root->add_subregion(0x1000, *io);
        REQUIRE(as.read(0x1000, 4, v) == KEEL_MEM_DEVICE_ERROR);
        REQUIRE(d.calls.size() == 1);
        REQUIRE(v == 0);
    }
}

TEST_CASE("big-endian devices are converted to the little-endian guest", "[memory]")
{
    auto root = MemoryRegion::container("system", 0x10000);
    AddressSpace as("system", *root);
    uint64_t v = 0;

    auto ops = make_ops(0, 0, 0, 0, false, KEEL_ENDIAN_BIG);
    FakeDev d;
    d.use_fixed = true;
    d.fixed = 0x11223344;
    auto io = MemoryRegion::mmio("be", 0x100, &ops, &d);
    root->add_subregion(0x1000, *io);
    REQUIRE(as.read(0x1000, 4, v) == KEEL_MEM_OK);
    REQUIRE(v == 0x44332211);
    REQUIRE(as.write(0x1000, 4, 0xaabbccdd) == KEEL_MEM_OK);
    REQUIRE(d.calls.back() == Call{true, 0, 4, 0xddccbbaa});
    REQUIRE(as.write(0x1000, 2, 0x1234) == KEEL_MEM_OK);
    REQUIRE(d.calls.back() == Call{true, 0, 2, 0x3412});

    // Split and widened: the lowest address is the most significant byte of
    // each device word, so the guest still sees bytes in address order.
    auto ops1 = make_ops(1, 4, 1, 1, false, KEEL_ENDIAN_BIG);
    FakeDev d1;
    d1.big = true;
    auto io1 = MemoryRegion::mmio("be1", 0x100, &ops1, &d1);
    root->add_subregion(0x2000, *io1);
    REQUIRE(as.read(0x2000, 4, v) == KEEL_MEM_OK);
    REQUIRE(v == 0xa3a2a1a0);

    auto ops4 = make_ops(1, 4, 4, 4, false, KEEL_ENDIAN_BIG);
    FakeDev d4;
    d4.big = true;
    auto io4 = MemoryRegion::mmio("be4", 0x100, &ops4, &d4);
    root->add_subregion(0x3000, *io4);
    REQUIRE(as.read(0x3001, 1, v) == KEEL_MEM_OK);
    REQUIRE(d4.calls == std::vector<Call>{{false, 0, 4, 0xa0a1a2a3}});
    REQUIRE(v == 0xa1);
    REQUIRE(as.write(0x3001, 1, 0x77) == KEEL_MEM_OK);
    REQUIRE(d4.calls.back() == Call{true, 0, 4, 0x00770000});
}

TEST_CASE("a missing callback refuses that direction", "[memory]")
{
    auto root = MemoryRegion::container("system", 0x10000);
    auto ops = make_ops();
    ops.write = nullptr;
    FakeDev d;
    auto io = MemoryRegion::mmio("ro-io", 0x100, &ops, &d);
    root->add_subregion(0, *io);
    AddressSpace as("system", *root);
    uint64_t v = 0;
    REQUIRE(as.write(0, 4, 1) == KEEL_MEM_ACCESS_ERROR);
    REQUIRE(as.read(0, 4, v) == KEEL_MEM_OK);
    uint8_t buf[4] = {};
    REQUIRE(as.write_buf(0, buf, 4) == KEEL_MEM_ACCESS_ERROR);
    REQUIRE(d.calls.size() == 1);
}

TEST_CASE("ROM ignores guest writes, write_rom loads it", "[memory]")
{
    auto root = MemoryRegion::container("system", 0x10000);
    auto rom = MemoryRegion::rom("rom", 0x1000);
    auto ram = MemoryRegion::ram("ram", 0x1000);
    root->add_subregion(0, *rom);
    root->add_subregion(0x1000, *ram);
    AddressSpace as("system", *root);

    uint64_t v = 1;
    REQUIRE(as.write(0x10, 4, 0xdeadbeef) == KEEL_MEM_OK);
    REQUIRE(as.read(0x10, 4, v) == KEEL_MEM_OK);
    REQUIRE(v == 0);
    const uint8_t data[] = {1, 2, 3, 4};
    REQUIRE(as.write_buf(0x10, data, 4) == KEEL_MEM_OK);
    REQUIRE(rom->host()[0x10] == 0);

    // The loader writes ROM and RAM alike, across the boundary.
    REQUIRE(as.write_rom(0xffe, data, 4) == KEEL_MEM_OK);
    REQUIRE(as.read(0xffe, 2, v) == KEEL_MEM_OK);
    REQUIRE(v == 0x0201);
    REQUIRE(ram->host()[0] == 3);
    REQUIRE(ram->host()[1] == 4);
    REQUIRE(as.write_rom(0x2000, data, 4) == KEEL_MEM_DECODE_ERROR);

    auto ops = make_ops();
    FakeDev d;
    auto io = MemoryRegion::mmio("io", 0x100, &ops, &d);
    root->add_subregion(0x3000, *io);
    REQUIRE(as.write_rom(0x3000, data, 4) == KEEL_MEM_ACCESS_ERROR);
    REQUIRE(d.calls.empty());
}

TEST_CASE("DMA buffers span sections", "[memory]")
{
    auto root = MemoryRegion::container("system", 0x10000);
    auto a = MemoryRegion::ram("a", 0x1000);
    auto b = MemoryRegion::ram("b", 0x1000);
    auto ops = make_ops(1, 4);
    FakeDev d;
    auto io = MemoryRegion::mmio("io", 0x100, &ops, &d);
    root->add_subregion(0, *a);
    root->add_subregion(0x1000, *b);
    root->add_subregion(0x2000, *io);
    AddressSpace as("system", *root);

    std::vector<uint8_t> out(32), in(32);
    for (int i = 0; i < 32; ++i)
        out[i] = static_cast<uint8_t>(0x40 + i);
    REQUIRE(as.write_buf(0xff0, out.data(), 32) == KEEL_MEM_OK);
    REQUIRE(std::memcmp(a->host() + 0xff0, out.data(), 16) == 0);
    REQUIRE(std::memcmp(b->host(), out.data() + 16, 16) == 0);
    REQUIRE(as.read_buf(0xff0, in.data(), 32) == KEEL_MEM_OK);
    REQUIRE(in == out);

    SECTION("into MMIO: widest valid aligned accesses")
    {
        REQUIRE(as.write_buf(0x1ff8, out.data(), 16) == KEEL_MEM_OK);
        REQUIRE(std::memcmp(b->host() + 0xff8, out.data(), 8) == 0);
        REQUIRE(d.calls == std::vector<Call>{{true, 0, 4, 0x4b4a4948}, {true, 4, 4, 0x4f4e4d4c}});
        d.calls.clear();
        uint8_t buf[7] = {};
        REQUIRE(as.read_buf(0x2001, buf, 7) == KEEL_MEM_OK);
        REQUIRE(d.calls ==
                std::vector<Call>{{false, 1, 1, 0xa1}, {false, 2, 2, 0xa3a2}, {false, 4, 4, 0xa7a6a5a4}});
        const uint8_t want[7] = {0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7};
        REQUIRE(std::memcmp(buf, want, 7) == 0);
    }

    SECTION("running into unmapped space fails after the mapped part")
    {
        std::vector<uint8_t> buf(0x20, 0xee);
        REQUIRE(as.read_buf(0x20f0, buf.data(), 0x20) == KEEL_MEM_DECODE_ERROR);
        REQUIRE(d.calls.size() == 4); // 16 bytes of MMIO as 4 words, then nothing
        std::vector<uint8_t> big(0x200);
        REQUIRE(as.write_buf(0x1ff0, big.data(), big.size()) == KEEL_MEM_DECODE_ERROR);
        REQUIRE(as.read_buf(0x3000, buf.data(), 1) == KEEL_MEM_DECODE_ERROR);
        REQUIRE(as.read_buf(0x3000, buf.data(), 0) == KEEL_MEM_OK);
    }

    SECTION("a device that only takes aligned words refuses a ragged buffer")
    {
        auto ops4 = make_ops(4, 4);
        FakeDev d4;
        auto io4 = MemoryRegion::mmio("io4", 0x100, &ops4, &d4);
        root->add_subregion(0x4000, *io4);
        uint8_t buf[8] = {};
        REQUIRE(as.read_buf(0x4002, buf, 4) == KEEL_MEM_ACCESS_ERROR);
        REQUIRE(as.read_buf(0x4000, buf, 6) == KEEL_MEM_ACCESS_ERROR);
        REQUIRE(d4.calls.size() == 1); // the first word went through, the 2-byte tail did not
        REQUIRE(as.read_buf(0x4000, buf, 8) == KEEL_MEM_OK);
    }
}

TEST_CASE("ram_ptr gives host pointers and contiguous length", "[memory]")
{
    auto root = MemoryRegion::container("system", 0x10000);
    auto ram = MemoryRegion::ram("ram", 0x4000);
    auto hole = MemoryRegion::ram("hole", 0x1000);
    auto rom = MemoryRegion::rom("rom", 0x1000);
    auto ops = make_ops();
    FakeDev d;
    auto io = MemoryRegion::mmio("io", 0x100, &ops, &d);
    root->add_subregion(0, *ram);
    root->add_subregion(0x2000, *hole, 1);
    root->add_subregion(0x8000, *rom);
    root->add_subregion(0x9000, *io);
    AddressSpace as("system", *root);

    uint64_t avail = 0;
    REQUIRE(as.ram_ptr(0x800, &avail, true) == ram->host() + 0x800);
    REQUIRE(avail == 0x1800); // cut by the higher-priority region at 0x2000
    REQUIRE(as.ram_ptr(0x2010, &avail, true) == hole->host() + 0x10);
    REQUIRE(avail == 0xff0);
    REQUIRE(as.ram_ptr(0x3000, &avail, false) == ram->host() + 0x3000);
    REQUIRE(avail == 0x1000);
    REQUIRE(as.ram_ptr(0x8100, &avail, true) == nullptr);
    REQUIRE(avail == 0);
    REQUIRE(as.ram_ptr(0x8100, &avail, false) == rom->host() + 0x100);
    REQUIRE(avail == 0xf00);
    REQUIRE(as.ram_ptr(0x9000, &avail, false) == nullptr);
    REQUIRE(as.ram_ptr(0x7000, &avail, false) == nullptr);
    REQUIRE(as.ram_ptr(0x7000, nullptr, false) == nullptr);
}

TEST_CASE("1000 small regions are each found", "[memory]")
{
    auto root = MemoryRegion::container("system", UINT64_MAX);
    auto ops = make_ops();
    std::vector<FakeDev> devs(1000);
    std::vector<std::unique_ptr<MemoryRegion>> regions;
    const uint64_t base = 0x40000000;
    for (int i = 0; i < 1000; ++i) {
        devs[i].byte_base = static_cast<uint8_t>(i);
        regions.push_back(MemoryRegion::mmio("r" + std::to_string(i), 0x10, &ops, &devs[i]));
        root->add_subregion(base + i * 0x20, *regions.back());
    }
    AddressSpace as("system", *root);
    REQUIRE(as.sections().size() == 1000);
    for (int i = 0; i < 1000; ++i) {
        uint64_t at = base + i * 0x20;
        const auto *s = as.find(at + 5);
        REQUIRE(s != nullptr);
        REQUIRE(s->region == regions[i].get());
        REQUIRE(s->start == at);
        REQUIRE(s->offset == 0);
        REQUIRE(as.find(at + 0x10) == nullptr);
        uint64_t v = 0;
        REQUIRE(as.read(at + 3, 1, v) == KEEL_MEM_OK);
        REQUIRE(v == static_cast<uint8_t>(i + 3));
    }
    REQUIRE(as.find(base - 1) == nullptr);
    REQUIRE(as.find(base + 1000 * 0x20) == nullptr);
}

TEST_CASE("bad ops tables are rejected with a message", "[memory]")
{
    FakeDev d;
    KeelMemoryOps ops = make_ops();
    auto make = [&](uint64_t size = 0x100) { return MemoryRegion::mmio("uart", size, &ops, &d); };

    REQUIRE_THROWS_WITH(MemoryRegion::mmio("uart", 0x100, nullptr, &d), "MMIO region 'uart': no ops table");
    ops.size = 8;
    REQUIRE_THROWS_WITH(make(), Contains("smaller than the ABI 1.0 table"));
    ops = make_ops();
    ops.read = nullptr;
    ops.write = nullptr;
    REQUIRE_THROWS_WITH(make(), "MMIO region 'uart': ops table has neither read nor write");
    ops = make_ops(3, 4);
    REQUIRE_THROWS_WITH(
        make(), "MMIO region 'uart': ops.valid_min is 3; access widths are 0 (default), 1, 2, 4 or 8");
    ops = make_ops(1, 16);
    REQUIRE_THROWS_WITH(make(), Contains("ops.valid_max is 16"));
    ops = make_ops(1, 4, 0, 5);
    REQUIRE_THROWS_WITH(make(), Contains("ops.impl_max is 5"));
    ops = make_ops(8, 4);
    REQUIRE_THROWS_WITH(make(), "MMIO region 'uart': ops.valid_min (8) is greater than ops.valid_max (4)");
    ops = make_ops(1, 4, 8, 0); // impl_max defaults to valid_max = 4
    REQUIRE_THROWS_WITH(make(), Contains("ops.impl_min (8) is greater than ops.impl_max (4)"));
    ops = make_ops();
    REQUIRE_THROWS_WITH(make(0), "MMIO region 'uart': size is 0");
    // As a C module could store it; a C++ cast to the enum would be undefined.
    const int seven = 7;
    std::memcpy(reinterpret_cast<char *>(&ops) + offsetof(KeelMemoryOps, endianness), &seven, sizeof seven);
    REQUIRE_THROWS_WITH(make(), Contains("ops.endianness is 7"));

    // A table from an older build (no reserved words) is fine, and the
    // region keeps its own normalized copy.
    ops = make_ops(0, 0, 0, 0);
    ops.size = offsetof(KeelMemoryOps, reserved);
    auto r = make();
    ops.valid_min = 3; // later changes to the module's table do not matter
    REQUIRE(r->ops().valid_min == 1);
    REQUIRE(r->ops().valid_max == 8);
    REQUIRE(r->ops().impl_min == 1);
    REQUIRE(r->ops().impl_max == 8);
}

TEST_CASE("mtree lists the flat view", "[memory]")
{
    auto root = MemoryRegion::container("system", UINT64_MAX);
    auto dram = MemoryRegion::ram("dram", 0x8000000);
    dram->set_owner("/machine/dram");
    auto ops = make_ops();
    FakeDev d;
    auto uart = MemoryRegion::mmio("uart0", 0x100, &ops, &d);
    uart->set_owner("/machine/uart0");
    auto mrom = MemoryRegion::rom("mrom", 0x1000);
    auto patch = MemoryRegion::ram("patch", 0x100);
    root->add_subregion(0x80000000, *dram);
    root->add_subregion(0x10000000, *uart);
    root->add_subregion(0x1000, *mrom);
    root->add_subregion(0x1800, *patch, 1);
    AddressSpace as("system", *root);
    REQUIRE(as.name() == "system");

    REQUIRE(as.mtree() == "address-space (flat view): system\n"
                          "  0000000000001000-00000000000017ff (prio 0, rom): mrom\n"
                          "  0000000000001800-00000000000018ff (prio 1, ram): patch\n"
                          "  0000000000001900-0000000000001fff (prio 0, rom): mrom @0000000000000900\n"
                          "  0000000010000000-00000000100000ff (prio 0, i/o): uart0 /machine/uart0\n"
                          "  0000000080000000-0000000087ffffff (prio 0, ram): dram /machine/dram\n");

    auto empty = MemoryRegion::container("empty", 0x1000);
    AddressSpace eas("io", *empty);
    REQUIRE(eas.mtree() == "address-space (flat view): io\n");
}

TEST_CASE("mtree_tree lists the regions nested under their containers, aliases with their target range",
          "[memory]")
{
    auto root = MemoryRegion::container("system", UINT64_MAX);
    auto dram = MemoryRegion::ram("dram", 0x10000);
    dram->set_owner("/machine/dram");
    auto bus = MemoryRegion::container("bus", 0x1000);
    auto ops = make_ops();
    FakeDev d;
    auto uart = MemoryRegion::mmio("uart0", 0x100, &ops, &d);
    auto patch = MemoryRegion::ram("patch", 0x100);
    auto window = MemoryRegion::alias("dram-window", *dram, 0x2000, 0x800);
    root->add_subregion(0x80000000, *dram);
    root->add_subregion(0x10000000, *bus);
    bus->add_subregion(0x200, *uart);
    root->add_subregion(0x80000800, *patch, 1);
    root->add_subregion(0x4000, *window);
    AddressSpace as("system", *root);
    REQUIRE(as.mtree_tree() == "address-space: system\n"
                               "  0000000000000000-ffffffffffffffff (prio 0, container): system\n"
                               "    0000000000004000-00000000000047ff (prio 0, ram): alias dram-window @dram "
                               "0000000000002000-00000000000027ff\n"
                               "    0000000010000000-0000000010000fff (prio 0, container): bus\n"
                               "      0000000010000200-00000000100002ff (prio 0, i/o): uart0\n"
                               "    0000000080000000-000000008000ffff (prio 0, ram): dram /machine/dram\n"
                               "    0000000080000800-00000000800008ff (prio 1, ram): patch\n");
}
