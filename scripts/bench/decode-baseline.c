/*
 * decode-baseline.c - the floor `conformance check` is measured against (scripts/bench-check.sh):
 * reads a trace (format v1, Specs/trace-format.md) in 1 MiB blocks, validates each event's kind and
 * vq as the checker's reader does (known kind; vq in range, or 0xFFFF where the kind allows none),
 * and counts events per vq. It judges nothing: it is what reading alone costs.
 *
 *   cc -O2 -o decode-baseline scripts/bench/decode-baseline.c -I Specs/examples
 *   decode-baseline FILE      # prints "EVENTS events, QUEUES queues, busiest vq N (COUNT)"
 * Exit 0, or 2 for a malformed trace (the message names the byte offset).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "conformance_trace.h"

#ifndef CT_USED_SLOT
#define CT_USED_SLOT 0x52 /* observation: a used ring slot as polled (not in the writer's header yet) */
#endif

enum { BLOCK = 1 << 20, EVENT = 40 };
/* vq use per kind: 0 unknown kind, 1 vq required, 2 vq optional (0xFFFF allowed), 3 device-wide. */
static uint8_t vq_use[256];

static void kinds(void)
{
    for (int k = CT_SET_OWNER; k <= CT_GET_FEATURES; k++) vq_use[k] = 2; /* control: most name a vq, some none */
    for (int k = CT_DESC; k <= CT_DRIVER_EVENT; k++) vq_use[k] = 1;
    for (int k = CT_AVAIL_READ; k <= CT_DEVICE_EVENT; k++) vq_use[k] = 1;
    vq_use[CT_SERVICE_BEGIN] = vq_use[CT_SERVICE_END] = 1;
    vq_use[CT_POLL] = 1; vq_use[CT_RING_GAP] = 2; vq_use[CT_USED_SLOT] = 1;
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: decode-baseline FILE\n"); return 2; }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror(argv[1]); return 2; }
    kinds();
    static uint8_t buf[BLOCK + EVENT];
    ssize_t n = read(fd, buf, 32);
    if (n != 32 || memcmp(buf, "VIRTIOTR", 8) != 0) { fprintf(stderr, "%s: not a trace\n", argv[1]); return 2; }
    size_t hsize = le16(buf + 10);
    unsigned nq = le16(buf + 24);
    if (hsize < 32 || lseek(fd, (off_t)hsize, SEEK_SET) < 0) { fprintf(stderr, "%s: bad header size\n", argv[1]); return 2; }
    uint64_t *count = calloc(nq + 1, sizeof *count); /* [nq]: device-wide events */
    uint64_t off = hsize, events = 0;
    size_t have = 0;
    for (;;) {
        n = read(fd, buf + have, BLOCK);
        if (n < 0) { perror(argv[1]); return 2; }
        if (n == 0) break;
        have += (size_t)n;
        size_t i = 0;
        for (; i + EVENT <= have; i += EVENT, off += EVENT) {
            const uint8_t *e = buf + i;
            uint8_t use = vq_use[e[0]];
            uint16_t vq = le16(e + 2);
            if (!use) { fprintf(stderr, "offset %llu: unknown event kind 0x%x\n", (unsigned long long)off, e[0]); return 2; }
            if (vq == CT_NONE ? use == 1 : (use == 3 || vq >= nq)) {
                fprintf(stderr, "offset %llu: vq %u out of range\n", (unsigned long long)off + 2, vq); return 2;
            }
            count[vq == CT_NONE ? nq : vq]++;
            events++;
        }
        memmove(buf, buf + i, have - i); /* a partial event carries over to the next block */
        have -= i;
    }
    if (have) { fprintf(stderr, "offset %llu: truncated event\n", (unsigned long long)off); return 2; }
    unsigned busiest = 0;
    for (unsigned q = 1; q < nq; q++) if (count[q] > count[busiest]) busiest = q;
    printf("%llu events, %u queues, busiest vq %u (%llu)\n", (unsigned long long)events, nq, busiest,
           (unsigned long long)(nq ? count[busiest] : 0));
    return 0;
}
