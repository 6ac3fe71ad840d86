"""The example's publisher: one numbered item a second on the channel "feed", for SSE and WebSockets.

Each item has an id and the previous one's id (prev-id), so a client that reconnects with the last id it saw
gets exactly what it missed. A publish that fails (P-8 is down) is retried until it succeeds: P-8 answers a
publish only once the item is committed to its database, so an acknowledged item is never lost.
"""

import json
import os
import sys
import time

from gripcontrol import GripPubControl, HttpStreamFormat, WebSocketMessageFormat
from pubcontrol import Item

CHANNEL = "feed"


def main():
    url = os.environ.get("P8_PUBLISH_URL", "http://127.0.0.1:5561")
    interval = float(os.environ.get("PUBLISH_INTERVAL", "1"))
    count = int(os.environ.get("PUBLISH_COUNT", "0"))  # 0: forever
    pub = GripPubControl({"control_uri": url})
    number = 1
    while count == 0 or number <= count:
        text = json.dumps({"n": number, "text": f"item {number}", "at": time.strftime("%H:%M:%S")})
        formats = [HttpStreamFormat(f"id: {number}\ndata: {text}\n\n"), WebSocketMessageFormat(text)]
        item = Item(formats, str(number), str(number - 1) if number > 1 else None)
        try:
            pub.publish(CHANNEL, item, blocking=True)
        except Exception as error:  # P-8 is down or restarting: try the same item again
            print(f"publish of item {number} failed ({error}); retrying", file=sys.stderr, flush=True)
            time.sleep(0.5)
            continue
        print(f"published item {number}", flush=True)
        number += 1
        time.sleep(interval)


if __name__ == "__main__":
    main()
