#!/usr/bin/env python3
"""Several nodes under chaos (issue 14): three P-8 nodes share one PostgreSQL database; id-chained messages are
published to random nodes; long-poll and SSE clients reconnect to a random node with the last id they saw; one
node, chosen at random, is killed with SIGKILL and restarted every few seconds.

Pass condition: every client has every acknowledged message after its first one, in order, with no duplicates
(per run between reset signals), whichever nodes it went through. Uses resume_chaos.py's backend, publisher,
clients and check. Standard library only.

Usage: multinode_chaos.py --p8 PATH --postgresql-url postgresql://user@127.0.0.1:PORT/DB [--seconds 30]
                          [--rate 20] [--kill-every 4] [--longpoll 4] [--sse 4] [--publishers 2] [--batch 1]
The database must exist and be empty (or hold only an earlier run of this script's channel).
"""

import argparse
import http.client
import json
import os
import random
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resume_chaos as chaos  # noqa: E402


class RandomPort:
    """A `port` attribute that is a random node's port at every use."""

    def __get__(self, instance, owner):
        return random.choice(instance.ports)

    def __set__(self, instance, ports):
        instance.ports = ports


class RandomNodePublisher(chaos.Publisher):
    port = RandomPort()


class RandomNodeLongPollClient(chaos.LongPollClient):
    port = RandomPort()


class RandomNodeSSEClient(chaos.SSEClient):
    port = RandomPort()


def publish_first_batch(chain, port):
    """Publishes the chain's first batch before the concurrent publishers start: the first item of an empty
    channel has no predecessor to wait for, so a second item that overtook it would enter the log first."""
    numbers = chain.take()
    items = [
        {"channel": chaos.CHANNEL, "id": f"m{n}", **({"prev-id": f"m{n - 1}"} if n > 1 else {}),
         "formats": {"http-response": {"body": f"m{n}\n"}, "http-stream": {"content": f"id: m{n}\ndata: m{n}\n\n"}}}
        for n in numbers
    ]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/publish/", json.dumps({"items": items}), {"Content-Type": "application/json"})
    status = conn.getresponse().status
    conn.close()
    if status != 200:
        raise RuntimeError(f"the first publish was answered {status}")
    chain.acknowledge(numbers)


class Node(chaos.P8):
    """A P-8 node whose store is the shared PostgreSQL database."""

    def __init__(self, binary, directory, http_port, publish_port, backend_port, url):
        super().__init__(binary, directory, http_port, publish_port, backend_port)
        with open(os.path.join(directory, "p8.conf"), "a") as f:
            f.write(f"backend=postgresql\npostgresql_url={url}\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--p8", required=True)
    parser.add_argument("--postgresql-url", required=True)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--kill-every", type=float, default=4)
    parser.add_argument("--longpoll", type=int, default=4)
    parser.add_argument("--sse", type=int, default=4)
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()

    root = tempfile.mkdtemp(prefix="p8-multinode-chaos-")
    backend_port = chaos.free_port()
    server = chaos.QuietServer(("127.0.0.1", backend_port), chaos.Backend)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    nodes = []
    for index in range(args.nodes):
        directory = os.path.join(root, f"node{index}")
        os.makedirs(directory)
        nodes.append(
            Node(args.p8, directory, chaos.free_port(), chaos.free_port(), backend_port, args.postgresql_url)
        )
    for node in nodes:
        node.start()
    http_ports = [node.http_port for node in nodes]
    publish_ports = [node.publish_port for node in nodes]

    stop_publishing = threading.Event()
    stop_clients = threading.Event()
    chain = chaos.Chain(args.batch)
    interval = args.batch * args.publishers / args.rate
    publishers = [RandomNodePublisher(publish_ports, chain, interval, stop_publishing) for _ in range(args.publishers)]
    clients = [RandomNodeLongPollClient(f"longpoll-{i}", http_ports, stop_clients) for i in range(args.longpoll)]
    clients += [RandomNodeSSEClient(f"sse-{i}", http_ports, stop_clients) for i in range(args.sse)]
    publish_first_batch(chain, publish_ports[0])
    for publisher in publishers:
        publisher.start()
    for client in clients:
        client.start()
        time.sleep(0.1)

    started = time.monotonic()
    kills = 0
    while time.monotonic() - started < args.seconds:
        time.sleep(random.uniform(args.kill_every * 0.5, args.kill_every * 1.5))
        victim = random.choice(nodes)
        victim.kill()
        kills += 1
        time.sleep(random.uniform(0.05, 0.5))
        victim.start()

    stop_publishing.set()
    for publisher in publishers:
        publisher.join()
    acked = chain.acked
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        behind = [c for c in clients if not c.received or c.received[-1] is None or c.received[-1] < acked]
        if not behind:
            break
        time.sleep(0.2)
    stop_clients.set()
    for node in nodes:
        node.stop()
    server.shutdown()

    print(f"multi-node chaos: {len(nodes)} nodes on one PostgreSQL, {args.seconds:.0f} s, {kills} kill -9 and "
          f"restarts of a random node, {acked} messages acknowledged ({chain.attempts} publish requests to random "
          f"nodes, {chain.failures} refused or failed while the node was down), {args.publishers} publishers")
    failed = False
    for client in clients:
        problems = chaos.check(client, acked)
        messages = sum(1 for n in client.received if n is not None)
        first = next((n for n in client.received if n is not None), None)
        print(f"  {client.name}: {messages} messages from m{first}, {client.reconnects} requests to random nodes, "
              f"{client.errors} connection errors, {client.resets} resets"
              + ("" if not problems else "; PROBLEMS: " + "; ".join(problems)))
        failed = failed or bool(problems) or first is None
    if failed:
        print(f"FAILED (logs in {root})")
        return 1
    print("passed: every client has every acknowledged message after its first, in order, without duplicates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
