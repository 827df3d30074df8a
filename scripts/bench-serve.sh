#!/usr/bin/env bash
# The seed's question, measured: DPDK testpmd `txonly` on a virtio-user port with T TX queues against
#   - conformance serve --data sink, seed-rfc2 with W = 1 and W = 2, and per-pair (W = T), checking
#     off (no trace) and on (--check, in-process, no file);
#   - DPDK's own vhost PMD (testpmd `rxonly` on net_vhost), in the same run.
#
#   scripts/bench-serve.sh [SECONDS [T...]]     default 6 s, T = 1 2 4 8; OUT=dir keeps the logs,
#                                              ROUNDS=n repeats every configuration n times, interleaved
#                                              (the table shows medians; default 1)
#
# Packets/s: the median of testpmd's per-second Tx-pps after the first 2 s (what the virtio-user
# port got onto the rings, = what the back-end consumed: txonly refills as fast as it is emptied).
# CPU: the back-end process's user+system seconds over the same window (/proc/PID/stat), per million
# packets. Per-worker share: serve's own per-worker buffer counts (--summary-json).
# Cores (this machine has 2): the front-end's forwarding lcore is core 1; the back-end runs on
# core 0 (serve pinned there with taskset, the vhost PMD's forwarding lcore is core 0). So serve's
# W = 2 workers share one core: on 2 cores a second worker cannot add throughput, only show the cost
# of the hand-offs. Prints the table, writes OUT/bench.tsv and OUT/bench.svg (packets/s and CPU per
# million packets per configuration). Run under `flock /tmp/conformance-live.lock`.
set -u
cd "$(dirname "$0")/.."
SECS=${1:-6}; shift || true
TS=("$@"); [ ${#TS[@]} -gt 0 ] || TS=(1 2 4 8)
BIN=${CONFORMANCE:-.build/release/conformance}
[ -x "$BIN" ] || { swift build -c release --product conformance >/dev/null && BIN=$(swift build -c release --show-bin-path)/conformance; }
[ -x "$BIN" ] || { echo "bench-serve: no conformance binary" >&2; exit 2; }
command -v dpdk-testpmd >/dev/null || { echo "bench-serve: dpdk-testpmd not found (install dpdk-dev)" >&2; exit 77; }
OUT=${OUT:-$(mktemp -d /tmp/bench-serve.XXXXXX)}
mkdir -p "$OUT"
SOCKDIR=$(mktemp -d /tmp/bs.XXXXXX)
TAG="bs$$"
PIDS=() PREFIXES=()
cleanup() {
    for p in "${PIDS[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            kill -INT "$p" 2>/dev/null; sleep 1
            for c in $(cat "/proc/$p/task/$p/children" 2>/dev/null); do kill -KILL "$c" 2>/dev/null; done
            kill -KILL "$p" 2>/dev/null
        fi
        wait "$p" 2>/dev/null
    done
    rm -rf "$SOCKDIR"
    for x in "${PREFIXES[@]}"; do rm -rf "/var/run/dpdk/$x" "${XDG_RUNTIME_DIR:-/tmp}/dpdk/$x" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 2' INT TERM HUP

cpu_of() {   # $1 pid of `timeout` -> user+system ticks of its child (or of itself)
    local p=$1 c
    c=$(cat "/proc/$p/task/$p/children" 2>/dev/null | awk '{ print $1 }')
    [ -n "$c" ] && p=$c
    awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null
}
stop() {     # SIGINT, wait up to $2 s, then SIGKILL (child and timeout)
    local p=$1 secs=${2:-10}
    kill -INT "$p" 2>/dev/null
    for _ in $(seq 1 $((secs * 10))); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then
        for c in $(cat "/proc/$p/task/$p/children" 2>/dev/null); do kill -KILL "$c" 2>/dev/null; done
        kill -KILL "$p" 2>/dev/null
    fi
    wait "$p" 2>/dev/null
}
wait_sock() { for _ in $(seq 1 100); do [ -S "$1" ] && return 0; sleep 0.1; done; return 1; }
HZ=$(getconf CLK_TCK)
RUN=0
# One measurement: $1 label, $2 T, $3 back-end kind (serve|dpdk), $4.. serve options.
# Prints: label T pps cpu_s_per_Mpkt worker_shares
measure() {
    local label=$1 t=$2 kind=$3; shift 3
    RUN=$((RUN + 1))
    local sock=$SOCKDIR/r$RUN.sock log=$OUT/$RUN-$label-T$t be_pid fe_pid pfx=${TAG}f$RUN
    PREFIXES+=("$pfx")
    if [ "$kind" = serve ]; then
        timeout -s KILL $((SECS + 40)) taskset -c 0 "$BIN" serve --socket "$sock" --queues "$t" --data sink --sessions 1 \
            --summary-json "$log.serve.json" "$@" </dev/null >"$log.serve.log" 2>&1 &
    else
        local bpfx=${TAG}b$RUN
        PREFIXES+=("$bpfx")
        timeout -s KILL $((SECS + 40)) dpdk-testpmd -l 0-1 --main-lcore 1 --no-pci --no-huge -m 512 --file-prefix="$bpfx" \
            --vdev "net_vhost0,iface=$sock,queues=$t" -- --forward-mode=rxonly --rxq="$t" --txq="$t" --nb-cores=1 \
            --total-num-mbufs=32768 --stats-period=1000 </dev/null >"$log.vhost.log" 2>&1 &
    fi
    be_pid=$!; PIDS+=("$be_pid")
    wait_sock "$sock" || { echo "$label T=$t: back-end did not listen" >&2; stop "$be_pid" 5; return 1; }
    timeout -s KILL $((SECS + 30)) dpdk-testpmd -l 0-1 --no-pci --no-huge -m 512 --file-prefix="$pfx" \
        --vdev "net_virtio_user0,path=$sock,queues=$t" -- --forward-mode=txonly --rxq="$t" --txq="$t" --nb-cores=1 \
        --total-num-mbufs=32768 --stats-period=1 </dev/null >"$log.fe.log" 2>&1 &
    fe_pid=$!; PIDS+=("$fe_pid")
    sleep 4    # DPDK start-up (~2 s) and the first seconds of traffic
    local c0 c1
    c0=$(cpu_of "$be_pid"); sleep "$SECS"; c1=$(cpu_of "$be_pid")
    stop "$fe_pid" 10
    sleep 0.5
    stop "$be_pid" 10
    # Tx-pps lines after the first 2 (start-up), over the measured window: the median.
    local pps
    pps=$(awk '/Tx-pps:/ { print $2 }' "$log.fe.log" | awk 'NR > 3' | sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print 0 }')
    local cpu=$(( ${c1:-0} - ${c0:-0} ))
    local per
    per=$(awk -v c="$cpu" -v hz="$HZ" -v p="$pps" -v s="$SECS" 'BEGIN { if (p > 0) printf "%.3f", (c / hz) / (p * s / 1e6); else print "-" }')
    local shares=-
    if [ -f "$log.serve.json" ]; then
        shares=$(tr -d ' \n' <"$log.serve.json" | grep -o '"workers":\[.*\]' | tr '{' '\n' | grep -o '"buffers":[0-9]*' | grep -o '[0-9]*' \
            | awk '{ b[NR] = $1; s += $1 } END { for (i = 1; i <= NR; i++) printf "%s%.0f%%", (i > 1 ? "/" : ""), (s ? 100 * b[i] / s : 0) }')
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$t" "$pps" "$per" "$shares"
}

ROUNDS=${ROUNDS:-1}
RAW=$OUT/bench-rounds.tsv TSV=$OUT/bench.tsv
printf 'config\tT\tpps\tcpu_s_per_Mpkt\tworker_shares\n' >"$RAW"
for r in $(seq 1 "$ROUNDS"); do
    for t in "${TS[@]}"; do
        measure dpdk-vhost "$t" dpdk >>"$RAW"
        for chk in off on; do
            extra=(); [ $chk = on ] && extra=(--check)
            measure "serve-W1-check-$chk" "$t" serve --workers 1 --mapping seed-rfc2 "${extra[@]}" >>"$RAW"
            measure "serve-W2-check-$chk" "$t" serve --workers 2 --mapping seed-rfc2 "${extra[@]}" >>"$RAW"
            measure "serve-perpair-check-$chk" "$t" serve --workers "$t" --mapping per-pair "${extra[@]}" >>"$RAW"
        done
    done
done
# Medians over the rounds (packets/s and CPU separately), in first-seen order.
awk -F'\t' 'NR == 1 { print; next }
    { k = $1 "\t" $2; if (!(k in n)) order[++m] = k; n[k]++; p[k, n[k]] = $3; c[k, n[k]] = $4; sh[k] = $5 }
    function med(a, k, cnt,   i, j, t, v) { for (i = 1; i <= cnt; i++) v[i] = a[k, i] + 0
        for (i = 1; i <= cnt; i++) for (j = i + 1; j <= cnt; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return v[int((cnt + 1) / 2)] }
    END { for (i = 1; i <= m; i++) { k = order[i]; printf "%s\t%s\t%.3f\t%s\n", k, med(p, k, n[k]), med(c, k, n[k]), sh[k] } }' "$RAW" \
    | awk -F'\t' 'BEGIN { OFS = "\t" } NR > 1 { $3 = int($3 + 0.5) } { print }' >"$TSV"

# The table: each serve row relative to W = 1 (same T, same checking) and to DPDK's vhost PMD (same T).
awk -F'\t' '
    NR == 1 { next }
    { cfg[NR] = $1; t[NR] = $2; pps[NR] = $3; cpu[NR] = $4; sh[NR] = $5; n = NR
      if ($1 == "dpdk-vhost") dpdk[$2] = $3
      if ($1 ~ /serve-W1-/) { split($1, a, "-check-"); w1[$2 "-" a[2]] = $3 } }
    END {
        printf "%-24s %3s %12s %14s %10s %10s %16s\n", "back-end", "T", "packets/s", "CPU s/Mpkt", "vs W=1", "vs DPDK", "worker shares"
        for (i = 2; i <= n; i++) {
            rel = "-"; if (cfg[i] ~ /^serve/) { split(cfg[i], a, "-check-"); b = w1[t[i] "-" a[2]]; if (b > 0) rel = sprintf("%.2f", pps[i] / b) }
            r = (dpdk[t[i]] > 0) ? sprintf("%.2f", pps[i] / dpdk[t[i]]) : "-"
            printf "%-24s %3s %12s %14s %10s %10s %16s\n", cfg[i], t[i], pps[i], cpu[i], rel, r, sh[i]
        }
    }' "$TSV" | tee "$OUT/bench.txt"

# The picture: packets/s (bars) and CPU s per million packets (dots) per configuration.
awk -F'\t' '
    NR == 1 { next }
    { k++; lab[k] = $1 " T=" $2; p[k] = $3 + 0; c[k] = ($4 == "-") ? 0 : $4 + 0; if (p[k] > pm) pm = p[k]; if (c[k] > cm) cm = c[k] }
    END {
        if (pm == 0) pm = 1; if (cm == 0) cm = 1
        w = 40 + 26 * k; h = 420
        printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"10\">\n", w + 60, h + 200
        printf "<text x=\"10\" y=\"16\" font-size=\"13\">txonly on virtio-user vs serve (sink) and DPDK vhost: packets/s (bars, max %d), CPU s per Mpkt (dots, max %.2f)</text>\n", pm, cm
        for (i = 1; i <= k; i++) {
            x = 40 + 26 * (i - 1); bh = (h - 60) * p[i] / pm; y = h - bh
            col = (lab[i] ~ /dpdk/) ? "#777" : (lab[i] ~ /check-on/) ? "#d95f02" : "#1b9e77"
            printf "<rect x=\"%d\" y=\"%.1f\" width=\"18\" height=\"%.1f\" fill=\"%s\"/>\n", x, y, bh, col
            cy = h - (h - 60) * c[i] / cm
            printf "<circle cx=\"%d\" cy=\"%.1f\" r=\"4\" fill=\"#7570b3\"/>\n", x + 9, cy
            printf "<text transform=\"translate(%d,%d) rotate(60)\">%s</text>\n", x + 4, h + 8, lab[i]
        }
        printf "<line x1=\"36\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n</svg>\n", h, w + 20, h
    }' "$TSV" >"$OUT/bench.svg"
echo "bench-serve: $OUT/bench.tsv, $OUT/bench.txt, $OUT/bench.svg"
