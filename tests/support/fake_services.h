// SPDX-License-Identifier: MIT
// A fake kernel to unit-test device modules without a machine: loads a .so and records its service calls.
// It instantiates types and lets a test drive MMIO, IRQs, chardevs, timers and DMA (see FakeKernel).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <keel/module.h>

namespace keel::test
{

class FakeKernel;

// One property override as a test spells it: name and value in manifest spelling.
using PropValues = std::map<std::string, std::string>;

// The test's side of a chardev backend. The module sees it as an opaque KeelChardev.
class FakeChardev
{
  public:
    FakeChardev();
    ~FakeChardev();
    FakeChardev(const FakeChardev &) = delete;
    FakeChardev &operator=(const FakeChardev &) = delete;

    // Offer @bytes to the front end, honouring can_receive; what it cannot take yet stays queued and is
    // offered again by pump(), by the next feed() and when the front end calls chardev_accept_input.
    // Returns how many bytes were delivered now.
    size_t feed(const std::string &bytes);
    size_t pump();
    // Deliver bytes even if can_receive says no (a misbehaving backend), to reach overrun paths.
    void feed_unchecked(const std::string &bytes);
    void event(KeelChardevEvent ev);

    const std::string &output() const { return output_; }
    void clear_output() { output_.clear(); }
    size_t queued() const { return queue_.size(); }
    bool has_handlers() const { return handlers_ != nullptr; }
    unsigned accept_input_calls() const { return accept_calls_; }
    const std::string &id() const { return id_; }
    KeelChardev *handle() const { return handle_; }

  private:
    friend class FakeKernel;
    friend class FakeDevice;
    friend struct FakeAccess;
    std::string id_;
    KeelChardev *handle_ = nullptr;
    const KeelChardevHandlers *handlers_ = nullptr;
    void *opaque_ = nullptr;
    std::string queue_;
    std::string output_;
    unsigned accept_calls_ = 0;
};

// What a test can see of one output line.
// A drive behind the drive_* services: its bytes are @data (the drive's length is data.size()). The module
// sees it as an opaque KeelDrive through a KEEL_PROP_DRIVE property naming its id.
class FakeDrive
{
  public:
    FakeDrive();
    ~FakeDrive();
    FakeDrive(const FakeDrive &) = delete;
    FakeDrive &operator=(const FakeDrive &) = delete;

    std::vector<uint8_t> data;
    bool read_only = false; // drive_read_only, and every write, discard and write-zeroes is refused
    bool fail_io = false;   // every read, write, flush, discard and write-zeroes fails (a host I/O error)
    // What the device asked for.
    unsigned reads = 0, writes = 0, flushes = 0, discards = 0, write_zeroes = 0;
    uint32_t last_write_zeroes_flags = 0;
    std::vector<std::pair<uint64_t, uint64_t>> discarded; // (offset, bytes) of each discard

    const std::string &id() const { return id_; }
    KeelDrive *handle() const { return handle_; }

  private:
    friend class FakeKernel;
    friend struct FakeAccess;
    std::string id_;
    KeelDrive *handle_ = nullptr;
};

struct IrqOutState {
    int level = 0;
    unsigned raises = 0; // 0 -> 1 transitions
    unsigned lowers = 0; // 1 -> 0 transitions
    unsigned sets = 0;   // every irq_set call
};

struct DeviceImpl;

// One instance of a device type. Destroying it unrealizes it and frees its state and timers.
class FakeDevice
{
  public:
    ~FakeDevice();
    FakeDevice(const FakeDevice &) = delete;
    FakeDevice &operator=(const FakeDevice &) = delete;

    const std::string &name() const;
    KeelObject *object() const;
    void *state() const;
    template <class T> T *state_as() const { return static_cast<T *>(state()); }

    // Lifecycle. realize() returns false and sets kernel().error() on failure.
    bool realize();
    void reset(KeelResetType type = KEEL_RESET_COLD);
    void unrealize();
    bool realized() const;

    // MMIO as the bus does it: width and alignment checked against the ops table, accesses wider or
    // narrower than the implemented widths split or widened, little/big endian converted.
    unsigned window_count() const;
    uint64_t window_size(unsigned window = 0) const;
    std::string window_name(unsigned window = 0) const;
    const KeelMemoryOps &window_ops(unsigned window = 0) const; // normalized like the kernel does
    KeelMemResult read(unsigned window, uint64_t offset, unsigned width, uint64_t *value);
    KeelMemResult write(unsigned window, uint64_t offset, unsigned width, uint64_t value);
    // Shorthands on window 0 that fail the test (via the returned result) — use when OK is expected.
    uint64_t read(uint64_t offset, unsigned width);
    void write(uint64_t offset, unsigned width, uint64_t value);
    // Give window @window a base address (what device_get_reg reports).
    void map(unsigned window, uint64_t base);

    // Interrupt outputs ("" = default group).
    unsigned irq_out_count(const std::string &group = "") const;
    IrqOutState irq_out(const std::string &group = "", unsigned n = 0) const;
    int irq_level(const std::string &group = "", unsigned n = 0) const { return irq_out(group, n).level; }
    // Interrupt inputs: drive input @n of @group; false if the group or line does not exist.
    unsigned irq_in_count(const std::string &group = "") const;
    bool set_irq(const std::string &group, unsigned n, int level);
    // Wire output @n of @out_group to input @in_n of @in_group of @target (drives it with the current
    // level at once, as the kernel does when it wires a machine).
    bool connect(const std::string &out_group, unsigned n, FakeDevice &target, const std::string &in_group,
                 unsigned in_n);

    unsigned armed_timers() const;

  private:
    friend class FakeKernel;
    friend struct FakeAccess;
    explicit FakeDevice(std::unique_ptr<DeviceImpl> impl);
    std::unique_ptr<DeviceImpl> impl_;
};

struct LogEntry {
    bool masked;           // log_mask (true) or log (false)
    uint32_t level_or_cat; // KeelLogLevel, or the KEEL_LOG_* category
    std::string object;    // object name, "" if none
    std::string message;
};

struct SystemRequest {
    KeelSystemRequest req;
    int status;
};

// The kernel. Only one exists at a time: the C service table has no context pointer, so it finds the
// current FakeKernel through a global.
class FakeKernel
{
  public:
    explicit FakeKernel(uint64_t ram_base = 0x80000000, size_t ram_size = 64 * 1024);
    ~FakeKernel();
    FakeKernel(const FakeKernel &) = delete;
    FakeKernel &operator=(const FakeKernel &) = delete;

    const KeelServices *services() const;

    // Modules. load_module dlopens @path, checks keel_module_info like the loader and runs init.
    bool load_module(const std::string &path);
    const KeelModuleInfo *module_info(const std::string &name) const;
    const KeelDeviceTypeInfo *find_type(const std::string &name) const;
    std::vector<std::string> type_names() const;
    // Accelerators a loaded module registered (register_accel).
    const KeelAccelTypeInfo *find_accel(const std::string &name) const;

    // CPUs. Instances of a CPU type (KeelDeviceTypeInfo.cpu) get KeelCpuCommon.cpu_index 0, 1, ... in
    // creation order. cpu_kick is counted per object name; cpu_ram_ptr/cpu_mem_read/cpu_mem_write reach the
    // fake's RAM.
    unsigned cpu_kicks(const std::string &name) const;

    // Instances: init, then property defaults, then @props, then (unless @realize is false) realize and
    // a cold reset. Returns nullptr and sets error() on failure. @name is the object name (used by LINK).
    std::unique_ptr<FakeDevice> create(const std::string &type, const std::string &name,
                                       const PropValues &props = {}, bool realize = true);
    std::unique_ptr<FakeDevice> create(const std::string &type, const PropValues &props = {})
    {
        return create(type, type, props);
    }

    FakeChardev &add_chardev(const std::string &id);
    FakeChardev *chardev(const std::string &id);

    // Drives (-drive id=@id) of @size zero bytes, for KEEL_PROP_DRIVE properties.
    FakeDrive &add_drive(const std::string &id, size_t size, bool read_only = false);
    FakeDrive *drive(const std::string &id);

    // Virtual time: advance_to fires every due timer in expiry order, with now() set to its deadline.
    int64_t now() const { return now_; }
    void advance_to(int64_t ns);
    void advance_by(int64_t ns) { advance_to(now_ + ns); }

    // Guest RAM for DMA: [ram_base, ram_base + ram.size()).
    uint64_t ram_base() const { return ram_base_; }
    std::vector<uint8_t> &ram() { return ram_; }
    unsigned dma_calls() const { return dma_calls_; }

    // Records.
    const std::string &error() const { return error_; }
    const std::vector<SystemRequest> &system_requests() const { return requests_; }
    const std::vector<LogEntry> &logs() const { return logs_; }
    bool logged(uint32_t category, const std::string &substring) const;
    void clear_logs() { logs_.clear(); }
    // Which -d categories log_enabled reports (all by default, so every masked message is captured).
    void set_log_mask(uint32_t mask) { log_mask_ = mask; }
    // What machine_cpu_count answers (devices sized per CPU default to it).
    void set_cpu_count(unsigned n) { cpu_count_ = n; }

  private:
    friend struct FakeAccess;
    friend class FakeDevice;
    struct Module {
        std::string path;
        void *handle;
        const KeelModuleInfo *info;
    };
    std::vector<Module> modules_;
    std::map<std::string, const KeelDeviceTypeInfo *> types_;
    std::map<std::string, const KeelAccelTypeInfo *> accels_;
    std::map<std::string, unsigned> kicks_;
    uint32_t next_cpu_index_ = 0;
    std::map<std::string, FakeDevice *> devices_;
    std::vector<std::unique_ptr<FakeChardev>> chardevs_;
    std::vector<std::unique_ptr<FakeDrive>> drives_;
    std::vector<std::unique_ptr<KeelTimer>> timers_;
    std::vector<SystemRequest> requests_;
    std::vector<LogEntry> logs_;
    std::vector<uint8_t> ram_;
    uint64_t ram_base_;
    unsigned cpu_count_ = 1;
    int64_t now_ = 0;
    unsigned dma_calls_ = 0;
    uint32_t log_mask_ = ~0u;
    std::string error_;
};

} // namespace keel::test
