#!/usr/bin/env bash
# The live-pair test outside `swift test`: for 1, 2, 4 and 8 queue pairs, capture SECONDS of testpmd
# traffic through `conformance record`, then require: the trace checks clean, every ring was followed
# throughout (record exit 0: no ring_gap),
# every vq carried traffic, and per queue the completions match testpmd's forward statistics
# within the ring size + 5 %. Exit 0 when all hold, 1 otherwise, 77 when dpdk-testpmd is missing.
#
#   scripts/dpdk-test.sh [SECONDS]        (CONFORMANCE picks the binary, as for dpdk-capture.sh)
set -u
SECS=${1:-6}
BIN=${CONFORMANCE:-.build/debug/conformance}
RING=4096
command -v dpdk-testpmd >/dev/null || { echo "dpdk-test: dpdk-testpmd not found (install dpdk-dev); skipped"; exit 77; }
here=$(dirname "$0")
DIR=$(mktemp -d /tmp/dpdk-test.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
fail=0
close() { awk -v a="$1" -v b="$2" -v r="$RING" 'BEGIN { d = a - b; if (d < 0) d = -d; m = a > b ? a : b; exit !(d <= r + m / 20) }'; }
for q in 1 2 4 8; do
    out="$DIR/q$q"
    VU_EXTRA=",queue_size=$RING" MBUFS=65536 CONFORMANCE="$BIN" "$here/dpdk-capture.sh" "$q" "$SECS" "$out" --progress 0 >/dev/null 2>&1
    ok=1
    "$BIN" check "$out/trace.trace" >"$out/check.txt" 2>&1 || { ok=0; echo "q=$q: check failed: $(tail -1 "$out/check.txt")"; }
    rs=$(cat "$out/rec.status" 2>/dev/null || echo "?")
    if [ "$rs" != 0 ]; then ok=0; echo "q=$q: record exited $rs: $(tail -1 "$out/rec.log")"; fi
    if grep -q "not followed:" "$out/rec.log"; then ok=0; echo "q=$q: rings not followed throughout: $(grep 'not followed:' "$out/rec.log" | head -3)"; fi
    "$BIN" stats "$out/trace.trace" >"$out/stats.txt"
    for k in $(seq 0 $((q - 1))); do
        rxu=$(awk -v v=$((2 * k)) '$1 == v && $2 ~ /^RX/ { print $6 }' "$out/stats.txt")
        txu=$(awk -v v=$((2 * k + 1)) '$1 == v && $2 ~ /^TX/ { print $6 }' "$out/stats.txt")
        if [ "$q" = 1 ]; then
            line=$(grep -A2 "Forward statistics for port 0" "$out/fe.log")
            rxp=$(echo "$line" | grep -o "RX-packets: *[0-9]*" | grep -o "[0-9]*$")
            txp=$(echo "$line" | grep -o "TX-packets: *[0-9]*" | grep -o "[0-9]*$")
        else
            line=$(grep -A1 "Queue= *$k -> TX Port= 0/Queue= *$k " "$out/fe.log" | tail -1)
            rxp=$(echo "$line" | grep -o "RX-packets: *[0-9]*" | grep -o "[0-9]*$")
            txp=$(echo "$line" | grep -o "TX-packets: *[0-9]*" | grep -o "[0-9]*$")
        fi
        if [ "${rxu:-0}" = 0 ] || [ "${txu:-0}" = 0 ]; then ok=0; echo "q=$q pair $k: no traffic (RX used ${rxu:-0}, TX used ${txu:-0})"; fi
        close "${rxu:-0}" "${rxp:-0}" || { ok=0; echo "q=$q pair $k: RX used ${rxu:-0} vs testpmd RX-packets ${rxp:-0}"; }
        close "${txu:-0}" "${txp:-0}" || { ok=0; echo "q=$q pair $k: TX used ${txu:-0} vs testpmd TX-packets ${txp:-0}"; }
    done
    echo "q=$q: $([ $ok = 1 ] && echo ok || echo FAILED) ($(tail -1 "$out/check.txt"))"
    [ $ok = 1 ] || fail=1
done
exit $fail
