#!/usr/bin/env python3
"""django-eventstream behind P-8 (issue 18): a Django app using django-eventstream (its events stored in the app's
SQLite database) is served behind a real built p8. The library publishes `id: %I` with the `build-id` content
filter and holds streams with `id_format` meta: clients must see its composite ids (`test:<n>`), and a client that
reconnects with its Last-Event-ID (after P-8 itself restarted) gets exactly the events it missed, in order, then
live ones.

Usage: test_django_eventstream.py --p8 PATH. Needs django-eventstream (scripts/test.sh installs it).
"""

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "Support"))
from p8harness import P8, SSEParser, free_port  # noqa: E402

TIMEOUT = 15
SIG_KEY = "p8-django-eventstream-test-signing-key"


def start_django(directory, publish_port):
    """Serves the app with Django's own threaded WSGI server (what runserver uses), in this process."""
    os.environ["EVENTSAPP_DIR"] = directory
    os.environ["EVENTSAPP_GRIP_URL"] = (
        # The key signs the library's publishes (P-8's push_in_http_key) and checks P-8's Grip-Sig.
        f"http://127.0.0.1:{publish_port}?iss=pushpin&key={SIG_KEY}&verify-iss=pushpin"
    )
    os.environ["DJANGO_SETTINGS_MODULE"] = "eventsapp.settings"
    sys.path.insert(0, HERE)
    import django

    django.setup()
    from django.core.management import call_command
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    call_command("migrate", verbosity=0)

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler)
    server.daemon_threads = True
    server.set_app(get_wsgi_application())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


class EventStream:
    """An SSE client through P-8, as a browser's EventSource: GET with Accept and, to resume, Last-Event-ID."""

    def __init__(self, port, last_event_id=None):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.connection.request("GET", "/events/", headers=headers)
        self.response = self.connection.getresponse()
        if self.response.status != 200:
            raise AssertionError(f"stream answered {self.response.status}: {self.response.read()!r}")
        content_type = self.response.getheader("Content-Type", "")
        if not content_type.startswith("text/event-stream"):
            raise AssertionError(f"not an event stream: {content_type!r}")
        if self.response.getheader("Grip-Hold"):
            raise AssertionError("GRIP headers reached the client")

    def next_event(self):
        """The next event, keep-alives skipped: (type, id, data lines). Times out after TIMEOUT seconds."""
        parser = SSEParser()
        while True:
            line = self.response.readline()
            if not line:
                raise AssertionError("the stream ended")
            event = parser.feed(line)
            if event and event.get("event", "message") != "keep-alive":
                data = event["data"].split("\n") if "data" in event else []
                return event.get("event", "message"), event.get("id"), data

    def messages(self, count):
        """The next `count` message events as (id, payload)."""
        out = []
        while len(out) < count:
            kind, event_id, data = self.next_event()
            if kind == "message":
                out.append((event_id, json.loads("\n".join(data))))
        return out

    def close(self):
        self.connection.close()


def send(number):
    from django_eventstream import send_event

    text = "50% off" if number % 2 == 0 else f"event {number}"
    send_event("test", "message", {"n": number, "text": text}, async_publish=False)


def expect_messages(stream, numbers):
    got = stream.messages(len(numbers))
    expected = [
        (f"test:{n}", {"n": n, "text": "50% off" if n % 2 == 0 else f"event {n}"}) for n in numbers
    ]
    if got != expected:
        raise AssertionError(f"expected {expected}, got {got}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--p8", required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        http_port, publish_port = free_port(), free_port()
        backend_port = start_django(directory, publish_port)
        p8 = P8(args.p8, f"* 127.0.0.1:{backend_port}\n", directory, http_port, publish_port,
                proxy={"sig_iss": "pushpin", "sig_key": SIG_KEY}, handler={"push_in_http_key": SIG_KEY})
        p8.start()
        try:
            first = EventStream(http_port)
            kind, _, _ = first.next_event()
            assert kind == "stream-open", kind
            for number in (1, 2, 3):
                send(number)
            # Live events carry the library's composite ids, rendered by build-id (not `%I`), and the
            # library's `%%` escape of `%` in the data is undone.
            expect_messages(first, [1, 2, 3])
            first.close()

            # Missed while disconnected; P-8 restarts before the client comes back.
            send(4)
            send(5)
            p8.stop(timeout=TIMEOUT, force=False)
            p8.start()

            second = EventStream(http_port, last_event_id="test:3")
            kind, _, _ = second.next_event()
            assert kind == "stream-open", kind
            # The missed events (the app renders them from its database into the initial body, which goes
            # through build-id as Pushpin does), in order, then live ones; an event twice would show here.
            expect_messages(second, [4, 5])
            send(6)
            send(7)
            expect_messages(second, [6, 7])
            second.close()
        except Exception:
            with open(os.path.join(directory, "p8.log"), "rb") as log:
                sys.stderr.write(log.read().decode(errors="replace")[-4000:])
            raise
        finally:
            p8.stop(timeout=TIMEOUT, force=False)
    print("django-eventstream behind p8: composite ids, resume with Last-Event-ID after a restart: ok")


if __name__ == "__main__":
    main()
