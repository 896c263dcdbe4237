#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""gdb against a running keel: gdb-multiarch --batch scenarios, and a raw remote-protocol client.

Usage: gdb_test.py --keel KEEL --accel ACCEL --elf ELF --scenario NAME [--gdb gdb-multiarch]

Scenarios (each starts its own keel):
  break    -S: the guest has not run; break at a symbol, registers and memory, stepi over a compressed
           instruction and an ecall, a watchpoint, `monitor info registers`, detach: the guest exits 7
  smp      -smp 2: two threads, thread 2 is hart 1 (its a0 and mhartid); kill ends keel
  exit     gdb stays attached until the guest exits: gdb reports exit code 7 (the W packet)
  attach   gdb attaches to a running guest (which stops), writes a variable, detach (gdb --batch cannot
           send Ctrl-C; `raw` checks the interrupt)
  interrupt  interactive gdb on a pty: continue, Ctrl-C stops the guest (SIGINT), detach
  raw      the protocol by hand over a unix socket: acks, bad checksums, unknown and malformed packets,
           a second client refused, target description, no-ack mode, interrupt, breakpoints set while
           running, steps into a trap handler, write/read/access watchpoints, memory under Sv39, detach
  gdbserver  HMP's gdbserver command starts the stub; qRcmd
"""
import argparse
import atexit
import os
import re
import socket
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from testlib import free_port, symbols  # noqa: E402


def fail(msg, *texts):
    print("FAIL: " + msg)
    for t in texts:
        print("----\n" + t)
    sys.exit(1)


def start_keel(args, extra, gdb_dev):
    cmd = [args.keel, "-M", "spike", "-accel", args.accel, "-bios", "none", "-kernel", args.elf, "-nographic",
           "-gdb", gdb_dev] + extra
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # A failing check leaves no keel behind.
    atexit.register(lambda: proc.poll() is None and proc.kill())
    return proc


def wait_listening(proc, check):
    for _ in range(200):
        if proc.poll() is not None:
            out, err = proc.communicate()
            fail("keel exited with %d before gdb connected" % proc.returncode, out, err)
        if check():
            return
        time.sleep(0.05)
    proc.kill()
    fail("keel's gdbstub never listened")


def tcp_listening(port):
    def check():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False
    return check


def finish_keel(proc, status, timeout=30):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        fail("keel did not exit after the debugger left", out, err)
    if proc.returncode != status:
        fail("keel exited with %d, expected %d" % (proc.returncode, status), out, err)
    return out, err


def run_gdb(args, port, commands, expect):
    """Run gdb --batch with `commands`; each regex of `expect` must match, in order, in its output."""
    script = "set pagination off\nset confirm off\nset width 0\ntarget remote 127.0.0.1:%d\n" % port
    script += "\n".join(commands) + "\n"
    with tempfile.NamedTemporaryFile("w", suffix=".gdb", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        r = subprocess.run([args.gdb, "--batch", "-nx", "-x", path, args.elf], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
    except subprocess.TimeoutExpired as e:
        fail("gdb timed out", script, str(e.stdout), str(e.stderr))
    finally:
        os.unlink(path)
    text = r.stdout
    pos = 0
    for rx in expect:
        m = re.compile(rx, re.M).search(text, pos)
        if not m:
            fail("gdb output lacks /%s/ (after offset %d)" % (rx, pos), script, text)
        pos = m.end()
    return text


def scenario_break(args):
    port = free_port()
    proc = start_keel(args, ["-S"], "tcp::%d" % port)
    wait_listening(proc, tcp_listening(port))
    run_gdb(args, port, [
        # -S: nothing ran yet: the pc is the entry point and mtvec still 0.
        "info symbol $pc",
        "p/x $mtvec",
        "set var go = 1",
        "break check_point",
        "continue",
        "info registers a0",
        "x/4gx &array",
        "break *c_insn",
        "continue",
        "info symbol $pc",
        "stepi",
        "info symbol $pc",
        "stepi",
        "info symbol $pc",
        "p/x $mcause",
        "info symbol $mepc",
        "delete",
        "watch watched",
        "continue",
        "info symbol $pc",
        "delete",
        "monitor info registers",
        "detach",
    ], [
        r"^_start in section \.text",
        r"^\$1 = 0x0$",
        r"Breakpoint 1 at 0x[0-9a-f]+: file .*gdbtest\.c",
        r"Breakpoint 1, check_point \(magic=18369614218089748088\)",
        r"^a0\s+0xfeedface12345678",
        r"<array>:\s+0x1111111111111111\s+0x2222222222222222",
        r"<array\+16>:\s+0x3333333333333333\s+0x4444444444444444",
        r"Breakpoint 2, c_insn \(\) at .*start\.S",
        r"^c_insn in section \.text",
        # gdb steps a compressed instruction: 2 bytes on.
        r"^ecall_insn in section \.text",
        # gdb (13) steps over an ecall as over a call: it stops after the handler returned, which
        # moved mepc past the ecall (the stub's own step into the handler is checked by `raw`).
        r"^ecall_insn \+ 4 in section \.text",
        r"^\$2 = 0xb$",
        r"^ecall_insn \+ 4 in section \.text",
        r"Hardware watchpoint 3: watched",
        # gdb steps one instruction past the store (RISC-V watchpoints are not steppable for gdb): the
        # ret of store_word, back in main after the call (the stub's own pc is checked by `raw`).
        r"Hardware watchpoint 3: watched\s+Old value = 0\s+New value = 85\s+main \(\) at .*gdbtest\.c:\d+\s+\d+\s+if \(paging\)",
        r"^main \+ \d+ in section \.text",
        r"^ pc\s+000000008000[0-9a-f]{4}$",
        # store_word's first argument is still in a0.
        r" x10/a0\s+%016x " % symbols(args.elf)["watched"],
        r"\[Inferior 1 \(Remote target\) detached\]",
    ])
    finish_keel(proc, 7)


def scenario_smp(args):
    port = free_port()
    proc = start_keel(args, ["-S", "-smp", "2"], "tcp::%d" % port)
    wait_listening(proc, tcp_listening(port))
    run_gdb(args, port, [
        "set var go = 1",
        "set var n_harts = 2",
        "break check_point",
        "continue",
        "info threads",
        "thread 2",
        "p/x $a0",
        "p $mhartid",
        "info symbol $pc",
        "thread 1",
        "p $mhartid",
        "p/x $a0",
        "kill",
    ], [
        r"Breakpoint 1, check_point",
        r"^\* 1\s+Thread 1 .*check_point",
        r"^  2\s+Thread 2 ",
        r"Switching to thread 2",
        r"^\$1 = 0x5ec1$",
        r"^\$2 = 1$",
        r"^hart_loop( \+ \d+)? in section \.text",
        r"Switching to thread 1",
        r"^\$3 = 0$",
        r"^\$4 = 0xfeedface12345678$",
        r"\[Inferior 1 \(Remote target\) killed\]",
    ])
    # gdb's kill ends keel, as QEMU.
    finish_keel(proc, 0)


def scenario_attach(args):
    port = free_port()
    proc = start_keel(args, [], "tcp:127.0.0.1:%d" % port)
    wait_listening(proc, tcp_listening(port))
    time.sleep(0.3)
    run_gdb(args, port, [
        # Attaching stopped the guest in its wait loop.
        "info symbol $pc",
        "p go",
        "p spins > 0",
        "set var go = 1",
        "detach",
    ], [
        r"^(main|spin_once)( \+ \d+)? in section \.text",
        r"^\$1 = 0$",
        r"^\$2 = 1$",
        r"\[Inferior 1 \(Remote target\) detached\]",
    ])
    finish_keel(proc, 7)


class Raw:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(10)
        self.s.connect(path)
        self.buf = b""
        self.ack = True

    def send(self, data):
        self.s.sendall(data)

    def packet(self, body):
        if isinstance(body, str):
            body = body.encode()
        return b"$" + body + b"#%02x" % (sum(body) & 0xff)

    def read(self, n=1):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                fail("the stub closed the connection; got so far: %r" % self.buf)
            self.buf += d
        r, self.buf = self.buf[:n], self.buf[n:]
        return r

    def reply(self):
        """One packet from the stub (acknowledged if acks are on), its checksum verified."""
        c = self.read()
        while c == b"+":
            c = self.read()
        if c != b"$":
            fail("expected a packet, got %r" % (c + self.buf))
        body = b""
        while True:
            c = self.read()
            if c == b"#":
                break
            body += c
        cs = self.read(2)
        if int(cs, 16) != sum(body) & 0xff:
            fail("bad checksum from the stub on %r" % body)
        if self.ack:
            try:
                self.send(b"+")
            except OSError:
                pass  # the stub may be gone already (after D, k)
        return body.decode("latin-1")

    def ask(self, body, expect=None, regex=None):
        self.send(self.packet(body))
        if self.ack:
            a = self.read()
            if a != b"+":
                fail("%r: expected the ack '+', got %r" % (body, a))
        r = self.reply()
        if expect is not None and r != expect:
            fail("%r: expected %r, got %r" % (body, expect, r))
        if regex is not None and not re.fullmatch(regex, r, re.S):
            fail("%r: expected /%s/, got %r" % (body, regex, r[:300]))
        return r


def scenario_raw(args):
    syms = symbols(args.elf)
    d = tempfile.mkdtemp()
    path = os.path.join(d, "gdb.sock")
    qmp_path = os.path.join(d, "qmp.sock")
    proc = start_keel(args, ["-S", "-qmp", "unix:%s,server=on,wait=off" % qmp_path], "unix:%s,server=on,wait=off" % path)
    wait_listening(proc, lambda: os.path.exists(path))
    mode = os.stat(path).st_mode
    if not stat.S_ISSOCK(mode) or stat.S_IMODE(mode) != 0o600:
        fail("the socket %s has mode %o, expected an owner-only socket (600)" % (path, stat.S_IMODE(mode)))
    g = Raw(path)
    g.ask("?", regex=r"T05thread:1;")
    # A second debugger is turned away while one is attached.
    s2 = socket.socket(socket.AF_UNIX)
    s2.settimeout(5)
    s2.connect(path)
    try:
        if s2.recv(16) != b"":
            fail("a second client got data")
    except socket.timeout:
        fail("a second client was neither refused nor closed")
    s2.close()
    # Bad checksum: NAK, nothing else.
    g.send(b"$?#00")
    if g.read() != b"-":
        fail("a bad checksum was not answered with '-'")
    g.send(b"$?#zz")
    if g.read() != b"-":
        fail("a non-hex checksum was not answered with '-'")
    # A NAK from us: the last packet again.
    g.ask("qC", "QC1")
    g.send(b"-")
    if g.reply() != "QC1":
        fail("a '-' did not bring the last packet again")
    # Unknown packets: empty replies.
    g.ask("vFrobnicate", "")
    g.ask("qFrobnicate", "")
    g.ask("!", "")
    # Malformed arguments.
    g.ask("mzz,4", "E01")
    g.ask("m80000000", "E01")
    g.ask("m11112222333344445,4", "E01")
    g.ask("M80000000,4:zz", "E01")
    g.ask("M80000000,4:00", "E01")
    g.ask("Z0,zz,4", "E01")
    g.ask("Z9,80000000,4", "")
    g.ask("Hgzz", "E22")
    g.ask("Hg5", "E22")
    g.ask("T5", "E22")
    g.ask("T1", "OK")
    g.ask("p99999", "E14")
    g.ask("pzz", "E14")
    g.ask("Pzz=00", "E01")
    g.ask("qRcmd,zz", "E01")
    g.ask("vCont;x", "E22")
    g.ask("vCont;s:9", "E22")
    # Memory that is not there.
    g.ask("m0,4", "E14")
    # A packet far too long: NAK, and the stub still answers.
    g.send(b"$" + b"a" * 300000 + b"#00")
    if g.read() != b"-":
        fail("an overlong packet was not answered with '-'")
    g.ask("qAttached", "1")
    # Features and the target description.
    r = g.ask("qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386")
    for f in ["PacketSize=", "qXfer:features:read+", "vContSupported+", "QStartNoAckMode+"]:
        if f not in r:
            fail("qSupported lacks %s: %r" % (f, r))
    g.ask("vCont?", "vCont;c;C;s;S")
    def xfer(annex, chunk):
        text = ""
        while True:
            r = g.ask("qXfer:features:read:%s:%x,%x" % (annex, len(text), chunk))
            text += r[1:]
            if r[0] == "l":
                return text
            if r[0] != "m" or len(r) == 1:
                fail("qXfer %s: bad reply %r" % (annex, r))

    xml = xfer("target.xml", 0x100)
    if "<architecture>riscv:rv64</architecture>" not in xml or "riscv-64bit-csr.xml" not in xml:
        fail("target.xml is wrong", xml)
    cpu = xfer("riscv-64bit-cpu.xml", 0x3fff)
    for reg in ['name="zero" bitsize="64" regnum="0"', 'name="a0" bitsize="64" regnum="10"',
                'name="pc" bitsize="64" regnum="32"']:
        if reg not in cpu:
            fail("riscv-64bit-cpu.xml lacks %s" % reg, cpu)
    csr = xfer("riscv-64bit-csr.xml", 0x3fff)
    if 'name="mstatus" bitsize="64" regnum="833"' not in csr or 'name="mhartid"' not in csr:
        fail("riscv-64bit-csr.xml lacks mstatus (65 + 0x300) or mhartid", csr)
    g.ask("qXfer:features:read:nosuch.xml:0,100", "E00")
    g.ask("qXfer:features:read:target.xml:zz", "E00")
    # Registers: 33 of 8 bytes; the pc is the entry point.
    regs = g.ask("g", regex=r"[0-9a-f]{528}")
    pc = int.from_bytes(bytes.fromhex(regs[32 * 16:33 * 16]), "little")
    if pc != syms["_start"]:
        fail("pc 0x%x, expected _start 0x%x" % (pc, syms["_start"]))
    g.ask("p20", regs[32 * 16:33 * 16])
    g.ask("p%x" % (65 + 0xf14), "0000000000000000")  # mhartid
    # Writes: a register and memory, read back.
    g.ask("P5=efbeadde00000000", "OK")
    g.ask("p5", "efbeadde00000000")
    # G writes them all: t1 (x6) changed, the others as they were.
    regs = g.ask("g")
    g.ask("G" + regs[:6 * 16] + "0123456789abcdef" + regs[7 * 16:], "OK")
    g.ask("p6", "0123456789abcdef")
    g.ask("p5", "efbeadde00000000")
    g.ask("Gzz", "E01")
    arr = syms["array"]
    g.ask("m%x,10" % arr, "1111111111111111" + "2222222222222222")
    g.ask("X%x,2:" % arr + "\x7d\x03\x7d\x04", "OK")  # escaped '#' and '$'... as '}' ^ 0x20
    g.ask("m%x,2" % arr, "2324")
    g.ask("M%x,8:1111111111111111" % arr, "OK")
    # No-ack mode from here.
    g.ask("QStartNoAckMode", "OK")
    g.ack = False
    g.ask("qC", "QC1")
    # Run (go = 1 would end the program; leave it 0 so the guest spins), then interrupt with Ctrl-C.
    g.send(g.packet("vCont;c"))
    time.sleep(0.3)
    if proc.poll() is not None:
        fail("keel exited while running")
    g.send(b"\x03")
    r = g.reply()
    if not re.fullmatch(r"T02thread:1;", r):
        fail("Ctrl-C: expected T02thread:1;, got %r" % r)
    # The guest did run: spins counted.
    spins = int.from_bytes(bytes.fromhex(g.ask("m%x,8" % syms["spins"])), "little")
    if spins == 0:
        fail("the guest did not run between vCont;c and the interrupt")
    # A QMP `stop` while gdb waits for the guest: gdb gets SIGINT's stop reply, as from QEMU.
    g.send(g.packet("vCont;c"))
    time.sleep(0.2)
    q = socket.socket(socket.AF_UNIX)
    q.connect(qmp_path)
    qf = q.makefile("rb")
    qf.readline()  # greeting
    for cmd in ("qmp_capabilities", "stop"):
        q.sendall(b'{"execute": "%s"}\n' % cmd.encode())
        while b'"return"' not in qf.readline():
            pass
    r = g.reply()
    if not re.fullmatch(r"T02thread:1;", r):
        fail("QMP stop while gdb waits: expected T02thread:1;, got %r" % r)
    q.close()
    # A breakpoint set while the guest runs stops it in code it has been running all along.
    g.send(g.packet("vCont;c"))
    time.sleep(0.3)
    g.ask("Z0,%x,2" % syms["spin_once"], "OK")
    r = g.reply()
    if r != "T05thread:1;":
        fail("a breakpoint set while running: expected T05thread:1;, got %r" % r)
    g.ask("p20", syms["spin_once"].to_bytes(8, "little").hex())
    g.ask("z0,%x,2" % syms["spin_once"], "OK")
    # An access watchpoint (Z4) on `go`, which the wait loop reads: it fires on that read.
    g.ask("Z4,%x,8" % syms["go"], "OK")
    g.ask("vCont;c", "T05awatch:%x;thread:1;" % syms["go"])
    g.ask("z4,%x,8" % syms["go"], "OK")
    # A breakpoint on check_point, go = 1, continue: the stop names it.
    g.ask("Z0,%x,2" % syms["check_point"], "OK")
    g.ask("M%x,8:0100000000000000" % syms["go"], "OK")
    g.ask("vCont;c", "T05thread:1;")
    regs = g.ask("g")
    pc = int.from_bytes(bytes.fromhex(regs[32 * 16:33 * 16]), "little")
    if pc != syms["check_point"]:
        fail("stopped at 0x%x, expected check_point 0x%x" % (pc, syms["check_point"]))
    # A single step moves on by one instruction.
    g.ask("vCont;s:1", "T05thread:1;")
    regs = g.ask("g")
    pc2 = int.from_bytes(bytes.fromhex(regs[32 * 16:33 * 16]), "little")
    if pc2 not in (pc + 2, pc + 4):
        fail("a step went from 0x%x to 0x%x" % (pc, pc2))
    g.ask("z0,%x,2" % syms["check_point"], "OK")
    # Z1 (a hardware breakpoint) on the compressed instruction; steps: 2 bytes on, then the ecall lands in
    # the trap handler with mcause 11 (ecall from M) and mepc at the ecall.
    g.ask("Z1,%x,2" % syms["c_insn"], "OK")
    g.ask("vCont;c", "T05thread:1;")
    g.ask("p20", (syms["c_insn"]).to_bytes(8, "little").hex())
    g.ask("z1,%x,2" % syms["c_insn"], "OK")
    g.ask("vCont;s:1", "T05thread:1;")
    g.ask("p20", (syms["c_insn"] + 2).to_bytes(8, "little").hex())
    g.ask("s", "T05thread:1;")
    g.ask("p20", (syms["trap_entry"]).to_bytes(8, "little").hex())
    g.ask("p%x" % (65 + 0x342), (11).to_bytes(8, "little").hex())
    g.ask("p%x" % (65 + 0x341), (syms["ecall_insn"]).to_bytes(8, "little").hex())
    # A write watchpoint on `watched`: the stop names it, the pc is after the store.
    g.ask("Z2,%x,8" % syms["watched"], "OK")
    g.ask("vCont;c", "T05watch:%x;thread:1;" % syms["watched"])
    regs = g.ask("g")
    pc = int.from_bytes(bytes.fromhex(regs[32 * 16:33 * 16]), "little")
    if pc != syms["after_store"]:
        fail("the watchpoint stopped at 0x%x, expected after_store 0x%x" % (pc, syms["after_store"]))
    g.ask("z2,%x,8" % syms["watched"], "OK")
    # A read watchpoint (Z3) on `paging`, which main reads next; then an access one (Z4) on `n_harts`,
    # which nothing touches any more (it must not fire).
    g.ask("M%x,8:0100000000000000" % syms["paging"], "OK")
    g.ask("Z4,%x,8" % syms["n_harts"], "OK")
    g.ask("Z3,%x,4" % (syms["paging"] + 4), "OK")
    g.ask("vCont;c", regex=r"T05rwatch:%x;thread:1;" % (syms["paging"] + 4))
    g.ask("z3,%x,4" % (syms["paging"] + 4), "OK")
    # Under Sv39 in S mode, memory is read at virtual addresses through the hart's page tables, without
    # setting the A/D bits of the PTE used; an unmapped address is an error.
    g.ask("Z0,%x,2" % syms["in_s_mode"], "OK")
    g.ask("vCont;c", "T05thread:1;")
    g.ask("p1041", "0100000000000000")  # priv: S
    g.ask("m%x,10" % (0x40000000 + syms["array"] - 0x80000000), "1111111111111111" + "2222222222222222")
    g.ask("m%x,8" % (syms["array"] + 16), "3333333333333333")
    g.ask("mc0000000,8", "E14")
    g.ask("m%x,8" % (syms["page_root"] + 8), ((0x80000 << 10) | 0x0f).to_bytes(8, "little").hex())
    g.ask("z0,%x,2" % syms["in_s_mode"], "OK")
    g.ask("z4,%x,8" % syms["n_harts"], "OK")
    # Detach: the points go, the guest finishes.
    g.send(g.packet("D"))
    if g.reply() != "OK":
        fail("D was not answered OK")
    finish_keel(proc, 7)
    if os.path.exists(path):
        fail("the socket file %s was left behind" % path)


def scenario_interrupt(args):
    """gdb (interactive, on a pty) continues, then Ctrl-C stops the spinning guest with SIGINT."""
    import pty
    import select
    port = free_port()
    proc = start_keel(args, ["-S"], "tcp::%d" % port)
    wait_listening(proc, tcp_listening(port))
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(args.gdb, [args.gdb, "-nx", "-q", "-ex", "set pagination off", "-ex", "set confirm off",
                             "-ex", "target remote 127.0.0.1:%d" % port, args.elf])
    seen = ""

    def expect(rx, timeout=20):
        nonlocal seen
        end = time.time() + timeout
        while not re.search(rx, seen):
            left = end - time.time()
            if left <= 0:
                os.kill(pid, 9)
                fail("gdb never printed /%s/" % rx, seen)
            r, _, _ = select.select([fd], [], [], left)
            if r:
                try:
                    seen += os.read(fd, 4096).decode("utf-8", "replace")
                except OSError:
                    break
        m = re.search(rx, seen)
        seen = seen[m.end():]

    def say(line):
        os.write(fd, (line + "\n").encode())

    expect(r"\(gdb\) ")
    say("continue")
    expect(r"Continuing\.")
    time.sleep(0.5)
    os.write(fd, b"\x03")
    expect(r"received signal SIGINT")
    expect(r"\(gdb\) ")
    say("p spins > 0")
    expect(r"\$1 = 1")
    say("set var go = 1")
    say("detach")
    expect(r"\[Inferior 1 \(Remote target\) detached\]")
    say("quit")
    os.waitpid(pid, 0)
    finish_keel(proc, 7)


def scenario_gdbserver(args):
    """HMP's gdbserver starts the stub later; a bad device is refused with QEMU's message."""
    syms = symbols(args.elf)
    d = tempfile.mkdtemp()
    path = os.path.join(d, "gdb.sock")
    cmd = [args.keel, "-M", "spike", "-accel", args.accel, "-bios", "none", "-kernel", args.elf, "-serial", "null",
           "-monitor", "stdio", "-S"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    atexit.register(lambda: proc.poll() is None and proc.kill())
    proc.stdin.write("gdbserver bogus:1\n")
    proc.stdin.write("gdbserver unix:%s,server=on,wait=off\n" % path)
    proc.stdin.flush()
    wait_listening(proc, lambda: os.path.exists(path))
    g = Raw(path)
    g.ask("?", regex=r"T05thread:1;")
    out = g.ask("qRcmd," + b"info status".hex(), regex=r"O[0-9a-f]+")
    if bytes.fromhex(out[1:]).decode() != "VM status: paused (prelaunch)\n":
        fail("monitor info status via qRcmd: got %r" % bytes.fromhex(out[1:]))
    if g.reply() != "OK":
        fail("qRcmd did not end with OK")
    g.ask("M%x,8:0100000000000000" % syms["go"], "OK")
    g.send(g.packet("D"))
    g.read()
    if g.reply() != "OK":
        fail("D was not answered OK")
    out, err = finish_keel(proc, 7)
    for want in ["Could not open gdbserver on device 'bogus:1'", "Waiting for gdb connection on device 'unix:"]:
        if want not in out:
            fail("the monitor did not print %r" % want, out, err)


def scenario_exit(args):
    """gdb stays attached while the guest finishes: it hears the exit status (W packet), as from QEMU."""
    port = free_port()
    proc = start_keel(args, [], "tcp:127.0.0.1:%d" % port)
    wait_listening(proc, tcp_listening(port))
    run_gdb(args, port, [
        "set var go = 1",
        "continue",
    ], [
        r"\[Inferior 1 \(Remote target\) exited with code 07\]",
    ])
    finish_keel(proc, 7)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--keel", required=True)
    p.add_argument("--accel", required=True)
    p.add_argument("--elf", required=True)
    p.add_argument("--scenario", required=True, choices=["break", "smp", "attach", "interrupt", "raw", "gdbserver", "exit"])
    p.add_argument("--gdb", default="gdb-multiarch")
    args = p.parse_args()
    globals()["scenario_" + args.scenario](args)
    print("PASS")


if __name__ == "__main__":
    main()
