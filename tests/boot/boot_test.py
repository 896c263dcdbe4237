#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Boot Debian's OpenSBI and U-Boot on an emulator's serial console and check what they report.
"""usage: boot_test.py --emulator PATH [--qemu] --machine M [--smp N] --mode smode|mmode
                    [--memory SIZE] [--expect-platform REGEX] [--append ARGS] [--dram-base ADDR]
                    [--timeout S]

Runs `EMULATOR -M M -m SIZE -smp N <firmware>` with the serial port on a unix socket and checks:
  - S-mode only: OpenSBI's banner: `Platform Name` matches --expect-platform, `Platform HART Count`
    is N, `Boot HART ID` is below N;
  - U-Boot 2023.01 starts, autoboot is interrupted by a key and the `=>` prompt appears;
  - `version` prints `U-Boot 2023.01`;
  - `fdt addr $fdtcontroladdr; fdt print /chosen` shows a `stdout-path` (and `bootargs` equal to
    --append when given: the emulator gets it as -append);
  - `bdinfo` shows DRAM starting at --dram-base with the size of -m; `bdinfo` of U-Boot 2023.01 on RISC-V
    does not print the boot hart, so `cpu list` must list harts cpu@0..cpu@N-1 and, in S-mode, OpenSBI's
    `Boot HART ID` must be one of them; `sbi` (S-mode) must report the SBI version and the reset
    extension that `reset`/`poweroff` use;
  - `reset`: the firmware banner appears again and U-Boot reaches `=>` again;
  - `poweroff`: the emulator exits with status 0.
Firmware (Debian packages opensbi, u-boot-qemu):
  smode: -bios .../opensbi/generic/fw_jump.bin -kernel .../qemu-riscv64_smode/uboot.elf
  mmode: -bios .../qemu-riscv64/u-boot.bin
--qemu: the emulator is QEMU (adds -display none -monitor none); exit status 77 (skipped) if it is not
installed. Every wait fails after --timeout seconds with the console's last output and the emulator's stderr.
"""
import argparse
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from console import Console, ConsoleError  # noqa: E402

OPENSBI = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin"
UBOOT_SMODE = "/usr/lib/u-boot/qemu-riscv64_smode/uboot.elf"
UBOOT_MMODE = "/usr/lib/u-boot/qemu-riscv64/u-boot.bin"
SKIP = 77


def firmware(mode):
    """The firmware options for `mode` (also used by bench/boot)."""
    if mode == "smode":
        return ["-bios", OPENSBI, "-kernel", UBOOT_SMODE]
    return ["-bios", UBOOT_MMODE]


def parse_size(text):
    m = re.fullmatch(r"(\d+)([KMG]?)", text.upper())
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (e.g. 128M)")
    return int(m.group(1)) << {"": 20, "K": 10, "M": 20, "G": 30}[m.group(2)]  # QEMU: no suffix = MiB


class Check:
    """Assertions that fail through the console, so that every failure carries its transcript."""

    def __init__(self, console):
        self.c = console

    def that(self, ok, message):
        if not ok:
            self.c.fail(message)

    def command(self, line, timeout):
        """Type `line` at the U-Boot prompt; return its output (up to the next prompt)."""
        self.c.send(line + "\n")
        # U-Boot echoes the line; the output starts after the echo.
        self.c.expect(re.escape(line) + r"\n", timeout, what=f"the echo of {line!r}")
        start = self.c.pos
        m = self.c.expect(r"^=> ", timeout, what=f"the prompt after {line!r}")
        return self.c.transcript[start:m.start()]

    def autoboot_prompt(self, timeout):
        """Interrupt U-Boot's autoboot with a key and wait for the prompt."""
        self.c.expect(r"^U-Boot 2023\.01\S* \(", timeout, what="U-Boot's banner")
        self.c.expect(r"Hit any key to stop autoboot", timeout, what="U-Boot's autoboot countdown")
        self.c.send(" ")
        self.c.expect(r"^=> ", timeout, what="the U-Boot prompt after stopping autoboot")


def opensbi_banner(c, a, timeout):
    """OpenSBI's banner: platform name, hart count, boot hart (which it returns)."""
    m = c.expect(r"^Platform Name\s*: (.*)\n", timeout, what="OpenSBI's banner (Platform Name)")
    name = m.group(1).strip()
    if not re.search(a.expect_platform, name):
        c.fail(f"OpenSBI's Platform Name is {name!r}, expected a match of {a.expect_platform!r}")
    m = c.expect(r"^Platform HART Count\s*: (\d+) *\n", timeout, what="OpenSBI's Platform HART Count")
    if int(m.group(1)) != a.smp:
        c.fail(f"OpenSBI's Platform HART Count is {m.group(1)}, expected {a.smp} (-smp {a.smp})")
    m = c.expect(r"^Boot HART ID\s*: (\d+) *\n", timeout, what="OpenSBI's Boot HART ID")
    hart = int(m.group(1))
    if hart >= a.smp:
        c.fail(f"OpenSBI's Boot HART ID is {hart}, but there are only {a.smp} hart(s)")
    return hart


def boot(c, a):
    t = a.timeout
    check = Check(c)
    boot_hart = opensbi_banner(c, a, t) if a.mode == "smode" else None
    check.autoboot_prompt(t)
    dram = re.search(r"^DRAM:\s+(\d+) MiB", c.transcript, re.M)
    check.that(dram and int(dram.group(1)) << 20 == a.memory,
               f"U-Boot's DRAM line is {dram.group(0) if dram else 'missing'}, expected {a.memory >> 20} MiB")
    first_prompt = c.elapsed()

    out = check.command("version", t)
    check.that(re.search(r"^U-Boot 2023\.01", out, re.M), "`version` does not print U-Boot 2023.01")

    out = check.command("fdt addr $fdtcontroladdr; fdt print /chosen", t)
    check.that(re.search(r'^\s*stdout-path = "[^"]+";', out, re.M), "/chosen has no stdout-path")
    if a.append is not None:
        m = re.search(r'^\s*bootargs = "([^"]*)";', out, re.M)
        got = f"/chosen bootargs is {m.group(1)!r}" if m else "/chosen has no bootargs"
        check.that(m and m.group(1) == a.append, f"{got}, expected {a.append!r} (-append)")

    out = check.command("bdinfo", t)
    m = re.search(r"^-> start\s*= (0x[0-9a-f]+)\s*$", out, re.M)
    check.that(m and int(m.group(1), 16) == a.dram_base,
               f"bdinfo's DRAM start is {m.group(1) if m else 'missing'}, expected {a.dram_base:#x}")
    m = re.search(r"^-> size\s*= (0x[0-9a-f]+)\s*$", out, re.M)
    check.that(m and int(m.group(1), 16) == a.memory,
               f"bdinfo's DRAM size is {m.group(1) if m else 'missing'}, expected {a.memory:#x}")

    out = check.command("cpu list", t)
    harts = [int(h) for h in re.findall(r"^\s*\d+: cpu@([0-9a-f]+)\b", out, re.M)]
    check.that(harts == list(range(a.smp)), f"`cpu list` shows harts {harts}, expected 0..{a.smp - 1}")
    if boot_hart is not None:
        check.that(boot_hart in harts, f"OpenSBI's boot hart {boot_hart} is not in `cpu list`")

    if a.mode == "smode":
        out = check.command("sbi", t)
        check.that(re.search(r"^SBI \d+\.\d+", out, re.M), "`sbi` does not print the SBI version")
        check.that("System Reset Extension" in out, "`sbi` does not list the System Reset Extension")

    c.send("reset\n")
    c.expect(r"^resetting \.\.\.", t, what="`reset` acknowledging")
    if a.mode == "smode":
        opensbi_banner(c, a, t)
    check.autoboot_prompt(t)

    c.send("poweroff\n")
    status = c.wait_exit(t)
    check.that(status == 0, f"after `poweroff` the emulator exited with status {status}, expected 0")
    return first_prompt


def main():
    ap = argparse.ArgumentParser(description="Boot OpenSBI + U-Boot and check their console.")
    ap.add_argument("--emulator", required=True)
    ap.add_argument("--qemu", action="store_true", help="the emulator is qemu-system-riscv64")
    ap.add_argument("--machine", required=True)
    ap.add_argument("--smp", type=int, default=1)
    ap.add_argument("--mode", choices=["smode", "mmode"], required=True)
    ap.add_argument("--memory", type=parse_size, default=parse_size("128M"))
    ap.add_argument("--expect-platform", default=r"\S", metavar="REGEX")
    ap.add_argument("--append")
    ap.add_argument("--dram-base", type=lambda s: int(s, 0), default=0x80000000)
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    if a.append is not None and a.mode == "mmode":
        ap.error("--append needs --mode smode (-append goes with -kernel)")

    emulator = shutil.which(a.emulator)
    if emulator is None:
        if a.qemu:
            print(f"boot_test: {a.emulator} not found: skipped (scripts/setup installs qemu-system-misc)")
            return SKIP
        print(f"boot_test: {a.emulator}: not found")
        return 1
    for f in firmware(a.mode)[1::2]:
        if not os.path.exists(f):
            print(f"boot_test: {f} not found (scripts/setup installs opensbi and u-boot-qemu)")
            return 1

    cmd = [emulator, "-M", a.machine, "-m", f"{a.memory >> 20}M", "-smp", str(a.smp)] + firmware(a.mode)
    if a.append is not None:
        cmd += ["-append", a.append]
    if a.qemu:
        cmd += ["-display", "none", "-monitor", "none"]
    try:
        with Console(cmd, name=os.path.basename(a.emulator)) as c:
            first = boot(c, a)
            print(f"boot_test: {a.mode} -smp {a.smp}: OK (first prompt after {first:.2f} s, "
                  f"powered off after {c.elapsed():.2f} s)")
    except ConsoleError as e:
        print(f"boot_test: FAIL: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
