#!/usr/bin/env bash
# Runs every check CI runs: formatting, the Swift test suites (unit and integration, against real
# servers on ephemeral ports), and the end-to-end conformance cases that P-8 already covers, run against
# the built p8 with the black-box suite in ../shared/conformance when it is present.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

echo "== format"
swift format lint --strict --recursive --parallel Sources Tests Package.swift

echo "== swift test"
swift build --build-tests
swift test --skip-build

conformance=../shared/conformance
if [[ -d $conformance ]]; then
  echo "== conformance (end to end)"
  python3 -c 'import pytest, aiohttp, jwt, gripcontrol, websocket, sseclient, zmq' 2>/dev/null \
    || python3 -m pip install -q pytest aiohttp gripcontrol pubcontrol PyJWT pyzmq websocket-client sseclient-py
  p8=$PWD/.build/debug/p8
  # p8 binds Pushpin's fixed ZeroMQ ports by default; put its sockets in the run's own directory instead,
  # so that test runs side by side on one machine never collide.
  zmq_conf=$(mktemp)
  trap 'rm -f "$zmq_conf"' EXIT
  printf '[handler]\npush_in_spec=ipc://{rundir}/push-in\npush_in_sub_specs=ipc://{rundir}/sub\ncommand_spec=ipc://{rundir}/command\n' \
    > "$zmq_conf"
  (cd "$conformance" && P8_TARGET=custom P8_CMD="$p8" P8_READY=proxy P8_EXTRA_CONFIG="$zmq_conf" \
    python3 -m pytest -q -p no:cacheprovider test_proxy_passthrough.py)
else
  echo "== conformance skipped: $conformance not found"
fi
