"""What holds the exporter's memory once every endpoint is polled and rendered (tracemalloc).

    python bench/bench_memory.py [--devices 100000] [--top 12]

A frozen simulator runs as a separate process; the exporter (store, pollers; no HTTP server)
runs in this process under tracemalloc until ready. Prints the traced total and peak, the
biggest allocation sites, and sizes by kind: cached compressed output, the tables' rows and
the strings they hold, the block item lists kept for comparing renders.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_exporter import READY_TIMEOUT, free_port, memory_mb, wait_ok

from dms_exporter.config import config_from_mapping
from dms_exporter.exporter import Exporter


def rows_size(tables: dict) -> tuple[int, int, int]:
    """(row objects, bytes of the row objects, bytes of distinct str/float/tuple fields)."""
    seen: set[int] = set()
    rows = row_bytes = field_bytes = 0
    for table in tables.values():
        if table is None:
            continue
        for row in table.rows:
            rows += 1
            row_bytes += sys.getsizeof(row)
            for name in row.__slots__:
                value = getattr(row, name)
                if isinstance(value, (str, float, tuple)) and id(value) not in seen:
                    seen.add(id(value))
                    field_bytes += sys.getsizeof(value)
                    if isinstance(value, tuple):
                        for item in value:
                            if id(item) not in seen:
                                seen.add(id(item))
                                field_bytes += sys.getsizeof(item)
    return rows, row_bytes, field_bytes


async def run(devices: int, top: int) -> None:
    import subprocess

    port = free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "dms_exporter.simulator", "--devices", str(devices), "--frozen",
         "--listen-address", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await asyncio.to_thread(wait_ok, f"http://127.0.0.1:{port}/_sim/state", READY_TIMEOUT)
        config = config_from_mapping(
            {
                "dms": {"url": f"http://127.0.0.1:{port}/dms-api/v1", "username": "monitor",
                        "password": "monitor-secret", "proxy": "direct", "timeout": "120s"},
                "defaults": {"interval": "1h"},
            },
            "bench.yml",
        )  # fmt: skip
        tracemalloc.start(1)
        exporter = Exporter(config)
        started = time.monotonic()
        await exporter.start()
        while not exporter.store.ready and time.monotonic() - started < READY_TIMEOUT:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        snapshot = tracemalloc.take_snapshot()
        current, peak = tracemalloc.get_traced_memory()
        store = exporter.store
        outputs = store._outputs.values()
        body = sum(len(f.body) for o in outputs for f in o.families)
        items = sum(len(seq) for o in outputs for seq in o.items.values())
        rows, row_bytes, field_bytes = rows_size(store.tables)
        rss, hwm = memory_mb(__import__("os").getpid())
        print(f"{devices:,} devices: traced now {current / 2**20:.0f} MiB, peak "
              f"{peak / 2**20:.0f} MiB; RSS {rss:.0f} MB, peak {hwm:.0f} MB")  # fmt: skip
        print(f"- cached compressed output: {body / 2**20:.1f} MiB")
        print(f"- rows: {rows:,} objects, {row_bytes / 2**20:.1f} MiB; their distinct str, "
              f"float and tuple fields {field_bytes / 2**20:.1f} MiB")  # fmt: skip
        print(f"- source items kept for comparing renders: {items:,} references")
        print(f"\ntop {top} allocation sites:\n")
        for stat in snapshot.statistics("lineno")[:top]:
            frame = stat.traceback[0]
            name = frame.filename.split("/dms_exporter/")[-1].split("/lib/python3.11/")[-1]
            print(f"- {stat.size / 2**20:7.1f} MiB {stat.count:>9,} blocks  {name}:{frame.lineno}")
        await exporter.stop()
    finally:
        sim.terminate()
        sim.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    asyncio.run(run(args.devices, max(1, min(args.top, 50))))


if __name__ == "__main__":
    main()
