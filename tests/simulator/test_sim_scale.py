"""20,000 devices: quick to start, and every page served without the server lagging."""

from __future__ import annotations

import time

import aiohttp
from sim_client import Dms

from dms_exporter.simulator import start_simulator


async def test_twenty_thousand_devices_page_through_quickly() -> None:
    started = time.monotonic()
    async with (
        start_simulator(devices=20000, seed=1) as sim,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session,
    ):
        assert time.monotonic() - started < 10
        dms = Dms(sim, session)
        started = time.monotonic()
        devices = await dms.page_all("/devices", limit=1000)
        outputs = await dms.page_all("/destinations", limit=1000)
        elapsed = time.monotonic() - started
        assert len({d["id"] for d in devices}) == 20000
        assert len({o["id"] for o in outputs}) == len(outputs) > 20000
        assert elapsed < 10, elapsed  # typically well under a second
