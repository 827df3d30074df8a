#!/usr/bin/env bash
# The test command: installs what is missing (scripts/setup.sh), builds, then runs every suite.
# The suites that start DPDK testpmd or QEMU run last and one at a time (--no-parallel), so live
# peers never share the two cores with anything else; the others run in parallel before them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build --build-tests
LIVE=$(cat scripts/live-suites)   # the suites that start DPDK or QEMU (one place; .ci/run reads it too)
status=0
swift test --skip-build --skip "$LIVE" || status=1
# CONFORMANCE_LIVE_LOCK=FILE: hold that lock over the live suites (several checkouts on one machine).
${CONFORMANCE_LIVE_LOCK:+flock "$CONFORMANCE_LIVE_LOCK"} swift test --skip-build --no-parallel --filter "$LIVE" || status=1
exit $status
