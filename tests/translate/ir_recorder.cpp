// SPDX-License-Identifier: MIT
// The recording IR builder of the translator tests: emission callbacks, checks, printer and a small
// interpreter.
#include "ir_recorder.h"
#include "../support/ir_reference.h"

#include <bit>
#include <cstdio>
#include <cstring>

namespace irrec
{

namespace
{

Recorder *R(KeelIrBuilder *b)
{
    return reinterpret_cast<Recorder *>(b);
}

const char *const kAluNames[] = {
#define X(name, n) #name,
    KEEL_IR_ALU_OPS(X)
#undef X
};
const unsigned kAluArity[] = {
#define X(name, n) n,
    KEEL_IR_ALU_OPS(X)
#undef X
};
const char *const kCondNames[] = {"eq", "ne", "lt", "ge", "le", "gt", "ltu", "geu", "leu", "gtu"};

std::string lower(const char *s)
{
    std::string r(s);
    for (char &c : r)
        c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return r;
}

std::string hex(uint64_t v)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

void err(Recorder *r, const std::string &m)
{
    r->errors.push_back("op " + std::to_string(r->ops_list.size()) + ": " + m);
}

bool valid(Recorder *r, KeelIrValue v)
{
    return v != 0 && v < r->values.size();
}

KeelIrType type_of(Recorder *r, KeelIrValue v)
{
    return valid(r, v) ? r->values[v].type : KEEL_IR_PTR;
}

// A value an operation may write: a temp or a global other than x0.
void check_dst(Recorder *r, KeelIrValue d)
{
    if (!valid(r, d)) return err(r, "invalid destination");
    const Value &v = r->values[d];
    if (v.kind == VKind::Const || v.kind == VKind::Env) err(r, "destination is a constant or env");
    if (v.kind == VKind::Global && v.payload == 0) err(r, "write to x0");
}

void check_src(Recorder *r, KeelIrValue s)
{
    if (!valid(r, s)) err(r, "invalid source");
}

IrOp make_op(OpKind k, unsigned sub = 0, std::initializer_list<KeelIrValue> vs = {})
{
    IrOp o;
    o.kind = k;
    o.sub = sub;
    unsigned i = 0;
    for (KeelIrValue v : vs)
        o.v[i++] = v;
    return o;
}

void push(Recorder *r, IrOp op)
{
    if (r->ops_list.empty() && op.kind != OpKind::InsnStart) err(r, "first op is not insn_start");
    r->ops_list.push_back(std::move(op));
}

KeelIrValue new_value(Recorder *r, VKind k, KeelIrType t, uint64_t payload)
{
    r->values.push_back(Value{k, t, payload});
    return static_cast<KeelIrValue>(r->values.size() - 1);
}

// ---- KeelIrBuilderOps ----
KeelIrValue b_temp(KeelIrBuilder *b, KeelIrType t)
{
    return new_value(R(b), VKind::Temp, t, R(b)->n_temps++);
}
KeelIrValue b_const(KeelIrBuilder *b, KeelIrType t, uint64_t v)
{
    if (t == KEEL_IR_I32) v &= 0xffffffffu;
    return new_value(R(b), VKind::Const, t, v);
}
KeelIrValue b_const_ptr(KeelIrBuilder *b, const void *p)
{
    return new_value(R(b), VKind::Const, KEEL_IR_PTR, reinterpret_cast<uintptr_t>(p));
}
KeelIrValue b_global(KeelIrBuilder *b, unsigned i)
{
    Recorder *r = R(b);
    if (i >= r->n_globals) {
        err(r, "global index out of range");
        return 0;
    }
    return new_value(r, VKind::Global, r->globals[i].type, i);
}
KeelIrValue b_env(KeelIrBuilder *b)
{
    return new_value(R(b), VKind::Env, KEEL_IR_PTR, 0);
}

void b_alu(KeelIrBuilder *b, KeelIrAluOp op, KeelIrValue d, KeelIrValue a, KeelIrValue c)
{
    Recorder *r = R(b);
    if (op >= KEEL_IR_ALU_COUNT) return err(r, "bad alu op");
    check_dst(r, d);
    check_src(r, a);
    if (kAluArity[op] == 2)
        check_src(r, c);
    else if (c != 0)
        err(r, std::string("unary ") + kAluNames[op] + " with a second input");
    const KeelIrType td = type_of(r, d), ta = type_of(r, a);
    switch (op) {
    case KEEL_IR_EXTS_I32_I64:
    case KEEL_IR_EXTU_I32_I64:
        if (td != KEEL_IR_I64 || ta != KEEL_IR_I32) err(r, "extension types");
        break;
    case KEEL_IR_TRUNC_I64_I32:
        if (td != KEEL_IR_I32 || ta != KEEL_IR_I64) err(r, "trunc types");
        break;
    case KEEL_IR_BITCAST:
        break;
    case KEEL_IR_EXT32S:
    case KEEL_IR_EXT32U:
        if (td != KEEL_IR_I64 || ta != KEEL_IR_I64) err(r, "ext32 on non-I64");
        break;
    default:
        if (td != ta || (kAluArity[op] == 2 && type_of(r, c) != td))
            err(r, std::string("type mismatch in ") + kAluNames[op]);
        if (td != KEEL_IR_I32 && td != KEEL_IR_I64) err(r, "alu on non-integer");
    }
    IrOp o = make_op(OpKind::Alu, op, {d, a, c});
    push(r, o);
}

void b_setcond(KeelIrBuilder *b, KeelIrCond cond, KeelIrValue d, KeelIrValue a, KeelIrValue c)
{
    Recorder *r = R(b);
    check_dst(r, d);
    check_src(r, a);
    check_src(r, c);
    if (type_of(r, a) != type_of(r, c)) err(r, "setcond operand types");
    push(r, make_op(OpKind::Setcond, cond, {d, a, c}));
}

void b_movcond(KeelIrBuilder *b, KeelIrCond cond, KeelIrValue d, KeelIrValue a, KeelIrValue c, KeelIrValue vt,
               KeelIrValue vf)
{
    Recorder *r = R(b);
    check_dst(r, d);
    for (KeelIrValue s : {a, c, vt, vf})
        check_src(r, s);
    if (type_of(r, a) != type_of(r, c)) err(r, "movcond compare types");
    if (type_of(r, d) != type_of(r, vt) || type_of(r, d) != type_of(r, vf)) err(r, "movcond value types");
    push(r, make_op(OpKind::Movcond, cond, {d, a, c, vt, vf}));
}

void b_load(KeelIrBuilder *b, KeelIrValue d, KeelIrValue addr, KeelIrMemOp mop, unsigned mmu)
{
    Recorder *r = R(b);
    check_dst(r, d);
    check_src(r, addr);
    if (type_of(r, addr) != KEEL_IR_I64) err(r, "load address is not I64");
    if ((mop & KEEL_MO_SIZE_MASK) == KEEL_MO_64 && type_of(r, d) != KEEL_IR_I64 &&
        type_of(r, d) != KEEL_IR_F64)
        err(r, "64-bit load into a narrow value");
    IrOp o = make_op(OpKind::Load, 0, {d, addr});
    o.mop = mop, o.mmu = mmu;
    push(r, o);
}

void b_store(KeelIrBuilder *b, KeelIrValue val, KeelIrValue addr, KeelIrMemOp mop, unsigned mmu)
{
    Recorder *r = R(b);
    check_src(r, val);
    check_src(r, addr);
    if (type_of(r, addr) != KEEL_IR_I64) err(r, "store address is not I64");
    IrOp o = make_op(OpKind::Store, 0, {val, addr});
    o.mop = mop, o.mmu = mmu;
    push(r, o);
}

void b_host(KeelIrBuilder *b, KeelIrValue, KeelIrValue, int64_t, KeelIrMemOp)
{
    err(R(b), "the translator does not use host memory ops");
}

KeelIrLabel b_label(KeelIrBuilder *b)
{
    R(b)->label_pos.push_back(-1);
    return static_cast<KeelIrLabel>(R(b)->label_pos.size() - 1);
}
void b_set_label(KeelIrBuilder *b, KeelIrLabel l)
{
    Recorder *r = R(b);
    if (l >= r->label_pos.size()) return err(r, "unknown label");
    if (r->label_pos[l] >= 0) return err(r, "label set twice");
    r->label_pos[l] = static_cast<int>(r->ops_list.size());
    push(r, make_op(OpKind::Label, l));
}
void b_br(KeelIrBuilder *b, KeelIrLabel l)
{
    if (l >= R(b)->label_pos.size()) err(R(b), "unknown label");
    push(R(b), make_op(OpKind::Br, l));
}
void b_brcond(KeelIrBuilder *b, KeelIrCond cond, KeelIrValue a, KeelIrValue c, KeelIrLabel l)
{
    Recorder *r = R(b);
    check_src(r, a);
    check_src(r, c);
    if (type_of(r, a) != type_of(r, c)) err(r, "brcond operand types");
    if (l >= r->label_pos.size()) err(r, "unknown label");
    IrOp o = make_op(OpKind::Brcond, cond, {a, c});
    o.raw = l;
    push(r, o);
}

void b_call(KeelIrBuilder *b, const KeelIrHelper *h, KeelIrValue dst, const KeelIrValue *args, unsigned nargs)
{
    Recorder *r = R(b);
    if (!h || !h->fn || !h->name) return err(r, "bad helper");
    if (nargs != h->nargs) err(r, std::string(h->name) + ": argument count");
    for (unsigned i = 0; i < nargs && i < h->nargs; i++) {
        check_src(r, args[i]);
        if (type_of(r, args[i]) != h->args[i])
            err(r, std::string(h->name) + ": argument type " + std::to_string(i));
    }
    if (h->has_ret) {
        check_dst(r, dst);
        if (type_of(r, dst) != h->ret) err(r, std::string(h->name) + ": result type");
    } else if (dst != 0) {
        err(r, std::string(h->name) + ": result of a void helper");
    }
    IrOp o = make_op(OpKind::Call, 0, {dst});
    o.helper = h;
    o.args.assign(args, args + nargs);
    push(r, o);
}

void b_insn_start(KeelIrBuilder *b, uint64_t pc, unsigned len, uint32_t raw)
{
    IrOp o = make_op(OpKind::InsnStart);
    o.pc = pc, o.len = len, o.raw = raw;
    R(b)->ops_list.push_back(o);
}
void b_goto_tb(KeelIrBuilder *b, unsigned slot)
{
    if (slot > 1) err(R(b), "goto_tb slot");
    push(R(b), make_op(OpKind::GotoTb, slot));
}
void b_lookup(KeelIrBuilder *b)
{
    push(R(b), make_op(OpKind::Lookup));
}
void b_exit(KeelIrBuilder *b)
{
    push(R(b), make_op(OpKind::ExitTb));
}

int b_fetch(KeelIrBuilder *b, uint64_t pc, unsigned len, uint32_t *bits)
{
    Recorder *r = R(b);
    uint32_t v = 0;
    for (unsigned i = 0; i < len; i++) {
        auto it = r->code.find(pc + i);
        if (it == r->code.end()) return KEEL_ERR;
        v |= uint32_t{it->second} << (8 * i);
    }
    *bits = v;
    return KEEL_OK;
}

bool is_exit(OpKind k)
{
    return k == OpKind::GotoTb || k == OpKind::Lookup || k == OpKind::ExitTb || k == OpKind::Br;
}

} // namespace

using keel::irref::alu_eval;
using keel::irref::cond_eval;
using keel::irref::mask_of;
using keel::irref::sx;

Recorder::Recorder(const KeelIrGlobal *g, unsigned n) : globals(g), n_globals(n)
{
    ops.size = sizeof ops;
    ops.temp = b_temp;
    ops.const_int = b_const;
    ops.const_ptr = b_const_ptr;
    ops.global = b_global;
    ops.env = b_env;
    ops.alu = b_alu;
    ops.setcond = b_setcond;
    ops.movcond = b_movcond;
    ops.load = b_load;
    ops.store = b_store;
    ops.load_host = b_host;
    ops.store_host = b_host;
    ops.label = b_label;
    ops.set_label = b_set_label;
    ops.br = b_br;
    ops.brcond = b_brcond;
    ops.call = b_call;
    ops.insn_start = b_insn_start;
    ops.goto_tb = b_goto_tb;
    ops.lookup_and_goto = b_lookup;
    ops.exit_tb = b_exit;
    ops.fetch = b_fetch;
}

void Recorder::put32(uint64_t pc, uint32_t w)
{
    for (unsigned i = 0; i < 4; i++)
        code[pc + i] = static_cast<uint8_t>(w >> (8 * i));
}

void Recorder::put16(uint64_t pc, uint16_t p)
{
    code[pc] = static_cast<uint8_t>(p);
    code[pc + 1] = static_cast<uint8_t>(p >> 8);
}

std::string Recorder::value_text(KeelIrValue v) const
{
    if (v == 0 || v >= values.size()) return "?";
    const Value &x = values[v];
    switch (x.kind) {
    case VKind::Temp:
        return (x.type == KEEL_IR_I32 ? "w" : "t") + std::to_string(x.payload);
    case VKind::Const:
        return "$" + hex(x.payload) + (x.type == KEEL_IR_I32 ? ":32" : "");
    case VKind::Global:
        return globals[x.payload].name;
    default:
        return "env";
    }
}

std::string Recorder::text(bool with_starts) const
{
    std::string s;
    auto vals = [&](std::initializer_list<KeelIrValue> vs) {
        std::string r;
        for (KeelIrValue v : vs)
            r += (r.empty() ? " " : ", ") + value_text(v);
        return r;
    };
    for (const IrOp &o : ops_list) {
        switch (o.kind) {
        case OpKind::InsnStart:
            if (with_starts) s += "---- " + hex(o.pc) + " " + std::to_string(o.len) + " " + hex(o.raw) + "\n";
            continue;
        case OpKind::Alu:
            s += lower(kAluNames[o.sub]) +
                 (kAluArity[o.sub] == 2 ? vals({o.v[0], o.v[1], o.v[2]}) : vals({o.v[0], o.v[1]}));
            break;
        case OpKind::Setcond:
            s += std::string("setcond_") + kCondNames[o.sub] + vals({o.v[0], o.v[1], o.v[2]});
            break;
        case OpKind::Movcond:
            s += std::string("movcond_") + kCondNames[o.sub] + vals({o.v[0], o.v[1], o.v[2], o.v[3], o.v[4]});
            break;
        case OpKind::Load:
        case OpKind::Store: {
            std::string mo = std::to_string(8u << (o.mop & KEEL_MO_SIZE_MASK));
            if (o.mop & KEEL_MO_SIGN) mo += "s";
            if (o.mop & KEEL_MO_ALIGN) mo += "a";
            if (o.mop & KEEL_MO_RMW) mo += "r";
            s += (o.kind == OpKind::Load ? "ld" : "st") + vals({o.v[0], o.v[1]}) + ", mo=" + mo +
                 ", mmu=" + std::to_string(o.mmu);
            break;
        }
        case OpKind::Label:
            s += "L" + std::to_string(o.sub) + ":";
            break;
        case OpKind::Br:
            s += "br L" + std::to_string(o.sub);
            break;
        case OpKind::Brcond:
            s += std::string("brcond_") + kCondNames[o.sub] + vals({o.v[0], o.v[1]}) + ", L" +
                 std::to_string(o.raw);
            break;
        case OpKind::Call: {
            s += std::string("call ") + o.helper->name;
            if (o.v[0]) s += " -> " + value_text(o.v[0]);
            std::string a;
            for (KeelIrValue v : o.args)
                a += (a.empty() ? "" : ", ") + value_text(v);
            s += " (" + a + ")";
            break;
        }
        case OpKind::GotoTb:
            s += "goto_tb " + std::to_string(o.sub);
            break;
        case OpKind::Lookup:
            s += "lookup_and_goto";
            break;
        case OpKind::ExitTb:
            s += "exit_tb";
            break;
        }
        s += "\n";
    }
    return s;
}

size_t Recorder::n_ops() const
{
    size_t n = 0;
    for (const IrOp &o : ops_list)
        n += o.kind != OpKind::InsnStart;
    return n;
}

void Recorder::check_structure()
{
    for (size_t l = 0; l < label_pos.size(); l++)
        if (label_pos[l] < 0) errors.push_back("label L" + std::to_string(l) + " never set");
    // Straight-line reachability: after an unconditional exit, only a label
    // makes code reachable again; the last op must be an exit.
    bool reachable = true;
    for (size_t i = 0; i < ops_list.size(); i++) {
        const IrOp &o = ops_list[i];
        if (o.kind == OpKind::Label) reachable = true;
        if (!reachable && o.kind != OpKind::InsnStart)
            errors.push_back("op " + std::to_string(i) + " is unreachable");
        if (is_exit(o.kind)) reachable = false;
    }
    if (reachable) errors.push_back("the block falls off its end");
}

uint64_t Recorder::read_mem(uint64_t addr, unsigned size) const
{
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= uint64_t{mem.at(addr + i)} << (8 * i);
    return v;
}

void Recorder::write_mem(uint64_t addr, uint64_t v, unsigned size)
{
    for (unsigned i = 0; i < size; i++)
        mem[addr + i] = static_cast<uint8_t>(v >> (8 * i));
}

RunResult Recorder::run(void *state)
{
    RunResult res;
    std::vector<uint64_t> temps(values.size());
    auto gptr = [&](const Value &v) { return static_cast<char *>(state) + globals[v.payload].offset; };
    auto get = [&](KeelIrValue id) -> uint64_t {
        const Value &v = values[id];
        switch (v.kind) {
        case VKind::Temp:
            return temps[id];
        case VKind::Const:
            return v.payload;
        case VKind::Global: {
            uint64_t x = 0;
            std::memcpy(&x, gptr(v), v.type == KEEL_IR_I32 ? 4 : 8);
            return x;
        }
        default:
            return reinterpret_cast<uintptr_t>(state);
        }
    };
    auto set = [&](KeelIrValue id, uint64_t x) {
        const Value &v = values[id];
        x &= mask_of(v.type);
        if (v.kind == VKind::Temp)
            temps[id] = x;
        else if (v.kind == VKind::Global)
            std::memcpy(gptr(v), &x, v.type == KEEL_IR_I32 ? 4 : 8);
    };
    uint64_t insn_pc = 0;
    for (size_t i = 0; i < ops_list.size(); i++) {
        const IrOp &o = ops_list[i];
        switch (o.kind) {
        case OpKind::InsnStart:
            insn_pc = o.pc;
            break;
        case OpKind::Alu: {
            const KeelIrAluOp op = static_cast<KeelIrAluOp>(o.sub);
            const KeelIrType t = op == KEEL_IR_TRUNC_I64_I32 ? KEEL_IR_I64 : values[o.v[1]].type;
            set(o.v[0], alu_eval(op, t, get(o.v[1]), o.v[2] ? get(o.v[2]) : 0));
            break;
        }
        case OpKind::Setcond:
            set(o.v[0],
                cond_eval(static_cast<KeelIrCond>(o.sub), values[o.v[1]].type, get(o.v[1]), get(o.v[2])));
            break;
        case OpKind::Movcond:
            set(o.v[0],
                cond_eval(static_cast<KeelIrCond>(o.sub), values[o.v[1]].type, get(o.v[1]), get(o.v[2]))
                    ? get(o.v[3])
                    : get(o.v[4]));
            break;
        case OpKind::Load:
        case OpKind::Store: {
            const unsigned size = 1u << (o.mop & KEEL_MO_SIZE_MASK);
            const uint64_t addr = get(o.v[1]);
            res.insn_pc = insn_pc;
            if ((o.mop & KEEL_MO_ALIGN) && (addr & (size - 1))) {
                res.kind = RunResult::MemFault, res.fault_addr = addr, res.unaligned = true;
                res.rmw = (o.mop & KEEL_MO_RMW) != 0;
                return res;
            }
            for (unsigned k = 0; k < size; k++) {
                if (!mem.count(addr + k)) {
                    res.kind = RunResult::MemFault, res.fault_addr = addr;
                    return res;
                }
            }
            if (o.kind == OpKind::Load) {
                uint64_t v = read_mem(addr, size);
                if (o.mop & KEEL_MO_SIGN) v = static_cast<uint64_t>(sx(v, 8 * size));
                set(o.v[0], v);
            } else {
                write_mem(addr, get(o.v[0]), size);
            }
            break;
        }
        case OpKind::Label:
            break;
        case OpKind::Br:
            i = static_cast<size_t>(label_pos[o.sub]);
            break;
        case OpKind::Brcond:
            if (cond_eval(static_cast<KeelIrCond>(o.sub), values[o.v[0]].type, get(o.v[0]), get(o.v[1])))
                i = static_cast<size_t>(label_pos[o.raw]);
            break;
        case OpKind::Call: {
            std::vector<uint64_t> args;
            for (KeelIrValue a : o.args)
                args.push_back(get(a));
            res.calls.push_back(o.helper->name);
            bool raised = false;
            const uint64_t r = on_call ? on_call(o.helper, args, &raised) : 0;
            if (raised) {
                res.kind = RunResult::Raised, res.insn_pc = insn_pc;
                return res;
            }
            if (o.v[0]) set(o.v[0], r);
            break;
        }
        case OpKind::GotoTb:
            res.kind = RunResult::GotoTb, res.slot = o.sub;
            return res;
        case OpKind::Lookup:
            res.kind = RunResult::Lookup;
            return res;
        case OpKind::ExitTb:
            res.kind = RunResult::ExitTb;
            return res;
        }
    }
    errors.push_back("run fell off the end of the block");
    return res;
}

} // namespace irrec
