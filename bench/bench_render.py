"""Time ``render_group`` on synthetic tables and compare the writer with prometheus_client.

    python bench/bench_render.py [--devices 1000,20000,100000] [--runs 3] [--unit-rows 8]
        [--run-bytes 131072] [--run-level 2] [--changes-only]

Full renders per group; renders after a devices poll that changed 1 device, 1 % of them and all
(from the previous render, as the store does); our text writer against prometheus_client's
``generate_latest`` alone (both on prebuilt families); zlib and zlib-ng by level. Each device
has 2 groups, 2 destinations, 4 authorization rows; 2 in 100 devices have an active alarm and
there are 10x as many cleared alarms (retrieval ``all``). Times are CPU seconds of this process
(the render runs in it alone), so other load on the machine moves them less. Prints Markdown.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import random
import statistics
import sys
import time
import zlib
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client.exposition import generate_latest
from zlib_ng import zlib_ng

from dms_exporter import model
from dms_exporter.exposition import render
from dms_exporter.exposition.families import RenderContext
from dms_exporter.exposition.families.devices import device_families
from dms_exporter.exposition.render import GROUPS, render_group
from dms_exporter.exposition.text import Family, render_text

NOW = 1_780_000_000.0
MODELS = ("ProView 7100", "ProView 8130", "ProView 8140", "XOS Edge")
SEVERITIES = ("critical", "major", "minor", "warning", "info")
CODES = ("SIGNAL_LOSS", "TS_SYNC_LOSS", "CC_ERRORS", "PID_MISSING", "GBE_LINK_DOWN")


def synthetic_tables(n: int) -> dict[str, model.Table]:
    """Tables for ``n`` devices, deterministic."""
    states = model.CONNECTION_STATES[:4]
    devices = tuple(
        model.Device(
            id=f"dev-{i:06d}",
            name=f"K{i % 26 + 65:c}{i:05d} Denver",
            unit_address=f"{i:012d}",
            serial_number=f"PV81K-{i // 10000:04d}-{i % 10000:04d}",
            mac_address=f"00:0E:5C:{i >> 16 & 255:02X}:{i >> 8 & 255:02X}:{i & 255:02X}",
            model=MODELS[i % 4],
            device_type="xos_edge" if i % 4 == 3 else "ird",
            firmware_version=f"1.8.{i % 3}.0.26",
            connection_state=states[0] if i % 10 else states[i % 4],
            control_mode="dms" if i % 7 else "local",
            last_contact=NOW - i % 300 if i % 50 else None,
            group_ids=(f"g-region-{i % 8}", f"g-tier-{i % 3}"),
            site=f"Headend {i % 200}",
            region=f"US-{i % 4}",
            authorization_state="authorized" if i % 20 else "partially_authorized",
        )
        for i in range(n)
    )
    groups = tuple(
        model.Group(id=g, name=g.title(), parent_id="", device_count=None)
        for g in sorted({g for d in devices[:50] for g in d.group_ids})
    )
    services = tuple(
        model.Service(id=f"svc-{s}", name=f"Channel {s}", program_number=s, tier="basic")
        for s in range(100, 140)
    )
    sets = tuple(
        model.AuthorizationSet(
            id=f"as-{k}",
            name=f"Package {k}",
            type="permanent",
            enabled=True,
            service_ids=(f"svc-{100 + k}",),
            target_group_ids=(f"g-tier-{k % 3}",),
            target_device_ids=(),
            device_count=n // 3,
            last_modified=NOW,
        )
        for k in range(10)
    )
    schedules = tuple(
        model.ScheduleAuthorization(
            id=f"sa-{k}",
            name=f"Event {k}",
            authorization_set_id="as-0",
            service_ids=("svc-130",),
            target_group_ids=("g-region-0",),
            target_device_ids=(),
            start_time=NOW - 3600,
            end_time=NOW + 3600,
            state="active",
            device_count=n // 8,
        )
        for k in range(5)
    )
    authorizations = tuple(
        model.Authorization(
            device_id=d.id,
            service_id=f"svc-{100 + k}",
            authorization_set_id=f"as-{k}",
            schedule_authorization_id="sa-0" if k == 3 else "",
            source="schedule" if k == 3 else "permanent",
            authorized=k != 2,
            valid_from=None,
            valid_to=None,
        )
        for d in devices
        for k in range(4)
    )
    destinations = tuple(
        model.Destination(
            id=f"dst-{d.id[4:]}-{k}",
            device_id=d.id,
            name=f"Output {k}",
            type="ip",
            enabled=True,
            service_id=f"svc-{100 + k}",
            ip_address=f"239.10.{k}.{i % 250}",
            ip_port=5000 + k,
            status="ok" if i % 30 else "error",
        )
        for i, d in enumerate(devices)
        for k in (1, 2)
    )
    active = [d for i, d in enumerate(devices) if i % 50 == 0]  # 2 in 100
    alarms = tuple(
        model.Alarm(
            id=f"al-{j}",
            device_id=d.id,
            source="device",
            fault_object="DVB-S2 Input 1",
            code=CODES[j % 5],
            description="Input signal lost",
            severity=SEVERITIES[j % 5],
            state="active" if j < len(active) else "cleared",
            asserted_time=NOW - j,
            cleared_time=None if j < len(active) else NOW,
            acknowledged=False,
        )
        for j, d in enumerate(active * 11)
    )
    rows = {
        "system": (model.SystemInfo("DMS-PRIMARY", "11.4.0.0", "primary", NOW, 864000.0, n),),
        "devices": devices, "groups": groups, "services": services,
        "authorization_sets": sets, "schedule_authorizations": schedules,
        "authorizations": authorizations, "destinations": destinations, "alarms": alarms,
    }  # fmt: skip
    return {ep: model.Table(ep, r, NOW) for ep, r in rows.items()}


def timed(fn, runs: int) -> tuple[float, object]:
    """Median CPU seconds of ``runs`` calls, and the last result."""
    times, result = [], None
    for _ in range(runs):
        start = time.process_time()
        result = fn()
        times.append(time.process_time() - start)
    return statistics.median(times), result


def prometheus_client_registry(families: list[Family]):  # type: ignore[no-untyped-def]
    """A registry whose collector yields the same families as prometheus_client objects, built
    here once, so that timing ``generate_latest`` times the peer's writer alone."""
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        InfoMetricFamily,
        StateSetMetricFamily,
    )
    from prometheus_client.registry import CollectorRegistry

    built = []
    for f in families:
        if f.kind == "info":
            m = InfoMetricFamily(f.name, f.help, labels=f.label_names)
            for values, _ in f.samples:
                m.add_metric([], dict(zip(f.label_names, values, strict=True)))
        elif f.kind == "stateset":
            m = StateSetMetricFamily(f.name, f.help, labels=f.label_names[:-1])
            by_key: dict[tuple[str, ...], dict[str, bool]] = {}
            for values, v in f.samples:
                by_key.setdefault(values[:-1], {})[values[-1]] = bool(v)
            for key, value in by_key.items():
                m.add_metric(list(key), value)
        else:
            kind = CounterMetricFamily if f.kind == "counter" else GaugeMetricFamily
            m = kind(f.name, f.help, labels=f.label_names)
            for values, v in f.samples:
                m.add_metric(list(values), v)
        built.append(m)

    class Collector:
        def collect(self):  # type: ignore[no-untyped-def]
            return built

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    return registry


def with_changed_devices(
    tables: dict[str, model.Table], indexes: Iterable[int], field: str = "connection_state"
) -> dict[str, model.Table]:
    """``tables`` with the devices at ``indexes`` changed: their connection state, or their
    last contact moved on a minute (other rows are the same objects, as the poller keeps them)."""
    rows = list(tables["devices"].rows)
    for i in indexes:
        if field == "connection_state":
            state = "offline" if rows[i].connection_state != "offline" else "online"
            rows[i] = dataclasses.replace(rows[i], connection_state=state)
        else:
            rows[i] = dataclasses.replace(rows[i], last_contact=NOW + 60)
    return tables | {"devices": model.Table("devices", tuple(rows), NOW + 60)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="1000,20000,100000")
    parser.add_argument("--runs", type=int, default=3, help="runs per timing (median)")
    parser.add_argument("--compare-at", type=int, default=20000)
    parser.add_argument("--unit-rows", type=int, default=render.UNIT_ROWS, help="items per unit")
    parser.add_argument("--run-bytes", type=int, default=render.RUN_BYTES, help="text per run")
    parser.add_argument("--run-level", type=int, default=render.RUN_LEVEL, help="gzip level")
    parser.add_argument("--changes-only", action="store_true", help="skip the comparisons")
    args = parser.parse_args(argv)
    render.UNIT_ROWS = args.unit_rows
    render.RUN_BYTES, render.RUN_LEVEL = args.run_bytes, args.run_level
    ctx = RenderContext(alarm_retrieval="all")
    print(f"Python {platform.python_version()}, {platform.machine()}; median of {args.runs} runs; "
          f"units of {render.UNIT_ROWS} items, runs of {render.RUN_BYTES:,} bytes at level "
          f"{render.RUN_LEVEL}\n")  # fmt: skip
    print("| devices | group | series | full render (CPU ms) | µs/series | text | gzip |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for n in (int(x) for x in args.devices.split(",")):
        tables = synthetic_tables(n)
        total_series, total_s, total_gz = 0, 0.0, 0
        outputs = {}
        for group in GROUPS:
            seconds, out = timed(lambda g=group, t=tables: render_group(g, t, ctx), args.runs)
            outputs[group] = out
            total_series += out.series
            total_s += seconds
            plain = sum(f.samples.size + f.text_head.size for f in out.families)
            gz = sum(len(f.body) + len(f.text_head.data) for f in out.families)
            total_gz += gz
            print(
                f"| {n:,} | {group} | {out.series:,} | {seconds * 1e3:,.0f} | "
                f"{seconds / max(out.series, 1) * 1e6:.2f} | {_size(plain)} | {_size(gz)} |"
            )
        whole = b"".join(out.plain() for out in outputs.values())
        level6 = len(zlib.compress(whole, 6))
        print(f"| {n:,} | **all** | {total_series:,} | {total_s * 1e3:,.0f} | "
              f"{total_s / total_series * 1e6:.2f} | {_size(len(whole))} | {_size(total_gz)}: "
              f"{total_gz / level6:.2f}x zlib -6 of the text |")  # fmt: skip
        _changes(n, tables, outputs, ctx, args.runs)
    if not args.changes_only:
        _compare(args.compare_at, ctx)
        _gzip_levels(args.compare_at, ctx)


def _changes(n: int, tables, outputs, ctx: RenderContext, runs: int) -> None:  # type: ignore[no-untyped-def]
    """Render of every group after a devices poll, from the previous render, by change size:
    connection states of 1 device, of every 100th, of 1 % at random (seeded) and of all; and
    the live simulator's usual minute, 45 % of devices' last contact moved (random)."""
    rng = random.Random(10)
    cases = {
        "1 device": with_changed_devices(tables, [n // 2]),
        "every 100th": with_changed_devices(tables, range(0, n, 100)),
        "1 % at random": with_changed_devices(tables, rng.sample(range(n), n // 100)),
        "45 % last contact": with_changed_devices(
            tables, rng.sample(range(n), n * 45 // 100), "last_contact"
        ),
        "all": with_changed_devices(tables, range(n)),
    }
    results = {}
    for label, changed in cases.items():
        results[label], _ = timed(
            lambda c=changed: [render_group(g, c, ctx, outputs[g]) for g in GROUPS], runs
        )
    print(f"\nrender after a devices poll at {n:,} devices (CPU): "
          + ", ".join(f"{k} {v * 1e3:,.0f} ms ({v / results['all'] * 100:.1f} % of all)"
                      for k, v in results.items()) + "\n")  # fmt: skip


def _compare(n: int, ctx: RenderContext) -> None:
    tables = synthetic_tables(n)
    families = device_families(tables["devices"], tables["groups"], tables["services"], ctx)
    series = sum(len(f.samples) for f in families)
    registry = prometheus_client_registry(families)
    ours, _ = timed(lambda: render_text(families), 1)
    theirs, _ = timed(lambda: generate_latest(registry), 1)
    print(f"\nText 0.0.4 of the `devices` group's families at {n:,} devices ({series:,} series),")
    print("families prebuilt for both (not timed), one run:\n")
    print("| writer | ms | µs/series |")
    print("|---|---:|---:|")
    for name, s in (("dms_exporter.exposition.text.render_text", ours),
                    ("prometheus_client generate_latest", theirs)):  # fmt: skip
        print(f"| {name} | {s * 1e3:,.0f} | {s / series * 1e6:.2f} |")
    print(f"\nprometheus_client / ours: {theirs / ours:.1f}x")


def _gzip_levels(n: int, ctx: RenderContext) -> None:
    """Deflate of the ``devices`` text in one piece, zlib against zlib-ng, by level."""
    text = render_group("devices", synthetic_tables(n), ctx).plain()
    print(f"\ndeflate of the `devices` text at {n:,} devices ({_size(len(text))}), one piece:\n")
    print("| library | level | compress ms | size | inflate ms |")
    print("|---|---:|---:|---:|---:|")
    for name, lib in (("zlib", zlib), ("zlib-ng", zlib_ng)):
        for level in (1, 2, 6, 9):
            seconds, data = timed(lambda lv=level, z=lib: z.compress(text, lv), 1)
            back, _ = timed(lambda d=data, z=lib: z.decompress(d), 1)
            print(f"| {name} | {level} | {seconds * 1e3:,.0f} | {_size(len(data))} | "
                  f"{back * 1e3:,.0f} |")  # fmt: skip


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


if __name__ == "__main__":
    main()
