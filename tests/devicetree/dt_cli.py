#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# keel's device-tree options (-machine dumpdtb, -dtb, -initrd, -append), checked against QEMU's virt board.
"""usage: dt_cli.py COMMAND --keel PATH [--qemu PATH] [options]

Commands (each exits 0 on success, 1 on failure with what differs, 77 if QEMU is needed and missing):
  warnings [--smp N]   the kinds of dtc warnings on keel's riscv-virt tree are a subset of those on
                       QEMU's virt tree with the same -smp
  append               -append "console=ttyS0 x" is /chosen/bootargs (fdtget), next to stdout-path
  initrd [--memory M]  -bios fw_jump.bin -kernel uboot.elf -initrd FILE: /chosen linux,initrd-start is the
                       kernel's entry + min(RAM/2, 128 MiB), end - start the file's size, both as in QEMU
  dtb                  -dtb with QEMU's tree: dumpdtb gives that tree back, only /chosen changed (-append,
                       -initrd); the dumped tree is also a valid -dtb input
  dtb-boot             -dtb with QEMU's tree (less the flash and PCIe nodes: keel has neither) boots OpenSBI
                       and U-Boot to the prompt, and U-Boot's tree is that one with -append's bootargs
  bad-dtb              -dtb with a file that is no dtb, a truncated one, an empty one or none: status 1 and
                       a message naming the file, both with dumpdtb and when running
  diff [--smp N]       (a tool, not a test) print how keel's riscv-virt tree differs from QEMU's virt tree
"""
import argparse
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "boot"))
from console import Console, ConsoleError  # noqa: E402

OPENSBI_JUMP = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin"
UBOOT_SMODE = "/usr/lib/u-boot/qemu-riscv64_smode/uboot.elf"
SKIP = 77
MiB = 1 << 20


class Failure(Exception):
    pass


def run(cmd, what, status=0):
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    if p.returncode != status:
        raise Failure(f"{what}: `{' '.join(cmd)}` exited with status {p.returncode}, expected {status}\n"
                      f"stdout: {p.stdout[-2000:]}\nstderr: {p.stderr[-2000:]}")
    return p


def parse_dtb(path):
    """{node path: {property: bytes}} in file order, read from a flattened device tree (dtb)."""
    data = open(path, "rb").read()
    magic, total, off_struct, off_strings = struct.unpack_from(">4I", data, 0)
    if magic != 0xD00DFEED or total > len(data):
        raise Failure(f"{path}: not a complete dtb")
    nodes, stack, pos = {}, [], off_struct

    def string_at(off):
        end = data.index(b"\0", off)
        return data[off:end].decode()

    while True:
        (token,) = struct.unpack_from(">I", data, pos)
        pos += 4
        if token == 1:  # FDT_BEGIN_NODE
            name = string_at(pos)
            pos = (pos + len(name) + 1 + 3) & ~3
            stack.append(name)
            nodes["/" + "/".join(stack[1:])] = {}
        elif token == 2:  # FDT_END_NODE
            stack.pop()
        elif token == 3:  # FDT_PROP
            length, nameoff = struct.unpack_from(">2I", data, pos)
            pos += 8
            nodes["/" + "/".join(stack[1:])][string_at(off_strings + nameoff)] = data[pos:pos + length]
            pos = (pos + length + 3) & ~3
        elif token == 4:  # FDT_NOP
            pass
        elif token == 9:  # FDT_END
            return nodes
        else:
            raise Failure(f"{path}: bad structure token {token} at {pos - 4}")


def cells(value):
    return list(struct.unpack(f">{len(value) // 4}I", value))


def number(value):
    """A one- or two-cell number (linux,initrd-*)."""
    c = cells(value)
    if len(c) not in (1, 2):
        raise Failure(f"expected a 1- or 2-cell number, got {len(value)} bytes")
    return c[0] if len(c) == 1 else c[0] << 32 | c[1]


def fdtget(dtb, node, prop, kind="s"):
    return run(["fdtget", "-t", kind, dtb, node, prop], f"fdtget {node} {prop}").stdout.strip()


def keel_dump(a, tmp, name, *args, machine="riscv-virt"):
    out = os.path.join(tmp, name)
    run([a.keel, "-M", f"{machine},dumpdtb={out}", *args], "keel dumpdtb")
    return out


def qemu_dump(a, tmp, name, *args):
    out = os.path.join(tmp, name)
    run([a.qemu, "-M", f"virt,dumpdtb={out}", "-display", "none", "-monitor", "none", "-serial", "none",
         *args], "qemu dumpdtb")
    return out


def dtc_warnings(dtb):
    """The kinds of warning dtc reports decompiling `dtb` (e.g. {'interrupt_provider'}), and its output."""
    p = run(["dtc", "-I", "dtb", "-O", "dts", "-o", os.devnull, dtb], f"dtc {dtb}")
    return set(re.findall(r"Warning \(([\w-]+)\)", p.stderr)), p.stderr


def cmd_warnings(a, tmp):
    smp = ["-smp", str(a.smp)]
    keel, kmsg = dtc_warnings(keel_dump(a, tmp, "keel.dtb", *smp))
    qemu, _ = dtc_warnings(qemu_dump(a, tmp, "qemu.dtb", *smp))
    print(f"dtc warning kinds: keel {sorted(keel)}, qemu {sorted(qemu)}")
    if not keel <= qemu:
        raise Failure(f"dtc warns about keel's tree for {sorted(keel - qemu)}, not about QEMU's:\n{kmsg}")


def cmd_append(a, tmp):
    args = "console=ttyS0 x"
    dtb = keel_dump(a, tmp, "keel.dtb", "-append", args)
    got = fdtget(dtb, "/chosen", "bootargs")
    if got != args:
        raise Failure(f"/chosen bootargs is {got!r}, expected {args!r}")
    if fdtget(dtb, "/chosen", "stdout-path") != "/soc/serial@10000000":
        raise Failure("/chosen stdout-path is not /soc/serial@10000000")
    # Without -append: no bootargs at all (not an empty string).
    dtb = keel_dump(a, tmp, "plain.dtb")
    if "bootargs" in parse_dtb(dtb)["/chosen"]:
        raise Failure("/chosen has bootargs without -append")


def elf_entry(path):
    data = open(path, "rb").read(64)
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise Failure(f"{path}: not an ELF64 file")
    return struct.unpack_from("<Q", data, 24)[0]


def cmd_initrd(a, tmp):
    initrd = os.path.join(tmp, "initrd.img")
    size = 123457  # odd: the end is not rounded
    with open(initrd, "wb") as f:
        f.write(bytes(i * 7 % 251 for i in range(size)))
    boot = ["-m", a.memory, "-bios", OPENSBI_JUMP, "-kernel", UBOOT_SMODE, "-initrd", initrd]
    dtb = keel_dump(a, tmp, "keel.dtb", *boot)
    ram = int(a.memory.rstrip("M")) * MiB
    expected = elf_entry(UBOOT_SMODE) + min(ram // 2, 128 * MiB)
    def chosen_number(prop):  # fdtget -t x prints the cells, high first
        words = fdtget(dtb, "/chosen", prop, "x").split()
        return int("".join(f"{int(w, 16):08x}" for w in words), 16)

    start, end = chosen_number("linux,initrd-start"), chosen_number("linux,initrd-end")
    print(f"keel: initrd {start:#x}-{end:#x}, expected start {expected:#x}")
    if start != expected:
        raise Failure(f"linux,initrd-start is {start:#x}, expected {expected:#x} "
                      "(the kernel's entry + min(RAM/2, 128 MiB))")
    if end - start != size:
        raise Failure(f"linux,initrd-end - linux,initrd-start is {end - start}, expected the file's {size}")
    q = parse_dtb(qemu_dump(a, tmp, "qemu.dtb", *boot))["/chosen"]
    qs, qe = number(q["linux,initrd-start"]), number(q["linux,initrd-end"])
    print(f"qemu: initrd {qs:#x}-{qe:#x}")
    if (qs, qe) != (start, end):
        raise Failure(f"QEMU places the initrd at {qs:#x}-{qe:#x}, keel at {start:#x}-{end:#x}")


def cmd_dtb(a, tmp):
    qdtb = qemu_dump(a, tmp, "qemu.dtb")
    q = parse_dtb(qdtb)
    initrd = os.path.join(tmp, "initrd.img")
    with open(initrd, "wb") as f:
        f.write(b"\xa5" * 4096)
    dtb = keel_dump(a, tmp, "keel.dtb", "-dtb", qdtb, "-append", "root=/dev/ram", "-bios", OPENSBI_JUMP,
                    "-kernel", UBOOT_SMODE, "-initrd", initrd)
    k = parse_dtb(dtb)
    for path in sorted(set(q) | set(k)):
        if path == "/chosen":
            continue
        if q.get(path) != k.get(path):
            raise Failure(f"-dtb: node {path} differs from QEMU's tree: qemu {q.get(path)}, "
                          f"keel {k.get(path)}")
    if list(q) != list(k):
        raise Failure("-dtb: the nodes are reordered")
    chosen = dict(q["/chosen"])
    expected_new = {"bootargs", "linux,initrd-start", "linux,initrd-end"}
    for p, v in chosen.items():
        if k["/chosen"].get(p) != v:
            raise Failure(f"-dtb: /chosen {p} of the given tree is lost or changed: {k['/chosen'].get(p)}")
    if set(k["/chosen"]) - set(chosen) != expected_new:
        raise Failure(f"-dtb: /chosen has {sorted(k['/chosen'])}, expected QEMU's {sorted(chosen)} "
                      f"and {sorted(expected_new)}")
    if k["/chosen"]["bootargs"] != b"root=/dev/ram\0":
        raise Failure(f"-dtb: /chosen bootargs is {k['/chosen']['bootargs']!r}")
    s, e = number(k["/chosen"]["linux,initrd-start"]), number(k["/chosen"]["linux,initrd-end"])
    if e - s != 4096:
        raise Failure(f"-dtb: the initrd is {s:#x}-{e:#x}, not 4096 bytes")
    # The dumped tree is itself a good -dtb: given back with no options, /chosen keeps what it has.
    again = parse_dtb(keel_dump(a, tmp, "again.dtb", "-dtb", dtb))
    if again != k:
        raise Failure("-dtb of keel's own dump does not come back unchanged")


# Devices of QEMU's virt that keel's riscv-virt does not have and that U-Boot touches on its way to the
# prompt: with the CFI flash it takes a store access fault, with the PCIe host it never gets there.
MISSING_IN_KEEL = ["/flash@20000000", "/soc/pci@30000000"]


def cmd_dtb_boot(a, tmp):
    qdtb = qemu_dump(a, tmp, "qemu.dtb")
    for node in MISSING_IN_KEEL:
        run(["fdtput", "-r", qdtb, node], f"fdtput -r {node}")
    cmd = [a.keel, "-M", "riscv-virt", "-dtb", qdtb, "-bios", OPENSBI_JUMP, "-kernel", UBOOT_SMODE,
           "-append", "from-dtb"]
    t = 60
    try:
        with Console(cmd, name="keel") as c:
            m = c.expect(r"^Platform Name\s*: (.*)\n", t, what="OpenSBI's banner")
            if m.group(1).strip() != "riscv-virtio,qemu":
                c.fail(f"OpenSBI's Platform Name is {m.group(1).strip()!r}: not the model of QEMU's tree")
            c.expect(r"Hit any key to stop autoboot", t, what="U-Boot's autoboot countdown")
            c.send(" ")
            c.expect(r"^=> ", t, what="the U-Boot prompt")
            c.send("fdt addr $fdtcontroladdr; fdt print /chosen bootargs\n")
            c.expect(r'bootargs = "from-dtb"', t, what="/chosen bootargs from -append in U-Boot's tree")
            c.expect(r"^=> ", t, what="the prompt after `fdt print`")
            c.send("poweroff\n")
            status = c.wait_exit(t)
            if status != 0:
                c.fail(f"after `poweroff` keel exited with status {status}")
    except ConsoleError as e:
        raise Failure(str(e)) from None


def cmd_bad_dtb(a, tmp):
    good = keel_dump(a, tmp, "good.dtb")
    blob = open(good, "rb").read()
    cases = {
        "text.dtb": (b"/dts-v1/;\n/ { };\n", "not a flattened device tree"),
        "empty.dtb": (b"", "not a flattened device tree"),
        "truncated.dtb": (blob[:len(blob) // 2], "truncated"),
        "header.dtb": (blob[:40], "truncated"),
        "version.dtb": (blob[:20] + struct.pack(">I", 1) + blob[24:], "device tree"),
        "missing.dtb": (None, "No such file or directory"),
    }
    for name, (content, message) in cases.items():
        path = os.path.join(tmp, name)
        if content is not None:
            with open(path, "wb") as f:
                f.write(content)
        for dump in (True, False):
            # Without dumpdtb the machine would run: firmware that got a tree would hang the test, so a
            # short timeout turns that into a failure rather than a hang.
            cmd = [a.keel, "-M", "riscv-virt" + (f",dumpdtb={tmp}/out.dtb" if dump else ""), "-dtb", path]
            try:
                p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
            except subprocess.TimeoutExpired:
                raise Failure(f"{name}: `{' '.join(cmd)}` still runs after 20 s") from None
            what = f"{name} ({'dumpdtb' if dump else 'running'})"
            print(f"{what}: status {p.returncode}: {p.stderr.strip()}")
            if p.returncode != 1:
                raise Failure(f"{what}: status {p.returncode}, expected 1; stderr: {p.stderr}")
            if f"keel: {path}" not in p.stderr and f"{path}:" not in p.stderr:
                raise Failure(f"{what}: the message does not name {path}: {p.stderr}")
            if message not in p.stderr:
                raise Failure(f"{what}: the message does not say {message!r}: {p.stderr}")
            if dump and os.path.exists(f"{tmp}/out.dtb"):
                raise Failure(f"{what}: dumpdtb wrote a tree")


def cmd_diff(a, tmp):
    smp = ["-smp", str(a.smp)]
    k = parse_dtb(keel_dump(a, tmp, "keel.dtb", *smp))
    q = parse_dtb(qemu_dump(a, tmp, "qemu.dtb", *smp))
    for path in list(q) + [p for p in k if p not in q]:
        if path not in k:
            print(f"only in qemu: {path}")
        elif path not in q:
            print(f"only in keel: {path}")
        else:
            for p in list(q[path]) + [p for p in k[path] if p not in q[path]]:
                if q[path].get(p) != k[path].get(p):
                    print(f"{path} {p}: qemu {q[path].get(p)!r} keel {k[path].get(p)!r}")


COMMANDS = {"warnings": cmd_warnings, "append": cmd_append, "initrd": cmd_initrd, "dtb": cmd_dtb,
            "dtb-boot": cmd_dtb_boot, "bad-dtb": cmd_bad_dtb, "diff": cmd_diff}
NEEDS_QEMU = {"warnings", "initrd", "dtb", "dtb-boot", "diff"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=sorted(COMMANDS))
    ap.add_argument("--keel", required=True)
    ap.add_argument("--qemu", default="qemu-system-riscv64")
    ap.add_argument("--smp", type=int, default=1)
    ap.add_argument("--memory", default="128M", help="-m, in MiB with an M suffix")
    a = ap.parse_args()
    if a.command in NEEDS_QEMU:
        q = shutil.which(a.qemu)
        if not q:
            print(f"dt_cli: {a.qemu} not found: skipped (scripts/setup installs qemu-system-misc)")
            return SKIP
        a.qemu = q
    with tempfile.TemporaryDirectory(prefix="keel-dt-") as tmp:
        try:
            COMMANDS[a.command](a, tmp)
        except Failure as e:
            print(f"dt_cli {a.command}: FAIL: {e}")
            return 1
    print(f"dt_cli {a.command}: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
