#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Run a command, send it a signal after a delay, and exit with its status (for the signal tests).
"""usage: signal_after.py SECONDS SIGNAL COMMAND..."""
import subprocess
import sys
import time


def main():
    delay, sig, cmd = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    time.sleep(delay)
    p.send_signal(sig)
    try:
        return p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        print("signal_after.py: the command did not stop", file=sys.stderr)
        return 99


if __name__ == "__main__":
    sys.exit(main())
