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
import os
import random
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Support"))
import resume_chaos as chaos  # noqa: E402
from p8harness import publish, start_server  # noqa: E402


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
    status, _ = publish(port, chaos.chain_items(numbers), timeout=10)
    if status != 200:
        raise RuntimeError(f"the first publish was answered {status}")
    chain.acknowledge(numbers)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--p8", required=True)
    parser.add_argument("--postgresql-url", required=True)
    parser.add_argument("--nodes", type=int, default=3)
    chaos.add_chaos_options(parser, publishers=2)
    args = parser.parse_args()

    root = tempfile.mkdtemp(prefix="p8-multinode-chaos-")
    server = start_server(chaos.Backend)
    nodes = []
    for index in range(args.nodes):
        directory = os.path.join(root, f"node{index}")
        os.makedirs(directory)
        # A P-8 node whose store is the shared PostgreSQL database.
        store = {"backend": "postgresql", "postgresql_url": args.postgresql_url}
        nodes.append(chaos.p8_node(args.p8, directory, server.server_port, store))
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
    chaos.catch_up(clients, acked)
    stop_clients.set()
    for node in nodes:
        node.stop()
    server.shutdown()

    print(f"multi-node chaos: {len(nodes)} nodes on one PostgreSQL, {args.seconds:.0f} s, {kills} kill -9 and "
          f"restarts of a random node, {acked} messages acknowledged ({chain.attempts} publish requests to random "
          f"nodes, {chain.failures} refused or failed while the node was down), {args.publishers} publishers")
    return chaos.report(clients, acked, root, requests="requests to random nodes")


if __name__ == "__main__":
    sys.exit(main())
