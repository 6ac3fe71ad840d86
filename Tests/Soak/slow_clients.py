#!/usr/bin/env python3
"""Slow clients soak: fast HTTP-stream clients measure how long published items take to reach them, first
alone, then while many other stream clients on a busy channel stop reading (their receive buffers full, as a
client that vanished without a FIN looks until TCP gives up) and large items keep being published to them.

Pass condition (issue 16): the fast clients get every item, in order, in both phases; once more was
published to the clients that stopped reading than p8 queues for one client (2 MB), they are disconnected.
Reported (and asserted with --assert-latency, --max-rss-per-slow): the fast clients' p99 latency in both
phases and p8's resident memory per slow client. Standard library only. Mind the memory: p8 may queue up to
2 MB per slow client.

Usage: slow_clients.py --p8 PATH [--slow 500] [--transport stream|ws] [--fast 20] [--seconds 20]
       [--bulk-bytes 100000]
"""

import argparse
import base64
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Chaos"))
from live_fuzz import Backend, QuietServer, free_port

HOST = "127.0.0.1"
QUEUE_LIMIT = 2 * 1024 * 1024


class FastClient(threading.Thread):
    """A stream on channel `fast` that reads everything: the publish time in each item gives its latency."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.sock = socket.create_connection((HOST, port), timeout=15)
        self.sock.sendall(b"GET /stream?ch=fast HTTP/1.1\r\nHost: slow\r\n\r\n")
        self.latencies, self.numbers, self.stop = [], [], False

    def run(self):
        buffer = b""
        try:
            while not self.stop:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.startswith(b"item "):
                        _, number, sent = line.split()
                        self.numbers.append(int(number))
                        self.latencies.append(time.time() - float(sent))
        except OSError:
            pass


def publish(port, items):
    body = json.dumps({"items": items}).encode()
    with socket.create_connection((HOST, port), timeout=15) as s:
        s.sendall(b"POST /publish/ HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        answer = s.recv(100)
    return answer.startswith(b"HTTP/1.1 200")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def phase(args, p8, slow_count, counter):
    """Runs one phase; returns (fast clients, max RSS KiB, slow clients still connected at the end)."""
    slow = []
    for _ in range(slow_count):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((HOST, args.http_port))
        if args.transport == "ws":
            key = base64.b64encode(os.urandom(16))
            s.sendall(b"GET /ws?ch=bulk HTTP/1.1\r\nHost: slow\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key)
        else:
            s.sendall(b"GET /stream?ch=bulk HTTP/1.1\r\nHost: slow\r\n\r\n")
        slow.append(s)
    fast = [FastClient(args.http_port) for _ in range(args.fast)]
    for client in fast:
        client.start()
    time.sleep(2)  # every hold subscribed
    max_rss = rss_kib(p8.pid)
    stop_at = time.monotonic() + args.seconds
    bulk = "b" * args.bulk_bytes
    while time.monotonic() < stop_at:
        counter[0] += 1
        items = [{"channel": "fast", "formats": {"http-stream": {"content": f"item {counter[0]} {time.time()}\n"}}}]
        if slow_count:
            items.append({"channel": "bulk", "formats": {"http-stream": {"content": bulk},
                                                         "ws-message": {"content": bulk}}})
        if not publish(args.publish_port, items):
            raise AssertionError("a publish failed")
        max_rss = max(max_rss, rss_kib(p8.pid))
        time.sleep(0.05)
    time.sleep(2)
    for client in fast:
        client.stop = True
    connected = sum(still_connected(s) for s in slow)
    return fast, max_rss, connected


def still_connected(sock):
    """Whether p8 kept the connection: reading what is buffered ends in "no more yet", not an end or a reset."""
    sock.setblocking(False)
    try:
        while sock.recv(1 << 20):
            pass
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.close()


def p99(values):
    values = sorted(values)
    return values[int(len(values) * 0.99)] if values else float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--p8", required=True)
    parser.add_argument("--slow", type=int, default=500)
    parser.add_argument("--transport", choices=["stream", "ws"], default="stream", help="of the slow clients")
    parser.add_argument("--bulk-bytes", type=int, default=100_000, help="size of each item to the slow clients")
    parser.add_argument("--max-rss-per-slow", type=float, default=None, help="fail above this many KiB")
    parser.add_argument("--fast", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--assert-latency", action="store_true")
    parser.add_argument("--latency-ratio", type=float, default=1.5)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 2 * args.slow + 1024)), hard))

    directory = tempfile.mkdtemp(prefix="p8-slow-")
    backend = QuietServer((HOST, free_port()), Backend)
    backend.request_queue_size = 1024
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    args.http_port, args.publish_port = free_port(), free_port()
    with open(os.path.join(directory, "routes"), "w") as f:
        f.write(f"*,proto=ws {HOST}:{backend.server_port},over_http\n* {HOST}:{backend.server_port}\n")
    with open(os.path.join(directory, "p8.conf"), "w") as f:
        f.write(f"""[global]
rundir={directory}/run
[runner]
http_port={HOST}:{args.http_port}
[proxy]
routesfile=routes
[handler]
push_in_http_addr={HOST}
push_in_http_port={args.publish_port}
push_in_spec=
push_in_sub_specs=
command_spec=
stats_spec=
[store]
database_file={directory}/p8.sqlite
""")
    log = open(os.path.join(directory, "p8.log"), "wb")
    p8 = subprocess.Popen([args.p8, "--config", os.path.join(directory, "p8.conf")], stdout=subprocess.PIPE, stderr=log)
    if not p8.stdout.readline().startswith(b"p8 ready"):
        print(f"FAILED: p8 did not start (log in {directory})")
        return 1
    problems = []
    counter = [0]
    try:
        results = {}
        for name, slow_count in [("alone", 0), ("with slow clients", args.slow)]:
            first = counter[0] + 1
            fast, max_rss, connected = phase(args, p8, slow_count, counter)
            expected = list(range(first, counter[0] + 1))
            for client in fast:
                if client.numbers != expected:
                    problems.append(f"{name}: a fast client got {len(client.numbers)} of {len(expected)} items "
                                    f"(or out of order)")
                    break
            latencies = [value for client in fast for value in client.latencies]
            results[name] = (p99(latencies), max_rss, connected, len(expected))
            print(f"slow clients, {name}: {len(expected)} items to {args.fast} fast clients, p99 latency "
                  f"{p99(latencies) * 1000:.1f} ms, max RSS {max_rss} KiB"
                  + (f", {slow_count} slow clients, {connected} still connected at the end" if slow_count else ""))
    finally:
        p8.terminate()
        p8.wait(timeout=15)
        backend.shutdown()
    (alone, rss_alone, _, _), (busy, rss_busy, connected, items) = results["alone"], results["with slow clients"]
    per_client = (rss_busy - rss_alone) / max(1, args.slow)
    print(f"  p99 ratio {busy / alone:.2f}; RSS growth with slow clients {rss_busy - rss_alone} KiB "
          f"({per_client:.1f} KiB per slow client)")
    if items * args.bulk_bytes > QUEUE_LIMIT + 1024 * 1024 and connected > args.slow // 10:
        problems.append(f"{connected} of {args.slow} clients that stopped reading were still connected after "
                        f"{items * args.bulk_bytes} bytes were published to them")
    if args.max_rss_per_slow is not None and per_client > args.max_rss_per_slow:
        problems.append(f"{per_client:.0f} KiB of p8's memory per slow client")
    if args.assert_latency and busy > alone * args.latency_ratio:
        problems.append(f"p99 latency {busy * 1000:.1f} ms with slow clients, {alone * 1000:.1f} ms without")
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems) + f"\n  (p8 log in {directory})")
        return 1
    print("passed: fast clients got every item in order; clients that stopped reading were disconnected "
          "past the limit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
