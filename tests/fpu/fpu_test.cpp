// SPDX-License-Identifier: MIT
// RISC-V F/D helpers: spec-derived cases, a QEMU reference table, and the host engine against the exact one.
#include <catch2/catch.hpp>

#include <bit>
#include <cfenv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "fpu_impl.h"
#include "rv_cpu.h"

using namespace keel::rv;
using namespace keel::rv::fpu;

namespace
{

constexpr uint64_t BOX = 0xffffffff00000000;
constexpr uint64_t QNAN_S = 0xffffffff7fc00000, QNAN_D = 0x7ff8000000000000;
constexpr unsigned RNE = 0, RTZ = 1, RDN = 2, RUP = 3, RMM = 4, DYN = 7;
constexpr uint32_t NV = 0x10, DZ = 0x08, OF = 0x04, UF = 0x02, NX = 0x01;

uint64_t s(float f)
{
    return BOX | std::bit_cast<uint32_t>(f);
}
uint64_t sb(uint32_t bits)
{
    return BOX | bits;
}
uint64_t d(double f)
{
    return std::bit_cast<uint64_t>(f);
}

// One helper call on a fresh hart: result and the flags it raised.
struct Out {
    uint64_t v;
    uint32_t fl;
    bool operator==(const Out &) const = default;
};
std::ostream &operator<<(std::ostream &os, const Out &o)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, "{%#llx, flags %#x}", (unsigned long long)o.v, o.fl);
    return os << buf;
}

template <class Fn> Out call(Fn fn, uint32_t frm = 0)
{
    RvCpu cpu{};
    cpu.frm = frm;
    uint64_t v = fn(&cpu);
    return {v, cpu.fflags};
}

Out bin(uint64_t (*f)(void *, uint64_t, uint64_t, uint32_t), uint64_t a, uint64_t b, unsigned rm)
{
    return call([&](RvCpu *c) { return f(c, a, b, rm); });
}
Out un(uint64_t (*f)(void *, uint64_t, uint32_t), uint64_t a, unsigned rm)
{
    return call([&](RvCpu *c) { return f(c, a, rm); });
}
Out fma3(uint64_t (*f)(void *, uint64_t, uint64_t, uint64_t, uint32_t), uint64_t a, uint64_t b, uint64_t c,
         unsigned rm)
{
    return call([&](RvCpu *cpu) { return f(cpu, a, b, c, rm); });
}
Out cmp(uint64_t (*f)(void *, uint64_t, uint64_t), uint64_t a, uint64_t b)
{
    return call([&](RvCpu *c) { return f(c, a, b); });
}

} // namespace

TEST_CASE("round to nearest, ties to max magnitude, and the other modes on ties", "[fpu][rmm]")
{
    // 1 + 2^-24 is exactly halfway between 1 and 1 + 2^-23 (the next single).
    const uint64_t one = s(1.0f), tie = s(0x1p-24f), up = s(1.0f + 0x1p-23f);
    CHECK(bin(rv_fadd_s, one, tie, RNE) == Out{one, NX}); // 1 is even
    CHECK(bin(rv_fadd_s, one, tie, RMM) == Out{up, NX});
    CHECK(bin(rv_fadd_s, one, tie, RTZ) == Out{one, NX});
    CHECK(bin(rv_fadd_s, one, tie, RDN) == Out{one, NX});
    CHECK(bin(rv_fadd_s, one, tie, RUP) == Out{up, NX});
    // Negative: away from zero is downwards.
    CHECK(bin(rv_fadd_s, s(-1.0f), s(-0x1p-24f), RMM) == Out{s(-1.0f - 0x1p-23f), NX});
    CHECK(bin(rv_fadd_s, s(-1.0f), s(-0x1p-24f), RDN) == Out{s(-1.0f - 0x1p-23f), NX});
    CHECK(bin(rv_fadd_s, s(-1.0f), s(-0x1p-24f), RUP) == Out{s(-1.0f), NX});
    CHECK(bin(rv_fsub_s, s(-1.0f), s(0x1p-24f), RMM) == Out{s(-1.0f - 0x1p-23f), NX});
    // A tie whose lower neighbour is odd: RNE and RMM agree.
    CHECK(bin(rv_fadd_s, up, tie, RNE) == Out{s(1.0f + 0x1p-22f), NX});
    CHECK(bin(rv_fadd_s, up, tie, RMM) == Out{s(1.0f + 0x1p-22f), NX});
    // Double: 1 + 2^-53.
    CHECK(bin(rv_fadd_d, d(1.0), d(0x1p-53), RNE) == Out{d(1.0), NX});
    CHECK(bin(rv_fadd_d, d(1.0), d(0x1p-53), RMM) == Out{d(1.0 + 0x1p-52), NX});
    CHECK(bin(rv_fsub_d, d(-1.0), d(0x1p-53), RMM) == Out{d(-1.0 - 0x1p-52), NX});
    // Just below and above a tie: RMM rounds to nearest.
    CHECK(bin(rv_fadd_d, d(1.0), d(0x1p-53 - 0x1p-106), RMM) == Out{d(1.0), NX});
    CHECK(bin(rv_fadd_d, d(1.0), d(0x1p-53 + 0x1p-105), RMM) == Out{d(1.0 + 0x1p-52), NX});
    // (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24: a product tie.
    const uint64_t f12 = s(1.0f + 0x1p-12f);
    CHECK(bin(rv_fmul_s, f12, f12, RNE) == Out{s(1.0f + 0x1p-11f), NX});
    CHECK(bin(rv_fmul_s, f12, f12, RMM) == Out{s(1.0f + 0x1p-11f + 0x1p-23f), NX});
    CHECK(fma3(rv_fmadd_s, f12, f12, s(0.0f), RMM) == Out{s(1.0f + 0x1p-11f + 0x1p-23f), NX});
    CHECK(fma3(rv_fmadd_s, s(1.0f), s(1.0f), tie, RMM) == Out{up, NX});
    CHECK(fma3(rv_fnmadd_s, s(1.0f), s(1.0f), tie, RMM) == Out{s(-1.0f - 0x1p-23f), NX});
    // (1 + 2^-27)^2 = 1 + 2^-26 + 2^-54 in double: not a tie, 2^-26 survives exactly, the rest is below half.
    const uint64_t d27 = d(1.0 + 0x1p-27);
    CHECK(bin(rv_fmul_d, d27, d27, RMM) == Out{d(1.0 + 0x1p-26), NX});
    CHECK(bin(rv_fmul_d, d27, d27, RUP) == Out{d(1.0 + 0x1p-26 + 0x1p-52), NX});
    // (1 + 2^-26.5...) exact ties in double: (1 + 2^-26)^2 = 1 + 2^-25 + 2^-52 is exact.
    CHECK(bin(rv_fmul_d, d(1.0 + 0x1p-26), d(1.0 + 0x1p-26), RMM) == Out{d(1.0 + 0x1p-25 + 0x1p-52), 0});
    CHECK(fma3(rv_fmadd_d, d(1.0), d(1.0), d(0x1p-53), RMM) == Out{d(1.0 + 0x1p-52), NX});
    CHECK(fma3(rv_fmsub_d, d(1.0), d(1.0), d(-0x1p-53), RMM) == Out{d(1.0 + 0x1p-52), NX});
    // Division: 2^-149 / 2 is halfway between 0 and the smallest subnormal.
    const uint64_t tiny = sb(1);
    CHECK(bin(rv_fdiv_s, tiny, s(2.0f), RNE) == Out{s(0.0f), UF | NX});
    CHECK(bin(rv_fdiv_s, tiny, s(2.0f), RMM) == Out{tiny, UF | NX});
    CHECK(bin(rv_fdiv_s, tiny, s(-2.0f), RMM) == Out{sb(0x80000001), UF | NX});
    CHECK(bin(rv_fdiv_s, tiny, s(-2.0f), RTZ) == Out{s(-0.0f), UF | NX});
    CHECK(bin(rv_fdiv_s, sb(3), s(2.0f), RNE) == Out{sb(2), UF | NX});
    CHECK(bin(rv_fdiv_s, sb(3), s(2.0f), RMM) == Out{sb(2), UF | NX});
    CHECK(bin(rv_fdiv_d, 1, d(2.0), RMM) == Out{1, UF | NX});
    CHECK(bin(rv_fdiv_d, 1, d(4.0), RMM) == Out{0, UF | NX}); // a quarter: below half
    CHECK(bin(rv_fdiv_d, 1, d(4.0), RUP) == Out{1, UF | NX});
    // Exact results are exact in every mode.
    for (unsigned rm = 0; rm <= RMM; ++rm) {
        CHECK(bin(rv_fmul_d, d(3.0), d(0.5), rm) == Out{d(1.5), 0});
        CHECK(un(rv_fsqrt_s, s(2.25f), rm) == Out{s(1.5f), 0});
    }
    // sqrt(2) in RMM is the nearest, like RNE (a square root is never a tie).
    CHECK(un(rv_fsqrt_d, d(2.0), RMM) == un(rv_fsqrt_d, d(2.0), RNE));
}

TEST_CASE("the dynamic rounding mode comes from frm", "[fpu][rmm]")
{
    const uint64_t one = s(1.0f), tie = s(0x1p-24f);
    CHECK(call([&](RvCpu *c) { return rv_fadd_s(c, one, tie, DYN); }, RMM) == Out{s(1.0f + 0x1p-23f), NX});
    CHECK(call([&](RvCpu *c) { return rv_fadd_s(c, one, tie, DYN); }, RNE) == Out{one, NX});
    CHECK(call([&](RvCpu *c) { return rv_fcvt_w_d(c, d(-2.5), DYN); }, RMM) == Out{uint64_t(-3), NX});
    CHECK(call([&](RvCpu *c) { return rv_fcvt_w_d(c, d(-2.5), DYN); }, RDN) == Out{uint64_t(-3), NX});
    CHECK(call([&](RvCpu *c) { return rv_fcvt_w_d(c, d(-2.5), DYN); }, RUP) == Out{uint64_t(-2), NX});
    // Flags accrue: a second operation adds to the first's.
    RvCpu cpu{};
    rv_fdiv_d(&cpu, d(1.0), d(0.0), RNE);
    rv_fadd_d(&cpu, d(1.0), d(0x1p-60), RNE);
    CHECK(cpu.fflags == (DZ | NX));
}

TEST_CASE("overflow in each mode", "[fpu][overflow]")
{
    const uint64_t max = sb(0x7f7fffff), inf = sb(0x7f800000), nmax = sb(0xff7fffff), ninf = sb(0xff800000);
    const Out pinf{inf, OF | NX}, pmax{max, OF | NX}, minf{ninf, OF | NX}, mmax{nmax, OF | NX};
    CHECK(bin(rv_fmul_s, max, s(2.0f), RNE) == pinf);
    CHECK(bin(rv_fmul_s, max, s(2.0f), RMM) == pinf);
    CHECK(bin(rv_fmul_s, max, s(2.0f), RTZ) == pmax);
    CHECK(bin(rv_fmul_s, max, s(2.0f), RDN) == pmax);
    CHECK(bin(rv_fmul_s, max, s(2.0f), RUP) == pinf);
    CHECK(bin(rv_fmul_s, max, s(-2.0f), RNE) == minf);
    CHECK(bin(rv_fmul_s, max, s(-2.0f), RMM) == minf);
    CHECK(bin(rv_fmul_s, max, s(-2.0f), RTZ) == mmax);
    CHECK(bin(rv_fmul_s, max, s(-2.0f), RDN) == minf);
    CHECK(bin(rv_fmul_s, max, s(-2.0f), RUP) == mmax);
    // max + half an ulp: a tie that RNE and RMM both round up, overflowing.
    const uint64_t half_ulp = s(0x1p103f);
    CHECK(bin(rv_fadd_s, max, half_ulp, RNE) == pinf);
    CHECK(bin(rv_fadd_s, max, half_ulp, RMM) == pinf);
    CHECK(bin(rv_fadd_s, max, half_ulp, RTZ) == Out{max, NX});
    // Just under half an ulp: no overflow in RMM.
    CHECK(bin(rv_fadd_s, max, s(0x1.fffffep102f), RMM) == Out{max, NX});
    const uint64_t dmax = 0x7fefffffffffffff;
    CHECK(bin(rv_fadd_d, dmax, d(0x1p970), RMM) == Out{0x7ff0000000000000, OF | NX});
    CHECK(bin(rv_fadd_d, dmax, d(0x1p970), RDN) == Out{dmax, NX});
    CHECK(fma3(rv_fmadd_d, dmax, d(2.0), d(-0x1p1000), RUP) == Out{0x7ff0000000000000, OF | NX});
    CHECK(un(rv_fcvt_s_d, d(0x1p128), RMM) == pinf);
    CHECK(un(rv_fcvt_s_d, d(-0x1p128), RUP) == mmax);
    CHECK(un(rv_fcvt_s_d, d(0x1.ffffffp127), RMM) == pinf);          // the tie above max
    CHECK(un(rv_fcvt_s_d, d(0x1.fffffefp127), RMM) == Out{max, NX}); // below the tie
}

TEST_CASE("underflow is detected after rounding", "[fpu][underflow]")
{
    // 2^-126 (1 + 2^-23) * (1 - 2^-23) = 2^-126 (1 - 2^-46): rounded to 24 bits
    // with an unbounded exponent it is 2^-126 (not tiny) in RNE, RUP and RMM,
    // but 2^-126 (1 - 2^-24) (tiny) in RTZ and RDN.
    const uint64_t a = sb(0x00800001), b = sb(0x3f7ffffe), minnorm = sb(0x00800000), maxsub = sb(0x007fffff);
    CHECK(bin(rv_fmul_s, a, b, RNE) == Out{minnorm, NX});
    CHECK(bin(rv_fmul_s, a, b, RUP) == Out{minnorm, NX});
    CHECK(bin(rv_fmul_s, a, b, RMM) == Out{minnorm, NX});
    CHECK(bin(rv_fmul_s, a, b, RTZ) == Out{maxsub, UF | NX});
    CHECK(bin(rv_fmul_s, a, b, RDN) == Out{maxsub, UF | NX});
    const uint64_t da = 0x0010000000000001, db = 0x3feffffffffffffe;
    CHECK(bin(rv_fmul_d, da, db, RNE) == Out{0x0010000000000000, NX});
    CHECK(bin(rv_fmul_d, da, db, RMM) == Out{0x0010000000000000, NX});
    CHECK(bin(rv_fmul_d, da, db, RTZ) == Out{0x000fffffffffffff, UF | NX});
    // 2^-1022 (1 - 2^-53) is exact with an unbounded exponent, so tiny: it
    // rounds to the normal 2^-1022 yet raises underflow.
    CHECK(bin(rv_fmul_d, 0x0010000000000000, 0x3fefffffffffffff, RNE) == Out{0x0010000000000000, UF | NX});
    CHECK(bin(rv_fmul_d, 0x0010000000000000, 0x3fefffffffffffff, RMM) == Out{0x0010000000000000, UF | NX});
    // Exact subnormal results raise nothing.
    CHECK(bin(rv_fsub_s, sb(0x00800001), minnorm, RNE) == Out{sb(1), 0});
    CHECK(bin(rv_fmul_d, 0x0000000000000010, d(0.5), RMM) == Out{0x0000000000000008, 0});
    // fcvt.s.d underflow.
    CHECK(un(rv_fcvt_s_d, d(0x1p-150), RNE) == Out{s(0.0f), UF | NX});
    CHECK(un(rv_fcvt_s_d, d(0x1p-150), RMM) == Out{sb(1), UF | NX});
    CHECK(un(rv_fcvt_s_d, d(0x1p-149), RTZ) == Out{sb(1), 0});
}

TEST_CASE("invalid, divide by zero and NaN results", "[fpu][flags][nan]")
{
    const uint64_t snan_s = sb(0x7f800001), qnan_pay = sb(0x7fc12345), inf_s = sb(0x7f800000);
    const uint64_t snan_d = 0x7ff0000000000001, inf_d = 0x7ff0000000000000;
    for (unsigned rm = 0; rm <= RMM; ++rm) {
        CHECK(bin(rv_fadd_s, snan_s, s(1.0f), rm) == Out{QNAN_S, NV});
        CHECK(bin(rv_fadd_s, qnan_pay, s(1.0f), rm) == Out{QNAN_S, 0}); // no payload propagation
        CHECK(bin(rv_fadd_d, 0xfff8000000000123, d(1.0), rm) == Out{QNAN_D, 0});
        CHECK(bin(rv_fsub_d, inf_d, inf_d, rm) == Out{QNAN_D, NV});
        CHECK(bin(rv_fmul_d, inf_d, d(0.0), rm) == Out{QNAN_D, NV});
        CHECK(bin(rv_fdiv_s, s(0.0f), s(-0.0f), rm) == Out{QNAN_S, NV});
        CHECK(bin(rv_fdiv_d, inf_d, inf_d, rm) == Out{QNAN_D, NV});
        CHECK(bin(rv_fdiv_s, s(-1.0f), s(0.0f), rm) == Out{sb(0xff800000), DZ});
        CHECK(bin(rv_fdiv_d, d(1.0), d(-0.0), rm) == Out{0xfff0000000000000, DZ});
        CHECK(un(rv_fsqrt_s, s(-1.0f), rm) == Out{QNAN_S, NV});
        CHECK(un(rv_fsqrt_d, 0xfff0000000000000, rm) == Out{QNAN_D, NV});
        CHECK(un(rv_fsqrt_d, d(-0.0), rm) == Out{d(-0.0), 0});
        CHECK(un(rv_fsqrt_d, snan_d, rm) == Out{QNAN_D, NV});
        // 0 * inf in a fused op is invalid even when the addend is a quiet NaN.
        CHECK(fma3(rv_fmadd_s, s(0.0f), inf_s, QNAN_S, rm) == Out{QNAN_S, NV});
        CHECK(fma3(rv_fnmsub_d, inf_d, d(-0.0), QNAN_D, rm) == Out{QNAN_D, NV});
        CHECK(fma3(rv_fmadd_d, d(1.0), d(1.0), snan_d, rm) == Out{QNAN_D, NV});
        CHECK(fma3(rv_fmadd_d, d(2.0), QNAN_D, d(1.0), rm) == Out{QNAN_D, 0});
        CHECK(fma3(rv_fmadd_d, inf_d, d(1.0), 0xfff0000000000000, rm) == Out{QNAN_D, NV});
        CHECK(fma3(rv_fmsub_d, inf_d, d(1.0), inf_d, rm) == Out{QNAN_D, NV});
        CHECK(fma3(rv_fmadd_d, inf_d, d(1.0), inf_d, rm) == Out{inf_d, 0});
    }
    // Signed zeros of exact cancellation: +0 except when rounding down.
    CHECK(bin(rv_fsub_d, d(1.0), d(1.0), RNE) == Out{d(0.0), 0});
    CHECK(bin(rv_fsub_d, d(1.0), d(1.0), RMM) == Out{d(0.0), 0});
    CHECK(bin(rv_fsub_d, d(1.0), d(1.0), RDN) == Out{d(-0.0), 0});
    CHECK(bin(rv_fadd_s, s(-0.0f), s(0.0f), RDN) == Out{s(-0.0f), 0});
    CHECK(bin(rv_fadd_s, s(-0.0f), s(-0.0f), RNE) == Out{s(-0.0f), 0});
    CHECK(fma3(rv_fmadd_d, d(1.0), d(1.0), d(-1.0), RMM) == Out{d(0.0), 0});
    CHECK(fma3(rv_fmadd_d, d(1.0), d(1.0), d(-1.0), RDN) == Out{d(-0.0), 0});
    CHECK(fma3(rv_fmadd_d, d(-0.0), d(1.0), d(0.0), RNE) == Out{d(0.0), 0});
    CHECK(fma3(rv_fnmadd_d, d(0.0), d(1.0), d(0.0), RNE) == Out{d(-0.0), 0});
}

TEST_CASE("NaN boxing of single-precision operands and results", "[fpu][nan]")
{
    const uint64_t unboxed_one = 0x000000003f800000, half_boxed = 0xfffffffe3f800000;
    CHECK(bin(rv_fadd_s, unboxed_one, s(1.0f), RNE) == Out{QNAN_S, 0});
    CHECK(bin(rv_fadd_s, s(1.0f), half_boxed, RNE) == Out{QNAN_S, 0});
    CHECK(bin(rv_fadd_s, s(1.0f), s(1.0f), RNE) == Out{s(2.0f), 0});
    CHECK(fma3(rv_fmadd_s, s(1.0f), s(1.0f), unboxed_one, RNE) == Out{QNAN_S, 0});
    CHECK(un(rv_fsqrt_s, unboxed_one, RNE) == Out{QNAN_S, 0});
    // Sign injection sees the canonical NaN too, and boxes its result.
    CHECK(rv_fsgnj_s(unboxed_one, s(-1.0f)) == sb(0xffc00000));
    CHECK(rv_fsgnj_s(s(-2.0f), unboxed_one) == s(2.0f));
    CHECK(rv_fsgnjn_s(s(2.0f), s(1.0f)) == s(-2.0f));
    CHECK(rv_fsgnjx_s(s(-2.0f), s(-1.0f)) == s(2.0f));
    CHECK(rv_fsgnjx_s(sb(0x7f800001), s(-1.0f)) == sb(0xff800001)); // payloads pass through sign injection
    CHECK(rv_fsgnj_d(0x7ff0000000000001, d(-1.0)) == 0xfff0000000000001);
    CHECK(rv_fsgnjn_d(d(-3.0), d(-1.0)) == d(3.0));
    CHECK(rv_fsgnjx_d(d(-3.0), d(-1.0)) == d(3.0));
    CHECK(rv_fclass_s(unboxed_one) == 1u << 9);
    CHECK(cmp(rv_feq_s, unboxed_one, unboxed_one) == Out{0, 0}); // quiet NaN: no NV
    CHECK(cmp(rv_flt_s, unboxed_one, s(1.0f)) == Out{0, NV});
    CHECK(un(rv_fcvt_d_s, unboxed_one, RNE) == Out{QNAN_D, 0});
    CHECK(un(rv_fcvt_w_s, unboxed_one, RNE) == Out{0x7fffffff, NV});
    // Results from integers and doubles are boxed.
    CHECK(un(rv_fcvt_s_w, 3, RNE) == Out{s(3.0f), 0});
    CHECK(un(rv_fcvt_s_d, d(0.5), RNE) == Out{s(0.5f), 0});
    CHECK(cmp(rv_fmin_s, s(1.0f), s(2.0f)) == Out{s(1.0f), 0});
}

TEST_CASE("fmin and fmax", "[fpu][minmax]")
{
    const uint64_t q = QNAN_S, sn = sb(0x7f800001), qd = QNAN_D, snd = 0x7ff4000000000000;
    CHECK(cmp(rv_fmin_s, q, s(1.0f)) == Out{s(1.0f), 0});
    CHECK(cmp(rv_fmax_s, s(1.0f), q) == Out{s(1.0f), 0});
    CHECK(cmp(rv_fmin_s, sn, s(1.0f)) == Out{s(1.0f), NV});
    CHECK(cmp(rv_fmax_s, s(-1.0f), sn) == Out{s(-1.0f), NV});
    CHECK(cmp(rv_fmin_s, q, q) == Out{QNAN_S, 0});
    CHECK(cmp(rv_fmin_s, sb(0x7fc12345), sb(0xffc00001)) == Out{QNAN_S, 0});
    CHECK(cmp(rv_fmax_s, sn, q) == Out{QNAN_S, NV});
    CHECK(cmp(rv_fmin_s, s(0.0f), s(-0.0f)) == Out{s(-0.0f), 0});
    CHECK(cmp(rv_fmin_s, s(-0.0f), s(0.0f)) == Out{s(-0.0f), 0});
    CHECK(cmp(rv_fmax_s, s(-0.0f), s(0.0f)) == Out{s(0.0f), 0});
    CHECK(cmp(rv_fmax_s, s(0.0f), s(-0.0f)) == Out{s(0.0f), 0});
    CHECK(cmp(rv_fmin_d, d(-0.0), d(0.0)) == Out{d(-0.0), 0});
    CHECK(cmp(rv_fmax_d, d(-0.0), d(0.0)) == Out{d(0.0), 0});
    CHECK(cmp(rv_fmin_d, d(-2.0), d(-3.0)) == Out{d(-3.0), 0});
    CHECK(cmp(rv_fmax_d, d(-2.0), d(-3.0)) == Out{d(-2.0), 0});
    CHECK(cmp(rv_fmax_d, 0xfff0000000000000, d(-1e308)) == Out{d(-1e308), 0});
    CHECK(cmp(rv_fmin_d, snd, qd) == Out{QNAN_D, NV});
    CHECK(cmp(rv_fmax_d, qd, d(5.0)) == Out{d(5.0), 0});
    CHECK(cmp(rv_fmin_d, 1, 0x8000000000000001) == Out{0x8000000000000001, 0});
}

TEST_CASE("comparisons: feq is quiet, flt and fle signal on any NaN", "[fpu][compare]")
{
    const uint64_t q = QNAN_D, sn = 0x7ff0000000000001;
    CHECK(cmp(rv_feq_d, d(1.0), d(1.0)) == Out{1, 0});
    CHECK(cmp(rv_feq_d, d(0.0), d(-0.0)) == Out{1, 0});
    CHECK(cmp(rv_feq_d, q, q) == Out{0, 0});
    CHECK(cmp(rv_feq_d, q, sn) == Out{0, NV});
    CHECK(cmp(rv_flt_d, q, d(1.0)) == Out{0, NV});
    CHECK(cmp(rv_fle_d, d(1.0), q) == Out{0, NV});
    CHECK(cmp(rv_flt_d, d(-0.0), d(0.0)) == Out{0, 0});
    CHECK(cmp(rv_fle_d, d(-0.0), d(0.0)) == Out{1, 0});
    CHECK(cmp(rv_fle_d, d(0.0), d(-0.0)) == Out{1, 0});
    CHECK(cmp(rv_flt_d, d(-2.0), d(-1.0)) == Out{1, 0});
    CHECK(cmp(rv_flt_d, d(-1.0), d(-2.0)) == Out{0, 0});
    CHECK(cmp(rv_fle_d, 0xfff0000000000000, d(-1e308)) == Out{1, 0});
    CHECK(cmp(rv_feq_s, s(1.5f), s(1.5f)) == Out{1, 0});
    CHECK(cmp(rv_feq_s, sb(0x7fa00000), s(1.5f)) == Out{0, NV});
    CHECK(cmp(rv_flt_s, s(1.0f), s(1.5f)) == Out{1, 0});
    CHECK(cmp(rv_fle_s, s(1.5f), s(1.5f)) == Out{1, 0});
    CHECK(cmp(rv_fle_s, s(2.5f), s(1.5f)) == Out{0, 0});
    CHECK(cmp(rv_fle_s, QNAN_S, QNAN_S) == Out{0, NV});
}

TEST_CASE("fclass of every class", "[fpu][fclass]")
{
    const uint64_t ds[10] = {0xfff0000000000000,
                             d(-1.0),
                             0x800fffffffffffff,
                             d(-0.0),
                             d(0.0),
                             0x0000000000000001,
                             d(1e300),
                             0x7ff0000000000000,
                             0x7ff0000000000001,
                             0x7ff8000000000000};
    const uint32_t ss[10] = {0xff800000, 0xbf800000, 0x807fffff, 0x80000000, 0,
                             1,          0x7f7fffff, 0x7f800000, 0x7fbfffff, 0x7fc00000};
    for (unsigned i = 0; i < 10; ++i) {
        CHECK(rv_fclass_d(ds[i]) == 1u << i);
        CHECK(rv_fclass_s(sb(ss[i])) == 1u << i);
    }
    CHECK(rv_fclass_d(0xfff8000000000000) == 1u << 9);
    CHECK(rv_fclass_s(sb(0xff800001)) == 1u << 8);
}

TEST_CASE("float to integer: rounding, saturation and flags", "[fpu][convert]")
{
    using Fn = uint64_t (*)(void *, uint64_t, uint32_t);
    const uint64_t W_MAX = 0x7fffffff, W_MIN = 0xffffffff80000000, WU_MAX = ~0ull;
    const uint64_t L_MAX = 0x7fffffffffffffff, L_MIN = 0x8000000000000000;
    const uint64_t nan = QNAN_D, pinf = 0x7ff0000000000000, minf = 0xfff0000000000000;
    struct Row {
        Fn fn;
        uint64_t nan, pinf, minf; // saturated results, all with NV
    };
    for (Row r : {Row{rv_fcvt_w_d, W_MAX, W_MAX, W_MIN}, Row{rv_fcvt_wu_d, WU_MAX, WU_MAX, 0},
                  Row{rv_fcvt_l_d, L_MAX, L_MAX, L_MIN}, Row{rv_fcvt_lu_d, WU_MAX, WU_MAX, 0}}) {
        for (unsigned rm = 0; rm <= RMM; ++rm) {
            CHECK(un(r.fn, nan, rm) == Out{r.nan, NV});
            CHECK(un(r.fn, 0x7ff0000000000001, rm) == Out{r.nan, NV});
            CHECK(un(r.fn, 0xfff8000000000000, rm) == Out{r.nan, NV}); // negative NaN: still the maximum
            CHECK(un(r.fn, pinf, rm) == Out{r.pinf, NV});
            CHECK(un(r.fn, minf, rm) == Out{r.minf, NV});
            CHECK(un(r.fn, d(1e30), rm) == Out{r.pinf, NV});
            CHECK(un(r.fn, d(-1e30), rm) == Out{r.minf, NV});
            CHECK(un(r.fn, d(-0.0), rm) == Out{0, 0});
            CHECK(un(r.fn, d(7.0), rm) == Out{7, 0});
        }
    }
    // Singles use the same table (and unbox).
    CHECK(un(rv_fcvt_w_s, QNAN_S, RNE) == Out{W_MAX, NV});
    CHECK(un(rv_fcvt_lu_s, sb(0xff800000), RNE) == Out{0, NV});
    CHECK(un(rv_fcvt_l_s, s(-0x1p63f), RNE) == Out{L_MIN, 0});
    CHECK(un(rv_fcvt_l_s, s(0x1p63f), RNE) == Out{L_MAX, NV});
    CHECK(un(rv_fcvt_lu_s, s(0x1.fffffep63f), RNE) == Out{0xffffff0000000000, 0});
    // 32-bit results are sign-extended, unsigned ones too.
    CHECK(un(rv_fcvt_wu_d, d(4294967295.0), RNE) == Out{WU_MAX, 0});
    CHECK(un(rv_fcvt_wu_d, d(2147483648.0), RNE) == Out{0xffffffff80000000, 0});
    CHECK(un(rv_fcvt_w_d, d(-1.0), RNE) == Out{~0ull, 0});
    // Range edges after rounding.
    CHECK(un(rv_fcvt_w_d, d(2147483647.4), RNE) == Out{W_MAX, NX});
    CHECK(un(rv_fcvt_w_d, d(2147483647.5), RNE) == Out{W_MAX, NV}); // rounds to 2^31: out of range
    CHECK(un(rv_fcvt_w_d, d(2147483647.5), RTZ) == Out{W_MAX, NX});
    CHECK(un(rv_fcvt_w_d, d(-2147483648.5), RNE) == Out{W_MIN, NX}); // tie to even: -2^31
    CHECK(un(rv_fcvt_w_d, d(-2147483648.5), RMM) == Out{W_MIN, NV});
    CHECK(un(rv_fcvt_w_d, d(-2147483648.5), RUP) == Out{W_MIN, NX});
    CHECK(un(rv_fcvt_wu_d, d(4294967295.5), RDN) == Out{WU_MAX, NX});
    CHECK(un(rv_fcvt_wu_d, d(4294967295.5), RNE) == Out{WU_MAX, NV});
    CHECK(un(rv_fcvt_l_d, d(-0x1p63), RNE) == Out{L_MIN, 0});
    CHECK(un(rv_fcvt_lu_d, d(0x1.fffffffffffffp63), RNE) == Out{0xfffffffffffff800, 0});
    CHECK(un(rv_fcvt_lu_d, d(0x1p64), RNE) == Out{WU_MAX, NV});
    // Unsigned from negatives: 0 with NX when it rounds to zero, else 0 with NV.
    CHECK(un(rv_fcvt_wu_d, d(-0.4), RNE) == Out{0, NX});
    CHECK(un(rv_fcvt_wu_d, d(-0.4), RTZ) == Out{0, NX});
    CHECK(un(rv_fcvt_wu_d, d(-0.4), RDN) == Out{0, NV});
    CHECK(un(rv_fcvt_wu_d, d(-0.5), RMM) == Out{0, NV});
    CHECK(un(rv_fcvt_wu_d, d(-0.5), RNE) == Out{0, NX});
    CHECK(un(rv_fcvt_lu_s, s(-0.75f), RUP) == Out{0, NX});
    CHECK(un(rv_fcvt_lu_s, s(-1.0f), RUP) == Out{0, NV});
    CHECK(un(rv_fcvt_lu_d, 0x8000000000000001, RNE) == Out{0, NX}); // negative subnormal
    // Each mode on halves and quarters.
    struct Case {
        double v;
        int64_t rne, rtz, rdn, rup, rmm;
    };
    for (Case c : {Case{0.5, 0, 0, 0, 1, 1}, Case{1.5, 2, 1, 1, 2, 2}, Case{2.5, 2, 2, 2, 3, 3},
                   Case{-2.5, -2, -2, -3, -2, -3}, Case{-0.5, 0, 0, -1, 0, -1}, Case{2.25, 2, 2, 2, 3, 2},
                   Case{-2.75, -3, -2, -3, -2, -3}, Case{0x1p-1074, 0, 0, 0, 1, 0}}) {
        const int64_t want[5] = {c.rne, c.rtz, c.rdn, c.rup, c.rmm};
        for (unsigned rm = 0; rm <= RMM; ++rm) {
            INFO("value " << c.v << " rm " << rm);
            CHECK(un(rv_fcvt_l_d, d(c.v), rm) == Out{uint64_t(want[rm]), NX});
            if (double(float(c.v)) == c.v)
                CHECK(un(rv_fcvt_w_s, s(float(c.v)), rm) == Out{uint64_t(want[rm]), NX});
        }
    }
}

TEST_CASE("integer to float and float to float", "[fpu][convert]")
{
    // 2^24 + 1 is a tie between 2^24 and 2^24 + 2 in single.
    CHECK(un(rv_fcvt_s_w, 16777217, RNE) == Out{s(16777216.0f), NX});
    CHECK(un(rv_fcvt_s_w, 16777217, RMM) == Out{s(16777218.0f), NX});
    CHECK(un(rv_fcvt_s_w, 16777217, RUP) == Out{s(16777218.0f), NX});
    CHECK(un(rv_fcvt_s_w, uint64_t(-16777217), RMM) == Out{s(-16777218.0f), NX});
    CHECK(un(rv_fcvt_s_w, uint64_t(-16777217), RUP) == Out{s(-16777216.0f), NX});
    CHECK(un(rv_fcvt_s_w, 16777219, RNE) == Out{s(16777220.0f), NX});
    // Only the low 32 bits of a w/wu source count.
    CHECK(un(rv_fcvt_s_w, 0x12345678ffffffff, RNE) == Out{s(-1.0f), 0});
    CHECK(un(rv_fcvt_s_wu, 0x12345678ffffffff, RTZ) == Out{s(0x1.fffffep31f), NX});
    CHECK(un(rv_fcvt_s_wu, 0x12345678ffffffff, RNE) == Out{s(0x1p32f), NX});
    CHECK(un(rv_fcvt_d_w, 0xffffffff80000000, RNE) == Out{d(-0x1p31), 0});
    CHECK(un(rv_fcvt_d_wu, 0xffffffff80000000, RNE) == Out{d(0x1p31), 0});
    CHECK(un(rv_fcvt_d_wu, 0, RDN) == Out{d(0.0), 0}); // +0 even rounding down
    // 64-bit sources.
    CHECK(un(rv_fcvt_d_l, 0x8000000000000000, RNE) == Out{d(-0x1p63), 0});
    CHECK(un(rv_fcvt_d_lu, ~0ull, RNE) == Out{d(0x1p64), NX});
    CHECK(un(rv_fcvt_d_lu, ~0ull, RTZ) == Out{d(0x1.fffffffffffffp63), NX});
    CHECK(un(rv_fcvt_d_l, (1ull << 53) + 1, RNE) == Out{d(0x1p53), NX});
    CHECK(un(rv_fcvt_d_l, (1ull << 53) + 1, RMM) == Out{d(0x1p53 + 2), NX});
    CHECK(un(rv_fcvt_d_l, (1ull << 53) + 3, RNE) == Out{d(0x1p53 + 4), NX});
    CHECK(un(rv_fcvt_s_lu, 0xffffff8000000000, RMM) == Out{s(0x1p64f), NX});
    CHECK(un(rv_fcvt_s_lu, 0xffffff8000000000, RNE) == Out{s(0x1p64f), NX});
    CHECK(un(rv_fcvt_s_lu, 0xffffff7fffffffff, RNE) == Out{s(0x1.fffffep63f), NX});
    CHECK(un(rv_fcvt_s_l, 0x7fffffffffffffff, RTZ) == Out{s(0x1.fffffep62f), NX});
    // Double to single rounds; single to double is exact.
    CHECK(un(rv_fcvt_s_d, d(1.0 + 0x1p-24), RNE) == Out{s(1.0f), NX});
    CHECK(un(rv_fcvt_s_d, d(1.0 + 0x1p-24), RMM) == Out{s(1.0f + 0x1p-23f), NX});
    CHECK(un(rv_fcvt_s_d, d(-1.0 - 0x1p-24), RMM) == Out{s(-1.0f - 0x1p-23f), NX});
    CHECK(un(rv_fcvt_s_d, d(1.0 + 0x1p-24 + 0x1p-50), RNE) == Out{s(1.0f + 0x1p-23f), NX});
    CHECK(un(rv_fcvt_s_d, 0x7ff0000000000001, RNE) == Out{QNAN_S, NV});
    CHECK(un(rv_fcvt_s_d, 0xfff8000000000001, RNE) == Out{QNAN_S, 0});
    CHECK(un(rv_fcvt_s_d, 0xfff0000000000000, RNE) == Out{sb(0xff800000), 0});
    CHECK(un(rv_fcvt_d_s, sb(0x7f800001), RNE) == Out{QNAN_D, NV});
    CHECK(un(rv_fcvt_d_s, sb(0x7fc00001), RNE) == Out{QNAN_D, 0});
    CHECK(un(rv_fcvt_d_s, sb(1), RNE) == Out{d(0x1p-149), 0});
    CHECK(un(rv_fcvt_d_s, s(-0.0f), RNE) == Out{d(-0.0), 0});
    CHECK(un(rv_fcvt_d_s, s(0x1.fffffep127f), RMM) == Out{d(0x1.fffffep127), 0});
}

namespace
{

// One op of the reference table: how to call it.
using Call = std::function<uint64_t(RvCpu *, uint64_t, uint64_t, uint64_t, uint32_t)>;

std::map<std::string, Call> reference_ops()
{
    std::map<std::string, Call> m;
    auto r2 = [&](const char *n, uint64_t (*f)(void *, uint64_t, uint64_t, uint32_t)) {
        m[n] = [f](RvCpu *c, uint64_t a, uint64_t b, uint64_t, uint32_t rm) { return f(c, a, b, rm); };
    };
    auto r1 = [&](const char *n, uint64_t (*f)(void *, uint64_t, uint32_t)) {
        m[n] = [f](RvCpu *c, uint64_t a, uint64_t, uint64_t, uint32_t rm) { return f(c, a, rm); };
    };
    auto r3 = [&](const char *n, uint64_t (*f)(void *, uint64_t, uint64_t, uint64_t, uint32_t)) {
        m[n] = [f](RvCpu *c, uint64_t a, uint64_t b, uint64_t x, uint32_t rm) { return f(c, a, b, x, rm); };
    };
    auto e2 = [&](const char *n, uint64_t (*f)(void *, uint64_t, uint64_t)) {
        m[n] = [f](RvCpu *c, uint64_t a, uint64_t b, uint64_t, uint32_t) { return f(c, a, b); };
    };
    auto p2 = [&](const char *n, uint64_t (*f)(uint64_t, uint64_t)) {
        m[n] = [f](RvCpu *, uint64_t a, uint64_t b, uint64_t, uint32_t) { return f(a, b); };
    };
    auto p1 = [&](const char *n, uint64_t (*f)(uint64_t)) {
        m[n] = [f](RvCpu *, uint64_t a, uint64_t, uint64_t, uint32_t) { return f(a); };
    };
#define KEEL_FP(p)                                                                                           \
    r2("fadd." #p, rv_fadd_##p), r2("fsub." #p, rv_fsub_##p), r2("fmul." #p, rv_fmul_##p),                   \
        r2("fdiv." #p, rv_fdiv_##p), r1("fsqrt." #p, rv_fsqrt_##p), r3("fmadd." #p, rv_fmadd_##p),           \
        r3("fmsub." #p, rv_fmsub_##p), r3("fnmsub." #p, rv_fnmsub_##p), r3("fnmadd." #p, rv_fnmadd_##p),     \
        e2("fmin." #p, rv_fmin_##p), e2("fmax." #p, rv_fmax_##p), p2("fsgnj." #p, rv_fsgnj_##p),             \
        p2("fsgnjn." #p, rv_fsgnjn_##p), p2("fsgnjx." #p, rv_fsgnjx_##p), e2("feq." #p, rv_feq_##p),         \
        e2("flt." #p, rv_flt_##p), e2("fle." #p, rv_fle_##p), p1("fclass." #p, rv_fclass_##p),               \
        r1("fcvt.w." #p, rv_fcvt_w_##p), r1("fcvt.wu." #p, rv_fcvt_wu_##p), r1("fcvt.l." #p, rv_fcvt_l_##p), \
        r1("fcvt.lu." #p, rv_fcvt_lu_##p), r1("fcvt." #p ".w", rv_fcvt_##p##_w),                             \
        r1("fcvt." #p ".wu", rv_fcvt_##p##_wu), r1("fcvt." #p ".l", rv_fcvt_##p##_l),                        \
        r1("fcvt." #p ".lu", rv_fcvt_##p##_lu)
    KEEL_FP(s);
    KEEL_FP(d);
#undef KEEL_FP
    r1("fcvt.s.d", rv_fcvt_s_d);
    r1("fcvt.d.s", rv_fcvt_d_s);
    return m;
}

} // namespace

TEST_CASE("every operation matches QEMU's softfloat on the reference table", "[fpu][qemu]")
{
    // qemu_vectors.txt: see gen_vectors.py (a guest program run under qemu-system-riscv64).
    std::ifstream in(FPU_VECTORS);
    REQUIRE(in);
    const auto ops = reference_ops();
    std::map<std::string, unsigned> seen;
    std::vector<std::string> bad;
    unsigned checks = 0;
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream ls(line);
        std::string op;
        uint64_t a, b, c, v, fl;
        ls >> op >> std::hex >> a >> b >> c;
        auto it = ops.find(op);
        REQUIRE(it != ops.end());
        ++seen[op];
        for (uint32_t rm = 0; ls >> v >> fl; ++rm) {
            // The table was made with frm = rm and rm = dyn; check the static field too.
            for (bool dyn : {false, true}) {
                Out got = call([&](RvCpu *cpu) { return it->second(cpu, a, b, c, dyn ? DYN : rm); }, rm);
                ++checks;
                if (got != Out{v, uint32_t(fl)} && bad.size() < 40) {
                    std::ostringstream os;
                    os << line << "\n    rm " << rm << (dyn ? " (dyn)" : "") << ": got " << got;
                    bad.push_back(os.str());
                }
            }
        }
    }
    for (const auto &b : bad)
        UNSCOPED_INFO(b);
    CHECK(bad.empty());
    CHECK(seen.size() == ops.size()); // every helper appears in the table
    CHECK(checks > 50000);
}

namespace
{

// Random operands that make rounding interesting: few significant bits (ties
// and exact results), exponents near zero, the subnormal range and overflow.
struct Gen {
    std::mt19937_64 rng{12345};
    uint64_t value(int e, int m)
    {
        int top = (1 << e) - 1, bias = top >> 1;
        uint64_t r = rng();
        int be;
        switch (r % 8) {
        case 0:
        case 1:
        case 2:
            be = bias - 4 + int(rng() % 9);
            break;
        case 3:
            be = int(rng() % (m / 2 + 4));
            break;
        case 4:
            be = top - 1 - int(rng() % (m / 2 + 4));
            break;
        case 5: // special
            return (rng() % 2 ? 0 : uint64_t(top) << m) | (rng() % 3 == 0 ? rng() % 4 : 0);
        default:
            be = 1 + int(rng() % uint64_t(top - 1));
        }
        uint64_t frac = rng() & ((uint64_t(1) << m) - 1);
        if (rng() % 3) frac &= ~((uint64_t(1) << (rng() % (m + 1))) - 1);
        return (rng() & 1) << (e + m) | uint64_t(be) << m | frac;
    }
};

} // namespace

TEST_CASE("the host FPU and the exact integer engine agree in RNE, RTZ, RDN, RUP", "[fpu][cross]")
{
    Gen g;
    const Op ops[] = {Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Sqrt, Op::Fma};
    unsigned compared = 0, mismatches = 0;
    for (int i = 0; i < 400000; ++i) {
        bool dbl = i & 1;
        Op op = ops[(i >> 1) % 6];
        unsigned rm = (i >> 4) % 4;
        uint64_t a = dbl ? g.value(11, 52) : g.value(8, 23), b = dbl ? g.value(11, 52) : g.value(8, 23),
                 c = dbl ? g.value(11, 52) : g.value(8, 23);
        if (op == Op::Fma && i % 3 == 0) {
            // An addend near the product, for cancellation and ties.
            uint32_t pfl = 0;
            uint64_t pf = dbl ? soft_op_d(Op::Mul, a, b, 0, RTZ, pfl) : soft_op_s(Op::Mul, a, b, 0, RTZ, pfl);
            c = (pf ^ (uint64_t(1) << (dbl ? 63 : 31))) + (g.rng() % 5) - 2;
        }
        uint64_t hw = 0, sw;
        uint32_t fh = 0, fs = 0;
        bool ok = dbl ? hw_op_d(op, a, b, c, rm, hw, fh) : hw_op_s(op, a, b, c, rm, hw, fh);
        if (!ok) continue; // no host FMA
        sw = dbl ? soft_op_d(op, a, b, c, rm, fs) : soft_op_s(op, a, b, c, rm, fs);
        ++compared;
        if ((hw != sw || fh != fs) && ++mismatches <= 20)
            UNSCOPED_INFO("op " << int(op) << (dbl ? " d" : " s") << " rm " << rm << std::hex << " a " << a
                                << " b " << b << " c " << c << ": host " << hw << "/" << fh << " exact " << sw
                                << "/" << fs);
    }
    CHECK(mismatches == 0);
    CHECK(compared > 300000);
}

TEST_CASE("RMM against an exact reference on single-precision products and sums", "[fpu][rmm][cross]")
{
    // A product or (close) sum of singles is exact in double. The RMM result is
    // whichever of the RTZ result and its neighbour away from zero is nearer,
    // the far one on a tie; differences of such close doubles are exact.
    Gen g;
    unsigned checked = 0, ties = 0;
    for (int i = 0; i < 200000; ++i) {
        float a = std::bit_cast<float>(uint32_t(g.value(8, 23))), b;
        bool mul = i & 1;
        if (mul) {
            b = std::bit_cast<float>(uint32_t(g.value(8, 23)));
        } else {
            int ea;
            std::frexp(a, &ea);
            b = std::ldexp(float(g.rng() % (1 << 24)) / 0x1p24f, ea - int(g.rng() % 26)) *
                (g.rng() % 2 ? 1 : -1);
        }
        double exact = mul ? double(a) * double(b) : double(a) + double(b);
        if (!std::isnormal(exact) || std::fabs(exact) < 0x1p-126 || std::fabs(exact) >= 0x1p127) continue;
        if (!std::isfinite(a) || !std::isfinite(b)) continue;
        if (!mul && std::fabs(b) != 0 && std::fabs(double(a) + double(b) - double(a) - double(b)) != 0)
            continue;
        auto fn = mul ? rv_fmul_s : rv_fadd_s;
        Out rtz = bin(fn, s(a), s(b), RTZ), rmm = bin(fn, s(a), s(b), RMM);
        float t = std::bit_cast<float>(uint32_t(rtz.v));
        float away = std::nextafter(t, exact < 0 ? -INFINITY : INFINITY);
        double dt = std::fabs(exact - double(t)), da = std::fabs(double(away) - exact);
        float want = double(t) == exact ? t : (da <= dt ? away : t);
        ties += dt == da && dt != 0;
        ++checked;
        INFO(std::hexfloat << a << (mul ? " * " : " + ") << b << " = " << exact);
        REQUIRE(rmm == Out{s(want), double(want) == exact ? 0 : NX});
    }
    CHECK(checked > 100000);
    CHECK(ties > 1000);
}

TEST_CASE("the helpers leave the host's rounding mode and flags alone", "[fpu][host]")
{
    REQUIRE(std::fesetround(FE_UPWARD) == 0);
    std::feclearexcept(FE_ALL_EXCEPT);
    RvCpu cpu{};
    CHECK(rv_fadd_d(&cpu, d(1.0), d(0x1p-60), RNE) == d(1.0));
    CHECK(rv_fdiv_s(&cpu, s(1.0f), s(0.0f), RTZ) == sb(0x7f800000));
    CHECK(rv_fmadd_d(&cpu, d(1.0), d(1.0), d(0x1p-60), RDN) == d(1.0));
    CHECK(rv_fadd_d(&cpu, d(1.0), d(0x1p-53), RMM) == d(1.0 + 0x1p-52));
    CHECK(cpu.fflags == (NX | DZ));
    CHECK(std::fegetround() == FE_UPWARD);
    CHECK(std::fetestexcept(FE_ALL_EXCEPT) == 0);
    std::fesetround(FE_TONEAREST);
}

// ---- The fast path (RNE with NX accrued: plain host arithmetic) ----

namespace
{

// The exact engine's answer for one operation: result (boxed for singles) and flags.
Out exact(Op op, bool dbl, uint64_t a, uint64_t b, uint64_t c, unsigned rm)
{
    uint32_t fl = 0;
    if (dbl) return {soft_op_d(op, a, b, c, rm, fl), fl};
    uint64_t r = soft_op_s(op, uint32_t(a), uint32_t(b), uint32_t(c), rm, fl);
    return {BOX | r, fl};
}

// Whether the fast path takes the operation (singles unboxed here).
bool fast_takes(Op op, bool dbl, uint64_t a, uint64_t b = 0, uint64_t c = 0)
{
    uint64_t r = 0;
    return dbl ? fast_op_d(op, a, b, c, r) : fast_op_s(op, uint32_t(a), uint32_t(b), uint32_t(c), r);
}

// The helper for `op` on a hart whose fflags start as `fl0` (and frm as `frm`).
Out helper(Op op, bool dbl, uint64_t a, uint64_t b, uint64_t c, unsigned rm, uint32_t fl0, unsigned frm = 0)
{
    RvCpu cpu{};
    cpu.fflags = fl0;
    cpu.frm = frm;
    uint64_t v = 0;
    switch (op) {
    case Op::Add:
        v = dbl ? rv_fadd_d(&cpu, a, b, rm) : rv_fadd_s(&cpu, a, b, rm);
        break;
    case Op::Sub:
        v = dbl ? rv_fsub_d(&cpu, a, b, rm) : rv_fsub_s(&cpu, a, b, rm);
        break;
    case Op::Mul:
        v = dbl ? rv_fmul_d(&cpu, a, b, rm) : rv_fmul_s(&cpu, a, b, rm);
        break;
    case Op::Div:
        v = dbl ? rv_fdiv_d(&cpu, a, b, rm) : rv_fdiv_s(&cpu, a, b, rm);
        break;
    case Op::Sqrt:
        v = dbl ? rv_fsqrt_d(&cpu, a, rm) : rv_fsqrt_s(&cpu, a, rm);
        break;
    case Op::Fma:
        v = dbl ? rv_fmadd_d(&cpu, a, b, c, rm) : rv_fmadd_s(&cpu, a, b, c, rm);
        break;
    }
    return {v, cpu.fflags};
}

// One boundary case: with NX clear and with NX already set, the helper gives the
// exact engine's result and flags (plus the NX it started with); `fast` says
// whether the fast path is expected to take it.
void boundary(Op op, bool dbl, uint64_t a, uint64_t b, uint64_t c, bool fast, unsigned rm = RNE)
{
    uint64_t ua = dbl ? a : uint32_t(a), ub = dbl ? b : uint32_t(b), uc = dbl ? c : uint32_t(c);
    Out want = exact(op, dbl, ua, ub, uc, rm);
    INFO("op " << int(op) << (dbl ? " d" : " s") << " rm " << rm << std::hex << " a " << a << " b " << b
               << " c " << c);
    CHECK(fast_takes(op, dbl, ua, ub, uc) == fast);
    CHECK(helper(op, dbl, a, b, c, rm, 0) == want);
    CHECK(helper(op, dbl, a, b, c, rm, NX) == Out{want.v, want.fl | NX});
    // Other accrued flags stay as they were.
    CHECK(helper(op, dbl, a, b, c, rm, NX | DZ) == Out{want.v, want.fl | NX | DZ});
}

} // namespace

TEST_CASE("fast path: ordinary operations are taken and match the exact engine", "[fpu][fast]")
{
    for (bool dbl : {false, true}) {
        auto v = [&](double x) { return dbl ? d(x) : s(float(x)); };
        boundary(Op::Add, dbl, v(1.0), v(0x1p-20), 0, true);
        boundary(Op::Sub, dbl, v(3.5), v(-1.25), 0, true);
        boundary(Op::Mul, dbl, v(1.1), v(3.3), 0, true);
        boundary(Op::Div, dbl, v(1.0), v(3.0), 0, true);
        boundary(Op::Sqrt, dbl, v(2.0), 0, 0, true);
        boundary(Op::Fma, dbl, v(1.1), v(2.2), v(-3.3), true);
        // Exact results: the fast path adds no flag (NX clear stays clear on the exact path).
        boundary(Op::Mul, dbl, v(3.0), v(0.5), 0, true);
        boundary(Op::Sqrt, dbl, v(2.25), 0, 0, true);
        // Results just above the smallest normal are taken.
        double mn = dbl ? 0x1p-1022 : 0x1p-126;
        boundary(Op::Mul, dbl, v(mn), v(1.5), 0, true);
    }
}

TEST_CASE("fast path: NX clear, other rounding modes and a non-default host mode take the exact path",
          "[fpu][fast]")
{
    // 1 + 2^-53 (double) and 1 + 2^-24 (single) are ties: RMM rounds up where RNE does not.
    CHECK(helper(Op::Add, true, d(1.0), d(0x1p-53), 0, RMM, NX) == Out{d(1.0 + 0x1p-52), NX});
    CHECK(helper(Op::Add, false, s(1.0f), s(0x1p-24f), 0, RMM, NX) == Out{s(1.0f + 0x1p-23f), NX});
    CHECK(helper(Op::Add, true, d(1.0), d(0x1p-53), 0, DYN, NX, RMM) == Out{d(1.0 + 0x1p-52), NX});
    CHECK(helper(Op::Add, true, d(1.0), d(0x1p-53), 0, DYN, NX, RNE) == Out{d(1.0), NX});
    // RTZ: 1 + (1 - 2^-53) is 2 in RNE, the largest double below 2 in RTZ.
    const uint64_t below2 = d(2.0) - 1;
    CHECK(helper(Op::Add, true, d(1.0), d(1.0 - 0x1p-53), 0, RTZ, NX) == Out{below2, NX});
    CHECK(helper(Op::Add, true, d(1.0), d(1.0 - 0x1p-53), 0, DYN, NX, RTZ) == Out{below2, NX});
    CHECK(helper(Op::Add, true, d(1.0), d(1.0 - 0x1p-53), 0, RNE, NX) == Out{d(2.0), NX});
    CHECK(helper(Op::Mul, true, d(1.0 + 0x1p-52), d(1.0 - 0x1p-53), 0, RDN, NX) == Out{d(1.0), NX});
    CHECK(helper(Op::Mul, true, d(1.0 + 0x1p-52), d(1.0 - 0x1p-53), 0, RUP, NX) == Out{d(1.0 + 0x1p-52), NX});
    // NX clear: an inexact operation raises it.
    CHECK(helper(Op::Div, true, d(1.0), d(3.0), 0, RNE, 0) == Out{d(1.0 / 3.0), NX});
    CHECK(helper(Op::Div, true, d(1.0), d(4.0), 0, RNE, 0) == Out{d(0.25), 0});
    // The host not in its default mode: the fast path declines, the helpers stay exact.
    REQUIRE(std::fesetround(FE_UPWARD) == 0);
    bool taken = fast_takes(Op::Add, true, d(1.0), d(0x1p-60));
    Out up = helper(Op::Add, true, d(1.0), d(0x1p-60), 0, RNE, NX);
    std::fesetround(FE_TONEAREST);
    CHECK_FALSE(taken);
    CHECK(up == Out{d(1.0), NX});
    // Flush to zero (MXCSR bit 15) and denormals-are-zero (bit 6) likewise.
    uint32_t m0 = 0;
    asm volatile("stmxcsr %0" : "=m"(m0));
    for (uint32_t bit : {1u << 15, 1u << 6}) {
        uint32_t m = m0 | bit;
        asm volatile("ldmxcsr %0" : : "m"(m));
        bool t = fast_takes(Op::Mul, true, d(1.5), d(1.5));
        Out tiny = helper(Op::Mul, true, d(0x1.0000000000001p-1000), d(0x1p-30), 0, RNE, NX);
        asm volatile("ldmxcsr %0" : : "m"(m0));
        CHECK_FALSE(t);
        CHECK(tiny == Out{d(0x1p-1030), NX | UF});
    }
    CHECK(fast_takes(Op::Mul, true, d(1.5), d(1.5)));
}

TEST_CASE("fast path: subnormal, infinite and NaN operands take the exact path", "[fpu][fast]")
{
    // Doubles.
    boundary(Op::Add, true, 1, d(1.0), 0, false); // smallest subnormal
    boundary(Op::Add, true, 1, 1, 0, false);      // subnormal sum, exact
    boundary(Op::Mul, true, 0x000fffffffffffff, d(0x1p60), 0, false);
    boundary(Op::Div, true, d(1.0), 3, 0, false);
    boundary(Op::Sqrt, true, 4, 0, 0, false);
    boundary(Op::Fma, true, d(1.0), d(1.0), 1, false);
    boundary(Op::Add, true, d(INFINITY), d(1.0), 0, false);
    boundary(Op::Add, true, d(INFINITY), d(-INFINITY), 0, false);
    boundary(Op::Mul, true, d(INFINITY), d(0.0), 0, false);
    boundary(Op::Add, true, QNAN_D, d(1.0), 0, false);
    boundary(Op::Add, true, 0x7ff0000000000001, d(1.0), 0, false); // sNaN: NV
    boundary(Op::Fma, true, d(0.0), d(INFINITY), QNAN_D, false);   // NV even with a quiet NaN addend
    // Singles, and a single that is not properly NaN-boxed (a canonical NaN).
    boundary(Op::Add, false, sb(1), s(1.0f), 0, false);
    boundary(Op::Mul, false, sb(0x007fffff), s(0x1p30f), 0, false);
    boundary(Op::Sqrt, false, sb(0x7f800000), 0, 0, false);
    CHECK(helper(Op::Add, false, 0x3f800000, s(1.0f), 0, RNE, NX) == Out{QNAN_S, NX});
}

TEST_CASE("fast path: tiny, overflowing and zero results", "[fpu][fast]")
{
    // Tiny results (underflow) and results exactly at the smallest normal go the exact way.
    boundary(Op::Mul, true, d(0x1p-600), d(0x1p-600), 0, false);              // underflows to 0
    boundary(Op::Mul, true, d(0x1p-1000), d(0x1p-30), 0, false);              // an exact subnormal
    boundary(Op::Mul, true, d(0x1p-1000), d(0x1.8p-30), 0, false);            // subnormal, exact
    boundary(Op::Mul, true, d(0x1.0000000000001p-511), d(0x1p-511), 0, true); // just above
    boundary(Op::Mul, true, d(0x1p-511), d(0x1p-511), 0, false);              // exactly the smallest normal
    boundary(Op::Mul, true, d(0x1.fffffffffffffp-512), d(0x1.0000000000001p-511), 0, false); // rounds to it
    boundary(Op::Div, true, d(0x1p-1000), d(0x1p100), 0, false);
    boundary(Op::Sub, true, d(0x1.0000000000001p-1022), d(0x1p-1022), 0, false); // subnormal difference
    boundary(Op::Fma, true, d(0x1p-600), d(0x1p-600), d(0.0), false);
    boundary(Op::Mul, false, s(0x1p-70f), s(0x1p-70f), 0, false);
    boundary(Op::Fma, false, s(0x1p-70f), s(0x1p-70f), s(0x1p-140f * 0), false);
    // Overflow: OF, to infinity in RNE.
    boundary(Op::Mul, true, d(1e300), d(1e300), 0, false);
    boundary(Op::Add, true, d(0x1.fffffffffffffp1023), d(0x1p970), 0, false);
    boundary(Op::Add, true, d(0x1.fffffffffffffp1023), d(0x1p969), 0, true); // rounds back to the largest
    boundary(Op::Div, false, s(0x1p100f), s(0x1p-100f), 0, false);
    boundary(Op::Fma, false, s(0x1p100f), s(0x1p100f), s(1.0f), false);
    // Zero results and their signs.
    for (bool dbl : {false, true}) {
        auto v = [&](double x) { return dbl ? d(x) : s(float(x)); };
        boundary(Op::Sub, dbl, v(1.5), v(1.5), 0, true);        // +0
        boundary(Op::Add, dbl, v(-1.5), v(1.5), 0, true);       // +0
        boundary(Op::Add, dbl, v(-0.0), v(-0.0), 0, true);      // -0
        boundary(Op::Add, dbl, v(-0.0), v(0.0), 0, true);       // +0
        boundary(Op::Sub, dbl, v(-0.0), v(0.0), 0, true);       // -0
        boundary(Op::Mul, dbl, v(0.0), v(-5.0), 0, true);       // -0
        boundary(Op::Mul, dbl, v(-0.0), v(-5.0), 0, true);      // +0
        boundary(Op::Div, dbl, v(-0.0), v(3.0), 0, true);       // -0
        boundary(Op::Fma, dbl, v(0.0), v(-3.0), v(-0.0), true); // -0 + -0 = -0
        boundary(Op::Fma, dbl, v(0.0), v(3.0), v(-0.0), true);  // +0 + -0 = +0
        boundary(Op::Fma, dbl, v(-0.0), v(3.0), v(2.5), true);  // the addend
        boundary(Op::Fma, dbl, v(2.0), v(3.0), v(-6.0), false); // exact cancellation of non-zero factors
        boundary(Op::Fma, dbl, v(2.0), v(3.0), v(0.0), true);
        // Division by zero (DZ) and 0/0 (NV).
        boundary(Op::Div, dbl, v(1.0), v(0.0), 0, false);
        boundary(Op::Div, dbl, v(-1.0), v(-0.0), 0, false);
        boundary(Op::Div, dbl, v(0.0), v(0.0), 0, false);
        // sqrt of -0 is -0 with no flag; of a negative, NV and the canonical NaN.
        boundary(Op::Sqrt, dbl, v(-0.0), 0, 0, true);
        boundary(Op::Sqrt, dbl, v(0.0), 0, 0, true);
        boundary(Op::Sqrt, dbl, v(-4.0), 0, 0, false);
        boundary(Op::Sqrt, dbl, v(-0x1p-1022 * (dbl ? 1 : 0x1p900)), 0, 0, false);
    }
    // The fused forms negate before the one rounding.
    RvCpu cpu{};
    cpu.fflags = NX;
    CHECK(rv_fnmsub_d(&cpu, d(2.0), d(3.0), d(6.0), RNE) == d(0.0));
    CHECK(rv_fnmadd_d(&cpu, d(2.0), d(3.0), d(-6.0), RNE) == d(0.0));
    CHECK(rv_fmsub_d(&cpu, d(0.0), d(3.0), d(0.0), RNE) == d(0.0));   // +0 - +0 = +0
    CHECK(rv_fnmadd_d(&cpu, d(0.0), d(3.0), d(0.0), RNE) == d(-0.0)); // -0 - +0 = -0
    CHECK(rv_fnmsub_s(&cpu, s(1.5f), s(2.0f), s(1.0f), RNE) == s(-2.0f));
    CHECK(rv_fmsub_s(&cpu, s(1.5f), s(2.0f), s(1.0f), RNE) == s(2.0f));
    CHECK(cpu.fflags == NX);
}

TEST_CASE("fast path: random operands agree with the exact engine in RNE", "[fpu][fast][cross]")
{
    Gen g;
    const Op ops[] = {Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Sqrt, Op::Fma};
    unsigned taken = 0, declined = 0, mismatches = 0;
    for (int i = 0; i < 400000; ++i) {
        bool dbl = i & 1;
        Op op = ops[(i >> 1) % 6];
        uint64_t a = dbl ? g.value(11, 52) : g.value(8, 23), b = dbl ? g.value(11, 52) : g.value(8, 23),
                 c = dbl ? g.value(11, 52) : g.value(8, 23);
        if (op == Op::Fma && i % 3 == 0) { // cancellation
            uint32_t pfl = 0;
            uint64_t pf = dbl ? soft_op_d(Op::Mul, a, b, 0, RTZ, pfl) : soft_op_s(Op::Mul, a, b, 0, RTZ, pfl);
            c = (pf ^ (uint64_t(1) << (dbl ? 63 : 31))) + (g.rng() % 5) - 2;
        }
        uint64_t r = 0;
        if (!(dbl ? fast_op_d(op, a, b, c, r) : fast_op_s(op, a, b, c, r))) {
            ++declined;
            continue;
        }
        ++taken;
        Out want = exact(op, dbl, a, b, c, RNE);
        if (!dbl) r |= BOX;
        if ((r != want.v || (want.fl & ~NX)) && ++mismatches <= 20)
            UNSCOPED_INFO("op " << int(op) << (dbl ? " d" : " s") << std::hex << " a " << a << " b " << b
                                << " c " << c << ": fast " << r << " exact " << want.v << "/" << want.fl);
    }
    CHECK(mismatches == 0);
    CHECK(taken > 150000);
    CHECK(declined > 50000);
}
