#!/usr/bin/env bash
# Runs every check CI runs: formatting, the Swift test suites (unit and integration, against real
# servers on ephemeral ports), the end-to-end conformance cases that P-8 already covers, run against the
# built p8 with the black-box suite in ../shared/conformance when it is present, a django-eventstream app behind
# p8, the example app and the status page in headless Chromium, a short run of every parser fuzz target
# (scripts/fuzz.sh) and of the live-server fuzzer, the disk-fault test, short churn, backend-fault and
# slow-client soaks, restarts under load (SIGUSR2 hand-overs), and the resume chaos test.
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
    P8_ZMQ_PUSH="${P8_CONFORMANCE_ZMQ_PUSH:-tcp://127.0.0.1:28010}" \
    python3 -m pytest -q -p no:cacheprovider test_proxy_passthrough.py test_publish_api.py \
    test_longpoll.py test_stream.py test_reliability.py test_zmq_publish.py test_websocket_over_http.py)
else
  echo "== conformance skipped: $conformance not found"
fi

echo "== django-eventstream behind p8 (end to end)"
python3 -c 'import importlib.metadata as m; assert m.version("django-eventstream") == "5.3.4"' 2>/dev/null \
  || python3 -m pip install -q django-eventstream==5.3.4
python3 Tests/Django/test_django_eventstream.py --p8 "$p8"

echo "== fuzz every parser (20 s each)"
scripts/fuzz.sh --seconds 20 --seed 1

echo "== live-server fuzz (mutated HTTP, chunked bodies, WebSocket frames, publishes)"
python3 Tests/Chaos/live_fuzz.py --p8 "$p8" --seed "${P8_LIVE_FUZZ_SEED:-1}" --batches 10 \
  --per-batch 30

echo "== disk faults (a full file system, immutable database files)"
python3 Tests/Chaos/disk_faults.py --p8 "$p8" --p8ctl "$PWD/.build/debug/p8ctl"

echo "== churn soak, short (200 clients for 30 s; README, Reliability, gives the long run)"
python3 Tests/Soak/churn.py --p8 "$p8" --clients 200 --seconds 30 --rate 100 --channels 50 \
  --hold-min 0.5 --hold-max 5 --sample 5

echo "== backend faults soak, short (never answers, resets mid-body, garbage, 1 byte/s, refused + failover)"
python3 Tests/Soak/backend_faults.py --p8 "$p8" --seconds 15 --workers 12

echo "== browser: the example app and the status page in headless Chromium"
scripts/install-deps.sh --browser
python3 -c 'import selenium, gripcontrol' 2>/dev/null || python3 -m pip install -q selenium gripcontrol pubcontrol
python3 Tests/Browser/test_example.py --p8 "$PWD/.build/debug/p8"

echo "== slow clients soak, short (300 clients that stop reading and 300 that vanish without a FIN, beside 10 fast ones)"
# The vanished clients need root and ip (a network namespace); without them the run says SKIPPED for them.
python3 Tests/Soak/slow_clients.py --p8 "$PWD/.build/debug/p8" --slow 300 --vanish 300 --fast 10 --seconds 8 \
  --max-rss-per-slow 300

echo "== restarts under load, short (SIGUSR2 three times with long-polls, SSE and WebSocket-over-HTTP clients held)"
python3 Tests/Soak/handover_run.py --p8 "$p8" --long-polls 200 --streams 50 --websockets 50 --channels 4 --rate 20 \
  --restarts 3 --interval 2

echo "== resume under chaos (kill -9 and restarts)"
python3 Tests/Chaos/resume_chaos.py --p8 "$p8" --seconds 20
echo "== resume under chaos, with 4 concurrent publishers committing out of prev-id order"
python3 Tests/Chaos/resume_chaos.py --p8 "$p8" --seconds 20 --publishers 4 --batch 5
echo "== several nodes under chaos: 3 nodes on one PostgreSQL, kill -9 of a random node, clients on random nodes"
psql "$P8_TEST_POSTGRESQL_URL" -qc 'CREATE DATABASE p8_multinode_chaos'
python3 Tests/Chaos/multinode_chaos.py --p8 "$p8" --seconds 20 \
  --postgresql-url "${P8_TEST_POSTGRESQL_URL%/postgres}/p8_multinode_chaos"
