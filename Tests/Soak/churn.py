#!/usr/bin/env python3
"""Churn soak: many clients connect, hold (long-poll, SSE, WebSocket), receive and leave at random while
items are published at a steady rate on many channels with retention trimming. p8's resident memory and
open descriptors are sampled at a fixed interval.

Pass condition (issue 16): every client's items are in order without gaps or repeats (a long-poll or SSE
client resumes with the last id it saw across its reconnects; a reset, when retention trimmed its position,
starts a new run); every long-poll and SSE client ends with the last published item of its channel; once
every client has left, p8's open descriptors are back to the count before they came. The memory slope after
warm-up is reported (asserted with --max-rss-slope). Standard library only.

Usage: churn.py --p8 PATH [--clients 2000] [--seconds 1800] [--rate 200] [--channels 500] [--sample 10]
"""

import argparse
import asyncio
import collections
import os
import random
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Support"))
from p8harness import (HOST, P8, GripBackend, publish_async, read_head, read_websocket_frame,  # noqa: E402
                       start_server, websocket_request)


class Client:
    """One client: a transport, a channel, and the item numbers it received (None marks a reset)."""

    def __init__(self, index, mode, channel):
        self.index, self.mode, self.channel = index, mode, channel
        self.received = []
        self.sessions = 0
        self.problems = []
        self.endings = collections.Counter()

    @property
    def last(self):
        numbers = [n for n in self.received if n is not None]
        return numbers[-1] if numbers and self.received[-1] is not None else None

    def got(self, number):
        previous = self.last
        if previous is not None and number != previous + 1 and len(self.problems) < 5:
            self.problems.append(f"after {previous} got {number}")
        self.received.append(number)


async def longpoll_session(client, args, stop_at):
    reader, writer = await asyncio.open_connection(HOST, args.http_port)
    try:
        prev = f"&prev={client.channel}-{client.last}" if client.last is not None else ""
        writer.write(f"GET /hold?ch={client.channel}{prev} HTTP/1.1\r\nHost: churn\r\n\r\n".encode())
        status, headers = await asyncio.wait_for(read_head(reader), max(0.1, stop_at - time.monotonic()))
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        if "p8-reset" in headers:
            client.received.append(None)
        elif status == 200 and body != b"timeout\n":
            for line in body.decode().split():
                client.got(int(line))
    finally:
        writer.close()


async def sse_session(client, args, stop_at):
    reader, writer = await asyncio.open_connection(HOST, args.http_port)
    try:
        last = f"Last-Event-ID: {client.channel}-{client.last}\r\n" if client.last is not None else ""
        writer.write(f"GET /stream?ch={client.channel} HTTP/1.1\r\nHost: churn\r\nAccept: text/event-stream\r\n"
                     f"{last}\r\n".encode())
        await asyncio.wait_for(read_head(reader), max(0.1, stop_at - time.monotonic()))
        content = b""
        while time.monotonic() < stop_at:
            size_line = await asyncio.wait_for(reader.readline(), max(0.01, stop_at - time.monotonic()))
            size = int(size_line.strip() or b"0", 16)
            if size == 0:
                return
            content += (await reader.readexactly(size + 2))[:-2]
            while b"\n\n" in content:
                event, content = content.split(b"\n\n", 1)
                fields = dict(line.split(": ", 1) for line in event.decode().split("\n") if ": " in line)
                if fields.get("event") == "reset":
                    client.received.append(None)
                elif "data" in fields:
                    client.got(int(fields["data"]))
    finally:
        writer.close()


async def ws_session(client, args, stop_at):
    reader, writer = await asyncio.open_connection(HOST, args.http_port)
    try:
        writer.write(websocket_request(f"/ws?ch={client.channel}"))
        status, _ = await asyncio.wait_for(read_head(reader), max(0.1, stop_at - time.monotonic()))
        if status != 101:
            raise ValueError(f"WebSocket handshake answered {status}")
        client.received.append(None)  # no resume for WebSockets: each session is its own run
        while time.monotonic() < stop_at:
            opcode, payload = await asyncio.wait_for(read_websocket_frame(reader),
                                                     max(0.01, stop_at - time.monotonic()))
            if opcode == 1:
                client.got(int(payload))
            elif opcode == 8:
                return
    finally:
        writer.close()


SESSIONS = {"longpoll": longpoll_session, "sse": sse_session, "ws": ws_session}


async def run_client(client, args, stop, rng, caught_up):
    """Sessions until `stop`, or until publishing ended and the client has its channel's last item."""
    while not stop.is_set() and not caught_up(client):
        stop_at = time.monotonic() + rng.uniform(args.hold_min, args.hold_max)
        client.sessions += 1
        try:
            await SESSIONS[client.mode](client, args, stop_at)
            client.endings["answered"] += 1
        except asyncio.TimeoutError:
            client.endings["left"] += 1  # leaving at a random moment, mid-response, is the point
        except (asyncio.IncompleteReadError, OSError, ValueError) as error:
            client.endings[type(error).__name__] += 1
        await asyncio.sleep(rng.uniform(0, 1.0))


async def publisher(args, stop, published, rng, latencies):
    """Publishes `rate` items a second in ten batches, each on a random channel with a prev-id chain."""
    failures = 0
    while not stop.is_set():
        started = time.monotonic()
        items = []
        for _ in range(max(1, args.rate // 10)):
            channel = f"ch{rng.randrange(args.channels)}"
            number = published.get(channel, 0) + 1
            published[channel] = number
            item = {"channel": channel, "id": f"{channel}-{number}", "formats": {
                "http-response": {"body": f"{number}\n"},
                "http-stream": {"content": f"id: {channel}-{number}\ndata: {number}\n\n"},
                "ws-message": {"content": str(number)}}}
            if number > 1:
                item["prev-id"] = f"{channel}-{number - 1}"
            items.append(item)
        sent = time.monotonic()
        if await publish_async(args.publish_port, items) != 200:
            failures += 1
        latencies.append(time.monotonic() - sent)
        await asyncio.sleep(max(0, 0.1 - (time.monotonic() - started)))
    return failures


async def sampler(p8, args, stop, samples, started):
    while not stop.is_set():
        rss, fds = p8.sample()
        samples.append((time.monotonic() - started, rss, fds))
        await asyncio.sleep(args.sample)


def slope(points):
    """Least-squares slope of (x, y) points."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


async def main_async(args, p8):
    rng = random.Random(args.seed)
    modes = ["longpoll", "sse", "ws"]
    clients = [Client(i, modes[i % 3], f"ch{rng.randrange(args.channels)}") for i in range(args.clients)]
    baseline = p8.sample()
    started = time.monotonic()
    stop_clients, stop_publishing, stop_sampling = asyncio.Event(), asyncio.Event(), asyncio.Event()
    published = {}
    samples = []
    sampling = asyncio.create_task(sampler(p8, args, stop_sampling, samples, started))
    tasks = []
    def caught_up(client):
        return stop_publishing.is_set() and (client.mode == "ws" or client.last == published.get(client.channel))

    for client in clients:
        client_rng = random.Random(rng.random())
        tasks.append(asyncio.create_task(run_client(client, args, stop_clients, client_rng, caught_up)))
        await asyncio.sleep(args.ramp / max(1, args.clients))
    latencies = []
    publishing = asyncio.create_task(publisher(args, stop_publishing, published, rng, latencies))
    await asyncio.sleep(max(0, args.seconds - (time.monotonic() - started)))
    stop_publishing.set()
    failures = await publishing
    # Every resuming client catches up with its channel's last item (bounded).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # (A client that never received anything had no position to resume from: counted, not checked.)
        behind = [c for c in clients if c.mode != "ws" and any(n is not None for n in c.received)
                  and c.last != published[c.channel]]
        if not behind:
            break
        await asyncio.sleep(0.5)
    stop_clients.set()
    await asyncio.gather(*tasks)
    # With every client gone, the descriptors return to the count before they came (bounded wait).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and p8.sample()[1] > baseline[1] + 5:
        await asyncio.sleep(0.5)
    after = p8.sample()
    if after[1] > baseline[1] + 5:
        try:
            connections = subprocess.run(["ss", "-tanpH"], capture_output=True, text=True).stdout.splitlines()
        except FileNotFoundError:
            connections = []
        mine = [line.split()[:5] for line in connections if f"pid={p8.server_pid}," in line]
        print("  p8's TCP sockets left:", collections.Counter((state, peer.rsplit(":", 1)[-1] == str(args.backend_port))
                                                            for state, _, _, _, peer in mine))
    stop_sampling.set()
    await sampling
    return clients, published, failures, samples, baseline, after, behind, latencies


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--p8", required=True)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=1800)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--channels", type=int, default=500)
    parser.add_argument("--sample", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=None, help="seconds before the slope (default a quarter)")
    parser.add_argument("--ramp", type=float, default=10, help="seconds over which clients arrive")
    parser.add_argument("--hold-min", type=float, default=2, help="shortest session, seconds")
    parser.add_argument("--hold-max", type=float, default=30, help="longest session, seconds")
    parser.add_argument("--max-items", type=int, default=50, help="retention per channel (trimming runs)")
    parser.add_argument("--max-rss-slope", type=float, default=None, help="fail above this many KiB/minute")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.clients + 1024)), hard))

    directory = tempfile.mkdtemp(prefix="p8-churn-")
    backend = start_server(GripBackend)
    routes = (f"*,proto=ws {HOST}:{backend.server_port},over_http\n"
              f"*,resume_last_event_id {HOST}:{backend.server_port}\n")
    p8 = P8(args.p8, routes, directory, store={"max_items": args.max_items}).start()
    args.http_port, args.publish_port, args.backend_port = p8.http_port, p8.publish_port, backend.server_port
    try:
        clients, published, failures, samples, baseline, after, behind, latencies = asyncio.run(
            main_async(args, p8)
        )
    finally:
        p8.stop(timeout=15, force=False)
        backend.shutdown()

    warmup = args.warmup if args.warmup is not None else args.seconds / 4
    steady = [(t, rss) for t, rss, _ in samples if warmup <= t <= args.seconds]
    rss_slope = slope(steady) * 60
    fd_slope = slope([(t, fds) for t, _, fds in samples if warmup <= t <= args.seconds]) * 60
    total = sum(published.values())
    received = sum(sum(1 for n in c.received if n is not None) for c in clients)
    resets = sum(c.received.count(None) for c in clients if c.mode != "ws")
    idle = sum(1 for c in clients if not any(n is not None for n in c.received))
    print(f"churn: {args.clients} clients, {args.seconds:.0f} s, {total} items on {len(published)} channels "
          f"({failures} publish requests failed), {sum(c.sessions for c in clients)} sessions, "
          f"{received} deliveries, {resets} resets, {idle} clients that never received an item")
    latencies.sort()
    if latencies:
        print(f"  publish requests: {len(latencies)}, latency median {latencies[len(latencies) // 2] * 1000:.0f} ms, "
              f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")
    for mode in SESSIONS:
        endings = sum((c.endings for c in clients if c.mode == mode), collections.Counter())
        print(f"  {mode} sessions: " + ", ".join(f"{name} {n}" for name, n in endings.most_common()))
    print("  samples (s, RSS KiB, fds): " + " ".join(f"{t:.0f}/{rss}/{fds}" for t, rss, fds in samples))
    print(f"  after warm-up ({warmup:.0f} s): RSS slope {rss_slope:+.0f} KiB/min, descriptors {fd_slope:+.1f}/min; "
          f"descriptors before clients {baseline[1]}, after they left {after[1]}")
    problems = [f"client {c.index} ({c.mode} {c.channel}): " + "; ".join(c.problems) for c in clients if c.problems]
    problems += [f"client {c.index} ({c.mode} {c.channel}) ended at {c.last}, not {published[c.channel]}"
                 for c in behind]
    if failures:
        problems.append(f"{failures} publish requests failed")
    if after[1] > baseline[1] + 5:
        problems.append(f"descriptors leaked: {baseline[1]} before, {after[1]} after every client left")
    if args.max_rss_slope is not None and rss_slope > args.max_rss_slope:
        problems.append(f"RSS grows {rss_slope:.0f} KiB/min after warm-up (limit {args.max_rss_slope})")
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems[:20]) + f"\n  (p8 log in {directory})")
        return 1
    print("passed: every client's items in order without gaps or repeats, resuming clients complete, no fd leak")
    return 0


if __name__ == "__main__":
    sys.exit(main())
