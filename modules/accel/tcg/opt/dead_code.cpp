// SPDX-License-Identifier: MIT
// Dead code removal: results nobody reads, and moves of a value onto itself.
#include "opt.h"

namespace keel::tcg::opt
{

using namespace keel::exec;

namespace
{

// Whether dropping the op changes nothing but its destination.
bool side_effect_free(const IrOp &op)
{
    switch (op.kind) {
    case OpKind::Alu:
    case OpKind::SetCond:
    case OpKind::MovCond:
    case OpKind::LoadHost:
        return true;
    case OpKind::Call:
        return op.helper && (op.helper->flags & KEEL_HELPER_PURE) &&
               !(op.helper->flags & KEEL_HELPER_MAY_RAISE);
    default:
        return false;
    }
}

} // namespace

void remove_dead_code(IrBlock &b)
{
    std::vector<bool> gone(b.ops.size(), false);
    std::vector<uint32_t> reads(b.values.size(), 0);
    // Temps are counted by temp number: two values never name one temp, but be safe.
    std::vector<uint32_t> temp_reads(b.n_temps, 0);
    auto count = [&](const IrOp &op, int d) {
        for_each_read(b, op, [&](KeelIrValue v) {
            const IrVal &x = b.val(v);
            if (x.kind == ValKind::Temp && x.index < b.n_temps) temp_reads[x.index] += d;
        });
    };
    for (const IrOp &op : b.ops)
        count(op, 1);
    bool changed = true;
    while (changed) {
        changed = false;
        for (size_t i = b.ops.size(); i-- > 0;) {
            if (gone[i]) continue;
            const IrOp &op = b.ops[i];
            bool drop = false;
            if (op.kind == OpKind::Alu && (op.alu == KEEL_IR_MOV || op.alu == KEEL_IR_BITCAST) &&
                op.v[0] == op.v[1]) {
                drop = true;
            } else if (side_effect_free(op) && op.v[0]) {
                const IrVal &d = b.val(op.v[0]);
                drop = d.kind == ValKind::Temp && d.index < b.n_temps && temp_reads[d.index] == 0;
            }
            if (drop) {
                gone[i] = true;
                count(op, -1);
                changed = true;
            }
        }
    }
    compact(b, gone);
}

} // namespace keel::tcg::opt
