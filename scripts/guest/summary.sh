#!/usr/bin/env bash
# Writes OUTDIR/summary.json for a run of scripts/guest/run.sh (and can be re-run on its folder):
#   scripts/guest/summary.sh OUTDIR
# Per queue pair k: the guest's ethtool -S tx_queue_k_packets / rx_queue_k_packets, testpmd's
# forward statistics for stream k (RX-packets = what it took from the guest's TX vq, TX-packets =
# what it put in the guest's RX vq), per testpmd run and summed, and the used buffers the trace
# shows on vq 2k (RX) and 2k+1 (TX) (`conformance stats`), and the gaps between sessions (below). Also the trace's events, and
# `conformance check`'s exit status, total findings and rules (check.json, check.status).
# Values that a run did not produce (no trace without the recorder) are null.
set -u
OUT=${1:?outdir}
BIN=${CONFORMANCE:-.build/debug/conformance}
[ -f "$OUT/run.env" ] || { echo "summary: $OUT/run.env missing" >&2; exit 2; }
env_get() { sed -n "s/^$1=//p" "$OUT/run.env" | head -1; }
PAIRS=$(env_get pairs); RUNS=$(env_get testpmdRuns)
num() { [ -n "$1" ] && echo "$1" || echo null; }
str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }

# The guest's console, without carriage returns and terminal escapes.
SERIAL=$(tr -d '\r' <"$OUT/serial.log" 2>/dev/null | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g')
ETHS=$(printf '%s\n' "$SERIAL" | sed -n '/^cg: begin ethtool-S/,/^cg: end ethtool-S/p')
guest_counter() { printf '%s\n' "$ETHS" | awk -v k="$1" '$1 == k ":" { print $2; exit }'; }

# testpmd: "Forward Stats for RX Port= 0/Queue= k -> ..." then "RX-packets: a TX-packets: b ...";
# with a single stream only the port totals ("Forward statistics for port 0", RX then TX line).
testpmd_stream() {   # $1 log, $2 queue -> "rx tx"
    awk -v q="$2" -v pairs="$PAIRS" '
        /Forward Stats for RX Port= *0\/Queue= *[0-9]+ / {
            s = $0; sub(/.*RX Port= *0\/Queue= */, "", s); sub(/[^0-9].*/, "", s); cur = s; next }
        cur != "" && /RX-packets:/ { if (cur == q) { rx = $2; tx = $4; found = 1 } cur = ""; next }
        /Forward statistics for port 0/ { port = 1; next }
        port == 1 && /RX-packets:/ { prx = $2; next }
        port == 1 && /TX-packets:/ { ptx = $2; port = 0; next }
        END {
            if (found) print rx, tx
            else if (pairs == 1 && prx != "") print prx, ptx
        }' "$1"
}
testpmd_log() { [ "$1" = 1 ] && echo "$OUT/testpmd.log" || echo "$OUT/testpmd-$1.log"; }

# conformance stats / check on the trace.
TRACE=$OUT/trace.trace
HAVE_TRACE=0
if [ -s "$TRACE" ] && [ -x "$BIN" ]; then
    HAVE_TRACE=1
    "$BIN" stats --format json "$TRACE" >"$OUT/stats.json" 2>"$OUT/stats.err" || HAVE_TRACE=0
    "$BIN" check --format json "$TRACE" >"$OUT/check.json" 2>"$OUT/check.err"; echo $? >"$OUT/check.status"
fi
trace_used() {   # $1 vq -> used buffers
    [ $HAVE_TRACE = 1 ] || return 0
    tr '{' '\n' <"$OUT/stats.json" | awk -v v="$1" -F'[:,]' '$1 == "\"vq\"" && $2 == v {
        for (i = 1; i < NF; i++) if ($i == "\"used\"") { print $(i + 1); exit } }'
}
# Buffers completed while no session was recorded: at every SET_VRING_BASE after a vq's first,
# the jump from the last used index the trace showed to the new base. After a back-end restart
# these are the TX buffers QEMU itself consumed (and dropped) while the back-end was away.
if [ $HAVE_TRACE = 1 ]; then
    "$BIN" dump "$TRACE" 2>/dev/null | awk '
        # Exact traces say used_idx, polled ones poll ... used=.
        $1 == "used_idx" || $1 == "poll" || $1 == "set_vring_base" {
            vq = ""; v = ""
            for (i = 2; i <= NF; i++) { split($i, a, "="); if (a[1] == "vq") vq = a[2]; if (a[1] == "idx" || a[1] == "base" || a[1] == "used") v = a[2] }
            if (vq == "" || v == "") next
            if ($1 != "set_vring_base") used[vq] = v
            else { if (vq in used) gap[vq] += (v - used[vq] + 65536) % 65536; used[vq] = v }
        }
        END { for (q in used) print q, gap[q] + 0 }' >"$OUT/gaps.txt"
fi
trace_gap() { [ $HAVE_TRACE = 1 ] && awk -v v="$1" '$1 == v { print $2 }' "$OUT/gaps.txt"; }
json_field() { grep -o "\"$2\": *[0-9]*" "$1" 2>/dev/null | head -1 | grep -o '[0-9]*$'; }

{
    printf '{'
    while IFS='=' read -r k v; do
        case "$k" in
            pairs|secs|memMB|testpmdRuns|qemuStatus|recorderStatus|wallSeconds) printf '%s:%s,' "$(str "$k")" "$(num "$v")" ;;
            variants) printf '"variants":[%s],' "$(for x in $v; do str "$x"; echo; done | paste -sd, -)" ;;
            *) printf '%s:%s,' "$(str "$k")" "$(str "$v")" ;;
        esac
    done <"$OUT/run.env"
    g=false; printf '%s\n' "$SERIAL" | grep -q '^cg: done' && g=true
    printf '"guestDone":%s,' "$g"
    # Rings the recorder stopped following (it fell behind); their counts are short.
    printf '"recorderLostRings":[%s],' "$(grep -o 'fell behind on vq [0-9]*' "$OUT/recorder.log" 2>/dev/null | awk '{ print $NF }' | sort -un | paste -sd, -)"
    printf '"guestFeatures":%s,' "$(str "$(printf '%s\n' "$SERIAL" | sed -n 's/^cg: eth0 .*features=//p' | head -1)")"
    printf '"guestEvents":['
    printf '%s\n' "$SERIAL" | sed -n 's/^cg: \(channels [0-9]*\|carrier .*\|traffic .*\|FAILED.*\)$/\1/p' \
        | while read -r l; do printf '%s,' "$(str "$l")"; done | sed 's/,$//'
    printf '],'
    if [ $HAVE_TRACE = 1 ]; then
        printf '"traceBytes":%s,"events":%s,' "$(stat -c %s "$TRACE")" "$(num "$(json_field "$OUT/stats.json" events)")"
        printf '"checkStatus":%s,"findings":%s,' "$(cat "$OUT/check.status")" "$(num "$(json_field "$OUT/check.json" total_findings)")"
        printf '"rules":[%s],' "$(grep -o '"rule": "[^"]*"' "$OUT/check.json" | sed 's/"rule": //' | sort -u | paste -sd, -)"
    else
        printf '"traceBytes":null,"events":null,"checkStatus":null,"findings":null,"rules":[],'
    fi
    printf '"queues":['
    for k in $(seq 0 $((PAIRS - 1))); do
        [ "$k" -gt 0 ] && printf ','
        rxs="" txs="" sr=0 st=0 ok=1
        for r in $(seq 1 "$RUNS"); do
            set -- $(testpmd_stream "$(testpmd_log "$r")" "$k")
            if [ $# -eq 2 ]; then sr=$((sr + $1)); st=$((st + $2)); else ok=0; set -- null null; fi
            rxs+="${rxs:+,}$1"; txs+="${txs:+,}$2"
        done
        [ $ok = 1 ] || { sr=null; st=null; }
        printf '{"pair":%d,"guestTx":%s,"guestRx":%s,' "$k" \
            "$(num "$(guest_counter "tx_queue_${k}_packets")")" "$(num "$(guest_counter "rx_queue_${k}_packets")")"
        printf '"testpmdRx":%s,"testpmdTx":%s,"testpmdRxByRun":[%s],"testpmdTxByRun":[%s],' "$sr" "$st" "$rxs" "$txs"
        printf '"traceTxUsed":%s,"traceRxUsed":%s,' "$(num "$(trace_used $((2 * k + 1)))")" "$(num "$(trace_used $((2 * k)))")"
        printf '"traceTxGap":%s,"traceRxGap":%s}' "$(num "$(trace_gap $((2 * k + 1)))")" "$(num "$(trace_gap $((2 * k)))")"
    done
    printf ']}\n'
} >"$OUT/summary.json"
cat "$OUT/summary.json"
