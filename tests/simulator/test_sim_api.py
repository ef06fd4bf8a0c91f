"""The API contract of docs/dms-api.md, over real HTTP: endpoints, envelope, paging, filters,
errors."""

from __future__ import annotations

import asyncio
import re
from collections import Counter

import aiohttp
import pytest
from sim_client import Dms

from dms_exporter.simulator import start_simulator

TIMEOUT = aiohttp.ClientTimeout(total=10)
FIELDS = {
    "/devices": {
        "id",
        "unitAddress",
        "serialNumber",
        "macAddress",
        "model",
        "deviceType",
        "firmwareVersion",
        "name",
        "connectionState",
        "controlMode",
        "lastContact",
        "groupIds",
        "location",
        "authorizationState",
    },
    "/groups": {"id", "name", "parentId", "deviceCount"},
    "/services": {"id", "name", "programNumber", "tier"},
    "/authorization-sets": {
        "id",
        "name",
        "type",
        "enabled",
        "serviceIds",
        "targetGroupIds",
        "targetDeviceIds",
        "deviceCount",
        "lastModified",
    },
    "/schedule-authorizations": {
        "id",
        "name",
        "authorizationSetId",
        "serviceIds",
        "targetGroupIds",
        "targetDeviceIds",
        "startTime",
        "endTime",
        "state",
        "deviceCount",
    },
    "/authorizations": {
        "deviceId",
        "serviceId",
        "authorizationSetId",
        "scheduleAuthorizationId",
        "source",
        "authorized",
        "validFrom",
        "validTo",
    },
    "/destinations": {
        "id",
        "deviceId",
        "name",
        "type",
        "enabled",
        "serviceId",
        "ipAddress",
        "ipPort",
        "status",
    },
    "/alarms": {
        "id",
        "deviceId",
        "source",
        "faultObject",
        "code",
        "description",
        "severity",
        "state",
        "assertedTime",
        "clearedTime",
        "acknowledged",
        "recoveryTip",
    },
}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
async def dms():
    async with (
        start_simulator(devices=120, seed=3, frozen=True) as sim,
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
    ):
        yield Dms(sim, session)


async def test_every_endpoint_serves_the_documented_objects(dms: Dms) -> None:
    info = (await dms.get("/system/info")).json
    assert set(info) == {
        "name",
        "version",
        "serverTime",
        "uptimeSeconds",
        "licensedDevices",
        "role",
    }
    assert info["serverTime"] == "2026-06-01T12:00:00Z" and info["version"] == "11.4.0.0"
    assert info["role"] in ("PRIMARY", "BACKUP", "STANDALONE") and info["uptimeSeconds"] > 0
    for path, fields in FIELDS.items():
        items = await dms.page_all(path)
        assert items, path
        for item in items:
            assert set(item) == fields, (path, item)
    device = (await dms.get("/devices", limit=1)).json["items"][0]
    assert set(device["location"]) == {"site", "region"}


async def test_envelope_and_paging_edges(dms: Dms) -> None:
    first = (await dms.get("/devices")).json
    assert (first["total"], first["offset"], first["limit"]) == (120, 0, 100)  # default limit
    assert len(first["items"]) == 100
    last = (await dms.get("/devices", offset=100, limit=100)).json
    assert len(last["items"]) == 20 and last["total"] == 120  # the last page is short
    ids = [d["id"] for d in first["items"] + last["items"]]
    assert len(set(ids)) == 120 and ids == sorted(ids)
    past = (await dms.get("/devices", offset=500, limit=10)).json
    assert past == {"total": 120, "offset": 500, "limit": 10, "items": []}
    capped = (await dms.get("/authorizations", limit=5000)).json
    assert capped["limit"] == 1000 and len(capped["items"]) == min(1000, capped["total"])
    for params in ({"limit": 0}, {"limit": -5}, {"limit": "ten"}, {"offset": -1}, {"offset": "x"}):
        reply = await dms.get("/devices", **params)
        assert reply.status == 400 and reply.error_code() == "INVALID_PARAMETER", params


async def test_total_matches_what_paging_returns(dms: Dms) -> None:
    for path in FIELDS:
        total = (await dms.get(path, limit=1)).json["total"]
        assert len(await dms.page_all(path, limit=7)) == total, path


async def test_single_items_filters_and_unknown_paths(dms: Dms) -> None:
    device = (await dms.get("/devices/dev-000007")).json
    assert device["id"] == "dev-000007"
    group_id = device["groupIds"][0]
    assert (await dms.get(f"/groups/{group_id}")).json["id"] == group_id
    missing = await dms.get("/devices/dev-999999")
    assert missing.status == 404 and missing.error_code() == "NOT_FOUND"

    rows = (await dms.get("/authorizations", deviceId="dev-000007")).json["items"]
    assert rows and {r["deviceId"] for r in rows} == {"dev-000007"}
    assert len({r["serviceId"] for r in rows}) == len(rows)  # one row per device and service
    outputs = (await dms.get("/destinations", deviceId="dev-000007")).json["items"]
    assert 1 <= len(outputs) <= 3 and {d["deviceId"] for d in outputs} == {"dev-000007"}
    assert (await dms.get("/destinations", deviceId="nope")).json["items"] == []

    active = await dms.page_all("/alarms", state="active")
    cleared = await dms.page_all("/alarms", state="cleared")
    everything = await dms.page_all("/alarms")
    assert {a["state"] for a in active} == {"ACTIVE"}
    assert {a["state"] for a in cleared} == {"CLEARED"}
    assert len(active) + len(cleared) == len(everything)
    assert (await dms.page_all("/alarms", state="ALL")) == everything
    bad = await dms.get("/alarms", state="open")
    assert bad.status == 400 and bad.error_code() == "INVALID_PARAMETER"

    for path in ("/nope", "/devices/dev-000001/extra"):
        reply = await dms.get(path)
        assert reply.status == 404 and reply.error_code() == "NOT_FOUND"
    async with dms.session.post(dms.sim.base_url + "/devices", headers=dms.auth_headers()) as resp:
        assert resp.status == 405
        assert (await resp.json())["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_bare_arrays_serve_whole_collections_without_paging() -> None:
    async with (
        start_simulator(devices=120, seed=3, frozen=True) as paged,
        start_simulator(devices=120, seed=3, frozen=True, bare_arrays=True) as bare,
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
    ):
        paged_dms, bare_dms = Dms(paged, session), Dms(bare, session)
        for path in FIELDS:
            whole = (await bare_dms.get(path, offset=5, limit=0)).json  # paging is ignored
            assert isinstance(whole, list)
            assert whole == await paged_dms.page_all(path), path
        active = (await bare_dms.get("/alarms", state="active")).json
        assert active and {a["state"] for a in active} == {"ACTIVE"}


async def test_population_looks_like_a_real_dms() -> None:
    async with (
        start_simulator(devices=400, seed=11, frozen=True) as sim,
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
    ):
        dms = Dms(sim, session)
        devices = await dms.page_all("/devices")
        groups = {g["id"]: g for g in await dms.page_all("/groups")}
        services = {s["id"] for s in await dms.page_all("/services")}
        sets = {s["id"]: s for s in await dms.page_all("/authorization-sets")}
        schedules = await dms.page_all("/schedule-authorizations")
        rows = await dms.page_all("/authorizations")
        outputs = await dms.page_all("/destinations")
        alarms = await dms.page_all("/alarms")

    types = {
        "ProView 7100": "IRD",
        "ProView 8130": "IRD",
        "ProView 8140": "IRD",
        "XOS Edge": "XOS_EDGE",
    }
    assert {d["model"] for d in devices} == set(types)
    device_ids = {d["id"] for d in devices}
    assert (
        len({d["unitAddress"] for d in devices}) == len({d["macAddress"] for d in devices}) == 400
    )
    for d in devices:
        assert re.fullmatch(r"dev-\d{6}", d["id"]) and types[d["model"]] == d["deviceType"]
        assert re.fullmatch(r"\d{12}", d["unitAddress"])
        assert re.fullmatch(r"00:0E:5C(:[0-9A-F]{2}){3}", d["macAddress"])
        assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+\.\d+", d["firmwareVersion"])
        assert 1 <= len(d["groupIds"]) <= 3 and set(d["groupIds"]) <= set(groups)
        assert d["controlMode"] in ("DMS", "LOCAL")
        assert d["authorizationState"] in ("AUTHORIZED", "PARTIALLY_AUTHORIZED", "DEAUTHORIZED")
        assert (d["lastContact"] is None) == (d["connectionState"] == "NEVER_CONNECTED")
    states = Counter(d["connectionState"] for d in devices)
    assert set(states) == {"ONLINE", "OFFLINE", "UNKNOWN", "NEVER_CONNECTED"}
    assert states["ONLINE"] > 0.8 * len(devices)

    members = Counter(g for d in devices for g in d["groupIds"])
    for g in groups.values():
        assert g["parentId"] is None or g["parentId"] in groups
        assert g["deviceCount"] == members[g["id"]]
    assert any(g["parentId"] for g in groups.values())  # nested

    assert {s["type"] for s in sets.values()} == {"PERMANENT"}
    by_set = {k: set() for k in sets}
    seen = set()
    for r in rows:
        assert r["deviceId"] in device_ids and r["serviceId"] in services
        assert r["authorizationSetId"] in sets and (r["deviceId"], r["serviceId"]) not in seen
        seen.add((r["deviceId"], r["serviceId"]))
        if r["source"] == "PERMANENT":
            assert r["scheduleAuthorizationId"] is r["validFrom"] is r["validTo"] is None
            by_set[r["authorizationSetId"]].add(r["deviceId"])
        else:
            assert r["source"] == "SCHEDULE" and ISO.match(r["validFrom"])
    for set_id, s in sets.items():
        assert s["deviceCount"] == len(by_set[set_id]), set_id
    per_device = Counter(r["deviceId"] for r in rows)
    assert set(per_device) == device_ids and min(per_device.values()) >= 2
    assert {s["state"] for s in schedules} == {"PENDING", "ACTIVE", "EXPIRED", "CANCELLED"}
    for s in schedules:
        assert s["startTime"] < s["endTime"] and s["authorizationSetId"] in sets

    assert Counter(Counter(o["deviceId"] for o in outputs).values()).keys() <= {1, 2, 3}
    assert {o["type"] for o in outputs} == {"IP", "ASI", "SDI"}
    assert {o["status"] for o in outputs} <= {"OK", "ERROR", "DISABLED"}
    assert all(o["deviceId"] in device_ids and o["serviceId"] in services for o in outputs)

    active = [a for a in alarms if a["state"] == "ACTIVE"]
    assert 4 <= len(active) <= 12 and len(alarms) - len(active) == 10 * len(active)
    codes = {
        "SIGNAL_LOSS",
        "TS_SYNC_LOSS",
        "CC_ERRORS",
        "PID_MISSING",
        "GBE_LINK_DOWN",
        "DEVICE_NOT_RESPONDING",
        "OTA_COMMAND_FAILED",
        "AUTHORIZATION_FAILED",
    }
    for a in alarms:
        assert a["code"] in codes and ISO.match(a["assertedTime"])
        assert (a["source"] == "DMS") == (a["deviceId"] is None)
        assert a["deviceId"] is None or a["deviceId"] in device_ids
        assert (a["clearedTime"] is None) == (a["state"] == "ACTIVE")
    assert {a["source"] for a in alarms} == {"DEVICE", "DMS"}


async def test_custom_base_path_endpoint_paths_and_field_names() -> None:
    async with (
        start_simulator(
            devices=15,
            frozen=True,
            base_path="/api/dms/v2",
            paths={"devices": "/edge-devices"},
            field_names={"devices": {"connectionState": "commState", "items": "data"}},
        ) as sim,
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
    ):
        assert sim.base_url.endswith("/api/dms/v2")
        dms = Dms(sim, session)
        page = (await dms.get("/edge-devices")).json
        assert set(page) == {"total", "offset", "limit", "data"}
        assert all("commState" in d and "connectionState" not in d for d in page["data"])
        assert (await dms.get("/devices")).status == 404
        assert (await dms.get("/groups")).status == 200


async def test_state_reports_peak_concurrency_and_role():
    async with start_simulator(devices=5, frozen=True, role="BACKUP") as sim:
        sim.add_fault(endpoint="devices", kind="latency", seconds=0.3)
        async with aiohttp.ClientSession() as session:
            dms = Dms(sim, session)
            await dms.login()
            await asyncio.gather(*(dms.get("/devices") for _ in range(3)))
            state = await (await session.get(sim.control_url + "/state")).json()
            assert state["peakInFlight"] == 3 and state["inFlight"] == 0
            assert state["role"] == "BACKUP"
            assert (await dms.get("/system/info")).json["role"] == "BACKUP"
            await session.post(sim.control_url + "/role", json={"role": "PRIMARY"})
            assert (await dms.get("/system/info")).json["role"] == "PRIMARY"
            await session.delete(sim.control_url + "/request-counts")
            state = await (await session.get(sim.control_url + "/state")).json()
            assert state["peakInFlight"] == 0


async def test_a_restarted_simulator_keeps_its_world_and_port() -> None:
    """Stopped, the DMS refuses connections; started again, it answers on the same URL with
    the alarms it had (a DMS restart keeps its database)."""
    async with (
        start_simulator(devices=20, seed=5, frozen=True) as sim,
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
    ):
        dms, url = Dms(sim, session), sim.base_url
        alarm = sim.raise_alarm(None, "CRITICAL", "OTA_COMMAND_FAILED")
        await sim.stop()
        with pytest.raises(aiohttp.ClientConnectionError):
            await dms.get("/alarms")
        await sim.start()
        assert sim.base_url == url
        assert alarm["id"] in {a["id"] for a in await dms.page_all("/alarms")}
