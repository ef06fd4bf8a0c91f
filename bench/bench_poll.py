"""The fetch-and-parse side of a poll, this checkout against another, in one run.

    python bench/bench_poll.py --devices 100000 [--polls 3] [--reference <checkout>]

A frozen simulator process of ``--devices`` devices on 127.0.0.1; for each checkout, a child
process with the exporter's real DMS client, poller and store polls one endpoint after another
(devices, destinations, authorizations, alarms). Per endpoint, after a first poll: ``--polls``
polls with nothing changed, then ``--polls`` polls each after a minute of the simulator's life
(60 ``POST /_sim/tick``: about 1 % of devices change per tick, so 45 % of them per minute, as
the live simulator between two default devices polls). It prints the CPU seconds of each poll
(median; user + system of the child, all threads), with the store's render switched off, so
the figure is the fetch, JSON decoding, row conversion and comparison with the held table only:
what this module's side of a poll costs, and the ratio reference / this checkout.

Both checkouts poll the same simulator one after the other, each from the same starting data
(the ticks are counted, not undone: the reference sees the world later, not differently).
Bounded: a fixed number of polls and ticks, every wait with a deadline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_exporter import READY_TIMEOUT, free_port, wait_ok

ROOT = Path(__file__).resolve().parent.parent
ENDPOINTS = ("devices", "destinations", "authorizations", "alarms")

#: Runs in the child, with the checkout under test first on sys.path.
CHILD = r"""
import asyncio, json, sys, time, urllib.request
from dms_exporter.config import config_from_mapping
from dms_exporter.dms import DmsClient
from dms_exporter.polling.poller import EndpointPoller
from dms_exporter.polling.store import Store

sim, polls, endpoints = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")

async def no_render(self, groups):
    pass  # the render is the other side of a poll; measured by bench_render / bench_scale

Store.render = no_render

def tick(times):
    for _ in range(times):
        request = urllib.request.Request(f"{sim}/_sim/tick", method="POST", data=b"{}",
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=60).read()

async def main():
    config = config_from_mapping({
        "dms": {"url": f"{sim}/dms-api/v1", "username": "monitor", "password": "monitor-secret",
                "proxy": "direct", "timeout": "300s"},
        "defaults": {"interval": "1h"},
    }, "bench.yml", base_dir=".")
    store = Store(config)
    out = {}
    async with DmsClient(config.dms) as client:
        for name in endpoints:
            poller = EndpointPoller(config.endpoints[name], client, store)
            await poller.poll_now()
            result = {"rows": len(store.tables[name].rows)}
            for scenario, ticks in (("same", 0), ("minute", 60)):
                cpu = []
                for _ in range(polls):
                    tick(ticks)
                    started = time.process_time()
                    status = await poller.poll_now()
                    cpu.append(time.process_time() - started)
                    assert status.last_result == "ok", status
                result[scenario] = cpu
            out[name] = result
    print(json.dumps(out))

asyncio.run(main())
"""


def run(root: Path, sim: str, polls: int, endpoints: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, sim, str(polls), ",".join(endpoints)],
        capture_output=True, text=True, check=True, timeout=3600, env=env, cwd=root,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--polls", type=int, default=3, help="polls per scenario (bounded)")
    parser.add_argument("--reference", type=Path, help="another checkout, e.g. main before")
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS))
    args = parser.parse_args()
    polls = max(1, min(args.polls, 20))
    endpoints = [e for e in args.endpoints.split(",") if e in ENDPOINTS]
    roots = {"this": ROOT, **({"reference": args.reference.resolve()} if args.reference else {})}
    port = free_port()
    with tempfile.TemporaryDirectory():
        sim_proc = subprocess.Popen(
            [sys.executable, "-m", "dms_exporter.simulator", "--devices", str(args.devices),
             "--frozen", "--listen-address", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
        )  # fmt: skip
        try:
            sim = f"http://127.0.0.1:{port}"
            wait_ok(f"{sim}/_sim/state", READY_TIMEOUT)
            results = {who: run(root, sim, polls, endpoints) for who, root in roots.items()}
        finally:
            sim_proc.terminate()
            sim_proc.wait(timeout=60)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
          f"{args.devices:,} devices; {polls} polls per scenario; CPU seconds per poll, median")
    print("\n| endpoint | rows | scenario | " + " | ".join(roots) + " | reference / this |")
    print("|---|---:|---|" + "---:|" * len(roots) + "---:|")
    for name in endpoints:
        for scenario, label in (("same", "nothing changed"), ("minute", "a minute of changes")):
            cpu = {who: statistics.median(r[name][scenario]) for who, r in results.items()}
            ratio = f"{cpu['reference'] / cpu['this']:.2f}x" if "reference" in cpu else "-"
            cells = " | ".join(f"{cpu[who]:.3f}" for who in roots)
            print(f"| {name} | {results['this'][name]['rows']:,} | {label} | {cells} | {ratio} |")


if __name__ == "__main__":
    main()
