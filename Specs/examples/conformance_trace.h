/*
 * conformance_trace.h - write conformance trace format v1 (Specs/trace-format.md) from C, C++ or,
 * through its C ABI, Rust. Single header, no dependency beyond the C standard library (stdio, stdint;
 * clock_gettime for ct_now_ns where POSIX has it).
 *
 * SPDX-License-Identifier: MIT
 * Copyright (c) the conformance project authors.
 * Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
 * associated documentation files (the "Software"), to deal in the Software without restriction,
 * including without limitation the rights to use, copy, modify, merge, publish, distribute,
 * sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
 * furnished to do so, subject to the following conditions: The above copyright notice and this
 * permission notice shall be included in all copies or substantial portions of the Software.
 * THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED.
 *
 * Use: in exactly one C file,
 *     #define CONFORMANCE_TRACE_IMPLEMENTATION
 *     #include "conformance_trace.h"
 * and include it plainly everywhere else. Every function returns 0 on success and -1 on error; the
 * first error sticks (ct_error() says which) and later calls do nothing, so a writer can check once
 * at ct_close(). A writer is not thread-safe: give each thread its own, or serialize the calls; the
 * order of the calls is the order of the events, which is what the checker judges.
 *
 * Rust: compile the implementation once (e.g. the cc crate on a .c file holding the two lines
 * above) and declare what you call, e.g.
 *     #[repr(C)] pub struct CtWriter { f: *mut c_void, nqueues: u16, error: c_int, events: u64 }
 *     extern "C" { fn ct_open(w: *mut CtWriter, path: *const c_char, profile: c_int, layout: c_int,
 *                             flags: u16, features: u64, workers: u16, nqueues: u16,
 *                             sizes: *const u16) -> c_int; ... }
 * Specs/examples/write_trace.rs does exactly this.
 */
#ifndef CONFORMANCE_TRACE_H
#define CONFORMANCE_TRACE_H

#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CT_VERSION 1
#define CT_NONE 0xFFFFu          /* vq or worker: none / not known */
#define CT_MAX_QUEUES 32748u     /* the header's 16-bit size field */

/* Header: profile (byte 12), queue layout (byte 13), flags (bytes 14-15). */
enum ct_profile { CT_SEED_RFC2 = 0, CT_SEED_RFC1 = 1, CT_LINUX_UPSTREAM = 2, CT_LINUX_WORKERS = 3, CT_VHOST_USER = 4 };
enum ct_layout { CT_LAYOUT_SEED = 0, CT_LAYOUT_MQ = 1 };
enum { CT_HDR_SAMPLED = 1, CT_HDR_PRESET = 2 };
/* Event flags (byte 1). */
enum { CT_EV_SAMPLED = 1 };
/* Descriptor flags. */
enum { CT_DESC_NEXT = 1, CT_DESC_WRITE = 2, CT_DESC_INDIRECT = 4 };
/* Packed descriptor flags (NEXT, WRITE, INDIRECT as above): AVAIL bit 7, USED bit 15. */
enum { CT_PACKED_F_AVAIL = 1 << 7, CT_PACKED_F_USED = 1 << 15 };
/* vhost-user KICK/CALL/ERR payload: no fd passed. Kernel vhost uses fd -1 instead. */
#define CT_NOFD 0x100u
#define CT_FD_NONE UINT64_MAX

/* Event kinds (the event table of Specs/trace-format.md). */
enum ct_kind {
    CT_SET_OWNER = 0x01, CT_RESET_OWNER = 0x02, CT_SET_FEATURES = 0x03, CT_SET_PROTOCOL_FEATURES = 0x04,
    CT_GET_QUEUE_NUM = 0x05, CT_SET_MEM_TABLE = 0x06, CT_SET_VRING_NUM = 0x07, CT_SET_VRING_ADDR = 0x08,
    CT_SET_VRING_BASE = 0x09, CT_GET_VRING_BASE = 0x0A, CT_SET_VRING_KICK = 0x0B, CT_SET_VRING_CALL = 0x0C,
    CT_SET_VRING_ENABLE = 0x0D, CT_NEW_WORKER = 0x0E, CT_FREE_WORKER = 0x0F, CT_ATTACH_VRING_WORKER = 0x10,
    CT_SET_BACKEND = 0x11, CT_MQ_PAIRS_SET = 0x12, CT_MQ_PAIRS_ACK = 0x13, CT_SET_VRING_ERR = 0x14,
    CT_SET_STATUS = 0x15, CT_GET_STATUS = 0x16, CT_SET_BACKEND_REQ_FD = 0x17, CT_MEM_REGION = 0x18,
    CT_GET_PROTOCOL_FEATURES = 0x19, CT_VRING_KICK_MSG = 0x1A, CT_BACKEND_VRING_CALL = 0x1B,
    CT_SET_LOG_BASE = 0x1C, CT_VRING_LOG = 0x1D, CT_RESET_DEVICE = 0x1E, CT_GET_FEATURES = 0x1F,
    CT_DESC = 0x20, CT_INDIRECT_DESC = 0x21, CT_AVAIL_ENTRY = 0x22, CT_AVAIL_IDX = 0x23, CT_KICK = 0x24,
    CT_AVAIL_FLAGS = 0x25, CT_USED_EVENT = 0x26, CT_RING_RESET = 0x27,
    CT_PACKED_DESC = 0x28, CT_PACKED_FLAGS = 0x29, CT_PACKED_INDIRECT_DESC = 0x2A, CT_DRIVER_EVENT = 0x2B,
    CT_AVAIL_READ = 0x30, CT_USED_ENTRY = 0x31, CT_USED_IDX = 0x32, CT_INTERRUPT = 0x33, CT_USED_FLAGS = 0x34,
    CT_AVAIL_EVENT = 0x35, CT_RX_HEADER = 0x36, CT_LOG_DIRTY = 0x37,
    CT_PACKED_READ = 0x38, CT_PACKED_USED = 0x39, CT_PACKED_USED_FLAGS = 0x3A, CT_DEVICE_EVENT = 0x3B,
    CT_SERVICE_BEGIN = 0x40, CT_SERVICE_END = 0x41,
    CT_POLL = 0x50, CT_RING_GAP = 0x51, CT_USED_SLOT = 0x52, CT_CAPTURE_END = 0x53
};

typedef struct ct_writer {
    FILE *f;
    uint16_t nqueues;
    int error;        /* 0, or the first error: 1 I/O, 2 bad argument (vq out of range, too many queues) */
    uint64_t events;  /* events written */
} ct_writer;

/* Opens `path` and writes the header: `nqueues` sizes (0 = "set later by set_vring_num"). */
int ct_open(ct_writer *w, const char *path, int profile, int layout, uint16_t flags, uint64_t features,
            uint16_t workers, uint16_t nqueues, const uint16_t *sizes);
/* Writes the header to an open stream instead (the writer does not close it). */
int ct_start(ct_writer *w, FILE *f, int profile, int layout, uint16_t flags, uint64_t features,
             uint16_t workers, uint16_t nqueues, const uint16_t *sizes);
/* One raw event: 40 bytes, little-endian. Prefer the helpers below. */
int ct_event(ct_writer *w, uint8_t kind, uint8_t flags, uint16_t vq, uint16_t worker, uint16_t aux,
             uint64_t ts, uint64_t p0, uint64_t p1, uint64_t p2);
/* Flushes and closes; returns -1 if any call failed. */
int ct_close(ct_writer *w);
int ct_error(const ct_writer *w);
/* A monotonic timestamp in nanoseconds (0 where the platform has no monotonic clock). */
uint64_t ct_now_ns(void);

/* Control plane: `result` is 0 or -errno as the back-end answered; `value` is the kind's p0 field. */
int ct_control(ct_writer *w, uint8_t kind, uint16_t vq, uint64_t value, int16_t result, uint64_t ts);
int ct_set_vring_addr(ct_writer *w, uint16_t vq, uint64_t desc, uint64_t avail, uint64_t used, int16_t result, uint64_t ts);
int ct_mem_region(ct_writer *w, uint16_t index, uint64_t guest, uint64_t size, uint64_t user, uint64_t ts);
int ct_vring_log(ct_writer *w, uint16_t vq, uint64_t log_guest_addr, uint32_t flags, uint64_t ts);

/* Driver. */
int ct_desc(ct_writer *w, uint16_t vq, uint16_t idx, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next, uint64_t ts);
int ct_indirect_desc(ct_writer *w, uint16_t vq, uint16_t parent, uint16_t idx, uint64_t addr, uint32_t len,
                     uint16_t flags, uint16_t next, uint64_t ts);
int ct_avail_entry(ct_writer *w, uint16_t vq, uint16_t pos, uint16_t head, uint64_t ts);
int ct_avail_idx(ct_writer *w, uint16_t vq, uint16_t idx, uint64_t ts);
int ct_kick(ct_writer *w, uint16_t vq, uint64_t ts);
int ct_avail_flags(ct_writer *w, uint16_t vq, uint16_t flags, uint64_t ts);
int ct_used_event(ct_writer *w, uint16_t vq, uint16_t idx, uint64_t ts);
int ct_ring_reset(ct_writer *w, uint16_t vq, uint64_t ts);

/* Device (worker: the thread doing it, or CT_NONE). */
int ct_avail_read(ct_writer *w, uint16_t vq, uint16_t worker, uint16_t pos, uint16_t head, uint64_t ts);
int ct_used_entry(ct_writer *w, uint16_t vq, uint16_t worker, uint16_t pos, uint32_t id, uint32_t len, uint64_t ts);
int ct_used_idx(ct_writer *w, uint16_t vq, uint16_t worker, uint16_t idx, uint64_t ts);
int ct_interrupt(ct_writer *w, uint16_t vq, uint16_t worker, uint64_t ts);
int ct_used_flags(ct_writer *w, uint16_t vq, uint16_t worker, uint16_t flags, uint64_t ts);
int ct_avail_event(ct_writer *w, uint16_t vq, uint16_t worker, uint16_t idx, uint64_t ts);
int ct_rx_header(ct_writer *w, uint16_t vq, uint16_t worker, uint16_t pos, uint16_t num_buffers,
                 uint8_t hdr_flags, uint8_t gso_type, uint64_t ts);
int ct_log_dirty(ct_writer *w, uint16_t vq, uint16_t worker, uint64_t addr, uint32_t len, uint64_t ts);

/* Packed rings (VIRTIO_F_RING_PACKED): a descriptor's addr, len and id, then the flags store that
 * makes it available; the device's used descriptor's id and len, then its flags. */
int ct_packed_desc(ct_writer *w, uint16_t vq, uint16_t slot, uint64_t addr, uint32_t len, uint16_t id, uint64_t ts);
int ct_packed_flags(ct_writer *w, uint16_t vq, uint16_t slot, uint16_t flags, uint64_t ts);
int ct_packed_read(ct_writer *w, uint16_t vq, uint16_t worker, uint16_t slot, uint64_t ts);
int ct_packed_used(ct_writer *w, uint16_t vq, uint16_t worker, uint16_t slot, uint16_t id, uint32_t len, uint64_t ts);
int ct_packed_used_flags(ct_writer *w, uint16_t vq, uint16_t worker, uint16_t slot, uint16_t flags, uint64_t ts);

/* Worker scheduling. */
int ct_service_begin(ct_writer *w, uint16_t vq, uint16_t worker, uint64_t ts);
int ct_service_end(ct_writer *w, uint16_t vq, uint16_t worker, uint64_t ts);

#ifdef __cplusplus
}
#endif
#endif /* CONFORMANCE_TRACE_H */

#ifdef CONFORMANCE_TRACE_IMPLEMENTATION
#ifndef CONFORMANCE_TRACE_IMPLEMENTED
#define CONFORMANCE_TRACE_IMPLEMENTED

#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <time.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

static void ct__le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void ct__le64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }

static int ct__fail(ct_writer *w, int e) { if (!w->error) w->error = e; return -1; }

int ct_start(ct_writer *w, FILE *f, int profile, int layout, uint16_t flags, uint64_t features,
             uint16_t workers, uint16_t nqueues, const uint16_t *sizes)
{
    w->f = f; w->nqueues = nqueues; w->error = 0; w->events = 0;
    if (!f) return ct__fail(w, 1);
    if (nqueues == 0 || nqueues > CT_MAX_QUEUES || profile < 0 || profile > 4 || layout < 0 || layout > 1)
        return ct__fail(w, 2);
    /* 32 fixed bytes, one u16 size per queue, zero padding to a multiple of 8. */
    size_t size = (32u + 2u * (size_t)nqueues + 7u) & ~(size_t)7u;
    uint8_t fixed[32] = {0};
    memcpy(fixed, "VIRTIOTR", 8);
    ct__le16(fixed + 8, CT_VERSION);
    ct__le16(fixed + 10, (uint16_t)size);
    fixed[12] = (uint8_t)profile;
    fixed[13] = (uint8_t)layout;
    ct__le16(fixed + 14, flags);
    ct__le64(fixed + 16, features);
    ct__le16(fixed + 24, nqueues);
    ct__le16(fixed + 26, workers);
    if (fwrite(fixed, 1, sizeof fixed, f) != sizeof fixed) return ct__fail(w, 1);
    for (uint16_t q = 0; q < nqueues; q++) {
        uint8_t s[2];
        ct__le16(s, sizes ? sizes[q] : 0);
        if (fwrite(s, 1, 2, f) != 2) return ct__fail(w, 1);
    }
    for (size_t i = 32u + 2u * (size_t)nqueues; i < size; i++)
        if (fputc(0, f) == EOF) return ct__fail(w, 1);
    return 0;
}

int ct_open(ct_writer *w, const char *path, int profile, int layout, uint16_t flags, uint64_t features,
            uint16_t workers, uint16_t nqueues, const uint16_t *sizes)
{
    return ct_start(w, fopen(path, "wb"), profile, layout, flags, features, workers, nqueues, sizes);
}

int ct_event(ct_writer *w, uint8_t kind, uint8_t flags, uint16_t vq, uint16_t worker, uint16_t aux,
             uint64_t ts, uint64_t p0, uint64_t p1, uint64_t p2)
{
    if (w->error) return -1;
    if (vq != CT_NONE && vq >= w->nqueues) return ct__fail(w, 2);
    uint8_t e[40];
    e[0] = kind;
    e[1] = flags;
    ct__le16(e + 2, vq);
    ct__le16(e + 4, worker);
    ct__le16(e + 6, aux);
    ct__le64(e + 8, ts);
    ct__le64(e + 16, p0);
    ct__le64(e + 24, p1);
    ct__le64(e + 32, p2);
    if (fwrite(e, 1, sizeof e, w->f) != sizeof e) return ct__fail(w, 1);
    w->events++;
    return 0;
}

int ct_close(ct_writer *w)
{
    if (!w->f) return -1;
    int bad = fclose(w->f) != 0;
    w->f = NULL;
    if (bad) ct__fail(w, 1);
    return w->error ? -1 : 0;
}

int ct_error(const ct_writer *w) { return w->error; }

uint64_t ct_now_ns(void)
{
#if (defined(__unix__) || defined(__APPLE__)) && defined(CLOCK_MONOTONIC)
    struct timespec t;
    if (clock_gettime(CLOCK_MONOTONIC, &t) == 0) return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
#endif
    return 0;
}

static uint64_t ct__desc_p1(uint32_t len, uint16_t flags, uint16_t next)
{
    return (uint64_t)len | (uint64_t)flags << 32 | (uint64_t)next << 48;
}

int ct_control(ct_writer *w, uint8_t kind, uint16_t vq, uint64_t value, int16_t result, uint64_t ts)
{
    return ct_event(w, kind, 0, vq, CT_NONE, (uint16_t)result, ts, value, 0, 0);
}
int ct_set_vring_addr(ct_writer *w, uint16_t vq, uint64_t desc, uint64_t avail, uint64_t used, int16_t result, uint64_t ts)
{
    return ct_event(w, CT_SET_VRING_ADDR, 0, vq, CT_NONE, (uint16_t)result, ts, desc, avail, used);
}
int ct_mem_region(ct_writer *w, uint16_t index, uint64_t guest, uint64_t size, uint64_t user, uint64_t ts)
{
    return ct_event(w, CT_MEM_REGION, 0, CT_NONE, CT_NONE, index, ts, guest, size, user);
}
int ct_vring_log(ct_writer *w, uint16_t vq, uint64_t log_guest_addr, uint32_t flags, uint64_t ts)
{
    return ct_event(w, CT_VRING_LOG, 0, vq, CT_NONE, 0, ts, log_guest_addr, flags, 0);
}
int ct_desc(ct_writer *w, uint16_t vq, uint16_t idx, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next, uint64_t ts)
{
    return ct_event(w, CT_DESC, 0, vq, CT_NONE, idx, ts, addr, ct__desc_p1(len, flags, next), 0);
}
int ct_indirect_desc(ct_writer *w, uint16_t vq, uint16_t parent, uint16_t idx, uint64_t addr, uint32_t len,
                     uint16_t flags, uint16_t next, uint64_t ts)
{
    return ct_event(w, CT_INDIRECT_DESC, 0, vq, CT_NONE, idx, ts, addr, ct__desc_p1(len, flags, next), parent);
}
int ct_avail_entry(ct_writer *w, uint16_t vq, uint16_t pos, uint16_t head, uint64_t ts)
{
    return ct_event(w, CT_AVAIL_ENTRY, 0, vq, CT_NONE, head, ts, pos, 0, 0);
}
int ct_avail_idx(ct_writer *w, uint16_t vq, uint16_t idx, uint64_t ts) { return ct_event(w, CT_AVAIL_IDX, 0, vq, CT_NONE, 0, ts, idx, 0, 0); }
int ct_kick(ct_writer *w, uint16_t vq, uint64_t ts) { return ct_event(w, CT_KICK, 0, vq, CT_NONE, 0, ts, 0, 0, 0); }
int ct_avail_flags(ct_writer *w, uint16_t vq, uint16_t flags, uint64_t ts) { return ct_event(w, CT_AVAIL_FLAGS, 0, vq, CT_NONE, 0, ts, flags, 0, 0); }
int ct_used_event(ct_writer *w, uint16_t vq, uint16_t idx, uint64_t ts) { return ct_event(w, CT_USED_EVENT, 0, vq, CT_NONE, 0, ts, idx, 0, 0); }
int ct_ring_reset(ct_writer *w, uint16_t vq, uint64_t ts) { return ct_event(w, CT_RING_RESET, 0, vq, CT_NONE, 0, ts, 0, 0, 0); }
int ct_avail_read(ct_writer *w, uint16_t vq, uint16_t worker, uint16_t pos, uint16_t head, uint64_t ts)
{
    return ct_event(w, CT_AVAIL_READ, 0, vq, worker, head, ts, pos, 0, 0);
}
int ct_used_entry(ct_writer *w, uint16_t vq, uint16_t worker, uint16_t pos, uint32_t id, uint32_t len, uint64_t ts)
{
    return ct_event(w, CT_USED_ENTRY, 0, vq, worker, 0, ts, pos, id, len);
}
int ct_used_idx(ct_writer *w, uint16_t vq, uint16_t worker, uint16_t idx, uint64_t ts) { return ct_event(w, CT_USED_IDX, 0, vq, worker, 0, ts, idx, 0, 0); }
int ct_interrupt(ct_writer *w, uint16_t vq, uint16_t worker, uint64_t ts) { return ct_event(w, CT_INTERRUPT, 0, vq, worker, 0, ts, 0, 0, 0); }
int ct_used_flags(ct_writer *w, uint16_t vq, uint16_t worker, uint16_t flags, uint64_t ts) { return ct_event(w, CT_USED_FLAGS, 0, vq, worker, 0, ts, flags, 0, 0); }
int ct_avail_event(ct_writer *w, uint16_t vq, uint16_t worker, uint16_t idx, uint64_t ts) { return ct_event(w, CT_AVAIL_EVENT, 0, vq, worker, 0, ts, idx, 0, 0); }
int ct_rx_header(ct_writer *w, uint16_t vq, uint16_t worker, uint16_t pos, uint16_t num_buffers,
                 uint8_t hdr_flags, uint8_t gso_type, uint64_t ts)
{
    return ct_event(w, CT_RX_HEADER, 0, vq, worker, gso_type, ts, pos, num_buffers, hdr_flags);
}
int ct_log_dirty(ct_writer *w, uint16_t vq, uint16_t worker, uint64_t addr, uint32_t len, uint64_t ts)
{
    return ct_event(w, CT_LOG_DIRTY, 0, vq, worker, 0, ts, addr, len, 0);
}
int ct_packed_desc(ct_writer *w, uint16_t vq, uint16_t slot, uint64_t addr, uint32_t len, uint16_t id, uint64_t ts)
{
    return ct_event(w, CT_PACKED_DESC, 0, vq, CT_NONE, slot, ts, addr, (uint64_t)len | (uint64_t)id << 32, 0);
}
int ct_packed_flags(ct_writer *w, uint16_t vq, uint16_t slot, uint16_t flags, uint64_t ts) { return ct_event(w, CT_PACKED_FLAGS, 0, vq, CT_NONE, slot, ts, flags, 0, 0); }
int ct_packed_read(ct_writer *w, uint16_t vq, uint16_t worker, uint16_t slot, uint64_t ts) { return ct_event(w, CT_PACKED_READ, 0, vq, worker, slot, ts, 0, 0, 0); }
int ct_packed_used(ct_writer *w, uint16_t vq, uint16_t worker, uint16_t slot, uint16_t id, uint32_t len, uint64_t ts)
{
    return ct_event(w, CT_PACKED_USED, 0, vq, worker, slot, ts, 0, (uint64_t)len | (uint64_t)id << 32, 0);
}
int ct_packed_used_flags(ct_writer *w, uint16_t vq, uint16_t worker, uint16_t slot, uint16_t flags, uint64_t ts)
{
    return ct_event(w, CT_PACKED_USED_FLAGS, 0, vq, worker, slot, ts, flags, 0, 0);
}
int ct_service_begin(ct_writer *w, uint16_t vq, uint16_t worker, uint64_t ts) { return ct_event(w, CT_SERVICE_BEGIN, 0, vq, worker, 0, ts, 0, 0, 0); }
int ct_service_end(ct_writer *w, uint16_t vq, uint16_t worker, uint64_t ts) { return ct_event(w, CT_SERVICE_END, 0, vq, worker, 0, ts, 0, 0, 0); }

#ifdef __cplusplus
}
#endif
#endif /* CONFORMANCE_TRACE_IMPLEMENTED */
#endif /* CONFORMANCE_TRACE_IMPLEMENTATION */
