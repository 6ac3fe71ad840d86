#!/usr/bin/env python3
"""Disk faults: p8's database on a small tmpfs that fills up, then gets its space back, then has its files
made immutable while p8 runs.

Pass condition (issue 16): while the disk is full every publish is answered 5xx (never 200 for an item that
was not stored, never a dropped connection) and p8 keeps running; when space returns, publishing works again
without a restart; with the files immutable a publish is either stored (200) or refused (5xx); in the end
every acknowledged item is in the database exactly once and in order, and the database passes SQLite's
integrity check. Needs root to mount the tmpfs (prints a SKIPPED line otherwise) and chattr for the immutable
phases (left out without it). Standard library only.

Usage: disk_faults.py --p8 PATH --p8ctl PATH [--size-mb 8]
"""

import argparse
import json
import os
import select
import socket
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Support"))
import p8harness  # noqa: E402
from p8harness import GripBackend, StartFailed, publish, start_server  # noqa: E402

ITEM_BYTES = 8000
CHANNELS = 4


class P8(p8harness.P8):
    """A p8 on `database`, started (StartFailed, with its exit status and log, when it does not start)."""

    def __init__(self, binary, directory, database, backend_port=1):
        super().__init__(binary, f"* 127.0.0.1:{backend_port}\n", directory, database=database)
        self.start()

    def publish(self, number):
        """The status of publishing item d<number> (0 when the connection broke without an answer)."""
        item = {"channel": f"disk-{number % CHANNELS}", "id": f"d{number}",
                "formats": {"http-stream": {"content": f"{number:08d}" + "x" * (ITEM_BYTES - 8)}}}
        try:
            return publish(self.publish_port, [item])[0]
        except OSError:
            return 0

    def stop(self):
        super().stop(timeout=15, force=False)


def chattr(flag, paths):
    for path in paths:
        if os.path.exists(path):
            subprocess.run(["chattr", flag, path], check=True)


def immutable_files(args, p8, directory, database, files, acked, number):
    """Phases 3 and 3b; returns the last item number. Stops `p8`."""
    # 3. The database files made immutable while p8 runs: each publish stored (200) or refused (5xx).
    chattr("+i", files)
    outcomes = {}
    for _ in range(20):
        number += 1
        status = p8.publish(number)
        if status == 200:
            acked.append(number)
        elif not 500 <= status <= 599:
            chattr("-i", files)
            raise AssertionError(f"with the files immutable, publish d{number} was answered {status or 'nothing'}")
        outcomes[status] = outcomes.get(status, 0) + 1
    chattr("-i", files)
    if not p8.alive():
        raise AssertionError("p8 exited while its database files were immutable")
    for _ in range(5):
        number += 1
        if p8.publish(number) != 200:
            raise AssertionError(f"after the files were writable again, publish d{number} failed")
        acked.append(number)
    print(f"disk faults: with the files immutable, answers {outcomes}; publishing works again after")
    p8.stop()

    # 3b. Started on an immutable database, p8 refuses to start with a clear error (and no crash).
    chattr("+i", files)
    try:
        P8(args.p8, directory, database).process.kill()
        raise AssertionError("p8 started on an immutable database")
    except StartFailed as failure:
        if failure.status in (None, 0) or failure.status < 0 or "cannot open the database" not in failure.log:
            raise AssertionError(f"on an immutable database p8 ended with {failure.status}: {failure.log[-300:]}")
    finally:
        chattr("-i", files)
    print("disk faults: on an immutable database p8 refuses to start: cannot open the database")
    return number


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--p8", required=True)
    parser.add_argument("--p8ctl", required=True)
    parser.add_argument("--size-mb", type=int, default=8)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("disk faults: SKIPPED (needs root to mount a small file system)")
        return 0
    has_chattr = shutil.which("chattr") is not None

    directory = tempfile.mkdtemp(prefix="p8-disk-")
    disk = os.path.join(directory, "disk")
    os.mkdir(disk)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.size_mb}m", "tmpfs", disk],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        print(f"disk faults: SKIPPED (cannot mount a tmpfs: {mounted.stderr.strip()})")
        return 0
    database = os.path.join(disk, "p8.sqlite")
    files = [database, database + "-wal", database + "-shm"]
    p8 = None
    try:
        # Ballast takes most of the space; removing it later is "space returns".
        with open(os.path.join(disk, "ballast"), "wb") as f:
            f.write(b"\0" * (args.size_mb * 1024 * 1024 * 2 // 5))
        backend = start_server(GripBackend)
        p8 = P8(args.p8, directory, database, backend.server_port)
        acked = []
        number = 0

        # 1. Fill the disk: publish until five publishes in a row are refused.
        refused = in_a_row = 0
        while in_a_row < 5:
            number += 1
            status = p8.publish(number)
            if status == 200:
                acked.append(number)
                in_a_row = 0
            elif 500 <= status <= 599:
                refused += 1
                in_a_row += 1
            else:
                raise AssertionError(f"with the disk filling up, publish d{number} was answered {status or 'nothing'}")
            if not p8.alive():
                raise AssertionError(f"p8 exited ({p8.process.returncode}) when the disk filled up")
            if number > 20 * args.size_mb * 1024 * 1024 // ITEM_BYTES:
                raise AssertionError("the disk never filled up")
        full_at = number
        # A long-poll arriving while the disk is full is held (in memory) or refused with 5xx, never dropped.
        held = socket.create_connection(("127.0.0.1", p8.http_port), timeout=15)
        held.sendall(b"GET /hold?ch=disk-hold HTTP/1.1\r\nHost: disk\r\n\r\n")
        if select.select([held], [], [], 3)[0]:
            early = held.recv(65536)
            if not early.startswith(b"HTTP/1.1 5"):
                raise AssertionError(f"a long-poll while the disk was full was answered {early[:100]!r}")
            held.close()
            held = None
        print(f"disk faults: the {args.size_mb} MB disk filled after {len(acked)} acknowledged items; "
              f"{refused} publishes refused with 5xx")

        # 2. Space returns: publishing works again without a restart (within 15 s).
        os.remove(os.path.join(disk, "ballast"))
        deadline = time.monotonic() + 15
        while True:
            number += 1
            status = p8.publish(number)
            if status == 200:
                acked.append(number)
                break
            if not 500 <= status <= 599 or time.monotonic() > deadline:
                raise AssertionError(f"after space returned, publish d{number} was answered {status or 'nothing'}")
            time.sleep(0.2)
        for _ in range(20):
            number += 1
            status = p8.publish(number)
            if status != 200:
                raise AssertionError(f"after recovery, publish d{number} was answered {status or 'nothing'}")
            acked.append(number)
        print(f"disk faults: publishing recovered by itself when space returned ({number - full_at} publishes)")
        if held is not None:
            item = {"channel": "disk-hold", "formats": {"http-response": {"body": "after\n"}}}
            if publish(p8.publish_port, [item])[0] != 200:
                raise AssertionError("publishing to the held long-poll failed")
            answer = b""
            while not answer.endswith(b"after\n"):
                chunk = held.recv(65536)
                if not chunk:
                    break
                answer += chunk
            if not answer.startswith(b"HTTP/1.1 200"):
                raise AssertionError(f"the long-poll held while the disk was full got {answer[:200]!r}")
            print("disk faults: a long-poll held while the disk was full got the item published after recovery")
        else:
            print("disk faults: a long-poll while the disk was full was refused with 5xx")

        if has_chattr:
            number = immutable_files(args, p8, directory, database, files, acked, number)
        else:
            print("disk faults: the immutable-file phases left out (no chattr)")
            p8.stop()
        p8 = None

        # 4. Nothing acknowledged is lost, nothing repeated, order kept; the database is intact.
        for channel in range(CHANNELS):
            result = subprocess.run([args.p8ctl, "history", f"disk-{channel}", "--db", database, "--json"],
                                    capture_output=True, text=True, check=True)
            stored = [int(item["id"][1:]) for item in json.loads(result.stdout)["items"]]
            expected = [n for n in acked if n % CHANNELS == channel]
            if stored != expected:
                missing = sorted(set(expected) - set(stored))[:10]
                extra = sorted(set(stored) - set(expected))[:10]
                raise AssertionError(f"disk-{channel}: stored items differ from the acknowledged ones "
                                     f"(missing {missing}, not acknowledged {extra}, {len(stored)} stored)")
        connection = sqlite3.connect(database)
        check = connection.execute("PRAGMA integrity_check").fetchone()[0]
        connection.close()
        if check != "ok":
            raise AssertionError(f"integrity check: {check}")
        print(f"disk faults: passed ({len(acked)} acknowledged items all stored once, in order; integrity ok)")
        return 0
    except AssertionError as error:
        print(f"FAILED: {error} (p8 log in {directory})")
        return 1
    finally:
        if p8 is not None:
            p8.process.kill()
            p8.process.wait()
        chattr("-i", files)
        subprocess.run(["umount", disk], check=False)


if __name__ == "__main__":
    sys.exit(main())
