#!/usr/bin/env python3
"""The store backends side by side in one run (issue 14).

Throughput: a p8 on SQLite, then two p8 nodes on one PostgreSQL database; publishers POST batches of --batch
items to node A for --seconds; one SSE subscriber on node A and (PostgreSQL) one on node B count what is
delivered. Prints items/s acknowledged and delivered per backend.

Fan-out: three p8 nodes on one PostgreSQL database, --subscribers SSE subscribers on each of nodes B and C; node A
publishes one item --rounds times; prints the p50/p99 of the time from the publish request to each subscriber's
receipt, and how long the publish took to be acknowledged.

With --notify-off, both PostgreSQL scenarios run again with the nodes' NOTIFY wake-up off
(P8_POSTGRESQL_NOTIFY=off: the other nodes see items only at their periodic comparison, every second), to show
what the wake-up buys.

Usage: backends-bench.py --p8 PATH --postgresql-url postgresql://user@127.0.0.1:PORT/DB [--seconds 10]
                         [--batch 100] [--publishers 4] [--subscribers 1000] [--rounds 20] [--notify-off]
                         [--only throughput|fanout]
"""

import asyncio

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Chaos"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Support"))
import resume_chaos as chaos  # noqa: E402
from p8harness import QuietServer, start_server  # noqa: E402

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


async def fanout_clients(ports, count, rounds, publish_port, ready_timeout=300):
    """Opens `count` SSE subscribers on each port, then publishes `rounds` items (one at a time, 0.3 s apart) to
    `publish_port` and returns (latencies in seconds of every delivery, publish acknowledgement times, missing)."""
    sent = {}
    latencies = []
    received = [0]
    connected = [0]

    async def client(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        writer.write(b"GET /sse HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
        await writer.drain()
        while True:
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b":open"):
                connected[0] += 1
            elif line.startswith(b"data: f"):
                now = time.monotonic()
                key = line[6:].strip().decode()
                if key in sent:
                    latencies.append(now - sent[key])
                    received[0] += 1

    tasks = []
    deadline = time.monotonic() + ready_timeout
    for start in range(0, count, 100):
        # In waves of 100 per node, so that neither the nodes' nor the backend's accept queues overflow.
        tasks += [asyncio.create_task(client(port)) for port in ports for _ in range(min(100, count - start))]
        while connected[0] < len(tasks) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    while connected[0] < len(tasks) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    if connected[0] < len(tasks):
        raise RuntimeError(f"only {connected[0]} of {len(tasks)} subscribers connected")
    await asyncio.sleep(1)
    acks = []
    loop = asyncio.get_running_loop()
    for index in range(rounds):
        key = f"f{index}"
        body = json.dumps({"items": [{"channel": CHANNEL, "id": key,
                                      "formats": {"http-stream": {"content": f"data: {key}\n\n"}}}]})

        def post():
            conn = http.client.HTTPConnection("127.0.0.1", publish_port, timeout=30)
            started = time.monotonic()
            sent[key] = started
            conn.request("POST", "/publish/", body, {"Content-Type": "application/json"})
            status = conn.getresponse().status
            conn.close()
            if status != 200:
                raise RuntimeError(f"publish answered {status}")
            return time.monotonic() - started

        acks.append(await loop.run_in_executor(None, post))
        await asyncio.sleep(0.3)
    expected = rounds * len(tasks)
    deadline = time.monotonic() + 30
    while received[0] < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    return latencies, acks, expected - received[0]


class BenchBackend(QuietServer):
    """The chaos backend with an accept queue for thousands of subscriptions at once."""

    request_queue_size = 4096


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def fanout(label, nodes, args):
    for node in nodes:
        node.start()
    try:
        latencies, acks, missing = asyncio.run(
            fanout_clients([nodes[1].http_port, nodes[2].http_port], args.subscribers, args.rounds,
                           nodes[0].publish_port))
    finally:
        for node in nodes:
            node.stop()
    print(f"{label}: fan-out of one publish on node A to {args.subscribers} SSE subscribers on each of nodes B and "
          f"C, {args.rounds} publishes: delivery p50 {percentile(latencies, 0.5) * 1000:.1f} ms, p99 "
          f"{percentile(latencies, 0.99) * 1000:.1f} ms, max {max(latencies or [0]) * 1000:.1f} ms "
          f"({len(latencies)} deliveries, {missing} missing); publish acknowledged p50 "
          f"{percentile(acks, 0.5) * 1000:.1f} ms")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--p8", required=True)
    parser.add_argument("--postgresql-url", required=True)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--notify-off", action="store_true")
    parser.add_argument("--only", choices=["throughput", "fanout"])
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="p8-backends-bench-")
    server = start_server(chaos.Backend, server_class=BenchBackend)
    backend_port = server.server_port

    def node(name, url=None):
        directory = os.path.join(root, name)
        os.makedirs(directory)
        store = {"max_items": 1000000, **({"backend": "postgresql", "postgresql_url": url} if url else {})}
        return chaos.p8_node(args.p8, directory, backend_port, store)

    def database(name):
        # A fresh database per scenario, so that one's items do not slow the next.
        base = args.postgresql_url.rsplit("/", 1)[0]
        subprocess.run(["psql", args.postgresql_url, "-qc", f"DROP DATABASE IF EXISTS {name}"], check=True)
        subprocess.run(["psql", args.postgresql_url, "-qc", f"CREATE DATABASE {name}"], check=True)
        return f"{base}/{name}"

    modes = [("", None)] + ([(", NOTIFY off", "off")] if args.notify_off else [])
    if args.only != "fanout":
        run("sqlite", [node("sqlite")], args)
    for suffix, notify in modes:
        if notify:
            os.environ["P8_POSTGRESQL_NOTIFY"] = notify
        tag = "off" if notify else "on"
        if args.only != "fanout":
            url = database(f"p8_bench_throughput_{tag}")
            run("postgresql" + suffix, [node(f"pg-a-{tag}", url), node(f"pg-b-{tag}", url)], args)
        if args.only != "throughput":
            url = database(f"p8_bench_fanout_{tag}")
            fanout("postgresql" + suffix, [node(f"fan-{n}-{tag}", url) for n in "abc"], args)
        os.environ.pop("P8_POSTGRESQL_NOTIFY", None)
    server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
