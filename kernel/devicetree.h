// SPDX-License-Identifier: MIT
// The flattened device tree of a machine: generated from its instances (libfdt), or a -dtb file, with
// /chosen.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <keel/fdt.h>

namespace keel
{

class Machine;

// What /chosen gets besides stdout-path.
struct FdtChosen {
    std::string bootargs;      // "" = none
    uint64_t initrd_start = 0; // both 0 = none
    uint64_t initrd_end = 0;
};

// The tree of `m` (built and realized): the root from the manifest's `fdt:`,
// /memory, /cpus, /soc with a node per device type that has KeelFdtInfo,
// nodes devices add at the root, and /chosen. Throws keel::Error for what a
// device hook reports or a manifest `fdt:` mistake (located).
std::vector<uint8_t> generate_fdt(Machine &m, const FdtChosen &chosen);

// A tree read from `file` (-dtb), checked, with /chosen set from `chosen`.
// Throws keel::Error("FILE: what is wrong").
std::vector<uint8_t> load_fdt_file(const std::string &file, const FdtChosen &chosen);

// The writer services behind KeelServices.fdt_*.
int fdt_write(KeelFdt *w, const char *name, const void *value, size_t len);
int fdt_begin(KeelFdt *w, const char *name);
int fdt_end(KeelFdt *w);
uint32_t fdt_phandle_of(KeelFdt *w, KeelObject *obj);
int fdt_interrupt_node(KeelFdt *w, uint32_t cells);

} // namespace keel
