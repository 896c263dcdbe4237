// SPDX-License-Identifier: MIT
// The RISC-V translator: fetches and decodes one block of guest code and emits its keel IR, one short
// function per instruction class.
#include "translate.h"

#include <cstddef>
#include <initializer_list>

#include "rv_cpu.h"

namespace keel::rv
{

// clang-format off
#define RV_REGS32(M)                                                                                         \
    M(0)                                                                                                     \
    M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15) M(16) M(17) M(18) M(19) \
        M(20) M(21) M(22) M(23) M(24) M(25) M(26) M(27) M(28) M(29) M(30) M(31)
// clang-format on
#define RV_XGLOBAL(i) {"x" #i, offsetof(RvCpu, x) + 8 * (i), KEEL_IR_I64},
#define RV_FGLOBAL(i) {"f" #i, offsetof(RvCpu, f) + 8 * (i), KEEL_IR_I64},
const KeelIrGlobal kGlobals[NUM_GLOBALS] = {
    RV_REGS32(RV_XGLOBAL){"pc", offsetof(RvCpu, pc), KEEL_IR_I64},
    RV_REGS32(RV_FGLOBAL){"res_addr", offsetof(RvCpu, res_addr), KEEL_IR_I64},
    {"res_val", offsetof(RvCpu, res_val), KEEL_IR_I64},
    {"instret", offsetof(RvCpu, instret), KEEL_IR_I64},
};
#undef RV_XGLOBAL
#undef RV_FGLOBAL
#undef RV_REGS32

namespace
{

constexpr uint64_t kPageMask = ~uint64_t{0xfff};
constexpr uint64_t kNanBox = 0xffffffff00000000ull;
constexpr uint64_t kSignD = 1ull << 63;
constexpr uint16_t kCsrMinstret = 0xb02;

// An operand whose value may be known at translation time (x0, immediates),
// so that identities (x + 0, 0 | x, ...) fold into moves.
struct Src {
    KeelIrValue v = 0;
    bool known = false;
    uint64_t k = 0;
};

bool is_zero(const Src &s)
{
    return s.known && s.k == 0;
}

KeelIrCond swapped(KeelIrCond c)
{
    switch (c) {
    case KEEL_IR_LT:
        return KEEL_IR_GT;
    case KEEL_IR_GE:
        return KEEL_IR_LE;
    case KEEL_IR_LTU:
        return KEEL_IR_GTU;
    case KEEL_IR_GEU:
        return KEEL_IR_LEU;
    default:
        return c; // EQ, NE
    }
}

// The IR ALU op of a register-register instruction computed the same way as
// its register-immediate form, or KEEL_IR_ALU_COUNT.
KeelIrAluOp alu_of(Op op)
{
    switch (op) {
    case Op::ADD:
    case Op::ADDI:
        return KEEL_IR_ADD;
    case Op::SUB:
        return KEEL_IR_SUB;
    case Op::SLL:
    case Op::SLLI:
        return KEEL_IR_SHL;
    case Op::SRL:
    case Op::SRLI:
        return KEEL_IR_SHR;
    case Op::SRA:
    case Op::SRAI:
        return KEEL_IR_SAR;
    case Op::XOR:
    case Op::XORI:
        return KEEL_IR_XOR;
    case Op::OR:
    case Op::ORI:
        return KEEL_IR_OR;
    case Op::AND:
    case Op::ANDI:
        return KEEL_IR_AND;
    case Op::MUL:
        return KEEL_IR_MUL;
    case Op::MULH:
        return KEEL_IR_MULHS;
    case Op::MULHSU:
        return KEEL_IR_MULHSU;
    case Op::MULHU:
        return KEEL_IR_MULHU;
    case Op::DIV:
        return KEEL_IR_DIVS;
    case Op::DIVU:
        return KEEL_IR_DIVU;
    case Op::REM:
        return KEEL_IR_REMS;
    case Op::REMU:
        return KEEL_IR_REMU;
    case Op::ANDN:
        return KEEL_IR_ANDC;
    case Op::ORN:
        return KEEL_IR_ORC;
    case Op::XNOR:
        return KEEL_IR_XNOR;
    case Op::MAX:
        return KEEL_IR_MAXS;
    case Op::MAXU:
        return KEEL_IR_MAXU;
    case Op::MIN:
        return KEEL_IR_MINS;
    case Op::MINU:
        return KEEL_IR_MINU;
    case Op::ROL:
        return KEEL_IR_ROTL;
    case Op::ROR:
    case Op::RORI:
        return KEEL_IR_ROTR;
    default:
        return KEEL_IR_ALU_COUNT;
    }
}

// Unary Zbb ops that are one IR op.
KeelIrAluOp unary_of(Op op)
{
    switch (op) {
    case Op::CLZ:
        return KEEL_IR_CLZ;
    case Op::CTZ:
        return KEEL_IR_CTZ;
    case Op::CPOP:
        return KEEL_IR_CTPOP;
    case Op::SEXT_B:
        return KEEL_IR_EXT8S;
    case Op::SEXT_H:
        return KEEL_IR_EXT16S;
    case Op::ZEXT_H:
        return KEEL_IR_EXT16U;
    case Op::REV8:
        return KEEL_IR_BSWAP;
    default:
        return KEEL_IR_ALU_COUNT;
    }
}

// *W ops computed on the low 32 bits (I32) and sign-extended.
KeelIrAluOp w32_of(Op op)
{
    switch (op) {
    case Op::SLLW:
        return KEEL_IR_SHL;
    case Op::SRLW:
        return KEEL_IR_SHR;
    case Op::SRAW:
        return KEEL_IR_SAR;
    case Op::ROLW:
        return KEEL_IR_ROTL;
    case Op::RORW:
        return KEEL_IR_ROTR;
    case Op::DIVW:
        return KEEL_IR_DIVS;
    case Op::DIVUW:
        return KEEL_IR_DIVU;
    case Op::REMW:
        return KEEL_IR_REMS;
    case Op::REMUW:
        return KEEL_IR_REMU;
    default:
        return KEEL_IR_ALU_COUNT;
    }
}

KeelIrCond branch_cond(Op op)
{
    switch (op) {
    case Op::BEQ:
        return KEEL_IR_EQ;
    case Op::BNE:
        return KEEL_IR_NE;
    case Op::BLT:
        return KEEL_IR_LT;
    case Op::BGE:
        return KEEL_IR_GE;
    case Op::BLTU:
        return KEEL_IR_LTU;
    default:
        return KEEL_IR_GEU;
    }
}

KeelIrMemOp load_mop(Op op)
{
    switch (op) {
    case Op::LB:
        return KEEL_MO_8 | KEEL_MO_SIGN;
    case Op::LH:
        return KEEL_MO_16 | KEEL_MO_SIGN;
    case Op::LW:
        return KEEL_MO_32 | KEEL_MO_SIGN;
    case Op::LBU:
        return KEEL_MO_8;
    case Op::LHU:
        return KEEL_MO_16;
    case Op::LWU:
        return KEEL_MO_32;
    default:
        return KEEL_MO_64;
    }
}

KeelIrMemOp store_mop(Op op)
{
    switch (op) {
    case Op::SB:
        return KEEL_MO_8;
    case Op::SH:
        return KEEL_MO_16;
    case Op::SW:
        return KEEL_MO_32;
    default:
        return KEEL_MO_64;
    }
}

// The operation an AMO applies to (old value, x[rs2]); MOV for swap.
KeelIrAluOp amo_op(Op op)
{
    switch (op) {
    case Op::AMOADD_W:
    case Op::AMOADD_D:
        return KEEL_IR_ADD;
    case Op::AMOXOR_W:
    case Op::AMOXOR_D:
        return KEEL_IR_XOR;
    case Op::AMOAND_W:
    case Op::AMOAND_D:
        return KEEL_IR_AND;
    case Op::AMOOR_W:
    case Op::AMOOR_D:
        return KEEL_IR_OR;
    case Op::AMOMIN_W:
    case Op::AMOMIN_D:
        return KEEL_IR_MINS;
    case Op::AMOMAX_W:
    case Op::AMOMAX_D:
        return KEEL_IR_MAXS;
    case Op::AMOMINU_W:
    case Op::AMOMINU_D:
        return KEEL_IR_MINU;
    case Op::AMOMAXU_W:
    case Op::AMOMAXU_D:
        return KEEL_IR_MAXU;
    default:
        return KEEL_IR_MOV;
    }
}

// One block under translation.
class Translator
{
  public:
    Translator(RvCpu *cpu, KeelIrBuilder *b, const KeelIrBuilderOps *ops, uint64_t pc, uint64_t flags)
        : cpu_(cpu), b_(b), ops_(ops), page_(pc & kPageMask), priv_(tbf_priv(flags)),
          dmmu_(tbf_data_mmu(flags)), fs_(tbf_fs(flags)),
          exact_instret_(keel_services && KEEL_SERVICE_AVAILABLE(keel_services, plugins_active) &&
                         keel_services->plugins_active && keel_services->plugins_active())
    {
    }

    void run(uint64_t pc, unsigned max_insns);

  private:
    RvCpu *cpu_;
    KeelIrBuilder *b_;
    const KeelIrBuilderOps *ops_;
    uint64_t page_;
    unsigned priv_, dmmu_, fs_;
    unsigned n_ = 0;       // instructions of the block before the current one
    unsigned counted_ = 0; // instructions already added to the instret global
    bool fs_dirty_done_ = false, frm_checked_ = false;
    // -plugin: instret counts each instruction as it ends, so that a plugin callback reading minstret
    // between two instructions sees exactly the ones before (tcg's optimiser merges the additions again
    // where nothing looks).
    const bool exact_instret_;
    uint64_t pc_ = 0, next_ = 0; // the current instruction and its successor
    uint32_t bits_ = 0;          // its raw bits (tval of an illegal instruction)
    KeelIrValue globals_[NUM_GLOBALS] = {};
    KeelIrValue env_ = 0;

    // ---- values ----
    KeelIrValue glob(unsigned i)
    {
        if (!globals_[i]) globals_[i] = ops_->global(b_, i);
        return globals_[i];
    }
    KeelIrValue env()
    {
        if (!env_) env_ = ops_->env(b_);
        return env_;
    }
    KeelIrValue k64(uint64_t v) { return ops_->const_int(b_, KEEL_IR_I64, v); }
    KeelIrValue k32(uint32_t v) { return ops_->const_int(b_, KEEL_IR_I32, v); }
    KeelIrValue t64() { return ops_->temp(b_, KEEL_IR_I64); }
    KeelIrValue t32() { return ops_->temp(b_, KEEL_IR_I32); }
    KeelIrValue xv(unsigned r) { return r ? glob(GLOBAL_X0 + r) : k64(0); }
    KeelIrValue fv(unsigned r) { return glob(GLOBAL_F0 + r); }
    Src xs(unsigned r) { return r ? Src{glob(GLOBAL_X0 + r)} : Src{0, true, 0}; }
    static Src ks(uint64_t k) { return Src{0, true, k}; }
    KeelIrValue val(const Src &s) { return s.known ? k64(s.k) : s.v; }
    // Destination x[rd]; rd is never 0 here (callers drop writes to x0).
    KeelIrValue xd(unsigned rd) { return glob(GLOBAL_X0 + rd); }

    // ---- emission ----
    void alu(KeelIrAluOp op, KeelIrValue d, KeelIrValue a, KeelIrValue c = 0) { ops_->alu(b_, op, d, a, c); }
    void mov(KeelIrValue d, KeelIrValue a) { alu(KEEL_IR_MOV, d, a); }
    void call(const KeelIrHelper &h, KeelIrValue dst, std::initializer_list<KeelIrValue> args)
    {
        ops_->call(b_, &h, dst, args.begin(), static_cast<unsigned>(args.size()));
    }
    void bin(KeelIrAluOp op, KeelIrValue d, const Src &a, const Src &c);
    void sync_instret(unsigned upto);
    // A guest access may fault, and a fault ends the block there: instret first counts the instructions
    // before this one, so a trap handler reading minstret sees exactly those that retired.
    void guest_load(KeelIrValue dst, KeelIrValue addr, KeelIrMemOp mop)
    {
        sync_instret(n_);
        ops_->load(b_, dst, addr, mop, dmmu_);
    }
    void guest_store(KeelIrValue val, KeelIrValue addr, KeelIrMemOp mop)
    {
        sync_instret(n_);
        ops_->store(b_, val, addr, mop, dmmu_);
    }
    void jump_to(uint64_t dest, unsigned slot);
    void end_at(uint64_t pc);
    void fetch_fault(uint64_t pc, uint64_t vaddr);
    void mark_fs_dirty();
    KeelIrValue address(unsigned rs1, int64_t imm);

    // ---- instructions: each returns true if it ended the block ----
    bool insn(const Insn &in);
    bool illegal();
    bool alu_insn(const Insn &in);
    bool branch(const Insn &in);
    bool jump(const Insn &in);
    void load(const Insn &in);
    void store(const Insn &in);
    void lr(const Insn &in);
    void sc(const Insn &in);
    void amo(const Insn &in);
    bool system(const Insn &in);
    bool csr(const Insn &in);
    void fp(const Insn &in);
    bool ext_enabled(Ext e) const;
};

// d = a op c, folding the identities x0 and zero immediates produce (mv, li,
// neg, sext.w-like forms) so that they cost one move.
void Translator::bin(KeelIrAluOp op, KeelIrValue d, const Src &a, const Src &c)
{
    if (is_zero(c)) {
        switch (op) {
        case KEEL_IR_ADD:
        case KEEL_IR_SUB:
        case KEEL_IR_OR:
        case KEEL_IR_XOR:
        case KEEL_IR_SHL:
        case KEEL_IR_SHR:
        case KEEL_IR_SAR:
        case KEEL_IR_ROTL:
        case KEEL_IR_ROTR:
        case KEEL_IR_ANDC:
            return mov(d, val(a));
        case KEEL_IR_AND:
        case KEEL_IR_MUL:
        case KEEL_IR_MULHS:
        case KEEL_IR_MULHU:
        case KEEL_IR_MULHSU:
            return mov(d, k64(0));
        default:
            break;
        }
    }
    if (is_zero(a)) {
        switch (op) {
        case KEEL_IR_ADD:
        case KEEL_IR_OR:
        case KEEL_IR_XOR:
            return mov(d, val(c));
        case KEEL_IR_SUB:
            return alu(KEEL_IR_NEG, d, val(c));
        case KEEL_IR_AND:
        case KEEL_IR_ANDC:
        case KEEL_IR_MUL:
        case KEEL_IR_MULHS:
        case KEEL_IR_MULHU:
        case KEEL_IR_MULHSU:
        case KEEL_IR_SHL:
        case KEEL_IR_SHR:
        case KEEL_IR_SAR:
        case KEEL_IR_ROTL:
        case KEEL_IR_ROTR:
            return mov(d, k64(0));
        default:
            break;
        }
    }
    alu(op, d, val(a), val(c));
}

// Adds the instructions retired since the last update to the instret global.
// Called at every exit and before anything that reads instret, so the counter
// is exact whenever no exception cuts a block short.
void Translator::sync_instret(unsigned upto)
{
    if (upto > counted_) {
        alu(KEEL_IR_ADD, glob(GLOBAL_INSTRET), glob(GLOBAL_INSTRET), k64(upto - counted_));
        counted_ = upto;
    }
}

// Continue at a known pc: chained when it is in the block's page (ir.h's rule
// for goto_tb), through the lookup otherwise.
void Translator::jump_to(uint64_t dest, unsigned slot)
{
    mov(glob(GLOBAL_PC), k64(dest));
    if ((dest & kPageMask) == page_)
        ops_->goto_tb(b_, slot);
    else
        ops_->lookup_and_goto(b_);
}

// End the block before the instruction at pc (limits, page change, fetch failure).
void Translator::end_at(uint64_t pc)
{
    sync_instret(n_);
    jump_to(pc, 0);
}

// The block's first instruction cannot be fetched completely.
void Translator::fetch_fault(uint64_t pc, uint64_t vaddr)
{
    call(helper::fetch_fault, 0, {env(), k64(vaddr)});
    // Reached only if the page has become fetchable since (the helper then
    // dropped the stale translations): run the instruction again.
    mov(glob(GLOBAL_PC), k64(pc));
    ops_->exit_tb(b_);
}

// Before the first write of an f register or fflags in a block whose flags
// say FS is not Dirty. Later instructions of the block need no call: the
// helper set FS Dirty and nothing in between can clear it.
void Translator::mark_fs_dirty()
{
    if (fs_ != 3 && !fs_dirty_done_) {
        call(helper::fs_dirty, 0, {env()});
        fs_dirty_done_ = true;
    }
}

KeelIrValue Translator::address(unsigned rs1, int64_t imm)
{
    if (rs1 == 0) return k64(static_cast<uint64_t>(imm));
    if (imm == 0) return xv(rs1);
    KeelIrValue t = t64();
    alu(KEEL_IR_ADD, t, xv(rs1), k64(static_cast<uint64_t>(imm)));
    return t;
}

bool Translator::ext_enabled(Ext e) const
{
    // misa is fixed per hart (its writes are ignored), so it need not be part
    // of the block flags. Z* extensions are always implemented.
    switch (e) {
    case Ext::M:
        return cpu_->misa & (1u << ('M' - 'A'));
    case Ext::A:
        return cpu_->misa & (1u << ('A' - 'A'));
    case Ext::F:
        return cpu_->misa & (1u << ('F' - 'A'));
    case Ext::D:
        return cpu_->misa & (1u << ('D' - 'A'));
    default:
        return true;
    }
}

bool Translator::illegal()
{
    sync_instret(n_);
    call(helper::raise, 0, {env(), k64(EXC_ILLEGAL_INSN), k64(bits_)});
    ops_->exit_tb(b_);
    return true;
}

bool Translator::insn(const Insn &in)
{
    if (in.op == Op::ILLEGAL) return illegal();
    const InsnInfo &inf = info(in.op);
    if (!ext_enabled(inf.ext)) return illegal();
    if (inf.flags & kFloat) {
        if (fs_ == 0) return illegal();
        fp(in);
        return false;
    }
    if (inf.flags & kBranch) return branch(in);
    if (inf.flags & kJump) return jump(in);
    if (inf.flags & kCsr) return csr(in);
    if (inf.flags & kAtomic) {
        if (in.op == Op::LR_W || in.op == Op::LR_D)
            lr(in);
        else if (in.op == Op::SC_W || in.op == Op::SC_D)
            sc(in);
        else
            amo(in);
        return false;
    }
    if (inf.flags & kLoad) {
        load(in);
        return false;
    }
    if (inf.flags & kStore) {
        store(in);
        return false;
    }
    switch (in.op) {
    case Op::FENCE: // one hart at a time, memory is always coherent
        return false;
    case Op::FENCE_I:
    case Op::ECALL:
    case Op::EBREAK:
    case Op::MRET:
    case Op::SRET:
    case Op::WFI:
    case Op::SFENCE_VMA:
        return system(in);
    default:
        return alu_insn(in);
    }
}

bool Translator::alu_insn(const Insn &in)
{
    const unsigned rd = in.rd;
    const Src a = xs(in.rs1), c = xs(in.rs2), imm = ks(static_cast<uint64_t>(in.imm));
    // Writes to x0 are dropped and these instructions have no other effect
    // (nop, HINTs). The rarer forms below compute into a temporary instead,
    // so that a table row without a translation still ends as illegal.
    if (rd == 0 && (in.op == Op::LUI || in.op == Op::AUIPC || alu_of(in.op) != KEEL_IR_ALU_COUNT ||
                    unary_of(in.op) != KEEL_IR_ALU_COUNT || w32_of(in.op) != KEEL_IR_ALU_COUNT))
        return false;
    const KeelIrValue d = rd ? xd(rd) : t64();
    const Fmt fmt = info(in.op).fmt;
    if (KeelIrAluOp op = alu_of(in.op); op != KEEL_IR_ALU_COUNT) {
        bin(op, d, a, fmt == Fmt::R ? c : imm);
        return false;
    }
    if (KeelIrAluOp op = unary_of(in.op); op != KEEL_IR_ALU_COUNT) {
        alu(op, d, val(a));
        return false;
    }
    if (KeelIrAluOp op = w32_of(in.op); op != KEEL_IR_ALU_COUNT) {
        KeelIrValue a32 = t32(), c32 = t32();
        alu(KEEL_IR_TRUNC_I64_I32, a32, val(a));
        alu(KEEL_IR_TRUNC_I64_I32, c32, val(c));
        alu(op, a32, a32, c32);
        alu(KEEL_IR_EXTS_I32_I64, d, a32);
        return false;
    }
    const uint64_t sh = static_cast<uint64_t>(in.imm);
    switch (in.op) {
    case Op::LUI:
        mov(d, k64(static_cast<uint64_t>(in.imm)));
        break;
    case Op::AUIPC:
        mov(d, k64(pc_ + static_cast<uint64_t>(in.imm)));
        break;
    case Op::SLT:
    case Op::SLTU:
    case Op::SLTI:
    case Op::SLTIU: {
        const bool is_unsigned = in.op == Op::SLTU || in.op == Op::SLTIU;
        const Src rhs = (in.op == Op::SLT || in.op == Op::SLTU) ? c : imm;
        if (in.op == Op::SLTU && in.rs1 == 0) // snez
            ops_->setcond(b_, KEEL_IR_NE, d, val(c), k64(0));
        else
            ops_->setcond(b_, is_unsigned ? KEEL_IR_LTU : KEEL_IR_LT, d, val(a), val(rhs));
        break;
    }
    case Op::ADDW:
    case Op::SUBW:
    case Op::MULW:
    case Op::ADDIW: {
        const KeelIrAluOp op = in.op == Op::SUBW   ? KEEL_IR_SUB
                               : in.op == Op::MULW ? KEEL_IR_MUL
                                                   : KEEL_IR_ADD;
        const Src rhs = in.op == Op::ADDIW ? imm : c;
        if (op != KEEL_IR_MUL && is_zero(rhs)) { // sext.w
            alu(KEEL_IR_EXT32S, d, val(a));
        } else if (op == KEEL_IR_ADD && is_zero(a)) {
            alu(KEEL_IR_EXT32S, d, val(rhs));
        } else {
            bin(op, d, a, rhs);
            alu(KEEL_IR_EXT32S, d, d);
        }
        break;
    }
    case Op::SLLIW:
        if (sh == 0) {
            alu(KEEL_IR_EXT32S, d, val(a));
        } else {
            alu(KEEL_IR_SHL, d, val(a), k64(sh));
            alu(KEEL_IR_EXT32S, d, d);
        }
        break;
    case Op::SRLIW:
    case Op::SRAIW:
        if (sh == 0) {
            alu(KEEL_IR_EXT32S, d, val(a));
        } else {
            // Move the word to the top, then shift it down by 32 + shamt: the
            // result is the sign-extended 32-bit shift (for srliw, bit 31 of
            // the result is 0 since shamt > 0).
            alu(KEEL_IR_SHL, d, val(a), k64(32));
            alu(in.op == Op::SRLIW ? KEEL_IR_SHR : KEEL_IR_SAR, d, d, k64(32 + sh));
        }
        break;
    case Op::RORIW: {
        KeelIrValue a32 = t32();
        alu(KEEL_IR_TRUNC_I64_I32, a32, val(a));
        alu(KEEL_IR_ROTR, a32, a32, k32(static_cast<uint32_t>(sh)));
        alu(KEEL_IR_EXTS_I32_I64, d, a32);
        break;
    }
    case Op::CLZW: {
        KeelIrValue a32 = t32();
        alu(KEEL_IR_TRUNC_I64_I32, a32, val(a));
        alu(KEEL_IR_CLZ, a32, a32);
        alu(KEEL_IR_EXTU_I32_I64, d, a32);
        break;
    }
    case Op::CTZW: { // a bit above the word makes ctz(0) = 32
        KeelIrValue t = t64();
        alu(KEEL_IR_OR, t, val(a), k64(1ull << 32));
        alu(KEEL_IR_CTZ, d, t);
        break;
    }
    case Op::CPOPW: {
        KeelIrValue t = t64();
        alu(KEEL_IR_EXT32U, t, val(a));
        alu(KEEL_IR_CTPOP, d, t);
        break;
    }
    case Op::ADD_UW:
        if (is_zero(c)) { // zext.w
            alu(KEEL_IR_EXT32U, d, val(a));
        } else {
            KeelIrValue t = t64();
            alu(KEEL_IR_EXT32U, t, val(a));
            alu(KEEL_IR_ADD, d, t, val(c));
        }
        break;
    case Op::SH1ADD:
    case Op::SH2ADD:
    case Op::SH3ADD:
    case Op::SH1ADD_UW:
    case Op::SH2ADD_UW:
    case Op::SH3ADD_UW: {
        const unsigned n = (in.op == Op::SH1ADD || in.op == Op::SH1ADD_UW)   ? 1
                           : (in.op == Op::SH2ADD || in.op == Op::SH2ADD_UW) ? 2
                                                                             : 3;
        KeelIrValue t = t64();
        if (in.op == Op::SH1ADD || in.op == Op::SH2ADD || in.op == Op::SH3ADD) {
            alu(KEEL_IR_SHL, t, val(a), k64(n));
        } else {
            alu(KEEL_IR_EXT32U, t, val(a));
            alu(KEEL_IR_SHL, t, t, k64(n));
        }
        alu(KEEL_IR_ADD, d, t, val(c));
        break;
    }
    case Op::SLLI_UW: {
        KeelIrValue t = t64();
        alu(KEEL_IR_EXT32U, t, val(a));
        alu(KEEL_IR_SHL, d, t, k64(sh));
        break;
    }
    case Op::ORC_B: {
        // Per byte: (b & 0x7f) + 0x7f sets bit 7 iff the low 7 bits are not
        // all 0, "| b" adds bit 7 itself; no carry leaves a byte. Then turn
        // each 0x80 into 0xff.
        const uint64_t lo7 = 0x7f7f7f7f7f7f7f7full;
        KeelIrValue t = t64();
        alu(KEEL_IR_AND, t, val(a), k64(lo7));
        alu(KEEL_IR_ADD, t, t, k64(lo7));
        alu(KEEL_IR_OR, t, t, val(a));
        alu(KEEL_IR_AND, t, t, k64(~lo7));
        alu(KEEL_IR_SHR, t, t, k64(7));
        alu(KEEL_IR_MUL, d, t, k64(0xff));
        break;
    }
    case Op::BCLR:
    case Op::BSET:
    case Op::BINV: {
        KeelIrValue bit = t64();
        alu(KEEL_IR_SHL, bit, k64(1), val(c));
        alu(in.op == Op::BCLR ? KEEL_IR_ANDC : in.op == Op::BSET ? KEEL_IR_OR : KEEL_IR_XOR, d, val(a), bit);
        break;
    }
    case Op::BCLRI:
        alu(KEEL_IR_AND, d, val(a), k64(~(1ull << sh)));
        break;
    case Op::BSETI:
        alu(KEEL_IR_OR, d, val(a), k64(1ull << sh));
        break;
    case Op::BINVI:
        alu(KEEL_IR_XOR, d, val(a), k64(1ull << sh));
        break;
    case Op::BEXT:
    case Op::BEXTI: {
        KeelIrValue t = t64();
        alu(KEEL_IR_SHR, t, val(a), in.op == Op::BEXT ? val(c) : k64(sh));
        alu(KEEL_IR_AND, d, t, k64(1));
        break;
    }
    case Op::CZERO_EQZ:
    case Op::CZERO_NEZ: {
        const bool eqz = in.op == Op::CZERO_EQZ;
        if (in.rs2 == 0)
            mov(d, eqz ? k64(0) : val(a));
        else
            ops_->movcond(b_, eqz ? KEEL_IR_EQ : KEEL_IR_NE, d, val(c), k64(0), k64(0), val(a));
        break;
    }
    default:
        // Every row of the table is handled above or in insn(); a row added
        // to the table without a translation is an illegal instruction.
        return illegal();
    }
    return false;
}

bool Translator::branch(const Insn &in)
{
    const uint64_t target = pc_ + static_cast<uint64_t>(in.imm);
    KeelIrCond cond = branch_cond(in.op);
    sync_instret(n_ + 1);
    if (in.rs1 == in.rs2) { // decided at translation time (beq x0, x0 is a jump)
        const bool taken = cond == KEEL_IR_EQ || cond == KEEL_IR_GE || cond == KEEL_IR_GEU;
        jump_to(taken ? target : next_, 0);
        return true;
    }
    KeelIrValue a = xv(in.rs1), c = xv(in.rs2);
    if (in.rs1 == 0) { // keep the constant on the right (bgtz, blez, ...)
        cond = swapped(cond);
        KeelIrValue t = a;
        a = c, c = t;
    }
    KeelIrLabel taken = ops_->label(b_);
    ops_->brcond(b_, cond, a, c, taken);
    jump_to(next_, 0);
    ops_->set_label(b_, taken);
    jump_to(target, 1);
    return true;
}

bool Translator::jump(const Insn &in)
{
    if (in.op == Op::JAL) {
        if (in.rd) mov(xd(in.rd), k64(next_));
        sync_instret(n_ + 1);
        jump_to(pc_ + static_cast<uint64_t>(in.imm), 0);
        return true;
    }
    // jalr: the target is computed into pc before rd is written (rd may be rs1).
    const uint64_t imm = static_cast<uint64_t>(in.imm);
    if (in.rs1 == 0) {
        if (in.rd) mov(xd(in.rd), k64(next_));
        sync_instret(n_ + 1);
        jump_to(imm & ~uint64_t{1}, 0);
        return true;
    }
    KeelIrValue pc = glob(GLOBAL_PC);
    if (imm) {
        alu(KEEL_IR_ADD, pc, xv(in.rs1), k64(imm));
        alu(KEEL_IR_AND, pc, pc, k64(~uint64_t{1}));
    } else {
        alu(KEEL_IR_AND, pc, xv(in.rs1), k64(~uint64_t{1}));
    }
    if (in.rd) mov(xd(in.rd), k64(next_));
    sync_instret(n_ + 1);
    ops_->lookup_and_goto(b_);
    return true;
}

// A load writes x[rd] only when it succeeds, so it loads into the register
// directly; a load to x0 still performs the access (it may fault).
void Translator::load(const Insn &in)
{
    KeelIrValue addr = address(in.rs1, in.imm);
    guest_load(in.rd ? xd(in.rd) : t64(), addr, load_mop(in.op));
}

void Translator::store(const Insn &in)
{
    KeelIrValue addr = address(in.rs1, in.imm);
    guest_store(xv(in.rs2), addr, store_mop(in.op));
}

void Translator::lr(const Insn &in)
{
    const bool w = in.op == Op::LR_W;
    KeelIrValue addr = xv(in.rs1);
    KeelIrValue v = t64();
    guest_load(v, addr, (w ? KEEL_MO_32 | KEEL_MO_SIGN : KEEL_MO_64) | KEEL_MO_ALIGN);
    mov(glob(GLOBAL_RES_ADDR), addr);
    mov(glob(GLOBAL_RES_VAL), v);
    if (in.rd) mov(xd(in.rd), v);
}

// Succeeds iff the reservation is for this address and memory still holds
// the value LR saw; either way the reservation is gone afterwards.
void Translator::sc(const Insn &in)
{
    const bool w = in.op == Op::SC_W;
    const KeelIrMemOp size = w ? KEEL_MO_32 : KEEL_MO_64;
    KeelIrValue addr = xv(in.rs1);
    // Without a reservation for this address SC fails without touching memory (a reservation only
    // exists for an aligned address LR could read). With one, the read is that of a read-modify-write:
    // an unwritable page faults as a store.
    KeelIrLabel fail = ops_->label(b_), done = ops_->label(b_);
    sync_instret(n_); // here, on both paths: the accesses below sit on one of them only
    ops_->brcond(b_, KEEL_IR_NE, glob(GLOBAL_RES_ADDR), addr, fail);
    KeelIrValue v = t64();
    guest_load(v, addr, size | (w ? KEEL_MO_SIGN : 0) | KEEL_MO_ALIGN | KEEL_MO_RMW);
    ops_->brcond(b_, KEEL_IR_NE, v, glob(GLOBAL_RES_VAL), fail);
    guest_store(xv(in.rs2), addr, size | KEEL_MO_ALIGN);
    mov(glob(GLOBAL_RES_ADDR), k64(~uint64_t{0}));
    if (in.rd) mov(xd(in.rd), k64(0));
    ops_->br(b_, done);
    ops_->set_label(b_, fail);
    mov(glob(GLOBAL_RES_ADDR), k64(~uint64_t{0}));
    if (in.rd) mov(xd(in.rd), k64(1));
    ops_->set_label(b_, done);
}

// Load, compute, store: atomic because the engine runs every hart on one thread.
void Translator::amo(const Insn &in)
{
    const bool w = (info(in.op).match & 0x1000) == 0; // funct3 010 = .w, 011 = .d
    const KeelIrMemOp size = w ? KEEL_MO_32 : KEEL_MO_64;
    KeelIrValue addr = xv(in.rs1);
    KeelIrValue old = t64();
    guest_load(old, addr, size | (w ? KEEL_MO_SIGN : 0) | KEEL_MO_ALIGN | KEEL_MO_RMW);
    const KeelIrAluOp op = amo_op(in.op);
    KeelIrValue nv = xv(in.rs2);
    if (op != KEEL_IR_MOV) {
        KeelIrValue src = nv;
        if (w && (op == KEEL_IR_MINS || op == KEEL_IR_MAXS || op == KEEL_IR_MINU || op == KEEL_IR_MAXU)) {
            // old is the sign-extended word; compare it with the sign-extended
            // word of rs2 (sign extension keeps the unsigned order of words too).
            src = t64();
            alu(KEEL_IR_EXT32S, src, nv);
        }
        nv = t64();
        alu(op, nv, old, src);
    }
    guest_store(nv, addr, size | KEEL_MO_ALIGN);
    if (in.rd) mov(xd(in.rd), old);
}

bool Translator::system(const Insn &in)
{
    switch (in.op) {
    case Op::ECALL:
    case Op::EBREAK:
        // Always raise: the instruction does not retire, the ones before it did.
        sync_instret(n_);
        call(in.op == Op::ECALL ? helper::ecall : helper::ebreak, 0, {env()});
        ops_->exit_tb(b_);
        return true;
    case Op::MRET:
    case Op::SRET:
        if (priv_ < (in.op == Op::MRET ? PRV_M : PRV_S)) return illegal();
        // The helper writes the pc global, or raises (SRET under mstatus.TSR).
        sync_instret(n_);
        call(in.op == Op::MRET ? helper::mret : helper::sret, 0, {env()});
        sync_instret(n_ + 1);
        ops_->exit_tb(b_);
        return true;
    case Op::WFI:
    case Op::SFENCE_VMA:
    case Op::FENCE_I:
        if (in.op != Op::FENCE_I && priv_ == PRV_U) return illegal();
        sync_instret(n_); // WFI and SFENCE.VMA raise under mstatus.TW / TVM
        if (in.op == Op::WFI)
            call(helper::wfi, 0, {env()});
        else if (in.op == Op::FENCE_I)
            call(helper::fence_i, 0, {env()});
        else
            call(helper::sfence_vma, 0, {env(), xv(in.rs1), xv(in.rs2), k32(bits_)});
        // Back to the execution loop: new flags, flushed translations, or a halt.
        mov(glob(GLOBAL_PC), k64(next_));
        sync_instret(n_ + 1);
        ops_->exit_tb(b_);
        return true;
    default:
        return illegal();
    }
}

bool Translator::csr(const Insn &in)
{
    const bool imm_form = in.op == Op::CSRRWI || in.op == Op::CSRRSI || in.op == Op::CSRRCI;
    const bool writes = in.op == Op::CSRRW || in.op == Op::CSRRWI || (imm_form ? in.imm != 0 : in.rs1 != 0);
    KeelIrValue src = imm_form ? k64(static_cast<uint64_t>(in.imm)) : xv(in.rs1);
    sync_instret(n_); // instret reads see every instruction before this one
    KeelIrValue old = t64();
    call(helper::csr, old, {env(), src, k32(bits_)});
    if (in.rd) mov(xd(in.rd), old);
    if (!writes) return false; // a read changes no translation state
    mov(glob(GLOBAL_PC), k64(next_));
    // A write to minstret replaces the instruction's own increment (Zicsr).
    if (in.csr != kCsrMinstret) sync_instret(n_ + 1);
    ops_->exit_tb(b_);
    return true;
}

void Translator::fp(const Insn &in)
{
    const Fmt fmt = info(in.op).fmt;
    switch (in.op) {
    case Op::FLW:
    case Op::FLD: {
        KeelIrValue addr = address(in.rs1, in.imm);
        if (in.op == Op::FLD && (fs_ == 3 || fs_dirty_done_)) {
            guest_load(fv(in.rd), addr, KEEL_MO_64);
            return;
        }
        // The register is written after the load, the last op that may fault.
        KeelIrValue v = t64();
        guest_load(v, addr, in.op == Op::FLW ? KEEL_MO_32 : KEEL_MO_64);
        mark_fs_dirty();
        if (in.op == Op::FLW)
            alu(KEEL_IR_OR, fv(in.rd), v, k64(kNanBox));
        else
            mov(fv(in.rd), v);
        return;
    }
    case Op::FSW:
    case Op::FSD:
        guest_store(fv(in.rs2), address(in.rs1, in.imm), in.op == Op::FSW ? KEEL_MO_32 : KEEL_MO_64);
        return;
    case Op::FMV_X_W:
        if (in.rd) alu(KEEL_IR_EXT32S, xd(in.rd), fv(in.rs1));
        return;
    case Op::FMV_X_D:
        if (in.rd) mov(xd(in.rd), fv(in.rs1));
        return;
    case Op::FMV_W_X:
        mark_fs_dirty();
        bin(KEEL_IR_OR, fv(in.rd), xs(in.rs1), ks(kNanBox));
        return;
    case Op::FMV_D_X:
        mark_fs_dirty();
        mov(fv(in.rd), xv(in.rs1));
        return;
    case Op::FSGNJ_D:
    case Op::FSGNJN_D:
    case Op::FSGNJX_D: {
        // Bit operations on the sign; fmv.d, fneg.d and fabs.d are one op.
        mark_fs_dirty();
        KeelIrValue d = fv(in.rd), a = fv(in.rs1), sign = k64(kSignD);
        if (in.rs1 == in.rs2) {
            if (in.op != Op::FSGNJ_D)
                alu(in.op == Op::FSGNJN_D ? KEEL_IR_XOR : KEEL_IR_ANDC, d, a, sign);
            else if (in.rd != in.rs1)
                mov(d, a);
            return;
        }
        KeelIrValue s = t64();
        if (in.op == Op::FSGNJX_D) {
            alu(KEEL_IR_AND, s, fv(in.rs2), sign);
            alu(KEEL_IR_XOR, d, a, s);
            return;
        }
        if (in.op == Op::FSGNJ_D)
            alu(KEEL_IR_AND, s, fv(in.rs2), sign); // sign of rs2
        else
            alu(KEEL_IR_ANDC, s, sign, fv(in.rs2)); // inverted sign of rs2
        KeelIrValue m = t64();
        alu(KEEL_IR_ANDC, m, a, sign);
        alu(KEEL_IR_OR, d, m, s);
        return;
    }
    default:
        break;
    }

    const KeelIrHelper *h = fp_helper(in.op);
    if (!h) { // a table row without a translation
        illegal();
        return;
    }
    const bool to_x = fmt == Fmt::F_X || fmt == Fmt::F_X_RM || fmt == Fmt::FCMP;
    const bool from_x = fmt == Fmt::X_F || fmt == Fmt::X_F_RM;
    if (in.op == Op::FCLASS_S || in.op == Op::FCLASS_D) {
        // Pure and flag-free: nothing to do for x0.
        if (in.rd) call(*h, xd(in.rd), {fv(in.rs1)});
        return;
    }
    if (in.rm == 7 && !frm_checked_) {
        // frm cannot change inside a block (CSR writes end it): check once.
        sync_instret(n_); // it raises illegal instruction for a reserved frm
        call(helper::check_frm, 0, {env(), k32(bits_)});
        frm_checked_ = true;
    }
    mark_fs_dirty(); // every op below writes fflags or an f register
    // Arguments follow the declared signature: env if it takes one, the
    // source registers in order, then the rounding mode.
    KeelIrValue args[KEEL_IR_MAX_HELPER_ARGS];
    unsigned n = 0, ai = 0;
    const bool has_env = h->nargs && h->args[0] == KEEL_IR_PTR;
    const bool has_rm = h->nargs && h->args[h->nargs - 1] == KEEL_IR_I32;
    if (has_env) args[n++] = env(), ai++;
    const uint8_t srcs[3] = {in.rs1, in.rs2, in.rs3};
    for (unsigned s = 0; ai < h->nargs - (has_rm ? 1u : 0u); ai++, s++)
        args[n++] = from_x ? xv(srcs[s]) : fv(srcs[s]);
    if (has_rm) args[n++] = k32(in.rm);
    KeelIrValue dst = to_x ? (in.rd ? xd(in.rd) : t64()) : fv(in.rd);
    ops_->call(b_, h, dst, args, n);
}

void Translator::run(uint64_t pc, unsigned max_insns)
{
    if (max_insns == 0) max_insns = 1;
    for (;;) {
        // A block stays in the page of its first instruction, so that every
        // goto_tb and fall-through is judged against one mapping.
        if (n_ > 0 && (n_ >= max_insns || (pc & kPageMask) != page_)) return end_at(pc);
        uint32_t lo = 0, hi = 0;
        if (ops_->fetch(b_, pc, 2, &lo) != KEEL_OK) {
            if (n_ > 0) return end_at(pc);
            // The engine fetched the block's first byte, so only a sub-page
            // protection region can get here; the MMU names the fault.
            ops_->insn_start(b_, pc, 2, 0);
            return fetch_fault(pc, pc);
        }
        uint32_t bits = lo & 0xffff;
        const unsigned len = (bits & 3) == 3 ? 4 : 2;
        if (len == 4) {
            if (ops_->fetch(b_, pc + 2, 2, &hi) != KEEL_OK) {
                if (n_ > 0) return end_at(pc);
                // The first instruction crosses into a page that faults: the
                // exception is raised for pc + 2 with the instruction's pc.
                ops_->insn_start(b_, pc, 4, bits);
                return fetch_fault(pc, pc + 2);
            }
            bits |= (hi & 0xffff) << 16;
        }
        ops_->insn_start(b_, pc, len, bits);
        const Insn in = decode(bits);
        pc_ = pc;
        next_ = pc + len;
        bits_ = bits;
        if (insn(in)) return;
        if (exact_instret_) sync_instret(n_ + 1);
        n_++;
        pc = next_;
    }
}

} // namespace

void translate(void *env, KeelIrBuilder *b, const KeelIrBuilderOps *ops, uint64_t pc, uint64_t flags,
               unsigned max_insns)
{
    Translator(static_cast<RvCpu *>(env), b, ops, pc, flags).run(pc, max_insns);
}

} // namespace keel::rv
