// SPDX-License-Identifier: MIT
// The fake kernel behind fake_services.h: its own opaque ABI types and a recording KeelServices table.
// Never link this together with keel-core: both define KeelObject, KeelChardev, KeelTimer, ...
#include "fake_services.h"

#include "error.h"
#include "memory.h"
#include "schema.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <functional>
#include <stdexcept>

using keel::test::DeviceImpl;
using keel::test::FakeChardev;
using keel::test::FakeDrive;

struct KeelObject {
    DeviceImpl *impl;
};

struct KeelChardev {
    FakeChardev *fake;
};

struct KeelDrive {
    keel::test::FakeDrive *fake;
};

struct KeelTimer {
    KeelObject *owner;
    KeelClockType clock;
    KeelTimerCallback cb;
    void *opaque;
    bool armed;
    int64_t expire;
    uint64_t seq; // arming order, so timers due at the same time fire in that order
};

struct KeelIrqLine {
    KeelObject *owner;
    std::string group;
    unsigned index;
    keel::test::IrqOutState st;
    DeviceImpl *target = nullptr;
    std::string target_group;
    unsigned target_index = 0;
};

namespace keel::test
{

// A window is the kernel's own MemoryRegion behind a private address space,
// so modules see exactly the accesses the real bus makes (width checks,
// splitting, endianness) without a second implementation of it here.
struct Window {
    bool exists = false;
    std::string name;
    uint64_t size = 0;
    bool mapped = false;
    uint64_t base = 0;
    std::unique_ptr<keel::MemoryRegion> region;
    std::unique_ptr<keel::MemoryRegion> container;
    std::unique_ptr<keel::AddressSpace> as; // destroyed first: it refers to container
};

struct InputGroup {
    std::string name;
    KeelIrqHandler handler;
    void *opaque;
    std::vector<int> levels;
};

struct DeviceImpl {
    FakeKernel *kernel = nullptr;
    const KeelDeviceTypeInfo *type = nullptr;
    std::string name;
    std::string path;
    KeelObject obj{};
    void *state = nullptr;
    std::vector<std::unique_ptr<std::string>> strings; // storage of STRING property values
    bool realized = false;
    std::vector<Window> windows;
    std::vector<InputGroup> inputs;
    std::map<std::string, std::vector<std::unique_ptr<KeelIrqLine>>> outputs;

    InputGroup *find_inputs(const std::string &g)
    {
        for (auto &i : inputs)
            if (i.name == g) return &i;
        return nullptr;
    }
};

namespace
{

FakeKernel *g_kernel = nullptr;

FakeKernel &kern()
{
    if (!g_kernel) {
        std::fprintf(stderr, "fake kernel: a service was called with no FakeKernel alive\n");
        std::abort();
    }
    return *g_kernel;
}

// --- property values, in manifest spelling ---

bool parse_u64(std::string s, uint64_t &out, bool size_suffix)
{
    if (s.empty() || s[0] == '-' || s[0] == '+' || std::isspace(static_cast<unsigned char>(s[0])))
        return false;
    uint64_t mult = 1;
    if (size_suffix) {
        static const char suffixes[] = "KMGT";
        char c = static_cast<char>(std::toupper(static_cast<unsigned char>(s.back())));
        if (const char *p = std::strchr(suffixes, c); p && *p) {
            mult = uint64_t{1} << (10 * (p - suffixes + 1));
            s.pop_back();
        }
    }
    int base = 10;
    size_t start = 0;
    if (s.size() > 2 && s[0] == '0') {
        char c = static_cast<char>(std::tolower(static_cast<unsigned char>(s[1])));
        if (c == 'x') base = 16, start = 2;
        if (c == 'b') base = 2, start = 2;
        if (c == 'o') base = 8, start = 2;
    }
    if (start >= s.size()) return false;
    errno = 0;
    char *end = nullptr;
    unsigned long long v = std::strtoull(s.c_str() + start, &end, base);
    if (errno || *end != '\0' || end == s.c_str() + start) return false;
    if (mult > 1 && v > UINT64_MAX / mult) return false;
    out = static_cast<uint64_t>(v) * mult;
    return true;
}

bool parse_i64(const std::string &s, int64_t &out)
{
    bool neg = !s.empty() && s[0] == '-';
    uint64_t mag;
    if (!parse_u64(neg || (!s.empty() && s[0] == '+') ? s.substr(1) : s, mag, false)) return false;
    if (neg ? mag > uint64_t{INT64_MAX} + 1 : mag > uint64_t{INT64_MAX}) return false;
    out = neg ? static_cast<int64_t>(0 - mag) : static_cast<int64_t>(mag);
    return true;
}

bool parse_bool(const std::string &s, bool &out)
{
    if (s == "true" || s == "on" || s == "yes") return out = true, true;
    if (s == "false" || s == "off" || s == "no") return out = false, true;
    return false;
}

template <class T> void store(void *state, size_t off, T v)
{
    std::memcpy(static_cast<char *>(state) + off, &v, sizeof v);
}

} // namespace

// Everything that needs the private parts of the fake's classes.
struct FakeAccess {
    static KeelRegistrar registrar;
    static const KeelServices services;

    // Parse @v for @p and store it into @state. With @dev null only checks it (a default at
    // registration), and LINK/CHARDEV values, which name other objects, are not looked up.
    // Returns "" or why the value was refused.
    static std::string set_prop(FakeKernel &k, DeviceImpl *dev, void *state, const KeelPropertyInfo &p,
                                const std::string &v)
    {
        const char *n = p.name;
        auto range_u = [&](uint64_t x) -> std::string {
            if ((p.flags & KEEL_PROPF_RANGE) && (x < p.min || x > p.max))
                return keel::strprintf("%s: %llu is out of range %llu..%llu", n, (unsigned long long)x,
                                       (unsigned long long)p.min, (unsigned long long)p.max);
            return "";
        };
        switch (p.type) {
        case KEEL_PROP_BOOL: {
            bool b;
            if (!parse_bool(v, b)) return keel::strprintf("%s: '%s' is not a boolean", n, v.c_str());
            store(state, p.offset, b);
            return "";
        }
        case KEEL_PROP_INT: {
            int64_t x;
            if (!parse_i64(v, x)) return keel::strprintf("%s: '%s' is not an integer", n, v.c_str());
            if ((p.flags & KEEL_PROPF_RANGE) &&
                (x < static_cast<int64_t>(p.min) || x > static_cast<int64_t>(p.max)))
                return keel::strprintf("%s: %lld is out of range %lld..%lld", n, (long long)x,
                                       (long long)(int64_t)p.min, (long long)(int64_t)p.max);
            store(state, p.offset, x);
            return "";
        }
        case KEEL_PROP_UINT:
        case KEEL_PROP_SIZE: {
            uint64_t x;
            if (!parse_u64(v, x, p.type == KEEL_PROP_SIZE))
                return keel::strprintf("%s: '%s' is not %s", n, v.c_str(),
                                       p.type == KEEL_PROP_SIZE ? "a size" : "an unsigned integer");
            if (auto e = range_u(x); !e.empty()) return e;
            store(state, p.offset, x);
            return "";
        }
        case KEEL_PROP_STRING: {
            const char *s = nullptr;
            if (dev) {
                dev->strings.push_back(std::make_unique<std::string>(v));
                s = dev->strings.back()->c_str();
            }
            store(state, p.offset, s);
            return "";
        }
        case KEEL_PROP_ENUM: {
            if (!p.enum_values) return keel::strprintf("%s: enum without values", n);
            for (int32_t i = 0; p.enum_values[i]; ++i)
                if (v == p.enum_values[i]) {
                    store(state, p.offset, i);
                    return "";
                }
            return keel::strprintf("%s: '%s' is not one of its values", n, v.c_str());
        }
        case KEEL_PROP_LINK: {
            if (!dev) return "";
            auto it = k.devices_.find(v);
            if (it == k.devices_.end()) return keel::strprintf("%s: no object named '%s'", n, v.c_str());
            DeviceImpl *t = it->second->impl_.get();
            if (p.link_type && t->type->name != std::string(p.link_type))
                return keel::strprintf("%s: '%s' is a %s, not a %s", n, v.c_str(), t->type->name,
                                       p.link_type);
            store(state, p.offset, &t->obj);
            return "";
        }
        case KEEL_PROP_CHARDEV: {
            if (!dev) return "";
            FakeChardev *c = k.chardev(v);
            if (!c) return keel::strprintf("%s: no chardev '%s'", n, v.c_str());
            store(state, p.offset, c->handle_);
            return "";
        }
        case KEEL_PROP_DRIVE: {
            if (!dev) return "";
            FakeDrive *d = k.drive(v);
            if (!d) return keel::strprintf("%s: no drive '%s'", n, v.c_str());
            store(state, p.offset, d->handle_);
            return "";
        }
        }
        return keel::strprintf("%s: unknown property type %d", n, static_cast<int>(p.type));
    }

    // --- registrar ---

    static int register_device(KeelRegistrar *, const KeelDeviceTypeInfo *t, KeelError *err)
    {
        FakeKernel &k = kern();
        auto fail = [&](const std::string &m) {
            if (err) err->is_set = true, err->message = m;
            return KEEL_ERR;
        };
        if (!t) return fail("register_device: no type");
        if (t->size < offsetof(KeelDeviceTypeInfo, reserved))
            return fail(keel::strprintf("type descriptor size %zu is too small", t->size));
        if (!t->name || !*t->name) return fail("type without a name");
        if (k.types_.count(t->name)) return fail(keel::strprintf("type '%s' is already registered", t->name));
        if (t->n_properties && !t->properties)
            return fail(keel::strprintf("%s: n_properties without properties", t->name));
        if (t->ops && t->ops->size < offsetof(KeelDeviceOps, serialize))
            return fail(keel::strprintf("%s: ops table size %zu is too small", t->name, t->ops->size));
        std::vector<char> scratch(t->instance_size + 16);
        for (size_t i = 0; i < t->n_properties; ++i) {
            const KeelPropertyInfo &p = t->properties[i];
            if (!p.name || !*p.name) return fail(keel::strprintf("%s: property %zu has no name", t->name, i));
            for (size_t j = 0; j < i; ++j)
                if (!std::strcmp(p.name, t->properties[j].name))
                    return fail(keel::strprintf("%s: property '%s' declared twice", t->name, p.name));
            size_t sz = keel::prop_storage_size(p.type);
            if (!sz)
                return fail(keel::strprintf("%s.%s: bad property type %d", t->name, p.name,
                                            static_cast<int>(p.type)));
            if (p.offset + sz > t->instance_size)
                return fail(
                    keel::strprintf("%s.%s: offset %zu is outside the state", t->name, p.name, p.offset));
            if (p.type == KEEL_PROP_ENUM && !p.enum_values)
                return fail(keel::strprintf("%s.%s: enum without values", t->name, p.name));
            if (p.default_value) {
                std::string e = set_prop(k, nullptr, scratch.data(), p, p.default_value);
                if (!e.empty()) return fail(keel::strprintf("%s: bad default: %s", t->name, e.c_str()));
            }
        }
        k.types_[t->name] = t;
        return KEEL_OK;
    }

    static int register_accel(KeelRegistrar *, const KeelAccelTypeInfo *a, KeelError *err)
    {
        FakeKernel &k = kern();
        auto fail = [&](const std::string &m) {
            if (err) err->is_set = true, err->message = m;
            return KEEL_ERR;
        };
        if (!a) return fail("register_accel: no accelerator");
        if (a->size < offsetof(KeelAccelTypeInfo, reserved))
            return fail(keel::strprintf("accelerator descriptor size %zu is too small", a->size));
        if (!a->name || !*a->name) return fail("accelerator without a name");
        if (k.accels_.count(a->name))
            return fail(keel::strprintf("accelerator '%s' is already registered", a->name));
        if (!a->ops || a->ops->size < offsetof(KeelAccelOps, reserved) || !a->ops->create || !a->ops->run ||
            !a->ops->stop)
            return fail(keel::strprintf("%s: ops table missing or without create/run/stop", a->name));
        k.accels_[a->name] = a;
        return KEEL_OK;
    }

    // --- services ---

    [[gnu::format(printf, 2, 3)]] static void error_set(KeelError *err, const char *f, ...)
    {
        if (!err) return;
        va_list ap;
        va_start(ap, f);
        err->message = keel::vstrprintf(f, ap);
        va_end(ap);
        err->is_set = true;
    }

    [[gnu::format(printf, 3, 4)]] static void log(KeelObject *obj, KeelLogLevel level, const char *f, ...)
    {
        va_list ap;
        va_start(ap, f);
        std::string m = keel::vstrprintf(f, ap);
        va_end(ap);
        kern().logs_.push_back({false, static_cast<uint32_t>(level), obj ? obj->impl->name : "", m});
    }

    [[gnu::format(printf, 3, 4)]] static void log_mask(KeelObject *obj, uint32_t cat, const char *f, ...)
    {
        if (!(kern().log_mask_ & cat)) return;
        va_list ap;
        va_start(ap, f);
        std::string m = keel::vstrprintf(f, ap);
        va_end(ap);
        kern().logs_.push_back({true, cat, obj ? obj->impl->name : "", m});
    }

    static bool log_enabled(uint32_t cat) { return (kern().log_mask_ & cat) != 0; }

    static const char *object_name(KeelObject *o) { return o ? o->impl->name.c_str() : ""; }
    static const char *object_path(KeelObject *o) { return o ? o->impl->path.c_str() : ""; }
    static const char *object_type(KeelObject *o) { return o ? o->impl->type->name : ""; }
    static void *object_state(KeelObject *o) { return o ? o->impl->state : nullptr; }

    static Window *new_window(KeelObject *dev, unsigned index, const char *name, uint64_t size,
                              KeelError *err)
    {
        auto fail = [&](const std::string &m) -> Window * {
            error_set(err, "%s", m.c_str());
            return nullptr;
        };
        if (!dev) return fail("device_init_*: no device");
        DeviceImpl &d = *dev->impl;
        if (d.realized) return fail("register windows must be created in realize");
        if (index >= 16) return fail(keel::strprintf("window index %u is too large", index));
        if (size == 0) return fail("size is 0");
        if (d.windows.size() <= index) d.windows.resize(index + 1);
        if (d.windows[index].exists) return fail(keel::strprintf("window %u created twice", index));
        Window &w = d.windows[index];
        w.exists = true;
        w.name = d.name + (name && *name ? "." + std::string(name) : "");
        w.size = size;
        return &w;
    }

    static bool valid_width(unsigned w) { return w == 1 || w == 2 || w == 4 || w == 8; }

    static int device_init_mmio(KeelObject *dev, unsigned index, const char *name, uint64_t size,
                                const KeelMemoryOps *ops, void *opaque, KeelError *err)
    {
        return add_region(dev, index, name, size, err,
                          [&] { return keel::MemoryRegion::mmio(name ? name : "", size, ops, opaque); });
    }

    static int add_region(KeelObject *dev, unsigned index, const char *name, uint64_t size, KeelError *err,
                          const std::function<std::unique_ptr<keel::MemoryRegion>()> &make)
    {
        std::unique_ptr<keel::MemoryRegion> r;
        try {
            r = make();
        } catch (const keel::Error &e) {
            return error_set(err, "%s", e.what()), KEEL_ERR;
        }
        Window *w = new_window(dev, index, name, size, err);
        if (!w) return KEEL_ERR;
        w->region = std::move(r);
        w->container = keel::MemoryRegion::container("window", size);
        w->container->add_subregion(0, *w->region);
        w->as = std::make_unique<keel::AddressSpace>("window", *w->container);
        return KEEL_OK;
    }

    static int device_init_ram(KeelObject *dev, unsigned index, const char *name, uint64_t size, bool ro,
                               void **host, KeelError *err)
    {
        int rc = add_region(dev, index, name, size, err, [&] {
            return ro ? keel::MemoryRegion::rom(name ? name : "", size)
                      : keel::MemoryRegion::ram(name ? name : "", size);
        });
        if (rc == KEEL_OK && host) *host = dev->impl->windows[index].region->host();
        return rc;
    }

    static int device_get_reg(KeelObject *dev, unsigned index, uint64_t *base, uint64_t *size)
    {
        if (!dev || index >= dev->impl->windows.size() || !dev->impl->windows[index].mapped) return KEEL_ERR;
        if (base) *base = dev->impl->windows[index].base;
        if (size) *size = dev->impl->windows[index].size;
        return KEEL_OK;
    }

    static bool in_ram(FakeKernel &k, uint64_t addr, uint64_t len)
    {
        uint64_t size = k.ram_.size();
        return addr >= k.ram_base_ && addr - k.ram_base_ <= size && len <= size - (addr - k.ram_base_);
    }

    static KeelMemResult dma_read(KeelObject *, uint64_t addr, void *buf, uint64_t len)
    {
        FakeKernel &k = kern();
        ++k.dma_calls_;
        if (!in_ram(k, addr, len)) return KEEL_MEM_DECODE_ERROR;
        if (len) std::memcpy(buf, k.ram_.data() + (addr - k.ram_base_), len);
        return KEEL_MEM_OK;
    }

    static KeelMemResult dma_write(KeelObject *, uint64_t addr, const void *buf, uint64_t len)
    {
        FakeKernel &k = kern();
        ++k.dma_calls_;
        if (!in_ram(k, addr, len)) return KEEL_MEM_DECODE_ERROR;
        if (len) std::memcpy(k.ram_.data() + (addr - k.ram_base_), buf, len);
        return KEEL_MEM_OK;
    }

    static int irq_init_inputs(KeelObject *dev, const char *name, unsigned count, KeelIrqHandler handler,
                               void *opaque, KeelError *err)
    {
        std::string g = name ? name : "";
        if (!dev || !handler || count == 0)
            return error_set(err, "irq_init_inputs: needs a handler and count > 0"), KEEL_ERR;
        if (dev->impl->find_inputs(g))
            return error_set(err, "interrupt input group '%s' declared twice", g.c_str()), KEEL_ERR;
        dev->impl->inputs.push_back({g, handler, opaque, std::vector<int>(count, 0)});
        return KEEL_OK;
    }

    static int irq_init_outputs(KeelObject *dev, const char *name, unsigned count, KeelIrqLine **lines,
                                KeelError *err)
    {
        std::string g = name ? name : "";
        if (!dev || !lines || count == 0)
            return error_set(err, "irq_init_outputs: needs lines and count > 0"), KEEL_ERR;
        auto &outs = dev->impl->outputs;
        if (outs.count(g))
            return error_set(err, "interrupt output group '%s' declared twice", g.c_str()), KEEL_ERR;
        auto &v = outs[g];
        for (unsigned i = 0; i < count; ++i) {
            v.push_back(std::make_unique<KeelIrqLine>());
            v.back()->owner = dev;
            v.back()->group = g;
            v.back()->index = i;
            lines[i] = v.back().get();
        }
        return KEEL_OK;
    }

    static void drive_input(DeviceImpl *d, const std::string &group, unsigned n, int level)
    {
        InputGroup *g = d->find_inputs(group);
        if (!g || n >= g->levels.size()) return;
        g->levels[n] = level;
        g->handler(g->opaque, n, level);
    }

    static void irq_set(KeelIrqLine *line, int level)
    {
        if (!line) return;
        level = level != 0;
        IrqOutState &s = line->st;
        ++s.sets;
        if (level && !s.level) ++s.raises;
        if (!level && s.level) ++s.lowers;
        s.level = level;
        if (line->target) drive_input(line->target, line->target_group, line->target_index, level);
    }

    static size_t chardev_write(KeelChardev *chr, const uint8_t *buf, size_t len)
    {
        if (!chr) return len;
        chr->fake->output_.append(reinterpret_cast<const char *>(buf), len);
        return len;
    }

    static void chardev_set_handlers(KeelChardev *chr, const KeelChardevHandlers *h, void *opaque)
    {
        if (!chr) return;
        chr->fake->handlers_ = h;
        chr->fake->opaque_ = h ? opaque : nullptr;
    }

    static void chardev_accept_input(KeelChardev *chr)
    {
        if (!chr) return;
        ++chr->fake->accept_calls_;
        // The real backend retries from the main loop, not from inside the device callback; the
        // fake leaves it to the test (pump() or the next feed()) for the same reason.
    }

    static int64_t clock_get_ns(KeelClockType) { return kern().now_; }

    static KeelTimer *timer_new(KeelObject *owner, KeelClockType clock, KeelTimerCallback cb, void *opaque)
    {
        auto t = std::make_unique<KeelTimer>(KeelTimer{owner, clock, cb, opaque, false, 0, 0});
        kern().timers_.push_back(std::move(t));
        return kern().timers_.back().get();
    }

    static void timer_mod(KeelTimer *t, int64_t expire)
    {
        static uint64_t seq;
        if (!t) return;
        t->armed = true;
        t->expire = expire;
        t->seq = ++seq;
    }

    static void timer_del(KeelTimer *t)
    {
        if (t) t->armed = false;
    }

    static void timer_free(KeelTimer *t)
    {
        if (!t) return;
        std::erase_if(kern().timers_, [t](const std::unique_ptr<KeelTimer> &p) { return p.get() == t; });
    }

    static void system_request(KeelSystemRequest req, int status)
    {
        kern().requests_.push_back({req, status});
    }

    // CPUs: kicks are counted per object; memory is the fake's RAM (DMA's), nothing else.
    static void cpu_kick(KeelObject *cpu)
    {
        if (cpu) ++kern().kicks_[cpu->impl->name];
    }

    static uint8_t *cpu_ram_ptr(KeelObject *, uint64_t paddr, uint64_t *avail, bool)
    {
        FakeKernel &k = kern();
        if (!in_ram(k, paddr, 1)) {
            if (avail) *avail = 0;
            return nullptr;
        }
        if (avail) *avail = k.ram_.size() - (paddr - k.ram_base_);
        return k.ram_.data() + (paddr - k.ram_base_);
    }

    static KeelMemResult cpu_mem_read(KeelObject *, uint64_t paddr, unsigned width, uint64_t *value)
    {
        FakeKernel &k = kern();
        if (!valid_width(width) || !value) return KEEL_MEM_ACCESS_ERROR;
        if (!in_ram(k, paddr, width)) return KEEL_MEM_DECODE_ERROR;
        uint64_t v = 0;
        std::memcpy(&v, k.ram_.data() + (paddr - k.ram_base_), width); // little-endian host
        *value = v;
        return KEEL_MEM_OK;
    }

    static KeelMemResult cpu_mem_write(KeelObject *, uint64_t paddr, unsigned width, uint64_t value)
    {
        FakeKernel &k = kern();
        if (!valid_width(width)) return KEEL_MEM_ACCESS_ERROR;
        if (!in_ram(k, paddr, width)) return KEEL_MEM_DECODE_ERROR;
        std::memcpy(k.ram_.data() + (paddr - k.ram_base_), &value, width);
        return KEEL_MEM_OK;
    }

    static unsigned machine_cpu_count(KeelObject *) { return kern().cpu_count_; }

    // --- drives: bytes in a vector, every range checked like the kernel's drives ---

    static bool drive_range(KeelDrive *d, uint64_t offset, uint64_t len, const char *what, KeelError *err)
    {
        FakeDrive &f = *d->fake;
        uint64_t size = f.data.size();
        if (f.fail_io) return error_set(err, "%s: %s: injected I/O error", f.id_.c_str(), what), false;
        if (offset > size || len > size - offset)
            return error_set(err, "%s: %s of %llu bytes at %llu is past the end (%llu)", f.id_.c_str(), what,
                             (unsigned long long)len, (unsigned long long)offset, (unsigned long long)size),
                   false;
        return true;
    }

    static bool drive_writable(KeelDrive *d, const char *what, KeelError *err)
    {
        if (d->fake->read_only)
            return error_set(err, "%s: %s of a read-only drive", d->fake->id_.c_str(), what), false;
        return true;
    }

    static uint64_t iov_bytes(const KeelIoVec *iov, unsigned n)
    {
        uint64_t t = 0;
        for (unsigned i = 0; i < n; ++i)
            t += iov[i].len;
        return t;
    }

    static int drive_preadv(KeelDrive *d, uint64_t offset, const KeelIoVec *iov, unsigned n, KeelError *err)
    {
        ++d->fake->reads;
        if (!drive_range(d, offset, iov_bytes(iov, n), "read", err)) return KEEL_ERR;
        for (unsigned i = 0; i < n; ++i) {
            std::memcpy(iov[i].base, d->fake->data.data() + offset, iov[i].len);
            offset += iov[i].len;
        }
        return KEEL_OK;
    }

    static int drive_pwritev(KeelDrive *d, uint64_t offset, const KeelIoVec *iov, unsigned n, KeelError *err)
    {
        ++d->fake->writes;
        if (!drive_writable(d, "write", err) || !drive_range(d, offset, iov_bytes(iov, n), "write", err))
            return KEEL_ERR;
        for (unsigned i = 0; i < n; ++i) {
            std::memcpy(d->fake->data.data() + offset, iov[i].base, iov[i].len);
            offset += iov[i].len;
        }
        return KEEL_OK;
    }

    static int drive_flush(KeelDrive *d, KeelError *err)
    {
        ++d->fake->flushes;
        if (d->fake->fail_io)
            return error_set(err, "%s: flush: injected I/O error", d->fake->id_.c_str()), KEEL_ERR;
        return KEEL_OK;
    }

    // A discarded range reads back as zeroes here (a real image may keep the old bytes).
    static int drive_discard(KeelDrive *d, uint64_t offset, uint64_t bytes, KeelError *err)
    {
        ++d->fake->discards;
        if (!drive_writable(d, "discard", err) || !drive_range(d, offset, bytes, "discard", err))
            return KEEL_ERR;
        d->fake->discarded.emplace_back(offset, bytes);
        std::memset(d->fake->data.data() + offset, 0, bytes);
        return KEEL_OK;
    }

    static int drive_write_zeroes(KeelDrive *d, uint64_t offset, uint64_t bytes, uint32_t flags,
                                  KeelError *err)
    {
        ++d->fake->write_zeroes;
        d->fake->last_write_zeroes_flags = flags;
        if (!drive_writable(d, "write-zeroes", err) || !drive_range(d, offset, bytes, "write-zeroes", err))
            return KEEL_ERR;
        std::memset(d->fake->data.data() + offset, 0, bytes);
        return KEEL_OK;
    }

    static uint64_t drive_length(KeelDrive *d) { return d->fake->data.size(); }
    static bool drive_read_only(KeelDrive *d) { return d->fake->read_only; }
    static const char *drive_id(KeelDrive *d) { return d->fake->id_.c_str(); }

    static Window &window(DeviceImpl &d, unsigned i)
    {
        if (i >= d.windows.size() || !d.windows[i].exists)
            throw std::out_of_range(keel::strprintf("%s has no window %u", d.name.c_str(), i));
        return d.windows[i];
    }
};

const KeelServices FakeAccess::services = {
    sizeof(KeelServices),
    KEEL_ABI_MAJOR,
    KEEL_ABI_MINOR,
    FakeAccess::error_set,
    FakeAccess::log,
    FakeAccess::log_mask,
    FakeAccess::log_enabled,
    FakeAccess::object_name,
    FakeAccess::object_path,
    FakeAccess::object_type,
    FakeAccess::object_state,
    FakeAccess::device_init_mmio,
    FakeAccess::device_init_ram,
    FakeAccess::device_get_reg,
    FakeAccess::dma_read,
    FakeAccess::dma_write,
    FakeAccess::irq_init_inputs,
    FakeAccess::irq_init_outputs,
    FakeAccess::irq_set,
    FakeAccess::chardev_write,
    FakeAccess::chardev_set_handlers,
    FakeAccess::chardev_accept_input,
    FakeAccess::clock_get_ns,
    FakeAccess::timer_new,
    FakeAccess::timer_mod,
    FakeAccess::timer_del,
    FakeAccess::timer_free,
    FakeAccess::system_request,
    FakeAccess::cpu_kick,
    FakeAccess::cpu_ram_ptr,
    FakeAccess::cpu_mem_read,
    FakeAccess::cpu_mem_write,
    FakeAccess::machine_cpu_count,
    // No device tree and no board services: device tests call realize, never the tree hooks.
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    // Block layer: files and nodes are not faked (format drivers are tested elsewhere); drives are.
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    FakeAccess::drive_preadv,
    FakeAccess::drive_pwritev,
    FakeAccess::drive_flush,
    FakeAccess::drive_discard,
    FakeAccess::drive_write_zeroes,
    FakeAccess::drive_length,
    FakeAccess::drive_read_only,
    FakeAccess::drive_id,
    // -icount (ABI 1.2): off.
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    // Instrumentation plugins (ABI 1.2): none.
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    // Instrumentation plugins (ABI 1.3): none.
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    // Run control (ABI 1.4): no debugger.
    nullptr,
};

KeelRegistrar FakeAccess::registrar = {sizeof(KeelRegistrar),
                                       &FakeAccess::services,
                                       FakeAccess::register_device,
                                       FakeAccess::register_accel,
                                       nullptr,
                                       nullptr,
                                       {}};

// --- FakeChardev ---

FakeChardev::FakeChardev() = default;

FakeChardev::~FakeChardev()
{
    delete handle_;
}

size_t FakeChardev::feed(const std::string &bytes)
{
    queue_ += bytes;
    return pump();
}

size_t FakeChardev::pump()
{
    size_t done = 0;
    while (!queue_.empty() && handlers_ && handlers_->can_receive && handlers_->receive) {
        size_t n = std::min(handlers_->can_receive(opaque_), queue_.size());
        if (n == 0) break;
        std::string chunk = queue_.substr(0, n);
        queue_.erase(0, n);
        handlers_->receive(opaque_, reinterpret_cast<const uint8_t *>(chunk.data()), n);
        done += n;
    }
    return done;
}

void FakeChardev::feed_unchecked(const std::string &bytes)
{
    if (handlers_ && handlers_->receive)
        handlers_->receive(opaque_, reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size());
}

void FakeChardev::event(KeelChardevEvent ev)
{
    if (handlers_ && handlers_->event) handlers_->event(opaque_, ev);
}

// --- FakeDrive ---

FakeDrive::FakeDrive() = default;

FakeDrive::~FakeDrive()
{
    delete handle_;
}

// --- FakeDevice ---

FakeDevice::FakeDevice(std::unique_ptr<DeviceImpl> impl) : impl_(std::move(impl)) {}

FakeDevice::~FakeDevice()
{
    DeviceImpl &d = *impl_;
    FakeKernel &k = *d.kernel;
    if (d.realized) unrealize();
    std::erase_if(k.timers_, [&](const std::unique_ptr<KeelTimer> &t) { return t->owner == &d.obj; });
    for (auto &c : k.chardevs_)
        if (c->opaque_ == d.state) {
            // The device left its handlers behind; drop them so the chardev never calls freed state.
            std::fprintf(stderr, "fake kernel: %s left chardev '%s' handlers registered\n", d.name.c_str(),
                         c->id_.c_str());
            c->handlers_ = nullptr;
            c->opaque_ = nullptr;
        }
    for (auto &[n, dev] : k.devices_)
        for (auto &[g, lines] : dev->impl_->outputs)
            for (auto &l : lines)
                if (l->target == &d) l->target = nullptr;
    k.devices_.erase(d.name);
    std::free(d.state);
}

const std::string &FakeDevice::name() const
{
    return impl_->name;
}
KeelObject *FakeDevice::object() const
{
    return &impl_->obj;
}
void *FakeDevice::state() const
{
    return impl_->state;
}
bool FakeDevice::realized() const
{
    return impl_->realized;
}

bool FakeDevice::realize()
{
    DeviceImpl &d = *impl_;
    d.kernel->error_.clear();
    if (d.realized) return true;
    const KeelDeviceOps *ops = d.type->ops;
    if (ops && ops->realize) {
        KeelError err;
        int rc = ops->realize(&d.obj, d.state, &err);
        if (rc != KEEL_OK) {
            d.kernel->error_ = err.is_set ? err.message : "realize failed without a message";
            return false;
        }
        if (err.is_set) {
            d.kernel->error_ = "realize succeeded but set an error: " + err.message;
            return false;
        }
    }
    d.realized = true;
    return true;
}

void FakeDevice::reset(KeelResetType type)
{
    const KeelDeviceOps *ops = impl_->type->ops;
    if (ops && ops->reset) ops->reset(&impl_->obj, impl_->state, type);
}

void FakeDevice::unrealize()
{
    DeviceImpl &d = *impl_;
    if (!d.realized) return;
    const KeelDeviceOps *ops = d.type->ops;
    if (ops && ops->unrealize) ops->unrealize(&d.obj, d.state);
    d.realized = false;
}

unsigned FakeDevice::window_count() const
{
    return static_cast<unsigned>(impl_->windows.size());
}
uint64_t FakeDevice::window_size(unsigned w) const
{
    return FakeAccess::window(*impl_, w).size;
}
std::string FakeDevice::window_name(unsigned w) const
{
    return FakeAccess::window(*impl_, w).name;
}
const KeelMemoryOps &FakeDevice::window_ops(unsigned w) const
{
    return FakeAccess::window(*impl_, w).region->ops();
}

void FakeDevice::map(unsigned w, uint64_t base)
{
    Window &win = FakeAccess::window(*impl_, w);
    win.mapped = true;
    win.base = base;
}

KeelMemResult FakeDevice::read(unsigned w, uint64_t offset, unsigned width, uint64_t *value)
{
    Window &win = FakeAccess::window(*impl_, w);
    uint64_t v = 0;
    KeelMemResult r = win.as->read(offset, width, v);
    *value = v;
    return r;
}

KeelMemResult FakeDevice::write(unsigned w, uint64_t offset, unsigned width, uint64_t value)
{
    Window &win = FakeAccess::window(*impl_, w);
    return win.as->write(offset, width, value);
}

uint64_t FakeDevice::read(uint64_t offset, unsigned width)
{
    uint64_t v;
    if (KeelMemResult r = read(0, offset, width, &v); r != KEEL_MEM_OK)
        throw std::runtime_error(keel::strprintf("%s: read of %u bytes at 0x%llx failed (%d)",
                                                 impl_->name.c_str(), width, (unsigned long long)offset,
                                                 static_cast<int>(r)));
    return v;
}

void FakeDevice::write(uint64_t offset, unsigned width, uint64_t value)
{
    if (KeelMemResult r = write(0, offset, width, value); r != KEEL_MEM_OK)
        throw std::runtime_error(keel::strprintf("%s: write of %u bytes at 0x%llx failed (%d)",
                                                 impl_->name.c_str(), width, (unsigned long long)offset,
                                                 static_cast<int>(r)));
}

unsigned FakeDevice::irq_out_count(const std::string &group) const
{
    auto it = impl_->outputs.find(group);
    return it == impl_->outputs.end() ? 0 : static_cast<unsigned>(it->second.size());
}

IrqOutState FakeDevice::irq_out(const std::string &group, unsigned n) const
{
    auto it = impl_->outputs.find(group);
    if (it == impl_->outputs.end() || n >= it->second.size())
        throw std::out_of_range(
            keel::strprintf("%s has no output %s[%u]", impl_->name.c_str(), group.c_str(), n));
    return it->second[n]->st;
}

unsigned FakeDevice::irq_in_count(const std::string &group) const
{
    InputGroup *g = impl_->find_inputs(group);
    return g ? static_cast<unsigned>(g->levels.size()) : 0;
}

bool FakeDevice::set_irq(const std::string &group, unsigned n, int level)
{
    InputGroup *g = impl_->find_inputs(group);
    if (!g || n >= g->levels.size()) return false;
    FakeAccess::drive_input(impl_.get(), group, n, level != 0);
    return true;
}

bool FakeDevice::connect(const std::string &out_group, unsigned n, FakeDevice &target,
                         const std::string &in_group, unsigned in_n)
{
    auto it = impl_->outputs.find(out_group);
    InputGroup *g = target.impl_->find_inputs(in_group);
    if (it == impl_->outputs.end() || n >= it->second.size() || !g || in_n >= g->levels.size()) return false;
    KeelIrqLine &l = *it->second[n];
    l.target = target.impl_.get();
    l.target_group = in_group;
    l.target_index = in_n;
    FakeAccess::drive_input(l.target, in_group, in_n, l.st.level);
    return true;
}

unsigned FakeDevice::armed_timers() const
{
    unsigned n = 0;
    for (auto &t : impl_->kernel->timers_)
        if (t->owner == &impl_->obj && t->armed) ++n;
    return n;
}

// --- FakeKernel ---

FakeKernel::FakeKernel(uint64_t ram_base, size_t ram_size) : ram_(ram_size, 0), ram_base_(ram_base)
{
    if (g_kernel) {
        std::fprintf(stderr, "fake kernel: only one FakeKernel may exist at a time\n");
        std::abort();
    }
    g_kernel = this;
}

FakeKernel::~FakeKernel()
{
    if (!devices_.empty()) {
        std::fprintf(stderr, "fake kernel: destroyed before its devices (declare the FakeKernel first)\n");
        std::abort();
    }
    // Modules stay loaded, as with the real kernel: their types are static data referenced for the
    // life of the process, and a later FakeKernel re-runs their init.
    g_kernel = nullptr;
}

const KeelServices *FakeKernel::services() const
{
    return &FakeAccess::services;
}

bool FakeKernel::load_module(const std::string &path)
{
    error_.clear();
    void *h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) return error_ = keel::strprintf("%s: %s", path.c_str(), dlerror()), false;
    auto fn = reinterpret_cast<KeelModuleInfoFn>(dlsym(h, KEEL_MODULE_SYMBOL));
    if (!fn) return error_ = path + ": no " KEEL_MODULE_SYMBOL, false;
    const KeelModuleInfo *info = fn();
    if (!info) return error_ = path + ": " KEEL_MODULE_SYMBOL " returned NULL", false;
    if (info->abi_major != KEEL_ABI_MAJOR || info->abi_minor > KEEL_ABI_MINOR)
        return error_ = keel::strprintf("%s: built for ABI %u.%u, kernel has %u.%u", path.c_str(),
                                        info->abi_major, info->abi_minor, KEEL_ABI_MAJOR, KEEL_ABI_MINOR),
               false;
    if (info->struct_size < offsetof(KeelModuleInfo, reserved) || !info->init || !info->name ||
        !info->version)
        return error_ = path + ": malformed module descriptor", false;
    for (auto &m : modules_)
        if (m.info == info) return true; // already loaded into this kernel
    auto before = types_;
    KeelError err;
    if (info->init(&FakeAccess::registrar, &err) != KEEL_OK) {
        types_ = before;
        return error_ = path + ": init failed: " + (err.is_set ? err.message : "(no message)"), false;
    }
    modules_.push_back({path, h, info});
    return true;
}

const KeelModuleInfo *FakeKernel::module_info(const std::string &name) const
{
    for (auto &m : modules_)
        if (name == m.info->name) return m.info;
    return nullptr;
}

const KeelDeviceTypeInfo *FakeKernel::find_type(const std::string &name) const
{
    auto it = types_.find(name);
    return it == types_.end() ? nullptr : it->second;
}

const KeelAccelTypeInfo *FakeKernel::find_accel(const std::string &name) const
{
    auto it = accels_.find(name);
    return it == accels_.end() ? nullptr : it->second;
}

unsigned FakeKernel::cpu_kicks(const std::string &name) const
{
    auto it = kicks_.find(name);
    return it == kicks_.end() ? 0 : it->second;
}

std::vector<std::string> FakeKernel::type_names() const
{
    std::vector<std::string> v;
    for (auto &[n, t] : types_)
        v.push_back(n);
    return v;
}

std::unique_ptr<FakeDevice> FakeKernel::create(const std::string &type, const std::string &name,
                                               const PropValues &props, bool realize)
{
    error_.clear();
    const KeelDeviceTypeInfo *t = find_type(type);
    if (!t) return error_ = "no device type '" + type + "'", nullptr;
    if (devices_.count(name)) return error_ = "an object named '" + name + "' exists", nullptr;
    for (auto &[k, v] : props) {
        bool known = false;
        for (size_t i = 0; i < t->n_properties; ++i)
            known |= k == t->properties[i].name;
        if (!known) return error_ = type + " has no property '" + k + "'", nullptr;
    }
    for (size_t i = 0; i < t->n_properties; ++i) {
        const KeelPropertyInfo &p = t->properties[i];
        if ((p.flags & KEEL_PROPF_REQUIRED) && !props.count(p.name))
            return error_ = keel::strprintf("%s: property '%s' is required", name.c_str(), p.name), nullptr;
    }

    auto impl = std::make_unique<DeviceImpl>();
    impl->kernel = this;
    impl->type = t;
    impl->name = name;
    impl->path = "/machine/" + name;
    impl->obj.impl = impl.get();
    size_t sz = (std::max<size_t>(t->instance_size, 1) + 15) & ~size_t{15};
    impl->state = std::aligned_alloc(16, sz);
    std::memset(impl->state, 0, sz);
    // A CPU type's state starts with KeelCpuCommon; number CPUs in creation order, as the machine does.
    if (t->cpu && t->instance_size >= sizeof(KeelCpuCommon))
        KEEL_CPU_COMMON(impl->state)->cpu_index = next_cpu_index_++;
    std::unique_ptr<FakeDevice> dev(new FakeDevice(std::move(impl)));
    DeviceImpl &d = *dev->impl_;
    devices_[name] = dev.get();

    if (t->ops && t->ops->init) {
        KeelError err;
        if (t->ops->init(&d.obj, d.state, &err) != KEEL_OK) {
            std::string m = "init failed: " + (err.is_set ? err.message : std::string("(no message)"));
            dev.reset();
            return error_ = m, nullptr;
        }
    }
    for (size_t i = 0; i < t->n_properties; ++i) {
        const KeelPropertyInfo &p = t->properties[i];
        auto it = props.find(p.name);
        const char *v = it != props.end() ? it->second.c_str() : p.default_value;
        if (!v) continue;
        std::string e = FakeAccess::set_prop(*this, &d, d.state, p, v);
        if (!e.empty()) {
            dev.reset();
            return error_ = name + ": " + e, nullptr;
        }
    }
    if (realize) {
        if (!dev->realize()) {
            std::string m = error_;
            dev.reset();
            return error_ = m, nullptr;
        }
        dev->reset(KEEL_RESET_COLD);
    }
    return dev;
}

FakeChardev &FakeKernel::add_chardev(const std::string &id)
{
    auto c = std::make_unique<FakeChardev>();
    c->id_ = id;
    c->handle_ = new KeelChardev{c.get()};
    chardevs_.push_back(std::move(c));
    return *chardevs_.back();
}

FakeChardev *FakeKernel::chardev(const std::string &id)
{
    for (auto &c : chardevs_)
        if (c->id_ == id) return c.get();
    return nullptr;
}

FakeDrive &FakeKernel::add_drive(const std::string &id, size_t size, bool read_only)
{
    auto d = std::make_unique<FakeDrive>();
    d->id_ = id;
    d->data.assign(size, 0);
    d->read_only = read_only;
    d->handle_ = new KeelDrive{d.get()};
    drives_.push_back(std::move(d));
    return *drives_.back();
}

FakeDrive *FakeKernel::drive(const std::string &id)
{
    for (auto &d : drives_)
        if (d->id_ == id) return d.get();
    return nullptr;
}

void FakeKernel::advance_to(int64_t ns)
{
    for (;;) {
        KeelTimer *next = nullptr;
        for (auto &t : timers_)
            if (t->armed && t->expire <= ns &&
                (!next || t->expire < next->expire || (t->expire == next->expire && t->seq < next->seq)))
                next = t.get();
        if (!next) break;
        now_ = std::max(now_, next->expire);
        next->armed = false;
        KeelTimerCallback cb = next->cb;
        void *opaque = next->opaque;
        cb(opaque); // may re-arm or free the timer
    }
    now_ = std::max(now_, ns);
}

bool FakeKernel::logged(uint32_t category, const std::string &substring) const
{
    for (auto &l : logs_)
        if (l.masked && (l.level_or_cat & category) && l.message.find(substring) != std::string::npos)
            return true;
    return false;
}

} // namespace keel::test
