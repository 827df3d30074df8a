#!/usr/bin/env bash
# Measures what `conformance record` costs the DPDK testpmd pair: the same pair, the same
# settings, run alternately without (direct) and with the recorder in between, ROUNDS times each.
# The figure per run is the median of the front-end's per-second Rx-pps lines once traffic flows
# (the first second of traffic is left out).
#
#   scripts/overhead.sh [QUEUES] [SECONDS] [ROUNDS] [extra `conformance record` options...]
#
# CONFORMANCE picks the binary (use a release build for figures: swift build -c release).
# INTERPOSE=1 adds a third run per round through `record --interpose` (the ring relay), so the
# direct pair, the passive recorder and the relay are measured in the same run.
set -u
Q=${1:-2}; SECS=${2:-12}; ROUNDS=${3:-3}; shift $(( $# < 3 ? $# : 3 ))
DIR=$(mktemp -d /tmp/overhead.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
here=$(dirname "$0")
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
rate() {   # per-second Rx-pps samples after the first non-zero one
    grep -o "Rx-pps: *[0-9]*" "$1" | grep -o "[0-9]*$" | awk '$1>0' | tail -n +2 | median
}
declare -a D R I
for i in $(seq 1 "$ROUNDS"); do
    STATS_PERIOD=1 "$here/dpdk-capture.sh" --direct "$Q" "$SECS" "$DIR/d$i" >/dev/null 2>&1
    D+=("$(rate "$DIR/d$i/fe.log")")
    STATS_PERIOD=1 "$here/dpdk-capture.sh" "$Q" "$SECS" "$DIR/r$i" --progress 0 "$@" >/dev/null 2>&1
    R+=("$(rate "$DIR/r$i/fe.log")")
    lost=$(grep -c "fell behind" "$DIR/r$i/rec.log")
    extra=""
    if [ "${INTERPOSE:-0}" = 1 ]; then
        STATS_PERIOD=1 "$here/dpdk-capture.sh" "$Q" "$SECS" "$DIR/i$i" --progress 0 --interpose "$@" >/dev/null 2>&1
        I+=("$(rate "$DIR/i$i/fe.log")")
        extra=", through --interpose ${I[-1]} pps (record exit $(cat "$DIR/i$i/rec.status" 2>/dev/null || echo ?))"
    fi
    echo "round $i: direct ${D[-1]} pps, recorded ${R[-1]} pps, rings the recorder could not follow: $lost$extra"
done
d=$(printf "%s\n" "${D[@]}" | median); r=$(printf "%s\n" "${R[@]}" | median)
if [ "${INTERPOSE:-0}" = 1 ]; then
    ip=$(printf "%s\n" "${I[@]}" | median)
    echo "interposed median $ip pps, cost against direct $(awk -v d="$d" -v r="$ip" 'BEGIN { if (d > 0) printf "%.1f%%", 100 * (d - r) / d; else print "n/a" }')"
fi
echo "queues=$Q seconds=$SECS rounds=$ROUNDS: direct median $d pps, through the recorder median $r pps, overhead $(awk -v d="$d" -v r="$r" 'BEGIN { if (d > 0) printf "%.1f%%", 100 * (d - r) / d; else print "n/a" }')"
