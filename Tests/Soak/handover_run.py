#!/usr/bin/env python3
"""Restarts under load (issue 13): long-poll, SSE and WebSocket-over-HTTP clients held on a few channels while a
publisher publishes at a steady rate, and the server is restarted with SIGUSR2 several times in a row.

Every client keeps one TCP connection for the whole run: a long-poll client asks again on the same keep-alive
connection after each answer (with the last id it saw as `prev-id`), an SSE client reads one stream, a WebSocket
client one socket.

Pass condition: no client connection is closed; every client has every item of its channel once and in order,
from the first it received to the last published; every restart completes (a new server pid each time). Reported:
each restart's hand-over time (the runner's `p8.restart.seconds`, SIGUSR2 to the new server ready, and the old
server's own part, `p8.handover.seconds`), what each hand-over moved, and the delivery latency (publish request
sent to item received) p50/p99 overall and for items published while a restart was under way. The publisher
sends every other batch on one keep-alive connection, kept for the whole run (the restarts hand it over too), and
the others each on a connection of its own. A publish request closed without an answer is sent again once on a
new connection, as a publisher would (the items carry ids: a copy is dropped), and counted in the report.
The backend runs in processes of its own (`--backend-processes`), so that the clients do not slow it down.
Standard library only.

Usage: handover_run.py --p8 PATH [--long-polls 10000] [--streams 1000] [--websockets 500] [--channels 20]
                       [--rate 100] [--restarts 5] [--interval 5]
"""

import argparse
import asyncio
import json
import os
import re
import resource
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Support"))
from p8harness import (HOST, P8, BackendProcesses, masked_frame, publish_async, read_head,  # noqa: E402
                       read_websocket_frame, websocket_request)


class Client:
    """One client: its mode, channel, the item numbers it received (and when), and how its connection ended."""

    def __init__(self, index, mode, channel):
        self.index, self.mode, self.channel = index, mode, channel
        self.numbers = []
        self.times = []
        self.problems = []
        self.closed = None
        self.ready = False

    @property
    def last(self):
        return self.numbers[-1] if self.numbers else None

    def got(self, number):
        if self.numbers and number != self.numbers[-1] + 1 and len(self.problems) < 5:
            self.problems.append(f"after {self.numbers[-1]} got {number}")
        self.numbers.append(number)
        self.times.append(time.monotonic())


async def long_poll(client, args, stop):
    reader, writer = await asyncio.open_connection(HOST, args.http_port)
    try:
        while not stop.is_set():
            prev = f"&prev={client.channel}-{client.last}" if client.last is not None else ""
            writer.write(f"GET /hold?ch={client.channel}{prev} HTTP/1.1\r\nHost: handover\r\n\r\n".encode())
            client.ready = True
            status, headers = await read_head(reader)
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if status != 200 or "p8-reset" in headers:
                client.problems.append(f"answered {status} {headers.get('p8-reset', '')}")
            elif body != b"timeout\n":
                for line in body.decode().split():
                    client.got(int(line))
            if headers.get("connection", "").lower() == "close":
                raise ConnectionError("the server asked to close")
    finally:
        writer.close()


async def sse(client, args, stop):
    reader, writer = await asyncio.open_connection(HOST, args.http_port)
    try:
        writer.write(f"GET /stream?ch={client.channel} HTTP/1.1\r\nHost: handover\r\n"
                     f"Accept: text/event-stream\r\n\r\n".encode())
        status, _ = await read_head(reader)
        if status != 200:
            raise ConnectionError(f"stream answered {status}")
        client.ready = True
        content = b""
        while True:
            size = int((await reader.readline()).strip() or b"0", 16)
            if size == 0:
                raise ConnectionError("the stream ended")
            content += (await reader.readexactly(size + 2))[:-2]
            while b"\n\n" in content:
                event, content = content.split(b"\n\n", 1)
                fields = dict(line.split(": ", 1) for line in event.decode().split("\n") if ": " in line)
                if "data" in fields:
                    client.got(int(fields["data"]))
    finally:
        writer.close()


async def websocket(client, args, stop):
    reader, writer = await asyncio.open_connection(HOST, args.http_port)
    try:
        writer.write(websocket_request(f"/ws?ch={client.channel}"))
        status, _ = await read_head(reader)
        if status != 101:
            raise ConnectionError(f"WebSocket handshake answered {status}")
        client.ready = True

        async def talk():
            # A message to the backend every second, so that what the client sends crosses the restarts too.
            while not stop.is_set():
                await asyncio.sleep(1)
                writer.write(masked_frame(1, b"hi"))

        talking = asyncio.create_task(talk())
        try:
            while True:
                opcode, payload = await read_websocket_frame(reader)
                if opcode == 1:
                    client.got(int(payload))
                elif opcode == 8:
                    code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                    raise ConnectionError(f"WebSocket closed by the server ({code})")
                elif opcode == 9:
                    writer.write(masked_frame(0xA, payload))
        finally:
            talking.cancel()
    finally:
        writer.close()


MODES = {"long-poll": long_poll, "sse": sse, "ws": websocket}


async def run_client(client, args, stop):
    try:
        await MODES[client.mode](client, args, stop)
    except (asyncio.IncompleteReadError, OSError, ConnectionError, ValueError) as error:
        if not stop.is_set():
            client.closed = f"{type(error).__name__}: {error}"
    except asyncio.CancelledError:
        pass


class KeptPublishConnection:
    """One keep-alive connection to the publish API, opened on first use and again after a close."""

    def __init__(self, port):
        self.port = port
        self.reader = self.writer = None

    async def publish(self, items):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        body = json.dumps({"items": items}).encode()
        self.writer.write(b"POST /publish/ HTTP/1.1\r\nHost: p8-test\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        try:
            status, headers = await read_head(self.reader)
            await self.reader.readexactly(int(headers.get("content-length", "0")))
        except BaseException:
            self.close()
            raise
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def publisher(args, stop, published, sent_at, unanswered):
    """`rate` items a second, in ten batches, round-robin over the channels, each channel's items a prev-id chain;
    every other batch on the kept connection."""
    failures = []
    channel_index = 0
    kept = KeptPublishConnection(args.publish_port)
    batch = 0
    while not stop.is_set():
        started = time.monotonic()
        items = []
        for _ in range(max(1, args.rate // 10)):
            channel = f"ho{channel_index % args.channels}"
            channel_index += 1
            number = published.get(channel, 0) + 1
            published[channel] = number
            item = {"channel": channel, "id": f"{channel}-{number}", "formats": {
                "http-response": {"body": f"{number}\n"},
                "http-stream": {"content": f"id: {channel}-{number}\ndata: {number}\n\n"},
                "ws-message": {"content": str(number)}}}
            if number > 1:
                item["prev-id"] = f"{channel}-{number - 1}"
            items.append(item)
        now = time.monotonic()
        for item in items:
            sent_at[item["id"]] = now
        # A request closed without an answer was not acknowledged: a publisher sends it again (the items carry
        # ids, so a copy that was committed after all is dropped). Counted and reported; a second failure fails.
        batch += 1
        for attempt in range(2):
            try:
                if attempt == 0 and batch % 2 == 0:
                    status = await kept.publish(items)
                else:
                    status = await publish_async(args.publish_port, items)
                if status != 200:
                    failures.append(f"answered {status}")
                break
            except (OSError, asyncio.IncompleteReadError) as error:
                unanswered.append(f"{type(error).__name__}: {error} (sent at {now:.3f})")
                if attempt == 1:
                    failures.append(unanswered[-1])
        await asyncio.sleep(max(0, 0.1 - (time.monotonic() - started)))
    kept.close()
    return failures


def read_status(p8):
    try:
        with open(os.path.join(p8.directory, "run", "p8-runner.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


async def restarter(p8, args, windows):
    """SIGUSR2 every `interval` seconds, each once the one before completed; records each restart's window."""
    for _ in range(args.restarts):
        await asyncio.sleep(args.interval)
        before = read_status(p8).get("handovers", 0)
        started = time.monotonic()
        os.kill(p8.pid, signal.SIGUSR2)
        while read_status(p8).get("handovers", 0) <= before:
            if time.monotonic() - started > 60:
                raise AssertionError("a restart did not complete within 60 s")
            await asyncio.sleep(0.01)
        windows.append((started, time.monotonic(), read_status(p8).get("serverPid")))


def percentile(values, fraction):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * fraction))] if values else float("nan")


async def main_async(args, p8):
    modes = ["long-poll"] * args.long_polls + ["sse"] * args.streams + ["ws"] * args.websockets
    clients = [Client(i, mode, f"ho{i % args.channels}") for i, mode in enumerate(modes)]
    stop_clients, stop_publishing = asyncio.Event(), asyncio.Event()
    tasks = []
    for client in clients:
        tasks.append(asyncio.create_task(run_client(client, args, stop_clients)))
        if len(tasks) % 200 == 0:
            await asyncio.sleep(0.05)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        stats = p8.stats()
        subscribers = sum(c.get("subscribers", 0) for c in stats.get("channels", {}).values())
        if subscribers >= len(clients) and all(c.ready for c in clients):
            break
        await asyncio.sleep(0.5)
    else:
        raise AssertionError(f"only {subscribers} of {len(clients)} clients subscribed")
    published, sent_at, windows = {}, {}, []
    unanswered = []
    publishing = asyncio.create_task(publisher(args, stop_publishing, published, sent_at, unanswered))
    await restarter(p8, args, windows)
    await asyncio.sleep(args.interval)
    stop_publishing.set()
    failures = await publishing
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        behind = [c for c in clients if c.closed is None and c.last != published.get(c.channel)]
        if not behind:
            break
        await asyncio.sleep(0.5)
    stop_clients.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return clients, published, sent_at, windows, failures, behind, unanswered


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--p8", required=True)
    parser.add_argument("--long-polls", type=int, default=10000)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--websockets", type=int, default=500)
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--rate", type=int, default=100, help="items a second")
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--interval", type=float, default=5, help="seconds between restarts")
    parser.add_argument("--backend-processes", type=int, default=2,
                        help="processes serving the backend (apart from the clients' interpreter)")
    args = parser.parse_args()
    total = args.long_polls + args.streams + args.websockets
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, total + 1024)), hard))

    directory = tempfile.mkdtemp(prefix="p8-handover-")
    backend = BackendProcesses(args.backend_processes)
    routes = (f"*,proto=ws {HOST}:{backend.server_port},over_http\n"
              f"*,resume_last_event_id {HOST}:{backend.server_port}\n")
    p8 = P8(args.p8, routes, directory, runner={"client_maxconn": total + 1000}).start()
    args.http_port, args.publish_port = p8.http_port, p8.publish_port
    first_pid = p8.server_pid
    try:
        clients, published, sent_at, windows, failures, behind, unanswered = asyncio.run(main_async(args, p8))
    finally:
        p8.stop(timeout=30, force=False)
        backend.shutdown()

    with open(p8.log_path) as f:
        log = f.read()
    restart_seconds = [float(s) for s in re.findall(r"p8\.restart\.seconds=([0-9.]+)", log)]
    handover_seconds = [float(s) for s in re.findall(r"p8\.handover\.seconds=([0-9.]+)", log)]
    moved = re.findall(r"p8\.handover=(\d+ handed over \([^)]*\), \d+ left to close(?: \([^)]*\))?)", log)
    latencies, during, by_mode = [], [], {}
    for client in clients:
        for number, received in zip(client.numbers, client.times):
            sent = sent_at.get(f"{client.channel}-{number}")
            if sent is None:
                continue
            latencies.append(received - sent)
            by_mode.setdefault(client.mode, []).append(received - sent)
            if any(start <= sent <= end for start, end, _ in windows):
                during.append(received - sent)
    deliveries = sum(len(c.numbers) for c in clients)
    print(f"handover run: {args.long_polls} long-polls, {args.streams} SSE streams, {args.websockets} WebSockets "
          f"on {args.channels} channels; {sum(published.values())} items at {args.rate}/s "
          f"({len(failures)} publish requests failed); {len(windows)} restarts; {deliveries} deliveries")
    if unanswered:
        restarts = ", ".join(f"{start:.3f}-{end:.3f}" for start, end, _ in windows)
        print(f"  {len(unanswered)} publish requests closed without an answer, sent again: "
              + "; ".join(unanswered[:3]) + f" (restarts {restarts})")
    for index, (start, end, pid) in enumerate(windows):
        print(f"  restart {index + 1}: server pid {pid}, complete after {end - start:.3f} s "
              f"(runner: {restart_seconds[index] if index < len(restart_seconds) else '?'} s, old server's "
              f"hand-over {handover_seconds[index] if index < len(handover_seconds) else '?'} s); "
              f"{moved[index] if index < len(moved) else '?'}")
    print(f"  delivery latency: p50 {percentile(latencies, 0.5) * 1000:.1f} ms, p99 "
          f"{percentile(latencies, 0.99) * 1000:.1f} ms overall; items published during a restart "
          f"({len(during)} deliveries): p50 {percentile(during, 0.5) * 1000:.1f} ms, "
          f"p99 {percentile(during, 0.99) * 1000:.1f} ms")
    print("  by transport: " + "; ".join(
        f"{mode} p50 {percentile(values, 0.5) * 1000:.1f} ms, p99 {percentile(values, 0.99) * 1000:.1f} ms"
        for mode, values in by_mode.items()))
    closed = [c for c in clients if c.closed is not None]
    problems = [f"client {c.index} ({c.mode} {c.channel}) closed: {c.closed}" for c in closed[:10]]
    if closed:
        by_mode = {}
        for c in closed:
            by_mode[c.mode] = by_mode.get(c.mode, 0) + 1
        problems.insert(0, f"{len(closed)} client connections closed: {by_mode}")
    problems += [f"client {c.index} ({c.mode} {c.channel}): " + "; ".join(c.problems) for c in clients if c.problems]
    problems += [f"client {c.index} ({c.mode} {c.channel}) ended at {c.last}, not {published.get(c.channel)}"
                 for c in behind if c.closed is None][:10]
    if failures:
        problems.insert(0, f"{len(failures)} publish requests failed: " + "; ".join(failures[:3]))
    crashes = log.count("server ended; starting a new one")
    if crashes:
        problems.append(f"the server crashed {crashes} times (the runner restarted it)")
    pids = [pid for _, _, pid in windows]
    if len(set(pids + [first_pid])) != len(windows) + 1:
        problems.append(f"restarts did not each start a new server: {first_pid} then {pids}")
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems[:30]) + f"\n  (p8 log in {p8.log_path})")
        return 1
    print("passed: no connection closed; every client has every item once, in order")
    return 0


if __name__ == "__main__":
    sys.exit(main())
