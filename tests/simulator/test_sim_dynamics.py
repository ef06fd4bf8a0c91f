"""The DMS lives: devices come and go, alarms are raised and cleared, schedules follow the clock;
and tests can change it on demand, in Python or over the control API."""

from __future__ import annotations

import aiohttp
from sim_client import Dms, eventually

from dms_exporter.simulator import start_simulator
from dms_exporter.simulator.clock import parse_iso

TIMEOUT = aiohttp.ClientTimeout(total=10)


async def test_a_live_dms_changes_by_itself() -> None:
    async with (
        start_simulator(devices=80, seed=2, change_rate=0.3, tick_interval=0.02) as sim,
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
    ):
        dms = Dms(sim, session)
        devices = {d["id"]: d for d in await dms.page_all("/devices")}
        alarms = {a["id"]: a for a in await dms.page_all("/alarms")}
        outputs = {o["id"]: o for o in await dms.page_all("/destinations")}
        expired = {
            s["id"]: s
            for s in await dms.page_all("/schedule-authorizations")
            if s["state"] == "EXPIRED"
        }
        assert expired

        async def changed(path: str, before: dict, field: str) -> bool:
            now = {i["id"]: i for i in await dms.page_all(path)}
            return any(now[k][field] != v[field] for k, v in before.items() if k in now)

        await eventually(lambda: changed("/devices", devices, "connectionState"))
        await eventually(lambda: changed("/devices", devices, "lastContact"))
        await eventually(lambda: changed("/destinations", outputs, "status"))

        async def new_and_cleared() -> bool:
            now = {a["id"]: a for a in await dms.page_all("/alarms")}
            raised = set(now) - set(alarms)
            cleared = [
                k
                for k, a in alarms.items()
                if a["state"] == "ACTIVE" and now.get(k, {}).get("state") == "CLEARED"
            ]
            return bool(raised) and bool(cleared)

        await eventually(new_and_cleared)

        async def rescheduled() -> bool:  # an expired schedule gets its next window
            now = {s["id"]: s for s in await dms.page_all("/schedule-authorizations")}
            return any(
                s["state"] == "PENDING" and s["startTime"] > expired[k]["endTime"]
                for k, s in now.items()
                if k in expired
            )

        await eventually(rescheduled)
        info = (await dms.get("/system/info")).json
        assert info["serverTime"] > "2026-06-01"  # live mode runs on the wall clock


async def test_alarm_counts_stay_realistic_over_many_ticks() -> None:
    async with start_simulator(devices=500, seed=4, frozen=True, change_rate=0.05) as sim:
        for _ in range(400):
            sim.tick()
        counts = sim.world.counts()
        assert 3 <= counts["alarms_active"] <= 40  # about 2 per 100 devices
        assert counts["alarms_cleared"] <= 1.1 * 10 * 10 + 1  # history trimmed to ~10x
        assert counts["devices_online"] > 0.75 * 500


async def test_advancing_the_clock_moves_schedule_windows() -> None:
    async with (
        start_simulator(devices=100, seed=6, frozen=True) as sim,
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
    ):
        dms = Dms(sim, session)
        schedules = await dms.page_all("/schedule-authorizations")
        pending = min(
            (s for s in schedules if s["state"] == "PENDING"), key=lambda s: s["startTime"]
        )
        assert pending["deviceCount"] > 0

        async def state_and_rows() -> tuple[str, list[dict]]:
            await dms.login()  # moving the clock by hours expires the token
            s = (await dms.get(f"/schedule-authorizations/{pending['id']}")).json
            rows = [
                r
                for r in await dms.page_all("/authorizations")
                if r["scheduleAuthorizationId"] == pending["id"]
            ]
            return s["state"], rows

        state, rows = await state_and_rows()
        assert state == "PENDING" and rows and not any(r["authorized"] for r in rows)

        start = parse_iso(pending["startTime"]) - sim.world.clock.now()
        end = parse_iso(pending["endTime"]) - sim.world.clock.now()
        sim.advance_clock(start + 1)
        state, rows = await state_and_rows()
        assert state == "ACTIVE"
        assert {r["validFrom"] for r in rows} == {pending["startTime"]}
        assert sum(r["authorized"] for r in rows) >= len(rows) * 0.8  # deauthorized devices: no

        reply = await dms.control("POST", "/clock/advance", {"seconds": end - start})
        assert reply.status == 200 and reply.json["clock"] > pending["endTime"]
        state, rows = await state_and_rows()
        assert state == "EXPIRED" and rows == []
        assert (await dms.get("/system/info")).json["serverTime"] == reply.json["clock"]


async def test_changing_devices_and_alarms_on_demand() -> None:
    async with (
        start_simulator(devices=30, seed=8, frozen=True) as sim,
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
    ):
        dms = Dms(sim, session)
        alarm = sim.raise_alarm(
            device_id="dev-000003",
            severity="CRITICAL",
            code="SIGNAL_LOSS",
            fault_object="DVB-S2 Input 1",
        )
        assert alarm["state"] == "ACTIVE" and alarm["assertedTime"] == "2026-06-01T12:00:00Z"
        active = await dms.page_all("/alarms", state="active")
        assert alarm in active
        cleared = sim.clear_alarm(alarm["id"])
        assert cleared["state"] == "CLEARED" and cleared["clearedTime"]
        assert alarm["id"] not in {a["id"] for a in await dms.page_all("/alarms", state="active")}
        assert cleared in await dms.page_all("/alarms", state="cleared")

        sim.set_device("dev-000003", connectionState="OFFLINE", name="Renamed")
        device = (await dms.get("/devices/dev-000003")).json
        assert (device["connectionState"], device["name"]) == ("OFFLINE", "Renamed")
        assert sim.world.devices["dev-000003"]["connectionState"] == "OFFLINE"

        sim.set_device("dev-000004", authorizationState="DEAUTHORIZED")
        rows = (await dms.get("/authorizations", deviceId="dev-000004")).json["items"]
        assert rows and not any(r["authorized"] for r in rows)

        # the same over HTTP
        reply = await dms.control(
            "POST",
            "/alarms",
            {
                "deviceId": None,
                "severity": "WARNING",
                "code": "OTA_COMMAND_FAILED",
                "faultObject": "OTA Carrier 2",
            },
        )
        assert reply.status == 201 and reply.json["source"] == "DMS"
        assert reply.json["deviceId"] is None
        dms_alarm = reply.json
        assert dms_alarm in await dms.page_all("/alarms", state="active")
        reply = await dms.control("POST", f"/alarms/{dms_alarm['id']}/clear")
        assert reply.json["state"] == "CLEARED"
        reply = await dms.control("POST", "/devices/dev-000005", {"connectionState": "UNKNOWN"})
        assert reply.status == 200
        assert (await dms.get("/devices/dev-000005")).json["connectionState"] == "UNKNOWN"
        reply = await dms.control("POST", "/destinations/dst-000005-1", {"status": "ERROR"})
        assert (await dms.get("/destinations/dst-000005-1")).json["status"] == "ERROR"

        for method, path, body in (
            ("POST", "/devices/dev-999999", {"name": "x"}),
            ("POST", "/alarms/al-1/clear", None),
            ("POST", "/alarms", {"deviceId": "dev-999999"}),
        ):
            reply = await dms.control(method, path, body)
            assert reply.status == 404 and reply.error_code() == "NOT_FOUND", path
        reply = await dms.control("POST", "/alarms", {"colour": "red"})
        assert reply.status == 400 and reply.error_code() == "BAD_REQUEST"

        state = (await dms.control("GET", "/state")).json
        assert state["clock"] == "2026-06-01T12:00:00Z" and state["frozen"] is True
        assert state["counts"]["devices"] == 30
        assert state["requestCounts"]["alarms"] >= 4
        assert sim.request_counts["devices"] >= 2
        await dms.control("DELETE", "/request-counts")
        assert set(sim.request_counts.values()) == {0}
