// SPDX-License-Identifier: MIT
// A recording KeelIrBuilderOps for translator tests: records, checks (types, labels, exits), prints and runs
// IR.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <keel/keel.h>

namespace irrec
{

enum class VKind { Temp, Const, Global, Env };

struct Value {
    VKind kind;
    KeelIrType type;
    uint64_t payload; // constant value, global index or temp number
};

enum class OpKind {
    InsnStart,
    Alu,
    Setcond,
    Movcond,
    Load,
    Store,
    Label,
    Br,
    Brcond,
    Call,
    GotoTb,
    Lookup,
    ExitTb
};

struct IrOp {
    OpKind kind = OpKind::InsnStart;
    unsigned sub = 0;                   // alu op, condition, slot, label
    KeelIrValue v[5] = {0, 0, 0, 0, 0}; // operands (dst first where there is one)
    std::vector<KeelIrValue> args;      // call arguments
    const KeelIrHelper *helper = nullptr;
    uint32_t mop = 0;
    unsigned mmu = 0;
    uint64_t pc = 0; // insn_start
    unsigned len = 0;
    uint32_t raw = 0;
};

// How a block run by Recorder::run ended.
struct RunResult {
    enum Kind { GotoTb, Lookup, ExitTb, MemFault, Raised } kind = ExitTb;
    unsigned slot = 0;
    uint64_t fault_addr = 0;        // MemFault
    bool unaligned = false;         // MemFault: KEEL_MO_ALIGN violated (else: no memory there)
    bool rmw = false;               // MemFault: by the read of a read-modify-write (faults as a store)
    std::vector<std::string> calls; // helper names, in order
    uint64_t insn_pc = 0;           // pc of the instruction that faulted/raised
};

struct Recorder {
    // --- what the translator sees ---
    KeelIrBuilderOps ops{};
    std::map<uint64_t, uint8_t> code; // instruction memory; a missing byte is a fetch fault
    const KeelIrGlobal *globals = nullptr;
    unsigned n_globals = 0;

    // --- what it produced ---
    std::vector<Value> values{Value{VKind::Const, KEEL_IR_I64, 0}}; // index 0 = "no value"
    std::vector<IrOp> ops_list;
    std::vector<int> label_pos; // op index of each label, -1 if not set
    std::vector<std::string> errors;
    unsigned n_temps = 0;

    Recorder(const KeelIrGlobal *g, unsigned n);

    void put32(uint64_t pc, uint32_t w);
    void put16(uint64_t pc, uint16_t p);

    // Text of the block, one op per line; insn_start lines only if asked.
    std::string text(bool with_starts = false) const;
    // Structural checks: every path ends in an exit, labels set once, ops
    // after an exit are reachable only through a label. Adds to errors.
    void check_structure();
    // Number of ops that are not insn_start.
    size_t n_ops() const;
    std::string value_text(KeelIrValue v) const;

    // --- running the IR on a CPU state (globals at kGlobals offsets) ---
    std::map<uint64_t, uint8_t> mem; // guest data memory; a missing byte is a bus fault
    // Called for helpers; returns the helper's result. Raise by setting *raised.
    std::function<uint64_t(const KeelIrHelper *, const std::vector<uint64_t> &, bool *raised)> on_call;
    RunResult run(void *state);
    void write_mem(uint64_t addr, uint64_t v, unsigned size);
    uint64_t read_mem(uint64_t addr, unsigned size) const;
};

} // namespace irrec
