#!/usr/bin/env bash
# Benchmark: how fast `conformance check` judges, against what reading alone costs (issue 14).
# Builds the release binary and the decode-only C baseline (scripts/bench/decode-baseline.c: 1 MiB
# blocks, kind and vq validated, per-vq counts), then in a temp dir makes
#   exact:  the generated benchmark trace (4 queue pairs, seeded), EVENTS and EVENTS/10 events;
#   polled: the real captures Traces/real/*.trace one session after another (scripts/bench/
#           concat-sessions.c: RESET_OWNER between sessions), to at least EVENTS and EVENTS/10,
# and measures side by side in one run (CPU time = user + system, so other jobs on the machine
# weigh less than on wall time; each figure is the best of ROUNDS runs):
#   check events/s, exact and polled          target >= 50 M/s exact, >= 25 M/s polled (one core)
#   ratio check/decode (CPU time, same file)  target <= 6 on the exact trace
#   max RSS at EVENTS/10 and EVENTS           target ratio <= 1.10 for both traces; exact <= 64 MiB
#   split speed-up of one trace               wall time of `check --jobs 1` over `check --jobs <cores>`
#                                             on the large exact and polled traces (the trace cut by vq,
#                                             Specs/performance.md); no target of its own
#   parallel speed-up of `check F1..Fn`       wall time of the n single-file runs (`--jobs 1`) summed over the wall
#                                             time of one run given all n; target >= 0.8 x cores (wall
#                                             time: only meaningful when the machine has idle cores, so
#                                             the CPU time over wall time of that run, the cores it kept
#                                             busy, is printed beside it)
# Prints the load average before and after (the machine is shared). Exit 0 when every target holds.
# Usage: scripts/bench-check.sh [EVENTS] [ROUNDS]    (default 10000000 3)
set -euo pipefail
cd "$(dirname "$0")/.."
big=${1:-10000000}
rounds=${2:-3}
small=$((big / 10))
swift build -c release --product conformance >/dev/null
bin="$(swift build -c release --show-bin-path)/conformance"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cc -O2 -o "$dir/decode" scripts/bench/decode-baseline.c -I Specs/examples
cc -O2 -o "$dir/concat" scripts/bench/concat-sessions.c -I Specs/examples
cores=$(nproc)
load0=$(cut -d' ' -f1-3 /proc/loadavg)

for n in $small $big; do
  "$bin" generate --events "$n" --pairs 4 --queue-size 256 --start 65000 --seed 7 -o "$dir/exact$n.trace" 2>/dev/null
  "$dir/concat" "$dir/polled$n.trace" "$n" Traces/real/*.trace >/dev/null
done

# run NAME CMD... -> appends "NAME cpu_s wall_s rss_kib" (best CPU time and wall of `rounds`, max RSS)
run() {
  local name=$1; shift
  local best_cpu="" best_wall="" rss=0
  for _ in $(seq "$rounds"); do
    /usr/bin/time -f '%U %S %e %M' -o "$dir/time" "$@" > "$dir/out" 2>&1 || {
      cat "$dir/out"; echo "$name: $* failed" >&2; exit 1; }
    read -r u s e m < "$dir/time"
    local cpu; cpu=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.3f", u + s }')
    if [ -z "$best_cpu" ] || awk -v a="$cpu" -v b="$best_cpu" 'BEGIN { exit !(a < b) }'; then best_cpu=$cpu; fi
    if [ -z "$best_wall" ] || awk -v a="$e" -v b="$best_wall" 'BEGIN { exit !(a < b) }'; then best_wall=$e; fi
    [ "$m" -gt "$rss" ] && rss=$m
  done
  cp "$dir/out" "$dir/out-$name"
  echo "$name $best_cpu $best_wall $rss" >> "$dir/results"
}
events() { grep -o '([0-9]* events' "$dir/out-$1" | tr -dc 0-9; }

: > "$dir/results"
for kind in exact polled; do
  run "decode-$kind" "$dir/decode" "$dir/$kind$big.trace"
  # One core: a single file is otherwise split across every core.
  run "check-$kind" "$bin" check --jobs 1 "$dir/$kind$big.trace"
  run "check-$kind-small" "$bin" check --jobs 1 "$dir/$kind$small.trace"
  run "split-$kind" "$bin" check --jobs "$cores" "$dir/$kind$big.trace"
done
# Parallel: two copies of each small trace, one file per core's worth of work and more.
files=()
for kind in exact polled; do for c in 1 2; do cp "$dir/$kind$small.trace" "$dir/par-$kind-$c.trace"; files+=("$dir/par-$kind-$c.trace"); done; done
for f in "${files[@]}"; do run "single-$(basename "$f")" "$bin" check --jobs 1 "$f"; done
run parallel "$bin" check "${files[@]}"
load1=$(cut -d' ' -f1-3 /proc/loadavg)

ev_exact=$(events check-exact); ev_polled=$(events check-polled)
size_exact=$(stat -c %s "$dir/exact$big.trace"); size_polled=$(stat -c %s "$dir/polled$big.trace")
awk -v ee="$ev_exact" -v ep="$ev_polled" -v se="$size_exact" -v sp="$size_polled" -v cores="$cores" \
    -v load0="$load0" -v load1="$load1" -v rounds="$rounds" -v nfiles="${#files[@]}" '
  { cpu[$1] = $2; wall[$1] = $3; rss[$1] = $4; if ($1 ~ /^single-/) single += $3 }
  END {
    ok = 1
    printf "load average before %s, after %s (%d cores; best of %d runs, CPU time)\n", load0, load1, cores, rounds
    printf "%-7s %12s %9s %9s %14s %14s %8s %10s %10s %6s\n", "trace", "events", "MiB", "decode s", "decode ev/s", "check ev/s", "check s", "RSS small", "RSS big", "RSS x"
    n = split("exact polled", kinds, " ")
    for (i = 1; i <= n; i++) {
      k = kinds[i]; ev = (k == "exact") ? ee : ep; sz = (k == "exact") ? se : sp
      d = cpu["decode-" k]; c = cpu["check-" k]
      deps[k] = ev / (d > 0 ? d : 0.001); ceps[k] = ev / (c > 0 ? c : 0.001)
      flat[k] = rss["check-" k] / rss["check-" k "-small"]
      ratio[k] = c / (d > 0 ? d : 0.001)
      printf "%-7s %12d %9.0f %9.3f %14.0f %14.0f %8.3f %8.1f Mi %8.1f Mi %6.3f\n", k, ev, sz / 1048576, d, deps[k], ceps[k], c,
             rss["check-" k "-small"] / 1024, rss["check-" k] / 1024, flat[k]
    }
    for (i = 1; i <= n; i++) {
      k = kinds[i]; w = wall["split-" k]
      printf "split: %s trace, --jobs 1 %.2f s, --jobs %d %.2f s wall (%.2f s CPU): speed-up %.2f\n", k, wall["check-" k], cores, w,
             cpu["split-" k], wall["check-" k] / (w > 0 ? w : 0.01)
    }
    speedup = single / (wall["parallel"] > 0 ? wall["parallel"] : 0.01)
    printf "parallel: %d files, %.2f s one by one, %.2f s in one `check` (%.2f s CPU: %.2f cores busy)\n", nfiles, single, wall["parallel"],
           cpu["parallel"], cpu["parallel"] / (wall["parallel"] > 0 ? wall["parallel"] : 0.01)
    printf "ratio check/decode exact            = %7.2f (target <= 6)\n", ratio["exact"]; ok = ok && ratio["exact"] <= 6
    printf "ratio check/decode polled           = %7.2f (no target)\n", ratio["polled"]
    printf "ratio exact events/s / 50M          = %7.3f (target >= 1)\n", ceps["exact"] / 50e6; ok = ok && ceps["exact"] >= 50e6
    printf "ratio polled events/s / 25M         = %7.3f (target >= 1)\n", ceps["polled"] / 25e6; ok = ok && ceps["polled"] >= 25e6
    printf "ratio RSS flatness exact (big/small)= %7.3f (target <= 1.10)\n", flat["exact"]; ok = ok && flat["exact"] <= 1.10
    printf "ratio RSS flatness polled           = %7.3f (target <= 1.10)\n", flat["polled"]; ok = ok && flat["polled"] <= 1.10
    printf "ratio RSS exact / 64 MiB            = %7.3f (target <= 1)\n", rss["check-exact"] / 1024 / 64; ok = ok && rss["check-exact"] / 1024 <= 64
    printf "ratio parallel speed-up / cores     = %7.3f (speed-up %.2f on %d cores; target >= 0.8)\n", speedup / cores, speedup, cores
    ok = ok && speedup / cores >= 0.8
    printf "all targets: %s\n", ok ? "met" : "NOT met"
    exit !ok
  }' "$dir/results"
