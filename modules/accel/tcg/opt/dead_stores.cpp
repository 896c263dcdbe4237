// SPDX-License-Identifier: MIT
// Redundant writes of guest registers: a global written again before anything could see the first value.
#include "opt.h"

namespace keel::tcg::opt
{

using namespace keel::exec;

namespace
{

bool reads(const IrBlock &b, const IrOp &op, KeelIrValue g)
{
    auto same = [&](KeelIrValue v) {
        const IrVal &x = b.val(v), &y = b.val(g);
        return v && x.kind == ValKind::Global && x.index == y.index;
    };
    switch (op.kind) {
    case OpKind::Alu:
    case OpKind::SetCond:
        return same(op.v[1]) || same(op.v[2]);
    case OpKind::MovCond:
        return same(op.v[1]) || same(op.v[2]) || same(op.v[3]) || same(op.extra);
    default:
        return true; // not scanned past (see below)
    }
}

bool writes(const IrBlock &b, const IrOp &op, KeelIrValue g)
{
    const IrVal &x = b.val(op.v[0]), &y = b.val(g);
    return op.v[0] && x.kind == ValKind::Global && x.index == y.index;
}

bool pure_write(OpKind k)
{
    return k == OpKind::Alu || k == OpKind::SetCond || k == OpKind::MovCond;
}

} // namespace

void remove_dead_stores(IrBlock &b)
{
    std::vector<bool> gone(b.ops.size(), false);
    for (size_t i = 0; i < b.ops.size(); ++i) {
        const IrOp &op = b.ops[i];
        if (!pure_write(op.kind) || b.val(op.v[0]).kind != ValKind::Global) continue;
        // Look ahead over operations that can neither see the global nor leave the block: plain
        // computation and instruction markers. Anything else (memory operations, which may fault and must
        // leave earlier instructions' writes visible; calls; host memory; branches, labels, exits) ends it.
        for (size_t j = i + 1; j < b.ops.size(); ++j) {
            const IrOp &n = b.ops[j];
            if (n.kind == OpKind::InsnStart) continue;
            if (!pure_write(n.kind) || reads(b, n, op.v[0])) break;
            if (writes(b, n, op.v[0])) {
                gone[i] = true;
                break;
            }
        }
    }
    compact(b, gone);
}

} // namespace keel::tcg::opt
