#!/usr/bin/env bash
# Same verdicts, same findings: runs two `conformance` binaries over every bundled and real trace,
# the regression traces, seeded generated traces (each profile and feature, every fault class) and
# every mutation class planted in the real captures, and compares `check --all --format json`
# (verdict, every finding with its message, event, offset and context) and the exit status.
# For a change that must not change what the checker says (issue 14's speed work).
#   scripts/verdict-diff.sh OLD_BIN NEW_BIN     # prints one line per difference; exit 1 if any
set -uo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

traces=(Traces/*/*.trace Traces/real/*/*.trace Tests/Regressions/traces/*.trace Tests/Regressions/fuzz/*/*.trace)
# Generated: each profile, each feature, and every fault class the generator knows (same bytes
# for the same seed, so one binary writes them).
g=0
gen() { g=$((g + 1)); "$old" generate --events 20000 --seed "$g" -o "$dir/gen$g.trace" "$@" >/dev/null 2>&1 && traces+=("$dir/gen$g.trace"); }
for p in seed-rfc2 seed-rfc1 linux-upstream linux-workers vhost-user; do gen --profile "$p" --pairs 3; done
gen --indirect; gen --event-idx; gen --in-order; gen --indirect --event-idx --start 65530
gen --packed; gen --packed --in-order; gen --packed --indirect --event-idx --queue-size 5
for f in $("$old" generate --help | tr -s ' ,\n' '\n' | grep -E '^(VQ|VHOST|NET|PACKED)-[A-Z0-9-]+$' | sort -u); do
  gen --fault "$f"; gen --fault "$f" --packed
done
# Mutations of the real captures (polled) and of the exact ones.
m=0
for f in $("$old" mutate --list-faults); do
  for src in Traces/real/testpmd-vhost-2q.trace Traces/real/linux-2q.trace Traces/real/exact/testpmd-vhost-2q-interposed.trace Traces/exact/*.trace; do
    m=$((m + 1))
    "$old" mutate "$src" --fault "$f" -o "$dir/mut$m.trace" >/dev/null 2>&1 && traces+=("$dir/mut$m.trace")
  done
done

diffs=0
for t in "${traces[@]}"; do
  [ -e "$t" ] || continue
  a=$("$old" check --all --format json "$t" 2>&1); ra=$?
  b=$("$new" check --all --format json "$t" 2>&1); rb=$?
  if [ "$ra" != "$rb" ] || [ "$a" != "$b" ]; then
    diffs=$((diffs + 1)); echo "DIFF $t (exit $ra -> $rb)"
    diff <(echo "$a") <(echo "$b") | head -10
  fi
done
# Several files at once: the same report, in argument order.
a=$("$old" check --format json Traces/good/*.trace Traces/real/*.trace 2>&1); ra=$?
b=$("$new" check --format json Traces/good/*.trace Traces/real/*.trace 2>&1); rb=$?
if [ "$ra" != "$rb" ] || [ "$a" != "$b" ]; then diffs=$((diffs + 1)); echo "DIFF check of many files (exit $ra -> $rb)"; fi
echo "${#traces[@]} traces compared, $diffs differences"
[ "$diffs" -eq 0 ]
