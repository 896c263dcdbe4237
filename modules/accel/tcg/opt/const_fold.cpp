// SPDX-License-Identifier: MIT
// Constant folding and propagation within a block, with the IR's total semantics (tci's ALU definitions).
#include <bit>

#include "opt.h"
#include "tci_alu.h"

namespace keel::tcg::opt
{

using namespace keel::exec;
namespace alu = keel::tci::alu;

namespace
{

bool is_int(KeelIrType t)
{
    return t == KEEL_IR_I32 || t == KEEL_IR_I64;
}

template <typename U> bool eval_width(unsigned op, U a, U c, U &r)
{
    switch (op) {
    case KEEL_IR_MOV:
        r = a;
        return true;
    case KEEL_IR_ADD:
        r = a + c;
        return true;
    case KEEL_IR_SUB:
        r = a - c;
        return true;
    case KEEL_IR_MUL:
        r = a * c;
        return true;
    case KEEL_IR_MULHS:
        r = alu::mulhs(a, c);
        return true;
    case KEEL_IR_MULHU:
        r = alu::mulhu(a, c);
        return true;
    case KEEL_IR_MULHSU:
        r = alu::mulhsu(a, c);
        return true;
    case KEEL_IR_DIVS:
        r = alu::divs(a, c);
        return true;
    case KEEL_IR_DIVU:
        r = alu::divu(a, c);
        return true;
    case KEEL_IR_REMS:
        r = alu::rems(a, c);
        return true;
    case KEEL_IR_REMU:
        r = alu::remu(a, c);
        return true;
    case KEEL_IR_AND:
        r = a & c;
        return true;
    case KEEL_IR_OR:
        r = a | c;
        return true;
    case KEEL_IR_XOR:
        r = a ^ c;
        return true;
    case KEEL_IR_ANDC:
        r = a & ~c;
        return true;
    case KEEL_IR_ORC:
        r = a | ~c;
        return true;
    case KEEL_IR_XNOR:
        r = ~(a ^ c);
        return true;
    case KEEL_IR_NOT:
        r = ~a;
        return true;
    case KEEL_IR_NEG:
        r = U(0) - a;
        return true;
    case KEEL_IR_SHL:
        r = alu::shl(a, c);
        return true;
    case KEEL_IR_SHR:
        r = alu::shr(a, c);
        return true;
    case KEEL_IR_SAR:
        r = alu::sar(a, c);
        return true;
    case KEEL_IR_ROTL:
        r = alu::rotl(a, c);
        return true;
    case KEEL_IR_ROTR:
        r = alu::rotr(a, c);
        return true;
    case KEEL_IR_CLZ:
        r = static_cast<U>(std::countl_zero(a));
        return true;
    case KEEL_IR_CTZ:
        r = static_cast<U>(std::countr_zero(a));
        return true;
    case KEEL_IR_CTPOP:
        r = static_cast<U>(std::popcount(a));
        return true;
    case KEEL_IR_BSWAP:
        r = alu::bswap(a);
        return true;
    case KEEL_IR_EXT8S:
        r = alu::exts<U, uint8_t>(a);
        return true;
    case KEEL_IR_EXT8U:
        r = alu::extu<U, uint8_t>(a);
        return true;
    case KEEL_IR_EXT16S:
        r = alu::exts<U, uint16_t>(a);
        return true;
    case KEEL_IR_EXT16U:
        r = alu::extu<U, uint16_t>(a);
        return true;
    case KEEL_IR_MINS:
        r = alu::mins(a, c);
        return true;
    case KEEL_IR_MINU:
        r = alu::minu(a, c);
        return true;
    case KEEL_IR_MAXS:
        r = alu::maxs(a, c);
        return true;
    case KEEL_IR_MAXU:
        r = alu::maxu(a, c);
        return true;
    default:
        return false;
    }
}

// The result of ALU op `op` with destination type `t` on known inputs, if it can be folded.
bool eval(unsigned op, KeelIrType t, uint64_t a, uint64_t c, uint64_t &r)
{
    switch (op) {
    case KEEL_IR_EXT32S:
    case KEEL_IR_EXTS_I32_I64:
        r = static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(a)));
        return true;
    case KEEL_IR_EXT32U:
    case KEEL_IR_EXTU_I32_I64:
    case KEEL_IR_TRUNC_I64_I32:
        r = static_cast<uint32_t>(a);
        return true;
    case KEEL_IR_BITCAST:
        return false; // to or from a float type: not tracked
    default:
        break;
    }
    if (t == KEEL_IR_I32) {
        uint32_t r32;
        if (!eval_width<uint32_t>(op, static_cast<uint32_t>(a), static_cast<uint32_t>(c), r32)) return false;
        r = r32;
        return true;
    }
    return eval_width<uint64_t>(op, a, c, r);
}

class Folder
{
  public:
    explicit Folder(IrBlock &b) : b_(b), n_globals_(b.cpu ? b.cpu->n_globals : 0)
    {
        known_.assign(n_globals_ + b.n_temps, false);
        value_.assign(n_globals_ + b.n_temps, 0);
    }
    void run();

  private:
    // The storage slot of a global or temp value, or -1.
    long key(KeelIrValue v) const
    {
        const IrVal &x = b_.val(v);
        if (x.kind == ValKind::Global && x.index < n_globals_) return static_cast<long>(x.index);
        if (x.kind == ValKind::Temp && x.index < b_.n_temps) return static_cast<long>(n_globals_ + x.index);
        return -1;
    }
    // Whether `a cond c` is known here; its value in `r`.
    bool get_cond(unsigned cond, KeelIrValue a, KeelIrValue c, bool &r) const
    {
        uint64_t x = 0, y = 0;
        if (!get(a, x) || !get(c, y)) return false;
        r = b_.val(a).type == KEEL_IR_I32
                ? alu::cond<uint32_t>(cond, static_cast<uint32_t>(x), static_cast<uint32_t>(y))
                : alu::cond<uint64_t>(cond, x, y);
        return true;
    }
    bool get(KeelIrValue v, uint64_t &out) const
    {
        const IrVal &x = b_.val(v);
        if (!v || !is_int(x.type)) return false;
        if (x.kind == ValKind::Const) {
            out = x.imm;
            return true;
        }
        long k = key(v);
        if (k < 0 || !known_[static_cast<size_t>(k)]) return false;
        out = value_[static_cast<size_t>(k)];
        return true;
    }
    void set(KeelIrValue v, bool known, uint64_t value = 0)
    {
        long k = key(v);
        if (k < 0) return;
        known_[static_cast<size_t>(k)] = known && is_int(b_.val(v).type);
        value_[static_cast<size_t>(k)] = b_.val(v).type == KEEL_IR_I32 ? static_cast<uint32_t>(value) : value;
    }
    void forget_all() { known_.assign(known_.size(), false); }
    void forget_globals()
    {
        for (unsigned i = 0; i < n_globals_; ++i)
            known_[i] = false;
    }
    // Replace a known operand by a constant of its type.
    void substitute(KeelIrValue &v)
    {
        uint64_t k = 0;
        if (b_.val(v).kind != ValKind::Const && get(v, k)) v = add_const(b_, b_.val(v).type, k);
    }
    void make_move(IrOp &op, KeelIrValue src)
    {
        KeelIrValue d = op.v[0];
        IrOp m{};
        m.kind = OpKind::Alu;
        m.type = b_.val(d).type;
        m.alu = KEEL_IR_MOV;
        m.v[0] = d;
        m.v[1] = src;
        op = m;
    }

    IrBlock &b_;
    unsigned n_globals_;
    std::vector<bool> known_;
    std::vector<uint64_t> value_;
};

void Folder::run()
{
    std::vector<bool> gone(b_.ops.size(), false);
    for (size_t i = 0; i < b_.ops.size(); ++i) {
        IrOp &op = b_.ops[i];
        switch (op.kind) {
        case OpKind::SetLabel:
            forget_all(); // paths meet
            break;
        case OpKind::Alu: {
            KeelIrValue d = op.v[0];
            KeelIrType t = b_.val(d).type;
            bool unary = alu_arity(op.alu) == 1;
            uint64_t a = 0, c = 0, r = 0;
            if (is_int(t) && get(op.v[1], a) && (unary || get(op.v[2], c)) && eval(op.alu, t, a, c, r)) {
                make_move(op, add_const(b_, t, r));
                set(d, true, r);
                break;
            }
            if (op.alu != KEEL_IR_BITCAST) {
                substitute(op.v[1]);
                if (!unary) substitute(op.v[2]);
            }
            uint64_t m = 0;
            if (op.alu == KEEL_IR_MOV && get(op.v[1], m)) {
                set(d, true, m);
            } else {
                set(d, false);
            }
            break;
        }
        case OpKind::SetCond: {
            bool r = false;
            if (get_cond(op.cond, op.v[1], op.v[2], r)) {
                KeelIrValue d = op.v[0];
                make_move(op, add_const(b_, b_.val(d).type, r));
                set(d, true, r);
                break;
            }
            substitute(op.v[1]);
            substitute(op.v[2]);
            set(op.v[0], false);
            break;
        }
        case OpKind::MovCond: {
            bool r = false;
            if (get_cond(op.cond, op.v[1], op.v[2], r)) {
                KeelIrValue src = r ? op.v[3] : op.extra, d = op.v[0];
                uint64_t k = 0;
                bool kn = get(src, k);
                make_move(op, src);
                set(d, kn, k);
                break;
            }
            substitute(op.v[1]);
            substitute(op.v[2]);
            set(op.v[0], false);
            break;
        }
        case OpKind::BrCond: {
            bool r = false;
            if (get_cond(op.cond, op.v[0], op.v[1], r)) {
                if (r) {
                    op.kind = OpKind::Br;
                    op.v[0] = op.v[1] = 0;
                } else {
                    gone[i] = true;
                }
                break;
            }
            substitute(op.v[0]);
            substitute(op.v[1]);
            break;
        }
        case OpKind::Load:
            substitute(op.v[1]);
            set(op.v[0], false);
            break;
        case OpKind::Store:
            substitute(op.v[1]);
            if (is_int(b_.val(op.v[0]).type)) substitute(op.v[0]);
            break;
        case OpKind::LoadHost:
            set(op.v[0], false);
            break;
        case OpKind::StoreHost:
            forget_globals(); // it may write into the env
            break;
        case OpKind::Call:
            if (op.helper && (op.helper->flags & KEEL_HELPER_WRITES_GLOBALS)) forget_globals();
            if (op.v[0]) set(op.v[0], false);
            break;
        default:
            break;
        }
    }
    compact(b_, gone);
}

} // namespace

void fold_constants(IrBlock &b)
{
    Folder(b).run();
}

} // namespace keel::tcg::opt
