// SPDX-License-Identifier: MIT
// The human monitor's command interpreter (hmp_commands.cpp), shared by its terminal front ends (hmp.cpp)
// and hmp_execute (QMP's human-monitor-command, gdb's `monitor CMD`).
#pragma once

#include <string>
#include <vector>

namespace keel::monitor
{

// What one monitor remembers between commands, as in QEMU: its CPU (`cpu N`) and the last format and
// unit size of `x`/`xp` (QEMU starts with x and 4 bytes).
struct HmpSession {
    unsigned cpu = 0;
    char last_format = 'x';
    unsigned last_size = 4;
    bool quit = false; // `quit` ran: the front end prints no prompt after it
};

// Run one command line: its output, each line ending in "\n". Never throws. Not with big_lock() held.
std::string hmp_run(HmpSession &s, const std::string &line);

// The -plugin arguments keel was started with, for `info plugins`.
void hmp_set_plugins(std::vector<std::string> plugins);

} // namespace keel::monitor
