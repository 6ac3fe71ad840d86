"""Resume when a channel's items were committed out of their prev-id order (issue 17).

Live subscribers get the prev-id chain's order; the log must hold the same order, so that a client resuming from
any id (SSE Last-Event-ID, a backend's prev-id on a stream or long-poll, a WebSocket last-id) gets exactly what a
live one received after that id, before and after a kill -9.
"""

import json
import os
import random
import subprocess
import threading
import time

import pytest
import websocket
import zmq

from harness import P8, WAIT, Backend, EventStream, chain_item, long_poll, start_backend, wait_until

BINARY = os.environ.get("P8_BIN", os.path.join(os.path.dirname(__file__), "..", "..", ".build", "debug", "p8"))
P8CTL = os.path.join(os.path.dirname(BINARY), "p8ctl")


def ids(first, last):
    return [f"i{n}" for n in range(first, last + 1)]


@pytest.fixture
def backend():
    server = start_backend()
    yield server
    server.shutdown()


def start_p8(backend, **options):
    return P8(BINARY, backend.server_address[1], **options).start()


@pytest.fixture
def p8(backend):
    process = start_p8(backend)
    yield process
    process.stop()


def live_stream(p8, channel):
    stream = EventStream(p8.http_port, f"/sse?ch={channel}")
    assert wait_until(lambda: p8.subscribers(channel) >= 1), "the stream never subscribed"
    return stream


def websocket_messages(p8, channel, last_id, until):
    ws = websocket.create_connection(f"ws://127.0.0.1:{p8.http_port}/ws?ch={channel}&last={last_id}", timeout=WAIT)
    received = []
    try:
        while until not in received:
            received.append(ws.recv())
    finally:
        ws.close()
    return received


def test_batches_sent_out_of_order_resume_from_every_position(p8):
    live = live_stream(p8, "c")
    p8.publish([chain_item("c", 1)])
    for first, last in [(32, 41), (12, 21), (22, 31), (2, 11)]:
        p8.publish([chain_item("c", n) for n in range(first, last + 1)])
    assert live.wait_for("i41") == ids(1, 41)
    live.close()

    for position in (1, 11, 26, 31, 40):
        sse = EventStream(p8.http_port, "/sse?ch=c", last_event_id=f"i{position}")
        assert sse.wait_for("i41") == ids(position + 1, 41), f"SSE from i{position}"
        sse.close()
    stream = EventStream(p8.http_port, "/stream?mode=stream&ch=c&prev=i26")
    assert stream.wait_for("i41") == ids(27, 41), "a stream whose backend gives prev-id=i26"
    stream.close()
    for position in (11, 26, 40):
        status, _, body = long_poll(p8.http_port, "c", f"i{position}")
        assert (status, body) == (200, f"i{position + 1}\n"), f"long-poll from i{position}"
    assert websocket_messages(p8, "c", "i11", until="i41") == ids(12, 41), "WebSocket from last-id i11"
    database = os.path.join(p8.directory, "p8.sqlite")
    history = subprocess.run(
        [P8CTL, "history", "c", "--after", "i11", "--json", "--db", database], capture_output=True, check=True
    )
    assert [item["id"] for item in json.loads(history.stdout)["items"]] == ids(12, 41), "p8ctl history --after"
    replay = subprocess.run(
        [P8CTL, "replay", "c", "--after", "i26", "--json", "--db", database], capture_output=True, check=True
    )
    assert [json.loads(line)["id"] for line in replay.stdout.splitlines()] == ids(27, 41), "p8ctl replay --after"


def test_concurrent_publishers_over_http_and_zeromq_resume_in_chain_order(backend):
    p8 = start_p8(backend, zmq=True)
    try:
        live = live_stream(p8, "z")
        p8.publish([chain_item("z", 1)])
        # Four workers take the chain's batches in order and send them at once, each after a random pause: their
        # requests overtake each other, as a publisher's worker pool's do (at most four batches apart, well inside
        # the reordering buffer's 100 items).
        queue = [(first, first + 9) for first in range(2, 302, 10)]
        lock = threading.Lock()
        context = zmq.Context()
        errors = []

        def publisher(seed):
            rng = random.Random(seed)
            push = context.socket(zmq.PUSH)
            push.connect(p8.zmq_push)
            try:
                while True:
                    with lock:
                        if not queue:
                            return
                        first, last = queue.pop(0)
                    time.sleep(rng.uniform(0, 0.02))
                    items = [chain_item("z", n) for n in range(first, last + 1)]
                    if rng.random() < 0.5:
                        p8.publish(items)
                    else:
                        for item in items:
                            push.send(b"J" + json.dumps(item).encode())
            except Exception as error:  # reported by the test below
                errors.append(error)
            finally:
                push.close(linger=5000)

        threads = [threading.Thread(target=publisher, args=(seed,)) for seed in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        context.term()
        assert not errors
        assert live.wait_for("i301") == ids(1, 301)
        live.close()
        for position in (1, 45, 150, 299):
            sse = EventStream(p8.http_port, "/sse?ch=z", last_event_id=f"i{position}")
            assert sse.wait_for("i301") == ids(position + 1, 301), f"SSE from i{position}"
            sse.close()
        counters = p8.stats()["counters"]
        assert counters["items_reordered"] > 0, "no request overtook another: the run tested nothing"
        assert counters["sequencer_timeouts"] == 0
    finally:
        p8.stop()


def test_items_waiting_for_their_predecessor_survive_kill_9(backend):
    p8 = start_p8(backend)
    try:
        p8.publish([chain_item("k", 1)])
        p8.publish([chain_item("k", n) for n in range(3, 6)])  # acknowledged: they wait for i2
        p8.kill()
        p8.start()
        live = EventStream(p8.http_port, "/sse?ch=k", last_event_id="i1")
        assert wait_until(lambda: p8.subscribers("k") >= 1)
        p8.publish([chain_item("k", 2)])
        assert live.wait_for("i5") == ids(2, 5)
        live.close()
        resumed = EventStream(p8.http_port, "/sse?ch=k", last_event_id="i1")
        assert resumed.wait_for("i5") == ids(2, 5)
        resumed.close()
        assert long_poll(p8.http_port, "k", "i3")[2] == "i4\n"
    finally:
        p8.stop()


def test_when_message_wait_runs_out_live_and_resumed_clients_see_the_same(backend):
    p8 = start_p8(backend, message_wait=1000)
    try:
        live = live_stream(p8, "w")
        p8.publish([chain_item("w", 1)])
        p8.publish([chain_item("w", 3)])  # i2 is missing: i3 enters the log after message_wait
        assert live.wait_for("i3") == ["i1", "i3"]
        resumed = EventStream(p8.http_port, "/sse?ch=w", last_event_id="i1")
        assert resumed.wait_for("i3") == ["i3"]
        # The missing item arrives late: it waits in turn (its prev-id is not the chain's position, i3), then
        # enters the log after i3; live and resumed clients alike get it there.
        p8.publish([chain_item("w", 2)])
        assert live.wait_for("i2") == ["i1", "i3", "i2"]
        assert resumed.wait_for("i2") == ["i3", "i2"]
        live.close()
        resumed.close()
        late = EventStream(p8.http_port, "/sse?ch=w", last_event_id="i1")
        assert late.wait_for("i2") == ["i3", "i2"]
        late.close()
        # A long-poll resuming from i1 is not told that nothing is missing: i3's prev-id (i2) does not follow its
        # position, so the backend is asked again with Grip-Last before i3 is given.
        Backend.requests.clear()
        status, _, body = long_poll(p8.http_port, "w", "i1")
        assert (status, body) == (200, "i3\n")
        assert any(headers.get("Grip-Last") == "w; last-id=i1" for _, headers in Backend.requests)
        assert p8.stats()["counters"]["sequencer_timeouts"] == 2
    finally:
        p8.stop()
