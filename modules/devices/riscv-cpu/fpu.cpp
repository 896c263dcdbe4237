// SPDX-License-Identifier: MIT
// RISC-V F and D arithmetic: host SSE for the four IEEE rounding modes, exact integer code for the rest.
//
// Arithmetic (add, sub, mul, div, sqrt, fma) runs on the host's SSE unit with
// MXCSR set for the instruction's rounding mode: x86 detects tininess after
// rounding and raises underflow only when tiny and inexact, as RISC-V does.
// The host has no round-to-nearest-max-magnitude (RMM); an RMM operation is
// first done in RNE, which is the answer when it is exact, and otherwise
// redone by the integer engine below. Conversions, comparisons, min/max and
// classification are integer code throughout: the host's conversions
// saturate differently and know no unsigned types. In front of all that, the
// common case (RNE, NX already accrued, ordinary operands and results) is
// plain host arithmetic: see "The fast path" below.
#include "fpu_impl.h"
#include "rv_cpu.h"

#include <bit>
#include <limits>
#include <type_traits>
#include <utility>

namespace keel::rv
{

namespace fpu
{

namespace
{

using u128 = unsigned __int128;

struct F32 {
    static constexpr int N = 32, E = 8, M = 23, BIAS = 127;
};
struct F64 {
    static constexpr int N = 64, E = 11, M = 52, BIAS = 1023;
};

template <class F> constexpr uint64_t kSign = uint64_t(1) << (F::N - 1);
template <class F> constexpr uint64_t kInf = ((uint64_t(1) << F::E) - 1) << F::M;
template <class F> constexpr uint64_t kFrac = (uint64_t(1) << F::M) - 1;
template <class F> constexpr uint64_t kQuiet = uint64_t(1) << (F::M - 1);
template <class F> constexpr uint64_t kQnan = kInf<F> | kQuiet<F>; // the canonical NaN
template <class F> constexpr uint64_t kMaxFinite = kInf<F> - 1;
template <class F> constexpr int kMaxExp = (1 << F::E) - 1; // biased exponent of inf/NaN

template <class F> bool sign_of(uint64_t x)
{
    return (x >> (F::N - 1)) & 1;
}
template <class F> uint64_t abs_of(uint64_t x)
{
    return x & ~kSign<F>;
}
template <class F> bool is_nan(uint64_t x)
{
    return abs_of<F>(x) > kInf<F>;
}
template <class F> bool is_snan(uint64_t x)
{
    return is_nan<F>(x) && !(x & kQuiet<F>);
}
template <class F> bool is_inf(uint64_t x)
{
    return abs_of<F>(x) == kInf<F>;
}
template <class F> bool is_zero(uint64_t x)
{
    return abs_of<F>(x) == 0;
}
template <class F> uint64_t signed_zero(bool s)
{
    return s ? kSign<F> : 0;
}
template <class F> uint64_t signed_inf(bool s)
{
    return kInf<F> | signed_zero<F>(s);
}

// A finite non-zero value sig * 2^(exp - 62), with bit 62 of sig set: `exp`
// is the exponent of the leading bit. Bit 63 stays free for carries.
struct Unpacked {
    bool sign;
    int exp;
    uint64_t sig;
};

template <class F> Unpacked unpack(uint64_t x)
{
    Unpacked u{sign_of<F>(x), 0, 0};
    int be = int((x >> F::M) & uint64_t(kMaxExp<F>));
    uint64_t frac = x & kFrac<F>;
    if (be != 0) {
        u.sig = (frac | (uint64_t(1) << F::M)) << (62 - F::M);
        u.exp = be - F::BIAS;
    } else { // subnormal: value = frac * 2^(1 - BIAS - M)
        int s = std::countl_zero(frac) - 1;
        u.sig = frac << s;
        u.exp = 1 - F::BIAS - F::M + 62 - s;
    }
    return u;
}

// Shift right, ORing every bit shifted out into bit 0 ("jamming"): the result
// is odd whenever the exact quotient was not an integer, which keeps later
// rounding (at bit 1 or above) correct.
uint64_t shift_right_jam(uint64_t x, int n)
{
    if (n <= 0) return x;
    if (n >= 64) return x != 0;
    return (x >> n) | ((x << (64 - n)) != 0);
}

u128 shift_right_jam(u128 x, int n)
{
    if (n <= 0) return x;
    if (n >= 128) return x != 0;
    return (x >> n) | u128((x << (128 - n)) != 0);
}

// The top of a 128-bit value as 64 bits, jamming the rest.
uint64_t collapse(u128 x, int n)
{
    return uint64_t(shift_right_jam(x, n));
}

int clz128(u128 x)
{
    uint64_t hi = uint64_t(x >> 64);
    return hi ? std::countl_zero(hi) : 64 + std::countl_zero(uint64_t(x));
}

// Whether to add one unit in the last place: `lsb` of the kept part, `cmp`
// compares the discarded part with half a unit (-1 below, 0 equal, 1 above),
// `inexact` says the discarded part is not zero.
bool round_increment(unsigned rm, bool sign, bool lsb, int cmp, bool inexact)
{
    switch (rm) {
    case RM_RTZ:
        return false;
    case RM_RDN:
        return sign && inexact;
    case RM_RUP:
        return !sign && inexact;
    case RM_RMM:
        return cmp >= 0;
    default: // RNE
        return cmp > 0 || (cmp == 0 && lsb);
    }
}

// Rounds sig * 2^(exp - 62) (bit 62 of sig set, sticky bits jammed into bit
// 0) to format F in mode rm, raising OF, UF (tininess after rounding) and NX.
template <class F> uint64_t round_pack(bool sign, int exp, uint64_t sig, unsigned rm, uint32_t &fl)
{
    constexpr int P = F::M + 1; // precision
    constexpr int SH = 63 - P;  // discarded bits below the kept P
    constexpr uint64_t mask = (uint64_t(1) << SH) - 1, half = uint64_t(1) << (SH - 1);
    auto increment = [&](uint64_t s) {
        uint64_t r = s & mask;
        return round_increment(rm, sign, (s >> SH) & 1, r < half ? -1 : r > half, r != 0);
    };
    int be = exp + F::BIAS;
    if (be <= 0) {
        // Tiny unless rounding to P bits with an unbounded exponent reaches
        // 2^emin, which only a value just below it (be == 0, all kept bits one) can.
        bool tiny = be < 0 || !((sig | mask) + 1 == (uint64_t(1) << 63) && increment(sig));
        sig = shift_right_jam(sig, 1 - be);
        be = 0;
        if (tiny && (sig & mask)) fl |= FF_UF;
    }
    if (sig & mask) fl |= FF_NX;
    bool up = increment(sig);
    sig = (sig >> SH) + up;
    if (be == 0) {
        // Subnormal: the field is sig itself; a carry into bit M makes it the smallest normal.
        return signed_zero<F>(sign) | sig;
    }
    if (sig >> P) { // rounded up to the next power of two
        sig >>= 1;
        ++be;
    }
    if (be >= kMaxExp<F>) {
        fl |= FF_OF | FF_NX;
        bool to_inf = rm == RM_RNE || rm == RM_RMM || (rm == RM_RUP && !sign) || (rm == RM_RDN && sign);
        return signed_zero<F>(sign) | (to_inf ? kInf<F> : kMaxFinite<F>);
    }
    return signed_zero<F>(sign) | (uint64_t(be) << F::M) | (sig & kFrac<F>);
}

// The zero an exact cancellation gives: +0, or -0 when rounding down.
template <class F> uint64_t cancel_zero(unsigned rm)
{
    return signed_zero<F>(rm == RM_RDN);
}

// |x| >= |y|.
bool mag_ge(const Unpacked &x, const Unpacked &y)
{
    return x.exp != y.exp ? x.exp > y.exp : x.sig >= y.sig;
}

template <class F> uint64_t add_unpacked(Unpacked x, Unpacked y, unsigned rm, uint32_t &fl)
{
    if (!mag_ge(x, y)) std::swap(x, y);
    uint64_t ys = shift_right_jam(y.sig, x.exp - y.exp);
    int exp = x.exp;
    uint64_t sig;
    if (x.sign == y.sign) {
        sig = x.sig + ys;
        if (sig >> 63) {
            sig = shift_right_jam(sig, 1);
            ++exp;
        }
    } else {
        sig = x.sig - ys;
        if (sig == 0) return cancel_zero<F>(rm);
        int s = std::countl_zero(sig) - 1;
        sig <<= s;
        exp -= s;
    }
    return round_pack<F>(x.sign, exp, sig, rm, fl);
}

template <class F> uint64_t soft_add(uint64_t a, uint64_t b, unsigned rm, uint32_t &fl)
{
    if (is_nan<F>(a) || is_nan<F>(b)) {
        if (is_snan<F>(a) || is_snan<F>(b)) fl |= FF_NV;
        return kQnan<F>;
    }
    if (is_inf<F>(a)) {
        if (is_inf<F>(b) && sign_of<F>(a) != sign_of<F>(b)) {
            fl |= FF_NV;
            return kQnan<F>;
        }
        return a;
    }
    if (is_inf<F>(b)) return b;
    if (is_zero<F>(a) && is_zero<F>(b)) return sign_of<F>(a) == sign_of<F>(b) ? a : cancel_zero<F>(rm);
    if (is_zero<F>(a)) return b;
    if (is_zero<F>(b)) return a;
    return add_unpacked<F>(unpack<F>(a), unpack<F>(b), rm, fl);
}

template <class F> uint64_t soft_mul(uint64_t a, uint64_t b, unsigned rm, uint32_t &fl)
{
    if (is_nan<F>(a) || is_nan<F>(b)) {
        if (is_snan<F>(a) || is_snan<F>(b)) fl |= FF_NV;
        return kQnan<F>;
    }
    bool sign = sign_of<F>(a) != sign_of<F>(b);
    if (is_inf<F>(a) || is_inf<F>(b)) {
        if (is_zero<F>(a) || is_zero<F>(b)) {
            fl |= FF_NV;
            return kQnan<F>;
        }
        return signed_inf<F>(sign);
    }
    if (is_zero<F>(a) || is_zero<F>(b)) return signed_zero<F>(sign);
    Unpacked x = unpack<F>(a), y = unpack<F>(b);
    u128 p = u128(x.sig) * y.sig; // in [2^124, 2^126)
    int exp = x.exp + y.exp;
    if (p >> 125) ++exp;
    return round_pack<F>(sign, exp, collapse(p, (p >> 125) ? 63 : 62), rm, fl);
}

template <class F> uint64_t soft_div(uint64_t a, uint64_t b, unsigned rm, uint32_t &fl)
{
    if (is_nan<F>(a) || is_nan<F>(b)) {
        if (is_snan<F>(a) || is_snan<F>(b)) fl |= FF_NV;
        return kQnan<F>;
    }
    bool sign = sign_of<F>(a) != sign_of<F>(b);
    if (is_inf<F>(a)) {
        if (is_inf<F>(b)) {
            fl |= FF_NV;
            return kQnan<F>;
        }
        return signed_inf<F>(sign);
    }
    if (is_inf<F>(b)) return signed_zero<F>(sign);
    if (is_zero<F>(b)) {
        if (is_zero<F>(a)) {
            fl |= FF_NV;
            return kQnan<F>;
        }
        fl |= FF_DZ;
        return signed_inf<F>(sign);
    }
    if (is_zero<F>(a)) return signed_zero<F>(sign);
    Unpacked x = unpack<F>(a), y = unpack<F>(b);
    u128 n = u128(x.sig) << 63;
    uint64_t q = uint64_t(n / y.sig); // in [2^62, 2^64)
    bool rem = n % y.sig != 0;
    int exp = x.exp - y.exp;
    if (q >> 63)
        q = shift_right_jam(q, 1);
    else
        --exp;
    return round_pack<F>(sign, exp, q | rem, rm, fl);
}

template <class F> uint64_t soft_sqrt(uint64_t a, unsigned rm, uint32_t &fl)
{
    if (is_nan<F>(a)) {
        if (is_snan<F>(a)) fl |= FF_NV;
        return kQnan<F>;
    }
    if (is_zero<F>(a)) return a;
    if (sign_of<F>(a)) {
        fl |= FF_NV;
        return kQnan<F>;
    }
    if (is_inf<F>(a)) return a;
    Unpacked x = unpack<F>(a);
    // sqrt(sig * 2^(exp-62)) with the exponent made even: N = sig << k, k = exp mod 2 (+62).
    int k = (x.exp & 1) ? 63 : 62;
    u128 n = u128(x.sig) << k; // in [2^124, 2^126): the root has 63 bits
    uint64_t root = 0;
    for (int bit = 62; bit >= 0; --bit) {
        uint64_t t = root | (uint64_t(1) << bit);
        if (u128(t) * t <= n) root = t;
    }
    bool rem = u128(root) * root != n;
    return round_pack<F>(false, 62 + (x.exp - 62 - k) / 2, root | rem, rm, fl);
}

template <class F> uint64_t soft_fma(uint64_t a, uint64_t b, uint64_t c, unsigned rm, uint32_t &fl)
{
    bool inf_times_zero =
        (is_inf<F>(a) && is_zero<F>(b)) || (is_zero<F>(a) && is_inf<F>(b)); // invalid even if c is a qNaN
    if (is_nan<F>(a) || is_nan<F>(b) || is_nan<F>(c)) {
        if (is_snan<F>(a) || is_snan<F>(b) || is_snan<F>(c) || inf_times_zero) fl |= FF_NV;
        return kQnan<F>;
    }
    if (inf_times_zero) {
        fl |= FF_NV;
        return kQnan<F>;
    }
    bool sp = sign_of<F>(a) != sign_of<F>(b), sc = sign_of<F>(c);
    if (is_inf<F>(a) || is_inf<F>(b)) {
        if (is_inf<F>(c) && sc != sp) {
            fl |= FF_NV;
            return kQnan<F>;
        }
        return signed_inf<F>(sp);
    }
    if (is_inf<F>(c)) return c;
    if (is_zero<F>(a) || is_zero<F>(b)) {
        if (!is_zero<F>(c)) return c;
        return sp == sc ? signed_zero<F>(sp) : cancel_zero<F>(rm);
    }
    // The exact product, leading bit at 126: value = p * 2^(ep - 126).
    Unpacked x = unpack<F>(a), y = unpack<F>(b);
    u128 p = u128(x.sig) * y.sig;
    int ep = x.exp + y.exp;
    if (p >> 125) {
        p <<= 1;
        ++ep;
    } else {
        p <<= 2;
    }
    if (is_zero<F>(c)) return round_pack<F>(sp, ep, collapse(p, 64), rm, fl);
    Unpacked z = unpack<F>(c);
    u128 q = u128(z.sig) << 64;
    int eq = z.exp;
    // Both have at least 21 trailing zero bits, so jamming the smaller keeps the sum exact enough.
    bool sign = sp;
    if (eq > ep || (eq == ep && q > p)) {
        std::swap(p, q);
        std::swap(ep, eq);
        sign = sc;
    }
    q = shift_right_jam(q, ep - eq);
    int exp = ep;
    u128 s;
    if (sp == sc) {
        s = p + q;
        if (s >> 127) {
            s = shift_right_jam(s, 1);
            ++exp;
        }
    } else {
        s = p - q;
        if (s == 0) return cancel_zero<F>(rm);
        int sh = clz128(s) - 1;
        s <<= sh;
        exp -= sh;
    }
    return round_pack<F>(sign, exp, collapse(s, 64), rm, fl);
}

template <class F> uint64_t soft_op(Op op, uint64_t a, uint64_t b, uint64_t c, unsigned rm, uint32_t &fl)
{
    switch (op) {
    case Op::Add:
        return soft_add<F>(a, b, rm, fl);
    case Op::Sub:
        return soft_add<F>(a, b ^ kSign<F>, rm, fl);
    case Op::Mul:
        return soft_mul<F>(a, b, rm, fl);
    case Op::Div:
        return soft_div<F>(a, b, rm, fl);
    case Op::Sqrt:
        return soft_sqrt<F>(a, rm, fl);
    case Op::Fma:
        return soft_fma<F>(a, b, c, rm, fl);
    }
    return kQnan<F>;
}

#if defined(__x86_64__)

// MXCSR: all exceptions masked, no flush-to-zero or denormals-are-zero, the
// rounding control for rm (x86 encodes nearest/down/up/zero as 0/1/2/3).
uint32_t mxcsr_for(unsigned rm)
{
    static constexpr uint32_t kRc[4] = {0, 3, 1, 2}; // RNE RTZ RDN RUP
    return 0x1f80u | kRc[rm & 3] << 13;
}

// MXCSR status bits IE DE ZE OE UE PE (0..5) as fflags (DE has no counterpart).
uint32_t flags_from_mxcsr(uint32_t m)
{
    return (m & 1) << 4 | ((m >> 2) & 1) << 3 | ((m >> 3) & 1) << 2 | ((m >> 4) & 1) << 1 | ((m >> 5) & 1);
}

// Explicit init: this runs as a static constructor, maybe before libgcc's own.
const bool kHostFma = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("fma") != 0;
}();

// One host instruction under a temporary MXCSR; the caller's MXCSR (its
// rounding mode and sticky flags) is restored before anything else runs.
// Everything is in one asm statement so the compiler cannot move the
// arithmetic out from under the rounding mode.
#define KEEL_FPU_HW(insn, acc, x, y)                               \
    asm volatile("stmxcsr %[old]\n\t"                              \
                 "ldmxcsr %[ctl]\n\t" insn "\n\t"                  \
                 "stmxcsr %[st]\n\t"                               \
                 "ldmxcsr %[old]"                                  \
                 : [acc] "+x"(acc), [old] "+m"(old), [st] "+m"(st) \
                 : [x] "x"(x), [y] "x"(y), [ctl] "m"(ctl))

template <class F>
bool hw_op(Op op, uint64_t a, uint64_t b, uint64_t c, unsigned rm, uint64_t &res, uint32_t &fl)
{
    // x86 raises no invalid for 0 * inf + qNaN; RISC-V does. NaN operands are rare: leave them all to the
    // exact engine.
    if (op == Op::Fma && (!kHostFma || is_nan<F>(a) || is_nan<F>(b) || is_nan<F>(c))) return false;
    uint32_t ctl = mxcsr_for(rm == RM_RMM ? RM_RNE : rm), old = 0, st = 0;
    uint64_t r;
    if constexpr (F::N == 32) {
        float acc = std::bit_cast<float>(uint32_t(a)), x = std::bit_cast<float>(uint32_t(b)),
              y = std::bit_cast<float>(uint32_t(c));
        switch (op) {
        case Op::Add:
            KEEL_FPU_HW("addss %[x], %[acc]", acc, x, y);
            break;
        case Op::Sub:
            KEEL_FPU_HW("subss %[x], %[acc]", acc, x, y);
            break;
        case Op::Mul:
            KEEL_FPU_HW("mulss %[x], %[acc]", acc, x, y);
            break;
        case Op::Div:
            KEEL_FPU_HW("divss %[x], %[acc]", acc, x, y);
            break;
        case Op::Sqrt:
            KEEL_FPU_HW("sqrtss %[acc], %[acc]", acc, x, y);
            break;
        case Op::Fma: // acc = acc * x + y
            KEEL_FPU_HW("vfmadd213ss %[y], %[x], %[acc]", acc, x, y);
            break;
        }
        r = std::bit_cast<uint32_t>(acc);
    } else {
        double acc = std::bit_cast<double>(a), x = std::bit_cast<double>(b), y = std::bit_cast<double>(c);
        switch (op) {
        case Op::Add:
            KEEL_FPU_HW("addsd %[x], %[acc]", acc, x, y);
            break;
        case Op::Sub:
            KEEL_FPU_HW("subsd %[x], %[acc]", acc, x, y);
            break;
        case Op::Mul:
            KEEL_FPU_HW("mulsd %[x], %[acc]", acc, x, y);
            break;
        case Op::Div:
            KEEL_FPU_HW("divsd %[x], %[acc]", acc, x, y);
            break;
        case Op::Sqrt:
            KEEL_FPU_HW("sqrtsd %[acc], %[acc]", acc, x, y);
            break;
        case Op::Fma:
            KEEL_FPU_HW("vfmadd213sd %[y], %[x], %[acc]", acc, x, y);
            break;
        }
        r = std::bit_cast<uint64_t>(acc);
    }
    if (rm == RM_RMM && (st & 0x20)) return false; // inexact: RNE may have picked the wrong tie
    res = is_nan<F>(r) ? kQnan<F> : r;
    fl |= flags_from_mxcsr(st);
    return true;
}

#undef KEEL_FPU_HW

#else

template <class F> bool hw_op(Op, uint64_t, uint64_t, uint64_t, unsigned, uint64_t &, uint32_t &)
{
    return false;
}

#endif

// ---- The fast path ("hardfloat") ----
//
// Most guest FP code runs in RNE with NX already accrued. Then an operation on
// zero or normal operands whose host result is finite and not tiny can raise
// no flag but NX (no NaN or infinity in, so no NV; a non-zero divisor, so no
// DZ; a finite result, so no OF; not tiny, so no UF), and plain host
// arithmetic in the host's default mode (RNE, nothing flushed) gives the
// result. Anything else goes to the exact path below, which also covers a host
// whose MXCSR is not the default.

#if defined(__x86_64__)

// MXCSR without its status flags: RNE, all exceptions masked, no FTZ/DAZ.
constexpr uint32_t kMxcsrDefault = 0x1f80;

inline bool host_default_mode()
{
    uint32_t m;
    asm volatile("stmxcsr %0" : "=m"(m));
    return (m & ~0x3fu) == kMxcsrDefault;
}

template <class F> bool zero_or_normal(uint64_t x)
{
    uint64_t e = x & kInf<F>;
    return e != kInf<F> && (e != 0 || is_zero<F>(x));
}

template <class F> using HostT = std::conditional_t<F::N == 32, float, double>;
template <class F> using HostBits = std::conditional_t<F::N == 32, uint32_t, uint64_t>;

template <class F> HostT<F> to_host(uint64_t x)
{
    return std::bit_cast<HostT<F>>(HostBits<F>(x));
}

// |r| above the smallest normal (and finite), or r an exact zero.
template <class F> bool fast_ok(HostT<F> r, bool zero_exact)
{
    uint64_t m = abs_of<F>(std::bit_cast<HostBits<F>>(r));
    if (m == 0) return zero_exact;
    return m > (uint64_t(1) << F::M) && m < kInf<F>;
}

// a * b + c with one rounding (only when kHostFma): the instruction itself, so that it inlines into
// code compiled without -mfma.
inline float host_fma(float a, float b, float c)
{
    asm("vfmadd231ss %[b], %[a], %[c]" : [c] "+x"(c) : [a] "x"(a), [b] "x"(b));
    return c;
}
inline double host_fma(double a, double b, double c)
{
    asm("vfmadd231sd %[b], %[a], %[c]" : [c] "+x"(c) : [a] "x"(a), [b] "x"(b));
    return c;
}

// Only for rm == RNE with NX already set in the hart's fflags. True with `res`
// set when the fast path applies; no flags need accruing then.
template <class F>
[[gnu::always_inline]] inline bool fast_op(Op op, uint64_t a, uint64_t b, uint64_t c, uint64_t &res)
{
    using T = HostT<F>;
    T x = to_host<F>(a), y = to_host<F>(b), r;
    switch (op) {
    case Op::Add:
    case Op::Sub:
        if (!zero_or_normal<F>(a) || !zero_or_normal<F>(b)) return false;
        r = op == Op::Add ? x + y : x - y;
        if (!fast_ok<F>(r, true)) return false; // cancellation of normals and zero sums are exact
        break;
    case Op::Mul:
        if (!zero_or_normal<F>(a) || !zero_or_normal<F>(b)) return false;
        r = x * y;
        if (!fast_ok<F>(r, is_zero<F>(a) || is_zero<F>(b))) return false;
        break;
    case Op::Div:
        if (!zero_or_normal<F>(a) || !zero_or_normal<F>(b) || is_zero<F>(b)) return false;
        r = x / y;
        if (!fast_ok<F>(r, is_zero<F>(a))) return false;
        break;
    case Op::Sqrt:
        if (!zero_or_normal<F>(a) || (sign_of<F>(a) && !is_zero<F>(a))) return false;
        // The root of a normal is normal; of a zero, the same zero.
        if constexpr (F::N == 32)
            r = __builtin_sqrtf(x);
        else
            r = __builtin_sqrt(x);
        break;
    case Op::Fma:
        if (!kHostFma || !zero_or_normal<F>(a) || !zero_or_normal<F>(b) || !zero_or_normal<F>(c))
            return false;
        r = host_fma(x, y, to_host<F>(c));
        // A zero product leaves c (or a signed-zero sum, exact); a zero from non-zero factors may be tiny.
        if (!fast_ok<F>(r, is_zero<F>(a) || is_zero<F>(b))) return false;
        break;
    default:
        return false;
    }
    res = std::bit_cast<HostBits<F>>(r);
    return true;
}

#else

inline bool host_default_mode()
{
    return false;
}
template <class F> bool fast_op(Op, uint64_t, uint64_t, uint64_t, uint64_t &)
{
    return false;
}

#endif

// ---- Conversions ----

// Float to integer: round per rm, saturate (NV, no NX) outside the range.
template <class F> uint64_t to_int(uint64_t a, unsigned rm, bool is_signed, int bits, uint32_t &fl)
{
    const uint64_t max = is_signed ? (uint64_t(1) << (bits - 1)) - 1 : ~uint64_t(0) >> (64 - bits);
    const uint64_t min = is_signed ? uint64_t(0) - (uint64_t(1) << (bits - 1)) : 0;
    auto narrow = [&](uint64_t v) { return bits == 32 ? uint64_t(int64_t(int32_t(uint32_t(v)))) : v; };
    if (is_nan<F>(a)) {
        fl |= FF_NV;
        return narrow(max);
    }
    bool sign = sign_of<F>(a);
    if (is_inf<F>(a)) {
        fl |= FF_NV;
        return narrow(sign ? min : max);
    }
    if (is_zero<F>(a)) return 0;
    Unpacked x = unpack<F>(a);
    bool too_big = false, inexact = false;
    uint64_t mag = 0;
    if (x.exp >= 64) {
        too_big = true;
    } else if (x.exp >= 62) {
        mag = x.sig << (x.exp - 62);
    } else {
        int sh = 62 - x.exp;
        uint64_t ip = 0;
        int cmp = -1; // anything below 2^-1 is less than half
        inexact = true;
        if (sh < 64) {
            uint64_t rem = x.sig & ((uint64_t(1) << sh) - 1), half = uint64_t(1) << (sh - 1);
            ip = x.sig >> sh;
            cmp = rem < half ? -1 : rem > half;
            inexact = rem != 0;
        }
        mag = ip + round_increment(rm, sign, ip & 1, cmp, inexact);
    }
    uint64_t res;
    if (!sign) {
        if (too_big || mag > max) {
            fl |= FF_NV;
            return narrow(max);
        }
        res = mag;
    } else if (is_signed) {
        if (too_big || mag > uint64_t(0) - min) {
            fl |= FF_NV;
            return narrow(min);
        }
        res = uint64_t(0) - mag;
    } else {
        if (too_big || mag != 0) {
            fl |= FF_NV;
            return 0;
        }
        res = 0;
    }
    if (inexact) fl |= FF_NX;
    return narrow(res);
}

// Integer (the low 32 bits when bits == 32) to float.
template <class F> uint64_t from_int(uint64_t v, unsigned rm, bool is_signed, int bits, uint32_t &fl)
{
    if (bits == 32) v = is_signed ? uint64_t(int64_t(int32_t(uint32_t(v)))) : uint32_t(v);
    bool sign = is_signed && int64_t(v) < 0;
    uint64_t mag = sign ? uint64_t(0) - v : v;
    if (mag == 0) return 0;
    int lz = std::countl_zero(mag);
    if (lz == 0) return round_pack<F>(sign, 63, shift_right_jam(mag, 1), rm, fl);
    return round_pack<F>(sign, 63 - lz, mag << (lz - 1), rm, fl);
}

// Float to float (widening is exact; narrowing rounds).
template <class T, class F> uint64_t convert(uint64_t a, unsigned rm, uint32_t &fl)
{
    if (is_nan<F>(a)) {
        if (is_snan<F>(a)) fl |= FF_NV;
        return kQnan<T>;
    }
    bool sign = sign_of<F>(a);
    if (is_inf<F>(a)) return signed_inf<T>(sign);
    if (is_zero<F>(a)) return signed_zero<T>(sign);
    Unpacked x = unpack<F>(a);
    return round_pack<T>(sign, x.exp, x.sig, rm, fl);
}

// ---- Sign injection, comparison, min/max, classification ----

// a < b for non-NaN values, with -0 < +0.
template <class F> bool total_lt(uint64_t a, uint64_t b)
{
    bool sa = sign_of<F>(a), sb = sign_of<F>(b);
    if (sa != sb) return sa;
    return sa ? a > b : a < b;
}

template <class F> uint64_t min_max(uint64_t a, uint64_t b, bool is_max, uint32_t &fl)
{
    if (is_snan<F>(a) || is_snan<F>(b)) fl |= FF_NV;
    bool na = is_nan<F>(a), nb = is_nan<F>(b);
    if (na && nb) return kQnan<F>;
    if (na) return b;
    if (nb) return a;
    return total_lt<F>(a, b) != is_max ? a : b;
}

template <class F> uint64_t compare_eq(uint64_t a, uint64_t b, uint32_t &fl)
{
    if (is_nan<F>(a) || is_nan<F>(b)) {
        if (is_snan<F>(a) || is_snan<F>(b)) fl |= FF_NV;
        return 0;
    }
    return a == b || (is_zero<F>(a) && is_zero<F>(b));
}

template <class F> uint64_t compare_lt(uint64_t a, uint64_t b, bool or_equal, uint32_t &fl)
{
    if (is_nan<F>(a) || is_nan<F>(b)) {
        fl |= FF_NV;
        return 0;
    }
    if (a == b || (is_zero<F>(a) && is_zero<F>(b))) return or_equal;
    return total_lt<F>(a, b);
}

template <class F> uint64_t classify(uint64_t a)
{
    bool s = sign_of<F>(a);
    if (is_nan<F>(a)) return is_snan<F>(a) ? 1u << 8 : 1u << 9;
    if (is_inf<F>(a)) return s ? 1u << 0 : 1u << 7;
    if (is_zero<F>(a)) return s ? 1u << 3 : 1u << 4;
    if ((a & kInf<F>) == 0) return s ? 1u << 2 : 1u << 5; // subnormal
    return s ? 1u << 1 : 1u << 6;
}

} // namespace

uint64_t soft_op_s(Op op, uint64_t a, uint64_t b, uint64_t c, unsigned rm, uint32_t &flags)
{
    return soft_op<F32>(op, a, b, c, rm, flags);
}
uint64_t soft_op_d(Op op, uint64_t a, uint64_t b, uint64_t c, unsigned rm, uint32_t &flags)
{
    return soft_op<F64>(op, a, b, c, rm, flags);
}
bool hw_op_s(Op op, uint64_t a, uint64_t b, uint64_t c, unsigned rm, uint64_t &res, uint32_t &flags)
{
    return hw_op<F32>(op, a, b, c, rm, res, flags);
}
bool hw_op_d(Op op, uint64_t a, uint64_t b, uint64_t c, unsigned rm, uint64_t &res, uint32_t &flags)
{
    return hw_op<F64>(op, a, b, c, rm, res, flags);
}
bool fast_op_s(Op op, uint64_t a, uint64_t b, uint64_t c, uint64_t &res)
{
    return host_default_mode() && fast_op<F32>(op, a, b, c, res);
}
bool fast_op_d(Op op, uint64_t a, uint64_t b, uint64_t c, uint64_t &res)
{
    return host_default_mode() && fast_op<F64>(op, a, b, c, res);
}

} // namespace fpu

namespace
{

using namespace fpu;

constexpr uint64_t kBox = 0xffffffff00000000;

// A single operand: the low half when properly NaN-boxed, else the canonical NaN.
uint64_t unbox(uint64_t v)
{
    return (v & kBox) == kBox ? uint32_t(v) : kQnan<F32>;
}
uint64_t box(uint64_t v)
{
    return v | kBox;
}

RvCpu *hart(void *env)
{
    return static_cast<RvCpu *>(env);
}

// rm 7 means frm. The translator has rejected invalid modes; anything else
// that slips through is treated as RNE rather than trusted as an index.
unsigned mode(void *env, uint32_t rm)
{
    unsigned r = rm == 7 ? hart(env)->frm : rm;
    return r <= RM_RMM ? r : RM_RNE;
}

// The exact path of arith(): the host FPU under the instruction's rounding mode, or the integer engine.
template <class F>
[[gnu::noinline]] uint64_t arith_exact(void *env, Op op, uint64_t a, uint64_t b, uint64_t c, unsigned r)
{
    uint32_t fl = 0;
    uint64_t res;
    if (!hw_op<F>(op, a, b, c, r, res, fl)) res = soft_op<F>(op, a, b, c, r, fl);
    hart(env)->fflags |= fl;
    return res;
}

// neg_a / neg_c: sign bits to flip in a and c once unboxed (the fused forms). Inlined into each
// helper, so that `op` is a constant and the fast path is straight-line code.
template <class F>
[[gnu::always_inline]] inline uint64_t arith(void *env, Op op, uint64_t a, uint64_t b, uint64_t c,
                                             uint32_t rm, uint64_t neg_a = 0, uint64_t neg_c = 0)
{
    unsigned r = mode(env, rm);
    uint64_t res;
    if constexpr (F::N == 32) {
        a = unbox(a);
        b = unbox(b);
        c = unbox(c);
    }
    a ^= neg_a;
    c ^= neg_c;
    if (!(r == RM_RNE && (hart(env)->fflags & FF_NX) && host_default_mode() && fast_op<F>(op, a, b, c, res)))
        res = arith_exact<F>(env, op, a, b, c, r);
    if constexpr (F::N == 32) return box(res);
    return res;
}

// fmadd a*b+c, fmsub a*b-c, fnmsub -(a*b)+c, fnmadd -(a*b)-c: negating an
// operand is exact, and the sign of a NaN operand does not matter.
template <class F>
[[gnu::always_inline]] inline uint64_t fused(void *env, uint64_t a, uint64_t b, uint64_t c, uint32_t rm,
                                             bool neg_prod, bool neg_c)
{
    return arith<F>(env, Op::Fma, a, b, c, rm, neg_prod ? kSign<F> : 0, neg_c ? kSign<F> : 0);
}

// Accrues the flags `fn` raises.
template <class Fn> uint64_t with_flags(void *env, Fn fn)
{
    uint32_t fl = 0;
    uint64_t r = fn(fl);
    hart(env)->fflags |= fl;
    return r;
}

// Doubles and integers need neither unboxing nor boxing.
inline uint64_t same(uint64_t v)
{
    return v;
}

constexpr Op kOp_fadd = Op::Add, kOp_fsub = Op::Sub, kOp_fmul = Op::Mul, kOp_fdiv = Op::Div;

} // namespace

extern "C" {

#define RV_FP_DEF_BIN(op)                                                \
    uint64_t rv_##op##_s(void *env, uint64_t a, uint64_t b, uint32_t rm) \
    {                                                                    \
        return arith<F32>(env, kOp_##op, a, b, 0, rm);                   \
    }                                                                    \
    uint64_t rv_##op##_d(void *env, uint64_t a, uint64_t b, uint32_t rm) \
    {                                                                    \
        return arith<F64>(env, kOp_##op, a, b, 0, rm);                   \
    }
RV_FP_BINOPS(RV_FP_DEF_BIN)
#undef RV_FP_DEF_BIN

uint64_t rv_fsqrt_s(void *env, uint64_t a, uint32_t rm)
{
    return arith<F32>(env, Op::Sqrt, a, 0, 0, rm);
}
uint64_t rv_fsqrt_d(void *env, uint64_t a, uint32_t rm)
{
    return arith<F64>(env, Op::Sqrt, a, 0, 0, rm);
}

uint64_t rv_fmin_s(void *env, uint64_t a, uint64_t b)
{
    return box(with_flags(env, [&](uint32_t &fl) { return min_max<F32>(unbox(a), unbox(b), false, fl); }));
}
uint64_t rv_fmax_s(void *env, uint64_t a, uint64_t b)
{
    return box(with_flags(env, [&](uint32_t &fl) { return min_max<F32>(unbox(a), unbox(b), true, fl); }));
}
uint64_t rv_fmin_d(void *env, uint64_t a, uint64_t b)
{
    return with_flags(env, [&](uint32_t &fl) { return min_max<F64>(a, b, false, fl); });
}
uint64_t rv_fmax_d(void *env, uint64_t a, uint64_t b)
{
    return with_flags(env, [&](uint32_t &fl) { return min_max<F64>(a, b, true, fl); });
}

uint64_t rv_fmadd_s(void *env, uint64_t a, uint64_t b, uint64_t c, uint32_t rm)
{
    return fused<F32>(env, a, b, c, rm, false, false);
}
uint64_t rv_fmsub_s(void *env, uint64_t a, uint64_t b, uint64_t c, uint32_t rm)
{
    return fused<F32>(env, a, b, c, rm, false, true);
}
uint64_t rv_fnmsub_s(void *env, uint64_t a, uint64_t b, uint64_t c, uint32_t rm)
{
    return fused<F32>(env, a, b, c, rm, true, false);
}
uint64_t rv_fnmadd_s(void *env, uint64_t a, uint64_t b, uint64_t c, uint32_t rm)
{
    return fused<F32>(env, a, b, c, rm, true, true);
}
uint64_t rv_fmadd_d(void *env, uint64_t a, uint64_t b, uint64_t c, uint32_t rm)
{
    return fused<F64>(env, a, b, c, rm, false, false);
}
uint64_t rv_fmsub_d(void *env, uint64_t a, uint64_t b, uint64_t c, uint32_t rm)
{
    return fused<F64>(env, a, b, c, rm, false, true);
}
uint64_t rv_fnmsub_d(void *env, uint64_t a, uint64_t b, uint64_t c, uint32_t rm)
{
    return fused<F64>(env, a, b, c, rm, true, false);
}
uint64_t rv_fnmadd_d(void *env, uint64_t a, uint64_t b, uint64_t c, uint32_t rm)
{
    return fused<F64>(env, a, b, c, rm, true, true);
}

uint64_t rv_fsgnj_s(uint64_t a, uint64_t b)
{
    return box((unbox(a) & ~kSign<F32>) | (unbox(b) & kSign<F32>));
}
uint64_t rv_fsgnjn_s(uint64_t a, uint64_t b)
{
    return box((unbox(a) & ~kSign<F32>) | (~unbox(b) & kSign<F32>));
}
uint64_t rv_fsgnjx_s(uint64_t a, uint64_t b)
{
    return box(unbox(a) ^ (unbox(b) & kSign<F32>));
}
uint64_t rv_fsgnj_d(uint64_t a, uint64_t b)
{
    return (a & ~kSign<F64>) | (b & kSign<F64>);
}
uint64_t rv_fsgnjn_d(uint64_t a, uint64_t b)
{
    return (a & ~kSign<F64>) | (~b & kSign<F64>);
}
uint64_t rv_fsgnjx_d(uint64_t a, uint64_t b)
{
    return a ^ (b & kSign<F64>);
}
uint64_t rv_fclass_s(uint64_t a)
{
    return classify<F32>(unbox(a));
}
uint64_t rv_fclass_d(uint64_t a)
{
    return classify<F64>(a);
}

uint64_t rv_feq_s(void *env, uint64_t a, uint64_t b)
{
    return with_flags(env, [&](uint32_t &fl) { return compare_eq<F32>(unbox(a), unbox(b), fl); });
}
uint64_t rv_flt_s(void *env, uint64_t a, uint64_t b)
{
    return with_flags(env, [&](uint32_t &fl) { return compare_lt<F32>(unbox(a), unbox(b), false, fl); });
}
uint64_t rv_fle_s(void *env, uint64_t a, uint64_t b)
{
    return with_flags(env, [&](uint32_t &fl) { return compare_lt<F32>(unbox(a), unbox(b), true, fl); });
}
uint64_t rv_feq_d(void *env, uint64_t a, uint64_t b)
{
    return with_flags(env, [&](uint32_t &fl) { return compare_eq<F64>(a, b, fl); });
}
uint64_t rv_flt_d(void *env, uint64_t a, uint64_t b)
{
    return with_flags(env, [&](uint32_t &fl) { return compare_lt<F64>(a, b, false, fl); });
}
uint64_t rv_fle_d(void *env, uint64_t a, uint64_t b)
{
    return with_flags(env, [&](uint32_t &fl) { return compare_lt<F64>(a, b, true, fl); });
}

// fcvt_<to>_<from>.
#define RV_FP_TO_INT(name, F, in, is_signed, bits)                                                    \
    uint64_t rv_fcvt_##name(void *env, uint64_t a, uint32_t rm)                                       \
    {                                                                                                 \
        return with_flags(                                                                            \
            env, [&](uint32_t &fl) { return to_int<F>(in(a), mode(env, rm), is_signed, bits, fl); }); \
    }
#define RV_FP_FROM_INT(name, F, out, is_signed, bits)                                                \
    uint64_t rv_fcvt_##name(void *env, uint64_t a, uint32_t rm)                                      \
    {                                                                                                \
        return out(with_flags(                                                                       \
            env, [&](uint32_t &fl) { return from_int<F>(a, mode(env, rm), is_signed, bits, fl); })); \
    }
RV_FP_TO_INT(w_s, F32, unbox, true, 32)
RV_FP_TO_INT(wu_s, F32, unbox, false, 32)
RV_FP_TO_INT(l_s, F32, unbox, true, 64)
RV_FP_TO_INT(lu_s, F32, unbox, false, 64)
RV_FP_TO_INT(w_d, F64, same, true, 32)
RV_FP_TO_INT(wu_d, F64, same, false, 32)
RV_FP_TO_INT(l_d, F64, same, true, 64)
RV_FP_TO_INT(lu_d, F64, same, false, 64)
RV_FP_FROM_INT(s_w, F32, box, true, 32)
RV_FP_FROM_INT(s_wu, F32, box, false, 32)
RV_FP_FROM_INT(s_l, F32, box, true, 64)
RV_FP_FROM_INT(s_lu, F32, box, false, 64)
RV_FP_FROM_INT(d_w, F64, same, true, 32)
RV_FP_FROM_INT(d_wu, F64, same, false, 32)
RV_FP_FROM_INT(d_l, F64, same, true, 64)
RV_FP_FROM_INT(d_lu, F64, same, false, 64)
#undef RV_FP_TO_INT
#undef RV_FP_FROM_INT

uint64_t rv_fcvt_s_d(void *env, uint64_t a, uint32_t rm)
{
    return box(with_flags(env, [&](uint32_t &fl) { return convert<F32, F64>(a, mode(env, rm), fl); }));
}
uint64_t rv_fcvt_d_s(void *env, uint64_t a, uint32_t rm)
{
    return with_flags(env, [&](uint32_t &fl) { return convert<F64, F32>(unbox(a), mode(env, rm), fl); });
}

} // extern "C"

} // namespace keel::rv
