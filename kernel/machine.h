// SPDX-License-Identifier: MIT
// Instances and the machine: objects from a MachineSpec, properties, MMIO mapping, IRQ wiring, lifecycle.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <keel/cpu.h>
#include <keel/device.h>
#include <keel/irq.h>

#include "manifest.h"
#include "memory.h"
#include "registry.h"

namespace keel
{
class Machine;
struct IrqInputGroup;
} // namespace keel

// One output line of a device, connected by the manifest to at most one input.
struct KeelIrqLine {
    KeelObject *owner = nullptr;
    std::string group;
    unsigned index = 0;
    keel::IrqInputGroup *target = nullptr;
    unsigned target_index = 0;
    int level = 0;
};

namespace keel
{

struct IrqInputGroup {
    KeelObject *owner = nullptr;
    std::string name; // "" = default group
    unsigned count = 0;
    KeelIrqHandler handler = nullptr;
    void *opaque = nullptr;
    std::vector<const KeelIrqLine *> driven_by; // per input, who drives it
};

struct IrqOutputGroup {
    std::string name;
    std::vector<std::unique_ptr<KeelIrqLine>> lines;
};

// A register window a device created in realize, mapped after it.
struct Window {
    std::unique_ptr<MemoryRegion> region;
    uint64_t base = 0;
    bool mapped = false;
};

// Resolves a chardev id named by a property (serial0, an id under chardevs:).
using ChardevResolver = std::function<KeelChardev *(const std::string &id, const Location &loc)>;

} // namespace keel

// An instance in the object tree (the C ABI's opaque KeelObject).
struct KeelObject {
    std::string name; // "uart0"
    std::string path; // "/machine/uart0"
    const keel::TypeRecord *type = nullptr;
    const keel::DeviceSpec *spec = nullptr;
    keel::Machine *machine = nullptr;
    void *state = nullptr;
    bool realized = false;
    std::vector<keel::Window> windows;
    std::vector<std::unique_ptr<keel::IrqInputGroup>> inputs;
    std::vector<keel::IrqOutputGroup> outputs;
    std::vector<std::unique_ptr<std::string>> strings; // storage behind STRING properties
    std::vector<KeelTimer *> timers;                   // freed with the object
    std::map<std::string, keel::PropValue> values;     // every property set (or defaulted), by name

    keel::IrqInputGroup *find_inputs(std::string_view group);
    keel::IrqOutputGroup *find_outputs(std::string_view group);
    const KeelDeviceOps *ops() const;
};

// What a board module holds: the machine (keel/machine.h's opaque handle).
struct KeelMachine {
    keel::Machine *machine = nullptr;
};

namespace keel
{

// ELF symbols of the loaded guest images, by name (for `reg: '@tohost'`).
using SymbolTable = std::map<std::string, uint64_t>;

class Machine
{
  public:
    // Windows placed by `@symbol` lie on a variable inside a loaded image,
    // so inside RAM: they are mapped above RAM (priority 0) instead of being
    // reported as overlapping it, and the loader skips them.
    static constexpr int kOverlayPriority = 1;

    Machine(Registry &registry, MachineSpec spec, ChardevResolver chardevs);
    ~Machine();
    Machine(const Machine &) = delete;
    Machine &operator=(const Machine &) = delete;

    // Symbols that `@name` register addresses resolve against; set before build().
    void set_symbols(SymbolTable symbols) { symbols_ = std::move(symbols); }

    // Instantiate (CPUs cpu0..N-1 first, then devices), set properties,
    // realize, map windows, wire IRQs, reset. Throws keel::Error pointing at
    // the manifest for every mistake.
    void build();
    // Reset every object (CPUs and devices), in creation order.
    void reset(KeelResetType type);

    // The CPU objects, cpu0 first, and their type's hooks.
    const std::vector<KeelObject *> &cpus() const { return cpus_; }
    const KeelCpuOps *cpu_ops() const;
    // Devices left out because a `@symbol` of their `reg` is not defined by
    // any loaded image: name and reason.
    const std::vector<std::pair<std::string, std::string>> &left_out() const { return left_out_; }

    const MachineSpec &spec() const { return spec_; }
    AddressSpace &system_memory() { return *system_as_; }
    MemoryRegion &system_root() { return *root_; }
    KeelObject *find(std::string_view name);
    const std::vector<std::unique_ptr<KeelObject>> &objects() const { return objects_; }

    // The resolved machine for --dry-run: objects, properties, wiring, memory map.
    std::string describe();

    // For board modules (keel/machine.h).
    KeelMachine *handle() { return &handle_; }
    // A ROM region of `size` bytes at `base` (its bytes returned), checked
    // against memory and device windows like the manifest's regions.
    uint8_t *add_rom(const std::string &name, uint64_t base, uint64_t size);
    // -dtb: use this tree instead of generating one.
    void set_dtb_file(std::string file) { dtb_file_ = std::move(file); }
    const std::string &dtb_file() const { return dtb_file_; }
    // The tree last handed to the board (for -machine dumpdtb).
    std::vector<uint8_t> &fdt_blob() { return fdt_blob_; }

  private:
    void set_properties(KeelObject &o, const std::vector<PropSetting> &settings);
    void map_windows(KeelObject &o);
    void wire(KeelObject &o);
    void create_cpus();
    KeelObject &create_object(const DeviceSpec &d, const TypeRecord &t);
    // " (it was left out: ...)" when `name` is a left-out device, else "".
    std::string left_out_note(const std::string &name) const;

    Registry &registry_;
    MachineSpec spec_;
    ChardevResolver chardevs_;
    std::unique_ptr<MemoryRegion> root_;
    std::unique_ptr<AddressSpace> system_as_;
    std::vector<std::unique_ptr<MemoryRegion>> memory_;  // from `memory:`
    std::vector<std::unique_ptr<KeelObject>> objects_;   // CPUs, then devices in manifest order
    std::vector<std::unique_ptr<DeviceSpec>> cpu_specs_; // what each CPU object is built from
    std::vector<KeelObject *> cpus_;
    SymbolTable symbols_;
    std::vector<std::pair<std::string, std::string>> left_out_;
    KeelMachine handle_{this};
    std::vector<std::unique_ptr<MemoryRegion>> roms_; // added by the board
    std::string dtb_file_;
    std::vector<uint8_t> fdt_blob_;
};

// Store the value of a scalar property (bool, int, uint, size, enum, string) where the instance's device
// reads it; false for references (link, chardev, drive), which only the machine resolves.
bool store_scalar_property(KeelObject &o, const PropSchema &p, const PropValue &v);

// Set the program counter of CPU object `cpu` (its entry point). Throws
// keel::Error if the CPU refuses it or keel does not know its architecture.
void set_cpu_pc(KeelObject *cpu, uint64_t pc);

} // namespace keel
