// SPDX-License-Identifier: MIT
// crc32c-dma: the crc32-dma engine of ../crc32 again, computing CRC-32C (Castagnoli, as iSCSI and ext4),
// written in C++17 with the header-only helpers of <keel/cxx/device.hpp>. Same registers, same
// properties, same guest program (built with the CRC-32C polynomial): the C ABI is all it needs.
#include <keel/cxx/device.hpp>

#include <algorithm>
#include <array>

namespace
{

constexpr uint32_t kId = 0x43524333;
enum : uint32_t { kStart = 1, kIrqEn = 2, kDone = 1, kError = 2 };

// The table, computed at compile time.
constexpr std::array<uint32_t, 256> make_table()
{
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
        t[i] = c;
    }
    return t;
}
constexpr auto kTable = make_table();

struct Crc32c {
    // Properties (stored by the kernel after construction, before realize).
    uint64_t seed = 0;
    uint64_t max_length = 0;
    // Registers.
    uint32_t ctrl = 0, status = 0, len = 0, result = 0;
    uint64_t src = 0, dst = 0;
    KeelObject *dev = nullptr;
    keel::cxx::IrqLine irq;

    static constexpr unsigned access_min = 4, access_max = 4;

    int realize(KeelObject *d, KeelError *err)
    {
        dev = d;
        if (keel::cxx::init_mmio(d, 0, "regs", 0x100, this, err)) return KEEL_ERR;
        return irq.init(d, nullptr, err);
    }

    void reset(KeelResetType)
    {
        ctrl = status = len = result = 0;
        src = dst = 0;
        irq.set(false);
    }

    void update_irq() const { irq.set((status & kDone) && (ctrl & kIrqEn)); }

    void run()
    {
        status = kDone;
        if (len > max_length) {
            status |= kError;
        } else {
            uint32_t crc = static_cast<uint32_t>(seed);
            std::array<uint8_t, 256> buf;
            for (uint64_t done = 0; done < len;) {
                uint64_t n = std::min<uint64_t>(len - done, buf.size());
                if (!keel::cxx::dma_read(dev, src + done, buf.data(), n)) {
                    status |= kError;
                    break;
                }
                for (uint64_t i = 0; i < n; ++i)
                    crc = kTable[(crc ^ buf[i]) & 0xff] ^ (crc >> 8);
                done += n;
            }
            crc = ~crc;
            const uint8_t out[4] = {uint8_t(crc), uint8_t(crc >> 8), uint8_t(crc >> 16), uint8_t(crc >> 24)};
            if (!(status & kError) && dst && !keel::cxx::dma_write(dev, dst, out, sizeof out))
                status |= kError;
            if (!(status & kError)) result = crc;
        }
        update_irq();
    }

    uint64_t read(uint64_t offset, unsigned)
    {
        switch (offset) {
        case 0x00:
            return kId;
        case 0x04:
            return ctrl & kIrqEn;
        case 0x08:
            return status;
        case 0x0c:
            return len;
        case 0x10:
            return uint32_t(src);
        case 0x14:
            return uint32_t(src >> 32);
        case 0x18:
            return uint32_t(dst);
        case 0x1c:
            return uint32_t(dst >> 32);
        case 0x20:
            return result;
        default:
            return 0;
        }
    }

    void write(uint64_t offset, unsigned, uint64_t value)
    {
        const auto v = uint32_t(value);
        switch (offset) {
        case 0x04:
            ctrl = v & kIrqEn;
            if (v & kStart)
                run();
            else
                update_irq();
            break;
        case 0x08:
            status &= ~v;
            update_irq();
            break;
        case 0x0c:
            len = v;
            break;
        case 0x10:
            src = (src & ~0xffffffffull) | v;
            break;
        case 0x14:
            src = (src & 0xffffffffull) | uint64_t(v) << 32;
            break;
        case 0x18:
            dst = (dst & ~0xffffffffull) | v;
            break;
        case 0x1c:
            dst = (dst & 0xffffffffull) | uint64_t(v) << 32;
            break;
        default:
            break;
        }
    }
};

const KeelPropertyInfo props[] = {
    KEEL_PROP_UINT_RANGE("seed", Crc32c, seed, "0xffffffff", 0, 0xffffffffu,
                         "initial CRC register (the result is its final complement)"),
    KEEL_PROP_FULL("max-length", KEEL_PROP_SIZE, KEEL_PROPF_RANGE, Crc32c, max_length, "64K",
                   "longest transfer; a longer LEN sets STATUS.ERROR", 1, 0xffffffffu, nullptr, nullptr),
};

constexpr KeelDeviceTypeInfo crc32c_type = keel::cxx::device_type<Crc32c>(
    "crc32c-dma", "CRC-32C engine: DMA from guest RAM, result by register and DMA, one interrupt", props);

int crc32c_init(KeelRegistrar *reg, KeelError *err)
{
    return reg->register_device(reg, &crc32c_type, err);
}

} // namespace

KEEL_MODULE("crc32c-dma", KEEL_MODULE_DEVICE, "1.0.0", "CRC-32C DMA engine in C++ (out-of-tree example)",
            "MIT", crc32c_init)
