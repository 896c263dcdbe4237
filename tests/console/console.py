#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# End-to-end console tests: keel on a terminal (a pty) or with -serial pty, running echo.S.
"""usage: console.py TEST KEEL ECHO_ELF

Each TEST starts keel on riscv-virt running the UART echo guest, types at it and checks what comes back.
"""
import os
import pty
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from testlib import Failure, PtyChild, read_until  # noqa: E402

KEEL = ECHO = None
CTRL_A = b"\x01"


def machine(*serial):
    return [KEEL, "-M", "riscv-virt", "-bios", "none", "-kernel", ECHO, *serial]


class Terminal(PtyChild):
    """keel as a user runs it: stdin, stdout and stderr on a terminal that is its controlling tty."""

    def __init__(self, *serial):
        self.argv = machine(*serial)
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(self.argv[0], self.argv)
        self.out = b""
        self.expect(b"echo ready")

    def type(self, data):
        os.write(self.fd, data)

    def expect(self, want):
        self.out = read_until(self.fd, want, self.out)

    def expect_later(self, want):
        """`want` in what arrives from now on."""
        mark = len(self.out)
        self.expect(want)
        if want not in self.out[mark:]:
            raise Failure(f"{want!r} did not arrive again; output so far {self.out!r}")


def expect_status(term, want):
    st = term.status()
    if st != want:
        raise Failure(f"exit status {st}, expected {want}; output {term.out!r}")


def quit_with_ctrl_a_x(term):
    term.type(CTRL_A + b"x")
    expect_status(term, 0)
    if b"keel: terminated" not in term.out:
        raise Failure(f"no 'keel: terminated' after C-a x; output {term.out!r}")


# ---- the tests ----


def test_echo():
    """Typing on mon:stdio reaches the guest unchanged and its echo comes back; C-a x exits 0."""
    t = Terminal("-serial", "mon:stdio")
    t.type(b"hello, guest")
    t.expect(b"hello, guest")
    quit_with_ctrl_a_x(t)


def test_quit():
    """C-a x: 'keel: terminated' and exit status 0, also with -chardev stdio,mux=on."""
    t = Terminal("-chardev", "stdio,id=con,mux=on", "-serial", "chardev:con")
    quit_with_ctrl_a_x(t)


def test_help():
    """C-a h lists exactly the keys that work; C-a c switches to the monitor and back; neither reaches the
    guest."""
    t = Terminal("-serial", "mon:stdio")
    t.type(CTRL_A + b"h")
    t.expect(b"C-a C-a does the same)")
    for key in (b"C-a h ", b"C-a x ", b"C-a b ", b"C-a c ", b"C-a a "):
        if key not in t.out:
            raise Failure(f"help lacks {key!r}: {t.out!r}")
    for key in (b"C-a s ", b"C-a t "):
        if key in t.out:
            raise Failure(f"help lists {key!r}, which keel does not have: {t.out!r}")
    t.type(CTRL_A + b"c")
    t.expect(b"monitor - type 'help' for more information")
    t.expect(b"(qemu) ")
    t.type(CTRL_A + b"c")
    # The guest echoes Ctrl-B as ^B; the monitor would drop it.
    t.type(b"still\x02here")
    t.expect(b"still^Bhere")
    if b"^A" in t.out:
        raise Failure(f"an escape key reached the guest: {t.out!r}")
    quit_with_ctrl_a_x(t)


def test_literal_ctrl_a():
    """C-a a and C-a C-a deliver one 0x01 to the guest (which echoes it as ^A)."""
    t = Terminal("-serial", "mon:stdio")
    t.type(b"<" + CTRL_A + b"a>")
    t.expect(b"<^A>")
    t.type(b"[" + CTRL_A + CTRL_A + b"]")
    t.expect(b"[^A]")
    quit_with_ctrl_a_x(t)


def test_other_keys():
    """As QEMU: an unknown key after C-a is swallowed with it; C-a X (capital) is not C-a x; Ctrl-C goes to
    the guest on a multiplexed stdio."""
    t = Terminal("-serial", "mon:stdio")
    t.type(b"(" + CTRL_A + b"q" + CTRL_A + b"X)")
    t.expect(b"()")
    t.type(b"\x03")
    t.expect(b"^C")
    quit_with_ctrl_a_x(t)


def test_plain_stdio():
    """Without the multiplexer, C-a is an ordinary byte, and Ctrl-C stops keel (status 0) as before."""
    t = Terminal("-serial", "stdio")
    t.type(CTRL_A + b"x")
    t.expect(b"^Ax")
    t.type(b"\x03")
    expect_status(t, 0)
    if b"keel: terminating on signal 2" not in t.out:
        raise Failure(f"no signal message: {t.out!r}")


class PtyKeel:
    """keel with -serial pty (or mon:pty): finds the pty's name on stderr and opens it."""

    def __init__(self, serial):
        self.p = subprocess.Popen(machine("-serial", serial), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        err = read_until(self.p.stderr.fileno(), b")\n")
        line = err.decode().strip()
        prefix, suffix = "char device redirected to ", " (label serial0)"
        if not (line.startswith(prefix) and line.endswith(suffix)):
            raise Failure(f"stderr is {err!r}, expected '{prefix}/dev/pts/N{suffix}'")
        self.path = line[len(prefix):-len(suffix)]
        if not self.path.startswith("/dev/pts/"):
            raise Failure(f"pty name {self.path!r}")
        self.fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY)
        self.out = b""

    def exchange(self, send, want):
        os.write(self.fd, send)
        self.out = read_until(self.fd, want, self.out)

    def status(self, timeout=10.0):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise Failure(f"keel still running after {timeout} s")


def test_pty():
    """-serial pty: bytes go both ways through the slave, raw (0x01 arrives as is); SIGTERM ends keel."""
    k = PtyKeel("pty")
    k.exchange(b"ping", b"ping")
    k.exchange(b"\x01x\r", b"^Ax\r")
    k.p.send_signal(signal.SIGTERM)
    st = k.status()
    if st != 0:
        raise Failure(f"exit status {st} after SIGTERM, expected 0")


def test_mon_pty():
    """-serial mon:pty: the escape keys work from the pty; C-a x ends keel with status 0."""
    k = PtyKeel("mon:pty")
    k.exchange(b"ping" + CTRL_A + b"a", b"ping^A")
    k.exchange(CTRL_A + b"x", b"keel: terminated")
    st = k.status()
    if st != 0:
        raise Failure(f"exit status {st} after C-a x, expected 0")


def main():
    global KEEL, ECHO
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    name, KEEL, ECHO = sys.argv[1:]
    test = globals().get("test_" + name.replace("-", "_"))
    if not test:
        sys.exit(f"no test {name!r}")
    try:
        test()
    except Failure as e:
        print(f"console.{name}: FAILED: {e}")
        sys.exit(1)
    print(f"console.{name}: ok")


if __name__ == "__main__":
    main()
