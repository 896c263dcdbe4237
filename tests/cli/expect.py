#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Run a command and check its exit status and output, for ctest.
"""usage: expect.py [--status N] [--stdout-has TEXT]... [--stderr-has TEXT]... [--stderr-file F]
                    [--stdout-file F] [--cwd DIR] -- COMMAND...

--stderr-file / --stdout-file: the stream must equal the file's contents (trailing newlines ignored).
"""
import argparse
import json
import signal
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--status", type=int, default=0)
    ap.add_argument("--stdout-has", action="append", default=[])
    ap.add_argument("--stderr-has", action="append", default=[])
    ap.add_argument("--stdout-lacks", action="append", default=[])
    ap.add_argument("--stderr-lacks", action="append", default=[])
    ap.add_argument("--stderr-file")
    ap.add_argument("--stdout-file")
    ap.add_argument("--stderr-empty", action="store_true")
    ap.add_argument("--stdout-json", action="store_true", help="stdout must parse as JSON")
    ap.add_argument("--cwd")
    ap.add_argument("--survives", type=float, metavar="SECONDS",
                    help="instead of --status: the command must not crash (die by a signal) nor report an "
                         "internal error, whether it ends by itself or by the SIGINT sent after SECONDS")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command and a.command[0] == "--" else a.command
    problems = []
    if a.survives is not None:
        p = subprocess.Popen(cmd, cwd=a.cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            out, err = p.communicate(timeout=a.survives)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGINT)
            try:
                out, err = p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                problems.append("still running 10 s after SIGINT")
        p = subprocess.CompletedProcess(cmd, p.returncode, out, err)
        if p.returncode < 0:
            problems.append(f"killed by signal {-p.returncode}")
        if "internal error" in p.stderr:
            problems.append("reported an internal error")
    else:
        p = subprocess.run(cmd, cwd=a.cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        if p.returncode != a.status:
            problems.append(f"exit status {p.returncode}, expected {a.status}")
    for t in a.stdout_has:
        if t not in p.stdout:
            problems.append(f"stdout lacks {t!r}")
    for t in a.stdout_lacks:
        if t in p.stdout:
            problems.append(f"stdout has {t!r}")
    for t in a.stderr_has:
        if t not in p.stderr:
            problems.append(f"stderr lacks {t!r}")
    for t in a.stderr_lacks:
        if t in p.stderr:
            problems.append(f"stderr has {t!r}")
    if a.stdout_json:
        try:
            json.loads(p.stdout)
        except ValueError as e:
            problems.append(f"stdout is not JSON: {e}")
    if a.stderr_empty and p.stderr:
        problems.append("stderr is not empty")
    for name, path, got in (("stderr", a.stderr_file, p.stderr), ("stdout", a.stdout_file, p.stdout)):
        if path:
            want = open(path).read().rstrip("\n")
            if got.rstrip("\n") != want:
                problems.append(f"{name} differs:\n  expected: {want!r}\n  got:      {got.rstrip(chr(10))!r}")
    if problems:
        print("command:", " ".join(cmd))
        print("--- stdout ---\n" + p.stdout + "--- stderr ---\n" + p.stderr)
        for pr in problems:
            print("FAIL:", pr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
