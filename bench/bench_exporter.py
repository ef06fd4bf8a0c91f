"""Benchmark the exporter end to end at several fleet sizes.

For each size: a simulator process (frozen) and an exporter process on 127.0.0.1; time to ready
(first poll of every endpoint and its render), render duration per group, poll duration per
endpoint, scrape latency (plain text and gzip; median and max of a bounded number of scrapes)
and the exporter's resident memory (VmRSS now, VmHWM peak, from /proc). Prints Markdown.

    python bench/bench_exporter.py --devices 1000,20000,100000 --scrapes 20
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

READY_TIMEOUT = 600.0  # seconds; 100k devices need a few minutes on 2 cores


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ok(url: str, timeout: float) -> float:
    """Seconds until ``url`` answers 200; raises after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout}s")


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024
    return rss, hwm


def scrape(url: str, gzip: bool) -> tuple[float, int]:
    """(seconds, bytes on the wire) of one full scrape."""
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"} if gzip else {})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        size = len(response.read())
    return time.perf_counter() - started, size


def metric_values(url: str, name: str) -> dict[str, float]:
    """label value -> value of a one-label metric in the exposition."""
    with urllib.request.urlopen(url, timeout=120) as response:
        body = response.read().decode()
    pattern = re.compile(rf'^{name}{{\w+="([^"]+)"}} (\S+)$', re.M)
    return {label: float(v) for label, v in pattern.findall(body)}


def bench_size(devices: int, scrapes: int) -> dict[str, object]:
    sim_port, exp_port = free_port(), free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "dms_exporter.simulator", "--devices", str(devices), "--frozen",
         "--listen-address", f"127.0.0.1:{sim_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    exporter = None
    try:
        wait_ok(f"http://127.0.0.1:{sim_port}/_sim/state", READY_TIMEOUT)
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp, "dms.yml")
            config.write_text(
                f"dms: {{url: 'http://127.0.0.1:{sim_port}/dms-api/v1', username: monitor,"
                " password: monitor-secret, proxy: direct, timeout: 120s}\n"
                "defaults: {interval: 1h}\n"
            )
            exporter = subprocess.Popen(
                [sys.executable, "-m", "dms_exporter", "--config.file", str(config),
                 "--web.listen-address", f"127.0.0.1:{exp_port}", "--log.level", "warn"],
            )  # fmt: skip
            base = f"http://127.0.0.1:{exp_port}"
            ready = wait_ok(f"{base}/-/ready", READY_TIMEOUT)
            time.sleep(1.0)  # let the last render swap in
            renders = metric_values(f"{base}/metrics", "dms_exporter_render_duration_seconds")
            polls = metric_values(f"{base}/metrics", "dms_exporter_endpoint_poll_duration_seconds")
            results: dict[str, object] = {"devices": devices, "ready_s": ready}
            for kind, gz in (("plain", False), ("gzip", True)):
                timings = [scrape(f"{base}/metrics", gz) for _ in range(scrapes)]
                seconds = [t for t, _ in timings]
                results[f"{kind}_median_ms"] = statistics.median(seconds) * 1e3
                results[f"{kind}_max_ms"] = max(seconds) * 1e3
                results[f"{kind}_bytes"] = timings[-1][1]
            results["rss_mb"], results["peak_rss_mb"] = memory_mb(exporter.pid)
            results["render_s"] = renders
            results["poll_s"] = polls
            return results
    finally:
        for proc in (exporter, sim):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="1000,20000,100000")
    parser.add_argument("--scrapes", type=int, default=20, help="scrapes per format (bounded)")
    args = parser.parse_args()
    scrapes = max(1, min(args.scrapes, 200))
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}\n")
    rows = [bench_size(int(n), scrapes) for n in args.devices.split(",")]
    print("| devices | ready (s) | plain scrape median / max (ms) | plain size | "
          "gzip scrape median / max (ms) | gzip size | RSS (MB) | peak RSS (MB) |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['devices']:,} | {r['ready_s']:.1f} | {r['plain_median_ms']:.1f} / "
            f"{r['plain_max_ms']:.1f} | {r['plain_bytes'] / 1e6:.1f} MB | "
            f"{r['gzip_median_ms']:.1f} / {r['gzip_max_ms']:.1f} | "
            f"{r['gzip_bytes'] / 1e6:.2f} MB | {r['rss_mb']:.0f} | {r['peak_rss_mb']:.0f} |"
        )
    print("\nrender duration per group after the first poll (s):\n")
    groups = list(rows[0]["render_s"])
    print("| devices | " + " | ".join(groups) + " |")
    print("|---:|" + "---:|" * len(groups))
    for r in rows:
        print(f"| {r['devices']:,} | " + " | ".join(f"{r['render_s'][g]:.3f}" for g in groups)
              + " |")  # fmt: skip
    print("\npoll duration per endpoint, all pages (s):\n")
    endpoints = list(rows[0]["poll_s"])
    print("| devices | " + " | ".join(endpoints) + " |")
    print("|---:|" + "---:|" * len(endpoints))
    for r in rows:
        print(f"| {r['devices']:,} | " + " | ".join(f"{r['poll_s'][e]:.2f}" for e in endpoints)
              + " |")  # fmt: skip


if __name__ == "__main__":
    main()
