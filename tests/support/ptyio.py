# SPDX-License-Identifier: MIT
"""Reading a terminal or socket fd in the console and monitor tests (tests/console, tests/hmp)."""
import os
import select
import time


class Failure(Exception):
    pass


def read_until(fd, want, seen=b"", timeout=10.0):
    """Read fd until `want` (bytes) is in what was read (starting from `seen`); returns all of it. Fails after
    timeout or at the end of the output."""
    end = time.monotonic() + timeout
    buf = seen
    while want not in buf:
        left = end - time.monotonic()
        if left <= 0:
            raise Failure(f"waited {timeout} s for {want!r}; got {buf!r}")
        if not select.select([fd], [], [], left)[0]:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side is gone
            chunk = b""
        if not chunk:
            raise Failure(f"end of output while waiting for {want!r}; got {buf!r}")
        buf += chunk
    return buf


def drain(fd, seconds=0.3):
    """Whatever arrives within `seconds`."""
    buf = b""
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return buf
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return buf
        if not chunk:
            return buf
        buf += chunk
