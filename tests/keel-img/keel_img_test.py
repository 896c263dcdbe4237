#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# keel-img against Debian's qemu-img: the same files through both tools must give the same answers.
"""Run one named test: keel_img_test.py --keel-img BIN --work DIR TEST (--list lists them).

Exit 0 on success, 1 on failure (with what differed), 77 when qemu-img is not installed."""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys

KEEL_IMG = None
WORK = None
TESTS = {}


class Failure(Exception):
    pass


def test(fn):
    TESTS[fn.__name__.replace("_", "-")] = fn
    return fn


def run(argv, expect=0, stdin=None):
    p = subprocess.run(argv, cwd=WORK, capture_output=True, text=True, stdin=stdin, timeout=300)
    if expect is not None and p.returncode != expect:
        raise Failure(f"{' '.join(argv)}: exit {p.returncode}, expected {expect}\n"
                      f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def keel(*args, expect=0):
    return run([KEEL_IMG, *args], expect=expect)


def qemu(*args, expect=0):
    return run(["qemu-img", *args], expect=expect)


def check(cond, what):
    if not cond:
        raise Failure(what)


def equal(a, b, what):
    if a != b:
        raise Failure(f"{what}:\n--- keel-img\n{a}\n--- expected\n{b}")


def path(name):
    return os.path.join(WORK, name)


def write_raw(name, size, writes):
    """A sparse raw file of `size` bytes with `writes` [(offset, bytes)] in it."""
    with open(path(name), "wb") as f:
        f.truncate(size)
        for off, data in writes:
            f.seek(off)
            f.write(data)


def read(name):
    with open(path(name), "rb") as f:
        return f.read()


def mixed_writes(size, seed, n=24):
    """Random data, constant runs and zero-filled blocks at random places (some unaligned)."""
    rng = random.Random(seed)
    writes = []
    for _ in range(n):
        length = rng.choice([1, 511, 4096, 65536, 70000, 300000])
        off = rng.randrange(0, size - length)
        kind = rng.randrange(3)
        if kind == 0:
            data = rng.randbytes(length)
        elif kind == 1:
            data = bytes([rng.randrange(1, 256)]) * length
        else:
            data = bytes(length)
        writes.append((off, data))
    return writes


def info_json(tool, *args):
    out = tool("info", "--output=json", *args).stdout
    j = json.loads(out)
    for item in j if isinstance(j, list) else [j]:
        item.pop("actual-size", None)  # block usage differs with how each tool wrote the file
    return j


def human_info(tool, *args):
    # "disk size:" is the file's block usage: it differs between writers.
    return "\n".join(l for l in tool("info", *args).stdout.splitlines() if not l.startswith("disk size:"))


def qemu_check_clean(name, fmt="qcow2"):
    p = qemu("check", "-f", fmt, "--output=json", name, expect=None)
    r = json.loads(p.stdout) if p.stdout.strip().startswith("{") else {}
    check(p.returncode == 0 and r.get("check-errors") == 0 and not r.get("leaks") and not r.get("corruptions"),
          f"qemu-img check {name}: exit {p.returncode}\n{p.stdout}{p.stderr}")


# --- create and info ---

@test
def create_info_raw():
    keel("create", "-f", "raw", "r.img", "3M")
    check(os.path.getsize(path("r.img")) == 3 << 20, "raw image size")
    equal(info_json(keel, "-f", "raw", "r.img"), info_json(qemu, "-f", "raw", "r.img"), "info json (raw)")
    equal(human_info(keel, "-f", "raw", "r.img"), human_info(qemu, "-f", "raw", "r.img"), "info (raw)")
    # Probing guesses raw, with qemu-img's warning.
    p = keel("info", "r.img")
    check("probing guessed raw" in p.stderr, "no probing warning:\n" + p.stderr)


@test
def create_info_qcow2():
    for cs in ["4k", "64k", "2M"]:
        name = f"c{cs}.qcow2"
        keel("create", "-f", "qcow2", "-o", f"cluster_size={cs}", name, "1G")
        equal(info_json(keel, name), info_json(qemu, name), f"info json ({name})")
        equal(human_info(keel, name), human_info(qemu, name), f"info ({name})")
        qemu_check_clean(name)
        # The same file made by qemu-img reads the same through keel-img.
        qname = f"q{cs}.qcow2"
        qemu("create", "-q", "-f", "qcow2", "-o", f"cluster_size={cs}", qname, "1G")
        equal(info_json(keel, qname), info_json(qemu, qname), f"info json ({qname})")


@test
def create_backing_chain():
    keel("create", "-f", "qcow2", "base.qcow2", "64M")
    keel("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "mid.qcow2")
    os.makedirs(path("sub"), exist_ok=True)
    keel("create", "-f", "qcow2", "-b", "../mid.qcow2", "-F", "qcow2", "sub/top.qcow2", "128M")
    for name in ["mid.qcow2", "sub/top.qcow2"]:
        qemu_check_clean(name)
        equal(info_json(keel, name), info_json(qemu, name), f"info json ({name})")
        equal(human_info(keel, name), human_info(qemu, name), f"info ({name})")
        equal(info_json(keel, "--backing-chain", name), info_json(qemu, "--backing-chain", name),
              f"info --backing-chain json ({name})")
        equal(human_info(keel, "--backing-chain", name), human_info(qemu, "--backing-chain", name),
              f"info --backing-chain ({name})")
    check(info_json(keel, "mid.qcow2")["virtual-size"] == 64 << 20, "size taken from the backing file")
    # No backing format: refused, as qemu-img 7.2 does.
    p = keel("create", "-f", "qcow2", "-b", "base.qcow2", "x.qcow2", expect=1)
    check(p.stderr.startswith("keel-img: ") and "backing format" in p.stderr, p.stderr)


@test
def create_option_help():
    p = keel("create", "-f", "qcow2", "-o", "help")
    check("cluster_size=<size>" in p.stdout and "backing_file=<str>" in p.stdout, p.stdout)
    p = keel("create", "-f", "raw", "-o", "help")
    check(p.stdout.startswith("Supported raw options:"), p.stdout)


# --- check ---

def make_leak(name):
    """Give cluster 5 of an empty 64 KiB-cluster image a refcount nobody references."""
    with open(path(name), "r+b") as f:
        hdr = f.read(104)
        reftable = int.from_bytes(hdr[48:56], "big")
        f.seek(reftable)
        block = int.from_bytes(f.read(8), "big")
        f.seek(block + 2 * 5)
        f.write((1).to_bytes(2, "big"))
        f.seek(6 * 65536 - 1)
        f.write(b"\0")


@test
def check_qcow2():
    qemu("create", "-q", "-f", "qcow2", "q.qcow2", "16M")
    p = keel("check", "q.qcow2")
    equal(p.stdout, qemu("check", "q.qcow2").stdout, "check (clean)")
    equal(json.loads(keel("check", "--output=json", "q.qcow2").stdout),
          json.loads(qemu("check", "--output=json", "q.qcow2").stdout), "check json (clean)")
    # A leak: exit 3 from both, and the same report (the cluster's line on stderr).
    shutil.copy(path("q.qcow2"), path("leak.qcow2"))
    make_leak("leak.qcow2")
    before = read("leak.qcow2")
    k = keel("check", "--output=json", "leak.qcow2", expect=3)
    q = qemu("check", "--output=json", "leak.qcow2", expect=3)
    kj, qj = json.loads(k.stdout), json.loads(q.stdout)
    for key in ["leaks", "check-errors", "total-clusters", "filename", "format"]:
        equal(kj.get(key), qj.get(key), f"check json '{key}'")
    check("Leaked cluster 5" in k.stderr, k.stderr)
    p = keel("check", "leak.qcow2", expect=3)
    check("1 leaked clusters were found on the image." in p.stdout, p.stdout)
    check(read("leak.qcow2") == before, "check without -r modified the image")
    # -r leaks repairs it, and qemu-img agrees.
    p = keel("check", "-r", "leaks", "leak.qcow2")
    check("1 leaked clusters" in p.stdout and "Double checking the fixed image now..." in p.stdout, p.stdout)
    qemu_check_clean("leak.qcow2")
    shutil.copy(path("q.qcow2"), path("leak2.qcow2"))
    make_leak("leak2.qcow2")
    j = json.loads(keel("check", "-r", "all", "--output=json", "leak2.qcow2").stdout)
    equal(j.get("leaks-fixed"), 1, "leaks-fixed")
    check("leaks" not in j, "leaks left after -r all")
    qemu_check_clean("leak2.qcow2")


@test
def check_raw_unsupported():
    keel("create", "-q", "-f", "raw", "r.img", "1M")
    p = keel("check", "-f", "raw", "r.img", expect=63)
    qemu("check", "-f", "raw", "r.img", expect=63)
    check("does not support checks" in p.stderr, p.stderr)


# --- convert and compare ---

@test
def convert_round_trip():
    size = 48 << 20
    write_raw("src.raw", size, mixed_writes(size, 1))
    src = read("src.raw")
    for cs in ["4k", "64k", "2M"]:
        q = f"k{cs}.qcow2"
        keel("convert", "-f", "raw", "-O", "qcow2", "-o", f"cluster_size={cs}", "src.raw", q)
        qemu_check_clean(q)
        p = qemu("compare", "-f", "raw", "-F", "qcow2", "src.raw", q)
        equal(p.stdout.strip(), "Images are identical.", "qemu-img compare after keel-img convert")
        keel("convert", "-f", "qcow2", "-O", "raw", q, "back.raw")
        check(read("back.raw") == src, f"raw -> qcow2 ({cs}) -> raw changed the bytes")
        # Zero ranges stay holes: the copy is no bigger on disk than what was written.
        check(os.stat(path("back.raw")).st_blocks <= os.stat(path("src.raw")).st_blocks + 8,
              "convert filled holes in the raw target")
    # qemu-img's images, compressed ones included, read back byte-identical.
    for extra, name in [([], "q.qcow2"), (["-c"], "qc.qcow2"), (["-o", "cluster_size=4k"], "q4.qcow2"),
                        (["-o", "compat=0.10"], "qv2.qcow2")]:
        qemu("convert", "-f", "raw", "-O", "qcow2", *extra, "src.raw", name)
        keel("convert", "-O", "raw", name, "from-qemu.raw")
        check(read("from-qemu.raw") == src, f"keel-img convert of qemu-img's {name} {extra} differs")
        equal(keel("compare", "-f", "raw", "-F", "qcow2", "src.raw", name).stdout, "Images are identical.\n",
              f"keel-img compare {name}")
    # qcow2 -> qcow2 through a backing chain flattens it.
    qemu("create", "-q", "-f", "qcow2", "-b", "q.qcow2", "-F", "qcow2", "ov.qcow2")
    run(["qemu-io", "-c", "write -P 0x77 1M 100k", "-c", "write -z 3M 64k", "ov.qcow2"])
    keel("convert", "-O", "qcow2", "ov.qcow2", "flat.qcow2")
    qemu_check_clean("flat.qcow2")
    equal(qemu("compare", "ov.qcow2", "flat.qcow2").stdout.strip(), "Images are identical.", "flattened chain")
    check("backing-filename" not in info_json(keel, "flat.qcow2"), "convert kept a backing file")


@test
def convert_progress():
    write_raw("p.raw", 8 << 20, [(0, b"x" * 100000)])
    p = keel("convert", "-p", "-f", "raw", "-O", "qcow2", "p.raw", "p.qcow2")
    check("    (100.00/100%)" in p.stdout and "    (0.00/100%)" in p.stdout, repr(p.stdout))


def compressible_source(name, size, seed):
    """Random and repeating data, written zeroes, holes, and a tail that ends mid-cluster."""
    rng = random.Random(seed)
    writes = mixed_writes(size, seed, n=30)
    for _ in range(10):
        length = rng.choice([4096, 65536, 200000, 1 << 20])
        off = rng.randrange(0, size - length)
        writes.append((off, (b"keel %d compressible " % off * (length // 16 + 1))[:length]))
    writes.append((size - 700, b"end of the disk " * 40))
    write_raw(name, size, writes)


def check_json(tool, name):
    j = json.loads(tool("check", "--output=json", name).stdout)
    return {k: j.get(k) for k in ["check-errors", "allocated-clusters", "compressed-clusters", "total-clusters",
                                  "image-end-offset", "leaks", "corruptions"]}


@test
def convert_compressed():
    size = (24 << 20) + 3 * 512  # the last cluster is partial
    compressible_source("src.raw", size, 3)
    src = read("src.raw")
    for opts in [[], ["-o", "cluster_size=4k"], ["-o", "cluster_size=512"], ["-o", "cluster_size=2M"],
                 ["-o", "refcount_bits=1"], ["-o", "cluster_size=8k,refcount_bits=64"]]:
        what = f"convert -c {opts}"
        keel("convert", "-c", "-f", "raw", "-O", "qcow2", *opts, "src.raw", "k.qcow2")
        qemu("convert", "-c", "-f", "raw", "-O", "qcow2", *opts, "src.raw", "q.qcow2")
        qemu_check_clean("k.qcow2")
        equal(qemu("compare", "-f", "raw", "-F", "qcow2", "src.raw", "k.qcow2").stdout.strip(),
              "Images are identical.", what)
        keel("convert", "-O", "raw", "k.qcow2", "back.raw")
        check(read("back.raw") == src, f"{what}: keel reads back other bytes")
        # Compressed the same way and packed the same way as qemu-img: the same clusters, the same places.
        kc = check_json(qemu, "k.qcow2")
        check(kc["compressed-clusters"] > 0, f"{what}: nothing was compressed: {kc}")
        equal(kc, check_json(qemu, "q.qcow2"), f"{what}: qemu-img check of keel's and of qemu-img's image")
        equal(check_json(keel, "k.qcow2"), kc, f"{what}: keel-img check against qemu-img check")
        equal(json.loads(qemu("map", "--output=json", "k.qcow2").stdout),
              json.loads(qemu("map", "--output=json", "q.qcow2").stdout), f"{what}: map")
        equal(os.path.getsize(path("k.qcow2")), os.path.getsize(path("q.qcow2")), f"{what}: file size")
        equal(info_json(keel, "k.qcow2"), info_json(qemu, "k.qcow2"), f"{what}: info")
    # A compressed qcow2 source, flattened through a backing chain, compressed again.
    qemu("convert", "-c", "-f", "raw", "-O", "qcow2", "src.raw", "qc.qcow2")
    qemu("create", "-q", "-f", "qcow2", "-b", "qc.qcow2", "-F", "qcow2", "ov.qcow2")
    run(["qemu-io", "-c", "write -P 0x5a 1M 200k", "-c", "write -z 5M 128k", "ov.qcow2"])
    keel("convert", "-c", "-O", "qcow2", "ov.qcow2", "flat.qcow2")
    qemu_check_clean("flat.qcow2")
    equal(qemu("compare", "ov.qcow2", "flat.qcow2").stdout.strip(), "Images are identical.", "compressed chain")
    # Overwriting compressed clusters (several share a host cluster) keeps the refcounts right.
    run(["qemu-io", "-f", "raw", "-c", "write -P 0x11 0 3M", "-c", "write -P 0x22 10M 70k", "src.raw"])
    keel("convert", "-n", "-f", "raw", "-O", "qcow2", "src.raw", "k.qcow2")
    qemu_check_clean("k.qcow2")
    equal(qemu("compare", "-f", "raw", "src.raw", "k.qcow2").stdout.strip(), "Images are identical.",
          "compressed clusters overwritten")


@test
def convert_compressed_refused():
    write_raw("s.raw", 1 << 20, [(0, b"data" * 1000)])
    k = keel("convert", "-c", "-f", "raw", "-O", "raw", "s.raw", "k.raw", expect=1)
    q = qemu("convert", "-c", "-f", "raw", "-O", "raw", "s.raw", "q.raw", expect=1)
    equal(k.stderr.replace("keel-img: ", "", 1), q.stderr.replace("qemu-img: ", "", 1), "convert -c to raw")
    check(not os.path.exists(path("k.raw")), "a refused convert -c created its target")
    k = keel("convert", "-t", "bogus", "-f", "raw", "-O", "qcow2", "s.raw", "k.qcow2", expect=1)
    equal(k.stderr, "keel-img: Invalid cache option: bogus\n", "convert -t bogus")
    # -t writeback flushes the target at the end; the result is the same.
    keel("convert", "-t", "writeback", "-f", "raw", "-O", "qcow2", "s.raw", "k.qcow2")
    equal(qemu("compare", "-f", "raw", "s.raw", "k.qcow2").stdout.strip(), "Images are identical.", "-t writeback")


@test
def compare_exit_codes():
    size = 4 << 20
    write_raw("a.raw", size, [(1000, b"abc"), (2 << 20, b"\xff" * 5000)])
    shutil.copy(path("a.raw"), path("b.raw"))
    with open(path("b.raw"), "r+b") as f:
        f.seek(70000)
        f.write(b"!")
    keel("convert", "-f", "raw", "-O", "qcow2", "a.raw", "a.qcow2")
    for a, b in [("a.raw", "a.qcow2"), ("a.raw", "b.raw"), ("a.qcow2", "b.raw")]:
        k = keel("compare", a, b, expect=None)
        q = qemu("compare", a, b, expect=None)
        equal((k.returncode, k.stdout), (q.returncode, q.stdout), f"compare {a} {b}")
    k = keel("compare", "a.raw", "b.raw", expect=1)
    equal(k.stdout, "Content mismatch at offset 69632!\n", "mismatch message")
    # A longer image whose tail is zeroes: identical, with a warning; -s: different.
    keel("create", "-q", "-f", "qcow2", "big.qcow2", "6M")
    run(["qemu-io", "-c", "write -P 0 0 64k", "big.qcow2"])
    for args in [("a.raw", "big.qcow2"), ("-s", "a.raw", "big.qcow2")]:
        k = keel("compare", *args, expect=None)
        q = qemu("compare", *args, expect=None)
        equal((k.returncode, k.stdout), (q.returncode, q.stdout), f"compare {args}")
    # Strict mode also compares allocation: zeroes written in one image, nothing in the other.
    qemu("create", "-q", "-f", "qcow2", "s1.qcow2", "1M")
    qemu("create", "-q", "-f", "qcow2", "s2.qcow2", "1M")
    run(["qemu-io", "-c", "write -P 0 64k 64k", "s1.qcow2"])
    equal(keel("compare", "s1.qcow2", "s2.qcow2").stdout, "Images are identical.\n", "zeroes vs unallocated")
    equal(keel("compare", "-s", "s1.qcow2", "s2.qcow2", expect=1).stdout,
          "Strict mode: Offset 65536 block status mismatch!\n", "strict compare of allocation")
    p = keel("compare", "-f", "raw", "a.raw", "missing.raw", expect=2)
    check(p.stderr.startswith("keel-img: ") and "missing.raw" in p.stderr, p.stderr)


# --- map ---

@test
def map_matches_qemu():
    qemu("create", "-q", "-f", "qcow2", "base.qcow2", "8M")
    run(["qemu-io", "-c", "write -P 1 0 1M", "-c", "write -P 2 5M 64k", "base.qcow2"])
    qemu("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2")
    run(["qemu-io", "-c", "write -P 3 512k 1M", "-c", "write -z 5M 64k", "-c", "write -P 4 7M 128k",
         "top.qcow2"])
    for name in ["base.qcow2", "top.qcow2"]:
        equal(keel("map", name).stdout, qemu("map", name).stdout, f"map {name}")
        equal(json.loads(keel("map", "--output=json", name).stdout),
              json.loads(qemu("map", "--output=json", name).stdout), f"map --output=json {name}")


# --- resize, dd ---

@test
def resize():
    keel("create", "-q", "-f", "qcow2", "r.qcow2", "16M")
    equal(keel("resize", "r.qcow2", "+16M").stdout, "Image resized.\n", "resize output")
    equal(info_json(qemu, "r.qcow2")["virtual-size"], 32 << 20, "qcow2 grown")
    qemu_check_clean("r.qcow2")
    keel("resize", "r.qcow2", "64M")
    equal(info_json(qemu, "r.qcow2")["virtual-size"], 64 << 20, "qcow2 grown to an absolute size")
    keel("resize", "r.qcow2", "32M", expect=1)  # shrinking needs --shrink
    keel("create", "-q", "-f", "raw", "r.raw", "8M")
    keel("resize", "-f", "raw", "r.raw", "-4M", expect=1)
    keel("resize", "-f", "raw", "--shrink", "r.raw", "-4M")
    equal(os.path.getsize(path("r.raw")), 4 << 20, "raw shrunk")


@test
def resize_shrink():
    # The same image shrunk by each tool: the same clusters stay, the file is cut at the same place.
    cases = [("64k", "64M", ["write -P 1 0 1M", "write -P 2 30M 3M", "write -P 3 60M 1M"], "31M"),
             # 4 KiB clusters: L2 tables wholly past the end go, the one across it keeps its head, and the
             # last cluster (partly inside) stays.
             ("4k", "64M", ["write -P 1 0 1M", "write -P 2 3M 4M", "write -P 3 60M 1M"], str((5 << 20) + 1536)),
             # 512-byte clusters with 64-bit refcounts: a refcount block covers 32 KiB of file, so the blocks
             # that described the freed tail are dropped too.
             ("512", "8M", ["write -P 4 0 64k", "write -P 5 1M 2M", "write -P 6 7M 512k"], "1536k")]
    for cs, size, writes, new in cases:
        rb = ["-o", "refcount_bits=64"] if cs == "512" else []
        qemu("create", "-q", "-f", "qcow2", "-o", f"cluster_size={cs}", *rb, "a.qcow2", size)
        run(["qemu-io", *sum((["-c", w] for w in writes), []), "a.qcow2"])
        shutil.copy(path("a.qcow2"), path("b.qcow2"))
        equal(keel("resize", "--shrink", "a.qcow2", new).stdout, "Image resized.\n", "shrink output")
        qemu("resize", "-q", "--shrink", "b.qcow2", new)
        what = f"shrink of a {size} image with {cs} clusters to {new}"
        qemu_check_clean("a.qcow2")
        equal(check_json(qemu, "a.qcow2"), check_json(qemu, "b.qcow2"), what + ": check")
        equal(info_json(keel, "a.qcow2"), info_json(qemu, "a.qcow2"), what + ": info")
        equal(info_json(keel, "a.qcow2")["virtual-size"], info_json(qemu, "b.qcow2")["virtual-size"], what)
        equal(json.loads(qemu("map", "--output=json", "a.qcow2").stdout),
              json.loads(qemu("map", "--output=json", "b.qcow2").stdout), what + ": map")
        equal(os.path.getsize(path("a.qcow2")), os.path.getsize(path("b.qcow2")), what + ": file size")
        equal(qemu("compare", "a.qcow2", "b.qcow2").stdout.strip(), "Images are identical.", what + ": data")
        # And it still takes writes, and grows again reading zeroes past the old end.
        run(["qemu-io", "-c", "write -P 9 0 8k", "a.qcow2"])
        keel("resize", "a.qcow2", size)
        qemu_check_clean("a.qcow2")
        out = run(["qemu-io", "-c", f"read -P 0 {int(new) if new.isdigit() else new} 64k", "a.qcow2"]).stdout
        check("Pattern verification failed" not in out, f"{what}: regrown tail is not zeroes\n{out}")
    # With an internal snapshot sharing the tables and clusters: only the active image's references go.
    qemu("create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", "s.qcow2", "64M")
    run(["qemu-io", "-c", "write -P 1 0 1M", "-c", "write -P 2 3M 4M", "-c", "write -P 3 60M 1M", "s.qcow2"])
    qemu("snapshot", "-c", "s1", "s.qcow2")
    run(["qemu-io", "-c", "write -P 7 3M 64k", "-c", "write -P 8 60M 64k", "s.qcow2"])
    shutil.copy(path("s.qcow2"), path("t.qcow2"))
    keel("resize", "--shrink", "s.qcow2", str((5 << 20) + 1536))
    qemu("resize", "-q", "--shrink", "t.qcow2", str((5 << 20) + 1536))
    qemu_check_clean("s.qcow2")
    equal(qemu("compare", "s.qcow2", "t.qcow2").stdout.strip(), "Images are identical.", "shrink with a snapshot")
    for name in ["s", "t"]:
        qemu("convert", "-l", "snapshot.name=s1", "-O", "raw", f"{name}.qcow2", f"{name}-s1.raw")
    check(read("s-s1.raw") == read("t-s1.raw"), "shrinking changed the snapshot's data")
    # A compressed image: host clusters shared by several compressed clusters lose only their references.
    compressible_source("c.raw", 8 << 20, 4)
    keel("convert", "-c", "-f", "raw", "-O", "qcow2", "c.raw", "c.qcow2")
    keel("resize", "--shrink", "c.qcow2", "3M")
    qemu_check_clean("c.qcow2")
    write_raw("c3.raw", 3 << 20, [(0, read("c.raw")[:3 << 20])])
    equal(qemu("compare", "-f", "raw", "c3.raw", "c.qcow2").stdout.strip(), "Images are identical.", "compressed")
    # Sizes qemu-img refuses, refused the same way, the image untouched.
    before = read("c.qcow2")
    for arg, msg in [("3000000", "The new size must be a multiple of 512"), ("0", "New image size must be positive"),
                     ("-3M", "New image size must be positive")]:
        k = keel("resize", "--shrink", "c.qcow2", arg, expect=1)
        q = qemu("resize", "--shrink", "c.qcow2", arg, expect=1)
        check(msg in k.stderr and msg in q.stderr, f"resize {arg}: {k.stderr} / {q.stderr}")
    keel("resize", "c.qcow2", "+1000", expect=1)  # growing too
    check(read("c.qcow2") == before, "a refused resize changed the image")


@test
def dd_matches_qemu():
    size = 1 << 20
    write_raw("in.raw", size, mixed_writes(size, 2, n=8))
    for args in [["bs=4k", "count=3", "skip=1"], ["bs=4k", "count=3"], ["bs=4k", "skip=2"], ["bs=1M", "count=9"],
                 ["bs=1000"]]:
        keel("dd", "-f", "raw", *args, "if=in.raw", "of=k.img")
        qemu("dd", "-f", "raw", *args, "if=in.raw", "of=q.img")
        check(read("k.img") == read("q.img"), f"dd {args} differs from qemu-img dd")
    keel("dd", "-f", "raw", "-O", "qcow2", "bs=64k", "count=4", "if=in.raw", "of=k.qcow2")
    qemu_check_clean("k.qcow2")
    keel("convert", "-O", "raw", "k.qcow2", "k.raw")
    check(read("k.raw") == read("in.raw")[:256 << 10], "dd into qcow2")


# --- rebase and commit ---

def chain(prefix):
    qemu("create", "-q", "-f", "qcow2", f"{prefix}base.qcow2", "8M")
    run(["qemu-io", "-c", "write -P 0xaa 0 2M", f"{prefix}base.qcow2"])
    qemu("create", "-q", "-f", "qcow2", "-b", f"{prefix}base.qcow2", "-F", "qcow2", f"{prefix}top.qcow2")
    run(["qemu-io", "-c", "write -P 0xbb 1M 2M", "-c", "write -z 6M 64k", f"{prefix}top.qcow2"])
    qemu("convert", "-O", "raw", f"{prefix}top.qcow2", f"{prefix}expect.raw")


@test
def rebase():
    chain("")
    keel("create", "-q", "-f", "qcow2", "new.qcow2", "8M")
    run(["qemu-io", "-c", "write -P 0xcc 0 512k", "new.qcow2"])
    keel("rebase", "-b", "new.qcow2", "-F", "qcow2", "top.qcow2")
    equal(info_json(qemu, "top.qcow2").get("backing-filename"), "new.qcow2", "safe rebase: backing file")
    qemu_check_clean("top.qcow2")
    equal(qemu("compare", "-F", "raw", "top.qcow2", "expect.raw").stdout.strip(), "Images are identical.",
          "safe rebase kept the content")
    keel("rebase", "-b", "", "top.qcow2")
    check("backing-filename" not in info_json(qemu, "top.qcow2"), "rebase -b '' left a backing file")
    equal(qemu("compare", "-F", "raw", "top.qcow2", "expect.raw").stdout.strip(), "Images are identical.",
          "rebase onto nothing kept the content")
    # Unsafe: only the name changes.
    keel("rebase", "-u", "-b", "new.qcow2", "-F", "qcow2", "top.qcow2")
    j = info_json(qemu, "top.qcow2")
    equal((j.get("backing-filename"), j.get("backing-filename-format")), ("new.qcow2", "qcow2"), "rebase -u")
    qemu_check_clean("top.qcow2")


@test
def commit():
    chain("")
    equal(keel("commit", "top.qcow2").stdout, "Image committed.\n", "commit output")
    qemu_check_clean("top.qcow2")
    qemu_check_clean("base.qcow2")
    for name in ["top.qcow2", "base.qcow2"]:
        equal(qemu("compare", "-F", "raw", name, "expect.raw").stdout.strip(), "Images are identical.",
              f"{name} after commit")
    # The top is empty again: everything maps to the base.
    for r in json.loads(qemu("map", "--output=json", "top.qcow2").stdout):
        check(r["depth"] == 1 or not r["present"], f"top still allocates {r}")


# --- snapshots ---

@test
def snapshot_list_matches_qemu():
    qemu("create", "-q", "-f", "qcow2", "s.qcow2", "4M")
    qemu("snapshot", "-c", "one", "s.qcow2")
    qemu("snapshot", "-c", "two", "s.qcow2")
    equal(keel("snapshot", "-l", "s.qcow2").stdout, qemu("snapshot", "-l", "s.qcow2").stdout, "snapshot -l")
    equal(info_json(keel, "s.qcow2"), info_json(qemu, "s.qcow2"), "info json with snapshots")
    equal(human_info(keel, "s.qcow2"), human_info(qemu, "s.qcow2"), "info with snapshots")


class Disk:
    """What a qcow2 image should read as: its active disk and its snapshots' (by ID), written with qemu-io."""

    def __init__(self, name, size):
        self.name, self.data, self.snaps = name, bytearray(size), {}

    def write(self, off, length, pattern):
        run(["qemu-io", "-c", f"write -P {pattern} {off} {length}", self.name])
        self.data[off:off + length] = bytes([pattern]) * length

    def zero(self, off, length):
        run(["qemu-io", "-c", f"write -z {off} {length}", self.name])
        self.data[off:off + length] = bytes(length)

    def discard(self, off, length):
        """Cluster-aligned: whole clusters of an image without backing file then read as zeroes."""
        run(["qemu-io", "-c", f"discard {off} {length}", self.name])
        self.data[off:off + length] = bytes(length)

    def check_active(self, what):
        with open(path("active.raw"), "wb") as f:
            f.write(self.data)
        p = qemu("compare", "-f", "qcow2", "-F", "raw", self.name, "active.raw", expect=None)
        check(p.returncode == 0, f"{what}: active disk differs\n{p.stdout}{p.stderr}")

    def check_snapshots(self, what):
        """Every snapshot as QEMU reads it (convert -l reads at the active disk's size), and the list."""
        ids = [s["id"] for s in info_json(qemu, self.name).get("snapshots", [])]
        equal(sorted(ids, key=int), sorted(self.snaps, key=int), f"{what}: snapshot IDs")
        for sid, data in self.snaps.items():
            qemu("convert", "-f", "qcow2", "-l", f"snapshot.id={sid}", "-O", "raw", self.name, "snap.raw")
            want = bytes(data[:len(self.data)]) + bytes(max(0, len(self.data) - len(data)))
            check(read("snap.raw") == want, f"{what}: snapshot {sid} differs")


def unchanged(name):
    """The bytes and the modification time of a file, to show a refused command left it alone."""
    return read(name), os.stat(path(name)).st_mtime_ns


@test
def snapshot_keel_made_qemu_reads():
    d = Disk("k.qcow2", 8 << 20)
    keel("create", "-q", "-f", "qcow2", d.name, "8M")
    d.write(0, 3 << 20, 0x11)
    check(keel("snapshot", "-c", "one", d.name).stdout == "", "snapshot -c prints nothing")
    d.snaps["1"] = bytes(d.data)
    d.write(1 << 20, 64 << 10, 0x22)
    d.discard(2 << 20, 1 << 20)
    keel("snapshot", "-c", "two", d.name)
    d.snaps["2"] = bytes(d.data)
    d.write(5 << 20, 100000, 0x33)
    qemu_check_clean(d.name)
    d.check_active("after keel's snapshots")
    d.check_snapshots("after keel's snapshots")
    equal(keel("snapshot", "-l", d.name).stdout, qemu("snapshot", "-l", d.name).stdout, "snapshot -l")
    # QEMU applies and deletes what keel made.
    qemu("snapshot", "-a", "one", d.name)
    d.data = bytearray(d.snaps["1"])
    qemu_check_clean(d.name)
    d.check_active("after qemu-img snapshot -a one")
    qemu("snapshot", "-d", "one", d.name)
    del d.snaps["1"]
    qemu_check_clean(d.name)
    d.check_snapshots("after qemu-img snapshot -d one")
    keel("snapshot", "-a", "2", d.name)
    d.data = bytearray(d.snaps["2"])
    d.check_active("after keel-img snapshot -a 2")
    keel("snapshot", "-d", "two", d.name)
    qemu_check_clean(d.name)
    check("snapshots" not in info_json(qemu, d.name), "a snapshot is left")
    d.check_active("after keel-img snapshot -d two")


@test
def snapshot_qemu_made_keel_changes():
    d = Disk("q.qcow2", 4 << 20)
    qemu("create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", d.name, "4M")
    d.write(0, 1 << 20, 0x41)
    qemu("snapshot", "-c", "a", d.name)
    d.snaps["1"] = bytes(d.data)
    d.write(512 << 10, 1 << 20, 0x42)
    d.zero(3 << 20, 8192)
    qemu("snapshot", "-c", "b", d.name)
    d.snaps["2"] = bytes(d.data)
    d.write(4096, 4096, 0x43)
    keel("snapshot", "-a", "a", d.name)
    d.data = bytearray(d.snaps["1"])
    qemu_check_clean(d.name)
    d.check_active("after keel-img snapshot -a a")
    d.check_snapshots("after keel-img snapshot -a a")
    keel("snapshot", "-d", "b", d.name)
    del d.snaps["2"]
    qemu_check_clean(d.name)
    d.check_snapshots("after keel-img snapshot -d b")
    keel("snapshot", "-c", "c", d.name)
    d.snaps["2"] = bytes(d.data)  # QEMU's ID rule: one more than the largest
    equal(keel("snapshot", "-l", d.name).stdout, qemu("snapshot", "-l", d.name).stdout, "snapshot -l")
    keel("snapshot", "-d", "a", d.name)
    del d.snaps["1"]
    qemu_check_clean(d.name)
    d.check_snapshots("after keel-img snapshot -d a")
    d.check_active("at the end")


@test
def snapshot_random_sequence():
    rng = random.Random(42)
    size = 6 << 20
    d = Disk("r.qcow2", size)
    keel("create", "-q", "-f", "qcow2", "-o", "cluster_size=64k", d.name, str(size))
    for step in range(60):
        what = rng.randrange(10)
        length = rng.choice([512, 4096, 65536, 300000])
        off = rng.randrange(0, len(d.data) - length)
        if what < 4:
            d.write(off, length, rng.randrange(1, 256))
        elif what < 5:
            off, length = off & ~0xffff, 2 << 16
            d.discard(off, min(length, len(d.data) - off))
        elif what < 7 or not d.snaps:
            sid = str(max(map(int, d.snaps), default=0) + 1)
            keel("snapshot", "-c", f"s{sid}", d.name)
            d.snaps[sid] = bytes(d.data)
        elif what < 8:
            sid = rng.choice(sorted(d.snaps))
            keel("snapshot", "-a", sid if rng.randrange(2) else f"s{sid}", d.name)
            d.data = bytearray(d.snaps[sid])
        elif what < 9:
            sid = rng.choice(sorted(d.snaps))
            keel("snapshot", "-d", f"s{sid}", d.name)  # by name only, as qemu-img
            del d.snaps[sid]
        else:
            keel("resize", d.name, "+1M")
            d.data += bytes(1 << 20)
        if step % 15 == 14:
            qemu_check_clean(d.name)
            d.check_active(f"step {step}")
    qemu_check_clean(d.name)
    d.check_active("at the end")
    d.check_snapshots("at the end")
    equal(keel("snapshot", "-l", d.name).stdout, qemu("snapshot", "-l", d.name).stdout, "snapshot -l")


@test
def snapshot_list_byte_identical():
    keel("create", "-q", "-f", "qcow2", "n.qcow2", "1M")
    # Names shorter and longer than the TAG column, empty, with spaces, the longest QEMU keeps.
    for i, name in enumerate(["", "x" * 16, "y" * 40, "a b", "z" * 255]):
        (keel if i % 2 else qemu)("snapshot", "-c", name, "n.qcow2")
    equal(keel("snapshot", "-l", "n.qcow2").stdout, qemu("snapshot", "-l", "n.qcow2").stdout, "snapshot -l")
    equal(human_info(keel, "n.qcow2"), human_info(qemu, "n.qcow2"), "info with snapshots")
    equal(info_json(keel, "n.qcow2"), info_json(qemu, "n.qcow2"), "info json with snapshots")
    qemu_check_clean("n.qcow2")
    equal(keel("snapshot", "-l", "n.qcow2").stdout.count("\n"), 7, "one line per snapshot")


@test
def snapshot_errors_change_nothing():
    keel("create", "-q", "-f", "qcow2", "s.qcow2", "4M")
    run(["qemu-io", "-c", "write -P 1 0 64k", "s.qcow2"])
    keel("snapshot", "-c", "one", "s.qcow2")
    before = unchanged("s.qcow2")
    for args, msg in [
        (["-c", "one"], "Could not create snapshot 'one': Snapshot with name 'one' already exists on device "
                        "'s.qcow2'"),
        (["-c", "n" * 256],
         f"Could not create snapshot '{'n' * 256}': s.qcow2: snapshot name too long (256 bytes; at most 255)"),
        (["-a", "two"], "Could not apply snapshot 'two': s.qcow2: snapshot not found"),
        (["-d", "two"], "Could not delete snapshot 'two': snapshot not found"),
        (["-d", "1"], "Could not delete snapshot '1': snapshot not found"),  # -d takes names only
    ]:
        p = keel("snapshot", *args, "s.qcow2", expect=1)
        equal(p.stderr, f"keel-img: {msg}\n", f"snapshot {args[0]} error")
    check(unchanged("s.qcow2") == before, "a refused snapshot command changed the image")
    qemu_check_clean("s.qcow2")
    shutil.copy(path("s.qcow2"), path("q.qcow2"))
    for name in ["two", "1"]:
        equal(keel("snapshot", "-d", name, "s.qcow2", expect=1).stderr.replace("keel-img: ", ""),
              qemu("snapshot", "-d", name, "q.qcow2", expect=1).stderr.replace("qemu-img: ", ""),
              f"snapshot -d {name} error, as qemu-img's")
    # refcount_bits=1 cannot count a second reference: refused as by qemu-img, but without its leak.
    keel("create", "-q", "-f", "qcow2", "-o", "refcount_bits=1", "r1.qcow2", "4M")
    run(["qemu-io", "-c", "write -P 1 0 64k", "r1.qcow2"])
    before = unchanged("r1.qcow2")
    p = keel("snapshot", "-c", "x", "r1.qcow2", expect=1)
    check(p.stderr.startswith("keel-img: Could not create snapshot 'x': r1.qcow2: the refcount of cluster ")
          and p.stderr.endswith(" would exceed 1 (refcount_bits=1)\n"), p.stderr)
    check(unchanged("r1.qcow2") == before, "a refused snapshot changed the image")
    qemu_check_clean("r1.qcow2")
    qemu("snapshot", "-c", "x", "r1.qcow2", expect=1)


# --- errors ---

@test
def errors_name_the_file():
    for args in [["info", "nothere.qcow2"], ["check", "nothere.qcow2"], ["convert", "nothere.qcow2", "x.raw"],
                 ["map", "nothere.qcow2"], ["resize", "nothere.qcow2", "1M"]]:
        p = keel(*args, expect=1)
        check(p.stderr.startswith("keel-img: ") and "nothere.qcow2" in p.stderr, f"{args}: {p.stderr}")
    p = keel("frobnicate", expect=1)
    check("frobnicate" in p.stderr, p.stderr)
    p = keel("info", "--output=xml", "x", expect=1)
    check("--output" in p.stderr, p.stderr)
    # A corrupt header is an error, never a crash, and the file is untouched.
    with open(path("bad.qcow2"), "wb") as f:
        f.write(b"QFI\xfb" + (3).to_bytes(4, "big") + bytes(64))
    before = read("bad.qcow2")
    for cmd in ["info", "check"]:
        p = keel(cmd, "bad.qcow2", expect=None)
        check(p.returncode in (1, 2) and p.stderr.startswith("keel-img: "), f"{cmd}: {p.returncode} {p.stderr}")
    check(read("bad.qcow2") == before, "a corrupt image was modified")


def main():
    global KEEL_IMG, WORK
    ap = argparse.ArgumentParser()
    ap.add_argument("--keel-img")
    ap.add_argument("--work")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("test", nargs="?")
    a = ap.parse_args()
    if a.list:
        print("\n".join(TESTS))
        return 0
    if a.test not in TESTS:
        print(f"unknown test '{a.test}' (--list lists them)", file=sys.stderr)
        return 1
    if not shutil.which("qemu-img") or not shutil.which("qemu-io"):
        print("qemu-img/qemu-io not installed (Debian's qemu-utils)", file=sys.stderr)
        return 77
    KEEL_IMG = os.path.abspath(a.keel_img)
    WORK = os.path.join(os.path.abspath(a.work), a.test)
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    try:
        TESTS[a.test]()
    except Failure as e:
        print(f"FAIL {a.test}: {e}", file=sys.stderr)
        return 1
    shutil.rmtree(WORK, ignore_errors=True)
    print(f"ok {a.test}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
