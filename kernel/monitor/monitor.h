// SPDX-License-Identifier: MIT
// The monitors and the debugger front ends: QMP (qmp.cpp), the human monitor (hmp.cpp), the gdbstub
// (gdbstub.cpp). Each is started from main() once the machine is built and before it runs; each throws
// keel::Error naming the option for bad input. They run on the main loop thread and drive the machine
// through keel::control() (control.h).
#pragma once

#include <string>

#include "cli.h"

namespace keel::monitor
{

// -qmp DEV, -mon chardev=ID,mode=control
void start_qmp(const RunConfig &cfg);
// -monitor DEV, -mon chardev=ID[,mode=readline], and the Ctrl-A c monitor of multiplexed chardevs
void start_hmp(const RunConfig &cfg);
// -gdb DEV, -s
void start_gdbstub(const RunConfig &cfg);
// HMP's `gdbserver [DEV]` (default tcp::1234): start (or move) the gdbstub; false and `err` on failure.
bool gdbserver_start(const std::string &dev, std::string &err);
// Before exit: close sockets (unix socket files removed), restore terminals.
void stop_all();
// The run ended with exit status `status`: a gdb still attached gets the `W` stop reply (as QEMU sends when
// the guest exits) instead of a closed connection. Call it before stop_all().
void gdb_exit(int status);
// The gdbstub's part of stop_all(): close its listener and client, remove a unix socket file. Any thread.
void gdb_stop();
// QMP's part of stop_all(): remove the -qmp unix socket files, close every QMP client and
// listener (on the loop thread, after a reply being sent). Idempotent; call it from any thread but the
// loop's.
void qmp_stop();

// One HMP command line (QMP's human-monitor-command, gdb's `monitor CMD`): its output, each line ending
// in "\n" ("" for commands that print nothing). Never throws: errors are output text, as in QEMU. Must
// not be called holding big_lock() (stop/cont wait for the vCPUs).
std::string hmp_execute(const std::string &line);

} // namespace keel::monitor
