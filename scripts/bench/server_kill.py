#!/usr/bin/env python3
"""kill -9 of the server under load (issue 13): wrk at --connections against p8 (the runner) in front of a small
backend; after --kill-after seconds the server process is killed with SIGKILL. Reports the time until a new
connection is served again, wrk's socket errors (connect must be 0: none refused) and its failed requests.

Usage: server_kill.py --p8 PATH [--connections 64] [--seconds 10] [--kill-after 4]
"""

import argparse
import http.client
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "Support"))
from p8harness import free_port, launch, start_server  # noqa: E402


class Backend(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--p8", required=True)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--kill-after", type=float, default=4)
    args = parser.parse_args()

    # Its connections from the killed server are reset: expected, not worth a traceback (a QuietServer).
    backend = start_server(Backend)
    directory = tempfile.mkdtemp(prefix="p8-kill-")
    port = free_port()
    with open(os.path.join(directory, "p8.conf"), "w") as f:
        f.write(f"[global]\nrundir={directory}/run\n[runner]\nhttp_port=127.0.0.1:{port}\n[handler]\n"
                "push_in_http_port=0\npush_in_spec=\npush_in_sub_specs=\ncommand_spec=\nstats_spec=\n")
    route = f"* 127.0.0.1:{backend.server_address[1]}"
    p8 = launch([args.p8, "--config", f"{directory}/p8.conf", "--route", route], os.path.join(directory, "p8.log"))
    wrk = subprocess.Popen(
        ["wrk", "-t2", f"-c{args.connections}", f"-d{args.seconds}s", f"http://127.0.0.1:{port}/"],
        stdout=subprocess.PIPE, text=True)
    time.sleep(args.kill_after)
    with open(f"{directory}/run/p8-runner.json") as f:
        server = json.load(f)["serverPid"]
    os.kill(server, signal.SIGKILL)
    killed = time.monotonic()
    # A fresh connection every 2 ms until one is answered: the time until the new server serves.
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/probe")
            if conn.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.002)
    served_again = time.monotonic() - killed
    out, _ = wrk.communicate()
    p8.send_signal(signal.SIGTERM)
    status = p8.wait(timeout=20)
    requests = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    print(out)
    print(f"server killed at {args.kill_after}s: served again after {served_again * 1000:.0f} ms; "
          f"requests {requests.group(1) if requests else '?'}; socket errors "
          f"connect {errors.group(1) if errors else 0}, read {errors.group(2) if errors else 0}, "
          f"write {errors.group(3) if errors else 0}, timeout {errors.group(4) if errors else 0}; "
          f"non-2xx {non2xx.group(1) if non2xx else 0}; runner exit {status}")


if __name__ == "__main__":
    main()
