"""How often the exporter moves between the members of a redundant DMS, in two situations.

Two simulator processes on 127.0.0.1 (``dms.url`` lists both, main first) and an exporter process
polling ``system`` and ``devices`` every second; for ``--seconds`` (bounded) it counts the moves the
exporter logs ("DMS failover" / "DMS failback to the main") and the requests each member got.

- ``both-standby``: both members report ``role: BACKUP`` (a redundant pair during a switch-over,
  or both misconfigured). Nothing is gained by moving: the data is the same either way.
- ``busy-main``: the main is active but overloaded: it answers every request with 503 and
  ``Retry-After: 5`` (back-pressure); the standby reports ``BACKUP``.

    python bench/failover_moves.py --seconds 30
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_exporter import free_port, wait_ok

#: Every endpoint but ``system`` and ``devices`` is switched off.
OFF = ", ".join(
    f"{name}: {{enabled: false}}"
    for name in ("groups", "services", "authorization_sets", "schedule_authorizations",
                 "authorizations", "destinations", "alarms")
)  # fmt: skip
SCENARIOS = {
    "both-standby": (["--role", "BACKUP"], ["--role", "BACKUP"]),
    "busy-main": (["--fault", "*=status:503,retry_after=5"], ["--role", "BACKUP"]),
}


@contextlib.contextmanager
def stack(main_args: list[str], standby_args: list[str], log: Path) -> Iterator[list[str]]:
    """Two simulators and an exporter on 127.0.0.1; yields the simulators' control URLs."""
    ports = [free_port(), free_port()]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "dms_exporter.simulator", "--devices", "20", "--frozen",
             "--listen-address", f"127.0.0.1:{port}", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for port, extra in zip(ports, (main_args, standby_args), strict=True)
    ]  # fmt: skip
    try:
        for port in ports:
            wait_ok(f"http://127.0.0.1:{port}/_sim/state", 60)
        urls = ", ".join(f"'http://127.0.0.1:{p}/dms-api/v1'" for p in ports)
        config = log.with_suffix(".yml")
        config.write_text(
            f"dms: {{url: [{urls}], username: monitor, password: monitor-secret,"
            " proxy: direct, timeout: 2s, failback_interval: 5s}\n"
            "defaults: {interval: 1s}\n"
            f"endpoints: {{{OFF}}}\n"
        )
        port = free_port()
        with log.open("w") as out:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "dms_exporter", "--config.file", str(config),
                 "--web.listen-address", f"127.0.0.1:{port}", "--log.format", "json"],
                stdout=out, stderr=out,
            ))  # fmt: skip
        yield [f"http://127.0.0.1:{p}/_sim/state" for p in ports]
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=30)


def requests_of(state_url: str) -> dict[str, int]:
    with urllib.request.urlopen(state_url, timeout=10) as response:
        counts = json.load(response)["requestCounts"]
    return {k: v for k, v in counts.items() if k in ("login", "system", "devices")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append")
    args = parser.parse_args()
    for name in args.scenario or sorted(SCENARIOS):
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "exporter.log"
            with stack(*SCENARIOS[name], log) as states:
                time.sleep(args.seconds)
                counts = [requests_of(url) for url in states]
            moves = [json.loads(line) for line in log.read_text().splitlines()
                     if line.startswith("{") and '"DMS fail' in line]  # fmt: skip
        print(f"{name}: {len(moves)} moves in {args.seconds:g} s; requests main {counts[0]}, "
              f"standby {counts[1]}")  # fmt: skip
        for move in moves[:3]:
            print("   ", {k: move.get(k) for k in ("msg", "message", "why", "to_url")})


if __name__ == "__main__":
    main()
