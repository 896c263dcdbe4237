#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The virtio-blk guest program against a real image, checked afterwards with qemu-img.

usage: virtio_blk_test.py --emulator KEEL [--accel tci|tcg] --elf virtio-blk.elf --variant VARIANT [--keep DIR]

Creates an empty 64 MiB image with `qemu-img create`, runs the guest program (virtio-blk.c) on it, checks
its exit status and console lines, then checks the image: `qemu-img check` finds no corruption and no
leak (qcow2), `qemu-img compare` and a byte-by-byte comparison of `qemu-img convert -O raw` agree with the
patterns the guest wrote where it wrote them, and, for qcow2, `qemu-img map` shows the discarded clusters
deallocated. Variants:
  qcow2, raw                 -drive file=F,format=FMT,if=virtio (the first free slot, 0)
  qcow2-device, raw-device   -drive file=F,format=FMT,if=none,id=d0
                             -device virtio-blk-device,drive=d0,bus=virtio-mmio-bus.3
  qcow2-snapshot             -drive file=F,format=qcow2,if=virtio -snapshot, and
  raw-snapshot               -drive file=F,format=raw,if=virtio,snapshot=on, on an image with data: the
                             guest sees its writes, the image is byte-identical afterwards and the
                             temporary overlay (in TMPDIR) is gone
  qemu-qcow2, qemu-raw       the same program under qemu-system-riscv64 (the reference; exit 77 if it is
                             not installed) with modern virtio-mmio (force-legacy=false); QEMU ignores
                             discards (discard=ignore) and has no ID for the disk
"""
import argparse
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

SECTOR = 512
SIZE = 64 << 20
CAPACITY = SIZE // SECTOR
MID = CAPACITY // 2 - 3
LAST = CAPACITY - 1
FEATURES = 0x100006244  # VERSION_1, SEG_MAX, BLK_SIZE, FLUSH, DISCARD, WRITE_ZEROES
MASK = (1 << 64) - 1


def pattern(sector, count, tag):
    """The bytes the guest writes (virtio-blk.c: pattern_word)."""
    out = bytearray()
    for s in range(sector, sector + count):
        out += struct.pack("<64Q", *[((s << 20) ^ (tag << 56) ^ ((j + 1) * 0x9E3779B97F4A7C15)) & MASK
                                     for j in range(64)])
    return bytes(out)


def expected_image(discard_zeroes):
    """The disk after the guest's run: its writes, zeroed ranges and discard, in the order it made them."""
    img = bytearray(SIZE)

    def put(sector, count, tag):
        img[sector * SECTOR:(sector + count) * SECTOR] = pattern(sector, count, tag) if tag else bytes(
            count * SECTOR)

    put(0, 8, 1)
    put(MID, 16, 2)
    put(LAST, 1, 3)
    put(1000, 200, 4)
    put(2048, 32, 5)
    put(2050, 4, 0)
    put(2060, 8, 0)
    put(4096, 256, 6)
    if discard_zeroes:
        put(4096, 256, 0)
    put(8, 1, 7)
    return img


def describe(offset):
    """Which of the guest's writes covers a byte offset, for failure messages."""
    s = offset // SECTOR
    for name, first, n in (("start", 0, 8), ("rewritten sector 8", 8, 1), ("middle", MID, 16), ("last", LAST, 1),
                           ("100 KiB write", 1000, 200), ("write-zeroes area", 2048, 32),
                           ("discarded area", 4096, 256)):
        if first <= s < first + n:
            return f"sector {s} ({name})"
    return f"sector {s} (never written)"


class Failure(Exception):
    pass


def run(cmd, timeout=60, ok=(0,), env=None):
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, env=env)
    if p.returncode not in ok:
        raise Failure(f"{' '.join(cmd)}: exit status {p.returncode}\n{p.stdout}{p.stderr}")
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--emulator", required=True, help="keel")
    ap.add_argument("--accel", default="tci", help="keel's engine (default tci)")
    ap.add_argument("--elf", required=True)
    ap.add_argument("--variant", required=True,
                    choices=["qcow2", "raw", "qcow2-device", "raw-device", "qcow2-snapshot", "raw-snapshot",
                             "qemu-qcow2", "qemu-raw"])
    ap.add_argument("--qemu", default="qemu-system-riscv64")
    ap.add_argument("--keep", help="leave the image in this directory")
    a = ap.parse_args()
    qemu = a.variant.startswith("qemu-")
    fmt = "qcow2" if "qcow2" in a.variant else "raw"
    if qemu and not shutil.which(a.qemu):
        print(f"virtio_blk_test: {a.qemu} is not installed: skipped")
        return 77
    tmp = a.keep or tempfile.mkdtemp(prefix="keel-virtio-blk-")
    os.makedirs(tmp, exist_ok=True)
    try:
        disk = os.path.join(tmp, f"disk.{fmt}")
        if os.path.exists(disk):
            os.unlink(disk)
        run(["qemu-img", "create", "-q", "-f", fmt, disk, str(SIZE)])
        snapshot = a.variant.endswith("-snapshot")
        env = dict(os.environ)
        if snapshot:
            # Data under and around what the guest writes, so "unchanged" means something.
            run(["qemu-io", "-f", fmt, "-c", "write -q -P 0xab 0 4M", "-c", "write -q -P 0xcd 32M 2M", disk])
            with open(disk, "rb") as f:
                before = hashlib.sha256(f.read()).hexdigest()
            snapdir = os.path.join(tmp, "snapdir")
            os.mkdir(snapdir)
            env["TMPDIR"] = snapdir
        if qemu:
            cmd = [a.qemu, "-M", "virt", "-bios", "none", "-kernel", a.elf, "-display", "none", "-serial",
                   "stdio", "-monitor", "none", "-global", "virtio-mmio.force-legacy=false", "-drive", f"file={disk},format={fmt},if=none,id=d0", "-device",
                   "virtio-blk-device,drive=d0,bus=virtio-mmio-bus.3"]
            slot, ident = 3, ""  # QEMU answers GET_ID with the serial, none here
        elif a.variant.endswith("-device"):
            cmd = [a.emulator, "-M", "riscv-virt", "-accel", a.accel, "-bios", "none", "-kernel", a.elf,
                   "-drive", f"file={disk},format={fmt},if=none,id=d0", "-device",
                   "virtio-blk-device,drive=d0,bus=virtio-mmio-bus.3"]
            slot, ident = 3, "d0"
        else:
            cmd = [a.emulator, "-M", "riscv-virt", "-accel", a.accel, "-bios", "none", "-kernel", a.elf,
                   "-drive", f"file={disk},format={fmt},if=virtio"]
            if a.variant == "qcow2-snapshot":
                cmd.append("-snapshot")
            elif a.variant == "raw-snapshot":
                cmd[-1] += ",snapshot=on"
            slot, ident = 0, "drive0"
        p = run(cmd, ok=range(256), env=env)
        out = p.stdout
        if p.returncode != 0:
            raise Failure(f"the guest exited with status {p.returncode}\n--- console:\n{out}--- stderr:\n"
                          f"{p.stderr}")
        want = [f"virtio-blk: slot {slot} irq {slot + 1} capacity {CAPACITY} blk_size 512 seg_max 254 "
                f"features 0x{FEATURES:x}",
                "virtio-blk: writes and reads OK", "virtio-blk: write-zeroes OK", "virtio-blk: discard OK",
                f"virtio-blk: id '{ident}'", "virtio-blk: out-of-range requests refused",
                "virtio-blk: broken rings need a reset, and the device recovers", "virtio-blk: all checks passed"]
        if not qemu:
            want += ["virtio-blk: bad buffers get IOERR", "virtio-blk: DMA into the device's registers survived"]
        lines = out.splitlines()
        for w in want:
            if w not in lines:
                raise Failure(f"the console lacks the line {w!r}\n--- console:\n{out}")

        if snapshot:
            with open(disk, "rb") as f:
                after = hashlib.sha256(f.read()).hexdigest()
            if after != before:
                raise Failure(f"the image changed under -snapshot (sha256 {before} before, {after} after)")
            left = os.listdir(snapdir)
            if left:
                raise Failure(f"the temporary overlay is still in TMPDIR after keel exited: {left}")
            if fmt == "qcow2":
                c = run(["qemu-img", "check", disk], ok=range(256))
                if c.returncode != 0:
                    raise Failure(f"qemu-img check {disk}: exit status {c.returncode}\n{c.stdout}{c.stderr}")
            print(f"virtio_blk_test: {a.variant}: OK")
            return 0

        # The image, as QEMU's tools see it.
        if fmt == "qcow2":
            c = run(["qemu-img", "check", "--output=json", disk], ok=(0, 2, 3))
            r = json.loads(c.stdout)
            if c.returncode != 0 or r.get("corruptions", 0) or r.get("leaks", 0) or r.get("check-errors", 0):
                raise Failure(f"qemu-img check {disk}: exit status {c.returncode}\n{c.stdout}{c.stderr}")
        info = json.loads(run(["qemu-img", "info", "--output=json", "-f", fmt, disk]).stdout)
        if info["virtual-size"] != SIZE:
            raise Failure(f"the virtual size changed: {info['virtual-size']}")
        expect = expected_image(discard_zeroes=not qemu)
        ref = os.path.join(tmp, "expected.raw")
        with open(ref, "wb") as f:
            f.write(expect)
        cmp = run(["qemu-img", "compare", "-f", "raw", "-F", fmt, ref, disk], ok=(0, 1))
        flat = os.path.join(tmp, "flat.raw")
        run(["qemu-img", "convert", "-f", fmt, "-O", "raw", disk, flat])
        with open(flat, "rb") as f:
            got = f.read()
        if got != bytes(expect):
            first = next(i for i in range(min(len(got), len(expect))) if got[i] != expect[i]) \
                if len(got) == len(expect) else min(len(got), len(expect))
            raise Failure(f"the image differs from the guest's writes at offset {first}, {describe(first)}: "
                          f"{got[first:first + 8].hex()} instead of {expect[first:first + 8].hex()}")
        if cmp.returncode != 0:
            raise Failure(f"qemu-img compare disagrees: {cmp.stdout}{cmp.stderr}")
        if fmt == "qcow2" and not qemu:
            # The discarded 128 KiB (two clusters) are no longer allocated.
            m = json.loads(run(["qemu-img", "map", "--output=json", disk]).stdout)
            lo, hi = 4096 * SECTOR, (4096 + 256) * SECTOR
            for e in m:
                if e["start"] < hi and e["start"] + e["length"] > lo and e["data"]:
                    raise Failure(f"qemu-img map shows data in the discarded range: {e}")
        print(f"virtio_blk_test: {a.variant}: OK")
        return 0
    except (Failure, subprocess.TimeoutExpired) as e:
        print(f"virtio_blk_test: {a.variant}: FAIL: {e}")
        return 1
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
