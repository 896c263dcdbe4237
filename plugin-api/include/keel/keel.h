/* SPDX-License-Identifier: MIT */
/* Umbrella header: everything a module needs. */
#ifndef KEEL_KEEL_H
#define KEEL_KEEL_H

#include <keel/accel.h>
#include <keel/block.h>
#include <keel/chardev.h>
#include <keel/clock.h>
#include <keel/common.h>
#include <keel/cpu.h>
#include <keel/device.h>
#include <keel/fdt.h>
#include <keel/ir.h>
#include <keel/irq.h>
#include <keel/log.h>
#include <keel/machine.h>
#include <keel/memory.h>
#include <keel/module.h>
#include <keel/services.h>

#endif /* KEEL_KEEL_H */
