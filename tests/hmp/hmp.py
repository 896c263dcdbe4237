#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# End-to-end tests of the human monitor (HMP): keel on a terminal (a pty), on a unix socket and on
# -monitor pty, typed at as a user would, every answer checked.
"""usage: hmp.py TEST KEEL GUEST_ELF NM PLUGIN_SO

Each TEST starts keel on riscv-virt running guest.S and drives its monitor.
"""
import os
import pty
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from testlib import Failure, PtyChild, drain, read_until, running, symbols  # noqa: E402

KEEL = GUEST = NM = PLUGIN = None
CTRL_A = b"\x01"
PROMPT = b"(qemu) "


def check(cond, what):
    if not cond:
        raise Failure(what)


def machine(*extra):
    return [KEEL, "-M", "riscv-virt", "-bios", "none", "-kernel", GUEST, *extra]


class Monitor:
    """Something that reads and writes a monitor: command() types a line and returns its answer."""

    def __init__(self, fd):
        self.fd = fd
        self.out = b""

    def type(self, data):
        os.write(self.fd, data)

    def expect(self, want, timeout=10.0):
        """Wait for `want` in the output from the current mark on; move the mark past it."""
        rest = read_until(self.fd, want, self.out, timeout)
        self.out = b""
        at = rest.index(want) + len(want)
        self.out = rest[at:]
        return rest[:at]

    def command(self, line, enter=b"\r"):
        """Type `line`, then Enter; the answer's text (no echo, no prompt, "\r" removed)."""
        self.type(line.encode() + enter)
        got = self.expect(PROMPT)
        text = got[: -len(PROMPT)].replace(b"\r", b"").decode(errors="replace")
        echo, _, answer = text.partition("\n")
        check(echo.endswith(line), f"the monitor echoed {echo!r} for {line!r}")
        return answer


class Terminal(Monitor, PtyChild):
    """keel on a terminal that is its stdin, stdout and stderr."""

    def __init__(self, *args, env=None):
        self.pid, fd = pty.fork()
        if self.pid == 0:
            os.execve(KEEL, machine(*args), env or os.environ)
        super().__init__(fd)


def stdio_monitor(*extra):
    """-monitor stdio: the banner and the first prompt."""
    t = Terminal("-monitor", "stdio", *extra)
    got = t.expect(PROMPT)
    check(b"keel: note: -monitor stdio has the terminal, so serial0 is on null" in got,
          f"no note about serial0: {got!r}")
    check(re.search(rb"keel \S+ monitor - type 'help' for more information\r+\n", got), f"no banner: {got!r}")
    return t


def quit_monitor(m):
    m.type(b"q\r")
    st = m.status()
    check(st == 0, f"exit status {st} after q, expected 0")


def in_loop(m):
    """Wait until the guest reached its polling loop (it starts at the reset vector); returns its pc."""
    syms = symbols(GUEST, NM)
    end = time.monotonic() + 10
    while True:
        pc = pc_of(m)
        if syms["loop"] <= pc < syms["putc_end"]:
            return pc
        check(time.monotonic() < end, f"pc {pc:#x} not in the loop {syms['loop']:#x}-{syms['putc_end']:#x}")
        time.sleep(0.05)


def pc_of(m):
    regs = m.command("info registers")
    found = re.search(r"^ pc +([0-9a-f]{16})$", regs, re.M)
    check(found, f"no pc in info registers: {regs!r}")
    return int(found.group(1), 16)


# ---- the tests ----


def test_status():
    """info status follows stop and cont (c too)."""
    m = stdio_monitor()
    in_loop(m)
    check(m.command("info status") == "VM status: running\n", "not running at first")
    check(m.command("stop") == "", "stop printed something")
    check(m.command("info status") == "VM status: paused\n", "not paused after stop")
    # Paused means paused: the pc stays put.
    pc = pc_of(m)
    time.sleep(0.1)
    check(pc_of(m) == pc, "the pc moved while paused")
    check(m.command("cont") == "", "cont printed something")
    check(m.command("info status") == "VM status: running\n", "not running after cont")
    m.command("stop")
    check(m.command("c") == "", "c printed something")
    check(m.command("info status") == "VM status: running\n", "not running after c")
    quit_monitor(m)


def test_prelaunch():
    """-S: the machine waits paused (prelaunch) until cont."""
    m = stdio_monitor("-S")
    check(m.command("info status") == "VM status: paused (prelaunch)\n", "not prelaunch with -S")
    check(pc_of(m) == 0x1000, "the pc left the reset vector before cont")
    check(m.command("cont") == "", "cont")
    check(m.command("info status") == "VM status: running\n", "not running after cont")
    in_loop(m)
    quit_monitor(m)


def test_gdbserver():
    """gdbserver DEV starts the gdbstub there (a client can connect); a bad DEV says why; none stops it."""
    m = stdio_monitor()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    got = m.command(f"gdbserver tcp:127.0.0.1:{port}")
    check(got == f"Waiting for gdb connection on device 'tcp:127.0.0.1:{port}'\n", f"gdbserver: {got!r}")
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    c.close()
    got = m.command("gdbserver bogus:x")
    check(got.startswith("Could not open gdbserver on device 'bogus:x': unknown device"), f"bad device: {got!r}")
    check(m.command("gdbserver none") == "Disabled gdbserver\n", "gdbserver none")
    check(m.command("info status") == "VM status: running\n", "not running after gdbserver")
    quit_monitor(m)


def test_registers():
    """info registers shows the pc inside the guest's polling loop, and the UART base in s0."""
    m = stdio_monitor()
    in_loop(m)
    regs = m.command("info registers")
    check(" x8/s0    0000000010000000 " in regs, f"s0 is not the UART base: {regs!r}")
    check(re.search(r"^ pc +0000000080000[0-9a-f]{3}$", m.command("info registers 0"), re.M), "info registers 0")
    check(m.command("info registers -a").startswith("\nCPU#0\n pc "), "info registers -a has no CPU#0 header")
    quit_monitor(m)


def test_smp():
    """-smp 2: info cpus lists both harts; cpu 1 moves the * and info registers to hart 1; -a shows both."""
    m = stdio_monitor("-smp", "2")
    in_loop(m)
    cpus = m.command("info cpus")
    check(re.fullmatch(r"\* CPU #0: pc=0x[0-9a-f]{16} thread_id=[1-9]\d*\n  CPU #1: pc=0x[0-9a-f]{16} thread_id=[1-9]\d*\n", cpus), f"info cpus: {cpus!r}")
    check(" mhartid  0000000000000000\n" in m.command("info registers"), "hart 0's registers")
    check(m.command("cpu 1") == "", "cpu 1")
    cpus = m.command("info cpus")
    check(re.fullmatch(r"  CPU #0: pc=0x[0-9a-f]{16} thread_id=[1-9]\d*\n\* CPU #1: pc=0x[0-9a-f]{16} thread_id=[1-9]\d*\n", cpus), f"after cpu 1: {cpus!r}")
    check(" mhartid  0000000000000001\n" in m.command("info registers"), "hart 1's registers after cpu 1")
    both = m.command("info registers -a")
    check(both.index("\nCPU#0\n") < both.index(" mhartid  0000000000000000\n") < both.index("\nCPU#1\n") <
          both.index(" mhartid  0000000000000001\n"), f"info registers -a: {both!r}")
    check(m.command("cpu 2") == "invalid CPU index\n", "cpu 2 of 2")
    quit_monitor(m)


def test_memory():
    """x and xp with QEMU's formats read the guest's known values; the last format is remembered."""
    a = symbols(GUEST, NM)["magic"]
    m = stdio_monitor()
    in_loop(m)
    tail = 0x005C270A6C65656B  # "keel\n'\\\0" little-endian
    want = f"{a:016x}: 0x0123456789abcdef 0xfedcba9876543210\n{a + 16:016x}: 0xffffffffffffffff 0x{tail:016x}\n"
    got = m.command(f"x/4gx {a:#x}")
    check(got == want, f"x/4gx: {got!r}, expected {want!r}")
    got = m.command(f"xp/2wx {a:#x}")
    check(got == f"{a:016x}: 0x89abcdef 0x01234567\n", f"xp/2wx: {got!r}")
    got = m.command(f"x/2gd {a + 16}")  # decimal address
    check(got == f"{a + 16:016x}: {-1:20d} {tail:20d}\n", f"x/2gd: {got!r}")
    got = m.command(f"x/2hu {a:#x}")
    check(got == f"{a:016x}: 52719 35243\n", f"x/2hu: {got!r}")
    got = m.command(f"x {a:#x}")  # count 1, format and size from the last x
    check(got == f"{a:016x}: 52719\n", f"x after x/2hu: {got!r}")
    got = m.command(f"x/8c {a:#x} + 24")
    check(got == f"{a + 24:016x}: 'k' 'e' 'e' 'l' '\\n' '\\'' '\\\\' '\\x00'\n", f"x/8c: {got!r}")
    got = m.command(f"x/1bo {a:#x}")
    check(got == f"{a:016x}: 0357\n", f"x/1bo: {got!r}")
    got = m.command(f"x/bt {a:#x}")
    check(got == f"{a:016x}: 11101111\n", f"x/bt: {got!r}")
    got = m.command(f"x/2bd {a:#x}+16")
    check(got == f"{a + 16:016x}:  -1  -1\n", f"x/2bd: {got!r}")
    # lui s0, 0x10000 is the first instruction; expressions with registers and arithmetic.
    check(m.command("xp/1wx 0x80000000") == "0000000080000000: 0x10000437\n", "xp of the first instruction")
    check(m.command(f"x/1gx $pc - $pc + ({a:#x} + 0x10) - 8") == f"{a + 8:016x}: 0xfedcba9876543210\n",
          "x with an expression")
    check(m.command(f"x/1gx $s0 - 0x10000000 + {a:#x}") == f"{a:016x}: 0x0123456789abcdef\n", "x with $s0")
    quit_monitor(m)


def test_disassemble():
    """x/10i $pc: ten instructions from the pc on, with their addresses; a known instruction decodes."""
    syms = symbols(GUEST, NM)
    m = stdio_monitor()
    in_loop(m)
    m.command("stop")
    pc = pc_of(m)
    lines = m.command("x/10i $pc").splitlines()
    check(len(lines) == 10, f"x/10i gave {len(lines)} lines: {lines!r}")
    addrs = []
    for line in lines:
        found = re.match(r"^0x([0-9a-f]{16}):  \S", line)
        check(found, f"not an instruction line: {line!r}")
        addrs.append(int(found.group(1), 16))
    check(addrs[0] == pc, f"x/10i $pc starts at {addrs[0]:#x}, pc is {pc:#x}")
    check(all(2 <= b - a <= 4 for a, b in zip(addrs, addrs[1:])), f"addresses {addrs!r}")
    first = m.command(f"x/2i {syms['loop']:#x}").splitlines()
    check(first[0] == f"0x{syms['loop']:016x}:  lbu\tt0,5(s0)", f"x/i loop: {first!r}")
    check(first[1].endswith("andi\tt0,t0,1"), f"x/i loop+4: {first!r}")
    # xp/i reads physical memory: the same here (no MMU).
    check(m.command(f"xp/2i {syms['loop']:#x}").splitlines() == first, "xp/2i differs from x/2i")
    # The format stays 'i' for the next x.
    check(m.command(f"x {syms['loop']:#x}").splitlines() == first[:1], "x after x/i is not one instruction")
    m.command("cont")
    quit_monitor(m)


def test_info():
    """info mtree, qtree, chardev, cpus, version and modules list what the machine has."""
    m = stdio_monitor()
    in_loop(m)
    mtree = m.command("info mtree")
    check(mtree.startswith("address-space: system\n  0000000000000000-ffffffffffffffff (prio 0, container): "
                           "system\n"), f"mtree: {mtree!r}")
    check("\n    0000000080000000-0000000087ffffff (prio 0, ram): dram /machine/dram\n" in mtree, f"mtree: {mtree!r}")
    check("\n    0000000010000000-0000000010000007 (prio 0, i/o): uart0.regs /machine/uart0\n" in mtree,
          f"mtree: {mtree!r}")
    flat = m.command("info mtree -f")
    check(flat.startswith("address-space (flat view): system\n") and
          "\n  0000000080000000-0000000087ffffff (prio 0, ram): dram /machine/dram\n" in flat, f"mtree -f: {flat!r}")
    qtree = m.command("info qtree")
    check(qtree.startswith("bus: main-system-bus\n"), f"qtree: {qtree!r}")
    check('  dev: ns16550a, id "uart0"\n    mmio 0000000010000000/0000000000000008\n' in qtree, f"qtree: {qtree!r}")
    check("    chardev = serial0\n" in qtree and 'dev: riscv64, id "cpu0"' in qtree, f"qtree: {qtree!r}")
    chardev = m.command("info chardev")
    check(chardev == "compat_monitor0: filename=stdio\nserial0: filename=null\n", f"chardev: {chardev!r}")
    cpus = m.command("info cpus")
    check(re.fullmatch(r"\* CPU #0: pc=0x0000000080000[0-9a-f]{3} thread_id=[1-9]\d*\n", cpus), f"cpus: {cpus!r}")
    version = subprocess.run([KEEL, "--version"], capture_output=True, text=True).stdout.split()[2]
    check(m.command("info version") == version + "\n", "info version")
    modules = m.command("info modules")
    check(re.search(r"^ns16550a +device +\S+ +ABI \d+\.\d+  libkeel-device-ns16550a\.so \(loaded\)$", modules, re.M),
          f"modules: {modules!r}")
    check(re.search(r"^htif +device .*libkeel-device-htif\.so$", modules, re.M), f"modules: {modules!r}")
    check(m.command("info plugins") == "no plugins loaded (-plugin loads one)\n", "info plugins without any")
    check(m.command("info block") == "", "info block without drives")
    listing = m.command("info")
    for sub in ("block", "chardev", "cpus", "modules", "mtree", "plugins", "qtree", "registers", "status", "version"):
        check(f"\ninfo {sub} " in "\n" + listing, f"info lacks {sub}: {listing!r}")
    check(m.command("help info") == listing, "help info differs from info")
    helptext = m.command("help")
    for cmd in ("cont|c", "cpu", "gdbserver", "help|?", "info", "quit|q", "stop", "system_powerdown",
                "system_reset", "x", "xp"):
        check(f"\n{cmd} " in "\n" + helptext, f"help lacks {cmd}: {helptext!r}")
    check(m.command("? stop") == "stop  -- pause the VM\n", "help for one command")
    quit_monitor(m)


def test_block():
    """info block names the drive, its image and format, and its size."""
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "disk.img")
        with open(img, "wb") as f:
            f.truncate(1 << 20)
        m = stdio_monitor("-drive", f"file={img},format=raw,if=virtio")
        got = m.command("info block")
        check(got.startswith(f"drive0: {img} (raw)\n"), f"info block: {got!r}")
        check("    Size:             1048576 bytes\n" in got, f"info block: {got!r}")
        quit_monitor(m)


def test_plugins():
    """info plugins lists a -plugin with its arguments."""
    m = stdio_monitor("-plugin", f"{PLUGIN},inline=on")
    got = m.command("info plugins")
    check(got == f"{PLUGIN} (inline=on)\n", f"info plugins: {got!r}")
    quit_monitor(m)


def test_errors():
    """Mistakes get an answer, never a crash, and the VM keeps running."""
    m = stdio_monitor()
    cases = {
        "bogus": "unknown command: 'bogus'\n",
        "info bogus": "unknown command: 'info bogus'\n",
        "help bogus": "unknown command: 'bogus'\n",
        "x/4z 0": "invalid char in format: 'z'\n",
        "x": "x: address expected\n",
        "xp/4": "xp: address expected\n",
        "x/4gx 0x10": "0000000000000010: Cannot access memory\n",
        "xp/2gx 0xfffffffffffffff8": "fffffffffffffff8: Cannot access memory\n",
        "x $foo": "unknown register '$foo'\n",
        "x 0x10 +": "address expected\n",
        "x (1": "')' expected\n",
        "x 12abc": "invalid number '12abc'\n",
        "x 99999999999999999999999": "number too large: 99999999999999999999999\n",
        "cpu 3": "invalid CPU index\n",
        "cpu x": "invalid CPU index\n",
        "info registers 7": "invalid vcpu '7' (0 to 0, or -a)\n",
        "x/65537x 0": "count out of range: 65537 (at most 65536)\n",
    }
    for line, want in cases.items():
        got = m.command(line)
        check(got == want, f"{line!r}: {got!r}, expected {want!r}")
    check(m.command("cpu 0") == "", "cpu 0")
    check(m.command("info status") == "VM status: running\n", "not running after the errors")
    quit_monitor(m)


def test_quit():
    """q and quit end keel with status 0."""
    quit_monitor(stdio_monitor())
    m = stdio_monitor()
    m.type(b"quit\r")
    check(m.status() == 0, "exit status after quit")


def test_line_editing():
    """Backspace, Ctrl-U, Ctrl-C, Enter as CR, LF or CR LF, and the arrow keys' history (on -nographic's
    C-a c monitor: there Ctrl-C reaches keel as a key, as in QEMU)."""
    m = Terminal("-nographic")
    m.expect(b"hmp ready")
    m.type(CTRL_A + b"c")
    m.expect(PROMPT)
    m.type(b"infx\x7fo stat")
    check(m.command("us") == "VM status: running\n", "backspace")
    m.type(b"garbage\x15")
    m.expect(PROMPT + b"\x1b[K")  # the line redrawn empty
    check(m.command("info version").count("\n") == 1, "Ctrl-U")
    m.type(b"more garbage\x03")
    m.expect(PROMPT + b"\x1b[K")
    check(m.command("info cpus").startswith("* CPU #0"), "Ctrl-C")
    check(m.command("info status", enter=b"\n") == "VM status: running\n", "LF")
    check(m.command("info status", enter=b"\r\n") == "VM status: running\n", "CR LF")
    extra = drain(m.fd, 0.3)
    check(PROMPT not in extra, f"CR LF gave two Enters: {extra!r}")
    # Up twice: "info cpus" is two entries back ("info status" was entered twice, kept once).
    m.type(b"\x1b[A\x1b[A\r")
    m.expect(b"info cpus\x1b[K")  # the line shows the entry
    m.expect(b"\n* CPU #0: pc=")
    m.expect(PROMPT)
    m.type(b"\x1b[A\x1b[B\x1b[B\r")  # up, then down past the end: an empty line, Enter runs nothing
    got = drain(m.fd, 0.5)
    check(re.fullmatch(rb"\r\(qemu\) info cpus\x1b\[K\r\(qemu\) \x1b\[K\r+\n\(qemu\) ", got),
          f"down past the history: {got!r}")
    quit_monitor(m)


def test_nographic():
    """-nographic: C-a c switches to the monitor and back; serial output continues; system_reset restarts
    the guest (its banner again); the banner is shown once."""
    t = Terminal("-nographic")
    t.expect(b"hmp ready")
    t.type(b"abc")
    t.expect(b"abc")
    t.type(CTRL_A + b"c")
    got = t.expect(PROMPT)
    check(re.search(rb"keel \S+ monitor - type 'help' for more information", got), f"no banner: {got!r}")
    check(t.command("info status") == "VM status: running\n", "info status")
    check(t.command("info chardev") == "serial0: filename=stdio (mux)\n", "info chardev")
    t.type(b"system_reset\r")
    # The guest restarts (its output shows while the monitor has the keyboard); the prompt may come first.
    got = t.expect(b"hmp ready")
    if PROMPT not in got:
        t.expect(PROMPT)
    t.type(CTRL_A + b"c")
    time.sleep(0.2)
    t.type(b"xyz")  # to the guest again, which echoes it
    got = t.expect(b"xyz")
    check(PROMPT not in got, f"typing went to the monitor: {got!r}")
    t.type(CTRL_A + b"c")
    got = t.expect(PROMPT)
    check(b"monitor - type 'help'" not in got, f"the banner came twice: {got!r}")
    check(t.command("stop") == "", "stop")
    check(t.command("info status") == "VM status: paused\n", "paused")
    check(t.command("cont") == "", "cont")
    t.type(CTRL_A + b"x")
    check(t.status() == 0, "exit status after C-a x")


def test_mon_chardev():
    """-chardev stdio,mux=on + -serial chardev: + -mon chardev=: the same C-a c monitor; C-a h says so."""
    t = Terminal("-chardev", "stdio,id=con,mux=on", "-serial", "chardev:con", "-mon", "chardev=con,mode=readline")
    t.expect(b"hmp ready")
    t.type(CTRL_A + b"h")
    t.expect(b"C-a c    switch between console and monitor")
    t.type(CTRL_A + b"c")
    t.expect(PROMPT)
    check(t.command("info chardev") == "con: filename=stdio (mux)\n", "info chardev")
    t.type(b"q\r")
    check(t.status() == 0, "exit status after q")


def test_socket():
    """-monitor unix:PATH,server=on,wait=off: owner-only socket; each client gets the banner; LF ends lines."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "mon.sock")
        with running(machine("-monitor", f"unix:{path},server=on,wait=off", "-serial", "null"),
                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
            end = time.monotonic() + 10
            while not os.path.exists(path):
                check(time.monotonic() < end and p.poll() is None, "no monitor socket")
                time.sleep(0.05)
            check(os.stat(path).st_mode & 0o777 == 0o600, f"socket mode {os.stat(path).st_mode & 0o777:o}")
            for _ in range(2):
                s = socket.socket(socket.AF_UNIX)
                s.connect(path)
                m = Monitor(s.fileno())
                got = m.expect(PROMPT)
                check(re.fullmatch(rb"keel \S+ monitor - type 'help' for more information\r\n\(qemu\) ", got),
                      f"banner {got!r}")
                check(m.command("info status", enter=b"\n") == "VM status: running\n", "info status")
                s.close()
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            m = Monitor(s.fileno())
            m.expect(PROMPT)
            m.type(b"q\n")
            check(p.wait(10) == 0, "exit status after q")
            check(not os.path.exists(path), "the socket file stayed")


def test_garbage():
    """Random keys, escape sequences, binary bytes and half expressions on a socket monitor: keel never
    crashes, still answers and the VM still runs; q ends it with status 0."""
    import random
    import threading
    rng = random.Random(7)
    pieces = [b"x/", b"x/99", b"x/10i ", b"xp/gx ", b"$pc", b"$", b"(", b")", b"+", b"-", b"*", b"info ",
              b"registers", b"cpu ", b"help ", b"\x1b[A", b"\x1b[B", b"\x1b", b"\x7f", b"\x15", b"\x03", b"\r",
              b"\n", b"0x", b"fff", b"99999999999999999999", b"/", b" ", b"mtree", b"qtree", b"stop", b"cont"]
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "mon.sock")
        with running(machine("-monitor", f"unix:{path},server=on,wait=off", "-serial", "null"),
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as p:
            end = time.monotonic() + 10
            while not os.path.exists(path):
                check(time.monotonic() < end and p.poll() is None, "no monitor socket")
                time.sleep(0.05)
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            got = bytearray()

            def reader():
                while True:
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        return
                    got.extend(chunk)

            threading.Thread(target=reader, daemon=True).start()
            for _ in range(2000):
                s.sendall(b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 8))))
                if rng.random() < 0.01:
                    s.sendall(bytes(rng.randrange(256) for _ in range(5000)))
            s.sendall(b"\x15\rcont\rinfo status\r")
            end = time.monotonic() + 30
            while b"VM status: running\r\n(qemu) " not in got[-100:]:
                check(time.monotonic() < end and p.poll() is None, f"no answer after the garbage: {bytes(got[-300:])!r}")
                time.sleep(0.05)
            s.sendall(b"q\r")
            st = p.wait(20)
            check(st == 0, f"exit status {st}; stderr {p.stderr.read()!r}")


def test_pty():
    """-monitor pty: the monitor greets whoever opens the pty."""
    with running(machine("-monitor", "pty", "-serial", "null"), stdin=subprocess.DEVNULL,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
        err = read_until(p.stderr.fileno(), b")\n")
        found = re.search(rb"char device redirected to (/dev/pts/\d+) \(label compat_monitor0\)\n", err)
        check(found, f"stderr {err!r}")
        fd = os.open(found.group(1), os.O_RDWR | os.O_NOCTTY)
        m = Monitor(fd)
        m.expect(PROMPT)
        check(m.command("info status") == "VM status: running\n", "info status")
        m.type(b"q\r")
        check(p.wait(10) == 0, "exit status after q")


def test_options():
    """Bad monitor options end keel with status 1 and a message naming the option."""
    cases = [
        (["-nographic", "-monitor", "stdio"], "-monitor stdio: cannot use stdio by multiple character devices"),
        (["-monitor", "bogus"], "keel: -monitor bogus: unknown chardev backend 'bogus'"),
        (["-mon", "chardev=nope"], "no chardev with id 'nope'"),
        (["-chardev", "null,id=n", "-mon", "chardev=n,mode=fast"], "-mon chardev=n,mode=fast: invalid mode 'fast'"),
        (["-chardev", "null,id=n", "-mon", "chardev=n,colour=red"], "unknown option 'colour'"),
        # A chardev a device already reads is not taken over (QEMU: "Device 'ID' is in use").
        (["-chardev", "null,id=n", "-serial", "chardev:n", "-mon", "chardev=n"],
         "keel: -mon chardev=n: Device 'n' is in use (give its -chardev mux=on to share it with the monitor)"),
        (["-chardev", "null,id=n", "-serial", "chardev:n", "-monitor", "chardev:n"],
         "keel: -monitor chardev:n: Device 'n' is in use"),
    ]
    for args, want in cases:
        r = subprocess.run(machine(*args), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
        check(r.returncode == 1, f"{args}: exit status {r.returncode}; stderr {r.stderr!r}")
        check(want in r.stderr, f"{args}: stderr {r.stderr!r}, expected {want!r}")


def main():
    global KEEL, GUEST, NM, PLUGIN
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    name, KEEL, GUEST, NM, PLUGIN = sys.argv[1:]
    test = globals().get("test_" + name.replace("-", "_"))
    if not test:
        sys.exit(f"no test {name!r}")
    try:
        test()
    except Failure as e:
        print(f"hmp.{name}: FAILED: {e}")
        sys.exit(1)
    print(f"hmp.{name}: ok")


if __name__ == "__main__":
    main()
