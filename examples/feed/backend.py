"""The example's backend: a plain Python HTTP server that speaks GRIP through the gripcontrol library.

- GET /          the page (index.html)
- GET /events    an SSE stream held by P-8 on the channel "feed"; a reconnecting EventSource sends
                 Last-Event-ID, which becomes the channel's prev-id, so P-8 replays what the client missed
- POST /ws       WebSocket-over-HTTP: the client's socket is subscribed to "feed" when it opens
"""

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from gripcontrol import (
    Channel,
    WebSocketEvent,
    create_hold_stream,
    decode_websocket_events,
    encode_websocket_events,
    websocket_control_message,
)
from gripcontrol.response import Response

CHANNEL = "feed"
PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "index.html")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/":
            with open(PAGE, "rb") as page:
                self.send(200, "text/html; charset=utf-8", page.read())
        elif self.path == "/events":
            last_id = self.headers.get("Last-Event-ID") or None
            # Hold the request as a stream on the channel; with a prev-id, P-8 first sends the items after it.
            instruct = create_hold_stream(
                [Channel(CHANNEL, prev_id=last_id)],
                Response(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"},
                         body=":ok\n\n"),
            )
            self.send(200, "application/grip-instruct", instruct.encode())
        else:
            self.send(404, "text/plain", b"not found\n")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path != "/ws":
            self.send(404, "text/plain", b"not found\n")
            return
        replies = []
        for event in decode_websocket_events(body):
            if event.type == "OPEN":
                replies.append(WebSocketEvent("OPEN"))
                control = websocket_control_message("subscribe", {"channel": CHANNEL})
                replies.append(WebSocketEvent("TEXT", "c:" + control))
            elif event.type == "CLOSE":
                replies.append(WebSocketEvent("CLOSE", event.content))
        self.send(200, "application/websocket-events", encode_websocket_events(replies),
                  extra={"Sec-WebSocket-Extensions": "grip"})

    def send(self, code, content_type, body, extra=None):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


if __name__ == "__main__":
    port = int(os.environ.get("BACKEND_PORT", "8080"))
    print(f"backend on 127.0.0.1:{port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
