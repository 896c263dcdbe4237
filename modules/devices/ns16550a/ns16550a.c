/* SPDX-License-Identifier: MIT */
/* NS16550A UART: 8 byte registers spaced by reg-shift, 16-byte FIFOs, one level interrupt line. */
#include <keel/module.h>

#include <string.h>

/* Register indexes (offset >> reg-shift). */
enum {
    UART_RBR = 0, /* read, DLAB=0: receive buffer;  write: THR; DLAB=1: DLL */
    UART_IER = 1, /* DLAB=1: DLM */
    UART_IIR = 2, /* read: interrupt identification; write: FCR */
    UART_LCR = 3,
    UART_MCR = 4,
    UART_LSR = 5,
    UART_MSR = 6,
    UART_SCR = 7,
};

enum {
    IER_ERBFI = 0x01, /* received data available */
    IER_ETBEI = 0x02, /* THR empty */
    IER_ELSI = 0x04,  /* receiver line status */
    IER_EDSSI = 0x08, /* modem status */

    IIR_NONE = 0x01,
    IIR_MSI = 0x00,
    IIR_THRI = 0x02,
    IIR_RDI = 0x04,
    IIR_RLSI = 0x06,
    IIR_CTI = 0x0c,
    IIR_FIFO_ON = 0xc0,

    FCR_ENABLE = 0x01,
    FCR_CLEAR_RX = 0x02,
    FCR_CLEAR_TX = 0x04,

    LCR_DLAB = 0x80,

    MCR_DTR = 0x01,
    MCR_RTS = 0x02,
    MCR_OUT1 = 0x04,
    MCR_OUT2 = 0x08,
    MCR_LOOP = 0x10,

    LSR_DR = 0x01,
    LSR_OE = 0x02,
    LSR_PE = 0x04,
    LSR_FE = 0x08,
    LSR_BI = 0x10,
    LSR_THRE = 0x20,
    LSR_TEMT = 0x40,
    LSR_RX_FIFO_ERR = 0x80, /* FIFO mode: a character with PE/FE/BI is somewhere in the FIFO */
    LSR_ERRORS = LSR_OE | LSR_PE | LSR_FE | LSR_BI,

    MSR_CTS = 0x10,
    MSR_DSR = 0x20,
    MSR_RI = 0x40,
    MSR_DCD = 0x80,
    MSR_DELTAS = 0x0f,

    FIFO_SIZE = 16,
};

typedef struct Ns16550a {
    KeelObject *dev;
    /* properties */
    uint64_t reg_shift;
    uint64_t clock_frequency;
    KeelChardev *chr;
    /* wiring */
    KeelIrqLine *irq;
    KeelTimer *timeout_timer;
    /* registers */
    uint16_t divisor;
    uint8_t ier, fcr, lcr, mcr, lsr, msr, scr;
    bool thr_ipending;     /* THRE interrupt latched until IIR read or THR write */
    bool timeout_ipending; /* character timeout */
    bool rx_blocked;       /* can_receive said 0: tell the backend when space frees */
    uint8_t rx_fifo[FIFO_SIZE];
    uint8_t rx_err[FIFO_SIZE]; /* FIFO mode: LSR error bits of each character, shown when it is on top */
    unsigned rx_head, rx_count;
} Ns16550a;

static bool fifo_on(const Ns16550a *s)
{
    return (s->fcr & FCR_ENABLE) != 0;
}

static unsigned rx_capacity(const Ns16550a *s)
{
    return fifo_on(s) ? FIFO_SIZE : 1;
}

static unsigned rx_trigger(const Ns16550a *s)
{
    static const unsigned levels[4] = {1, 4, 8, 14};
    return fifo_on(s) ? levels[s->fcr >> 6] : 1;
}

/* LSR as the guest sees it: in FIFO mode a character's error bits appear when it reaches the top. */
static uint8_t lsr_value(const Ns16550a *s)
{
    uint8_t lsr = s->lsr;
    if (fifo_on(s) && s->rx_count) {
        lsr |= s->rx_err[s->rx_head];
        for (unsigned i = 0; i < s->rx_count; i++)
            if (s->rx_err[(s->rx_head + i) % FIFO_SIZE]) lsr |= LSR_RX_FIFO_ERR;
    }
    return lsr;
}

static uint8_t compute_iir(const Ns16550a *s)
{
    if ((s->ier & IER_ELSI) && (lsr_value(s) & LSR_ERRORS)) return IIR_RLSI;
    if ((s->ier & IER_ERBFI) && s->rx_count >= rx_trigger(s)) return IIR_RDI;
    if ((s->ier & IER_ERBFI) && s->timeout_ipending) return IIR_CTI;
    if ((s->ier & IER_ETBEI) && s->thr_ipending) return IIR_THRI;
    if ((s->ier & IER_EDSSI) && (s->msr & MSR_DELTAS)) return IIR_MSI;
    return IIR_NONE;
}

static void update_irq(Ns16550a *s)
{
    keel_services->irq_set(s->irq, compute_iir(s) != IIR_NONE);
}

/* Four character times at the current divisor and frame format, in ns. */
static int64_t timeout_ns(const Ns16550a *s)
{
    uint64_t data_bits = 5 + (s->lcr & 3);
    uint64_t half_stop = (s->lcr & 4) ? ((s->lcr & 3) == 0 ? 3 : 4) : 2;
    uint64_t half_bits = 2 * (1 + data_bits + ((s->lcr & 8) ? 1 : 0)) + half_stop;
    uint64_t divisor = s->divisor ? s->divisor : 1;
    return (int64_t)(4 * half_bits * divisor * 16 * 1000000000ull / (2 * s->clock_frequency));
}

static void rx_clear(Ns16550a *s)
{
    s->rx_head = s->rx_count = 0;
    memset(s->rx_err, 0, sizeof(s->rx_err));
    s->lsr &= (uint8_t)~LSR_DR;
    s->timeout_ipending = false;
    keel_services->timer_del(s->timeout_timer);
}

/* @err: LSR error bits that come with the character (BI for a break). */
static void rx_push(Ns16550a *s, uint8_t byte, uint8_t err)
{
    if (s->rx_count == rx_capacity(s)) {
        /* Overrun: in FIFO mode the byte in the shift register is lost; without FIFOs it replaces RBR. */
        s->lsr |= LSR_OE;
        if (!fifo_on(s)) {
            s->rx_fifo[s->rx_head] = byte;
            s->lsr |= err;
        }
    } else {
        unsigned slot = (s->rx_head + s->rx_count) % FIFO_SIZE;
        s->rx_fifo[slot] = byte;
        s->rx_err[slot] = fifo_on(s) ? err : 0;
        if (!fifo_on(s)) s->lsr |= err; /* without FIFOs the character is RBR at once */
        s->rx_count++;
    }
    s->lsr |= LSR_DR;
    if (fifo_on(s)) {
        s->timeout_ipending = false;
        keel_services->timer_mod(s->timeout_timer,
                                 keel_services->clock_get_ns(KEEL_CLOCK_VIRTUAL) + timeout_ns(s));
    }
}

static uint8_t rx_pop(Ns16550a *s)
{
    if (s->rx_count == 0) return s->rx_fifo[s->rx_head]; /* RBR keeps the last byte */
    uint8_t byte = s->rx_fifo[s->rx_head];
    s->rx_err[s->rx_head] = 0;
    s->rx_count--;
    if (s->rx_count) s->rx_head = (s->rx_head + 1) % FIFO_SIZE;
    s->timeout_ipending = false;
    if (s->rx_count == 0) {
        s->lsr &= (uint8_t)~LSR_DR;
        keel_services->timer_del(s->timeout_timer);
    } else {
        keel_services->timer_mod(s->timeout_timer,
                                 keel_services->clock_get_ns(KEEL_CLOCK_VIRTUAL) + timeout_ns(s));
    }
    if (s->rx_blocked && s->chr) {
        s->rx_blocked = false;
        keel_services->chardev_accept_input(s->chr);
    }
    return byte;
}

static void timeout_fired(void *opaque)
{
    Ns16550a *s = opaque;
    if (s->rx_count) s->timeout_ipending = true;
    update_irq(s);
}

static void transmit(Ns16550a *s, uint8_t byte)
{
    s->thr_ipending = false;
    update_irq(s);
    if (s->mcr & MCR_LOOP) {
        rx_push(s, byte, 0);
    } else if (s->chr) {
        /* No TX backpressure to the guest: a byte the backend refuses is dropped, as on a real line. */
        keel_services->chardev_write(s->chr, &byte, 1);
    }
    /* The byte left at once: THR and the shifter are empty again. */
    s->lsr |= LSR_THRE | LSR_TEMT;
    s->thr_ipending = true;
    update_irq(s);
}

/* In loopback the modem inputs are wired to the outputs: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD. */
static void update_msr(Ns16550a *s)
{
    uint8_t in = MSR_DCD | MSR_DSR | MSR_CTS;
    if (s->mcr & MCR_LOOP)
        in = (uint8_t)(((s->mcr & MCR_RTS) ? MSR_CTS : 0) | ((s->mcr & MCR_DTR) ? MSR_DSR : 0) |
                       ((s->mcr & MCR_OUT1) ? MSR_RI : 0) | ((s->mcr & MCR_OUT2) ? MSR_DCD : 0));
    uint8_t changed = (uint8_t)((in ^ s->msr) & 0xf0);
    uint8_t deltas = (uint8_t)((changed & 0xb0) >> 4);
    if ((changed & 0x40) && !(in & 0x40)) deltas |= 0x04; /* TERI: RI went low */
    s->msr = (uint8_t)(in | (s->msr & MSR_DELTAS) | deltas);
}

static KeelMemResult uart_read(void *opaque, uint64_t offset, unsigned width, uint64_t *value)
{
    Ns16550a *s = opaque;
    (void)width; /* wider reads see the byte register in the low byte */
    *value = 0;
    if (offset & ((1u << s->reg_shift) - 1)) return KEEL_MEM_OK; /* upper byte lanes read as zero */
    switch (offset >> s->reg_shift) {
    case UART_RBR:
        if (s->lcr & LCR_DLAB) {
            *value = s->divisor & 0xff;
        } else {
            *value = rx_pop(s);
            update_irq(s);
        }
        break;
    case UART_IER:
        *value = (s->lcr & LCR_DLAB) ? (uint8_t)(s->divisor >> 8) : s->ier;
        break;
    case UART_IIR: {
        uint8_t iir = compute_iir(s);
        if (iir == IIR_THRI) {
            s->thr_ipending = false;
            update_irq(s);
        }
        *value = iir | (fifo_on(s) ? IIR_FIFO_ON : 0);
        break;
    }
    case UART_LCR:
        *value = s->lcr;
        break;
    case UART_MCR:
        *value = s->mcr;
        break;
    case UART_LSR:
        *value = lsr_value(s);
        s->lsr &= (uint8_t)~LSR_ERRORS;
        if (s->rx_count) s->rx_err[s->rx_head] = 0; /* the top character's errors were reported */
        update_irq(s);
        break;
    case UART_MSR:
        *value = s->msr;
        s->msr &= (uint8_t)~MSR_DELTAS;
        update_irq(s);
        break;
    case UART_SCR:
        *value = s->scr;
        break;
    }
    return KEEL_MEM_OK;
}

static void write_fcr(Ns16550a *s, uint8_t val)
{
    /* FCR0 must be 1 for the other bits to be programmed; the clear bits do nothing with FIFOs off. */
    if (!(val & FCR_ENABLE)) val &= FCR_ENABLE;
    if ((val ^ s->fcr) & FCR_ENABLE) val |= FCR_CLEAR_RX | FCR_CLEAR_TX; /* toggling FIFOs empties them */
    if (val & FCR_CLEAR_RX) rx_clear(s);
    /* The TX FIFO is always empty: bytes leave as they are written. */
    s->fcr = (val & FCR_ENABLE) ? (uint8_t)(val & 0xc9) : 0;
    if (s->rx_blocked && s->chr) {
        s->rx_blocked = false;
        keel_services->chardev_accept_input(s->chr);
    }
}

static KeelMemResult uart_write(void *opaque, uint64_t offset, unsigned width, uint64_t value)
{
    Ns16550a *s = opaque;
    uint8_t val = (uint8_t)value;
    (void)width;
    if (offset & ((1u << s->reg_shift) - 1)) return KEEL_MEM_OK;
    switch (offset >> s->reg_shift) {
    case UART_RBR:
        if (s->lcr & LCR_DLAB)
            s->divisor = (uint16_t)((s->divisor & 0xff00) | val);
        else
            transmit(s, val);
        break;
    case UART_IER:
        if (s->lcr & LCR_DLAB) {
            s->divisor = (uint16_t)((s->divisor & 0x00ff) | (val << 8));
        } else {
            uint8_t changed = (uint8_t)((s->ier ^ val) & 0x0f);
            s->ier = val & 0x0f;
            /* Enabling ETBEI while THR is empty raises the THRE interrupt at once. */
            if (changed & IER_ETBEI) s->thr_ipending = (s->ier & IER_ETBEI) && (s->lsr & LSR_THRE);
        }
        break;
    case UART_IIR:
        write_fcr(s, val);
        break;
    case UART_LCR:
        s->lcr = val;
        break;
    case UART_MCR: {
        bool was_loop = (s->mcr & MCR_LOOP) != 0;
        s->mcr = val & 0x1f;
        update_msr(s);
        if (was_loop && !(s->mcr & MCR_LOOP) && s->chr) keel_services->chardev_accept_input(s->chr);
        break;
    }
    case UART_LSR:
        break; /* factory test only */
    case UART_MSR:
        break;
    case UART_SCR:
        s->scr = val;
        break;
    }
    update_irq(s);
    return KEEL_MEM_OK;
}

static const KeelMemoryOps uart_ops = {
    .size = sizeof(KeelMemoryOps),
    .read = uart_read,
    .write = uart_write,
    .valid_min = 1,
    .valid_max = 4,
    .impl_min = 1,
    .impl_max = 4,
    .endianness = KEEL_ENDIAN_LITTLE,
};

static size_t uart_can_receive(void *opaque)
{
    Ns16550a *s = opaque;
    size_t n = (s->mcr & MCR_LOOP) ? 0 : rx_capacity(s) - s->rx_count;
    if (n == 0) s->rx_blocked = true;
    return n;
}

static void uart_receive(void *opaque, const uint8_t *buf, size_t len)
{
    Ns16550a *s = opaque;
    if (s->mcr & MCR_LOOP) return; /* the line is disconnected in loopback */
    for (size_t i = 0; i < len; i++)
        rx_push(s, buf[i], 0);
    update_irq(s);
}

static void uart_event(void *opaque, KeelChardevEvent event)
{
    Ns16550a *s = opaque;
    if (event != KEEL_CHARDEV_BREAK || (s->mcr & MCR_LOOP)) return;
    rx_push(s, 0, LSR_BI); /* a break arrives as a zero character with BI */
    update_irq(s);
}

static const KeelChardevHandlers uart_chr_handlers = {
    .size = sizeof(KeelChardevHandlers),
    .can_receive = uart_can_receive,
    .receive = uart_receive,
    .event = uart_event,
};

static int uart_init(KeelObject *dev, void *state, KeelError *err)
{
    Ns16550a *s = state;
    (void)err;
    s->dev = dev;
    return KEEL_OK;
}

static int uart_realize(KeelObject *dev, void *state, KeelError *err)
{
    Ns16550a *s = state;
    const KeelServices *k = keel_services;
    if (s->clock_frequency == 0) {
        k->error_set(err, "clock-frequency must not be 0");
        return KEEL_ERR;
    }
    if (k->device_init_mmio(dev, 0, "regs", 8u << s->reg_shift, &uart_ops, s, err) != KEEL_OK ||
        k->irq_init_outputs(dev, NULL, 1, &s->irq, err) != KEEL_OK)
        return KEEL_ERR;
    s->timeout_timer = k->timer_new(dev, KEEL_CLOCK_VIRTUAL, timeout_fired, s);
    if (s->chr) k->chardev_set_handlers(s->chr, &uart_chr_handlers, s);
    return KEEL_OK;
}

static void uart_reset(KeelObject *dev, void *state, KeelResetType type)
{
    Ns16550a *s = state;
    (void)dev;
    (void)type;
    s->ier = 0;
    s->fcr = 0;
    s->lcr = 0;
    s->mcr = 0;
    s->lsr = LSR_THRE | LSR_TEMT;
    s->msr = MSR_DCD | MSR_DSR | MSR_CTS;
    s->scr = 0;
    s->divisor = 0;
    s->thr_ipending = false;
    rx_clear(s);
    s->rx_fifo[0] = 0;
    update_irq(s);
    if (s->rx_blocked && s->chr) {
        s->rx_blocked = false;
        keel_services->chardev_accept_input(s->chr);
    }
}

static void uart_unrealize(KeelObject *dev, void *state)
{
    Ns16550a *s = state;
    (void)dev;
    if (s->chr) keel_services->chardev_set_handlers(s->chr, NULL, NULL);
    keel_services->timer_free(s->timeout_timer);
    s->timeout_timer = NULL;
}

static const KeelPropertyInfo uart_props[] = {
    KEEL_PROP_UINT_RANGE("reg-shift", Ns16550a, reg_shift, "0", 0, 2,
                         "registers are 1 << reg-shift bytes apart"),
    /* Settable at run time (qom-set): it only scales the receive timeout, read when that is armed. */
    KEEL_PROP_FULL("clock-frequency", KEEL_PROP_UINT, KEEL_PROPF_SETTABLE, Ns16550a, clock_frequency,
                   "3686400", "input clock in Hz", 0, 0, NULL, NULL),
    KEEL_PROP_CHARDEV("chardev", Ns16550a, chr, "backend for the serial line"),
};

/* qom-set of clock-frequency: the same rule as at realize. */
static int uart_property_changed(KeelObject *dev, void *state, const char *name, KeelError *err)
{
    Ns16550a *s = state;
    (void)dev;
    if (strcmp(name, "clock-frequency") == 0 && s->clock_frequency == 0) {
        keel_services->error_set(err, "clock-frequency must not be 0");
        return KEEL_ERR;
    }
    return KEEL_OK;
}

static const KeelDeviceOps uart_dev_ops = {
    .size = sizeof(KeelDeviceOps),
    .init = uart_init,
    .realize = uart_realize,
    .reset = uart_reset,
    .unrealize = uart_unrealize,
    .property_changed = uart_property_changed,
};

static int uart_fdt_populate(KeelObject *dev, void *state, KeelFdt *fdt, KeelError *err)
{
    Ns16550a *s = state;
    (void)dev;
    (void)err;
    return s->reg_shift ? keel_services->fdt_prop_u32(fdt, "reg-shift", (uint32_t)s->reg_shift) : KEEL_OK;
}

static const char *const uart_compatible[] = {"ns16550a", NULL};

/* The tree describes the board's 0x100-byte slot, as QEMU's virt does, not the 8 registers. */
static const KeelFdtInfo uart_fdt = {
    .size = sizeof(KeelFdtInfo),
    .node_name = "serial",
    .compatible = uart_compatible,
    .flags = KEEL_FDT_CLOCK_FREQUENCY,
    .reg_size = 0x100,
    .populate = uart_fdt_populate,
};

static const KeelDeviceTypeInfo uart_type = {
    .size = sizeof(KeelDeviceTypeInfo),
    .name = "ns16550a",
    .description = "NS16550A UART with 16-byte FIFOs",
    .instance_size = sizeof(Ns16550a),
    .properties = uart_props,
    .n_properties = KEEL_ARRAY_SIZE(uart_props),
    .ops = &uart_dev_ops,
    .fdt = &uart_fdt,
};

static int ns16550a_module_init(KeelRegistrar *reg, KeelError *err)
{
    return reg->register_device(reg, &uart_type, err);
}

KEEL_MODULE("ns16550a", KEEL_MODULE_DEVICE, "1.0.1", "NS16550A UART", "MIT", ns16550a_module_init)
