/*
 * Writes a small exact trace in conformance trace format v1 with conformance_trace.h: a vhost-user
 * device with one RX/TX pair (layout mq), preset rings of size 8, three packets transmitted on vq 1
 * and two buffers received on vq 0. With --lost-kick the driver forgets the kick after its last
 * buffer, which `conformance check` reports as VQ-KICK-MISSED.
 *
 *   cc -std=c11 -Wall -o write_trace write_trace.c && ./write_trace out.trace
 *   conformance check out.trace
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

int main(int argc, char **argv)
{
    int lost_kick = argc == 3 && strcmp(argv[2], "--lost-kick") == 0;
    if (argc != 2 && !lost_kick) { fprintf(stderr, "usage: %s OUT.trace [--lost-kick]\n", argv[0]); return 2; }

    /* vq 0 = receiveq1, vq 1 = transmitq1; preset: owned, rings set up and started at index 0.
     * workers 0: vhost-user's SET_OWNER takes no argument. */
    const uint16_t sizes[2] = {8, 8};
    ct_writer w;
    if (ct_open(&w, argv[1], CT_VHOST_USER, CT_LAYOUT_MQ, CT_HDR_PRESET, 1ull << 32 /* VERSION_1 */, 0, 2, sizes) != 0) {
        perror(argv[1]);
        return 2;
    }
    for (uint16_t i = 0; i < 3; i++) buffer(&w, 1, i, i, 1514, 0, 7, 1);            /* TX on back-end thread 7 */
    for (uint16_t i = 0; i < 2; i++) buffer(&w, 0, i, i, 2048, 1, 8, !(lost_kick && i == 1)); /* RX on thread 8 */
    return ct_close(&w) == 0 ? 0 : 2;
}
