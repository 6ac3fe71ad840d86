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
  # The two deselected publish cases hold a client stream: they join when GRIP holds land.
  (cd "$conformance" && P8_TARGET=custom P8_CMD="$p8" P8_READY=proxy \
    python3 -m pytest -q -p no:cacheprovider test_proxy_passthrough.py test_publish_api.py \
    --deselect test_publish_api.py::test_unknown_format_next_to_a_known_one_is_ignored \
    --deselect test_publish_api.py::test_invalid_batch_publishes_nothing)
else
  echo "== conformance skipped: $conformance not found"
fi
