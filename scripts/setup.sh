#!/usr/bin/env bash
# Installs what conformance needs on a Debian machine that already has Swift:
#   libz3-dev        - the Z3 solver's C API, linked by the Proofs target (required to build)
#   dpdk-dev         - dpdk-testpmd, the real vhost-user peers the recorder tests talk to
#   qemu-system-x86, busybox-static, ethtool, cpio
#                    - the Linux-guest captures (scripts/guest/, Tests/LinuxGuestTests): QEMU runs
#                      a Debian kernel with an initramfs built from busybox, ethtool and cpio
# and fetches that guest kernel (the package linux-image-amd64 depends on, ~70 MB) into the guest
# cache (/var/cache/conformance-guest as root; scripts/guest/common.sh), so that the tests do not
# download anything. Idempotent: installs and fetches only what is missing; apt-get update runs
# only then. Needs root (or sudo) for apt-get.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
updated=0
apt_update() { [ $updated = 1 ] || { $SUDO apt-get update -qq; updated=1; }; }

missing=()
dpkg -s libz3-dev >/dev/null 2>&1 || missing+=(libz3-dev)
command -v dpdk-testpmd >/dev/null 2>&1 || missing+=(dpdk-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
command -v ethtool >/dev/null 2>&1 || [ -x /usr/sbin/ethtool ] || missing+=(ethtool)
command -v cpio >/dev/null 2>&1 || missing+=(cpio)

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  apt_update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The guest kernel: kernel.sh needs apt's package lists to name it, and reuses the cache.
if ! "$here/guest/kernel.sh" >/dev/null 2>&1; then
  apt-cache show linux-image-amd64 >/dev/null 2>&1 || apt_update
  "$here/guest/kernel.sh" >/dev/null
fi
command -v swift >/dev/null 2>&1 || { echo "setup: swift is not on PATH (this project needs Swift 6)" >&2; exit 2; }
