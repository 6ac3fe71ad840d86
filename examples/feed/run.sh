#!/usr/bin/env bash
# Starts the example with one command: builds p8, installs gripcontrol (from PyPI) into a virtualenv, then
# runs P-8, the backend and the publisher until Ctrl-C. Open http://127.0.0.1:7999/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
"$repo/scripts/install-deps.sh"
(cd "$repo" && swift build --product p8)
if [[ ! -x "$here/.venv/bin/python" ]]; then
  python3 -m venv "$here/.venv"
fi
"$here/.venv/bin/python" -c 'import gripcontrol' 2>/dev/null || "$here/.venv/bin/pip" install -q gripcontrol
python="$here/.venv/bin/python"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
"$python" "$here/backend.py" & pids+=($!)
"$repo/.build/debug/p8" --config "$here/p-8.conf" & pids+=($!)
echo "p8 pid $!  (try: kill -9 $!, then start it again with: $repo/.build/debug/p8 --config $here/p-8.conf)"
"$python" "$here/publisher.py" & pids+=($!)
echo "open http://127.0.0.1:7999/ (status page: http://127.0.0.1:5561/status)"
wait
