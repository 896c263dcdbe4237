/* SPDX-License-Identifier: MIT */
/* QEMU's plugin header name: plugins written for QEMU say `#include <qemu-plugin.h>`; keel serves it. */
#include <keel/qemu-plugin.h>
