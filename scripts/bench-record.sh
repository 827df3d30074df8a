#!/usr/bin/env bash
# Benchmark: the highest rate `conformance record` follows without a ring_gap (issue 14's last target).
# A synthetic front-end (`conformance-ringload`, Sources/RingLoad) fills split rings in a memfd at a
# set rate and plays the device's part too (it uses each batch right after exposing it); its own
# back-end socket answers the control plane. The recorder sits between the two sockets as a user
# would run it (default options, the trace written to a file), pinned to core 0; the generator to
# core 1. Each step runs SECONDS of load at one rate; the rate per ring doubles from 125 k/s until a
# step fails, then two bisection steps between the last rate followed and the first that was not.
#   one ring:  1 pair, vq 0 filled                  target >= 2 M buffers/s
#   all rings: 4 pairs, vq 0..7 filled at one rate  target >= 5 M buffers/s over all rings
# A step counts as followed when the recorder exits 0 (every ring followed, no ring_gap) and wrote
# at least 3 events per buffer (each buffer's desc, avail_entry and used_entry), and the generator
# made 97 % of the rate asked (it skips what a stall of its own left undone; below that the step
# measured the generator, and the sweep stops there).
# Also printed: the recorder's CPU time (user + system) per buffer at the highest rate followed.
#
# Scheduling: on a shared machine a recorder descheduled for a few milliseconds loses any 256-entry
# ring turning faster than ~64 k buffers/s, whatever its speed. So both processes run under the
# real-time FIFO policy at its lowest priority (chrt -f 1) when allowed (PRIO=normal to run without):
# the kernel's RT throttling still leaves other jobs 5 % of each core, and a step lasts SECONDS.
# Prints the load average before and after. Exit 0 when both targets hold.
# A step that loses a ring is run again, up to TRIES times (default 2): a rate counts as followed
# when one of its tries was.
# Usage: scripts/bench-record.sh [SECONDS]   (default 2; env PRIO=rt|normal, TRACE=file|null, TRIES=n)
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-2}
prio=${PRIO:-rt}
tries=${TRIES:-2}
swift build -c release --product conformance >/dev/null || exit 2
swift build -c release --product conformance-ringload >/dev/null || exit 2
bindir=$(swift build -c release --show-bin-path)
rec="$bindir/conformance" load="$bindir/conformance-ringload"
dir=$(mktemp -d /tmp/bench-record.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 2' INT TERM HUP
rt=()
if [ "$prio" = rt ] && chrt -f 1 true 2>/dev/null; then rt=(chrt -f 1); else prio=normal; fi
load0=$(cut -d' ' -f1-3 /proc/loadavg)

# step PAIRS RINGS RATE -> prints "ok|gap|gen CPU_NS_PER_BUFFER DETAIL"
step() {
  local pairs=$1 rings=$2 rate=$3
  local s=$dir/s out=$dir/t.trace
  rm -rf "$s"; mkdir -p "$s"
  [ "${TRACE:-file}" = null ] && out=/dev/null
  timeout -s KILL $((secs + 20)) "${rt[@]}" taskset -c 1 "$load" --frontend "$s/fe.sock" --backend "$s/be.sock" \
      --pairs "$pairs" --rings "$rings" --rate "$rate" --seconds "$secs" >"$s/load.out" 2>"$s/load.err" &
  local lp=$!; pids+=("$lp")
  for _ in $(seq 100); do [ -S "$s/be.sock" ] && break; sleep 0.05; done
  /usr/bin/time -f '%U %S' -o "$s/time" timeout -s KILL $((secs + 20)) "${rt[@]}" taskset -c 0 "$rec" record \
      --listen "$s/fe.sock" --connect "$s/be.sock" -o "$out" --queues $((2 * pairs)) --progress 0 >"$s/rec.out" 2>&1
  local rc=$?
  wait "$lp"; local lrc=$?
  rm -f "$dir/t.trace"
  local made buffers events cpu
  made=$(grep -o 'made=[0-9]*' "$s/load.out" | tr -dc 0-9)
  buffers=$(grep -o 'buffers=[0-9]*' "$s/load.out" | tr -dc 0-9)
  events=$(grep -o 'record: [0-9]* events' "$s/rec.out" | tr -dc 0-9)
  # (time writes "Command exited with non-zero status N" first when the recorder failed)
  cpu=$(tail -n 1 "$s/time" | awk -v b="${buffers:-0}" '{ if (b > 0) printf "%.0f", ($1 + $2) * 1e9 / b; else print "-" }')
  if [ "$lrc" -ne 0 ] || [ -z "$made" ]; then
    echo "gen - generator failed: $(cat "$s/load.err")"; return
  fi
  if awk -v m="$made" -v r="$rate" 'BEGIN { exit !(m < 0.97 * r) }'; then
    echo "gen $cpu generator made $made/s of $rate/s"; return
  fi
  if [ "$rc" -eq 0 ] && [ "${events:-0}" -ge $((3 * buffers)) ]; then
    echo "ok $cpu $buffers buffers, $events events"
  else
    echo "gap $cpu exit $rc: $(grep -m1 'not followed' "$s/rec.out" | cut -c1-160)"
  fi
}

# try PAIRS RINGS RATE -> the step's verdict line; a gap is tried again, up to TRIES times in all:
# on a shared machine one step can lose a ring to another job's burst, which says nothing about
# the recorder's rate (the sweep would stop at the first such accident). The tries are logged.
try() {
  local n=0 line
  while :; do
    n=$((n + 1))
    line=$(step "$@")
    case "$line" in gap*) [ "$n" -lt "$tries" ] && { printf '  %9d/s per ring: try %d: %s\n' "$3" "$n" "$line" >&2; continue; } ;; esac
    echo "$line"; return
  done
}

# sweep NAME PAIRS RINGS -> sets best (the highest rate per ring followed, 0: none) and best_cpu;
# steps logged on stderr
sweep() {
  local name=$1 pairs=$2 rings=$3
  local rate=125000 good=0 bad=0 good_cpu=-
  while [ "$rate" -le 16000000 ]; do
    try "$pairs" "$rings" "$rate" >"$dir/verdict"; read -r verdict cpu detail <"$dir/verdict"
    printf '  %-9s %9d/s per ring: %-3s %s\n' "$name" "$rate" "$verdict" "$detail" >&2
    if [ "$verdict" = ok ]; then good=$rate; good_cpu=$cpu; rate=$((rate * 2))
    else bad=$rate; [ "$verdict" = gen ] && bad=-1; break; fi
  done
  if [ "$bad" -gt 0 ] && [ "$good" -gt 0 ]; then
    for _ in 1 2; do
      local mid=$(((good + bad) / 2))
      try "$pairs" "$rings" "$mid" >"$dir/verdict"; read -r verdict cpu detail <"$dir/verdict"
      printf '  %-9s %9d/s per ring: %-3s %s\n' "$name" "$mid" "$verdict" "$detail" >&2
      if [ "$verdict" = ok ]; then good=$mid; good_cpu=$cpu; elif [ "$verdict" = gen ]; then break; else bad=$mid; fi
    done
  fi
  best=$good best_cpu=$good_cpu
}

echo "steps (${secs} s each; recorder on core 0, generator on core 1, scheduling: $prio):" >&2
sweep "one ring" 1 1; one=$best one_cpu=$best_cpu
sweep "8 rings" 4 8; all=$best all_cpu=$best_cpu
load1=$(cut -d' ' -f1-3 /proc/loadavg)
awk -v one="$one" -v all="$all" -v oc="$one_cpu" -v ac="$all_cpu" -v l0="$load0" -v l1="$load1" -v secs="$secs" -v tries="$tries" -v prio="$prio" 'BEGIN {
  printf "load average before %s, after %s (%d s per step, up to %d tries, scheduling %s)\n", l0, l1, secs, tries, prio
  printf "%-10s %6s %16s %16s %18s\n", "rings", "count", "per ring /s", "all rings /s", "recorder CPU/buffer"
  printf "%-10s %6d %16d %16d %15s ns\n", "one ring", 1, one, one, oc
  printf "%-10s %6d %16d %16d %15s ns\n", "all rings", 8, all, 8 * all, ac
  r1 = one / 2e6; r2 = 8 * all / 5e6
  printf "ratio followed per ring / 2M      = %7.3f (target >= 1)\n", r1
  printf "ratio followed all rings / 5M     = %7.3f (target >= 1)\n", r2
  ok = r1 >= 1 && r2 >= 1
  printf "all targets: %s\n", ok ? "met" : "NOT met"
  exit !ok
}'
