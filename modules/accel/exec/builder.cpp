// SPDX-License-Identifier: MIT
// The IR builder: KeelIrBuilderOps over an IrBlock, including the instrumentation cursor.
#include "builder.h"

#include <cstdarg>
#include <cstdio>

namespace keel::exec
{

namespace
{

void error(KeelIrBuilder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void error(KeelIrBuilder *b, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    IrBlock &blk = b->block;
    blk.errors.push_back("op " + std::to_string(b->at_end ? blk.ops.size() : b->cursor) + ": " + buf);
}

bool valid_type(unsigned t)
{
    return t <= KEEL_IR_PTR;
}

KeelIrValue add_value(KeelIrBuilder *b, const IrVal &v)
{
    b->block.values.push_back(v);
    return static_cast<KeelIrValue>(b->block.values.size() - 1);
}

// Insert `op` at the cursor, keeping every recorded position (labels, insn
// starts, memory ops) pointing at the same op.
void emit(KeelIrBuilder *b, const IrOp &op)
{
    IrBlock &blk = b->block;
    if (b->at_end) {
        blk.ops.push_back(op);
        return;
    }
    uint32_t at = b->cursor++;
    blk.ops.insert(blk.ops.begin() + at, op);
    for (int32_t &l : blk.labels)
        if (l >= 0 && static_cast<uint32_t>(l) >= at) ++l;
    for (IrInsn &in : blk.insns) {
        if (in.start_op >= at) ++in.start_op;
        for (uint32_t &m : in.mem_ops)
            if (m >= at) ++m;
    }
}

// The guest instruction emission currently belongs to (the last insn_start).
IrInsn *current_insn(KeelIrBuilder *b)
{
    return b->block.insns.empty() ? nullptr : &b->block.insns.back();
}

KeelIrValue b_temp(KeelIrBuilder *b, KeelIrType type)
{
    if (!valid_type(type)) {
        error(b, "temp: invalid type %u", static_cast<unsigned>(type));
        type = KEEL_IR_I64;
    }
    IrVal v;
    v.kind = ValKind::Temp;
    v.type = type;
    v.index = b->block.n_temps++;
    return add_value(b, v);
}

KeelIrValue b_const_int(KeelIrBuilder *b, KeelIrType type, uint64_t value)
{
    if (type != KEEL_IR_I32 && type != KEEL_IR_I64) {
        error(b, "const_int: type must be I32 or I64, not %u", static_cast<unsigned>(type));
        type = KEEL_IR_I64;
    }
    IrVal v;
    v.kind = ValKind::Const;
    v.type = type;
    v.imm = type == KEEL_IR_I32 ? static_cast<uint32_t>(value) : value;
    return add_value(b, v);
}

KeelIrValue b_const_ptr(KeelIrBuilder *b, const void *ptr)
{
    IrVal v;
    v.kind = ValKind::Const;
    v.type = KEEL_IR_PTR;
    v.imm = reinterpret_cast<uintptr_t>(ptr);
    return add_value(b, v);
}

KeelIrValue b_global(KeelIrBuilder *b, unsigned index)
{
    const KeelCpuOps *cpu = b->block.cpu;
    if (!cpu || index >= cpu->n_globals) {
        error(b, "global: index %u out of range (%u globals)", index, cpu ? cpu->n_globals : 0);
        return 0;
    }
    const KeelIrGlobal &g = cpu->globals[index];
    if (g.type > KEEL_IR_F64) {
        error(b, "global %s: invalid type %u", g.name, static_cast<unsigned>(g.type));
        return 0;
    }
    // One value per global, so back ends can recognise the same field.
    for (size_t i = 1; i < b->block.values.size(); ++i) {
        const IrVal &v = b->block.values[i];
        if (v.kind == ValKind::Global && v.index == index) return static_cast<KeelIrValue>(i);
    }
    IrVal v;
    v.kind = ValKind::Global;
    v.type = g.type;
    v.index = index;
    v.imm = g.offset;
    return add_value(b, v);
}

KeelIrValue b_env(KeelIrBuilder *b)
{
    for (size_t i = 1; i < b->block.values.size(); ++i)
        if (b->block.values[i].kind == ValKind::Env) return static_cast<KeelIrValue>(i);
    IrVal v;
    v.kind = ValKind::Env;
    v.type = KEEL_IR_PTR;
    return add_value(b, v);
}

void b_alu(KeelIrBuilder *b, KeelIrAluOp op, KeelIrValue dst, KeelIrValue a, KeelIrValue c)
{
    if (static_cast<unsigned>(op) >= KEEL_IR_ALU_COUNT) {
        error(b, "alu: unknown operation %u", static_cast<unsigned>(op));
        return;
    }
    IrOp o;
    o.kind = OpKind::Alu;
    o.alu = static_cast<uint8_t>(op);
    o.type = b->block.val(dst).type;
    o.v[0] = dst;
    o.v[1] = a;
    o.v[2] = c;
    emit(b, o);
}

void b_setcond(KeelIrBuilder *b, KeelIrCond cond, KeelIrValue dst, KeelIrValue a, KeelIrValue c)
{
    IrOp o;
    o.kind = OpKind::SetCond;
    o.cond = static_cast<uint8_t>(cond);
    o.type = b->block.val(dst).type;
    o.v[0] = dst;
    o.v[1] = a;
    o.v[2] = c;
    if (static_cast<unsigned>(cond) > KEEL_IR_GTU) error(b, "setcond: unknown condition %u", cond);
    emit(b, o);
}

void b_movcond(KeelIrBuilder *b, KeelIrCond cond, KeelIrValue dst, KeelIrValue a, KeelIrValue c,
               KeelIrValue vt, KeelIrValue vf)
{
    IrOp o;
    o.kind = OpKind::MovCond;
    o.cond = static_cast<uint8_t>(cond);
    o.type = b->block.val(dst).type;
    o.v[0] = dst;
    o.v[1] = a;
    o.v[2] = c;
    o.v[3] = vt;
    o.extra = vf;
    if (static_cast<unsigned>(cond) > KEEL_IR_GTU) error(b, "movcond: unknown condition %u", cond);
    emit(b, o);
}

void mem_op(KeelIrBuilder *b, OpKind kind, KeelIrValue v, KeelIrValue addr, KeelIrMemOp mop, unsigned mmu_idx)
{
    const char *name = kind == OpKind::Load ? "load" : "store";
    IrOp o;
    o.kind = kind;
    o.type = b->block.val(v).type;
    o.v[0] = v;
    o.v[1] = addr;
    o.memop = mop;
    o.mmu_idx = static_cast<uint8_t>(mmu_idx);
    if (mop & ~(KEEL_MO_SIZE_MASK | KEEL_MO_SIGN | KEEL_MO_ALIGN | KEEL_MO_RMW))
        error(b, "%s: unknown memop bits 0x%x", name, mop);
    if ((mop & KEEL_MO_RMW) && kind != OpKind::Load) error(b, "%s: KEEL_MO_RMW is for loads", name);
    unsigned n_mmu = b->block.cpu ? b->block.cpu->n_mmu_idx : 8;
    if (mmu_idx >= n_mmu || mmu_idx >= 8)
        error(b, "%s: mmu index %u out of range (%u)", name, mmu_idx, n_mmu);
    IrInsn *in = current_insn(b);
    if (!in) {
        error(b, "%s before the first insn_start", name);
        emit(b, o);
        return;
    }
    uint32_t at = b->at_end ? static_cast<uint32_t>(b->block.ops.size()) : b->cursor;
    emit(b, o);
    if (b->at_end) {
        in->mem_ops.push_back(at);
    } else {
        // Instrumentation may not add guest accesses: they would be invisible to plugins' counts.
        error(b, "%s inserted through the instrumentation cursor", name);
    }
}

void b_load(KeelIrBuilder *b, KeelIrValue dst, KeelIrValue addr, KeelIrMemOp mop, unsigned mmu_idx)
{
    mem_op(b, OpKind::Load, dst, addr, mop, mmu_idx);
}

void b_store(KeelIrBuilder *b, KeelIrValue val, KeelIrValue addr, KeelIrMemOp mop, unsigned mmu_idx)
{
    mem_op(b, OpKind::Store, val, addr, mop, mmu_idx);
}

void host_op(KeelIrBuilder *b, OpKind kind, KeelIrValue v, KeelIrValue base, int64_t offset, KeelIrMemOp mop)
{
    IrOp o;
    o.kind = kind;
    o.type = b->block.val(v).type;
    o.v[0] = v;
    o.v[1] = base;
    o.imm = offset;
    o.memop = mop;
    if (mop & ~(KEEL_MO_SIZE_MASK | KEEL_MO_SIGN))
        error(b, "%s: memop 0x%x: host accesses take a size and a sign only",
              kind == OpKind::LoadHost ? "load_host" : "store_host", mop);
    emit(b, o);
}

void b_load_host(KeelIrBuilder *b, KeelIrValue dst, KeelIrValue base, int64_t offset, KeelIrMemOp mop)
{
    host_op(b, OpKind::LoadHost, dst, base, offset, mop);
}

void b_store_host(KeelIrBuilder *b, KeelIrValue val, KeelIrValue base, int64_t offset, KeelIrMemOp mop)
{
    host_op(b, OpKind::StoreHost, val, base, offset, mop);
}

KeelIrLabel b_label(KeelIrBuilder *b)
{
    b->block.labels.push_back(-1);
    return static_cast<KeelIrLabel>(b->block.labels.size() - 1);
}

bool valid_label(KeelIrBuilder *b, KeelIrLabel l, const char *what)
{
    if (l == 0 || l >= b->block.labels.size()) {
        error(b, "%s: unknown label %u", what, l);
        return false;
    }
    return true;
}

void b_set_label(KeelIrBuilder *b, KeelIrLabel l)
{
    if (!valid_label(b, l, "set_label")) return;
    if (b->block.labels[l] >= 0) {
        error(b, "set_label: label L%u set twice", l);
        return;
    }
    uint32_t at = b->at_end ? static_cast<uint32_t>(b->block.ops.size()) : b->cursor;
    IrOp o;
    o.kind = OpKind::SetLabel;
    o.label = l;
    emit(b, o);
    b->block.labels[l] = static_cast<int32_t>(at);
}

void b_br(KeelIrBuilder *b, KeelIrLabel l)
{
    if (!valid_label(b, l, "br")) return;
    IrOp o;
    o.kind = OpKind::Br;
    o.label = l;
    emit(b, o);
}

void b_brcond(KeelIrBuilder *b, KeelIrCond cond, KeelIrValue a, KeelIrValue c, KeelIrLabel l)
{
    if (!valid_label(b, l, "brcond")) return;
    IrOp o;
    o.kind = OpKind::BrCond;
    o.cond = static_cast<uint8_t>(cond);
    o.type = b->block.val(a).type;
    o.v[0] = a;
    o.v[1] = c;
    o.label = l;
    if (static_cast<unsigned>(cond) > KEEL_IR_GTU) error(b, "brcond: unknown condition %u", cond);
    emit(b, o);
}

void b_call(KeelIrBuilder *b, const KeelIrHelper *h, KeelIrValue dst, const KeelIrValue *args, unsigned nargs)
{
    if (!h || !h->fn) {
        error(b, "call: no helper");
        return;
    }
    if (nargs > KEEL_IR_MAX_HELPER_ARGS || (nargs && !args)) {
        error(b, "call %s: %u arguments", h->name ? h->name : "?", nargs);
        return;
    }
    IrOp o;
    o.kind = OpKind::Call;
    o.helper = h;
    o.type = h->has_ret ? static_cast<KeelIrType>(h->ret) : KEEL_IR_I64;
    o.v[0] = dst;
    o.nargs = static_cast<uint8_t>(nargs);
    o.args_at = static_cast<uint32_t>(b->block.call_args.size());
    b->block.call_args.insert(b->block.call_args.end(), args, args + nargs);
    emit(b, o);
}

void b_insn_start(KeelIrBuilder *b, uint64_t pc, unsigned len, uint32_t raw)
{
    if (!b->at_end) {
        error(b, "insn_start inserted through the instrumentation cursor");
        return;
    }
    IrOp o;
    o.kind = OpKind::InsnStart;
    o.imm = static_cast<int64_t>(pc);
    o.len = len;
    o.raw = raw;
    IrInsn in;
    in.pc = pc;
    in.len = len;
    in.raw = raw;
    in.start_op = static_cast<uint32_t>(b->block.ops.size());
    b->block.insns.push_back(in);
    emit(b, o);
}

void b_goto_tb(KeelIrBuilder *b, unsigned slot)
{
    if (slot > 1) error(b, "goto_tb: slot %u (0 or 1)", slot);
    IrOp o;
    o.kind = OpKind::GotoTb;
    o.imm = slot;
    emit(b, o);
}

void b_lookup_and_goto(KeelIrBuilder *b)
{
    IrOp o;
    o.kind = OpKind::LookupGoto;
    emit(b, o);
}

void b_exit_tb(KeelIrBuilder *b)
{
    IrOp o;
    o.kind = OpKind::ExitTb;
    emit(b, o);
}

int b_fetch(KeelIrBuilder *b, uint64_t pc, unsigned len, uint32_t *bits)
{
    if (!bits || len < 1 || len > 4 || !b->fetch) return KEEL_ERR;
    return b->fetch(pc, len, bits);
}

unsigned b_num_insns(KeelIrBuilder *b)
{
    return static_cast<unsigned>(b->block.insns.size());
}

void b_insn_info(KeelIrBuilder *b, unsigned insn, uint64_t *pc, unsigned *len, uint32_t *raw, unsigned *n_mem)
{
    const IrInsn *in = insn < b->block.insns.size() ? &b->block.insns[insn] : nullptr;
    if (!in) error(b, "insn_info: instruction %u out of range", insn);
    if (pc) *pc = in ? in->pc : 0;
    if (len) *len = in ? in->len : 0;
    if (raw) *raw = in ? in->raw : 0;
    if (n_mem) *n_mem = in ? static_cast<unsigned>(in->mem_ops.size()) : 0;
}

void b_mem_info(KeelIrBuilder *b, unsigned insn, unsigned k, KeelIrMemOp *mop, int *is_store,
                unsigned *mmu_idx, KeelIrValue *addr)
{
    const IrOp *op = nullptr;
    if (insn < b->block.insns.size() && k < b->block.insns[insn].mem_ops.size())
        op = &b->block.ops[b->block.insns[insn].mem_ops[k]];
    else
        error(b, "mem_info: memory operation %u of instruction %u out of range", k, insn);
    if (mop) *mop = op ? op->memop : 0;
    if (is_store) *is_store = op ? op->kind == OpKind::Store : 0;
    if (mmu_idx) *mmu_idx = op ? op->mmu_idx : 0;
    if (addr) *addr = op ? op->v[1] : 0;
}

void b_mem_value(KeelIrBuilder *b, unsigned insn, unsigned k, KeelIrValue *value, KeelIrType *type)
{
    const IrOp *op = nullptr;
    if (insn < b->block.insns.size() && k < b->block.insns[insn].mem_ops.size())
        op = &b->block.ops[b->block.insns[insn].mem_ops[k]];
    else
        error(b, "mem_value: memory operation %u of instruction %u out of range", k, insn);
    if (value) *value = op ? op->v[0] : 0;
    if (type) *type = op ? b->block.val(op->v[0]).type : KEEL_IR_I64;
}

void b_set_cursor(KeelIrBuilder *b, KeelIrCursor where, unsigned insn, unsigned k)
{
    IrBlock &blk = b->block;
    if (where == KEEL_IR_AT_END) {
        b->at_end = true;
        return;
    }
    if (insn >= blk.insns.size()) {
        error(b, "set_cursor: instruction %u out of range", insn);
        return;
    }
    const IrInsn &in = blk.insns[insn];
    switch (where) {
    case KEEL_IR_BEFORE_INSN:
        b->cursor = in.start_op + 1;
        break;
    case KEEL_IR_BEFORE_MEM:
    case KEEL_IR_AFTER_MEM:
        if (k >= in.mem_ops.size()) {
            error(b, "set_cursor: memory operation %u of instruction %u out of range", k, insn);
            return;
        }
        b->cursor = in.mem_ops[k] + (where == KEEL_IR_AFTER_MEM ? 1 : 0);
        break;
    default:
        error(b, "set_cursor: unknown position %u", static_cast<unsigned>(where));
        return;
    }
    b->at_end = false;
}

const KeelIrBuilderOps kOps = {
    sizeof(KeelIrBuilderOps),
    b_temp,
    b_const_int,
    b_const_ptr,
    b_global,
    b_env,
    b_alu,
    b_setcond,
    b_movcond,
    b_load,
    b_store,
    b_load_host,
    b_store_host,
    b_label,
    b_set_label,
    b_br,
    b_brcond,
    b_call,
    b_insn_start,
    b_goto_tb,
    b_lookup_and_goto,
    b_exit_tb,
    b_fetch,
    b_num_insns,
    b_insn_info,
    b_mem_info,
    b_set_cursor,
    b_mem_value,
    {},
};

} // namespace

const KeelIrBuilderOps &builder_ops()
{
    return kOps;
}

} // namespace keel::exec
