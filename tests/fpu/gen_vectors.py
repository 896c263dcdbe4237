#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Regenerates qemu_vectors.txt: runs every F/D operation on chosen inputs in a bare-metal guest under QEMU.
#
# The reference is QEMU's softfloat (qemu-system-riscv64 -M virt), not our code.
# This script picks the inputs (fixed seed), writes a guest C program whose
# table holds them, builds it with riscv64-unknown-elf-gcc, runs it, and
# merges what the guest prints with the inputs. The guest sets frm to each
# mode 0-4 in turn and runs the instruction with rm=dyn, then reads the raw
# 64-bit destination (fmv.x.d, so single results show their NaN boxing) or x
# register, and fflags (cleared before each instruction).
#
# Output, one line per case, hex without 0x:
#   OP A B C R0 F0 [R1 F1 R2 F2 R3 F3 R4 F4]
# A, B, C are raw register values (f registers hold singles boxed, or on
# purpose unboxed); rounding operations give one result and flags per rm
# 0..4 (RNE RTZ RDN RUP RMM), the others one.
#
# Usage: gen_vectors.py [output]   (default: qemu_vectors.txt next to this file)
import os
import random
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BOX = 0xFFFFFFFF00000000

# name, kind, asm template. Kinds: r1/r2/r3 rounding on f registers, n2
# f registers without rounding, c1/c2 f registers to x, fi float to int,
# if int to float, ff float to float (r* / fi / if / ff run in every mode).
OPS = []
for p in "sd":
    OPS += [(f"f{o}.{p}", "r2", f"f{o}.{p} f0, f1, f2, dyn") for o in ("add", "sub", "mul", "div")]
    OPS += [(f"fsqrt.{p}", "r1", f"fsqrt.{p} f0, f1, dyn")]
    OPS += [(f"f{o}.{p}", "r3", f"f{o}.{p} f0, f1, f2, f3, dyn") for o in ("madd", "msub", "nmsub", "nmadd")]
    OPS += [(f"f{o}.{p}", "n2", f"f{o}.{p} f0, f1, f2") for o in ("min", "max", "sgnj", "sgnjn", "sgnjx")]
    OPS += [(f"f{o}.{p}", "c2", f"f{o}.{p} %0, f1, f2") for o in ("eq", "lt", "le")]
    OPS += [(f"fclass.{p}", "c1", f"fclass.{p} %0, f1")]
    OPS += [(f"fcvt.{i}.{p}", "fi", f"fcvt.{i}.{p} %0, f1, dyn") for i in ("w", "wu", "l", "lu")]
    # fcvt.d.w/wu never round; the assembler takes no rm for them.
    OPS += [(f"fcvt.{p}.{i}", "if", f"fcvt.{p}.{i} f0, %1" + ("" if p == "d" and i in ("w", "wu") else ", dyn"))
            for i in ("w", "wu", "l", "lu")]
OPS += [("fcvt.s.d", "ff", "fcvt.s.d f0, f1, dyn"), ("fcvt.d.s", "ff", "fcvt.d.s f0, f1")]
ROUNDING = {"r1", "r2", "r3", "fi", "if", "ff"}

rng = random.Random(20240603)


class Fmt:
    def __init__(self, e, m):
        self.e, self.m, self.n = e, m, 1 + e + m
        self.bias = (1 << (e - 1)) - 1

    def make(self, sign, be, frac):
        return (sign << (self.n - 1)) | (be << self.m) | frac

    def reg(self, v):
        return v | BOX if self.n == 32 else v

    def specials(self):
        mk, m, top = self.make, self.m, (1 << self.e) - 1
        return [mk(0, 0, 0), mk(1, 0, 0), mk(0, self.bias, 0), mk(1, self.bias, 1 << (m - 1)),
                mk(0, self.bias, 1), mk(0, self.bias + 1, 1 << (m - 1)), mk(0, 0, 1), mk(1, 0, (1 << m) - 1),
                mk(0, 1, 0), mk(0, top - 1, (1 << m) - 1), mk(0, top, 0), mk(1, top, 0),
                mk(0, top, 1 << (m - 1)), mk(0, top, 1)]

    def random(self):
        """A value likely to make rounding interesting: few significant bits, exponents near the edges."""
        sign = rng.getrandbits(1)
        kind = rng.random()
        top = (1 << self.e) - 1
        if kind < 0.45:
            be = self.bias + rng.randint(-4, 4)
        elif kind < 0.65:
            be = rng.randint(0, 3 + self.m // 2)  # subnormal / tiny
        elif kind < 0.85:
            be = rng.randint(top - 3 - self.m // 2, top - 1)  # huge
        else:
            be = rng.randint(1, top - 1)
        frac = rng.getrandbits(self.m)
        if rng.random() < 0.6:  # few significant bits: exact results and ties
            frac &= ~((1 << rng.randint(0, self.m)) - 1) & ((1 << self.m) - 1)
        return self.make(sign, be, frac)

    def near(self, x):
        """A value whose exponent is close to x's, so sums and quotients land on ties."""
        be = (x >> self.m) & ((1 << self.e) - 1)
        be = min(max(be - rng.randint(-2, self.m + 3), 0), (1 << self.e) - 2)
        frac = rng.getrandbits(self.m) & ~((1 << rng.randint(0, self.m)) - 1)
        return self.make(rng.getrandbits(1), be, frac & ((1 << self.m) - 1))


S, D = Fmt(8, 23), Fmt(11, 52)


def f2s(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def f2d(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def cases():
    out = []  # (op, a, b, c)
    for p, F in (("s", S), ("d", D)):
        sp = [F.reg(v) for v in F.specials()]
        if p == "s":
            sp.append(0x3F800000)  # not NaN-boxed: reads as the canonical NaN
        small = [sp[i] for i in (0, 1, 3, 6, 9, 10, 12, 13)]
        if p == "s":
            small.append(0x3F800000)
        rand = lambda: F.reg(F.random())

        def pair():
            a = F.random()
            return F.reg(a), F.reg(F.near(a) if rng.random() < 0.7 else F.random())

        for o in ("add", "sub", "mul", "div", "min", "max", "sgnj", "sgnjn", "sgnjx", "eq", "lt", "le"):
            op = f"f{o}.{p}"
            arith = o in ("add", "sub", "mul", "div")
            pool = sp if arith else small + [sp[4]]
            out += [(op, a, b, 0) for a in pool for b in pool]
            n = 120 if arith else 20
            out += [(op, *pair(), 0) for _ in range(n)]
        out += [(f"fsqrt.{p}", a, 0, 0) for a in sp] + [(f"fsqrt.{p}", rand(), 0, 0) for _ in range(120)]
        out += [(f"fclass.{p}", a, 0, 0) for a in sp]
        for o in ("madd", "msub", "nmsub", "nmadd"):
            op = f"f{o}.{p}"
            out += [(op, a, b, c) for a in small for b in small for c in small] if o == "madd" else []
            for _ in range(120):
                a, b = F.random(), F.random()
                # c near the product: cancellation and ties
                prod_be = ((a >> F.m) & ((1 << F.e) - 1)) + ((b >> F.m) & ((1 << F.e) - 1)) - F.bias
                c = F.near(F.make(0, min(max(prod_be, 0), (1 << F.e) - 2), 0)) if rng.random() < 0.7 else F.random()
                out.append((op, F.reg(a), F.reg(b), F.reg(c)))
        # float -> int: around every integer boundary of the four types, plus halves.
        pack = f2s if p == "s" else f2d
        bases = [0, 1, 2, 3, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**70]
        vals = set()
        for base in bases:
            for sgn in (1, -1):
                for off in (0, 0.25, 0.5, 0.75, 1, -0.25, -0.5, -0.75, -1):
                    v = pack(sgn * (base + off))
                    vals.add(v)
                    vals.add(v + 1 if v & ((1 << (F.n - 1)) - 1) < (F.make(0, (1 << F.e) - 1, 0)) else v)
                    vals.add(v - 1 if v & ((1 << (F.n - 1)) - 1) else v)
        vals |= set(F.specials()) | {F.random() for _ in range(60)}
        for i in ("w", "wu", "l", "lu"):
            out += [(f"fcvt.{i}.{p}", F.reg(v), 0, 0) for v in sorted(vals)]
        # int -> float: ties and overflow of the 24/53-bit significands, garbage above 32-bit inputs.
        ints = {0, 1, 2**64 - 1, 2**63, 2**63 - 1, 2**31, 2**31 - 1, 2**32 - 1, 0xDEADBEEF00000005,
                0x12345678FFFFFFFF, 0xFFFFFFFF80000000}
        for k in (24, 25, 31, 53, 54, 62, 63):
            for d in (-3, -2, -1, 1, 2, 3, 5):
                ints.add((2**k + d) % 2**64)
                ints.add((-(2**k) + d) % 2**64)
        ints |= {rng.getrandbits(64) >> rng.randint(0, 63) for _ in range(40)}
        for i in ("w", "wu", "l", "lu"):
            out += [(f"fcvt.{p}.{i}", v, 0, 0) for v in sorted(ints)]
    # double -> single: around single overflow, underflow and ties; single -> double: specials.
    dvals = set(D.specials()) | {D.random() for _ in range(40)}
    for x in (1.0, 2.0**-126, 2.0**-149, 2.0**-127, 2.0**127 * 1.9999999, 3.4028235677973366e38, 1.1754942e-38):
        b = f2d(x)
        for d in (0, 1, -1, 1 << 28, (1 << 28) - 1, (1 << 28) + 1, 3 << 28, 1 << 29):
            dvals.add((b + d) & 0xFFFFFFFFFFFFFFFF)
            dvals.add((b + d) ^ (1 << 63))
    out += [("fcvt.s.d", v, 0, 0) for v in sorted(dvals)]
    out += [("fcvt.d.s", S.reg(v), 0, 0) for v in S.specials()] + [("fcvt.d.s", 0x3F800000, 0, 0)]
    out += [("fcvt.d.s", S.reg(S.random()), 0, 0) for _ in range(30)]
    return out


GUEST = r"""
#include <stdint.h>
#include "cases.h"
/* First in .text (built with -fno-toplevel-reorder): QEMU starts at 0x80000000. */
asm(".text\n .globl _start\n_start:\n"
    " li t0, 0x2000\n csrs mstatus, t0\n" /* FS = initial */
    " la sp, stack_top\n call guest_main\n1: j 1b\n"
    ".bss\n .balign 16\n .space 65536\nstack_top:\n .text\n");
#define UART ((volatile uint8_t *)0x10000000)
static void put(char c) { *UART = c; }
static void hex(uint64_t v)
{
    char buf[17];
    int n = 0;
    do { buf[n++] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
    while (n) put(buf[--n]);
}
static uint64_t run(uint32_t op, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t r = 0;
    asm volatile("fmv.d.x f1, %0\n fmv.d.x f2, %1\n fmv.d.x f3, %2" :: "r"(a), "r"(b), "r"(c) : "f1", "f2", "f3");
    asm volatile("csrw fflags, zero");
    switch (op) {
@CASES@
    }
    return r;
}
void guest_main(void)
{
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        const struct Case *k = &cases[i];
        unsigned modes = k->rounding ? 5 : 1;
        for (unsigned rm = 0; rm < modes; ++rm) {
            asm volatile("csrw frm, %0" :: "r"(rm));
            uint64_t r = run(k->op, k->a, k->b, k->c), fl;
            asm volatile("csrr %0, fflags" : "=r"(fl));
            if (rm) put(' ');
            hex(r); put(' '); hex(fl);
        }
        put('\n');
    }
    *(volatile uint32_t *)0x100000 = 0x5555; /* sifive_test: exit */
    for (;;) {}
}
"""


def guest_source():
    lines = []
    for i, (name, kind, tmpl) in enumerate(OPS):
        if kind in ("c1", "c2", "fi"):
            body = f'asm volatile("{tmpl}" : "=r"(r) :: "f0");'
        elif kind == "if":
            body = f'asm volatile("{tmpl}\\n fmv.x.d %0, f0" : "=r"(r) : "r"(a) : "f0");'
        else:
            body = f'asm volatile("{tmpl}\\n fmv.x.d %0, f0" : "=r"(r) :: "f0");'
        lines.append(f"    case {i}: {body} break;")
    return GUEST.replace("@CASES@", "\n".join(lines))


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "qemu_vectors.txt")
    index = {name: (i, kind) for i, (name, kind, _) in enumerate(OPS)}
    cs = cases()
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "cases.h"), "w") as f:
            f.write("struct Case { uint32_t op, rounding; uint64_t a, b, c; };\n")
            f.write("static const struct Case cases[] = {\n")
            for name, a, b, c in cs:
                i, kind = index[name]
                f.write(f"    {{{i}, {int(kind in ROUNDING)}, {a:#x}ull, {b:#x}ull, {c:#x}ull}},\n")
            f.write("};\n")
        with open(os.path.join(tmp, "guest.c"), "w") as f:
            f.write(guest_source())
        elf = os.path.join(tmp, "guest.elf")
        subprocess.run(["riscv64-unknown-elf-gcc", "-march=rv64gc", "-mabi=lp64d", "-mcmodel=medany", "-O2",
                        "-ffreestanding", "-fno-toplevel-reorder", "-nostdlib", "-static", "-Wl,-Ttext=0x80000000", "-o", elf,
                        os.path.join(tmp, "guest.c")], check=True)
        run = subprocess.run(["qemu-system-riscv64", "-M", "virt", "-bios", "none", "-kernel", elf,
                              "-display", "none", "-serial", "stdio", "-monitor", "none"],
                             check=True, capture_output=True, text=True, timeout=1200)
    results = run.stdout.replace("\r", "").splitlines()
    if len(results) != len(cs):
        sys.exit(f"guest printed {len(results)} lines for {len(cs)} cases")
    with open(out_path, "w") as f:
        f.write("# Generated by gen_vectors.py under qemu-system-riscv64 "
                + subprocess.run(["qemu-system-riscv64", "--version"], capture_output=True, text=True)
                .stdout.splitlines()[0].split("version ")[-1] + "; see that script for the format.\n")
        for (name, a, b, c), res in zip(cs, results):
            f.write(f"{name} {a:x} {b:x} {c:x} {res}\n")
    print(f"{len(cs)} cases -> {out_path}")


if __name__ == "__main__":
    main()
