#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Differential test: the same random program (gen.py) under two emulators; the final registers, fflags,
# memory hash and trap log must be identical. Either keel (-accel tci) against QEMU, or keel's two engines
# (-accel tci against -accel tcg) on programs that also branch, loop, jump, access CSRs and trap.
# A mismatch between keel's engines is reduced to a minimal program, which is printed.
"""usage: run.py --keel PATH [--compare qemu|tcg] [--qemu PATH] --seeds A-B [--n N] [--keep DIR]

  --compare qemu   keel -accel tci vs qemu-system-riscv64 (straight-line programs; the default)
  --compare tcg    keel -accel tci vs keel -accel tcg (gen.py --control programs)
Developers: run.py --keel build/bin/keel --compare tcg --seeds 1-2000 --n 1000 for a longer run."""
import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen  # noqa: E402

CFLAGS = ["-march=rv64gc_zba_zbb_zbs", "-mabi=lp64d", "-mcmodel=medany", "-nostdlib", "-nostartfiles",
          "-static", "-O2", "-ffreestanding", "-Wl,--no-warn-rwx-segments", "-Wl,--no-relax",
          "-Wl,-Ttext=0x80000000"]
LINES = 66  # x1-x31, f0-f31, fflags, memory hash, trap log


def run(cmd):
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return -1, "(timed out after 20 s)\n"
    return p.returncode, p.stdout


class Pair:
    """The two emulators of a comparison."""

    def __init__(self, a):
        self.a = a
        if a.compare == "qemu":
            self.names = ("keel", "qemu")
        else:
            self.names = ("tci", "tcg")

    def commands(self, elf):
        keel = [self.a.keel, "-M", "riscv-virt", "-bios", "none", "-kernel", elf]
        if self.a.compare == "qemu":
            return [keel[:1] + ["-accel", "tci"] + keel[1:],
                    [self.a.qemu, "-M", "virt", "-cpu", "rv64,zba=true,zbb=true,zbs=true", "-bios", "none",
                     "-kernel", elf, "-nographic"]]
        return [keel[:1] + ["-accel", "tci"] + keel[1:], keel[:1] + ["-accel", "tcg"] + keel[1:]]

    def outcome(self, src, tmp, tag):
        """Builds src; (differs, status0, status1, out0, out1), or None if it does not assemble."""
        path = os.path.join(tmp, tag + ".S")
        with open(path, "w") as f:
            f.write(src)
        elf = os.path.join(tmp, tag + ".elf")
        b = subprocess.run([self.a.cc] + CFLAGS + ["-o", elf, os.path.join(HERE, "start.S"), path,
                                                    os.path.join(HERE, "print.c")], capture_output=True,
                           text=True)
        if b.returncode != 0:
            return None
        (s0, o0), (s1, o1) = (run(c) for c in self.commands(elf))
        differs = s0 != 0 or s1 != 0 or o0 != o1 or o0.count("\n") != LINES
        return differs, s0, s1, o0, o1


def source(pro, units, epi):
    return "\n".join(pro + [line for u in units for line in u] + epi) + "\n"


def reduce(pair, pro, units, epi, tmp, budget=400):
    """The smallest list of units (by dropping chunks, then single units) whose program still differs."""
    tries = [0]

    def differs(us):
        tries[0] += 1
        r = pair.outcome(source(pro, us, epi), tmp, "reduce")
        return r is not None and r[0]

    chunk = max(1, len(units) // 2)
    while chunk >= 1 and tries[0] < budget:
        i, changed = 0, False
        while i < len(units) and tries[0] < budget:
            cand = units[:i] + units[i + chunk:]
            if cand != units and differs(cand):
                units, changed = cand, True
            else:
                i += chunk
        if not changed:
            chunk //= 2
    return units


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("--keel", required=True)
    ap.add_argument("--compare", choices=["qemu", "tcg"], default="qemu")
    ap.add_argument("--qemu", default="qemu-system-riscv64")
    ap.add_argument("--seeds", default="1-20")
    ap.add_argument("--n", type=int, default=400, help="instructions (units) per program")
    ap.add_argument("--cc", default="riscv64-unknown-elf-gcc")
    ap.add_argument("--keep", help="write each differing (reduced) program to this directory")
    a = ap.parse_args()
    pair = Pair(a)
    lo, hi = (int(x) for x in a.seeds.split("-"))
    failed = 0
    with tempfile.TemporaryDirectory(prefix="keel-difftest-") as tmp:
        for seed in range(lo, hi + 1):
            pro, units, epi = gen.generate(seed, a.n, control=a.compare == "tcg")
            res = pair.outcome(source(pro, units, epi), tmp, "t%d" % seed)
            if res is None:
                print("seed %d: the generated program does not assemble" % seed)
                failed += 1
                continue
            differs, s0, s1, o0, o1 = res
            if not differs:
                continue
            failed += 1
            n0, n1 = pair.names
            print("seed %d: DIFFERENT (%s status %d, %s status %d)" % (seed, n0, s0, n1, s1))
            l0, l1 = o0.splitlines(), o1.splitlines()
            for i in range(max(len(l0), len(l1))):
                x = l0[i] if i < len(l0) else "-"
                y = l1[i] if i < len(l1) else "-"
                if x != y:
                    print("   %s %-22s %s %s" % (n0, x, n1, y))
            flag = " --control" if a.compare == "tcg" else ""
            print("   program: python3 %s %d %d%s" % (os.path.join(HERE, "gen.py"), seed, a.n, flag))
            if a.compare == "tcg":
                small = reduce(pair, pro, units, epi, tmp)
                text = source(pro, small, epi)
                print("   reduced to %d of %d units; the body after the register set-up:" % (len(small),
                                                                                        len(units)))
                for line in [ln for u in small for ln in u]:
                    print("   | " + line)
                if a.keep:
                    os.makedirs(a.keep, exist_ok=True)
                    out = os.path.join(a.keep, "seed%d.S" % seed)
                    with open(out, "w") as f:
                        f.write(text)
                    print("   written to %s (assemble with start.S and print.c)" % out)
    total = hi - lo + 1
    print("%d/%d programs agree" % (total - failed, total))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
