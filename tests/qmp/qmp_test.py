#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# End-to-end QMP tests: a real client over keel's unix (and tcp) QMP socket, against the spin.S guest.
"""usage: qmp_test.py TEST KEEL SPIN_ELF

Each TEST starts keel on riscv-virt running spin.S (which counts forever and prints a '.' now and then),
talks QMP to it and checks QEMU's replies, events and errors.
"""
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from testlib import free_port, running  # noqa: E402

KEEL = SPIN = None
PATTERN_ADDR = 0x80001000  # spin.S `pattern`: 256 bytes, byte i = (7 * i + 3) & 0xff
COUNTER_ADDR = 0x80002000  # spin.S `counter`: a dword counting up while the guest runs
PATTERN = bytes((7 * i + 3) & 0xFF for i in range(256))


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def eq(got, want, what=""):
    if got != want:
        raise Failure(f"{what}: got {got!r}, want {want!r}")


class Client:
    """A QMP client: one JSON object per line both ways; events are kept apart from replies."""

    def __init__(self, address, family=socket.AF_UNIX, negotiate=True):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        end = time.monotonic() + 30
        while True:
            try:
                self.sock.connect(address)
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)
        self.sock.settimeout(30)
        self.buf = b""
        self.events = []
        self.greeting = self.read()
        if negotiate:
            eq(self.cmd("qmp_capabilities"), {"return": {}}, "qmp_capabilities")

    def read_line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Failure(f"connection closed; had {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def read(self):
        line = self.read_line()
        check(line.endswith(b"\r"), f"QMP lines end in CRLF: {line!r}")
        return json.loads(line)

    def send_raw(self, data):
        self.sock.sendall(data)

    def reply(self):
        """The next reply; events that come first are kept in self.events."""
        while True:
            msg = self.read()
            if "event" in msg:
                self.events.append(msg)
            else:
                return msg

    def cmd(self, name, id=None, **args):
        req = {"execute": name}
        if args:
            req["arguments"] = args
        if id is not None:
            req["id"] = id
        self.send_raw(json.dumps(req).encode() + b"\n")
        return self.reply()

    def ok(self, name, **args):
        r = self.cmd(name, **args)
        check("return" in r, f"{name} {args}: {r}")
        return r["return"]

    def error(self, name, cls, desc, id=None, **args):
        r = self.cmd(name, id=id, **args)
        want = {"error": {"class": cls, "desc": desc}}
        if id is not None:
            want["id"] = id
        eq(r, want, f"{name} {args}")

    def wait_event(self, name, timeout=30):
        end = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == name:
                    return self.events.pop(i)
            self.sock.settimeout(max(0.1, end - time.monotonic()))
            try:
                msg = self.read()
            except socket.timeout:
                raise Failure(f"no {name} event within {timeout} s; have {self.events}")
            finally:
                self.sock.settimeout(30)
            check("event" in msg, f"unexpected reply while waiting for {name}: {msg}")
            self.events.append(msg)

    def close(self):
        self.sock.close()


class Keel:
    """keel on riscv-virt with spin.S; serial output to a file, QMP on a unix socket in a temp dir."""

    def __init__(self, *extra, qmp=True, ready=True):
        self.dir = tempfile.mkdtemp(prefix="keel-qmp-")
        self.sock = os.path.join(self.dir, "qmp.sock")
        self.serial = os.path.join(self.dir, "serial.txt")
        argv = [KEEL, "-M", "riscv-virt", "-bios", "none", "-kernel", SPIN, "-serial", "file:" + self.serial]
        if qmp:
            argv += ["-qmp", f"unix:{self.sock},server=on,wait=off"]
        self.proc = subprocess.Popen(argv + list(extra), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if ready:
            self.wait_output(b"spin ready")

    def output(self):
        try:
            with open(self.serial, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def wait_output(self, want, timeout=30):
        end = time.monotonic() + timeout
        while want not in self.output():
            if self.proc.poll() is not None:
                raise Failure(f"keel exited with {self.proc.returncode}: {self.proc.stderr.read().decode()}")
            if time.monotonic() > end:
                raise Failure(f"waited {timeout} s for {want!r} on the serial line; got {self.output()[-200:]!r}")
            time.sleep(0.02)

    def running_guest(self, timeout=30):
        """The guest is running: it prints more dots."""
        n = self.output().count(b".")
        end = time.monotonic() + timeout
        while self.output().count(b".") <= n + 2:
            if time.monotonic() > end:
                raise Failure("the guest stopped printing")
            time.sleep(0.02)

    def client(self, **kw):
        return Client(self.sock, **kw)

    def finish(self, timeout=30):
        try:
            rc = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            shutil.rmtree(self.dir, ignore_errors=True)
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.finish()


def counter(c):
    path = os.path.join(tempfile.gettempdir(), f"keel-qmp-counter-{os.getpid()}")
    c.ok("pmemsave", val=COUNTER_ADDR, size=8, filename=path)
    with open(path, "rb") as f:
        v = int.from_bytes(f.read(), "little")
    os.unlink(path)
    return v


def check_timestamp(e):
    ts = e.get("timestamp")
    check(isinstance(ts, dict) and set(ts) == {"seconds", "microseconds"}, f"timestamp in {e}")
    check(abs(ts["seconds"] - time.time()) < 60 and 0 <= ts["microseconds"] < 1000000, f"timestamp in {e}")


# ---- tests ----


def test_greeting(k):
    mode = os.lstat(k.sock).st_mode
    check(stat.S_ISSOCK(mode), "the QMP path is a socket")
    eq(stat.S_IMODE(mode), 0o600, "socket mode")
    c = k.client(negotiate=False)
    g = c.greeting
    eq(list(g), ["QMP"], "greeting")
    eq(sorted(g["QMP"]), ["capabilities", "version"], "greeting keys")
    eq(g["QMP"]["capabilities"], [], "capabilities")
    v = g["QMP"]["version"]
    eq(v["qemu"], {"micro": 0, "minor": 2, "major": 7}, "version")
    check(v["package"].startswith("keel "), f"package {v['package']!r}")
    eq(c.cmd("qmp_capabilities", id="neg"), {"return": {}, "id": "neg"}, "negotiation")
    eq(c.ok("query-version"), v, "query-version")


def test_negotiation(k):
    c = k.client(negotiate=False)
    expecting = "Expecting capabilities negotiation with 'qmp_capabilities'"
    c.error("query-status", "CommandNotFound", expecting, id=1)
    c.error("stop", "CommandNotFound", expecting)
    c.error("no-such-command", "CommandNotFound", expecting, id="x")
    c.error("qmp_capabilities", "GenericError", "Capability 'oob' not available", enable=["oob"])
    c.error("qmp_capabilities", "GenericError", "Invalid parameter type for 'enable', expected: array", enable=1)
    eq(c.cmd("qmp_capabilities", id=[1, {"a": None}]), {"return": {}, "id": [1, {"a": None}]}, "negotiate")
    c.error("qmp_capabilities", "CommandNotFound", "Capabilities negotiation is already complete, command ignored",
            id=2)
    eq(c.ok("query-status"), {"status": "running", "singlestep": False, "running": True}, "query-status")
    # Nothing is sent to a client before it negotiates, events included: a second client that never
    # negotiates sees only its greeting while the first one stops and resumes the machine.
    quiet = k.client(negotiate=False)
    c.ok("stop")
    c.ok("cont")
    quiet.sock.settimeout(0.5)
    try:
        data = quiet.sock.recv(4096)
        raise Failure(f"an unnegotiated client got {data!r}")
    except socket.timeout:
        pass


def test_errors(k):
    c = k.client()
    c.error("no-such-command", "CommandNotFound", "The command no-such-command has not been found", id=7)
    c.error("qom-get", "GenericError", "Invalid parameter type for 'property', expected: string",
            path="/machine", property=42)
    c.error("qom-get", "GenericError", "Parameter 'property' is missing", path="/machine")
    c.error("qom-get", "GenericError", "Parameter 'x' is unexpected", path="/machine", property="type", x=1)
    c.error("query-status", "GenericError", "Parameter 'a' is unexpected", a=1)
    c.error("pmemsave", "GenericError", "Invalid parameter type for 'val', expected: integer", val="x", size=1,
            filename="/dev/null")
    c.error("pmemsave", "GenericError", "Invalid parameter type for 'size', expected: integer", val=0, size=1.5,
            filename="/dev/null")
    c.error("human-monitor-command", "GenericError", "Invalid parameter type for 'command-line', expected: string",
            **{"command-line": None})

    def raw(data, want):
        c.send_raw(data)
        eq(c.reply(), want, repr(data))

    def parse_error(data, desc):
        raw(data, {"error": {"class": "GenericError", "desc": "JSON parse error, " + desc}})

    parse_error(b'{"execute": query-status}\n', "invalid keyword 'query'")
    parse_error(b'{"execute": "query-status", }\n', "expecting value")
    parse_error(b'{"execute": "a\\qb"}\n', "invalid escape sequence '\\q' in string")
    parse_error(b'{"execute": "\xff"}\n', "invalid UTF-8 sequence in string")
    parse_error(b'{"execute": "abc\n', "control character in string")
    raw(b"[1, 2]\n", {"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}})
    raw(b'"query-status"\n', {"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}})
    raw(b'{"foo": 1, "id": 3}\n',
        {"id": 3, "error": {"class": "GenericError", "desc": "QMP input member 'foo' is unexpected"}})
    raw(b'{"execute": 1}\n', {"error": {"class": "GenericError", "desc": "QMP input member 'execute' must be a string"}})
    raw(b'{"execute": "query-status", "arguments": []}\n',
        {"error": {"class": "GenericError", "desc": "QMP input member 'arguments' must be an object"}})
    raw(b'{"id": 4}\n', {"id": 4, "error": {"class": "GenericError", "desc": "QMP input lacks member 'execute'"}})
    # A message split across writes, and two in one write.
    c.send_raw(b'{"execute": "query-')
    time.sleep(0.1)
    c.send_raw(b'status", "id": 5}{"execute": "query-status", "id": 6}')
    eq(c.reply()["id"], 5, "split message")
    eq(c.reply()["id"], 6, "second message of one write")
    # Integers of every size come back as given.
    for i in (0, -1, 2**63 - 1, -(2**63), 2**64 - 1):
        eq(c.cmd("query-status", id=i)["id"], i, "id")
    eq(c.ok("query-status")["running"], True, "still running")
    k.running_guest()


def test_garbage(k):
    c = k.client()
    c.send_raw(b"x" * (1 << 20) + b"\n")
    r = c.reply()
    eq(r["error"]["class"], "GenericError", "garbage")
    check(r["error"]["desc"].startswith("JSON parse error, invalid keyword 'xxxx"), r["error"]["desc"][:80])
    check(len(r["error"]["desc"]) < 200, "the error does not echo the whole garbage line")
    # Exactly one error: the next reply answers the next command.
    eq(c.cmd("query-status", id="after"), {"return": {"status": "running", "singlestep": False, "running": True},
                                           "id": "after"}, "after garbage")
    # Random bytes without newlines or brackets, then too-deep nesting: one error each, VM alive.
    c.send_raw(bytes(range(0x80, 0x100)) * 4096 + b"\n")
    eq(c.reply()["error"]["class"], "GenericError", "binary garbage")
    c.send_raw(b"[" * 5000 + b"\n")
    eq(c.reply(), {"error": {"class": "GenericError", "desc": "JSON nesting depth limit exceeded"}}, "deep")
    eq(c.ok("query-status")["status"], "running", "after deep nesting")
    k.running_guest()


def test_commands(k):
    c = k.client()
    names = {x["name"] for x in c.ok("query-commands")}
    for n in ("qmp_capabilities", "query-version", "query-commands", "query-status", "stop", "cont",
              "system_reset", "system_powerdown", "quit", "query-cpus-fast", "query-block", "query-chardev",
              "qom-list", "qom-get", "qom-set", "human-monitor-command", "memsave", "pmemsave"):
        check(n in names, f"query-commands lacks {n}")
    cpus = c.ok("query-cpus-fast")
    eq(len(cpus), 1, "one CPU")
    eq(cpus[0]["cpu-index"], 0, "cpu-index")
    eq(cpus[0]["qom-path"], "/machine/cpu0", "qom-path")
    eq(cpus[0]["target"], "riscv64", "target")
    eq(cpus[0]["props"], {"core-id": 0}, "props")
    check(isinstance(cpus[0]["thread-id"], int), "thread-id")
    tid = cpus[0]["thread-id"]
    check(tid != k.proc.pid and os.path.isdir(f"/proc/{k.proc.pid}/task/{tid}"),
          f"thread-id {tid} is a thread of keel (pid {k.proc.pid}) other than the main one")
    block = c.ok("query-block")
    eq(len(block), 1, f"one drive: {block}")
    d = block[0]
    eq(d["device"], "disk0", "drive id")
    eq(d["inserted"]["drv"], "raw", "format")
    eq(d["inserted"]["file"], k.disk, "file")
    eq(d["inserted"]["ro"], False, "ro")
    eq(d["inserted"]["image"]["virtual-size"], 1 << 20, "size")
    chardevs = {x["label"]: x for x in c.ok("query-chardev")}
    eq(chardevs["serial0"]["filename"], "file:" + k.serial, "serial0")
    eq(chardevs["qmp_monitor0"], {"frontend-open": True, "filename": f"unix:{k.sock},server=on",
                                  "label": "qmp_monitor0"}, "the QMP socket")
    out = c.ok("human-monitor-command", **{"command-line": "info status"})
    check(isinstance(out, str) and "running" in out, f"info status: {out!r}")
    c.error("human-monitor-command", "GenericError", "Parameter 'cpu-index' expects a CPU number",
            **{"command-line": "info status", "cpu-index": 1})


def test_stop_cont(k):
    c = k.client()
    c.ok("stop")
    e = c.events.pop(0) if c.events else c.wait_event("STOP")
    eq(e["event"], "STOP", "event before the reply to stop")
    check_timestamp(e)
    eq(c.ok("query-status"), {"status": "paused", "singlestep": False, "running": False}, "paused")
    a = counter(c)
    time.sleep(0.3)
    eq(counter(c), a, "the guest's counter while paused")
    dots = k.output().count(b".")
    time.sleep(0.3)
    eq(k.output().count(b"."), dots, "no output while paused")
    # stop while paused: nothing happens, no event.
    c.ok("stop")
    c.ok("cont")
    e = c.events.pop(0) if c.events else c.wait_event("RESUME")
    eq(e["event"], "RESUME", "event before the reply to cont")
    check_timestamp(e)
    eq(c.events, [], "no other event")
    eq(c.ok("query-status")["status"], "running", "running again")
    end = time.monotonic() + 30
    while counter(c) <= a:  # the vCPU may take a moment to be scheduled again
        check(time.monotonic() < end, "the counter moves again")
        time.sleep(0.01)
    k.running_guest()


def test_events(k):
    c = k.client()
    before = k.output().count(b"spin ready")
    c.ok("system_reset")
    e = c.wait_event("RESET")
    eq(e["data"], {"guest": False, "reason": "host-qmp-system-reset"}, "RESET data")
    check_timestamp(e)
    # The guest starts over: it prints its banner again.
    end = time.monotonic() + 30
    while k.output().count(b"spin ready") <= before:
        check(time.monotonic() < end, "the guest did not restart after system_reset")
        time.sleep(0.02)
    c.ok("system_powerdown")
    e = c.wait_event("POWERDOWN")
    check("data" not in e, f"POWERDOWN has no data: {e}")
    check_timestamp(e)
    # Events in order, with non-decreasing timestamps.
    for _ in range(3):
        c.ok("stop")
        c.ok("cont")
    seq = [c.wait_event(n) for n in ("STOP", "RESUME")]
    evs = c.events
    names = [e["event"] for e in seq + evs]
    eq(names, ["STOP", "RESUME"] * 3, "event order")
    ts = [(e["timestamp"]["seconds"], e["timestamp"]["microseconds"]) for e in seq + evs]
    eq(ts, sorted(ts), "timestamps in order")


def test_qom(k):
    c = k.client()
    top = c.ok("qom-list", path="/")
    check({"name": "machine", "type": "child<riscv-virt-machine>"} in top, f"/: {top}")
    eq(c.ok("qom-get", path="/machine", property="type"), "riscv-virt-machine", "machine type")
    m = c.ok("qom-list", path="/machine")
    check({"name": "uart0", "type": "child<ns16550a>"} in m, f"/machine: {m}")
    check({"name": "cpu0", "type": "child<riscv64>"} in m or any(x["name"] == "cpu0" for x in m), f"cpu0 in {m}")
    uart = c.ok("qom-list", path="/machine/uart0")
    for p in ({"name": "type", "type": "string"}, {"name": "clock-frequency", "type": "uint64"},
              {"name": "reg-shift", "type": "uint64"}, {"name": "chardev", "type": "str"}):
        check(p in uart, f"{p} in {uart}")
    eq(c.ok("qom-get", path="/machine/uart0", property="type"), "ns16550a", "type")
    eq(c.ok("qom-get", path="uart0", property="clock-frequency"), 3686400, "partial path")
    eq(c.ok("qom-get", path="/machine/uart0", property="chardev"), "serial0", "chardev")
    eq(c.ok("qom-get", path="/machine", property="uart0"), "/machine/uart0", "child as a property")
    c.error("qom-get", "DeviceNotFound", "Device '/nothere' not found", path="/nothere", property="type")
    c.error("qom-get", "GenericError", "Property 'ns16550a.nope' not found", path="/machine/uart0", property="nope")
    c.error("qom-list", "DeviceNotFound", "Device '/machine/uart9' not found", path="/machine/uart9")
    # clock-frequency is settable (KEEL_PROPF_SETTABLE); the device refuses 0 and keeps the old value.
    eq(c.ok("qom-set", path="/machine/uart0", property="clock-frequency", value=1843200), {}, "qom-set")
    eq(c.ok("qom-get", path="/machine/uart0", property="clock-frequency"), 1843200, "after qom-set")
    c.error("qom-set", "GenericError", "device 'uart0' refused clock-frequency=0: clock-frequency must not be 0",
            path="/machine/uart0", property="clock-frequency", value=0)
    eq(c.ok("qom-get", path="/machine/uart0", property="clock-frequency"), 1843200, "kept after a refusal")
    c.error("qom-set", "GenericError", "Invalid parameter type for 'clock-frequency', expected: integer",
            path="/machine/uart0", property="clock-frequency", value="fast")
    c.error("qom-set", "GenericError", "Parameter 'clock-frequency' expects uint64",
            path="/machine/uart0", property="clock-frequency", value=-1)
    c.error("qom-set", "GenericError", "Property 'ns16550a.reg-shift' is not writable",
            path="/machine/uart0", property="reg-shift", value=1)
    c.error("qom-set", "GenericError", "Property 'ns16550a.type' is not writable",
            path="/machine/uart0", property="type", value="x")
    c.error("qom-set", "GenericError", "Parameter 'value' is missing", path="/machine/uart0",
            property="clock-frequency")
    k.running_guest()


def test_memsave(k):
    c = k.client()
    for cmd, extra in (("memsave", {}), ("memsave", {"cpu-index": 0}), ("pmemsave", {})):
        path = os.path.join(k.dir, cmd + ".bin")
        eq(c.ok(cmd, val=PATTERN_ADDR, size=256, filename=path, **extra), {}, cmd)
        with open(path, "rb") as f:
            eq(f.read(), PATTERN, f"{cmd} contents")
        eq(stat.S_IMODE(os.stat(path).st_mode) & 0o077, 0, f"{cmd} file is owner-only")
        # A window across a page boundary, at an odd address.
        eq(c.ok(cmd, val=PATTERN_ADDR + 13, size=100, filename=path, **extra), {}, cmd)
        with open(path, "rb") as f:
            eq(f.read(), PATTERN[13:113], f"{cmd} window")
    # Errors leave an existing file alone.
    keep = os.path.join(k.dir, "keep.bin")
    with open(keep, "wb") as f:
        f.write(b"mine")
    # pmemsave reads unmapped physical memory as zeros (as QEMU); memsave refuses it.
    zeros = os.path.join(k.dir, "zeros.bin")
    eq(c.ok("pmemsave", val=16, size=16, filename=zeros), {}, "pmemsave of unmapped memory")
    with open(zeros, "rb") as f:
        eq(f.read(), bytes(16), "pmemsave of unmapped memory: zeros")
    c.error("memsave", "GenericError", "Invalid addr 0x0000000000000010/size 16 specified", val=16, size=16,
            filename=keep)
    c.error("pmemsave", "GenericError", "Invalid addr 0x0000000080001000/size -1 specified", val=PATTERN_ADDR,
            size=-1, filename=keep)
    c.error("memsave", "GenericError", "Parameter 'cpu-index' expects a CPU number", val=PATTERN_ADDR, size=1,
            filename=keep, **{"cpu-index": 3})
    with open(keep, "rb") as f:
        eq(f.read(), b"mine", "untouched file")
    bad = os.path.join(k.dir, "no", "such", "dir")
    c.error("pmemsave", "GenericError", f"Could not open '{bad}': No such file or directory", val=PATTERN_ADDR,
            size=1, filename=bad)


def test_prelaunch(k):
    c = k.client()
    eq(c.ok("query-status"), {"status": "prelaunch", "singlestep": False, "running": False}, "-S")
    time.sleep(0.3)
    eq(k.output(), b"", "nothing runs before cont")
    c.ok("cont")
    eq(c.wait_event("RESUME")["event"], "RESUME", "RESUME on the first cont")
    k.wait_output(b"spin ready")
    eq(c.ok("query-status")["status"], "running", "after cont")


def test_two_clients(k):
    a = k.client()
    b = k.client()
    a.ok("stop")
    eq(b.wait_event("STOP")["event"], "STOP", "b sees a's stop")
    eq(b.ok("query-status")["status"], "paused", "b sees paused")
    b.ok("cont")
    eq(a.wait_event("STOP")["event"], "STOP", "a's own STOP")
    eq(a.wait_event("RESUME")["event"], "RESUME", "a sees b's cont")
    # One client going away leaves the other working.
    a.close()
    eq(b.ok("query-status")["status"], "running", "b after a left")
    c = k.client()
    eq(c.ok("query-status")["status"], "running", "a third client")


def test_quit(k):
    c = k.client()
    r = c.cmd("quit")
    eq(r, {"return": {}}, "quit")
    check(len(c.events) > 0, "SHUTDOWN arrived before the reply to quit")
    e = c.events.pop(0)
    eq(e["event"], "SHUTDOWN", "SHUTDOWN before the reply")
    eq(e["data"], {"guest": False, "reason": "host-qmp-quit"}, "SHUTDOWN data")
    check_timestamp(e)
    sock = k.sock
    rc = k.proc.wait(30)
    eq(rc, 0, "keel's exit status")
    check(not os.path.exists(sock), "the socket file is removed at exit")


def test_tcp(k):
    c = Client(("127.0.0.1", k.port), family=socket.AF_INET)
    eq(c.ok("query-status")["status"], "running", "tcp")
    chardevs = {x["label"]: x["filename"] for x in c.ok("query-chardev")}
    eq(chardevs["qmp_monitor1"], f"tcp:127.0.0.1:{k.port},server=on", "tcp listener")
    u = k.client()
    c.ok("stop")
    eq(u.wait_event("STOP")["event"], "STOP", "the unix client sees the tcp client's stop")
    c.ok("cont")


def test_mon_pretty(k):
    s = socket.socket(socket.AF_UNIX)
    s.connect(k.monsock)
    s.settimeout(30)
    f = s.makefile("rb")

    def read_obj():
        text = b""
        while True:
            line = f.readline()
            if not line:
                raise Failure(f"closed after {text!r}")
            text += line
            if line in (b"}\r\n",):
                return text

    g = read_obj()
    check(g.startswith(b'{\r\n    "QMP": {') or g.startswith(b'{\n    "QMP": {'), f"pretty greeting {g!r}")
    s.sendall(b'{"execute": "qmp_capabilities"}\n')
    eq(json.loads(read_obj()), {"return": {}}, "pretty negotiation")
    s.sendall(b'{"execute": "query-status", "id": 1}\n')
    text = read_obj()
    check(b'\n    "return": {\n        "status": "running",' in text, f"pretty reply {text!r}")
    eq(json.loads(text)["id"], 1, "id")


def test_options(_):
    tmp = tempfile.mkdtemp(prefix="keel-qmp-opt-")
    try:
        def refused(args, want):
            p = subprocess.run([KEEL, "-M", "riscv-virt", "-bios", "none", "-kernel", SPIN] + args,
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
            eq(p.returncode, 1, f"{args}: exit status")
            eq(p.stderr.decode().strip(), want, f"{args}: message")

        # A chardev a device already reads is not taken over (QEMU: "Device 'ID' is in use").
        refused(["-chardev", "null,id=n", "-serial", "chardev:n", "-mon", "chardev=n,mode=control"],
                "keel: -mon chardev=n,mode=control: Device 'n' is in use")
        path = os.path.join(tmp, "q.sock")
        refused(["-qmp", f"unix:{path}"],
                f"keel: -qmp unix:{path}: keel's QMP listens as a server: add server=on,wait=off "
                "(connecting out is not supported)")
        refused(["-qmp", f"unix:{path},server=on,bogus=1"],
                f"keel: -qmp unix:{path},server=on,bogus=1: unknown socket option 'bogus' (valid: server, wait)")
        plain = os.path.join(tmp, "file")
        with open(plain, "w") as fh:
            fh.write("x")
        refused(["-qmp", f"unix:{plain},server=on,wait=off"],
                f"keel: -qmp unix:{plain},server=on,wait=off: cannot create unix socket '{plain}': a file that is "
                "not a socket exists there")
        refused(["-qmp", "tcp:1.2.3.4.5:1,server=on,wait=off"],
                "keel: -qmp tcp:1.2.3.4.5:1,server=on,wait=off: cannot resolve '1.2.3.4.5:1': "
                + socket_gai_message("1.2.3.4.5"))
        with open(plain) as fh:
            eq(fh.read(), "x", "the file in the way is untouched")
        # A stale socket from an earlier run is replaced; old spellings server,nowait work.
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(path)
        stale.close()
        with running([KEEL, "-M", "riscv-virt", "-bios", "none", "-kernel", SPIN, "-serial", "null",
                      "-qmp", f"unix:{path},server,nowait"], stdin=subprocess.DEVNULL) as p:
            c = Client(path)
            eq(c.ok("query-status")["status"], "running", "after replacing a stale socket")
            c.cmd("quit")
            eq(p.wait(30), 0, "exit status")
        # wait=on: keel waits for the client before the guest runs, then runs as usual.
        with running([KEEL, "-M", "riscv-virt", "-bios", "none", "-kernel", SPIN, "-serial", "null",
                      "-qmp", f"unix:{path},server=on"], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE) as p:
            line = p.stderr.readline().decode()
            eq(line, f"keel: QMP waiting for connection on unix:{path},server=on\n", "wait=on message")
            c = Client(path)
            eq(c.ok("query-status")["status"], "running", "wait=on")
            c.cmd("quit")
            eq(p.wait(30), 0, "exit status")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def socket_gai_message(host):
    try:
        socket.getaddrinfo(host, 1, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE | socket.AI_NUMERICSERV)
    except socket.gaierror as e:
        return e.strerror
    return "?"


def main():
    global KEEL, SPIN
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    test, KEEL, SPIN = sys.argv[1:]
    fn = globals().get("test_" + test.replace("-", "_"))
    if not fn:
        print(f"unknown test {test}", file=sys.stderr)
        return 2
    if test == "options":
        fn(None)
        print(f"qmp.{test}: ok")
        return 0
    extra = []
    port = None
    disk = test == "commands"
    if test == "tcp":
        port = free_port()
        extra = ["-qmp", f"tcp:127.0.0.1:{port},server=on,wait=off"]
    monsock = None
    if test == "mon-pretty":
        monsock = os.path.join(tempfile.mkdtemp(prefix="keel-qmp-mon-"), "mon.sock")
        extra = ["-chardev", f"socket,id=qmpmon,path={monsock},server=on,wait=off",
                 "-mon", "chardev=qmpmon,mode=control,pretty=on"]
    if disk:
        d = tempfile.mkdtemp(prefix="keel-qmp-disk-")
        img = os.path.join(d, "disk.img")
        with open(img, "wb") as f:
            f.truncate(1 << 20)
        extra = ["-drive", f"file={img},format=raw,if=virtio,id=disk0"]
    if test == "prelaunch":
        extra = ["-S"]
    k = Keel(*extra, ready=test != "prelaunch")
    k.port, k.monsock, k.disk = port, monsock, img if disk else None
    try:
        fn(k)
    except Failure as e:
        print(f"qmp.{test}: FAILED: {e}", file=sys.stderr)
        k.kill()
        return 1
    finally:
        if disk:
            shutil.rmtree(d, ignore_errors=True)
        if monsock:
            shutil.rmtree(os.path.dirname(monsock), ignore_errors=True)
    if test != "quit":
        k.kill()
    else:
        k.finish()
    print(f"qmp.{test}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
