#!/usr/bin/env bash
# DPDK testpmd's virtio-user against `conformance serve` (loopback), io forwarding driven through
# testpmd's command line: `start tx_first`, SECS seconds, `stop` (testpmd prints its statistics),
# `quit`. serve writes OUTDIR/trace.trace and checks it as it runs.
#
#   scripts/serve-dpdk.sh PAIRS SECS OUTDIR [testpmd options...] [-- serve options...]
#
#   e.g. scripts/serve-dpdk.sh 2 5 /tmp/sd -- --workers 2 --mapping seed-rfc2
#        scripts/serve-dpdk.sh 2 2 /tmp/sd --burst=1      (one frame in flight per queue: a small trace)
#
# OUTDIR gets trace.trace, serve.log, serve.json (--summary-json), testpmd.log. Exit status: serve's
# (CheckExit: 0 served and conformant, 1 a rule broken, 2 a failure, 3 incomplete), 77 without
# dpdk-testpmd. Both processes run under `timeout -s KILL`, are stopped by PID, and the socket and
# DPDK runtime folder are removed on every exit path. Run under `flock /tmp/conformance-live.lock`.
set -u
PAIRS=${1:?pairs}; SECS=${2:?seconds}; OUT=${3:?outdir}; shift 3
TPM=() SERVE=()
while [ $# -gt 0 ]; do [ "$1" = -- ] && { shift; SERVE=("$@"); break; }; TPM+=("$1"); shift; done
BIN=${CONFORMANCE:-.build/debug/conformance}
command -v dpdk-testpmd >/dev/null || { echo "serve-dpdk: dpdk-testpmd not found (install dpdk-dev)" >&2; exit 77; }
[ -x "$BIN" ] || { echo "serve-dpdk: $BIN not found (swift build, or set CONFORMANCE)" >&2; exit 2; }
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/{trace.trace,serve.log,serve.json,testpmd.log}
SOCKDIR=$(mktemp -d /tmp/sd.XXXXXX); SOCK=$SOCKDIR/s.sock; FIFO=$SOCKDIR/cmd
PREFIX="sd$$"; SV="" FE="" EXEC_FD=""
stop_pid() {
    local p=$1
    [ -n "$p" ] || return 0
    kill -INT "$p" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then
        for c in $(cat "/proc/$p/task/$p/children" 2>/dev/null); do kill -KILL "$c" 2>/dev/null; done
        kill -KILL "$p" 2>/dev/null
    fi
}
cleanup() {
    [ -n "$EXEC_FD" ] && exec 9>&-
    stop_pid "$FE"; stop_pid "$SV"
    rm -rf "$SOCKDIR" "/var/run/dpdk/$PREFIX" "${XDG_RUNTIME_DIR:-/tmp}/dpdk/$PREFIX" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 2' INT TERM HUP

timeout -s KILL $((SECS + 60)) "$BIN" serve --socket "$SOCK" --queues "$PAIRS" --trace "$OUT/trace.trace" --check \
    --sessions 1 --summary-json "$OUT/serve.json" "${SERVE[@]}" </dev/null >"$OUT/serve.log" 2>&1 &
SV=$!
for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { echo "serve-dpdk: serve did not listen (see $OUT/serve.log)" >&2; exit 2; }
mkfifo "$FIFO"
timeout -s KILL $((SECS + 50)) dpdk-testpmd -l 0-1 --no-pci --no-huge -m 512 --single-file-segments --file-prefix="$PREFIX" \
    --vdev "net_virtio_user0,path=$SOCK,queues=$PAIRS" -- -i --rxq="$PAIRS" --txq="$PAIRS" --nb-cores=1 \
    --total-num-mbufs=32768 "${TPM[@]}" <"$FIFO" >"$OUT/testpmd.log" 2>&1 &
FE=$!
exec 9>"$FIFO"; EXEC_FD=1
echo "start tx_first" >&9
sleep "$SECS"
echo "stop" >&9
sleep 1
echo "quit" >&9
exec 9>&-; EXEC_FD=""
for _ in $(seq 1 150); do kill -0 "$FE" 2>/dev/null || break; sleep 0.1; done
wait "$FE" 2>/dev/null; FE=""
for _ in $(seq 1 150); do kill -0 "$SV" 2>/dev/null || break; sleep 0.1; done
stop_pid "$SV"; wait "$SV" 2>/dev/null; STATUS=$?; SV=""
grep '^serve:' "$OUT/serve.log" | tail -n +3
grep -A2 "Forward Stats for RX Port\|Forward statistics for port 0" "$OUT/testpmd.log" | grep -v "^--$" | head -40
echo "serve-dpdk: serve exit $STATUS; $OUT"
exit $STATUS
