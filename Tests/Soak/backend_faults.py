#!/usr/bin/env python3
"""Backend faults soak: clients keep requesting through p8 while its backends misbehave: one accepts and never
answers, one resets the connection mid-body, one answers garbage, one answers at 1 byte a second, one port
refuses connections (first target of a route whose second target is healthy), and one backend is healthy.

Pass condition (issue 16): the healthy route and the failover route (refused first target, healthy second)
answer every request 200 with the backend's body; the faulty routes answer a clear 502 or 504 (or, for the
reset and the slow backend, a response cut short where the client can tell, or completed late: never a wrong
status); p8 keeps running;
once the clients stop, its open descriptors return to the count before they started. Standard library only.

Usage: backend_faults.py --p8 PATH [--seconds 60] [--workers 16]
"""

import argparse
import collections
import os
import random
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Support"))
from p8harness import HOST, P8, GripBackend, StartFailed, fd_count, free_port, start_server  # noqa: E402
RESPONSE_TIMEOUT = 3


def serve(handler):
    """A listening socket whose every connection is handed to `handler` on its own thread; returns the port."""
    listener = socket.create_server((HOST, 0), backlog=512)

    def accept():
        while True:
            connection, _ = listener.accept()
            threading.Thread(target=handler, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1]


def read_request(connection):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return False
        data += chunk
    return True


def blackhole(connection):
    """Accepts and reads, never answers; holds the connection until p8 closes it."""
    try:
        while connection.recv(65536):
            pass
    except OSError:
        pass
    connection.close()


def reset_mid_body(connection):
    if read_request(connection):
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 300)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    connection.close()


def garbage(connection):
    if read_request(connection):
        connection.sendall(random.randbytes(200).replace(b"\n", b" ") + b"\r\n\r\n")
    connection.close()


def slow(connection):
    """The whole response at one byte a second."""
    try:
        if read_request(connection):
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nslow\n":
                connection.sendall(bytes([byte]))
                time.sleep(1)
    except OSError:
        pass
    connection.close()


def request(port, host):
    """(status or None, head, body) of one GET through p8; None when the connection ended without a status."""
    try:
        with socket.create_connection((HOST, port), timeout=RESPONSE_TIMEOUT + 10) as s:
            s.sendall(f"GET /plain HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    except OSError:
        data = data if "data" in locals() else b""
    if not data.startswith(b"HTTP/1.1 ") or len(data) < 12:
        return None, b"", b""
    head, _, body = data.partition(b"\r\n\r\n")
    return int(data[9:12]), head, body


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--p8", required=True)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()

    healthy = start_server(GripBackend)
    healthy.request_queue_size = 512
    ports = {name: serve(handler) for name, handler in
             [("blackhole", blackhole), ("reset", reset_mid_body), ("garbage", garbage), ("slow", slow)]}
    refused = free_port()
    routes = [f"{name}.test {HOST}:{port}" for name, port in ports.items()]
    routes += [f"failover.test {HOST}:{refused} {HOST}:{healthy.server_port}",
               f"healthy.test {HOST}:{healthy.server_port}"]
    allowed = {"healthy": {200}, "failover": {200}, "blackhole": {504}, "garbage": {502},
               "reset": {200, 502, None}, "slow": {200, 504, None}}

    directory = tempfile.mkdtemp(prefix="p8-backend-faults-")
    p8 = P8(args.p8, "\n".join(routes) + "\n", directory,
            proxy={"backend_connect_timeout": 2, "backend_response_timeout": RESPONSE_TIMEOUT})
    http_port = p8.http_port
    try:
        p8.start()
    except StartFailed:
        print(f"FAILED: p8 did not start (log in {directory})")
        return 1
    baseline = fd_count(p8.server_pid)
    outcomes = collections.Counter()
    problems = []
    stop_at = time.monotonic() + args.seconds
    lock = threading.Lock()

    def worker(seed):
        rng = random.Random(seed)
        while time.monotonic() < stop_at:
            name = rng.choice(list(allowed))
            status, head, body = request(http_port, f"{name}.test")
            with lock:
                outcomes[(name, status)] += 1
                if status not in allowed[name]:
                    problems.append(f"{name}: answered {status}")
                elif name in ("healthy", "failover") and body != b"plain-ok\n":
                    problems.append(f"{name}: body {body[:80]!r}")
                elif name == "reset" and status == 200 and (b"Content-Length: 1000" not in head or len(body) >= 1000):
                    # Cut short where the client can tell: the backend's length kept, the connection closed.
                    problems.append(f"reset: a cut response the client cannot tell from a whole one: {head!r}")

    workers = [threading.Thread(target=worker, args=(seed,)) for seed in range(args.workers)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    alive = p8.alive()
    deadline = time.monotonic() + 30
    while alive and time.monotonic() < deadline and fd_count(p8.server_pid) > baseline + 5:
        time.sleep(0.5)
    after = fd_count(p8.server_pid) if alive else None
    p8.stop(timeout=15, force=False)

    summary = ", ".join(f"{name} {status or 'cut short'}: {n}" for (name, status), n in sorted(
        outcomes.items(), key=lambda entry: (entry[0][0], entry[0][1] or 0)))
    print(f"backend faults: {args.seconds:.0f} s, {args.workers} clients, {sum(outcomes.values())} requests; "
          f"descriptors {baseline} before, {after} after")
    print(f"  answers: {summary}")
    if not alive:
        problems.append("p8 exited")
    elif after > baseline + 5:
        problems.append(f"descriptors leaked: {baseline} before, {after} after")
    if problems:
        print("FAILED:\n  " + "\n  ".join(sorted(set(problems))[:20]) + f"\n  (p8 log in {directory})")
        return 1
    print("passed: healthy and failover routes always 200, faulty ones 502/504, no descriptor leak")
    return 0


if __name__ == "__main__":
    sys.exit(main())
