// SPDX-License-Identifier: MIT
// The KeelServices table: the kernel's side of the module ABI.
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include <keel/services.h>

#include "block.h"
#include "control.h"
#include "devicetree.h"
#include "error.h"
#include "kernel.h"
#include "loader.h"
#include "log.h"
#include "plugins/plugins.h"
#include "util.h"

namespace keel
{

namespace
{

bool set_err(KeelError *err, const std::string &msg)
{
    if (err) {
        err->is_set = true;
        err->message = msg;
    }
    return false;
}

void svc_error_set(KeelError *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    std::string msg = vstrprintf(fmt, ap);
    va_end(ap);
    set_err(err, msg);
}

std::string prefix(KeelObject *obj)
{
    return obj ? obj->path + ": " : std::string();
}

void svc_log(KeelObject *obj, KeelLogLevel level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    std::string msg = vstrprintf(fmt, ap);
    va_end(ap);
    static const char *names[] = {"error", "warning", "info", "debug"};
    if (level > KEEL_LOG_WARNING && !log_enabled(KEEL_LOG_GUEST_ERROR | KEEL_LOG_UNIMP)) return;
    std::fprintf(stderr, "keel: %s%s: %s\n", prefix(obj).c_str(), names[level <= 3 ? level : 3], msg.c_str());
}

void svc_log_mask(KeelObject *obj, uint32_t category, const char *fmt, ...)
{
    if (!log_enabled(category)) return;
    va_list ap;
    va_start(ap, fmt);
    std::string msg = vstrprintf(fmt, ap);
    va_end(ap);
    log_write(prefix(obj) + msg);
}

bool svc_log_enabled(uint32_t category)
{
    return log_enabled(category);
}

const char *svc_object_name(KeelObject *obj)
{
    return obj ? obj->name.c_str() : "";
}
const char *svc_object_path(KeelObject *obj)
{
    return obj ? obj->path.c_str() : "";
}
const char *svc_object_type(KeelObject *obj)
{
    return obj && obj->type ? obj->type->name.c_str() : "";
}
void *svc_object_state(KeelObject *obj)
{
    return obj ? obj->state : nullptr;
}

constexpr unsigned kMaxWindows = 16;

int add_window(KeelObject *dev, unsigned index, const char *name, KeelError *err,
               const std::function<std::unique_ptr<MemoryRegion>(const std::string &)> &make)
{
    if (!dev) return set_err(err, "device_init_*: no device"), KEEL_ERR;
    if (dev->realized) return set_err(err, "register windows must be created in realize"), KEEL_ERR;
    if (index >= kMaxWindows) return set_err(err, strprintf("window index %u is too large", index)), KEEL_ERR;
    if (dev->windows.size() <= index) dev->windows.resize(index + 1);
    if (dev->windows[index].region)
        return set_err(err, strprintf("window %u created twice", index)), KEEL_ERR;
    std::string rname = dev->name + (name && *name ? "." + std::string(name) : "");
    try {
        auto r = make(rname);
        r->set_owner(dev->path);
        dev->windows[index].region = std::move(r);
    } catch (const Error &e) {
        return set_err(err, e.what()), KEEL_ERR;
    }
    return KEEL_OK;
}

int svc_device_init_mmio(KeelObject *dev, unsigned index, const char *name, uint64_t size,
                         const KeelMemoryOps *ops, void *opaque, KeelError *err)
{
    return add_window(dev, index, name, err,
                      [&](const std::string &n) { return MemoryRegion::mmio(n, size, ops, opaque); });
}

int svc_device_init_ram(KeelObject *dev, unsigned index, const char *name, uint64_t size, bool readonly,
                        void **host, KeelError *err)
{
    int rc = add_window(dev, index, name, err, [&](const std::string &n) {
        return readonly ? MemoryRegion::rom(n, size) : MemoryRegion::ram(n, size);
    });
    if (rc == KEEL_OK && host) *host = dev->windows[index].region->host();
    return rc;
}

int svc_device_get_reg(KeelObject *dev, unsigned index, uint64_t *base, uint64_t *size)
{
    if (!dev || index >= dev->windows.size() || !dev->windows[index].mapped) return KEEL_ERR;
    if (base) *base = dev->windows[index].base;
    if (size) *size = dev->windows[index].region->size();
    return KEEL_OK;
}

KeelMemResult svc_dma_read(KeelObject *dev, uint64_t addr, void *buf, uint64_t len)
{
    if (!dev || !dev->machine) return KEEL_MEM_DECODE_ERROR;
    return dev->machine->system_memory().read_buf(addr, buf, len);
}

KeelMemResult svc_dma_write(KeelObject *dev, uint64_t addr, const void *buf, uint64_t len)
{
    if (!dev || !dev->machine) return KEEL_MEM_DECODE_ERROR;
    return dev->machine->system_memory().write_buf(addr, buf, len);
}

std::string group_name(const char *name)
{
    return name ? name : "";
}

int svc_irq_init_inputs(KeelObject *dev, const char *name, unsigned count, KeelIrqHandler handler,
                        void *opaque, KeelError *err)
{
    std::string g = group_name(name);
    if (!dev || !handler || count == 0)
        return set_err(err, "irq_init_inputs: needs a handler and count > 0"), KEEL_ERR;
    if (dev->find_inputs(g))
        return set_err(err, "interrupt input group '" + g + "' declared twice"), KEEL_ERR;
    auto grp = std::make_unique<IrqInputGroup>();
    grp->owner = dev;
    grp->name = g;
    grp->count = count;
    grp->handler = handler;
    grp->opaque = opaque;
    grp->driven_by.assign(count, nullptr);
    dev->inputs.push_back(std::move(grp));
    return KEEL_OK;
}

int svc_irq_init_outputs(KeelObject *dev, const char *name, unsigned count, KeelIrqLine **lines,
                         KeelError *err)
{
    std::string g = group_name(name);
    if (!dev || !lines || count == 0)
        return set_err(err, "irq_init_outputs: needs lines and count > 0"), KEEL_ERR;
    if (dev->find_outputs(g))
        return set_err(err, "interrupt output group '" + g + "' declared twice"), KEEL_ERR;
    IrqOutputGroup grp;
    grp.name = g;
    for (unsigned i = 0; i < count; ++i) {
        auto l = std::make_unique<KeelIrqLine>();
        l->owner = dev;
        l->group = g;
        l->index = i;
        lines[i] = l.get();
        grp.lines.push_back(std::move(l));
    }
    dev->outputs.push_back(std::move(grp));
    return KEEL_OK;
}

void svc_irq_set(KeelIrqLine *line, int level)
{
    if (!line) return;
    line->level = level != 0;
    if (line->target) line->target->handler(line->target->opaque, line->target_index, line->level);
}

size_t svc_chardev_write(KeelChardev *chr, const uint8_t *buf, size_t len)
{
    return chr ? chr->write(buf, len) : len;
}

void svc_chardev_set_handlers(KeelChardev *chr, const KeelChardevHandlers *h, void *opaque)
{
    if (chr) chr->set_handlers(h, opaque);
}

void svc_chardev_accept_input(KeelChardev *chr)
{
    if (chr) chr->accept_input();
}

int64_t svc_clock_get_ns(KeelClockType clock)
{
    return kernel().timers().now(clock);
}

// Which object owns each timer, so a timer a device forgot to free is freed
// with the object (and never fires into freed state).
std::unordered_map<KeelTimer *, KeelObject *> g_timer_owner;

KeelTimer *svc_timer_new(KeelObject *owner, KeelClockType clock, KeelTimerCallback cb, void *opaque)
{
    KeelTimer *t = kernel().timers().create(clock, cb, opaque, owner ? owner->path : std::string());
    if (owner) {
        owner->timers.push_back(t);
        g_timer_owner[t] = owner;
    }
    return t;
}

void svc_timer_mod(KeelTimer *t, int64_t expire_ns)
{
    if (t) kernel().timers().mod(t, expire_ns);
}

void svc_timer_del(KeelTimer *t)
{
    if (t) kernel().timers().del(t);
}

void svc_timer_free(KeelTimer *t)
{
    if (!t) return;
    if (auto it = g_timer_owner.find(t); it != g_timer_owner.end()) {
        std::erase(it->second->timers, t);
        g_timer_owner.erase(it);
    }
    kernel().timers().free(t);
}

void svc_system_request(KeelSystemRequest req, int status)
{
    kernel().request(req, status);
}

// ---- -icount (ABI 1.2) ----

int svc_icount_shift()
{
    return kernel().vclock().icount_shift();
}

void svc_icount_attach(const KeelIcountHooks *hooks)
{
    VirtualClock::icount_attach(hooks && hooks->size >= sizeof(KeelIcountHooks) ? hooks : nullptr);
}

void svc_icount_retire(int64_t n)
{
    if (n > 0) kernel().vclock().icount_retire(n);
}

int64_t svc_icount_budget()
{
    return kernel().timers().icount_budget();
}

void svc_icount_run_timers()
{
    kernel().timers().run_expired_virtual();
}

int64_t svc_icount_idle_ns()
{
    return kernel().timers().icount_idle_ns();
}

void svc_icount_warp(int64_t ns)
{
    kernel().timers().icount_warp(ns);
}

bool svc_plugins_active()
{
    return plugins::active();
}

void svc_plugins_instrument(unsigned cpu_index, KeelIrBuilder *b, const KeelIrBuilderOps *ops)
{
    plugins::instrument(cpu_index, b, ops);
}

void svc_plugins_vcpu_event(KeelObject *obj, void *env, const KeelCpuOps *ops, unsigned cpu_index,
                            KeelPluginVcpuEvent event)
{
    switch (event) {
    case KEEL_PLUGIN_VCPU_INIT:
        plugins::vcpu_init(KeelCpuHandle{obj, env, ops}, cpu_index);
        break;
    case KEEL_PLUGIN_VCPU_EXIT:
        plugins::vcpu_exit(cpu_index);
        break;
    case KEEL_PLUGIN_VCPU_IDLE:
        plugins::vcpu_idle(cpu_index);
        break;
    case KEEL_PLUGIN_VCPU_RESUME:
        plugins::vcpu_resume(cpu_index);
        break;
    }
}

void svc_plugins_discon(unsigned cpu_index, unsigned type, uint64_t from_pc, uint64_t to_pc)
{
    plugins::discon(cpu_index, static_cast<int>(type), from_pc, to_pc);
}

void svc_plugins_attach(const KeelPluginHooks *hooks)
{
    plugins::attach(hooks);
}

void svc_plugins_vcpu_run(unsigned cpu_index)
{
    plugins::vcpu_run(cpu_index);
}

void svc_plugins_flushed()
{
    plugins::flushed();
}

bool svc_plugins_redirect(unsigned cpu_index, uint64_t *pc)
{
    return plugins::redirect(cpu_index, pc);
}

void svc_debug_stopped(const KeelStopInfo *info)
{
    if (info) control().on_debug_stopped(*info);
}

void svc_cpu_kick(KeelObject *cpu)
{
    if (cpu) kernel().kick_cpu(cpu);
}

uint8_t *svc_cpu_ram_ptr(KeelObject *cpu, uint64_t paddr, uint64_t *avail, bool for_write)
{
    if (!cpu || !cpu->machine) return nullptr;
    return cpu->machine->system_memory().ram_ptr(paddr, avail, for_write);
}

// MMIO runs device callbacks: under the big lock, like every other device entry.
KeelMemResult svc_cpu_mem_read(KeelObject *cpu, uint64_t paddr, unsigned width, uint64_t *value)
{
    if (!cpu || !cpu->machine || !value) return KEEL_MEM_DECODE_ERROR;
    std::lock_guard<std::recursive_mutex> g(big_lock());
    return cpu->machine->system_memory().read(paddr, width, *value);
}

KeelMemResult svc_cpu_mem_write(KeelObject *cpu, uint64_t paddr, unsigned width, uint64_t value)
{
    if (!cpu || !cpu->machine) return KEEL_MEM_DECODE_ERROR;
    std::lock_guard<std::recursive_mutex> g(big_lock());
    return cpu->machine->system_memory().write(paddr, width, value);
}

unsigned svc_machine_cpu_count(KeelObject *obj)
{
    return obj && obj->machine ? static_cast<unsigned>(obj->machine->cpus().size()) : 0;
}

// ---- device tree writer ----

int svc_fdt_prop_cells(KeelFdt *w, const char *name, const uint32_t *cells, size_t n);

int svc_fdt_prop_u32(KeelFdt *w, const char *name, uint32_t v)
{
    return svc_fdt_prop_cells(w, name, &v, 1);
}

int svc_fdt_prop_u64(KeelFdt *w, const char *name, uint64_t v)
{
    uint32_t cells[2] = {static_cast<uint32_t>(v >> 32), static_cast<uint32_t>(v)};
    return svc_fdt_prop_cells(w, name, cells, 2);
}

int svc_fdt_prop_cells(KeelFdt *w, const char *name, const uint32_t *cells, size_t n)
{
    if (n && !cells) return KEEL_ERR;
    std::vector<uint8_t> be(n * 4);
    for (size_t i = 0; i < n; ++i)
        for (int b = 0; b < 4; ++b)
            be[i * 4 + b] = static_cast<uint8_t>(cells[i] >> (24 - 8 * b));
    return fdt_write(w, name, be.data(), be.size());
}

int svc_fdt_prop_string(KeelFdt *w, const char *name, const char *value)
{
    if (!value) return KEEL_ERR;
    return fdt_write(w, name, value, std::strlen(value) + 1);
}

int svc_fdt_prop_strings(KeelFdt *w, const char *name, const char *const *values)
{
    if (!values) return KEEL_ERR;
    std::string data;
    for (; *values; ++values) {
        data += *values;
        data += '\0';
    }
    return fdt_write(w, name, data.data(), data.size());
}

// ---- board modules ----

Machine *machine_of(KeelMachine *m)
{
    return m ? m->machine : nullptr;
}

int svc_machine_ram(KeelMachine *km, unsigned index, uint64_t *base, uint64_t *size)
{
    Machine *m = machine_of(km);
    if (!m) return KEEL_ERR;
    unsigned i = 0;
    for (const auto &mem : m->spec().memory) {
        if (mem.kind != "ram") continue;
        if (i++ != index) continue;
        if (base) *base = mem.base;
        if (size) *size = mem.size;
        return KEEL_OK;
    }
    return KEEL_ERR;
}

int svc_machine_add_rom(KeelMachine *km, const char *name, uint64_t base, uint64_t size, void **host,
                        KeelError *err)
{
    Machine *m = machine_of(km);
    if (!m || !name || !host)
        return set_err(err, "machine_add_rom: needs a machine, a name and host"), KEEL_ERR;
    try {
        *host = m->add_rom(name, base, size);
    } catch (const Error &e) {
        return set_err(err, e.what()), KEEL_ERR;
    }
    return KEEL_OK;
}

int svc_machine_write(KeelMachine *km, uint64_t addr, const void *buf, size_t len, KeelError *err)
{
    Machine *m = machine_of(km);
    if (!m || (len && !buf)) return set_err(err, "machine_write: needs a machine and a buffer"), KEEL_ERR;
    if (m->system_memory().write_rom(addr, buf, len) != KEEL_MEM_OK)
        return set_err(err, strprintf("cannot write %zu bytes at %s: not RAM or ROM of machine '%s'", len,
                                      format_hex(addr).c_str(), m->spec().name.c_str())),
               KEEL_ERR;
    return KEEL_OK;
}

} // namespace
} // namespace keel

// The C ABI's opaque image.
struct KeelImage {
    keel::GuestImage image;
};

namespace keel
{
namespace
{

KeelImage *svc_image_read(KeelMachine *km, const char *path, uint64_t raw_base, KeelImageInfo *info,
                          KeelError *err)
{
    if (!machine_of(km) || !path) return set_err(err, "image_read: needs a machine and a path"), nullptr;
    try {
        auto img = std::make_unique<KeelImage>();
        img->image = read_guest_image(path, raw_base);
        if (info) {
            info->elf = img->image.elf;
            info->low = img->image.low();
            info->high = img->image.high();
            info->entry = img->image.entry;
        }
        return img.release();
    } catch (const Error &e) {
        set_err(err, e.what());
        return nullptr;
    }
}

int svc_image_write(KeelMachine *km, KeelImage *img, KeelError *err)
{
    Machine *m = machine_of(km);
    if (!m || !img) return set_err(err, "image_write: needs a machine and an image"), KEEL_ERR;
    try {
        load_guest_image(img->image, m->system_memory(), m->spec().name, Machine::kOverlayPriority);
    } catch (const Error &e) {
        return set_err(err, e.what()), KEEL_ERR;
    }
    return KEEL_OK;
}

void svc_image_free(KeelImage *img)
{
    delete img;
}

int svc_fdt_build(KeelMachine *km, const KeelFdtChosen *chosen, const void **blob, size_t *size,
                  KeelError *err)
{
    Machine *m = machine_of(km);
    if (!m || !blob || !size) return set_err(err, "fdt_build: needs a machine, blob and size"), KEEL_ERR;
    FdtChosen c;
    if (chosen) {
        if (chosen->bootargs) c.bootargs = chosen->bootargs;
        c.initrd_start = chosen->initrd_start;
        c.initrd_end = chosen->initrd_end;
    }
    try {
        m->fdt_blob() = m->dtb_file().empty() ? generate_fdt(*m, c) : load_fdt_file(m->dtb_file(), c);
    } catch (const Error &e) {
        set_err(err, e.what());
        if (err) err->located = e.located();
        return KEEL_ERR;
    }
    *blob = m->fdt_blob().data();
    *size = m->fdt_blob().size();
    return KEEL_OK;
}

const KeelServices kServices = {
    sizeof(KeelServices),
    KEEL_ABI_MAJOR,
    KEEL_ABI_MINOR,
    svc_error_set,
    svc_log,
    svc_log_mask,
    svc_log_enabled,
    svc_object_name,
    svc_object_path,
    svc_object_type,
    svc_object_state,
    svc_device_init_mmio,
    svc_device_init_ram,
    svc_device_get_reg,
    svc_dma_read,
    svc_dma_write,
    svc_irq_init_inputs,
    svc_irq_init_outputs,
    svc_irq_set,
    svc_chardev_write,
    svc_chardev_set_handlers,
    svc_chardev_accept_input,
    svc_clock_get_ns,
    svc_timer_new,
    svc_timer_mod,
    svc_timer_del,
    svc_timer_free,
    svc_system_request,
    svc_cpu_kick,
    svc_cpu_ram_ptr,
    svc_cpu_mem_read,
    svc_cpu_mem_write,
    svc_machine_cpu_count,
    fdt_write,
    svc_fdt_prop_u32,
    svc_fdt_prop_u64,
    svc_fdt_prop_cells,
    svc_fdt_prop_string,
    svc_fdt_prop_strings,
    fdt_begin,
    fdt_end,
    fdt_phandle_of,
    fdt_interrupt_node,
    svc_machine_ram,
    svc_machine_add_rom,
    svc_machine_write,
    svc_image_read,
    svc_image_write,
    svc_image_free,
    svc_fdt_build,
    block_file_pread,
    block_file_pwrite,
    block_file_flush,
    block_file_length,
    block_file_truncate,
    block_file_discard,
    block_file_name,
    block_file_status,
    block_node_preadv,
    block_node_length,
    drive_preadv,
    drive_pwritev,
    drive_flush,
    drive_discard,
    drive_write_zeroes,
    drive_length,
    drive_read_only,
    drive_id,
    svc_icount_shift,
    svc_icount_attach,
    svc_icount_retire,
    svc_icount_budget,
    svc_icount_run_timers,
    svc_icount_idle_ns,
    svc_icount_warp,
    svc_plugins_active,
    svc_plugins_instrument,
    svc_plugins_vcpu_event,
    svc_plugins_discon,
    svc_plugins_attach,
    svc_plugins_vcpu_run,
    svc_plugins_flushed,
    svc_plugins_redirect,
    svc_debug_stopped,
};

} // namespace

const KeelServices *kernel_services()
{
    return &kServices;
}

void forget_timers_of(KeelObject *obj)
{
    for (KeelTimer *t : obj->timers) {
        g_timer_owner.erase(t);
        kernel().timers().free(t);
    }
    obj->timers.clear();
}

} // namespace keel
