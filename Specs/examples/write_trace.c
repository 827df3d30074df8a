/*
 * Writes a small trace in conformance trace format v1 (Specs/trace-format.md), using nothing but
 * that document: a vhost-user device with one RX/TX pair (layout mq), preset rings of size 8,
 * three packets transmitted on vq 1 and two buffers received on vq 0.
 *
 * With --packed, the same device negotiates VIRTIO_F_RING_PACKED: rings of 3 descriptors (a packed
 * size need not be a power of two), five packets transmitted (so the wrap counters flip) and two
 * buffers received, each written as a packed driver and device would: the descriptor's addr, len
 * and id, then its flags (AVAIL = the driver's wrap counter, USED its inverse); the device writes
 * the used descriptor's id and len, then its flags (AVAIL = USED = its wrap counter).
 *
 *   cc -std=c11 -Wall -o write_trace write_trace.c && ./write_trace out.trace
 *   ./write_trace --packed packed.trace
 *   conformance check out.trace packed.trace
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { NONE = 0xFFFF };
enum {
    DESC = 0x20, AVAIL_ENTRY = 0x22, AVAIL_IDX = 0x23, KICK = 0x24,
    AVAIL_READ = 0x30, USED_ENTRY = 0x31, USED_IDX = 0x32, INTERRUPT = 0x33,
    SERVICE_BEGIN = 0x40, SERVICE_END = 0x41,
    PACKED_DESC = 0x28, PACKED_FLAGS = 0x29, PACKED_READ = 0x38, PACKED_USED = 0x39, PACKED_USED_FLAGS = 0x3A,
};
enum { F_NEXT = 1, F_WRITE = 2, F_AVAIL = 1 << 7, F_USED = 1 << 15 };

static FILE *out;
static uint64_t now = 1000;

static void le16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void le64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = v >> (8 * i); }

static void event(uint8_t kind, uint16_t vq, uint16_t worker, uint16_t aux, uint64_t p0, uint64_t p1, uint64_t p2)
{
    uint8_t e[40] = {0};
    e[0] = kind;            /* flags (byte 1) stay 0: exact, not sampled */
    le16(e + 2, vq);
    le16(e + 4, worker);
    le16(e + 6, aux);
    le64(e + 8, now += 10); /* timestamp, ns */
    le64(e + 16, p0);
    le64(e + 24, p1);
    le64(e + 32, p2);
    fwrite(e, 1, sizeof e, out);
}

/* p1 of a descriptor: len in bits 0-31, flags in 32-47, next in 48-63. */
static uint64_t desc_p1(uint32_t len, uint16_t flags, uint16_t next)
{
    return (uint64_t)len | (uint64_t)flags << 32 | (uint64_t)next << 48;
}

/* One buffer through one vq: driver exposes a one-descriptor chain, the device uses it. */
static void buffer(uint16_t vq, uint16_t desc, uint16_t pos, uint32_t len, int writable, uint16_t worker)
{
    event(DESC, vq, NONE, desc, 0x100000 + desc * 0x1000, desc_p1(len, writable ? F_WRITE : 0, 0), 0);
    event(AVAIL_ENTRY, vq, NONE, desc, pos, 0, 0);
    event(AVAIL_IDX, vq, NONE, 0, (uint16_t)(pos + 1), 0, 0);
    event(KICK, vq, NONE, 0, 0, 0, 0);
    event(SERVICE_BEGIN, vq, worker, 0, 0, 0, 0);
    event(AVAIL_READ, vq, worker, desc, pos, 0, 0);
    event(USED_ENTRY, vq, worker, 0, pos, desc, writable ? len : 0);
    event(USED_IDX, vq, worker, 0, (uint16_t)(pos + 1), 0, 0);
    event(INTERRUPT, vq, worker, 0, 0, 0, 0); /* avail.flags is 0: the driver wants it */
    event(SERVICE_END, vq, worker, 0, 0, 0, 0);
}

/* One packed ring as its driver and device see it: each side's next slot and wrap counter. */
struct packed_ring { uint16_t size, avail, used; int avail_wrap, used_wrap; };

/* One buffer through a packed vq: a one-descriptor buffer with id `id`, made available at the
 * driver's slot and marked used at the device's; each side flips its wrap counter after slot N-1. */
static void packed_buffer(struct packed_ring *r, uint16_t vq, uint16_t id, uint32_t len, int writable, uint16_t worker)
{
    uint16_t s = r->avail;
    /* addr, len and id first; then the flags store that makes it available */
    event(PACKED_DESC, vq, NONE, s, 0x100000 + s * 0x1000, (uint64_t)len | (uint64_t)id << 32, 0);
    event(PACKED_FLAGS, vq, NONE, s, (writable ? F_WRITE : 0) | (r->avail_wrap ? F_AVAIL : F_USED), 0, 0);
    if (++r->avail == r->size) { r->avail = 0; r->avail_wrap ^= 1; }
    event(KICK, vq, NONE, 0, 0, 0, 0);
    event(SERVICE_BEGIN, vq, worker, 0, 0, 0, 0);
    event(PACKED_READ, vq, worker, s, 0, 0, 0);
    /* the used descriptor goes at the device's slot: id and len, then AVAIL = USED = its counter */
    uint16_t u = r->used;
    event(PACKED_USED, vq, worker, u, 0, (uint64_t)(writable ? len : 0) | (uint64_t)id << 32, 0);
    event(PACKED_USED_FLAGS, vq, worker, u, (writable ? F_WRITE : 0) | (r->used_wrap ? F_AVAIL | F_USED : 0), 0, 0);
    if (++r->used == r->size) { r->used = 0; r->used_wrap ^= 1; }
    event(INTERRUPT, vq, worker, 0, 0, 0, 0); /* the Driver Event Suppression is ENABLE (zeroed) */
    event(SERVICE_END, vq, worker, 0, 0, 0, 0);
}

int main(int argc, char **argv)
{
    int packed = argc == 3 && strcmp(argv[1], "--packed") == 0;
    if (argc != 2 && !packed) { fprintf(stderr, "usage: %s [--packed] OUT.trace\n", argv[0]); return 2; }
    const char *path = argv[argc - 1];
    out = fopen(path, "wb");
    if (!out) { perror(path); return 2; }

    /* Header: 32 bytes + 2 queue sizes = 36, padded to 40. */
    uint8_t h[40] = {0};
    memcpy(h, "VIRTIOTR", 8);
    le16(h + 8, 1);               /* version */
    le16(h + 10, sizeof h);       /* header size */
    h[12] = 4;                    /* profile vhost-user */
    h[13] = 1;                    /* layout mq: vq 0 = receiveq1, vq 1 = transmitq1 */
    le16(h + 14, 2);              /* flags: preset */
    /* features: VERSION_1 (bit 32), with --packed also RING_PACKED (bit 34) */
    le64(h + 16, (1ULL << 32) | (packed ? 1ULL << 34 : 0));
    le16(h + 24, 2);              /* queue count */
    le16(h + 26, 0);              /* workers: legacy SET_OWNER */
    le16(h + 32, packed ? 3 : 8); /* size of vq 0 */
    le16(h + 34, packed ? 3 : 8); /* size of vq 1 */
    fwrite(h, 1, sizeof h, out);

    if (packed) {
        /* both wrap counters start at 1, at slot 0 */
        struct packed_ring tx = {3, 0, 0, 1, 1}, rx = {3, 0, 0, 1, 1};
        for (uint16_t i = 0; i < 5; i++) packed_buffer(&tx, 1, i % 2, 1514, 0, 7);
        for (uint16_t i = 0; i < 2; i++) packed_buffer(&rx, 0, 10 + i, 2048, 1, 8);
        return fclose(out) == 0 ? 0 : 2;
    }
    for (uint16_t i = 0; i < 3; i++) buffer(1, i, i, 1514, 0, 7);   /* TX on back-end thread 7 */
    for (uint16_t i = 0; i < 2; i++) buffer(0, i, i, 2048, 1, 8);   /* RX on back-end thread 8 */
    return fclose(out) == 0 ? 0 : 2;
}
