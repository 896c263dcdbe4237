#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# ctest helper for the plugin tests: runs a command and checks its exit status and exact output lines,
# the exact list of its output lines that match a filter, or that a compile fails with an error naming
# what it must name.
"""usage: check.py [--status N] [--line TEXT]... [--filter REGEX [--expect LINE]...] [--fails-with REGEX]
                [--timeout S] -- COMMAND...

--line TEXT: some line of stdout+stderr must equal TEXT exactly (so "insns: 2011" does not match
             "insns: 20110").
--filter REGEX: the output lines (stdout + stderr) matching REGEX must be exactly the --expect lines, in
             that order (give --expect once per line; none: no line may match).
--fails-with REGEX: the command must fail (non-zero status) and its output must match REGEX; for
             compile tests that prove a declaration is absent in some API version.
"""
import argparse
import re
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--status", type=int, default=0)
    ap.add_argument("--line", action="append", default=[])
    ap.add_argument("--filter")
    ap.add_argument("--expect", action="append", default=[])
    ap.add_argument("--fails-with")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command and a.command[0] == "--" else a.command
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=a.timeout)
    except subprocess.TimeoutExpired:
        print(f"timed out after {a.timeout} s: {' '.join(cmd)}")
        return 1
    out = p.stdout + p.stderr
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
    if problems:
        print("command:", " ".join(cmd))
        print("output:\n" + out)
        for pr in problems:
            print("FAIL:", pr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
