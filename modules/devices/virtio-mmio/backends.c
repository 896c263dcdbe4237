/* SPDX-License-Identifier: MIT */
/* The device backends the virtio-mmio transport offers, by device ID. */
#include "virtio_mmio.h"

extern const VirtioBackend virtio_blk_backend; /* virtio_blk.c */

/* The NULL entry ends the table. */
const VirtioBackend *const virtio_backends[] = {&virtio_blk_backend, NULL};
