/* SPDX-License-Identifier: MIT */
/* Berkeley HTIF as Spike and QEMU's spike board have it: tohost commands for exit, console and syscalls. */
#include <keel/module.h>

/*
 * A command is one 64-bit tohost value: device in bits 63:56, command in 55:48, payload in 47:0. Answers
 * go to fromhost with the same device and command; the guest clears fromhost to take the next one.
 */
enum {
    HTIF_WINDOW_SIZE = 8, /* window 0 = tohost, window 1 = fromhost */

    DEV_SYSTEM = 0,  /* command 0: payload bit 0 = exit (status in payload >> 1), else a syscall block */
    DEV_CONSOLE = 1, /* command 0: getchar, command 1: putchar */
    CONSOLE_GETC = 0,
    CONSOLE_PUTC = 1,

    SYS_WRITE = 64, /* the one proxied syscall keel serves: write(1 or 2, buf, len) */
    HTIF_ENOSYS = 38,
    HTIF_EFAULT = 14,

    QUEUE_SIZE = 16, /* answers waiting for the guest to clear fromhost */
};

#define PAYLOAD_MASK ((1ull << 48) - 1)

typedef struct Htif {
    KeelObject *dev;
    /* properties */
    KeelChardev *chr;
    /* registers */
    uint64_t tohost;
    uint64_t fromhost;
    /* Spike queues answers while fromhost is busy; so do we, up to QUEUE_SIZE (then acks are dropped). */
    uint64_t queue[QUEUE_SIZE];
    unsigned q_head, q_count;
    unsigned pending_reads; /* getchar requests not answered yet */
    bool rx_blocked;        /* can_receive said 0: tell the backend when that changes */
    bool stopped;           /* power-off requested: later commands are ignored */
} Htif;

static void post(Htif *s, uint64_t answer)
{
    if (s->fromhost == 0 && s->q_count == 0)
        s->fromhost = answer;
    else if (s->q_count < QUEUE_SIZE)
        s->queue[(s->q_head + s->q_count++) % QUEUE_SIZE] = answer;
    /* else: a guest that never reads fromhost; getchar data never gets here (can_receive stops it) */
}

static void respond(Htif *s, uint64_t command, uint64_t data)
{
    post(s, (command & ~PAYLOAD_MASK) | (data & PAYLOAD_MASK));
}

static void wake_input(Htif *s)
{
    if (s->rx_blocked && s->chr && s->pending_reads && s->q_count < QUEUE_SIZE) {
        s->rx_blocked = false;
        keel_services->chardev_accept_input(s->chr);
    }
}

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* write(fd, buf, len) to the console; returns the syscall's result. */
static int64_t sys_write(Htif *s, uint64_t fd, uint64_t buf, uint64_t len)
{
    if (fd != 1 && fd != 2) return -HTIF_ENOSYS;
    uint8_t chunk[256];
    for (uint64_t done = 0; done < len;) {
        uint64_t n = len - done < sizeof(chunk) ? len - done : sizeof(chunk);
        if (keel_services->dma_read(s->dev, buf + done, chunk, n) != KEEL_MEM_OK)
            return done ? (int64_t)done : -HTIF_EFAULT;
        if (s->chr) keel_services->chardev_write(s->chr, chunk, n);
        done += n;
    }
    return (int64_t)len;
}

/*
 * A syscall proxied to the host: @addr points at eight 64-bit words (number, arguments); the result
 * replaces word 0 and fromhost = 1 says it is done. keel serves write() to stdout/stderr (what RV32
 * OpenSBI and the riscv-tests benchmarks print with) and answers -ENOSYS to the rest.
 */
static void syscall_proxy(Htif *s, uint64_t command, uint64_t addr)
{
    uint8_t block[32];
    int64_t ret;
    if (keel_services->dma_read(s->dev, addr, block, sizeof(block)) != KEEL_MEM_OK) {
        keel_services->log_mask(s->dev, KEEL_LOG_GUEST_ERROR, "htif: syscall block at 0x%llx is not memory",
                                (unsigned long long)addr);
        respond(s, command, 1);
        return;
    }
    uint64_t num = load_le64(block);
    if (num == SYS_WRITE) {
        ret = sys_write(s, load_le64(block + 8), load_le64(block + 16), load_le64(block + 24));
    } else {
        keel_services->log_mask(s->dev, KEEL_LOG_UNIMP, "htif: proxied syscall %llu is not supported",
                                (unsigned long long)num);
        ret = -HTIF_ENOSYS;
    }
    uint8_t out[8];
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)((uint64_t)ret >> (8 * i));
    keel_services->dma_write(s->dev, addr, out, sizeof(out));
    respond(s, command, 1);
}

static void handle_command(Htif *s, uint64_t value)
{
    unsigned dev = (unsigned)(value >> 56);
    unsigned cmd = (unsigned)(value >> 48) & 0xff;
    uint64_t payload = value & PAYLOAD_MASK;

    s->tohost = 0; /* taken: the guest may write the next command */
    if (value == 0 || s->stopped) return;
    if (dev == DEV_SYSTEM && cmd == 0) {
        if (payload & 1) {
            s->stopped = true;
            keel_services->system_request(KEEL_SYSTEM_SHUTDOWN, (int)(payload >> 1));
        } else {
            syscall_proxy(s, value, payload);
        }
    } else if (dev == DEV_CONSOLE && cmd == CONSOLE_PUTC) {
        uint8_t ch = (uint8_t)payload;
        if (s->chr) keel_services->chardev_write(s->chr, &ch, 1);
        respond(s, value, 0x100 | ch); /* the 0x100 keeps the ack non-zero for a NUL */
    } else if (dev == DEV_CONSOLE && cmd == CONSOLE_GETC) {
        if (s->pending_reads < QUEUE_SIZE) s->pending_reads++;
        wake_input(s);
    } else {
        keel_services->log_mask(s->dev, KEEL_LOG_UNIMP, "htif: device %u command %u is not supported", dev,
                                cmd);
    }
}

/* Replace the 32-bit half at @offset, or the whole register for a 64-bit access. */
static uint64_t merge(uint64_t reg, uint64_t offset, unsigned width, uint64_t value)
{
    if (width == 8) return value;
    unsigned shift = (unsigned)(offset & 4) * 8;
    return (reg & ~(0xffffffffull << shift)) | ((value & 0xffffffffull) << shift);
}

static uint64_t pick(uint64_t reg, uint64_t offset, unsigned width)
{
    return width == 8 ? reg : (uint32_t)(reg >> ((offset & 4) * 8));
}

static KeelMemResult tohost_read(void *opaque, uint64_t offset, unsigned width, uint64_t *value)
{
    Htif *s = opaque;
    *value = pick(s->tohost, offset, width);
    return KEEL_MEM_OK;
}

/* A command is complete after a 64-bit store, or after the high half (RV32 stores low, then high). */
static KeelMemResult tohost_write(void *opaque, uint64_t offset, unsigned width, uint64_t value)
{
    Htif *s = opaque;
    s->tohost = merge(s->tohost, offset, width, value);
    if (width == 8 || (offset & 4)) handle_command(s, s->tohost);
    return KEEL_MEM_OK;
}

static KeelMemResult fromhost_read(void *opaque, uint64_t offset, unsigned width, uint64_t *value)
{
    Htif *s = opaque;
    *value = pick(s->fromhost, offset, width);
    return KEEL_MEM_OK;
}

static KeelMemResult fromhost_write(void *opaque, uint64_t offset, unsigned width, uint64_t value)
{
    Htif *s = opaque;
    s->fromhost = merge(s->fromhost, offset, width, value);
    if (s->fromhost == 0 && s->q_count) {
        s->fromhost = s->queue[s->q_head];
        s->q_head = (s->q_head + 1) % QUEUE_SIZE;
        s->q_count--;
        wake_input(s);
    }
    return KEEL_MEM_OK;
}

static const KeelMemoryOps tohost_ops = {
    .size = sizeof(KeelMemoryOps),
    .read = tohost_read,
    .write = tohost_write,
    .valid_min = 4,
    .valid_max = 8,
    .impl_min = 4,
    .impl_max = 8,
    .endianness = KEEL_ENDIAN_LITTLE,
};

static const KeelMemoryOps fromhost_ops = {
    .size = sizeof(KeelMemoryOps),
    .read = fromhost_read,
    .write = fromhost_write,
    .valid_min = 4,
    .valid_max = 8,
    .impl_min = 4,
    .impl_max = 8,
    .endianness = KEEL_ENDIAN_LITTLE,
};

/* Console input is taken only against outstanding getchar requests, so bytes wait in the backend. */
static size_t htif_can_receive(void *opaque)
{
    Htif *s = opaque;
    unsigned room = QUEUE_SIZE - s->q_count;
    size_t n = s->pending_reads < room ? s->pending_reads : room;
    if (n == 0) s->rx_blocked = true;
    return n;
}

static void htif_receive(void *opaque, const uint8_t *buf, size_t len)
{
    Htif *s = opaque;
    for (size_t i = 0; i < len && s->pending_reads; i++) {
        s->pending_reads--;
        respond(s, (uint64_t)DEV_CONSOLE << 56 | (uint64_t)CONSOLE_GETC << 48, 0x100 | buf[i]);
    }
}

static const KeelChardevHandlers htif_chr_handlers = {
    .size = sizeof(KeelChardevHandlers),
    .can_receive = htif_can_receive,
    .receive = htif_receive,
};

static int htif_realize(KeelObject *dev, void *state, KeelError *err)
{
    Htif *s = state;
    const KeelServices *k = keel_services;
    s->dev = dev;
    if (k->device_init_mmio(dev, 0, "tohost", HTIF_WINDOW_SIZE, &tohost_ops, s, err) != KEEL_OK ||
        k->device_init_mmio(dev, 1, "fromhost", HTIF_WINDOW_SIZE, &fromhost_ops, s, err) != KEEL_OK)
        return KEEL_ERR;
    if (s->chr) k->chardev_set_handlers(s->chr, &htif_chr_handlers, s);
    return KEEL_OK;
}

static void htif_reset(KeelObject *dev, void *state, KeelResetType type)
{
    Htif *s = state;
    (void)dev;
    (void)type;
    s->tohost = s->fromhost = 0;
    s->q_head = s->q_count = 0;
    s->pending_reads = 0;
    s->stopped = false;
}

static void htif_unrealize(KeelObject *dev, void *state)
{
    Htif *s = state;
    (void)dev;
    if (s->chr) keel_services->chardev_set_handlers(s->chr, NULL, NULL);
}

static const KeelPropertyInfo htif_props[] = {
    KEEL_PROP_CHARDEV("chardev", Htif, chr, "console backend (putchar output, getchar input)"),
};

static const KeelDeviceOps htif_dev_ops = {
    .size = sizeof(KeelDeviceOps),
    .realize = htif_realize,
    .reset = htif_reset,
    .unrealize = htif_unrealize,
};

static const KeelDeviceTypeInfo htif_type = {
    .size = sizeof(KeelDeviceTypeInfo),
    .name = "htif",
    .description = "Berkeley host-target interface (tohost/fromhost): exit, console",
    .instance_size = sizeof(Htif),
    .properties = htif_props,
    .n_properties = KEEL_ARRAY_SIZE(htif_props),
    .ops = &htif_dev_ops,
};

static int htif_module_init(KeelRegistrar *reg, KeelError *err)
{
    return reg->register_device(reg, &htif_type, err);
}

KEEL_MODULE("htif", KEEL_MODULE_DEVICE, "1.0.0", "Berkeley HTIF", "MIT", htif_module_init)
