/* SPDX-License-Identifier: MIT */
/*
 * keel/cxx/device.hpp: header-only C++17 helpers for writing a device module in C++ over the C ABI.
 * Nothing here is part of the ABI: it compiles into the module, and the kernel sees the same C
 * descriptors a C module gives (docs/writing-a-device.md, "The same device in C++").
 *
 *   struct Crc {                                    // the instance state: standard layout,
 *       uint64_t seed = 0xffffffff;                 // trivially destructible, its properties as
 *       keel::cxx::IrqLine irq;                     // plain fields
 *       int realize(KeelObject *dev, KeelError *err) {
 *           if (keel::cxx::init_mmio(dev, 0, "regs", 0x100, this, err)) return KEEL_ERR;
 *           return irq.init(dev, nullptr, err);
 *       }
 *       void reset(KeelResetType) { ... }           // optional, as unrealize(KeelObject *)
 *       static constexpr unsigned access_min = 4, access_max = 4;   // MMIO widths (optional: 1..8)
 *       uint64_t read(uint64_t offset, unsigned width) { ... }
 *       void write(uint64_t offset, unsigned width, uint64_t value) { ... }
 *   };
 *   static const KeelPropertyInfo props[] = { KEEL_PROP_UINT("seed", Crc, seed, "0xffffffff", "...") };
 *   static constexpr KeelDeviceTypeInfo crc_type = keel::cxx::device_type<Crc>("crc", "a CRC engine", props);
 *
 * The state is constructed (default member initialisers run) before the properties are stored into it,
 * then realize() runs. An exception that escapes a hook becomes an error: realize fails with its
 * what(), an MMIO access becomes a bus error. Exceptions never cross into the kernel.
 * Since: ABI 1.0 (uses nothing newer).
 */
#ifndef KEEL_CXX_DEVICE_HPP
#define KEEL_CXX_DEVICE_HPP

#ifndef __cplusplus
#error "keel/cxx/device.hpp is C++ (C++17 or later); C modules use <keel/module.h> directly"
#endif

#include <keel/module.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>
#if defined(__cpp_exceptions)
#include <exception>
#endif

namespace keel::cxx
{

/** One output interrupt line of a device (a KeelIrqLine handle). */
class IrqLine
{
  public:
    /** Declare the line as output group @name (nullptr: the default group, wired by the manifest's `irq:`).
     */
    int init(KeelObject *dev, const char *name, KeelError *err)
    {
        return keel_services->irq_init_outputs(dev, name, 1, &line_, err);
    }
    /** Drive the line to @level. */
    void set(bool level) const
    {
        if (line_) keel_services->irq_set(line_, level ? 1 : 0);
    }

  private:
    KeelIrqLine *line_ = nullptr;
};

/** DMA from guest physical memory; false on a bus error. */
inline bool dma_read(KeelObject *dev, uint64_t addr, void *buf, uint64_t len)
{
    return keel_services->dma_read(dev, addr, buf, len) == KEEL_MEM_OK;
}

/** DMA into guest physical memory; false on a bus error. */
inline bool dma_write(KeelObject *dev, uint64_t addr, const void *buf, uint64_t len)
{
    return keel_services->dma_write(dev, addr, buf, len) == KEEL_MEM_OK;
}

namespace detail
{

template <class T, class = void> struct has_realize : std::false_type {
};
template <class T>
struct has_realize<T, std::void_t<decltype(std::declval<T &>().realize(
                          std::declval<KeelObject *>(), std::declval<KeelError *>()))>> : std::true_type {
};
template <class T, class = void> struct has_reset : std::false_type {
};
template <class T>
struct has_reset<T, std::void_t<decltype(std::declval<T &>().reset(std::declval<KeelResetType>()))>>
    : std::true_type {
};
template <class T, class = void> struct has_unrealize : std::false_type {
};
template <class T>
struct has_unrealize<T, std::void_t<decltype(std::declval<T &>().unrealize(std::declval<KeelObject *>()))>>
    : std::true_type {
};
template <class T, class = void> struct access_widths {
    static constexpr uint8_t min = 1, max = 8;
};
template <class T> struct access_widths<T, std::void_t<decltype(T::access_min), decltype(T::access_max)>> {
    static constexpr uint8_t min = static_cast<uint8_t>(T::access_min);
    static constexpr uint8_t max = static_cast<uint8_t>(T::access_max);
};

template <class T> int init(KeelObject *, void *state, KeelError *)
{
    ::new (state) T();
    return KEEL_OK;
}

template <class T> int realize(KeelObject *dev, void *state, KeelError *err)
{
    if constexpr (has_realize<T>::value) {
#if defined(__cpp_exceptions)
        try {
            return static_cast<T *>(state)->realize(dev, err);
        } catch (const std::exception &e) {
            keel_services->error_set(err, "%s", e.what());
        } catch (...) {
            keel_services->error_set(err, "realize failed (an unknown C++ exception)");
        }
        return KEEL_ERR;
#else
        return static_cast<T *>(state)->realize(dev, err);
#endif
    } else {
        (void)dev;
        (void)state;
        (void)err;
        return KEEL_OK;
    }
}

template <class T> void reset(KeelObject *, void *state, KeelResetType type)
{
    if constexpr (has_reset<T>::value) {
#if defined(__cpp_exceptions)
        try {
            static_cast<T *>(state)->reset(type);
        } catch (...) {
        }
#else
        static_cast<T *>(state)->reset(type);
#endif
    } else {
        (void)state;
        (void)type;
    }
}

template <class T> void unrealize(KeelObject *dev, void *state)
{
    if constexpr (has_unrealize<T>::value) {
#if defined(__cpp_exceptions)
        try {
            static_cast<T *>(state)->unrealize(dev);
        } catch (...) {
        }
#else
        static_cast<T *>(state)->unrealize(dev);
#endif
    } else {
        (void)dev;
        (void)state;
    }
}

template <class T> KeelMemResult mmio_read(void *opaque, uint64_t offset, unsigned width, uint64_t *value)
{
#if defined(__cpp_exceptions)
    try {
        *value = static_cast<T *>(opaque)->read(offset, width);
        return KEEL_MEM_OK;
    } catch (...) {
        return KEEL_MEM_DEVICE_ERROR;
    }
#else
    *value = static_cast<T *>(opaque)->read(offset, width);
    return KEEL_MEM_OK;
#endif
}

template <class T> KeelMemResult mmio_write(void *opaque, uint64_t offset, unsigned width, uint64_t value)
{
#if defined(__cpp_exceptions)
    try {
        static_cast<T *>(opaque)->write(offset, width, value);
        return KEEL_MEM_OK;
    } catch (...) {
        return KEEL_MEM_DEVICE_ERROR;
    }
#else
    static_cast<T *>(opaque)->write(offset, width, value);
    return KEEL_MEM_OK;
#endif
}

} // namespace detail

namespace detail
{
// Built field by field, so the tables stay right whatever a later minor adds in their reserved slots.
template <class T> constexpr KeelDeviceOps make_device_ops()
{
    KeelDeviceOps o{};
    o.size = sizeof(KeelDeviceOps);
    o.init = &init<T>;
    o.realize = &realize<T>;
    o.reset = &reset<T>;
    o.unrealize = &unrealize<T>;
    return o;
}
template <class T> constexpr KeelMemoryOps make_mmio_ops()
{
    KeelMemoryOps o{};
    o.size = sizeof(KeelMemoryOps);
    o.read = &mmio_read<T>;
    o.write = &mmio_write<T>;
    o.valid_min = access_widths<T>::min;
    o.valid_max = access_widths<T>::max;
    o.endianness = KEEL_ENDIAN_LITTLE;
    return o;
}
} // namespace detail

/** The lifecycle table of state type @T (static data, as the kernel keeps a pointer to it). */
template <class T> inline constexpr KeelDeviceOps device_ops = detail::make_device_ops<T>();

/** The MMIO table of @T: T::read(offset, width) and T::write(offset, width, value), little-endian. */
template <class T> inline constexpr KeelMemoryOps mmio_ops = detail::make_mmio_ops<T>();

/** Create MMIO window @index of @dev, served by @state's read() and write(). */
template <class T>
int init_mmio(KeelObject *dev, unsigned index, const char *name, uint64_t size, T *state, KeelError *err)
{
    return keel_services->device_init_mmio(dev, index, name, size, &mmio_ops<T>, state, err);
}

/** The descriptor of a device type whose instance state is @T, for KeelRegistrar.register_device. */
template <class T, std::size_t N>
constexpr KeelDeviceTypeInfo device_type(const char *name, const char *description,
                                         const KeelPropertyInfo (&props)[N])
{
    static_assert(std::is_standard_layout_v<T>,
                  "the state must be standard layout (properties use offsetof)");
    static_assert(std::is_trivially_destructible_v<T>, "the kernel frees the state without destroying it");
    static_assert(alignof(T) <= 16, "the kernel aligns instance state to 16 bytes");
    KeelDeviceTypeInfo t{};
    t.size = sizeof(KeelDeviceTypeInfo);
    t.name = name;
    t.description = description;
    t.instance_size = sizeof(T);
    t.properties = props;
    t.n_properties = N;
    t.ops = &device_ops<T>;
    return t;
}

} // namespace keel::cxx

#endif /* KEEL_CXX_DEVICE_HPP */
