#!/usr/bin/env bash
# Benchmark: `conformance check` streams a generated trace in flat memory.
# Generates a 1M-event and a 10M-event conformant trace (4 queue pairs, seeded) in a temp dir,
# checks both with the release build under /usr/bin/time, and prints events/s, max RSS, and ratios:
#   flatness  = RSS(10M) / RSS(1M)          target <= 1.10  (memory does not grow with length)
#   memory    = RSS(10M) / 64 MiB           target <= 1.00
#   speed     = events/s / 1,000,000        target >= 1.00
# Exit 0 when all three targets hold. Usage: scripts/bench-check.sh [events]   (default 10000000)
set -euo pipefail
cd "$(dirname "$0")/.."
big=${1:-10000000}
small=$((big / 10))
swift build -c release --product conformance >/dev/null
bin="$(swift build -c release --show-bin-path)/conformance"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

measure() { # file -> "events seconds rss_kib"
  /usr/bin/time -f '%e %M' -o "$dir/time" "$bin" check "$1" > "$dir/out" || { cat "$dir/out"; echo "check failed" >&2; exit 1; }
  ev=$(grep -o '([0-9]* events' "$dir/out" | tr -dc 0-9)
  read -r secs rss < "$dir/time"
  echo "$ev $secs $rss"
}

for n in $small $big; do
  "$bin" generate --events "$n" --pairs 4 --queue-size 256 --start 65000 --seed 7 -o "$dir/t$n.trace" 2>/dev/null
done
read -r ev1 s1 r1 <<<"$(measure "$dir/t$small.trace")"
read -r ev2 s2 r2 <<<"$(measure "$dir/t$big.trace")"
size=$(stat -c %s "$dir/t$big.trace")
awk -v ev1="$ev1" -v r1="$r1" -v ev2="$ev2" -v s2="$s2" -v r2="$r2" -v size="$size" 'BEGIN {
  eps = (s2 > 0) ? ev2 / s2 : ev2 / 0.01
  flat = r2 / r1; mem = (r2 / 1024) / 64; speed = eps / 1000000
  printf "trace: %d events (%.0f MiB); check took %.2f s: %.0f events/s, max RSS %.1f MiB\n", ev2, size / 1048576, s2, eps, r2 / 1024
  printf "small trace: %d events, max RSS %.1f MiB\n", ev1, r1 / 1024
  printf "ratio flatness RSS(big)/RSS(small) = %.3f (target <= 1.10)\n", flat
  printf "ratio memory RSS/64MiB            = %.3f (target <= 1.00)\n", mem
  printf "ratio speed events/s / 1M         = %.2f (target >= 1.00)\n", speed
  exit !(flat <= 1.10 && mem <= 1.0 && speed >= 1.0)
}'
