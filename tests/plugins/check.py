#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# ctest helper for the plugin tests: runs a command and checks its exit status and exact output lines,
# the exact list of its output lines that match a filter, or that a compile fails with an error naming
# what it must name.
"""usage: check.py [--status N] [--line TEXT]... [--filter REGEX [--expect LINE]...] [--fails-with REGEX]
                [--elf ELF [--nm NM]] [--timeout S] -- COMMAND...

--line TEXT: some line of stdout+stderr must equal TEXT exactly (so "insns: 2011" does not match
             "insns: 20110").
--filter REGEX: the output lines (stdout + stderr) matching REGEX must be exactly the --expect lines, in
             that order (give --expect once per line; none: no line may match).
--fails-with REGEX: the command must fail (non-zero status) and its output must match REGEX; for
             compile tests that prove a declaration is absent in some API version.
--elf ELF:   {SYMBOL} in the command and in --expect lines stands for that symbol's address in the guest
             ELF (0x%x), read with NM (default riscv64-unknown-elf-nm).

The other checkers of this directory (h6_check.py) use its symbols(), run() and report().
"""
import argparse
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from testlib import symbols  # noqa: E402  (h6_check.py uses it through this module)


def with_symbols(text, syms):
    """@text with each {SYMBOL} replaced by its address; KeyError for an unknown symbol."""
    return re.sub(r"\{(\w+)\}", lambda m: "0x%x" % syms[m[1]], text)


def run(cmd, timeout):
    """(process, stdout + stderr) of @cmd, or None (after saying so) if it timed out."""
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"timed out after {timeout} s: {' '.join(cmd)}")
        return None
    return p, p.stdout + p.stderr


def report(cmd, out, problems):
    """The exit status for @problems: 0 if none, else 1 after printing the command, its output and them."""
    if not problems:
        return 0
    print("command:", " ".join(cmd))
    print("output:\n" + out)
    for pr in problems:
        print("FAIL:", pr)
    return 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--status", type=int, default=0)
    ap.add_argument("--line", action="append", default=[])
    ap.add_argument("--filter")
    ap.add_argument("--expect", action="append", default=[])
    ap.add_argument("--fails-with")
    ap.add_argument("--elf")
    ap.add_argument("--nm", default="riscv64-unknown-elf-nm")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command and a.command[0] == "--" else a.command
    if a.elf:
        syms = symbols(a.elf, a.nm)
        try:
            cmd = [with_symbols(c, syms) for c in cmd]
            a.expect = [with_symbols(e, syms) for e in a.expect]
        except KeyError as e:
            print(f"{a.elf}: no symbol {e}")
            return 1
    ran = run(cmd, a.timeout)
    if ran is None:
        return 1
    p, out = ran
    problems = []
    if a.fails_with is not None:
        if p.returncode == 0:
            problems.append("the command succeeded; it must fail")
        elif not re.search(a.fails_with, out):
            problems.append(f"the output does not match /{a.fails_with}/")
    elif p.returncode != a.status:
        problems.append(f"exit status {p.returncode}, expected {a.status}")
    lines = out.splitlines()
    for want in a.line:
        if want not in lines:
            problems.append(f"no line '{want}'")
    if a.filter is not None:
        got = [line for line in lines if re.search(a.filter, line)]
        if got != a.expect:
            problems.append(f"lines matching /{a.filter}/ were {got}, expected {a.expect}")
    return report(cmd, out, problems)


if __name__ == "__main__":
    sys.exit(main())
