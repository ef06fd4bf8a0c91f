"""Idle connections (slowloris) against an exporter with a 1,024 file limit, and a normal client.

The exporter runs as a process (``--demo``, loopback) under ``RLIMIT_NOFILE`` = ``--nofile``.
``--connections`` attacker sockets connect, send half a request and then one header line every
few seconds, and reconnect whenever the server closes them. Meanwhile a normal client scrapes
``/metrics`` once a second on a new connection, with a 1 s limit. Prints the scrapes that
succeeded, their latency, and how much the exporter's log grew during the attack.

    python bench/bench_slowloris.py [--connections 2000] [--seconds 60] [--nofile 1024]
    python bench/bench_slowloris.py --source /tmp/older-checkout   # the same, for older code
    python bench/bench_slowloris.py --no-reconnect   # attackers do not come back once closed
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench_exporter import free_port, wait_ok

ROOT = Path(__file__).resolve().parent.parent
SCRAPE_LIMIT = 1.0  # seconds: a scrape slower than this counts as failed


async def attacker(
    port: int, deadline: float, stats: dict[str, int], reconnect: bool = True
) -> None:
    """One slowloris socket: half a request, a header line every 5 s; reconnect when closed."""
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            stats["connect_errors"] += 1
            await asyncio.sleep(0.5)
            continue
        stats["connects"] += 1
        try:
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            while time.monotonic() < deadline:
                try:
                    async with asyncio.timeout(5):
                        if not await reader.read(1024):
                            break  # closed by the server
                except TimeoutError:
                    writer.write(b"X-Slow: 1\r\n")
        except OSError:
            pass
        finally:
            writer.close()
        if not reconnect:
            return
        await asyncio.sleep(0.1)


async def scraper(port: int, deadline: float) -> list[float | str]:
    """One scrape a second on a new connection; each its latency, or why it failed."""
    results: list[float | str] = []
    while time.monotonic() < deadline:
        began = time.monotonic()
        step = "connect"
        try:
            async with asyncio.timeout(SCRAPE_LIMIT):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                step = "answer"
                writer.write(
                    b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                )
                body = await reader.read()
                writer.close()
            ok = body.startswith(b"HTTP/1.1 200") and b"dms_exporter_build_info" in body
            results.append(time.monotonic() - began if ok else f"answer {body[:40]!r}")
        except TimeoutError:
            results.append(f"no {step} within 1 s")
        except OSError as exc:
            results.append(type(exc).__name__)
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
    return results


async def attack(
    port: int, connections: int, seconds: float, reconnect: bool = True
) -> tuple[list[float | str], dict[str, int]]:
    """The attackers in this process; the normal client in its own process, so its timing does
    not depend on this busy event loop."""
    deadline = time.monotonic() + seconds
    stats = {"connects": 0, "connect_errors": 0}
    tasks = [
        asyncio.create_task(attacker(port, deadline, stats, reconnect)) for _ in range(connections)
    ]
    await asyncio.sleep(2)  # let the idle connections pile up first
    client = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--scrape-only", str(port), "--seconds", str(seconds - 2),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    output, _ = await client.communicate()
    await asyncio.gather(*tasks)
    return json.loads(output), stats


def limit_files(nofile: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))


def measure(
    connections: int, seconds: float, nofile: int, source: str = str(ROOT), reconnect: bool = True
) -> dict[str, Any]:
    """Run the attack against an exporter process from ``source``; the figures."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, connections + 512)), hard))
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "exporter.log"
        with log_path.open("wb") as log:
            env = {**os.environ, "PYTHONPATH": source}
            exporter = subprocess.Popen(
                [sys.executable, "-m", "dms_exporter", "--demo", "--demo.devices", "100",
                 "--web.listen-address", f"127.0.0.1:{port}"],
                stdout=log, stderr=log, env=env, cwd=source,
                preexec_fn=lambda: limit_files(nofile),
            )  # fmt: skip
            try:
                wait_ok(f"http://127.0.0.1:{port}/-/ready", 120)
                before = log_path.read_bytes()
                began = time.monotonic()
                scrapes, stats = asyncio.run(attack(port, connections, seconds, reconnect))
                elapsed = time.monotonic() - began
                grown = log_path.read_bytes()[len(before) :]
                alive = exporter.poll() is None
            finally:
                exporter.terminate()
                exporter.wait(30)
    return {"scrapes": scrapes, "elapsed": elapsed, "log": grown, "alive": alive, **stats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--nofile", type=int, default=1024)
    parser.add_argument("--source", default=str(ROOT), help="checkout whose exporter to run")
    parser.add_argument(
        "--no-reconnect", action="store_true", help="attackers closed by the server stay away"
    )
    parser.add_argument("--scrape-only", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scrape_only:
        deadline = time.monotonic() + args.seconds
        print(json.dumps(asyncio.run(scraper(args.scrape_only, deadline))))
        return
    result = measure(
        args.connections, args.seconds, args.nofile, args.source, not args.no_reconnect
    )
    scrapes, grown = result["scrapes"], result["log"]
    ok = [s for s in scrapes if isinstance(s, float)]
    failures = Counter(s for s in scrapes if isinstance(s, str))
    print(f"source: {args.source}")
    print(
        f"{args.connections} idle connections, file limit {args.nofile}, {result['elapsed']:.0f} s"
    )
    print(f"attacker connects: {result['connects']}, connect errors: {result['connect_errors']}")
    print(f"scrapes ok within {SCRAPE_LIMIT:g} s: {len(ok)} of {len(scrapes)}")
    for failure, count in failures.items():
        print(f"  failed: {failure} ({count})")
    if ok:
        median, worst = statistics.median(ok) * 1000, max(ok) * 1000
        print(f"scrape latency: median {median:.0f} ms, max {worst:.0f} ms")
    lines = grown.count(b"\n")
    print(
        f"log growth: {lines} lines, {len(grown) / 1e6:.2f} MB; exporter alive: {result['alive']}"
    )
    for line in grown.splitlines()[:3]:
        print("  " + line.decode(errors="replace")[:160])


if __name__ == "__main__":
    main()
