#!/usr/bin/env bash
# Installs what conformance needs on a Debian machine that already has Swift:
#   libz3-dev  - the Z3 solver's C API, linked by the Proofs target (required to build)
#   dpdk-dev   - dpdk-testpmd, the real vhost-user peers the recorder tests talk to
# Idempotent: installs only what is missing. Needs root (or sudo) for apt-get.
set -euo pipefail

missing=()
dpkg -s libz3-dev >/dev/null 2>&1 || missing+=(libz3-dev)
command -v dpdk-testpmd >/dev/null 2>&1 || missing+=(dpdk-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null 2>&1 || { echo "setup: swift is not on PATH (this project needs Swift 6)" >&2; exit 2; }
