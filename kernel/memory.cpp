// SPDX-License-Identifier: MIT
// Guest memory: region tree, flattening into sections, and the bus access paths (CPU, DMA, loader).
#include "memory.h"

#include "error.h"
#include "util.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cinttypes>
#include <cstddef>
#include <cstring>
#include <map>
#include <sys/mman.h>
#include <type_traits>

namespace keel
{

namespace
{

// One counter for all trees: topology changes are rare (machine build, device
// hotplug, remapping BARs), so a stale flag shared by every address space costs
// a spurious rebuild at worst, and keeps regions free of back-pointers to views.
uint64_t g_generation = 0;

void bump()
{
    ++g_generation;
}

std::string span(uint64_t first, uint64_t last)
{
    return "[" + format_hex(first) + "-" + format_hex(last) + "]";
}

bool valid_width(unsigned w)
{
    return w == 1 || w == 2 || w == 4 || w == 8;
}

// Guest values are little-endian: byte i of an access is bits 8i..8i+7.
uint64_t load_le(const uint8_t *p, unsigned w)
{
    uint64_t v = 0;
    switch (w) {
    case 1:
        return p[0];
    case 2: {
        uint16_t t;
        std::memcpy(&t, p, 2);
        v = t;
        break;
    }
    case 4: {
        uint32_t t;
        std::memcpy(&t, p, 4);
        v = t;
        break;
    }
    default:
        std::memcpy(&v, p, 8);
        break;
    }
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v) >> (64 - 8 * w);
    return v;
}

void store_le(uint8_t *p, unsigned w, uint64_t v)
{
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v) >> (64 - 8 * w);
    switch (w) {
    case 1:
        p[0] = static_cast<uint8_t>(v);
        break;
    case 2: {
        uint16_t t = static_cast<uint16_t>(v);
        std::memcpy(p, &t, 2);
        break;
    }
    case 4: {
        uint32_t t = static_cast<uint32_t>(v);
        std::memcpy(p, &t, 4);
        break;
    }
    default:
        std::memcpy(p, &v, 8);
        break;
    }
}

uint64_t width_mask(unsigned w)
{
    return w == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * w)) - 1;
}

uint64_t bswap_width(uint64_t v, unsigned w)
{
    return __builtin_bswap64(v) >> (64 - 8 * w);
}

// Byte j (0 = lowest address) of a w-wide device register value.
unsigned byte_shift(const KeelMemoryOps &ops, unsigned w, unsigned j)
{
    return 8 * (ops.endianness == KEEL_ENDIAN_BIG ? w - 1 - j : j);
}

// An access to one MMIO region whose width the bus already accepted. Calls the
// device with widths it implements: one call when it can, else pieces (split
// wider accesses into impl_max chunks, widen narrower ones to aligned impl_min
// chunks). Bytes are moved one by one between the guest value (little-endian)
// and each device value (in the device's byte order), which handles splitting,
// widening and endianness with one rule. Widened writes put zeroes in the
// bytes the guest did not write, as QEMU does: a read-modify-write could
// trigger read side effects.
KeelMemResult mmio_access(MemoryRegion &r, uint64_t off, unsigned w, uint64_t &value, bool is_write)
{
    const KeelMemoryOps &ops = r.ops();
    if (is_write ? !ops.write : !ops.read) return KEEL_MEM_ACCESS_ERROR;
    if (w < ops.valid_min || w > ops.valid_max) return KEEL_MEM_ACCESS_ERROR;
    if (!ops.unaligned_ok && (off & (w - 1))) return KEEL_MEM_ACCESS_ERROR;

    if (w >= ops.impl_min && w <= ops.impl_max) {
        if (is_write) {
            uint64_t v = value & width_mask(w);
            if (ops.endianness == KEEL_ENDIAN_BIG) v = bswap_width(v, w);
            return ops.write(r.opaque(), off, w, v);
        }
        uint64_t v = 0;
        KeelMemResult res = ops.read(r.opaque(), off, w, &v);
        v &= width_mask(w);
        if (ops.endianness == KEEL_ENDIAN_BIG) v = bswap_width(v, w);
        value = res == KEEL_MEM_OK ? v : 0;
        return res;
    }

    unsigned chunk = w > ops.impl_max ? ops.impl_max : ops.impl_min;
    uint64_t pos = w > ops.impl_max ? off : off & ~uint64_t{chunk - 1};
    uint64_t end = off + w; // exclusive; region offsets never reach 2^64 - 8
    uint64_t result = 0;
    for (; pos < end; pos += chunk) {
        if (is_write) {
            uint64_t v = 0;
            for (unsigned j = 0; j < chunk; ++j)
                if (pos + j >= off && pos + j < end)
                    v |= ((value >> (8 * (pos + j - off))) & 0xff) << byte_shift(ops, chunk, j);
            if (KeelMemResult res = ops.write(r.opaque(), pos, chunk, v); res != KEEL_MEM_OK) return res;
        } else {
            uint64_t v = 0;
            if (KeelMemResult res = ops.read(r.opaque(), pos, chunk, &v); res != KEEL_MEM_OK) {
                value = 0;
                return res;
            }
            for (unsigned j = 0; j < chunk; ++j)
                if (pos + j >= off && pos + j < end)
                    result |= ((v >> byte_shift(ops, chunk, j)) & 0xff) << (8 * (pos + j - off));
        }
    }
    if (!is_write) value = result;
    return KEEL_MEM_OK;
}

// The whole access lies inside one section.
KeelMemResult leaf_access(const AddressSpace::Section &s, uint64_t addr, unsigned w, uint64_t &value,
                          bool is_write)
{
    MemoryRegion &r = *s.region;
    uint64_t off = s.offset + (addr - s.start);
    switch (r.kind()) {
    case RegionKind::Ram:
        if (is_write)
            store_le(r.host() + off, w, value);
        else
            value = load_le(r.host() + off, w);
        return KEEL_MEM_OK;
    case RegionKind::Rom:
        if (!is_write) value = load_le(r.host() + off, w);
        return KEEL_MEM_OK;
    case RegionKind::Mmio:
        return mmio_access(r, off, w, value, is_write);
    default:
        return KEEL_MEM_DECODE_ERROR; // flat views hold only leaves
    }
}

// Fills only the parts of [lo, hi] that nothing has claimed yet. Regions are
// rendered highest priority first, so "first come wins" is "highest priority wins".
class FlatBuilder
{
  public:
    void fill(uint64_t lo, uint64_t hi, MemoryRegion *r, uint64_t roff, int prio)
    {
        uint64_t cur = lo;
        auto it = m_.upper_bound(lo);
        if (it != m_.begin()) {
            const auto &p = std::prev(it)->second;
            if (p.last() >= lo) {
                if (p.last() >= hi) return;
                cur = p.last() + 1;
            }
        }
        // Invariant: `it` is the first section starting at or after cur.
        for (;;) {
            if (it == m_.end() || it->first > hi) {
                put(cur, hi, r, roff + (cur - lo), prio);
                return;
            }
            if (it->first > cur) put(cur, it->first - 1, r, roff + (cur - lo), prio);
            uint64_t ilast = it->second.last();
            if (ilast >= hi) return;
            cur = ilast + 1;
            ++it;
        }
    }

    // Sorted, with neighbouring pieces of one region merged (so ram_ptr's
    // avail spans them).
    std::vector<AddressSpace::Section> take()
    {
        std::vector<AddressSpace::Section> out;
        out.reserve(m_.size());
        for (auto &[start, s] : m_) {
            if (!out.empty()) {
                auto &b = out.back();
                if (b.region == s.region && b.priority == s.priority && b.last() + 1 == s.start &&
                    b.offset + b.size == s.offset) {
                    b.size += s.size;
                    continue;
                }
            }
            out.push_back(s);
        }
        return out;
    }

  private:
    void put(uint64_t first, uint64_t last, MemoryRegion *r, uint64_t roff, int prio)
    {
        m_.emplace(first, AddressSpace::Section{first, last - first + 1, r, roff, prio});
    }
    std::map<uint64_t, AddressSpace::Section> m_;
};

// Places offsets [lo, hi] of r at address addr.
void render(FlatBuilder &b, MemoryRegion &r, uint64_t lo, uint64_t hi, uint64_t addr, int prio)
{
    switch (r.kind()) {
    case RegionKind::Ram:
    case RegionKind::Rom:
    case RegionKind::Mmio:
        b.fill(addr, addr + (hi - lo), &r, lo, prio);
        break;
    case RegionKind::Alias:
        // The alias's own priority is the one that competed with its siblings.
        if (r.alias_target())
            render(b, *r.alias_target(), lo + r.alias_offset(), hi + r.alias_offset(), addr, prio);
        break;
    case RegionKind::Container:
        for (const auto &sub : r.subregions()) {
            uint64_t s_first = sub.offset, s_last = sub.offset + sub.region->last();
            uint64_t a = std::max(lo, s_first), z = std::min(hi, s_last);
            if (a > z) continue;
            render(b, *sub.region, a - s_first, z - s_first, addr + (a - lo), sub.priority);
        }
        break;
    }
}

} // namespace

const char *region_kind_name(RegionKind k)
{
    switch (k) {
    case RegionKind::Ram:
        return "ram";
    case RegionKind::Rom:
        return "rom";
    case RegionKind::Mmio:
        return "i/o";
    case RegionKind::Alias:
        return "alias";
    case RegionKind::Container:
        return "container";
    }
    return "?";
}

// ---------------------------------------------------------------------------
// MemoryRegion

MemoryRegion::MemoryRegion(std::string name, RegionKind kind, uint64_t size)
    : name_(std::move(name)), kind_(kind), size_(size), last_(size - 1)
{
    if (size == 0) throw Error(strprintf("memory region '%s': size is 0", name_.c_str()));
    if (kind == RegionKind::Container && size == UINT64_MAX) last_ = UINT64_MAX;
}

uint64_t MemoryRegion::generation()
{
    return g_generation;
}

namespace
{
uint8_t *map_host(const std::string &name, uint64_t size)
{
    void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        throw Error(strprintf("cannot allocate %s of host memory for '%s': %s", format_size(size).c_str(),
                              name.c_str(), std::strerror(errno)));
    return static_cast<uint8_t *>(p);
}
} // namespace

std::unique_ptr<MemoryRegion> MemoryRegion::ram(std::string name, uint64_t size)
{
    std::unique_ptr<MemoryRegion> r(new MemoryRegion(std::move(name), RegionKind::Ram, size));
    r->host_ = map_host(r->name_, size);
    return r;
}

std::unique_ptr<MemoryRegion> MemoryRegion::rom(std::string name, uint64_t size)
{
    std::unique_ptr<MemoryRegion> r(new MemoryRegion(std::move(name), RegionKind::Rom, size));
    r->host_ = map_host(r->name_, size);
    return r;
}

std::unique_ptr<MemoryRegion> MemoryRegion::mmio(std::string name, uint64_t size, const KeelMemoryOps *ops,
                                                 void *opaque)
{
    auto fail = [&](const std::string &why) -> Error {
        return Error(strprintf("MMIO region '%s': %s", name.c_str(), why.c_str()));
    };
    if (!ops) throw fail("no ops table");
    // A module built against ABI 1.0 has at least the fields up to reserved;
    // anything shorter is garbage or a pre-release table.
    constexpr size_t kMinSize = offsetof(KeelMemoryOps, reserved);
    if (ops->size < kMinSize)
        throw fail(strprintf("ops table size %zu is smaller than the ABI 1.0 table (%zu bytes)", ops->size,
                             kMinSize));
    if (!ops->read && !ops->write) throw fail("ops table has neither read nor write");
    if (size == 0) throw fail("size is 0");

    KeelMemoryOps o{};
    // Newer modules may pass a larger table; we only understand our prefix.
    std::memcpy(&o, ops, std::min(ops->size, sizeof o));
    o.size = sizeof o;
    auto check = [&](const char *field, uint8_t w) {
        if (w != 0 && !valid_width(w))
            throw fail(strprintf("ops.%s is %u; access widths are 0 (default), 1, 2, 4 or 8", field, w));
    };
    check("valid_min", o.valid_min);
    check("valid_max", o.valid_max);
    check("impl_min", o.impl_min);
    check("impl_max", o.impl_max);
    // The enum and bool come from C code that may have stored any value;
    // loading an out-of-range one as the C++ type would be undefined, so look
    // at the raw bytes.
    std::underlying_type_t<KeelEndianness> endian;
    std::memcpy(&endian, reinterpret_cast<const char *>(&o) + offsetof(KeelMemoryOps, endianness),
                sizeof endian);
    if (endian != KEEL_ENDIAN_LITTLE && endian != KEEL_ENDIAN_BIG)
        throw fail(strprintf("ops.endianness is %lld; expected KEEL_ENDIAN_LITTLE or KEEL_ENDIAN_BIG",
                             static_cast<long long>(endian)));
    uint8_t unaligned;
    std::memcpy(&unaligned, reinterpret_cast<const char *>(&o) + offsetof(KeelMemoryOps, unaligned_ok), 1);
    o.unaligned_ok = unaligned != 0;
    // Normalize once so the access path compares without special cases.
    if (!o.valid_min) o.valid_min = 1;
    if (!o.valid_max) o.valid_max = 8;
    if (o.valid_min > o.valid_max)
        throw fail(
            strprintf("ops.valid_min (%u) is greater than ops.valid_max (%u)", o.valid_min, o.valid_max));
    if (!o.impl_min) o.impl_min = o.valid_min;
    if (!o.impl_max) o.impl_max = o.valid_max;
    if (o.impl_min > o.impl_max)
        throw fail(strprintf("ops.impl_min (%u) is greater than ops.impl_max (%u)", o.impl_min, o.impl_max));
    std::memset(o.reserved, 0, sizeof o.reserved);

    std::unique_ptr<MemoryRegion> r(new MemoryRegion(std::move(name), RegionKind::Mmio, size));
    r->ops_ = o;
    r->opaque_ = opaque;
    return r;
}

std::unique_ptr<MemoryRegion> MemoryRegion::alias(std::string name, MemoryRegion &target, uint64_t offset,
                                                  uint64_t size)
{
    if (size == 0 || offset > target.last() || size - 1 > target.last() - offset)
        throw Error(strprintf("alias '%s': %s is outside '%s' (size %s)", name.c_str(),
                              size ? span(offset, offset + (size - 1)).c_str() : "an empty range",
                              target.name().c_str(), format_hex(target.size()).c_str()));
    std::unique_ptr<MemoryRegion> r(new MemoryRegion(std::move(name), RegionKind::Alias, size));
    r->alias_target_ = &target;
    r->alias_offset_ = offset;
    target.aliases_.push_back(r.get());
    return r;
}

std::unique_ptr<MemoryRegion> MemoryRegion::container(std::string name, uint64_t size)
{
    return std::unique_ptr<MemoryRegion>(new MemoryRegion(std::move(name), RegionKind::Container, size));
}

MemoryRegion::~MemoryRegion()
{
    if (parent_) parent_->remove_subregion(*this);
    for (auto &s : subregions_)
        s.region->parent_ = nullptr;
    for (MemoryRegion *a : aliases_)
        a->alias_target_ = nullptr;
    if (alias_target_) std::erase(alias_target_->aliases_, this);
    if (host_) munmap(host_, size_);
    bump();
}

bool MemoryRegion::reaches(const MemoryRegion *r) const
{
    if (this == r) return true;
    if (alias_target_ && alias_target_->reaches(r)) return true;
    for (const auto &s : subregions_)
        if (s.region->reaches(r)) return true;
    return false;
}

void MemoryRegion::add_subregion(uint64_t offset, MemoryRegion &sub, int priority)
{
    if (kind_ != RegionKind::Container)
        throw Error(
            strprintf("cannot map '%s' into '%s': not a container", sub.name_.c_str(), name_.c_str()));
    uint64_t last = offset + sub.last_;
    if (offset > last_ || sub.last_ > last_ - offset)
        throw Error(strprintf("region '%s' at %s does not fit in container '%s' %s", sub.name_.c_str(),
                              format_hex(offset).c_str(), name_.c_str(), span(0, last_).c_str()));
    if (sub.parent_)
        throw Error(strprintf("region '%s' is already mapped in '%s'", sub.name_.c_str(),
                              sub.parent_->name_.c_str()));
    if (sub.reaches(this))
        throw Error(strprintf("mapping '%s' into '%s' would make a cycle", sub.name_.c_str(), name_.c_str()));
    for (const auto &s : subregions_) {
        uint64_t s_last = s.offset + s.region->last_;
        if (s.priority == priority && offset <= s_last && s.offset <= last)
            throw Error(strprintf("region '%s' %s overlaps '%s' %s", sub.name_.c_str(),
                                  span(offset, last).c_str(), s.region->name_.c_str(),
                                  span(s.offset, s_last).c_str()));
    }
    // Keep highest priority first so flattening walks them in order.
    auto pos = std::find_if(subregions_.begin(), subregions_.end(),
                            [&](const Subregion &s) { return s.priority < priority; });
    subregions_.insert(pos, Subregion{offset, &sub, priority});
    sub.parent_ = this;
    bump();
}

void MemoryRegion::remove_subregion(MemoryRegion &sub)
{
    auto it = std::find_if(subregions_.begin(), subregions_.end(),
                           [&](const Subregion &s) { return s.region == &sub; });
    if (it == subregions_.end())
        throw Error(strprintf("region '%s' is not mapped in '%s'", sub.name_.c_str(), name_.c_str()));
    subregions_.erase(it);
    sub.parent_ = nullptr;
    bump();
}

// ---------------------------------------------------------------------------
// AddressSpace

AddressSpace::AddressSpace(std::string name, MemoryRegion &root) : name_(std::move(name)), root_(root) {}

void AddressSpace::rebuild()
{
    FlatBuilder b;
    render(b, root_, 0, root_.last(), 0, 0);
    flat_ = b.take();
    built_gen_ = g_generation;
}

const std::vector<AddressSpace::Section> &AddressSpace::sections()
{
    if (built_gen_ != g_generation) rebuild();
    return flat_;
}

const AddressSpace::Section *AddressSpace::find(uint64_t addr)
{
    if (built_gen_ != g_generation) rebuild();
    // Last section starting at or before addr.
    auto it = std::upper_bound(flat_.begin(), flat_.end(), addr,
                               [](uint64_t a, const Section &s) { return a < s.start; });
    if (it == flat_.begin()) return nullptr;
    --it;
    return addr <= it->last() ? &*it : nullptr;
}

namespace
{
// An access that crosses sections: allowed only over RAM/ROM, byte by byte.
// Everything is checked before anything is written so a refused write has no effect.
KeelMemResult check_straddle(AddressSpace &as, uint64_t addr, unsigned w)
{
    for (unsigned i = 0; i < w; ++i) {
        const AddressSpace::Section *s = as.find(addr + i);
        if (!s) return KEEL_MEM_DECODE_ERROR;
        if (s->region->kind() == RegionKind::Mmio) return KEEL_MEM_ACCESS_ERROR;
    }
    return KEEL_MEM_OK;
}
} // namespace

KeelMemResult AddressSpace::read(uint64_t addr, unsigned width, uint64_t &value)
{
    value = 0;
    if (!valid_width(width)) return KEEL_MEM_ACCESS_ERROR;
    const Section *s = find(addr);
    if (!s) return KEEL_MEM_DECODE_ERROR;
    if (width - 1 <= s->last() - addr) return leaf_access(*s, addr, width, value, false);
    if (addr + (width - 1) < addr) return KEEL_MEM_DECODE_ERROR; // wraps past 2^64
    if (KeelMemResult r = check_straddle(*this, addr, width); r != KEEL_MEM_OK) return r;
    uint64_t v = 0;
    for (unsigned i = 0; i < width; ++i) {
        const Section *b = find(addr + i);
        v |= uint64_t{b->region->host()[b->offset + (addr + i - b->start)]} << (8 * i);
    }
    value = v;
    return KEEL_MEM_OK;
}

KeelMemResult AddressSpace::write(uint64_t addr, unsigned width, uint64_t value)
{
    if (!valid_width(width)) return KEEL_MEM_ACCESS_ERROR;
    const Section *s = find(addr);
    if (!s) return KEEL_MEM_DECODE_ERROR;
    if (width - 1 <= s->last() - addr) return leaf_access(*s, addr, width, value, true);
    if (addr + (width - 1) < addr) return KEEL_MEM_DECODE_ERROR;
    if (KeelMemResult r = check_straddle(*this, addr, width); r != KEEL_MEM_OK) return r;
    for (unsigned i = 0; i < width; ++i) {
        const Section *b = find(addr + i);
        if (b->region->kind() == RegionKind::Ram)
            b->region->host()[b->offset + (addr + i - b->start)] = static_cast<uint8_t>(value >> (8 * i));
    }
    return KEEL_MEM_OK;
}

KeelMemResult AddressSpace::buf_access(uint64_t addr, uint8_t *buf, uint64_t len, BufOp op)
{
    while (len) {
        const Section *s = find(addr);
        if (!s) return KEEL_MEM_DECODE_ERROR;
        uint64_t avail = s->last() - addr; // bytes after addr in this section
        uint64_t n = avail < len - 1 ? avail + 1 : len;
        // Copied out: a device callback may change the topology, after
        // which the next find() rebuilds the view under `s`.
        MemoryRegion &r = *s->region;
        uint64_t off = s->offset + (addr - s->start);
        bool at_top = s->last() == UINT64_MAX;
        switch (r.kind()) {
        case RegionKind::Ram:
        case RegionKind::Rom:
            if (op == BufOp::Read)
                std::memcpy(buf, r.host() + off, n);
            else if (op == BufOp::Rom || r.kind() == RegionKind::Ram)
                std::memcpy(r.host() + off, buf, n);
            break;
        case RegionKind::Mmio: {
            if (op == BufOp::Rom) return KEEL_MEM_ACCESS_ERROR;
            const KeelMemoryOps &ops = r.ops();
            for (uint64_t done = 0; done < n;) {
                // Widest width the device accepts that is aligned (unless it
                // takes unaligned accesses) and does not run past the part.
                unsigned w = 0;
                for (unsigned c = ops.valid_max; c >= ops.valid_min && c; c >>= 1)
                    if (c <= n - done && (ops.unaligned_ok || ((off + done) & (c - 1)) == 0)) {
                        w = c;
                        break;
                    }
                if (!w) return KEEL_MEM_ACCESS_ERROR;
                uint64_t v = 0;
                if (op == BufOp::Write) v = load_le(buf + done, w);
                KeelMemResult res = mmio_access(r, off + done, w, v, op == BufOp::Write);
                if (res != KEEL_MEM_OK) return res;
                if (op == BufOp::Read) store_le(buf + done, w, v);
                done += w;
            }
            break;
        }
        default:
            return KEEL_MEM_DECODE_ERROR;
        }
        len -= n;
        buf += n;
        if (len && at_top) return KEEL_MEM_DECODE_ERROR; // would wrap past 2^64
        addr += n;
    }
    return KEEL_MEM_OK;
}

KeelMemResult AddressSpace::read_buf(uint64_t addr, void *buf, uint64_t len)
{
    return buf_access(addr, static_cast<uint8_t *>(buf), len, BufOp::Read);
}

KeelMemResult AddressSpace::write_buf(uint64_t addr, const void *buf, uint64_t len)
{
    // buf_access only reads from buf for writes.
    return buf_access(addr, static_cast<uint8_t *>(const_cast<void *>(buf)), len, BufOp::Write);
}

KeelMemResult AddressSpace::write_rom(uint64_t addr, const void *buf, uint64_t len)
{
    return buf_access(addr, static_cast<uint8_t *>(const_cast<void *>(buf)), len, BufOp::Rom);
}

uint8_t *AddressSpace::ram_ptr(uint64_t addr, uint64_t *avail, bool for_write)
{
    if (avail) *avail = 0;
    const Section *s = find(addr);
    if (!s) return nullptr;
    RegionKind k = s->region->kind();
    if (k != RegionKind::Ram && (k != RegionKind::Rom || for_write)) return nullptr;
    if (avail) *avail = s->last() - addr + 1;
    return s->region->host() + s->offset + (addr - s->start);
}

namespace
{

void mtree_region(std::string &out, const MemoryRegion &r, uint64_t base, int priority, unsigned depth)
{
    uint64_t last = base + r.last(); // wraps only for a full-space container at 0
    out += std::string(2 * depth, ' ') +
           strprintf("%016" PRIx64 "-%016" PRIx64 " (prio %d, %s): ", base, last, priority,
                     region_kind_name(r.kind() == RegionKind::Alias && r.alias_target()
                                          ? r.alias_target()->kind()
                                          : r.kind()));
    if (r.kind() == RegionKind::Alias) {
        // As QEMU: "alias NAME @TARGET START-END" (the range inside the target).
        out += "alias " + r.name();
        if (r.alias_target())
            out += strprintf(" @%s %016" PRIx64 "-%016" PRIx64, r.alias_target()->name().c_str(),
                             r.alias_offset(), r.alias_offset() + r.last());
    } else {
        out += r.name();
    }
    if (!r.owner().empty()) out += " " + r.owner();
    out += "\n";
    // By address, then the higher priority first where they overlap.
    std::vector<MemoryRegion::Subregion> subs = r.subregions();
    std::stable_sort(subs.begin(), subs.end(), [](const auto &a, const auto &b) {
        return a.offset != b.offset ? a.offset < b.offset : a.priority > b.priority;
    });
    for (const auto &sub : subs)
        mtree_region(out, *sub.region, base + sub.offset, sub.priority, depth + 1);
}

} // namespace

std::string AddressSpace::mtree_tree()
{
    std::string out = "address-space: " + name_ + "\n";
    mtree_region(out, root_, 0, 0, 1);
    return out;
}

std::string AddressSpace::mtree()
{
    std::string out = "address-space (flat view): " + name_ + "\n";
    for (const Section &s : sections()) {
        out += strprintf("  %016" PRIx64 "-%016" PRIx64 " (prio %d, %s): %s", s.start, s.last(), s.priority,
                         region_kind_name(s.region->kind()), s.region->name().c_str());
        // As QEMU: where the section does not start at the region's beginning
        // (aliases, partly shadowed regions), say where in the region it is.
        if (s.offset) out += strprintf(" @%016" PRIx64, s.offset);
        if (!s.region->owner().empty()) out += " " + s.region->owner();
        out += "\n";
    }
    return out;
}

} // namespace keel
