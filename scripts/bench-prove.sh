#!/usr/bin/env bash
# Measures `conformance prove` (every property and broken variant, counterexample traces
# written and checked) against the 10 s target of issue 4, and prints the ratio.
#
# Usage: scripts/bench-prove.sh [RUNS]          (default 5 runs)
# Environment: SCRATCH   SwiftPM scratch path (default .build)
#              CONFIGURATION  debug or release (default debug; Z3 dominates the time)
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-5}
scratch=${SCRATCH:-.build}
config=${CONFIGURATION:-debug}
target_s=10

swift build -c "$config" --scratch-path "$scratch" --product conformance >/dev/null
bin="$(swift build -c "$config" --scratch-path "$scratch" --show-bin-path)/conformance"
traces=$(mktemp -d)
trap 'rm -rf "$traces"' EXIT

echo "conformance prove, $runs runs, $(nproc) cores, $config build"
times=()
for i in $(seq 1 "$runs"); do
    start=$(date +%s.%N)
    if ! "$bin" prove --format json --trace-dir "$traces" >"$traces/out.json"; then
        echo "run $i: conformance prove failed (exit $?)" >&2
        exit 1
    fi
    end=$(date +%s.%N)
    t=$(echo "$end - $start" | bc -l)
    inner=$(sed -n 's/^  "seconds": \([0-9.]*\),/\1/p' "$traces/out.json")
    printf 'run %d: %.3f s wall (%.3f s in the prover)\n' "$i" "$t" "$inner"
    times+=("$t")
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
best=${sorted[0]}
median=${sorted[$(( runs / 2 ))]}
worst=${sorted[$(( runs - 1 ))]}
printf 'best %.3f s, median %.3f s, worst %.3f s\n' "$best" "$median" "$worst"
printf 'ratio to the %d s target: %.3f (median / target)\n' "$target_s" "$(echo "$median / $target_s" | bc -l)"
if (( $(echo "$median >= $target_s" | bc -l) )); then
    echo "OVER TARGET" >&2
    exit 1
fi
