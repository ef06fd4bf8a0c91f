"""Benchmark the console's Devices page at a large fleet, end to end over HTTP.

A frozen simulator process and an exporter process on 127.0.0.1 (only ``system`` and ``devices``
polled, so 100,000 devices are ready in seconds); then, each a bounded number of times, the
latency of: ``/-/healthy`` (the server's floor, the reference), the Devices page (page 1), a
search, a search with filters, a sort and a far page, and a device page. The first Devices page
after a devices table change builds the search index; that is timed too (by restarting the
exporter: its first page pays the build). Prints Markdown with the median, max and the ratio to
the floor.

    python bench/bench_console.py --devices 100000 --requests 20
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).parent))
from bench_exporter import free_port, wait_ok

READY_TIMEOUT = 600.0

QUERIES = {
    "/-/healthy (floor)": "/-/healthy",
    "devices, page 1": "/console/devices",
    "search (name substring)": "/console/devices?q=denver",
    "search + state + model filters": "/console/devices?q=edge&state=online&model=XOS+Edge",
    "sort by last contact, desc, page 200": "/console/devices?sort=last_contact&desc=1&page=200",
    "search by serial (one match)": "/console/devices?q={serial}",
    "device page": "/console/device?id=dev-000042",
}


def get(url: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read()
        assert response.status == 200, url
    return time.perf_counter() - started, body


@contextlib.contextmanager
def console_stack(devices: int, config_tail: str, seed: int = 1) -> Iterator[tuple[str, float]]:
    """A frozen simulator and an exporter (config: the simulator's ``dms`` section plus
    ``config_tail``) on 127.0.0.1; yields the exporter's base URL and its seconds to ready."""
    sim_port, port = free_port(), free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "dms_exporter.simulator", "--devices", str(devices),
             "--seed", str(seed), "--frozen", "--listen-address", f"127.0.0.1:{sim_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "dms.yml"
        config.write_text(
            f"dms: {{url: 'http://127.0.0.1:{sim_port}/dms-api/v1', username: monitor,"
            f" password: monitor-secret, proxy: direct, timeout: 120s}}\n{config_tail}"
        )
        try:
            wait_ok(f"http://127.0.0.1:{sim_port}/_sim/state", READY_TIMEOUT)
            cmd = [sys.executable, "-m", "dms_exporter", "--config.file", str(config),
                   "--web.listen-address", f"127.0.0.1:{port}"]  # fmt: skip
            procs.append(
                subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
            ready = wait_ok(f"http://127.0.0.1:{port}/-/ready", READY_TIMEOUT)
            yield f"http://127.0.0.1:{port}", ready
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    disabled = ", ".join(
        f"{n}: {{enabled: false}}"
        for n in ("groups", "services", "authorization_sets", "schedule_authorizations",
                  "authorizations", "destinations", "alarms")
    )  # fmt: skip
    tail = f"defaults: {{interval: 10m}}\nendpoints: {{{disabled}}}\n"
    with console_stack(args.devices, tail) as (base, ready):
        first, _ = get(base + "/console/devices")  # builds the index
        _, page = get(base + "/console/devices?q=dev-000042")
        row = page.decode().split('data-device="dev-000042"')[1].split("</tr>")[0]
        serial = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[4].strip()
        print(f"### Console Devices page, {args.devices:,} devices\n")
        print(f"exporter ready in {ready:.1f} s; first Devices page (index build) "
              f"{first * 1000:.0f} ms\n")  # fmt: skip
        print("| request | median ms | max ms | x floor |")
        print("|---|---:|---:|---:|")
        floor = None
        for title, path in QUERIES.items():
            url = base + path.format(serial=quote(serial))
            times = [get(url)[0] for _ in range(args.requests)]
            median = statistics.median(times)
            floor = floor or median
            print(f"| {title} | {median * 1000:.1f} | {max(times) * 1000:.1f} |"
                  f" {median / floor:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
