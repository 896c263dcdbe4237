#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes the guest images the loader and run tests use: programs for the test CPU and broken ELF files.
"""usage: mkimage.py OUTDIR

The test CPU (testcpu.c, run by testaccel.c) executes 24-byte records
{u64 op, u64 addr, u64 value}, see testcpu.h. ELF files are written by hand
(no cross toolchain needed) so each broken variant differs from a good one in
exactly one way.
"""
import os
import struct
import sys

EM_RISCV = 243
OP_STORE32, OP_SPIN, OP_STORE64, OP_ADD32, OP_SKIP_IF_ZERO = 1, 2, 3, 4, 5
SIFIVE_TEST = 0x100000
RAM = 0x80000000
ROM = 0x20000000
COUNTER = RAM + 0x80000  # outside every image: survives a reset


def rec(op, addr=0, value=0):
    return struct.pack("<QQQ", op, addr, value)


def exit_code(code):
    return rec(OP_STORE32, SIFIVE_TEST, 0x3333 | (code << 16)) + rec(OP_SPIN)


def elf(segments, entry, symbols=(), machine=EM_RISCV, etype=2):
    """segments: [(paddr, data, memsz)]; symbols: [(name, value, bind)], bind 0 local / 1 global."""
    phoff = 64
    data_off = 0x1000
    body = b""
    phdrs = b""
    for paddr, data, memsz in segments:
        off = data_off + len(body)
        phdrs += struct.pack("<IIQQQQQQ", 1, 7, off, paddr, paddr, len(data), memsz, 0x1000)
        body += data
        body += b"\0" * (-len(body) % 16)
    # .symtab, .strtab, .shstrtab after the segment data
    strtab = b"\0"
    syms = struct.pack("<IBBHQQ", 0, 0, 0, 0, 0, 0)
    for name, value, bind in symbols:
        syms += struct.pack("<IBBHQQ", len(strtab), (bind << 4) | 1, 0, 1, value, 8)
        strtab += name.encode() + b"\0"
    shstrtab = b"\0.text\0.symtab\0.strtab\0.shstrtab\0"
    symtab_off = data_off + len(body)
    strtab_off = symtab_off + len(syms)
    shstr_off = strtab_off + len(strtab)
    shoff = shstr_off + len(shstrtab)
    shoff += -shoff % 8
    first = segments[0]

    def sh(name, typ, flags, addr, off, size, link=0, info=0, align=1, entsize=0):
        return struct.pack("<IIQQQQIIQQ", name, typ, flags, addr, off, size, link, info, align, entsize)

    shdrs = sh(0, 0, 0, 0, 0, 0)
    shdrs += sh(1, 1, 6, first[0], data_off, len(first[1]), align=8)
    shdrs += sh(7, 2, 0, 0, symtab_off, len(syms), link=3, info=1, align=8, entsize=24)
    shdrs += sh(15, 3, 0, 0, strtab_off, len(strtab))
    shdrs += sh(23, 3, 0, 0, shstr_off, len(shstrtab))
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", etype, machine, 1, entry, phoff, shoff, 0, 64, 56,
                               len(segments), 64, 5, 4)
    out = bytearray(ehdr + phdrs)
    out += b"\0" * (data_off - len(out))
    out += body + syms + strtab + shstrtab
    out += b"\0" * (shoff - len(out))
    out += shdrs
    return bytes(out)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)

    def write(name, data):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)

    prog42 = exit_code(42)
    good = elf([(RAM, prog42, 0x1000)], RAM,
               [("_start", RAM, 1), ("mailbox", RAM + 0x800, 1), ("local_only", RAM + 0x10, 0)])
    write("exit42.elf", good)
    write("exit42.bin", prog42)
    # Reset test: the first boot counts itself and asks for a reset; the second exits with 5.
    write("reset.elf", elf([(RAM, rec(OP_SKIP_IF_ZERO, COUNTER) + exit_code(5)[:24] + rec(OP_ADD32, COUNTER, 1) +
                             rec(OP_STORE32, SIFIVE_TEST, 0x7777) + rec(OP_SPIN), 0x100)], RAM))
    write("spin.elf", elf([(RAM, rec(OP_SPIN), 0x100)], RAM))
    # Code in ROM, data segment with bss in RAM.
    write("rom.elf", elf([(ROM, exit_code(3), 0x100), (RAM + 0x2000, b"\x11" * 16, 0x1000)], ROM,
                         [("mailbox", RAM + 0x3000, 1)]))
    write("outside.elf", elf([(RAM, prog42, 0x100), (0x90000000, b"\0" * 16, 0x1000)], RAM))
    # As `ld -Ttext=RAM` links: the first segment starts at file offset 0, so the ELF headers and the
    # padding after them sit below RAM; only the code after them must land in memory.
    below = bytearray(elf([(RAM, prog42, 0x100)], RAM))
    struct.pack_into("<QQQQQ", below, 64 + 8, 0, RAM - 0x1000, RAM - 0x1000, 0x1000 + len(prog42), 0x1100)
    write("headers-below.elf", bytes(below))
    below[0x800] = 0x5a  # not a header, not padding: must not be dropped silently
    write("junk-below.elf", bytes(below))
    # Broken files, each wrong in one way.
    write("truncated.elf", good[:100])
    write("aarch64.elf", elf([(RAM, prog42, 0x100)], RAM, machine=183))
    e32 = bytearray(good)
    e32[4] = 1
    write("elf32.elf", bytes(e32))
    be = bytearray(good)
    be[5] = 2
    write("bigendian.elf", bytes(be))
    write("relocatable.elf", elf([(RAM, prog42, 0x100)], RAM, etype=1))
    cut = bytearray(good[:0x1000 + 8])  # headers intact, segment data cut short
    write("short-segment.elf", bytes(cut))


if __name__ == "__main__":
    main()
