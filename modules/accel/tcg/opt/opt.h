// SPDX-License-Identifier: MIT
// tcg's IR optimisation passes, one per file, run on the engine's copy of a block before code generation.
#pragma once

#include <vector>

#include "ir_block.h"

namespace keel::tcg::opt
{

/*
 * Every pass rewrites the block in place and keeps it valid; the verifier
 * (exec::verify) runs last. Passes see the block the translator (and
 * instrumentation) produced: they may rewrite operands and replace or drop
 * operations, but never change what a guest observes — memory operations,
 * helper calls with side effects, exits and instruction markers stay, in
 * order. (Redundant loads of guest registers, and stores that are not
 * overwritten, are left to the back end's register cache, which keeps
 * globals in host registers and writes them back only where memory must be
 * exact.)
 */

// Constant folding and propagation: temps and globals known to hold a constant (until a label, a call
// that writes globals, or a host store) are replaced by it; operations on constants become moves;
// branches on constants become jumps or disappear.
void fold_constants(exec::IrBlock &b);

// Dead code: side-effect-free operations whose temp result is never read, and moves of a value to
// itself, are dropped.
void remove_dead_code(exec::IrBlock &b);

// Redundant writes of globals: a pure operation's write to a global that is written again before any
// operation reads it, may fault, calls out or leaves the block.
void remove_dead_stores(exec::IrBlock &b);

// Inline counters (a plugin's ADD_U64: load_host, add, store_host of one 64-bit host word at a constant
// address): a later addition to the same word moves into an earlier one when nothing between them can
// see the word or leave the block (only computation, instruction markers, pure helper calls and other
// host words lie between). A guest memory access, which may fault, keeps the counts of the instructions
// before it in memory.
void merge_counters(exec::IrBlock &b);

// Constant additions to one global (`add g, g, C`, e.g. a per-instruction instret update) merge into the
// later one when only computation that does not use the global, instruction markers and helper calls that
// neither see globals nor may raise lie between them.
void merge_global_adds(exec::IrBlock &b);

// Removes the operations marked in `gone`, keeping labels and instruction records pointing at the
// right operations.
void compact(exec::IrBlock &b, const std::vector<bool> &gone);

// A constant value of `type` (added to b.values).
KeelIrValue add_const(exec::IrBlock &b, KeelIrType type, uint64_t value);

// Calls f(value) for every value `op` reads (not its destination).
template <class F> void for_each_read(const exec::IrBlock &b, const exec::IrOp &op, F f)
{
    switch (op.kind) {
    case exec::OpKind::Alu:
    case exec::OpKind::SetCond:
        f(op.v[1]);
        f(op.v[2]);
        break;
    case exec::OpKind::MovCond:
        f(op.v[1]);
        f(op.v[2]);
        f(op.v[3]);
        f(op.extra);
        break;
    case exec::OpKind::Load:
    case exec::OpKind::LoadHost:
        f(op.v[1]);
        break;
    case exec::OpKind::Store:
    case exec::OpKind::StoreHost:
    case exec::OpKind::BrCond:
        f(op.v[0]);
        f(op.v[1]);
        break;
    case exec::OpKind::Call:
        for (unsigned k = 0; k < op.nargs; ++k)
            f(b.call_args[op.args_at + k]);
        break;
    default:
        break;
    }
}

// Every pass in order, then the verifier. False (with b.errors) if the result does not verify: the
// caller then compiles the block as translated.
bool optimize(exec::IrBlock &b);

} // namespace keel::tcg::opt
