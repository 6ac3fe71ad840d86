"""The example app (examples/feed) and the status page in headless Chromium, against a real P-8, the real
Python backend and publisher: the pages render (a screenshot that is not blank), the feed updates over
EventSource and WebSocket, and after kill -9 and a restart of P-8 the EventSource reconnects and shows every
item exactly once. Run by scripts/test.sh after the Swift build (needs chromium, chromium-driver, selenium).

    python3 Tests/Browser/test_example.py --p8 .build/debug/p8 [--screenshots DIR]
"""

import argparse
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "examples", "feed")
sys.path.insert(0, os.path.join(ROOT, "Tests", "Support"))
from p8harness import free_port, launch, wait_until  # noqa: E402


def wait_for(condition, timeout=20, what="condition"):
    value = wait_until(condition, timeout, 0.1)
    if not value:
        raise AssertionError(f"timed out waiting for {what}")
    return value


def distinct_colours(png):
    """How many distinct pixel rows a PNG has (a blank page has one); parsed with zlib only."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, data, width = 8, b"", 0
    while position < len(png):
        length, kind = struct.unpack(">I4s", png[position:position + 8])
        chunk = png[position + 8:position + 8 + length]
        if kind == b"IHDR":
            width = struct.unpack(">I", chunk[:4])[0]
        elif kind == b"IDAT":
            data += chunk
        position += 12 + length
    raw = zlib.decompress(data)
    stride = 1 + width * 4 if len(raw) % (1 + width * 4) == 0 else 1 + width * 3
    return len({raw[i + 1:i + stride] for i in range(0, len(raw), stride)})


class Example:
    def __init__(self, p8, directory):
        self.p8_path, self.directory = p8, directory
        self.http, self.publish, self.backend_port = free_port(), free_port(), free_port()
        with open(os.path.join(EXAMPLE, "p-8.conf")) as source:
            config = source.read()
        config = config.replace("127.0.0.1:7999", f"127.0.0.1:{self.http}")
        config = config.replace("push_in_http_port=5561", f"push_in_http_port={self.publish}")
        config = config.replace("rundir=run", f"rundir={directory}/run")
        with open(os.path.join(directory, "p-8.conf"), "w") as target:
            target.write(config)
        with open(os.path.join(EXAMPLE, "routes")) as source:
            routes = source.read().replace("127.0.0.1:8080", f"127.0.0.1:{self.backend_port}")
        with open(os.path.join(directory, "routes"), "w") as target:
            target.write(routes)
        self.processes = []
        self.p8 = None

    def start(self):
        env = dict(os.environ, BACKEND_PORT=str(self.backend_port))
        self.processes.append(subprocess.Popen([sys.executable, os.path.join(EXAMPLE, "backend.py")], env=env,
                                               stdout=subprocess.DEVNULL))
        self.start_p8()
        env = dict(os.environ, P8_PUBLISH_URL=f"http://127.0.0.1:{self.publish}", PUBLISH_INTERVAL="0.3")
        self.processes.append(subprocess.Popen([sys.executable, os.path.join(EXAMPLE, "publisher.py")], env=env,
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def start_p8(self):
        self.p8 = launch([self.p8_path, "--config", os.path.join(self.directory, "p-8.conf")],
                         os.path.join(self.directory, "p8.log"))

    def kill_p8(self):
        self.p8.send_signal(signal.SIGKILL)
        self.p8.wait()

    def stop(self):
        for process in self.processes + [self.p8]:
            if process and process.poll() is None:
                process.terminate()
                process.wait(timeout=10)


def items(driver, list_id):
    return driver.execute_script(
        f"return Array.from(document.querySelectorAll('#{list_id} li')).map(li => Number(li.dataset.n));")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--p8", required=True)
    parser.add_argument("--screenshots", default=None)
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="p8-browser-")
    screenshots = args.screenshots or directory
    example = Example(os.path.abspath(args.p8), directory)
    options = webdriver.ChromeOptions()
    for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,800"]:
        options.add_argument(flag)
    driver = None
    passed, failed = 0, 0
    try:
        example.start()
        driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
        driver.get(f"http://127.0.0.1:{example.http}/")

        # The feed updates on both transports.
        wait_for(lambda: len(items(driver, "sse")) >= 3 and len(items(driver, "ws")) >= 3, what="feed items")
        png = driver.get_screenshot_as_png()
        with open(os.path.join(screenshots, "example.png"), "wb") as out:
            out.write(png)
        assert distinct_colours(png) > 10, "the example page screenshot is blank"
        print("ok: the example page renders and its feed updates over EventSource and WebSocket")
        passed += 1

        # kill -9, a pause, a restart: the EventSource reconnects and catches up, every item once.
        example.kill_p8()
        wait_for(lambda: driver.execute_script("return document.getElementById('sse-state').textContent")
                 != "live", what="the page to notice P-8 went away")
        time.sleep(1.5)
        example.start_p8()
        before = max(items(driver, "sse"))
        wait_for(lambda: max(items(driver, "sse")) >= before + 8, timeout=30, what="items after the restart")
        seen = items(driver, "sse")
        expected = list(range(seen[0], seen[-1] + 1))
        assert seen == expected, f"EventSource items after the restart are not each item once: {seen}"
        png = driver.get_screenshot_as_png()
        with open(os.path.join(screenshots, "example-after-restart.png"), "wb") as out:
            out.write(png)
        print(f"ok: after kill -9 and a restart the EventSource shows items {seen[0]}..{seen[-1]}, each once")
        passed += 1

        # The status page renders and goes live on P-8's own SSE stream.
        driver.get(f"http://127.0.0.1:{example.publish}/status")
        wait_for(lambda: driver.execute_script("return document.getElementById('state').textContent") == "live",
                 what="the status page to go live")
        wait_for(lambda: driver.execute_script(
            "return Number(document.getElementById('store-items').textContent) > 0"), what="status figures")
        wait_for(lambda: driver.execute_script(
            "return document.getElementById('rate-received').textContent.startsWith('now')"), what="rate charts")
        time.sleep(2.5)  # a few samples for the rate charts
        png = driver.get_screenshot_as_png()
        with open(os.path.join(screenshots, "status.png"), "wb") as out:
            out.write(png)
        assert distinct_colours(png) > 10, "the status page screenshot is blank"
        assert driver.execute_script("return document.querySelectorAll('#channels tr').length") >= 1
        print("ok: the status page renders and updates live")
        passed += 1
    except AssertionError as error:
        print(f"FAILED: {error}")
        failed += 1
    finally:
        if driver:
            driver.quit()
        example.stop()
        if not args.screenshots:
            shutil.rmtree(directory, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
