// SPDX-License-Identifier: MIT
// The engine's KeelIrBuilder: records what a translator emits into an IrBlock.
#pragma once

#include <functional>

#include "ir_block.h"

// The opaque builder of ir.h. Emission appends to `block.ops`, or inserts at
// `cursor` after set_cursor(); misuse goes to `block.errors`.
struct KeelIrBuilder {
    keel::exec::IrBlock block;
    bool at_end = true;
    uint32_t cursor = 0; // next insertion index when !at_end
    // Instruction memory for ops->fetch; set by the engine (KEEL_ERR without it).
    std::function<int(uint64_t pc, unsigned len, uint32_t *bits)> fetch;
};

namespace keel::exec
{

// The one operations table handed to every translator.
const KeelIrBuilderOps &builder_ops();

// A builder for a CPU of type `cpu` (for its globals).
inline void builder_reset(KeelIrBuilder &b, const KeelCpuOps *cpu)
{
    b.block = IrBlock{};
    b.block.cpu = cpu;
    b.block.labels.push_back(-1); // label 0 is "no label"
    b.at_end = true;
    b.cursor = 0;
}

} // namespace keel::exec
