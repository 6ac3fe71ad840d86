#!/usr/bin/env python3
"""Slow and vanished clients soak: fast HTTP-stream clients measure how long published items take to reach
them, first alone, then while many other clients on a busy channel stop reading (their receive buffers full)
or vanish without a FIN, and large items keep being published to them. Both phases publish the same items
(a small one to the fast clients, a large one to the busy channel, in separate requests): the first is the
run without the slow clients.

Clients that stop reading are held by child processes (`--per-process` each: a process has 20,000
descriptors here). Vanished clients (`--vanish`, needs root and `ip`; skipped with a SKIPPED line otherwise)
connect from a network namespace joined by a veth pair; once they are subscribed, the link is deleted and
their process killed, so p8 never sees a FIN or a reset: it must close them by itself.

Pass condition (issue 16): the fast clients get every item, in order, in both phases; once more was
published to the slow clients than p8 queues for one client (2 MB), p8 has disconnected the clients that
stopped reading and closed its sockets to the vanished ones. Reported (and asserted with --assert-latency,
--max-rss-per-slow): the fast clients' p99 latency in both phases and its ratio, p8's resident memory per slow
client. Standard library only.

Usage: slow_clients.py --p8 PATH [--slow 500] [--vanish 0] [--transport stream|ws] [--fast 20]
       [--seconds 20] [--bulk-bytes 100000] [--per-process 5000]
"""

import argparse
import base64
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Support"))
from p8harness import HOST, P8, GripBackend, QuietServer, StartFailed, free_port, rss_kib, start_server  # noqa: E402
QUEUE_LIMIT = 2 * 1024 * 1024
# The vanished clients' network: p8 listens on HOST_SIDE too, the clients connect from CLIENT_SIDE.
HOST_SIDE, CLIENT_SIDE = "10.201.16.1", "10.201.16.2"


class FastClient(threading.Thread):
    """A stream on channel `fast` that reads everything: the publish time in each item gives its latency."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.sock = socket.create_connection((HOST, port), timeout=15)
        self.sock.sendall(b"GET /stream?ch=fast HTTP/1.1\r\nHost: slow\r\n\r\n")
        self.sock.settimeout(120)  # quiet while thousands of slow clients connect, before the publishes
        self.latencies, self.numbers, self.stop = [], [], False
        self.subscribed = threading.Event()  # the backend's "open" line arrived: the hold is subscribed

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
                    if line.endswith(b"open"):
                        self.subscribed.set()
                    elif line.startswith(b"item "):
                        _, number, sent = line.split()
                        self.numbers.append(int(number))
                        self.latencies.append(time.time() - float(sent))
        except OSError:
            pass


class BackendServer(QuietServer):
    request_queue_size = 4096  # a class attribute: listen() runs in the constructor; thousands of holds arrive at once


def publish(port, items):
    body = json.dumps({"items": items}).encode()
    with socket.create_connection((HOST, port), timeout=15) as s:
        s.sendall(b"POST /publish/ HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        answer = s.recv(100)
    return answer.startswith(b"HTTP/1.1 200")


# MARK: - Holders (child processes that keep slow clients)


def hold(address, port, count, transport):
    """Child process: opens `count` clients that read their response head and then nothing; prints `ready`,
    then on a `check` line prints how many p8 kept connected (and exits)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 256)), hard))
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(30)
        s.connect((address, port))
        if transport == "ws":
            key = base64.b64encode(os.urandom(16))
            s.sendall(b"GET /ws?ch=bulk HTTP/1.1\r\nHost: slow\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key)
        else:
            s.sendall(b"GET /stream?ch=bulk HTTP/1.1\r\nHost: slow\r\n\r\n")
        sockets.append(s)
    for s in sockets:  # every client subscribed: its head arrived (read no further)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(1)
            if not chunk:
                break
            head += chunk
    print("ready", flush=True)
    sys.stdin.readline()
    print(sum(still_connected(s) for s in sockets), flush=True)


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


class Holders:
    """The child processes holding one phase's slow clients."""

    def __init__(self, args, prefix, address, count):
        self.processes = []
        while count > 0:
            n = min(count, args.per_process)
            count -= n
            command = prefix + [sys.executable, os.path.abspath(__file__), "--hold", address, str(args.http_port),
                                str(n), args.transport]
            self.processes.append(subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE))
        for process in self.processes:
            if process.stdout.readline().strip() != b"ready":
                raise RuntimeError("a holder of slow clients did not get its clients subscribed")

    def still_connected(self):
        total = 0
        for process in self.processes:
            process.stdin.write(b"check\n")
            process.stdin.flush()
            total += int(process.stdout.readline())
            process.wait(timeout=30)
        return total

    def kill(self):
        for process in self.processes:
            process.kill()
            process.wait()


class VanishNetwork:
    """A network namespace joined to this one by a veth pair; `cut()` deletes the link."""

    def __init__(self):
        self.namespace, self.link = f"p8slow{os.getpid()}", f"p8s{os.getpid()}"
        run = lambda *command: subprocess.run(command, check=True, capture_output=True)
        run("ip", "netns", "add", self.namespace)
        try:
            run("ip", "link", "add", self.link, "type", "veth", "peer", "name", "p8c", "netns", self.namespace)
            run("ip", "addr", "add", f"{HOST_SIDE}/30", "dev", self.link)
            run("ip", "link", "set", self.link, "up")
            for command in (["ip", "addr", "add", f"{CLIENT_SIDE}/30", "dev", "p8c"], ["ip", "link", "set", "p8c", "up"],
                            ["ip", "link", "set", "lo", "up"]):
                run("ip", "netns", "exec", self.namespace, *command)
        except subprocess.CalledProcessError:
            self.close()
            raise

    @property
    def prefix(self):
        return ["ip", "netns", "exec", self.namespace]

    def cut(self):
        subprocess.run(["ip", "link", "del", self.link], capture_output=True)

    def close(self):
        self.cut()
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True)

    @staticmethod
    def available():
        return os.geteuid() == 0 and shutil.which("ip") is not None


def p8_sockets_to(address, pid):
    """p8's open TCP sockets whose local address is `address` (its sockets to the vanished clients). Those it
    closed may linger in the kernel (FIN_WAIT1, no longer p8's): not counted."""
    lines = subprocess.run(["ss", "-Htnp", "src", address], capture_output=True, text=True).stdout.splitlines()
    return sum(f"pid={pid}," in line for line in lines)


# MARK: - Phases


def phase(args, p8, slow_count, vanish_count, counter):
    """Runs one phase; returns (fast clients, max RSS KiB, clients that stopped reading still connected, p8's
    sockets to vanished clients still open)."""
    fast = [FastClient(args.http_port) for _ in range(args.fast)]
    for client in fast:
        client.start()
    slow = Holders(args, [], HOST, slow_count) if slow_count else None
    vanished, network = None, None
    if vanish_count:
        network = args.network
        vanished = Holders(args, network.prefix, HOST_SIDE, vanish_count)
        network.cut()  # gone without a FIN: nothing the clients do reaches p8 any more
        vanished.kill()
    for client in fast:
        if not client.subscribed.wait(30):
            raise AssertionError("a fast client's stream did not open")
    max_rss = rss_kib(p8.server_pid)
    stop_at = time.monotonic() + args.seconds
    bulk = "b" * args.bulk_bytes
    while time.monotonic() < stop_at:
        counter[0] += 1
        fast_item = {"channel": "fast", "formats": {"http-stream": {"content": f"item {counter[0]} {time.time()}\n"}}}
        bulk_item = {"channel": "bulk", "formats": {"http-stream": {"content": bulk}, "ws-message": {"content": bulk}}}
        if not publish(args.publish_port, [fast_item]) or not publish(args.publish_port, [bulk_item]):
            raise AssertionError("a publish failed")
        max_rss = max(max_rss, rss_kib(p8.server_pid))
        time.sleep(0.05)
    time.sleep(2)
    for client in fast:
        client.stop = True
    connected = slow.still_connected() if slow else 0
    open_to_vanished = 0
    if vanished:
        deadline = time.monotonic() + 30
        while (open_to_vanished := p8_sockets_to(HOST_SIDE, p8.server_pid)) > vanish_count // 10 and time.monotonic() < deadline:
            time.sleep(0.5)
    return fast, max_rss, connected, open_to_vanished


def p99(values):
    values = sorted(values)
    return values[int(len(values) * 0.99)] if values else float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--p8")
    parser.add_argument("--slow", type=int, default=500, help="clients that stop reading")
    parser.add_argument("--vanish", type=int, default=0, help="clients that vanish without a FIN (root)")
    parser.add_argument("--per-process", type=int, default=5000, help="slow clients per holder process")
    parser.add_argument("--transport", choices=["stream", "ws"], default="stream", help="of the slow clients")
    parser.add_argument("--bulk-bytes", type=int, default=100_000, help="size of each item to the slow clients")
    parser.add_argument("--max-rss-per-slow", type=float, default=None, help="fail above this many KiB")
    parser.add_argument("--fast", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--assert-latency", action="store_true")
    parser.add_argument("--latency-ratio", type=float, default=1.5)
    parser.add_argument("--hold", nargs=4, metavar=("ADDRESS", "PORT", "COUNT", "TRANSPORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hold:
        hold(args.hold[0], int(args.hold[1]), int(args.hold[2]), args.hold[3])
        return 0
    if not args.p8:
        parser.error("--p8 is required")
    args.network = None
    if args.vanish:
        if not VanishNetwork.available():
            print("SKIPPED: vanished clients need root and ip (network namespaces); running without them")
            args.vanish = 0
        else:
            try:
                args.network = VanishNetwork()
            except subprocess.CalledProcessError as error:
                print(f"SKIPPED: vanished clients: no network namespace ({error.stderr.decode().strip()})")
                args.vanish = 0

    directory = tempfile.mkdtemp(prefix="p8-slow-")
    backend = start_server(GripBackend, server_class=BackendServer)
    args.http_port = free_port()
    listen = f"{HOST}:{args.http_port}" + (f",{HOST_SIDE}:{args.http_port}" if args.vanish else "")
    routes = f"*,proto=ws {HOST}:{backend.server_port},over_http\n* {HOST}:{backend.server_port}\n"
    p8 = P8(args.p8, routes, directory, http_port=args.http_port, listen=listen)
    args.publish_port = p8.publish_port
    try:
        p8.start()
    except StartFailed:
        print(f"FAILED: p8 did not start (log in {directory})")
        return 1
    problems = []
    counter = [0]
    slow_total = args.slow + args.vanish
    try:
        results = {}
        for name, slow_count, vanish_count in [("alone", 0, 0), ("with slow clients", args.slow, args.vanish)]:
            first = counter[0] + 1
            fast, max_rss, connected, open_to_vanished = phase(args, p8, slow_count, vanish_count, counter)
            expected = list(range(first, counter[0] + 1))
            for client in fast:
                if client.numbers != expected:
                    problems.append(f"{name}: a fast client got {len(client.numbers)} of {len(expected)} items "
                                    f"(or out of order)")
                    break
            latencies = [value for client in fast for value in client.latencies]
            results[name] = (p99(latencies), max_rss, connected, open_to_vanished, len(expected))
            print(f"slow clients, {name}: {len(expected)} items to {args.fast} fast clients, p99 latency "
                  f"{p99(latencies) * 1000:.1f} ms, max RSS {max_rss} KiB"
                  + (f", {slow_count} that stopped reading ({connected} still connected at the end)" if slow_count else "")
                  + (f", {vanish_count} vanished ({open_to_vanished} of p8's sockets to them still open)"
                     if vanish_count else ""), flush=True)
    finally:
        p8.stop(timeout=30, force=False)
        backend.shutdown()
        if args.network:
            args.network.close()
    (alone, rss_alone, _, _, _) = results["alone"]
    (busy, rss_busy, connected, open_to_vanished, items) = results["with slow clients"]
    per_client = (rss_busy - rss_alone) / max(1, slow_total)
    print(f"  p99 ratio {busy / alone:.2f}; RSS growth with slow clients {rss_busy - rss_alone} KiB "
          f"({per_client:.1f} KiB per slow client)")
    if items * args.bulk_bytes > QUEUE_LIMIT + 1024 * 1024:
        if connected > args.slow // 10:
            problems.append(f"{connected} of {args.slow} clients that stopped reading were still connected after "
                            f"{items * args.bulk_bytes} bytes were published to them")
        if open_to_vanished > args.vanish // 10:
            problems.append(f"{open_to_vanished} of p8's sockets to {args.vanish} vanished clients still open after "
                            f"{items * args.bulk_bytes} bytes were published to them")
    if args.max_rss_per_slow is not None and per_client > args.max_rss_per_slow:
        problems.append(f"{per_client:.0f} KiB of p8's memory per slow client")
    if args.assert_latency and busy > alone * args.latency_ratio:
        problems.append(f"p99 latency {busy * 1000:.1f} ms with slow clients, {alone * 1000:.1f} ms without")
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems) + f"\n  (p8 log in {directory})")
        return 1
    print("passed: fast clients got every item in order; slow and vanished clients were disconnected past the limit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
