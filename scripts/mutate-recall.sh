#!/usr/bin/env bash
# Recall of `conformance mutate` on real captures: for every fault class and every trace given
# (default: Traces/real/*.trace), plants the fault, checks the result, and counts whether the class's
# rule was reported. Prints one line per class: planted, caught, no place (the class needs a driver
# property the capture lacks), then the total. Exit 1 if any planted fault was missed.
#
#   scripts/mutate-recall.sh [TRACE...]      (CONFORMANCE picks the binary; default .build/debug)
set -u
cd "$(dirname "$0")/.."
BIN=${CONFORMANCE:-.build/debug/conformance}
[ $# -gt 0 ] || set -- Traces/real/*.trace
work=$(mktemp -d /tmp/mutate-recall.XXXXXX)
trap 'rm -rf "$work"' EXIT
missed=0; tp=0; tc=0
printf '%-30s %8s %7s %9s\n' class planted caught "no place"
while IFS=$'\t' read -r class rule _; do
    planted=0; caught=0; noplace=0
    for f in "$@"; do
        if ! "$BIN" mutate "$f" --fault "$class" -o "$work/m.trace" 2>"$work/err"; then noplace=$((noplace + 1)); continue; fi
        planted=$((planted + 1))
        rules=$("$BIN" check --format json "$work/m.trace" 2>/dev/null | grep -o '"rule": "[^"]*"' | sed 's/"rule": "\(.*\)"/\1/' | sort -u)
        # The class's rule; "A (with IN_ORDER: B)" accepts either.
        hit=0
        for r in $(printf '%s' "$rule" | tr -c 'A-Z0-9-' ' '); do
            case "$r" in *-*) printf '%s\n' "$rules" | grep -qx "$r" && hit=1 ;; esac
        done
        if [ $hit = 1 ]; then caught=$((caught + 1)); else missed=1; echo "  missed: $class on $f: got $(echo $rules)" >&2; fi
    done
    tp=$((tp + planted)); tc=$((tc + caught))
    printf '%-30s %8d %7d %9d\n' "$class" "$planted" "$caught" "$noplace"
done < <("$BIN" mutate --list-faults --verbose)
printf '%-30s %8d %7d\n' total "$tp" "$tc"
exit $missed
