#!/usr/bin/env python3
"""Fuzzing the live server: a seeded mutator sends mutated HTTP requests (chunked bodies among them),
WebSocket handshakes and frames, and publish requests at a running p8 (loopback, ephemeral ports, a real
backend started here), in batches. After each batch it checks that p8 still runs, still proxies, still
publishes, and that three held clients (a long-poll, an HTTP stream and a WebSocket, all on a channel no
fuzzed input names) received exactly that batch's published item and nothing else.

Standard library only. Bounded: --batches N of --per-batch M inputs; the same --seed gives the same inputs.
Exits 1 naming the seed, batch and input kind on the first failed check.

Usage: live_fuzz.py --p8 PATH [--seed 1] [--batches 20] [--per-batch 40]
"""

import argparse
import base64
import collections
import json
import os
import random
import select
import socket
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Support"))
from p8harness import P8, GripBackend, publish, start_server  # noqa: E402

SENTINEL = "sentinel-" + os.urandom(8).hex()


def start_p8(binary, directory, backend_port):
    routes = f"*,proto=ws 127.0.0.1:{backend_port},over_http\n* 127.0.0.1:{backend_port}\n"
    # --no-supervisor: a crash must end the process the fuzzer watches, not be restarted by the runner.
    return P8(binary, routes, directory, args=["--no-supervisor"]).start()


def exchange(port, data, wait=0.25):
    """Sends raw bytes, returns what comes back within `wait` seconds (or until the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        try:
            s.sendall(data)
        except OSError:
            pass  # the server may refuse mid-request (413, 400) and close: its answer is still readable
        s.settimeout(wait)
        received = b""
        try:
            while len(received) < 1_000_000:
                chunk = s.recv(65536)
                if not chunk:
                    break
                received += chunk
        except OSError:
            pass
        return received


class Mutator:
    """Byte- and structure-level mutations, all drawn from one seeded generator."""

    def __init__(self, rng):
        self.rng = rng

    def junk(self):
        r = self.rng
        return r.choice([b"\r\n", b"\n", b"\r", b"\x00", b":", b";", b" ", b"\t", b"0", b"-1", b"ffffffff",
                         b"99999999999999999999", b"\xff\xfe", b"%00", b"Transfer-Encoding: chunked\r\n",
                         b"Content-Length: 5\r\n", b"\r\n\r\n",
                         bytes(r.randrange(256) for _ in range(r.randrange(1, 9)))])

    def bytes(self, data, rounds=None):
        r = self.rng
        data = bytearray(data)
        for _ in range(rounds or r.randint(1, 4)):
            op = r.randrange(6)
            at = r.randrange(len(data) + 1)
            if op == 0 and data:
                data[min(at, len(data) - 1)] ^= 1 << r.randrange(8)
            elif op == 1:
                data[at:at] = self.junk()
            elif op == 2 and data:
                del data[at:at + r.randint(1, 16)]
            elif op == 3 and data:
                end = min(len(data), at + r.randint(1, 32))
                data[at:at] = data[at:end] * r.randint(1, 8)
            elif op == 4:
                data = data.replace(b"\r\n", b"\n", r.randint(1, 3))
            else:
                data = data[:at]
        return bytes(data)

    def json_value(self, depth=0):
        r = self.rng
        choices = [
            lambda: None, lambda: True, lambda: r.randint(-2**63, 2**63), lambda: r.random() * 10 ** r.randint(-5, 300),
            lambda: "", lambda: "\u0000\r\n\ud7ff\U0001F600" * r.randint(0, 3),
            lambda: "A" * r.choice([1, 125, 4096, 70000]),
            lambda: [self.json_value(depth + 1) for _ in range(r.randint(0, 3))],
            lambda: {r.choice(["content", "body", "code", "action", "headers", "id", "type", "x"]):
                     self.json_value(depth + 1) for _ in range(r.randint(0, 3))},
        ]
        return r.choice(choices if depth < 3 else choices[:7])()


def http_template(rng):
    path = rng.choice(["/plain", "/plain/a?b=c", "/%2e%2e/x", "/" + "a" * 5000, "*", "http://other/plain"])
    body = rng.randbytes(rng.randint(0, 64)).hex().encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:7], body[7:20], body[20:]) if part)
    return rng.choice([
        b"GET %s HTTP/1.1\r\nHost: fuzz\r\nAccept: */*\r\n\r\n" % path.encode(),
        b"POST %s HTTP/1.1\r\nHost: fuzz\r\nContent-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body),
        b"POST /plain HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked\r\n\r\n%s0\r\n\r\n" % chunks,
        b"POST /plain HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
        b"5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\n",
        b"GET /plain HTTP/1.0\r\n\r\nGET /plain HTTP/1.1\r\nHost: fuzz\r\n\r\n",
        b"GET /plain HTTP/1.1\r\nHost: fuzz\r\nX-Folded: a\r\n b\r\nGrip-Sig: x\r\n"
        b"Connection: keep-alive, Host\r\n\r\n",
        b"GET /hold?ch=fz-hold HTTP/1.1\r\nHost: fuzz\r\n\r\n",
        b"GET /stream?ch=fz-stream HTTP/1.1\r\nHost: fuzz\r\n\r\n",
    ])


def publish_template(rng, mutator):
    item = {"channel": rng.choice(["fz-a", "fz-b", "fz-hold", "fz-stream", "fz-ws"]), "id": f"f{rng.randrange(10**6)}",
            "formats": {"http-response": {"body": "x\n", "headers": [["X-A", "b"]], "code": 200},
                        "http-stream": {"content": "y\n"}, "ws-message": {"content": "z"}}}
    if rng.random() < 0.3:
        item["prev-id"] = f"f{rng.randrange(10**6)}"
    if rng.random() < 0.5:
        # A structural change: a field of the item or of one format replaced by any JSON value.
        target = item if rng.random() < 0.3 else item["formats"][rng.choice(list(item["formats"]))]
        key = rng.choice(list(target) + ["action", "content-bin", "body-patch", "type", "reason"])
        target[key] = mutator.json_value()
    body = json.dumps({"items": [item] * rng.randint(1, 3)}).encode()
    if rng.random() < 0.6:
        body = mutator.bytes(body)
    return body


def ws_frame(rng, opcode, payload, fin=True, mask=True, rsv=0, length=None):
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    n = len(payload) if length is None else length
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([bit | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = rng.randbytes(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def ws_handshake(rng, channel):
    key = base64.b64encode(rng.randbytes(16))
    return (b"GET /ws?ch=%s HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (channel.encode(), key))


def ws_fuzz_frames(rng, mutator):
    frames = []
    for _ in range(rng.randint(1, 5)):
        opcode = rng.choice([0, 1, 2, 8, 9, 10, 3, 7, 11, 15])
        payload = rng.choice([b"hello", b"\xff\xfe\xfd", "é".encode()[:1], b"", rng.randbytes(rng.randint(0, 300)),
                              struct.pack(">H", rng.choice([1000, 1005, 1006, 999, 5000, 65535])) + b"bye"])
        frame = ws_frame(rng, opcode, payload, fin=rng.random() < 0.8, mask=rng.random() < 0.9,
                         rsv=rng.choice([0, 0, 0, 1, 4, 7]),
                         length=None if rng.random() < 0.8 else rng.choice([0, 126, 70000, 2**63 - 1]))
        frames.append(mutator.bytes(frame, 1) if rng.random() < 0.3 else frame)
    return b"".join(frames)


class WebSocketClient:
    """The held WebSocket: reads unmasked server frames."""

    def __init__(self, port, channel):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.sock.sendall(ws_handshake(random.Random(), channel))
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.recv()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"WebSocket handshake failed: {head!r}")

    def recv(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise RuntimeError("the held WebSocket was closed")
        return chunk

    def need(self, count):
        while len(self.buffer) < count:
            self.buffer += self.recv()

    def frame(self):
        self.need(2)
        opcode, n = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F
        offset = 2
        if n >= 126:
            size = 2 if n == 126 else 8
            self.need(2 + size)
            n = int.from_bytes(self.buffer[2:2 + size], "big")
            offset += size
        self.need(offset + n)
        payload, self.buffer = self.buffer[offset:offset + n], self.buffer[offset + n:]
        return opcode, payload


class Run:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.mutator = Mutator(self.rng)
        self.statuses = collections.Counter()
        self.directory = tempfile.mkdtemp(prefix="p8-livefuzz-")
        self.backend = start_server(GripBackend)
        self.p8 = start_p8(args.p8, self.directory, self.backend.server_port)
        self.http_port, self.publish_port = self.p8.http_port, self.p8.publish_port

    def fail(self, batch, kind, message, data=b""):
        raise AssertionError(f"seed {self.args.seed}, batch {batch}, {kind}: {message}"
                             + (f"\n  input: {data[:300]!r}" if data else ""))

    def wait_for_subscribers(self, count, batch):
        deadline = time.monotonic() + 15
        while self.p8.subscribers(SENTINEL, timeout=5) < count:
            if time.monotonic() > deadline:
                self.fail(batch, "check", f"fewer than {count} held clients on the sentinel channel")
            time.sleep(0.02)

    def fuzz_input(self, batch):
        rng, mutator = self.rng, self.mutator
        kind = rng.choice(["http", "http", "publish", "publish", "ws"])
        if kind == "http":
            data = mutator.bytes(http_template(rng)) if rng.random() < 0.7 else http_template(rng)
            port = self.http_port
        elif kind == "publish":
            body = publish_template(rng, mutator)
            length = len(body) if rng.random() < 0.9 else rng.randint(0, len(body) * 2)
            data = (b"POST /publish/ HTTP/1.1\r\nHost: fuzz\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (length, body))
            port = self.publish_port
        else:
            handshake = ws_handshake(rng, "fz-ws")
            data = (mutator.bytes(handshake) if rng.random() < 0.2 else handshake) + ws_fuzz_frames(rng, mutator)
            port = self.http_port
        response = exchange(port, data)
        status = response[:12]
        if response and not (status.startswith(b"HTTP/1.1 ") or status.startswith(b"HTTP/1.0 ")):
            self.fail(batch, kind, f"an answer that is not HTTP: {response[:80]!r}", data)
        code = int(status[9:12]) if len(status) >= 12 and status[9:12].isdigit() else None
        self.statuses[(kind, code)] += 1
        if code is not None and code >= 500 and code not in (502, 504):
            self.fail(batch, kind, f"answered {code}", data)
        if kind == "publish" and code == 200:
            try:
                json.loads(body[:length])
            except ValueError:
                self.fail(batch, kind, "published a body that is not JSON", data)
        if not self.p8.alive():
            self.fail(batch, kind, f"p8 exited with {self.p8.process.returncode}", data)

    def batch(self, number, stream, websocket):
        longpoll = socket.create_connection(("127.0.0.1", self.http_port), timeout=15)
        prev = f"&prev=s{number - 1}" if number else ""
        longpoll.sendall(b"GET /hold?ch=%s%s HTTP/1.1\r\nHost: fuzz\r\n\r\n" % (SENTINEL.encode(), prev.encode()))
        self.wait_for_subscribers(3, number)
        for _ in range(self.args.per_batch):
            self.fuzz_input(number)
        # The held clients got nothing during the batch: the long-poll is still waiting.
        if select.select([longpoll], [], [], 0)[0]:
            self.fail(number, "check", f"the held long-poll was answered early: {longpoll.recv(500)!r}")
        if extra := stream.unexpected():
            self.fail(number, "check", f"the held stream received {extra!r}")
        if websocket.buffer or select.select([websocket.sock], [], [], 0)[0]:
            self.fail(number, "check", f"the held WebSocket received {websocket.buffer or websocket.recv()!r}")
        # Still proxies.
        plain = exchange(self.http_port, b"GET /plain HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n", 5)
        if not plain.startswith(b"HTTP/1.1 200") or not plain.endswith(b"plain-ok\n"):
            self.fail(number, "check", f"proxying a plain request gave {plain[:200]!r}")
        # Still publishes and delivers exactly the published item to each held client.
        marker = f"s{number}"
        item = {"channel": SENTINEL, "id": marker, "formats": {
            "http-response": {"body": marker + "\n"}, "http-stream": {"content": marker + "\n"},
            "ws-message": {"content": marker}}}
        status, body = publish(self.publish_port, [item])
        if status != 200:
            self.fail(number, "check", f"publishing answered {status} {body!r}")
        longpoll.settimeout(15)
        received = b""
        while not received.endswith(marker.encode() + b"\n"):
            chunk = longpoll.recv(65536)
            if not chunk:
                break
            received += chunk
        longpoll.close()
        if not received.startswith(b"HTTP/1.1 200") or not received.endswith(b"\r\n\r\n" + marker.encode() + b"\n"):
            self.fail(number, "check", f"the held long-poll got {received[-200:]!r}")
        got = stream.take(marker.encode() + b"\n", 15)
        if got != marker.encode() + b"\n":
            self.fail(number, "check", f"the held stream got {got!r}, not {marker}")
        opcode, payload = websocket.frame()
        if (opcode, payload) != (1, marker.encode()):
            self.fail(number, "check", f"the held WebSocket got opcode {opcode} {payload[:100]!r}, not {marker}")

    def run(self):
        stream = HeldStream(self.http_port)
        websocket = WebSocketClient(self.http_port, SENTINEL)
        try:
            for number in range(self.args.batches):
                self.batch(number, stream, websocket)
        finally:
            self.p8.stop(timeout=15, force=False)
            self.backend.shutdown()
        with open(os.path.join(self.directory, "p8.log"), "rb") as f:
            log = f.read()
        if b"Fatal error" in log:
            raise AssertionError(f"p8 logged a fatal error: see {self.directory}/p8.log")


class HeldStream:
    """The held HTTP stream: its chunked body's content, read as it arrives."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.sock.sendall(b"GET /stream?ch=%s HTTP/1.1\r\nHost: fuzz\r\n\r\n" % SENTINEL.encode())
        self.raw, self.content, self.closed = b"", b"", False
        while b"\r\n\r\n" not in self.raw:
            self.raw += self.sock.recv(65536)
        head, _, self.raw = self.raw.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200") or b"chunked" not in head.lower():
            raise RuntimeError(f"the held stream started with {head!r}")
        if self.take(b"open\n", 15) != b"open\n":
            raise RuntimeError(f"the held stream did not start with the backend's body: {head!r} {self.raw!r}")

    def pump(self, timeout):
        if not self.closed and select.select([self.sock], [], [], timeout)[0]:
            chunk = self.sock.recv(65536)
            self.closed = not chunk
            self.raw += chunk
        while (end := self.raw.find(b"\r\n")) >= 0:
            size = int(self.raw[:end].split(b";")[0], 16)
            if len(self.raw) < end + 2 + size + 2:
                break
            self.content += self.raw[end + 2:end + 2 + size]
            self.raw = self.raw[end + 4 + size:]

    def take(self, expected, timeout):
        """The next len(expected) bytes of content (fewer if they do not arrive in time)."""
        deadline = time.monotonic() + timeout
        self.pump(0)
        while len(self.content) < len(expected) and not self.closed and time.monotonic() < deadline:
            self.pump(deadline - time.monotonic())
        got, self.content = self.content[:len(expected)], self.content[len(expected):]
        return got

    def unexpected(self):
        """Whatever arrived that nobody published (or that the stream ended)."""
        self.pump(0)
        return self.content or (b"<closed>" if self.closed else b"")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--p8", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--per-batch", type=int, default=40)
    args = parser.parse_args()
    started = time.monotonic()
    run = Run(args)
    try:
        run.run()
    except (AssertionError, RuntimeError, OSError) as error:
        print(f"FAILED: {error}\n  (p8 log and database in {run.directory})")
        return 1
    summary = ", ".join(f"{kind} {code or 'no answer'}: {n}" for (kind, code), n in sorted(
        run.statuses.items(), key=lambda entry: (entry[0][0], entry[0][1] or 0)))
    print(f"live fuzz: seed {args.seed}, {args.batches} batches of {args.per_batch} inputs in "
          f"{time.monotonic() - started:.0f} s; every batch: p8 up, proxying, publishing, held clients exact")
    print(f"  answers: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
