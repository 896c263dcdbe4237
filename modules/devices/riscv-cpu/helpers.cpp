// SPDX-License-Identifier: MIT
// IR descriptors (signature and flags) of every helper the RISC-V translator calls, and the fetch-fault
// helper.
#include <type_traits>

#include "rv_cpu.h"
#include "translate.h"

namespace keel::rv
{

namespace
{

template <typename T> constexpr uint8_t ir_type()
{
    static_assert(std::is_same_v<T, uint64_t> || std::is_same_v<T, uint32_t> || std::is_same_v<T, void *>,
                  "helper argument types are uint32_t, uint64_t or void *");
    if constexpr (std::is_same_v<T, uint64_t>)
        return KEEL_IR_I64;
    else if constexpr (std::is_same_v<T, uint32_t>)
        return KEEL_IR_I32;
    else
        return KEEL_IR_PTR;
}

// The declared signature is derived from the C prototype, so a descriptor
// cannot disagree with the function it describes.
template <typename R, typename... A> KeelIrHelper make(const char *name, R (*fn)(A...), uint32_t flags)
{
    static_assert(sizeof...(A) <= KEEL_IR_MAX_HELPER_ARGS);
    KeelIrHelper h{};
    h.name = name;
    h.fn = reinterpret_cast<void (*)(void)>(fn);
    if constexpr (!std::is_void_v<R>) {
        h.has_ret = 1;
        h.ret = ir_type<R>();
    }
    h.nargs = sizeof...(A);
    unsigned i = 0;
    ((h.args[i++] = ir_type<A>()), ...);
    h.flags = flags;
    return h;
}

#define RV_HELPER(fn, flags) make(#fn, &fn, flags)

constexpr uint32_t kRaise = KEEL_HELPER_MAY_RAISE;
// FP helpers only touch fflags/frm, which are not IR globals.
constexpr uint32_t kFp = 0;
constexpr uint32_t kPure = KEEL_HELPER_PURE;

} // namespace

namespace helper
{
// csr: reads instret (rdinstret) and writes it (minstret); the engine must
// flush cached globals before the call and reload after it.
const KeelIrHelper csr =
    RV_HELPER(rv_helper_csr, kRaise | KEEL_HELPER_READS_GLOBALS | KEEL_HELPER_WRITES_GLOBALS);
const KeelIrHelper raise = RV_HELPER(rv_helper_raise, kRaise);
const KeelIrHelper ecall = RV_HELPER(rv_helper_ecall, kRaise);
const KeelIrHelper ebreak = RV_HELPER(rv_helper_ebreak, kRaise);
// xRET write the pc and res_addr globals. READS as well, so that no cached
// dirty global is dropped without being written back.
const KeelIrHelper mret =
    RV_HELPER(rv_helper_mret, kRaise | KEEL_HELPER_READS_GLOBALS | KEEL_HELPER_WRITES_GLOBALS);
const KeelIrHelper sret =
    RV_HELPER(rv_helper_sret, kRaise | KEEL_HELPER_READS_GLOBALS | KEEL_HELPER_WRITES_GLOBALS);
const KeelIrHelper wfi = RV_HELPER(rv_helper_wfi, kRaise);
const KeelIrHelper sfence_vma = RV_HELPER(rv_helper_sfence_vma, kRaise);
const KeelIrHelper fence_i = RV_HELPER(rv_helper_fence_i, 0);
const KeelIrHelper fs_dirty = RV_HELPER(rv_helper_fs_dirty, 0);
const KeelIrHelper check_frm = RV_HELPER(rv_helper_check_frm, kRaise);
const KeelIrHelper fetch_fault = RV_HELPER(rv_helper_fetch_fault, kRaise);
} // namespace helper

namespace
{

#define RV_FP_HELPER_BIN(op)                                     \
    const KeelIrHelper h_##op##_s = RV_HELPER(rv_##op##_s, kFp); \
    const KeelIrHelper h_##op##_d = RV_HELPER(rv_##op##_d, kFp);
RV_FP_BINOPS(RV_FP_HELPER_BIN)
RV_FP_HELPER_BIN(fsqrt)
RV_FP_HELPER_BIN(fmin)
RV_FP_HELPER_BIN(fmax)
RV_FP_HELPER_BIN(fmadd)
RV_FP_HELPER_BIN(fmsub)
RV_FP_HELPER_BIN(fnmsub)
RV_FP_HELPER_BIN(fnmadd)
RV_FP_HELPER_BIN(feq)
RV_FP_HELPER_BIN(flt)
RV_FP_HELPER_BIN(fle)
#undef RV_FP_HELPER_BIN
#define RV_FP_HELPER_PURE(op)                                      \
    const KeelIrHelper h_##op##_s = RV_HELPER(rv_##op##_s, kPure); \
    const KeelIrHelper h_##op##_d = RV_HELPER(rv_##op##_d, kPure);
RV_FP_HELPER_PURE(fsgnj)
RV_FP_HELPER_PURE(fsgnjn)
RV_FP_HELPER_PURE(fsgnjx)
RV_FP_HELPER_PURE(fclass)
#undef RV_FP_HELPER_PURE
#define RV_FP_HELPER_CVT(k) const KeelIrHelper h_fcvt_##k = RV_HELPER(rv_fcvt_##k, kFp);
RV_FP_CVTS(RV_FP_HELPER_CVT)
#undef RV_FP_HELPER_CVT

} // namespace

const KeelIrHelper *fp_helper(Op op)
{
    switch (op) {
#define RV_FP_CASE(OP, h) \
    case Op::OP:          \
        return &h;
        RV_FP_CASE(FADD_S, h_fadd_s) RV_FP_CASE(FADD_D, h_fadd_d);
        RV_FP_CASE(FSUB_S, h_fsub_s) RV_FP_CASE(FSUB_D, h_fsub_d);
        RV_FP_CASE(FMUL_S, h_fmul_s) RV_FP_CASE(FMUL_D, h_fmul_d);
        RV_FP_CASE(FDIV_S, h_fdiv_s) RV_FP_CASE(FDIV_D, h_fdiv_d);
        RV_FP_CASE(FSQRT_S, h_fsqrt_s) RV_FP_CASE(FSQRT_D, h_fsqrt_d);
        RV_FP_CASE(FMIN_S, h_fmin_s) RV_FP_CASE(FMIN_D, h_fmin_d);
        RV_FP_CASE(FMAX_S, h_fmax_s) RV_FP_CASE(FMAX_D, h_fmax_d);
        RV_FP_CASE(FMADD_S, h_fmadd_s) RV_FP_CASE(FMADD_D, h_fmadd_d);
        RV_FP_CASE(FMSUB_S, h_fmsub_s) RV_FP_CASE(FMSUB_D, h_fmsub_d);
        RV_FP_CASE(FNMSUB_S, h_fnmsub_s) RV_FP_CASE(FNMSUB_D, h_fnmsub_d);
        RV_FP_CASE(FNMADD_S, h_fnmadd_s) RV_FP_CASE(FNMADD_D, h_fnmadd_d);
        RV_FP_CASE(FEQ_S, h_feq_s) RV_FP_CASE(FEQ_D, h_feq_d);
        RV_FP_CASE(FLT_S, h_flt_s) RV_FP_CASE(FLT_D, h_flt_d);
        RV_FP_CASE(FLE_S, h_fle_s) RV_FP_CASE(FLE_D, h_fle_d);
        RV_FP_CASE(FSGNJ_S, h_fsgnj_s) RV_FP_CASE(FSGNJ_D, h_fsgnj_d);
        RV_FP_CASE(FSGNJN_S, h_fsgnjn_s) RV_FP_CASE(FSGNJN_D, h_fsgnjn_d);
        RV_FP_CASE(FSGNJX_S, h_fsgnjx_s) RV_FP_CASE(FSGNJX_D, h_fsgnjx_d);
        RV_FP_CASE(FCLASS_S, h_fclass_s) RV_FP_CASE(FCLASS_D, h_fclass_d);
        RV_FP_CASE(FCVT_W_S, h_fcvt_w_s) RV_FP_CASE(FCVT_WU_S, h_fcvt_wu_s);
        RV_FP_CASE(FCVT_L_S, h_fcvt_l_s) RV_FP_CASE(FCVT_LU_S, h_fcvt_lu_s);
        RV_FP_CASE(FCVT_W_D, h_fcvt_w_d) RV_FP_CASE(FCVT_WU_D, h_fcvt_wu_d);
        RV_FP_CASE(FCVT_L_D, h_fcvt_l_d) RV_FP_CASE(FCVT_LU_D, h_fcvt_lu_d);
        RV_FP_CASE(FCVT_S_W, h_fcvt_s_w) RV_FP_CASE(FCVT_S_WU, h_fcvt_s_wu);
        RV_FP_CASE(FCVT_S_L, h_fcvt_s_l) RV_FP_CASE(FCVT_S_LU, h_fcvt_s_lu);
        RV_FP_CASE(FCVT_D_W, h_fcvt_d_w) RV_FP_CASE(FCVT_D_WU, h_fcvt_d_wu);
        RV_FP_CASE(FCVT_D_L, h_fcvt_d_l) RV_FP_CASE(FCVT_D_LU, h_fcvt_d_lu);
        RV_FP_CASE(FCVT_S_D, h_fcvt_s_d) RV_FP_CASE(FCVT_D_S, h_fcvt_d_s);
#undef RV_FP_CASE
    default:
        return nullptr;
    }
}

} // namespace keel::rv

extern "C" void rv_helper_fetch_fault(void *env, uint64_t vaddr)
{
    using namespace keel::rv;
    auto *cpu = static_cast<RvCpu *>(env);
    KeelTlbFill out{};
    // The fetch MMU index is the privilege (rv_cpu.h), which the block's flags
    // matched when it was entered. A failed fill records the exception.
    if (cpu_tlb_fill(env, vaddr, KEEL_ACCESS_EXEC, cpu->priv, 0, &out) == KEEL_OK) {
        // The page became fetchable after this block was translated (the
        // guest mapped it): the cached block is stale. Drop the translations
        // so that the instruction is translated again from memory.
        const KeelCpuEngine *engine = cpu->common.engine;
        if (engine && engine->tb_flush) engine->tb_flush(&cpu->common);
    }
}
