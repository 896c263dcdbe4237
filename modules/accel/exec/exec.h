// SPDX-License-Identifier: MIT
// The shared execution core: translation blocks, their cache and chaining, the soft TLB, the vCPU loop.
#pragma once

#include <atomic>
#include <bitset>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <keel/accel.h>
#include <keel/clock.h>
#include <keel/cpu.h>
#include <keel/services.h>

#include "builder.h"
#include "ir_block.h"

namespace keel::exec
{

class Core;
struct CpuState;

// The soft TLB caches 4 KiB pages whatever page size the CPU reports.
constexpr unsigned kPageBits = 12;
constexpr uint64_t kPageSize = uint64_t(1) << kPageBits;
constexpr uint64_t kPageMask = ~(kPageSize - 1);
constexpr unsigned kTlbBits = 10;
constexpr unsigned kTlbSize = 1u << kTlbBits;
constexpr unsigned kMaxMmuIdx = 8;

// Low bits of a TLB tag (a page address has them clear, so any flag makes the
// inline compare fail and sends the access to the slow path).
constexpr uint64_t kTlbSlow = 1; // not plain RAM for this access (MMIO, ROM write): go through the bus
constexpr uint64_t kTlbCode = 2; // write tag only: the page holds translated code
constexpr uint64_t kTlbFlags = kTlbSlow | kTlbCode;
constexpr uint64_t kTlbInvalid = ~uint64_t(0); // matches no address, even with the flags masked off

// One cached page: a tag per KeelAccess, and for RAM the host address of
// vaddr is vaddr + addend.
struct TlbEntry {
    uint64_t tag[3];
    uintptr_t addend;
    uint64_t paddr; // physical page
};

inline unsigned tlb_index(uint64_t vaddr)
{
    return static_cast<unsigned>(vaddr >> kPageBits) & (kTlbSize - 1);
}

// A translated block. Owned by its CPU's cache; an invalidated block stays
// allocated until the engine has certainly left it.
struct Tb {
    uint64_t pc = 0;
    uint64_t phys_pc = 0;
    uint64_t flags = 0;
    uint64_t phys_page[2] = {0, 0}; // physical pages its code came from
    uint64_t virt_page2 = 0;        // when it spans two pages: the second one's virtual address
    uint32_t code_lo[2] = {0, 0};   // bytes [code_lo, code_hi) of each page hold its code
    uint32_t code_hi[2] = {0, 0};
    unsigned n_pages = 0;
    unsigned n_insns = 0;
    std::vector<uint32_t> insn_off; // each instruction's pc - pc, in order (finds a faulting insn)
    bool valid = true;
    bool temp = false; // cut short for -icount: run once, never cached, looked up or chained
    CpuState *cpu = nullptr;
    // Chaining: where exits goto_tb 0/1 go directly, and who jumps here.
    Tb *jmp[2] = {nullptr, nullptr};
    std::vector<std::pair<Tb *, unsigned>> jmp_from;
    void *code = nullptr; // the engine's runnable form
};

enum class ExitKind {
    GotoTb,    // left through goto_tb `slot` (not chained)
    Lookup,    // lookup_and_goto found no block, or chaining is off
    ExitTb,    // exit_tb
    Exception, // a fault or a MAY_RAISE helper: the pc global holds the insn's pc
    Request,   // exit_request (or the time slice) stopped a chained entry
};

struct ExecResult {
    Tb *last; // the block that exited
    ExitKind kind;
    unsigned slot; // for GotoTb
};

// What an engine (tci, the JIT) plugs into the core.
class Engine
{
  public:
    virtual ~Engine() = default;
    // Turn a verified block into tb.code for `cpu` (blocks are per CPU, so the
    // engine may bake in env and TLB addresses). False and `err` on failure.
    virtual bool compile(CpuState &cpu, const IrBlock &block, Tb &tb, std::string &err) = 0;
    // Free tb.code.
    virtual void release(Tb &tb) = 0;
    // Run `tb` and whatever it chains to, until an exit to the loop.
    virtual ExecResult exec(CpuState &cpu, Tb *tb) = 0;
    // Make exit `slot` of `from` continue at `to` directly / undo it. The
    // defaults suit engines that read Tb::jmp at run time.
    virtual void link(Tb &from, unsigned slot, Tb &to) { from.jmp[slot] = &to; }
    virtual void unlink(Tb &from, unsigned slot) { from.jmp[slot] = nullptr; }
};

struct TbKey {
    uint64_t pc, phys, flags;
    bool operator==(const TbKey &) const = default;
};
struct TbKeyHash {
    size_t operator()(const TbKey &k) const
    {
        uint64_t h = k.pc * 0x9e3779b97f4a7c15ull ^ k.phys * 0xc2b2ae3d27d4eb4full ^ k.flags;
        return static_cast<size_t>(h ^ (h >> 29));
    }
};

constexpr unsigned kJcBits = 12;
constexpr unsigned kJcSize = 1u << kJcBits;

inline unsigned jc_index(uint64_t pc)
{
    return static_cast<unsigned>((pc >> 1) ^ (pc >> (kJcBits + 1))) & (kJcSize - 1);
}

// Everything the engine keeps per CPU; KeelCpuCommon.engine_data points here.
struct CpuState {
    TlbEntry tlb[kMaxMmuIdx][kTlbSize];
    Tb *jc[kJcSize]; // by virtual pc: the last block found there
    KeelObject *obj = nullptr;
    void *env = nullptr;
    KeelCpuCommon *common = nullptr;
    const KeelCpuOps *ops = nullptr;
    uint64_t *pc = nullptr; // the pc global
    Core *core = nullptr;
    unsigned index = 0;
    // Instructions left in this time slice (up to the next virtual deadline
    // with -icount): engines subtract tb->n_insns at each chained block entry,
    // and leave to the loop instead of entering a block that does not fit.
    int64_t budget = 0;
    // -icount: `budget` when the block being run was entered (engines store
    // it at each chained entry, so the clock can count a running chain at
    // block granularity), and when the core entered the engine.
    int64_t icount_pub = 0;
    int64_t icount_mark = 0;
    bool icount = false; // -icount is on: engines must store icount_pub
    // Whether engines may chain and look blocks up by themselves (off while -d exec/cpu log every block).
    bool chain = true;
    uint64_t large_addr[kMaxMmuIdx] = {}; // a range covering every large page cached, per MMU index
    uint64_t large_mask[kMaxMmuIdx] = {};
    std::unordered_map<TbKey, Tb *, TbKeyHash> tbs;
};

// Lookup for lookup_and_goto inside an engine: the jump cache only.
// The KeelAccelOps run-control entries of an engine built on Core (accel = the Core). ABI 1.4.
void accel_pause(void *accel);
void accel_resume(void *accel, const uint8_t *modes, unsigned n_modes);
int accel_set_debug(void *accel, const KeelDebugPoint *points, unsigned n_points, KeelError *err);
void accel_code_written(void *accel, uint64_t paddr, uint64_t len);

inline Tb *jc_lookup(CpuState &c, uint64_t pc, uint64_t flags)
{
    Tb *t = c.jc[jc_index(pc)];
    return t && t->pc == pc && t->flags == flags ? t : nullptr;
}

class Core
{
  public:
    Core(const KeelCpuHandle *cpus, unsigned n_cpus, std::unique_ptr<Engine> engine);
    ~Core();
    Core(const Core &) = delete;
    Core &operator=(const Core &) = delete;

    // Why the CPUs cannot be run (empty if they can); checked by create().
    static std::string check_cpus(const KeelCpuHandle *cpus, unsigned n_cpus);

    int run();
    void stop();
    void kick(unsigned cpu_index);

    // Run control (KeelAccelOps, ABI 1.4; debug.cpp). pause/resume/set_debug/code_written: any thread but
    // the vCPU thread.
    void pause();
    void resume(const uint8_t *modes, unsigned n_modes);
    int set_debug(const KeelDebugPoint *points, unsigned n_points, KeelError *err);
    void code_written(uint64_t paddr, uint64_t len);

    // Called after translation, before verification: instrumentation inserts here.
    using Instrument = std::function<void(KeelIrBuilder *, const KeelIrBuilderOps *)>;
    void set_instrument(Instrument f) { instrument_ = std::move(f); }

    // Slow paths of guest loads and stores (engines inline the TLB hit).
    // On a fault the pc global gets `insn_pc` and false is returned.
    bool load_slow(CpuState &c, uint64_t addr, uint32_t memop, unsigned mmu, uint64_t insn_pc,
                   uint64_t &value);
    bool store_slow(CpuState &c, uint64_t addr, uint32_t memop, unsigned mmu, uint64_t insn_pc,
                    uint64_t value);

    void tlb_flush(CpuState &c);
    void tlb_flush_page(CpuState &c, uint64_t vaddr);
    void tb_flush(CpuState &c);

    CpuState &cpu(unsigned i) { return *cpus_[i]; }
    unsigned n_cpus() const { return static_cast<unsigned>(cpus_.size()); }
    Engine &engine() { return *engine_; }
    uint64_t tb_count() const { return tb_count_; }

  private:
    struct Xlat {
        uint64_t paddr;
        uint8_t *host; // nullptr: go through cpu_mem_read/write
    };
    bool translate(CpuState &c, uint64_t vaddr, KeelAccess acc, unsigned mmu, bool probe, Xlat &out);
    bool access(CpuState &c, uint64_t addr, unsigned size, KeelAccess acc, unsigned mmu, uint64_t &value,
                bool rmw = false);
    bool access_part(CpuState &c, uint64_t vaddr, const Xlat &x, unsigned size, KeelAccess acc, unsigned mmu,
                     uint64_t &value, KeelAccess fault_acc);
    void note_write(uint64_t paddr, unsigned size);
    int find_tb(CpuState &c, uint64_t pc, uint64_t flags, Tb **out);
    // `temp`: a block for one run only (cut to max_insns for -icount), not entered in any cache.
    Tb *translate_block(CpuState &c, uint64_t pc, uint64_t phys, uint64_t flags, unsigned max_insns,
                        bool temp);
    void add_code_page(uint64_t page, Tb *tb);
    void invalidate_page(uint64_t page);
    void clear_code_flag(uint64_t page);
    void invalidate(Tb *tb);
    void free_dead();
    void do_link(Tb *from, unsigned slot, Tb *to);
    // The CPU's share of a round: blocks until its time slice is used, it halts, or a pause is asked.
    // `step`: exactly one instruction (or the trap it raises), interrupts left pending. Returns -1 on an
    // internal error, 1 when a breakpoint or watchpoint stopped it (debug_event_), else 0.
    int run_slice(CpuState &c, bool step = false);
    // ---- run control (debug.cpp) ----
    // Park the vCPU thread until resume() or stop(); `report` (self-parking at a debug event) goes to
    // KeelServices.debug_stopped once parked.
    void park(const KeelStopInfo *report);
    void apply_debug(); // take the points set_debug() left (vCPU thread)
    bool breakpoint_at(uint64_t pc) const;
    unsigned insns_before_breakpoint(const Tb &tb) const; // of tb's instructions, how many run before one
    bool watch_page(uint64_t page,
                    KeelAccess acc) const; // the TLB must send `acc` on `page` to the slow path
    bool watch_hit(CpuState &c, uint64_t addr, unsigned size, KeelAccess acc, bool rmw);
    int stop_at_debug_event(CpuState &c); // report debug_event_ of `c` and park; -1 on an internal error
    // One round of CPUs after resume(): steps, holds, debug events. -1 on an internal error, 2 when every
    // CPU it ran is halted (idle), else 0.
    int run_round();
    bool any_work();
    void idle_wait();
    static int64_t icount_pending(void *opaque);
    static void icount_deadline_changed(void *opaque);
    // KeelPluginHooks (-plugin, ABI 1.3).
    static void plugin_request_flush(void *opaque);
    static void plugin_code_written(void *opaque, uint64_t paddr, uint64_t len);
    void plugin_safe_point();
    void log_in_asm(CpuState &c, const IrBlock &b);

    std::vector<std::unique_ptr<CpuState>> cpus_;
    std::unique_ptr<Engine> engine_;
    // Physical pages holding translated code: their blocks, and which bytes
    // hold code, so a store next to code (data in the same page) does not
    // throw the blocks away.
    struct CodePage {
        std::vector<Tb *> tbs;
        std::bitset<kPageSize> bytes;
    };
    std::unordered_map<uint64_t, CodePage> code_pages_;
    void rebuild_code_bytes(uint64_t page, CodePage &cp);
    std::vector<Tb *> dead_;
    Instrument instrument_;
    // -plugin: instrumentation plugins are loaded (KeelServices.plugins_*); the CPU being translated.
    bool plugins_ = false;
    unsigned translating_ = 0;
    // The plugin host's ABI 1.3 entries exist (plugins_attach...): its hooks are attached while run() runs.
    bool plugin_svc_ = false;
    KeelPluginHooks plugin_hooks_{};
    std::atomic<bool> flush_request_{false}; // a plugin reset/uninstall: drop every block between blocks
    bool flushed_ = false;                   // a vCPU's blocks were all dropped: tell the plugin host
    uint64_t tb_count_ = 0;
    std::atomic<bool> stop_{false};
    std::mutex wait_lock_;
    std::condition_variable wait_cv_;
    uint64_t kicks_ = 0; // under wait_lock_
    // -icount (KeelServices.icount_*): on for the whole run; the CPU in its slice (vCPU thread only).
    bool icount_ = false;
    CpuState *running_ = nullptr;
    KeelIcountHooks hooks_{};
    KeelCpuEngine table_{};
    // Run control (ABI 1.4). Under wait_lock_: whether run() is running, parked, and the modes resume()
    // left; pause_req_ is read by the vCPU thread between blocks.
    std::atomic<bool> pause_req_{false};
    bool in_run_ = false;
    bool parked_ = false;
    std::vector<uint8_t> modes_;
    std::vector<uint8_t> run_modes_; // vCPU thread: KeelRunMode per CPU since the last resume
    // Breakpoints and watchpoints: set_debug() leaves them in new_points_; the vCPU thread takes them
    // between blocks.
    std::mutex debug_lock_;
    std::vector<KeelDebugPoint> new_points_;
    std::atomic<bool> points_changed_{false};
    std::vector<uint64_t> breakpoints_; // sorted
    std::vector<KeelDebugPoint> watchpoints_;
    bool debug_active_ = false;   // any of them: blocks are not chained, so each entry is checked
    bool watch_suppress_ = false; // re-executing the instruction that hit a watchpoint
    bool debug_event_set_ = false;
    KeelStopInfo debug_event_{};
};

} // namespace keel::exec
