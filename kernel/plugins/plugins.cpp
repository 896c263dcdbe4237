// SPDX-License-Identifier: MIT
// The QEMU instrumentation plugin host: -plugin loading, the qemu_plugin_* entries plugins bind to, and the
// IR their registrations become. See plugins.h and docs/drafts/qemu-plugin-abi.md (the dispatch table).
#include "plugins.h"

#include <dlfcn.h>
#include <glib.h>
#include <link.h>

#include <csetjmp>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <tuple>

#include <keel/log.h>

#include "error.h"
#include "kernel.h"
#include "log.h"
#include "machine.h"
#include "memory.h"

namespace keel::plugins
{

namespace
{

constexpr int kApiMin = 1;
constexpr int kApiMax = 7;

struct Cb {
    void *fn = nullptr;
    void *ud = nullptr;
};

struct Plugin {
    uint64_t id = 0;
    std::string path;
    void *handle = nullptr;
    int version = 0;
    std::vector<std::string> args;
    std::vector<char *> argv;
    Cb tb_trans, atexit, flush, init, exit, idle, resume, discon;
    int discon_mask = 0;
    bool uninstalled = false;
    // Where its segments are mapped: finds the plugin calling an entry from a directly called callback.
    std::vector<std::pair<uintptr_t, uintptr_t>> ranges;
};

struct Scoreboard {
    size_t elem;
    size_t n;
    uint8_t *data;
};
// qemu_plugin_u64, passed by value (two registers).
struct U64 {
    Scoreboard *score;
    size_t offset;
};

struct Vcpu {
    KeelObject *obj = nullptr;
    void *env = nullptr;
    const KeelCpuOps *ops = nullptr;
    bool live = false;
    bool started = false; // ever initialised: counted by num_vcpus even after it exits
};

// What a helper call in translated code carries: a constant pointer to one of these.
struct CallRec {
    Plugin *p;
    void *fn;
    void *ud;
    unsigned vcpu;
    uint64_t pc;   // the instruction's (or block's) pc: what register reads report as pc
    uint32_t info; // memory callbacks: qemu_plugin_meminfo_t
};

// A registration made in a tb_trans callback, turned into IR after all plugins ran.
enum class RegKind { Cb, CondCb, Inline };
struct Reg {
    RegKind kind;
    Plugin *p = nullptr;
    void *fn = nullptr;
    void *ud = nullptr;
    int flags = 0;
    int cond = 0;
    uint64_t *ptr = nullptr; // inline op target / condition entry (already this vCPU's slot)
    uint64_t imm = 0;
    int op = 0;
    int rw = 3;
};

struct PTb;
struct PInsn {
    PTb *tb;
    uint64_t pc;
    unsigned len;
    uint32_t raw;
    unsigned n_mem;
    std::vector<Reg> exec, mem;
};
struct PTb {
    unsigned vcpu;
    std::vector<PInsn> insns;
    std::vector<Reg> exec;
};

// Physical-address facts of the access being reported (qemu_plugin_get_hwaddr).
struct Hwaddr {
    uint64_t paddr;
    bool io;
    const char *name;
};

struct MemCtx {
    uint32_t info;
    uint64_t vaddr;
    uint64_t value;
};

// A qemu_plugin_reset/uninstall waiting for the engines to drop the translated code.
struct Pending {
    Plugin *p;
    void *cb;
    void *ud;
    bool uninstall;
};

struct State {
    std::vector<std::unique_ptr<Plugin>> plugins;
    MachineInfo info;
    std::vector<Vcpu> vcpus;
    std::map<uint64_t, std::string> symbols;
    std::function<void(const char *)> sink;
    std::deque<CallRec> recs;
    std::map<std::tuple<Plugin *, void *, void *, unsigned, uint64_t, uint32_t>, CallRec *> rec_index;
    std::vector<Scoreboard *> scoreboards;
    std::deque<std::string> device_names; // strings handed out by hwaddr_device_name
    // NO_REGS exec callbacks are called directly by translated code: one helper per plugin function.
    std::deque<KeelIrHelper> direct;
    std::deque<std::string> direct_names;
    std::map<std::pair<void *, bool>, const KeelIrHelper *> direct_index; // (function, is a mem callback)
    // Per vCPU (one cache line each), the value of the access a directly called memory callback reports.
    std::vector<uint64_t> mem_values;
    const KeelPluginHooks *hooks = nullptr; // of the engine running (on the vCPU thread)
    std::vector<Pending> pending;
    bool time_control = false; // a plugin holds the virtual clock (qemu_plugin_request_time_control)
    bool exited = false;
};

State &st()
{
    static State s;
    return s;
}

// The plugin being called and the vCPU it runs on (for the entries without an id).
thread_local Plugin *t_plugin = nullptr;
thread_local int t_vcpu = -1;
thread_local uint64_t t_pc = 0;
thread_local bool t_pc_valid = false;
thread_local const MemCtx *t_mem = nullptr;
thread_local Hwaddr t_hwaddr;
// Inside a QEMU_PLUGIN_CB_RW_REGS_PC callback: where qemu_plugin_set_pc leaves the plugin to.
thread_local std::jmp_buf *t_redirect_jmp = nullptr;
// A redirect waiting for the execution loop (redirect()).
thread_local bool t_redirected = false;
thread_local unsigned t_redirect_vcpu = 0;
thread_local uint64_t t_redirect_pc = 0;

// Sets the calling context for one call into a plugin.
struct Scope {
    Plugin *sp;
    int sv;
    uint64_t spc;
    bool spv;
    const MemCtx *sm;
    Scope(Plugin *p, int vcpu, uint64_t pc = 0, bool pc_valid = false, const MemCtx *mem = nullptr)
        : sp(t_plugin), sv(t_vcpu), spc(t_pc), spv(t_pc_valid), sm(t_mem)
    {
        t_plugin = p;
        t_vcpu = vcpu;
        t_pc = pc;
        t_pc_valid = pc_valid;
        t_mem = mem;
    }
    ~Scope()
    {
        t_plugin = sp;
        t_vcpu = sv;
        t_pc = spc;
        t_pc_valid = spv;
        t_mem = sm;
    }
    Scope(const Scope &) = delete;
    Scope &operator=(const Scope &) = delete;
};

Plugin *by_id(uint64_t id)
{
    State &s = st();
    if (id == 0 || id > s.plugins.size()) return nullptr;
    return s.plugins[id - 1].get();
}

// The plugin calling an entry that has no id: the one being called back, else the .so holding @ra (a
// callback called directly by translated code).
Plugin *caller(const void *ra)
{
    if (t_plugin) return t_plugin;
    auto a = reinterpret_cast<uintptr_t>(ra);
    for (auto &p : st().plugins)
        for (const auto &[lo, hi] : p->ranges)
            if (a >= lo && a < hi) return p.get();
    return nullptr;
}

// The address ranges of the segments of the object dlopen returned @handle for.
std::vector<std::pair<uintptr_t, uintptr_t>> mapped_ranges(void *handle)
{
    struct Find {
        link_map *lm;
        std::vector<std::pair<uintptr_t, uintptr_t>> out;
    } f{nullptr, {}};
    if (dlinfo(handle, RTLD_DI_LINKMAP, &f.lm) != 0 || !f.lm) return {};
    dl_iterate_phdr(
        [](dl_phdr_info *info, size_t, void *data) {
            auto *f = static_cast<Find *>(data);
            if (info->dlpi_addr != f->lm->l_addr || !info->dlpi_name || !f->lm->l_name ||
                std::strcmp(info->dlpi_name, f->lm->l_name) != 0)
                return 0;
            for (unsigned i = 0; i < info->dlpi_phnum; ++i) {
                const ElfW(Phdr) &ph = info->dlpi_phdr[i];
                if (ph.p_type != PT_LOAD) continue;
                uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
                f->out.emplace_back(lo, lo + ph.p_memsz);
            }
            return 1;
        },
        &f);
    return f.out;
}

int caller_version(const void *ra)
{
    Plugin *p = caller(ra);
    return p ? p->version : kApiMax;
}

Vcpu *cur_vcpu()
{
    State &s = st();
    if (t_vcpu < 0 || static_cast<size_t>(t_vcpu) >= s.vcpus.size() || !s.vcpus[t_vcpu].live) return nullptr;
    return &s.vcpus[t_vcpu];
}

// Calls with the registering plugin's signature (docs/drafts/qemu-plugin-abi.md).
void call_vcpu_cb(Plugin *p, const Cb &cb, unsigned vcpu)
{
    if (!cb.fn || p->uninstalled) return;
    Scope s(p, static_cast<int>(vcpu));
    if (p->version >= 7) {
        reinterpret_cast<void (*)(unsigned, void *)>(cb.fn)(vcpu, cb.ud);
    } else {
        reinterpret_cast<void (*)(uint64_t, unsigned)>(cb.fn)(p->id, vcpu);
    }
}

void call_simple_cb(Plugin *p, void *fn, void *ud)
{
    if (!fn) return;
    Scope s(p, -1);
    if (p->version >= 7) {
        reinterpret_cast<void (*)(void *)>(fn)(ud);
    } else {
        reinterpret_cast<void (*)(uint64_t)>(fn)(p->id);
    }
}

void clear_callbacks(Plugin *p)
{
    p->tb_trans = p->atexit = p->flush = p->init = p->exit = p->idle = p->resume = p->discon = Cb{};
    p->discon_mask = 0;
}

// Runs the reset/uninstall callbacks that waited for the translated code to be dropped.
void run_pending()
{
    State &s = st();
    while (!s.pending.empty()) {
        Pending d = s.pending.front();
        s.pending.erase(s.pending.begin());
        if (!d.cb) continue;
        Scope sc(d.p, -1);
        if (d.p->version >= 7) {
            reinterpret_cast<void (*)(void *)>(d.cb)(d.ud);
        } else {
            reinterpret_cast<void (*)(uint64_t)>(d.cb)(d.p->id);
        }
    }
}

// qemu_plugin_reset/uninstall: the plugin's callbacks are gone for new translations at once; the engines
// drop the code instrumented before (as QEMU flushes its translation cache), then the callback runs.
void reset_plugin(Plugin *p, void *cb, void *ud, bool uninstall)
{
    State &s = st();
    clear_callbacks(p);
    if (uninstall) p->uninstalled = true;
    s.pending.push_back(Pending{p, cb, p->version >= 7 ? ud : nullptr, uninstall});
    if (s.hooks && s.hooks->request_flush) {
        s.hooks->request_flush(s.hooks->opaque);
    } else {
        run_pending(); // no engine running: no translated code
    }
}

// Guest physical memory a plugin wrote: translated code from it must go.
void code_written(uint64_t paddr, uint64_t len)
{
    State &s = st();
    if (s.hooks && s.hooks->code_written) s.hooks->code_written(s.hooks->opaque, paddr, len);
}

// --- translated-code helpers ------------------------------------------------------------------------------

// Exec callbacks that read or write registers (NO_REGS ones are called directly, see direct_helper).
void h_exec(void *r)
{
    auto *rec = static_cast<CallRec *>(r);
    Scope s(rec->p, static_cast<int>(rec->vcpu), rec->pc, true);
    reinterpret_cast<void (*)(unsigned, void *)>(rec->fn)(rec->vcpu, rec->ud);
}

// QEMU_PLUGIN_CB_RW_REGS_PC: the callback may call qemu_plugin_set_pc, which does not return to it (v7
// declares it noreturn): it jumps back here, and the helper reports an exception so that the engine
// leaves the block with everything written so far; the loop then asks redirect() and goes on at the new
// pc. Only the plugin's frames are skipped, never the engine's.
void h_exec_pc(void *r)
{
    auto *rec = static_cast<CallRec *>(r);
    Scope s(rec->p, static_cast<int>(rec->vcpu), rec->pc, true);
    std::jmp_buf jb;
    std::jmp_buf *outer = t_redirect_jmp;
    t_redirect_jmp = &jb;
    if (setjmp(jb) == 0) {
        reinterpret_cast<void (*)(unsigned, void *)>(rec->fn)(rec->vcpu, rec->ud);
        t_redirect_jmp = outer;
        return;
    }
    t_redirect_jmp = outer;
    t_redirected = true;
    t_redirect_vcpu = rec->vcpu;
    State &st_ = st();
    if (rec->vcpu < st_.vcpus.size() && st_.vcpus[rec->vcpu].env)
        KEEL_CPU_COMMON(st_.vcpus[rec->vcpu].env)->exception = 1;
}

void h_mem(void *r, uint64_t vaddr, uint64_t value)
{
    auto *rec = static_cast<CallRec *>(r);
    MemCtx m{rec->info, vaddr, value};
    Scope s(rec->p, static_cast<int>(rec->vcpu), rec->pc, true, &m);
    reinterpret_cast<void (*)(unsigned, uint32_t, uint64_t, void *)>(rec->fn)(rec->vcpu, rec->info, vaddr,
                                                                              rec->ud);
}

#define KEEL_FN_(f) reinterpret_cast<void (*)(void)>(f)
constexpr uint32_t kReadsGlobals = KEEL_HELPER_READS_GLOBALS;
constexpr uint32_t kRwGlobals = KEEL_HELPER_READS_GLOBALS | KEEL_HELPER_WRITES_GLOBALS;
// By qemu_plugin_cb_flags: R_REGS, RW_REGS, RW_REGS_PC (NO_REGS callbacks are called directly).
const KeelIrHelper kExecHelpers[3] = {
    {"plugin_exec_r", KEEL_FN_(h_exec), 0, 0, 1, {KEEL_IR_PTR}, kReadsGlobals, {}},
    {"plugin_exec_rw", KEEL_FN_(h_exec), 0, 0, 1, {KEEL_IR_PTR}, kRwGlobals, {}},
    {"plugin_exec_rw_pc",
     KEEL_FN_(h_exec_pc),
     0,
     0,
     1,
     {KEEL_IR_PTR},
     kRwGlobals | KEEL_HELPER_MAY_RAISE,
     {}},
};
const KeelIrHelper kMemHelpers[3] = {
    {"plugin_mem", KEEL_FN_(h_mem), 0, 0, 3, {KEEL_IR_PTR, KEEL_IR_I64, KEEL_IR_I64}, 0, {}},
    {"plugin_mem_r", KEEL_FN_(h_mem), 0, 0, 3, {KEEL_IR_PTR, KEEL_IR_I64, KEEL_IR_I64}, kReadsGlobals, {}},
    {"plugin_mem_rw", KEEL_FN_(h_mem), 0, 0, 3, {KEEL_IR_PTR, KEEL_IR_I64, KEEL_IR_I64}, kRwGlobals, {}},
};
#undef KEEL_FN_

const KeelIrHelper &pick(const KeelIrHelper (&h)[3], int flags)
{
    return h[flags <= 0 ? 0 : flags == 1 ? 1 : 2];
}

constexpr int kCbRwRegsPc = 3; // QEMU_PLUGIN_CB_RW_REGS_PC

// For R_REGS and up.
const KeelIrHelper &pick_exec(int flags)
{
    return kExecHelpers[std::min(flags, kCbRwRegsPc) - 1];
}

// The helper that calls plugin function @fn directly: qemu_plugin_vcpu_udata_cb_t (vcpu index, userdata)
// in every API version, so translated code passes both as constants. It touches no guest state (NO_REGS).
// With @mem, qemu_plugin_vcpu_mem_cb_t instead (vcpu index, meminfo, vaddr, userdata): the same in every
// version too; the access's value waits in the vCPU's mem_values slot for qemu_plugin_mem_get_value.
const KeelIrHelper *direct_helper(void *fn, bool mem = false)
{
    State &s = st();
    auto it = s.direct_index.find({fn, mem});
    if (it != s.direct_index.end()) return it->second;
    Dl_info info;
    char addr[32];
    std::snprintf(addr, sizeof addr, "%p", fn);
    s.direct_names.push_back(
        std::string("plugin:") +
        (dladdr(fn, &info) && info.dli_sname && info.dli_saddr == fn ? info.dli_sname : addr));
    KeelIrHelper h{};
    h.name = s.direct_names.back().c_str();
    h.fn = reinterpret_cast<void (*)(void)>(fn);
    if (mem) {
        h.nargs = 4;
        h.args[0] = KEEL_IR_I32, h.args[1] = KEEL_IR_I32, h.args[2] = KEEL_IR_I64, h.args[3] = KEEL_IR_PTR;
    } else {
        h.nargs = 2;
        h.args[0] = KEEL_IR_I32, h.args[1] = KEEL_IR_PTR;
    }
    s.direct.push_back(h);
    s.direct_index[{fn, mem}] = &s.direct.back();
    return &s.direct.back();
}

constexpr size_t kMemValueStride = 8; // uint64_t per vCPU: a cache line each

// vCPU @vcpu's slot, or nullptr.
uint64_t *mem_value_slot(unsigned vcpu)
{
    auto &v = st().mem_values;
    return (vcpu + size_t(1)) * kMemValueStride <= v.size() ? &v[vcpu * kMemValueStride] : nullptr;
}

CallRec *record(Plugin *p, void *fn, void *ud, unsigned vcpu, uint64_t pc, uint32_t info)
{
    State &s = st();
    auto key = std::make_tuple(p, fn, ud, vcpu, pc, info);
    auto it = s.rec_index.find(key);
    if (it != s.rec_index.end()) return it->second;
    s.recs.push_back(CallRec{p, fn, ud, vcpu, pc, info});
    s.rec_index[key] = &s.recs.back();
    return &s.recs.back();
}

// meminfo: bits 0-1 size shift, 2 sign-extended, 3 store, 4-6 MMU index.
uint32_t meminfo(KeelIrMemOp mop, bool store, unsigned mmu)
{
    return (mop & KEEL_MO_SIZE_MASK) | ((mop & KEEL_MO_SIGN) ? 4u : 0u) | (store ? 8u : 0u) |
           ((mmu & 7u) << 4);
}

// The builder op that names the value a memory operation loaded or stored (ir.h, Since: ABI 1.2); a
// builder without it makes mem_get_value report 0.
using MemValueFn = void (*)(KeelIrBuilder *, unsigned, unsigned, KeelIrValue *, KeelIrType *);
MemValueFn mem_value_fn(const KeelIrBuilderOps *o)
{
    return o->size >= sizeof(KeelIrBuilderOps) ? o->mem_value : nullptr;
}

void emit_inline(KeelIrBuilder *b, const KeelIrBuilderOps *o, const Reg &r)
{
    KeelIrValue p = o->const_ptr(b, r.ptr);
    KeelIrValue t = o->temp(b, KEEL_IR_I64);
    if (r.op == 0) { // ADD_U64
        o->load_host(b, t, p, 0, KEEL_MO_64);
        o->alu(b, KEEL_IR_ADD, t, t, o->const_int(b, KEEL_IR_I64, r.imm));
    } else { // STORE_U64
        o->alu(b, KEEL_IR_MOV, t, o->const_int(b, KEEL_IR_I64, r.imm), 0);
    }
    o->store_host(b, t, p, 0, KEEL_MO_64);
}

// QEMU_PLUGIN_COND_EQ.. GE (unsigned), negated: the branch that skips the call.
bool skip_cond(int cond, KeelIrCond &out)
{
    switch (cond) {
    case 2:
        out = KEEL_IR_NE;
        return true; // EQ
    case 3:
        out = KEEL_IR_EQ;
        return true; // NE
    case 4:
        out = KEEL_IR_GEU;
        return true; // LT
    case 5:
        out = KEEL_IR_GTU;
        return true; // LE
    case 6:
        out = KEEL_IR_LEU;
        return true; // GT
    case 7:
        out = KEEL_IR_LTU;
        return true; // GE
    default:
        return false;
    }
}

void emit_exec(KeelIrBuilder *b, const KeelIrBuilderOps *o, const Reg &r, unsigned vcpu, uint64_t pc)
{
    if (r.kind == RegKind::Inline) {
        emit_inline(b, o, r);
        return;
    }
    KeelIrLabel skip = 0;
    if (r.kind == RegKind::CondCb) {
        if (r.cond == 0) return; // NEVER
        KeelIrCond c;
        if (skip_cond(r.cond, c)) {
            skip = o->label(b);
            KeelIrValue t = o->temp(b, KEEL_IR_I64);
            o->load_host(b, t, o->const_ptr(b, r.ptr), 0, KEEL_MO_64);
            o->brcond(b, c, t, o->const_int(b, KEEL_IR_I64, r.imm), skip);
        }
    }
    if (r.flags <= 0) {
        KeelIrValue args[2] = {o->const_int(b, KEEL_IR_I32, vcpu), o->const_ptr(b, r.ud)};
        o->call(b, direct_helper(r.fn), 0, args, 2);
    } else {
        KeelIrValue arg = o->const_ptr(b, record(r.p, r.fn, r.ud, vcpu, pc, 0));
        o->call(b, &pick_exec(r.flags), 0, &arg, 1);
    }
    if (skip) o->set_label(b, skip);
}

// The IR of what the plugins registered on @tb.
void emit(PTb &tb, KeelIrBuilder *b, const KeelIrBuilderOps *o)
{
    MemValueFn mem_value = mem_value_fn(o);
    for (unsigned i = 0; i < tb.insns.size(); ++i) {
        PInsn &in = tb.insns[i];
        if (i == 0 || !in.exec.empty()) {
            o->set_cursor(b, KEEL_IR_BEFORE_INSN, i, 0);
            if (i == 0) {
                for (const Reg &r : tb.exec)
                    emit_exec(b, o, r, tb.vcpu, tb.insns[0].pc);
            }
            for (const Reg &r : in.exec)
                emit_exec(b, o, r, tb.vcpu, in.pc);
        }
        if (in.mem.empty()) continue;
        for (unsigned k = 0; k < in.n_mem; ++k) {
            KeelIrMemOp mop = 0;
            int is_store = 0;
            unsigned mmu = 0;
            KeelIrValue addr = 0;
            o->mem_info(b, i, k, &mop, &is_store, &mmu, &addr);
            int kind = is_store ? 2 : 1;
            bool any = false, calls = false;
            for (const Reg &r : in.mem) {
                if (!(r.rw & kind)) continue;
                any = true;
                calls |= r.kind != RegKind::Inline;
            }
            if (!any) continue;
            KeelIrValue a = 0, v = 0;
            if (calls) {
                o->set_cursor(b, KEEL_IR_BEFORE_MEM, i, k);
                a = o->temp(b, KEEL_IR_I64);
                o->alu(b, KEEL_IR_MOV, a, addr, 0);
            }
            o->set_cursor(b, KEEL_IR_AFTER_MEM, i, k);
            if (calls) {
                KeelIrValue val = 0;
                KeelIrType type = KEEL_IR_I64;
                if (mem_value) mem_value(b, i, k, &val, &type);
                v = o->temp(b, KEEL_IR_I64);
                if (!val) {
                    o->alu(b, KEEL_IR_MOV, v, o->const_int(b, KEEL_IR_I64, 0), 0);
                } else if (type == KEEL_IR_I64) {
                    o->alu(b, KEEL_IR_MOV, v, val, 0);
                } else if (type == KEEL_IR_F64) {
                    o->alu(b, KEEL_IR_BITCAST, v, val, 0);
                } else if (type == KEEL_IR_I32) {
                    o->alu(b, KEEL_IR_EXTU_I32_I64, v, val, 0);
                } else { // F32
                    KeelIrValue w = o->temp(b, KEEL_IR_I32);
                    o->alu(b, KEEL_IR_BITCAST, w, val, 0);
                    o->alu(b, KEEL_IR_EXTU_I32_I64, v, w, 0);
                }
            }
            uint32_t info = meminfo(mop, is_store != 0, mmu);
            bool value_stored = false;
            for (const Reg &r : in.mem) {
                if (!(r.rw & kind)) continue;
                if (r.kind == RegKind::Inline) {
                    emit_inline(b, o, r);
                    continue;
                }
                if (r.flags <= 0 && mem_value_slot(tb.vcpu)) { // NO_REGS: called directly
                    if (!value_stored) {
                        o->store_host(b, v, o->const_ptr(b, mem_value_slot(tb.vcpu)), 0, KEEL_MO_64);
                        value_stored = true;
                    }
                    KeelIrValue args[4] = {o->const_int(b, KEEL_IR_I32, tb.vcpu),
                                           o->const_int(b, KEEL_IR_I32, info), a, o->const_ptr(b, r.ud)};
                    o->call(b, direct_helper(r.fn, true), 0, args, 4);
                    continue;
                }
                KeelIrValue args[3] = {o->const_ptr(b, record(r.p, r.fn, r.ud, tb.vcpu, in.pc, info)), a, v};
                o->call(b, &pick(kMemHelpers, r.flags), 0, args, 3);
            }
        }
    }
    o->set_cursor(b, KEEL_IR_AT_END, 0, 0);
}

uint64_t *slot(U64 e, unsigned vcpu)
{
    if (!e.score || vcpu >= e.score->n) return nullptr;
    return reinterpret_cast<uint64_t *>(e.score->data + vcpu * e.score->elem + e.offset);
}

// Translates @vaddr of the current vCPU (probe: no exception recorded).
bool translate_vaddr(const Vcpu &c, uint64_t vaddr, KeelAccess acc, int mmu, uint64_t &paddr)
{
    if (!c.ops || !c.ops->tlb_fill) return false;
    unsigned idx = mmu >= 0 ? static_cast<unsigned>(mmu) : static_cast<unsigned>(c.ops->tb_flags(c.env) & 7);
    KeelTlbFill fill{};
    if (c.ops->tlb_fill(c.env, vaddr, acc, idx, 1, &fill) != KEEL_OK) return false;
    paddr = fill.paddr;
    return true;
}

AddressSpace *memory_of(const Vcpu &c)
{
    return c.obj && c.obj->machine ? &c.obj->machine->system_memory() : nullptr;
}

// Copies guest virtual memory of the current vCPU, page by page.
bool vaddr_access(uint64_t addr, uint8_t *buf, size_t len, bool write)
{
    Vcpu *c = cur_vcpu();
    if (!c) return false;
    AddressSpace *as = memory_of(*c);
    if (!as) return false;
    while (len > 0) {
        uint64_t paddr;
        if (!translate_vaddr(*c, addr, write ? KEEL_ACCESS_WRITE : KEEL_ACCESS_READ, -1, paddr)) return false;
        size_t n = static_cast<size_t>(std::min<uint64_t>(len, 0x1000 - (addr & 0xfff)));
        KeelMemResult r = write ? as->write_buf(paddr, buf, n) : as->read_buf(paddr, buf, n);
        if (r != KEEL_MEM_OK) return false;
        if (write) code_written(paddr, n);
        addr += n, buf += n, len -= n;
    }
    return true;
}

// gdb's RISC-V register numbering: x0-x31, pc (32), f0-f31 (33-64), CSRs from 65.
struct RegName {
    unsigned gdb;
    const char *name;
    const char *feature;
};
constexpr const char *kCpuFeature = "org.gnu.gdb.riscv.cpu";
constexpr const char *kFpuFeature = "org.gnu.gdb.riscv.fpu";
constexpr const char *kCsrFeature = "org.gnu.gdb.riscv.csr";
const char *const kXNames[32] = {"zero", "ra", "sp", "gp", "tp",  "t0",  "t1", "t2", "fp", "s1", "a0",
                                 "a1",   "a2", "a3", "a4", "a5",  "a6",  "a7", "s2", "s3", "s4", "s5",
                                 "s6",   "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6"};
const char *const kFNames[32] = {"ft0", "ft1", "ft2",  "ft3",  "ft4", "ft5", "ft6",  "ft7",
                                 "fs0", "fs1", "fa0",  "fa1",  "fa2", "fa3", "fa4",  "fa5",
                                 "fa6", "fa7", "fs2",  "fs3",  "fs4", "fs5", "fs6",  "fs7",
                                 "fs8", "fs9", "fs10", "fs11", "ft8", "ft9", "ft10", "ft11"};
const struct {
    unsigned csr;
    const char *name;
    bool fpu;
} kCsrs[] = {
    {0x001, "fflags", true},      {0x002, "frm", true},        {0x003, "fcsr", true},
    {0xc00, "cycle", false},      {0xc01, "time", false},      {0xc02, "instret", false},
    {0x100, "sstatus", false},    {0x104, "sie", false},       {0x105, "stvec", false},
    {0x106, "scounteren", false}, {0x140, "sscratch", false},  {0x141, "sepc", false},
    {0x142, "scause", false},     {0x143, "stval", false},     {0x144, "sip", false},
    {0x180, "satp", false},       {0xf11, "mvendorid", false}, {0xf12, "marchid", false},
    {0xf13, "mimpid", false},     {0xf14, "mhartid", false},   {0x300, "mstatus", false},
    {0x301, "misa", false},       {0x302, "medeleg", false},   {0x303, "mideleg", false},
    {0x304, "mie", false},        {0x305, "mtvec", false},     {0x306, "mcounteren", false},
    {0x340, "mscratch", false},   {0x341, "mepc", false},      {0x342, "mcause", false},
    {0x343, "mtval", false},      {0x344, "mip", false},       {0xb00, "mcycle", false},
    {0xb02, "minstret", false},
};

std::vector<RegName> register_names()
{
    std::vector<RegName> v;
    for (unsigned i = 0; i < 32; ++i)
        v.push_back({i, kXNames[i], kCpuFeature});
    v.push_back({32, "pc", kCpuFeature});
    for (unsigned i = 0; i < 32; ++i)
        v.push_back({33 + i, kFNames[i], kFpuFeature});
    for (const auto &c : kCsrs)
        v.push_back({65 + c.csr, c.name, c.fpu ? kFpuFeature : kCsrFeature});
    return v;
}

unsigned read_reg(const Vcpu &c, unsigned n, uint8_t *buf, size_t size)
{
    if (n == 32 && t_pc_valid) { // inside the block the pc global is not kept current: the insn's pc is
        std::memcpy(buf, &t_pc, 8);
        return 8;
    }
    return c.ops && c.ops->read_reg ? c.ops->read_reg(c.env, n, buf, size) : 0;
}

void output(const char *s)
{
    State &st_ = st();
    if (st_.sink) {
        st_.sink(s);
    } else if (log_enabled(KEEL_LOG_PLUGIN)) {
        log_write(s);
    }
}

[[noreturn]] void fail(const std::string &path, const std::string &why)
{
    unload_all();
    throw Error("Could not load plugin " + path + ": " + why);
}

std::string dl_error()
{
    const char *e = dlerror();
    return e ? e : "unknown error";
}

// qemu_info_t, laid out as the header declares it.
struct Info {
    const char *target_name;
    struct {
        int min, cur;
    } version;
    bool system_emulation;
    struct {
        int smp_vcpus, max_vcpus;
    } system;
};

void load_one(const PluginSpec &spec)
{
    State &s = st();
    auto p = std::make_unique<Plugin>();
    p->path = spec.path;
    dlerror();
    p->handle = dlopen(spec.path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!p->handle) fail(spec.path, dl_error());
    p->ranges = mapped_ranges(p->handle);
    Plugin *raw = p.get();
    s.plugins.push_back(std::move(p));
    raw->id = s.plugins.size();
    dlerror();
    void *install = dlsym(raw->handle, "qemu_plugin_install");
    if (!install) fail(spec.path, "'qemu_plugin_install': " + dl_error());
    dlerror();
    auto *version = static_cast<int *>(dlsym(raw->handle, "qemu_plugin_version"));
    if (!version) fail(spec.path, "plugin does not declare API version 'qemu_plugin_version': " + dl_error());
    raw->version = *version;
    if (raw->version < kApiMin)
        fail(spec.path, "plugin requires API version " + std::to_string(raw->version) +
                            ", but this keel supports only a minimum version of " + std::to_string(kApiMin));
    if (raw->version > kApiMax)
        fail(spec.path, "plugin requires API version " + std::to_string(raw->version) +
                            ", but this keel supports only up to version " + std::to_string(kApiMax));
    raw->args = spec.args;
    for (std::string &a : raw->args)
        raw->argv.push_back(a.data());
    raw->argv.push_back(nullptr);
    Info info{"riscv64", {kApiMin, kApiMax}, true, {s.info.smp_vcpus, s.info.max_vcpus}};
    int rc;
    {
        Scope sc(raw, -1);
        rc = reinterpret_cast<int (*)(uint64_t, const Info *, int, char **)>(install)(
            raw->id, &info, static_cast<int>(raw->args.size()), raw->argv.data());
    }
    if (rc != 0) fail(spec.path, "qemu_plugin_install returned error code " + std::to_string(rc));
}

} // namespace

// --- the kernel's side ------------------------------------------------------------------------------------

PluginSpec parse_spec(const std::string &value)
{
    PluginSpec spec;
    size_t pos = 0;
    bool first = true;
    while (pos <= value.size()) {
        size_t comma = value.find(',', pos);
        std::string item = value.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        pos = comma == std::string::npos ? value.size() + 1 : comma + 1;
        size_t eq = item.find('=');
        if (first && eq == std::string::npos) {
            spec.path = item;
        } else if (eq != std::string::npos && item.compare(0, eq, "file") == 0) {
            if (spec.path.empty()) spec.path = item.substr(eq + 1);
        } else if (eq != std::string::npos && item.compare(0, eq, "arg") == 0) {
            // QEMU 7.2's deprecated form: arg=NAME passes NAME=on.
            std::fprintf(stderr,
                         "keel: -plugin %s: warning: using 'arg=%s' is deprecated\nPlease use '%s=on' "
                         "directly\n",
                         value.c_str(), item.c_str() + eq + 1, item.c_str() + eq + 1);
            spec.args.push_back(item.substr(eq + 1) + "=on");
        } else if (eq == std::string::npos || eq == 0) {
            throw Error("-plugin " + value + ": '" + item + "' is not NAME=VALUE");
        } else {
            spec.args.push_back(item);
        }
        first = false;
    }
    if (spec.path.empty()) throw Error("-plugin " + value + ": missing the plugin file (file=PATH)");
    return spec;
}

void load(const std::vector<PluginSpec> &specs, const MachineInfo &info)
{
    State &s = st();
    s.info = info;
    if (s.info.smp_vcpus < 1) s.info.smp_vcpus = 1;
    if (s.info.max_vcpus < s.info.smp_vcpus) s.info.max_vcpus = s.info.smp_vcpus;
    s.exited = false;
    s.mem_values.assign(static_cast<size_t>(s.info.max_vcpus) * kMemValueStride, 0); // never resized after
    for (const PluginSpec &spec : specs)
        load_one(spec);
}

bool active()
{
    return !st().plugins.empty();
}

void at_exit()
{
    State &s = st();
    if (!s.exited) {
        s.exited = true;
        for (auto &p : s.plugins) {
            if (p->uninstalled || !p->atexit.fn) continue;
            Scope sc(p.get(), -1);
            if (p->version >= 7) {
                reinterpret_cast<void (*)(void *)>(p->atexit.fn)(p->atexit.ud);
            } else {
                reinterpret_cast<void (*)(uint64_t, void *)>(p->atexit.fn)(p->id, p->atexit.ud);
            }
        }
    }
    unload_all();
}

void unload_all()
{
    State &s = st();
    for (auto &p : s.plugins)
        if (p->handle) dlclose(p->handle);
    s.plugins.clear();
    s.rec_index.clear();
    s.recs.clear();
    for (Scoreboard *sb : s.scoreboards) {
        std::free(sb->data);
        delete sb;
    }
    s.scoreboards.clear();
    s.vcpus.clear();
    s.device_names.clear();
    s.direct_index.clear();
    s.direct.clear();
    s.direct_names.clear();
    s.pending.clear();
    if (s.time_control) keel::kernel().vclock().release_control(false);
    s.time_control = false;
}

void set_symbols(const std::map<std::string, uint64_t> &by_name)
{
    State &s = st();
    s.symbols.clear();
    for (const auto &[name, addr] : by_name)
        if (!name.empty() && name[0] != '$') // not the ELF mapping symbols ($x, $d, $xrv64i2p1_...)
            s.symbols.emplace(addr, name);   // the first name (alphabetically) at an address wins
}

void set_output(std::function<void(const char *)> sink)
{
    st().sink = std::move(sink);
}

void vcpu_init(const KeelCpuHandle &cpu, unsigned index)
{
    State &s = st();
    if (s.vcpus.size() <= index) s.vcpus.resize(index + 1);
    s.vcpus[index] = Vcpu{cpu.obj, cpu.env, cpu.ops, true, true};
    for (auto &p : s.plugins)
        call_vcpu_cb(p.get(), p->init, index);
}

void vcpu_exit(unsigned index)
{
    State &s = st();
    if (index >= s.vcpus.size() || !s.vcpus[index].live) return;
    for (auto &p : s.plugins)
        call_vcpu_cb(p.get(), p->exit, index);
    s.vcpus[index].live = false;
}

void vcpu_idle(unsigned index)
{
    for (auto &p : st().plugins)
        call_vcpu_cb(p.get(), p->idle, index);
}

void vcpu_resume(unsigned index)
{
    for (auto &p : st().plugins)
        call_vcpu_cb(p.get(), p->resume, index);
}

void discon(unsigned index, int type, uint64_t from_pc, uint64_t to_pc)
{
    for (auto &p : st().plugins) {
        if (!p->discon.fn || p->uninstalled || !(p->discon_mask & type)) continue;
        Scope sc(p.get(), static_cast<int>(index));
        if (p->version >= 7) {
            reinterpret_cast<void (*)(unsigned, int, uint64_t, uint64_t, void *)>(p->discon.fn)(
                index, type, from_pc, to_pc, p->discon.ud);
        } else {
            reinterpret_cast<void (*)(uint64_t, unsigned, int, uint64_t, uint64_t)>(p->discon.fn)(
                p->id, index, type, from_pc, to_pc);
        }
    }
}

void attach(const KeelPluginHooks *hooks)
{
    State &s = st();
    s.hooks = hooks;
    if (!hooks) run_pending(); // the engine stopped: the code waiting to be dropped never runs again
}

void vcpu_run(unsigned index)
{
    t_vcpu = static_cast<int>(index);
}

void flushed()
{
    State &s = st();
    for (auto &p : s.plugins)
        if (!p->uninstalled) call_simple_cb(p.get(), p->flush.fn, p->flush.ud);
    run_pending();
}

bool redirect(unsigned index, uint64_t *pc)
{
    if (!t_redirected || t_redirect_vcpu != index) return false;
    t_redirected = false;
    *pc = t_redirect_pc;
    return true;
}

void instrument(unsigned index, KeelIrBuilder *b, const KeelIrBuilderOps *o)
{
    State &s = st();
    if (s.plugins.empty()) return;
    unsigned n = o->num_insns(b);
    if (n == 0) return;
    PTb tb;
    tb.vcpu = index;
    tb.insns.reserve(n);
    for (unsigned i = 0; i < n; ++i) {
        PInsn in{&tb, 0, 0, 0, 0, {}, {}};
        o->insn_info(b, i, &in.pc, &in.len, &in.raw, &in.n_mem);
        tb.insns.push_back(std::move(in));
    }
    bool any = false;
    for (auto &p : s.plugins) {
        if (!p->tb_trans.fn || p->uninstalled) continue;
        any = true;
        Scope sc(p.get(), static_cast<int>(index));
        if (p->version >= 7) {
            reinterpret_cast<void (*)(PTb *, void *)>(p->tb_trans.fn)(&tb, p->tb_trans.ud);
        } else {
            reinterpret_cast<void (*)(uint64_t, PTb *)>(p->tb_trans.fn)(p->id, &tb);
        }
    }
    if (any) emit(tb, b, o);
}

} // namespace keel::plugins

// --- the qemu_plugin_* entries ----------------------------------------------------------------------------
// Plain QEMU names, one definition each, with the widest signature over the versions; the parameters and
// results that differ follow the calling plugin's declared version (docs/drafts/qemu-plugin-abi.md).

using namespace keel::plugins;
using keel::plugins::Plugin;

#define API extern "C" __attribute__((visibility("default"), used))
#define RA __builtin_return_address(0)

// Lifecycle.
// Both run @cb once the engines dropped the code instrumented so far (at once if nothing runs).
API void qemu_plugin_uninstall(uint64_t id, void *cb, void *ud)
{
    Plugin *p = by_id(id);
    if (!p || p->uninstalled) return;
    reset_plugin(p, cb, ud, true);
}

API void qemu_plugin_reset(uint64_t id, void *cb, void *ud)
{
    Plugin *p = by_id(id);
    if (!p || p->uninstalled) return;
    reset_plugin(p, cb, ud, false);
}

static void set_cb(uint64_t id, Cb Plugin::*field, void *cb, void *ud)
{
    Plugin *p = by_id(id);
    if (!p) return;
    p->*field = Cb{cb, p->version >= 7 ? ud : nullptr};
}

API void qemu_plugin_register_vcpu_init_cb(uint64_t id, void *cb, void *ud)
{
    set_cb(id, &Plugin::init, cb, ud);
}
API void qemu_plugin_register_vcpu_exit_cb(uint64_t id, void *cb, void *ud)
{
    set_cb(id, &Plugin::exit, cb, ud);
}
API void qemu_plugin_register_vcpu_idle_cb(uint64_t id, void *cb, void *ud)
{
    set_cb(id, &Plugin::idle, cb, ud);
}
API void qemu_plugin_register_vcpu_resume_cb(uint64_t id, void *cb, void *ud)
{
    set_cb(id, &Plugin::resume, cb, ud);
}
API void qemu_plugin_register_vcpu_tb_trans_cb(uint64_t id, void *cb, void *ud)
{
    set_cb(id, &Plugin::tb_trans, cb, ud);
}
API void qemu_plugin_register_flush_cb(uint64_t id, void *cb, void *ud)
{
    set_cb(id, &Plugin::flush, cb, ud);
}
API void qemu_plugin_register_atexit_cb(uint64_t id, void *cb, void *ud)
{
    Plugin *p = by_id(id);
    if (p) p->atexit = Cb{cb, ud}; // every version passes userdata
}
API void qemu_plugin_register_vcpu_discon_cb(uint64_t id, int type, void *cb, void *ud)
{
    Plugin *p = by_id(id);
    if (!p) return;
    p->discon = Cb{cb, p->version >= 7 ? ud : nullptr};
    p->discon_mask = type;
}
API void qemu_plugin_vcpu_for_each(uint64_t id, void *cb, void *ud)
{
    Plugin *p = by_id(id);
    if (!p || !cb) return;
    Cb c{cb, p->version >= 7 ? ud : nullptr};
    auto &vcpus = st().vcpus;
    for (unsigned i = 0; i < vcpus.size(); ++i)
        if (vcpus[i].started) call_vcpu_cb(p, c, i);
}
// System calls: user-mode emulation only, never called in keel.
API void qemu_plugin_register_vcpu_syscall_cb(uint64_t, void *, void *) {}
API void qemu_plugin_register_vcpu_syscall_ret_cb(uint64_t, void *, void *) {}
API void qemu_plugin_register_vcpu_syscall_filter_cb(uint64_t, void *, void *) {}

API int qemu_plugin_n_vcpus(void)
{
    return st().info.smp_vcpus;
}
API int qemu_plugin_n_max_vcpus(void)
{
    return st().info.max_vcpus;
}
API int qemu_plugin_num_vcpus(void)
{
    int n = 0;
    auto &vcpus = st().vcpus;
    for (unsigned i = 0; i < vcpus.size(); ++i)
        if (vcpus[i].started) n = static_cast<int>(i) + 1;
    return n;
}

// Translation.
API size_t qemu_plugin_tb_n_insns(const PTb *tb)
{
    return tb ? tb->insns.size() : 0;
}
API uint64_t qemu_plugin_tb_vaddr(const PTb *tb)
{
    return tb && !tb->insns.empty() ? tb->insns[0].pc : 0;
}
API PInsn *qemu_plugin_tb_get_insn(const PTb *tb, size_t idx)
{
    return tb && idx < tb->insns.size() ? const_cast<PInsn *>(&tb->insns[idx]) : nullptr;
}
// v1-v2: a pointer to the bytes; v3+: copies up to @len bytes to @dest and returns the count.
API uintptr_t qemu_plugin_insn_data(const PInsn *insn, void *dest, size_t len)
{
    if (!insn) return 0;
    if (caller_version(RA) <= 2) return reinterpret_cast<uintptr_t>(&insn->raw); // little-endian host
    size_t n = std::min<size_t>(len, insn->len);
    if (dest) std::memcpy(dest, &insn->raw, n);
    return n;
}
API size_t qemu_plugin_insn_size(const PInsn *insn)
{
    return insn ? insn->len : 0;
}
API uint64_t qemu_plugin_insn_vaddr(const PInsn *insn)
{
    return insn ? insn->pc : 0;
}
API void *qemu_plugin_insn_haddr(const PInsn *insn)
{
    if (!insn) return nullptr;
    uint64_t paddr = insn->pc;
    if (Vcpu *c = cur_vcpu()) keel::plugins::translate_vaddr(*c, insn->pc, KEEL_ACCESS_EXEC, -1, paddr);
    return reinterpret_cast<void *>(static_cast<uintptr_t>(paddr));
}
API char *qemu_plugin_insn_disas(const PInsn *insn)
{
    if (!insn) return nullptr;
    Vcpu *c = cur_vcpu();
    char buf[128];
    if (c && c->ops && c->ops->disas) {
        uint8_t bytes[4];
        std::memcpy(bytes, &insn->raw, 4);
        if (c->ops->disas(c->env, insn->pc, bytes, insn->len, buf, sizeof buf) > 0) return g_strdup(buf);
    }
    return insn->len == 2 ? g_strdup_printf(".insn 0x%04x", insn->raw & 0xffff)
                          : g_strdup_printf(".insn 0x%08x", insn->raw);
}
API const char *qemu_plugin_insn_symbol(const PInsn *insn)
{
    if (!insn) return nullptr;
    auto &syms = st().symbols;
    auto it = syms.find(insn->pc);
    return it == syms.end() ? nullptr : it->second.c_str();
}

static void add_reg(PInsn *insn, Reg r)
{
    if (insn) insn->exec.push_back(r);
}

API void qemu_plugin_register_vcpu_tb_exec_cb(PTb *tb, void *cb, int flags, void *ud)
{
    if (tb && cb && t_plugin)
        tb->exec.push_back(Reg{RegKind::Cb, t_plugin, cb, ud, flags, 0, nullptr, 0, 0, 3});
}
API void qemu_plugin_register_vcpu_tb_exec_cond_cb(PTb *tb, void *cb, int flags, int cond, U64 entry,
                                                   uint64_t imm, void *ud)
{
    if (!tb || !cb || !t_plugin || cond == 0) return;
    uint64_t *ptr = slot(entry, tb->vcpu);
    if (cond != 1 && !ptr) return;
    tb->exec.push_back(Reg{RegKind::CondCb, t_plugin, cb, ud, flags, cond, ptr, imm, 0, 3});
}
API void qemu_plugin_register_vcpu_tb_exec_inline(PTb *tb, int op, uint64_t *ptr, uint64_t imm)
{
    if (tb && ptr)
        tb->exec.push_back(Reg{RegKind::Inline, t_plugin, nullptr, nullptr, 0, 0, ptr, imm, op, 3});
}
API void qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(PTb *tb, int op, U64 entry, uint64_t imm)
{
    uint64_t *ptr = tb ? slot(entry, tb->vcpu) : nullptr;
    if (ptr) tb->exec.push_back(Reg{RegKind::Inline, t_plugin, nullptr, nullptr, 0, 0, ptr, imm, op, 3});
}
API void qemu_plugin_register_vcpu_insn_exec_cb(PInsn *insn, void *cb, int flags, void *ud)
{
    if (cb && t_plugin) add_reg(insn, Reg{RegKind::Cb, t_plugin, cb, ud, flags, 0, nullptr, 0, 0, 3});
}
API void qemu_plugin_register_vcpu_insn_exec_cond_cb(PInsn *insn, void *cb, int flags, int cond, U64 entry,
                                                     uint64_t imm, void *ud)
{
    if (!insn || !cb || !t_plugin || cond == 0) return;
    uint64_t *ptr = slot(entry, insn->tb->vcpu);
    if (cond != 1 && !ptr) return;
    add_reg(insn, Reg{RegKind::CondCb, t_plugin, cb, ud, flags, cond, ptr, imm, 0, 3});
}
API void qemu_plugin_register_vcpu_insn_exec_inline(PInsn *insn, int op, uint64_t *ptr, uint64_t imm)
{
    if (ptr) add_reg(insn, Reg{RegKind::Inline, t_plugin, nullptr, nullptr, 0, 0, ptr, imm, op, 3});
}
API void qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(PInsn *insn, int op, U64 entry, uint64_t imm)
{
    uint64_t *ptr = insn ? slot(entry, insn->tb->vcpu) : nullptr;
    if (ptr) add_reg(insn, Reg{RegKind::Inline, t_plugin, nullptr, nullptr, 0, 0, ptr, imm, op, 3});
}
API void qemu_plugin_register_vcpu_mem_cb(PInsn *insn, void *cb, int flags, int rw, void *ud)
{
    if (insn && cb && t_plugin)
        insn->mem.push_back(Reg{RegKind::Cb, t_plugin, cb, ud, flags, 0, nullptr, 0, 0, rw});
}
API void qemu_plugin_register_vcpu_mem_inline(PInsn *insn, int rw, int op, uint64_t *ptr, uint64_t imm)
{
    if (insn && ptr)
        insn->mem.push_back(Reg{RegKind::Inline, t_plugin, nullptr, nullptr, 0, 0, ptr, imm, op, rw});
}
API void qemu_plugin_register_vcpu_mem_inline_per_vcpu(PInsn *insn, int rw, int op, U64 entry, uint64_t imm)
{
    uint64_t *ptr = insn ? slot(entry, insn->tb->vcpu) : nullptr;
    if (ptr) insn->mem.push_back(Reg{RegKind::Inline, t_plugin, nullptr, nullptr, 0, 0, ptr, imm, op, rw});
}

// Memory accesses.
API unsigned qemu_plugin_mem_size_shift(uint32_t info)
{
    return info & 3u;
}
API bool qemu_plugin_mem_is_sign_extended(uint32_t info)
{
    return (info & 4u) != 0;
}
API bool qemu_plugin_mem_is_big_endian(uint32_t)
{
    return false;
}
API bool qemu_plugin_mem_is_store(uint32_t info)
{
    return (info & 8u) != 0;
}
struct MemValue {
    int type;
    uint64_t low, high;
};
API MemValue qemu_plugin_mem_get_value(uint32_t info)
{
    unsigned shift = info & 3u;
    // A trampoline's context, else the slot a directly called callback's access left its value in.
    const uint64_t *slot = t_vcpu >= 0 ? mem_value_slot(static_cast<unsigned>(t_vcpu)) : nullptr;
    uint64_t v = t_mem ? t_mem->value : slot ? *slot : 0;
    if (shift < 3) v &= (uint64_t(1) << (8u << shift)) - 1;
    return MemValue{static_cast<int>(shift), v, 0};
}
API Hwaddr *qemu_plugin_get_hwaddr(uint32_t info, uint64_t vaddr)
{
    Hwaddr &h = t_hwaddr;
    h = Hwaddr{vaddr, false, "RAM"};
    Vcpu *c = cur_vcpu();
    if (!c) return &h;
    uint64_t paddr = vaddr;
    if (keel::plugins::translate_vaddr(*c, vaddr, (info & 8u) ? KEEL_ACCESS_WRITE : KEEL_ACCESS_READ,
                                       static_cast<int>((info >> 4) & 7u), paddr))
        h.paddr = paddr;
    if (keel::AddressSpace *as = memory_of(*c)) {
        const keel::AddressSpace::Section *sec = as->find(h.paddr);
        if (sec && sec->region->kind() == keel::RegionKind::Mmio) {
            h.io = true;
            auto &names = st().device_names;
            auto it = std::find(names.begin(), names.end(), sec->region->name());
            if (it == names.end()) {
                names.push_back(sec->region->name());
                it = names.end() - 1;
            }
            h.name = it->c_str();
        }
    }
    return &h;
}
API bool qemu_plugin_hwaddr_is_io(const Hwaddr *h)
{
    return h && h->io;
}
API uint64_t qemu_plugin_hwaddr_phys_addr(const Hwaddr *h)
{
    return h ? h->paddr : 0;
}
API const char *qemu_plugin_hwaddr_device_name(const Hwaddr *h)
{
    return h ? h->name : nullptr;
}

// Whole-run helpers.
API void qemu_plugin_outs(const char *s)
{
    if (s) output(s);
}
API bool qemu_plugin_bool_parse(const char *name, const char *val, bool *ret)
{
    (void)name;
    if (!val || !ret) return false;
    for (const char *t : {"on", "yes", "true", "y"})
        if (!std::strcmp(val, t)) return *ret = true, true;
    for (const char *f : {"off", "no", "false", "n"})
        if (!std::strcmp(val, f)) return *ret = false, true;
    return false;
}
API const char *qemu_plugin_path_to_binary(void)
{
    return nullptr; // user mode only
}
API uint64_t qemu_plugin_start_code(void)
{
    return 0;
}
API uint64_t qemu_plugin_end_code(void)
{
    return 0;
}
API uint64_t qemu_plugin_entry_code(void)
{
    return 0;
}

// Registers: handles are gdb numbers + 1.
struct RegDesc {
    void *handle;
    const char *name, *feature;
    bool is_readonly; // v6+ only (the element is 24 bytes before)
};
API GArray *qemu_plugin_get_registers(void)
{
    bool v6 = caller_version(RA) >= 6;
    GArray *a = g_array_new(FALSE, FALSE, v6 ? sizeof(RegDesc) : offsetof(RegDesc, is_readonly));
    Vcpu *c = cur_vcpu();
    if (!c || !c->ops || !c->ops->read_reg) return a;
    for (const RegName &r : register_names()) {
        uint8_t buf[16];
        if (c->ops->read_reg(c->env, r.gdb, buf, sizeof buf) == 0) continue;
        RegDesc d{reinterpret_cast<void *>(static_cast<uintptr_t>(r.gdb) + 1), r.name, r.feature,
                  r.gdb == 32};
        g_array_append_vals(a, &d, 1);
    }
    return a;
}
// v2-v5: the size read or -1; v6+: true/false.
API int qemu_plugin_read_register(void *handle, GByteArray *buf)
{
    bool v6 = caller_version(RA) >= 6;
    Vcpu *c = cur_vcpu();
    uint8_t tmp[16];
    unsigned n = 0;
    if (c && handle && buf)
        n = read_reg(*c, static_cast<unsigned>(reinterpret_cast<uintptr_t>(handle) - 1), tmp, sizeof tmp);
    if (n == 0) return v6 ? 0 : -1;
    g_byte_array_append(buf, tmp, n);
    return v6 ? 1 : static_cast<int>(n);
}
// v5: bytes written or 0; v6+: true/false. The pc is read-only (qemu_plugin_set_pc).
API int qemu_plugin_write_register(void *handle, GByteArray *buf)
{
    bool v6 = caller_version(RA) >= 6;
    Vcpu *c = cur_vcpu();
    unsigned gdb = static_cast<unsigned>(reinterpret_cast<uintptr_t>(handle) - 1);
    if (!c || !handle || !buf || gdb == 32 || !c->ops->write_reg) return 0;
    unsigned n = c->ops->write_reg(c->env, gdb, buf->data, buf->len);
    return v6 ? n != 0 : static_cast<int>(n);
}
// Only from an exec callback registered with QEMU_PLUGIN_CB_RW_REGS_PC (h_exec_pc): never returns.
API void qemu_plugin_set_pc(uint64_t vaddr)
{
    if (!t_redirect_jmp) {
        std::fprintf(stderr,
                     "keel: qemu_plugin_set_pc(0x%" PRIx64
                     "): not called from an instruction or block callback "
                     "registered with QEMU_PLUGIN_CB_RW_REGS_PC\n",
                     vaddr);
        std::fflush(stderr);
        std::_Exit(1);
    }
    t_redirect_pc = vaddr;
    std::longjmp(*t_redirect_jmp, 1);
}

// Guest memory.
API bool qemu_plugin_read_memory_vaddr(uint64_t addr, GByteArray *data, size_t len)
{
    if (!data || len == 0) return false;
    std::vector<uint8_t> tmp(len);
    if (!vaddr_access(addr, tmp.data(), len, false)) return false;
    g_byte_array_set_size(data, 0);
    g_byte_array_append(data, tmp.data(), static_cast<guint>(len));
    return true;
}
API bool qemu_plugin_write_memory_vaddr(uint64_t addr, GByteArray *data)
{
    if (!data || data->len == 0) return false;
    return vaddr_access(addr, data->data, data->len, true);
}
static keel::AddressSpace *any_memory()
{
    if (Vcpu *c = cur_vcpu()) return memory_of(*c);
    for (Vcpu &c : st().vcpus)
        if (c.live) return memory_of(c);
    return nullptr;
}
API int qemu_plugin_read_memory_hwaddr(uint64_t addr, GByteArray *data, size_t len)
{
    keel::AddressSpace *as = any_memory();
    if (!data || len == 0) return 1; // ERROR
    if (!as) return 5;               // INVALID_ADDRESS_SPACE
    std::vector<uint8_t> tmp(len);
    KeelMemResult r = as->read_buf(addr, tmp.data(), len);
    if (r != KEEL_MEM_OK) return 4; // INVALID_ADDRESS
    g_byte_array_set_size(data, 0);
    g_byte_array_append(data, tmp.data(), static_cast<guint>(len));
    return 0;
}
API int qemu_plugin_write_memory_hwaddr(uint64_t addr, GByteArray *data)
{
    keel::AddressSpace *as = any_memory();
    if (!data || data->len == 0) return 1;
    if (!as) return 5;
    if (as->write_buf(addr, data->data, data->len) != KEEL_MEM_OK) return 4;
    code_written(addr, data->len);
    return 0;
}
API bool qemu_plugin_translate_vaddr(uint64_t vaddr, uint64_t *hwaddr)
{
    Vcpu *c = cur_vcpu();
    uint64_t p;
    if (!c || !hwaddr || !keel::plugins::translate_vaddr(*c, vaddr, KEEL_ACCESS_READ, -1, p)) return false;
    *hwaddr = p;
    return true;
}

// Time control: the first plugin to ask gets the handle and the guest's virtual clock (CLINT mtime and
// every virtual timer) stops advancing by itself; update_ns moves it forward and fires the timers due.
// Later callers get NULL, as everyone does with -icount (instructions drive the clock there).
static char time_control_handle;
API const void *qemu_plugin_request_time_control(void)
{
    keel::Kernel &k = keel::kernel();
    if (k.vclock().icount_shift() >= 0) {
        std::fprintf(stderr, "keel: qemu_plugin_request_time_control: refused: with -icount the instruction "
                             "count drives the virtual clock, not a plugin\n");
        return nullptr;
    }
    if (!k.vclock().take_control()) return nullptr;
    st().time_control = true;
    return &time_control_handle;
}
API void qemu_plugin_update_ns(const void *handle, int64_t time)
{
    keel::Kernel &k = keel::kernel();
    if (handle != &time_control_handle) return;
    if (k.vclock().advance_to(time)) k.timers().run_expired_virtual();
}

// Scoreboards: one entry per possible vCPU from the start, so entries never move.
API Scoreboard *qemu_plugin_scoreboard_new(size_t element_size)
{
    State &s = st();
    size_t n = static_cast<size_t>(std::max(1, s.info.max_vcpus));
    if (element_size == 0) element_size = 1;
    auto *sb = new Scoreboard{element_size, n, static_cast<uint8_t *>(std::calloc(n, element_size))};
    s.scoreboards.push_back(sb);
    return sb;
}
API void qemu_plugin_scoreboard_free(Scoreboard *sb)
{
    auto &v = st().scoreboards;
    auto it = std::find(v.begin(), v.end(), sb);
    if (it == v.end()) return;
    v.erase(it);
    std::free(sb->data);
    delete sb;
}
API void *qemu_plugin_scoreboard_find(Scoreboard *sb, unsigned vcpu)
{
    return sb && vcpu < sb->n ? sb->data + vcpu * sb->elem : nullptr;
}
API void qemu_plugin_u64_add(U64 e, unsigned vcpu, uint64_t added)
{
    if (uint64_t *p = slot(e, vcpu)) *p += added;
}
API uint64_t qemu_plugin_u64_get(U64 e, unsigned vcpu)
{
    uint64_t *p = slot(e, vcpu);
    return p ? *p : 0;
}
API void qemu_plugin_u64_set(U64 e, unsigned vcpu, uint64_t v)
{
    if (uint64_t *p = slot(e, vcpu)) *p = v;
}
API uint64_t qemu_plugin_u64_sum(U64 e)
{
    uint64_t sum = 0;
    for (unsigned i = 0; e.score && i < e.score->n; ++i)
        sum += *slot(e, i);
    return sum;
}
