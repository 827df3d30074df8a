#!/usr/bin/env bash
# The main job: checks every bundled trace under Traces/ and proves the Z3 specs.
#   Traces/good/*.trace, Traces/real/{,legacy/,exact/}*.trace and Traces/exact/*.trace must be conformant (exit 0);
#   Traces/bad/<RULE-ID>[--case].trace must be reported (exit 1) with exactly that rule;
#   Traces/incomplete/*.trace must be reported incomplete (exit 3: nothing broken, not all judged).
# Prints one verdict line per trace, then the proof table; exits 0 only if every verdict is the
# expected one and every proof holds (every broken variant refuted).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The debug build: the one `swift test` already made (CI runs the tests first), and fast enough
# for these traces; the benchmarks (scripts/bench-*.sh) build their own release binary.
swift build --product conformance >/dev/null || { echo "build failed" >&2; exit 2; }
bin="$(swift build --show-bin-path)/conformance"

fail=0; n=0
verdict() { printf '%-6s %-62s %s\n' "$1" "$2" "$3"; }
for f in Traces/good/*.trace Traces/real/*.trace Traces/real/legacy/*.trace Traces/real/exact/*.trace Traces/exact/*.trace; do
  [ -e "$f" ] || continue
  n=$((n+1))
  out=$("$bin" check "$f" 2>&1); rc=$?
  if [ $rc -eq 0 ]; then verdict ok "$f" "conformant"; else verdict FAIL "$f" "expected conformant, exit $rc"; echo "$out" | head -20; fail=1; fi
done
for f in Traces/incomplete/*.trace; do
  [ -e "$f" ] || continue
  n=$((n+1))
  out=$("$bin" check "$f" 2>&1); rc=$?
  if [ $rc -eq 3 ]; then verdict ok "$f" "incomplete"; else verdict FAIL "$f" "expected incomplete (exit 3), exit $rc"; echo "$out" | head -20; fail=1; fi
done
for f in Traces/bad/*.trace; do
  [ -e "$f" ] || continue
  n=$((n+1))
  base=$(basename "$f" .trace); rule=${base%%--*}
  json=$("$bin" check --format json "$f" 2>/dev/null); rc=$?
  rules=$(printf '%s' "$json" | grep -o '"rule": "[^"]*"' | sort -u | sed 's/"rule": "\(.*\)"/\1/' | tr '\n' ' ')
  if [ $rc -eq 1 ] && [ "$rules" = "$rule " ]; then verdict ok "$f" "violates $rule"
  else verdict FAIL "$f" "expected exactly $rule (exit 1), got exit $rc rules: $rules"; fail=1; fi
done
echo "checked $n traces"
echo
"$bin" prove || fail=1
exit $fail
