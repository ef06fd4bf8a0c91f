"""Soak: a live simulator, the exporter at default intervals, concurrent scrapers and refreshes;
does the exporter's memory keep growing?

    python bench/soak.py [--devices 20000] [--minutes 30] [--warmup 10] [--scrapers 8]

Scrapers ask for gzip (as Prometheus does) in a loop, one in eight plain; a refresher posts
``/-/refresh/<endpoint>`` for each endpoint in turn every 15 s (a 429 within the refresh gap is
counted, not an error). RSS is sampled every 10 s; the slope is a least-squares fit over the
samples after ``--warmup`` minutes. Bounded by ``--minutes``.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import urllib.error
import urllib.request

from bench_exporter import memory_mb, scrape
from bench_scale import ROOT, processes

ENDPOINTS = ("devices", "destinations", "alarms", "authorizations", "system")


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per minute."""
    if len(samples) < 2:
        return float("nan")
    ts = [t for t, _ in samples]
    ys = [y for _, y in samples]
    mt, my = statistics.fmean(ts), statistics.fmean(ys)
    var = sum((t - mt) ** 2 for t in ts)
    return sum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True)) / var * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=20_000)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=10.0, help="minutes left out of the fit")
    parser.add_argument("--scrapers", type=int, default=8)
    args = parser.parse_args()
    seconds = min(args.minutes, 240.0) * 60
    with processes(args.devices, frozen=False, interval=None, root=ROOT) as env:
        url = f"{env['base']}/metrics"
        stop = threading.Event()
        counts = {"scrapes": 0, "errors": 0, "refreshes": 0, "refused": 0}
        lock = threading.Lock()

        def scraper(k: int) -> None:
            n = 0
            while not stop.is_set():
                try:
                    scrape(url, gzip=(n + k) % 8 != 0)
                    key = "scrapes"
                except OSError:
                    key = "errors"
                with lock:
                    counts[key] += 1
                n += 1

        def refresher() -> None:
            n = 0
            while not stop.wait(15.0):
                endpoint = ENDPOINTS[n % len(ENDPOINTS)]
                request = urllib.request.Request(
                    f"{env['base']}/-/refresh/{endpoint}", method="POST"
                )
                try:
                    urllib.request.urlopen(request, timeout=300).read()
                    key = "refreshes"
                except urllib.error.HTTPError as exc:
                    key = "refused" if exc.code == 429 else "errors"
                except OSError:
                    key = "errors"
                with lock:
                    counts[key] += 1
                n += 1

        threads = [threading.Thread(target=scraper, args=(k,)) for k in range(args.scrapers)]
        threads.append(threading.Thread(target=refresher))
        for thread in threads:
            thread.start()
        samples: list[tuple[float, float]] = []
        started = time.monotonic()
        try:
            while (elapsed := time.monotonic() - started) < seconds:
                samples.append((elapsed, memory_mb(env["pid"])[0]))
                time.sleep(10.0)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=600)
        rss, peak = memory_mb(env["pid"])
    after = [s for s in samples if s[0] >= args.warmup * 60]
    print(f"soak: {args.devices:,} devices, {seconds / 60:g} min, {args.scrapers} scrapers, "
          f"ready {env['ready_s']:.1f} s")  # fmt: skip
    print(f"- requests: {counts}")
    print(
        f"- RSS first {samples[0][1]:.0f} MB, min {min(y for _, y in samples):.0f}, "
        f"max {max(y for _, y in samples):.0f}, end {rss:.0f}, peak (VmHWM) {peak:.0f} MB"
    )
    if after:
        print(
            f"- after {args.warmup:g} min: mean {statistics.fmean(y for _, y in after):.0f} MB, "
            f"slope **{slope_per_minute(after):+.2f} MB per minute** over {len(after)} samples"
        )


if __name__ == "__main__":
    main()
