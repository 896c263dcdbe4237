/* SPDX-License-Identifier: MIT */
/* virtio-blk (device ID 2, virtio 1.2 §5.2) over the virtio-mmio transport: one split virtqueue, a -drive. */
#include "virtio_mmio.h"

#include <stdlib.h>
#include <string.h>

/* Feature bits (virtio 1.2 §5.2.3). */
enum {
    VIRTIO_BLK_F_SEG_MAX = 2,
    VIRTIO_BLK_F_RO = 5,
    VIRTIO_BLK_F_BLK_SIZE = 6,
    VIRTIO_BLK_F_FLUSH = 9,
    VIRTIO_BLK_F_DISCARD = 13,
    VIRTIO_BLK_F_WRITE_ZEROES = 14,
};

/* Request types and status values (§5.2.6). */
enum {
    VIRTIO_BLK_T_IN = 0,
    VIRTIO_BLK_T_OUT = 1,
    VIRTIO_BLK_T_FLUSH = 4,
    VIRTIO_BLK_T_GET_ID = 8,
    VIRTIO_BLK_T_DISCARD = 11,
    VIRTIO_BLK_T_WRITE_ZEROES = 13,
};
enum {
    VIRTIO_BLK_S_OK = 0,
    VIRTIO_BLK_S_IOERR = 1,
    VIRTIO_BLK_S_UNSUPP = 2,
};
#define VIRTIO_BLK_WZ_FLAG_UNMAP 1u

/* Split virtqueue flags (§2.7). */
enum {
    VIRTQ_DESC_F_NEXT = 1,
    VIRTQ_DESC_F_WRITE = 2,
    VIRTQ_DESC_F_INDIRECT = 4,
};
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1u

#define BLK_QUEUE_MAX 256u
#define BLK_SEG_MAX (BLK_QUEUE_MAX - 2) /* a chain holds the header and the status byte besides the data */
#define SECTOR_SIZE 512u
#define HEADER_SIZE 16u           /* le32 type, le32 reserved, le64 sector */
#define DWZ_SEGMENT_SIZE 16u      /* le64 sector, le32 num_sectors, le32 flags */
#define DWZ_MAX_SECTORS 0x3fffffu /* per segment: 2 GiB - 512, so a segment's bytes fit 32 bits */
#define DWZ_MAX_SEGMENTS 16u      /* ranges in one discard or write-zeroes request */
#define ID_BYTES 20u              /* the GET_ID string: up to 20 bytes, no NUL if all are used */
#define BOUNCE_SIZE (64u * 1024u) /* data moves between guest RAM and the drive in pieces this big */
#define CONFIG_SIZE 60u           /* up to write_zeroes_may_unmap and its padding (no secure erase) */

typedef struct Segment {
    uint64_t addr;
    uint32_t len;
} Segment;

typedef struct VirtioBlk {
    KeelDrive *drive;
    uint64_t capacity; /* 512-byte sectors */
    bool read_only;
    bool
        broken; /* the ring was found broken: DEVICE_NEEDS_RESET is set, nothing is processed until a reset */
    uint16_t last_avail;
    uint16_t used_idx;
    /* A request's buffer may be this device's own registers (DMA into MMIO), so a notification or a reset
     * can arrive while a queue is being processed: busy turns a nested notification into `kicked` (another
     * pass afterwards), and every reset bumps `epoch` so the pass that saw one stops touching the ring. */
    bool busy;
    bool kicked;
    uint32_t epoch;
    uint8_t *bounce;
    /* the chain being processed, split into its device-readable and device-writable parts */
    Segment out[BLK_QUEUE_MAX];
    Segment in[BLK_QUEUE_MAX];
    unsigned nout, nin;
    uint64_t out_bytes, in_bytes;
    bool bad_address; /* a buffer whose address + length wraps around */
} VirtioBlk;

static uint64_t get_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_le(uint8_t *p, unsigned n, uint64_t v)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void blk_guest_error(VirtioMmio *s, const char *what)
{
    keel_services->log_mask(s->dev, KEEL_LOG_GUEST_ERROR, "virtio-blk: %s", what);
}

/* The ring itself cannot be trusted any more: tell the driver it must reset the device (§2.1.2), with a
 * configuration change notification since the driver may have set DRIVER_OK. */
static void ring_broken(VirtioMmio *s, VirtioBlk *b, const char *what)
{
    blk_guest_error(s, what);
    b->broken = true;
    s->status |= VIRTIO_STATUS_NEEDS_RESET;
    if (s->status & VIRTIO_STATUS_DRIVER_OK) virtio_mmio_notify(s, VIRTIO_MMIO_INT_CONFIG);
}

static bool negotiated(const VirtioMmio *s, unsigned bit)
{
    return (s->driver_features >> bit) & 1;
}

/*
 * Follow the chain from @head into b->out/b->in. False (with the reason in *@why) for a broken chain: an
 * index past the queue, more descriptors than the queue has (a loop), a descriptor table outside RAM, an
 * indirect descriptor (VIRTIO_F_INDIRECT_DESC is not offered) or a device-readable descriptor after a
 * device-writable one (§2.7.4.2), none of which leaves a status byte the device could trust.
 */
static bool walk_chain(VirtioMmio *s, VirtioBlk *b, const VirtioQueue *q, uint32_t head, const char **why)
{
    const KeelServices *k = keel_services;
    uint32_t idx = head;
    b->nout = b->nin = 0;
    b->out_bytes = b->in_bytes = 0;
    b->bad_address = false;
    for (unsigned n = 0;; n++) {
        if (idx >= q->num) return *why = "descriptor index beyond the queue size", false;
        if (n >= q->num) return *why = "descriptor chain longer than the queue (a loop)", false;
        uint8_t d[16];
        if (k->dma_read(s->dev, q->desc + 16ull * idx, d, sizeof d) != KEEL_MEM_OK)
            return *why = "descriptor table outside guest RAM", false;
        Segment seg = {get_le(d, 8), (uint32_t)get_le(d + 8, 4)};
        uint16_t flags = (uint16_t)get_le(d + 12, 2);
        if (flags & VIRTQ_DESC_F_INDIRECT)
            return *why = "indirect descriptor, which was not negotiated", false;
        if (seg.len && seg.addr + seg.len - 1 < seg.addr) b->bad_address = true;
        if (flags & VIRTQ_DESC_F_WRITE) {
            b->in[b->nin++] = seg;
            b->in_bytes += seg.len;
        } else {
            if (b->nin) return *why = "device-readable descriptor after a device-writable one", false;
            b->out[b->nout++] = seg;
            b->out_bytes += seg.len;
        }
        if (!(flags & VIRTQ_DESC_F_NEXT)) return true;
        idx = (uint16_t)get_le(d + 14, 2);
    }
}

/* Copy @len bytes at byte @pos of the scatter list @segs to or from @buf. False if guest RAM refuses. */
static bool copy_segments(VirtioMmio *s, const Segment *segs, unsigned n, uint64_t pos, uint8_t *buf,
                          uint64_t len, bool to_guest)
{
    const KeelServices *k = keel_services;
    for (unsigned i = 0; i < n && len; i++) {
        if (pos >= segs[i].len) {
            pos -= segs[i].len;
            continue;
        }
        uint64_t chunk = segs[i].len - pos;
        if (chunk > len) chunk = len;
        uint64_t addr = segs[i].addr + pos;
        KeelMemResult r =
            to_guest ? k->dma_write(s->dev, addr, buf, chunk) : k->dma_read(s->dev, addr, buf, chunk);
        if (r != KEEL_MEM_OK) return false;
        buf += chunk;
        len -= chunk;
        pos = 0;
    }
    return len == 0;
}

/* Whether @bytes at @sector lie inside the drive (and are whole sectors). */
static bool range_ok(const VirtioBlk *b, uint64_t sector, uint64_t bytes)
{
    if (bytes % SECTOR_SIZE) return false;
    return sector <= b->capacity && bytes / SECTOR_SIZE <= b->capacity - sector;
}

/* IN: the drive's bytes into the writable part of the chain, but for its last byte (the status). */
static uint8_t do_read(VirtioMmio *s, VirtioBlk *b, uint64_t sector, uint64_t *written)
{
    const KeelServices *k = keel_services;
    uint64_t len = b->in_bytes - 1;
    if (!range_ok(b, sector, len)) return VIRTIO_BLK_S_IOERR;
    for (uint64_t done = 0; done < len;) {
        uint64_t n = len - done < BOUNCE_SIZE ? len - done : BOUNCE_SIZE;
        KeelIoVec iov = {b->bounce, (size_t)n};
        if (k->drive_preadv(b->drive, sector * SECTOR_SIZE + done, &iov, 1, NULL) != KEEL_OK)
            return VIRTIO_BLK_S_IOERR;
        if (!copy_segments(s, b->in, b->nin, done, b->bounce, n, true)) return VIRTIO_BLK_S_IOERR;
        done += n;
        *written = done;
    }
    return VIRTIO_BLK_S_OK;
}

/* OUT: the readable bytes after the header onto the drive. */
static uint8_t do_write(VirtioMmio *s, VirtioBlk *b, uint64_t sector)
{
    const KeelServices *k = keel_services;
    uint64_t len = b->out_bytes - HEADER_SIZE;
    if (b->read_only) return VIRTIO_BLK_S_IOERR; /* §5.2.6.2: with VIRTIO_BLK_F_RO, nothing is written */
    if (!range_ok(b, sector, len)) return VIRTIO_BLK_S_IOERR;
    for (uint64_t done = 0; done < len;) {
        uint64_t n = len - done < BOUNCE_SIZE ? len - done : BOUNCE_SIZE;
        if (!copy_segments(s, b->out, b->nout, HEADER_SIZE + done, b->bounce, n, false))
            return VIRTIO_BLK_S_IOERR;
        KeelIoVec iov = {b->bounce, (size_t)n};
        if (k->drive_pwritev(b->drive, sector * SECTOR_SIZE + done, &iov, 1, NULL) != KEEL_OK)
            return VIRTIO_BLK_S_IOERR;
        done += n;
    }
    /* Without VIRTIO_BLK_F_FLUSH the driver expects a write-through device (§5.2.6.3). */
    if (!negotiated(s, VIRTIO_BLK_F_FLUSH) && k->drive_flush(b->drive, NULL) != KEEL_OK)
        return VIRTIO_BLK_S_IOERR;
    return VIRTIO_BLK_S_OK;
}

static uint8_t do_get_id(VirtioMmio *s, VirtioBlk *b, uint64_t *written)
{
    uint8_t id[ID_BYTES] = {0};
    const char *name = keel_services->drive_id(b->drive);
    size_t n = name ? strlen(name) : 0;
    memcpy(id, name, n < ID_BYTES ? n : ID_BYTES);
    uint64_t len = b->in_bytes - 1 < ID_BYTES ? b->in_bytes - 1 : ID_BYTES;
    if (!copy_segments(s, b->in, b->nin, 0, id, len, true)) return VIRTIO_BLK_S_IOERR;
    *written = len;
    return VIRTIO_BLK_S_OK;
}

/* DISCARD and WRITE_ZEROES: every range is checked before any is acted on, so a bad request changes nothing.
 */
static uint8_t do_discard_write_zeroes(VirtioMmio *s, VirtioBlk *b, uint32_t type)
{
    const KeelServices *k = keel_services;
    bool discard = type == VIRTIO_BLK_T_DISCARD;
    if (!negotiated(s, discard ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES))
        return VIRTIO_BLK_S_UNSUPP;
    uint64_t len = b->out_bytes - HEADER_SIZE;
    if (len == 0 || len % DWZ_SEGMENT_SIZE || len / DWZ_SEGMENT_SIZE > DWZ_MAX_SEGMENTS)
        return VIRTIO_BLK_S_IOERR;
    unsigned nseg = (unsigned)(len / DWZ_SEGMENT_SIZE);
    uint8_t raw[DWZ_MAX_SEGMENTS * DWZ_SEGMENT_SIZE];
    if (!copy_segments(s, b->out, b->nout, HEADER_SIZE, raw, len, false)) return VIRTIO_BLK_S_IOERR;
    for (unsigned i = 0; i < nseg; i++) {
        const uint8_t *r = raw + i * DWZ_SEGMENT_SIZE;
        uint64_t sector = get_le(r, 8);
        uint32_t num = (uint32_t)get_le(r + 8, 4), flags = (uint32_t)get_le(r + 12, 4);
        /* §5.2.6.2: unmap is meaningless for discard, and reserved flag bits are refused for both. */
        if (flags & ~(discard ? 0u : VIRTIO_BLK_WZ_FLAG_UNMAP)) return VIRTIO_BLK_S_UNSUPP;
        if (num > DWZ_MAX_SECTORS || !range_ok(b, sector, (uint64_t)num * SECTOR_SIZE))
            return VIRTIO_BLK_S_IOERR;
    }
    if (b->read_only) return VIRTIO_BLK_S_IOERR;
    for (unsigned i = 0; i < nseg; i++) {
        const uint8_t *r = raw + i * DWZ_SEGMENT_SIZE;
        uint64_t off = get_le(r, 8) * SECTOR_SIZE, bytes = get_le(r + 8, 4) * SECTOR_SIZE;
        uint32_t flags = (uint32_t)get_le(r + 12, 4);
        if (!bytes) continue;
        int rc = discard ? k->drive_discard(b->drive, off, bytes, NULL)
                         : k->drive_write_zeroes(b->drive, off, bytes,
                                                 flags & VIRTIO_BLK_WZ_FLAG_UNMAP ? KEEL_BLOCK_MAY_UNMAP : 0,
                                                 NULL);
        if (rc != KEEL_OK) return VIRTIO_BLK_S_IOERR;
    }
    return VIRTIO_BLK_S_OK;
}

/*
 * Process the chain at @head. Returns the used length (bytes written into the chain, status included), or
 * -1 if the ring is broken. The header, data and status are a byte stream over the descriptors, however the
 * driver split them (§2.6.4): the header is the first 16 readable bytes, the status the last writable one.
 */
static int64_t process_request(VirtioMmio *s, VirtioBlk *b, const VirtioQueue *q, uint32_t head)
{
    const char *why = NULL;
    if (!walk_chain(s, b, q, head, &why)) {
        ring_broken(s, b, why);
        return -1;
    }
    if (b->in_bytes == 0) {
        ring_broken(s, b, "request without a device-writable status byte");
        return -1;
    }
    uint64_t written = 0;
    uint8_t status = VIRTIO_BLK_S_IOERR;
    uint8_t hdr[HEADER_SIZE];
    if (b->bad_address) {
        blk_guest_error(s, "buffer address + length wraps around");
    } else if (b->out_bytes < HEADER_SIZE) {
        blk_guest_error(s, "request header shorter than 16 bytes");
    } else if (!copy_segments(s, b->out, b->nout, 0, hdr, HEADER_SIZE, false)) {
        blk_guest_error(s, "request header outside guest RAM");
    } else {
        uint32_t type = (uint32_t)get_le(hdr, 4);
        uint64_t sector = get_le(hdr + 8, 8);
        switch (type) {
        case VIRTIO_BLK_T_IN:
            status = do_read(s, b, sector, &written);
            break;
        case VIRTIO_BLK_T_OUT:
            status = do_write(s, b, sector);
            break;
        case VIRTIO_BLK_T_FLUSH:
            status =
                keel_services->drive_flush(b->drive, NULL) == KEEL_OK ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
            break;
        case VIRTIO_BLK_T_GET_ID:
            status = do_get_id(s, b, &written);
            break;
        case VIRTIO_BLK_T_DISCARD:
        case VIRTIO_BLK_T_WRITE_ZEROES:
            status = do_discard_write_zeroes(s, b, type);
            break;
        default:
            status = VIRTIO_BLK_S_UNSUPP;
            break;
        }
    }
    /* The status byte is the last writable byte; the data never reaches it (IN and GET_ID stop before). */
    uint64_t status_pos = b->in_bytes - 1;
    if (!copy_segments(s, b->in, b->nin, status_pos, &status, 1, true)) {
        blk_guest_error(s, "status byte outside guest RAM");
        return (int64_t)written;
    }
    return (int64_t)written + 1;
}

/* One pass over the available ring. @q is a copy: a reset in the middle of a request (a DMA write into
 * Status or QueueReset) clears the transport's queue registers, and the pass then stops at once. */
static void process_queue(VirtioMmio *s, VirtioBlk *b, VirtioQueue q)
{
    const KeelServices *k = keel_services;
    uint32_t epoch = b->epoch;
    if (b->broken) return;
    if (!(s->status & VIRTIO_STATUS_DRIVER_OK)) {
        blk_guest_error(s, "queue notified before DRIVER_OK");
        return;
    }
    if (q.num == 0) {
        ring_broken(s, b, "queue made ready without a size");
        return;
    }
    uint8_t raw[8];
    if (k->dma_read(s->dev, q.driver + 2, raw, 2) != KEEL_MEM_OK) {
        ring_broken(s, b, "available ring outside guest RAM");
        return;
    }
    uint16_t avail_idx = (uint16_t)get_le(raw, 2);
    if ((uint16_t)(avail_idx - b->last_avail) > q.num) {
        ring_broken(s, b, "available index moved past more entries than the queue has");
        return;
    }
    bool completed = false;
    while (b->last_avail != avail_idx) {
        if (k->dma_read(s->dev, q.driver + 4 + 2ull * (b->last_avail % q.num), raw, 2) != KEEL_MEM_OK) {
            ring_broken(s, b, "available ring outside guest RAM");
            break;
        }
        uint32_t head = (uint32_t)get_le(raw, 2);
        int64_t len = process_request(s, b, &q, head);
        if (b->epoch != epoch) {
            blk_guest_error(s, "device reset by a DMA write of its own request: request dropped");
            return;
        }
        if (len < 0) break;
        put_le(raw, 4, head);
        put_le(raw + 4, 4, (uint64_t)len);
        uint8_t idx[2];
        put_le(idx, 2, (uint16_t)(b->used_idx + 1));
        /* The element before the index that publishes it (§2.7.8). */
        if (k->dma_write(s->dev, q.device + 4 + 8ull * (b->used_idx % q.num), raw, 8) != KEEL_MEM_OK ||
            k->dma_write(s->dev, q.device + 2, idx, 2) != KEEL_MEM_OK) {
            ring_broken(s, b, "used ring outside guest RAM");
            break;
        }
        if (b->epoch != epoch) return; /* the used ring was this device's registers too */
        b->used_idx++;
        b->last_avail++;
        completed = true;
    }
    if (!completed) return;
    if (k->dma_read(s->dev, q.driver, raw, 2) != KEEL_MEM_OK) {
        ring_broken(s, b, "available ring outside guest RAM");
        return;
    }
    if (!(get_le(raw, 2) & VIRTQ_AVAIL_F_NO_INTERRUPT)) virtio_mmio_notify(s, VIRTIO_MMIO_INT_VRING);
}

/* Passes a notification that arrived during processing may add before the guest must notify again. */
#define MAX_PASSES 8

static void blk_queue_notify(VirtioMmio *s, unsigned queue)
{
    VirtioBlk *b = s->backend_state;
    if (b->busy) {
        b->kicked = true; /* never re-enter: the chain being processed lives in b */
        return;
    }
    b->busy = true;
    for (unsigned pass = 0; pass < MAX_PASSES; pass++) {
        b->kicked = false;
        process_queue(s, b, s->queues[queue]);
        if (!b->kicked) break;
    }
    b->busy = false;
}

/* The configuration space (§5.2.4), little-endian. */
static uint32_t blk_config_read(VirtioMmio *s, uint32_t offset, unsigned width)
{
    VirtioBlk *b = s->backend_state;
    uint8_t c[CONFIG_SIZE] = {0};
    put_le(c + 0, 8, b->capacity);
    put_le(c + 12, 4, BLK_SEG_MAX);
    put_le(c + 20, 4, SECTOR_SIZE);      /* blk_size */
    put_le(c + 34, 2, 1);                /* num_queues (meaningful with VIRTIO_BLK_F_MQ only) */
    put_le(c + 36, 4, DWZ_MAX_SECTORS);  /* max_discard_sectors */
    put_le(c + 40, 4, DWZ_MAX_SEGMENTS); /* max_discard_seg */
    put_le(c + 44, 4, 1);                /* discard_sector_alignment, in sectors */
    put_le(c + 48, 4, DWZ_MAX_SECTORS);  /* max_write_zeroes_sectors */
    put_le(c + 52, 4, DWZ_MAX_SEGMENTS); /* max_write_zeroes_seg */
    c[56] = 1;                           /* write_zeroes_may_unmap */
    return (uint32_t)get_le(c + offset, width);
}

static void blk_config_write(VirtioMmio *s, uint32_t offset, unsigned width, uint32_t value)
{
    (void)offset;
    (void)width;
    (void)value;
    /* Only `writeback` is writable, and only with VIRTIO_BLK_F_CONFIG_WCE, which is not offered. */
    blk_guest_error(s, "write to the read-only configuration space");
}

static void blk_reset(VirtioMmio *s)
{
    VirtioBlk *b = s->backend_state;
    b->last_avail = b->used_idx = 0;
    b->broken = false;
    b->epoch++;
}

static void blk_queue_reset(VirtioMmio *s, unsigned queue)
{
    (void)queue;
    blk_reset(s);
}

static int blk_realize(VirtioMmio *s, KeelError *err)
{
    const KeelServices *k = keel_services;
    if (!s->drive) {
        k->error_set(err, "virtio-blk (device-id 2) needs a drive: drive=ID");
        return KEEL_ERR;
    }
    VirtioBlk *b = calloc(1, sizeof(*b));
    uint8_t *bounce = malloc(BOUNCE_SIZE);
    if (!b || !bounce) {
        free(b);
        free(bounce);
        k->error_set(err, "out of memory for virtio-blk");
        return KEEL_ERR;
    }
    b->drive = s->drive;
    b->bounce = bounce;
    b->capacity = k->drive_length(s->drive) / SECTOR_SIZE; /* a partial last sector is not reachable */
    b->read_only = k->drive_read_only(s->drive);
    if (b->read_only) s->features |= 1ull << VIRTIO_BLK_F_RO;
    s->backend_state = b;
    return KEEL_OK;
}

static void blk_unrealize(VirtioMmio *s)
{
    VirtioBlk *b = s->backend_state;
    if (!b) return;
    free(b->bounce);
    free(b);
    s->backend_state = NULL;
}

const VirtioBackend virtio_blk_backend = {
    .device_id = 2,
    .name = "block",
    .features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_BLK_F_SEG_MAX) |
                (1ull << VIRTIO_BLK_F_BLK_SIZE) | (1ull << VIRTIO_BLK_F_FLUSH) |
                (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES),
    .num_queues = 1,
    .queue_num_max = BLK_QUEUE_MAX,
    .config_size = CONFIG_SIZE,
    .realize = blk_realize,
    .unrealize = blk_unrealize,
    .config_read = blk_config_read,
    .config_write = blk_config_write,
    .queue_notify = blk_queue_notify,
    .reset = blk_reset,
    .queue_reset = blk_queue_reset,
    .takes_drive = true,
};
