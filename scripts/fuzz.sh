#!/usr/bin/env bash
# Coverage-guided fuzzing of the trace tools with libFuzzer (Specs/security.md, "Fuzzing").
#
#   scripts/fuzz.sh SECONDS [TARGET]       every target (or one) for SECONDS of fuzzing in total,
#                                          split evenly over the targets (CI: scripts/fuzz.sh 32)
#   scripts/fuzz.sh --runs N [TARGET]      long run: N inputs per target, no time limit
#   scripts/fuzz.sh --build-only           build the harness and stop (CI builds it early, in the
#                                          background, while the test suites wait on their peers)
#   --fast                                 without AddressSanitizer: several times more inputs per
#                                          second, but leaks show only as RSS growth (-rss_limit_mb)
#
# Targets: conformance-fuzz --list (reader, check, report, text, roundtrip, dump, stats, mutate).
# Builds Sources/conformance-fuzz with -sanitize=fuzzer[,address] -DFUZZING into .build-fuzz (its own
# scratch path: the normal .build is never touched). Seeds are generated from Traces/ on every run into
# .build-fuzz/seeds/TARGET; inputs found interesting accumulate in .build-fuzz/corpus/TARGET.
# Exits 1 if any target crashed, trapped, broke a property, leaked, ran out of memory or timed out
# (one input over 10 s); the input is saved under .build-fuzz/crashes/TARGET/ and the line to keep it
# as a regression file (replayed by `swift test`, Tests/Regressions/fuzz) is printed. Exit 2: bad usage
# or build failure.
set -uo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,13p' "$0" >&2; exit 2; }
asan=1; seconds=""; runs=""; only=""; build_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --fast) asan=0 ;;
    --build-only) build_only=1 ;;
    --runs) [ $# -ge 2 ] || usage; runs="$2"; shift ;;
    -h|--help) usage ;;
    *) if [ -z "$seconds" ] && [ -z "$runs" ] && [[ "$1" =~ ^[0-9]+$ ]]; then seconds="$1"
       elif [ -z "$only" ]; then only="$1"; else usage; fi ;;
  esac
  shift
done
[ -n "$seconds" ] || [ -n "$runs" ] || [ $build_only -eq 1 ] || usage
[ -z "$runs" ] || [[ "$runs" =~ ^[0-9]+$ ]] || usage

out=.build-fuzz
if [ $asan -eq 1 ]; then scratch=$out/build-asan; sanitize=fuzzer,address; rss=3072
else scratch=$out/build-fast; sanitize=fuzzer; rss=2048; fi
mkdir -p "$out"
echo "fuzz: building conformance-fuzz (-sanitize=$sanitize) in $scratch" >&2
if ! swift build -c release --scratch-path "$scratch" --product conformance-fuzz \
     -Xswiftc -sanitize=$sanitize -Xswiftc -DFUZZING >"$out/build.log" 2>&1; then
  tail -30 "$out/build.log" >&2; echo "fuzz: build failed" >&2; exit 2
fi
bin="$scratch/release/conformance-fuzz"
[ $build_only -eq 0 ] || { echo "fuzz: built $bin" >&2; exit 0; }

mapfile -t all < <("$bin" --list | cut -f1)
if [ -n "$only" ]; then
  printf '%s\n' "${all[@]}" | grep -qx "$only" || { echo "fuzz: unknown target '$only' (${all[*]})" >&2; exit 2; }
  targets=("$only")
else
  targets=("${all[@]}")
fi
"$bin" --dict >"$out/text.dict"

# Seeds from Traces/: binary traces for binary targets (the real captures cut to their first 300
# events, so inputs stay small), text sources for the text target. Regenerated, never committed.
seed() {
  local t=$1 d=$out/seeds/$1
  rm -rf "$d"; mkdir -p "$d"
  if [ "$t" = text ]; then
    for f in Traces/*/*.trace.txt; do cp "$f" "$d/"; done
  else
    for f in Traces/good/*.trace Traces/bad/*.trace; do cp "$f" "$d/"; done
    for f in Traces/real/*.trace; do
      [ -e "$f" ] || continue
      hs=$(od -An -tu2 -j10 -N2 "$f" | tr -d ' ')
      head -c $((hs + 40 * 300)) "$f" >"$d/$(basename "$f" .trace)-head.trace"
    done
  fi
}

fail=0
per=0
[ -n "$seconds" ] && per=$(( seconds / ${#targets[@]} )) && [ $per -lt 1 ] && per=1
printf '%-10s %10s %8s %8s %8s %8s  %s\n' target runs cov ft corpus exec/s result
for t in "${targets[@]}"; do
  seed "$t"
  mkdir -p "$out/corpus/$t" "$out/crashes/$t" "$out/logs"
  log=$out/logs/$t.log
  before=$(ls "$out/crashes/$t" | wc -l)
  args=(-timeout=10 -rss_limit_mb=$rss -malloc_limit_mb=1024 -max_len=16384 -print_final_stats=1
        -artifact_prefix="$out/crashes/$t/")
  [ "$t" = text ] && args+=(-dict="$out/text.dict")
  if [ -n "$runs" ]; then args+=(-runs="$runs"); else args+=(-max_total_time=$per); fi
  # The Swift backtracer would take the crash signals libFuzzer reports on.
  SWIFT_BACKTRACE=enable=no CONFORMANCE_FUZZ_TARGET=$t \
    "$bin" "${args[@]}" "$out/corpus/$t" "$out/seeds/$t" >"$log" 2>&1
  rc=$?
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
  [ -n "$done_line" ] || done_line=$(grep -E '^#[0-9]+[[:space:]]+(pulse|NEW|REDUCE|INITED)' "$log" | tail -1)
  n=$(grep -oE '^stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' || true)
  [ -n "$n" ] || n=$(printf '%s' "$done_line" | grep -oE '^#[0-9]+' | tr -d '#')
  cov=$(printf '%s' "$done_line" | grep -oE 'cov: [0-9]+' | grep -oE '[0-9]+')
  ft=$(printf '%s' "$done_line" | grep -oE 'ft: [0-9]+' | grep -oE '[0-9]+')
  corp=$(printf '%s' "$done_line" | grep -oE 'corp: [0-9]+' | grep -oE '[0-9]+')
  eps=$(printf '%s' "$done_line" | grep -oE 'exec/s: [0-9]+' | grep -oE '[0-9]+')
  after=$(ls "$out/crashes/$t" | wc -l)
  if [ $rc -eq 0 ] && [ "$after" -eq "$before" ]; then result=ok
  else
    result="FAIL (exit $rc, $((after - before)) new input(s) in $out/crashes/$t)"; fail=1
  fi
  printf '%-10s %10s %8s %8s %8s %8s  %s\n' "$t" "${n:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${eps:-?}" "$result"
  if [ "$result" != ok ]; then
    grep -E 'ERROR|SUMMARY|fuzz property violated|Fatal error|Test unit written' "$log" | head -8 | sed 's/^/    /'
    for a in $(ls -t "$out/crashes/$t" | head -$((after - before))); do
      echo "    keep it: mkdir -p Tests/Regressions/fuzz/$t && cp $out/crashes/$t/$a Tests/Regressions/fuzz/$t/<what-it-shows>"
    done
    echo "    log: $log"
  fi
done
exit $fail
