#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# ctest helper for keel runs with plugins: runs a command and checks its exit status and the exact list of
# its output lines (stdout + stderr) that match a filter, in order.
"""usage: e2e.py [--status N] [--filter REGEX] [--expect LINE]... [--timeout S] -- COMMAND...

--filter REGEX: only output lines matching REGEX are compared (default: every line).
--expect LINE: the filtered lines must be exactly these, in this order (give it once per line).
"""
import argparse
import re
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--status", type=int, default=0)
    ap.add_argument("--filter", default="")
    ap.add_argument("--expect", action="append", default=[])
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command and a.command[0] == "--" else a.command
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=a.timeout)
    except subprocess.TimeoutExpired:
        print(f"timed out after {a.timeout} s: {' '.join(cmd)}")
        return 1
    out = p.stdout + p.stderr
    got = [line for line in out.splitlines() if re.search(a.filter, line)]
    problems = []
    if p.returncode != a.status:
        problems.append(f"exit status {p.returncode}, expected {a.status}")
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
