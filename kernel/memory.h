// SPDX-License-Identifier: MIT
// Guest memory: regions (RAM, ROM, MMIO, alias, container), address spaces with a flattened view, bus access.
#pragma once

#include <keel/memory.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace keel
{

enum class RegionKind { Ram, Rom, Mmio, Alias, Container };

// "ram", "rom", "i/o", "alias", "container" (the words QEMU's mtree uses).
const char *region_kind_name(RegionKind k);

// A node of the memory topology. Leaves (Ram, Rom, Mmio) back guest accesses;
// containers place subregions at offsets with priorities; aliases show a
// window of another region. Regions are neither copyable nor movable because
// containers, aliases and flat views point at them.
//
// Lifetime: destroying a region that is still mapped unmaps it; destroying a
// container unmaps its subregions; destroying an alias target leaves the
// alias empty. So any destruction order is safe, though not meaningful.
class MemoryRegion
{
  public:
    struct Subregion {
        uint64_t offset;
        MemoryRegion *region;
        int priority;
    };

    // Zeroed host memory: one mmap(MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE), so
    // untouched guest RAM costs nothing and the JIT can add a constant to reach it.
    static std::unique_ptr<MemoryRegion> ram(std::string name, uint64_t size);
    // Host-backed like RAM; guest writes are ignored (and succeed), loaders use
    // AddressSpace::write_rom or host().
    static std::unique_ptr<MemoryRegion> rom(std::string name, uint64_t size);
    // A device register window. The ops table is validated and copied (so a
    // module may pass a table on its stack); throws keel::Error when it is unusable.
    static std::unique_ptr<MemoryRegion> mmio(std::string name, uint64_t size, const KeelMemoryOps *ops,
                                              void *opaque);
    // [offset, offset+size) of `target`, which must outlive its use in a tree
    // (if it dies first the alias maps nothing).
    static std::unique_ptr<MemoryRegion> alias(std::string name, MemoryRegion &target, uint64_t offset,
                                               uint64_t size);
    // An empty window that places subregions. As in QEMU, size UINT64_MAX
    // means the whole 2^64 space. Unoccupied parts are unmapped.
    static std::unique_ptr<MemoryRegion> container(std::string name, uint64_t size);

    ~MemoryRegion();
    MemoryRegion(const MemoryRegion &) = delete;
    MemoryRegion &operator=(const MemoryRegion &) = delete;

    // Container only. A region can be mapped in one container at a time (use
    // an alias to show it twice). Throws keel::Error if `sub` does not fit,
    // overlaps a subregion of the same priority, is already mapped, or would
    // make a cycle. Where different priorities overlap the higher one wins.
    void add_subregion(uint64_t offset, MemoryRegion &sub, int priority = 0);
    // Throws keel::Error if `sub` is not a subregion of this container.
    void remove_subregion(MemoryRegion &sub);

    const std::string &name() const { return name_; }
    RegionKind kind() const { return kind_; }
    uint64_t size() const { return size_; }
    // Last valid offset (size - 1, or UINT64_MAX for a full-space container).
    uint64_t last() const { return last_; }
    uint8_t *host() { return host_; } // Ram/Rom, else nullptr
    void set_owner(std::string path) { owner_ = std::move(path); }
    const std::string &owner() const { return owner_; }

    // Mmio: the normalized copy of the ops table (valid/impl ranges filled in) and its opaque.
    const KeelMemoryOps &ops() const { return ops_; }
    void *opaque() const { return opaque_; }
    // Alias: target (nullptr once the target is gone) and offset into it.
    MemoryRegion *alias_target() const { return alias_target_; }
    uint64_t alias_offset() const { return alias_offset_; }
    // Container: subregions, highest priority first.
    const std::vector<Subregion> &subregions() const { return subregions_; }
    // The container this region is mapped in, or nullptr.
    MemoryRegion *parent() const { return parent_; }

    // Bumped whenever any topology changes anywhere; address spaces compare it
    // to decide whether their flat view is stale.
    static uint64_t generation();

  private:
    MemoryRegion(std::string name, RegionKind kind, uint64_t size);
    bool reaches(const MemoryRegion *r) const;

    std::string name_;
    RegionKind kind_;
    uint64_t size_;
    uint64_t last_;
    std::string owner_;
    uint8_t *host_ = nullptr;
    KeelMemoryOps ops_{};
    void *opaque_ = nullptr;
    MemoryRegion *alias_target_ = nullptr;
    uint64_t alias_offset_ = 0;
    std::vector<MemoryRegion *> aliases_; // aliases pointing at this region
    std::vector<Subregion> subregions_;
    MemoryRegion *parent_ = nullptr;
};

// What a CPU or DMA engine sees: a root region flattened into sorted,
// non-overlapping sections of leaves.
class AddressSpace
{
  public:
    struct Section {
        uint64_t start;
        uint64_t size;
        MemoryRegion *region; // leaf: Ram/Rom/Mmio
        uint64_t offset;      // offset of `start` inside region
        int priority;         // of the subregion that won this range
        uint64_t last() const { return start + (size - 1); }
    };

    AddressSpace(std::string name, MemoryRegion &root);
    AddressSpace(const AddressSpace &) = delete;
    AddressSpace &operator=(const AddressSpace &) = delete;

    const std::string &name() const { return name_; }
    MemoryRegion &root() { return root_; }

    // The section containing addr, or nullptr if unmapped. Binary search; the
    // view is rebuilt first if the topology changed since the last build.
    // The pointer stays valid until the next topology change.
    const Section *find(uint64_t addr);
    // The whole flat view (rebuilt if stale).
    const std::vector<Section> &sections();

    // One guest access of width 1/2/4/8, little-endian guest.
    KeelMemResult read(uint64_t addr, unsigned width, uint64_t &value);
    KeelMemResult write(uint64_t addr, unsigned width, uint64_t value);

    // DMA / debugger access of any length across sections. MMIO parts use the
    // widest valid aligned accesses. Stops at the first failing part.
    KeelMemResult read_buf(uint64_t addr, void *buf, uint64_t len);
    KeelMemResult write_buf(uint64_t addr, const void *buf, uint64_t len);
    // Loader: copies into RAM and ROM alike; MMIO -> ACCESS_ERROR, unmapped -> DECODE_ERROR.
    KeelMemResult write_rom(uint64_t addr, const void *buf, uint64_t len);

    // Host pointer for RAM at addr (ROM too when !for_write) and, in *avail,
    // how many bytes are contiguous from there; nullptr (and 0) otherwise.
    uint8_t *ram_ptr(uint64_t addr, uint64_t *avail, bool for_write);

    // Like QEMU's `info mtree -f`: a header, then one line per flat section.
    std::string mtree();
    // Like QEMU's `info mtree`: the region tree, each subregion indented under its container.
    std::string mtree_tree();

  private:
    void rebuild();
    enum class BufOp { Read, Write, Rom };
    KeelMemResult buf_access(uint64_t addr, uint8_t *buf, uint64_t len, BufOp op);

    std::string name_;
    MemoryRegion &root_;
    std::vector<Section> flat_;
    uint64_t built_gen_ = UINT64_MAX; // no generation ever equals this: build on first use
};

} // namespace keel
