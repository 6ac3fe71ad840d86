#!/usr/bin/env bash
# Builds P-8 (release) and runs it in the foreground: with ./p-8.conf if present, else with
# config/p-8.conf.example (client port 7999, routes `* localhost:80`, database run/p8.sqlite).
# Extra arguments go to p8, e.g. `scripts/run.sh --port 8000 --route '* 127.0.0.1:3000'`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product p8
exec .build/release/p8 "$@"
