"""End-to-end harness: a real built p8 on ephemeral ports, a real GRIP backend, and real clients (SSE, HTTP
streams, long-polls, WebSockets), with publishes over the HTTP API and ZeroMQ.

The backend tells P-8 where each client is and stores nothing: every resume comes from P-8's own log.
"""

import http.client
import json
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Support"))
import p8harness  # noqa: E402
from p8harness import WAIT, SSEParser, free_port, start_server, wait_until  # noqa: E402, F401


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


def start_backend():
    return start_server(Backend)


class P8(p8harness.P8):
    """A p8 process with its own directory, database and ports; `kill()` is kill -9, `start()` starts it again
    on the same database and ports."""

    def __init__(self, binary, backend_port, message_wait=30000, zmq=False, proxy=None, store=None):
        self.zmq_push = f"tcp://127.0.0.1:{free_port()}" if zmq else ""
        routes = (f"*,path_beg=/ws 127.0.0.1:{backend_port},over_http\n"
                  f"*,resume_last_event_id 127.0.0.1:{backend_port}\n")
        super().__init__(binary, routes, prefix="p8-e2e-", proxy=proxy, store=store,
                         handler={"push_in_spec": self.zmq_push, "message_wait": message_wait})


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
        parser = SSEParser()
        try:
            while line := self.response.fp.readline():
                event = parser.feed(line)
                if event:
                    self.events.append(event)
                    if "id" in event:
                        self.ids.append(event["id"])
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
