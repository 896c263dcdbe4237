#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes a random straight-line RISC-V program (integer, M, Zba/Zbb/Zbs, F, D) whose final register file
# and fflags the harness prints, so keel and QEMU can be compared instruction class by instruction class.
import random
import sys

INT_R = ["add", "sub", "sll", "slt", "sltu", "xor", "srl", "sra", "or", "and", "addw", "subw", "sllw",
         "srlw", "sraw", "mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu", "mulw", "divw",
         "divuw", "remw", "remuw",
         "sh1add", "sh2add", "sh3add", "add.uw", "sh1add.uw", "sh2add.uw", "sh3add.uw",
         "andn", "orn", "xnor", "max", "maxu", "min", "minu", "rol", "ror", "rolw", "rorw",
         "bclr", "bext", "binv", "bset"]
# ctzw is left out: QEMU 7.2 counts past bit 31 when the low word is zero (ctzw of 1 << 35 gives 35, the
# spec says 32); keel's ctzw is checked against the spec in tests/translate.
INT_UN = ["clz", "ctz", "cpop", "clzw", "cpopw", "sext.b", "sext.h", "zext.h", "orc.b", "rev8"]
INT_I = ["addi", "slti", "sltiu", "xori", "ori", "andi", "addiw"]
INT_SH = [("slli", 63), ("srli", 63), ("srai", 63), ("slliw", 31), ("srliw", 31), ("sraiw", 31),
          ("rori", 63), ("roriw", 31), ("bclri", 63), ("bexti", 63), ("binvi", 63), ("bseti", 63),
          ("slli.uw", 63)]
LOADS = [("lb", 1), ("lh", 1), ("lw", 1), ("ld", 1), ("lbu", 1), ("lhu", 1), ("lwu", 1)]
STORES = ["sb", "sh", "sw", "sd"]
AMOS = ["amoswap", "amoadd", "amoxor", "amoand", "amoor", "amomin", "amomax", "amominu", "amomaxu"]
FP_BIN = ["fadd", "fsub", "fmul", "fdiv"]
FP_BIN_NORM = ["fmin", "fmax", "fsgnj", "fsgnjn", "fsgnjx"]
FP_CMP = ["feq", "flt", "fle"]
FP_FMA = ["fmadd", "fmsub", "fnmsub", "fnmadd"]
RMS = ["rne", "rtz", "rdn", "rup", "rmm", "dyn"]

# x2 (sp) is left alone; x31 is free for the dump.
XREGS = [r for r in range(1, 31) if r != 2]


def special64(r):
    return r.choice([0, 1 << 63, 0x7ff0000000000000, 0xfff0000000000000, 0x7ff8000000000000,
                     0x7ff4000000000000, 0x3ff0000000000000, 0xbff0000000000000, 0x0000000000000001,
                     0x000fffffffffffff, 0x7fefffffffffffff, 0x4330000000000000, 0x43e0000000000000,
                     0xc3e0000000000000, 0x41dfffffffc00000, 0x3fe0000000000000, 0x3ff8000000000000,
                     0x4004000000000000, r.getrandbits(64)])


def special32(r):
    v = r.choice([0, 1 << 31, 0x7f800000, 0xff800000, 0x7fc00000, 0x7fa00000, 0x3f800000, 0xbf800000,
                  0x00000001, 0x007fffff, 0x7f7fffff, 0x4b000000, 0x5f000000, 0xdf000000, 0x4effffff,
                  0x3f000000, 0x3fc00000, 0x40200000, r.getrandbits(32)])
    # Mostly NaN-boxed; sometimes not, to check that an improperly boxed single reads as the canonical NaN.
    return v | (0xffffffff00000000 if r.random() < 0.9 else r.getrandbits(32) << 32)


def xval(r):
    return r.choice([0, 1, 0xffffffffffffffff, 1 << 63, (1 << 63) - 1, 0x80000000, 0x7fffffff,
                     0xffffffff80000000, 0xffffffff, 63, 64, 31, 32, r.getrandbits(64), r.getrandbits(64),
                     r.getrandbits(8), r.getrandbits(64)])


def generate(seed, n, control=False):
    """The program as (prologue lines, body units, epilogue lines); each unit is a list of lines that
    assembles on its own, so a reducer may drop any of them. control adds branches, loops, jumps, CSR
    accesses and traps (for comparing keel's engines with each other)."""
    r = random.Random(seed)
    xregs = [x for x in XREGS if x != 30] if control else XREGS  # x30: loop counter
    out = ["    .text", "    .globl difftest_body", "difftest_body:",
           "    csrwi frm, %d" % r.randrange(5)]
    for x in XREGS:
        out.append("    li x%d, 0x%x" % (x, xval(r)))
    for f in range(32):
        v = special64(r) if r.random() < 0.5 else special32(r)
        out.append("    li x31, 0x%x" % v)
        out.append("    fmv.d.x f%d, x31" % f)
    out.append("    csrw fflags, x0")
    out.append("    la sp, sandbox_mid")
    X = lambda: "x%d" % r.choice(xregs)
    F = lambda: "f%d" % r.randrange(32)
    units = []
    labels = [0]

    def label():
        labels[0] += 1
        return "L%d" % labels[0]

    def plain():
        """One unit of the straight-line kinds."""
        out = []
        plain_unit(r, out, X, F)
        return out

    for _ in range(n):
        if control and r.random() < 0.15:
            units.append(control_unit(r, X, plain, label))
            continue
        u = []
        plain_unit(r, u, X, F)
        units.append(u)
    return out, units, ["    j difftest_dump"]


def control_unit(r, X, plain, label):
    """A branch over a few instructions, a counted loop, a jump, a CSR access or a trapping instruction."""
    k = r.random()
    u = []
    if k < 0.3:
        end = label()
        u.append("    %s %s, %s, %s" % (r.choice(["beq", "bne", "blt", "bge", "bltu", "bgeu"]), X(), X(), end))
        for _ in range(r.randrange(1, 4)):
            u += plain()
        u.append("%s:" % end)
    elif k < 0.45:
        top = label()
        u.append("    li x30, %d" % r.randrange(1, 6))
        u.append("%s:" % top)
        for _ in range(r.randrange(1, 4)):
            u += plain()
        u.append("    addi x30, x30, -1")
        u.append("    bnez x30, %s" % top)
    elif k < 0.55:
        end = label()
        if r.random() < 0.5:
            u.append("    jal %s, %s" % (X(), end))
        else:
            via = X()
            u.append("    la %s, %s" % (via, end))
            u.append("    jalr %s, 0(%s)" % (X(), via))
        u += plain()
        u.append("%s:" % end)
    elif k < 0.8:
        csr = r.choice(["sscratch", "fflags", "frm", "fcsr"])
        op = r.choice(["csrrw", "csrrs", "csrrc"])
        if r.random() < 0.5:
            u.append("    %si %s, %s, %d" % (op, X(), csr, r.randrange(32)))
        else:
            u.append("    %s %s, %s, %s" % (op, X(), csr, X()))
    else:
        # Traps: the handler (start.S) logs mcause and mtval and resumes after the instruction.
        t = r.random()
        if t < 0.3:
            u.append("    ecall")
        elif t < 0.5:
            u.append("    .option push\n    .option norvc\n    ebreak\n    .option pop")
        elif t < 0.7:
            u.append("    csrr %s, 0x7ff" % X())  # no such CSR: illegal instruction
        elif t < 0.85:
            u.append("    addi x31, sp, %d" % (r.randrange(1, 8) + 8 * r.randrange(-8, 8)))
            u.append("    amoadd.d %s, %s, (x31)" % (X(), X()))  # misaligned atomic: store fault
        else:
            u.append("    li x31, 0x%x" % r.choice([0x0, 0x1000, 0x3000_0000]))
            u.append("    %s %s, 0(x31)" % (r.choice(["lw", "ld", "lbu"]), X()))  # no device there: access fault
    return u


def plain_unit(r, out, X, F):
    """Appends one straight-line instruction (or an address computation and an atomic) to out."""
    k = r.random()
    if k < 0.12:
        # Memory: sp points into a 4 KiB sandbox (sandbox_mid, +-2 KiB), never written by the body.
        # Misaligned plain accesses are allowed (both emulators perform them); atomics stay aligned.
        off = r.randrange(-2040, 2040)
        k2 = r.random()
        if k2 < 0.35:
            out.append("    %s %s, %d(sp)" % (r.choice(LOADS)[0], X(), off))
        elif k2 < 0.7:
            out.append("    %s %s, %d(sp)" % (r.choice(STORES), X(), off))
        elif k2 < 0.8:
            out.append("    f%s %s, %d(sp)" % (r.choice(["lw", "ld", "sw", "sd"]), F(), off))
        else:
            w = r.choice(["w", "d"])
            a = r.randrange(-2040, 2040) & ~7
            out.append("    addi x31, sp, %d" % a)
            out.append("    %s.%s %s, %s, (x31)" % (r.choice(AMOS), w, X(), X()))
        return
    if k < 0.25:
        out.append("    %s %s, %s, %s" % (r.choice(INT_R), X(), X(), X()))
    elif k < 0.32:
        out.append("    %s %s, %s" % (r.choice(INT_UN), X(), X()))
    elif k < 0.40:
        out.append("    %s %s, %s, %d" % (r.choice(INT_I), X(), X(), r.randrange(-2048, 2048)))
    elif k < 0.46:
        op, m = r.choice(INT_SH)
        out.append("    %s %s, %s, %d" % (op, X(), X(), r.randrange(m + 1)))
    else:
        p = r.choice(["s", "d"])
        k2 = r.random()
        if k2 < 0.35:
            out.append("    %s.%s %s, %s, %s, %s" % (r.choice(FP_BIN), p, F(), F(), F(), r.choice(RMS)))
        elif k2 < 0.45:
            out.append("    fsqrt.%s %s, %s, %s" % (p, F(), F(), r.choice(RMS)))
        elif k2 < 0.60:
            out.append("    %s.%s %s, %s, %s" % (r.choice(FP_BIN_NORM), p, F(), F(), F()))
        elif k2 < 0.70:
            out.append("    %s.%s %s, %s, %s, %s, %s" % (r.choice(FP_FMA), p, F(), F(), F(), F(),
                                                         r.choice(RMS)))
        elif k2 < 0.76:
            out.append("    %s.%s %s, %s, %s" % (r.choice(FP_CMP), p, X(), F(), F()))
        elif k2 < 0.80:
            out.append("    fclass.%s %s, %s" % (p, X(), F()))
        elif k2 < 0.88:
            it = r.choice(["w", "wu", "l", "lu"])
            out.append("    fcvt.%s.%s %s, %s, %s" % (it, p, X(), F(), r.choice(RMS)))
        elif k2 < 0.95:
            it = r.choice(["w", "wu", "l", "lu"])
            if p == "d" and it in ("w", "wu"):  # exact: no rounding mode
                out.append("    fcvt.d.%s %s, %s" % (it, F(), X()))
            else:
                out.append("    fcvt.%s.%s %s, %s, %s" % (p, it, F(), X(), r.choice(RMS)))
        else:
            if p == "s":
                out.append("    fcvt.s.d %s, %s, %s" % (F(), F(), r.choice(RMS)))
            else:
                out.append("    fcvt.d.s %s, %s" % (F(), F()))


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    seed = int(args[0])
    n = int(args[1]) if len(args) > 1 else 400
    pro, units, epi = generate(seed, n, control="--control" in sys.argv)
    print("\n".join(pro + [line for u in units for line in u] + epi))


if __name__ == "__main__":
    main()
