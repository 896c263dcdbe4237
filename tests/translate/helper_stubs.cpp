// SPDX-License-Identifier: MIT
// Test scaffolding: stand-ins for the hart's helpers (cpu/csr/trap/mmu, fpu) so the translator links alone.
//
// The translator only takes the helpers' addresses; the tests run the IR with
// their own helper dispatch (irrec::Recorder::on_call), so these are never
// called except cpu_tlb_fill, whose behaviour the fetch-fault test chooses.
#include "rv_cpu.h"
#include "translate.h"

int g_stub_tlb_fill_result = KEEL_ERR;

// No kernel: no plugins, so the translator counts instret as usual.
const KeelServices *keel_services = nullptr;

extern "C" {
uint64_t rv_helper_csr(void *, uint64_t, uint32_t)
{
    return 0;
}
void rv_helper_raise(void *, uint64_t, uint64_t) {}
void rv_helper_ecall(void *) {}
void rv_helper_ebreak(void *) {}
void rv_helper_mret(void *) {}
void rv_helper_sret(void *) {}
void rv_helper_wfi(void *) {}
void rv_helper_sfence_vma(void *, uint64_t, uint64_t, uint32_t) {}
void rv_helper_fence_i(void *) {}
void rv_helper_fs_dirty(void *) {}
void rv_helper_check_frm(void *, uint32_t) {}

#define STUB_BIN(op)                                           \
    uint64_t rv_##op##_s(void *, uint64_t, uint64_t, uint32_t) \
    {                                                          \
        return 0;                                              \
    }                                                          \
    uint64_t rv_##op##_d(void *, uint64_t, uint64_t, uint32_t) \
    {                                                          \
        return 0;                                              \
    }
RV_FP_BINOPS(STUB_BIN)
#define STUB_R4(op)                                                      \
    uint64_t rv_##op##_s(void *, uint64_t, uint64_t, uint64_t, uint32_t) \
    {                                                                    \
        return 0;                                                        \
    }                                                                    \
    uint64_t rv_##op##_d(void *, uint64_t, uint64_t, uint64_t, uint32_t) \
    {                                                                    \
        return 0;                                                        \
    }
STUB_R4(fmadd)
STUB_R4(fmsub)
STUB_R4(fnmsub)
STUB_R4(fnmadd)
#define STUB_ENV2(op)                                \
    uint64_t rv_##op##_s(void *, uint64_t, uint64_t) \
    {                                                \
        return 0;                                    \
    }                                                \
    uint64_t rv_##op##_d(void *, uint64_t, uint64_t) \
    {                                                \
        return 0;                                    \
    }
STUB_ENV2(fmin)
STUB_ENV2(fmax)
STUB_ENV2(feq)
STUB_ENV2(flt)
STUB_ENV2(fle)
#define STUB_PURE2(op)                       \
    uint64_t rv_##op##_s(uint64_t, uint64_t) \
    {                                        \
        return 0;                            \
    }                                        \
    uint64_t rv_##op##_d(uint64_t, uint64_t) \
    {                                        \
        return 0;                            \
    }
STUB_PURE2(fsgnj)
STUB_PURE2(fsgnjn)
STUB_PURE2(fsgnjx)
uint64_t rv_fclass_s(uint64_t)
{
    return 0;
}
uint64_t rv_fclass_d(uint64_t)
{
    return 0;
}
uint64_t rv_fsqrt_s(void *, uint64_t, uint32_t)
{
    return 0;
}
uint64_t rv_fsqrt_d(void *, uint64_t, uint32_t)
{
    return 0;
}
#define STUB_CVT(k)                                  \
    uint64_t rv_fcvt_##k(void *, uint64_t, uint32_t) \
    {                                                \
        return 0;                                    \
    }
RV_FP_CVTS(STUB_CVT)
}

namespace keel::rv
{
int cpu_tlb_fill(void *, uint64_t, KeelAccess, unsigned, int, KeelTlbFill *)
{
    return g_stub_tlb_fill_result;
}
} // namespace keel::rv
