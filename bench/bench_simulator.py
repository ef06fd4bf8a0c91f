"""Benchmark the DMS simulator: items served per second and memory, at several sizes.

    python bench/bench_simulator.py [--sizes 1000,20000,100000] [--passes 3]

For each size, the simulator runs as a separate process (``python -m dms_exporter.simulator``,
live mode: it ticks as usual). An aiohttp client on 127.0.0.1 logs in and pages through each
endpoint with ``limit=1000``, decoding every page as an exporter would. Reported per endpoint:
items/s and MB/s over at least ``--passes`` passes and at least one second, and the
simulator's CPU time during those passes as a share of the wall time (below 100 % means the
server was not the bottleneck) and per item served. Memory is the
simulator process's resident set (VmRSS after start-up, VmHWM peak at the end) from /proc.
Prints a Markdown table. Bounded: every size has a deadline, every paging loop a page cap.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
ENDPOINTS = {
    "devices": "/devices",
    "destinations": "/destinations",
    "alarms": "/alarms",
    "authorizations": "/authorizations",
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MIN_SECONDS = 1.0  # keep paging an endpoint for at least this long (CPU time is in 10 ms ticks)
MAX_PASSES = 200


def proc_status(pid: int, key: str) -> float:
    """A ``/proc/<pid>/status`` memory field in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


async def page_through(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], limit: int
) -> tuple[int, int, int]:
    """Every page of one endpoint: (items, pages, bytes)."""
    items = pages = size = 0
    max_pages = None
    while max_pages is None or pages < max_pages:
        async with session.get(
            url, params={"offset": items, "limit": limit}, headers=headers
        ) as resp:
            resp.raise_for_status()
            body = await resp.read()
        page = json.loads(body)
        pages += 1
        size += len(body)
        items += len(page["items"])
        max_pages = page["total"] // limit + 2
        if not page["items"] or items >= page["total"]:
            break
    return items, pages, size


async def bench_size(devices: int, passes: int, limit: int, deadline: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dms_exporter.simulator",
        "--devices",
        str(devices),
        "--listen-address",
        "127.0.0.1:0",
        "--log-level",
        "warning",
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), deadline)).decode()
        startup = time.monotonic() - started
        base = re.search(r"API (http://\S+)", line).group(1)
        result = {
            "devices": devices,
            "startup": startup,
            "rss_idle": proc_status(proc.pid, "VmRSS"),
            "endpoints": {},
        }
        timeout = aiohttp.ClientTimeout(total=max(1.0, deadline - startup))
        async with aiohttp.ClientSession(timeout=timeout) as session:
            creds = {"username": "monitor", "password": "monitor-secret"}
            async with session.post(base + "/auth/login", json=creds) as resp:
                headers = {"Authorization": "Bearer " + (await resp.json())["token"]}
            for name, path in ENDPOINTS.items():
                total = {"items": 0, "pages": 0, "bytes": 0, "wall": 0.0, "cpu": 0.0, "passes": 0}
                while total["passes"] < MAX_PASSES and (
                    total["passes"] < passes or total["wall"] < MIN_SECONDS
                ):
                    total["passes"] += 1
                    cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
                    items, pages, size = await page_through(session, base + path, headers, limit)
                    total["wall"] += time.perf_counter() - t0
                    total["cpu"] += cpu_seconds(proc.pid) - cpu0
                    total["items"] += items
                    total["pages"] += pages
                    total["bytes"] += size
                result["endpoints"][name] = total
        result["rss_peak"] = proc_status(proc.pid, "VmHWM")
        return result
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()


def table(results: list[dict]) -> str:
    rows = [
        "| devices | start-up s | RSS after start MiB | RSS peak MiB | endpoint | items | pages "
        "| MB | passes | items/s | MB/s | simulator CPU / wall | simulator µs/item |",
        "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for k, (name, e) in enumerate(r["endpoints"].items()):
            head = (
                f"| {r['devices']:,} | {r['startup']:.1f} | {r['rss_idle']:.0f} | "
                f"{r['rss_peak']:.0f} |"
                if k == 0
                else "| | | | |"
            )
            n = e["passes"]
            rows.append(
                f"{head} {name} | {e['items'] // n:,} | {e['pages'] // n} | "
                f"{e['bytes'] / n / 1e6:.1f} | {n} | {e['items'] / e['wall']:,.0f} | "
                f"{e['bytes'] / 1e6 / e['wall']:.0f} | {100 * e['cpu'] / e['wall']:.0f} % | "
                f"{1e6 * e['cpu'] / e['items']:.1f} |"
            )
    return "\n".join(rows)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="1000,20000,100000",
        help="device counts, comma-separated (default 1000,20000,100000)",
    )
    parser.add_argument("--passes", type=int, default=3, help="minimum passes per endpoint")
    parser.add_argument("--limit", type=int, default=1000, help="page size (default 1000)")
    parser.add_argument("--deadline", type=float, default=300, help="seconds allowed per size")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    print(
        f"python {platform.python_version()}, aiohttp {aiohttp.__version__}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}, {platform.platform()}",
        flush=True,
    )
    results = []
    for devices in sizes:
        print(f"... {devices:,} devices", file=sys.stderr, flush=True)
        results.append(
            await asyncio.wait_for(
                bench_size(devices, max(1, args.passes), args.limit, args.deadline), args.deadline
            )
        )
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
