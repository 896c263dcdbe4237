// SPDX-License-Identifier: MIT
// The command line: QEMU's option names parsed into a RunConfig.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "block.h"
#include "manifest.h"

namespace keel
{

struct RunConfig {
    std::string machine; // -M NAME or FILE.yaml
    ManifestOverrides overrides;
    bool nographic = false;
    std::vector<std::string> serial;      // -serial, in order: serial0, serial1, ...
    std::vector<std::string> chardev;     // -chardev
    std::string log_items;                // -d
    std::string log_file;                 // -D
    std::vector<std::string> device_help; // -device help / -device TYPE,help
    bool accel_help = false;              // -accel help
    std::optional<std::string> bios;      // -bios FILE|none|default
    std::string kernel;                   // -kernel FILE
    std::string initrd;                   // -initrd FILE
    std::optional<std::string> append;    // -append CMDLINE
    std::string dtb;                      // -dtb FILE
    std::string dumpdtb;                  // -machine dumpdtb=FILE
    std::vector<DriveSpec> drives;        // -drive, in order (-snapshot already applied)
    bool snapshot = false;                // -snapshot: every drive as snapshot=on
    int icount_shift = -1;                // -icount [shift=]N: 2^N ns per instruction; -1: off
    bool icount_sleep = true;             // -icount sleep=on|off
    std::vector<std::string> plugins;     // -plugin, in order
    std::vector<std::string> qmp;         // -qmp DEV, in order
    std::vector<std::string> monitor;     // -monitor DEV, in order
    std::vector<std::string> mon;         // -mon [chardev=]ID[,mode=readline|control][,pretty=on|off]
    std::string gdb;                      // -gdb DEV (-s: tcp::1234); "" = no gdbstub
    bool start_paused = false;            // -S
    bool dry_run = false;
    bool list_modules = false;
    bool rebuild_index = false;
    bool manifest_schema = false;
    bool version = false;
    bool help = false;
};

// Throws keel::Error("-opt: what is wrong") for bad input.
RunConfig parse_command_line(const std::vector<std::string> &args);
std::string usage_text();

} // namespace keel
