#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""U-Boot on keel's riscv-virt reads a file from an ext4 disk through virtio-blk.

The disk is built here (mkfs.ext4 -d), converted to qcow2 with qemu-img, and given to keel in one of
four ways (--layout): a qcow2 image on a -drive if=virtio; a qcow2 overlay on that image as backing
file; raw, attached QEMU's other way (-drive if=none,id=d0 -device virtio-blk-device,drive=d0); the
qcow2 image with -snapshot. U-Boot must find the disk (virtio scan/info), list the file system (ext4ls)
and load the file into memory (load, md.b) with the bytes written. With -snapshot, U-Boot also writes a
block (virtio write) and reads it back; afterwards the image must be byte-identical and the temporary
overlay gone from TMPDIR.
"""
import hashlib
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from console import Console, ConsoleError  # noqa: E402
from boot_test import Check, firmware  # noqa: E402

MESSAGE = "hello from a keel disk, through virtio-blk\n"


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def make_disk(tmp, layout):
    root = os.path.join(tmp, "root")
    os.mkdir(root)
    with open(os.path.join(root, "hello.txt"), "w") as f:
        f.write(MESSAGE)
    raw = os.path.join(tmp, "disk.ext4")
    mkfs = shutil.which("mkfs.ext4") or "/sbin/mkfs.ext4"  # /sbin is not on every user's PATH
    subprocess.run([mkfs, "-q", "-F", "-d", root, raw, "8M"], check=True, stdout=subprocess.DEVNULL)
    if layout == "raw-device":
        return ["-drive", f"file={raw},format=raw,if=none,id=d0", "-device", "virtio-blk-device,drive=d0"]
    qcow = os.path.join(tmp, "disk.qcow2")
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow], check=True)
    if layout == "qcow2":
        return ["-drive", f"file={qcow},format=qcow2,if=virtio"]
    if layout == "snapshot":
        return ["-drive", f"file={qcow},format=qcow2,if=virtio", "-snapshot"]
    top = os.path.join(tmp, "top.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "disk.qcow2", "-F", "qcow2", top],
                   check=True)
    return ["-drive", f"file={top},format=qcow2,if=virtio"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--emulator", required=True)
    ap.add_argument("--layout", choices=["qcow2", "overlay", "raw-device", "snapshot"], default="qcow2")
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="keel-disk-")
    try:
        cmd = [a.emulator, "-M", "riscv-virt", "-m", "128M"] + firmware("smode") + make_disk(tmp, a.layout)
        env = dict(os.environ)
        qcow = os.path.join(tmp, "disk.qcow2")
        if a.layout == "snapshot":
            snapdir = os.path.join(tmp, "snapdir")
            os.mkdir(snapdir)
            env["TMPDIR"] = snapdir
            before = sha256(qcow)
        with Console(cmd, name="keel", env=env) as c:
            t = Check(c)
            c.expect(r"Hit any key to stop autoboot", a.timeout, what="U-Boot's autoboot countdown")
            c.send(" ")
            c.expect(r"^=> ", a.timeout, what="the U-Boot prompt")
            t.command("virtio scan", a.timeout)
            info = t.command("virtio info", a.timeout)
            t.that("Device 0: QEMU VirtIO Block Device" in info and "16384 x 512" in info,
                   f"virtio info does not show the 8 MiB disk: {info!r}")
            ls = t.command("ext4ls virtio 0 /", a.timeout)
            t.that(re.search(rf"^\s+{len(MESSAGE)} hello\.txt$", ls, re.M) is not None,
                   f"ext4ls does not list hello.txt with its size: {ls!r}")
            load = t.command("load virtio 0 $kernel_addr_r /hello.txt", a.timeout)
            t.that(f"{len(MESSAGE)} bytes read" in load, f"load did not read the file: {load!r}")
            dump = t.command(f"md.b $kernel_addr_r {len(MESSAGE):#x}", a.timeout)
            got = bytes(int(b, 16) for line in dump.splitlines()
                        for b in line.split(":", 1)[1].split("  ")[0].split()) if ":" in dump else b""
            t.that(got == MESSAGE.encode(), f"md.b shows {got!r}, not the file's bytes")
            if a.layout == "snapshot":
                # The last block (16383) gets 0x5a bytes, read back elsewhere.
                t.command("mw.b $kernel_addr_r 0x5a 0x200", a.timeout)
                w = t.command("virtio write $kernel_addr_r 0x3fff 1", a.timeout)
                t.that("1 blocks written: OK" in w, f"virtio write failed: {w!r}")
                t.command("setexpr back $kernel_addr_r + 0x10000", a.timeout)
                t.command("mw.b $back 0 0x200", a.timeout)
                r = t.command("virtio read $back 0x3fff 1", a.timeout)
                t.that("1 blocks read: OK" in r, f"virtio read failed: {r!r}")
                cmp = t.command("cmp.b $kernel_addr_r $back 0x200", a.timeout)
                t.that("Total of 512 byte(s) were the same" in cmp, f"the block read back differs: {cmp!r}")
                t.that(not os.listdir(snapdir), f"the overlay is visible in TMPDIR: {os.listdir(snapdir)}")
            c.send("poweroff\n")
            status = c.wait_exit(a.timeout)
            t.that(status == 0, f"keel exited with status {status} after poweroff")
            if a.layout == "snapshot":
                t.that(sha256(qcow) == before, "the image changed under -snapshot")
                t.that(not os.listdir(snapdir), f"the overlay is left in TMPDIR: {os.listdir(snapdir)}")
        print(f"disk_test: {a.layout}: OK")
        return 0
    except ConsoleError as e:
        print(f"disk_test: FAIL: {e}")
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
