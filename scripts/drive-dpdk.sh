#!/usr/bin/env bash
# `conformance drive` against DPDK testpmd's vhost PMD (net_vhost, no hugepages, io forwarding, so
# what drive sends on a TX queue comes back on the RX queue of the same pair).
#
#   scripts/drive-dpdk.sh PAIRS OUTDIR [drive options...]     (e.g. --all, --scenario traffic)
#
# Leaves in OUTDIR: be.log (testpmd), drive.txt (the verdict table), the traces, report.json and
# report.junit.xml; exits with drive's status (77 when dpdk-testpmd is missing). testpmd is bounded
# by `timeout -s KILL`, stopped by PID; its socket and /var/run/dpdk/<prefix> are removed on exit.
# Run it under the shared lock: flock /tmp/conformance-live.lock scripts/drive-dpdk.sh ...
set -u
Q=${1:?pairs}; OUT=${2:?outdir}; shift 2
BIN=${CONFORMANCE:-.build/debug/conformance}
TESTPMD=${TESTPMD:-dpdk-testpmd}
LIMIT=${LIMIT:-900}
command -v "$TESTPMD" >/dev/null || { echo "drive-dpdk: $TESTPMD not found (install dpdk-dev)" >&2; exit 77; }
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
TAG="drv$$"
SOCK="$OUT/be.sock"
rm -f "$SOCK"
BE=""
cleanup() {
    if [ -n "$BE" ]; then
        # testpmd is timeout's child: signal it by its PID (killing timeout alone would orphan it).
        local pmd
        pmd=$(cat "/proc/$BE/task/$BE/children" 2>/dev/null)
        kill -INT $pmd "$BE" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 $pmd "$BE" 2>/dev/null || break; sleep 0.1; done
        kill -KILL $pmd "$BE" 2>/dev/null
        wait "$BE" 2>/dev/null
    fi
    rm -f "$SOCK"
    rm -rf "/var/run/dpdk/$TAG" "${XDG_RUNTIME_DIR:-/tmp}/dpdk/$TAG" 2>/dev/null
}
trap cleanup EXIT
# testpmd gets no descriptor but its log: one inherited from the caller (a test's output pipe)
# would keep the caller waiting for as long as testpmd lives.
(
    for f in /proc/$BASHPID/fd/*; do n=${f##*/}; [ "$n" -gt 2 ] 2>/dev/null && eval "exec $n>&-"; done
    exec timeout -s KILL "$LIMIT" "$TESTPMD" -l 0-1 --no-pci --no-huge -m 512 --file-prefix="$TAG" \
        --vdev "net_vhost0,iface=$SOCK,queues=$Q" -- \
        --rxq="$Q" --txq="$Q" --nb-cores=1 --total-num-mbufs="${MBUFS:-16384}" --stats-period=100
) >"$OUT/be.log" 2>&1 </dev/null &
BE=$!
for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { echo "drive-dpdk: $SOCK did not appear" >&2; tail -5 "$OUT/be.log" >&2; exit 2; }
timeout -s KILL "$LIMIT" "$BIN" drive --connect "$SOCK" --pairs "$Q" -o "$OUT" "$@" | tee "$OUT/drive.txt"
exit "${PIPESTATUS[0]}"
