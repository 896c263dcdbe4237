// SPDX-License-Identifier: MIT
// The execution core: soft TLB and memory slow paths, the block cache with chaining and invalidation, the
// loop.
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstring>

#include <keel/module.h>

#include "exec.h"

namespace keel::exec
{

namespace
{

// Blocks are cut by the translator well before this; it bounds one block's IR.
constexpr unsigned kMaxInsns = 512;
// A time slice: guest instructions (chained blocks included) before the loop moves to the next CPU.
// About what 2^16 block entries were before the budget counted instructions.
constexpr int64_t kSliceInsns = 1 << 18;
// Translated blocks a CPU keeps before its cache is dropped and rebuilt.
constexpr size_t kMaxTbsPerCpu = 1 << 16;

CpuState *state_of(KeelCpuCommon *cpu)
{
    return static_cast<CpuState *>(cpu->engine_data);
}

void eng_tlb_flush(KeelCpuCommon *cpu)
{
    CpuState *c = state_of(cpu);
    c->core->tlb_flush(*c);
}

void eng_tlb_flush_page(KeelCpuCommon *cpu, uint64_t vaddr)
{
    CpuState *c = state_of(cpu);
    c->core->tlb_flush_page(*c, vaddr);
}

void eng_tb_flush(KeelCpuCommon *cpu)
{
    CpuState *c = state_of(cpu);
    c->core->tb_flush(*c);
}

uint64_t sign_extend(uint64_t v, unsigned size)
{
    unsigned shift = 64 - 8 * size;
    return shift ? static_cast<uint64_t>(static_cast<int64_t>(v << shift) >> shift) : v;
}

} // namespace

std::string Core::check_cpus(const KeelCpuHandle *cpus, unsigned n_cpus)
{
    if (!cpus || n_cpus == 0) return "no CPUs to run";
    for (unsigned i = 0; i < n_cpus; ++i) {
        const KeelCpuOps *o = cpus[i].ops;
        std::string who = "CPU " + std::to_string(i) + ": ";
        if (!o || !cpus[i].env) return who + "no state or no CPU operations";
        if (!o->translate || !o->tlb_fill || !o->mem_fault || !o->exec_exception || !o->exec_interrupt ||
            !o->has_work || !o->tb_flags)
            return who + "its type lacks a hook the engine calls";
        if (o->n_mmu_idx == 0 || o->n_mmu_idx > kMaxMmuIdx)
            return who + "n_mmu_idx " + std::to_string(o->n_mmu_idx) + " (1 to 8)";
        if (o->pc_global >= o->n_globals || !o->globals || o->globals[o->pc_global].type != KEEL_IR_I64)
            return who + "pc_global does not name an I64 global";
    }
    return {};
}

Core::Core(const KeelCpuHandle *cpus, unsigned n_cpus, std::unique_ptr<Engine> engine)
    : engine_(std::move(engine))
{
    table_.size = sizeof(KeelCpuEngine);
    table_.tlb_flush = eng_tlb_flush;
    table_.tlb_flush_page = eng_tlb_flush_page;
    table_.tb_flush = eng_tb_flush;
    icount_ = keel_services && KEEL_SERVICE_AVAILABLE(keel_services, icount_warp) &&
              keel_services->icount_shift && keel_services->icount_shift() >= 0;
    for (unsigned i = 0; i < n_cpus; ++i) {
        auto c = std::make_unique<CpuState>();
        c->obj = cpus[i].obj;
        c->env = cpus[i].env;
        c->ops = cpus[i].ops;
        c->common = KEEL_CPU_COMMON(c->env);
        c->pc = reinterpret_cast<uint64_t *>(static_cast<char *>(c->env) +
                                             c->ops->globals[c->ops->pc_global].offset);
        c->core = this;
        c->index = i;
        c->icount = icount_;
        std::memset(c->tlb, 0xff, sizeof c->tlb);
        std::fill(std::begin(c->jc), std::end(c->jc), nullptr);
        c->common->engine = &table_;
        c->common->engine_data = c.get();
        cpus_.push_back(std::move(c));
    }
    // -plugin: the kernel instruments every block (tests may still set their own instrumentation).
    plugins_ = keel_services && KEEL_SERVICE_AVAILABLE(keel_services, plugins_discon) &&
               keel_services->plugins_active && keel_services->plugins_active();
    if (plugins_)
        instrument_ = [this](KeelIrBuilder *b, const KeelIrBuilderOps *o) {
            keel_services->plugins_instrument(translating_, b, o);
        };
    plugin_svc_ = keel_services && KEEL_SERVICE_AVAILABLE(keel_services, plugins_redirect) &&
                  keel_services->plugins_attach && keel_services->plugins_vcpu_run &&
                  keel_services->plugins_flushed && keel_services->plugins_redirect;
}

Core::~Core()
{
    for (auto &c : cpus_) {
        for (auto &kv : c->tbs) {
            engine_->release(*kv.second);
            delete kv.second;
        }
        c->common->engine = nullptr;
        c->common->engine_data = nullptr;
    }
    free_dead();
}

// ---- soft TLB ----

bool Core::translate(CpuState &c, uint64_t vaddr, KeelAccess acc, unsigned mmu, bool probe, Xlat &out)
{
    uint64_t page = vaddr & kPageMask;
    TlbEntry &e = c.tlb[mmu][tlb_index(vaddr)];
    if ((e.tag[acc] & ~kTlbFlags) == page) {
        out.paddr = e.paddr | (vaddr & ~kPageMask);
        out.host = (e.tag[acc] & kTlbSlow) ? nullptr : reinterpret_cast<uint8_t *>(vaddr + e.addend);
        return true;
    }
    KeelTlbFill f{};
    if (c.ops->tlb_fill(c.env, vaddr, acc, mmu, probe ? 1 : 0, &f) != KEEL_OK) return false;
    uint64_t ppage = f.paddr & kPageMask;
    uint64_t avail = 0;
    uint8_t *hr = keel_services->cpu_ram_ptr(c.obj, ppage, &avail, false);
    if (avail < kPageSize) hr = nullptr; // RAM ending inside the page: byte by byte through the bus
    uint8_t *hw = hr ? keel_services->cpu_ram_ptr(c.obj, ppage, &avail, true) : nullptr;
    out.paddr = f.paddr;
    uint8_t *h = acc == KEEL_ACCESS_WRITE ? hw : hr;
    out.host = h ? h + (vaddr & ~kPageMask) : nullptr;
    if (f.page_bits < kPageBits) return true; // the CPU asks to be asked every time
    if (f.page_bits > kPageBits) {
        // Remember a range covering every large page so flush_page of any address in one flushes it all.
        uint64_t mask = f.page_bits >= 64 ? 0 : ~((uint64_t(1) << f.page_bits) - 1);
        if (c.large_mask[mmu] == 0) {
            c.large_addr[mmu] = vaddr & mask;
            c.large_mask[mmu] = mask;
        } else {
            uint64_t m = c.large_mask[mmu] & mask;
            while (((c.large_addr[mmu] ^ vaddr) & m) != 0)
                m <<= 1;
            c.large_mask[mmu] = m;
            c.large_addr[mmu] &= m;
        }
    }
    uint32_t prot = f.prot | (1u << acc); // at least the access asked for
    e.paddr = ppage;
    e.addend = hr ? reinterpret_cast<uintptr_t>(hr) - page : 0;
    // Pages holding a watchpoint (by virtual address) take the slow path, which checks it.
    uint64_t wr = !watchpoints_.empty() && watch_page(page, KEEL_ACCESS_READ) ? kTlbSlow : 0;
    uint64_t ww = !watchpoints_.empty() && watch_page(page, KEEL_ACCESS_WRITE) ? kTlbSlow : 0;
    e.tag[KEEL_ACCESS_READ] = (prot & KEEL_PROT_READ) ? page | (hr ? wr : kTlbSlow) : kTlbInvalid;
    e.tag[KEEL_ACCESS_EXEC] = (prot & KEEL_PROT_EXEC) ? page | (hr ? 0 : kTlbSlow) : kTlbInvalid;
    e.tag[KEEL_ACCESS_WRITE] = (prot & KEEL_PROT_WRITE)
                                   ? page | (hw ? ww : kTlbSlow) | (code_pages_.count(ppage) ? kTlbCode : 0)
                                   : kTlbInvalid;
    return true;
}

void Core::tlb_flush(CpuState &c)
{
    // Only the MMU indexes the CPU uses hold entries (the others stay invalid from creation).
    std::memset(c.tlb, 0xff, sizeof c.tlb[0] * c.ops->n_mmu_idx);
    std::fill(std::begin(c.jc), std::end(c.jc), nullptr);
    std::fill(std::begin(c.large_mask), std::end(c.large_mask), 0);
}

void Core::tlb_flush_page(CpuState &c, uint64_t vaddr)
{
    uint64_t page = vaddr & kPageMask;
    for (unsigned m = 0; m < c.ops->n_mmu_idx; ++m) {
        if (c.large_mask[m] && ((vaddr ^ c.large_addr[m]) & c.large_mask[m]) == 0) {
            // Inside a large page: every 4 KiB entry of it may be cached anywhere.
            std::memset(c.tlb[m], 0xff, sizeof c.tlb[m]);
            c.large_mask[m] = 0;
            continue;
        }
        TlbEntry &e = c.tlb[m][tlb_index(vaddr)];
        for (uint64_t &t : e.tag)
            if ((t & ~kTlbFlags) == page) t = kTlbInvalid;
    }
    // Blocks found by virtual pc must be looked up again through the new mapping.
    for (Tb *&t : c.jc)
        if (t && ((t->pc & kPageMask) == page || (t->n_pages == 2 && t->virt_page2 == page))) t = nullptr;
}

// ---- guest memory slow paths ----

bool Core::access_part(CpuState &c, uint64_t vaddr, const Xlat &x, unsigned size, KeelAccess acc,
                       unsigned mmu, uint64_t &value, KeelAccess fault_acc)
{
    if (x.host) {
        if (acc == KEEL_ACCESS_WRITE) {
            note_write(x.paddr, size);
            std::memcpy(x.host, &value, size);
        } else {
            value = 0;
            std::memcpy(&value, x.host, size);
        }
        return true;
    }
    KeelMemResult r = acc == KEEL_ACCESS_WRITE ? keel_services->cpu_mem_write(c.obj, x.paddr, size, value)
                                               : keel_services->cpu_mem_read(c.obj, x.paddr, size, &value);
    if (r != KEEL_MEM_OK) {
        c.ops->mem_fault(c.env, vaddr, fault_acc, mmu, KEEL_FAULT_BUS);
        return false;
    }
    return true;
}

bool Core::access(CpuState &c, uint64_t addr, unsigned size, KeelAccess acc, unsigned mmu, uint64_t &value,
                  bool rmw)
{
    // The read of a read-modify-write is translated, and faults, as the write it leads to.
    KeelAccess xacc = rmw ? KEEL_ACCESS_WRITE : acc;
    uint64_t off = addr & ~kPageMask;
    if (off + size <= kPageSize) {
        Xlat x;
        if (!translate(c, addr, xacc, mmu, false, x)) return false;
        if (!watchpoints_.empty() && watch_hit(c, addr, size, acc, rmw)) return false; // nothing accessed yet
        return access_part(c, addr, x, size, acc, mmu, value, xacc);
    }
    // Crossing a page: translate both halves before touching either, so a
    // fault in the second leaves memory unchanged.
    Xlat x0, x1;
    uint64_t second = (addr & kPageMask) + kPageSize;
    if (!translate(c, addr, xacc, mmu, false, x0) || !translate(c, second, xacc, mmu, false, x1))
        return false;
    if (!watchpoints_.empty() && watch_hit(c, addr, size, acc, rmw)) return false;
    unsigned n0 = static_cast<unsigned>(kPageSize - off);
    uint64_t result = 0;
    for (unsigned i = 0; i < size; ++i) {
        bool lo = i < n0;
        Xlat b = lo ? x0 : x1;
        uint64_t d = lo ? i : i - n0;
        b.paddr += d;
        if (b.host) b.host += d;
        uint64_t byte = (value >> (8 * i)) & 0xff;
        if (!access_part(c, lo ? addr + i : second + d, b, 1, acc, mmu, byte, xacc)) return false;
        result |= (byte & 0xff) << (8 * i);
    }
    if (acc != KEEL_ACCESS_WRITE) value = result;
    return true;
}

bool Core::load_slow(CpuState &c, uint64_t addr, uint32_t memop, unsigned mmu, uint64_t insn_pc,
                     uint64_t &value)
{
    unsigned size = 1u << (memop & KEEL_MO_SIZE_MASK);
    bool ok;
    bool rmw = (memop & KEEL_MO_RMW) != 0;
    if ((memop & KEEL_MO_ALIGN) && (addr & (size - 1))) {
        c.ops->mem_fault(c.env, addr, rmw ? KEEL_ACCESS_WRITE : KEEL_ACCESS_READ, mmu, KEEL_FAULT_UNALIGNED);
        ok = false;
    } else {
        ok = access(c, addr, size, KEEL_ACCESS_READ, mmu, value, rmw);
    }
    if (!ok) {
        *c.pc = insn_pc;
        return false;
    }
    if (size < 8) value &= (uint64_t(1) << (8 * size)) - 1;
    if (memop & KEEL_MO_SIGN) value = sign_extend(value, size);
    return true;
}

bool Core::store_slow(CpuState &c, uint64_t addr, uint32_t memop, unsigned mmu, uint64_t insn_pc,
                      uint64_t value)
{
    unsigned size = 1u << (memop & KEEL_MO_SIZE_MASK);
    bool ok;
    if ((memop & KEEL_MO_ALIGN) && (addr & (size - 1))) {
        c.ops->mem_fault(c.env, addr, KEEL_ACCESS_WRITE, mmu, KEEL_FAULT_UNALIGNED);
        ok = false;
    } else {
        ok = access(c, addr, size, KEEL_ACCESS_WRITE, mmu, value);
    }
    if (!ok) *c.pc = insn_pc;
    return ok;
}

// A store to RAM: drop the blocks translated from the bytes it changes.
// Finishing the running block with its old code is allowed (RISC-V needs
// fence.i for new code to be guaranteed visible), so the dead block's code
// stays allocated until the engine returns to the loop.
void Core::note_write(uint64_t paddr, unsigned size)
{
    if (code_pages_.empty()) return;
    uint64_t end = paddr + size; // exclusive
    for (uint64_t p = paddr & kPageMask; p < end; p += kPageSize) {
        auto it = code_pages_.find(p);
        if (it == code_pages_.end()) continue;
        CodePage &cp = it->second;
        uint64_t s = std::max(paddr, p) - p, e = std::min(end, p + kPageSize) - p;
        bool hit = false;
        for (uint64_t i = s; i < e && !hit; ++i)
            hit = cp.bytes[i];
        if (!hit) continue; // data next to code
        std::vector<Tb *> victims;
        for (Tb *tb : cp.tbs)
            for (unsigned k = 0; k < tb->n_pages; ++k)
                if (tb->phys_page[k] == p && tb->code_lo[k] < e && s < tb->code_hi[k]) victims.push_back(tb);
        for (Tb *tb : victims)
            if (tb->valid) invalidate(tb);
        // invalidate() may have dropped the page; if not, recompute its bytes from the blocks left.
        if (auto again = code_pages_.find(p); again != code_pages_.end())
            rebuild_code_bytes(p, again->second);
    }
}

void Core::rebuild_code_bytes(uint64_t page, CodePage &cp)
{
    cp.bytes.reset();
    for (Tb *tb : cp.tbs)
        for (unsigned k = 0; k < tb->n_pages; ++k)
            if (tb->phys_page[k] == page)
                for (uint32_t i = tb->code_lo[k]; i < tb->code_hi[k]; ++i)
                    cp.bytes.set(i);
}

// ---- the block cache ----

void Core::add_code_page(uint64_t page, Tb *tb)
{
    CodePage &cp = code_pages_[page];
    cp.tbs.push_back(tb);
    for (unsigned k = 0; k < tb->n_pages; ++k)
        if (tb->phys_page[k] == page)
            for (uint32_t i = tb->code_lo[k]; i < tb->code_hi[k]; ++i)
                cp.bytes.set(i);
    if (cp.tbs.size() > 1) return;
    // A new code page: stores to it must take the slow path from now on.
    for (auto &c : cpus_)
        for (unsigned m = 0; m < c->ops->n_mmu_idx; ++m)
            for (TlbEntry &e : c->tlb[m])
                if (e.paddr == page && e.tag[KEEL_ACCESS_WRITE] != kTlbInvalid)
                    e.tag[KEEL_ACCESS_WRITE] |= kTlbCode;
}

void Core::invalidate_page(uint64_t page)
{
    auto it = code_pages_.find(page);
    if (it == code_pages_.end()) return;
    std::vector<Tb *> list = std::move(it->second.tbs);
    code_pages_.erase(it);
    for (Tb *tb : list)
        if (tb->valid) invalidate(tb);
    clear_code_flag(page);
}

void Core::clear_code_flag(uint64_t page)
{
    for (auto &c : cpus_)
        for (unsigned m = 0; m < c->ops->n_mmu_idx; ++m)
            for (TlbEntry &e : c->tlb[m])
                if (e.paddr == page && e.tag[KEEL_ACCESS_WRITE] != kTlbInvalid)
                    e.tag[KEEL_ACCESS_WRITE] &= ~kTlbCode;
}

void Core::invalidate(Tb *tb)
{
    tb->valid = false;
    CpuState &c = *tb->cpu;
    c.tbs.erase(TbKey{tb->pc, tb->phys_pc, tb->flags});
    Tb *&slot = c.jc[jc_index(tb->pc)];
    if (slot == tb) slot = nullptr;
    for (auto &[src, n] : tb->jmp_from)
        if (src->jmp[n] == tb) engine_->unlink(*src, n);
    tb->jmp_from.clear();
    for (unsigned n = 0; n < 2; ++n) {
        Tb *dst = tb->jmp[n];
        if (!dst) continue;
        auto &from = dst->jmp_from;
        from.erase(std::remove(from.begin(), from.end(), std::make_pair(tb, n)), from.end());
        engine_->unlink(*tb, n);
    }
    for (unsigned i = 0; i < tb->n_pages; ++i) {
        auto it = code_pages_.find(tb->phys_page[i]);
        if (it == code_pages_.end()) continue;
        auto &l = it->second.tbs;
        l.erase(std::remove(l.begin(), l.end(), tb), l.end());
        if (l.empty()) {
            code_pages_.erase(it);
            clear_code_flag(tb->phys_page[i]);
        }
    }
    dead_.push_back(tb);
}

void Core::tb_flush(CpuState &c)
{
    std::vector<Tb *> all;
    all.reserve(c.tbs.size());
    for (auto &kv : c.tbs)
        all.push_back(kv.second);
    for (Tb *tb : all)
        if (tb->valid) invalidate(tb);
    std::fill(std::begin(c.jc), std::end(c.jc), nullptr);
    flushed_ = true; // plugin flush callbacks run at the next safe point (plugin_safe_point)
}

void Core::free_dead()
{
    for (Tb *tb : dead_) {
        engine_->release(*tb);
        delete tb;
    }
    dead_.clear();
}

void Core::do_link(Tb *from, unsigned slot, Tb *to)
{
    if (from->jmp[slot] == to) return;
    if (Tb *old = from->jmp[slot]) {
        auto &l = old->jmp_from;
        l.erase(std::remove(l.begin(), l.end(), std::make_pair(from, slot)), l.end());
    }
    engine_->link(*from, slot, *to);
    to->jmp_from.emplace_back(from, slot);
}

void Core::log_in_asm(CpuState &c, const IrBlock &b)
{
    std::string s = "----------------\nIN: \n";
    char line[256], text[160];
    for (const IrInsn &in : b.insns) {
        uint8_t bytes[4];
        for (unsigned i = 0; i < 4; ++i)
            bytes[i] = static_cast<uint8_t>(in.raw >> (8 * i));
        text[0] = 0;
        if (c.ops->disas) c.ops->disas(c.env, in.pc, bytes, std::min(in.len, 4u), text, sizeof text);
        text[sizeof text - 1] = 0;
        char hex[16];
        std::snprintf(hex, sizeof hex, "%0*" PRIx32, static_cast<int>(2 * std::min(in.len, 4u)), in.raw);
        std::snprintf(line, sizeof line, "0x%016" PRIx64 ":  %-8s          %s\n", in.pc, hex, text);
        s += line;
    }
    keel_services->log_mask(c.obj, KEEL_LOG_IN_ASM, "%s", s.c_str());
}

Tb *Core::translate_block(CpuState &c, uint64_t pc, uint64_t phys, uint64_t flags, unsigned max_insns,
                          bool temp)
{
    KeelIrBuilder b;
    builder_reset(b, c.ops);
    unsigned mmu = static_cast<unsigned>(flags & 7);
    uint64_t pages[2] = {phys & kPageMask, 0}, vpage2 = 0;
    unsigned n_pages = 1;
    uint32_t lo[2] = {static_cast<uint32_t>(kPageSize), static_cast<uint32_t>(kPageSize)}, hi[2] = {0, 0};
    b.fetch = [&](uint64_t at, unsigned len, uint32_t *bits) {
        uint32_t v = 0;
        for (unsigned i = 0; i < len; ++i) {
            uint64_t va = at + i;
            Xlat x;
            if (!translate(c, va, KEEL_ACCESS_EXEC, mmu, true, x)) return KEEL_ERR;
            uint64_t byte = 0;
            if (x.host) {
                byte = *x.host;
            } else {
                // A page only partly RAM (a device window placed over RAM, like htif's tohost): the
                // bytes that are RAM can hold code; MMIO never does.
                uint64_t avail = 0;
                const uint8_t *h = keel_services->cpu_ram_ptr(c.obj, x.paddr, &avail, false);
                if (!h || avail == 0) return KEEL_ERR;
                byte = *h;
            }
            uint64_t pp = x.paddr & kPageMask;
            if (pp != pages[0] && (n_pages < 2 || pp != pages[1])) {
                if (n_pages == 2) return KEEL_ERR; // a block spans at most two pages
                pages[n_pages++] = pp;
                vpage2 = va & kPageMask;
            }
            unsigned k = pp == pages[0] ? 0 : 1;
            uint32_t off = static_cast<uint32_t>(x.paddr & ~kPageMask);
            if (lo[k] > off) lo[k] = off;
            if (hi[k] < off + 1) hi[k] = off + 1;
            v |= static_cast<uint32_t>(byte & 0xff) << (8 * i);
        }
        *bits = v;
        return KEEL_OK;
    };
    c.ops->translate(c.env, &b, &builder_ops(), pc, flags, max_insns);
    translating_ = c.index;
    if (instrument_) instrument_(&b, &builder_ops());
    b.at_end = true;
    bool ok = verify(b.block);
    if (keel_services->log_enabled(KEEL_LOG_IN_ASM)) log_in_asm(c, b.block);
    if (!ok) {
        std::string msg;
        for (const std::string &e : b.block.errors)
            msg += "\n  " + e;
        keel_services->log(c.obj, KEEL_LOG_ERROR,
                           "internal error: the translator emitted an invalid block at pc 0x%" PRIx64
                           " (flags 0x%" PRIx64 "):%s\nOP:\n%s",
                           pc, flags, msg.c_str(), print_block(b.block).c_str());
        return nullptr;
    }
    if (keel_services->log_enabled(KEEL_LOG_OP))
        keel_services->log_mask(c.obj, KEEL_LOG_OP, "OP:\n%s", print_block(b.block).c_str());
    auto tb = std::make_unique<Tb>();
    tb->pc = pc;
    tb->phys_pc = phys;
    tb->flags = flags;
    tb->cpu = &c;
    tb->n_insns = static_cast<unsigned>(b.block.insns.size());
    tb->insn_off.reserve(b.block.insns.size());
    for (const IrInsn &in : b.block.insns)
        tb->insn_off.push_back(static_cast<uint32_t>(in.pc - pc));
    tb->temp = temp;
    tb->n_pages = n_pages;
    tb->phys_page[0] = pages[0];
    tb->phys_page[1] = pages[1];
    tb->virt_page2 = vpage2;
    for (unsigned k = 0; k < 2; ++k) {
        tb->code_lo[k] = lo[k] < hi[k] ? lo[k] : 0;
        tb->code_hi[k] = hi[k];
    }
    if (hi[0] == 0)
        tb->code_hi[0] = static_cast<uint32_t>(kPageSize); // fetched nothing: the whole page counts
    std::string err;
    if (!engine_->compile(c, b.block, *tb, err)) {
        keel_services->log(c.obj, KEEL_LOG_ERROR,
                           "internal error: cannot compile the block at pc 0x%" PRIx64 ": %s", pc,
                           err.c_str());
        return nullptr;
    }
    Tb *t = tb.release();
    if (temp) return t;
    c.tbs[TbKey{pc, phys, flags}] = t;
    for (unsigned i = 0; i < n_pages; ++i) {
        uint64_t avail = 0;
        // Only RAM can change under the block; ROM and MMIO code is not tracked.
        if (keel_services->cpu_ram_ptr(c.obj, pages[i], &avail, true)) add_code_page(pages[i], t);
    }
    ++tb_count_;
    return t;
}

// 1 and *out, 0 if fetching the first byte faulted (exception recorded), -1 on an internal error.
int Core::find_tb(CpuState &c, uint64_t pc, uint64_t flags, Tb **out)
{
    Tb *t = jc_lookup(c, pc, flags);
    if (t) {
        *out = t;
        return 1;
    }
    Xlat x;
    unsigned mmu = static_cast<unsigned>(flags & 7);
    if (!translate(c, pc, KEEL_ACCESS_EXEC, mmu, false, x)) return 0;
    uint64_t avail = 0;
    if (!x.host && !keel_services->cpu_ram_ptr(c.obj, x.paddr, &avail, false)) {
        // Code runs from RAM or ROM only: fetching from MMIO or from nothing is an access fault.
        c.ops->mem_fault(c.env, pc, KEEL_ACCESS_EXEC, mmu, KEEL_FAULT_BUS);
        return 0;
    }
    auto it = c.tbs.find(TbKey{pc, x.paddr, flags});
    if (it != c.tbs.end()) {
        t = it->second;
        if (t->n_pages == 2) {
            // The second page must still map where it did.
            Xlat y;
            if (!translate(c, t->virt_page2, KEEL_ACCESS_EXEC, mmu, true, y) ||
                (y.paddr & kPageMask) != t->phys_page[1]) {
                invalidate(t);
                t = nullptr;
            }
        }
    }
    if (!t) {
        if (c.tbs.size() >= kMaxTbsPerCpu) tb_flush(c);
        t = translate_block(c, pc, x.paddr, flags, kMaxInsns, false);
        if (!t) return -1;
    }
    c.jc[jc_index(pc)] = t;
    *out = t;
    return 1;
}

// ---- the loop ----

namespace
{

// Instructions of `tb` not run when it stopped on an exception at `pc` (the faulting one and those after it).
int64_t insns_not_run(const Tb &tb, uint64_t pc)
{
    uint64_t off = pc - tb.pc;
    for (size_t i = 0; i < tb.insn_off.size(); ++i)
        if (tb.insn_off[i] == off) return static_cast<int64_t>(tb.n_insns - i);
    return 0;
}

} // namespace

int Core::run_slice(CpuState &c, bool step)
{
    KeelCpuCommon *cc = c.common;
    Tb *last = nullptr;
    unsigned last_slot = 0;
    int64_t slice = kSliceInsns; // -icount: instructions left in this slice
    bool timers_ran = false;     // -icount: at the current instruction count
    c.budget = kSliceInsns;
    running_ = &c;
    struct NotRunning {
        Core *core;
        ~NotRunning() { core->running_ = nullptr; }
    } not_running{this};
    if (plugin_svc_) keel_services->plugins_vcpu_run(c.index);
    while (!stop_.load(std::memory_order_relaxed)) {
        if (!step && pause_req_.load(std::memory_order_relaxed)) break; // parked by run()
        if (plugin_svc_) plugin_safe_point();
        if (points_changed_.load(std::memory_order_relaxed)) apply_debug();
        if (icount_) {
            // Timers due at this instruction count run here, on the vCPU thread: deterministic.
            int64_t left = keel_services->icount_budget();
            if (left <= 0) {
                if (!timers_ran) {
                    timers_ran = true;
                    keel_services->icount_run_timers();
                    continue;
                }
                left = 1; // a timer re-armed for "now": let the guest move on
            }
            c.budget = std::min(slice, left);
        }
        if (cc->exit_request && !step) { // a step leaves interrupts pending (QEMU's gdbstub does too)
            cc->exit_request = 0;
            c.ops->exec_interrupt(c.env);
            last = nullptr;
        }
        if (cc->halted) {
            if (step || !c.ops->has_work(c.env)) break; // a halted CPU steps nowhere
            cc->halted = 0;
        }
        if (c.budget <= 0) break;
        uint64_t flags = c.ops->tb_flags(c.env);
        Tb *tb = nullptr;
        int r = find_tb(c, *c.pc, flags, &tb);
        if (r < 0) return -1;
        if (r == 0) {
            cc->exception = 0;
            c.ops->exec_exception(c.env);
            last = nullptr;
            if (step) break; // the step took the fetch fault: it ends at the handler
            continue;
        }
        unsigned cut = tb->n_insns; // run only the first `cut` instructions, in a block of its own
        if (step) {
            cut = 1;
        } else if (debug_active_) {
            if (breakpoint_at(*c.pc)) {
                debug_event_ =
                    KeelStopInfo{sizeof(KeelStopInfo), c.index, KEEL_STOP_BREAK, KEEL_DEBUG_BREAK, *c.pc};
                debug_event_set_ = true;
                return 1;
            }
            cut = insns_before_breakpoint(*tb);
        }
        if (cut < tb->n_insns && (!icount_ || cut <= c.budget)) {
            tb = translate_block(c, *c.pc, tb->phys_pc, flags, cut, true);
            if (!tb) return -1;
        } else if (icount_ && tb->n_insns > c.budget) {
            // The deadline falls inside this block: run its first `budget` instructions only, so the
            // timer fires at exactly the same instruction in every run.
            tb = translate_block(c, *c.pc, tb->phys_pc, flags, static_cast<unsigned>(c.budget), true);
            if (!tb) return -1;
        }
        bool per_tb_log = keel_services->log_enabled(KEEL_LOG_EXEC | KEEL_LOG_CPU);
        c.chain = !per_tb_log && !debug_active_ && !step;
        if (last && last->valid && c.chain && !tb->temp) do_link(last, last_slot, tb);
        if (per_tb_log) {
            if (keel_services->log_enabled(KEEL_LOG_CPU) && c.ops->dump_state) {
                char buf[4096];
                size_t n = c.ops->dump_state(c.env, buf, sizeof buf);
                buf[std::min(n, sizeof buf - 1)] = 0;
                keel_services->log_mask(c.obj, KEEL_LOG_CPU, "%s", buf);
            }
            keel_services->log_mask(c.obj, KEEL_LOG_EXEC,
                                    "Trace %u: %p [%016" PRIx64 "/%016" PRIx64 "/%08" PRIx64 "]\n", c.index,
                                    static_cast<void *>(tb), tb->phys_pc, tb->pc, tb->flags);
        }
        c.icount_mark = c.icount_pub = c.budget;
        c.budget -= tb->n_insns;
        ExecResult res = engine_->exec(c, tb);
        last = nullptr;
        bool exc = cc->exception || res.kind == ExitKind::Exception;
        if (icount_) {
            // Engines counted whole blocks; a block left on an exception ran only the insns before it.
            int64_t done = c.icount_mark - c.budget;
            if (exc && res.last) done -= insns_not_run(*res.last, *c.pc);
            c.icount_mark = c.icount_pub = c.budget; // nothing pending: all retired below
            keel_services->icount_retire(done);
            slice -= done;
            if (done > 0) timers_ran = false;
        }
        uint64_t redirect_pc = 0;
        if (debug_event_set_) {
            // A watchpoint stopped the block before the access: no guest exception; the pc is the access's.
            cc->exception = 0;
            if (tb->temp) {
                engine_->release(*tb);
                delete tb;
            }
            return 1;
        }
        if (exc && plugin_svc_ && keel_services->plugins_redirect(c.index, &redirect_pc)) {
            // A plugin callback called qemu_plugin_set_pc: not a guest exception; go on at its pc.
            cc->exception = 0;
            *c.pc = redirect_pc;
        } else if (exc) {
            cc->exception = 0;
            c.ops->exec_exception(c.env);
        } else if (res.kind == ExitKind::GotoTb && res.last->valid && !res.last->temp) {
            last = res.last;
            last_slot = res.slot;
        }
        if (tb->temp) {
            engine_->release(*tb);
            delete tb;
        }
        if (!dead_.empty()) free_dead();
        if (step) break;
    }
    return 0;
}

int64_t Core::icount_pending(void *opaque)
{
    CpuState *c = static_cast<Core *>(opaque)->running_;
    return c ? c->icount_mark - c->icount_pub : 0;
}

// Between blocks: what plugins asked for while blocks ran.
void Core::plugin_safe_point()
{
    if (flush_request_.load(std::memory_order_relaxed)) {
        flush_request_ = false;
        for (auto &cpu : cpus_)
            tb_flush(*cpu);
    }
    if (flushed_) {
        flushed_ = false;
        keel_services->plugins_flushed(); // may run reset callbacks, which may ask for another flush
    }
}

void Core::plugin_request_flush(void *opaque)
{
    auto *core = static_cast<Core *>(opaque);
    core->flush_request_ = true;
    for (auto &c : core->cpus_)
        c->common->exit_request = 1; // leave the chain at the next block boundary
}

void Core::plugin_code_written(void *opaque, uint64_t paddr, uint64_t len)
{
    auto *core = static_cast<Core *>(opaque);
    while (len > 0) {
        uint64_t n = std::min(len, kPageSize - (paddr & ~kPageMask));
        core->note_write(paddr, static_cast<unsigned>(n));
        paddr += n;
        len -= n;
    }
}

void Core::icount_deadline_changed(void *opaque)
{
    // Called on the vCPU thread (a device armed a timer): leave the chain at the next block entry, so the
    // loop asks for the new budget.
    if (CpuState *c = static_cast<Core *>(opaque)->running_) c->common->exit_request = 1;
}

bool Core::any_work()
{
    for (auto &c : cpus_)
        if ((run_modes_.size() <= c->index || run_modes_[c->index] != KEEL_RUN_HOLD) &&
            (!c->common->halted || c->ops->has_work(c->env)))
            return true;
    return false;
}

// Every CPU is halted without work: wait for a kick. With -icount, a virtual timer wakes them too: after
// the host time until it (sleep=on) or at once (sleep=off), virtual time jumps exactly to its deadline.
void Core::idle_wait()
{
    std::unique_lock<std::mutex> lk(wait_lock_);
    if (!icount_) {
        // has_work is checked under the lock kick() takes, so a kick between the check and the wait is
        // not lost.
        while (!stop_.load() && !pause_req_.load() && !any_work())
            wait_cv_.wait(lk);
        return;
    }
    uint64_t seen = kicks_;
    auto woken = [&] { return stop_.load() || pause_req_.load() || any_work() || kicks_ != seen; };
    int64_t ns = keel_services->icount_idle_ns();
    if (ns == INT64_MAX) {
        wait_cv_.wait(lk, woken); // no timer armed: only a kick ends this
        return;
    }
    auto t0 = std::chrono::steady_clock::now();
    bool timed_out = ns == 0 ? !woken() : !wait_cv_.wait_for(lk, std::chrono::nanoseconds(ns), woken);
    lk.unlock();
    if (timed_out) {
        keel_services->icount_warp(INT64_MAX);
    } else if (!stop_.load()) {
        // Woken early (input, a kick): virtual time kept pace with the host meanwhile.
        auto slept =
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0);
        keel_services->icount_warp(std::min<int64_t>(slept.count(), ns));
    }
}

int Core::run()
{
    int rc = 0;
    if (icount_) {
        hooks_ = KeelIcountHooks{sizeof(KeelIcountHooks), icount_pending, icount_deadline_changed, this};
        keel_services->icount_attach(&hooks_);
    }
    if (plugin_svc_) {
        plugin_hooks_ =
            KeelPluginHooks{sizeof(KeelPluginHooks), plugin_request_flush, plugin_code_written, this};
        keel_services->plugins_attach(&plugin_hooks_);
    }
    auto plugin_event = [&](KeelPluginVcpuEvent ev) {
        if (plugins_)
            for (auto &c : cpus_)
                keel_services->plugins_vcpu_event(c->obj, c->env, c->ops, c->index, ev);
    };
    {
        std::lock_guard<std::mutex> g(wait_lock_);
        in_run_ = true;
    }
    plugin_event(KEEL_PLUGIN_VCPU_INIT);
    while (!stop_.load()) {
        if (pause_req_.load()) {
            park(nullptr);
            continue;
        }
        int r = run_round();
        if (r < 0) {
            rc = -1;
            stop_ = true;
            break;
        }
        if (r == 2) { // every CPU halted
            plugin_event(KEEL_PLUGIN_VCPU_IDLE);
            idle_wait();
            plugin_event(KEEL_PLUGIN_VCPU_RESUME);
        }
    }
    {
        std::lock_guard<std::mutex> g(wait_lock_);
        in_run_ = false;
    }
    wait_cv_.notify_all(); // a pause() waiting for the park
    plugin_event(KEEL_PLUGIN_VCPU_EXIT);
    if (plugin_svc_) {
        if (flushed_) {
            flushed_ = false;
            keel_services->plugins_flushed();
        }
        keel_services->plugins_attach(nullptr);
    }
    if (icount_) keel_services->icount_attach(nullptr);
    // This stop is consumed: a later run() (after a machine reset) runs again.
    stop_ = false;
    return rc;
}

void Core::stop()
{
    {
        std::lock_guard<std::mutex> g(wait_lock_);
        stop_ = true;
        // Leave chained blocks at the next block entry.
        for (auto &c : cpus_)
            c->common->exit_request = 1;
    }
    wait_cv_.notify_all();
}

void Core::kick(unsigned cpu_index)
{
    (void)cpu_index; // one thread runs every CPU: waking it wakes them all
    std::lock_guard<std::mutex> g(wait_lock_);
    ++kicks_;
    // -icount: a running chain must come back to the loop, which asks for the (maybe new) deadline.
    if (icount_)
        for (auto &c : cpus_)
            c->common->exit_request = 1;
    wait_cv_.notify_all();
}

} // namespace keel::exec
