#!/usr/bin/env python3
"""Resume under chaos: P-8 is killed with SIGKILL and restarted every few seconds while a publisher sends
id-chained messages at a steady rate and long-poll and SSE clients reconnect at random moments with the last id
they saw.

With `--publishers N` (N > 1), N concurrent publishers take the chain's batches (`--batch` messages each) in
order and send them after random pauses, so their requests overtake each other and P-8 commits items out of
their prev-id order (issue 17): the clients must still get the chain's order.

Pass condition (issue 4): at the end every client has every acknowledged message after its first one, in
order, with no duplicates, or has seen the reset signal (`P8-Reset` header on a long-poll, `event: reset` on
SSE). Prints the run's figures. Standard library only.

Usage: resume_chaos.py --p8 PATH [--seconds 30] [--rate 20] [--kill-every 4] [--longpoll 4] [--sse 4]
                       [--publishers 1] [--batch 1]
"""

import argparse
import http.client
import os
import random
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Support"))
from p8harness import P8, SSEParser, publish, start_server, stats  # noqa: E402

CHANNEL = "chaos"


class Backend(BaseHTTPRequestHandler):
    """The GRIP backend: stores nothing; it tells P-8 where the client is and P-8 resumes it from its log."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/lp"):
            last = self.path.partition("last=")[2]
            channel = CHANNEL + (f"; prev-id={last}" if last else "")
            body = b"timeout\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Grip-Hold", "response")
            self.send_header("Grip-Channel", channel)
            self.send_header("Grip-Timeout", "5")
        else:
            # SSE: the route has resume_last_event_id, so the client's Last-Event-ID is its position.
            body = b":open\n\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Grip-Hold", "stream")
            self.send_header("Grip-Channel", CHANNEL)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def p8_node(binary, directory, backend_port, store=None):
    """A P-8 (not started yet) in `directory`, on ephemeral ports, in front of the chaos backend; `store` adds keys
    to its [store] section."""
    routes = f"*,resume_last_event_id 127.0.0.1:{backend_port}\n"
    return P8(binary, routes, directory, handler={"message_wait": 5000}, store=store)


def add_counters(p8, reordered, timeouts):
    """Adds this process's reordering counters (from /stats) to the totals given."""
    try:
        counters = stats(p8.publish_port, timeout=5)["counters"]
    except (OSError, ValueError):
        return reordered, timeouts
    return reordered + counters.get("items_reordered", 0), timeouts + counters.get("sequencer_timeouts", 0)


def chain_items(numbers):
    """Messages m<n> of the chain, each with prev-id the one before (none for m1)."""
    items = []
    for n in numbers:
        item = {
            "channel": CHANNEL,
            "id": f"m{n}",
            "formats": {
                "http-response": {"body": f"m{n}\n"},
                "http-stream": {"content": f"id: m{n}\ndata: m{n}\n\n"},
            },
        }
        if n > 1:
            item["prev-id"] = f"m{n - 1}"
        items.append(item)
    return items


class Chain:
    """The chain m1, m2, ... (each with prev-id the one before): hands out batches in chain order and keeps what
    P-8 acknowledged; `acked` is the length of the acknowledged prefix."""

    def __init__(self, batch):
        self.lock = threading.Lock()
        self.batch = batch
        self.next = 1
        self.acknowledged = set()
        self.acked = 0
        self.attempts = 0
        self.failures = 0

    def take(self):
        with self.lock:
            first = self.next
            self.next += self.batch
            return range(first, first + self.batch)

    def acknowledge(self, numbers):
        with self.lock:
            self.acknowledged.update(numbers)
            while self.acked + 1 in self.acknowledged:
                self.acked += 1


class Publisher(threading.Thread):
    """Publishes the chain's batches at its share of the rate, after a random pause; a message counts as
    acknowledged when P-8 answered 200. A refused or failed publish is re-sent with the same ids until it is
    acknowledged, even after `stop` (so that the acknowledged prefix has no hole)."""

    def __init__(self, port, chain, interval, stop):
        super().__init__(daemon=True)
        self.port = port
        self.chain = chain
        self.interval = interval
        self.stop = stop

    def run(self):
        while not self.stop.is_set():
            numbers = self.chain.take()
            items = chain_items(numbers)
            while True:
                self.chain.attempts += 1
                try:
                    status, _ = publish(self.port, items, timeout=5)
                except OSError:
                    status = 0
                if status == 200:
                    self.chain.acknowledge(numbers)
                    break
                self.chain.failures += 1
                time.sleep(0.05)
            time.sleep(random.uniform(0, 2 * self.interval))


class Client(threading.Thread):
    """Base: records the ids it receives, in order, and the resets it sees."""

    def __init__(self, name, port, stop):
        super().__init__(daemon=True)
        self.name = name
        self.port = port
        self.stop = stop
        self.received = []  # message numbers, in order
        self.resets = 0
        self.reconnects = 0
        self.errors = 0

    @property
    def last(self):
        return f"m{self.received[-1]}" if self.received else ""


class LongPollClient(Client):
    def run(self):
        while not self.stop.is_set():
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", f"/lp?last={self.last}")
                response = conn.getresponse()
                body = response.read().decode()
                conn.close()
            except OSError:
                self.errors += 1
                time.sleep(0.05)
                continue
            self.reconnects += 1
            if response.getheader("P8-Reset"):
                self.resets += 1
                self.received.append(None)  # a reset: the next message starts a new run
                continue
            if response.status == 200 and body.startswith("m"):
                self.received.append(int(body.strip()[1:]))


class SSEClient(Client):
    def run(self):
        while not self.stop.is_set():
            try:
                self.stream_once()
            except OSError:
                self.errors += 1
                time.sleep(0.05)

    def stream_once(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Accept": "text/event-stream"}
        if self.last:
            headers["Last-Event-ID"] = self.last
        conn.request("GET", "/sse", headers=headers)
        response = conn.getresponse()
        self.reconnects += 1
        # Leave at a random moment, as a flaky network would.
        leave_at = time.monotonic() + random.uniform(0.2, 3.0)
        parser = SSEParser()
        try:
            while not self.stop.is_set() and time.monotonic() < leave_at:
                line = response.fp.readline()
                if not line:
                    return
                event = parser.feed(line)
                if event is None:
                    continue
                if event.get("event") == "reset":
                    self.resets += 1
                    self.received.append(None)
                elif "id" in event:
                    self.received.append(int(event["id"][1:]))
        finally:
            conn.close()


def check(client, acked):
    """Every acknowledged message after the client's first one, in order, no duplicates (per run between
    resets); returns a list of problems."""
    problems = []
    runs = [[]]
    for number in client.received:
        if number is None:
            runs.append([])
        else:
            runs[-1].append(number)
    for index, run in enumerate(runs):
        if not run:
            continue
        expected = list(range(run[0], run[0] + len(run)))
        if run != expected:
            for position, (got, want) in enumerate(zip(run, expected)):
                if got != want:
                    problems.append(f"run {index}: expected m{want} at position {position}, got m{got}")
                    break
        is_last_run = index == len(runs) - 1
        if is_last_run and run[-1] < acked:
            problems.append(f"stopped at m{run[-1]} of {acked} acknowledged")
    return problems


def add_chaos_options(parser, publishers):
    """The options of a chaos run: its length, the publish rate, kills, clients, publishers and batches."""
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--kill-every", type=float, default=4)
    parser.add_argument("--longpoll", type=int, default=4)
    parser.add_argument("--sse", type=int, default=4)
    parser.add_argument("--publishers", type=int, default=publishers)
    parser.add_argument("--batch", type=int, default=1)


def catch_up(clients, acked):
    """Lets every client catch up with the last acknowledged message (bounded)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        behind = [c for c in clients if not c.received or c.received[-1] is None or c.received[-1] < acked]
        if not behind:
            break
        time.sleep(0.2)


def report(clients, acked, logs, requests="requests"):
    """Prints each client's figures and problems and the verdict; returns the exit status."""
    failed = False
    for client in clients:
        problems = check(client, acked)
        messages = sum(1 for n in client.received if n is not None)
        first = next((n for n in client.received if n is not None), None)
        print(f"  {client.name}: {messages} messages from m{first}, {client.reconnects} {requests}, "
              f"{client.errors} connection errors, {client.resets} resets"
              + ("" if not problems else "; PROBLEMS: " + "; ".join(problems)))
        failed = failed or bool(problems) or first is None
    if failed:
        print(f"FAILED (logs in {logs})")
        return 1
    print("passed: every client has every acknowledged message after its first, in order, without duplicates")
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--p8", required=True)
    add_chaos_options(parser, publishers=1)
    args = parser.parse_args()

    directory = tempfile.mkdtemp(prefix="p8-chaos-")
    server = start_server(Backend)
    p8 = p8_node(args.p8, directory, server.server_port).start()

    stop_publishing = threading.Event()
    stop_clients = threading.Event()
    chain = Chain(args.batch)
    interval = args.batch * args.publishers / args.rate
    publishers = [Publisher(p8.publish_port, chain, interval, stop_publishing) for _ in range(args.publishers)]
    clients = [LongPollClient(f"longpoll-{i}", p8.http_port, stop_clients) for i in range(args.longpoll)]
    clients += [SSEClient(f"sse-{i}", p8.http_port, stop_clients) for i in range(args.sse)]
    # The chain's first batch goes alone: a channel with no items yet takes its first item whatever its prev-id
    # (as Pushpin), so a later batch that overtook it would start the log.
    publishers[0].start()
    while chain.acked < args.batch:
        time.sleep(0.01)
    for publisher in publishers[1:]:
        publisher.start()
    for client in clients:
        client.start()
        time.sleep(0.1)

    started = time.monotonic()
    kills = 0
    reordered = timeouts = 0  # over every process (read just before each kill)
    while time.monotonic() - started < args.seconds:
        time.sleep(random.uniform(args.kill_every * 0.5, args.kill_every * 1.5))
        reordered, timeouts = add_counters(p8, reordered, timeouts)
        p8.kill()
        kills += 1
        time.sleep(random.uniform(0.05, 0.5))
        p8.start()

    stop_publishing.set()
    for publisher in publishers:
        publisher.join()
    acked = chain.acked
    reordered, timeouts = add_counters(p8, reordered, timeouts)
    catch_up(clients, acked)
    stop_clients.set()
    p8.stop()
    server.shutdown()

    print(f"chaos: {args.seconds:.0f} s, {kills} kill -9 and restarts, {acked} messages acknowledged "
          f"({chain.attempts} publish requests, {chain.failures} refused or failed while P-8 was down), "
          f"{args.publishers} publishers of {args.batch}-message batches: {reordered} items committed ahead of their "
          f"predecessor, {timeouts} released by message_wait (at least; a process's counts since its last read "
          f"die with it)")
    return report(clients, acked, directory)

if __name__ == "__main__":
    sys.exit(main())
