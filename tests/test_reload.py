"""Reload as a diff: only what changed is touched; pollers, tables, client and token are kept."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import yaml
from conftest import exporter_config, samples, scrape

from dms_exporter.config import load_config
from dms_exporter.web.app import EXPORTER_KEY


def write(path: Any, sim: Any, **extra: Any) -> str:
    """A config file for ``sim`` with ``extra`` top-level keys; returns its name."""
    data = {
        "dms": {"url": sim.base_url, "username": sim.username, "password": sim.password,
                "proxy": "direct", "timeout": "5s"},
        "defaults": {"interval": "60s"},
        "refresh_min_gap": 0,
        **extra,
    }  # fmt: skip
    path.write_text(yaml.safe_dump(data))
    return str(path)


def dms_requests(sim: Any) -> int:
    return sum(sim.request_counts.values())


async def test_reload_of_an_unchanged_file_touches_nothing(simulator, start_exporter, tmp_path):
    name = write(tmp_path / "dms.yml", simulator)
    client = await start_exporter(load_config(name), config_file=name)
    exporter = client.server.app[EXPORTER_KEY]
    pollers = dict(exporter._pollers)
    simulator.reset_request_counts()
    for _ in range(20):
        assert (await client.post("/-/reload")).status == 200
    assert dms_requests(simulator) == 0
    assert exporter._pollers == pollers  # the same poller objects, still running


async def test_timing_and_display_name_changes_poll_nothing(simulator, start_exporter, tmp_path):
    name = write(tmp_path / "dms.yml", simulator)
    client = await start_exporter(load_config(name), config_file=name)
    exporter = client.server.app[EXPORTER_KEY]
    devices_poller = exporter._pollers["devices"]
    simulator.reset_request_counts()
    write(
        tmp_path / "dms.yml",
        simulator,
        endpoints={"devices": {"interval": "45s", "timeout": "20s", "stale_after": "10m"}},
        display_names={"devices": {"dev-000004": "New Rack"}},
        allow_schedule_authorization=False,
    )
    assert (await client.post("/-/reload")).status == 200
    body = await scrape(client)
    assert samples(body, "dms_device_info", device_id="dev-000004", display_name="New Rack")
    assert len(samples(body, "dms_device_info")) == 40  # the table was kept
    assert not samples(body, "dms_schedule_authorization_info")  # the switch re-rendered
    assert dms_requests(simulator) == 0  # and nothing was polled for it
    assert exporter._pollers["devices"] is devices_poller
    assert devices_poller.settings.interval == 45.0


async def test_a_poll_in_flight_survives_a_reload(simulator, start_exporter, tmp_path):
    name = write(tmp_path / "dms.yml", simulator)
    client = await start_exporter(load_config(name), config_file=name)
    simulator.reset_request_counts()
    simulator.add_fault(endpoint="devices", kind="latency", seconds=1.0, count=1)
    refresh = asyncio.create_task(client.post("/-/refresh/devices"))
    await asyncio.sleep(0.3)
    write(tmp_path / "dms.yml", simulator, endpoints={"alarms": {"interval": "30s"}})
    assert (await client.post("/-/reload")).status == 200
    response = await asyncio.wait_for(refresh, timeout=10)
    assert response.status == 200  # not cancelled by the reload
    assert simulator.request_counts["devices"] == 1
    assert simulator.request_counts["login"] == 0


async def test_a_new_dms_url_logs_in_again_and_keeps_the_tables(simulator, start_exporter):
    config = exporter_config(simulator)
    client = await start_exporter(config)
    exporter = client.server.app[EXPORTER_KEY]
    simulator.reset_request_counts()
    same_server = simulator.base_url.replace("127.0.0.1", "localhost")
    moved = dataclasses.replace(config.dms, url=same_server)
    await exporter.apply_config(dataclasses.replace(config, dms=moved))
    assert len(samples(await scrape(client), "dms_device_info")) == 40  # kept meanwhile
    for _ in range(100):  # bounded: until the new pollers have polled
        if simulator.request_counts["alarms"] and simulator.request_counts["devices"]:
            break
        await asyncio.sleep(0.05)
    assert simulator.request_counts["login"] == 1  # one login for all the new pollers
    assert len(samples(await scrape(client), "dms_device_info")) == 40


async def test_disabling_an_endpoint_drops_it_and_enabling_polls_it(simulator, start_exporter):
    config = exporter_config(simulator)
    client = await start_exporter(config)
    exporter = client.server.app[EXPORTER_KEY]
    off = exporter_config(simulator, endpoints={"destinations": {"enabled": False}})
    await exporter.apply_config(off)
    assert not samples(await scrape(client), "dms_destination_info")
    simulator.reset_request_counts()
    await exporter.apply_config(config)
    for _ in range(100):  # bounded: until the new poller has polled
        if samples(await scrape(client), "dms_destination_info"):
            break
        await asyncio.sleep(0.05)
    assert samples(await scrape(client), "dms_destination_info")
    assert simulator.request_counts["destinations"] == 1
    assert dms_requests(simulator) == 1  # nothing else was polled, no login


async def test_reloads_in_a_row_never_drop_series_nor_log_in(simulator, start_exporter, tmp_path):
    # a small copy of bench/bench_reload.py: 20 reloads cycling through four files
    name = write(tmp_path / "dms.yml", simulator)
    client = await start_exporter(load_config(name), config_file=name)
    simulator.reset_request_counts()
    variants: list[dict[str, Any]] = [
        {},
        {"display_names": {"devices": {"dev-000001": "Renamed"}}},
        {"endpoints": {"alarms": {"interval": "20s"}}},
        {"endpoints": {"devices": {"timeout": "40s"}}},
    ]
    fewest = 40
    for i in range(20):
        write(tmp_path / "dms.yml", simulator, **variants[i % len(variants)])
        assert (await client.post("/-/reload")).status == 200
        fewest = min(fewest, len(samples(await scrape(client), "dms_device_info")))
    assert fewest == 40
    assert dms_requests(simulator) == 0  # nothing polled, no login
