"""Every fault kind, as a client sees it; one-shot and persistent faults; the control API."""

from __future__ import annotations

import time

import aiohttp
import pytest
from sim_client import Dms

from dms_exporter.simulator import FaultError, parse_fault_spec, start_simulator

TIMEOUT = aiohttp.ClientTimeout(total=10)


@pytest.fixture
async def dms():
    async with (
        start_simulator(devices=40, seed=5, frozen=True) as sim,
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
    ):
        dms = Dms(sim, session)
        await dms.login()
        yield dms


async def test_status_faults_one_shot_with_retry_after(dms: Dms) -> None:
    dms.sim.add_fault("devices", "status", status=503, count=2, retry_after=7)
    for _ in range(2):
        reply = await dms.get("/devices")
        assert reply.status == 503 and reply.headers["Retry-After"] == "7"
        assert reply.error_code() == "SERVICE_UNAVAILABLE"
    assert (await dms.get("/devices")).status == 200  # used up
    assert dms.sim.faults.faults == []

    dms.sim.add_fault("alarms", "status", status=429, retry_after=2)  # persistent
    for _ in range(3):
        reply = await dms.get("/alarms", state="active")
        assert reply.status == 429 and reply.error_code() == "TOO_MANY_REQUESTS"
    assert (await dms.get("/groups")).status == 200  # other endpoints are not touched
    assert dms.sim.clear_faults() == 1
    assert (await dms.get("/alarms")).status == 200

    dms.sim.add_fault("system", "status", status=500, count=1)
    reply = await dms.get("/system/info")
    assert reply.status == 500 and "Retry-After" not in reply.headers
    assert reply.error_code() == "INTERNAL_ERROR"


async def test_latency(dms: Dms) -> None:
    dms.sim.add_fault("groups", "latency", seconds=0.3, count=1)
    started = time.monotonic()
    assert (await dms.get("/groups")).status == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    await dms.get("/groups")
    assert time.monotonic() - started < 0.3


async def test_truncated_and_html_bodies_are_not_json(dms: Dms) -> None:
    good = (await dms.get("/services")).body
    dms.sim.add_fault("services", "truncated", count=1)
    cut = await dms.get("/services")
    assert cut.status == 200 and cut.json is None
    assert good.startswith(cut.body) and len(cut.body) == len(good) // 2

    dms.sim.add_fault("services", "html", count=1)
    page = await dms.get("/services")
    assert page.status == 200 and page.json is None
    assert page.headers["Content-Type"].startswith("text/html") and b"<html>" in page.body
    dms.sim.add_fault("services", "html", status=502, count=1)
    page = await dms.get("/services")
    assert page.status == 502 and b"502 Bad Gateway" in page.body


async def test_dropped_connections(dms: Dms) -> None:
    dms.sim.add_fault("destinations", "drop_connection", count=1)
    with pytest.raises(aiohttp.ClientPayloadError):
        await dms.get("/destinations")
    # aiohttp retries a GET once when a kept-alive connection closes before any byte comes
    # back, so a before_headers drop needs count=2 to be seen by such a client
    dms.sim.add_fault("destinations", "drop_connection", before_headers=True, count=2)
    before = dms.sim.request_counts["destinations"]
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await dms.get("/destinations")
    assert dms.sim.request_counts["destinations"] == before + 2
    assert (await dms.get("/destinations")).status == 200  # the server is fine


async def test_wrong_types(dms: Dms) -> None:
    dms.sim.add_fault("services", "wrong_types", count=1)
    items = (await dms.get("/services")).json["items"]
    assert all(isinstance(s["programNumber"], str) for s in items)
    dms.sim.add_fault("devices", "wrong_types", every=2, count=1)
    devices = (await dms.get("/devices", limit=4)).json["items"]
    assert isinstance(devices[0]["location"], list) and isinstance(devices[0]["groupIds"], str)
    assert isinstance(devices[0]["unitAddress"], int)
    assert isinstance(devices[1]["location"], dict)  # every second item only
    dms.sim.add_fault("system", "wrong_types", where="body", count=1)
    assert isinstance((await dms.get("/system/info")).json, list)
    dms.sim.add_fault("groups", "wrong_types", where="body", count=1)
    page = (await dms.get("/groups")).json
    assert isinstance(page["total"], str) and isinstance(page["items"], dict)


async def test_unknown_enums_missing_fields_unknown_ids(dms: Dms) -> None:
    dms.sim.add_fault("devices", "unknown_enums", count=1)
    device = (await dms.get("/devices", limit=1)).json["items"][0]
    assert device["connectionState"] == "HIBERNATING" and device["deviceType"] not in (
        "IRD",
        "XOS_EDGE",
    )

    dms.sim.add_fault("devices", "missing_fields", count=1)
    device = (await dms.get("/devices", limit=1)).json["items"][0]
    assert "id" in device and "connectionState" not in device and "lastContact" not in device
    dms.sim.add_fault("alarms", "missing_fields", fields=["severity", "id"], null=True, count=1)
    alarm = (await dms.get("/alarms", limit=1)).json["items"][0]
    assert alarm["severity"] is None and alarm["id"] is None and alarm["code"]

    known = {d["id"] for d in await dms.page_all("/devices")}
    dms.sim.add_fault("destinations", "unknown_ids", count=1)
    outputs = (await dms.get("/destinations")).json["items"]
    assert outputs and not {o["deviceId"] for o in outputs} & known
    dms.sim.add_fault("authorizations", "unknown_ids", count=1)
    rows = (await dms.get("/authorizations")).json["items"]
    assert not {r["deviceId"] for r in rows} & known


async def test_endless_paging(dms: Dms) -> None:
    dms.sim.add_fault("groups", "endless_paging")
    totals, offset = [], 0
    for _ in range(5):
        page = (await dms.get("/groups", offset=offset, limit=10)).json
        assert len(page["items"]) == 10  # always a full page, also past the real end
        totals.append(page["total"])
        offset += 10
    assert totals == sorted(totals) and totals[-1] > offset
    with pytest.raises(AssertionError, match="more than 20 pages"):
        await dms.page_all("/groups", limit=10, max_pages=20)
    ids = [g["id"] for g in (await dms.get("/groups", offset=0, limit=1000)).json["items"]]
    assert len(ids) == len(set(ids)) == 1000


async def test_token_faults_per_endpoint(dms: Dms) -> None:
    dms.sim.add_fault("devices", "expire_token", count=1)
    reply = await dms.get("/devices")
    assert reply.status == 401 and reply.error_code() == "TOKEN_EXPIRED"
    await dms.login()
    assert (await dms.get("/devices")).status == 200
    dms.sim.add_fault("alarms", "revoke_token", count=1)
    assert (await dms.get("/alarms")).error_code() == "TOKEN_REVOKED"


async def test_skip_wildcard_and_login_faults(dms: Dms) -> None:
    dms.sim.add_fault("devices", "status", status=503, count=1, skip=2)  # fail the third page
    statuses = [(await dms.get("/devices", offset=k * 10, limit=10)).status for k in range(4)]
    assert statuses == [200, 200, 503, 200]

    dms.sim.add_fault("*", "status", status=503, count=2)
    assert (await dms.get("/groups")).status == 503
    assert (await dms.login()).status == 503  # the wildcard covers login too
    assert (await dms.login()).status == 200

    dms.sim.add_fault("login", "missing_fields", count=1)
    reply = await dms.login()
    assert reply.status == 200 and "token" not in reply.json
    assert dms.sim.request_counts["login"] == 4


async def test_faults_over_the_control_api(dms: Dms) -> None:
    reply = await dms.control(
        "POST", "/faults", {"endpoint": "devices", "kind": "status", "status": 503, "count": 2}
    )
    assert reply.status == 201 and reply.json["count"] == 2
    fault_id = reply.json["id"]
    reply = await dms.control("POST", "/faults", {"spec": "groups=latency:0.01"})
    assert reply.json["params"] == {"seconds": 0.01}
    listed = (await dms.control("GET", "/faults")).json
    assert [f["id"] for f in listed] == [fault_id, reply.json["id"]]
    assert (await dms.get("/devices")).status == 503
    assert (await dms.control("GET", "/faults")).json[0]["hits"] == 1
    assert (await dms.control("DELETE", f"/faults/{fault_id}")).json == {"cleared": 1}
    assert (await dms.get("/devices")).status == 200
    assert (await dms.control("DELETE", f"/faults/{fault_id}")).status == 404
    assert (await dms.control("DELETE", "/faults")).json == {"cleared": 1}

    for bad in (
        {"endpoint": "nope", "kind": "status"},
        {"endpoint": "devices", "kind": "boom"},
        {"endpoint": "devices", "kind": "status", "status": "x"},
        {"endpoint": "devices", "kind": "latency", "colour": 1},
        {"endpoint": "devices", "kind": "status", "count": 0},
    ):
        reply = await dms.control("POST", "/faults", bad)
        assert reply.status == 400 and reply.error_code() == "BAD_REQUEST", bad
    async with dms.session.post(dms.sim.control_url + "/faults", data=b"{") as resp:
        assert resp.status == 400


def test_fault_spec_syntax() -> None:
    assert parse_fault_spec("devices=status:503") == {
        "endpoint": "devices",
        "kind": "status",
        "status": 503,
    }
    assert parse_fault_spec("alarms=status:429,retry_after=5,count=2,skip=1") == {
        "endpoint": "alarms",
        "kind": "status",
        "status": 429,
        "retry_after": 5,
        "count": 2,
        "skip": 1,
    }
    assert parse_fault_spec("*=latency:0.5")["seconds"] == 0.5
    assert parse_fault_spec("destinations=missing_fields,fields=status+type,null=true") == {
        "endpoint": "destinations",
        "kind": "missing_fields",
        "fields": ["status", "type"],
        "null": True,
    }
    assert parse_fault_spec("groups=wrong_types,where=body")["where"] == "body"
    for bad in ("devices", "devices=", "devices=unknown_ids:3", "devices=status:503,count"):
        with pytest.raises(FaultError):
            parse_fault_spec(bad)


async def test_faults_given_at_start() -> None:
    async with (
        start_simulator(
            devices=10,
            frozen=True,
            bare_arrays=True,
            faults=[
                "devices=status:503,count=1",
                {"endpoint": "destinations", "kind": "unknown_ids"},
            ],
        ) as sim,
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
    ):
        dms = Dms(sim, session)
        assert (await dms.get("/devices")).status == 503
        assert len((await dms.get("/devices")).json) == 10
        outputs = (await dms.get("/destinations")).json
        assert isinstance(outputs, list) and len(outputs) >= 10
        assert all(o["deviceId"].startswith("dev-unknown-") for o in outputs)
