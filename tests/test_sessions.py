"""Appliance-style DMS sessions by configuration alone, against the real simulator: a session
cookie, a token in a header of the login answer, a CSRF token echoed with a cookie, numeric and
boolean codes. Each session style survives its session ending mid-walk (one more login), meets a
wrong password with the login backoff, and never shows a cookie or a token."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from conftest import exporter_config, samples, scrape, value
from test_console import PAGES, start_console, write_config  # noqa: F401 (a fixture)
from test_shapes import LOGIN_STYLES, dms_keys, exported_against_truth

from dms_exporter.model import ENDPOINTS
from dms_exporter.simulator import Simulator, start_simulator
from dms_exporter.simulator.shapes import LOGIN_SHAPES

#: style -> (the simulator's login shape, the exporter's keys of LOGIN_STYLES)
SESSIONS: dict[str, tuple[Any, str]] = {
    "cookie_redirect": (LOGIN_SHAPES["cookie"], "cookie"),  # the session ends in a redirect
    "cookie_401": (replace(LOGIN_SHAPES["cookie"], session_end="401"), "cookie"),
    "cookie_403": (replace(LOGIN_SHAPES["cookie"], session_end="403"), "cookie"),
    "header": (LOGIN_SHAPES["header"], "header"),
    "csrf": (LOGIN_SHAPES["csrf"], "csrf"),  # its session ends with a 403
}


def devices_only(sim: Simulator, style: str, **dms: Any) -> Any:
    """The exporter's config for ``style``, polling only devices, seven to a page."""
    keys = {**dms_keys(sim, LOGIN_STYLES[SESSIONS[style][1]][1]), **dms}
    endpoints = {name: {"enabled": name == "devices"} for name in ENDPOINTS}
    return exporter_config(sim, dms=keys, endpoints=endpoints)


async def devices_status(client: Any) -> dict[str, Any]:
    status = await (await client.get("/api/v1/endpoints")).json()
    return next(s for s in status["endpoints"] if s["endpoint"] == "devices")


@pytest.mark.parametrize("style", list(SESSIONS))
async def test_a_session_ending_mid_walk_costs_one_login_and_the_walk_completes(
    start_exporter, style: str
) -> None:
    shape, _ = SESSIONS[style]
    async with start_simulator(devices=30, seed=5, frozen=True, login_shape=shape) as sim:
        sim.add_fault("devices", "expire_token", count=1, skip=2)  # at page 3 of 5
        client = await start_exporter(devices_only(sim, style))
        body = await scrape(client)
        assert value(body, "dms_exporter_endpoint_up", endpoint="devices") == 1
        assert len(samples(body, "dms_device_info")) == 30
        assert value(body, "dms_exporter_logins_total", result="success") == 2
        assert sim.request_counts["login"] == 2
        assert sim.request_counts["devices"] == 6  # 5 pages and page 3 again


@pytest.mark.parametrize("style", list(SESSIONS))
async def test_a_session_refused_again_after_the_new_login_fails_the_poll_cleanly(
    start_exporter, style: str
) -> None:
    shape, _ = SESSIONS[style]
    async with start_simulator(devices=30, seed=5, frozen=True, login_shape=shape) as sim:
        sim.add_fault("devices", "expire_token", skip=2)  # every call from page 3 on
        client = await start_exporter(devices_only(sim, style))
        status = await devices_status(client)
        assert (status["up"], status["last_result"]) == (False, "auth")
        refused = {"cookie_redirect": "a redirect to the login page", "cookie_403": "HTTP 403",
                   "csrf": "HTTP 403"}.get(style, "HTTP 401")  # fmt: skip
        assert f"{refused} " in status["last_error"]
        assert "right after a successful login" in status["last_error"]  # and the backoff
        body = await scrape(client)
        assert samples(body, "dms_device_info") == []  # no part of the walk is applied
        assert sim.request_counts["login"] == 2  # one login, one more, no third


@pytest.mark.parametrize("style", list(SESSIONS))
async def test_a_wrong_password_is_refused_once_then_backs_off(start_exporter, style: str) -> None:
    shape, _ = SESSIONS[style]
    async with start_simulator(devices=5, seed=5, frozen=True, login_shape=shape) as sim:
        config = devices_only(sim, style, password="not-the-password")
        client = await start_exporter(config)
        for _ in range(3):  # polls in the backoff ask the DMS nothing
            await client.post("/-/refresh/devices")
        status = await (await client.get("/api/v1/endpoints")).json()
        body = await scrape(client)
    assert status["login"]["last_result"] == "refused"
    assert status["login"]["next_attempt"] is not None
    assert value(body, "dms_exporter_logins_total", result="refused") == 1
    assert sim.request_counts["login"] == 1
    assert sim.request_counts["devices"] == 0


@pytest.mark.parametrize("style", list(SESSIONS))
async def test_no_cookie_or_token_in_any_log_line_answer_or_page(
    start_console,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    style: str,
) -> None:
    shape, keys = SESSIONS[style]
    caplog.set_level(logging.DEBUG)
    async with start_simulator(devices=5, seed=5, frozen=True, login_shape=shape) as sim:
        dms = dms_keys(sim, LOGIN_STYLES[keys][1])
        path = write_config(tmp_path / "dms.yml", sim, refresh_min_gap=0)
        path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "dms": dms}))
        client = await start_console(path)
        issued = list(sim.auth._tokens)
        assert issued
        # a DMS that quotes the session in an error, and a session that ends mid-poll
        sim.add_fault("devices", "status", status=500, count=1, message=f"bad session {issued[0]}")
        await client.post("/-/refresh/devices")
        failed = await devices_status(client)
        sim.add_fault("devices", "expire_token", count=1)
        await client.post("/-/refresh/devices")
        issued = list(sim.auth._tokens)
        texts = [caplog.text, await scrape(client)]
        for path_ in ("/api/v1/endpoints", "/", *(f"/console/{page}" for page in PAGES)):
            response = await client.get(path_)
            assert response.status == 200, path_
            texts.append(await response.text())
    assert failed["last_error"].endswith("HTTP 500 INTERNAL_ERROR: bad session ***")
    assert sim.request_counts["login"] == 2
    for text in texts:
        for secret in issued:
            assert secret not in text


async def test_a_redirect_is_followed_only_on_the_dms_so_no_token_or_cookie_leaves_it(
    start_exporter,
) -> None:
    """A DMS (or a proxy before it) that redirects a call: on its own origin the call follows,
    token and cookie with it; to another server it is not followed (a client library carries a
    token sent in X-Auth-Token or X-CSRF-Token anywhere), and the poll says where it was sent."""
    seen: list[dict[str, str]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response([])

    app = web.Application()
    app.router.add_get("/{tail:.*}", record)
    elsewhere = TestServer(app, host="127.0.0.1")
    await elsewhere.start_server()
    try:
        for style in ("header", "csrf"):  # a token in its own header; a cookie and a token
            async with start_simulator(
                devices=5, seed=5, frozen=True, login_shape=SESSIONS[style][0]
            ) as sim:
                home = f"{sim.base_url}/devices?offset=0&limit=7"
                sim.add_fault("devices", "status", status=307, location=home, count=1)
                client = await start_exporter(devices_only(sim, style))
                status = await devices_status(client)
                assert (status["up"], status["rows"]) == (True, 5), status
                away = str(elsewhere.make_url("/dms-api/v1/devices"))
                sim.add_fault("devices", "status", status=302, location=away, count=1)
                await client.post("/-/refresh/devices")
                status = await devices_status(client)
                assert status["last_result"] == "http_error"
                assert status["last_error"].endswith(
                    f"HTTP 302: redirected away from the DMS, to http://127.0.0.1:{elsewhere.port}"
                )
    finally:
        await elsewhere.close()
    assert seen == []


async def run_probe(sim: Simulator, tmp_path: Path, dms: dict[str, Any]) -> str:
    path = tmp_path / "probe.yml"
    path.write_text(yaml.safe_dump({"dms": dms_keys(sim, dms)}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dms_exporter", "--probe", f"--config.file={path}",
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    text = out.decode()
    for secret in [sim.password, *sim.auth._tokens]:
        assert secret not in text
    return text


async def test_probe_names_the_keys_for_a_cookie_session_a_header_token_and_a_csrf_token(
    tmp_path: Path,
) -> None:
    """With only the login request configured (path and fields, what an operator knows from
    the login form), the probe says where the session is and which keys to set."""
    form = {"encoding": "form", "username_field": "j_username", "password_field": "j_password"}
    async with start_simulator(devices=5, seed=5, frozen=True, login_shape="cookie") as sim:
        out = await run_probe(sim, tmp_path, {})  # the whole file default: no login there
        assert (
            "HTTP 404 NOT_FOUND: POST /dms-api/v1/auth/login: Not Found (is the login at POST "
            "/auth/login? see dms.login_path, login.method)" in out
        )
        out = await run_probe(sim, tmp_path, {"login_path": "/login", "login": form})
    assert (
        "no token at 'token' in the answer (see dms.login.token_path); it set the cookie "
        "JSESSIONID: if that is the session, set dms.login.token_from: cookie" in out
    )
    async with start_simulator(devices=5, seed=5, frozen=True, login_shape="header") as sim:
        out = await run_probe(sim, tmp_path, {"login_path": "/auth/tokens"})
    assert (
        "its header X-Subject-Token looks like the token: set dms.login.token_from: header and "
        "dms.login.token_header: X-Subject-Token" in out
    )
    async with start_simulator(devices=5, seed=5, frozen=True, login_shape="csrf") as sim:
        out = await run_probe(sim, tmp_path, {"login_path": "/session"})
        assert (
            "a token seems to be at 'csrfToken': set dms.login.token_path: csrfToken (the cookie "
            "SESSION it set is kept without a key; if calls are then refused, send the token in "
            "the header the DMS wants: dms.token_header.name)" in out
        )
        # the next step: the token read, sent where the DMS does not look for it
        out = await run_probe(sim, tmp_path, {"login_path": "/session", "login": {
            "token_path": "csrfToken"}})  # fmt: skip
    assert "HTTP 403 INVALID_CSRF_TOKEN right after a successful login" in out


async def test_probe_lists_numeric_codes_and_proposes_the_values_map(tmp_path: Path) -> None:
    async with start_simulator(devices=30, seed=5, frozen=True, list_shape="appliance") as sim:
        for severity in ("CRITICAL", "MAJOR", "MAJOR"):
            sim.raise_alarm(device_id="dev-000001", severity=severity)
        paging = {"style": "next", "next_header": True, "size_param": "per_page"}
        fields = {"connectionState": "status.connection", "controlMode": "status.mode"}
        path = tmp_path / "probe.yml"
        config = {
            "dms": dms_keys(sim, {"envelope": "bare", "paging": paging}),
            "endpoints": {"devices": {"fields": fields}},
        }
        path.write_text(yaml.safe_dump(config))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dms_exporter", "--probe", f"--config.file={path}",
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        out = (await asyncio.wait_for(proc.communicate(), timeout=60))[0].decode()
    words = "with ONLINE, OFFLINE, UNKNOWN, NEVER_CONNECTED"
    assert f"fill in values: {{connectionState: {{0: ?, 1: ?, 2: ?, 3: ?}}}} {words}" in out
    assert "fill in values: {controlMode: {1: ?}} with DMS, LOCAL" in out
    assert "fill in values: {severity: {1: ?, 2: ?}} with CRITICAL, MAJOR" in out


#: The exporter's keys for the simulator's appliance list shape (APPLIANCE_FIELDS): codes as a
#: number (connection), numeric text (mode) and a boolean (active), times in epoch ms.
APPLIANCE: dict[str, Any] = {
    "alarms": {"retrieval": "all"},  # every alarm, so that their "active" flag is read
    "endpoints": {
        "devices": {
            "fields": {
                "connectionState": "status.connection",
                "controlMode": "status.mode",
                "lastContact": "status.lastSeen",
            },
            "values": {
                "connectionState": {0: "UNKNOWN", 1: "ONLINE", 2: "OFFLINE", 3: "NEVER_CONNECTED"},
                "controlMode": {0: "LOCAL", 1: "DMS"},
            },
        },
        "alarms": {
            "fields": {"state": "active", "assertedTime": "raisedAt"},
            "values": {
                "severity": {1: "CRITICAL", 2: "MAJOR", 3: "MINOR", 4: "WARNING", 5: "INFO"},
                "state": {True: "ACTIVE", False: "CLEARED"},
            },
        },
    },
}


async def test_an_appliance_with_numeric_and_boolean_codes_is_read_completely(
    start_exporter,
) -> None:
    """The issue's DMS: cookie session, Link paging, nested status, codes as numbers, numeric
    text and booleans, epoch-ms times: every state exported as the DMS means it."""
    async with start_simulator(
        devices=40, seed=5, frozen=True, list_shape="appliance", login_shape="cookie"
    ) as sim:
        for i, severity in enumerate(("CRITICAL", "MAJOR", "MINOR", "WARNING", "INFO")):
            sim.raise_alarm(device_id=f"dev-{i + 1:06d}", severity=severity)
        sim.set_device("dev-000003", connectionState="OFFLINE", controlMode="LOCAL")
        paging = {"style": "next", "next_header": True, "size_param": "per_page"}
        keys = {**LOGIN_STYLES["cookie"][1], "envelope": "bare", "paging": paging}
        config = exporter_config(sim, dms=dms_keys(sim, keys), **APPLIANCE)
        client = await start_exporter(config)
        await exported_against_truth(sim, client)
        body = await scrape(client)
        truth = {d["id"]: d for d in map(json.loads, sim.world.listing("devices", None, None))}
        alarms = list(map(json.loads, sim.world.listing("alarms", None, None)))
    enums = (("connection_state", "connectionState"), ("control_mode", "controlMode"))
    for device_id, device in truth.items():
        for family, name in enums:
            found = samples(body, f"dms_device_{family}", device_id=device_id)
            shown = [labels[f"dms_device_{family}"] for labels, v in found if v == 1]
            assert shown == [device[name].lower()]
    for severity in ("critical", "major", "minor", "warning", "info"):
        for state in ("active", "cleared"):
            expected = sum(
                a["severity"].lower() == severity and a["state"].lower() == state for a in alarms
            )
            found = samples(body, "dms_alarms", severity=severity, state=state)
            assert sum(v for _, v in found) == expected, (severity, state)
    assert value(body, "dms_exporter_endpoint_unknown_values_total", endpoint="devices") == 0
    assert value(body, "dms_exporter_endpoint_unknown_values_total", endpoint="alarms") == 0
    last = value(body, "dms_device_last_contact_timestamp_seconds", device_id="dev-000001")
    assert last == pytest.approx(sim.world.clock.now(), abs=86400 * 30)  # ms read as such


def docs_example(marker: str) -> dict[str, Any]:
    """The YAML block of docs/configuration.md that holds ``marker``."""
    docs = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", docs, re.DOTALL) if marker in b]
    assert len(blocks) == 1, marker
    return dict(yaml.safe_load(blocks[0]))


@pytest.mark.parametrize(
    ("marker", "shape", "list_shape"),
    [
        ("token_from: cookie", "cookie", "appliance"),
        ("token_from: header", "header", None),
        ("X-CSRF-Token", "csrf", None),
    ],
)
async def test_the_docs_examples_read_each_style_completely(
    start_exporter, marker: str, shape: str, list_shape: str | None
) -> None:
    """An operator's config is the docs' example with their own URL and password."""
    example = docs_example(marker)
    async with start_simulator(
        devices=30, seed=5, frozen=True, login_shape=shape, list_shape=list_shape
    ) as sim:
        sim.raise_alarm(device_id="dev-000002", severity="CRITICAL")
        dms = {**example["dms"], "url": sim.base_url, "password": sim.password}
        dms.pop("password_env", None)
        config = exporter_config(
            sim, dms=dms_keys(sim, dms), endpoints=example.get("endpoints", {})
        )
        client = await start_exporter(config)
        await exported_against_truth(sim, client)
        body = await scrape(client)
    for endpoint in ("devices", "alarms"):
        assert value(body, "dms_exporter_endpoint_unknown_values_total", endpoint=endpoint) == 0
