"""What every Python test, soak, chaos run and benchmark of P-8 does the same way: a real built p8 in a directory of
its own (config, routes, log, SQLite database) on ephemeral loopback ports, started and waited for ("p8 ready"),
stopped by its PID; a quiet threaded test backend; publishing and /stats over the HTTP API; an SSE line parser; the
pieces of asyncio clients (a response head, a WebSocket handshake and frames, a publish); the resident memory and
open descriptors of a process, from /proc. Standard library only.

A script imports it with two lines, relative to its own file:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Support"))
    from p8harness import P8, free_port  # noqa: E402
"""

import asyncio
import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"
WAIT = 15.0  # the longest a test's wait may take; each returns as soon as its condition holds


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_until(condition, timeout=WAIT, interval=0.01):
    """Calls `condition` until it returns a true value or `timeout` seconds passed; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# MARK: - Test backends


class QuietServer(ThreadingHTTPServer):
    """A threaded HTTP server whose broken connections (p8 killed, clients gone) are expected, not worth a
    traceback. Its listen backlog takes a burst of new connections (a restarted p8 opens its backend connections
    all at once; with socketserver's default of 5, the rest wait for a SYN retransmission, a second)."""

    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        pass


def start_server(handler, port=0, server_class=QuietServer):
    """Serves `handler` on HOST:`port` (0: an ephemeral one) on a thread of its own; returns the server."""
    server = server_class((HOST, port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class ReusePortServer(QuietServer):
    """A `QuietServer` that shares its port with others of its kind (`SO_REUSEPORT`): the kernel spreads new
    connections over them."""

    allow_reuse_port = True


class BackendProcesses:
    """`GripBackend` served by `count` processes of their own on one port. A soak with thousands of asyncio clients
    in one process would otherwise share the interpreter lock with its backend's threads: the backend then answers
    late (and the proxy 502s) because the clients run, not because of the proxy."""

    def __init__(self, count=2):
        self.server_port = free_port()
        self.processes = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--grip-backend",
                                            str(self.server_port)]) for _ in range(count)]
        if not wait_until(self.listening, timeout=WAIT):
            self.shutdown()
            raise RuntimeError("the backend processes did not start")

    def listening(self):
        try:
            socket.create_connection((HOST, self.server_port), timeout=1).close()
            return True
        except OSError:
            return False

    def shutdown(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=10)


class GripBackend(BaseHTTPRequestHandler):
    """Holds /hold (a long-poll, with `prev` as the channel's prev-id) and /stream (an HTTP stream) on the channel
    in the query (`ch`), speaks WebSocket-over-HTTP (subscribing the socket to the channel in the query) and
    answers everything else with 200 `plain-ok`. Reads chunked request bodies."""

    protocol_version = "HTTP/1.1"
    timeout = 5

    def log_message(self, *args):
        pass

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def answer(self, body, headers=()):
        self.send_response(200)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        body = self.read_body()
        path, _, query = self.path.partition("?")
        fields = urllib.parse.parse_qs(query)
        channel = fields.get("ch", ["fz-default"])[0]
        if path == "/hold":
            # With prev-id, a hold that subscribes after the publish still gets the item, from the log.
            prev = fields.get("prev", [""])[0]
            channel += f"; prev-id={prev}" if prev else ""
            self.answer(b"timeout\n", [("Grip-Hold", "response"), ("Grip-Channel", channel), ("Grip-Timeout", "300")])
        elif path == "/stream":
            self.answer(b"open\n", [("Content-Type", "text/plain"), ("Grip-Hold", "stream"), ("Grip-Channel", channel)])
        elif self.headers.get("Content-Type") == "application/websocket-events":
            events = b""
            if body.startswith(b"OPEN"):
                control = b'c:{"type":"subscribe","channel":"%s"}' % channel.encode()
                events = b"OPEN\r\nTEXT %x\r\n%s\r\n" % (len(control), control)
            elif b"CLOSE" in body:
                events = b"CLOSE\r\n"
            self.answer(events, [("Content-Type", "application/websocket-events"),
                                 ("Sec-WebSocket-Extensions", "grip")])
        else:
            self.answer(b"plain-ok\n", [("Content-Type", "text/plain")])

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = handle_any


# MARK: - p8


def write_config(directory, routes, http_port, publish_port, listen=None, database=None, proxy=None, handler=None,
                 store=None, runner=None):
    """Writes `routes` (the routes file's text) and a p8.conf into `directory`; returns the config's path.

    p8 listens on HOST:`http_port` (or on `listen`, a list of addresses, when given) and takes publishes on
    HOST:`publish_port`, with ZeroMQ off; its SQLite database is `database` (default p8.sqlite in `directory`).
    `proxy`, `handler`, `store` and `runner` add (or replace) keys of those sections."""
    sections = {
        "global": {"rundir": f"{directory}/run"},
        "runner": {"http_port": listen or f"{HOST}:{http_port}", **(runner or {})},
        "proxy": {"routesfile": "routes", **(proxy or {})},
        "handler": {"push_in_http_addr": HOST, "push_in_http_port": publish_port, "push_in_spec": "",
                    "push_in_sub_specs": "", "command_spec": "", "stats_spec": "", **(handler or {})},
        "store": {"database_file": database or f"{directory}/p8.sqlite", **(store or {})},
    }
    with open(os.path.join(directory, "routes"), "w") as f:
        f.write(routes)
    config = os.path.join(directory, "p8.conf")
    with open(config, "w") as f:
        for name, values in sections.items():
            f.write(f"[{name}]\n" + "".join(f"{key}={value}\n" for key, value in values.items()))
    return config


class StartFailed(AssertionError):
    """p8 ended (or printed something else) before its ready line: its exit status and its log."""

    def __init__(self, status, line, log, log_path):
        super().__init__(f"p8 did not start (exit status {status}, first line {line!r}): {log[-300:]} "
                         f"(log in {log_path})")
        self.status = status
        self.log = log


def launch(command, log_path):
    """Starts p8 (`command`, its stderr appended to `log_path`) and waits for its "p8 ready" line on stdout;
    returns the process. Raises StartFailed when another line (or none) comes first."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
    line = process.stdout.readline().decode()
    if line.startswith("p8 ready"):
        return process
    try:
        status = process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        status = process.wait()
    with open(log_path, errors="replace") as f:
        raise StartFailed(status, line, f.read(), log_path)


class P8:
    """A p8 with its own directory (a new temporary one unless given), config, routes, log and database, and its
    ports (ephemeral unless given). `start()` starts it, again on the same database and ports after a `kill()`
    (kill -9) or a `stop()`; `args` go on its command line. The config's keys: see `write_config`."""

    def __init__(self, binary, routes, directory=None, http_port=None, publish_port=None, listen=None, database=None,
                 proxy=None, handler=None, store=None, runner=None, args=(), prefix="p8-"):
        self.binary = binary
        self.directory = directory or tempfile.mkdtemp(prefix=prefix)
        self.http_port = http_port or free_port()
        self.publish_port = publish_port or free_port()
        self.args = list(args)
        self.config = write_config(self.directory, routes, self.http_port, self.publish_port, listen, database,
                                   proxy, handler, store, runner)
        self.log_path = os.path.join(self.directory, "p8.log")
        self.process = None

    def start(self):
        self.process = launch([self.binary, *self.args, "--config", self.config], self.log_path)
        return self

    @property
    def pid(self):
        """The process started: the runner, or the server itself under `--no-supervisor`."""
        return self.process.pid

    @property
    def server_pid(self):
        """The process that serves (and holds the connections and memory): the runner's child started with
        `--server`, or the process itself under `--no-supervisor`."""
        return server_pid_of(self.pid)

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout=10, force=True):
        """SIGTERM, then waits `timeout` seconds for the process to end: then kill -9 (`force`) or raises
        subprocess.TimeoutExpired."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                if not force:
                    raise
                self.kill()

    def publish(self, items, timeout=15):
        """Publishes `items` over the HTTP API; asserts a 200 and returns the answer's body."""
        status, body = publish(self.publish_port, items, timeout)
        assert status == 200, body
        return body

    def stats(self, timeout=15):
        return stats(self.publish_port, timeout)

    def subscribers(self, channel, timeout=15):
        return self.stats(timeout).get("channels", {}).get(channel, {}).get("subscribers", 0)

    def sample(self):
        """(resident memory in KiB, open descriptors) of the server process."""
        pid = self.server_pid
        return rss_kib(pid), fd_count(pid)


# MARK: - The HTTP API


def publish(port, items, timeout=15):
    """POSTs `items` to /publish/ on HOST:`port`; returns (status, body). Raises OSError when the connection
    fails."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("POST", "/publish/", json.dumps({"items": items}), {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def stats(port, timeout=15):
    """The JSON of GET /stats on HOST:`port`."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", "/stats")
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


# MARK: - Clients


class SSEParser:
    """Server-sent events, a line at a time: `feed(line)` (bytes) returns the event that a blank line ends (a dict
    of its fields, data lines joined with newlines), or None. Comments are skipped."""

    def __init__(self):
        self.event = {}

    def feed(self, line):
        line = line.decode().rstrip("\r\n")
        if line == "":
            event, self.event = self.event, {}
            return event or None
        if not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data" and "data" in self.event:
                value = self.event["data"] + "\n" + value
            self.event[name] = value
        return None


# MARK: - /proc


# MARK: - asyncio clients


async def read_head(reader):
    """Reads an HTTP response head from an asyncio stream: (status, headers with lower-case names)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    headers = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


async def publish_async(port, items):
    """POSTs `items` to /publish/ on HOST:`port` on a connection of its own; returns the status."""
    reader, writer = await asyncio.open_connection(HOST, port)
    body = json.dumps({"items": items}).encode()
    writer.write(b"POST /publish/ HTTP/1.1\r\nHost: p8-test\r\nContent-Type: application/json\r\n"
                 b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    try:
        status, _ = await read_head(reader)
    finally:
        writer.close()
    return status


def websocket_request(path):
    """A WebSocket opening handshake for `path`, as bytes."""
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: p8-test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


async def read_websocket_frame(reader):
    """Reads one server frame (unmasked): (opcode, payload)."""
    head = await reader.readexactly(2)
    size = head[1] & 0x7F
    if size == 126:
        size = int.from_bytes(await reader.readexactly(2), "big")
    elif size == 127:
        size = int.from_bytes(await reader.readexactly(8), "big")
    return head[0] & 0x0F, await reader.readexactly(size)


def masked_frame(opcode, payload):
    """A client frame (masked, payload under 126 bytes)."""
    mask = os.urandom(4)
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def server_pid_of(pid):
    """`pid`'s child that runs `p8 ... --server` (a runner's server), else `pid` (a server run alone)."""
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            for child in f.read().split():
                try:
                    with open(f"/proc/{child}/cmdline", "rb") as cmdline:
                        if b"--server" in cmdline.read().split(b"\0"):
                            return int(child)
                except FileNotFoundError:
                    continue
    return pid


def rss_kib(pid):
    """The resident memory of process `pid`, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def fd_count(pid):
    """How many descriptors process `pid` has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


if __name__ == "__main__":
    # One of `BackendProcesses`: `p8harness.py --grip-backend PORT` serves `GripBackend` until terminated.
    if len(sys.argv) == 3 and sys.argv[1] == "--grip-backend":
        ReusePortServer((HOST, int(sys.argv[2])), GripBackend).serve_forever()
