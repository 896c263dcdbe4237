// SPDX-License-Identifier: MIT
// Dropping operations from a block: the op list shrinks, labels and instruction records follow.
#include "opt.h"

namespace keel::tcg::opt
{

using namespace keel::exec;

void compact(IrBlock &b, const std::vector<bool> &gone)
{
    std::vector<uint32_t> new_index(b.ops.size() + 1, 0);
    std::vector<IrOp> kept;
    kept.reserve(b.ops.size());
    for (size_t i = 0; i < b.ops.size(); ++i) {
        new_index[i] = static_cast<uint32_t>(kept.size());
        if (!gone[i]) kept.push_back(b.ops[i]);
    }
    new_index[b.ops.size()] = static_cast<uint32_t>(kept.size());
    b.ops = std::move(kept);
    for (int32_t &l : b.labels)
        if (l >= 0) l = static_cast<int32_t>(new_index[static_cast<size_t>(l)]);
    for (IrInsn &in : b.insns) {
        in.start_op = new_index[in.start_op];
        for (uint32_t &m : in.mem_ops)
            m = new_index[m];
    }
}

KeelIrValue add_const(IrBlock &b, KeelIrType type, uint64_t value)
{
    IrVal v;
    v.kind = ValKind::Const;
    v.type = type;
    v.imm = type == KEEL_IR_I32 ? static_cast<uint32_t>(value) : value;
    b.values.push_back(v);
    return static_cast<KeelIrValue>(b.values.size() - 1);
}

} // namespace keel::tcg::opt
