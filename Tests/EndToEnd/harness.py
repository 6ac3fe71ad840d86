"""End-to-end harness: a real built p8 on ephemeral ports, a real GRIP backend, and real clients (SSE, HTTP
streams, long-polls, WebSockets), with publishes over the HTTP API and ZeroMQ.

The backend tells P-8 where each client is and stores nothing: every resume comes from P-8's own log.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

WAIT = 15.0  # the longest any wait may take; each returns as soon as its condition holds


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout=WAIT, interval=0.01):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class Backend(BaseHTTPRequestHandler):
    """GRIP instructions from the query: `ch` (channel), `prev` (its prev-id), `mode` (sse, stream, lp).

    POST (WebSocket-over-HTTP): answers OPEN with the grip extension and a subscribe control message for `ch`
    with `last-id` = `last` when given; other events get an empty answer.
    """

    protocol_version = "HTTP/1.1"
    requests = []  # (path, headers) of every request, in order

    def log_message(self, *args):
        pass

    def query(self):
        return {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}

    def do_GET(self):
        Backend.requests.append((self.path, dict(self.headers)))
        q = self.query()
        channel = q["ch"] + (f"; prev-id={q['prev']}" if q.get("prev") else "")
        mode = q.get("mode", "sse")
        if mode == "lp":
            body = b"timeout\n"
            headers = [("Content-Type", "text/plain"), ("Grip-Hold", "response"), ("Grip-Timeout", "20")]
        elif mode == "stream":
            body = b"open\n"
            headers = [("Content-Type", "text/plain"), ("Grip-Hold", "stream")]
        else:
            body = b":open\n\n"
            headers = [("Content-Type", "text/event-stream"), ("Grip-Hold", "stream")]
        self.send_response(200)
        for name, value in headers + [("Grip-Channel", channel), ("Content-Length", str(len(body)))]:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        events = self.rfile.read(length)
        q = self.query()
        body = b""
        headers = [("Content-Type", "application/websocket-events")]
        if events.startswith(b"OPEN"):
            control = {"type": "subscribe", "channel": q["ch"]}
            if q.get("last"):
                control["last-id"] = q["last"]
            message = b"c:" + json.dumps(control).encode()
            body = b"OPEN\r\n" + b"TEXT %x\r\n" % len(message) + message + b"\r\n"
            headers.append(("Sec-WebSocket-Extensions", "grip"))
        self.send_response(200)
        for name, value in headers + [("Content-Length", str(len(body)))]:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


def start_backend():
    server = QuietServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class P8:
    """A p8 process with its own directory, database and ports; `kill()` is kill -9, `start()` starts it again
    on the same database and ports."""

    def __init__(self, binary, backend_port, message_wait=30000, zmq=False):
        self.binary = binary
        self.directory = tempfile.mkdtemp(prefix="p8-e2e-")
        self.http_port = free_port()
        self.publish_port = free_port()
        self.zmq_push = f"tcp://127.0.0.1:{free_port()}" if zmq else ""
        self.process = None
        with open(os.path.join(self.directory, "routes"), "w") as f:
            f.write(f"*,path_beg=/ws 127.0.0.1:{backend_port},over_http\n")
            f.write(f"*,resume_last_event_id 127.0.0.1:{backend_port}\n")
        with open(os.path.join(self.directory, "p8.conf"), "w") as f:
            f.write(
                f"""[global]
rundir={self.directory}/run
[runner]
http_port=127.0.0.1:{self.http_port}
[proxy]
routesfile=routes
[handler]
push_in_http_addr=127.0.0.1
push_in_http_port={self.publish_port}
push_in_spec={self.zmq_push}
push_in_sub_specs=
command_spec=
stats_spec=
message_wait={message_wait}
[store]
database_file={self.directory}/p8.sqlite
"""
            )
        self.log = open(os.path.join(self.directory, "p8.log"), "ab")

    def start(self):
        self.process = subprocess.Popen(
            [self.binary, "--config", os.path.join(self.directory, "p8.conf")],
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        line = self.process.stdout.readline().decode()
        if not line.startswith("p8 ready"):
            raise RuntimeError(f"p8 did not start: {line!r} (log in {self.directory}/p8.log)")
        return self

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def publish(self, items):
        conn = http.client.HTTPConnection("127.0.0.1", self.publish_port, timeout=WAIT)
        conn.request("POST", "/publish/", json.dumps({"items": items}), {"Content-Type": "application/json"})
        response = conn.getresponse()
        body = response.read()
        conn.close()
        assert response.status == 200, body
        return body

    def stats(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.publish_port, timeout=WAIT)
        conn.request("GET", "/stats")
        stats = json.loads(conn.getresponse().read())
        conn.close()
        return stats

    def subscribers(self, channel):
        return self.stats()["channels"].get(channel, {}).get("subscribers", 0)


def chain_item(channel, n, first=1):
    """Item `i<n>` of a chain: `prev-id` is the item before (none for the first), in every format."""
    item = {
        "channel": channel,
        "id": f"i{n}",
        "formats": {
            "http-response": {"body": f"i{n}\n"},
            "http-stream": {"content": f"id: i{n}\ndata: {n}\n\n"},
            "ws-message": {"content": f"i{n}"},
        },
    }
    if n > first:
        item["prev-id"] = f"i{n - 1}"
    return item


class EventStream:
    """An SSE (or plain stream) client reading on its own thread: `ids` are the SSE ids received, in order."""

    def __init__(self, port, path, last_event_id=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.conn.request("GET", path, headers=headers)
        self.response = self.conn.getresponse()
        self.ids = []
        self.events = []
        self.closed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        event = {}
        try:
            while True:
                line = self.response.fp.readline()
                if not line:
                    break
                line = line.decode().rstrip("\n")
                if line == "":
                    if event:
                        self.events.append(event)
                        if "id" in event:
                            self.ids.append(event["id"])
                    event = {}
                elif not line.startswith(":"):
                    key, _, value = line.partition(":")
                    event[key] = value.lstrip(" ")
        except OSError:
            pass
        self.closed = True

    def wait_for(self, last_id, timeout=WAIT):
        """Waits until `last_id` arrived (or the stream closed, or the time is up); returns the ids so far."""
        wait_until(lambda: last_id in self.ids or self.closed, timeout)
        return list(self.ids)

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


def long_poll(port, channel, prev):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", f"/lp?mode=lp&ch={channel}&prev={prev}")
    response = conn.getresponse()
    body = response.read().decode()
    headers = dict(response.getheaders())
    conn.close()
    return response.status, headers, body
