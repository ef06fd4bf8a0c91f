"""What ``POST /-/refresh/<endpoint>`` answers on ``dms-exporter --demo``, pressed at a steady pace.

Starts the exporter with ``--demo`` on 127.0.0.1 (intervals 5 s, ``refresh_min_gap`` 10 s),
waits until it is ready, then posts a refresh every ``--every`` seconds for ``--seconds`` seconds
(bounded) and prints one line per answer: time, HTTP status, ``Retry-After``, and what the answer
says about the poll (``refreshed``, ``polled_ago``, ``message``; ``error`` if refused). Ends with
the count of answers by status.

    python bench/refresh_demo.py --endpoint devices --every 4 --seconds 24
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_exporter import free_port, wait_ok


def post(url: str) -> tuple[int, str | None, dict[str, object]]:
    request = urllib.request.Request(url, method="POST", data=b"")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers.get("Retry-After"), json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Retry-After"), json.load(exc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="devices")
    parser.add_argument("--every", type=float, default=4.0, help="seconds between refreshes")
    parser.add_argument("--seconds", type=float, default=24.0, help="how long to press")
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    exporter = subprocess.Popen(
        [sys.executable, "-m", "dms_exporter", "--demo", "--demo.devices", "100",
         "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "warn"],
    )  # fmt: skip
    try:
        wait_ok(base + "/-/ready", 60)
        counts: collections.Counter[int] = collections.Counter()
        started = time.monotonic()
        presses = int(args.seconds // args.every)
        for press in range(presses):
            time.sleep(max(0.0, started + press * args.every - time.monotonic()))
            status, retry_after, body = post(f"{base}/-/refresh/{args.endpoint}")
            counts[status] += 1
            shown = {k: body[k] for k in ("refreshed", "polled_ago", "message") if k in body}
            if "error" in body:
                shown["error"] = body["error"]
            print(f"t={time.monotonic() - started:5.1f}s  HTTP {status}  "
                  f"Retry-After={retry_after}  {shown}")  # fmt: skip
        print("answers by status:", dict(sorted(counts.items())))
    finally:
        exporter.terminate()
        exporter.wait(timeout=30)


if __name__ == "__main__":
    main()
