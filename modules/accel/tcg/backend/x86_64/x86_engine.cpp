// SPDX-License-Identifier: MIT
// The x86-64 back end of tcg: each IR block becomes host code (xbyak) in the code cache; guest loads and
// stores inline the soft-TLB hit, helpers are called directly under the SysV ABI, goto_tb jumps are patched.
#include "x86_engine.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cinttypes>
#include <climits>
#include <cstring>
#include <list>
#include <map>
#include <span>

#include <keel/module.h>

#include "code_cache.h"
#include "disas.h"
#include "opt/opt.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#include <xbyak/xbyak.h>
#include <xbyak/xbyak_util.h>
#pragma GCC diagnostic pop

namespace keel::tcg
{

using namespace keel::exec;
using namespace Xbyak::util;
using Xbyak::Label;
using Xbyak::Reg32;
using Xbyak::Reg64;

namespace
{

/*
 * Generated code
 * --------------
 * Fixed registers while guest code runs (all callee-saved, so helpers keep them):
 *    rbx  the CPU's env (globals are [rbx + offset])
 *    rbp  the CpuState (soft TLB at [rbp + ...])
 *    r14  the block's temporaries, 8 bytes each ([r14 + 8 * index])
 *    r15  the time slice (CpuState::budget, loaded on entry, stored on exit) — except with -plugin: then
 *         the budget stays in memory ([rbp + ...]) and r15 joins r12 and r13 as a callee-saved register
 *         for cached values, so that blocks calling a plugin at every instruction keep more of them.
 * rsp is 16-byte aligned inside blocks, so helpers are called directly.
 *
 * The enter trampoline (start of the cache) saves the callee-saved registers
 * and jumps to a block; every exit jumps to the leave trampoline with rax =
 * the block's Tb and rdx = kind | slot << 32, which stores them for exec().
 *
 * A block:  chained entry: exit_request and time-slice check (blocks reached
 *           by goto_tb or lookup_and_goto enter here, as tci's checks do)
 *           entry:         the ops, in order (exec() enters here)
 *           cold code:     TLB-miss slow paths, raise exits, goto_tb stubs
 * Each goto_tb is a jmp rel32; unlinked it goes to its stub (leave with
 * GotoTb), linked to the chained entry of the next block.
 */

struct RawExit {
    Tb *tb;
    uint64_t kind_slot;
};

using EnterFn = void (*)(CpuState *c, const uint8_t *entry, RawExit *out, uint64_t *temps, void *env,
                         int64_t *budget);

struct Code {
    const uint8_t *chained = nullptr; // execute view
    const uint8_t *entry = nullptr;
    std::vector<uint8_t *> sites[2]; // rel32 fields of goto_tb jumps (execute view)
    std::vector<uint8_t *> stubs[2]; // where each one goes when unlinked
    uint64_t generation = 0;         // of the code cache it lives in
};

struct SlowResult {
    uint64_t value;
    uint64_t ok;
};

// The slow paths of guest memory, called from generated code.
SlowResult slow_load(CpuState *c, uint64_t addr, uint64_t memop_mmu, uint64_t insn_pc)
{
    SlowResult r{0, 0};
    r.ok = c->core->load_slow(*c, addr, static_cast<uint32_t>(memop_mmu & 0xff),
                              static_cast<unsigned>(memop_mmu >> 8), insn_pc, r.value);
    return r;
}

uint64_t slow_store(CpuState *c, uint64_t addr, uint64_t memop_mmu, uint64_t insn_pc, uint64_t value)
{
    return c->core->store_slow(*c, addr, static_cast<uint32_t>(memop_mmu & 0xff),
                               static_cast<unsigned>(memop_mmu >> 8), insn_pc, value);
}

uint64_t popcount64(uint64_t v)
{
    return static_cast<uint64_t>(std::popcount(v));
}

bool is32(KeelIrType t)
{
    return t == KEEL_IR_I32 || t == KEEL_IR_F32;
}

uint64_t kind_slot(ExitKind k, unsigned slot)
{
    return static_cast<uint64_t>(k) | static_cast<uint64_t>(slot) << 32;
}

class X86Engine;

// Emits one block (or the trampolines) into the code cache at its current end.
class Emitter : public Xbyak::CodeGenerator
{
  public:
    Emitter(CodeCache &cc, size_t room) : CodeGenerator(room, cc.rw_base() + cc.used()), cache_(cc) {}

    uint8_t *rx_here() { return cache_.rx(const_cast<uint8_t *>(getCurr())); }
    uint8_t *rx_of(const Label &l) { return cache_.rx(const_cast<uint8_t *>(l.getAddress())); }

    // A jump/call to an execute-view address (xbyak would compute it from the write view).
    void jmp_rx(const uint8_t *target)
    {
        db(0xe9);
        dd(static_cast<uint32_t>(static_cast<int32_t>(target - (rx_here() + 4))));
    }
    void call_fn(const void *fn)
    {
        mov(rax, reinterpret_cast<uint64_t>(fn));
        call(rax);
    }

  protected:
    CodeCache &cache_;
};

class X86Engine final : public Engine
{
  public:
    explicit X86Engine(const EngineOptions &opt) : opt_(opt) {}
    bool init(std::string &err);

    bool compile(CpuState &cpu, const IrBlock &block, Tb &tb, std::string &err) override;
    void release(Tb &tb) override
    {
        delete static_cast<Code *>(tb.code);
        tb.code = nullptr;
    }
    ExecResult exec(CpuState &cpu, Tb *tb) override
    {
        RawExit out{tb, kind_slot(ExitKind::ExitTb, 0)};
        enter_(&cpu, static_cast<Code *>(tb->code)->entry, &out, temps_.data(), cpu.env, &cpu.budget);
        return ExecResult{out.tb, static_cast<ExitKind>(out.kind_slot & 0xffffffff),
                          static_cast<unsigned>(out.kind_slot >> 32)};
    }
    void link(Tb &from, unsigned slot, Tb &to) override
    {
        from.jmp[slot] = &to;
        patch(from, slot, static_cast<Code *>(to.code)->chained);
    }
    void unlink(Tb &from, unsigned slot) override
    {
        from.jmp[slot] = nullptr;
        patch(from, slot, nullptr);
    }

    EngineStats stats() const
    {
        EngineStats s = stats_;
        s.cache_used = cache_.used();
        return s;
    }

  private:
    void patch(Tb &from, unsigned slot, const uint8_t *target)
    {
        auto *code = static_cast<Code *>(from.code);
        if (!code || slot > 1 || code->generation != generation_) return;
        for (size_t i = 0; i < code->sites[slot].size(); ++i) {
            uint8_t *site = code->sites[slot][i];
            const uint8_t *to = target ? target : code->stubs[slot][i];
            int32_t rel = static_cast<int32_t>(to - (site + 4));
            std::memcpy(cache_.rw(site), &rel, 4);
        }
    }
    bool emit_block(CpuState &cpu, const IrBlock &b, Tb &tb, Code &code, std::string &err);
    void flush_all(CpuState &cpu);
    // Per global of this CPU type: whether it shares bytes with another one (such globals are not cached
    // in registers, since a write to one changes the other).
    const std::vector<bool> &shared_globals(const KeelCpuOps *ops)
    {
        auto &v = shared_[ops];
        if (v.size() == ops->n_globals) return v;
        v.assign(ops->n_globals, false);
        for (unsigned i = 0; i < ops->n_globals; ++i) {
            const KeelIrGlobal &g = ops->globals[i];
            size_t lo = g.offset, hi = g.offset + (is32(g.type) ? 4 : 8);
            for (unsigned j = 0; j < ops->n_globals; ++j) {
                const KeelIrGlobal &h = ops->globals[j];
                size_t lo2 = h.offset, hi2 = h.offset + (is32(h.type) ? 4 : 8);
                if (j != i && lo < hi2 && lo2 < hi) v[i] = true;
            }
        }
        return v;
    }

    EngineOptions opt_;
    // -plugin: the time slice in CpuState::budget, r15 in the register pool (see "Generated code").
    bool budget_in_memory_ = false;
    CodeCache cache_;
    size_t fixed_ = 0; // bytes of trampolines at the start of the cache, kept across flushes
    EnterFn enter_ = nullptr;
    const uint8_t *leave_ = nullptr;
    std::vector<uint64_t> temps_ = std::vector<uint64_t>(64);
    uint64_t generation_ = 1;
    EngineStats stats_;
    uint64_t log_ns_ = 0; // of this compile, spent writing -d out_asm
    std::map<const KeelCpuOps *, std::vector<bool>> shared_;
    Xbyak::util::Cpu host_;
};

bool X86Engine::init(std::string &err)
{
    if (!cache_.init(opt_.code_cache_size, err)) return false;
    budget_in_memory_ = keel_services && KEEL_SERVICE_AVAILABLE(keel_services, plugins_active) &&
                        keel_services->plugins_active && keel_services->plugins_active();
    Emitter e(cache_, cache_.size());
    // enter(c = rdi, entry = rsi, out = rdx, temps = rcx, env = r8, budget = r9)
    e.push(rbx);
    e.push(rbp);
    e.push(r12);
    e.push(r13);
    e.push(r14);
    e.push(r15);
    e.push(rdx);
    e.push(r9); // 8 pushes after the return address, and 8 more bytes: rsp is 16-byte aligned
    e.sub(rsp, 8);
    e.mov(rbp, rdi);
    e.mov(rbx, r8);
    e.mov(r14, rcx);
    if (!budget_in_memory_) e.mov(r15, qword[r9]);
    e.jmp(rsi);
    e.align(16);
    const uint8_t *leave = e.getCurr();
    e.add(rsp, 8);
    e.pop(rcx);
    if (!budget_in_memory_) e.mov(qword[rcx], r15);
    e.pop(rcx);
    e.mov(qword[rcx], rax);
    e.mov(qword[rcx + 8], rdx);
    e.pop(r15);
    e.pop(r14);
    e.pop(r13);
    e.pop(r12);
    e.pop(rbp);
    e.pop(rbx);
    e.ret();
    e.align(16);
    enter_ = reinterpret_cast<EnterFn>(cache_.rx(cache_.rw_base()));
    leave_ = cache_.rx(const_cast<uint8_t *>(leave));
    fixed_ = e.getSize();
    cache_.set_used(fixed_);
    return true;
}

// The cache is full: drop every block of every CPU (nothing runs while the core translates), start over.
void X86Engine::flush_all(CpuState &cpu)
{
    Core &core = *cpu.core;
    for (unsigned i = 0; i < core.n_cpus(); ++i)
        core.tb_flush(core.cpu(i));
    cache_.reset(fixed_);
    ++generation_;
    ++stats_.cache_flushes;
}

bool X86Engine::compile(CpuState &cpu, const IrBlock &translated, Tb &tb, std::string &err)
{
    auto t0 = std::chrono::steady_clock::now();
    log_ns_ = 0;
    IrBlock opt_block = translated;
    bool optimized = opt_.optimize && opt::optimize(opt_block);
    if (opt_.optimize && !optimized && keel_services) {
        // An optimiser bug, never the guest's: run the block as translated, and say so.
        std::string msg;
        for (const std::string &e : opt_block.errors)
            msg += "\n  " + e;
        keel_services->log(cpu.obj, KEEL_LOG_WARNING,
                           "tcg: the optimised block at pc 0x%" PRIx64
                           " does not verify; compiling it unoptimised:%s",
                           tb.pc, msg.c_str());
    }
    const IrBlock &b = optimized ? opt_block : translated;
    if (temps_.size() < b.n_temps + 1) temps_.resize(b.n_temps + 1);
    auto code = std::make_unique<Code>();
    for (int attempt = 0; attempt < 2; ++attempt) {
        try {
            *code = Code{};
            if (!emit_block(cpu, b, tb, *code, err)) return false;
            tb.code = code.release();
            ++stats_.blocks_compiled;
            stats_.insns_compiled += b.insns.size();
            auto ns =
                std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0);
            stats_.compile_ns += static_cast<uint64_t>(ns.count()) - std::min<uint64_t>(log_ns_, ns.count());
            return true;
        } catch (const Xbyak::Error &e) {
            if (static_cast<int>(e) != Xbyak::ERR_CODE_IS_TOO_BIG) {
                err = std::string("x86-64 code generation: ") + e.what();
                return false;
            }
            if (attempt == 0) flush_all(cpu);
        }
    }
    err = "the block does not fit in an empty code cache";
    return false;
}

// ---- the block compiler ----

class BlockEmitter : public Emitter
{
  public:
    BlockEmitter(CodeCache &cc, CpuState &cpu, const IrBlock &b, Tb &tb, Code &code, const uint8_t *leave,
                 const Xbyak::util::Cpu &host, const std::vector<bool> &shared, bool budget_in_memory)
        : Emitter(cc, cc.size() - cc.used()), cpu_(cpu), b_(b), tb_(tb), code_(code), leave_(leave),
          host_(host), shared_(shared), budget_in_memory_(budget_in_memory),
          pool_(budget_in_memory ? std::span<const int>(kPoolR15) : std::span<const int>(kPool))
    {
    }
    bool run(std::string &err);

  private:
    // ---- values ----
    const IrVal &val(KeelIrValue v) const { return b_.val(v); }
    bool v32(KeelIrValue v) const { return is32(val(v).type); }

    /*
     * The register cache. Globals and temporaries are kept in host registers
     * within a block (keyed by storage: one key per global, one per temp),
     * loaded on first use and written back ("dirty") only where something
     * else may look at their memory: before helper calls, host memory
     * accesses and block exits (globals), at branches and labels (globals and
     * live temps: both paths of a branch meet with everything in memory), and
     * in the slow path of a guest memory access (globals, so a fault leaves
     * them exact). Temps whose value is never read again are not written back.
     * Cached 32-bit values are kept zero-extended.
     */
    struct Slot {
        int reg = -1;
        bool dirty = false;
        bool w32 = false;
        bool temp = false;
        bool cacheable = true;
        int32_t off = 0; // [rbx + off] for globals, [r14 + off] for temps
        uint32_t last_read = 0;
    };
    static constexpr int kPool[] = {12, 13, 9, 10, 11, 8};
    static constexpr int kPoolR15[] = {12, 13, 15, 9, 10, 11, 8}; // r15 free: budget in memory
    static bool caller_saved(int r) { return r == 8 || r == 9 || r == 10 || r == 11; }
    std::vector<Slot> slots_;
    std::vector<uint32_t> key_of_; // value -> slot key (~0u: not a global or temp)
    int owner_[16];                // host register -> slot key, -1 if free
    uint64_t use_[16] = {};        // when each register was last used, for eviction
    uint64_t clock_ = 0;
    uint32_t op_at_ = 0; // index of the op being compiled

    void setup_slots();
    Slot *slot(KeelIrValue v)
    {
        uint32_t k = v < key_of_.size() ? key_of_[v] : ~0u;
        return k == ~0u ? nullptr : &slots_[k];
    }
    Xbyak::Address mem(const Slot &s) const
    {
        return s.temp ? (s.w32 ? dword[r14 + s.off] : qword[r14 + s.off])
                      : (s.w32 ? dword[rbx + s.off] : qword[rbx + s.off]);
    }
    // Whether a temp's value is still needed at or after op `at`.
    bool live(const Slot &s, uint32_t at) const { return !s.temp || s.last_read >= at; }
    void write_back(Slot &s)
    {
        if (s.reg >= 0 && s.dirty) {
            Reg64 r(s.reg);
            if (s.w32) {
                mov(mem(s), r.cvt32());
            } else {
                mov(mem(s), r);
            }
        }
        s.dirty = false;
    }
    void drop(Slot &s)
    {
        if (s.reg >= 0) owner_[s.reg] = -1;
        s.reg = -1;
        s.dirty = false;
    }
    // Write back every dirty global (and, with temps, every live dirty temp).
    void flush(bool temps, uint32_t live_at)
    {
        for (int r : pool_) {
            if (owner_[r] < 0) continue;
            Slot &s = slots_[static_cast<size_t>(owner_[r])];
            if (!s.dirty) continue;
            if (!s.temp) {
                write_back(s);
            } else if (temps) {
                if (live(s, live_at)) {
                    write_back(s);
                } else {
                    drop(s);
                }
            }
        }
    }
    void forget_all()
    {
        for (int r : pool_)
            if (owner_[r] >= 0) drop(slots_[static_cast<size_t>(owner_[r])]);
    }
    // Forget every cached global (after something may have written them behind the cache's back).
    void forget_globals()
    {
        for (int r : pool_)
            if (owner_[r] >= 0 && !slots_[static_cast<size_t>(owner_[r])].temp)
                drop(slots_[static_cast<size_t>(owner_[r])]);
    }
    // Free the registers of temps no later op reads.
    void free_dead_temps()
    {
        for (int r : pool_) {
            if (owner_[r] < 0) continue;
            Slot &s = slots_[static_cast<size_t>(owner_[r])];
            if (s.temp && s.last_read <= op_at_) drop(s);
        }
    }
    // Before a call that clobbers the caller-saved registers: nothing may stay in them.
    void spill_caller_saved()
    {
        for (int r : pool_) {
            if (owner_[r] < 0 || !caller_saved(r)) continue;
            Slot &s = slots_[static_cast<size_t>(owner_[r])];
            if (live(s, op_at_)) write_back(s);
            drop(s);
        }
    }
    int alloc_reg()
    {
        int best = -1;
        for (int r : pool_) {
            if (owner_[r] < 0) return r;
            if (best < 0 || use_[r] < use_[best]) best = r;
        }
        Slot &victim = slots_[static_cast<size_t>(owner_[best])];
        if (live(victim, op_at_)) write_back(victim);
        drop(victim);
        return best;
    }
    // The register holding v, loading it first if `fill`.
    Reg64 cached(Slot &s, uint32_t key, bool fill)
    {
        if (s.reg < 0) {
            s.reg = alloc_reg();
            owner_[s.reg] = static_cast<int>(key);
            s.dirty = false;
            if (fill) {
                Reg64 r(s.reg);
                if (s.w32) {
                    mov(r.cvt32(), mem(s));
                } else {
                    mov(r, mem(s));
                }
            }
        }
        use_[s.reg] = ++clock_;
        return Reg64(s.reg);
    }
    // r = v, zero-extended when v is 32 bits wide. With `may_cache`, a global or temp not yet in a
    // register is loaded into one (for later uses); without, it is read from memory.
    void load(const Reg64 &r, KeelIrValue v, bool may_cache = true)
    {
        const IrVal &x = val(v);
        bool w32 = is32(x.type);
        switch (x.kind) {
        case ValKind::Const:
            if (w32) {
                mov(r.cvt32(), static_cast<uint32_t>(x.imm));
            } else if (x.imm == 0) {
                xor_(r.cvt32(), r.cvt32());
            } else {
                mov(r, x.imm);
            }
            return;
        case ValKind::Env:
            mov(r, rbx);
            return;
        default:
            break;
        }
        Slot *s = slot(v);
        if (!s) return;
        if (s->reg < 0 && (!may_cache || !s->cacheable)) {
            if (s->w32) {
                mov(r.cvt32(), mem(*s));
            } else {
                mov(r, mem(*s));
            }
            return;
        }
        Reg64 c = cached(*s, key_of_[v], true);
        if (c.getIdx() == r.getIdx()) return;
        if (w32) {
            mov(r.cvt32(), c.cvt32());
        } else {
            mov(r, c);
        }
    }
    // d = r, at d's width.
    void store(KeelIrValue d, const Reg64 &r)
    {
        Slot *s = slot(d);
        if (!s) return;
        if (!s->cacheable) {
            if (s->w32) {
                mov(mem(*s), r.cvt32());
            } else {
                mov(mem(*s), r);
            }
            return;
        }
        Reg64 c = cached(*s, key_of_[d], false);
        if (s->w32) {
            mov(c.cvt32(), r.cvt32());
        } else {
            mov(c, r);
        }
        s->dirty = true;
    }
    // What a cold path needs to write back the dirty globals and keep the caller-saved registers.
    struct Spill {
        std::vector<std::pair<Xbyak::Address, Reg64>>
            globals;             // dirty: memory <- register (width of the address)
        std::vector<Reg64> keep; // caller-saved registers in use
    };
    Spill spill_state()
    {
        Spill sp;
        for (int r : pool_) {
            if (owner_[r] < 0) continue;
            const Slot &s = slots_[static_cast<size_t>(owner_[r])];
            if (!s.temp && s.dirty) sp.globals.emplace_back(mem(s), Reg64(s.reg));
            if (caller_saved(s.reg)) sp.keep.emplace_back(s.reg);
        }
        return sp;
    }
    void spill_globals(const Spill &sp)
    {
        for (auto &[m, r] : sp.globals) {
            if (m.getBit() == 32) {
                mov(m, r.cvt32());
            } else {
                mov(m, r);
            }
        }
    }
    // A call from cold code: caller-saved cache registers are kept around it.
    void call_keeping(const Spill &sp, const void *fn, const std::function<void()> &args = {})
    {
        for (const Reg64 &r : sp.keep)
            push(r);
        if (sp.keep.size() & 1) sub(rsp, 8);
        if (args) args();
        call_fn(fn);
        if (sp.keep.size() & 1) add(rsp, 8);
        for (size_t i = sp.keep.size(); i-- > 0;)
            pop(sp.keep[i]);
    }
    bool is_const(KeelIrValue v) const { return val(v).kind == ValKind::Const; }
    // A constant usable as the sign-extended 32-bit immediate of an operation of width w32.
    bool imm_of(KeelIrValue v, bool w32, int32_t &out) const
    {
        if (!is_const(v)) return false;
        uint64_t x = val(v).imm;
        if (w32) {
            out = static_cast<int32_t>(static_cast<uint32_t>(x));
            return true;
        }
        if (static_cast<int64_t>(x) != static_cast<int64_t>(static_cast<int32_t>(x))) return false;
        out = static_cast<int32_t>(x);
        return true;
    }

    // Whether an op after the current one names the storage of `s` (reads or writes it).
    bool named_later(const Slot *s)
    {
        auto is = [&](KeelIrValue v) { return v && slot(v) == s; };
        for (size_t i = op_at_ + 1; i < b_.ops.size(); ++i) {
            const IrOp &o = b_.ops[i];
            if (is(o.v[0]) || is(o.v[1]) || is(o.v[2]) || is(o.v[3])) return true;
            if (o.kind == OpKind::MovCond && is(o.extra)) return true;
            if (o.kind == OpKind::Call)
                for (unsigned k = 0; k < o.nargs; ++k)
                    if (is(b_.call_args[o.args_at + k])) return true;
        }
        return false;
    }
    // The register of a cached value (loading it into its cache register), or `scratch` loaded with it.
    Reg64 reg_of(KeelIrValue v, const Reg64 &scratch)
    {
        Slot *s = slot(v);
        if (s && s->cacheable) return cached(*s, key_of_[v], true);
        load(scratch, v);
        return scratch;
    }

    // ---- conditions ----
    void cmp_values(KeelIrValue a, KeelIrValue c)
    {
        bool w32 = v32(a);
        Reg64 ra = reg_of(a, rax);
        int32_t imm;
        if (imm_of(c, w32, imm)) {
            if (imm == 0) {
                if (w32) {
                    test(ra.cvt32(), ra.cvt32());
                } else {
                    test(ra, ra);
                }
            } else if (w32) {
                cmp(ra.cvt32(), imm);
            } else {
                cmp(ra, imm);
            }
        } else {
            Reg64 r = rcx;
            Slot *sc = slot(c);
            if (sc && sc->cacheable) {
                r = cached(*sc, key_of_[c], true);
            } else {
                load(rcx, c);
            }
            if (w32) {
                cmp(ra.cvt32(), r.cvt32());
            } else {
                cmp(ra, r);
            }
        }
    }
    void jcc(unsigned cond, const Label &l)
    {
        switch (cond) {
        case KEEL_IR_EQ:
            je(l, T_NEAR);
            break;
        case KEEL_IR_NE:
            jne(l, T_NEAR);
            break;
        case KEEL_IR_LT:
            jl(l, T_NEAR);
            break;
        case KEEL_IR_GE:
            jge(l, T_NEAR);
            break;
        case KEEL_IR_LE:
            jle(l, T_NEAR);
            break;
        case KEEL_IR_GT:
            jg(l, T_NEAR);
            break;
        case KEEL_IR_LTU:
            jb(l, T_NEAR);
            break;
        case KEEL_IR_GEU:
            jae(l, T_NEAR);
            break;
        case KEEL_IR_LEU:
            jbe(l, T_NEAR);
            break;
        default:
            ja(l, T_NEAR);
            break;
        }
    }
    void setcc(unsigned cond, const Xbyak::Reg8 &r)
    {
        switch (cond) {
        case KEEL_IR_EQ:
            sete(r);
            break;
        case KEEL_IR_NE:
            setne(r);
            break;
        case KEEL_IR_LT:
            setl(r);
            break;
        case KEEL_IR_GE:
            setge(r);
            break;
        case KEEL_IR_LE:
            setle(r);
            break;
        case KEEL_IR_GT:
            setg(r);
            break;
        case KEEL_IR_LTU:
            setb(r);
            break;
        case KEEL_IR_GEU:
            setae(r);
            break;
        case KEEL_IR_LEU:
            setbe(r);
            break;
        default:
            seta(r);
            break;
        }
    }
    void cmovcc(unsigned cond, const Reg64 &d, const Reg64 &s)
    {
        switch (cond) {
        case KEEL_IR_EQ:
            cmove(d, s);
            break;
        case KEEL_IR_NE:
            cmovne(d, s);
            break;
        case KEEL_IR_LT:
            cmovl(d, s);
            break;
        case KEEL_IR_GE:
            cmovge(d, s);
            break;
        case KEEL_IR_LE:
            cmovle(d, s);
            break;
        case KEEL_IR_GT:
            cmovg(d, s);
            break;
        case KEEL_IR_LTU:
            cmovb(d, s);
            break;
        case KEEL_IR_GEU:
            cmovae(d, s);
            break;
        case KEEL_IR_LEU:
            cmovbe(d, s);
            break;
        default:
            cmova(d, s);
            break;
        }
    }

    // ---- exits ----
    void leave(ExitKind k, unsigned slot)
    {
        mov(rax, reinterpret_cast<uint64_t>(&tb_));
        mov(rdx, kind_slot(k, slot));
        jmp_rx(leave_);
    }
    // Leave the block for a raised exception: the pc global gets the instruction's pc.
    void raise_exit(uint64_t pc)
    {
        mov(rax, pc);
        mov(qword[rbx + pc_off_], rax);
        jmp(exc_exit_, T_NEAR);
    }

    bool emit_alu(const IrOp &op, std::string &err);
    void emit_load(const IrOp &op);
    void emit_store(const IrOp &op);
    void emit_host_mem(const IrOp &op);
    // Whether host memory op `op` may touch the bytes of a cacheable global (its base is not a constant
    // pointer outside the env's globals).
    bool host_may_alias_globals(const IrOp &op) const;
    // A load_host/add/store_host of one 64-bit word at a constant address whose temps die there (a
    // plugin's inline counter): one `add qword [addr], imm`. False if the ops at op_at_ are not that.
    bool emit_host_add(const IrOp &op);
    void emit_call(const IrOp &op);
    void emit_goto_tb(unsigned slot);
    // lookup_and_goto: the jump cache probed inline; on a hit, on to the next block's chained entry.
    void emit_lookup();
    // Emits the TLB probe: on a hit rsi = the host address; on a miss jumps to `miss`. rsi = guest address.
    void tlb_probe(unsigned mmu, KeelAccess acc, unsigned size, Label &miss);
    // `dst` = the 1 << size_log bytes at `at`, sign- or zero-extended to 64 bits.
    void load_sized(const Xbyak::Reg64 &dst, const Xbyak::RegExp &at, unsigned size_log, bool sign);
    // The low 1 << size_log bytes of `src` to `at`.
    void store_sized(const Xbyak::RegExp &at, const Xbyak::Reg64 &src, unsigned size_log);

    CpuState &cpu_;
    const IrBlock &b_;
    Tb &tb_;
    Code &code_;
    const uint8_t *leave_;
    const Xbyak::util::Cpu &host_;
    const std::vector<bool> &shared_; // per global: shares bytes with another global (never cached)
    const bool budget_in_memory_;
    const std::span<const int> pool_; // the registers for cached values
    int32_t pc_off_ = 0;
    uint64_t insn_pc_ = 0;
    Label exc_exit_;
    std::list<Label> cold_labels_;
    std::vector<std::function<void()>> cold_; // emitted after the block's straight-line code
    struct GotoSite {
        size_t site; // offset of the rel32
        unsigned slot;
        Label stub;
    };
    std::list<GotoSite> gotos_;
};

void BlockEmitter::setup_slots()
{
    const KeelCpuOps *ops = cpu_.ops;
    const unsigned ng = ops->n_globals;
    slots_.assign(ng + b_.n_temps, Slot{});
    for (unsigned i = 0; i < ng; ++i) {
        const KeelIrGlobal &g = ops->globals[i];
        Slot &s = slots_[i];
        s.w32 = is32(g.type);
        s.off = static_cast<int32_t>(g.offset);
        s.cacheable = !shared_[i];
    }
    for (unsigned t = 0; t < b_.n_temps; ++t) {
        Slot &s = slots_[ng + t];
        s.temp = true;
        s.off = static_cast<int32_t>(8 * t);
    }
    key_of_.assign(b_.values.size(), ~0u);
    for (size_t v = 1; v < b_.values.size(); ++v) {
        const IrVal &x = b_.values[v];
        if (x.kind == ValKind::Global && x.index < ng) {
            key_of_[v] = x.index;
        } else if (x.kind == ValKind::Temp && x.index < b_.n_temps) {
            key_of_[v] = ng + x.index;
            slots_[ng + x.index].w32 = is32(x.type);
        }
    }
    // Where each temp is read last. With a backward branch any temp may be read again: all stay live.
    bool backward = false;
    for (size_t i = 0; i < b_.ops.size(); ++i) {
        const IrOp &op = b_.ops[i];
        if ((op.kind == OpKind::Br || op.kind == OpKind::BrCond) && op.label < b_.labels.size() &&
            b_.labels[op.label] >= 0 && static_cast<size_t>(b_.labels[op.label]) < i)
            backward = true;
    }
    auto reads = [&](KeelIrValue v, uint32_t at) {
        if (Slot *s = slot(v); s && s->temp)
            s->last_read = backward ? UINT32_MAX : std::max(s->last_read, at);
    };
    for (uint32_t i = 0; i < b_.ops.size(); ++i) {
        const IrOp &op = b_.ops[i];
        switch (op.kind) {
        case OpKind::Alu:
        case OpKind::SetCond:
            reads(op.v[1], i);
            reads(op.v[2], i);
            break;
        case OpKind::MovCond:
            reads(op.v[1], i);
            reads(op.v[2], i);
            reads(op.v[3], i);
            reads(op.extra, i);
            break;
        case OpKind::Load:
        case OpKind::LoadHost:
            reads(op.v[1], i);
            break;
        case OpKind::Store:
        case OpKind::StoreHost:
        case OpKind::BrCond:
            reads(op.v[0], i);
            reads(op.v[1], i);
            break;
        case OpKind::Call:
            for (unsigned k = 0; k < op.nargs; ++k)
                reads(b_.call_args[op.args_at + k], i);
            break;
        default:
            break;
        }
    }
    for (int &o : owner_)
        o = -1;
}

bool BlockEmitter::run(std::string &err)
{
    const KeelCpuOps *ops = cpu_.ops;
    pc_off_ = static_cast<int32_t>(ops->globals[ops->pc_global].offset);
    for (const IrVal &v : b_.values)
        if (v.kind == ValKind::Global && v.imm > 0x7fffffff) {
            err = "a global lies beyond 2 GiB of the env";
            return false;
        }
    const int32_t exit_req_off =
        static_cast<int32_t>(reinterpret_cast<const volatile char *>(&cpu_.common->exit_request) -
                             static_cast<const char *>(cpu_.env));

    // Chained entry: a block boundary, where exit requests and the end of the time slice are seen. The
    // budget counts instructions: the block is entered only if all of them fit (else it is restored).
    Label request, no_room;
    const auto budget = qword[rbp + static_cast<int32_t>(reinterpret_cast<const char *>(&cpu_.budget) -
                                                         reinterpret_cast<const char *>(&cpu_))];
    code_.chained = rx_here();
    cmp(dword[rbx + exit_req_off], 0);
    jne(request, T_NEAR);
    if (cpu_.icount) { // -icount: the clock reads what was left when this block began
        if (budget_in_memory_) mov(rax, budget);
        mov(qword[rbp + static_cast<int32_t>(reinterpret_cast<const char *>(&cpu_.icount_pub) -
                                             reinterpret_cast<const char *>(&cpu_))],
            budget_in_memory_ ? rax : r15);
    }
    if (budget_in_memory_) {
        sub(budget, static_cast<int32_t>(tb_.n_insns));
    } else {
        sub(r15, static_cast<int32_t>(tb_.n_insns));
    }
    jl(no_room, T_NEAR);
    code_.entry = rx_here();

    setup_slots();
    std::vector<Label> labels(b_.labels.size());
    bool dead = false;
    for (op_at_ = 0; op_at_ < b_.ops.size(); ++op_at_) {
        const IrOp &op = b_.ops[op_at_];
        if (op.kind == OpKind::SetLabel) {
            if (op.label >= labels.size()) {
                err = "label out of range";
                return false;
            }
            // Paths meet here: everything is in memory.
            if (!dead) flush(true, op_at_);
            forget_all();
            L(labels[op.label]);
            dead = false;
            continue;
        }
        if (op.kind == OpKind::InsnStart) {
            insn_pc_ = static_cast<uint64_t>(op.imm);
            continue;
        }
        if (dead) continue; // unreachable until the next label
        switch (op.kind) {
        case OpKind::Alu:
            if (!emit_alu(op, err)) return false;
            break;
        case OpKind::SetCond:
            cmp_values(op.v[1], op.v[2]);
            setcc(op.cond, al);
            movzx(eax, al);
            store(op.v[0], rax);
            break;
        case OpKind::MovCond:
            // The values first: loading a constant 0 is an xor, which would clobber the flags.
            load(rdx, op.extra); // vf
            load(rsi, op.v[3]);  // vt
            cmp_values(op.v[1], op.v[2]);
            cmovcc(op.cond, rdx, rsi);
            store(op.v[0], rdx);
            break;
        case OpKind::BrCond:
        case OpKind::Br: {
            if (op.label >= labels.size() || b_.labels[op.label] < 0) {
                err = "branch to unset label L" + std::to_string(op.label);
                return false;
            }
            if (op.kind == OpKind::Br) {
                flush(true, op_at_ + 1);
                jmp(labels[op.label], T_NEAR);
                dead = true;
            } else {
                flush(true, op_at_);
                cmp_values(op.v[0], op.v[1]);
                flush(true, op_at_ + 1); // (the compare may have loaded values: they are clean)
                jcc(op.cond, labels[op.label]);
            }
            break;
        }
        case OpKind::Load:
            emit_load(op);
            break;
        case OpKind::Store:
            emit_store(op);
            break;
        case OpKind::LoadHost:
            if (emit_host_add(op)) {
                op_at_ += 2;
                break;
            }
            emit_host_mem(op);
            break;
        case OpKind::StoreHost:
            emit_host_mem(op);
            break;
        case OpKind::Call:
            emit_call(op);
            break;
        case OpKind::GotoTb:
            flush(false, 0);
            emit_goto_tb(static_cast<unsigned>(op.imm) & 1);
            dead = true;
            break;
        case OpKind::LookupGoto: {
            flush(false, 0);
            emit_lookup();
            leave(ExitKind::Lookup, 0);
            dead = true;
            break;
        }
        case OpKind::ExitTb:
            flush(false, 0);
            leave(ExitKind::ExitTb, 0);
            dead = true;
            break;
        case OpKind::SetLabel:
        case OpKind::InsnStart:
            break;
        }
        if (!dead) free_dead_temps();
    }
    // A label at the very end (reachable only by a branch) must still land on an exit.
    if (!dead) flush(false, 0);
    leave(ExitKind::ExitTb, 0);

    // Cold code.
    for (auto &f : cold_)
        f();
    L(no_room);
    if (budget_in_memory_) {
        add(qword[rbp + static_cast<int32_t>(reinterpret_cast<const char *>(&cpu_.budget) -
                                             reinterpret_cast<const char *>(&cpu_))],
            static_cast<int32_t>(tb_.n_insns));
    } else {
        add(r15, static_cast<int32_t>(tb_.n_insns));
    }
    L(request);
    leave(ExitKind::Request, 0);
    L(exc_exit_);
    leave(ExitKind::Exception, 0);
    for (GotoSite &g : gotos_) {
        L(g.stub);
        leave(ExitKind::GotoTb, g.slot);
    }
    for (GotoSite &g : gotos_) {
        code_.sites[g.slot].push_back(cache_.rx(const_cast<uint8_t *>(getCode()) + g.site));
        code_.stubs[g.slot].push_back(rx_of(g.stub));
    }
    return true;
}

void BlockEmitter::emit_lookup()
{
    auto off = [](const void *field, const void *base) {
        return static_cast<int32_t>(static_cast<const char *>(field) - static_cast<const char *>(base));
    };
    static_assert(offsetof(Code, chained) == 0, "the probe loads Code::chained at offset 0");
    Label miss;
    cmp(byte[rbp + off(&cpu_.chain, &cpu_)], 0);
    je(miss, T_NEAR);
    // rax = the flags the next block must have: the CPU's own function, called directly.
    mov(rdi, rbx);
    call_fn(reinterpret_cast<const void *>(cpu_.ops->tb_flags));
    mov(rcx, qword[rbx + pc_off_]);
    // jc_index(pc) = ((pc >> 1) ^ (pc >> (kJcBits + 1))) & (kJcSize - 1)
    mov(rdx, rcx);
    shr(rdx, 1);
    mov(rsi, rcx);
    shr(rsi, kJcBits + 1);
    xor_(rdx, rsi);
    and_(edx, kJcSize - 1);
    mov(rdx, qword[rbp + rdx * 8 + off(&cpu_.jc[0], &cpu_)]);
    test(rdx, rdx);
    jz(miss, T_NEAR);
    cmp(rcx, qword[rdx + off(&tb_.pc, &tb_)]);
    jne(miss, T_NEAR);
    cmp(rax, qword[rdx + off(&tb_.flags, &tb_)]);
    jne(miss, T_NEAR);
    mov(rdx, qword[rdx + off(&tb_.code, &tb_)]);
    jmp(qword[rdx]);
    L(miss);
}

void BlockEmitter::emit_goto_tb(unsigned slot)
{
    gotos_.push_back(GotoSite{0, slot, Label()});
    GotoSite &g = gotos_.back();
    // Keep the rel32 inside one aligned 4-byte word, so a patch is one atomic store.
    size_t pad = (3 - ((reinterpret_cast<uintptr_t>(getCurr()) + 1 + 3) & 3)) & 3;
    if (pad) nop(pad); // one instruction
    jmp(g.stub, T_NEAR);
    g.site = getSize() - 4;
}

void BlockEmitter::tlb_probe(unsigned mmu, KeelAccess acc, unsigned size, Label &miss)
{
    const int32_t tlb_off = static_cast<int32_t>(reinterpret_cast<const char *>(&cpu_.tlb[mmu][0]) -
                                                 reinterpret_cast<const char *>(&cpu_));
    static_assert(sizeof(TlbEntry) == 40, "the index computation below scales by 40");
    mov(rdi, rsi);
    shr(rdi, kPageBits);
    and_(edi, kTlbSize - 1);
    lea(rdi, ptr[rdi + rdi * 4]); // * 5
    mov(rax, rsi);
    and_(rax, static_cast<int32_t>(static_cast<uint32_t>(kPageMask) | (size - 1)));
    cmp(rax, qword[rbp + rdi * 8 + (tlb_off + static_cast<int32_t>(offsetof(TlbEntry, tag) + 8 * acc))]);
    jne(miss, T_NEAR);
    add(rsi, qword[rbp + rdi * 8 + (tlb_off + static_cast<int32_t>(offsetof(TlbEntry, addend)))]);
}

void BlockEmitter::emit_load(const IrOp &op)
{
    unsigned size_log = op.memop & KEEL_MO_SIZE_MASK;
    unsigned size = 1u << size_log;
    bool sign = (op.memop & KEEL_MO_SIGN) != 0;
    load(rsi, op.v[1]);
    cold_labels_.emplace_back();
    Label &miss = cold_labels_.back();
    cold_labels_.emplace_back();
    Label &back = cold_labels_.back();
    if (op.memop & KEEL_MO_RMW) {
        // The read of a read-modify-write must find the page writable: always the slow path (as tci).
        jmp(miss, T_NEAR);
    } else {
        tlb_probe(op.mmu_idx, KEEL_ACCESS_READ, size, miss);
        load_sized(rax, rsi, size_log, sign);
    }
    Spill sp = spill_state();
    L(back);
    store(op.v[0], rax);
    uint64_t pc = insn_pc_;
    uint64_t mm = op.memop | static_cast<uint64_t>(op.mmu_idx) << 8;
    cold_.push_back([this, &miss, &back, pc, mm, sp] {
        L(miss);
        // rsi still holds the guest address
        spill_globals(sp);
        mov(rdi, rbp);
        mov(edx, static_cast<uint32_t>(mm));
        mov(rcx, pc);
        call_keeping(sp, reinterpret_cast<const void *>(&slow_load));
        test(rdx, rdx);
        jz(exc_exit_, T_NEAR);
        jmp(back, T_NEAR);
    });
}

void BlockEmitter::load_sized(const Xbyak::Reg64 &dst, const Xbyak::RegExp &at, unsigned size_log, bool sign)
{
    switch (size_log) {
    case 0:
        if (sign)
            movsx(dst, byte[at]);
        else
            movzx(dst.cvt32(), byte[at]);
        break;
    case 1:
        if (sign)
            movsx(dst, word[at]);
        else
            movzx(dst.cvt32(), word[at]);
        break;
    case 2:
        if (sign)
            movsxd(dst, dword[at]);
        else
            mov(dst.cvt32(), dword[at]);
        break;
    default:
        mov(dst, qword[at]);
        break;
    }
}

void BlockEmitter::store_sized(const Xbyak::RegExp &at, const Xbyak::Reg64 &src, unsigned size_log)
{
    switch (size_log) {
    case 0:
        mov(byte[at], src.cvt8());
        break;
    case 1:
        mov(word[at], src.cvt16());
        break;
    case 2:
        mov(dword[at], src.cvt32());
        break;
    default:
        mov(qword[at], src);
        break;
    }
}

void BlockEmitter::emit_store(const IrOp &op)
{
    unsigned size_log = op.memop & KEEL_MO_SIZE_MASK;
    unsigned size = 1u << size_log;
    load(rdx, op.v[0]);
    load(rsi, op.v[1]);
    cold_labels_.emplace_back();
    Label &miss = cold_labels_.back();
    cold_labels_.emplace_back();
    Label &back = cold_labels_.back();
    tlb_probe(op.mmu_idx, KEEL_ACCESS_WRITE, size, miss);
    store_sized(rsi, rdx, size_log);
    L(back);
    Spill sp = spill_state();
    uint64_t pc = insn_pc_;
    uint64_t mm = op.memop | static_cast<uint64_t>(op.mmu_idx) << 8;
    cold_.push_back([this, &miss, &back, pc, mm, sp] {
        L(miss);
        // rsi = guest address, rdx = value (r8 may hold a cached value: saved before it becomes an argument)
        spill_globals(sp);
        call_keeping(sp, reinterpret_cast<const void *>(&slow_store), [&] {
            mov(r8, rdx);
            mov(rdi, rbp);
            mov(edx, static_cast<uint32_t>(mm));
            mov(rcx, pc);
        });
        test(eax, eax);
        jz(exc_exit_, T_NEAR);
        jmp(back, T_NEAR);
    });
}

bool BlockEmitter::host_may_alias_globals(const IrOp &op) const
{
    const IrVal &base = val(op.v[1]);
    if (base.kind != ValKind::Const) return true;
    const uint64_t lo = base.imm + static_cast<uint64_t>(op.imm);
    const uint64_t hi = lo + (uint64_t(1) << (op.memop & KEEL_MO_SIZE_MASK));
    const KeelCpuOps *ops = cpu_.ops;
    const uint64_t env = reinterpret_cast<uintptr_t>(cpu_.env);
    for (unsigned g = 0; g < ops->n_globals; ++g) {
        const uint64_t at = env + ops->globals[g].offset;
        if (lo < at + 8 && at < hi) return true;
    }
    return hi < lo; // wrapped around: assume the worst
}

bool BlockEmitter::emit_host_add(const IrOp &op)
{
    if (op_at_ + 2 >= b_.ops.size()) return false;
    const IrOp &add_op = b_.ops[op_at_ + 1], &st = b_.ops[op_at_ + 2];
    if ((op.memop & KEEL_MO_SIZE_MASK) != KEEL_MO_64 || add_op.kind != OpKind::Alu ||
        add_op.alu != KEEL_IR_ADD || st.kind != OpKind::StoreHost ||
        (st.memop & KEEL_MO_SIZE_MASK) != KEEL_MO_64 || st.imm != op.imm || add_op.v[1] != op.v[0] ||
        st.v[0] != add_op.v[0] || val(add_op.v[2]).kind != ValKind::Const)
        return false;
    const IrVal &base = val(op.v[1]), &sbase = val(st.v[1]);
    const int64_t imm = static_cast<int64_t>(val(add_op.v[2]).imm);
    if (base.kind != ValKind::Const || sbase.kind != ValKind::Const || base.imm != sbase.imm ||
        imm != static_cast<int32_t>(imm) || host_may_alias_globals(op))
        return false;
    // Both temps must die here (nothing reads the loaded or the added value afterwards).
    const Slot *t = slot(op.v[0]), *u = slot(add_op.v[0]);
    if (!t || !u || !t->temp || !u->temp || t->last_read > op_at_ + 2 || u->last_read > op_at_ + 2)
        return false;
    mov(rax, base.imm + static_cast<uint64_t>(op.imm));
    add(qword[rax], static_cast<int32_t>(imm));
    return true;
}

void BlockEmitter::emit_host_mem(const IrOp &op)
{
    // Host memory may be the env itself: then globals are in memory around the access, and re-read after
    // a store. A constant pointer elsewhere (a plugin's counter) leaves the register cache alone.
    const bool alias = host_may_alias_globals(op);
    if (alias) flush(false, 0);
    if (op.kind == OpKind::StoreHost) load(rcx, op.v[0]);
    load(rax, op.v[1]);
    int64_t off = op.imm;
    if (off != static_cast<int32_t>(off)) {
        mov(rcx, static_cast<uint64_t>(off));
        add(rax, rcx);
        off = 0;
    }
    Xbyak::RegExp at = rax + static_cast<int32_t>(off);
    unsigned size_log = op.memop & KEEL_MO_SIZE_MASK;
    bool sign = (op.memop & KEEL_MO_SIGN) != 0;
    if (op.kind == OpKind::LoadHost) {
        load_sized(rcx, at, size_log, sign);
        store(op.v[0], rcx);
        return;
    }
    store_sized(at, rcx, size_log);
    if (alias) forget_globals();
}

void BlockEmitter::emit_call(const IrOp &op)
{
    const KeelIrHelper *h = op.helper;
    static const Reg64 kIntRegs[] = {rdi, rsi, rdx, rcx, r8, r9};
    // Helpers that look at globals see them in memory; the caller-saved registers hold nothing across the
    // call. Other helpers leave dirty globals in the callee-saved registers.
    const bool sees_globals = (h->flags & (KEEL_HELPER_READS_GLOBALS | KEEL_HELPER_WRITES_GLOBALS)) != 0;
    if (sees_globals) flush(false, 0);
    spill_caller_saved();
    std::vector<KeelIrValue> on_stack;
    unsigned ni = 0, nf = 0;
    for (unsigned i = 0; i < op.nargs; ++i) {
        KeelIrValue v = b_.call_args[op.args_at + i];
        KeelIrType t = static_cast<KeelIrType>(h->args[i]);
        if (t == KEEL_IR_F32 || t == KEEL_IR_F64) {
            load(rax, v, false);
            Xbyak::Xmm x(static_cast<int>(nf++));
            if (t == KEEL_IR_F32) {
                movd(x, eax);
            } else {
                movq(x, rax);
            }
        } else if (ni < 6) {
            load(kIntRegs[ni++], v, false);
        } else {
            on_stack.push_back(v);
        }
    }
    size_t pad = on_stack.size() & 1 ? 8 : 0;
    if (pad) sub(rsp, 8);
    for (size_t i = on_stack.size(); i-- > 0;) {
        load(rax, on_stack[i], false);
        push(rax);
    }
    call_fn(reinterpret_cast<const void *>(h->fn));
    if (!on_stack.empty() || pad) add(rsp, static_cast<uint32_t>(8 * on_stack.size() + pad));
    if (h->flags & KEEL_HELPER_MAY_RAISE) {
        const int32_t exc_off = static_cast<int32_t>(reinterpret_cast<const char *>(&cpu_.common->exception) -
                                                     static_cast<const char *>(cpu_.env));
        cold_labels_.emplace_back();
        Label &raised = cold_labels_.back();
        cmp(dword[rbx + exc_off], 0);
        jne(raised, T_NEAR);
        uint64_t pc = insn_pc_;
        Spill sp = spill_state(); // dirty globals of the instructions before (none when flushed)
        cold_.push_back([this, &raised, pc, sp] {
            L(raised);
            spill_globals(sp);
            raise_exit(pc);
        });
    }
    if (h->flags & KEEL_HELPER_WRITES_GLOBALS) forget_globals();
    if (h->has_ret && op.v[0]) {
        if (h->ret == KEEL_IR_F32) {
            movd(eax, xmm0);
        } else if (h->ret == KEEL_IR_F64) {
            movq(rax, xmm0);
        }
        store(op.v[0], rax);
    }
}

bool BlockEmitter::emit_alu(const IrOp &op, std::string &err)
{
    KeelIrValue d = op.v[0], a = op.v[1], c = op.v[2];
    unsigned alu = op.alu;
    bool w = !is32(op.type); // 64-bit operation
    Reg64 A = rax, C = rcx;
    Reg32 A32 = eax, C32 = ecx;
    int32_t imm = 0;
    // The second operand straight from its cache register when it has one (else loaded into rcx).
    auto use_cached_c = [&] {
        Slot *sc = slot(c);
        if (sc && sc->cacheable) {
            C = cached(*sc, key_of_[c], true);
            C32 = C.cvt32();
        } else {
            load(C, c);
        }
    };
    bool in_place = false, in_memory = false;
    Slot *sd = slot(d);
    // A = a, in d's cache register when d has one and no second operand lives there (then the op
    // leaves its result in place), else in rax.
    auto load_a = [&](bool uses_c) {
        if (sd && sd->cacheable && sd == slot(a)) {
            // d = d op c: straight on d's cache register.
            A = cached(*sd, key_of_[d], true);
        } else if (sd && sd->cacheable && !(uses_c && slot(c) == sd)) {
            A = cached(*sd, key_of_[d], false);
            load(A, a);
        } else {
            load(A, a);
            return;
        }
        A32 = A.cvt32();
        in_place = true;
    };
    auto binop = [&](auto &&rr, auto &&ri) {
        if (sd && sd->cacheable && !sd->temp && sd->reg < 0 && sd == slot(a) && imm_of(c, !w, imm) &&
            !named_later(sd)) {
            // A global read and written once here (the instruction count at an exit): update memory.
            Xbyak::Address m = mem(*sd);
            switch (alu) {
            case KEEL_IR_ADD:
                add(m, imm);
                break;
            case KEEL_IR_SUB:
                sub(m, imm);
                break;
            case KEEL_IR_AND:
                and_(m, imm);
                break;
            case KEEL_IR_OR:
                or_(m, imm);
                break;
            default:
                xor_(m, imm);
                break;
            }
            in_memory = true;
            return;
        }
        load_a(true);
        if (imm_of(c, !w, imm)) {
            ri(imm);
        } else {
            use_cached_c();
            rr();
        }
    };
    switch (alu) {
    case KEEL_IR_MOV:
    case KEEL_IR_BITCAST:
        if (sd && sd->cacheable && !sd->temp && sd->reg < 0 && is_const(a) && !named_later(sd)) {
            // A constant to a global nothing here reads again (the pc before an exit): straight to memory.
            int32_t i32;
            if (imm_of(a, sd->w32, i32)) {
                mov(mem(*sd), i32);
            } else {
                load(rax, a);
                mov(mem(*sd), rax);
            }
            return true;
        }
        load_a(false);
        break;
    case KEEL_IR_ADD:
        binop([&] { w ? add(A, C) : add(A32, C32); }, [&](int32_t i) { w ? add(A, i) : add(A32, i); });
        break;
    case KEEL_IR_SUB:
        binop([&] { w ? sub(A, C) : sub(A32, C32); }, [&](int32_t i) { w ? sub(A, i) : sub(A32, i); });
        break;
    case KEEL_IR_AND:
        binop([&] { w ? and_(A, C) : and_(A32, C32); }, [&](int32_t i) { w ? and_(A, i) : and_(A32, i); });
        break;
    case KEEL_IR_OR:
        binop([&] { w ? or_(A, C) : or_(A32, C32); }, [&](int32_t i) { w ? or_(A, i) : or_(A32, i); });
        break;
    case KEEL_IR_XOR:
        binop([&] { w ? xor_(A, C) : xor_(A32, C32); }, [&](int32_t i) { w ? xor_(A, i) : xor_(A32, i); });
        break;
    case KEEL_IR_MUL:
        load_a(true);
        use_cached_c();
        w ? imul(A, C) : imul(A32, C32);
        break;
    case KEEL_IR_MULHS:
    case KEEL_IR_MULHU:
    case KEEL_IR_MULHSU:
        load(A, a);
        load(C, c);
        if (w) {
            if (alu == KEEL_IR_MULHS) {
                imul(C);
            } else {
                mov(rsi, A);
                mul(C); // rdx:rax = a * b unsigned
                if (alu == KEEL_IR_MULHSU) {
                    // signed a: subtract b from the high half when a < 0
                    sar(rsi, 63);
                    and_(rsi, C);
                    sub(rdx, rsi);
                }
            }
            mov(A, rdx);
        } else {
            // 32 bits: the whole product fits in 64 bits.
            if (alu != KEEL_IR_MULHU) movsxd(A, A32);
            if (alu == KEEL_IR_MULHS) movsxd(C, C32);
            imul(A, C);
            shr(A, 32);
        }
        break;
    case KEEL_IR_DIVS:
    case KEEL_IR_DIVU:
    case KEEL_IR_REMS:
    case KEEL_IR_REMU: {
        bool sgn = alu == KEEL_IR_DIVS || alu == KEEL_IR_REMS;
        bool is_div = alu == KEEL_IR_DIVS || alu == KEEL_IR_DIVU;
        Label zero, normal, done;
        load(A, a);
        load(C, c);
        w ? test(C, C) : test(C32, C32);
        jz(zero, T_NEAR);
        if (sgn) {
            w ? cmp(C, -1) : cmp(C32, -1);
            jne(normal, T_NEAR);
            // x / -1 = -x (MIN / -1 = MIN); x % -1 = 0
            if (is_div) {
                w ? neg(A) : neg(A32);
            } else {
                xor_(A32, A32);
            }
            jmp(done, T_NEAR);
        }
        L(normal);
        if (sgn) {
            w ? cqo() : cdq();
            w ? idiv(C) : idiv(C32);
        } else {
            xor_(edx, edx);
            w ? div(C) : div(C32);
        }
        if (!is_div) mov(A, rdx);
        jmp(done, T_NEAR);
        L(zero);
        if (is_div) mov(A, static_cast<uint64_t>(-1)); // x / 0 = all ones; x % 0 = x (already in A)
        L(done);
        break;
    }
    case KEEL_IR_ANDC:
        load(A, a);
        load(C, c);
        not_(C);
        w ? and_(A, C) : and_(A32, C32);
        break;
    case KEEL_IR_ORC:
        load(A, a);
        load(C, c);
        not_(C);
        w ? or_(A, C) : or_(A32, C32);
        break;
    case KEEL_IR_XNOR:
        load(A, a);
        load(C, c);
        w ? xor_(A, C) : xor_(A32, C32);
        w ? not_(A) : not_(A32);
        break;
    case KEEL_IR_NOT:
        load_a(false);
        w ? not_(A) : not_(A32);
        break;
    case KEEL_IR_NEG:
        load_a(false);
        w ? neg(A) : neg(A32);
        break;
    case KEEL_IR_SHL:
    case KEEL_IR_SHR:
    case KEEL_IR_SAR:
    case KEEL_IR_ROTL:
    case KEEL_IR_ROTR: {
        // x86 takes the count modulo 32 or 64, as ir.h wants.
        load_a(true);
        const Xbyak::Operand &dst = w ? static_cast<const Xbyak::Operand &>(A) : A32;
        if (is_const(c)) {
            int n = static_cast<int>(val(c).imm & (w ? 63 : 31));
            switch (alu) {
            case KEEL_IR_SHL:
                shl(dst, n);
                break;
            case KEEL_IR_SHR:
                shr(dst, n);
                break;
            case KEEL_IR_SAR:
                sar(dst, n);
                break;
            case KEEL_IR_ROTL:
                rol(dst, n);
                break;
            default:
                ror(dst, n);
                break;
            }
        } else {
            load(C, c);
            switch (alu) {
            case KEEL_IR_SHL:
                shl(dst, cl);
                break;
            case KEEL_IR_SHR:
                shr(dst, cl);
                break;
            case KEEL_IR_SAR:
                sar(dst, cl);
                break;
            case KEEL_IR_ROTL:
                rol(dst, cl);
                break;
            default:
                ror(dst, cl);
                break;
            }
        }
        break;
    }
    case KEEL_IR_CLZ:
        load(A, a);
        if (host_.has(Xbyak::util::Cpu::tLZCNT)) {
            w ? lzcnt(A, A) : lzcnt(A32, A32);
        } else {
            // bsr leaves the destination alone for 0 on every x86 we know, but says it is undefined: cmov.
            mov(ecx, -1);
            w ? bsr(A, A) : bsr(A32, A32);
            cmovz(A, rcx);
            neg(A32);
            add(A32, w ? 63 : 31);
        }
        break;
    case KEEL_IR_CTZ:
        load(A, a);
        if (host_.has(Xbyak::util::Cpu::tBMI1)) {
            w ? tzcnt(A, A) : tzcnt(A32, A32);
        } else {
            mov(ecx, w ? 64 : 32);
            w ? bsf(A, A) : bsf(A32, A32);
            cmovz(A, rcx);
        }
        break;
    case KEEL_IR_CTPOP:
        load(A, a);
        if (host_.has(Xbyak::util::Cpu::tPOPCNT)) {
            popcnt(A, A); // a 32-bit value is zero-extended in A
        } else {
            mov(rdi, A);
            Spill keep = spill_state();
            keep.globals.clear();
            call_keeping(keep, reinterpret_cast<const void *>(&popcount64));
        }
        break;
    case KEEL_IR_BSWAP:
        load_a(false);
        w ? bswap(A) : bswap(A32);
        break;
    case KEEL_IR_EXT8S:
        load_a(false);
        w ? movsx(A, A.cvt8()) : movsx(A32, A.cvt8());
        break;
    case KEEL_IR_EXT8U:
        load_a(false);
        movzx(A32, A.cvt8());
        break;
    case KEEL_IR_EXT16S:
        load_a(false);
        w ? movsx(A, A.cvt16()) : movsx(A32, A.cvt16());
        break;
    case KEEL_IR_EXT16U:
        load_a(false);
        movzx(A32, A.cvt16());
        break;
    case KEEL_IR_EXT32S:
    case KEEL_IR_EXTS_I32_I64:
        load_a(false);
        movsxd(A, A32);
        break;
    case KEEL_IR_EXT32U:
    case KEEL_IR_EXTU_I32_I64:
    case KEEL_IR_TRUNC_I64_I32:
        load_a(false);
        mov(A32, A32);
        break;
    case KEEL_IR_MINS:
    case KEEL_IR_MINU:
    case KEEL_IR_MAXS:
    case KEEL_IR_MAXU:
        load(A, a);
        load(C, c);
        w ? cmp(A, C) : cmp(A32, C32);
        switch (alu) {
        case KEEL_IR_MINS:
            cmovg(A, C);
            break;
        case KEEL_IR_MINU:
            cmova(A, C);
            break;
        case KEEL_IR_MAXS:
            cmovl(A, C);
            break;
        default:
            cmovb(A, C);
            break;
        }
        break;
    default:
        err = std::string("no x86-64 code for ") + alu_name(alu);
        return false;
    }
    if (in_memory) return true;
    if (in_place) {
        slot(d)->dirty = true;
    } else {
        store(d, A);
    }
    return true;
}

} // namespace

bool X86Engine::emit_block(CpuState &cpu, const IrBlock &b, Tb &tb, Code &code, std::string &err)
{
    cache_.set_used((cache_.used() + 15) & ~size_t(15));
    if (cache_.used() >= cache_.size()) throw Xbyak::Error(Xbyak::ERR_CODE_IS_TOO_BIG);
    BlockEmitter e(cache_, cpu, b, tb, code, leave_, host_, shared_globals(cpu.ops), budget_in_memory_);
    if (!e.run(err)) return false;
    code.generation = generation_;
    const uint8_t *start = e.getCode();
    size_t n = e.getSize();
    cache_.set_used(cache_.used() + n);
    if (keel_services && keel_services->log_enabled(KEEL_LOG_OP_OPT | KEEL_LOG_OUT_ASM)) {
        auto l0 = std::chrono::steady_clock::now();
        if (keel_services->log_enabled(KEEL_LOG_OP_OPT))
            keel_services->log_mask(cpu.obj, KEEL_LOG_OP_OPT, "OP after optimisation:\n%s",
                                    print_block(b).c_str());
        if (keel_services->log_enabled(KEEL_LOG_OUT_ASM)) {
            std::string text =
                disassemble(start, n, reinterpret_cast<uint64_t>(cache_.rx(const_cast<uint8_t *>(start))));
            keel_services->log_mask(cpu.obj, KEEL_LOG_OUT_ASM,
                                    "OUT: [size=%zu] guest pc 0x%016" PRIx64 ", %u insns\n%s\n", n, tb.pc,
                                    tb.n_insns, text.c_str());
        }
        log_ns_ += static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - l0)
                .count());
    }
    return true;
}

std::unique_ptr<Engine> make_x86_engine(const EngineOptions &opt, std::string &err)
{
    auto e = std::make_unique<X86Engine>(opt);
    if (!e->init(err)) return nullptr;
    return e;
}

EngineStats engine_stats(Engine &e)
{
    auto *x = dynamic_cast<X86Engine *>(&e);
    EngineStats s = x ? x->stats() : EngineStats{};
    return s;
}

} // namespace keel::tcg
