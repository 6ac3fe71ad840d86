#!/usr/bin/env python3
"""Publish throughput on each store backend, side by side in one run (issue 14): a p8 on SQLite, then two p8
nodes on one PostgreSQL database; publishers POST batches of --batch items to node A for --seconds; one SSE
subscriber on node A and (PostgreSQL) one on node B count what is delivered. Prints items/s acknowledged and
delivered per backend.

Usage: backends-bench.py --p8 PATH --postgresql-url postgresql://user@127.0.0.1:PORT/DB [--seconds 10]
                         [--batch 100] [--publishers 4]
"""

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Chaos"))
import resume_chaos as chaos  # noqa: E402

CHANNEL = chaos.CHANNEL


def publisher(port, batch, stop, counts, index):
    sequence = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while not stop.is_set():
        items = []
        for _ in range(batch):
            sequence += 1
            items.append({"channel": CHANNEL, "id": f"p{index}-{sequence}",
                          "formats": {"http-stream": {"content": f"data: {sequence}\n\n"}}})
        conn.request("POST", "/publish/", json.dumps({"items": items}), {"Content-Type": "application/json"})
        if conn.getresponse().read() is not None:
            counts[index] += batch


def subscriber(port, received, ready, stop):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/sse", headers={"Accept": "text/event-stream"})
    response = conn.getresponse()
    ready.set()
    while not stop.is_set():
        line = response.fp.readline()
        if not line:
            return
        if line.startswith(b"data:"):
            received[0] += 1


def run(label, nodes, args):
    for node in nodes:
        node.start()
    received = [[0] for _ in nodes]
    stop_subscribers = threading.Event()
    for node, counter in zip(nodes, received):
        ready = threading.Event()
        threading.Thread(target=subscriber, args=(node.http_port, counter, ready, stop_subscribers), daemon=True).start()
        ready.wait(10)
    time.sleep(0.5)
    stop = threading.Event()
    counts = [0] * args.publishers
    threads = [threading.Thread(target=publisher, args=(nodes[0].publish_port, args.batch, stop, counts, i))
               for i in range(args.publishers)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(args.seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    acked = sum(counts)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(r[0] < acked for r in received):
        time.sleep(0.1)
    drained = time.monotonic() - started
    stop_subscribers.set()
    for node in nodes:
        node.stop()
    delivered = ", ".join(f"node {chr(65 + i)} {r[0] / drained:,.0f}/s ({r[0]} items)" for i, r in enumerate(received))
    print(f"{label}: acknowledged {acked / elapsed:,.0f} items/s ({acked} items in {elapsed:.1f} s, batches of "
          f"{args.batch}, {args.publishers} publishers); delivered {delivered}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--p8", required=True)
    parser.add_argument("--postgresql-url", required=True)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--publishers", type=int, default=4)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="p8-backends-bench-")
    backend_port = chaos.free_port()
    server = chaos.QuietServer(("127.0.0.1", backend_port), chaos.Backend)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def node(name, url=None):
        directory = os.path.join(root, name)
        os.makedirs(directory)
        p8 = chaos.P8(args.p8, directory, chaos.free_port(), chaos.free_port(), backend_port)
        with open(os.path.join(directory, "p8.conf"), "a") as f:
            f.write("max_items=1000000\n")
            if url:
                f.write(f"backend=postgresql\npostgresql_url={url}\n")
        return p8

    run("sqlite", [node("sqlite")], args)
    run("postgresql", [node("pg-a", args.postgresql_url), node("pg-b", args.postgresql_url)], args)
    server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
