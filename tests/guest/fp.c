// SPDX-License-Identifier: MIT
// F and D: rounding modes (static and dynamic), exception flags, NaN boxing, canonical NaNs, min/max,
// conversion saturation, fclass, fused multiply-add, sign injection, comparisons, fcsr and mstatus.FS.
#include "rt.h"

// Operations on raw register bits. Single inputs go through fmv.w.x (which NaN-boxes); R64 inputs through
// fmv.d.x (raw 64 bits, to build improperly boxed singles). Results come back through fmv.x.d (raw) or,
// for integer results, the destination register. `rm` is "" or ", rne" etc.
#define S2(insn, rm, a, b)                                                               \
    ({                                                                                   \
        uint64_t _r;                                                                     \
        __asm__ volatile("fmv.w.x ft0, %1\n fmv.w.x ft1, %2\n " insn " ft2, ft0, ft1" rm \
                         "\n fmv.x.d %0, ft2"                                            \
                         : "=r"(_r)                                                      \
                         : "r"((uint64_t)(a)), "r"((uint64_t)(b))                        \
                         : "ft0", "ft1", "ft2");                                         \
        _r;                                                                              \
    })
#define D2(insn, rm, a, b)                                                               \
    ({                                                                                   \
        uint64_t _r;                                                                     \
        __asm__ volatile("fmv.d.x ft0, %1\n fmv.d.x ft1, %2\n " insn " ft2, ft0, ft1" rm \
                         "\n fmv.x.d %0, ft2"                                            \
                         : "=r"(_r)                                                      \
                         : "r"((uint64_t)(a)), "r"((uint64_t)(b))                        \
                         : "ft0", "ft1", "ft2");                                         \
        _r;                                                                              \
    })
// Unary with a float or double result: fmv-in kind ("w" or "d"), insn, rm.
#define F1(kind, insn, rm, a)                                                                 \
    ({                                                                                        \
        uint64_t _r;                                                                          \
        __asm__ volatile("fmv." kind ".x ft0, %1\n " insn " ft2, ft0" rm "\n fmv.x.d %0, ft2" \
                         : "=r"(_r)                                                           \
                         : "r"((uint64_t)(a))                                                 \
                         : "ft0", "ft2");                                                     \
        _r;                                                                                   \
    })
// Float/double operand(s) to an integer result (conversions, compares, fclass).
#define TOI(kind, insn, rm, a)                                          \
    ({                                                                  \
        uint64_t _r;                                                    \
        __asm__ volatile("fmv." kind ".x ft0, %1\n " insn " %0, ft0" rm \
                         : "=r"(_r)                                     \
                         : "r"((uint64_t)(a))                           \
                         : "ft0");                                      \
        _r;                                                             \
    })
#define CMP(kind, insn, a, b)                                                                      \
    ({                                                                                             \
        uint64_t _r;                                                                               \
        __asm__ volatile("fmv." kind ".x ft0, %1\n fmv." kind ".x ft1, %2\n " insn " %0, ft0, ft1" \
                         : "=r"(_r)                                                                \
                         : "r"((uint64_t)(a)), "r"((uint64_t)(b))                                  \
                         : "ft0", "ft1");                                                          \
        _r;                                                                                        \
    })
// Integer to float/double.
#define FROMI(insn, rm, a)                                                                                 \
    ({                                                                                                     \
        uint64_t _r;                                                                                       \
        __asm__ volatile(insn " ft2, %1" rm "\n fmv.x.d %0, ft2" : "=r"(_r) : "r"((uint64_t)(a)) : "ft2"); \
        _r;                                                                                                \
    })
#define S3(insn, a, b, c)                                                              \
    ({                                                                                 \
        uint64_t _r;                                                                   \
        __asm__ volatile("fmv.w.x ft0, %1\n fmv.w.x ft1, %2\n fmv.w.x ft3, %3\n " insn \
                         " ft2, ft0, ft1, ft3\n fmv.x.d %0, ft2"                       \
                         : "=r"(_r)                                                    \
                         : "r"((uint64_t)(a)), "r"((uint64_t)(b)), "r"((uint64_t)(c))  \
                         : "ft0", "ft1", "ft2", "ft3");                                \
        _r;                                                                            \
    })
#define D3(insn, a, b, c)                                                              \
    ({                                                                                 \
        uint64_t _r;                                                                   \
        __asm__ volatile("fmv.d.x ft0, %1\n fmv.d.x ft1, %2\n fmv.d.x ft3, %3\n " insn \
                         " ft2, ft0, ft1, ft3\n fmv.x.d %0, ft2"                       \
                         : "=r"(_r)                                                    \
                         : "r"((uint64_t)(a)), "r"((uint64_t)(b)), "r"((uint64_t)(c))  \
                         : "ft0", "ft1", "ft2", "ft3");                                \
        _r;                                                                            \
    })

#define CLR() CSR_WRITE(fflags, 0)
#define FLAGS() CSR_READ(fflags)
#define NV 0x10
#define DZ 0x08
#define OF 0x04
#define UF 0x02
#define NX 0x01

#define BOX(s) (0xffffffff00000000ull | (uint32_t)(s))
#define SX32(v) ((uint64_t)(int64_t)(int32_t)(uint32_t)(v))

// Single-precision bit patterns.
#define ONE 0x3f800000u
#define MONE 0xbf800000u
#define TWO 0x40000000u
#define MTWO 0xc0000000u
#define THREE 0x40400000u
#define SEVEN 0x40e00000u
#define FIVE 0x40a00000u
#define P25 0x40200000u // 2.5
#define M25 0xc0200000u // -2.5
#define HALF 0x3f000000u
#define MHALF 0xbf000000u
#define PZERO 0x00000000u
#define MZERO 0x80000000u
#define PINF 0x7f800000u
#define MINF 0xff800000u
#define QNAN 0x7fc00000u // the canonical NaN
#define SNAN 0x7f800001u
#define FMAX 0x7f7fffffu
#define FMINN 0x00800000u // smallest normal
#define FSUB 0x00000001u  // smallest subnormal
#define E30 0x0da24260u   // 1e-30
// Double.
#define D_ONE 0x3ff0000000000000ull
#define D_MONE 0xbff0000000000000ull
#define D_THREE 0x4008000000000000ull
#define D_ZERO 0ull
#define D_MZERO 0x8000000000000000ull
#define D_INF 0x7ff0000000000000ull
#define D_MINF 0xfff0000000000000ull
#define D_QNAN 0x7ff8000000000000ull
#define D_SNAN 0x7ff0000000000001ull
#define D_TIE 0x3ca0000000000000ull // 2^-53: half an ulp of 1.0

static void rounding(void)
{
    // fcvt.w.s on +-2.5: each of the five modes gives a different pair.
    CHECK_EQ(TOI("w", "fcvt.w.s", ", rne", P25), 2);
    CHECK_EQ(TOI("w", "fcvt.w.s", ", rne", M25), SX32(-2));
    CHECK_EQ(TOI("w", "fcvt.w.s", ", rtz", P25), 2);
    CHECK_EQ(TOI("w", "fcvt.w.s", ", rtz", M25), SX32(-2));
    CHECK_EQ(TOI("w", "fcvt.w.s", ", rdn", P25), 2);
    CHECK_EQ(TOI("w", "fcvt.w.s", ", rdn", M25), SX32(-3));
    CHECK_EQ(TOI("w", "fcvt.w.s", ", rup", P25), 3);
    CHECK_EQ(TOI("w", "fcvt.w.s", ", rup", M25), SX32(-2));
    CHECK_EQ(TOI("w", "fcvt.w.s", ", rmm", P25), 3);
    CHECK_EQ(TOI("w", "fcvt.w.s", ", rmm", M25), SX32(-3));
    // Division 1/3 and -1/3 in single precision.
    CHECK_EQ(S2("fdiv.s", ", rne", ONE, THREE), BOX(0x3eaaaaab));
    CHECK_EQ(S2("fdiv.s", ", rtz", ONE, THREE), BOX(0x3eaaaaaa));
    CHECK_EQ(S2("fdiv.s", ", rdn", ONE, THREE), BOX(0x3eaaaaaa));
    CHECK_EQ(S2("fdiv.s", ", rup", ONE, THREE), BOX(0x3eaaaaab));
    CHECK_EQ(S2("fdiv.s", ", rmm", ONE, THREE), BOX(0x3eaaaaab));
    CHECK_EQ(S2("fdiv.s", ", rne", MONE, THREE), BOX(0xbeaaaaab));
    CHECK_EQ(S2("fdiv.s", ", rtz", MONE, THREE), BOX(0xbeaaaaaa));
    CHECK_EQ(S2("fdiv.s", ", rdn", MONE, THREE), BOX(0xbeaaaaab));
    CHECK_EQ(S2("fdiv.s", ", rup", MONE, THREE), BOX(0xbeaaaaaa));
    // Double ties: 1 + 2^-53 is exactly halfway; (1 + 2^-52) + 2^-53 too, from an odd significand.
    CHECK_EQ(D2("fadd.d", ", rne", D_ONE, D_TIE), D_ONE);
    CHECK_EQ(D2("fadd.d", ", rmm", D_ONE, D_TIE), D_ONE + 1);
    CHECK_EQ(D2("fadd.d", ", rup", D_ONE, D_TIE), D_ONE + 1);
    CHECK_EQ(D2("fadd.d", ", rdn", D_ONE, D_TIE), D_ONE);
    CHECK_EQ(D2("fadd.d", ", rtz", D_ONE, D_TIE), D_ONE);
    CHECK_EQ(D2("fadd.d", ", rne", D_ONE + 1, D_TIE), D_ONE + 2);
    CHECK_EQ(D2("fadd.d", ", rdn", D_ONE + 1, D_TIE), D_ONE + 1);
    CHECK_EQ(D2("fsub.d", ", rdn", D_MONE, D_TIE), D_MONE + 1); // -1 - 2^-53 rounds down (away from 0)
    CHECK_EQ(D2("fsub.d", ", rtz", D_MONE, D_TIE), D_MONE);
    // Integer to float: 2^24 + 1 is not representable in single.
    CHECK_EQ(FROMI("fcvt.s.l", ", rne", (1 << 24) + 1), BOX(0x4b800000));
    CHECK_EQ(FROMI("fcvt.s.l", ", rup", (1 << 24) + 1), BOX(0x4b800001));
    CHECK_EQ(FROMI("fcvt.s.w", ", rdn", -((1 << 24) + 1)), BOX(0xcb800001));
    CHECK_EQ(FROMI("fcvt.s.wu", ", rtz", 0xffffffffu), BOX(0x4f7fffff));
    CHECK_EQ(FROMI("fcvt.d.lu", ", rup", ~0ull), 0x43f0000000000000ull);
    CHECK_EQ(FROMI("fcvt.d.lu", ", rtz", ~0ull), 0x43efffffffffffffull);

    // Dynamic rounding: frm selects the mode for rm = dyn.
    static const uint64_t want_p[5] = {2, 2, 2, 3, 3}, want_m[5] = {-2ull, -2ull, -3ull, -2ull, -3ull};
    static const uint32_t want_div[5] = {0x3eaaaaab, 0x3eaaaaaa, 0x3eaaaaaa, 0x3eaaaaab, 0x3eaaaaab};
    for (int m = 0; m < 5; m++) {
        CSR_WRITE(frm, m);
        CHECK_EQ(CSR_READ(frm), m);
        CHECK_EQ(TOI("w", "fcvt.l.s", ", dyn", P25), want_p[m]);
        CHECK_EQ(TOI("w", "fcvt.l.s", ", dyn", M25), want_m[m]);
        CHECK_EQ(S2("fdiv.s", "", ONE, THREE), BOX(want_div[m])); // the assembler's default rm is dyn
    }
    // frm 5..7 are reserved: an instruction using dyn is then illegal (cause 2, mtval = the instruction).
    CSR_WRITE(frm, 5);
    rt_expect_trap();
    S2("fadd.s", ", dyn", ONE, ONE);
    rt_expect_done();
    CHECK_EQ(rt_mtrap.cause, 2);
    CHECK_EQ(rt_mtrap.tval, *(volatile uint32_t *)rt_mtrap.epc);
    CSR_WRITE(frm, 0);
    // A reserved static rm (5) in the instruction is illegal too: fadd.s ft2, ft0, ft1 with rm = 5.
    rt_expect_trap();
    __asm__ volatile(".insn r 0x53, 5, 0, ft2, ft0, ft1");
    rt_expect_done();
    CHECK_EQ(rt_mtrap.cause, 2);
    CHECK_EQ(rt_mtrap.tval, *(volatile uint32_t *)rt_mtrap.epc);
}

static void flags(void)
{
    CLR();
    S2("fdiv.s", ", rne", ONE, THREE);
    CHECK_EQ(FLAGS(), NX);
    CLR();
    S2("fdiv.s", ", rne", ONE, PZERO);
    CHECK_EQ(FLAGS(), DZ);
    CLR();
    CHECK_EQ(F1("w", "fsqrt.s", ", rne", MONE), BOX(QNAN));
    CHECK_EQ(FLAGS(), NV);
    CLR();
    CHECK_EQ(S2("fmul.s", ", rne", FMAX, TWO), BOX(PINF));
    CHECK_EQ(FLAGS(), OF | NX);
    CLR();
    CHECK_EQ(S2("fmul.s", ", rtz", FMAX, TWO), BOX(FMAX)); // overflow rounding toward zero: largest finite
    CHECK_EQ(FLAGS(), OF | NX);
    CLR();
    S2("fmul.s", ", rne", E30, E30);
    CHECK_EQ(FLAGS(), UF | NX);
    // An exact tiny result is not an underflow (tininess without inexactness raises nothing).
    CLR();
    CHECK_EQ(S2("fmul.s", ", rne", FMINN, HALF), BOX(0x00400000));
    CHECK_EQ(FLAGS(), 0);
    CLR();
    CHECK_EQ(S2("fadd.s", ", rne", ONE, TWO), BOX(THREE));
    CHECK_EQ(FLAGS(), 0);
    // Flags accrue until cleared; fsflags returns the old value.
    CLR();
    S2("fdiv.s", ", rne", ONE, PZERO);
    S2("fdiv.s", ", rne", ONE, THREE);
    uint64_t old;
    __asm__ volatile("fsflags %0, zero" : "=r"(old));
    CHECK_EQ(old, DZ | NX);
    CHECK_EQ(FLAGS(), 0);
    // Double: DZ, NV (inf - inf), NX.
    CLR();
    CHECK_EQ(D2("fdiv.d", ", rne", D_MONE, D_ZERO), D_MINF);
    CHECK_EQ(FLAGS(), DZ);
    CLR();
    CHECK_EQ(D2("fsub.d", ", rne", D_INF, D_INF), D_QNAN);
    CHECK_EQ(FLAGS(), NV);
    // Inexact conversions.
    CLR();
    CHECK_EQ(TOI("w", "fcvt.w.s", ", rtz", HALF), 0);
    CHECK_EQ(FLAGS(), NX);
    // fcsr is frm << 5 | fflags.
    CSR_WRITE(fcsr, 0xff);
    CHECK_EQ(CSR_READ(fflags), 0x1f);
    CHECK_EQ(CSR_READ(frm), 7);
    CSR_WRITE(frm, 1);
    CHECK_EQ(CSR_READ(fcsr), 0x3f);
    CSR_WRITE(fcsr, 0);
}

static void nan_boxing(void)
{
    const uint64_t bad_one = 0x000000003f800000ull; // 1.0f without the upper ones: not a valid single
    uint64_t r;
    // An operation sees an improperly boxed input as the canonical NaN (quiet: no NV).
    CLR();
    __asm__ volatile("fmv.d.x ft0, %1\n fmv.w.x ft1, %2\n fadd.s ft2, ft0, ft1\n fmv.x.d %0, ft2"
                     : "=r"(r)
                     : "r"(bad_one), "r"((uint64_t)ONE)
                     : "ft0", "ft1", "ft2");
    CHECK_EQ(r, BOX(QNAN));
    CHECK_EQ(FLAGS(), 0);
    // Sign injection checks boxing too: magnitude from a bad rs1 is the canonical NaN...
    __asm__ volatile("fmv.d.x ft0, %1\n fmv.w.x ft1, %2\n fsgnj.s ft2, ft0, ft1\n fmv.x.d %0, ft2"
                     : "=r"(r)
                     : "r"(bad_one), "r"((uint64_t)MONE)
                     : "ft0", "ft1", "ft2");
    CHECK_EQ(r, BOX(0xffc00000));
    // ...and the sign from a bad rs2 is the canonical NaN's (positive).
    __asm__ volatile("fmv.w.x ft0, %1\n fmv.d.x ft1, %2\n fsgnj.s ft2, ft0, ft1\n fmv.x.d %0, ft2"
                     : "=r"(r)
                     : "r"((uint64_t)MONE), "r"(0x00000000bf800000ull)
                     : "ft0", "ft1", "ft2");
    CHECK_EQ(r, BOX(ONE));
    CHECK_EQ(TOI("d", "fclass.s", "", bad_one), 1u << 9);                 // quiet NaN
    CHECK_EQ(F1("d", "fcvt.d.s", "", bad_one), D_QNAN);                   // widened canonical NaN
    CHECK_EQ(TOI("d", "fmv.x.w", "", 0x12345678bf800000ull), SX32(MONE)); // moves do not check
    // fsw stores the low 32 bits unchanged; flw boxes what it loads.
    static volatile uint32_t word;
    __asm__ volatile("fmv.d.x ft0, %1\n fsw ft0, 0(%0)" ::"r"(&word), "r"(bad_one) : "ft0", "memory");
    CHECK_EQ(word, ONE);
    __asm__ volatile("flw ft0, 0(%1)\n fmv.x.d %0, ft0" : "=r"(r) : "r"(&word) : "ft0");
    CHECK_EQ(r, BOX(ONE));
    // Every single-precision result is boxed.
    CHECK_EQ(S2("fmul.s", "", TWO, THREE) >> 32, 0xffffffffu);
    CHECK_EQ(F1("d", "fcvt.s.d", ", rne", D_ONE), BOX(ONE));
    CHECK_EQ(FROMI("fmv.w.x", "", 0x123456789abcdef0ull), BOX(0x9abcdef0));
}

static void nans_min_max(void)
{
    // Operations producing a NaN produce the canonical one; NaN payloads do not propagate.
    CLR();
    CHECK_EQ(S2("fmul.s", "", PZERO, PINF), BOX(QNAN));
    CHECK_EQ(FLAGS(), NV);
    CLR();
    CHECK_EQ(S2("fadd.s", "", SNAN, ONE), BOX(QNAN));
    CHECK_EQ(FLAGS(), NV);
    CLR();
    CHECK_EQ(S2("fadd.s", "", 0xffc12345u, ONE), BOX(QNAN)); // quiet NaN input with payload and sign
    CHECK_EQ(FLAGS(), 0);
    CLR();
    CHECK_EQ(D2("fmul.d", "", 0x7ff8dead0000beefull, D_ONE), D_QNAN);
    CHECK_EQ(D2("fdiv.d", "", D_ZERO, D_ZERO), D_QNAN);
    CHECK_EQ(FLAGS(), NV);
    CHECK_EQ(F1("w", "fcvt.d.s", "", 0xffc12345u), D_QNAN);
    CHECK_EQ(F1("d", "fcvt.s.d", "", 0xfff8000012345678ull), BOX(QNAN));
    // fmin/fmax: -0 < +0, a quiet NaN operand is ignored, a signalling one too but raises NV.
    CLR();
    CHECK_EQ(S2("fmin.s", "", MZERO, PZERO), BOX(MZERO));
    CHECK_EQ(S2("fmin.s", "", PZERO, MZERO), BOX(MZERO));
    CHECK_EQ(S2("fmax.s", "", MZERO, PZERO), BOX(PZERO));
    CHECK_EQ(S2("fmax.s", "", PZERO, MZERO), BOX(PZERO));
    CHECK_EQ(S2("fmin.s", "", QNAN, MTWO), BOX(MTWO));
    CHECK_EQ(S2("fmax.s", "", MTWO, QNAN), BOX(MTWO));
    CHECK_EQ(S2("fmax.s", "", MINF, MTWO), BOX(MTWO));
    CHECK_EQ(FLAGS(), 0);
    CHECK_EQ(S2("fmin.s", "", SNAN, ONE), BOX(ONE));
    CHECK_EQ(FLAGS(), NV);
    CLR();
    CHECK_EQ(S2("fmax.s", "", QNAN, 0x7fc0abcdu), BOX(QNAN)); // both NaN: canonical NaN
    CHECK_EQ(D2("fmin.d", "", D_MZERO, D_ZERO), D_MZERO);
    CHECK_EQ(D2("fmax.d", "", D_MZERO, D_ZERO), D_ZERO);
    CHECK_EQ(D2("fmax.d", "", D_QNAN, D_MONE), D_MONE);
    CHECK_EQ(D2("fmin.d", "", 0x7ff800000000abcdull, D_QNAN), D_QNAN);
    CHECK_EQ(FLAGS(), 0);
    CHECK_EQ(D2("fmax.d", "", D_SNAN, D_ONE), D_ONE);
    CHECK_EQ(FLAGS(), NV);
}

static void conversions(void)
{
    // Out-of-range and NaN inputs saturate and raise NV only.
    CLR();
    CHECK_EQ(TOI("w", "fcvt.w.s", ", rtz", 0x4f32d05eu), 0x7fffffff); // 3e9
    CHECK_EQ(FLAGS(), NV);
    CLR();
    CHECK_EQ(TOI("w", "fcvt.w.s", ", rtz", 0xcf32d05eu), SX32(0x80000000)); // -3e9
    CHECK_EQ(FLAGS(), NV);
    CHECK_EQ(TOI("w", "fcvt.w.s", ", rtz", QNAN), 0x7fffffff);
    CHECK_EQ(TOI("w", "fcvt.w.s", ", rtz", 0xffc00000u), 0x7fffffff); // negative NaN: still the max
    CHECK_EQ(TOI("w", "fcvt.w.s", ", rtz", PINF), 0x7fffffff);
    CHECK_EQ(TOI("w", "fcvt.w.s", ", rtz", MINF), SX32(0x80000000));
    CHECK_EQ(TOI("w", "fcvt.wu.s", ", rtz", MONE), 0);
    CHECK_EQ(TOI("w", "fcvt.wu.s", ", rtz", QNAN), ~0ull); // 0xffffffff, sign-extended
    CHECK_EQ(TOI("w", "fcvt.wu.s", ", rtz", PINF), ~0ull);
    CHECK_EQ(TOI("w", "fcvt.l.s", ", rtz", QNAN), 0x7fffffffffffffffull);
    CHECK_EQ(TOI("w", "fcvt.l.s", ", rtz", MINF), 0x8000000000000000ull);
    CHECK_EQ(TOI("w", "fcvt.lu.s", ", rtz", MINF), 0);
    CHECK_EQ(TOI("d", "fcvt.l.d", ", rtz", 0x43e158e460913d00ull), 0x7fffffffffffffffull); // 1e19
    CHECK_EQ(TOI("d", "fcvt.lu.d", ", rtz", D_MONE), 0);
    CHECK_EQ(TOI("d", "fcvt.w.d", ", rtz", D_INF), 0x7fffffff);
    CHECK_EQ(TOI("d", "fcvt.wu.d", ", rtz", D_QNAN), ~0ull);
    CHECK_EQ(FLAGS(), NV);
    // In range: exact results raise nothing; fcvt.wu.s sign-extends its 32-bit result.
    CLR();
    CHECK_EQ(TOI("w", "fcvt.wu.s", ", rtz", 0x4f32d05eu), 0xffffffffb2d05e00ull); // 3e9
    CHECK_EQ(TOI("d", "fcvt.lu.d", ", rtz", 0x43e158e460913d00ull), 0x8ac7230489e80000ull);
    CHECK_EQ(TOI("d", "fcvt.w.d", ", rtz", 0xc1e0000000000000ull), SX32(0x80000000)); // -2^31
    CHECK_EQ(FLAGS(), 0);
    // -0.5 to unsigned: rounding toward zero gives 0 (valid, inexact); rounding down gives -1 (invalid).
    CHECK_EQ(TOI("w", "fcvt.wu.s", ", rtz", MHALF), 0);
    CHECK_EQ(FLAGS(), NX);
    CLR();
    CHECK_EQ(TOI("w", "fcvt.wu.s", ", rdn", MHALF), 0);
    CHECK_EQ(FLAGS(), NV);
}

static void classify(void)
{
    static const struct {
        uint32_t s;
        uint64_t d;
    } v[10] = {
        {MINF, D_MINF},   {MONE, D_MONE},  {0x807fffffu, 0x800fffffffffffffull},
        {MZERO, D_MZERO}, {PZERO, D_ZERO}, {FSUB, 1},
        {ONE, D_ONE},     {PINF, D_INF},   {SNAN, D_SNAN},
        {QNAN, D_QNAN},
    };
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(TOI("w", "fclass.s", "", v[i].s), 1u << i);
        CHECK_EQ(TOI("d", "fclass.d", "", v[i].d), 1u << i);
    }
}

static void fused(void)
{
    // 2 * 3 + 1 with each sign combination.
    CHECK_EQ(S3("fmadd.s", TWO, THREE, ONE), BOX(SEVEN));
    CHECK_EQ(S3("fmsub.s", TWO, THREE, ONE), BOX(FIVE));
    CHECK_EQ(S3("fnmsub.s", TWO, THREE, ONE), BOX(0xc0a00000)); // -(2*3) + 1
    CHECK_EQ(S3("fnmadd.s", TWO, THREE, ONE), BOX(0xc0e00000)); // -(2*3) - 1
    CHECK_EQ(D3("fmadd.d", D_THREE, D_THREE, D_ONE), 0x4024000000000000ull);
    CHECK_EQ(D3("fmsub.d", D_THREE, D_THREE, D_ONE), 0x4020000000000000ull);
    CHECK_EQ(D3("fnmsub.d", D_THREE, D_THREE, D_ONE), 0xc020000000000000ull);
    CHECK_EQ(D3("fnmadd.d", D_THREE, D_THREE, D_ONE), 0xc024000000000000ull);
    // One rounding: (1 + 2^-23)^2 - (1 + 2^-22) = 2^-46 exactly; a separate multiply would round it to 0.
    CLR();
    CHECK_EQ(S3("fmadd.s", 0x3f800001u, 0x3f800001u, 0xbf800002u), BOX(0x28800000));
    CHECK_EQ(FLAGS(), 0);
    CHECK_EQ(S2("fmul.s", "", 0x3f800001u, 0x3f800001u), BOX(0x3f800002)); // the unfused product rounds
    CHECK_EQ(FLAGS(), NX);
    // inf * 0 + qNaN is invalid (the spec requires NV even though the addend is a quiet NaN).
    CLR();
    CHECK_EQ(S3("fmadd.s", PINF, PZERO, QNAN), BOX(QNAN));
    CHECK_EQ(FLAGS(), NV);
    CLR();
    CHECK_EQ(D3("fmadd.d", D_ZERO, D_INF, D_ONE), D_QNAN);
    CHECK_EQ(FLAGS(), NV);
    // An exact zero sum x*y + (-x*y) is +0 in round-to-nearest.
    CHECK_EQ(S3("fmadd.s", TWO, THREE, 0xc0c00000u), BOX(PZERO));
}

static void sign_injection_compare(void)
{
    CLR();
    CHECK_EQ(S2("fsgnj.s", "", ONE, MTWO), BOX(MONE));
    CHECK_EQ(S2("fsgnjn.s", "", ONE, MTWO), BOX(ONE));
    CHECK_EQ(S2("fsgnjx.s", "", MONE, MTWO), BOX(ONE));
    CHECK_EQ(S2("fsgnjx.s", "", ONE, MTWO), BOX(MONE));
    CHECK_EQ(S2("fsgnjn.s", "", SNAN, ONE), BOX(0xff800001)); // payload kept, no NV: not arithmetic
    CHECK_EQ(D2("fsgnj.d", "", D_ONE, D_MZERO), D_MONE);
    CHECK_EQ(D2("fsgnjn.d", "", D_MONE, D_MONE), D_ONE);
    CHECK_EQ(D2("fsgnjx.d", "", D_SNAN, D_MONE), 0xfff0000000000001ull);
    CHECK_EQ(FLAGS(), 0);
    // feq is quiet (NV only for signalling NaNs); flt/fle signal on any NaN.
    CHECK_EQ(CMP("w", "feq.s", MZERO, PZERO), 1);
    CHECK_EQ(CMP("w", "feq.s", QNAN, QNAN), 0);
    CHECK_EQ(FLAGS(), 0);
    CHECK_EQ(CMP("w", "feq.s", SNAN, ONE), 0);
    CHECK_EQ(FLAGS(), NV);
    CLR();
    CHECK_EQ(CMP("w", "flt.s", QNAN, ONE), 0);
    CHECK_EQ(FLAGS(), NV);
    CLR();
    CHECK_EQ(CMP("w", "flt.s", MONE, ONE), 1);
    CHECK_EQ(CMP("w", "fle.s", MZERO, PZERO), 1);
    CHECK_EQ(CMP("d", "flt.d", D_MINF, D_MONE), 1);
    CHECK_EQ(CMP("d", "fle.d", D_ONE, D_MONE), 0);
    CHECK_EQ(FLAGS(), 0);
    CHECK_EQ(CMP("d", "fle.d", D_QNAN, D_ONE), 0);
    CHECK_EQ(FLAGS(), NV);
}

static void fs_state(void)
{
    // An FP instruction that writes state makes mstatus.FS Dirty (and SD, bit 63, set).
    CSR_CLEAR(mstatus, MSTATUS_FS);
    CSR_SET(mstatus, 1ul << 13); // Initial
    CHECK_EQ(CSR_READ(mstatus) & MSTATUS_FS, 1ul << 13);
    S2("fadd.s", "", ONE, ONE);
    CHECK_EQ(CSR_READ(mstatus) & MSTATUS_FS, MSTATUS_FS);
    CHECK(CSR_READ(mstatus) >> 63);
    // With FS = Off every FP instruction (and fcsr access) is illegal.
    CSR_CLEAR(mstatus, MSTATUS_FS);
    rt_expect_trap();
    S2("fadd.s", "", ONE, ONE);
    rt_expect_done();
    CHECK_EQ(rt_mtrap.cause, 2);
    CSR_SET(mstatus, 1ul << 13);
}

int main(void)
{
    rounding();
    flags();
    nan_boxing();
    nans_min_max();
    conversions();
    classify();
    fused();
    sign_injection_compare();
    fs_state();
    return 0;
}
