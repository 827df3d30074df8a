#!/usr/bin/env bash
# Makes the Linux-guest excerpts in Traces/real/ (each at most 24,980 events: under 1,000,000 bytes with the 256-queue header):
# one run.sh capture per line below, the recorder stopped by --max-events (or by the guest's
# power-off, for the slow runs that stay under the budget).
#
#   scripts/guest/excerpts.sh [DEST [NAME...]]   (default Traces/real, every name below;
#                                                 CONFORMANCE picks the binary)
#
# Prints one line per excerpt: name, events, bytes, check exit status and findings.
set -u
here=$(cd "$(dirname "$0")" && pwd)
DEST=${1:-$here/../../Traces/real}
[ $# -gt 0 ] && shift
ONLY=" $* "
MAX=24980
mkdir -p "$DEST"
work=$(mktemp -d /tmp/cg-excerpts.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail=0
#     name                        run.sh options
while read -r name opts; do
    [ -n "$name" ] || continue
    [ "$ONLY" = "  " ] || [[ "$ONLY" == *" $name "* ]] || continue
    out="$work/$name"
    # shellcheck disable=SC2086
    if ! "$here/run.sh" $opts "$out" -- --max-events "$MAX" >"$work/$name.log" 2>&1; then
        echo "$name: run.sh failed: $(tail -3 "$work/$name.log" | tr '\n' ' ')"; fail=1; continue
    fi
    # Where a capture goes is decided by its verdict: conformant ones to DEST, incomplete ones
    # (a ring format the recorder does not follow) to DEST/../incomplete; anything else is a failure.
    case "$(cat "$out/check.status")" in
        0) cp "$out/trace.trace" "$DEST/$name.trace" ;;
        3) mkdir -p "$DEST/../incomplete"; cp "$out/trace.trace" "$DEST/../incomplete/$name.trace" ;;
        *) echo "$name: check exit $(cat "$out/check.status"): not kept"; fail=1 ;;
    esac
    printf '%-28s %7s events %8s bytes  check exit %s, %s finding(s)\n' "$name" \
        "$(sed -n 's/.*"events":\([0-9]*\).*/\1/p' "$out/summary.json")" "$(stat -c %s "$out/trace.trace")" \
        "$(cat "$out/check.status")" "$(sed -n 's/.*"findings":\([0-9]*\).*/\1/p' "$out/summary.json")"
done <<'LIST'
linux-1q                      --pairs 1
linux-2q                      --pairs 2
linux-4q                      --pairs 4
linux-2q-event-idx-off        --pairs 2 --variant event-idx-off
linux-2q-indirect-off         --pairs 2 --variant indirect-off
linux-2q-mem4g                --pairs 2 --variant mem4g
linux-2q-channels-slow        --pairs 2 --variant channels --secs 3 --delay 2000000
linux-1q-restart-slow         --pairs 1 --variant restart --restart-mode warm --secs 2 --restart-after 1 --delay 2000000
linux-2q-packed               --pairs 2 --variant packed
LIST
exit $fail
