"""Any DMS API shape by configuration alone: the simulator speaks each envelope, paging and login
style, and the exporter, told the shape in its config, exports exactly the simulator's truth."""

from __future__ import annotations

import operator
from typing import Any

import pytest
from conftest import exporter_config, samples, scrape, value

from dms_exporter.exporter import Exporter
from dms_exporter.simulator import start_simulator
from dms_exporter.simulator.shapes import ListShape, LoginShape

#: simulator list shape -> the exporter's dms: keys for it
LIST_STYLES: dict[str, dict[str, Any]] = {
    "default": {},
    "bare": {"envelope": "bare", "paging": {"style": "none"}},
    # Django REST framework: {count, next, results}, the next page's URL in the body
    "drf": {
        "envelope": {"items": "results", "total": "count"},
        "paging": {"style": "next", "next_path": "next", "size_param": "page_size"},
    },
    # JSON:API: {data, meta, links} with page[number] and page[size] from 1
    "jsonapi": {
        "envelope": {"items": "data", "total": "meta.total"},
        "paging": {"style": "page", "page_param": "page[number]", "size_param": "page[size]"},
    },
    # Spring Data: {content, totalElements} with page and size from 0
    "spring": {
        "envelope": {"items": "content", "total": "totalElements"},
        "paging": {"style": "page", "page_param": "page", "size_param": "size", "first_page": 0},
    },
    # bare arrays, the next page in the Link header
    "link": {
        "envelope": "bare",
        "paging": {"style": "next", "next_header": True, "size_param": "per_page"},
    },
    "cursor": {
        "envelope": {"items": "items", "total": None},
        "paging": {
            "style": "cursor",
            "cursor_path": "meta.next_cursor",
            "cursor_param": "after",
            "size_param": "limit",
        },
    },
    "hal": {"envelope": {"items": "_embedded.items", "total": None}, "paging": {"style": "none"}},
    # offset paging under other names, no total: a short page ends
    "offset_named": {
        "envelope": {"items": "rows", "total": None},
        "paging": {"style": "offset", "offset_param": "start", "size_param": "count"},
    },
}
#: simulator shapes that are no preset
CUSTOM = {
    "offset_named": ListShape(items="rows", total=None, offset_param="start", limit_param="count")
}

#: simulator login shape (and auth mode) -> the exporter's dms: keys for it
LOGIN_STYLES: dict[str, tuple[str, dict[str, Any]]] = {
    "oauth": (
        "token",
        {
            "login_path": "/oauth/token",
            "login": {
                "encoding": "form",
                "token_path": "access_token",
                "expiry_path": "expires_in",
            },
        },
    ),
    "session": (
        "token",
        {
            "login_path": "/sessions",
            "login": {
                "username_field": "user",
                "password_field": "pass",
                "token_path": "data.session.id",
                "expiry": "timestamp",
                "expiry_path": "data.session.expiresAt",
            },
            "token_header": {"name": "X-Auth-Token"},
        },
    ),
    "basic_get": (
        "token",
        {
            "login_path": "/auth/token",
            "login": {"method": "GET", "encoding": "basic", "expiry": "none"},
            "token_header": {"scheme": "Token"},
        },
    ),
    "api_key": ("api_key", {"auth": "api_key"}),
    # a Java appliance: form login, no token, the JSESSIONID cookie is the session
    "cookie": (
        "token",
        {
            "login_path": "/login",
            "login": {
                "encoding": "form",
                "username_field": "j_username",
                "password_field": "j_password",
                "token_from": "cookie",
            },
        },
    ),
    # OpenStack style: the token in the answer's X-Subject-Token, sent back in X-Auth-Token
    "header": (
        "token",
        {
            "login_path": "/auth/tokens",
            "login": {
                "token_from": "header",
                "token_header": "X-Subject-Token",
                "expiry": "timestamp",
                "expiry_path": "token.expires_at",
            },
            "token_header": {"name": "X-Auth-Token"},
        },
    ),
    # a session cookie and a CSRF token from the body, echoed in X-CSRF-Token
    "csrf": (
        "token",
        {
            "login_path": "/session",
            "login": {"token_path": "csrfToken", "expiry": "none"},
            "token_header": {"name": "X-CSRF-Token"},
        },
    ),
}


async def exported_against_truth(sim: Any, client: Any) -> None:
    body = await scrape(client)
    truth = sim.world.counts()
    for endpoint in ("devices", "alarms", "authorizations"):
        assert value(body, "dms_exporter_endpoint_up", endpoint=endpoint) == 1, endpoint
    assert len(samples(body, "dms_device_info")) == truth["devices"]
    assert value(body, "dms_exporter_endpoint_rows", endpoint="devices") == truth["devices"]
    assert len(samples(body, "dms_alarm_asserted_timestamp_seconds")) == truth["alarms_active"]
    authorizations = value(body, "dms_exporter_endpoint_rows", endpoint="authorizations")
    assert authorizations == truth["authorizations"]
    authorized = sum(v for _, v in samples(body, "dms_device_authorized_services"))
    assert 0 < authorized <= authorizations


def dms_keys(sim: Any, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": sim.base_url,
        "username": sim.username,
        "password": sim.password,
        "proxy": "direct",
        "timeout": "5s",
        "page_size": 7,  # many pages for every list
        **extra,
    }


@pytest.mark.parametrize("shape", list(LIST_STYLES))
async def test_every_list_style_is_read_completely(start_exporter, shape: str) -> None:
    served = CUSTOM.get(shape, shape)
    async with start_simulator(devices=30, seed=5, frozen=True, list_shape=served) as sim:
        for device in ("dev-000001", "dev-000002", None):
            sim.raise_alarm(device_id=device, severity="MAJOR")
        config = exporter_config(sim, dms=dms_keys(sim, LIST_STYLES[shape]))
        client = await start_exporter(config)
        await exported_against_truth(sim, client)
        paged = shape not in ("bare", "hal")
        assert (sim.request_counts["devices"] > 1) is paged  # 30 devices, 7 a page


@pytest.mark.parametrize("shape", list(LOGIN_STYLES))
async def test_every_login_style_works_by_config(start_exporter, shape: str) -> None:
    auth, keys = LOGIN_STYLES[shape]
    login = "default" if auth == "api_key" else shape
    async with start_simulator(
        devices=20, seed=5, frozen=True, auth=auth, login_shape=login
    ) as sim:
        client = await start_exporter(exporter_config(sim, dms=dms_keys(sim, keys)))
        await exported_against_truth(sim, client)
        body = await scrape(client)
        logins = value(body, "dms_exporter_logins_total", result="success")
        assert logins == (0 if auth == "api_key" else 1)
        assert sim.request_counts["login"] == logins


async def test_an_access_token_answer_needs_only_the_login_shape(start_exporter) -> None:
    """The issue's DMS: login answers {access_token, expires_in}. Without the login shape every
    endpoint fails with "no token"; with two keys it is read completely."""
    answer = LoginShape(token_path="access_token", expiry_path="expires_in")
    async with start_simulator(devices=5, seed=5, frozen=True, login_shape=answer) as sim:
        client = await start_exporter(exporter_config(sim, dms=dms_keys(sim, {})))
        status = await (await client.get("/api/v1/endpoints")).json()
        devices = next(s for s in status["endpoints"] if s["endpoint"] == "devices")
        assert (devices["up"], devices["last_result"]) == (False, "payload")
        assert "no token at 'token' in the answer" in devices["last_error"]
        shape = {"login": {"token_path": "access_token", "expiry_path": "expires_in"}}
        client = await start_exporter(exporter_config(sim, dms=dms_keys(sim, shape)))
        await exported_against_truth(sim, client)


async def test_a_dms_with_its_own_spelling_exports_the_right_states(start_exporter) -> None:
    """Mixed-case and separator variants, a DMS's own words mapped in values, epoch
    milliseconds: the right states, and other only for a word truly unknown."""
    words = ["online", "Offline", "ON_LINE", "never-connected", "up", "Down", "Unknown", "sideways"]
    meant = ["online", "offline", "online", "never_connected", "online", "offline", "unknown",
             "other"]  # fmt: skip
    async with start_simulator(devices=len(words), seed=5, frozen=True) as sim:
        ids = list(sim.world.devices)
        for device_id, word in zip(ids, words, strict=True):
            sim.set_device(device_id, connectionState=word, lastContact=1780315182250)
        values = {"connectionState": {"up": "ONLINE", "down": "OFFLINE"}}
        config = exporter_config(sim, endpoints={"devices": {"values": values}})
        body = await scrape(await start_exporter(config))
    for device_id, state in zip(ids, meant, strict=True):
        found = samples(body, "dms_device_connection_state", device_id=device_id)
        assert [labels["dms_device_connection_state"] for labels, v in found if v == 1] == [state]
    for device_id in ids:
        last = value(body, "dms_device_last_contact_timestamp_seconds", device_id=device_id)
        assert last == 1780315182.25  # epoch milliseconds, read as such
    assert value(body, "dms_exporter_endpoint_unknown_values_total", endpoint="devices") == 1


async def test_a_first_poll_is_applied_whatever_it_holds(start_exporter) -> None:
    """No last good table to compare with: the answer is applied and its unknowns counted."""
    async with start_simulator(devices=10, seed=5, frozen=True) as sim:
        sim.add_fault("devices", "unknown_enums")
        body = await scrape(await start_exporter(exporter_config(sim)))
    assert value(body, "dms_exporter_endpoint_up", endpoint="devices") == 1
    assert value(body, "dms_devices_by_authorization_state", authorization_state="other") == 10
    assert value(body, "dms_exporter_endpoint_unknown_values_total", endpoint="devices") >= 30


@pytest.mark.parametrize("shape", ["default", "drf", "cursor", "bare"])
async def test_a_poll_keeps_unchanged_rows_and_takes_every_change(shape: str) -> None:
    """Rows whose values did not change stay the very objects the store holds (the renderer
    skips them by identity), whatever the paging; a changed field, on any page, is taken."""
    async with start_simulator(devices=30, seed=5, frozen=True, list_shape=shape) as sim:
        config = exporter_config(sim, dms=dms_keys(sim, LIST_STYLES[shape]))
        exporter = Exporter(config)
        await exporter.start()
        try:
            await exporter.refresh("devices")
            first = exporter.store.tables["devices"].rows
            await exporter.refresh("devices")
            again = exporter.store.tables["devices"].rows
            assert len(again) == 30 and all(map(operator.is_, first, again))

            changed = {"dev-000002": "OFFLINE", "dev-000029": "UNKNOWN"}  # pages 1 and 5
            for device_id, state in changed.items():
                sim.set_device(device_id, connectionState=state, name="Zürich Süd")
            await exporter.refresh("devices")
            rows = exporter.store.tables["devices"].rows
        finally:
            await exporter.stop()
    for old, row in zip(first, rows, strict=True):
        if row.id in changed:
            assert (row.connection_state, row.name) == (changed[row.id].lower(), "Zürich Süd")
            assert row is not old
        else:
            assert row is old


async def poll_twice_and_read(start_exporter: Any, config: Any, caplog: Any) -> dict[str, Any]:
    """Start the exporter, poll every endpoint once more, and return ``/api/v1/endpoints``."""
    client = await start_exporter(config)
    for name in config.endpoints:  # a second failure of the same kind logs nothing new
        await client.post(f"/-/refresh/{name}")
    status = await (await client.get("/api/v1/endpoints")).json()
    return {e["endpoint"]: e for e in status["endpoints"]}


def failing_lines(caplog: Any, endpoint: str) -> list[str]:
    return [
        r.getMessage() for r in caplog.records
        if r.levelname == "WARNING" and getattr(r, "endpoint", None) == endpoint
    ]  # fmt: skip


async def test_pages_from_zero_read_from_one_fail_every_list_with_one_log_line(
    start_exporter, caplog
) -> None:
    """A Spring-style DMS counts pages from 0; configured as in the docs but without
    first_page: 0, the walk skips the first page. No endpoint shows up=1 with part of its
    list: each is down with reason incomplete, one log line naming paging.first_page."""
    spring = LIST_STYLES["spring"]
    keys = {**spring, "paging": {k: v for k, v in spring["paging"].items() if k != "first_page"}}
    async with start_simulator(devices=30, seed=5, frozen=True, list_shape="spring") as sim:
        config = exporter_config(sim, dms=dms_keys(sim, keys))
        status = await poll_twice_and_read(start_exporter, config, caplog)
    for name in ("devices", "groups", "alarms", "authorizations"):
        assert (status[name]["up"], status[name]["last_result"], status[name]["rows"]) == (
            False, "incomplete", 0,
        ), name  # fmt: skip
    devices = status["devices"]["last_error"]
    # 7 a page from page 1: items 7 to 29, then an empty page
    assert "after 5 pages with 23 of the 30 items the DMS reports at 'totalElements'" in devices
    assert "first_page is 1 (does the DMS count pages from 0? then paging.first_page: 0)" in devices
    assert status["system"]["up"]
    lines = failing_lines(caplog, "devices")
    assert lines == ["endpoint failing"]


async def test_an_items_path_without_paging_on_a_paged_dms_fails_the_big_lists(
    start_exporter, caplog
) -> None:
    """--probe's advice followed alone (envelope.items set, paging left at offset): the DMS
    ignores offset and limit and sends its first page of 100. Lists longer than that are down
    (incomplete, naming the DMS's count and the paging keys); shorter ones are whole and up."""
    async with start_simulator(devices=150, seed=5, frozen=True, list_shape="spring") as sim:
        keys = {"envelope": {"items": "content"}, "page_size": 1000}  # the default page size
        config = exporter_config(sim, dms=dms_keys(sim, keys))
        status = await poll_twice_and_read(start_exporter, config, caplog)
        truth = sim.world.counts()
    assert (status["devices"]["up"], status["devices"]["last_result"]) == (False, "incomplete")
    error = status["devices"]["last_error"]
    assert "with 100 of the 150 items the DMS reports at 'totalElements'" in error
    assert "(envelope.total 'total' is not in the answer: set it to 'totalElements')" in error
    assert "the first page held 100 items where 1000 were asked for with offset_param " in error
    assert "needs paging: {style: page, page_param: ..., first_page: 0 or 1}" in error
    assert (status["groups"]["up"], status["groups"]["rows"]) == (True, truth["groups"])
    assert failing_lines(caplog, "devices") == ["endpoint failing"]


async def test_envelope_bare_on_a_whole_list_dms_names_paging_none(start_exporter, caplog) -> None:
    """envelope: bare alone on a DMS that sends every item in one bare array: offset paging asks
    for a second page, gets the same array, and the poll fails naming the fix."""
    async with start_simulator(devices=30, seed=5, frozen=True, bare_arrays=True) as sim:
        config = exporter_config(sim, dms=dms_keys(sim, {"envelope": "bare"}))
        status = await poll_twice_and_read(start_exporter, config, caplog)
    devices = status["devices"]
    assert (devices["up"], devices["last_result"]) == (False, "payload")
    assert devices["last_error"].endswith(
        "page 2 repeats page 1: does the DMS ignore the parameter offset? (a DMS that sends its "
        "whole list as one bare array needs paging: {style: none})"
    )
    assert failing_lines(caplog, "devices") == ["endpoint failing"]
