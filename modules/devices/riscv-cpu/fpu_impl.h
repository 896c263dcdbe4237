// SPDX-License-Identifier: MIT
// The two engines behind the rv_f* helpers (host SSE and exact integer code), exposed for the FPU tests.
#pragma once

#include <cstdint>

namespace keel::rv::fpu
{

// fflags bits.
enum : uint32_t { FF_NX = 0x01, FF_UF = 0x02, FF_OF = 0x04, FF_DZ = 0x08, FF_NV = 0x10 };
// Static rounding modes (the rm field; 7 = dynamic is resolved before these are called).
enum : unsigned { RM_RNE = 0, RM_RTZ = 1, RM_RDN = 2, RM_RUP = 3, RM_RMM = 4 };

// Fma is a*b+c; the four RISC-V fused forms negate a and/or c before calling it.
enum class Op { Add, Sub, Mul, Div, Sqrt, Fma };

// Operands and results are raw IEEE bits, singles in the low 32 bits (already
// unboxed; results are not boxed). NaN results are canonical. Flags are ORed
// into `flags`.
//
// Exact integer arithmetic: every rounding mode, every host.
uint64_t soft_op_s(Op op, uint64_t a, uint64_t b, uint64_t c, unsigned rm, uint32_t &flags);
uint64_t soft_op_d(Op op, uint64_t a, uint64_t b, uint64_t c, unsigned rm, uint32_t &flags);
// The host FPU. Returns false (and leaves `res`/`flags` alone) when it cannot
// give the answer: RMM with an inexact result, Fma without host FMA, or a host
// other than x86-64.
bool hw_op_s(Op op, uint64_t a, uint64_t b, uint64_t c, unsigned rm, uint64_t &res, uint32_t &flags);
bool hw_op_d(Op op, uint64_t a, uint64_t b, uint64_t c, unsigned rm, uint64_t &res, uint32_t &flags);
// The fast path the helpers take in RNE once NX is accrued: plain host arithmetic
// on zero or normal operands, accepted only when the result is finite and not
// tiny (or an exact zero), so that NX is the only flag the operation can raise.
// Returns false (leaving `res` alone) when it does not apply, or when the
// host's MXCSR is not its default (RNE, no flush to zero).
bool fast_op_s(Op op, uint64_t a, uint64_t b, uint64_t c, uint64_t &res);
bool fast_op_d(Op op, uint64_t a, uint64_t b, uint64_t c, uint64_t &res);

} // namespace keel::rv::fpu
