"""The same seed gives the same bytes; a different seed gives a different population."""

from __future__ import annotations

import asyncio

import aiohttp
from sim_client import DATA_PATHS, TIMEOUT, Dms

from dms_exporter.simulator import start_simulator


async def snapshot(dms: Dms, limit: int = 37) -> dict[str, list[bytes]]:
    """The raw bytes of every page of every endpoint."""
    pages: dict[str, list[bytes]] = {}
    for path in DATA_PATHS:
        pages[path] = []
        offset = 0
        for _ in range(100):
            reply = await dms.get(path, offset=offset, limit=limit)
            assert reply.status == 200
            pages[path].append(reply.body)
            if path == "/system/info" or offset + limit >= reply.json["total"]:
                break
            offset += limit
    return pages


async def test_same_seed_same_bytes_other_seed_other_population() -> None:
    async with (
        start_simulator(devices=150, seed=42, frozen=True) as one,
        start_simulator(devices=150, seed=42, frozen=True) as two,
        start_simulator(devices=150, seed=43, frozen=True) as other,
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
    ):
        first = await snapshot(Dms(one, session))
        assert first == await snapshot(Dms(two, session))
        different = await snapshot(Dms(other, session))
        assert different["/devices"] != first["/devices"]
        assert different["/alarms"] != first["/alarms"]


async def test_frozen_mode_never_changes() -> None:
    async with (
        start_simulator(
            devices=60, seed=5, frozen=True, change_rate=1.0, tick_interval=0.01
        ) as sim,
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
    ):
        dms = Dms(sim, session)
        before = await snapshot(dms)
        await asyncio.sleep(0.3)  # thirty ticks' worth, if it ticked
        assert await snapshot(dms) == before


async def test_live_mode_same_seed_and_start_time_same_population() -> None:
    start = 1_780_000_000.0
    async with (
        start_simulator(devices=50, seed=9, start_time=start, tick_interval=60) as one,
        start_simulator(devices=50, seed=9, start_time=start, tick_interval=60) as two,
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
    ):
        a, b = Dms(one, session), Dms(two, session)
        for path in DATA_PATHS[1:]:
            assert await a.page_all(path) == await b.page_all(path), path
