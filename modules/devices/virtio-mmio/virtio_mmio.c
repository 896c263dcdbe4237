/* SPDX-License-Identifier: MIT */
/* virtio-mmio transport, version 2 (virtio 1.2 §4.2.2); device-id 0 is an empty slot like QEMU's virt. */
#include "virtio_mmio.h"

#include <stdlib.h>

/* Register offsets (virtio 1.2 §4.2.2). All control registers are 32 bits wide. */
enum {
    REG_MAGIC_VALUE = 0x000,
    REG_VERSION = 0x004,
    REG_DEVICE_ID = 0x008,
    REG_VENDOR_ID = 0x00c,
    REG_DEVICE_FEATURES = 0x010,
    REG_DEVICE_FEATURES_SEL = 0x014,
    REG_DRIVER_FEATURES = 0x020,
    REG_DRIVER_FEATURES_SEL = 0x024,
    REG_QUEUE_SEL = 0x030,
    REG_QUEUE_NUM_MAX = 0x034,
    REG_QUEUE_NUM = 0x038,
    REG_QUEUE_READY = 0x044,
    REG_QUEUE_NOTIFY = 0x050,
    REG_INTERRUPT_STATUS = 0x060,
    REG_INTERRUPT_ACK = 0x064,
    REG_STATUS = 0x070,
    REG_QUEUE_DESC_LOW = 0x080,
    REG_QUEUE_DESC_HIGH = 0x084,
    REG_QUEUE_DRIVER_LOW = 0x090,
    REG_QUEUE_DRIVER_HIGH = 0x094,
    REG_QUEUE_DEVICE_LOW = 0x0a0,
    REG_QUEUE_DEVICE_HIGH = 0x0a4,
    REG_SHM_SEL = 0x0ac,
    REG_SHM_LEN_LOW = 0x0b0,
    REG_SHM_LEN_HIGH = 0x0b4,
    REG_SHM_BASE_LOW = 0x0b8,
    REG_SHM_BASE_HIGH = 0x0bc,
    REG_QUEUE_RESET = 0x0c0,
    REG_CONFIG_GENERATION = 0x0fc,
    REG_CONFIG = 0x100, /* device-specific configuration space from here to the end of the window */
    VIRTIO_MMIO_SIZE = 0x200,
};

#define VIRTIO_MMIO_MAGIC 0x74726976u  /* "virt" in little-endian */
#define VIRTIO_MMIO_VERSION 2u         /* the non-legacy interface */
#define VIRTIO_MMIO_VENDOR 0x554d4551u /* "QEMU": what QEMU's transports report, so guests see the same */

static const VirtioBackend *find_backend(uint32_t device_id)
{
    for (size_t i = 0; virtio_backends[i]; i++) {
        if (virtio_backends[i]->device_id == device_id) return virtio_backends[i];
    }
    return NULL;
}

static void update_irq(VirtioMmio *s)
{
    keel_services->irq_set(s->irq, s->interrupt_status != 0);
}

void virtio_mmio_notify(VirtioMmio *s, uint32_t int_bits)
{
    if (int_bits & VIRTIO_MMIO_INT_CONFIG) s->config_generation++;
    s->interrupt_status |= int_bits & (VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);
    update_irq(s);
}

static VirtioQueue *selected_queue(VirtioMmio *s)
{
    if (!s->backend || s->queue_sel >= s->backend->num_queues) return NULL;
    return &s->queues[s->queue_sel];
}

static void reset_queue(VirtioQueue *q)
{
    *q = (VirtioQueue){0};
}

/* Device reset (Status written with 0, or the machine's reset): every transport register back to 0. */
static void device_reset(VirtioMmio *s)
{
    s->status = 0;
    s->device_features_sel = 0;
    s->driver_features_sel = 0;
    s->driver_features = 0;
    s->queue_sel = 0;
    s->interrupt_status = 0;
    if (s->backend) {
        for (unsigned i = 0; i < s->backend->num_queues; i++)
            reset_queue(&s->queues[i]);
        if (s->backend->reset) s->backend->reset(s);
    }
    update_irq(s);
}

static void guest_error(VirtioMmio *s, const char *what, uint64_t offset)
{
    keel_services->log_mask(s->dev, KEEL_LOG_GUEST_ERROR, "virtio-mmio: %s at offset 0x%llx", what,
                            (unsigned long long)offset);
}

/* Registers the driver may only read; a write to one is a guest error. */
static bool read_only(uint64_t offset)
{
    switch (offset) {
    case REG_MAGIC_VALUE:
    case REG_VERSION:
    case REG_DEVICE_ID:
    case REG_VENDOR_ID:
    case REG_DEVICE_FEATURES:
    case REG_QUEUE_NUM_MAX:
    case REG_INTERRUPT_STATUS:
    case REG_SHM_LEN_LOW:
    case REG_SHM_LEN_HIGH:
    case REG_SHM_BASE_LOW:
    case REG_SHM_BASE_HIGH:
    case REG_CONFIG_GENERATION:
        return true;
    default:
        return false;
    }
}

/* The control registers of a transport with a backend. Write-only and unknown registers read 0. */
static uint32_t reg_read(VirtioMmio *s, uint64_t offset)
{
    const VirtioBackend *b = s->backend;
    VirtioQueue *q = selected_queue(s);
    switch (offset) {
    case REG_MAGIC_VALUE:
        return VIRTIO_MMIO_MAGIC;
    case REG_VERSION:
        return VIRTIO_MMIO_VERSION;
    case REG_DEVICE_ID:
        return b->device_id;
    case REG_VENDOR_ID:
        return VIRTIO_MMIO_VENDOR;
    case REG_DEVICE_FEATURES:
        /* Only two 32-bit words of feature bits are defined; later selectors read 0. */
        return s->device_features_sel < 2 ? (uint32_t)(s->features >> (32 * s->device_features_sel)) : 0;
    case REG_QUEUE_NUM_MAX:
        return q ? b->queue_num_max : 0; /* 0: the selected queue does not exist */
    case REG_QUEUE_READY:
        return q ? q->ready : 0;
    case REG_INTERRUPT_STATUS:
        return s->interrupt_status;
    case REG_STATUS:
        return s->status;
    case REG_SHM_LEN_LOW:
    case REG_SHM_LEN_HIGH:
        return 0xffffffffu; /* no shared memory regions: every SHMSel names a nonexistent one, length -1 */
    case REG_SHM_BASE_LOW:
    case REG_SHM_BASE_HIGH:
        return 0xffffffffu;
    case REG_QUEUE_RESET:
        return 0; /* a queue reset completes at once */
    case REG_CONFIG_GENERATION:
        return s->config_generation;
    default:
        guest_error(s, "read of a write-only or unknown register", offset);
        return 0;
    }
}

static void set_status(VirtioMmio *s, uint32_t value)
{
    value &= 0xff; /* the device status field is one byte */
    if (value == 0) {
        device_reset(s);
        return;
    }
    if ((value & VIRTIO_STATUS_FEATURES_OK) && !(s->status & VIRTIO_STATUS_FEATURES_OK)) {
        /* Refuse FEATURES_OK (the driver reads it back clear) for features the device did not offer, or
         * without VIRTIO_F_VERSION_1, which this non-legacy transport needs. */
        uint64_t feats = s->driver_features;
        if ((feats & ~s->features) || !(feats & (1ull << VIRTIO_F_VERSION_1)))
            value &= ~(uint32_t)VIRTIO_STATUS_FEATURES_OK;
    }
    s->status = value;
}

/* Set the half of a 64-bit queue address selected by @high. */
static void set_half(uint64_t *field, bool high, uint32_t value)
{
    if (high)
        *field = (*field & 0xffffffffull) | ((uint64_t)value << 32);
    else
        *field = (*field & ~0xffffffffull) | value;
}

static void reg_write(VirtioMmio *s, uint64_t offset, uint32_t value)
{
    const VirtioBackend *b = s->backend;
    VirtioQueue *q = selected_queue(s);
    switch (offset) {
    case REG_DEVICE_FEATURES_SEL:
        s->device_features_sel = value;
        return;
    case REG_DRIVER_FEATURES:
        if (s->status & VIRTIO_STATUS_FEATURES_OK) {
            guest_error(s, "DriverFeatures write after FEATURES_OK", offset);
            return;
        }
        if (s->driver_features_sel < 2) set_half(&s->driver_features, s->driver_features_sel == 1, value);
        return;
    case REG_DRIVER_FEATURES_SEL:
        s->driver_features_sel = value;
        return;
    case REG_QUEUE_SEL:
        s->queue_sel = value; /* any value; a nonexistent queue shows QueueNumMax 0 */
        return;
    case REG_STATUS:
        set_status(s, value);
        return;
    case REG_INTERRUPT_ACK:
        s->interrupt_status &= ~value;
        update_irq(s);
        return;
    case REG_QUEUE_NOTIFY:
        if (value >= b->num_queues || !s->queues[value].ready) {
            guest_error(s, "notify of a nonexistent or not ready queue", offset);
            return;
        }
        if (b->queue_notify) b->queue_notify(s, value);
        return;
    case REG_SHM_SEL:
        return; /* no regions to select */
    default:
        break;
    }

    /* The rest program the selected queue. */
    switch (offset) {
    case REG_QUEUE_NUM:
    case REG_QUEUE_READY:
    case REG_QUEUE_DESC_LOW:
    case REG_QUEUE_DESC_HIGH:
    case REG_QUEUE_DRIVER_LOW:
    case REG_QUEUE_DRIVER_HIGH:
    case REG_QUEUE_DEVICE_LOW:
    case REG_QUEUE_DEVICE_HIGH:
    case REG_QUEUE_RESET:
        if (!q) {
            guest_error(s, "queue register write with a nonexistent queue selected", offset);
            return;
        }
        break;
    default:
        guest_error(s, "write to an unknown register", offset);
        return;
    }
    switch (offset) {
    case REG_QUEUE_NUM:
        if (value == 0 || value > b->queue_num_max || (value & (value - 1))) {
            /* split virtqueues need a power of two no larger than QueueNumMax */
            guest_error(s, "invalid QueueNum", offset);
            return;
        }
        q->num = value;
        return;
    case REG_QUEUE_READY:
        q->ready = value & 1;
        return;
    case REG_QUEUE_DESC_LOW:
    case REG_QUEUE_DESC_HIGH:
        set_half(&q->desc, offset == REG_QUEUE_DESC_HIGH, value);
        return;
    case REG_QUEUE_DRIVER_LOW:
    case REG_QUEUE_DRIVER_HIGH:
        set_half(&q->driver, offset == REG_QUEUE_DRIVER_HIGH, value);
        return;
    case REG_QUEUE_DEVICE_LOW:
    case REG_QUEUE_DEVICE_HIGH:
        set_half(&q->device, offset == REG_QUEUE_DEVICE_HIGH, value);
        return;
    case REG_QUEUE_RESET:
        if (value & 1) {
            reset_queue(q);
            if (b->queue_reset) b->queue_reset(s, s->queue_sel);
        }
        return;
    default:
        return;
    }
}

/*
 * An empty slot answers as QEMU's virt board does for a transport with nothing plugged in: the magic,
 * version and vendor ID (so a probe finds a well-formed transport), device ID 0 (so no driver claims it)
 * and zero everywhere else, at any width.
 */
static uint32_t empty_read(uint64_t offset)
{
    switch (offset) {
    case REG_MAGIC_VALUE:
        return VIRTIO_MMIO_MAGIC;
    case REG_VERSION:
        return VIRTIO_MMIO_VERSION;
    case REG_VENDOR_ID:
        return VIRTIO_MMIO_VENDOR;
    default:
        return 0;
    }
}

static KeelMemResult vmmio_read(void *opaque, uint64_t offset, unsigned width, uint64_t *value)
{
    VirtioMmio *s = opaque;
    *value = 0;
    if (!s->backend) {
        uint64_t mask = width >= 4 ? 0xffffffffull : (1ull << (8 * width)) - 1;
        *value = empty_read(offset) & mask;
        return KEEL_MEM_OK;
    }
    if (offset >= REG_CONFIG) {
        uint64_t off = offset - REG_CONFIG;
        if (off + width > s->backend->config_size || !s->backend->config_read) {
            guest_error(s, "read beyond the configuration space", offset);
            return KEEL_MEM_OK;
        }
        *value = s->backend->config_read(s, (uint32_t)off, width);
        return KEEL_MEM_OK;
    }
    if (width != 4) {
        guest_error(s, "control register read that is not 32 bits wide", offset);
        return KEEL_MEM_OK;
    }
    *value = reg_read(s, offset);
    return KEEL_MEM_OK;
}

static KeelMemResult vmmio_write(void *opaque, uint64_t offset, unsigned width, uint64_t value)
{
    VirtioMmio *s = opaque;
    if (offset < REG_CONFIG && read_only(offset)) {
        guest_error(s, "write to a read-only register", offset);
        return KEEL_MEM_OK;
    }
    if (!s->backend) return KEEL_MEM_OK; /* an empty slot ignores writes */
    if (offset >= REG_CONFIG) {
        uint64_t off = offset - REG_CONFIG;
        if (off + width > s->backend->config_size || !s->backend->config_write) {
            guest_error(s, "write beyond the configuration space", offset);
            return KEEL_MEM_OK;
        }
        s->backend->config_write(s, (uint32_t)off, width, (uint32_t)value);
        return KEEL_MEM_OK;
    }
    if (width != 4) {
        guest_error(s, "control register write that is not 32 bits wide", offset);
        return KEEL_MEM_OK;
    }
    reg_write(s, offset, (uint32_t)value);
    return KEEL_MEM_OK;
}

/* Registers are 32 bits; config space also takes 1- and 2-byte accesses; 8-byte ones are split in two. */
static const KeelMemoryOps vmmio_ops = {
    .size = sizeof(KeelMemoryOps),
    .read = vmmio_read,
    .write = vmmio_write,
    .valid_min = 1,
    .valid_max = 8,
    .impl_min = 1,
    .impl_max = 4,
    .unaligned_ok = false,
    .endianness = KEEL_ENDIAN_LITTLE,
};

static void vmmio_release(VirtioMmio *s)
{
    free(s->queues);
    s->queues = NULL;
    s->backend = NULL;
    s->features = 0;
}

static int vmmio_realize(KeelObject *dev, void *state, KeelError *err)
{
    VirtioMmio *s = state;
    const KeelServices *k = keel_services;
    s->dev = dev;
    if (s->device_id != 0) {
        const VirtioBackend *b = find_backend((uint32_t)s->device_id);
        if (!b) {
            k->error_set(err, "device-id %llu: no virtio device backend exists for it yet",
                         (unsigned long long)s->device_id);
            return KEEL_ERR;
        }
        s->queues = calloc(b->num_queues ? b->num_queues : 1, sizeof(*s->queues));
        if (!s->queues) {
            k->error_set(err, "out of memory for %u virtqueues", b->num_queues);
            return KEEL_ERR;
        }
        if (s->drive && !b->takes_drive) {
            free(s->queues);
            s->queues = NULL;
            k->error_set(err, "drive: a virtio %s device (device-id %u) takes no drive", b->name,
                         b->device_id);
            return KEEL_ERR;
        }
        s->backend = b;
        s->features = b->features;
    } else if (s->drive) {
        /* An empty slot stays empty: a drive needs a block device behind the transport. */
        k->error_set(err, "drive: an empty slot (device-id 0) takes no drive; use device-id 2 (virtio-blk)");
        return KEEL_ERR;
    }
    if (k->device_init_mmio(dev, 0, "virtio-mmio", VIRTIO_MMIO_SIZE, &vmmio_ops, s, err) != KEEL_OK ||
        k->irq_init_outputs(dev, NULL, 1, &s->irq, err) != KEEL_OK) {
        vmmio_release(s);
        return KEEL_ERR;
    }
    if (s->backend && s->backend->realize && s->backend->realize(s, err) != KEEL_OK) {
        vmmio_release(s);
        return KEEL_ERR;
    }
    return KEEL_OK;
}

static void vmmio_reset(KeelObject *dev, void *state, KeelResetType type)
{
    VirtioMmio *s = state;
    (void)dev;
    (void)type;
    s->config_generation = 0;
    device_reset(s);
}

static void vmmio_unrealize(KeelObject *dev, void *state)
{
    VirtioMmio *s = state;
    (void)dev;
    if (s->backend && s->backend->unrealize) s->backend->unrealize(s);
    vmmio_release(s);
}

static const KeelPropertyInfo vmmio_props[] = {
    KEEL_PROP_UINT_RANGE("device-id", VirtioMmio, device_id, "0", 0, UINT32_MAX,
                         "virtio device ID of the backend (0: empty slot, no device)"),
    KEEL_PROP_DRIVE("drive", VirtioMmio, drive, "the -drive a block device (device-id 2, virtio-blk) serves"),
};

static const KeelDeviceOps vmmio_dev_ops = {
    .size = sizeof(KeelDeviceOps),
    .realize = vmmio_realize,
    .reset = vmmio_reset,
    .unrealize = vmmio_unrealize,
};

static const char *const vmmio_compatible[] = {"virtio,mmio", NULL};

/* Slots are 0x1000 apart on QEMU's virt, which the tree describes instead of the 0x200 of registers. */
static const KeelFdtInfo vmmio_fdt = {
    .size = sizeof(KeelFdtInfo),
    .node_name = "virtio_mmio",
    .compatible = vmmio_compatible,
    .reg_size = 0x1000,
};

static const KeelDeviceTypeInfo vmmio_type = {
    .size = sizeof(KeelDeviceTypeInfo),
    .name = "virtio-mmio",
    .description = "virtio-mmio transport, version 2 (virtio,mmio); device-id 0 is an empty slot",
    .instance_size = sizeof(VirtioMmio),
    .properties = vmmio_props,
    .n_properties = KEEL_ARRAY_SIZE(vmmio_props),
    .ops = &vmmio_dev_ops,
    .fdt = &vmmio_fdt,
};

static int vmmio_module_init(KeelRegistrar *reg, KeelError *err)
{
    return reg->register_device(reg, &vmmio_type, err);
}

KEEL_MODULE("virtio-mmio", KEEL_MODULE_DEVICE, "1.0.0", "virtio-mmio transport", "MIT", vmmio_module_init)
