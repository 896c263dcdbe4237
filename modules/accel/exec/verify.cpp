// SPDX-License-Identifier: MIT
// The IR verifier: types per operation, labels, exits, helper signatures; and the -d op printer.
#include <cinttypes>
#include <cstdio>

#include "ir_block.h"

namespace keel::exec
{

namespace
{

constexpr const char *kAluNames[] = {
#define KEEL_IR_NAME_(name, n) #name,
    KEEL_IR_ALU_OPS(KEEL_IR_NAME_)
#undef KEEL_IR_NAME_
};
constexpr unsigned kAluArity[] = {
#define KEEL_IR_ARITY_(name, n) n,
    KEEL_IR_ALU_OPS(KEEL_IR_ARITY_)
#undef KEEL_IR_ARITY_
};
constexpr const char *kCondNames[] = {"eq", "ne", "lt", "ge", "le", "gt", "ltu", "geu", "leu", "gtu"};
constexpr const char *kTypeNames[] = {"i32", "i64", "f32", "f64", "ptr"};

const char *type_name(unsigned t)
{
    return t <= KEEL_IR_PTR ? kTypeNames[t] : "?";
}

bool is_int(KeelIrType t)
{
    return t == KEEL_IR_I32 || t == KEEL_IR_I64;
}

class Verifier
{
  public:
    explicit Verifier(IrBlock &b) : b_(b) {}

    bool run()
    {
        size_t before = b_.errors.size();
        if (b_.ops.empty() || b_.ops[0].kind != OpKind::InsnStart)
            fail(0, "the block must start with insn_start");
        for (idx_ = 0; idx_ < b_.ops.size(); ++idx_)
            check(b_.ops[idx_]);
        if (!b_.ops.empty() && !op_is_terminal(b_.ops.back().kind))
            fail(b_.ops.size() - 1, "a path falls off the end of the block (no exit)");
        for (size_t l = 1; l < b_.labels.size(); ++l)
            if (used_.size() > l && used_[l] && b_.labels[l] < 0)
                fail(b_.ops.size(), "label L" + std::to_string(l) + " is used but never set");
        return b_.errors.empty() && before == 0;
    }

  private:
    void fail(size_t at, const std::string &msg)
    {
        b_.errors.push_back("op " + std::to_string(at) + ": " + msg);
    }
    void fail(const std::string &msg) { fail(idx_, msg); }

    // A readable value of type `t` (or any type if t is -1).
    bool value(KeelIrValue v, const char *what)
    {
        if (v == 0 || v >= b_.values.size()) {
            fail(std::string(what) + ": no such value " + std::to_string(v));
            return false;
        }
        return true;
    }
    bool typed(KeelIrValue v, KeelIrType t, const char *what)
    {
        if (!value(v, what)) return false;
        if (b_.values[v].type != t) {
            fail(std::string(what) + ": " + type_name(b_.values[v].type) + " value where " + type_name(t) +
                 " is needed");
            return false;
        }
        return true;
    }
    bool writable(KeelIrValue v, const char *what)
    {
        if (!value(v, what)) return false;
        ValKind k = b_.values[v].kind;
        if (k == ValKind::Const || k == ValKind::Env) {
            fail(std::string(what) + ": cannot write a constant or env");
            return false;
        }
        return true;
    }
    void use_label(uint32_t l)
    {
        if (used_.size() <= l) used_.resize(l + 1);
        used_[l] = true;
    }

    void check_alu(const IrOp &op)
    {
        const char *n = kAluNames[op.alu];
        if (!writable(op.v[0], n)) return;
        KeelIrType t = b_.values[op.v[0]].type;
        unsigned arity = kAluArity[op.alu];
        switch (op.alu) {
        case KEEL_IR_MOV:
            typed(op.v[1], t, n);
            break;
        case KEEL_IR_EXTS_I32_I64:
        case KEEL_IR_EXTU_I32_I64:
            typed(op.v[0], KEEL_IR_I64, n);
            typed(op.v[1], KEEL_IR_I32, n);
            break;
        case KEEL_IR_TRUNC_I64_I32:
            typed(op.v[0], KEEL_IR_I32, n);
            typed(op.v[1], KEEL_IR_I64, n);
            break;
        case KEEL_IR_BITCAST: {
            if (!value(op.v[1], n)) break;
            KeelIrType s = b_.values[op.v[1]].type;
            bool ok = (t == KEEL_IR_I32 && s == KEEL_IR_F32) || (t == KEEL_IR_F32 && s == KEEL_IR_I32) ||
                      (t == KEEL_IR_I64 && s == KEEL_IR_F64) || (t == KEEL_IR_F64 && s == KEEL_IR_I64);
            if (!ok) fail(std::string("BITCAST: ") + type_name(s) + " to " + type_name(t));
            break;
        }
        case KEEL_IR_EXT32S:
        case KEEL_IR_EXT32U:
            if (t != KEEL_IR_I64) fail(std::string(n) + ": only on i64");
            typed(op.v[1], t, n);
            break;
        case KEEL_IR_ADD:
        case KEEL_IR_SUB:
            // Pointer arithmetic (plugin data, env fields) is the one non-integer use.
            if (!is_int(t) && t != KEEL_IR_PTR) fail(std::string(n) + ": " + type_name(t) + " operands");
            typed(op.v[1], t, n);
            if (t == KEEL_IR_PTR) {
                typed(op.v[2], KEEL_IR_I64, n);
            } else {
                typed(op.v[2], t, n);
            }
            break;
        default:
            if (!is_int(t)) fail(std::string(n) + ": " + type_name(t) + " operands (i32 or i64 only)");
            typed(op.v[1], t, n);
            if (arity == 2) {
                typed(op.v[2], t, n);
            } else if (op.v[2] != 0) {
                fail(std::string(n) + ": unary operation with a second input");
            }
        }
    }

    void check_cmp(const IrOp &op, KeelIrValue a, KeelIrValue c, const char *n)
    {
        if (!value(a, n) || !value(c, n)) return;
        KeelIrType t = b_.values[a].type;
        if (!is_int(t) && t != KEEL_IR_PTR) fail(std::string(n) + ": compares " + type_name(t) + " values");
        typed(c, t, n);
        if (op.cond > KEEL_IR_GTU) fail(std::string(n) + ": unknown condition");
    }

    void check_mem(const IrOp &op, bool guest)
    {
        const char *n = op.kind == OpKind::Load       ? "load"
                        : op.kind == OpKind::Store    ? "store"
                        : op.kind == OpKind::LoadHost ? "load_host"
                                                      : "store_host";
        bool is_load = op.kind == OpKind::Load || op.kind == OpKind::LoadHost;
        if (is_load ? !writable(op.v[0], n) : !value(op.v[0], n)) return;
        KeelIrType t = b_.values[op.v[0]].type;
        unsigned size = 1u << (op.memop & KEEL_MO_SIZE_MASK);
        unsigned width = (t == KEEL_IR_I32 || t == KEEL_IR_F32) ? 4 : 8;
        if (size > width)
            fail(std::string(n) + ": " + std::to_string(size * 8) + "-bit access to a " + type_name(t));
        if ((t == KEEL_IR_F32 || t == KEEL_IR_F64 || t == KEEL_IR_PTR) && size != width)
            fail(std::string(n) + ": " + type_name(t) + " values move whole");
        if ((op.memop & KEEL_MO_SIGN) && !is_load) fail(std::string(n) + ": sign-extension on a store");
        if (guest) {
            typed(op.v[1], KEEL_IR_I64, n);
        } else {
            typed(op.v[1], KEEL_IR_PTR, n);
        }
    }

    void check_call(const IrOp &op)
    {
        const KeelIrHelper *h = op.helper;
        std::string n = std::string("call ") + (h->name ? h->name : "?");
        if (h->nargs > KEEL_IR_MAX_HELPER_ARGS) {
            fail(n + ": helper declares " + std::to_string(h->nargs) + " arguments");
            return;
        }
        if (op.nargs != h->nargs)
            fail(n + ": " + std::to_string(op.nargs) + " arguments, the helper takes " +
                 std::to_string(h->nargs));
        for (unsigned i = 0; i < op.nargs && i < h->nargs; ++i) {
            if (h->args[i] > KEEL_IR_PTR) {
                fail(n + ": argument " + std::to_string(i) + " has an invalid declared type");
                continue;
            }
            typed(b_.call_args[op.args_at + i], static_cast<KeelIrType>(h->args[i]),
                  (n + " argument " + std::to_string(i)).c_str());
        }
        if (h->has_ret && h->ret > KEEL_IR_PTR) fail(n + ": invalid result type");
        if (op.v[0] != 0) {
            if (!h->has_ret) {
                fail(n + ": the helper returns nothing");
            } else if (writable(op.v[0], n.c_str())) {
                typed(op.v[0], static_cast<KeelIrType>(h->ret), n.c_str());
            }
        }
    }

    void check(const IrOp &op)
    {
        switch (op.kind) {
        case OpKind::Alu:
            check_alu(op);
            break;
        case OpKind::SetCond:
            if (writable(op.v[0], "setcond") && !is_int(b_.values[op.v[0]].type))
                fail("setcond: the result must be i32 or i64");
            check_cmp(op, op.v[1], op.v[2], "setcond");
            break;
        case OpKind::MovCond:
            check_cmp(op, op.v[1], op.v[2], "movcond");
            if (writable(op.v[0], "movcond")) {
                typed(op.v[3], b_.values[op.v[0]].type, "movcond");
                typed(op.extra, b_.values[op.v[0]].type, "movcond");
            }
            break;
        case OpKind::Load:
        case OpKind::Store:
            check_mem(op, true);
            break;
        case OpKind::LoadHost:
        case OpKind::StoreHost:
            check_mem(op, false);
            break;
        case OpKind::SetLabel:
            break;
        case OpKind::Br:
            use_label(op.label);
            break;
        case OpKind::BrCond:
            check_cmp(op, op.v[0], op.v[1], "brcond");
            use_label(op.label);
            break;
        case OpKind::Call:
            check_call(op);
            break;
        case OpKind::InsnStart:
        case OpKind::GotoTb:
        case OpKind::LookupGoto:
        case OpKind::ExitTb:
            break;
        }
    }

    IrBlock &b_;
    size_t idx_ = 0;
    std::vector<bool> used_;
};

std::string val_text(const IrBlock &b, KeelIrValue v)
{
    if (v == 0 || v >= b.values.size()) return "<" + std::to_string(v) + ">";
    const IrVal &x = b.values[v];
    char buf[48];
    switch (x.kind) {
    case ValKind::Temp:
        return "tmp" + std::to_string(x.index);
    case ValKind::Const:
        std::snprintf(buf, sizeof buf, "$0x%" PRIx64, x.imm);
        return buf;
    case ValKind::Global:
        if (b.cpu && x.index < b.cpu->n_globals && b.cpu->globals[x.index].name)
            return b.cpu->globals[x.index].name;
        return "g" + std::to_string(x.index);
    case ValKind::Env:
        return "env";
    case ValKind::None:
        break;
    }
    return "?";
}

std::string memop_text(uint32_t mop, bool load)
{
    std::string s = "mo=" + std::to_string(8u << (mop & KEEL_MO_SIZE_MASK));
    if (load) s += (mop & KEEL_MO_SIGN) ? "s" : "u";
    if (mop & KEEL_MO_ALIGN) s += "+al";
    if (mop & KEEL_MO_RMW) s += "+rmw";
    return s;
}

std::string lower(const char *s)
{
    std::string r(s);
    for (char &c : r)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return r;
}

} // namespace

const char *alu_name(unsigned op)
{
    return op < KEEL_IR_ALU_COUNT ? kAluNames[op] : "?";
}

unsigned alu_arity(unsigned op)
{
    return op < KEEL_IR_ALU_COUNT ? kAluArity[op] : 0;
}

const char *cond_name(unsigned cond)
{
    return cond <= KEEL_IR_GTU ? kCondNames[cond] : "?";
}

bool verify(IrBlock &b)
{
    return Verifier(b).run();
}

std::string print_op(const IrBlock &b, const IrOp &op)
{
    auto v = [&](KeelIrValue x) { return val_text(b, x); };
    std::string t = std::string("_") + type_name(op.type);
    char buf[64];
    switch (op.kind) {
    case OpKind::Alu: {
        std::string s = lower(alu_name(op.alu)) + t + " " + v(op.v[0]) + "," + v(op.v[1]);
        if (alu_arity(op.alu) == 2) s += "," + v(op.v[2]);
        return s;
    }
    case OpKind::SetCond:
        return "setcond" + t + " " + v(op.v[0]) + "," + v(op.v[1]) + "," + v(op.v[2]) + "," +
               cond_name(op.cond);
    case OpKind::MovCond:
        return "movcond" + t + " " + v(op.v[0]) + "," + v(op.v[1]) + "," + v(op.v[2]) + "," + v(op.v[3]) +
               "," + v(op.extra) + "," + cond_name(op.cond);
    case OpKind::Load:
    case OpKind::Store:
        return std::string(op.kind == OpKind::Load ? "ld" : "st") + t + " " + v(op.v[0]) + "," + v(op.v[1]) +
               "," + memop_text(op.memop, op.kind == OpKind::Load) + ",mmu=" + std::to_string(op.mmu_idx);
    case OpKind::LoadHost:
    case OpKind::StoreHost:
        std::snprintf(buf, sizeof buf, "$%s0x%" PRIx64, op.imm < 0 ? "-" : "",
                      op.imm < 0 ? -static_cast<uint64_t>(op.imm) : static_cast<uint64_t>(op.imm));
        return std::string(op.kind == OpKind::LoadHost ? "ld_host" : "st_host") + t + " " + v(op.v[0]) + "," +
               v(op.v[1]) + "," + buf + "," + memop_text(op.memop, op.kind == OpKind::LoadHost);
    case OpKind::SetLabel:
        return "set_label $L" + std::to_string(op.label);
    case OpKind::Br:
        return "br $L" + std::to_string(op.label);
    case OpKind::BrCond:
        return "brcond" + t + " " + v(op.v[0]) + "," + v(op.v[1]) + "," + cond_name(op.cond) + ",$L" +
               std::to_string(op.label);
    case OpKind::Call: {
        std::snprintf(buf, sizeof buf, ",$0x%x", op.helper->flags);
        std::string s = std::string("call ") + (op.helper->name ? op.helper->name : "?") + buf + "," +
                        (op.v[0] ? v(op.v[0]) : std::string("$none"));
        for (unsigned i = 0; i < op.nargs; ++i)
            s += "," + v(b.call_args[op.args_at + i]);
        return s;
    }
    case OpKind::InsnStart:
        std::snprintf(buf, sizeof buf, " ---- %016" PRIx64 " %u", static_cast<uint64_t>(op.imm), op.len);
        return buf;
    case OpKind::GotoTb:
        return "goto_tb $" + std::to_string(op.imm);
    case OpKind::LookupGoto:
        return "lookup_and_goto";
    case OpKind::ExitTb:
        return "exit_tb";
    }
    return "?";
}

std::string print_block(const IrBlock &b)
{
    std::string s;
    for (const IrOp &op : b.ops) {
        std::string line = print_op(b, op);
        // QEMU indents operations by one space; the insn marker carries its own.
        s += (op.kind == OpKind::InsnStart ? "" : " ") + line + "\n";
    }
    return s;
}

} // namespace keel::exec
