# SPDX-License-Identifier: MIT
"""Helpers the python tests share (tests/console, hmp, qmp, gdb, plugins): reading a terminal or socket fd,
a process on a pty, a free TCP port, an ELF's symbols."""
import contextlib
import os
import select
import signal
import socket
import subprocess
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


class PtyChild:
    """A process on a pty (pty.fork): `pid`, its terminal `fd`, and `out`, everything read from it so far."""

    def status(self, timeout=10.0):
        """Exit status once it ends (reading its output meanwhile so it never blocks)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.out += drain(self.fd, 0.1)
                if os.WIFSIGNALED(st):
                    raise Failure(f"keel killed by signal {os.WTERMSIG(st)}; output {self.out!r}")
                return os.WEXITSTATUS(st)
            self.out += drain(self.fd, 0.05)
        self.kill()
        raise Failure(f"keel still running after {timeout} s; output {self.out!r}")

    def kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except OSError:
            pass


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def symbols(elf, nm="riscv64-unknown-elf-nm"):
    """{name: address} of the symbols in `elf`."""
    out = subprocess.run([nm, elf], capture_output=True, text=True, check=True).stdout
    return {f[2]: int(f[0], 16) for f in (line.split() for line in out.splitlines()) if len(f) == 3}


@contextlib.contextmanager
def running(*args, **kwargs):
    """subprocess.Popen(*args, **kwargs), killed if it still runs when the block ends, however it ends."""
    p = subprocess.Popen(*args, **kwargs)
    try:
        yield p
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
