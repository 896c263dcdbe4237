/* SPDX-License-Identifier: MIT */
/* goldfish-rtc (google,goldfish-rtc): a 64-bit nanosecond wall clock with one alarm and one interrupt. */
#include <keel/module.h>

/* Register offsets of the Android goldfish RTC, all 32 bits wide. */
enum {
    RTC_TIME_LOW = 0x00,  /* reading it latches TIME_HIGH */
    RTC_TIME_HIGH = 0x04, /* the latched high half */
    RTC_ALARM_LOW = 0x08, /* writing it arms the alarm with ALARM_HIGH as the high half */
    RTC_ALARM_HIGH = 0x0c,
    RTC_IRQ_ENABLED = 0x10,     /* bit 0 */
    RTC_CLEAR_ALARM = 0x14,     /* write-only: disarm */
    RTC_ALARM_STATUS = 0x18,    /* read-only: 1 while armed */
    RTC_CLEAR_INTERRUPT = 0x1c, /* write-only: drop the pending interrupt */
    RTC_SIZE = 0x1000,
};

typedef struct GoldfishRtc {
    KeelObject *dev;
    KeelIrqLine *irq;
    KeelTimer *timer; /* on the host clock, armed while the alarm runs */
    /* time = host wall clock + tick_offset (mod 2^64): a guest write to TIME only moves the offset, and the
     * offset survives reset like a battery-backed clock would. */
    uint64_t tick_offset;
    uint64_t alarm_next; /* alarm time in the guest's time base */
    uint32_t time_high;  /* latched by reading TIME_LOW */
    bool alarm_running;
    bool irq_pending;
    bool irq_enabled;
} GoldfishRtc;

static uint64_t host_ns(void)
{
    int64_t ns = keel_services->clock_get_ns(KEEL_CLOCK_HOST);
    return ns < 0 ? 0 : (uint64_t)ns;
}

static uint64_t rtc_now(const GoldfishRtc *s)
{
    return host_ns() + s->tick_offset;
}

/* The line is the pending flag gated by the enable bit. */
static void rtc_update_irq(GoldfishRtc *s)
{
    keel_services->irq_set(s->irq, s->irq_pending && s->irq_enabled);
}

static void rtc_clear_alarm(GoldfishRtc *s)
{
    keel_services->timer_del(s->timer);
    s->alarm_running = false;
}

static void rtc_alarm_fired(void *opaque)
{
    GoldfishRtc *s = opaque;
    s->alarm_running = false;
    s->irq_pending = true;
    rtc_update_irq(s);
}

/* Arm for alarm_next; a time already reached fires at once instead of waiting. */
static void rtc_set_alarm(GoldfishRtc *s)
{
    uint64_t now = rtc_now(s);
    if (s->alarm_next <= now) {
        rtc_clear_alarm(s);
        rtc_alarm_fired(s);
        return;
    }
    /* Host time at which the guest clock reads alarm_next; past INT64_MAX it can never be reached. */
    uint64_t deadline = s->alarm_next - s->tick_offset;
    s->alarm_running = true;
    if (deadline > (uint64_t)INT64_MAX || deadline <= host_ns())
        keel_services->timer_del(s->timer); /* the sum wrapped: unreachable in this clock's lifetime */
    else
        keel_services->timer_mod(s->timer, (int64_t)deadline);
}

static void bad_access(GoldfishRtc *s, const char *what, uint64_t offset)
{
    keel_services->log_mask(s->dev, KEEL_LOG_GUEST_ERROR, "goldfish-rtc: %s of offset 0x%llx", what,
                            (unsigned long long)offset);
}

static KeelMemResult rtc_read(void *opaque, uint64_t offset, unsigned width, uint64_t *value)
{
    GoldfishRtc *s = opaque;
    (void)width;
    *value = 0;
    switch (offset) {
    case RTC_TIME_LOW: {
        /* One snapshot: the driver reads LOW then HIGH and gets a consistent 64-bit time. */
        uint64_t t = rtc_now(s);
        s->time_high = (uint32_t)(t >> 32);
        *value = (uint32_t)t;
        break;
    }
    case RTC_TIME_HIGH:
        *value = s->time_high;
        break;
    case RTC_ALARM_LOW:
        *value = (uint32_t)s->alarm_next;
        break;
    case RTC_ALARM_HIGH:
        *value = (uint32_t)(s->alarm_next >> 32);
        break;
    case RTC_IRQ_ENABLED:
        *value = s->irq_enabled;
        break;
    case RTC_ALARM_STATUS:
        *value = s->alarm_running;
        break;
    default:
        bad_access(s, "read", offset);
        break;
    }
    return KEEL_MEM_OK;
}

/* Replace 32 bits of the current time at @shift by moving the offset. */
static void rtc_set_time_half(GoldfishRtc *s, unsigned shift, uint32_t value)
{
    uint64_t now = rtc_now(s);
    uint64_t mask = 0xffffffffull << shift;
    uint64_t t = (now & ~mask) | ((uint64_t)value << shift);
    s->tick_offset += t - now;
}

static KeelMemResult rtc_write(void *opaque, uint64_t offset, unsigned width, uint64_t value)
{
    GoldfishRtc *s = opaque;
    uint32_t v = (uint32_t)value;
    (void)width;
    switch (offset) {
    case RTC_TIME_LOW:
        rtc_set_time_half(s, 0, v);
        break;
    case RTC_TIME_HIGH:
        rtc_set_time_half(s, 32, v);
        break;
    case RTC_ALARM_LOW:
        s->alarm_next = (s->alarm_next & ~0xffffffffull) | v;
        rtc_set_alarm(s);
        break;
    case RTC_ALARM_HIGH:
        /* Only staged: Linux writes HIGH first, then LOW arms the whole value. */
        s->alarm_next = (s->alarm_next & 0xffffffffull) | ((uint64_t)v << 32);
        break;
    case RTC_IRQ_ENABLED:
        s->irq_enabled = v & 1;
        rtc_update_irq(s);
        break;
    case RTC_CLEAR_ALARM:
        rtc_clear_alarm(s);
        break;
    case RTC_CLEAR_INTERRUPT:
        s->irq_pending = false;
        rtc_update_irq(s);
        break;
    default:
        bad_access(s, "write", offset);
        break;
    }
    return KEEL_MEM_OK;
}

static const KeelMemoryOps rtc_ops = {
    .size = sizeof(KeelMemoryOps),
    .read = rtc_read,
    .write = rtc_write,
    .valid_min = 4,
    .valid_max = 4,
    .impl_min = 4,
    .impl_max = 4,
    .unaligned_ok = false,
    .endianness = KEEL_ENDIAN_LITTLE,
};

static int rtc_realize(KeelObject *dev, void *state, KeelError *err)
{
    GoldfishRtc *s = state;
    const KeelServices *k = keel_services;
    s->dev = dev;
    s->timer = k->timer_new(dev, KEEL_CLOCK_HOST, rtc_alarm_fired, s);
    if (k->device_init_mmio(dev, 0, "goldfish-rtc", RTC_SIZE, &rtc_ops, s, err) != KEEL_OK ||
        k->irq_init_outputs(dev, NULL, 1, &s->irq, err) != KEEL_OK) {
        k->timer_free(s->timer);
        s->timer = NULL;
        return KEEL_ERR;
    }
    return KEEL_OK;
}

/* Reset disarms the alarm and clears the interrupt state; the time itself keeps running (tick_offset
 * stays), as a real RTC keeps its time across a reboot. */
static void rtc_reset(KeelObject *dev, void *state, KeelResetType type)
{
    GoldfishRtc *s = state;
    (void)dev;
    (void)type;
    rtc_clear_alarm(s);
    s->alarm_next = 0;
    s->time_high = 0;
    s->irq_pending = false;
    s->irq_enabled = false;
    rtc_update_irq(s);
}

static void rtc_unrealize(KeelObject *dev, void *state)
{
    GoldfishRtc *s = state;
    (void)dev;
    keel_services->timer_free(s->timer);
    s->timer = NULL;
}

static const KeelDeviceOps rtc_dev_ops = {
    .size = sizeof(KeelDeviceOps),
    .realize = rtc_realize,
    .reset = rtc_reset,
    .unrealize = rtc_unrealize,
};

static const char *const rtc_compatible[] = {"google,goldfish-rtc", NULL};

static const KeelFdtInfo rtc_fdt = {
    .size = sizeof(KeelFdtInfo),
    .node_name = "rtc",
    .compatible = rtc_compatible,
};

static const KeelDeviceTypeInfo rtc_type = {
    .size = sizeof(KeelDeviceTypeInfo),
    .name = "goldfish-rtc",
    .description = "Goldfish real-time clock (google,goldfish-rtc): wall-clock time in ns and an alarm",
    .instance_size = sizeof(GoldfishRtc),
    .properties = NULL,
    .n_properties = 0,
    .ops = &rtc_dev_ops,
    .fdt = &rtc_fdt,
};

static int rtc_module_init(KeelRegistrar *reg, KeelError *err)
{
    return reg->register_device(reg, &rtc_type, err);
}

KEEL_MODULE("goldfish-rtc", KEEL_MODULE_DEVICE, "1.0.0", "Goldfish real-time clock", "MIT", rtc_module_init)
