#!/usr/bin/env bash
# Builds the guest's initramfs (a few MB) and prints its path; reuses it when nothing changed.
#
#   scripts/guest/initramfs.sh KERNEL_DIR     # KERNEL_DIR as printed by kernel.sh
#
# Contents: busybox-static (its applets are linked by /init), the virtio, virtio_net and pktgen
# modules of that kernel, ethtool with the shared libraries ldd lists, and scripts/guest/init.sh
# as /init. The file is named after a hash of all of these, in the guest cache.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
kdir=${1:?kernel folder (from kernel.sh)}
MODULES="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net pktgen"

busybox=$(command -v busybox || true)
[ -n "$busybox" ] || guest_die "busybox not found (install busybox-static)"
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' || ldd "$busybox" 2>&1 | grep -q 'not a dynamic' \
    || guest_die "$busybox is not static (install busybox-static)"
ethtool=$(command -v ethtool || ls /usr/sbin/ethtool /sbin/ethtool 2>/dev/null | head -1 || true)
[ -n "$ethtool" ] || guest_die "ethtool not found (install ethtool)"
command -v cpio >/dev/null || guest_die "cpio not found (install cpio)"
mdir=$(ls -d "$kdir"/lib/modules/*/ | head -1)

# Where each module is; compressed ones are unpacked on the host (busybox insmod reads plain .ko).
declare -A modpath
for m in $MODULES; do
    p=$(find "$mdir/kernel" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" | head -1)
    [ -n "$p" ] || guest_die "module $m not found under $mdir"
    modpath[$m]=$p
done
libs=$(ldd "$ethtool" | awk '/=> \// { print $3 } /^[[:space:]]*\/.*ld-linux/ { print $1 }' | sort -u)

key=$( { cat "$here/init.sh"; sha256sum "$busybox" "$ethtool" $libs; for m in $MODULES; do sha256sum "${modpath[$m]}"; done; echo "$MODULES"; } | sha256sum | cut -c1-16)
out="$GUEST_CACHE/initramfs-$(basename "$mdir")-$key.cpio.gz"
if [ -s "$out" ]; then echo "$out"; exit 0; fi

stage=$(mktemp -d "$GUEST_CACHE/.initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,lib/modules}
cp "$busybox" "$stage/bin/busybox"
cp "$ethtool" "$stage/usr/sbin/ethtool"
for l in $libs; do mkdir -p "$stage$(dirname "$l")"; cp -L "$l" "$stage$l"; done
for m in $MODULES; do
    case "${modpath[$m]}" in
        *.xz) xz -dc "${modpath[$m]}" >"$stage/lib/modules/$m.ko" ;;
        *.zst) zstd -qdc "${modpath[$m]}" >"$stage/lib/modules/$m.ko" ;;
        *) cp "${modpath[$m]}" "$stage/lib/modules/$m.ko" ;;
    esac
done
install -m 0755 "$here/init.sh" "$stage/init"
# The kernel opens /dev/console for /init before devtmpfs is mounted; only root can make the node,
# and /init reopens the console after mounting devtmpfs anyway.
[ "$(id -u)" = 0 ] && mknod -m 600 "$stage/dev/console" c 5 1
(cd "$stage" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -6 >"$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
