#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A stand-in emulator that misbehaves on purpose (-M hang|exit|close), to test boot_test.py's failure paths.
"""Accepts the emulator options boot_test.py passes; only -M and -serial unix:PATH,... matter.
  -M hang:  prints the start of OpenSBI's banner on the socket, then never prints again;
  -M exit:  exits with status 3 before opening the socket, with a message on stderr;
  -M close: prints the start of the banner, then closes the console and exits with status 5."""
import os
import socket
import sys
import time

args = sys.argv[1:]
machine = args[args.index("-M") + 1]
serial = args[args.index("-serial") + 1]
path = serial.split(",")[0].removeprefix("unix:")
if machine == "exit":
    print("fake: cannot run this machine", file=sys.stderr)
    sys.exit(3)
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(1)
conn, _ = server.accept()
conn.sendall(b"\r\nOpenSBI v1.1\r\nPlatform Name             : fake\r\nPlatform HART C")
if machine == "close":
    conn.close()
    sys.exit(5)
time.sleep(3600)
os._exit(0)
