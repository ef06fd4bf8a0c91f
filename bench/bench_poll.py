"""The fetch-and-parse side of a poll, this checkout against another, in one run.

    python bench/bench_poll.py --devices 100000 [--polls 3] [--reference <checkout>]
    python bench/bench_poll.py --devices 100000 --endpoints devices --stages [--polls 5]

A frozen simulator process of ``--devices`` devices on 127.0.0.1; for each checkout, a child
process with the exporter's real DMS client, poller and store polls one endpoint after another
(devices, destinations, authorizations, alarms). Per endpoint, after a first poll: ``--polls``
polls with nothing changed, then ``--polls`` polls each after a minute of the simulator's life
(60 ``POST /_sim/tick``: about 1 % of devices change per tick, so 45 % of them per minute, as
the live simulator between two default devices polls). It prints the CPU seconds of each poll
(median; user + system of the child, all threads), with the store's render switched off, so
the figure is the fetch, JSON decoding, row conversion and comparison with the held table only:
what this module's side of a poll costs, and the ratio reference / this checkout.

With ``--stages`` the render stays on and each poll's CPU is split by stage: *decode* (JSON),
*convert* (the parser: values to rows, each compared with the held row at its place),
*compare* (the table against the held one), *render* (formatting the changed units) and
*compress* (inflating and deflating their runs), *trim* (handing freed heap back); *fetch and
the rest* is what remains (HTTP, asyncio, the store's bookkeeping). Each stage is timed with the
CPU clock of the thread it runs in.

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
try:
    import dms_exporter.polling.poller as poller_module
    import dms_exporter.polling.store as store_module
    import dms_exporter.exposition.render as render_module
    from dms_exporter.exposition import gzipstream
except ImportError:  # a checkout before the packages by role
    import dms_exporter.poller as poller_module
    import dms_exporter.store as store_module
    import dms_exporter.render as render_module
    from dms_exporter import gzipstream
EndpointPoller, Store = poller_module.EndpointPoller, store_module.Store

sim, polls, endpoints = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
stages = sys.argv[4] == "stages"
spent = {}

def timed(stage, fn):
    def wrapper(*args, **kwargs):
        started = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[stage] = spent.get(stage, 0.0) + time.thread_time() - started
    return wrapper

async def no_render(self, groups):
    pass  # the render is the other side of a poll; measured by bench_render / bench_scale

if stages:
    import dms_exporter.dms.client as client_module
    from dms_exporter import heap
    from dms_exporter.vocabulary import Parser
    client_module.decode_json = timed("decode", client_module.decode_json)
    for method in ("feed", "feed_payload", "result"):
        setattr(Parser, method, timed("convert", getattr(Parser, method)))
    poller_module.reuse_unchanged = timed("compare", poller_module.reuse_unchanged)
    store_module.render_group = timed("render", store_module.render_group)
    gzipstream.Compressor.segment = timed("compress", gzipstream.Compressor.segment)
    render_module.inflate = timed("compress", render_module.inflate)
    heap.trim = timed("trim", heap.trim)
else:
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
                cpu, split = [], []
                for _ in range(polls):
                    tick(ticks)
                    spent.clear()
                    started = time.process_time()
                    status = await poller.poll_now()
                    cpu.append(time.process_time() - started)
                    split.append(dict(spent))
                    assert status.last_result == "ok", status
                result[scenario] = cpu
                result[scenario + "_stages"] = split
            out[name] = result
    print(json.dumps(out))

asyncio.run(main())
"""


def run(root: Path, sim: str, polls: int, endpoints: list[str], stages: bool = False) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root)}
    mode = "stages" if stages else "totals"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, sim, str(polls), ",".join(endpoints), mode],
        capture_output=True, text=True, check=True, timeout=3600, env=env, cwd=root,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--polls", type=int, default=3, help="polls per scenario (bounded)")
    parser.add_argument("--reference", type=Path, help="another checkout, e.g. main before")
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS))
    parser.add_argument("--stages", action="store_true", help="render on; CPU split by stage")
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
            results = {
                who: run(root, sim, polls, endpoints, args.stages) for who, root in roots.items()
            }
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
    if args.stages:
        print_stages(results, endpoints)


STAGES = ("decode", "convert", "compare", "render", "compress", "trim")


def print_stages(results: dict, endpoints: list[str]) -> None:
    """CPU seconds per stage (medians over the polls; render includes compress)."""
    print("\n| checkout | endpoint | scenario | poll CPU | fetch and the rest | "
          + " | ".join(STAGES) + " |")  # fmt: skip
    print("|---|---|---|---:|---:|" + "---:|" * len(STAGES))
    for who, result in results.items():
        for name in endpoints:
            for scenario, label in (("same", "nothing changed"), ("minute", "a minute")):
                split = result[name][scenario + "_stages"]
                cpu = statistics.median(result[name][scenario])
                stage = {s: statistics.median(d.get(s, 0.0) for d in split) for s in STAGES}
                rest = cpu - sum(v for s, v in stage.items() if s != "compress")
                cells = " | ".join(f"{stage[s]:.3f}" for s in STAGES)
                print(f"| {who} | {name} | {label} | {cpu:.3f} | {rest:.3f} | {cells} |")


if __name__ == "__main__":
    main()
