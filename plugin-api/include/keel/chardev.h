/* SPDX-License-Identifier: MIT */
/* Character devices: the front-end side a UART or console device uses. */
#ifndef KEEL_CHARDEV_H
#define KEEL_CHARDEV_H

#include <keel/common.h>

KEEL_EXTERN_C_BEGIN

/**
 * KeelChardev: a character backend (stdio, file, socket, null) named in the
 * manifest or on the command line and handed to a device through a
 * KEEL_PROP_CHARDEV property.
 * Since: ABI 1.0
 */
typedef struct KeelChardev KeelChardev;

/** Events a backend reports to its front end. Since: ABI 1.0 */
typedef enum KeelChardevEvent {
    KEEL_CHARDEV_OPENED = 0, /* a client connected (sockets) */
    KEEL_CHARDEV_CLOSED = 1, /* the client went away */
    KEEL_CHARDEV_BREAK = 2,  /* a break condition was received */
} KeelChardevEvent;

/**
 * KeelChardevHandlers: how a backend delivers input to its front end.
 * All callbacks run with the big lock held.
 *
 * @size: sizeof(KeelChardevHandlers) as the module was compiled.
 * @can_receive: how many bytes the front end can take now (0 = none).
 * @receive: deliver @len bytes (never more than can_receive said).
 * @event: a backend event; may be NULL.
 * Since: ABI 1.0
 */
typedef struct KeelChardevHandlers {
    size_t size;
    size_t (*can_receive)(void *opaque);
    void (*receive)(void *opaque, const uint8_t *buf, size_t len);
    void (*event)(void *opaque, KeelChardevEvent event);
    void *reserved[4];
} KeelChardevHandlers;

KEEL_EXTERN_C_END

#endif /* KEEL_CHARDEV_H */
