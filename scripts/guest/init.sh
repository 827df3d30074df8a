#!/bin/busybox sh
# /init of the test guest (busybox ash, PID 1). Loads virtio_net, sets the queue pairs, sends
# pktgen traffic on every TX queue to the guest's own MAC (the back-end's io forwarding returns it
# on the same pair), prints the driver's per-queue counters in a marked block, and powers off.
#
# Parameters from the kernel command line (underscore names, so the kernel passes them on):
#   cg_pairs=N        queue pairs to use (ethtool -L eth0 combined N)             default 1
#   cg_secs=S         seconds of traffic (per phase for cg_action=restart)       default 4
#   cg_delay=NS[,NS]  pktgen delay between packets, ns, one value or one per queue  default 200000
#   cg_size=B         packet size                                                default 60
#   cg_action=A       none | channels (combined 1 and back to N mid-run)
#                     | restart (traffic until the carrier drops, then again once it is back)
#   cg_wait=S         bound on every wait for the device or the carrier          default 90
# Output lines start with "cg: "; blocks are framed by "cg: begin NAME" / "cg: end NAME".

/bin/busybox mkdir -p /proc /sys /dev /bin /sbin /usr/bin /usr/sbin /tmp
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1

say() { echo "cg: $*"; }
finish() {
    say "$1"
    sync
    poweroff -f
    sleep 60
}
trap 'finish "init interrupted"' INT TERM

pairs=1 secs=4 delay=200000 size=60 action=none wait=90
for w in $(cat /proc/cmdline); do
    case "$w" in
        cg_pairs=*) pairs=${w#*=} ;;
        cg_secs=*) secs=${w#*=} ;;
        cg_delay=*) delay=${w#*=} ;;
        cg_size=*) size=${w#*=} ;;
        cg_action=*) action=${w#*=} ;;
        cg_wait=*) wait=${w#*=} ;;
    esac
done
say "params pairs=$pairs secs=$secs delay=$delay size=$size action=$action"

uptime_s() { cut -d. -f1 /proc/uptime; }

# virtio is modular in the Debian kernel; dependencies first.
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net pktgen; do
    insmod /lib/modules/$m.ko || finish "FAILED insmod $m"
done

# Router solicitations and the like would be extra traffic on some TX queue: only pktgen's counts.
for f in /proc/sys/net/ipv6/conf/all/disable_ipv6 /proc/sys/net/ipv6/conf/default/disable_ipv6; do
    [ -e "$f" ] && echo 1 >"$f"
done

t0=$(uptime_s)
until [ -e /sys/class/net/eth0 ]; do
    [ $(($(uptime_s) - t0)) -ge "$wait" ] && finish "FAILED no eth0 after ${wait}s"
    usleep 100000
done
ip link set lo up
ip link set eth0 up || finish "FAILED ip link set eth0 up"
mac=$(cat /sys/class/net/eth0/address)
say "eth0 mac=$mac features=$(cat /sys/class/net/eth0/device/features 2>/dev/null)"
ethtool -L eth0 combined "$pairs" || finish "FAILED ethtool -L eth0 combined $pairs"
say "channels $(ethtool -l eth0 | awk '/^Current/ { c = 1 } c && /^Combined/ { print $2 }')"

carrier() { [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" = 1 ]; }
wait_carrier() {   # $1 = 1 to wait for it up, 0 for down
    local t=$(uptime_s)
    while true; do
        if [ "$1" = 1 ]; then carrier && return 0; else carrier || return 0; fi
        [ $(($(uptime_s) - t)) -ge "$wait" ] && return 1
        usleep 100000
    done
}

# One pktgen device per TX queue, spread over the pktgen threads (one per CPU).
pg() { echo "$2" >"/proc/net/pktgen/$1" || say "pktgen $1 refused: $2"; }
threads=$(ls /proc/net/pktgen | grep -c '^kpktgend_')
[ "$threads" -gt 0 ] || finish "FAILED no pktgen threads"
t=0
while [ $t -lt "$threads" ]; do pg kpktgend_$t rem_device_all; t=$((t + 1)); done
q=0
while [ $q -lt "$pairs" ]; do
    d=$(echo "$delay" | awk -F, -v q=$q '{ print (q < NF) ? $(q + 1) : $NF }')
    pg kpktgend_$((q % threads)) "add_device eth0@$q"
    pg eth0@$q "count 0"
    pg eth0@$q "clone_skb 0"
    pg eth0@$q "pkt_size $size"
    pg eth0@$q "delay $d"
    pg eth0@$q "queue_map_min $q"
    pg eth0@$q "queue_map_max $q"
    pg eth0@$q "dst_mac $mac"
    pg eth0@$q "dst 10.0.0.$((q + 1))"
    q=$((q + 1))
done

PG=""
start_traffic() {
    wait_carrier 1 || finish "FAILED no carrier after ${wait}s"
    echo start >/proc/net/pktgen/pgctrl &   # returns when every device has stopped
    PG=$!
    say "traffic started"
}
stop_traffic() {
    echo stop >/proc/net/pktgen/pgctrl
    wait $PG 2>/dev/null
    say "traffic stopped"
}

start_traffic
case "$action" in
    channels)
        third=$(( (secs + 2) / 3 ))
        sleep $third
        ethtool -L eth0 combined 1 && say "channels 1"
        sleep $third
        ethtool -L eth0 combined "$pairs" && say "channels $pairs"
        sleep $third
        ;;
    restart)
        # The host stops the back-end mid-traffic; pktgen stops its devices when the carrier goes.
        if wait_carrier 0; then
            say "carrier lost"
            t=$(uptime_s)
            while kill -0 $PG 2>/dev/null && [ $(($(uptime_s) - t)) -lt 5 ]; do usleep 100000; done
            stop_traffic
            start_traffic
            say "carrier back"
        else
            say "carrier never dropped"
        fi
        sleep "$secs"
        ;;
    *)
        sleep "$secs"
        ;;
esac
stop_traffic
# The last completions are reclaimed (and counted) by the TX/RX interrupts; give them time.
sleep 1

say "begin pktgen"
q=0
while [ $q -lt "$pairs" ]; do
    echo "eth0@$q $(grep -E 'Result|pkts-sofar' /proc/net/pktgen/eth0@$q | tr -s ' \n' ' ')"
    q=$((q + 1))
done
say "end pktgen"
say "begin ethtool-S"
ethtool -S eth0
say "end ethtool-S"
say "begin dmesg"
dmesg | grep -iE 'virtio|pktgen|eth0|watchdog|error|warn' | tail -40
say "end dmesg"
finish "done"
