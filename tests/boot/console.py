# SPDX-License-Identifier: MIT
# Drive an emulator's serial console over a unix socket: expect/send with a transcript, for boot tests.
"""A small pexpect-like driver built on plain sockets and select.

    with Console(["qemu-system-riscv64", "-M", "virt", ...], name="qemu") as c:
        c.expect(r"Hit any key to stop autoboot", timeout=30)
        c.send(" ")
        c.expect(r"=> ", timeout=10)

The emulator gets `-serial unix:PATH,server=on,wait=on` appended (keel and QEMU both accept it), so it
blocks until we connect and no output is lost. It runs in its own process group; any failure (timeout,
end of output, unexpected exit) raises ConsoleError whose text carries the last ~2 KB of console output
and the emulator's stderr, and leaving the `with` block always kills the process group.
"""
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time

TAIL = 2048  # console bytes shown in a failure message


class ConsoleError(Exception):
    pass


class Console:
    def __init__(self, cmd, name=None, connect_timeout=30.0, env=None):
        self.name = name or os.path.basename(cmd[0])
        # A private directory per console: tests run in parallel (ctest -j).
        self.dir = tempfile.mkdtemp(prefix="keel-boot-")
        self.sock_path = os.path.join(self.dir, "serial.sock")
        self.cmd = list(cmd) + ["-serial", f"unix:{self.sock_path},server=on,wait=on"]
        self.transcript = ""  # everything received, \r removed
        self.pos = 0  # start of the not yet matched part of the transcript
        self.sock = None
        self.eof = False
        self.start_time = time.monotonic()
        self.proc = None
        self._saved = {}
        # Files, not pipes: an emulator that prints a lot to stderr must never block on a full pipe.
        self._out = open(os.path.join(self.dir, "stdout"), "w+b")
        self._err = open(os.path.join(self.dir, "stderr"), "w+b")
        try:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self._out,
                                         stderr=self._err, start_new_session=True, env=env)
        except OSError as e:
            self._cleanup_files()
            raise ConsoleError(f"{self.name}: cannot start {cmd[0]}: {e.strerror}") from None
        try:
            self._connect(connect_timeout)
        except BaseException:
            self.kill()
            raise

    # --- process ------------------------------------------------------------------------------------

    def _connect(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            status = self.proc.poll()
            if status is not None:
                self.fail("the emulator exited before opening its serial socket")
            if os.path.exists(self.sock_path):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(self.sock_path)
                    s.setblocking(False)
                    self.sock = s
                    return
                except (ConnectionRefusedError, FileNotFoundError):
                    s.close()  # bound but not listening yet
            if time.monotonic() > deadline:
                self.fail(f"no serial socket {self.sock_path} after {timeout:.0f} s")
            time.sleep(0.005)

    def elapsed(self):
        """Seconds since the emulator was started."""
        return time.monotonic() - self.start_time

    def kill(self):
        """Kill the emulator's whole process group (idempotent) and remove the temporary directory."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self._cleanup_files()

    def _cleanup_files(self):
        # Keep what the emulator printed: a failure report needs it after the kill.
        self._saved = {f: self._read_file(f) for f in (self._out, self._err)}
        for f in (self._out, self._err):
            if not f.closed:
                f.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _read_file(self, f):
        if f.closed:
            return self._saved.get(f, "")
        f.flush()
        f.seek(0)
        return f.read().decode("utf-8", "replace")

    def stderr(self):
        """What the emulator wrote to stderr so far (also after kill())."""
        return self._read_file(self._err)

    def stdout(self):
        return self._read_file(self._out)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        return False

    # --- failure ------------------------------------------------------------------------------------

    def report(self, message, status=None):
        """The failure text: message, console tail, the emulator's stdout/stderr, its command line."""
        tail = self.transcript[-TAIL:]
        if status is None:
            state = "emulator still running, killed"
        elif status < 0:
            state = f"emulator killed by signal {-status}"
        else:
            state = f"emulator exited with status {status}"
        parts = [f"{self.name}: {message} (after {self.elapsed():.1f} s; {state})",
                 "command: " + shlex.join(self.cmd)]
        if tail:
            parts += [f"--- console output (last {len(tail)} characters) ---", tail]
        else:
            parts += ["--- console output: none at all ---"]
        out = self.stdout()
        if out.strip():
            parts += ["--- emulator stdout ---", out[-TAIL:].rstrip()]
        parts += ["--- emulator stderr ---", self.stderr()[-TAIL:].rstrip() or "(empty)"]
        return "\n".join(parts)

    def fail(self, message):
        """Raise ConsoleError with the full report; the emulator is killed first."""
        status = self.proc.poll() if self.proc is not None else None
        self.kill()  # stderr survives the kill, and the files are flushed by then
        text = self.report(message, status)
        raise ConsoleError(text)

    # --- console I/O --------------------------------------------------------------------------------

    def _receive(self, deadline):
        """Wait until new output arrives (True), or the deadline passes or the output ends (False)."""
        if self.eof or self.sock is None:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([self.sock], [], [], left)
        if not ready:
            return False
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return True
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.transcript += data.decode("utf-8", "replace").replace("\r", "")
        return True

    def expect(self, pattern, timeout, what=None):
        """Wait for `pattern` (a regex, re.M) in the output not matched yet; return the match.

        The output arrives in pieces: `$` also matches at the end of what has arrived so far, so a
        pattern that captures to the end of a line must end in \\n, not $.

        The match consumes the output up to its end, so a second expect() finds a later occurrence."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.transcript, self.pos)
            if m:
                self.pos = m.end()
                return m
            if not self._receive(deadline):
                m = rx.search(self.transcript, self.pos)
                if m:
                    self.pos = m.end()
                    return m
                why = "the console closed while" if self.eof else f"timed out after {timeout:.0f} s"
                if self.eof:
                    # Give an exiting emulator a moment so that its status is in the report.
                    try:
                        self.proc.wait(timeout=2)
                    except subprocess.TimeoutExpired:
                        pass
                self.fail(f"{why} waiting for {what or repr(pattern)}")

    def since(self, match_end=None):
        """The output received after position `match_end` (default: after the last match)."""
        return self.transcript[self.pos if match_end is None else match_end:]

    def send(self, text, pace=0.002):
        """Send `text`, a few bytes at a time: a guest UART has a small FIFO and is polled."""
        data = text.encode()
        for i in range(0, len(data), 8):
            if self.sock is None:
                self.fail(f"cannot send {text!r}: the console is closed")
            try:
                self.sock.setblocking(True)
                self.sock.sendall(data[i:i + 8])
            except OSError as e:
                self.fail(f"cannot send {text!r}: {e.strerror}")
            finally:
                if self.sock is not None:
                    self.sock.setblocking(False)
            if i + 8 < len(data):
                time.sleep(pace)

    def wait_exit(self, timeout):
        """Wait for the emulator to exit (reading its console meanwhile); return its exit status."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.fail(f"the emulator did not exit within {timeout:.0f} s")
            if not self._receive(min(deadline, time.monotonic() + 0.05)):
                time.sleep(0.01 if self.eof else 0)
        return self.proc.returncode
