#!/usr/bin/env python3
"""Writes a polled (sampled) text trace for the cost measurements in Specs/security.md.

    scripts/polled-stress.py rewrite EVENTS > t.trace.txt   # 32,768 chains the device owns, their
                                                            # descriptors read again and again
    scripts/polled-stress.py flow EVENTS > t.trace.txt      # a ring of 256: per poll 4 exposed and
                                                            # the previous 4 completed, for ever
Compile with `conformance compile t.trace.txt -o t.trace`; both are conformant.
"""
import random
import sys


def header(n):
    return ("conformance-trace 1\nprofile vhost-user\nlayout mq\nflags preset|sampled\n"
            "features version_1\nworkers 1\nqueues %d %d\nevents\n" % (n, n))


def rewrite(total, out):
    n_q = 32768
    out.write(header(n_q))
    t, n = 1, 1
    out.write("poll vq=1 avail=0 used=0 t=1 sampled\n")
    for i in range(n_q):
        t += 1
        out.write("desc vq=1 idx=%d addr=0x%x len=64 t=%d sampled\n" % (i, 0x100000 + i * 64, t))
        out.write("avail_entry vq=1 pos=%d head=%d t=%d sampled\n" % (i, i, t))
        n += 2
    out.write("poll vq=1 avail=%d used=0 t=%d sampled\n" % (n_q, t))
    n += 1
    r = random.Random(1)
    while n < total:
        for _ in range(1000):
            t += 1
            i = r.randrange(n_q)
            out.write("desc vq=1 idx=%d addr=0x%x len=64 t=%d sampled\n" % (i, 0x100000 + i * 64, t))
            n += 1
        t += 1
        out.write("poll vq=1 avail=%d used=0 t=%d sampled\n" % (n_q, t))
        n += 1


def flow(total, out):
    n_q = 256
    out.write(header(n_q))
    t, n, a, u = 1, 1, 0, 0
    out.write("poll vq=1 avail=0 used=0 t=1 sampled\n")
    last = []
    while n < total:
        for h in last:
            out.write("used_entry vq=1 pos=%d id=%d len=0 t=%d sampled\n" % (u % 65536, h, t))
            u += 1
            n += 1
        last = []
        for _ in range(4):
            h = a % n_q
            out.write("desc vq=1 idx=%d addr=0x%x len=64 t=%d sampled\n" % (h, 0x100000 + h * 64, t))
            out.write("avail_entry vq=1 pos=%d head=%d t=%d sampled\n" % (a % 65536, h, t))
            last.append(h)
            a += 1
            n += 2
        t += 1
        out.write("poll vq=1 avail=%d used=%d t=%d sampled\n" % (a % 65536, u % 65536, t))
        n += 1


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("rewrite", "flow"):
        sys.exit(__doc__)
    {"rewrite": rewrite, "flow": flow}[sys.argv[1]](int(sys.argv[2]), sys.stdout)
