/*
 * concat-sessions.c - makes a long polled trace out of real captures, for scripts/bench-check.sh:
 * one after the other, each capture is a session of its own (its SET_OWNER to its last event),
 * separated by a RESET_OWNER as a front-end that reconnects sends it; timestamps are shifted so
 * that time never goes backwards. Every capture must have the same header (the recorder's).
 * Whole sessions only: the output has at least EVENTS events, cut at the first session end past it.
 *
 *   cc -O2 -o concat-sessions scripts/bench/concat-sessions.c -I Specs/examples
 *   concat-sessions OUT EVENTS CAPTURE...
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "conformance_trace.h"

enum { EVENT = 40 };

static uint64_t le64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *b = malloc((size_t)n);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) { fprintf(stderr, "%s: read failed\n", path); exit(2); }
    fclose(f);
    *len = (size_t)n;
    return b;
}

int main(int argc, char **argv)
{
    if (argc < 4) { fprintf(stderr, "usage: concat-sessions OUT EVENTS CAPTURE...\n"); return 2; }
    uint64_t want = strtoull(argv[2], NULL, 10);
    int nf = argc - 3;
    uint8_t **cap = calloc((size_t)nf, sizeof *cap);
    size_t *len = calloc((size_t)nf, sizeof *len);
    size_t hsize = 0;
    for (int i = 0; i < nf; i++) {
        cap[i] = slurp(argv[3 + i], &len[i]);
        size_t h = (size_t)(cap[i][10] | cap[i][11] << 8);
        if (i == 0) hsize = h;
        if (h != hsize || memcmp(cap[i], cap[0], hsize) != 0 || (len[i] - h) % EVENT != 0) {
            fprintf(stderr, "%s: header differs from %s's (or a partial event)\n", argv[3 + i], argv[3]);
            return 2;
        }
    }
    FILE *out = fopen(argv[1], "wb");
    if (!out) { perror(argv[1]); return 2; }
    fwrite(cap[0], 1, hsize, out);
    uint64_t events = 0, shift = 0, last = 0;
    uint8_t ev[EVENT];
    for (int s = 0; events < want; s++) {
        const uint8_t *c = cap[s % nf];
        size_t n = (len[s % nf] - hsize) / EVENT;
        uint64_t first = n ? le64(c + hsize + 8) : 0;
        if (s > 0) {
            /* The previous session ends: RESET_OWNER (device-wide, result 0). */
            memset(ev, 0, sizeof ev);
            ev[0] = CT_RESET_OWNER;
            ev[2] = ev[3] = ev[4] = ev[5] = 0xFF;
            put64(ev + 8, ++last);
            fwrite(ev, 1, EVENT, out);
            events++;
        }
        shift = last + 1 - first; /* modular: the session starts one ns after the last event */
        for (size_t k = 0; k < n; k++) {
            memcpy(ev, c + hsize + k * EVENT, EVENT);
            uint64_t t = le64(ev + 8) + shift;
            put64(ev + 8, t);
            if (t > last) last = t;
            fwrite(ev, 1, EVENT, out);
        }
        events += n;
    }
    if (fclose(out) != 0) { perror(argv[1]); return 2; }
    printf("%llu events\n", (unsigned long long)events);
    return 0;
}
