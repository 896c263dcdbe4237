#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Differential test: the same random straight-line program (gen.py) under keel and under QEMU; the final
# registers and fflags must be identical. Usage: run.py --keel PATH [--qemu PATH] --seeds A-B [--n N]
import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CFLAGS = ["-march=rv64gc_zba_zbb_zbs", "-mabi=lp64d", "-mcmodel=medany", "-nostdlib", "-nostartfiles",
          "-static", "-O2", "-ffreestanding", "-Wl,--no-warn-rwx-segments", "-Wl,--no-relax",
          "-Wl,-Ttext=0x80000000"]


def run(cmd):
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    return p.returncode, p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keel", required=True)
    ap.add_argument("--qemu", default="qemu-system-riscv64")
    ap.add_argument("--seeds", default="1-20")
    ap.add_argument("--n", type=int, default=400, help="instructions per program")
    ap.add_argument("--cc", default="riscv64-unknown-elf-gcc")
    a = ap.parse_args()
    lo, hi = (int(x) for x in a.seeds.split("-"))
    failed = 0
    with tempfile.TemporaryDirectory(prefix="keel-difftest-") as tmp:
        for seed in range(lo, hi + 1):
            body = os.path.join(tmp, "body%d.S" % seed)
            with open(body, "w") as f:
                subprocess.run([sys.executable, os.path.join(HERE, "gen.py"), str(seed), str(a.n)], stdout=f,
                               check=True)
            elf = os.path.join(tmp, "t%d.elf" % seed)
            subprocess.run([a.cc] + CFLAGS + ["-o", elf, os.path.join(HERE, "start.S"), body,
                                              os.path.join(HERE, "print.c")], check=True)
            ks, kout = run([a.keel, "-M", "riscv-virt", "-accel", "tci", "-bios", "none", "-kernel", elf])
            qs, qout = run([a.qemu, "-M", "virt", "-cpu", "rv64,zba=true,zbb=true,zbs=true", "-bios", "none", "-kernel", elf, "-nographic"])
            if ks != 0 or qs != 0 or kout != qout or kout.count("\n") != 65:
                failed += 1
                print("seed %d: DIFFERENT (keel status %d, QEMU status %d)" % (seed, ks, qs))
                kl, ql = kout.splitlines(), qout.splitlines()
                for i in range(max(len(kl), len(ql))):
                    k = kl[i] if i < len(kl) else "-"
                    q = ql[i] if i < len(ql) else "-"
                    if k != q:
                        print("   keel %-22s qemu %s" % (k, q))
                print("   program: python3 %s %d %d" % (os.path.join(HERE, "gen.py"), seed, a.n))
    total = hi - lo + 1
    print("%d/%d programs agree" % (total - failed, total))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
