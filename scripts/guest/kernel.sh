#!/usr/bin/env bash
# Fetches the Debian guest kernel once and prints the folder it was unpacked into
# (it holds boot/vmlinuz-<version> and lib/modules/<version>/).
#
#   scripts/guest/kernel.sh            # prints e.g. /var/cache/conformance-guest/linux-image-6.1.0-57-amd64
#
# The package is the one the meta-package linux-image-amd64 depends on today (apt-cache depends);
# GUEST_KERNEL_PACKAGE names another one. Nothing is fetched when that package is already unpacked
# in the cache, and when apt knows no linux-image-amd64 (no Debian lists), the newest kernel
# already in the cache is used. Exit status 2 when there is no kernel and none can be fetched.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"

unpacked() {   # the folder of an unpacked package, if complete
    local d="$GUEST_CACHE/$1"
    compgen -G "$d/boot/vmlinuz-*" >/dev/null && compgen -G "$d/lib/modules/*/kernel" >/dev/null && echo "$d"
}

pkg=${GUEST_KERNEL_PACKAGE:-}
if [ -z "$pkg" ]; then
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }' || true)
fi
if [ -z "$pkg" ]; then
    # No apt metadata: fall back to what an earlier run left.
    for d in $(ls -d "$GUEST_CACHE"/linux-image-* 2>/dev/null | sort -rV); do
        [ -d "$d" ] && unpacked "$(basename "$d")" && exit 0
    done
    guest_die "apt-cache knows no linux-image-amd64 and $GUEST_CACHE holds no kernel (run apt-get update, or set GUEST_KERNEL_PACKAGE)"
fi

if unpacked "$pkg"; then exit 0; fi

work=$(mktemp -d "$GUEST_CACHE/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
guest_log "fetching $pkg into $GUEST_CACHE (about 70 MB, once)"
# apt-get download writes into the current folder; as root it warns that the _apt user cannot
# write there, which is harmless, so its output is kept only for a failure message.
if ! (cd "$work" && apt-get download "$pkg") >"$work/apt.log" 2>&1; then
    cat "$work/apt.log" >&2
    guest_die "apt-get download $pkg failed"
fi
deb=$(ls "$work"/*.deb)
mkdir -p "$work/root"
dpkg -x "$deb" "$work/root"
compgen -G "$work/root/boot/vmlinuz-*" >/dev/null || guest_die "$deb holds no boot/vmlinuz-*"
# The extracted tree replaces the .deb; a rename makes a half-written cache impossible.
rm -rf "${GUEST_CACHE:?}/$pkg"
mv "$work/root" "$GUEST_CACHE/$pkg"
unpacked "$pkg"
