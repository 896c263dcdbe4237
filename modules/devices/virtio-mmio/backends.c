/* SPDX-License-Identifier: MIT */
/* The device backends the virtio-mmio transport offers, by device ID. */
#include "virtio_mmio.h"

/* None exists yet; virtio-blk (device ID 2) is the first planned. The NULL entry only ends the table. */
const VirtioBackend *const virtio_backends[] = {NULL};
