#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""-icount: the icount guest program (icount.c) is deterministic and its numbers match the arithmetic.

usage: icount_test.py --emulator KEEL --accel tci|tcg --elf icount.elf --variant shiftN

Runs the program with -icount shift=N,sleep=off twice on --accel, once with sleep=on, and (for tcg) once
under tci, and checks:
  - every run exits 0 and all outputs are byte-identical (the same across engines and sleep modes);
  - virtual time is instructions << N ns (plus the time skipped while the hart idled in wfi): each
    sampled time (100 ns ticks of the 10 MHz timebase) is exactly floor(((insns << N) + skipped) / 100),
    the samples being taken at the first instruction of a block (keel's time is exact there);
  - each CLINT timer interrupt is taken at exactly the first instruction count whose time reaches
    mtimecmp (ceil((mtimecmp * 100 - skipped) / 2^N) instructions executed), cut mid-block if need be;
  - the 3 s wfi wait: with sleep=off virtual time jumps at once (the run takes < 2.5 s of host time),
    with sleep=on keel waits it out (>= 2.9 s), and both wake at exactly mtimecmp.
"""
import argparse
import re
import subprocess
import sys
import time

NS_PER_TICK = 100  # 10 MHz timebase


def run(keel, accel, elf, shift, sleep):
    cmd = [keel, "-M", "spike", "-accel", accel, "-bios", "none", "-kernel", elf,
           "-icount", "shift=%d,sleep=%s" % (shift, sleep)]
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    elapsed = time.monotonic() - t0
    out = p.stdout.decode(errors="replace")
    if p.returncode != 0:
        sys.exit("FAIL: %s exited %d\nstdout:\n%s\nstderr:\n%s" %
                 (" ".join(cmd), p.returncode, out, p.stderr.decode(errors="replace")))
    return out, elapsed


def check_arithmetic(out, shift):
    skipped = 0
    counts = {"sample": 0, "irq": 0, "wfi": 0}
    for line in out.splitlines():
        m = re.fullmatch(r"([\w-]+): time (\d+) insns (\d+)", line)
        if m:
            t, n = int(m.group(2)), int(m.group(3))
            want = ((n << shift) + skipped) // NS_PER_TICK
            if t != want:
                sys.exit("FAIL: %r: time %d, expected %d from %d instructions << %d + %d ns skipped" %
                         (line, t, want, n, shift, skipped))
            counts["sample"] += 1
            continue
        m = re.fullmatch(r"irq: mtimecmp (\d+) insns (\d+) cut ([01])", line)
        if m:
            cmp, n = int(m.group(1)), int(m.group(2))
            need = cmp * NS_PER_TICK - skipped
            want = -(-need // (1 << shift))
            if n != want:
                sys.exit("FAIL: %r: interrupt after %d instructions, expected exactly %d (the first count "
                         "whose time reaches mtimecmp)" % (line, n, want))
            counts["irq"] += 1
            continue
        m = re.fullmatch(r"wfi: mtimecmp (\d+) halted-at (\d+)", line)
        if m:
            cmp, n = int(m.group(1)), int(m.group(2))
            skipped = cmp * NS_PER_TICK - (n << shift)
            if skipped <= 0:
                sys.exit("FAIL: %r: no virtual time skipped while halted" % line)
            counts["wfi"] += 1
            continue
        if not line.startswith("k "):
            sys.exit("FAIL: unexpected output line %r" % line)
    if counts != {"sample": 7, "irq": 5, "wfi": 1}:
        sys.exit("FAIL: expected 7 samples, 5 interrupts and 1 wfi, got %s\n%s" % (counts, out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emulator", required=True)
    ap.add_argument("--accel", default="tci")
    ap.add_argument("--elf", required=True)
    ap.add_argument("--variant", required=True)
    a = ap.parse_args()
    m = re.fullmatch(r"shift(\d+)", a.variant)
    if not m:
        sys.exit("unknown variant %s" % a.variant)
    shift = int(m.group(1))

    runs = [(a.accel, "off"), (a.accel, "off"), (a.accel, "on")]
    if a.accel != "tci":
        runs.append(("tci", "off"))
    outs = []
    for accel, sleep in runs:
        out, elapsed = run(a.emulator, accel, a.elf, shift, sleep)
        print("%s sleep=%s: %.2f s" % (accel, sleep, elapsed))
        if sleep == "off" and elapsed >= 2.5:
            sys.exit("FAIL: sleep=off took %.2f s: the 3 s idle wait was not skipped" % elapsed)
        if sleep == "on" and elapsed < 2.9:
            sys.exit("FAIL: sleep=on took %.2f s: the 3 s idle wait was not waited out" % elapsed)
        outs.append((accel, sleep, out))
    first = outs[0][2]
    for accel, sleep, out in outs[1:]:
        if out != first:
            sys.exit("FAIL: %s sleep=%s printed something else than %s sleep=%s:\n--- first\n%s--- this\n%s" %
                     (accel, sleep, outs[0][0], outs[0][1], first, out))
    check_arithmetic(first, shift)
    print(first, end="")
    print("OK: %d identical runs" % len(outs))


if __name__ == "__main__":
    main()
