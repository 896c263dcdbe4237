// SPDX-License-Identifier: MIT
// A small virtio-blk driver (modern virtio-mmio, one split virtqueue) for riscv-virt: writes patterns at the
// start, middle and end of the disk, reads them back, flushes, zeroes, discards, asks the ID, and checks
// that bad requests (out of range, buffers outside RAM, loops, huge lengths, DMA into the device's own
// registers) get an error status or a device reset while the emulator keeps running. The host test
// (virtio_blk_test.py) then checks the image with qemu-img against the same pattern.
#include "rt.h"

// --- the board: QEMU virt's map ---
#define VIRTIO_BASE 0x10001000ul
#define VIRTIO_STRIDE 0x1000ul
#define VIRTIO_SLOTS 8
#define VIRTIO_IRQ0 1 // slot i raises PLIC source 1 + i
#define PLIC 0xc000000ul
#define PLIC_PRIORITY(src) (PLIC + 4ul * (src))
#define PLIC_ENABLE0 (PLIC + 0x2000ul) // context 0: hart 0, M mode
#define PLIC_THRESHOLD0 (PLIC + 0x200000ul)
#define PLIC_CLAIM0 (PLIC + 0x200004ul)
#define MTIME (*(volatile uint64_t *)0x200bff8ul) // CLINT, 10 MHz on both boards
#define RAM_BASE 0x80000000ul
#define RAM_SIZE (128ul << 20)
#define MIE_MEIE (1ul << 11)

// --- virtio-mmio registers (virtio 1.2 §4.2.2) ---
enum {
    R_MAGIC = 0x000,
    R_VERSION = 0x004,
    R_DEVICE_ID = 0x008,
    R_DEVICE_FEATURES = 0x010,
    R_DEVICE_FEATURES_SEL = 0x014,
    R_DRIVER_FEATURES = 0x020,
    R_DRIVER_FEATURES_SEL = 0x024,
    R_QUEUE_SEL = 0x030,
    R_QUEUE_NUM_MAX = 0x034,
    R_QUEUE_NUM = 0x038,
    R_QUEUE_READY = 0x044,
    R_QUEUE_NOTIFY = 0x050,
    R_INTERRUPT_STATUS = 0x060,
    R_INTERRUPT_ACK = 0x064,
    R_STATUS = 0x070,
    R_QUEUE_DESC_LOW = 0x080,
    R_QUEUE_DESC_HIGH = 0x084,
    R_QUEUE_DRIVER_LOW = 0x090,
    R_QUEUE_DRIVER_HIGH = 0x094,
    R_QUEUE_DEVICE_LOW = 0x0a0,
    R_QUEUE_DEVICE_HIGH = 0x0a4,
    R_CONFIG_GENERATION = 0x0fc,
    R_CONFIG = 0x100,
};
enum { S_ACK = 1, S_DRIVER = 2, S_DRIVER_OK = 4, S_FEATURES_OK = 8, S_NEEDS_RESET = 64 };

// virtio-blk (§5.2)
enum { F_SEG_MAX = 2, F_RO = 5, F_BLK_SIZE = 6, F_FLUSH = 9, F_DISCARD = 13, F_WRITE_ZEROES = 14 };
#define F_VERSION_1 32
enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_DISCARD = 11, T_WRITE_ZEROES = 13 };
enum { ST_OK = 0, ST_IOERR = 1, ST_UNSUPP = 2, ST_NONE = 0xee /* never written by the device */ };
#define WZ_UNMAP 1u
#define DESC_NEXT 1
#define DESC_WRITE 2
#define AVAIL_NO_INTERRUPT 1

#define QSZ 16
#define SECTOR 512

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};
struct avail {
    uint16_t flags, idx, ring[QSZ], used_event;
};
struct used_elem {
    uint32_t id, len;
};
struct used {
    uint16_t flags, idx;
    struct used_elem ring[QSZ];
    uint16_t avail_event;
};

static struct desc ring_desc[QSZ] __attribute__((aligned(4096)));
static volatile struct avail ring_avail __attribute__((aligned(4096)));
static volatile struct used ring_used __attribute__((aligned(4096)));

struct hdr {
    uint32_t type, reserved;
    uint64_t sector;
};
struct dwz { // discard / write-zeroes segment
    uint64_t sector;
    uint32_t num, flags;
};

static struct hdr req_hdr;
static volatile uint8_t req_status;
static uint8_t buf_a[128 * 1024] __attribute__((aligned(16)));
static uint8_t buf_b[128 * 1024] __attribute__((aligned(16)));
static uint8_t small[1024] __attribute__((aligned(16)));

static uint64_t base; // the slot's registers
static unsigned slot;
static uint64_t features;
static uint64_t capacity;
static uint32_t seg_max, max_dz_seg, max_wz_seg;
static uint16_t last_used;
static int use_irq;
static int on_qemu; // the reference run: QEMU marks the device broken where keel answers IOERR
static volatile unsigned irq_count, irq_isr;

static uint32_t rd(unsigned off)
{
    return *(volatile uint32_t *)(base + off);
}
static void wr(unsigned off, uint32_t v)
{
    *(volatile uint32_t *)(base + off) = v;
}
static uint32_t rd_at(uint64_t b, unsigned off)
{
    return *(volatile uint32_t *)(b + off);
}
static void fence(void)
{
    __asm__ volatile("fence rw, rw" ::: "memory");
}

static int has(unsigned bit)
{
    return (features >> bit) & 1;
}

// The pattern of sector s written with tag t: 64 words, reproduced by the host test.
static uint64_t pattern_word(uint64_t s, unsigned t, unsigned j)
{
    return (s << 20) ^ ((uint64_t)t << 56) ^ ((uint64_t)(j + 1) * 0x9e3779b97f4a7c15ull);
}
static void fill(uint8_t *p, uint64_t sector, unsigned n, unsigned tag)
{
    for (unsigned i = 0; i < n; i++)
        for (unsigned j = 0; j < SECTOR / 8; j++) {
            uint64_t w = pattern_word(sector + i, tag, j);
            for (unsigned b = 0; b < 8; b++)
                p[i * SECTOR + j * 8 + b] = (uint8_t)(w >> (8 * b));
        }
}
// 0 if p holds the pattern (tag 0: zeroes), else 1 + the first wrong byte's index.
static unsigned long check_pattern(const uint8_t *p, uint64_t sector, unsigned n, unsigned tag)
{
    for (unsigned i = 0; i < n; i++)
        for (unsigned j = 0; j < SECTOR / 8; j++) {
            uint64_t w = tag ? pattern_word(sector + i, tag, j) : 0;
            for (unsigned b = 0; b < 8; b++)
                if (p[i * SECTOR + j * 8 + b] != (uint8_t)(w >> (8 * b))) return 1ul + i * SECTOR + j * 8 + b;
        }
    return 0;
}

// --- interrupts: the PLIC's context 0 (hart 0, M mode) ---
static int irq_hook(struct rt_frame *f)
{
    if (f->mcause != (CAUSE_INTERRUPT | 11)) return 0;
    uint32_t src = *(volatile uint32_t *)PLIC_CLAIM0;
    if (src == VIRTIO_IRQ0 + slot) {
        uint32_t isr = rd(R_INTERRUPT_STATUS);
        irq_isr |= isr;
        wr(R_INTERRUPT_ACK, isr);
        irq_count++;
    }
    if (src) *(volatile uint32_t *)PLIC_CLAIM0 = src; // complete
    return 1;
}

static void irq_setup(void)
{
    unsigned src = VIRTIO_IRQ0 + slot;
    *(volatile uint32_t *)PLIC_PRIORITY(src) = 1;
    *(volatile uint32_t *)PLIC_ENABLE0 = 1u << src;
    *(volatile uint32_t *)PLIC_THRESHOLD0 = 0;
    rt_trap_hook = irq_hook;
    CSR_SET(mie, MIE_MEIE);
}

// --- the device ---

// Reset, negotiate, set up queue 0 (its descriptor table at desc) and go: the driver initialization of
// §3.1.1.
static void device_init_at(uint64_t d)
{
    wr(R_STATUS, 0);
    CHECK_EQ(rd(R_STATUS), 0);
    wr(R_STATUS, S_ACK);
    wr(R_STATUS, S_ACK | S_DRIVER);
    wr(R_DEVICE_FEATURES_SEL, 0);
    uint64_t offered = rd(R_DEVICE_FEATURES);
    wr(R_DEVICE_FEATURES_SEL, 1);
    offered |= (uint64_t)rd(R_DEVICE_FEATURES) << 32;
    CHECK(offered & (1ull << F_VERSION_1));
    uint64_t want = (1ull << F_VERSION_1) | (1ull << F_FLUSH) | (1ull << F_BLK_SIZE) | (1ull << F_SEG_MAX) |
                    (1ull << F_DISCARD) | (1ull << F_WRITE_ZEROES);
    features = offered & want;
    wr(R_DRIVER_FEATURES_SEL, 0);
    wr(R_DRIVER_FEATURES, (uint32_t)features);
    wr(R_DRIVER_FEATURES_SEL, 1);
    wr(R_DRIVER_FEATURES, (uint32_t)(features >> 32));
    wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
    CHECK(rd(R_STATUS) & S_FEATURES_OK);

    wr(R_QUEUE_SEL, 0);
    CHECK_EQ(rd(R_QUEUE_READY), 0);
    CHECK(rd(R_QUEUE_NUM_MAX) >= QSZ);
    wr(R_QUEUE_NUM, QSZ);
    memset(ring_desc, 0, sizeof ring_desc);
    memset((void *)&ring_avail, 0, sizeof ring_avail);
    memset((void *)&ring_used, 0, sizeof ring_used);
    last_used = 0;
    ring_avail.flags = use_irq ? 0 : AVAIL_NO_INTERRUPT;
    uint64_t a = (uint64_t)&ring_avail, u = (uint64_t)&ring_used;
    wr(R_QUEUE_DESC_LOW, (uint32_t)d);
    wr(R_QUEUE_DESC_HIGH, (uint32_t)(d >> 32));
    wr(R_QUEUE_DRIVER_LOW, (uint32_t)a);
    wr(R_QUEUE_DRIVER_HIGH, (uint32_t)(a >> 32));
    wr(R_QUEUE_DEVICE_LOW, (uint32_t)u);
    wr(R_QUEUE_DEVICE_HIGH, (uint32_t)(u >> 32));
    wr(R_QUEUE_READY, 1);
    CHECK_EQ(rd(R_QUEUE_READY), 1);
    wr(R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
}

static void device_init(void)
{
    device_init_at((uint64_t)ring_desc);
}

static uint32_t config32(unsigned off)
{
    return *(volatile uint32_t *)(base + R_CONFIG + off);
}

static void read_config(void)
{
    uint32_t gen, lo, hi;
    do { // a 64-bit field is two reads: retry if the device changed it in between (§4.2.2.2)
        gen = rd(R_CONFIG_GENERATION);
        lo = config32(0);
        hi = config32(4);
    } while (rd(R_CONFIG_GENERATION) != gen);
    capacity = lo | (uint64_t)hi << 32;
    seg_max = has(F_SEG_MAX) ? config32(12) : 1;
    uint32_t blk_size = has(F_BLK_SIZE) ? config32(20) : SECTOR;
    CHECK_EQ(blk_size, SECTOR);
    max_dz_seg = has(F_DISCARD) ? config32(40) : 0;
    max_wz_seg = has(F_WRITE_ZEROES) ? config32(52) : 0;
    rt_printf("virtio-blk: slot %u irq %u capacity %lu blk_size %u seg_max %u features 0x%lx\n", slot,
              VIRTIO_IRQ0 + slot, capacity, blk_size, seg_max, features);
}

struct seg {
    uint64_t addr;
    uint32_t len;
    int write; // device-writable
};

enum { DONE = 0, BROKEN = -1, TIMEOUT = -2, GONE = -3 };

// Describe segs[0..n) as one chain from descriptor 0.
static void chain(const struct seg *segs, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        ring_desc[i].addr = segs[i].addr;
        ring_desc[i].len = segs[i].len;
        ring_desc[i].flags = (uint16_t)((segs[i].write ? DESC_WRITE : 0) | (i + 1 < n ? DESC_NEXT : 0));
        ring_desc[i].next = (uint16_t)(i + 1 < n ? i + 1 : 0);
    }
}

// Post the chain at head and wait for it: polling the used ring, or in wfi until the interrupt handler saw
// the used-buffer notification. DONE with *used_len, BROKEN if the device asked for a reset, GONE if the
// device reset itself (status 0), TIMEOUT after 5 s.
// Sleep until an interrupt is pending, then take it: wfi wakes on a pending enabled interrupt even with
// mstatus.MIE clear, so none is lost between the check and the wfi.
static void take_interrupt(void)
{
    __asm__ volatile("wfi");
    CSR_SET(mstatus, MSTATUS_MIE);
    __asm__ volatile("nop");
    CSR_CLEAR(mstatus, MSTATUS_MIE);
}

static int post_and_wait(uint16_t head, uint32_t *used_len)
{
    uint16_t ai = ring_avail.idx;
    ring_avail.ring[ai % QSZ] = head;
    fence(); // the entry before the index that publishes it
    ring_avail.idx = (uint16_t)(ai + 1);
    fence();
    irq_isr = 0;
    wr(R_QUEUE_NOTIFY, 0);
    uint64_t t0 = MTIME;
    for (;;) {
        fence();
        if (ring_used.idx != last_used) break;
        uint32_t st = rd(R_STATUS);
        if (st & S_NEEDS_RESET) return BROKEN;
        if (st == 0) return GONE;
        if (MTIME - t0 > 50000000ull) return TIMEOUT;
        if (use_irq && !(irq_isr & 1)) take_interrupt();
    }
    fence();
    struct used_elem e = ring_used.ring[last_used % QSZ];
    last_used++;
    CHECK_EQ(e.id, head);
    if (use_irq) {
        // The used-buffer notification comes with or after the used ring's update (QEMU's I/O thread
        // may be a little late; an interrupt with nothing in InterruptStatus is tolerated).
        while (!(irq_isr & 1) && MTIME - t0 < 50000000ull)
            take_interrupt();
        CHECK(irq_isr & 1);
    } else {
        CHECK_EQ(rd(R_INTERRUPT_STATUS) & 1, 0); // VIRTQ_AVAIL_F_NO_INTERRUPT honoured
    }
    *used_len = e.len;
    return DONE;
}

// Run one request: the header, the caller's data segments, the status byte, each its own descriptor.
// Returns the status byte (ST_NONE if the device wrote none) and checks the request completed.
static uint8_t request(uint32_t type, uint64_t sector, const struct seg *data, unsigned n, uint32_t *used_len)
{
    struct seg segs[QSZ];
    req_hdr.type = type;
    req_hdr.reserved = 0;
    req_hdr.sector = sector;
    req_status = ST_NONE;
    segs[0] = (struct seg){(uint64_t)&req_hdr, sizeof req_hdr, 0};
    for (unsigned i = 0; i < n; i++)
        segs[1 + i] = data[i];
    segs[1 + n] = (struct seg){(uint64_t)&req_status, 1, 1};
    uint32_t len = 0;
    chain(segs, n + 2);
    int r = post_and_wait(0, &len);
    if (r != DONE) rt_printf("request type %u sector %lu: %d\n", type, sector, r);
    CHECK_EQ(r, DONE);
    if (used_len) *used_len = len;
    return req_status;
}

static uint8_t rw(uint32_t type, uint64_t sector, void *buf, uint32_t bytes)
{
    struct seg s = {(uint64_t)buf, bytes, type == T_IN};
    return request(type, sector, &s, 1, 0);
}

// Write n sectors of tag at sector through rw, then read them back into buf_b and compare.
static void write_read(uint64_t sector, unsigned n, unsigned tag)
{
    fill(buf_a, sector, n, tag);
    CHECK_EQ(rw(T_OUT, sector, buf_a, n * SECTOR), ST_OK);
    memset(buf_b, 0x5a, n * SECTOR);
    CHECK_EQ(rw(T_IN, sector, buf_b, n * SECTOR), ST_OK);
    CHECK_EQ(check_pattern(buf_b, sector, n, tag), 0);
}

static uint8_t dz_request(uint32_t type, const struct dwz *r, unsigned n)
{
    static struct dwz segs[4];
    for (unsigned i = 0; i < n; i++)
        segs[i] = r[i];
    struct seg s = {(uint64_t)segs, n * (uint32_t)sizeof(struct dwz), 0};
    return request(type, 0, &s, 1, 0);
}

// --- the checks ---

// The layout the host test expects (virtio_blk_test.py keeps the same table).
#define MID (capacity / 2 - 3) // crosses a 64 KiB cluster boundary of a qcow2 image
#define LAST (capacity - 1)

static void writes_and_reads(void)
{
    uint32_t len;
    // The start: header, data, status (three descriptors).
    write_read(0, 8, 1);

    // The middle: 16 sectors from four data descriptors of odd sizes (the data is a byte stream over them).
    fill(buf_a, MID, 16, 2);
    struct seg four[4] = {{(uint64_t)buf_a, 1000, 0},
                          {(uint64_t)buf_a + 1000, 24, 0},
                          {(uint64_t)buf_a + 1024, 3072, 0},
                          {(uint64_t)buf_a + 4096, 4096, 0}};
    CHECK_EQ(request(T_OUT, MID, four, 4, &len), ST_OK);
    CHECK_EQ(len, 1); // only the status byte was written into the chain
    memset(buf_b, 0, 8192);
    struct seg three[3] = {
        {(uint64_t)buf_b, 512, 1}, {(uint64_t)buf_b + 512, 7000, 1}, {(uint64_t)buf_b + 7512, 680, 1}};
    CHECK_EQ(request(T_IN, MID, three, 3, &len), ST_OK);
    CHECK_EQ(len, 8192 + 1);
    CHECK_EQ(check_pattern(buf_b, MID, 16, 2), 0);

    // The last sector: header and data in one descriptor, status in another.
    static uint8_t hdr_and_data[sizeof(struct hdr) + SECTOR] __attribute__((aligned(16)));
    struct hdr h = {T_OUT, 0, LAST};
    memcpy(hdr_and_data, &h, sizeof h);
    fill(hdr_and_data + sizeof h, LAST, 1, 3);
    req_status = ST_NONE;
    struct seg two[2] = {{(uint64_t)hdr_and_data, sizeof hdr_and_data, 0}, {(uint64_t)&req_status, 1, 1}};
    chain(two, 2);
    CHECK_EQ(post_and_wait(0, &len), DONE);
    CHECK_EQ(req_status, ST_OK);
    // ... and read back with data and status in one descriptor.
    memset(small, 0xee, sizeof small);
    req_hdr = (struct hdr){T_IN, 0, LAST};
    struct seg rd2[2] = {{(uint64_t)&req_hdr, sizeof req_hdr, 0}, {(uint64_t)small, SECTOR + 1, 1}};
    chain(rd2, 2);
    CHECK_EQ(post_and_wait(0, &len), DONE);
    CHECK_EQ(len, SECTOR + 1);
    CHECK_EQ(small[SECTOR], ST_OK);
    CHECK_EQ(check_pattern(small, LAST, 1, 3), 0);

    // 100 KiB in one descriptor: more than the device moves at once.
    write_read(1000, 200, 4);

    // Every sector written so far still holds its pattern.
    CHECK_EQ(rw(T_IN, 0, buf_b, 8 * SECTOR), ST_OK);
    CHECK_EQ(check_pattern(buf_b, 0, 8, 1), 0);
    CHECK_EQ(rw(T_IN, MID, buf_b, 16 * SECTOR), ST_OK);
    CHECK_EQ(check_pattern(buf_b, MID, 16, 2), 0);

    if (has(F_FLUSH)) CHECK_EQ(request(T_FLUSH, 0, 0, 0, 0), ST_OK);
    rt_puts("virtio-blk: writes and reads OK\n");
}

static void zeroes_and_discard(void)
{
    if (has(F_WRITE_ZEROES)) {
        write_read(2048, 32, 5);
        // 2050..2053 plainly, 2060..2067 with unmap allowed: in one request if the device takes two ranges.
        struct dwz r[2] = {{2050, 4, 0}, {2060, 8, WZ_UNMAP}};
        if (max_wz_seg >= 2) {
            CHECK_EQ(dz_request(T_WRITE_ZEROES, r, 2), ST_OK);
        } else {
            CHECK_EQ(dz_request(T_WRITE_ZEROES, r, 1), ST_OK);
            CHECK_EQ(dz_request(T_WRITE_ZEROES, r + 1, 1), ST_OK);
        }
        CHECK_EQ(rw(T_IN, 2048, buf_b, 32 * SECTOR), ST_OK);
        CHECK_EQ(check_pattern(buf_b, 2048, 2, 5), 0);
        CHECK_EQ(check_pattern(buf_b + 2 * SECTOR, 2050, 4, 0), 0);
        CHECK_EQ(check_pattern(buf_b + 6 * SECTOR, 2054, 6, 5), 0);
        CHECK_EQ(check_pattern(buf_b + 12 * SECTOR, 2060, 8, 0), 0);
        CHECK_EQ(check_pattern(buf_b + 20 * SECTOR, 2068, 12, 5), 0);
        // A reserved flag bit is refused.
        struct dwz bad = {2048, 1, 0x80};
        CHECK_EQ(dz_request(T_WRITE_ZEROES, &bad, 1), ST_UNSUPP);
        rt_puts("virtio-blk: write-zeroes OK\n");
    }
    if (has(F_DISCARD)) {
        // What a discarded range reads as is the device's choice; the host test checks the image.
        write_read(4096, 256, 6);
        struct dwz r = {4096, 256, 0};
        CHECK_EQ(dz_request(T_DISCARD, &r, 1), ST_OK);
        rt_puts("virtio-blk: discard OK\n");
    }
}

static void get_id(void)
{
    static char id[21];
    memset(id, 0, sizeof id);
    uint32_t len;
    struct seg s = {(uint64_t)id, 20, 1};
    CHECK_EQ(request(T_GET_ID, 0, &s, 1, &len), ST_OK);
    rt_printf("virtio-blk: id '%s'\n", id);
}

static void bad_requests(void)
{
    // Past the end, partly past the end, far past the end: IOERR, nothing transferred.
    CHECK_EQ(rw(T_IN, capacity, buf_b, SECTOR), ST_IOERR);
    CHECK_EQ(rw(T_IN, LAST, buf_b, 2 * SECTOR), ST_IOERR);
    CHECK_EQ(rw(T_OUT, capacity, buf_a, SECTOR), ST_IOERR);
    CHECK_EQ(rw(T_IN, ~0ull, buf_b, SECTOR), ST_IOERR);
    CHECK_EQ(rw(T_OUT, ~0ull >> 9, buf_a, SECTOR), ST_IOERR);
    // Data that is not whole sectors.
    CHECK_EQ(rw(T_IN, 0, buf_b, 100), ST_IOERR);
    // An unknown request type.
    CHECK_EQ(rw(99, 0, buf_b, SECTOR), ST_UNSUPP);
    // The last sector is still what was written there.
    CHECK_EQ(rw(T_IN, LAST, buf_b, SECTOR), ST_OK);
    CHECK_EQ(check_pattern(buf_b, LAST, 1, 3), 0);
    rt_puts("virtio-blk: out-of-range requests refused\n");
}

// Re-initialize after a request that made the device ask for a reset (or reset itself).
static void expect_broken_then_reset(const char *what, int r)
{
    if (r != BROKEN && r != GONE) rt_printf("%s: %d\n", what, r);
    CHECK(r == BROKEN || r == GONE);
    device_init();
    write_read(8, 1, 7); // the device works again
}

// One raw chain from descriptors the caller filled in, at head 0.
static int raw_chain(uint32_t *len)
{
    return post_and_wait(0, len);
}

// Requests a buggy or malicious guest might make. keel answers a bad buffer with IOERR and a broken ring
// with DEVICE_NEEDS_RESET; QEMU (the reference run) marks the device broken for both.
static void malicious(void)
{
    uint32_t len;
    const uint64_t outside = RAM_BASE + RAM_SIZE; // nothing is mapped there

    // A read into memory outside RAM.
    if (!on_qemu) {
        CHECK_EQ(rw(T_IN, 0, (void *)outside, SECTOR), ST_IOERR);
        // A write from memory outside RAM.
        CHECK_EQ(rw(T_OUT, 0, (void *)outside, SECTOR), ST_IOERR);
        // A buffer running off the end of RAM.
        CHECK_EQ(rw(T_IN, 0, (void *)(outside - 256), SECTOR), ST_IOERR);
        // Huge lengths: 4 GiB - 512 in one descriptor, and a chain of them adding up past 2^32.
        CHECK_EQ(rw(T_IN, 0, buf_b, 0xfffffe00u), ST_IOERR);
        struct seg huge[3] = {{(uint64_t)buf_b, 0xfffffe00u, 1},
                              {(uint64_t)buf_b, 0xfffffe00u, 1},
                              {(uint64_t)buf_b, 0x400u, 1}};
        CHECK_EQ(request(T_IN, 0, huge, 3, &len), ST_IOERR);
        CHECK_EQ(rw(T_OUT, 0, buf_a, 0xfffffe00u), ST_IOERR);
        // An address whose end wraps around 2^64.
        CHECK_EQ(rw(T_IN, 0, (void *)0xffffffffffffff00ull, SECTOR), ST_IOERR);
        // The disk is unchanged by all that.
        CHECK_EQ(rw(T_IN, 0, buf_b, 8 * SECTOR), ST_OK);
        CHECK_EQ(check_pattern(buf_b, 0, 8, 1), 0);
        rt_puts("virtio-blk: bad buffers get IOERR\n");

        // DMA into the device's own registers: sector 2050 reads as zeroes (written above), so the first
        // 4 bytes land in QueueNotify as a notification of queue 0 while the request is being processed.
        CHECK(has(F_WRITE_ZEROES));
        struct seg notify[2] = {{base + R_QUEUE_NOTIFY, 4, 1}, {(uint64_t)buf_b, SECTOR - 4, 1}};
        memset(buf_b, 0xff, SECTOR);
        CHECK_EQ(request(T_IN, 2050, notify, 2, &len), ST_OK);
        for (unsigned i = 0; i < SECTOR - 4; i++)
            CHECK_EQ(buf_b[i], 0);
        write_read(8, 1, 7);
        // ... and into Status, which resets the device in the middle of the request.
        req_hdr = (struct hdr){T_IN, 0, 2050};
        req_status = ST_NONE;
        struct seg reset[3] = {{(uint64_t)&req_hdr, sizeof req_hdr, 0},
                               {base + R_STATUS, 4, 1},
                               {(uint64_t)buf_b, SECTOR - 4, 1}};
        struct seg st = {(uint64_t)&req_status, 1, 1};
        struct seg all[4] = {reset[0], reset[1], reset[2], st};
        chain(all, 4);
        expect_broken_then_reset("DMA into Status", raw_chain(&len));
        rt_puts("virtio-blk: DMA into the device's registers survived\n");
    }

    // A descriptor loop: 0 -> 1 -> 0.
    req_hdr = (struct hdr){T_IN, 0, 0};
    ring_desc[0] = (struct desc){(uint64_t)&req_hdr, sizeof req_hdr, DESC_NEXT, 1};
    ring_desc[1] = (struct desc){(uint64_t)buf_b, SECTOR, DESC_NEXT | DESC_WRITE, 0};
    expect_broken_then_reset("descriptor loop", raw_chain(&len));
    // A next index beyond the queue.
    ring_desc[0] = (struct desc){(uint64_t)&req_hdr, sizeof req_hdr, DESC_NEXT, 200};
    expect_broken_then_reset("next index beyond the queue", raw_chain(&len));
    // A chain with no device-writable descriptor: nowhere to put the status.
    ring_desc[0] = (struct desc){(uint64_t)&req_hdr, sizeof req_hdr, 0, 0};
    expect_broken_then_reset("no status byte", raw_chain(&len));
    if (!on_qemu) {
        // A descriptor table outside RAM.
        device_init_at(outside);
        expect_broken_then_reset("descriptor table outside RAM", raw_chain(&len));
    }
    rt_puts("virtio-blk: broken rings need a reset, and the device recovers\n");
}

// QEMU's device tree (at the top of RAM, 2 MiB aligned, on both boards) names its model; keel's does not.
static int running_on_qemu(void)
{
    const uint8_t *fdt = (const uint8_t *)(RAM_BASE + RAM_SIZE - (2ul << 20));
    if (fdt[0] != 0xd0 || fdt[1] != 0x0d || fdt[2] != 0xfe || fdt[3] != 0xed) return 0;
    uint32_t size = (uint32_t)fdt[4] << 24 | (uint32_t)fdt[5] << 16 | (uint32_t)fdt[6] << 8 | fdt[7];
    static const char want[] = "riscv-virtio,qemu";
    for (uint32_t i = 0; size > sizeof want && i < size - sizeof want; i++) {
        unsigned k = 0;
        while (k < sizeof want && fdt[i + k] == (uint8_t)want[k])
            k++;
        if (k == sizeof want) return 1;
    }
    return 0;
}

int main(void)
{
    on_qemu = running_on_qemu();
    for (unsigned i = 0; i < VIRTIO_SLOTS; i++) {
        uint64_t b = VIRTIO_BASE + i * VIRTIO_STRIDE;
        if (rd_at(b, R_MAGIC) == 0x74726976u && rd_at(b, R_VERSION) == 2 && rd_at(b, R_DEVICE_ID) == 2) {
            base = b;
            slot = i;
            break;
        }
    }
    if (!base) {
        rt_puts("virtio-blk: no block device on any virtio-mmio slot\n");
        return 1;
    }
    device_init();
    read_config();
    CHECK(capacity >= 8192);
    CHECK(seg_max >= 6);

    // Polling the used ring, interrupts suppressed.
    writes_and_reads();
    zeroes_and_discard();
    get_id();
    bad_requests();
    malicious();

    // Once more through the PLIC: interrupts on.
    use_irq = 1;
    irq_setup();
    device_init();
    write_read(8, 1, 7);
    CHECK_EQ(rw(T_IN, 0, buf_b, 8 * SECTOR), ST_OK);
    CHECK_EQ(check_pattern(buf_b, 0, 8, 1), 0);
    CHECK(irq_count >= 3);
    if (has(F_FLUSH)) CHECK_EQ(request(T_FLUSH, 0, 0, 0, 0), ST_OK);
    rt_printf("virtio-blk: %u interrupts taken\n", irq_count);

    wr(R_STATUS, 0);
    rt_puts("virtio-blk: all checks passed\n");
    return 0;
}
