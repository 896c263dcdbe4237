// SPDX-License-Identifier: MIT
// Machine manifests: YAML with includes and overrides, validated into a MachineSpec.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "error.h"
#include "schema.h"

namespace keel
{

// One property as written: the raw text (scalar) and where it was written.
struct PropSetting {
    std::string name;
    std::string text;
    PropValue value; // already parsed and checked against the schema
    Location loc;
};

// `plic.10`, `cpu0.mei`, `intc.in[3]`.
struct IrqRef {
    std::string device;
    std::string group; // "" = the default group
    unsigned index = 0;
    Location loc;
    std::string str() const; // as the manifest spells it
};

struct RegSpec {
    uint64_t base = 0;
    std::optional<uint64_t> size; // when the manifest states one
    std::string symbol;           // `@name`: the address of ELF symbol `name` (base unused until resolved)
    Location loc;
};

// One property of a device-tree node as a manifest writes it under `fdt:`.
struct FdtPropSpec {
    enum class Kind { Empty, Cells, Strings, Delete } kind = Kind::Empty;
    std::string name;
    std::vector<uint32_t> cells;      // Cells
    std::vector<std::string> strings; // Strings
    Location loc;
};

// A device's `fdt:` section: changes to the node its type generates.
struct FdtNodeSpec {
    std::string node_name;               // replaces the type's node name ("" = keep)
    std::vector<std::string> compatible; // replaces the type's list (empty = keep)
    std::vector<FdtPropSpec> props;      // added or replaced, in order
    bool disabled = false;               // `fdt: false`: the device is left out of the tree
    Location loc;
};

struct DeviceSpec {
    std::string name; // the key under `devices:`
    std::string type;
    std::string version_req; // "" = any
    std::vector<RegSpec> reg;
    std::vector<IrqRef> irq;                            // default output group, in line order
    std::map<std::string, std::vector<IrqRef>> irq_out; // named output groups
    std::vector<PropSetting> props;                     // as written, in order (defaults not included)
    FdtNodeSpec fdt;                                    // `fdt:`
    Location loc;                                       // of the key
    Location type_loc;
};

struct MemorySpec {
    std::string name;
    std::string kind = "ram"; // "ram" or "rom"
    uint64_t base = 0;
    uint64_t size = 0;
    Location loc;
};

struct CpuSpec {
    std::string type;
    unsigned count = 1;
    std::vector<PropSetting> props;
    Location loc;      // of the `cpus` key
    Location type_loc; // of its `type`
};

// A chardev declared in the manifest (`chardevs:`) or on the command line
// (-serial, -chardev). Options as in QEMU's -chardev syntax.
struct ChardevSpec {
    std::string id;      // "serial0"
    std::string backend; // stdio, file, socket, null, ...
    std::map<std::string, std::string> options;
    Location loc;
};

struct MachineSpec {
    int schema_version = 1;
    std::string name;
    std::string description;
    std::string file; // the top manifest
    std::string accel;
    Location accel_loc;
    std::string board; // `board:` the board module that boots it ("" = keel loads -kernel itself)
    Location board_loc;
    FdtNodeSpec fdt_root; // top-level `fdt:`: model, compatible and properties of the root node
    std::optional<CpuSpec> cpus;
    std::vector<MemorySpec> memory;
    std::vector<ChardevSpec> chardevs;
    std::vector<DeviceSpec> devices; // in declaration order (includes first)
};

// What the command line changes in a manifest.
struct ManifestOverrides {
    std::optional<std::string> memory_size; // -m: size of the first RAM region
    std::optional<unsigned> smp;            // -smp: cpus.count
    std::optional<std::string> accel;       // -accel
    std::vector<std::string> devices;       // -device TYPE,id=NAME,prop=value,... (reg=ADDR allowed)
    std::vector<std::string> chardev_ids;   // ids declared with -chardev (serialN always exist)
};

// `name` is a path to a YAML file, or a bare name looked up as
// `<dir>/<name>.yaml` in `search_dirs` (-M riscv-virt). Throws keel::Error
// whose message starts with `file:line:col: ` for every problem in the file.
MachineSpec load_manifest(const std::string &name, const std::vector<std::string> &search_dirs,
                          const ManifestOverrides &overrides, const SchemaProvider &types);

// Where `-M name` would be found, or empty.
std::string find_manifest(const std::string &name, const std::vector<std::string> &search_dirs);

// JSON Schema (draft 2020-12) for manifests, with one `devices` entry
// alternative per registered type (properties typed and documented).
std::string manifest_json_schema(const SchemaProvider &types);

// Does `version` ("1.2.3") satisfy `req` ("^1.2", "~1.2.3", ">=1.0 <2", "1.x", "*", "=1.2.3")?
// Throws keel::Error (no location) if `req` is malformed.
bool semver_satisfies(const std::string &version, const std::string &req);
// Whether `v` is a valid MAJOR.MINOR.PATCH version.
bool semver_valid(const std::string &v);

} // namespace keel
