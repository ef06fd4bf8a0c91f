"""What the ``full`` and ``lean`` presets cost a real Prometheus, measured in one run.

    python bench/bench_presets.py --devices 20000 --hold 30

One simulator process (frozen, so both presets export the same data) and one exporter process
per preset polling it. Then, one preset after the other, a fresh Debian Prometheus (as
tests/promstack.py runs it) scrapes that exporter every 15 s; after ``--hold`` seconds of
scraping we read from Prometheus its head series (``prometheus_tsdb_head_series``), its resident
memory and the last scrape's duration, and from the exporter its series per device. Everything
talks to 127.0.0.1 only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import promstack

PRESETS = ("full", "lean")


@contextlib.contextmanager
def process(args: list[str], ready: str, timeout: float) -> Iterator[None]:
    proc = subprocess.Popen(
        [sys.executable, "-m", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        promstack.wait_until(lambda: promstack.http_get(ready, timeout=30)[0] == 200, timeout)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def series_lines(address: str) -> int:
    """Sample lines in the exporter's text exposition."""
    _, body = promstack.http_get(f"http://{address}/metrics", timeout=120)
    return sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))


def scalar(prom: promstack.Prometheus, expr: str) -> float:
    result = prom.query(expr)
    return float(result[0]["value"][1]) if result else float("nan")


def measure(address: str, hold: float, tmp: Path) -> dict[str, float]:
    scrape = {"job_name": "dms", "static_configs": [{"targets": [address]}],
              "scrape_timeout": "14s"}  # fmt: skip
    with promstack.prometheus(tmp, [scrape], interval="15s", scrape_self=False) as prom:
        prom.wait_for('count_over_time(up{job="dms"}[5m]) >= 2 and up{job="dms"} == 1', 120)
        time.sleep(hold)
        _, own = promstack.http_get(f"{prom.url}/metrics")
        metrics = dict(
            line.rsplit(" ", 1)
            for line in own.decode().splitlines()
            if line.startswith(("prometheus_tsdb_head_series ", "process_resident_memory_bytes "))
        )
        return {
            "head_series": float(metrics["prometheus_tsdb_head_series"]),
            "rss_bytes": float(metrics["process_resident_memory_bytes"]),
            "scrape_seconds": scalar(prom, 'scrape_duration_seconds{job="dms"}'),
            "scraped_samples": scalar(prom, 'scrape_samples_scraped{job="dms"}'),
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=20000)
    parser.add_argument("--hold", type=float, default=30.0, help="seconds of scraping to hold")
    args = parser.parse_args(argv)
    assert promstack.binary("prometheus"), promstack.missing_reason("prometheus")
    with tempfile.TemporaryDirectory(prefix="bench-presets-") as tmp_dir:
        tmp = Path(tmp_dir)
        sim = f"127.0.0.1:{promstack.free_port()}"
        exporters = {preset: f"127.0.0.1:{promstack.free_port()}" for preset in PRESETS}
        with contextlib.ExitStack() as stack:
            stack.enter_context(process(
                ["dms_exporter.simulator", "--devices", str(args.devices), "--frozen",
                 "--listen-address", sim], f"http://{sim}/_sim/state", 300))  # fmt: skip
            for preset, address in exporters.items():
                config = tmp / f"{preset}.yml"
                config.write_text(json.dumps({
                    "dms": {"url": f"http://{sim}/dms-api/v1", "username": "monitor",
                            "password": "monitor-secret", "proxy": "direct", "timeout": "60s"},
                    "defaults": {"interval": "10m", "timeout": "5m"},
                    "metrics": {"preset": preset},
                }))  # fmt: skip
                ready = f"http://{address}/-/ready"
                stack.enter_context(process(
                    ["dms_exporter", "--config.file", str(config), "--web.listen-address",
                     address, "--log.level", "warn"], ready, 600))  # fmt: skip
            results = {}
            for preset, address in exporters.items():
                lines = series_lines(address)
                results[preset] = {"series": lines, **measure(address, args.hold, tmp)}
    print(f"{args.devices:,} devices, Prometheus scraping every 15 s, held {args.hold:g} s\n")
    print("| preset | exporter series | per device | Prometheus head series | Prometheus RSS "
          "| scrape duration |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for preset, r in results.items():
        print(f"| {preset} | {r['series']:,} | {r['series'] / args.devices:.1f} | "
              f"{r['head_series']:,.0f} | {r['rss_bytes'] / 2**20:,.0f} MiB | "
              f"{r['scrape_seconds']:.2f} s |")  # fmt: skip
    full, lean = results["full"], results["lean"]
    print(f"\nfull / lean: exporter series {full['series'] / lean['series']:.1f}x, "
          f"head series {full['head_series'] / lean['head_series']:.1f}x, "
          f"Prometheus RSS {full['rss_bytes'] / lean['rss_bytes']:.1f}x")


if __name__ == "__main__":
    main()
