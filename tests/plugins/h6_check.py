#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# ctest checker for the H6 plugin tests: runs keel (or QEMU) with a guest (h6_count, h6_mem, h6_regs)
# and the probe plugin (h6_probe.c), and compares what the plugin API reported with the guest's own view.
"""usage: h6_check.py MODE [--elf ELF [--nm NM]] [options] -- COMMAND...

--elf ELF: each {SYMBOL} in COMMAND becomes that symbol's address in ELF (0x...), for plugin arguments.

count: the guest's "h6 region N: delta=D ecalls=E" lines and the probe's "h6 region N: callback=C
       inline=I" lines: the same regions, and C == I == D + E (the probe counts each ecall, which traps
       and so does not retire: minstret leaves it out). The probe's whole-run "h6 total: callback=T
       inline=U": T == U, and every "insns: X" (the insn example) and "bb: B insns: Y" (the bb example)
       line of the run has X == T, Y == T. --regions N: the guest must report N regions.
mem:   the probe's "h6 mem ..." lines between "h6 mem begin" and "h6 mem end" must be exactly the
       accesses h6_mem_region.S makes (addresses from the guest's "h6 buf 0x.." line); --uart NAME and
       --finisher NAME are the device names the MMIO accesses must report.
mem-v1: the same list, from the v1 mem example's trace ("load|store vaddr=.. paddr=.. size=N [io=DEV]",
       no values or signs in API v1), the lines from the region's first access on: for QEMU 7.2. Here
       --uart and --finisher are regular expressions.
regs:  the probe's "h6 reg NAME 0x.." lines against the values h6_regs_region.S sets and the guest's
       "h6 guest NAME 0x.." lines (pc and CSRs); the guest's "h6 guest write ..." line shows the
       plugin's register and memory writes.
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check  # noqa: E402  (run(), report(), symbols() shared with check.py's tests)

X_NAMES = ["zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "fp", "s1", "a0", "a1", "a2", "a3", "a4", "a5",
           "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6"]
F_NAMES = ["ft0", "ft1", "ft2", "ft3", "ft4", "ft5", "ft6", "ft7", "fs0", "fs1", "fa0", "fa1", "fa2", "fa3",
           "fa4", "fa5", "fa6", "fa7", "fs2", "fs3", "fs4", "fs5", "fs6", "fs7", "fs8", "fs9", "fs10", "fs11",
           "ft8", "ft9", "ft10", "ft11"]
UART = 0x10000000
FINISHER = 0x100000


def expected_mem(buf, uart, finisher):
    """h6_mem_region.S's accesses: (kind, vaddr, size, sign, value, io, device)."""
    ram = [
        ("load", 15, 1, 1, 0x88), ("load", 8, 1, 0, 0xff), ("load", 14, 2, 1, 0x8899),
        ("load", 12, 2, 0, 0xaabb), ("load", 12, 4, 1, 0x8899aabb), ("load", 4, 4, 0, 0xfedcba98),
        ("load", 0, 8, 0, 0xfedcba9876543210),
        ("store", 16, 1, 0, 0x5a), ("store", 18, 2, 0, 0x1234), ("store", 20, 4, 0, 0xdeadbeef),
        ("store", 24, 8, 0, 0x0123456789abcdef),
        ("load", 32, 8, 0, 5), ("store", 32, 8, 0, 8),          # amoadd.d
        # lr.d, then sc.d as a load and a store: an SC is a compare-and-exchange against the reserved
        # value, and QEMU 7.2 reports the same load (its atomic cmpxchg traces a read and a write).
        ("load", 40, 8, 0, 7), ("load", 40, 8, 0, 7), ("store", 40, 8, 0, 9),
        ("store", 96, 8, 0, 0),                                 # the sc result
        ("load", 48, 4, 0, 0x3fc00000), ("load", 0, 8, 0, 0xfedcba9876543210),  # flw, fld
        ("store", 56, 8, 0, 0xfedcba9876543210),                # fsd
        ("load", 8, 8, 0, 0x8899aabbccddeeff), ("store", 64, 4, 0, 0x55aa55aa),  # c.ld, c.sw
        ("load", 1, 8, 0, 0xfffedcba98765432), ("store", 83, 2, 0, 0xbeef),      # misaligned
        ("load", 88, 4, 1, 0x80000001), ("store", 88, 4, 0, 3),  # amoswap.w
    ]
    out = [(k, buf + off, size, sign, value, 0, "RAM") for k, off, size, sign, value in ram]
    out += [("store", UART + 7, 1, 0, 0xa5, 1, uart), ("load", UART + 7, 1, 0, 0xa5, 1, uart),
            ("load", UART + 5, 1, 0, 0x60, 1, uart),
            ("load", FINISHER, 4, 1, 0, 1, finisher), ("store", FINISHER, 4, 0, 0, 1, finisher)]
    return out


def fmt_mem(a):
    return "%s vaddr=0x%x size=%d sign=%d value=0x%x io=%d dev=%s" % a


def check_count(a, out, problems):
    guest = {int(m[1]): (int(m[2]), int(m[3]))
             for m in re.finditer(r"^h6 region (\d+): delta=(\d+) ecalls=(\d+)$", out, re.M)}
    probe = {int(m[1]): (int(m[2]), int(m[3]))
             for m in re.finditer(r"^h6 region (\d+): callback=(\d+) inline=(\d+)$", out, re.M)}
    if len(guest) != a.regions:
        problems.append(f"the guest reported {len(guest)} regions, expected {a.regions}")
    if sorted(guest) != sorted(probe):
        problems.append(f"regions: guest {sorted(guest)}, probe {sorted(probe)}")
    for r in sorted(guest):
        if r not in probe:
            continue
        delta, ecalls = guest[r]
        cb, inl = probe[r]
        if not (cb == inl == delta + ecalls):
            problems.append(f"region {r}: probe callback={cb} inline={inl}, guest minstret delta={delta} "
                            f"+ {ecalls} ecall(s) = {delta + ecalls}")
    totals = re.findall(r"^h6 total: callback=(\d+) inline=(\d+)$", out, re.M)
    if len(totals) != 1:
        problems.append(f"expected one 'h6 total' line, got {totals}")
        return
    cb, inl = map(int, totals[0])
    if cb != inl:
        problems.append(f"whole run: callback {cb} != inline {inl}")
    for x in re.findall(r"^insns: (\d+)$", out, re.M):
        if int(x) != cb:
            problems.append(f"insn example: {x} instructions, the probe {cb}")
    for b, y in re.findall(r"^bb: (\d+) insns: (\d+)$", out, re.M):
        if int(y) != cb:
            problems.append(f"bb example: {b} blocks of {y} instructions, the probe {cb}")
    n_other = len(re.findall(r"^(insns: |bb: )", out, re.M))
    if n_other != a.others:
        problems.append(f"{n_other} insns:/bb: lines, expected {a.others}")
    if a.symbols:
        # qemu_plugin_insn_symbol: each listed function symbol at its address, and no RISC-V mapping
        # symbol ($x..., $d: assembler bookkeeping, not names) in place of a function's name.
        reported = re.findall(r"^h6 sym (\S+) 0x([0-9a-f]+)$", out, re.M)
        names = {n: int(pc, 16) for n, pc in reported}
        for sym in a.symbols.split(","):
            if names.get(sym) != a.syms.get(sym):
                problems.append(f"insn_symbol: {sym} at 0x{a.syms.get(sym, 0):x} not reported "
                                f"(reported: {names.get(sym)})")
        mapping = sorted({n for n in names if n.startswith("$")})
        if mapping:
            problems.append(f"insn_symbol reported mapping symbols: {mapping}")


def guest_buf(out, problems):
    m = re.search(r"^h6 buf 0x([0-9a-f]+)$", out, re.M)
    if not m:
        problems.append("no 'h6 buf' line from the guest")
        return None
    return int(m[1], 16)


def check_mem(a, out, problems):
    buf = guest_buf(out, problems)
    if buf is None:
        return
    lines = out.splitlines()
    try:
        first, last = lines.index("h6 mem begin"), lines.index("h6 mem end")
    except ValueError:
        problems.append("no 'h6 mem begin' / 'h6 mem end' lines from the probe")
        return
    got = []
    pat = re.compile(r"^h6 mem (load|store) vaddr=0x([0-9a-f]+) paddr=0x([0-9a-f]+) size=(\d+) sign=(\d) "
                     r"value=0x([0-9a-f]+) io=(-?\d) dev=(.*)$")
    for line in lines[first + 1:last]:
        m = pat.match(line)
        if not m:
            if line.startswith("h6 "):
                problems.append(f"unexpected probe line: {line}")
            continue
        if m[2] != m[3]:
            problems.append(f"paddr differs from vaddr without paging: {line}")
        got.append((m[1], int(m[2], 16), int(m[4]), int(m[5]), int(m[6], 16), int(m[7]), m[8]))
    want = expected_mem(buf, a.uart, a.finisher)
    if got != want:
        problems.append("accesses differ (- expected, + reported):\n" + "\n".join(
            f"  {i}: - {fmt_mem(w) if w else '(none)'}\n     + {fmt_mem(g) if g else '(none)'}"
            for i, (w, g) in enumerate(zip(want + [None] * len(got), got + [None] * len(want)))
            if w != g and (w or g)))


def check_mem_v1(a, out, problems):
    buf = guest_buf(out, problems)
    if buf is None:
        return
    pat = re.compile(r"^(load|store) vaddr=0x([0-9a-f]+) paddr=0x([0-9a-f]+) size=(\d+)(?: io=(.*))?$")
    trace = []
    for line in out.splitlines():
        m = pat.match(line)
        if m:
            trace.append((m[1], int(m[2], 16), int(m[4]), 1 if m[5] else 0, m[5] or "RAM"))
    want = [(k, v, s, io, dev) for k, v, s, _, _, io, dev in expected_mem(buf, a.uart, a.finisher)]
    try:
        start = trace.index(want[0])
    except ValueError:
        problems.append(f"no access {want[0]} in the trace")
        return
    got = trace[start:start + len(want)]
    # Device names are regular expressions here (QEMU 7.2 names the UART's region "anon" + a pointer).
    got = [w if g and g[:4] == w[:4] and re.fullmatch(w[4], g[4]) else g
           for w, g in zip(want, got + [None] * len(want))][:len(got)]
    if got != want:
        problems.append("accesses differ (- expected, + reported):\n" + "\n".join(
            f"  {i}: - {w}\n     + {g}" for i, (w, g) in enumerate(zip(want, got + [None] * len(want)))
            if w != g))


def check_regs(a, out, problems):
    regs = dict(re.findall(r"^h6 reg (\S+) (0x[0-9a-f]+|unreadable)$", out, re.M))
    guest = dict(re.findall(r"^h6 guest (\w+) (0x[0-9a-f]+)$", out, re.M))
    n = re.findall(r"^h6 registers: (\d+)$", out, re.M)
    if len(n) != 1 or int(n[0]) != len(regs):
        problems.append(f"'h6 registers:' {n}, but {len(regs)} 'h6 reg' lines")
    want = {"zero": 0}
    for i in range(1, 32):
        want[X_NAMES[i]] = i * 0x0101010101010101
    for i in range(32):
        want[F_NAMES[i]] = 0x4000000000000000 + i * 0x100000001
    # The counters at the marker: minstret is what the marker instruction (csrr minstret) read, and
    # instret is its read-only alias.
    counters = ["minstret", "instret"]
    if a.counters == "only":
        want = {}
    for name in ["pc", "minstret", "mstatus", "mepc", "mscratch", "mtvec", "misa", "mhartid", "fcsr"]:
        if a.counters == "only" and name != "minstret":
            continue
        if name not in guest:
            problems.append(f"no 'h6 guest {name}' line")
            continue
        want[name] = int(guest[name], 16)
    if "minstret" in want:
        for name in counters[1:]:
            want[name] = want["minstret"]
    if a.counters == "without":
        for name in counters:
            want.pop(name, None)
    if "fcsr" in want:
        want["frm"] = want["fcsr"] >> 5 & 7
        want["fflags"] = want["fcsr"] & 0x1f
    if "mstatus" in want:
        sstatus_mask = (1 << 63) | (3 << 32) | 0xde133  # SD, UXL, MXR SUM XS FS VS SPP UBE SPIE SIE
        want["sstatus"] = want["mstatus"] & sstatus_mask
    for name, value in want.items():
        if name not in regs:
            problems.append(f"the probe did not report register {name}")
        elif regs[name] == "unreadable" or int(regs[name], 16) != value:
            problems.append(f"register {name}: probe {regs[name]}, expected 0x{value:x}")
    if a.counters == "only":
        return
    unreadable = [k for k, v in regs.items() if v == "unreadable"]
    if unreadable:
        problems.append(f"unreadable registers: {unreadable}")
    plugin_bytes = int.from_bytes(b"h6plugin", "little")
    m = re.search(r"^h6 guest write a1=0x(\w+) a2=0x(\w+) fa1=0x(\w+) mem=0x(\w+)$", out, re.M)
    if not m:
        problems.append("no 'h6 guest write' line")
    else:
        a1, a2, fa1, mem = (int(x, 16) for x in m.groups())
        if a1 != 0x1122334455667788 or a2 != a1:
            problems.append(f"after write_register(a1): the guest saw a1=0x{a1:x}, a copy 0x{a2:x}, "
                            f"expected 0x1122334455667788")
        if fa1 != 0x3ff8000000000000:
            problems.append(f"after write_register(fa1): the guest saw 0x{fa1:x}, expected 0x3ff8000000000000")
        if mem != plugin_bytes:
            problems.append(f"after write_memory_vaddr: the guest loaded 0x{mem:x}, expected 0x{plugin_bytes:x}")
    if "h6 wrote a1 fa1" not in out.splitlines():
        problems.append("no 'h6 wrote a1 fa1' line: a write_register call failed")
    if not re.search(r"^h6 wrote memory 0x[0-9a-f]+$", out, re.M):
        problems.append("no 'h6 wrote memory' line: write_memory_vaddr failed")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["count", "mem", "mem-v1", "regs"])
    ap.add_argument("--regions", type=int, default=3)
    ap.add_argument("--others", type=int, default=0, help="count: insns:/bb: lines the run must print")
    ap.add_argument("--symbols", help="count: symbols (comma-separated) the probe must report (needs --elf)")
    ap.add_argument("--counters", choices=["with", "without", "only"], default="with",
                    help="regs: check the instruction counters (minstret, instret) too, not, or only them")
    ap.add_argument("--uart", default="")
    ap.add_argument("--finisher", default="")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--elf", help="replace {SYMBOL} in the command with the symbol's address in this ELF")
    ap.add_argument("--nm", default="riscv64-unknown-elf-nm")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    a = ap.parse_args(argv[:split])
    cmd = argv[split + 1:]
    if not cmd:
        ap.error("no command after --")
    a.syms = {}
    if a.elf:
        # {SYMBOL} in the command: the guest symbol's address (0x...), from the ELF's symbol table.
        a.syms = check.symbols(a.elf, a.nm)
        cmd = [check.with_symbols(arg, a.syms) for arg in cmd]
    ran = check.run(cmd, a.timeout)
    if ran is None:
        return 1
    p, out = ran
    problems = []
    if p.returncode != 0:
        problems.append(f"exit status {p.returncode}, expected 0")
    {"count": check_count, "mem": check_mem, "mem-v1": check_mem_v1, "regs": check_regs}[a.mode](a, out, problems)
    return check.report(cmd, out, problems)


if __name__ == "__main__":
    sys.exit(main())
