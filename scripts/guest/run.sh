#!/usr/bin/env bash
# One Linux-guest capture: DPDK testpmd (vhost-user back-end, io forwarding) <- conformance record
# <- QEMU (TCG) running a Debian kernel whose virtio_net sends pktgen traffic on every TX queue.
#
#   scripts/guest/run.sh [options] OUTDIR [-- extra `conformance record` options...]
#
#   --pairs N          queue pairs (QEMU queues=N, guest combined N, testpmd queues=N)   default 1
#   --secs S           seconds of guest traffic (each phase, with restart)              default 4
#   --delay NS[,NS..]  pktgen delay per packet per TX queue, ns                          default 200000
#   --variant V        repeatable; V is one of
#                        event-idx-off   virtio-net-pci event_idx=off
#                        indirect-off    virtio-net-pci indirect_desc=off
#                        channels        guest: ethtool -L combined 1 and back to N mid-run
#                        restart         testpmd stopped and started again mid-traffic (QEMU
#                                        reconnect=1, recorder --reconnect)
#                        mem4g           4 GiB of guest memory: two memory regions
#                        packed          virtio-net-pci packed=on
#   --recorder R       plain (default with testpmd): `conformance record` between QEMU and the
#                      back-end; none (default with serve): QEMU straight to the back-end;
#                      interpose: `record --interpose` (the recorder relays the
#                      rings: an exact trace). Also RECORDER=.
#   --backend B        testpmd (default) or serve (`conformance serve`: loopback, exact trace,
#                      --check; its trace is trace.trace without a recorder, else serve.trace).
#                      Also BACKEND=.
#   --serve-mapping M  with serve: seed-rfc2 (default), seed-rfc1 or per-pair
#   --serve-workers W  with serve: worker threads                                    default 2
#   --restart-after S  with restart: seconds after the guest's traffic starts           default secs/2
#   --restart-mode M   with restart: cold (default): stop testpmd (its shutdown took up to 4 s
#                      here), then start a new one (listening ~1.3 s after its start); warm:
#                      start the new one first (on its own socket, the back-end path is a
#                      symlink switched to it), then stop the old one
#   --conformance BIN  the conformance binary (also CONFORMANCE=; default .build/debug/conformance)
#
# OUTDIR gets: trace.trace, serial.log (guest console), testpmd.log (testpmd-2.log after a restart),
# recorder.log, qemu.log, with serve serve.log and serve.json (its `--summary-json`), stats.json (`conformance stats`), check.json and check.status
# (`conformance check`), and summary.json: per queue pair the guest's ethtool -S tx/rx packets,
# testpmd's per-queue forward statistics (per testpmd run) and the trace's used buffers per vq.
# Exit status: 0 the run completed (the guest printed its counters and powered off; nothing is
# judged here, see summary.json), 2 a tool failed or a process had to be killed, 77 QEMU or
# testpmd is missing.
# Every process runs under `timeout -s KILL`, is stopped by its PID, and the sockets and DPDK
# runtime folders are removed on every exit path.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
T_START=$(date +%s.%N)
# testpmd prints its statistics, and the recorder ends its trace, on SIGINT; a signal blocked in
# our mask stays blocked in theirs (a test harness's threads may block them all).
# (awk reads its own mask: the one our children inherit.)
blk=$(awk '/^SigBlk:/ { print $2 }' /proc/self/status)
if [ $(( 0x${blk:-0} >> 1 & 1 )) = 1 ]; then
    guest_die "SIGINT is blocked in this process's signal mask; start run.sh with signals unblocked (posix_spawn with an empty mask)"
fi

PAIRS=1 SECS=4 DELAY=200000 RESTART_AFTER="" RESTART_MODE=cold VARIANTS=()
RECORDER=${RECORDER:-} BACKEND=${BACKEND:-testpmd} SERVE_MAPPING=seed-rfc2 SERVE_WORKERS=2
while [ $# -gt 0 ]; do
    case "$1" in
        --pairs) PAIRS=$2; shift 2 ;;
        --secs) SECS=$2; shift 2 ;;
        --delay) DELAY=$2; shift 2 ;;
        --variant) VARIANTS+=("$2"); shift 2 ;;
        --recorder) RECORDER=$2; shift 2 ;;
        --backend) BACKEND=$2; shift 2 ;;
        --serve-mapping) SERVE_MAPPING=$2; shift 2 ;;
        --serve-workers) SERVE_WORKERS=$2; shift 2 ;;
        --restart-after) RESTART_AFTER=$2; shift 2 ;;
        --restart-mode) RESTART_MODE=$2; shift 2 ;;
        --conformance) CONFORMANCE=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        --) break ;;
        -*) guest_die "unknown option $1 (see --help)" ;;
        *) [ -z "${OUT:-}" ] && OUT=$1 && shift || guest_die "one OUTDIR only" ;;
    esac
done
[ "${1:-}" = "--" ] && shift
REC_EXTRA=("$@")
[ -n "${OUT:-}" ] || guest_die "usage: run.sh [options] OUTDIR [-- record options] (see --help)"
case "$PAIRS" in 1|2|3|4|5|6|7|8) ;; *) guest_die "--pairs must be 1..8" ;; esac

BIN=${CONFORMANCE:-.build/debug/conformance}
QEMU=${QEMU:-qemu-system-x86_64}
TESTPMD=${TESTPMD:-dpdk-testpmd}
command -v "$QEMU" >/dev/null || { guest_log "$QEMU not found (install qemu-system-x86)"; exit 77; }

MEM=512 DEVOPT="" ACTION=none RESTART=0
for v in "${VARIANTS[@]}"; do
    case "$v" in
        event-idx-off) DEVOPT+=",event_idx=off" ;;
        indirect-off) DEVOPT+=",indirect_desc=off" ;;
        channels) ACTION=channels ;;
        restart) ACTION=restart; RESTART=1 ;;
        mem4g) MEM=4096 ;;
        packed) DEVOPT+=",packed=on" ;;
        *) guest_die "unknown variant $v" ;;
    esac
done
[ -n "$RESTART_AFTER" ] || RESTART_AFTER=$(( (SECS + 1) / 2 ))
case "$RESTART_MODE" in cold|warm) ;; *) guest_die "--restart-mode is cold or warm" ;; esac

case "$BACKEND" in
    testpmd) command -v "$TESTPMD" >/dev/null || { guest_log "$TESTPMD not found (install dpdk-dev)"; exit 77; }
             RECORDER=${RECORDER:-plain} ;;
    serve) [ -x "$BIN" ] || guest_die "$BIN not found (swift build, or set CONFORMANCE)"
           [ $RESTART = 0 ] || guest_die "--backend serve: the restart variant is not wired for serve yet"
           RECORDER=${RECORDER:-none} ;;
    *) guest_die "unknown back-end $BACKEND" ;;
esac
case "$RECORDER" in
    plain|none|interpose) ;;
    *) guest_die "unknown recorder $RECORDER" ;;
esac
if [ "$RECORDER" != none ] && [ ! -x "$BIN" ]; then guest_die "$BIN not found (swift build, or set CONFORMANCE)"; fi

KDIR=$("$here/kernel.sh") || exit 2
INITRD=$("$here/initramfs.sh" "$KDIR") || exit 2
VMLINUZ=$(ls "$KDIR"/boot/vmlinuz-* | head -1)

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/{trace.trace,serve.trace,serial.log,testpmd.log,testpmd-2.log,recorder.log,serve.log,serve.json,qemu.log,stats.json,check.json,check.status,summary.json}
# Unix socket paths are limited to 108 bytes: keep them short, in a private folder.
SOCKDIR=$(mktemp -d /tmp/cg.XXXXXX)
# BE_SOCK is a symlink to the socket of the testpmd run that serves now (be-1.sock, be-2.sock).
BE_SOCK=$SOCKDIR/be.sock REC_SOCK=$SOCKDIR/rec.sock
TAG="cg$$"
PREFIXES=()
QEMU_PID="" REC_PID="" BE_PID="" OLD_PID="" BE_STATUS=""
KILLED=0

STOPPED_STATUS=""
stop_pid() {   # SIGINT (timeout forwards it to its child), then SIGKILL to the child and to timeout;
               # leaves the exit status in STOPPED_STATUS
    local p=$1 secs=${2:-10}
    STOPPED_STATUS=""
    [ -n "$p" ] || return 0
    if kill -INT "$p" 2>/dev/null; then
        for _ in $(seq 1 $((secs * 10))); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$p" 2>/dev/null; then
            KILLED=1
            for c in $(cat "/proc/$p/task/$p/children" 2>/dev/null); do kill -KILL "$c" 2>/dev/null; done
            kill -KILL "$p" 2>/dev/null
        fi
    fi
    wait "$p" 2>/dev/null
    STOPPED_STATUS=$?
}
cleanup() {
    stop_pid "$QEMU_PID" 5; stop_pid "$REC_PID" 5; stop_pid "$BE_PID" 10; stop_pid "$OLD_PID" 10
    rm -rf "$SOCKDIR"
    for p in "${PREFIXES[@]}"; do
        rm -rf "/var/run/dpdk/$p" "${XDG_RUNTIME_DIR:-/tmp}/dpdk/$p" 2>/dev/null
    done
}
trap cleanup EXIT
trap 'exit 2' INT TERM HUP

wait_sock() {   # $1 path, $2 seconds
    for _ in $(seq 1 $(($2 * 10))); do [ -S "$1" ] && return 0; sleep 0.1; done
    return 1
}

# Bounds: the guest boots in 10-40 s under TCG; each phase adds its traffic; a restart adds
# testpmd's start-up and QEMU's reconnect.
LIMIT=$((150 + 3 * SECS + (MEM > 1024 ? 90 : 0) + RESTART * (60 + SECS)))

BE_RUNS=0
start_testpmd() {
    BE_RUNS=$((BE_RUNS + 1))
    local log=$OUT/testpmd.log prefix="${TAG}be$BE_RUNS"
    [ $BE_RUNS -gt 1 ] && log=$OUT/testpmd-$BE_RUNS.log
    PREFIXES+=("$prefix")
    local sock=$SOCKDIR/be-$BE_RUNS.sock
    # Non-interactive testpmd forwards at once; a long --stats-period keeps it off stdin. The mbuf
    # pool fills N RX rings of 1024 and the bursts in flight. Its forwarding loop spins on a core:
    # niced, so that on a busy machine the recorder and QEMU are not the ones starved (a recorder
    # descheduled for 0.2 s misses more than a ring's worth of completions and loses the ring).
    timeout -s KILL "$LIMIT" nice -n 10 "$TESTPMD" -l 0-1 --no-pci --no-huge -m 512 --file-prefix="$prefix" \
        --vdev "net_vhost0,iface=$sock,queues=$PAIRS" -- \
        --forward-mode=io --rxq="$PAIRS" --txq="$PAIRS" --nb-cores=1 --total-num-mbufs=32768 \
        --stats-period=1000 </dev/null >"$log" 2>&1 &
    BE_PID=$!
    wait_sock "$sock" 30 || { guest_log "testpmd did not listen on $sock (see $log)"; exit 2; }
    ln -sfn "$(basename "$sock")" "$BE_SOCK"
}
start_serve() {
    local sock=$SOCKDIR/be-1.sock trace=$OUT/trace.trace
    [ "$RECORDER" = none ] || trace=$OUT/serve.trace
    # One session: serve ends when QEMU's connection closes (exit status: CheckExit).
    timeout -s KILL "$LIMIT" "$BIN" serve --socket "$sock" --queues "$PAIRS" --workers "$SERVE_WORKERS" \
        --mapping "$SERVE_MAPPING" --trace "$trace" --check --sessions 1 --summary-json "$OUT/serve.json" \
        </dev/null >"$OUT/serve.log" 2>&1 &
    BE_PID=$!
    wait_sock "$sock" 30 || { guest_log "serve did not listen on $sock (see $OUT/serve.log)"; exit 2; }
    ln -sfn "$(basename "$sock")" "$BE_SOCK"
}
if [ "$BACKEND" = serve ]; then start_serve; else start_testpmd; fi

TARGET=$BE_SOCK
if [ "$RECORDER" = plain ] || [ "$RECORDER" = interpose ]; then
    RECOPT=(--progress 0 --accept-timeout 120)
    [ $RESTART = 1 ] && RECOPT+=(--reconnect)
    [ "$RECORDER" = interpose ] && RECOPT+=(--interpose)
    # The observer goes first when the cores are contended (nice -5 needs root; otherwise nice
    # says so in recorder.log and runs it unchanged).
    timeout -s KILL "$LIMIT" nice -n -5 "$BIN" record --listen "$REC_SOCK" --connect "$BE_SOCK" -o "$OUT/trace.trace" \
        "${RECOPT[@]}" "${REC_EXTRA[@]}" </dev/null >"$OUT/recorder.log" 2>&1 &
    REC_PID=$!
    wait_sock "$REC_SOCK" 30 || { guest_log "the recorder did not listen (see $OUT/recorder.log)"; exit 2; }
    TARGET=$REC_SOCK
fi

CHR="socket,id=c0,path=$TARGET"
[ $RESTART = 1 ] && CHR+=",reconnect=1"
APPEND="console=ttyS0 quiet panic=-1 cg_pairs=$PAIRS cg_secs=$SECS cg_delay=$DELAY cg_action=$ACTION"
# TCG (no usable KVM here); memfd memory shared with the back-end; INTx (vectors=0): QEMU 7.2
# crashes at DRIVER_OK with MSI-X under TCG.
timeout -s KILL "$LIMIT" "$QEMU" -nodefaults -no-user-config -nographic -no-reboot \
    -accel tcg,thread=multi -cpu max -smp 2 -m "${MEM}M" \
    -object "memory-backend-memfd,id=mem,size=${MEM}M,share=on" -numa node,memdev=mem \
    -kernel "$VMLINUZ" -initrd "$INITRD" -append "$APPEND" \
    -chardev "$CHR" -netdev "vhost-user,id=n0,chardev=c0,queues=$PAIRS" \
    -device "virtio-net-pci,netdev=n0,mq=on,vectors=0,romfile=,rx_queue_size=1024,tx_queue_size=1024,mac=52:54:00:c0:ff:ee$DEVOPT" \
    -serial "file:$OUT/serial.log" -monitor none </dev/null >"$OUT/qemu.log" 2>&1 &
QEMU_PID=$!

if [ $RESTART = 1 ]; then
    # Stop the back-end RESTART_AFTER seconds into the guest's traffic, then start a new one.
    for _ in $(seq 1 $((LIMIT * 10))); do
        grep -q "cg: traffic started" "$OUT/serial.log" 2>/dev/null && break
        kill -0 "$QEMU_PID" 2>/dev/null || break
        sleep 0.1
    done
    sleep "$RESTART_AFTER"
    OLD_PID=$BE_PID
    if [ "$RESTART_MODE" = warm ]; then
        start_testpmd
        guest_log "new testpmd listening; stopping the old one mid-traffic"
        stop_pid "$OLD_PID" 10; OLD_PID=""
    else
        guest_log "stopping testpmd mid-traffic"
        stop_pid "$OLD_PID" 10; OLD_PID="" BE_PID=""
        start_testpmd
    fi
    guest_log "testpmd listening again"
fi

wait "$QEMU_PID"; QEMU_STATUS=$?; QEMU_PID=""
# The recorder ends by itself when QEMU's connection closes; testpmd prints its statistics on SIGINT.
REC_STATUS=""
if [ -n "$REC_PID" ]; then
    # With --reconnect it would wait for another session: only a moment then.
    for _ in $(seq 1 $((RESTART ? 10 : 100))); do kill -0 "$REC_PID" 2>/dev/null || break; sleep 0.1; done
    stop_pid "$REC_PID" 10; REC_STATUS=$STOPPED_STATUS; REC_PID=""
fi
stop_pid "$BE_PID" 15; BE_STATUS=$STOPPED_STATUS; BE_PID=""
WALL=$(awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

cat >"$OUT/run.env" <<ENV
pairs=$PAIRS
secs=$SECS
delay=$DELAY
variants=${VARIANTS[*]:-}
memMB=$MEM
recorder=$RECORDER
backend=$BACKEND
testpmdRuns=$BE_RUNS
serveMapping=$([ "$BACKEND" = serve ] && echo "$SERVE_MAPPING")
serveWorkers=$([ "$BACKEND" = serve ] && echo "$SERVE_WORKERS")
serveStatus=$([ "$BACKEND" = serve ] && echo "$BE_STATUS")
restartMode=$([ $RESTART = 1 ] && echo "$RESTART_MODE")
kernel=$(basename "$VMLINUZ" | sed 's/^vmlinuz-//')
qemuVersion=$("$QEMU" --version | head -1 | awk '{ print $4 }')
qemuStatus=$QEMU_STATUS
recorderStatus=$REC_STATUS
wallSeconds=$WALL
ENV
CONFORMANCE="$BIN" "$here/summary.sh" "$OUT" || guest_log "summary.sh failed"
STATUS=0
grep -q "^cg: done" "$OUT/serial.log" || { guest_log "the guest did not finish (see $OUT/serial.log)"; STATUS=2; }
[ "$QEMU_STATUS" = 0 ] || { guest_log "QEMU exited with $QEMU_STATUS (see $OUT/qemu.log)"; STATUS=2; }
[ $KILLED = 0 ] || { guest_log "a process did not stop on SIGINT and was killed"; STATUS=2; }
guest_log "pairs=$PAIRS variants=${VARIANTS[*]:-none} recorder=$RECORDER: ${WALL}s, status $STATUS, results in $OUT"
exit $STATUS
