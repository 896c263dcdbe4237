/* SPDX-License-Identifier: MIT */
/* The virtio-mmio transport's interface to the device backends compiled into the same module. */
#ifndef KEEL_VIRTIO_MMIO_H
#define KEEL_VIRTIO_MMIO_H

#include <keel/module.h>
#include <keel/services.h>

/* Device status bits (virtio 1.2 §2.1). */
enum {
    VIRTIO_STATUS_ACKNOWLEDGE = 1,
    VIRTIO_STATUS_DRIVER = 2,
    VIRTIO_STATUS_DRIVER_OK = 4,
    VIRTIO_STATUS_FEATURES_OK = 8,
    VIRTIO_STATUS_NEEDS_RESET = 64,
    VIRTIO_STATUS_FAILED = 128,
};

/* InterruptStatus bits (virtio 1.2 §4.2.2). */
enum {
    VIRTIO_MMIO_INT_VRING = 1,  /* used buffer notification */
    VIRTIO_MMIO_INT_CONFIG = 2, /* configuration change notification */
};

#define VIRTIO_F_VERSION_1 32 /* feature bit every non-legacy device offers */
#define VIRTIO_MMIO_MAX_QUEUES 1024

/* What the driver programmed for one virtqueue. Addresses are guest-physical. */
typedef struct VirtioQueue {
    uint32_t num; /* queue size chosen by the driver, <= the backend's queue_num_max */
    bool ready;
    uint64_t desc, driver, device;
} VirtioQueue;

typedef struct VirtioMmio VirtioMmio;

/*
 * A device type behind the transport, chosen by the `device-id` property. The transport owns the
 * register file, feature negotiation, queue registers, status and interrupt; the backend supplies its
 * features, queue geometry and config space, and processes notified queues.
 * @config_read/@config_write: access of @width (1, 2 or 4) bytes at @offset < @config_size of the
 *   device-specific configuration space.
 * @queue_notify: the driver wrote @queue to QueueNotify (the queue exists and is ready).
 * @queue_reset: optional; the driver reset @queue through QueueReset (the transport cleared its registers).
 * @reset: the device is reset (Status written with 0, or a machine reset); the transport has already
 *   cleared its own state.
 * @realize/@unrealize: optional, for the backend's own resources (opaque state in @s->backend_state).
 *   realize may add per-instance feature bits to @s->features (which starts as @features).
 * @takes_drive: the backend serves the `drive` property; the transport refuses a drive for the others.
 */
typedef struct VirtioBackend {
    uint32_t device_id;
    const char *name;
    uint64_t features;
    unsigned num_queues;
    uint32_t queue_num_max;
    uint32_t config_size;
    int (*realize)(VirtioMmio *s, KeelError *err);
    void (*unrealize)(VirtioMmio *s);
    uint32_t (*config_read)(VirtioMmio *s, uint32_t offset, unsigned width);
    void (*config_write)(VirtioMmio *s, uint32_t offset, unsigned width, uint32_t value);
    void (*queue_notify)(VirtioMmio *s, unsigned queue);
    void (*reset)(VirtioMmio *s);
    void (*queue_reset)(VirtioMmio *s, unsigned queue);
    bool takes_drive;
} VirtioBackend;

struct VirtioMmio {
    KeelObject *dev;
    KeelIrqLine *irq;
    /* properties */
    uint64_t device_id;
    KeelDrive *drive; /* NULL: none; only backends with takes_drive accept one */
    /* the backend, NULL for an empty slot (device-id 0) */
    const VirtioBackend *backend;
    void *backend_state;
    uint64_t features;   /* what this instance offers: the backend's features plus what its realize added */
    VirtioQueue *queues; /* backend->num_queues entries */
    /* transport registers */
    uint32_t status;
    uint32_t device_features_sel;
    uint32_t driver_features_sel;
    uint64_t driver_features;
    uint32_t queue_sel;
    uint32_t interrupt_status;
    uint32_t config_generation;
};

/* Backends by device ID, terminated by NULL (backends.c). */
extern const VirtioBackend *const virtio_backends[];

/* For backends: signal a used buffer (VIRTIO_MMIO_INT_VRING) or a config change (which also bumps
 * ConfigGeneration). */
void virtio_mmio_notify(VirtioMmio *s, uint32_t int_bits);

#endif /* KEEL_VIRTIO_MMIO_H */
