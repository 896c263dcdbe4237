#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Hand-made corrupt qcow2 images through keel-img and keel: clear errors, no crash, the file never modified.
"""Run one corrupt-image case: corrupt_images.py --keel-img BIN --keel BIN --guest ELF --work DIR CASE.

Each case starts from images qemu-img and qemu-io made, patches bytes, and asserts, for that one file:
  * `keel-img info` and `keel-img check` give the expected exit status and a message naming the file and
    the problem, and `qemu-img check` reaches the same verdict (both find it corrupt, or both clean);
  * keel refuses to start a guest with the disk (-drive if=virtio, and -drive if=none + -device
    virtio-blk-device), with a clear error and before the guest prints anything; or, where the problem
    is only found by reading the data, U-Boot's `virtio read` of the bad range gets an I/O error while
    the good ranges read the bytes qemu-io wrote, and keel exits cleanly;
  * every image file keeps its bytes and mtime through all of that.
--list lists the cases; --explore CASE prints what each tool does with it (for writing expectations);
--export DIR writes every case's image, and small good images, into DIR (the fuzzer's seed corpus).
Exit 0 on success, 1 on failure, 77 when qemu-img or qemu-io is not installed.
"""

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OPENSBI = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin"
UBOOT = "/usr/lib/u-boot/qemu-riscv64_smode/uboot.elf"
GUEST_LINE = "Hello from keel"  # what tests/guest/hello.elf prints once it runs

KEEL_IMG = KEEL = GUEST = WORK = None
CASES = {}

# The base image's layout (qemu-img create -f qcow2 4M, 64 KiB clusters, then the qemu-io writes below):
# header 0, refcount table 0x10000, refcount block 0x20000, L1 table 0x30000, L2 table 0x40000, data
# clusters 0x50000 (guest 0), 0x60000 (guest 64K) and 0x70000 (guest 1M); the file is 0x80000 bytes.
L1, RT, RB, L2 = 0x30000, 0x10000, 0x20000, 0x40000
DATA = [0x50000, 0x60000, 0x70000]
COPIED, COMPRESSED = 1 << 63, 1 << 62


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def path(name):
    return os.path.join(WORK, name)


def run(argv, timeout=120):
    return subprocess.run(argv, cwd=WORK, capture_output=True, text=True, timeout=timeout)


def sh(*argv):
    p = run(list(argv))
    check(p.returncode == 0, f"{' '.join(argv)}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    return p.stdout


# --- images ---

def base(name="base.qcow2"):
    """A 4 MiB qcow2 with 0x41 in guest [0, 128K) and 0x42 in [1M, 1M+64K)."""
    if not os.path.exists(path(name)):
        sh("qemu-img", "create", "-q", "-f", "qcow2", name, "4M")
        sh("qemu-io", "-c", "write -P 0x41 0 128k", "-c", "write -P 0x42 1M 64k", name)
    return name


def compressed():
    """The base image converted with -c: its guest clusters are compressed."""
    if not os.path.exists(path("comp.qcow2")):
        sh("qemu-img", "convert", "-c", "-O", "qcow2", base(), "comp.qcow2")
    return "comp.qcow2"


def with_snapshot():
    """The base image with an internal snapshot (its table follows the data)."""
    if not os.path.exists(path("snap.qcow2")):
        shutil.copy(path(base()), path("snap.qcow2"))
        sh("qemu-img", "snapshot", "-c", "s1", "snap.qcow2")
    return "snap.qcow2"


def u64(data, at):
    return struct.unpack(">Q", data[at:at + 8])[0]


def u32(data, at):
    return struct.unpack(">I", data[at:at + 4])[0]


def derive(src, dst, patches=(), size=None):
    """Copy image `src` to `dst` with patches [(offset, value, width in bytes)] and an optional new size."""
    with open(path(src), "rb") as f:
        d = bytearray(f.read())
    for at, value, width in patches:
        d[at:at + width] = value.to_bytes(width, "big")
    if size is not None:
        d = d[:size] + bytes(max(0, size - len(d)))
    with open(path(dst), "wb") as f:
        f.write(d)
    return dst


def data(name):
    with open(path(name), "rb") as f:
        return f.read()


def l2_of(name):
    """Offset of the L2 table behind the image's first L1 entry."""
    d = data(name)
    return u64(d, u64(d, 40)) & 0x00fffffffffffe00


def header_patch(at, value, width):
    def build(name):
        return derive(base(), name, [(at, value, width)])
    return build


def set_backing(name, backing):
    """Give image `name` (an overlay) the backing file name `backing` through qemu-img rebase -u."""
    sh("qemu-img", "rebase", "-u", "-f", "qcow2", "-b", backing, "-F", "qcow2", name)


# --- cases ---

class Case:
    """What every tool must do with one corrupt image.

    info, check: (exit status of keel-img, a regex its stderr must match); check's status is the one
      qemu-img's check gives (1: cannot be opened/checked, 2: corruptions, 3: leaks only).
    qemu_check: qemu-img check's exit status on the same file (it must agree that the file is bad);
      qemu_args replaces `check` where qemu-img check cannot be run (it hangs on a backing loop).
    vm: ("refuse", regex of keel's error) | ("guest-reads", [(sector, byte or None for an error)], regex of
      the message keel logs or None) | ("runs", None): what keel does with the disk.
    repair: "leaks" or "all": `check --output=json` says what qemu-img's says (image-end-offset included),
      and `check -r leaks|all` repairs the image so that qemu-img check finds nothing.
    vm_repairs: keel opens the image read/write and repairs it (the dirty bit with only leaks, as QEMU does):
      the file changes, and then qemu-img check finds nothing and the dirty bit is clear.
    """

    def __init__(self, name, build, info, check, qemu_check, vm, what, readonly=False, info_args=(),
                 qemu_args=("check",), repair=None, vm_repairs=False):
        self.name, self.build, self.info, self.check = name, build, info, check
        self.qemu_check, self.vm, self.what, self.readonly = qemu_check, vm, what, readonly
        self.info_args, self.qemu_args, self.repair, self.vm_repairs = info_args, qemu_args, repair, vm_repairs


def case(*args, **kw):
    c = Case(*args, **kw)
    CASES[c.name] = c


def refuse(msg):
    return ("refuse", msg)


def bad_open(msg):
    return (1, msg)


# Header fields (qcow2 spec, "Header"): 4 version, 8 backing_file_offset, 16 backing_file_size,
# 20 cluster_bits, 24 size, 32 crypt_method, 36 l1_size, 40 l1_table_offset, 48 refcount_table_offset,
# 56 refcount_table_clusters, 60 nb_snapshots, 64 snapshots_offset, 72 incompatible_features,
# 96 refcount_order, 100 header_length.

case("truncated-header", lambda n: derive(base(), n, size=50),
     info=bad_open(r"file too short for a qcow2 header \(50 bytes\)"),
     check=bad_open(r"file too short"), qemu_check=1, vm=refuse(r"file too short"),
     what="the file ends inside the header")

case("truncated-v3-header", lambda n: derive(base(), n, size=90),
     info=bad_open(r"too short for a qcow2 v3 header"),
     check=bad_open(r"too short for a qcow2 v3 header"), qemu_check=1,
     vm=refuse(r"too short for a qcow2 v3 header"),
     what="the file ends between the v2 and the v3 part of the header")

case("truncated-tables", lambda n: derive(base(), n, size=0x38000),
     info=bad_open(r"L2 table at 0x40000 \(L1 entry 0\) is past the end of the file \(229376 bytes\)"),
     check=(2, r"l2_offset=40000: Table is not cluster aligned or outside the image"), qemu_check=2,
     vm=refuse(r"L2 table at 0x40000 \(L1 entry 0\) is past the end of the file"),
     what="the file ends after the L1 table: the L2 table and the data are gone")

case("version-4", header_patch(4, 4, 4),
     info=bad_open(r"unsupported qcow2 version 4"), check=bad_open(r"unsupported qcow2 version 4"),
     qemu_check=1, vm=refuse(r"unsupported qcow2 version 4"), what="a qcow2 version nobody defined")

case("huge-cluster-bits", header_patch(20, 40, 4),
     info=bad_open(r"unsupported cluster size: 2\^40"), check=bad_open(r"cluster size: 2\^40"),
     qemu_check=1, vm=refuse(r"unsupported cluster size: 2\^40"), what="cluster_bits 40 (1 TiB clusters)")

case("tiny-cluster-bits", header_patch(20, 8, 4),
     info=bad_open(r"unsupported cluster size: 2\^8"), check=bad_open(r"cluster size: 2\^8"),
     qemu_check=1, vm=refuse(r"unsupported cluster size: 2\^8"), what="cluster_bits 8 (256-byte clusters)")

case("absurd-l1-size", header_patch(36, 0x7fffffff, 4),
     info=bad_open(r"active L1 table too large \(2147483647 entries\)"),
     check=bad_open(r"active L1 table too large"), qemu_check=1, vm=refuse(r"active L1 table too large"),
     what="l1_size 0x7fffffff")

case("l1-too-small", header_patch(36, 0, 4),
     info=bad_open(r"L1 table is too small \(0 entries for a 4194304-byte disk\)"),
     check=bad_open(r"L1 table is too small"), qemu_check=1, vm=refuse(r"L1 table is too small"),
     what="l1_size 0 for a 4 MiB disk")

case("l1-table-past-eof", header_patch(40, 1 << 32, 8),
     info=bad_open(r"invalid L1 table offset 0x100000000"), check=bad_open(r"invalid L1 table offset"),
     qemu_check=2, vm=refuse(r"invalid L1 table offset 0x100000000"),
     what="l1_table_offset 4 GiB in a 512 KiB file")

case("l1-table-unaligned", header_patch(40, L1 + 0x200, 8),
     info=bad_open(r"invalid L1 table offset 0x30200"), check=bad_open(r"invalid L1 table offset"),
     qemu_check=1, vm=refuse(r"invalid L1 table offset 0x30200"), what="l1_table_offset not on a cluster")

case("l1-table-at-header", header_patch(40, 0, 8),
     info=bad_open(r"invalid L1 table offset 0x0 "), check=bad_open(r"invalid L1 table offset 0x0 "),
     qemu_check=2, vm=refuse(r"invalid L1 table offset 0x0 "),
     what="the L1 table would be the header cluster")

case("refcount-order-7", header_patch(96, 7, 4),
     info=bad_open(r"refcount_order 7"), check=bad_open(r"refcount_order 7"), qemu_check=1,
     vm=refuse(r"reference count entry width too large \(refcount_order 7"),
     what="128-bit refcounts")

case("refcount-table-past-eof", header_patch(48, 0x10000000, 8),
     info=bad_open(r"invalid refcount table offset 0x10000000"),
     check=bad_open(r"invalid refcount table offset"), qemu_check=2,
     vm=refuse(r"invalid refcount table offset 0x10000000"), what="the refcount table is past the end")

case("refcount-table-unaligned", header_patch(48, RT + 8, 8),
     info=bad_open(r"invalid refcount table offset 0x10008"),
     check=bad_open(r"invalid refcount table offset"), qemu_check=1,
     vm=refuse(r"invalid refcount table offset 0x10008"), what="refcount_table_offset not on a cluster")

case("refcount-table-empty", header_patch(56, 0, 4),
     info=bad_open(r"invalid refcount table size \(0 clusters\)"),
     check=bad_open(r"invalid refcount table size"), qemu_check=2,
     vm=refuse(r"invalid refcount table size"), what="refcount_table_clusters 0")

case("refcount-block-past-eof", lambda n: derive(base(), n, [(RT, 0x10000000, 8)]),
     info=bad_open(r"refcount block 0 at 0x10000000 is unaligned or past the end of the file"),
     check=(2, r"ERROR refcount block 0 is outside image"), qemu_check=2,
     vm=refuse(r"refcount block 0 at 0x10000000 is unaligned or past the end of the file"),
     what="the refcount table's first entry points past the end")

case("refcount-block-on-l1", lambda n: derive(base(), n, [(RT, L1, 8)]),
     info=bad_open(r"refcount block 0 at 0x30000 overlaps the active L1 table"),
     check=(2, r"ERROR OFLAG_COPIED data cluster: l2_entry=8000000000050000 refcount=0"), qemu_check=2,
     vm=refuse(r"refcount block 0 at 0x30000 overlaps the active L1 table"),
     what="overlapping metadata: the refcount block is the L1 table")

case("l2-table-past-eof", lambda n: derive(base(), n, [(L1, COPIED | 0x10000000, 8)]),
     info=bad_open(r"L2 table at 0x10000000 \(L1 entry 0\) is past the end of the file"),
     check=(2, r"l2_offset=10000000: Table is not cluster aligned or outside the image"), qemu_check=2,
     vm=refuse(r"L2 table at 0x10000000 \(L1 entry 0\) is past the end of the file"),
     what="the L1 entry of guest [0, 512M) points past the end")

case("l2-table-unaligned", lambda n: derive(base(), n, [(L1, COPIED | (L2 + 0x200), 8)]),
     info=bad_open(r"L2 table at 0x40200 \(L1 entry 0\) is not cluster aligned"),
     check=(2, r"l2_offset=40200: Table is not cluster aligned"), qemu_check=2,
     vm=refuse(r"L2 table at 0x40200 \(L1 entry 0\) is not cluster aligned"), what="an L1 entry not on a cluster")

case("l1-entry-into-header", lambda n: derive(base(), n, [(L1, COPIED | 0x200, 8)]),
     info=bad_open(r"L2 table at 0x200 \(L1 entry 0\) is not cluster aligned"),
     check=(2, r"l2_offset=200: Table is not cluster aligned"), qemu_check=2,
     vm=refuse(r"L2 table at 0x200 \(L1 entry 0\) is not cluster aligned"),
     what="an L1 entry pointing into the header cluster, unaligned")

case("l2-table-on-refcount-table", lambda n: derive(base(), n, [(L1, COPIED | RT, 8)]),
     info=bad_open(r"L2 table at 0x10000 \(L1 entry 0\) overlaps the refcount table"),
     check=(2, r"ERROR cluster 1 refcount=1 reference=2"), qemu_check=2,
     vm=refuse(r"L2 table at 0x10000 \(L1 entry 0\) overlaps the refcount table"),
     what="overlapping metadata: the L2 table is the refcount table")

case("l1-entry-at-header", lambda n: derive(base(), n, [(L1, COPIED, 8)]),
     info=bad_open(r"L1 entry 0 \(0x8000000000000000\) has flags but no L2 table \(it points at the header\)"),
     check=(2, r"ERROR l1_index=0 l1_entry=8000000000000000: L1 entry has flags but no L2 table"), qemu_check=2,
     vm=refuse(r"L1 entry 0 \(0x8000000000000000\) has flags but no L2 table"),
     what="an L1 entry with offset 0 but the copied flag: qemu-img check reads the header as its L2 table")

case("leaked-clusters", lambda n: derive(base(), n, [(RB + 2 * 9, 1, 2), (RB + 2 * 10, 1, 2)], size=0xb0000),
     info=(0, None), check=(3, r"Leaked cluster 9 refcount=1 reference=0\nLeaked cluster 10 refcount=1"),
     qemu_check=3, vm=("runs", None), repair="leaks",
     what="two leaked clusters past the data: only leaks; check -r leaks repairs them")

case("data-cluster-past-eof", lambda n: derive(base(), n, [(L2, COPIED | 0x10000000, 8)]),
     info=(0, None), check=(2, r"reference to 0x10000000\+0x10000 is past the end of the image"),
     qemu_check=2,
     vm=("guest-reads", [(0, None), (128, 0x41), (2048, 0x42)], r"data cluster at 0x10000000 is past the end"),
     what="the L2 entry of guest cluster 0 points past the end (found when read)")

case("data-cluster-unaligned", lambda n: derive(base(), n, [(L2, COPIED | 0x50200, 8)]),
     info=(0, None), check=(2, r"offset=50200: Cluster is not properly aligned"), qemu_check=2,
     vm=("guest-reads", [(0, None), (128, 0x41), (2048, 0x42)], r"data cluster offset 0x50200 is unaligned"),
     what="the L2 entry of guest cluster 0 is not on a cluster (found when read)")


def compressed_patch(make_entry):
    def build(name):
        src = compressed()
        l2 = l2_of(src)
        e = u64(data(src), l2)
        check(e & COMPRESSED, "qemu-img convert -c did not compress guest cluster 0")
        return derive(src, name, [(l2, make_entry(e), 8)])
    return build


# Compressed cluster descriptors, 64 KiB clusters: host offset in bits 0..53, sectors - 1 in bits 54..61.
case("compressed-offset-past-eof", compressed_patch(lambda e: COMPRESSED | 0x10000000),
     info=(0, None), check=(2, r"reference to 0x10000000\+0x200 is past the end of the image"),
     qemu_check=2,
     vm=("guest-reads", [(0, None), (128, 0x41), (2048, 0x42)],
         r"compressed cluster at 0x10000000 is past the end of the file"),
     what="a compressed cluster's data starts past the end")

case("compressed-length-past-eof", compressed_patch(lambda e: e | (0xff << 54)),
     info=(0, None), check=(2, r"is past the end of the image"), qemu_check=2,
     vm=("guest-reads", [(0, 0x41), (128, 0x41), (2048, 0x42)], None),
     what="a compressed cluster descriptor whose 256 sectors run far past the end (the deflate stream "
          "ends inside the file: reads work, as in QEMU, and check reports the descriptor)")

case("compressed-garbage", lambda n: derive(compressed(), n, [(u64(data(compressed()), l2_of(compressed()))
                                                                 & ((1 << 54) - 1), (1 << 256) - 1, 32)]),
     info=(0, None), check=(0, None), qemu_check=0,
     vm=("guest-reads", [(0, None), (128, 0x41), (2048, 0x42)], r"does not decompress to a cluster"),
     what="a compressed cluster's bytes are not deflate data (no check can see it; reading must fail)")


def snapshot_patch(make):
    def build(name):
        src = with_snapshot()
        return derive(src, name, make(data(src)))
    return build


case("snapshot-table-on-l1", snapshot_patch(lambda d: [(64, u64(d, 40), 8)]),
     info=bad_open(r"the snapshot table at 0x30000 overlaps the active L1 table"),
     check=(2, r"ERROR cluster 3 refcount=1 reference=2"), qemu_check=2,
     vm=refuse(r"snapshot table at 0x30000 overlaps the active L1 table"),
     what="the snapshot table overlaps the active L1 table")

case("snapshot-table-past-eof", snapshot_patch(lambda d: [(64, 0x7fff0000, 8)]),
     info=bad_open(r"invalid snapshot table offset 0x7fff0000"),
     check=bad_open(r"invalid snapshot table offset"), qemu_check=2,
     vm=refuse(r"invalid snapshot table offset 0x7fff0000"), what="snapshots_offset past the end")

case("snapshot-l1-past-eof", snapshot_patch(lambda d: [(u64(d, 64), 0x10000000, 8)]),
     info=bad_open(r"snapshot 1 has an invalid L1 table \(offset 0x10000000"),
     check=bad_open(r"snapshot 1 has an invalid L1 table"), qemu_check=2,
     vm=refuse(r"snapshot 1 has an invalid L1 table"), what="a snapshot's L1 table is past the end")

case("too-many-snapshots", header_patch(60, 100000, 4),
     info=bad_open(r"too many snapshots \(100000\)"), check=bad_open(r"too many snapshots"), qemu_check=1,
     vm=refuse(r"too many snapshots"), what="nb_snapshots 100000")

case("header-extension-too-long", header_patch(104 + 8 + 4, 0x100000, 4),
     info=bad_open(r"header extension 0x[0-9a-f]+ at 0x70 \(1048576 bytes\) runs past the end of the header "
                   r"cluster"),
     check=bad_open(r"header extension"), qemu_check=1, vm=refuse(r"header extension"),
     what="the first header extension claims 1 MiB")

case("backing-name-past-cluster", lambda n: derive(base(), n, [(8, 0xfff0, 8), (16, 100, 4)]),
     info=bad_open(r"invalid backing file name \(offset 0xfff0, 100 bytes\)"),
     check=bad_open(r"invalid backing file name"), qemu_check=1, vm=refuse(r"invalid backing file name"),
     what="the backing file name runs out of the header cluster")

case("unknown-incompatible-feature", header_patch(72, 1 << 40, 8),
     info=bad_open(r"unsupported qcow2 feature\(s\): bit 40"),
     check=bad_open(r"unsupported qcow2 feature"), qemu_check=1,
     vm=refuse(r"unsupported qcow2 feature\(s\): bit 40"), what="incompatible feature bit 40")

case("virtual-size-too-large", header_patch(24, 1 << 62, 8),
     info=bad_open(r"virtual size 0x4000000000000000 is too large"),
     check=bad_open(r"virtual size"), qemu_check=1, vm=refuse(r"virtual size 0x4000000000000000 is too large"),
     what="a 4 EiB disk")


def refcount_of_data_zero(name):
    # Cluster 5 (guest 0's data) has refcount 0 in the 16-bit refcount block.
    return derive(base(), name, [(RB + 2 * 5, 0, 2)])


case("refcount-too-low", refcount_of_data_zero,
     info=(0, None), check=(2, r"ERROR cluster 5 refcount=0 reference=1"), qemu_check=2,
     vm=("runs", None),
     what="a data cluster's refcount is 0 (the next allocation would reuse it: check finds it, open "
          "cannot without reading every refcount)")


case("l2-table-refcount-zero", lambda n: derive(base(), n, [(RB + 2 * 4, 0, 2)]),
     info=(0, None), check=(2, r"ERROR cluster 4 refcount=0 reference=1"), qemu_check=2,
     vm=refuse(r"the L2 table of L1 entry 0 at 0x40000 has refcount 0: the image is corrupt"),
     what="the L2 table's refcount is 0: read-only opens work, keel refuses it read/write (the allocator "
          "would hand the table out for data)")


def dirty_with_leak(name):
    # The dirty bit, and a leaked cluster 8 (past the data): what a crash with lazy refcounts leaves.
    return derive(base(), name, [(72, 1, 8), (RB + 2 * 8, 1, 2)], size=0x90000)


case("dirty-read-only", dirty_with_leak, readonly=True,
     info=(0, None), check=(3, r"Leaked cluster 8 refcount=1 reference=0"), qemu_check=3,
     vm=("runs", None), what="the dirty bit, opened read-only: reads work, nothing is repaired or written")


case("dirty-read-write", dirty_with_leak, vm_repairs=True,
     info=(0, None), check=(3, r"Leaked cluster 8 refcount=1 reference=0"), qemu_check=3,
     vm=("runs", None),
     what="the dirty bit with a leak, opened read/write: repaired as QEMU does (leaks freed, bit cleared)")


def dirty_too_low(name):
    # The dirty bit, and guest cluster 0's refcount 0: what a crash with lazy refcounts can leave.
    return derive(base(), name, [(72, 1, 8), (RB + 2 * 5, 0, 2)])


case("dirty-corrupt-read-write", dirty_too_low, repair="all",
     info=(0, None), check=(2, r"ERROR cluster 5 refcount=0 reference=1"), qemu_check=2,
     vm=refuse(r"not closed cleanly \(dirty bit\) and check finds 2 corruptions; repair it with "
               r"'keel-img check -r all'"),
     what="the dirty bit and a refcount too low: keel refuses it read/write untouched; check -r all repairs")


def corrupt_bit(name):
    return derive(base(), name, [(72, 2, 8)])


case("corrupt-read-write", corrupt_bit,
     info=(0, None), check=(0, None), qemu_check=0,
     vm=refuse(r"image is corrupt; cannot be opened read/write"),
     what="the corrupt bit: info and check open it, keel refuses it read/write")


def loop_self(name):
    shutil.copy(path(base()), path(name))
    set_backing(name, name)
    return name


def loop_pair(name):
    other = "loop-b.qcow2"
    shutil.copy(path(base()), path(name))
    shutil.copy(path(base()), path(other))
    set_backing(name, other)
    set_backing(other, name)
    return name


for _name, _build, _what in [("backing-loop-self", loop_self, "an image that is its own backing file"),
                             ("backing-loop-pair", loop_pair, "a.qcow2 -> b.qcow2 -> a.qcow2")]:
    # qemu-img check hangs on these (qemu-utils 7.2); its info --backing-chain gives the verdict.
    case(_name, _build, info=(1, r"creates an infinite loop"), info_args=("--backing-chain",),
         check=bad_open(r"backing chain loop: '.*' is already in the chain"), qemu_check=1,
         qemu_args=("info", "--backing-chain"), vm=refuse(r"backing chain loop: '.*' is already in the chain"),
         what=_what)


# --- running the tools ---

def state():
    """Bytes and mtime of every file of the case."""
    s = {}
    for n in sorted(os.listdir(WORK)):
        st = os.stat(path(n))
        s[n] = (st.st_mtime_ns, data(n))
    return s


def unchanged(before, what):
    after = state()
    for n, (mtime, content) in before.items():
        check(n in after, f"{what} removed {n}")
        check(after[n][1] == content, f"{what} modified the bytes of {n}")
        check(after[n][0] == mtime, f"{what} changed the mtime of {n}")


def expect_error(p, argv, regex, img):
    out = p.stderr
    check(regex is None or re.search(regex, out), f"{' '.join(argv)}: stderr does not match {regex!r}:\n{out}")
    if p.returncode == 1:
        check(img in out, f"{' '.join(argv)}: the error does not name {img}:\n{out}")


def keel_img(c, img, before):
    for cmd, (status, regex) in [("info", c.info), ("check", c.check)]:
        argv = [KEEL_IMG, cmd, "-f", "qcow2", *(c.info_args if cmd == "info" else ()), img]
        p = run(argv)
        check(p.returncode == status, f"{' '.join(argv)}: exit {p.returncode}, expected {status}\n"
                                      f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        expect_error(p, argv, regex, img)
        if status == 1:
            check(p.stderr.startswith("keel-img: ") and p.stdout == "",
                  f"{cmd}: not one keel-img error line:\n{p.stdout}{p.stderr}")
        if cmd == "check" and status in (2, 3):
            verdict = "errors were found" if status == 2 else "leaked clusters were found"
            check(verdict in p.stdout, f"check's summary does not say '{verdict}':\n{p.stdout}")
        unchanged(before, f"keel-img {cmd}")
    q = run(["qemu-img", *c.qemu_args, "-f", "qcow2", img])
    qemu = "qemu-img " + " ".join(c.qemu_args)
    check(q.returncode == c.qemu_check, f"{qemu}: exit {q.returncode}, expected {c.qemu_check}\n{q.stdout}{q.stderr}")
    # The same verdict: both see a problem, or neither.
    check((c.check[0] == 0) == (q.returncode == 0), f"keel-img check {c.check[0]}, {qemu} {q.returncode}")
    unchanged(before, qemu)


def drive_args(img, spelling, readonly):
    ro = ",readonly=on" if readonly else ""
    if spelling == "virtio":
        return ["-drive", f"file={img},format=qcow2,if=virtio{ro}"]
    return ["-drive", f"file={img},format=qcow2,if=none,id=d0{ro}", "-device", "virtio-blk-device,drive=d0"]


def vm_hello(c, img, before):
    for spelling in ["virtio", "device"]:
        argv = [KEEL, "-M", "riscv-virt", "-nographic", "-bios", "none", "-kernel", GUEST,
                *drive_args(img, spelling, c.readonly)]
        p = run(argv, timeout=60)
        kind, regex = c.vm
        if kind == "refuse":
            check(p.returncode == 1, f"keel ({spelling}): exit {p.returncode}, expected 1\n{p.stdout}{p.stderr}")
            check(GUEST_LINE not in p.stdout, f"keel ({spelling}) ran the guest:\n{p.stdout}")
            check(re.search(regex, p.stderr) and img in p.stderr,
                  f"keel ({spelling}): the error does not match {regex!r} or name {img}:\n{p.stderr}")
        else:
            check(p.returncode == 0 and GUEST_LINE in p.stdout,
                  f"keel ({spelling}): exit {p.returncode}, expected the guest to run\n{p.stdout}{p.stderr}")
        if c.vm_repairs:
            check(re.search(r"not closed cleanly \(dirty bit\): repaired 1 leaked clusters", p.stderr)
                  or spelling != "virtio", f"keel ({spelling}) did not say it repaired the image:\n{p.stderr}")
            clean_after(img, f"keel -drive ({spelling})")
        else:
            unchanged(before, f"keel -drive ({spelling})")


def vm_uboot_reads(c, img, before):
    """U-Boot reads 64 KiB at each given sector: an I/O error where expected, the right bytes elsewhere."""
    sys.path.insert(0, os.path.join(HERE, "..", "boot"))
    from console import Console, ConsoleError  # noqa: E402
    _, reads, regex = c.vm
    for spelling in ["virtio", "device"]:
        argv = [KEEL, "-M", "riscv-virt", "-m", "128M", "-bios", OPENSBI, "-kernel", UBOOT,
                *drive_args(path(img), spelling, c.readonly)]
        try:
            uboot_reads(Console(argv, name="keel"), spelling, reads, regex, img)
        except ConsoleError as e:
            raise Failure(str(e))
        unchanged(before, f"keel + U-Boot ({spelling})")


def uboot_reads(console, spelling, reads, regex, img):
    with console as con:
        def command(line):
            con.send(line + "\n")
            con.expect(re.escape(line) + r"\n", 30, what=f"the echo of {line!r}")
            start = con.pos
            m = con.expect(r"^=> ", 30, what=f"the prompt after {line!r}")
            return con.transcript[start:m.start()]
        con.expect(r"Hit any key to stop autoboot", 60, what="U-Boot's autoboot countdown")
        con.send(" ")
        con.expect(r"^=> ", 30, what="the U-Boot prompt")
        command("virtio scan")
        for sector, byte in reads:
            command("mw.b 0x84000000 0x5a 0x10000")  # so that stale bytes cannot pass for data
            out = command(f"virtio read 0x84000000 {sector:x} 80")
            dump = command("md.b 0x84000000 0x10")
            if byte is None:
                if "blocks read: ERROR" not in out:
                    con.fail(f"({spelling}) reading sector {sector} did not fail")
            else:
                want = " ".join(f"{byte:02x}" for _ in range(16))
                if "128 blocks read: OK" not in out or want not in dump:
                    con.fail(f"({spelling}) sector {sector} does not read as {byte:#x}")
        con.send("poweroff\n")
        status = con.wait_exit(30)
        if status != 0:
            con.fail(f"keel exited with status {status} after poweroff")
        log = con.stderr()
        if regex and (not re.search(regex, log) or img not in log):
            con.fail(f"({spelling}) keel's log does not match {regex!r} or name {img}:\n{log}")


def repair(c, img):
    k = run([KEEL_IMG, "check", "-f", "qcow2", "--output=json", img])
    q = run(["qemu-img", "check", "-f", "qcow2", "--output=json", img])
    check(k.returncode == q.returncode == c.check[0],
          f"check --output=json: keel-img {k.returncode}, qemu-img {q.returncode}")
    kj, qj = json.loads(k.stdout), json.loads(q.stdout)
    check(kj == qj, f"check --output=json differs:\n--- keel-img\n{k.stdout}\n--- qemu-img\n{q.stdout}")
    p = run([KEEL_IMG, "check", "-f", "qcow2", "-r", c.repair, img])
    check(p.returncode == 0 and "The following inconsistencies were found and repaired" in p.stdout
          and "No errors were found on the image." in p.stdout,
          f"check -r {c.repair}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    clean_after(img, f"check -r {c.repair}")


def clean_after(img, what):
    q = run(["qemu-img", "check", "-f", "qcow2", img])
    check(q.returncode == 0, f"qemu-img check after {what}: exit {q.returncode}\n{q.stdout}{q.stderr}")
    check(u64(data(img), 72) & 1 == 0, f"the dirty bit is still set after {what}")


def run_case(c):
    img = c.build(f"{c.name}.qcow2")
    before = state()
    keel_img(c, img, before)
    if c.vm[0] == "guest-reads":
        vm_uboot_reads(c, img, before)
    else:
        vm_hello(c, img, before)
    if c.repair:
        repair(c, img)


def explore(c):
    img = c.build(f"{c.name}.qcow2")
    print(f"== {c.name}: {c.what}")
    for argv in [[KEEL_IMG, "info", "-f", "qcow2", *c.info_args, img],
                 ["qemu-img", "info", "-f", "qcow2", *c.info_args, img],
                 [KEEL_IMG, "check", "-f", "qcow2", img], ["qemu-img", *c.qemu_args, "-f", "qcow2", img],
                 [KEEL, "-M", "riscv-virt", "-nographic", "-bios", "none", "-kernel", GUEST,
                  *drive_args(img, "virtio", c.readonly)]]:
        p = run(argv)
        tail = (p.stderr.strip().splitlines() or [""])[-3:]
        print(f"  {os.path.basename(argv[0])} {argv[1] if argv[0] != KEEL else ''}: {p.returncode} {tail}")


def small_seeds():
    """Small good images of every kind the driver reads (512-byte clusters keep them a few KiB)."""
    def make(name, *opts, writes=("write -P 0x61 0 4k", "write -P 0x62 40k 1k", "write -z 8k 4k")):
        sh("qemu-img", "create", "-q", "-f", "qcow2", "-o", ",".join(("cluster_size=512",) + opts), name, "64k")
        sh("qemu-io", *[a for w in writes for a in ("-c", w)], name)
        return name
    names = [make("small.qcow2"), make("small-v2.qcow2", "compat=0.10", writes=("write -P 0x61 0 4k",)),
             make("small-rc1.qcow2", "refcount_bits=1"), make("small-rc64.qcow2", "refcount_bits=64")]
    sh("qemu-img", "convert", "-c", "-O", "qcow2", "-o", "cluster_size=512", "small.qcow2", "small-comp.qcow2")
    shutil.copy(path("small.qcow2"), path("small-snap.qcow2"))
    sh("qemu-img", "snapshot", "-c", "s1", "small-snap.qcow2")
    sh("qemu-io", "-c", "write -P 0x63 0 1k", "small-snap.qcow2")
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", "-b", "small.qcow2", "-F", "qcow2",
       "small-overlay.qcow2")
    sh("qemu-io", "-c", "write -P 0x64 1k 1k", "small-overlay.qcow2")
    return names + ["small-comp.qcow2", "small-snap.qcow2", "small-overlay.qcow2"]


def export(out):
    """Every case's image (and the good images it started from, once) into `out`."""
    global WORK
    os.makedirs(out, exist_ok=True)
    seen = set()

    def keep(name, as_name):
        d = data(name)
        if hash(d) not in seen:
            seen.add(hash(d))
            with open(os.path.join(out, as_name), "wb") as f:
                f.write(d)
    root = WORK
    for n, c in list(CASES.items()) + [("small", None)]:
        WORK = os.path.join(root, n)
        shutil.rmtree(WORK, ignore_errors=True)
        os.makedirs(WORK)
        made = small_seeds() if c is None else [c.build(f"{n}.qcow2")]
        for f in sorted(os.listdir(WORK)):
            keep(f, f if f in made or f.startswith("small") else f"{n}-{f}")
        shutil.rmtree(WORK)
    print(f"{len(seen)} images in {out}")


def main():
    global KEEL_IMG, KEEL, GUEST, WORK
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keel-img")
    ap.add_argument("--keel")
    ap.add_argument("--guest")
    ap.add_argument("--work")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--explore", action="store_true")
    ap.add_argument("--export", metavar="DIR")
    ap.add_argument("case", nargs="*")
    a = ap.parse_args()
    if a.list:
        print("\n".join(CASES))
        return 0
    for n in a.case:
        if n not in CASES:
            print(f"unknown case '{n}' (--list lists them)", file=sys.stderr)
            return 1
    if not shutil.which("qemu-img") or not shutil.which("qemu-io"):
        print("qemu-img/qemu-io not installed (Debian's qemu-utils)", file=sys.stderr)
        return 77
    if a.export:
        WORK = os.path.abspath(a.work)
        export(os.path.abspath(a.export))
        return 0
    KEEL_IMG, KEEL, GUEST = (os.path.abspath(x) for x in (a.keel_img, a.keel, a.guest))
    failed = 0
    for n in a.case or list(CASES):
        WORK = os.path.join(os.path.abspath(a.work), n)
        shutil.rmtree(WORK, ignore_errors=True)
        os.makedirs(WORK)
        try:
            explore(CASES[n]) if a.explore else run_case(CASES[n])
        except Failure as e:
            print(f"FAIL {n}: {e}", file=sys.stderr)
            failed += 1
            continue
        shutil.rmtree(WORK, ignore_errors=True)
        if not a.explore:
            print(f"ok {n}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
