// SPDX-License-Identifier: MIT
// virtio-blk on virtio-mmio against the fake kernel: a driver written here posts requests on a split queue.
#include <catch2/catch.hpp>

#include "fake_services.h"

#include <algorithm>
#include <array>
#include <cstring>

using namespace keel::test;

namespace
{

constexpr uint64_t kDeviceId = 0x008, kDeviceFeatures = 0x010, kDeviceFeaturesSel = 0x014,
                   kDriverFeatures = 0x020, kDriverFeaturesSel = 0x024, kQueueSel = 0x030,
                   kQueueNumMax = 0x034, kQueueNum = 0x038, kQueueReady = 0x044, kQueueNotify = 0x050,
                   kInterruptStatus = 0x060, kInterruptAck = 0x064, kStatus = 0x070, kQueueDescLow = 0x080,
                   kQueueDescHigh = 0x084, kQueueDriverLow = 0x090, kQueueDriverHigh = 0x094,
                   kQueueDeviceLow = 0x0a0, kQueueDeviceHigh = 0x0a4, kQueueReset = 0x0c0, kConfig = 0x100;
constexpr uint32_t kAck = 1, kDriver = 2, kDriverOk = 4, kFeaturesOk = 8, kNeedsReset = 64;

// Feature bits, request types and status values (virtio 1.2 §5.2).
constexpr unsigned kFSegMax = 2, kFRo = 5, kFBlkSize = 6, kFFlush = 9, kFDiscard = 13, kFWriteZeroes = 14,
                   kFVersion1 = 32;
constexpr uint32_t kTIn = 0, kTOut = 1, kTFlush = 4, kTGetId = 8, kTDiscard = 11, kTWriteZeroes = 13;
constexpr uint8_t kSOk = 0, kSIoErr = 1, kSUnsupp = 2;
constexpr uint16_t kNext = 1, kWrite = 2, kIndirect = 4;

constexpr uint64_t kRam = 0x80000000, kRamSize = 1 << 20;
constexpr uint64_t kDesc = kRam + 0x1000, kAvail = kRam + 0x2000, kUsed = kRam + 0x3000;
constexpr uint64_t kHdr = kRam + 0x8000, kStat = kRam + 0x8100, kBuf = kRam + 0x10000;
constexpr size_t kDriveSize = 64 * 1024; // 128 sectors

constexpr uint64_t bit(unsigned b)
{
    return uint64_t{1} << b;
}
constexpr uint64_t kAllFeatures =
    bit(kFVersion1) | bit(kFSegMax) | bit(kFBlkSize) | bit(kFFlush) | bit(kFDiscard) | bit(kFWriteZeroes);

// The device, its drive, and a driver that keeps its rings in the fake's RAM.
struct Blk {
    FakeKernel k{kRam, kRamSize};
    FakeDrive &drive;
    std::unique_ptr<FakeDevice> dev;
    uint32_t qnum = 0;
    uint16_t avail_idx = 0;

    explicit Blk(bool read_only = false, size_t size = kDriveSize)
        : drive(k.add_drive("disk0", size, read_only))
    {
        REQUIRE(k.load_module(MODULE_PATH));
        for (size_t i = 0; i < drive.data.size(); ++i)
            drive.data[i] = static_cast<uint8_t>(i * 7 + i / 512);
        dev = k.create("virtio-mmio", "virtio_mmio@10001000", {{"device-id", "2"}, {"drive", "disk0"}});
        INFO(k.error());
        REQUIRE(dev);
    }
    uint32_t rd(uint64_t off, unsigned width = 4) { return static_cast<uint32_t>(dev->read(off, width)); }
    void wr(uint64_t off, uint64_t v) { dev->write(off, 4, v); }

    uint8_t *ram(uint64_t addr) { return k.ram().data() + (addr - kRam); }
    template <class T> void put(uint64_t addr, T v) { std::memcpy(ram(addr), &v, sizeof v); }
    template <class T> T get(uint64_t addr)
    {
        T v;
        std::memcpy(&v, ram(addr), sizeof v);
        return v;
    }

    uint64_t device_features()
    {
        wr(kDeviceFeaturesSel, 0);
        uint64_t f = rd(kDeviceFeatures);
        wr(kDeviceFeaturesSel, 1);
        return f | uint64_t{rd(kDeviceFeatures)} << 32;
    }

    // The driver's initialization (virtio 1.2 §3.1.1) with @features and one queue of @num entries.
    void init(uint64_t features = kAllFeatures, uint32_t num = 16, uint64_t desc = kDesc,
              uint64_t avail = kAvail, uint64_t used = kUsed)
    {
        wr(kStatus, 0);
        wr(kStatus, kAck);
        wr(kStatus, kAck | kDriver);
        wr(kDriverFeaturesSel, 0);
        wr(kDriverFeatures, static_cast<uint32_t>(features));
        wr(kDriverFeaturesSel, 1);
        wr(kDriverFeatures, static_cast<uint32_t>(features >> 32));
        wr(kStatus, kAck | kDriver | kFeaturesOk);
        REQUIRE((rd(kStatus) & kFeaturesOk));
        setup_queue(num, desc, avail, used);
        wr(kStatus, kAck | kDriver | kFeaturesOk | kDriverOk);
    }
    // Program queue 0 and make it ready; the driver's rings start empty.
    void setup_queue(uint32_t num = 16, uint64_t desc = kDesc, uint64_t avail = kAvail, uint64_t used = kUsed)
    {
        wr(kQueueSel, 0);
        REQUIRE(rd(kQueueNumMax) == 256);
        wr(kQueueNum, num);
        wr(kQueueDescLow, static_cast<uint32_t>(desc));
        wr(kQueueDescHigh, static_cast<uint32_t>(desc >> 32));
        wr(kQueueDriverLow, static_cast<uint32_t>(avail));
        wr(kQueueDriverHigh, static_cast<uint32_t>(avail >> 32));
        wr(kQueueDeviceLow, static_cast<uint32_t>(used));
        wr(kQueueDeviceHigh, static_cast<uint32_t>(used >> 32));
        wr(kQueueReady, 1);
        qnum = num;
        avail_idx = 0;
        std::memset(ram(kAvail), 0, 0x2000);
    }

    void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0)
    {
        uint64_t d = kDesc + 16ull * i;
        put(d, addr);
        put(d + 8, len);
        put(d + 12, flags);
        put(d + 14, next);
    }
    void header(uint32_t type, uint64_t sector, uint64_t at = kHdr)
    {
        put(at, type);
        put(at + 4, uint32_t{0});
        put(at + 8, sector);
    }
    // Make @head available and notify queue 0.
    void post(uint16_t head)
    {
        put(kAvail + 4 + 2 * (avail_idx % qnum), head);
        ++avail_idx;
        put(kAvail + 2, avail_idx);
        wr(kQueueNotify, 0);
    }
    uint16_t used_idx() { return get<uint16_t>(kUsed + 2); }
    uint32_t used_id(uint16_t i) { return get<uint32_t>(kUsed + 4 + 8 * (i % qnum)); }
    uint32_t used_len(uint16_t i) { return get<uint32_t>(kUsed + 8 + 8 * (i % qnum)); }

    // The usual three-descriptor request: header, data (@len bytes at @buf, device-writable if @in), status.
    uint8_t request(uint32_t type, uint64_t sector, uint64_t buf, uint32_t len, bool in)
    {
        header(type, sector);
        put(kStat, uint8_t{0xee});
        desc(0, kHdr, 16, kNext, 1);
        if (len) {
            desc(1, buf, len, static_cast<uint16_t>(kNext | (in ? kWrite : 0)), 2);
            desc(2, kStat, 1, kWrite);
        } else {
            desc(1, kStat, 1, kWrite);
        }
        uint16_t before = used_idx();
        post(0);
        REQUIRE(used_idx() == static_cast<uint16_t>(before + 1));
        CHECK(used_id(before) == 0);
        return get<uint8_t>(kStat);
    }
    // A discard or write-zeroes request with the given ranges (sector, count, flags).
    uint8_t dwz(uint32_t type, const std::vector<std::array<uint64_t, 3>> &ranges)
    {
        for (size_t i = 0; i < ranges.size(); ++i) {
            put(kBuf + 16 * i, ranges[i][0]);
            put(kBuf + 16 * i + 8, static_cast<uint32_t>(ranges[i][1]));
            put(kBuf + 16 * i + 12, static_cast<uint32_t>(ranges[i][2]));
        }
        return request(type, 0, kBuf, static_cast<uint32_t>(16 * ranges.size()), false);
    }
    bool needs_reset() { return (rd(kStatus) & kNeedsReset) != 0; }
};

std::vector<uint8_t> pattern(size_t n, uint8_t seed)
{
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i)
        v[i] = static_cast<uint8_t>(seed + i * 13 + i / 256);
    return v;
}

} // namespace

TEST_CASE("virtio-blk realize needs a drive and an empty slot takes none", "[device][virtio-blk]")
{
    FakeKernel k{kRam, kRamSize};
    k.add_drive("d0", 4096);
    REQUIRE(k.load_module(MODULE_PATH));
    CHECK_FALSE(k.create("virtio-mmio", "v", {{"device-id", "2"}}));
    CHECK(k.error().find("drive") != std::string::npos);
    CHECK_FALSE(k.create("virtio-mmio", "v", {{"device-id", "0"}, {"drive", "d0"}}));
    CHECK(k.error().find("empty slot") != std::string::npos);
    CHECK_FALSE(k.create("virtio-mmio", "v", {{"device-id", "2"}, {"drive", "nope"}}));
    auto empty = k.create("virtio-mmio", "v", {{"device-id", "0"}});
    REQUIRE(empty);
    CHECK(empty->read(kDeviceId, 4) == 0);
}

TEST_CASE("virtio-blk identity, features and configuration space", "[device][virtio-blk]")
{
    Blk b;
    CHECK(b.rd(kDeviceId) == 2);
    CHECK(b.device_features() == kAllFeatures);
    // capacity (le64 at 0) in 512-byte sectors, read at every width
    CHECK(b.rd(kConfig + 0) == kDriveSize / 512);
    CHECK(b.rd(kConfig + 4) == 0);
    CHECK(b.rd(kConfig + 0, 1) == (kDriveSize / 512 & 0xff));
    CHECK(b.rd(kConfig + 12) == 254);  // seg_max
    CHECK(b.rd(kConfig + 20) == 512);  // blk_size
    CHECK(b.rd(kConfig + 36) > 0);     // max_discard_sectors
    CHECK(b.rd(kConfig + 40) >= 1);    // max_discard_seg
    CHECK(b.rd(kConfig + 44) == 1);    // discard_sector_alignment
    CHECK(b.rd(kConfig + 48) > 0);     // max_write_zeroes_sectors
    CHECK(b.rd(kConfig + 52) >= 1);    // max_write_zeroes_seg
    CHECK(b.rd(kConfig + 56, 1) == 1); // write_zeroes_may_unmap
    // Config writes change nothing.
    b.dev->write(kConfig, 4, 1);
    CHECK(b.rd(kConfig) == kDriveSize / 512);
}

TEST_CASE("virtio-blk capacity leaves out a partial last sector", "[device][virtio-blk]")
{
    Blk b(false, 1000);
    CHECK(b.rd(kConfig) == 1);
    b.init();
    CHECK(b.request(kTIn, 0, kBuf, 512, true) == kSOk);
    CHECK(b.request(kTIn, 1, kBuf, 512, true) == kSIoErr);
}

TEST_CASE("virtio-blk offers RO for a read-only drive", "[device][virtio-blk]")
{
    Blk b(true);
    CHECK(b.device_features() == (kAllFeatures | bit(kFRo)));
    b.init(kAllFeatures | bit(kFRo));
    CHECK(b.rd(kStatus) & kDriverOk);
}

TEST_CASE("virtio-blk reads sectors into guest memory and interrupts", "[device][virtio-blk]")
{
    Blk b;
    b.init();
    CHECK(b.request(kTIn, 3, kBuf, 2048, true) == kSOk);
    CHECK(std::memcmp(b.ram(kBuf), b.drive.data.data() + 3 * 512, 2048) == 0);
    CHECK(b.used_len(0) == 2049);
    CHECK(b.rd(kInterruptStatus) == 1);
    CHECK(b.dev->irq_level() == 1);
    b.wr(kInterruptAck, 1);
    CHECK(b.dev->irq_level() == 0);
    // The last sector is readable, the one after is not.
    CHECK(b.request(kTIn, 127, kBuf, 512, true) == kSOk);
    CHECK(std::memcmp(b.ram(kBuf), b.drive.data.data() + 127 * 512, 512) == 0);
}

TEST_CASE("virtio-blk reads larger than its bounce buffer, scattered", "[device][virtio-blk]")
{
    Blk b(false, 1 << 20);
    b.init();
    // 200 KiB in four segments of uneven sizes, past the 64 KiB the device moves at once.
    const uint32_t lens[] = {512, 70 * 1024, 100 * 1024 - 512, 30 * 1024};
    b.header(kTIn, 10);
    b.desc(0, kHdr, 16, kNext, 1);
    uint64_t at = kBuf;
    for (unsigned i = 0; i < 4; ++i) {
        b.desc(1 + i, at, lens[i], kNext | kWrite, static_cast<uint16_t>(2 + i));
        at += lens[i] + 4096; // gaps between the segments stay untouched
    }
    b.desc(5, kStat, 1, kWrite);
    std::memset(b.ram(kBuf), 0xaa, 0x40000);
    b.post(0);
    REQUIRE(b.used_idx() == 1);
    CHECK(b.get<uint8_t>(kStat) == kSOk);
    CHECK(b.used_len(0) == 200 * 1024 + 1);
    at = kBuf;
    uint64_t off = 10 * 512;
    for (unsigned i = 0; i < 4; ++i) {
        CHECK(std::memcmp(b.ram(at), b.drive.data.data() + off, lens[i]) == 0);
        CHECK(*b.ram(at + lens[i]) == 0xaa);
        off += lens[i];
        at += lens[i] + 4096;
    }
}

TEST_CASE("virtio-blk writes reach the drive and flush follows FLUSH negotiation", "[device][virtio-blk]")
{
    Blk b;
    b.init();
    auto p = pattern(1536, 5);
    std::memcpy(b.ram(kBuf), p.data(), p.size());
    CHECK(b.request(kTOut, 8, kBuf, 1536, false) == kSOk);
    CHECK(std::memcmp(b.drive.data.data() + 8 * 512, p.data(), p.size()) == 0);
    CHECK(b.used_len(0) == 1);
    CHECK(b.drive.flushes == 0); // write-back: the driver flushes
    CHECK(b.request(kTFlush, 0, 0, 0, false) == kSOk);
    CHECK(b.drive.flushes == 1);

    // Without VIRTIO_BLK_F_FLUSH the device is write-through.
    b.init(kAllFeatures & ~bit(kFFlush));
    CHECK(b.request(kTOut, 0, kBuf, 512, false) == kSOk);
    CHECK(b.drive.flushes == 2);
}

TEST_CASE("virtio-blk takes header, data and status split over descriptors any way", "[device][virtio-blk]")
{
    Blk b;
    b.init();
    // Header in two pieces (6 + 10 bytes) with the first 512 data bytes in the second; then 512 more.
    auto p = pattern(1024, 9);
    b.header(kTOut, 20, kBuf);
    std::memcpy(b.ram(kBuf + 16), p.data(), 1024);
    b.desc(0, kBuf, 6, kNext, 5);
    b.desc(5, kBuf + 6, 10 + 512, kNext, 3);
    b.desc(3, kBuf + 16 + 512, 512, kNext, 7);
    b.desc(7, kStat, 1, kWrite);
    b.post(0);
    REQUIRE(b.used_idx() == 1);
    CHECK(b.get<uint8_t>(kStat) == kSOk);
    CHECK(std::memcmp(b.drive.data.data() + 20 * 512, p.data(), 1024) == 0);

    // A read whose status byte shares the descriptor with the data.
    b.header(kTIn, 20);
    b.desc(0, kHdr, 16, kNext, 1);
    b.desc(1, kBuf + 0x8000, 513, kWrite);
    b.post(0);
    REQUIRE(b.used_idx() == 2);
    CHECK(std::memcmp(b.ram(kBuf + 0x8000), p.data(), 512) == 0);
    CHECK(b.get<uint8_t>(kBuf + 0x8000 + 512) == kSOk);
    CHECK(b.used_len(1) == 513);
}

TEST_CASE("virtio-blk processes every request of a notify and wraps around the rings", "[device][virtio-blk]")
{
    Blk b;
    b.init(kAllFeatures, 4);
    for (unsigned round = 0; round < 50; ++round) {
        // Two requests per notify, on descriptors 0-2 and 3-4 (a flush).
        b.header(kTIn, round % 100);
        b.desc(0, kHdr, 16, kNext, 1);
        b.desc(1, kBuf, 512, kNext | kWrite, 2);
        b.desc(2, kStat, 1, kWrite);
        b.header(kTFlush, 0, kHdr + 16);
        b.desc(3, kHdr + 16, 16, kNext, 2);
        b.put(kAvail + 4 + 2 * (b.avail_idx % 4), uint16_t{0});
        b.put(kAvail + 4 + 2 * ((b.avail_idx + 1) % 4), uint16_t{3});
        b.avail_idx = static_cast<uint16_t>(b.avail_idx + 2);
        b.put(kAvail + 2, b.avail_idx);
        b.wr(kQueueNotify, 0);
        REQUIRE(b.used_idx() == static_cast<uint16_t>(2 * (round + 1)));
        CHECK(b.used_id(static_cast<uint16_t>(2 * round)) == 0);
        CHECK(b.used_len(static_cast<uint16_t>(2 * round)) == 513);
        CHECK(b.used_id(static_cast<uint16_t>(2 * round + 1)) == 3);
        CHECK(std::memcmp(b.ram(kBuf), b.drive.data.data() + (round % 100) * 512, 512) == 0);
    }
    CHECK(b.drive.flushes == 50);
}

TEST_CASE("virtio-blk GET_ID returns the drive id, zero-padded to 20 bytes", "[device][virtio-blk]")
{
    Blk b;
    b.init();
    std::memset(b.ram(kBuf), 0xff, 32);
    CHECK(b.request(kTGetId, 0, kBuf, 20, true) == kSOk);
    CHECK(std::string(reinterpret_cast<char *>(b.ram(kBuf))) == "disk0");
    for (unsigned i = 5; i < 20; ++i)
        CHECK(*b.ram(kBuf + i) == 0);
    CHECK(*b.ram(kBuf + 20) == 0xff);
    CHECK(b.used_len(0) == 21);
}

TEST_CASE("virtio-blk discard and write zeroes", "[device][virtio-blk]")
{
    Blk b;
    b.init();
    CHECK(b.dwz(kTDiscard, {{4, 2, 0}, {10, 1, 0}}) == kSOk);
    REQUIRE(b.drive.discarded.size() == 2);
    CHECK(b.drive.discarded[0] == std::pair<uint64_t, uint64_t>{4 * 512, 1024});
    CHECK(b.drive.discarded[1] == std::pair<uint64_t, uint64_t>{10 * 512, 512});

    CHECK(b.dwz(kTWriteZeroes, {{30, 3, 0}}) == kSOk);
    CHECK(b.drive.last_write_zeroes_flags == 0);
    CHECK(std::all_of(b.drive.data.begin() + 30 * 512, b.drive.data.begin() + 33 * 512,
                      [](uint8_t c) { return !c; }));
    CHECK(b.drive.data[33 * 512] != 0);
    CHECK(b.dwz(kTWriteZeroes, {{40, 1, 1}}) == kSOk); // unmap allowed
    CHECK(b.drive.last_write_zeroes_flags == KEEL_BLOCK_MAY_UNMAP);
    CHECK(b.drive.write_zeroes == 2);

    // Refused: unmap on discard, reserved flags, ranges past the end (checked before anything is done).
    CHECK(b.dwz(kTDiscard, {{4, 1, 1}}) == kSUnsupp);
    CHECK(b.dwz(kTWriteZeroes, {{4, 1, 2}}) == kSUnsupp);
    auto before = b.drive.data;
    CHECK(b.dwz(kTWriteZeroes, {{50, 1, 0}, {127, 2, 0}}) == kSIoErr);
    CHECK(b.dwz(kTDiscard, {{~uint64_t{0} / 256, 4, 0}}) == kSIoErr);
    CHECK(b.drive.data == before);
    CHECK(b.drive.discards == 2);
    CHECK(b.drive.write_zeroes == 2);
    // A payload that is not whole 16-byte ranges.
    CHECK(b.request(kTDiscard, 0, kBuf, 12, false) == kSIoErr);
    CHECK(b.request(kTDiscard, 0, kBuf, 0, false) == kSIoErr);

    // Not negotiated: unsupported.
    b.init(kAllFeatures & ~bit(kFDiscard) & ~bit(kFWriteZeroes));
    CHECK(b.dwz(kTDiscard, {{4, 1, 0}}) == kSUnsupp);
    CHECK(b.dwz(kTWriteZeroes, {{4, 1, 0}}) == kSUnsupp);
    CHECK(b.drive.data == before);
}

TEST_CASE("virtio-blk on a read-only drive refuses every write", "[device][virtio-blk]")
{
    Blk b(true);
    b.init(kAllFeatures | bit(kFRo));
    auto before = b.drive.data;
    std::memset(b.ram(kBuf), 0x55, 512);
    CHECK(b.request(kTOut, 0, kBuf, 512, false) == kSIoErr);
    CHECK(b.dwz(kTDiscard, {{0, 1, 0}}) == kSIoErr);
    CHECK(b.dwz(kTWriteZeroes, {{0, 1, 0}}) == kSIoErr);
    CHECK(b.drive.data == before);
    CHECK(b.drive.writes + b.drive.discards + b.drive.write_zeroes == 0);
    CHECK(b.request(kTIn, 0, kBuf, 512, true) == kSOk);
    CHECK(std::memcmp(b.ram(kBuf), before.data(), 512) == 0);
}

TEST_CASE("virtio-blk honours VIRTQ_AVAIL_F_NO_INTERRUPT", "[device][virtio-blk]")
{
    Blk b;
    b.init();
    b.put(kAvail, uint16_t{1});
    CHECK(b.request(kTIn, 0, kBuf, 512, true) == kSOk);
    CHECK(b.rd(kInterruptStatus) == 0);
    CHECK(b.dev->irq_out().raises == 0);
    b.put(kAvail, uint16_t{0});
    CHECK(b.request(kTIn, 0, kBuf, 512, true) == kSOk);
    CHECK(b.rd(kInterruptStatus) == 1);
}

TEST_CASE("virtio-blk bad requests complete with IOERR or UNSUPP and touch nothing", "[device][virtio-blk]")
{
    Blk b;
    b.init();
    auto before = b.drive.data;
    auto ram_before = b.k.ram();
    SECTION("sectors past the capacity")
    {
        CHECK(b.request(kTIn, 128, kBuf, 512, true) == kSIoErr);
        CHECK(b.request(kTIn, 127, kBuf, 1024, true) == kSIoErr);
        CHECK(b.request(kTOut, 127, kBuf, 1024, false) == kSIoErr);
        // sector * 512 wraps around 64 bits
        CHECK(b.request(kTOut, uint64_t{1} << 55, kBuf, 512, false) == kSIoErr);
        CHECK(b.request(kTIn, ~uint64_t{0}, kBuf, 512, true) == kSIoErr);
        CHECK(b.drive.reads + b.drive.writes == 0);
    }
    SECTION("data that is not whole sectors")
    {
        CHECK(b.request(kTIn, 0, kBuf, 100, true) == kSIoErr);
        CHECK(b.request(kTOut, 0, kBuf, 513, false) == kSIoErr);
    }
    SECTION("a header shorter than 16 bytes")
    {
        b.header(kTOut, 0);
        b.desc(0, kHdr, 8, kNext, 1);
        b.desc(1, kStat, 1, kWrite);
        b.post(0);
        REQUIRE(b.used_idx() == 1);
        CHECK(b.get<uint8_t>(kStat) == kSIoErr);
        CHECK(b.k.logged(KEEL_LOG_GUEST_ERROR, "shorter than 16"));
    }
    SECTION("an unknown request type")
    {
        CHECK(b.request(10, 0, kBuf, 512, true) == kSUnsupp);
        CHECK(b.request(0x12345678, 0, 0, 0, false) == kSUnsupp);
    }
    SECTION("data buffers outside guest RAM")
    {
        CHECK(b.request(kTOut, 0, kRam + kRamSize - 256, 512, false) == kSIoErr);
        CHECK(b.request(kTOut, 0, 0x1000, 512, false) == kSIoErr);
        CHECK(b.request(kTIn, 0, kRam + kRamSize - 256, 512, true) == kSIoErr);
        CHECK(b.request(kTIn, 0, 0x1000, 512, true) == kSIoErr);
        CHECK(b.drive.writes == 0);
    }
    SECTION("buffer address + length that overflows")
    {
        CHECK(b.request(kTOut, 0, ~uint64_t{0} - 255, 512, false) == kSIoErr);
        CHECK(b.request(kTIn, 0, ~uint64_t{0} - 255, 512, true) == kSIoErr);
        CHECK(b.request(kTOut, 0, kBuf, 0xfffffe00u, false) == kSIoErr); // 4 GiB: past the drive
        CHECK(b.k.logged(KEEL_LOG_GUEST_ERROR, "wraps"));
        CHECK(b.drive.reads + b.drive.writes == 0);
    }
    SECTION("a header outside guest RAM")
    {
        b.desc(0, 0x1000, 16, kNext, 1);
        b.desc(1, kStat, 1, kWrite);
        b.post(0);
        REQUIRE(b.used_idx() == 1);
        CHECK(b.get<uint8_t>(kStat) == kSIoErr);
    }
    SECTION("a status byte outside guest RAM: completed, nothing written")
    {
        b.header(kTIn, 0);
        b.desc(0, kHdr, 16, kNext, 1);
        b.desc(1, kRam + kRamSize, 1, kWrite);
        b.post(0);
        REQUIRE(b.used_idx() == 1);
        CHECK(b.used_len(0) == 0);
        CHECK_FALSE(b.needs_reset());
    }
    SECTION("host I/O errors")
    {
        b.drive.fail_io = true;
        CHECK(b.request(kTIn, 0, kBuf, 512, true) == kSIoErr);
        CHECK(b.request(kTOut, 0, kBuf, 512, false) == kSIoErr);
        CHECK(b.request(kTFlush, 0, 0, 0, false) == kSIoErr);
        CHECK(b.dwz(kTDiscard, {{0, 1, 0}}) == kSIoErr);
    }
    CHECK(b.drive.data == before);
    CHECK_FALSE(b.needs_reset());
    // Everything outside the driver's own rings, header, status and data buffers is untouched.
    for (uint64_t a : {kRam, kRam + 0x5000, kRam + 0x9000, kRam + 0x20000, kRam + kRamSize - 0x1000})
        CHECK(std::memcmp(b.ram(a), ram_before.data() + (a - kRam), 0x1000) == 0);
}

TEST_CASE("virtio-blk broken rings set DEVICE_NEEDS_RESET and never hang", "[device][virtio-blk]")
{
    Blk b;
    b.init();
    auto before = b.drive.data;
    std::string why;
    SECTION("a head index beyond the queue size")
    {
        b.post(16);
        why = "beyond the queue size";
    }
    SECTION("a next index beyond the queue size")
    {
        b.header(kTIn, 0);
        b.desc(0, kHdr, 16, kNext, 200);
        b.post(0);
        why = "beyond the queue size";
    }
    SECTION("a descriptor loop")
    {
        b.header(kTOut, 0);
        b.desc(0, kHdr, 16, kNext, 1);
        b.desc(1, kBuf, 512, kNext, 2);
        b.desc(2, kBuf, 512, kNext, 1);
        b.post(0);
        why = "loop";
    }
    SECTION("a descriptor pointing at itself")
    {
        b.desc(0, kHdr, 16, kNext, 0);
        b.post(0);
        why = "loop";
    }
    SECTION("no device-writable status byte")
    {
        b.header(kTFlush, 0);
        b.desc(0, kHdr, 16, 0);
        b.post(0);
        why = "status byte";
    }
    SECTION("a readable descriptor after a writable one")
    {
        b.header(kTIn, 0);
        b.desc(0, kHdr, 16, kNext, 1);
        b.desc(1, kStat, 1, kNext | kWrite, 2);
        b.desc(2, kBuf, 512, 0);
        b.post(0);
        why = "after a device-writable";
    }
    SECTION("an indirect descriptor, not negotiated")
    {
        b.desc(0, kBuf, 16, kIndirect);
        b.post(0);
        why = "indirect";
    }
    SECTION("the available index jumps past the queue size")
    {
        b.avail_idx = 16;
        b.post(0); // 17 entries at once in a queue of 16
        why = "available index";
    }
    SECTION("a descriptor table outside guest RAM")
    {
        b.init(kAllFeatures, 16, 0x1000);
        b.post(0);
        why = "descriptor table";
    }
    SECTION("an available ring outside guest RAM")
    {
        b.init(kAllFeatures, 16, kDesc, kRam + kRamSize);
        b.wr(kQueueNotify, 0);
        why = "available ring";
    }
    SECTION("a used ring outside guest RAM")
    {
        b.init(kAllFeatures, 16, kDesc, kAvail, ~uint64_t{0} - 8);
        b.header(kTFlush, 0);
        b.desc(0, kHdr, 16, kNext, 1);
        b.desc(1, kStat, 1, kWrite);
        b.post(0);
        why = "used ring";
    }
    INFO(why);
    CHECK(b.needs_reset());
    CHECK(b.k.logged(KEEL_LOG_GUEST_ERROR, why));
    CHECK(b.used_idx() == 0);
    CHECK((b.rd(kInterruptStatus) & 2)); // configuration change notification
    CHECK(b.drive.data == before);
    CHECK(b.drive.writes == 0);

    // Nothing more is processed until the driver resets the device; after that it works again.
    b.header(kTIn, 1);
    b.desc(0, kHdr, 16, kNext, 1);
    b.desc(1, kBuf, 512, kNext | kWrite, 2);
    b.desc(2, kStat, 1, kWrite);
    b.put(kAvail + 2, uint16_t{0});
    b.avail_idx = 0;
    b.post(0);
    CHECK(b.used_idx() == 0);
    b.init();
    CHECK_FALSE(b.needs_reset());
    CHECK(b.request(kTIn, 1, kBuf, 512, true) == kSOk);
    CHECK(std::memcmp(b.ram(kBuf), before.data() + 512, 512) == 0);
}

TEST_CASE("virtio-blk ignores notifies before DRIVER_OK and restarts after a queue reset",
          "[device][virtio-blk]")
{
    Blk b;
    b.init();
    b.wr(kStatus, 0);
    b.wr(kStatus, kAck | kDriver);
    b.qnum = 16;
    b.header(kTIn, 0);
    b.desc(0, kHdr, 16, kNext, 1);
    b.desc(1, kStat, 1, kWrite);
    b.wr(kQueueSel, 0);
    b.wr(kQueueNum, 16);
    b.wr(kQueueReady, 1);
    b.post(0);
    CHECK(b.used_idx() == 0);
    CHECK(b.k.logged(KEEL_LOG_GUEST_ERROR, "before DRIVER_OK"));

    b.init();
    CHECK(b.request(kTFlush, 0, 0, 0, false) == kSOk);
    CHECK(b.request(kTFlush, 0, 0, 0, false) == kSOk);
    // QueueReset: the device forgets its ring positions, the driver starts again from index 0.
    b.wr(kQueueReset, 1);
    CHECK(b.rd(kQueueReady) == 0);
    b.setup_queue();
    CHECK(b.request(kTFlush, 0, 0, 0, false) == kSOk);
    CHECK(b.used_len(0) == 1);
}
