"""Reloads that lose nothing: a minute without reloads against a minute with 100 SIGHUPs.

A frozen simulator process and an exporter process on 127.0.0.1 with the default intervals.
Phase 1 runs a minute without reloads; phase 2 a minute with 100 reloads (a SIGHUP every 0.6 s,
the file cycling through: unchanged, a display name changed, the alarm interval changed, the
device timeout changed). Both phases scrape /metrics every second and report the fewest
``dms_device_info`` series seen, and the DMS requests and logins the simulator counted
(``/_sim/state``). Prints Markdown.

    python bench/bench_reload.py --devices 20000 --seconds 60 --reloads 100
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench_exporter import READY_TIMEOUT, free_port, wait_ok


def request(url: str, method: str = "GET") -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=120) as r:
        return r.read()


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` whole, so a reload never reads a half-written file."""
    part = path.with_suffix(".part")
    part.write_text(text)
    os.replace(part, path)


def device_series(base: str) -> int:
    body = request(f"{base}/metrics")
    return body.count(b"\ndms_device_info{")


def phase(base: str, control: str, exporter: subprocess.Popen, config: Path, variants: list[str],
          seconds: float, reloads: int) -> dict[str, object]:  # fmt: skip
    """Run one phase; ``reloads`` SIGHUPs spread over ``seconds``."""
    request(f"{control}/request-counts", "DELETE")
    started = time.monotonic()
    fewest = device_series(base)
    sent = 0
    while (elapsed := time.monotonic() - started) < seconds:
        due = min(reloads, int(elapsed / seconds * reloads) + 1) if reloads else 0
        while sent < due:
            write_atomically(config, variants[sent % len(variants)])
            exporter.send_signal(signal.SIGHUP)
            sent += 1
            time.sleep(0.05)
        fewest = min(fewest, device_series(base))
        time.sleep(0.3)
    counts = json.loads(request(f"{control}/state"))["requestCounts"]
    return {"reloads": sent, "fewest_devices": fewest, "counts": counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--reloads", type=int, default=100)
    args = parser.parse_args()
    seconds = max(5.0, min(args.seconds, 600.0))
    reloads = max(1, min(args.reloads, 1000))
    sim_port, exp_port = free_port(), free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "dms_exporter.simulator", "--devices", str(args.devices),
         "--frozen", "--listen-address", f"127.0.0.1:{sim_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    exporter = None
    control = f"http://127.0.0.1:{sim_port}/_sim"
    tmp = tempfile.TemporaryDirectory()
    try:
        wait_ok(f"{control}/state", READY_TIMEOUT)
        config = Path(tmp.name, "dms.yml")
        base_text = (
            f"dms: {{url: 'http://127.0.0.1:{sim_port}/dms-api/v1', username: monitor,"
            " password: monitor-secret, proxy: direct, timeout: 60s}\n"
        )
        variants = [
            base_text,
            base_text + "display_names: {devices: {dev-000001: Renamed}}\n",
            base_text + "endpoints: {alarms: {interval: 20s}}\n",
            base_text + "endpoints: {devices: {timeout: 40s}}\n",
        ]
        config.write_text(base_text)
        exporter = subprocess.Popen(
            [sys.executable, "-m", "dms_exporter", "--config.file", str(config),
             "--web.listen-address", f"127.0.0.1:{exp_port}", "--log.level", "warn"],
        )  # fmt: skip
        base = f"http://127.0.0.1:{exp_port}"
        wait_ok(f"{base}/-/ready", READY_TIMEOUT)
        time.sleep(2.0)
        quiet = phase(base, control, exporter, config, variants, seconds, 0)
        busy = phase(base, control, exporter, config, variants, seconds, reloads)
    finally:
        for proc in (exporter, sim):  # before the config file goes: reloads may be queued
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:  # an exporter stuck in a reload storm
                    proc.kill()
                    proc.wait(timeout=30)
        tmp.cleanup()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"{args.devices:,} devices, {seconds:.0f} s per phase\n")  # fmt: skip
    names = sorted(set(quiet["counts"]) | set(busy["counts"]))  # type: ignore[call-overload]
    print("| phase | reloads | fewest dms_device_info series | DMS requests | logins | "
          + " | ".join(names) + " |")  # fmt: skip
    print("|---|---:|---:|---:|---:|" + "---:|" * len(names))
    for label, r in (("no reloads", quiet), ("reloads", busy)):
        counts = r["counts"]
        print(f"| {label} | {r['reloads']} | {r['fewest_devices']:,} | "
              f"{sum(counts.values()):,} | {counts.get('login', 0)} | "
              + " | ".join(str(counts.get(n, 0)) for n in names) + " |")  # fmt: skip
    total_q = sum(quiet["counts"].values())  # type: ignore[attr-defined]
    total_b = sum(busy["counts"].values())  # type: ignore[attr-defined]
    print(f"\nrequests with reloads / without: {total_b / max(total_q, 1):.2f}")


if __name__ == "__main__":
    main()
