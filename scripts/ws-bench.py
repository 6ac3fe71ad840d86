#!/usr/bin/env python3
"""Measures WebSocket cost the same way against P-8 and Pushpin.

    scripts/ws-bench.py --target p8 [--p8 .build/release/p8] [--clients 5000] [--messages 20]
    scripts/ws-bench.py --target pushpin [--clients 5000] [--messages 20]

It starts a WebSocket-over-HTTP backend (every connection is subscribed to one channel with the GRIP
extension), starts the target with a generated config (route `* backend,over_http`), opens N client
WebSockets, and reports:

- memory per idle held WebSocket: growth of the resident memory of the target's whole process tree
  (P-8: p8 and its server; Pushpin: condure, pushpin-proxy, pushpin-handler, zurl) from before the
  clients connect to after they are all subscribed and idle, divided by N;
- fan-out latency: for each of K `ws-message` items published through the HTTP API, the time from the
  publish request to the first, median and last client receiving it.

The clients run in this one Python process, so the latency includes Python receiving N messages: it is
an upper bound, comparable between targets measured on the same machine, not an absolute number.
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import aiohttp
from aiohttp import web

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Support"))
from p8harness import free_port  # noqa: E402

CHANNEL = "bench"


# ---------------------------------------------------------------------------
# backend: WebSocket-over-HTTP, subscribing every connection on OPEN


def encode_events(events):
    out = b""
    for name, content in events:
        if content is None:
            out += name.encode() + b"\r\n"
        else:
            out += b"%s %x\r\n%s\r\n" % (name.encode(), len(content), content)
    return out


async def ws_over_http(request):
    body = await request.read()
    events = []
    if body.startswith(b"OPEN\r\n"):
        control = json.dumps({"type": "subscribe", "channel": CHANNEL}).encode()
        events = [("OPEN", None), ("TEXT", b"c:" + control)]
    return web.Response(
        body=encode_events(events),
        headers={"Content-Type": "application/websocket-events", "Sec-WebSocket-Extensions": "grip"},
    )


async def start_backend(port):
    app = web.Application()
    app.router.add_route("POST", "/ws", ws_over_http)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


# ---------------------------------------------------------------------------
# targets


def ini(sections):
    return "".join(
        f"[{name}]\n" + "".join(f"{k}={v}\n" for k, v in values.items()) + "\n" for name, values in sections.items()
    )


def start_target(args, workdir, http_port, publish_port, backend_port):
    with open(os.path.join(workdir, "routes"), "w") as f:
        f.write(f"* 127.0.0.1:{backend_port},over_http\n")
    sections = {
        "global": {"rundir": os.path.join(workdir, "run")},
        "runner": {
            "http_port": f"127.0.0.1:{http_port}",
            "logdir": os.path.join(workdir, "log"),
            "client_maxconn": str(args.clients * 2 + 1000),
        },
        "proxy": {"routesfile": "routes", "sig_key": "bench-key"},
        "handler": {"push_in_http_addr": "127.0.0.1", "push_in_http_port": str(publish_port)},
    }
    if args.target == "p8":
        sections["store"] = {"database_file": os.path.join(workdir, "p8.sqlite")}
        config = os.path.join(workdir, "p8.conf")
        command = [args.p8, "--config", config]
    else:
        base = publish_port - 11
        sections["global"].update({"include": "{libdir}/internal.conf", "port_offset": str(base + 10 - 5560)})
        sections["runner"]["services"] = "condure,zurl,pushpin-proxy,pushpin-handler"
        sections["proxy"].update(
            {
                "zurl_out_specs": "ipc://{rundir}/{ipc_prefix}zurl-in",
                "zurl_out_stream_specs": "ipc://{rundir}/{ipc_prefix}zurl-in-stream",
                "zurl_in_specs": "ipc://{rundir}/{ipc_prefix}zurl-out",
                "updates_check": "off",
            }
        )
        sections["handler"].update(
            {
                "push_in_http_port": "5561",  # shifted by port_offset
                "push_in_spec": "tcp://127.0.0.1:5560",
                "push_in_sub_specs": "tcp://127.0.0.1:5562",
                "command_spec": "tcp://127.0.0.1:5563",
                "stats_spec": "ipc://{rundir}/{ipc_prefix}stats",
            }
        )
        config = os.path.join(workdir, "pushpin.conf")
        command = ["pushpin", "--config", config]
    with open(config, "w") as f:
        f.write(ini(sections))
    os.makedirs(os.path.join(workdir, "log"), exist_ok=True)
    out = open(os.path.join(workdir, "target.out"), "wb")
    return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for_port(port, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def tree_rss_kib(root_pid):
    """Resident memory of a process and all its descendants, in KiB."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(entry))
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


# ---------------------------------------------------------------------------
# clients


class Clients:
    def __init__(self):
        self.received = {}  # message -> list of receive times
        self.sockets = []

    async def open(self, session, url, count, concurrency):
        semaphore = asyncio.Semaphore(concurrency)

        async def one():
            async with semaphore:
                ws = await session.ws_connect(url, autoping=True, max_msg_size=0)
                self.sockets.append(ws)
                asyncio.get_running_loop().create_task(self.read(ws))

        await asyncio.gather(*(one() for _ in range(count)))

    async def read(self, ws):
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.received.setdefault(message.data, []).append(time.perf_counter())

    async def wait_all(self, message, count, timeout):
        deadline = time.perf_counter() + timeout
        while len(self.received.get(message, [])) < count:
            if time.perf_counter() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True


async def publish(session, publish_port, content):
    item = {"items": [{"channel": CHANNEL, "formats": {"ws-message": {"content": content}}}]}
    async with session.post(f"http://127.0.0.1:{publish_port}/publish/", json=item) as response:
        if response.status != 200:
            raise RuntimeError(f"publish refused: {response.status} {await response.text()}")


async def run(args):
    workdir = tempfile.mkdtemp(prefix="ws-bench-")
    http_port, publish_port, backend_port = free_port(), free_port(), free_port()
    if args.target == "pushpin":
        http_port, publish_port = args.base_port, args.base_port + 11
    backend = await start_backend(backend_port)
    target = start_target(args, workdir, http_port, publish_port, backend_port)
    try:
        wait_for_port(http_port)
        wait_for_port(publish_port)
        await asyncio.sleep(1.0)
        baseline = tree_rss_kib(target.pid)
        clients = Clients()
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            start = time.perf_counter()
            await clients.open(session, f"http://127.0.0.1:{http_port}/ws", args.clients, args.concurrency)
            opened = time.perf_counter() - start
            # Subscribed once a publish reaches every client.
            for attempt in range(100):
                marker = f"sync-{attempt}"
                await publish(session, publish_port, marker)
                if await clients.wait_all(marker, args.clients, timeout=1.0):
                    break
            else:
                raise RuntimeError("not every client got subscribed")
            await asyncio.sleep(2.0)
            held = tree_rss_kib(target.pid)
            first, median, last = [], [], []
            for index in range(args.messages):
                message = f"m{index}"
                sent = time.perf_counter()
                await publish(session, publish_port, message)
                if not await clients.wait_all(message, args.clients, timeout=30.0):
                    raise RuntimeError(f"{message} did not reach every client")
                times = sorted(t - sent for t in clients.received[message])
                first.append(times[0])
                median.append(times[len(times) // 2])
                last.append(times[-1])
                await asyncio.sleep(0.2)
            for ws in clients.sockets:
                await ws.close()

        def ms(values):
            return f"median {statistics.median(values) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms"

        print(f"target: {args.target}   clients: {args.clients}   messages: {args.messages}")
        print(f"opened in {opened:.1f} s")
        print(f"memory: {baseline / 1024:.1f} MiB before, {held / 1024:.1f} MiB held "
              f"-> {(held - baseline) * 1024 / args.clients / 1024:.1f} KiB per idle held WebSocket")
        print(f"fan-out latency, first client:  {ms(first)}")
        print(f"fan-out latency, median client: {ms(median)}")
        print(f"fan-out latency, last client:   {ms(last)}")
    finally:
        os.killpg(target.pid, signal.SIGTERM)
        try:
            target.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(target.pid, signal.SIGKILL)
        await backend.cleanup()
        if args.keep:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", choices=["p8", "pushpin"], default="p8")
    parser.add_argument("--p8", default=".build/release/p8", help="the p8 executable")
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=20, help="handshakes in progress at once")
    parser.add_argument("--base-port", type=int, default=29000, help="Pushpin's client port (publish: +11)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (config, logs)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
