#!/usr/bin/env bash
# Runs a DPDK testpmd vhost-user pair (net_vhost back-end, virtio-user front-end, no hugepages)
# for SECONDS of traffic, with `conformance record` in between unless --direct is given.
#
#   scripts/dpdk-capture.sh [--direct] QUEUES SECONDS OUTDIR [extra `conformance record` options...]
#
# Leaves in OUTDIR: be.log, fe.log (testpmd output incl. per-queue forward statistics),
# rec.log (recorder stderr), trace.trace, and rate.txt ("<forwarded packets> <seconds>").
# Every process is bounded by `timeout` and killed by PID on exit; sockets are removed.
# CONFORMANCE overrides the binary (default: .build/debug/conformance); VU_EXTRA appends
# virtio-user devargs (e.g. ",queue_size=64" for smaller rings); STATS_PERIOD sets the front-end's
# statistics period in seconds (1 for per-second throughput lines, as scripts/overhead.sh uses);
# FE_EAL adds EAL options to the front-end (e.g. --main-lcore=1: its forwarding lcore is then 0,
# the back-end's is 1, so the two busy-polling forwarders do not share a core); RECORDER_CPU pins
# the recorder (taskset -c) so that it cannot share a core with a forwarder; MBUFS sizes the mbuf
# pools (default 8192; large rings on many queues need more).
set -u
DIRECT=0
if [ "${1:-}" = "--direct" ]; then DIRECT=1; shift; fi
Q=${1:?queues}; SECS=${2:?seconds}; OUT=${3:?outdir}; shift 3
BIN=${CONFORMANCE:-.build/debug/conformance}
TESTPMD=${TESTPMD:-dpdk-testpmd}
command -v "$TESTPMD" >/dev/null || { echo "dpdk-capture: $TESTPMD not found (install dpdk-dev)" >&2; exit 77; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
TAG="conf$$"
BE_SOCK="$OUT/be.sock"; FE_SOCK="$OUT/fe.sock"
rm -f "$BE_SOCK" "$FE_SOCK" "$OUT/trace.trace" "$OUT/rate.txt"
BE=""; FE=""; REC=""
stop_pid() {   # SIGINT (timeout forwards it), then SIGKILL to the PID and its children
    local p=$1
    kill -INT "$p" 2>/dev/null || return 0
    for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    for c in $(cat "/proc/$p/task/$p/children" 2>/dev/null); do kill -KILL "$c" 2>/dev/null; done
    kill -KILL "$p" 2>/dev/null
}
cleanup() {
    for p in $FE $REC $BE; do stop_pid "$p"; done
    wait 2>/dev/null
    rm -f "$BE_SOCK" "$FE_SOCK"
    rm -rf "/var/run/dpdk/${TAG}be" "/var/run/dpdk/${TAG}fe" "${XDG_RUNTIME_DIR:-/tmp}/dpdk/${TAG}be" "${XDG_RUNTIME_DIR:-/tmp}/dpdk/${TAG}fe" 2>/dev/null
}
trap cleanup EXIT
wait_for() { for _ in $(seq 1 100); do [ -S "$1" ] && return 0; sleep 0.1; done; echo "dpdk-capture: $1 did not appear" >&2; return 1; }
LIMIT=$((SECS + 40))

timeout -s KILL "$LIMIT" "$TESTPMD" -l 0-1 --no-pci --no-huge -m 512 --file-prefix="${TAG}be" \
    --vdev "net_vhost0,iface=$BE_SOCK,queues=$Q" -- \
    --rxq="$Q" --txq="$Q" --nb-cores=1 --total-num-mbufs="${MBUFS:-8192}" --stats-period=100 >"$OUT/be.log" 2>&1 &
BE=$!
wait_for "$BE_SOCK" || exit 1

TARGET="$BE_SOCK"
if [ "$DIRECT" = 0 ]; then
    PIN=""; [ -n "${RECORDER_CPU:-}" ] && PIN="taskset -c $RECORDER_CPU"
    timeout -s KILL "$LIMIT" $PIN "$BIN" record --listen "$FE_SOCK" --connect "$BE_SOCK" -o "$OUT/trace.trace" \
        --accept-timeout 30 "$@" 2>"$OUT/rec.log" >"$OUT/rec.out" &
    REC=$!
    wait_for "$FE_SOCK" || exit 1
    TARGET="$FE_SOCK"
fi

timeout -s KILL "$LIMIT" "$TESTPMD" -l 0-1 ${FE_EAL:-} --no-pci --no-huge -m 512 --single-file-segments --file-prefix="${TAG}fe" \
    --vdev "net_virtio_user0,path=$TARGET,queues=$Q${VU_EXTRA:-}" -- \
    --rxq="$Q" --txq="$Q" --nb-cores=1 --total-num-mbufs="${MBUFS:-8192}" --auto-start --tx-first --stats-period="${STATS_PERIOD:-100}" >"$OUT/fe.log" 2>&1 &
FE=$!
sleep "$SECS"
# testpmd prints its forward statistics and closes the port on SIGINT.
kill -INT "$FE" 2>/dev/null
for _ in $(seq 1 100); do kill -0 "$FE" 2>/dev/null || break; sleep 0.1; done
FE=""
if [ -n "$REC" ]; then
    for _ in $(seq 1 100); do kill -0 "$REC" 2>/dev/null || break; sleep 0.1; done
    kill -INT "$REC" 2>/dev/null
    wait "$REC"; echo "$?" >"$OUT/rec.status"; REC=""
fi
kill -INT "$BE" 2>/dev/null
for _ in $(seq 1 50); do kill -0 "$BE" 2>/dev/null || break; sleep 0.1; done
PKTS=$(grep -A1 "Accumulated forward statistics" "$OUT/fe.log" | grep -o "RX-packets: *[0-9]*" | grep -o "[0-9]*$")
echo "${PKTS:-0} $SECS" >"$OUT/rate.txt"
echo "dpdk-capture: $Q queue pair(s), ${SECS}s, front-end forwarded ${PKTS:-0} packets$([ "$DIRECT" = 1 ] && echo " (direct)" || echo " (through the recorder)")"
