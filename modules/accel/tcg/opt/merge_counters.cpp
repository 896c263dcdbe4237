// SPDX-License-Identifier: MIT
// Inline counters: the additions a block makes to one host word, merged where nothing can tell.
#include <algorithm>

#include "opt.h"

namespace keel::tcg::opt
{

using namespace keel::exec;

namespace
{

// load_host t, CONST, off (64 bits); add u, t, CONST; store_host u, CONST, off — at ops[i..i+2], the temps
// read nowhere else. What a plugin's inline ADD_U64 becomes.
struct Counter {
    size_t at = 0; // index of the load
    uint64_t addr = 0;
};

bool is_const(const IrBlock &b, KeelIrValue v)
{
    return b.val(v).kind == ValKind::Const;
}

bool match(const IrBlock &b, size_t i, const std::vector<uint32_t> &reads, Counter &c)
{
    if (i + 2 >= b.ops.size()) return false;
    const IrOp &ld = b.ops[i], &add = b.ops[i + 1], &st = b.ops[i + 2];
    if (ld.kind != OpKind::LoadHost || add.kind != OpKind::Alu || st.kind != OpKind::StoreHost) return false;
    if ((ld.memop & KEEL_MO_SIZE_MASK) != KEEL_MO_64 || (st.memop & KEEL_MO_SIZE_MASK) != KEEL_MO_64 ||
        add.alu != KEEL_IR_ADD || add.type != KEEL_IR_I64)
        return false;
    if (!is_const(b, ld.v[1]) || !is_const(b, st.v[1]) || !is_const(b, add.v[2])) return false;
    c.addr = b.val(ld.v[1]).imm + static_cast<uint64_t>(ld.imm);
    if (b.val(st.v[1]).imm + static_cast<uint64_t>(st.imm) != c.addr) return false;
    KeelIrValue t = ld.v[0], u = add.v[0];
    if (add.v[1] != t || st.v[0] != u || b.val(t).kind != ValKind::Temp || b.val(u).kind != ValKind::Temp)
        return false;
    const uint32_t rt = reads[b.val(t).index], ru = reads[b.val(u).index];
    if (t == u ? rt != 2 : (rt != 1 || ru != 1)) return false;
    c.at = i;
    return true;
}

} // namespace

void merge_counters(IrBlock &b)
{
    std::vector<uint32_t> reads(b.n_temps, 0);
    for (const IrOp &op : b.ops)
        for_each_read(b, op, [&](KeelIrValue v) {
            const IrVal &x = b.val(v);
            if (v && x.kind == ValKind::Temp && x.index < reads.size()) reads[x.index]++;
        });
    std::vector<bool> gone(b.ops.size(), false);
    std::vector<Counter> open; // counters whose addition may still take later ones
    bool changed = false;
    for (size_t i = 0; i < b.ops.size(); ++i) {
        const IrOp &op = b.ops[i];
        Counter c;
        if (match(b, i, reads, c)) {
            auto same =
                std::find_if(open.begin(), open.end(), [&](const Counter &o) { return o.addr == c.addr; });
            // A counter overlapping another one only in part: both stay as they are.
            std::erase_if(open, [&](const Counter &o) {
                return o.addr != c.addr && o.addr < c.addr + 8 && c.addr < o.addr + 8;
            });
            if (same != open.end() && same->addr == c.addr) {
                IrOp &first = b.ops[same->at + 1];
                uint64_t sum = b.val(first.v[2]).imm + b.val(b.ops[i + 1].v[2]).imm;
                first.v[2] = add_const(b, KEEL_IR_I64, sum);
                gone[i] = gone[i + 1] = gone[i + 2] = true;
                changed = true;
            } else {
                open.push_back(c);
            }
            i += 2;
            continue;
        }
        switch (op.kind) {
        case OpKind::InsnStart:
        case OpKind::Alu:
        case OpKind::SetCond:
        case OpKind::MovCond:
            continue; // computation: cannot see a counter, cannot leave the block
        case OpKind::LoadHost:
        case OpKind::StoreHost:
            if (is_const(b, op.v[1])) { // other host words: only an overlapping one ends a counter
                uint64_t lo = b.val(op.v[1]).imm + static_cast<uint64_t>(op.imm);
                uint64_t hi = lo + (uint64_t(1) << (op.memop & KEEL_MO_SIZE_MASK));
                std::erase_if(open, [&](const Counter &o) { return o.addr < hi && lo < o.addr + 8; });
                continue;
            }
            break;
        case OpKind::Call:
            if (op.helper && (op.helper->flags & KEEL_HELPER_PURE)) continue;
            break;
        default:
            break;
        }
        // Guest memory operations (may fault: the counts of the instructions before must be in memory),
        // calls (may look at the counters, may raise), host memory through a pointer, control flow.
        open.clear();
    }
    if (changed) compact(b, gone);
}

namespace
{

// `add g, g, CONST` on a global.
bool is_global_add(const IrBlock &b, const IrOp &op)
{
    return op.kind == OpKind::Alu && op.alu == KEEL_IR_ADD && b.val(op.v[0]).kind == ValKind::Global &&
           op.v[1] && b.val(op.v[1]).kind == ValKind::Global &&
           b.val(op.v[1]).index == b.val(op.v[0]).index && is_const(b, op.v[2]);
}

// Whether `op` (computation or a call) reads global `global` or writes it.
bool touches(const IrBlock &b, const IrOp &op, uint32_t global)
{
    auto is = [&](KeelIrValue v) {
        return v && b.val(v).kind == ValKind::Global && b.val(v).index == global;
    };
    bool hit = is(op.v[0]); // the destination
    for_each_read(b, op, [&](KeelIrValue v) { hit = hit || is(v); });
    return hit;
}

} // namespace

void merge_global_adds(IrBlock &b)
{
    std::vector<bool> gone(b.ops.size(), false);
    bool changed = false;
    for (size_t i = 0; i < b.ops.size(); ++i) {
        if (!is_global_add(b, b.ops[i])) continue;
        const uint32_t g = b.val(b.ops[i].v[0]).index;
        for (size_t j = i + 1; j < b.ops.size(); ++j) {
            IrOp &n = b.ops[j];
            if (is_global_add(b, n) && b.val(n.v[0]).index == g &&
                b.val(n.v[0]).type == b.val(b.ops[i].v[0]).type) {
                n.v[2] = add_const(b, b.val(n.v[0]).type, b.val(n.v[2]).imm + b.val(b.ops[i].v[2]).imm);
                gone[i] = changed = true;
                break;
            }
            bool pass = false;
            switch (n.kind) {
            case OpKind::InsnStart:
                pass = true;
                break;
            case OpKind::Alu:
            case OpKind::SetCond:
            case OpKind::MovCond:
                pass = !touches(b, n, g);
                break;
            case OpKind::Call: // helpers that neither see globals nor may leave the block
                pass = n.helper &&
                       !(n.helper->flags &
                         (KEEL_HELPER_READS_GLOBALS | KEEL_HELPER_WRITES_GLOBALS | KEEL_HELPER_MAY_RAISE)) &&
                       !touches(b, n, g);
                break;
            default: // guest memory (a fault writes globals back), host memory (may be the env), control flow
                break;
            }
            if (!pass) break;
        }
    }
    if (changed) compact(b, gone);
}

} // namespace keel::tcg::opt
