// SPDX-License-Identifier: MIT
// The RISC-V translator (guest instructions -> keel IR): its IR globals, entry point and helper descriptors.
#pragma once

#include <cstdint>

#include <keel/keel.h>

#include "decode.h"

namespace keel::rv
{

// IR globals: 0..31 x0..x31, 32 pc, 33..64 f0..f31, 65 res_addr, 66 res_val, 67 instret
// (all KEEL_IR_I64, offsets into RvCpu). x0 is declared so that indexes equal register
// numbers; the translator never names it.
constexpr unsigned GLOBAL_X0 = 0, GLOBAL_PC = 32, GLOBAL_F0 = 33, GLOBAL_RES_ADDR = 65, GLOBAL_RES_VAL = 66,
                   GLOBAL_INSTRET = 67, NUM_GLOBALS = 68;
extern const KeelIrGlobal kGlobals[NUM_GLOBALS];

// KeelCpuOps.translate.
void translate(void *env, KeelIrBuilder *b, const KeelIrBuilderOps *ops, uint64_t pc, uint64_t flags,
               unsigned max_insns);

// IR descriptors of the helpers in rv_cpu.h (helpers.cpp), plus the fetch-fault helper below.
namespace helper
{
extern const KeelIrHelper csr, raise, ecall, ebreak, mret, sret, wfi, sfence_vma, fence_i, fs_dirty,
    check_frm, fetch_fault;
} // namespace helper

// The rv_f* helper that computes FP op `op` (for the ops that the translator
// does not expand inline), or nullptr.
const KeelIrHelper *fp_helper(Op op);

} // namespace keel::rv

extern "C" {
// The second half of a block's first instruction could not be fetched: ask
// the MMU for an instruction fetch at `vaddr` so that it records the right
// exception (page fault or access fault, tval = vaddr).
void rv_helper_fetch_fault(void *env, uint64_t vaddr);
}
