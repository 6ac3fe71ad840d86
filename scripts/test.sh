#!/usr/bin/env bash
# Runs every check CI runs: formatting, the Swift test suites (unit and integration, against real
# servers on ephemeral ports), the end-to-end conformance cases that P-8 already covers, run against the
# built p8 with the black-box suite in ../shared/conformance when it is present, and the resume chaos test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

# A private PostgreSQL cluster for the run (the shared Store suite and the multi-node tests), on loopback, stopped
# and removed at the end.
pg_root=$(mktemp -d)
cleanup() {
  scripts/postgresql-cluster.sh stop "$pg_root/cluster" 2>/dev/null || true
  rm -rf "$pg_root"
}
trap cleanup EXIT
pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
P8_TEST_POSTGRESQL_URL=$(scripts/postgresql-cluster.sh start "$pg_root/cluster" "$pg_port")
export P8_TEST_POSTGRESQL_URL

echo "== format"
swift format lint --strict --recursive --parallel Sources Tests Package.swift

echo "== swift test"
swift build --build-tests
swift test --skip-build

python3 -c 'import pytest, aiohttp, jwt, gripcontrol, websocket, sseclient, zmq' 2>/dev/null \
  || python3 -m pip install -q pytest aiohttp gripcontrol pubcontrol PyJWT pyzmq websocket-client sseclient-py
p8=$PWD/.build/debug/p8

echo "== end to end (Tests/EndToEnd: resume order with real clients, publishers and kill -9)"
(cd Tests/EndToEnd && P8_BIN="$p8" python3 -m pytest -q -p no:cacheprovider .)

conformance=../shared/conformance
if [[ -d $conformance ]]; then
  echo "== conformance (end to end)"
  # p8 binds Pushpin's fixed ZeroMQ ports by default: the PULL socket goes on the suite's own port (it
  # publishes there), the SUB and command sockets into a directory of this run's own, so that test runs
  # side by side on one machine never collide.
  zmq_dir=$(mktemp -d)
  trap 'rm -rf "$zmq_dir"; cleanup' EXIT
  printf '[handler]\npush_in_sub_specs=ipc://%s/sub\ncommand_spec=ipc://%s/command\n' \
    "$zmq_dir" "$zmq_dir" > "$zmq_dir/zmq.conf"
  (cd "$conformance" && P8_TARGET=custom P8_CMD="$p8" P8_EXTRA_CONFIG="$zmq_dir/zmq.conf" \
    P8_ZMQ_PUSH=tcp://127.0.0.1:28010 \
    python3 -m pytest -q -p no:cacheprovider test_proxy_passthrough.py test_publish_api.py \
    test_longpoll.py test_stream.py test_reliability.py test_zmq_publish.py test_websocket_over_http.py)
else
  echo "== conformance skipped: $conformance not found"
fi

echo "== resume under chaos (kill -9 and restarts)"
python3 Tests/Chaos/resume_chaos.py --p8 "$p8" --seconds 20
echo "== resume under chaos, with 4 concurrent publishers committing out of prev-id order"
python3 Tests/Chaos/resume_chaos.py --p8 "$p8" --seconds 20 --publishers 4 --batch 5
echo "== several nodes under chaos: 3 nodes on one PostgreSQL, kill -9 of a random node, clients on random nodes"
psql "$P8_TEST_POSTGRESQL_URL" -qc 'CREATE DATABASE p8_multinode_chaos'
python3 Tests/Chaos/multinode_chaos.py --p8 "$p8" --seconds 20 \
  --postgresql-url "${P8_TEST_POSTGRESQL_URL%/postgres}/p8_multinode_chaos"
