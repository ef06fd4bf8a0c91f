"""The request budget: at most dms.max_concurrency requests in flight to the DMS, priority for
alarms and system, and a Retry-After that slows every endpoint."""

from __future__ import annotations

import asyncio

import pytest
from conftest import exporter_config

from dms_exporter.dms import DmsClient
from dms_exporter.errors import DmsUnavailableError


async def test_the_dms_never_sees_more_than_the_budget(simulator, start_exporter):
    # nine endpoints polled every second, each request 0.2 s, and refreshes on top
    config = exporter_config(
        simulator, defaults={"interval": "1s", "timeout": "900ms"}, dms={
            "url": simulator.base_url, "username": simulator.username,
            "password": simulator.password, "proxy": "direct", "page_size": 10,
        },
    )  # fmt: skip
    assert config.dms.max_concurrency == 2  # the default
    simulator.add_fault(endpoint="*", kind="latency", seconds=0.2)
    client = await start_exporter(config, wait_ready=False)
    simulator.reset_request_counts()
    for _ in range(3):
        await asyncio.gather(*(client.post(f"/-/refresh/{name}") for name in config.endpoints))
    await asyncio.sleep(1.0)
    assert sum(simulator.request_counts.values()) > 20  # the DMS was kept busy
    assert simulator.peak_in_flight == 2


async def test_alarms_go_before_the_endpoints_queued_ahead_of_them(simulator, start_exporter):
    config = exporter_config(simulator, dms={
        "url": simulator.base_url, "username": simulator.username,
        "password": simulator.password, "proxy": "direct", "max_concurrency": 1,
    })  # fmt: skip
    client = await start_exporter(config)
    for name in ("groups", "services", "destinations"):
        simulator.add_fault(endpoint=name, kind="latency", seconds=1.0, count=1)
    loop = asyncio.get_running_loop()
    done: dict[str, float] = {}

    async def refresh(name: str) -> None:
        assert (await client.post(f"/-/refresh/{name}")).status == 200
        done[name] = loop.time()

    tasks = []
    for name in ("groups", "services", "destinations", "alarms"):  # alarms asks last
        tasks.append(asyncio.create_task(refresh(name)))
        await asyncio.sleep(0.15)
    await asyncio.gather(*tasks)
    # one slot: groups was in flight; alarms went next, before the two queued ahead of it
    assert done["groups"] < done["alarms"] < min(done["services"], done["destinations"])


async def test_a_retry_after_slows_every_endpoint(simulator):
    config = exporter_config(simulator)
    simulator.add_fault(endpoint="devices", kind="status", status=503, retry_after=2, count=1)
    loop = asyncio.get_running_loop()
    async with DmsClient(config.dms) as client:
        with pytest.raises(DmsUnavailableError):
            await client.fetch(config.endpoints["devices"])
        simulator.reset_request_counts()
        started = loop.time()
        await client.fetch(config.endpoints["groups"])  # another endpoint
        assert loop.time() - started >= 1.5
        assert simulator.request_counts["groups"] == 1
