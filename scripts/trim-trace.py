#!/usr/bin/env python3
"""Cuts a binary trace to at most MAX events, between two snapshots, as `record --max-events` would.

    scripts/trim-trace.py IN OUT MAX

The recorder writes each ring's snapshot (its descriptor, avail and used reads, then the `poll`) as
one group, never interleaved with another, so a cut right after a `poll` event, or after an event of
no snapshot, leaves no group cut short. Used for excerpts whose run ended past the budget.
"""
import struct
import sys

POLL, SNAPSHOT_KINDS = 0x50, set(range(0x20, 0x60))  # data-plane kinds belong to snapshots


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    src, dst, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    data = open(src, "rb").read()
    header = struct.unpack_from("<H", data, 10)[0]
    n = (len(data) - header) // 40
    cut = 0
    for i in range(min(n, limit)):
        kind = data[header + 40 * i]
        if kind == POLL or kind not in SNAPSHOT_KINDS:
            cut = i + 1
    open(dst, "wb").write(data[:header + 40 * cut])
    print("%s: %d of %d events kept" % (dst, cut, n))


if __name__ == "__main__":
    main()
