#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes the assembly files the disassembler is checked against objdump with: every table row with varied operands, plus random words.
"""Usage: gen_rv_asm.py TABLE.inc OUT_DIR

listing.S  every row of rv_insns.inc (but Zicond, which binutils 2.40 does
           not know) with edge and random operands, every rounding mode,
           aq/rl, all 4096 CSR numbers, and a few raw encodings objdump
           prints oddly (fence with empty sets, HINTs).
random.S   random 32-bit words (half of them a row's match with random
           operand bits and an occasional flipped fixed bit, so they land
           near real encodings) and random 16-bit parcels, as .insn.
The seed is fixed so the build is reproducible.
"""
import os
import random
import re
import sys

GPR = ["zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5",
       "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6"]
FPR = ["ft0", "ft1", "ft2", "ft3", "ft4", "ft5", "ft6", "ft7", "fs0", "fs1", "fa0", "fa1", "fa2", "fa3",
       "fa4", "fa5", "fa6", "fa7", "fs2", "fs3", "fs4", "fs5", "fs6", "fs7", "fs8", "fs9", "fs10", "fs11",
       "ft8", "ft9", "ft10", "ft11"]
RMS = [None, "rne", "rtz", "rdn", "rup", "rmm", "dyn"]


def parse_table(path):
    text = open(path).read()
    rows = []
    for m in re.finditer(r'^RV_INSN\((\w+),\s*"([^"]+)",\s*(0x[0-9a-f]+),\s*(0x[0-9a-f]+),\s*(\w+),\s*(\w+)',
                         text, re.M):
        rows.append(dict(id=m[1], name=m[2], mask=int(m[3], 16), match=int(m[4], 16), fmt=m[5], ext=m[6],
                         c=False))
    for m in re.finditer(r'^RV_CINSN\((\w+),\s*"([^"]+)",\s*(0x[0-9a-f]+),\s*(0x[0-9a-f]+),\s*(\w+),\s*(\w+)',
                         text, re.M):
        rows.append(dict(id=m[1], name=m[2], mask=int(m[3], 16), match=int(m[4], 16), fmt=m[5], xop=m[6],
                         c=True))
    return rows


def rx(rng, nonzero=False):
    return GPR[rng.randrange(1 if nonzero else 0, 32)]


def target(off):
    return ".%+d" % off


def lines_32(row, rng):
    n, f = row["name"], row["fmt"]
    out = []
    regsets = [("zero", "ra", "sp"), ("a0", "s11", "t6"), ("t0", "gp", "tp")] + \
              [(rx(rng), rx(rng), rx(rng)) for _ in range(2)]
    fregs = [("ft0", "fs11", "fa7"), ("ft11", "fa0", "fs1")] + \
            [(FPR[rng.randrange(32)], FPR[rng.randrange(32)], FPR[rng.randrange(32)]) for _ in range(2)]
    if f == "NONE":
        out.append(n)
    elif f == "R":
        out += ["%s %s,%s,%s" % (n, a, b, c) for a, b, c in regsets]
    elif f in ("R_SH", "R_SHW"):
        top = 63 if f == "R_SH" else 31
        for sh in (0, 1, top, rng.randrange(top + 1)):
            a, b, _ = regsets[rng.randrange(len(regsets))]
            out.append("%s %s,%s,%d" % (n, a, b, sh))
    elif f == "R_UN":
        out += ["%s %s,%s" % (n, a, b) for a, b, _ in regsets]
    elif f == "I":
        for imm in (-2048, 2047, 0, -1, 1, rng.randrange(-2048, 2048)):
            out.append("%s %s,%s,%d" % (n, rx(rng), rx(rng), imm))
    elif f in ("LOAD", "JALR"):
        for imm in (-2048, 2047, 0, -1, rng.randrange(-2048, 2048)):
            out.append("%s %s,%d(%s)" % (n, rx(rng), imm, rx(rng)))
    elif f == "STORE":
        for imm in (-2048, 2047, 0, -1, rng.randrange(-2048, 2048)):
            out.append("%s %s,%d(%s)" % (n, rx(rng), imm, rx(rng)))
    elif f == "B":
        for off in (-4096, 4094, 0, 2, rng.randrange(-2048, 2047) * 2):
            out.append("%s %s,%s,%s" % (n, rx(rng), rx(rng), target(off)))
    elif f == "U":
        for imm in (0, 0xfffff, 0x80000, 1, rng.randrange(1 << 20)):
            out.append("%s %s,0x%x" % (n, rx(rng), imm))
    elif f == "J":
        for off in (-(1 << 20), (1 << 20) - 2, 0, rng.randrange(-(1 << 19), 1 << 19) * 2):
            out.append("%s %s,%s" % (n, rx(rng), target(off)))
    elif f == "FENCE":
        sets = ["iorw", "r", "w", "rw", "i", "o", "io", "ow", "ir"]
        out += ["fence iorw,iorw", "fence rw,rw", "fence.tso"]
        out += ["fence %s,%s" % (rng.choice(sets), rng.choice(sets)) for _ in range(6)]
    elif f == "SFENCE":
        out += ["%s %s,%s" % (n, a, b) for a, b, _ in regsets]
    elif f == "CSR":
        if n == "csrrs":
            # Every CSR number: names for the known ones must match objdump's.
            out += ["csrrs %s,%d,%s" % (rx(rng), c, rx(rng)) for c in range(4096)]
        else:
            for c in ("mstatus", "satp", "fcsr", "cycle", "0x7c0", "pmpaddr63", "mhartid"):
                out.append("%s %s,%s,%s" % (n, rx(rng), c, rx(rng)))
    elif f == "CSRI":
        for c, imm in (("mstatus", 0), ("sie", 31), ("0x800", 7), ("stimecmp", rng.randrange(32))):
            out.append("%s %s,%s,%d" % (n, rx(rng), c, imm))
    elif f in ("AMO", "LR"):
        for sfx in ("", ".aq", ".rl", ".aqrl"):
            a, b, c = regsets[rng.randrange(len(regsets))]
            out.append("%s%s %s,%s,(%s)" % (n, sfx, a, b, c) if f == "AMO" else
                       "%s%s %s,(%s)" % (n, sfx, a, c))
    elif f in ("FLOAD", "FSTORE"):
        for imm in (-2048, 2047, 0, rng.randrange(-2048, 2048)):
            out.append("%s %s,%d(%s)" % (n, FPR[rng.randrange(32)], imm, rx(rng)))
    elif f in ("F_RRR_RM", "F_R4", "F_RR_RM", "F_X_RM", "X_F_RM"):
        for rm in RMS:
            a, b, c = fregs[rng.randrange(len(fregs))]
            d = FPR[rng.randrange(32)]
            ops = {"F_RRR_RM": [a, b, c], "F_R4": [a, b, c, d], "F_RR_RM": [a, b],
                   "F_X_RM": [rx(rng), b], "X_F_RM": [a, rx(rng)]}[f]
            out.append("%s %s" % (n, ",".join(ops + ([rm] if rm else []))))
    elif f in ("F_RRR", "F_RR", "F_X", "X_F", "FCMP"):
        for a, b, c in fregs:
            ops = {"F_RRR": [a, b, c], "F_RR": [a, b], "F_X": [rx(rng), b], "X_F": [a, rx(rng)],
                   "FCMP": [rx(rng), b, c]}[f]
            out.append("%s %s" % (n, ",".join(ops)))
    else:
        raise SystemExit("gen_rv_asm: no operand generator for format " + f)
    return out


def lines_16(row, rng):
    n, f, x = row["name"], row["fmt"], row["xop"]
    fp = x in ("FLD", "FSD")
    rp = [GPR[i] for i in range(8, 16)]
    fpp = [FPR[i] for i in range(8, 16)]
    regp = fpp if fp else rp
    out = []

    def r1(nonzero=True, no2=False):
        while True:
            i = rng.randrange(1 if nonzero else 0, 32)
            if not (no2 and i == 2):
                return (FPR if fp else GPR)[i]

    if f == "C_NONE":
        out.append(n)
    elif f == "C_ADDI4SPN":
        for imm in (4, 1020, rng.randrange(1, 256) * 4):
            out.append("%s %s,sp,%d" % (n, rng.choice(rp), imm))
    elif f in ("C_LW", "C_SW", "C_LD", "C_SD"):
        scale, top = (4, 124) if f in ("C_LW", "C_SW") else (8, 248)
        for imm in (0, top, rng.randrange(0, top // scale + 1) * scale):
            out.append("%s %s,%d(%s)" % (n, rng.choice(regp), imm, rng.choice(rp)))
    elif f == "C_ADDI":
        for imm in (-32, 31, 1, rng.choice([i for i in range(-32, 32) if i])):
            out.append("%s %s,%d" % (n, r1(), imm))
        if n == "c.addiw":
            out.append("%s %s,0" % (n, r1()))
    elif f == "C_LI":
        for imm in (-32, 31, 0, rng.randrange(-32, 32)):
            out.append("%s %s,%d" % (n, r1(), imm))
        out.append("%s zero,5" % n)  # a HINT, still decoded
    elif f == "C_ADDI16SP":
        for imm in (-512, 496, 16, rng.choice([i for i in range(-32, 32) if i]) * 16):
            out.append("%s sp,%d" % (n, imm))
    elif f == "C_LUI":
        for imm in (1, 31, 0xfffe0, 0xfffff, rng.choice(list(range(1, 32)) + list(range(0xfffe0, 0x100000)))):
            out.append("%s %s,0x%x" % (n, r1(no2=True), imm))
    elif f == "C_SHIFT":
        for sh in (1, 63, 32, rng.randrange(1, 64)):
            out.append("%s %s,%d" % (n, rng.choice(rp), sh))
    elif f in ("C_SHIFT64", "C_SLLI64"):
        out.append("%s %s" % (n, rng.choice(rp) if f == "C_SHIFT64" else r1()))
    elif f == "C_ANDI":
        for imm in (-32, 31, 0, rng.randrange(-32, 32)):
            out.append("%s %s,%d" % (n, rng.choice(rp), imm))
    elif f == "C_CA":
        for _ in range(3):
            out.append("%s %s,%s" % (n, rng.choice(rp), rng.choice(rp)))
    elif f == "C_J":
        for off in (-2048, 2046, 0, rng.randrange(-1024, 1023) * 2):
            out.append("%s %s" % (n, target(off)))
    elif f == "C_B":
        for off in (-256, 254, 0, rng.randrange(-128, 127) * 2):
            out.append("%s %s,%s" % (n, rng.choice(rp), target(off)))
    elif f == "C_SLLI":
        for sh in (1, 63, rng.randrange(1, 64)):
            out.append("%s %s,%d" % (n, r1(), sh))
    elif f in ("C_LWSP", "C_LDSP"):
        scale, top = (4, 252) if f == "C_LWSP" else (8, 504)
        for imm in (0, top, rng.randrange(0, top // scale + 1) * scale):
            out.append("%s %s,%d(sp)" % (n, r1(nonzero=not fp), imm))
    elif f in ("C_SWSP", "C_SDSP"):
        scale, top = (4, 252) if f == "C_SWSP" else (8, 504)
        for imm in (0, top, rng.randrange(0, top // scale + 1) * scale):
            out.append("%s %s,%d(sp)" % (n, r1(nonzero=False), imm))
    elif f in ("C_JR", "C_JALR"):
        out += ["%s %s" % (n, r) for r in ("ra", "t6", r1())]
    elif f in ("C_MV", "C_ADD"):
        out += ["%s %s,%s" % (n, r1(), r1()) for _ in range(3)]
        out.append("%s zero,a0" % n)  # a HINT
    else:
        raise SystemExit("gen_rv_asm: no operand generator for format " + f)
    return out


def main():
    table, outdir = sys.argv[1], sys.argv[2]
    rows = parse_table(table)
    rng = random.Random(20240601)
    body = ["# Generated by tests/riscv/gen_rv_asm.py; do not edit.", ".option norelax", ".text",
            ".globl _start", "_start:", ".option norvc"]
    for r in rows:
        if not r["c"] and r["ext"] != "Zicond":
            body += ["  " + l for l in lines_32(r, rng)]
    # Encodings objdump prints in a way of its own: fence with an empty set,
    # the exact conversions with rm=000, the canonical 32-bit unimp.
    body += ["  .insn 4, 0x0000000f", "  .insn 4, 0x0300000f", "  .insn 4, 0x0030000f",
             "  .insn 4, 0xd2050553", "  .insn 4, 0x42058553", "  .insn 4, 0xc0001073"]
    body.append(".option rvc")
    for r in rows:
        if r["c"]:
            body += ["  " + l for l in lines_16(r, rng)]
    # HINTs and the compressed shift-by-zero forms given as raw parcels.
    body += ["  .insn 2, 0x0001", "  .insn 2, 0x0015", "  .insn 2, 0x0501", "  .insn 2, 0x6005",
             "  .insn 2, 0x0002"]
    with open(os.path.join(outdir, "listing.S"), "w") as f:
        f.write("\n".join(body) + "\n")

    c32 = [r for r in rows if not r["c"]]
    rnd = ["# Generated by tests/riscv/gen_rv_asm.py; do not edit.", ".text", ".globl _start", "_start:"]
    for i in range(10000):
        if i % 2:
            r = rng.choice(c32)
            w = (r["match"] & r["mask"]) | (rng.getrandbits(32) & ~r["mask"])
            if rng.random() < 0.3:
                w ^= 1 << rng.randrange(7, 32)
        else:
            w = rng.getrandbits(32)
        w = (w | 3) & 0xffffffff
        if (w & 0x1c) == 0x1c:  # keep to 32-bit lengths
            w &= ~0x10
        rnd.append("  .insn 4, 0x%08x" % w)
        p = rng.getrandbits(16)
        if (p & 3) == 3:
            p &= ~1
        rnd.append("  .insn 2, 0x%04x" % p)
    # Reserved compressed encodings, so objdump's view of them is checked too.
    for p in (0x0000, 0x0004, 0x6101, 0x6501, 0x6001, 0x8002, 0x4002, 0x6002, 0x2001, 0x9c41, 0x9c61):
        rnd.append("  .insn 2, 0x%04x" % p)
    for w in (0x7b200073, 0x00200073, 0x20200073, 0x10400073, 0x0010100f, 0x8330000f, 0xc0001073):
        rnd.append("  .insn 4, 0x%08x" % w)
    with open(os.path.join(outdir, "random.S"), "w") as f:
        f.write("\n".join(rnd) + "\n")


if __name__ == "__main__":
    main()
