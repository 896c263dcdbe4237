/* SPDX-License-Identifier: MIT */
/* A test-only virtio backend (device ID 0x7e57) so the transport's register file can be tested now. */
#include "virtio_mmio.h"

/* Two queues of up to 64 entries, 8 bytes of config; features: VERSION_1 and bit 0. */
typedef struct TestBackendLog {
    unsigned notifies[2];
    unsigned resets;
    uint8_t config[8];
} TestBackendLog;

/* One instance at a time in a test; the test reads it through the config space. */
static TestBackendLog test_log;

static int tb_realize(VirtioMmio *s, KeelError *err)
{
    (void)err;
    s->backend_state = &test_log;
    test_log = (TestBackendLog){{0, 0}, 0, {0}};
    return KEEL_OK;
}

/* config[0..1] mirror the notify counts of queues 0 and 1, config[2] the reset count; config[4..7] are
 * writable and a write to them is a configuration change. */
static uint32_t tb_config_read(VirtioMmio *s, uint32_t offset, unsigned width)
{
    TestBackendLog *l = s->backend_state;
    l->config[0] = (uint8_t)l->notifies[0];
    l->config[1] = (uint8_t)l->notifies[1];
    l->config[2] = (uint8_t)l->resets;
    uint32_t v = 0;
    for (unsigned i = 0; i < width; i++)
        v |= (uint32_t)l->config[offset + i] << (8 * i);
    return v;
}

static void tb_config_write(VirtioMmio *s, uint32_t offset, unsigned width, uint32_t value)
{
    TestBackendLog *l = s->backend_state;
    if (offset < 4) return;
    for (unsigned i = 0; i < width; i++)
        l->config[offset + i] = (uint8_t)(value >> (8 * i));
    virtio_mmio_notify(s, VIRTIO_MMIO_INT_CONFIG);
}

static void tb_queue_notify(VirtioMmio *s, unsigned queue)
{
    TestBackendLog *l = s->backend_state;
    l->notifies[queue]++;
    virtio_mmio_notify(s, VIRTIO_MMIO_INT_VRING);
}

static void tb_reset(VirtioMmio *s)
{
    TestBackendLog *l = s->backend_state;
    l->resets++;
}

static const VirtioBackend test_backend = {
    .device_id = 0x7e57,
    .name = "test",
    .features = (1ull << VIRTIO_F_VERSION_1) | 1,
    .num_queues = 2,
    .queue_num_max = 64,
    .config_size = 8,
    .realize = tb_realize,
    .config_read = tb_config_read,
    .config_write = tb_config_write,
    .queue_notify = tb_queue_notify,
    .reset = tb_reset,
};

const VirtioBackend *const virtio_backends[] = {&test_backend, NULL};
