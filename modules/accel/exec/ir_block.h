// SPDX-License-Identifier: MIT
// The engine-side form of a translated block: what the builder records and every engine consumes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <keel/cpu.h>
#include <keel/ir.h>

namespace keel::exec
{

/*
 * The block as an engine sees it
 * ------------------------------
 * IrBlock is the builder's output and the input of every back end (tci
 * today, the x86-64 JIT later). It is deliberately flat and index-based so a
 * back end can walk it once, in order, and so instrumentation can insert in
 * the middle without invalidating anything but positions:
 *
 *  - `values`: every KeelIrValue is an index into it (0 is "no value").
 *    A value is a temporary (its `index` numbers the block's temporaries
 *    densely, so a back end can size a frame or a register map), a constant
 *    (`imm` holds it; I32 constants are stored zero-extended), a global
 *    (`index` into KeelCpuOps.globals; `imm` is its byte offset in the env)
 *    or the env pointer.
 *  - `ops`: the operations in execution order. Each IrOp has a kind, the
 *    type it operates on (the destination's type, or the compared type for
 *    brcond), up to four value operands in `v`, and immediates: `memop`,
 *    `mmu_idx`, `cond`, `alu`, `label`, `imm` (host offset, insn pc, goto_tb
 *    slot), `len`/`raw` (insn_start). Helper calls keep their argument list
 *    in `call_args[op.args_at .. op.args_at + op.nargs)`.
 *    Operand layout per kind:
 *        Alu       v = {dst, a, b}       (b = 0 for unary ops)
 *        SetCond   v = {dst, a, b}
 *        MovCond   v = {dst, a, b, vt} and `vf` = v2 stored in `extra`
 *        Load      v = {dst, addr}       memop, mmu_idx
 *        Store     v = {val, addr}       memop, mmu_idx
 *        LoadHost  v = {dst, base}       memop, imm = offset
 *        StoreHost v = {val, base}       memop, imm = offset
 *        SetLabel / Br                   label
 *        BrCond    v = {a, b}            cond, label
 *        Call      v = {dst}             helper, call args
 *        InsnStart                       imm = pc, len, raw
 *        GotoTb                          imm = slot
 *        LookupGoto, ExitTb              (nothing)
 *  - `labels`: for each label, the op index of its SetLabel (-1 if never set).
 *  - `insns`: per guest instruction, the op index of its insn_start and of
 *    each of its guest memory operations (kept up to date across cursor
 *    insertions), plus its pc, length and raw bits for logs and plugins.
 *  - `errors`: misuse recorded while building; the verifier adds its own.
 *    A block with errors never runs.
 *
 * Ops are never removed; a back end may skip code after an unconditional
 * exit up to the next label (it is unreachable).
 */

enum class OpKind : uint8_t {
    Alu,
    SetCond,
    MovCond,
    Load,
    Store,
    LoadHost,
    StoreHost,
    SetLabel,
    Br,
    BrCond,
    Call,
    InsnStart,
    GotoTb,
    LookupGoto,
    ExitTb,
};

enum class ValKind : uint8_t { None, Temp, Const, Global, Env };

struct IrVal {
    ValKind kind = ValKind::None;
    KeelIrType type = KEEL_IR_I64;
    uint32_t index = 0; // temp number or global index
    uint64_t imm = 0;   // constant value, or a global's env offset
};

struct IrOp {
    OpKind kind{};
    KeelIrType type = KEEL_IR_I64;
    uint8_t alu = 0;  // KeelIrAluOp
    uint8_t cond = 0; // KeelIrCond
    uint8_t mmu_idx = 0;
    uint8_t nargs = 0; // Call
    uint32_t memop = 0;
    uint32_t label = 0;
    uint32_t len = 0;   // InsnStart
    uint32_t raw = 0;   // InsnStart
    uint32_t extra = 0; // MovCond: vf
    uint32_t args_at = 0;
    KeelIrValue v[4] = {0, 0, 0, 0};
    int64_t imm = 0;
    const KeelIrHelper *helper = nullptr;
};

struct IrInsn {
    uint64_t pc = 0;
    unsigned len = 0;
    uint32_t raw = 0;
    uint32_t start_op = 0;         // index of its InsnStart
    std::vector<uint32_t> mem_ops; // indexes of its Load/Store ops
};

struct IrBlock {
    std::vector<IrVal> values{IrVal{}}; // [0] is "no value"
    std::vector<IrOp> ops;
    std::vector<int32_t> labels; // label -> SetLabel op index, -1 if unset; label 0 unused
    std::vector<IrInsn> insns;
    std::vector<KeelIrValue> call_args;
    std::vector<std::string> errors;
    uint32_t n_temps = 0;
    const KeelCpuOps *cpu = nullptr; // for globals' names and types

    const IrVal &val(KeelIrValue v) const { return v < values.size() ? values[v] : values[0]; }
};

// Whether `k` ends a path (nothing after it runs unless a label is set).
inline bool op_is_terminal(OpKind k)
{
    return k == OpKind::Br || k == OpKind::GotoTb || k == OpKind::LookupGoto || k == OpKind::ExitTb;
}

// Checks types, labels, exits and helper signatures; appends to b.errors. True if the block may run.
bool verify(IrBlock &b);

// The -d op text of the block: one line per op, QEMU-like.
std::string print_block(const IrBlock &b);
// One op as text (no newline).
std::string print_op(const IrBlock &b, const IrOp &op);

const char *alu_name(unsigned op);
unsigned alu_arity(unsigned op);
const char *cond_name(unsigned cond);

} // namespace keel::exec
