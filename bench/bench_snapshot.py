"""The snapshot on disk at scale: file size per endpoint, and the time to write and read it.

    python bench/bench_snapshot.py --devices 10000

Polls a simulator of that many devices once (every endpoint, through the real exporter), then
writes each table as a poll that changed it does (``snapshot.save``: encode, gzip, fsync,
rename) and reads it back as a start does (``snapshot.read``), three times each; prints the
median per endpoint and the total. For comparison in the same run: ``json.dumps`` and
``gzip.compress`` of the same rows alone, the floor of any JSON-and-gzip file format.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import statistics
import tempfile
import time
from pathlib import Path

from dms_exporter.config import config_from_mapping
from dms_exporter.exporter import Exporter
from dms_exporter.polling import snapshot
from dms_exporter.simulator import start_simulator

RUNS = 3


def median_seconds(action: object) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def poll_once(devices: int) -> Exporter:
    async with start_simulator(devices=devices, seed=1, frozen=True) as sim:
        config = config_from_mapping(
            {
                "dms": {"url": sim.base_url, "username": sim.username,
                        "password": sim.password, "proxy": "direct", "timeout": "120s"},
                "defaults": {"interval": "1h"},
            },
            "bench.yml",
        )  # fmt: skip
        exporter = Exporter(config)
        await exporter.start()
        while not exporter.store.ready:
            await asyncio.sleep(0.2)
        await exporter.stop()
        return exporter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    args = parser.parse_args()
    exporter = asyncio.run(poll_once(args.devices))
    url = exporter.config.dms.url
    print(f"{args.devices} devices, medians of {RUNS}")
    print(f"{'endpoint':26} {'rows':>8} {'file KiB':>9} {'write s':>8} {'read s':>8} "
          f"{'json+gzip s':>11}")  # fmt: skip
    totals = [0, 0.0, 0.0, 0.0]
    with tempfile.TemporaryDirectory() as home:
        directory = Path(home)
        for name, table in exporter.store.tables.items():
            if table is None:
                continue
            first_seen = exporter.store.alarm_first_seen if name == "alarms" else None
            write = median_seconds(
                lambda t=table, f=first_seen: snapshot.save(directory, t, True, url, f)
            )
            read = median_seconds(lambda n=name: snapshot.read(directory, n, url))
            rows = [list(vars_of(row)) for row in table.rows]
            floor = median_seconds(lambda r=rows: gzip.compress(json.dumps(r).encode(), 1))
            size = (directory / f"{name}.json.gz").stat().st_size
            print(f"{name:26} {len(table.rows):8} {size / 1024:9.0f} {write:8.3f} {read:8.3f} "
                  f"{floor:11.3f}")  # fmt: skip
            for i, v in enumerate((size, write, read, floor)):
                totals[i] += v
    size, write, read, floor = totals
    print(f"{'total':26} {'':8} {size / 1024:9.0f} {write:8.3f} {read:8.3f} {floor:11.3f}")


def vars_of(row: object) -> tuple[object, ...]:
    return tuple(getattr(row, name) for name in row.__slots__)  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
