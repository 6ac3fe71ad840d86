#!/usr/bin/env python3
"""Resume and start-up at size (issue 12): P-8 with a large history, against itself with an empty one.

  python3 scripts/bench/at_size.py --p8 .build/release/p8 [--channels 10000 --per-channel 100 --missed 1000]

Steps, on one p8 with its own directory, ports and SQLite file (a release build: this is a benchmark):
1. publish throughput on the empty database: --probe items in batches of 100 over --concurrency kept-alive
   connections, items/s acknowledged;
2. fill: --channels channels with --per-channel items each, plus one channel `hot` with --missed + 100 items
   (each an id-chained SSE event);
3. publish throughput again, now with the large database (the ratio to step 1 is the figure);
4. resume: an SSE client on `hot` with `Last-Event-ID` --missed items back gets every missed item: the time
   from its request to the last one, and where the store read them (`p8_store_reads_total{source}` from the
   Prometheus endpoint, before and after);
5. restart: SIGTERM, start again on the same database, time until it has printed its ready line and served
   one SSE resume; then the same after kill -9.
Prints one JSON line.
"""
import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "EndToEnd"))
from harness import P8, EventStream, free_port, start_backend  # noqa: E402


def event_item(channel, n):
    item = {"channel": channel, "id": f"{channel}-{n}", "formats": {"http-stream": {
        "content": f"id: {channel}-{n}\ndata: item {n} of {channel}\n\n"}}}
    if n > 1:
        item["prev-id"] = f"{channel}-{n - 1}"
    return item


def publish_all(port, batches, concurrency):
    """Publishes every batch over `concurrency` kept-alive connections; returns the seconds it took."""
    queue = list(reversed(batches))
    lock = threading.Lock()
    errors = []

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if not queue:
                    break
                batch = queue.pop()
            body = json.dumps({"items": batch})
            conn.request("POST", "/publish/", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            text = response.read()
            if response.status != 200:
                errors.append(text[:200])
                break
        conn.close()

    start = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"publish failed: {errors[0]!r}")
    return time.monotonic() - start


def probe_throughput(p8, label, items, concurrency):
    channels = [f"{label}-{c}" for c in range(100)]
    numbered = [event_item(channels[i % 100], i // 100 + 1) for i in range(items)]
    batches = [numbered[i:i + 100] for i in range(0, items, 100)]
    return items / publish_all(p8.publish_port, batches, concurrency)


def store_reads(metrics_port):
    conn = http.client.HTTPConnection("127.0.0.1", metrics_port, timeout=10)
    conn.request("GET", "/")
    text = conn.getresponse().read().decode()
    conn.close()
    reads = {}
    for match in re.finditer(r'^p8_store_reads_total\{source="(\w+)"\} (\d+)', text, re.M):
        reads[match.group(1)] = int(match.group(2))
    return reads


def resume(p8, missed, total):
    """Seconds from an SSE request with a Last-Event-ID `missed` items back to its last missed item."""
    last_seen = f"hot-{total - missed}"
    start = time.monotonic()
    stream = EventStream(p8.http_port, "/events?ch=hot", last_event_id=last_seen)
    ids = stream.wait_for(f"hot-{total}", timeout=60)
    elapsed = time.monotonic() - start
    stream.close()
    expected = [f"hot-{n}" for n in range(total - missed + 1, total + 1)]
    if ids[:missed] != expected:
        raise RuntimeError(f"resume got {len(ids)} ids ({ids[:1]}..{ids[-1:]}), not the {missed} missed ones in order")
    return elapsed


def restart(p8, missed, total, hard):
    if hard:
        p8.kill()
    else:
        p8.stop()
    start = time.monotonic()
    p8.start()
    ready = time.monotonic() - start
    resume(p8, missed, total)
    return ready, time.monotonic() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--p8", required=True)
    parser.add_argument("--channels", type=int, default=10_000)
    parser.add_argument("--per-channel", type=int, default=100)
    parser.add_argument("--missed", type=int, default=1000)
    parser.add_argument("--probe", type=int, default=20_000, help="items published to measure throughput")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    backend = start_backend()
    metrics_port = free_port()
    # `hot` keeps more than the default 1,000 items, so that --missed 1000 leaves its cursor retained.
    p8 = P8(os.path.abspath(args.p8), backend.server_address[1],
            proxy={"prometheus_port": f"127.0.0.1:{metrics_port}"}, store={"retention_overrides": "hot:items=1000000"})
    p8.start()
    try:
        empty_rate = probe_throughput(p8, "probe-empty", args.probe, args.concurrency)

        fill_start = time.monotonic()
        batches, batch = [], []
        for n in range(1, args.per_channel + 1):
            for c in range(args.channels):
                batch.append(event_item(f"ch{c}", n))
                if len(batch) == 1000:
                    batches.append(batch)
                    batch = []
        if batch:
            batches.append(batch)
        publish_all(p8.publish_port, batches, args.concurrency)
        # `hot` in order, from one connection: batches committed concurrently could start the chain anywhere.
        hot_total = args.missed + 100
        hot = [event_item("hot", n) for n in range(1, hot_total + 1)]
        publish_all(p8.publish_port, [hot[i:i + 100] for i in range(0, hot_total, 100)], 1)
        fill_seconds = time.monotonic() - fill_start
        items = args.channels * args.per_channel + hot_total

        large_rate = probe_throughput(p8, "probe-large", args.probe, args.concurrency)

        before = store_reads(metrics_port)
        resume_seconds = resume(p8, args.missed, hot_total)
        after = store_reads(metrics_port)
        sources = {source: after.get(source, 0) - before.get(source, 0) for source in after}

        ready_soft, served_soft = restart(p8, args.missed, hot_total, hard=False)
        ready_hard, served_hard = restart(p8, args.missed, hot_total, hard=True)
        size = sum(os.path.getsize(os.path.join(p8.directory, name)) for name in os.listdir(p8.directory)
               if name.startswith("p8.sqlite"))
    finally:
        p8.stop()
        backend.shutdown()
    print(json.dumps({
        "scenario": "at_size", "items": items, "channels": args.channels + 1,
        "database_mb": round(size / 1e6, 1), "fill_s": round(fill_seconds, 1),
        "publish_items_per_s_empty": round(empty_rate), "publish_items_per_s_large": round(large_rate),
        "publish_ratio_large_to_empty": round(large_rate / empty_rate, 3),
        "resume_missed": args.missed, "resume_ms": round(resume_seconds * 1000, 1),
        "resume_store_reads": sources,
        "restart_sigterm_ready_s": round(ready_soft, 3), "restart_sigterm_served_s": round(served_soft, 3),
        "restart_kill9_ready_s": round(ready_hard, 3), "restart_kill9_served_s": round(served_hard, 3),
    }))


if __name__ == "__main__":
    main()
