#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# ctest helper for the h5 plugin tests: check.py's --filter/--expect, with {symbol} in an expected line
# replaced by that symbol's address in the guest ELF (0x%x), read with the guest toolchain's nm.
"""usage: h5_check.py --nm NM --elf ELF --filter REGEX [--expect LINE]... -- COMMAND..."""
import argparse
import re
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nm", required=True)
    ap.add_argument("--elf", required=True)
    ap.add_argument("--filter", required=True)
    ap.add_argument("--expect", action="append", default=[])
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command and a.command[0] == "--" else a.command
    syms = {}
    for line in subprocess.run([a.nm, a.elf], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            syms[parts[2]] = int(parts[0], 16)
    try:
        want = [re.sub(r"\{(\w+)\}", lambda m: "0x%x" % syms[m.group(1)], e) for e in a.expect]
    except KeyError as e:
        print(f"{a.elf}: no symbol {e}")
        return 1
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=a.timeout)
    except subprocess.TimeoutExpired:
        print(f"timed out after {a.timeout} s: {' '.join(cmd)}")
        return 1
    out = p.stdout + p.stderr
    got = [line for line in out.splitlines() if re.search(a.filter, line)]
    if p.returncode != 0 or got != want:
        print("command:", " ".join(cmd))
        print("output:\n" + out)
        print(f"FAIL: exit status {p.returncode}; lines matching /{a.filter}/ were {got}, expected {want}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
