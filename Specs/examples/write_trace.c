/*
 * Writes a small exact trace in conformance trace format v1 with conformance_trace.h: a vhost-user
 * device with one RX/TX pair (layout mq), preset rings of size 8, three packets transmitted on vq 1
 * and two buffers received on vq 0. With --lost-kick the driver forgets the kick after its last
 * buffer, which `conformance check` reports as VQ-KICK-MISSED.
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
#define CONFORMANCE_TRACE_IMPLEMENTATION
#include "conformance_trace.h"

#include <string.h>

static uint64_t now = 1000;
static uint64_t t(void) { return now += 10; } /* timestamps, ns; only their order matters here */

/* One buffer through one vq: the driver exposes a one-descriptor chain, the device uses it. */
static void buffer(ct_writer *w, uint16_t vq, uint16_t desc, uint16_t pos, uint32_t len, int writable,
                   uint16_t worker, int kick)
{
    ct_desc(w, vq, desc, 0x100000 + (uint64_t)desc * 0x1000, len, writable ? CT_DESC_WRITE : 0, 0, t());
    ct_avail_entry(w, vq, pos, desc, t());
    ct_avail_idx(w, vq, (uint16_t)(pos + 1), t());
    if (kick) ct_kick(w, vq, t());
    ct_service_begin(w, vq, worker, t());
    ct_avail_read(w, vq, worker, pos, desc, t());
    ct_used_entry(w, vq, worker, pos, desc, writable ? len : 0, t());
    ct_used_idx(w, vq, worker, (uint16_t)(pos + 1), t());
    ct_interrupt(w, vq, worker, t()); /* avail.flags is 0: the driver wants it */
    ct_service_end(w, vq, worker, t());
}

/* One packed ring as its driver and device see it: each side's next slot and wrap counter. */
struct packed_ring { uint16_t size, avail, used; int avail_wrap, used_wrap; };

/* One buffer through a packed vq: a one-descriptor buffer with id `id`, made available at the
 * driver's slot and marked used at the device's; each side flips its wrap counter after slot N-1. */
static void packed_buffer(ct_writer *w, struct packed_ring *r, uint16_t vq, uint16_t id, uint32_t len, int writable, uint16_t worker)
{
    uint16_t s = r->avail;
    /* addr, len and id first; then the flags store that makes it available */
    ct_packed_desc(w, vq, s, 0x100000 + (uint64_t)s * 0x1000, len, id, t());
    ct_packed_flags(w, vq, s, (uint16_t)((writable ? CT_DESC_WRITE : 0) | (r->avail_wrap ? CT_PACKED_F_AVAIL : CT_PACKED_F_USED)), t());
    if (++r->avail == r->size) { r->avail = 0; r->avail_wrap ^= 1; }
    ct_kick(w, vq, t());
    ct_service_begin(w, vq, worker, t());
    ct_packed_read(w, vq, worker, s, t());
    /* the used descriptor goes at the device's slot: id and len, then AVAIL = USED = its counter */
    uint16_t u = r->used;
    ct_packed_used(w, vq, worker, u, id, writable ? len : 0, t());
    ct_packed_used_flags(w, vq, worker, u, (uint16_t)((writable ? CT_DESC_WRITE : 0) | (r->used_wrap ? CT_PACKED_F_AVAIL | CT_PACKED_F_USED : 0)), t());
    if (++r->used == r->size) { r->used = 0; r->used_wrap ^= 1; }
    ct_interrupt(w, vq, worker, t()); /* the Driver Event Suppression is ENABLE (zeroed) */
    ct_service_end(w, vq, worker, t());
}

int main(int argc, char **argv)
{
    int packed = argc == 3 && strcmp(argv[1], "--packed") == 0;
    int lost_kick = argc == 3 && strcmp(argv[2], "--lost-kick") == 0;
    if (argc != 2 && !lost_kick && !packed) { fprintf(stderr, "usage: %s OUT.trace [--lost-kick] | --packed OUT.trace\n", argv[0]); return 2; }
    const char *path = packed ? argv[2] : argv[1];

    /* vq 0 = receiveq1, vq 1 = transmitq1; preset: owned, rings set up and started at index 0
     * (packed: slot 0, both wrap counters 1). workers 0: vhost-user's SET_OWNER takes no argument.
     * Features: VERSION_1 (bit 32), with --packed also RING_PACKED (bit 34); a packed size need not
     * be a power of two. */
    const uint16_t sizes[2] = {packed ? 3 : 8, packed ? 3 : 8};
    ct_writer w;
    if (ct_open(&w, path, CT_VHOST_USER, CT_LAYOUT_MQ, CT_HDR_PRESET, (1ull << 32) | (packed ? 1ull << 34 : 0), 0, 2, sizes) != 0) {
        perror(path);
        return 2;
    }
    if (packed) {
        struct packed_ring tx = {3, 0, 0, 1, 1}, rx = {3, 0, 0, 1, 1};
        for (uint16_t i = 0; i < 5; i++) packed_buffer(&w, &tx, 1, i % 2, 1514, 0, 7);  /* the wrap counters flip */
        for (uint16_t i = 0; i < 2; i++) packed_buffer(&w, &rx, 0, 10 + i, 2048, 1, 8);
        return ct_close(&w) == 0 ? 0 : 2;
    }
    for (uint16_t i = 0; i < 3; i++) buffer(&w, 1, i, i, 1514, 0, 7, 1);            /* TX on back-end thread 7 */
    for (uint16_t i = 0; i < 2; i++) buffer(&w, 0, i, i, 2048, 1, 8, !(lost_kick && i == 1)); /* RX on thread 8 */
    return ct_close(&w) == 0 ? 0 : 2;
}
