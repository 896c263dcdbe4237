// SPDX-License-Identifier: MIT
// The virtio-mmio module against the fake kernel: an empty slot answers like QEMU's; other IDs are refused.
#include <catch2/catch.hpp>

#include "fake_services.h"
#include "virtio_mmio.h"

using namespace keel::test;

namespace
{

constexpr uint64_t kMagic = 0x000, kVersion = 0x004, kDeviceId = 0x008, kVendorId = 0x00c,
                   kDeviceFeatures = 0x010, kDeviceFeaturesSel = 0x014, kDriverFeatures = 0x020,
                   kQueueSel = 0x030, kQueueNumMax = 0x034, kQueueNum = 0x038, kQueueReady = 0x044,
                   kInterruptStatus = 0x060, kInterruptAck = 0x064, kStatus = 0x070, kQueueDescLow = 0x080,
                   kConfigGeneration = 0x0fc, kConfig = 0x100;

struct Slot {
    FakeKernel k;
    std::unique_ptr<FakeDevice> dev;

    explicit Slot(const PropValues &props = {}, const char *module = MODULE_PATH)
    {
        REQUIRE(k.load_module(module));
        dev = k.create("virtio-mmio", "virtio_mmio@10001000", props);
        INFO(k.error());
        REQUIRE(dev);
    }
    uint64_t rd(uint64_t off, unsigned width = 4) { return dev->read(off, width); }
    void wr(uint64_t off, uint64_t v, unsigned width = 4) { dev->write(off, width, v); }
};

} // namespace

TEST_CASE("virtio-mmio registers its schema, a 0x200 window and one interrupt", "[device][virtio-mmio]")
{
    Slot s;
    const KeelDeviceTypeInfo *t = s.k.find_type("virtio-mmio");
    REQUIRE(t);
    REQUIRE(t->n_properties == 2);
    CHECK(std::string(t->properties[0].name) == "device-id");
    CHECK(std::string(t->properties[0].default_value) == "0");
    CHECK(std::string(t->properties[1].name) == "drive");
    CHECK(s.dev->window_count() == 1);
    CHECK(s.dev->window_size() == 0x200);
    CHECK(s.dev->irq_out_count() == 1);
    CHECK(s.dev->irq_level() == 0);
}

TEST_CASE("virtio-mmio empty slot identifies itself like QEMU's and reads 0 elsewhere",
          "[device][virtio-mmio]")
{
    Slot s;
    CHECK(s.rd(kMagic) == 0x74726976);
    CHECK(s.rd(kVersion) == 2);
    CHECK(s.rd(kDeviceId) == 0);
    CHECK(s.rd(kVendorId) == 0x554d4551);
    // Every other word of the window, registers and config space alike.
    for (uint64_t off = 0x10; off < 0x200; off += 4) {
        INFO("offset " << off);
        CHECK(s.rd(off) == 0);
    }
    // A 64-bit read is two register reads: magic then version.
    CHECK(s.rd(kMagic, 8) == 0x0000000274726976ull);
    // Narrow reads see the low bytes of the register, as QEMU's empty transport answers.
    CHECK(s.rd(kMagic, 1) == 0x76);
    CHECK(s.rd(kMagic, 2) == 0x6976);
    CHECK(s.k.logs().empty()); // an empty slot reads silently
}

TEST_CASE("virtio-mmio empty slot ignores writes and logs those to read-only registers",
          "[device][virtio-mmio]")
{
    Slot s;
    // A driver's probe sequence: status bits, features, a queue. None of it sticks.
    s.wr(kStatus, 1);
    s.wr(kStatus, 3);
    s.wr(kDeviceFeaturesSel, 1);
    s.wr(kDriverFeatures, 0xffffffff);
    s.wr(kQueueSel, 0);
    s.wr(kQueueNum, 16);
    s.wr(kQueueDescLow, 0x80001000);
    s.wr(kQueueReady, 1);
    s.wr(kInterruptAck, 3);
    s.wr(kConfig, 0xaa, 1);
    CHECK(s.k.logs().empty());
    CHECK(s.rd(kStatus) == 0);
    CHECK(s.rd(kDeviceFeatures) == 0);
    CHECK(s.rd(kQueueNumMax) == 0);
    CHECK(s.rd(kQueueReady) == 0);
    CHECK(s.rd(kConfig, 1) == 0);
    CHECK(s.dev->irq_level() == 0);

    for (uint64_t off : {kMagic, kVersion, kDeviceId, kVendorId, kDeviceFeatures, kQueueNumMax,
                         kInterruptStatus, kConfigGeneration}) {
        INFO("offset " << off);
        s.k.clear_logs();
        s.wr(off, 0x5a5a5a5a);
        CHECK(s.k.logged(KEEL_LOG_GUEST_ERROR, "read-only"));
    }
    CHECK(s.rd(kMagic) == 0x74726976);
    CHECK(s.rd(kVersion) == 2);
    CHECK(s.rd(kDeviceId) == 0);
    CHECK(s.rd(kVendorId) == 0x554d4551);
}

TEST_CASE("virtio-mmio empty slot is unchanged by reset", "[device][virtio-mmio]")
{
    Slot s;
    s.wr(kStatus, 0xf);
    s.dev->reset(KEEL_RESET_COLD);
    CHECK(s.rd(kMagic) == 0x74726976);
    CHECK(s.rd(kStatus) == 0);
    CHECK(s.dev->irq_level() == 0);
}

TEST_CASE("virtio-mmio refuses device IDs without a backend", "[device][virtio-mmio]")
{
    FakeKernel k;
    REQUIRE(k.load_module(MODULE_PATH));
    CHECK_FALSE(k.create("virtio-mmio", "v", {{"device-id", "3"}})); // a console: no backend yet
    CHECK(k.error().find("no virtio device backend") != std::string::npos);
    CHECK_FALSE(k.create("virtio-mmio", "v", {{"device-id", "2"}})); // a block device needs its drive
    CHECK(k.error().find("needs a drive") != std::string::npos);
    CHECK_FALSE(k.create("virtio-mmio", "v", {{"device-id", "4294967296"}})); // beyond 32 bits
    CHECK(k.create("virtio-mmio", "v", {{"device-id", "0"}}));
}

// The transport with a device behind it, through the test-only backend (device ID 0x7e57: VERSION_1 and
// feature bit 0, 2 queues of up to 64, 8 bytes of config whose bytes 0-2 count notifies and resets).
namespace
{

constexpr uint64_t kDriverFeaturesSel = 0x024, kQueueNotify = 0x050, kQueueDescHigh = 0x084,
                   kQueueDriverLow = 0x090, kQueueDeviceHigh = 0x0a4, kShmLenLow = 0x0b0, kQueueReset = 0x0c0;
constexpr uint32_t kAck = 1, kDriver = 2, kDriverOk = 4, kFeaturesOk = 8;

struct Dev : Slot {
    Dev() : Slot(PropValues{{"device-id", "0x7e57"}}, TEST_BACKEND_PATH) {}
    // The driver's initialization (virtio 1.2 §3.1.1) up to FEATURES_OK with @features.
    uint32_t negotiate(uint64_t features)
    {
        wr(kStatus, 0);
        wr(kStatus, kAck);
        wr(kStatus, kAck | kDriver);
        wr(kDriverFeaturesSel, 0);
        wr(kDriverFeatures, static_cast<uint32_t>(features));
        wr(kDriverFeaturesSel, 1);
        wr(kDriverFeatures, static_cast<uint32_t>(features >> 32));
        wr(kStatus, kAck | kDriver | kFeaturesOk);
        return static_cast<uint32_t>(rd(kStatus));
    }
    // Program queue @q with @num entries and mark it ready.
    void setup_queue(uint32_t q, uint32_t num)
    {
        wr(kQueueSel, q);
        wr(kQueueNum, num);
        wr(kQueueDescLow, 0x80001000 + q * 0x1000);
        wr(kQueueReady, 1);
    }
};

} // namespace

TEST_CASE("virtio-mmio with a backend reports its identity and features", "[device][virtio-mmio]")
{
    Dev d;
    CHECK(d.rd(kMagic) == 0x74726976);
    CHECK(d.rd(kVersion) == 2);
    CHECK(d.rd(kDeviceId) == 0x7e57);
    CHECK(d.rd(kVendorId) == 0x554d4551);
    d.wr(kDeviceFeaturesSel, 0);
    CHECK(d.rd(kDeviceFeatures) == 1);
    d.wr(kDeviceFeaturesSel, 1);
    CHECK(d.rd(kDeviceFeatures) == 1); // VERSION_1 is bit 32
    d.wr(kDeviceFeaturesSel, 2);
    CHECK(d.rd(kDeviceFeatures) == 0);
    CHECK(d.rd(kShmLenLow) == 0xffffffff); // no shared memory region exists
    CHECK(d.rd(kConfigGeneration) == 0);
    // Control registers are 32-bit only; other widths are guest errors.
    CHECK(d.rd(kMagic, 1) == 0);
    CHECK(d.k.logged(KEEL_LOG_GUEST_ERROR, "not 32 bits"));
}

TEST_CASE("virtio-mmio feature negotiation accepts only offered features with VERSION_1",
          "[device][virtio-mmio]")
{
    Dev d;
    CHECK(d.negotiate((1ull << 32) | 1) == (kAck | kDriver | kFeaturesOk));
    CHECK(d.negotiate(1ull << 32) == (kAck | kDriver | kFeaturesOk));
    CHECK(d.negotiate((1ull << 32) | 2) == (kAck | kDriver)); // bit 1 was not offered
    CHECK(d.negotiate(1) == (kAck | kDriver));                // no VERSION_1
    // After FEATURES_OK the driver features are frozen.
    CHECK(d.negotiate(1ull << 32) == (kAck | kDriver | kFeaturesOk));
    d.wr(kDriverFeaturesSel, 0);
    d.wr(kDriverFeatures, 2);
    CHECK(d.k.logged(KEEL_LOG_GUEST_ERROR, "after FEATURES_OK"));
}

TEST_CASE("virtio-mmio queue registers, notify and the interrupt", "[device][virtio-mmio]")
{
    Dev d;
    REQUIRE(d.negotiate((1ull << 32) | 1) == (kAck | kDriver | kFeaturesOk));
    d.wr(kQueueSel, 0);
    CHECK(d.rd(kQueueNumMax) == 64);
    CHECK(d.rd(kQueueReady) == 0);
    d.wr(kQueueSel, 2); // does not exist
    CHECK(d.rd(kQueueNumMax) == 0);
    d.wr(kQueueNum, 16);
    CHECK(d.k.logged(KEEL_LOG_GUEST_ERROR, "nonexistent queue"));

    d.wr(kQueueSel, 1);
    d.k.clear_logs();
    d.wr(kQueueNum, 128); // above QueueNumMax
    CHECK(d.k.logged(KEEL_LOG_GUEST_ERROR, "invalid QueueNum"));
    d.setup_queue(1, 32);
    CHECK(d.rd(kQueueReady) == 1);
    d.wr(kStatus, kAck | kDriver | kFeaturesOk | kDriverOk);

    // Notifying a queue that is not ready is refused; a ready one reaches the backend.
    d.k.clear_logs();
    d.wr(kQueueNotify, 0);
    CHECK(d.k.logged(KEEL_LOG_GUEST_ERROR, "not ready"));
    CHECK(d.rd(kConfig + 0, 1) == 0);
    CHECK(d.dev->irq_level() == 0);
    d.wr(kQueueNotify, 1);
    CHECK(d.rd(kConfig + 1, 1) == 1);
    CHECK(d.rd(kInterruptStatus) == 1); // used buffer notification from the backend
    CHECK(d.dev->irq_level() == 1);
    d.wr(kInterruptAck, 1);
    CHECK(d.rd(kInterruptStatus) == 0);
    CHECK(d.dev->irq_level() == 0);

    SECTION("a config change raises bit 1 and bumps ConfigGeneration")
    {
        d.wr(kConfig + 4, 0xbeef, 2);
        CHECK(d.rd(kConfig + 4, 2) == 0xbeef);
        CHECK(d.rd(kConfig + 4, 4) == 0xbeef);
        CHECK(d.rd(kInterruptStatus) == 2);
        CHECK(d.rd(kConfigGeneration) == 1);
        CHECK(d.dev->irq_level() == 1);
        d.wr(kInterruptAck, 2);
        CHECK(d.dev->irq_level() == 0);
        d.k.clear_logs();
        CHECK(d.rd(kConfig + 8, 1) == 0); // beyond the backend's 8 bytes
        CHECK(d.k.logged(KEEL_LOG_GUEST_ERROR, "configuration space"));
    }
    SECTION("Status 0 resets the device: queues, status, interrupt, backend")
    {
        d.wr(kQueueNotify, 1);
        REQUIRE(d.dev->irq_level() == 1);
        uint64_t resets = d.rd(kConfig + 2, 1);
        d.wr(kStatus, 0);
        CHECK(d.rd(kStatus) == 0);
        CHECK(d.rd(kInterruptStatus) == 0);
        CHECK(d.dev->irq_level() == 0);
        CHECK(d.rd(kConfig + 2, 1) == resets + 1);
        d.wr(kQueueSel, 1);
        CHECK(d.rd(kQueueReady) == 0);
        CHECK(d.rd(kQueueSel) == 0); // QueueSel is write-only: reads 0 with a guest error
    }
    SECTION("QueueReset resets only the selected queue")
    {
        d.setup_queue(0, 8);
        d.wr(kQueueSel, 1);
        d.wr(kQueueReset, 1);
        CHECK(d.rd(kQueueReady) == 0);
        d.wr(kQueueSel, 0);
        CHECK(d.rd(kQueueReady) == 1);
    }
    SECTION("64-bit queue addresses take both halves")
    {
        d.wr(kQueueSel, 0);
        d.wr(kQueueDescLow, 0x1000);
        d.wr(kQueueDescHigh, 0x1);
        d.wr(kQueueDriverLow, 0x2000);
        d.wr(kQueueDeviceHigh, 0x3);
        d.wr(kQueueDescLow, 0x4000); // replaces only the low half
        // The address registers are write-only: check what a backend will see.
        const VirtioMmio *s = d.dev->state_as<VirtioMmio>();
        REQUIRE(s->queues);
        CHECK(s->queues[0].desc == 0x1'0000'4000ull);
        CHECK(s->queues[0].driver == 0x2000);
        CHECK(s->queues[0].device == 0x3'0000'0000ull);
        CHECK(s->queues[1].num == 32);
        CHECK(s->queues[1].desc == 0x80002000);
    }
}
