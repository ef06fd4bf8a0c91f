"""The console over HTTP against a real simulator: pages, edits, the state file, reloads."""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from conftest import samples, scrape, value, wait_until_ready

from dms_exporter.errors import ConfigError
from dms_exporter.exporter import Exporter
from dms_exporter.simulator import Simulator, start_simulator
from dms_exporter.web.app import make_app
from dms_exporter.web.console import ConfigSource, Console, StateFile, default_state_path
from dms_exporter.web.console.state import MAX_DESCRIPTION

PAGES = ("endpoints", "devices", "authorization", "destinations", "alarms", "settings")

Start = Callable[..., Awaitable[TestClient]]
CONSOLES: dict[TestClient, Console] = {}  # the console behind each started client


def write_config(path: Path, sim: Simulator, **extra: Any) -> Path:
    data = {
        "dms": {
            "url": sim.base_url,
            "username": sim.username,
            "password": sim.password,
            "proxy": "direct",
        },
        "defaults": {"interval": "60s"},
        **extra,
    }
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
async def start_console() -> AsyncIterator[Start]:
    """Start the exporter with its console for a config file, as the command line does."""
    clients: list[TestClient] = []

    async def start(config_file: Path) -> TestClient:
        source = ConfigSource(
            StateFile(default_state_path(str(config_file))), path=str(config_file)
        )
        exporter = Exporter(
            source.build(source.edits), config_file=str(config_file), loader=source.load
        )
        console = Console(exporter, source)
        client = TestClient(TestServer(make_app(exporter, console), host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        CONSOLES[client] = console
        await wait_until_ready(client)
        return client

    yield start
    for client in clients:
        await client.close()
        del CONSOLES[client]


def device_ids(sim: Simulator) -> list[str]:
    return list(sim.world.devices)


def device_json(sim: Simulator, n: int) -> dict[str, Any]:
    return sim.world.devices[device_ids(sim)[n]]


def exporter_of(client: TestClient) -> Exporter:
    from dms_exporter.web.app import EXPORTER_KEY

    return client.server.app[EXPORTER_KEY]


async def post(client: TestClient, path: str, **form: str) -> tuple[int, str]:
    response = await client.post(path, data=form, allow_redirects=False)
    return response.status, await response.text()


def errors_in(page: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'class="error" role="alert">([^<]*)<', page)]


async def test_every_page_answers_200_and_shows_the_data(simulator, tmp_path, start_console):
    client = await start_console(write_config(tmp_path / "dms.yml", simulator))
    device = device_json(simulator, 0)
    for page in PAGES:
        response = await client.get(f"/console/{page}")
        assert response.status == 200, page
        assert "text/html" in response.headers["Content-Type"]
    devices = await (await client.get("/console/devices")).text()
    assert f'data-device="{device["id"]}"' in devices
    response = await client.get("/console/device", params={"id": device["id"]})
    assert response.status == 200
    assert device["serialNumber"] in await response.text()
    assert (await client.get("/console/device", params={"id": "nope"})).status == 404
    # services per device: the numbers of the dms_device_authorized_services series
    body = await scrape(client)
    page = await (await client.get("/console/authorization")).text()
    shown = dict(re.findall(r'<tr data-device="([^"]+)">.*?<td class="num">(\d+)</td>', page))
    assert shown
    for device_id, count in shown.items():
        series = value(body, "dms_device_authorized_services", device_id=device_id,
                       source="permanent")  # fmt: skip
        assert int(count) == series, device_id
    first = await client.get("/console/", allow_redirects=False)
    assert first.status == 303 and first.headers["Location"] == "/console/endpoints"


async def test_the_header_shows_the_active_dms_of_a_failover_list(
    simulator, tmp_path, start_console
):
    config_file = write_config(tmp_path / "dms.yml", simulator)
    data = yaml.safe_load(config_file.read_text())
    data["dms"]["url"] = [simulator.base_url, "http://127.0.0.1:9/dms-api/v1"]
    config_file.write_text(yaml.safe_dump(data))
    client = await start_console(config_file)
    page = await (await client.get("/console/endpoints")).text()
    header = page[page.index('id="dms-links"') : page.index("</header>")]
    assert f"active: <code>{simulator.base_url}</code>" in header
    assert "main answers" in header and "standby 1 not tried" in header
    assert "failed over" not in header


async def test_the_header_says_when_every_member_of_a_failover_list_says_standby(
    simulator, tmp_path, start_console
):
    simulator.set_role("BACKUP")
    async with start_simulator(devices=40, seed=7, frozen=True, role="BACKUP") as standby:
        config_file = write_config(tmp_path / "dms.yml", simulator, refresh_min_gap="0s")
        data = yaml.safe_load(config_file.read_text())
        data["dms"]["url"] = [simulator.base_url, standby.base_url]
        config_file.write_text(yaml.safe_dump(data))
        client = await start_console(config_file)
        # the start-up poll found the main a standby and moved; this one asks the other member
        await exporter_of(client).refresh("system")
        page = await (await client.get("/console/endpoints")).text()
        header = page[page.index('id="dms-links"') : page.index("</header>")]
        assert "main answers, says standby" in header
        assert "standby 1 answers, says standby" in header
        assert "no member says it is active" in header
        standby.set_role("PRIMARY")  # the member it stayed on becomes the active one
        await exporter_of(client).refresh("system")
        page = await (await client.get("/console/endpoints")).text()
        header = page[page.index('id="dms-links"') : page.index("</header>")]
        assert "standby 1 answers</span>" in header
        assert "no member says it is active" not in header


async def test_bad_values_get_a_message_and_change_nothing(simulator, tmp_path, start_console):
    config_file = write_config(tmp_path / "dms.yml", simulator)
    client = await start_console(config_file)
    exporter = exporter_of(client)
    before = exporter.config
    device_id = device_ids(simulator)[0]
    for path, form, message in (
        ("/console/endpoints/devices", {"interval": "0"}, "must be more than zero"),
        ("/console/endpoints/devices", {"interval": "fast"}, "must be a duration"),
        (
            "/console/devices/description",
            {
                "device_id": device_id,
                "description": "x" * (MAX_DESCRIPTION + 1),
                "next": f"/console/devices?q={device_id}",
            },
            f"at most {MAX_DESCRIPTION} characters",
        ),
        (
            "/console/devices/description",
            {"device_id": device_id, "description": "two\nlines"},
            "one line",
        ),
        (
            "/console/devices/description",
            {"device_id": "no-such-device", "description": "x"},
            "unknown device",
        ),
        ("/console/settings", {"setting": "alarm_retrieval", "value": "some"}, "must be"),
    ):
        status, page = await post(client, path, **form)
        assert status == 400, (path, form)
        assert len(errors_in(page)) == 1 and message in errors_in(page)[0], errors_in(page)
        assert 'aria-invalid="true"' in page or form.get("device_id") != device_id
    status, page = await post(client, "/console/endpoints/bogus", enabled="false")
    assert status == 404 and errors_in(page) == ["unknown endpoint 'bogus'"]
    assert exporter.config is before
    assert not Path(default_state_path(str(config_file))).exists()


async def test_a_cross_site_edit_is_refused_by_the_guard(simulator, tmp_path, start_console):
    config_file = write_config(tmp_path / "dms.yml", simulator)
    client = await start_console(config_file)
    before = exporter_of(client).config
    response = await client.post(
        "/console/endpoints/groups",
        data={"enabled": "false"},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert response.status == 403
    assert exporter_of(client).config is before
    assert not Path(default_state_path(str(config_file))).exists()


BAD_BODIES = {
    "invalid UTF-8": ("application/x-www-form-urlencoded", b"interval=\xff\xfe2m"),
    "unknown charset": ("application/x-www-form-urlencoded; charset=x-nonesuch", b"interval=2m"),
    "UTF-7 to a surrogate": ("application/x-www-form-urlencoded; charset=utf-7", b"interval=+2AA-"),
    "multipart, invalid UTF-8": (
        "multipart/form-data; boundary=b",
        b'--b\r\nContent-Disposition: form-data; name="interval"\r\n\r\n\xff\r\n--b--\r\n',
    ),
}


@pytest.mark.parametrize("body", BAD_BODIES)
async def test_a_form_in_a_bad_encoding_gets_400_and_one_debug_line(
    body, simulator, tmp_path, start_console, caplog
):
    config_file = write_config(tmp_path / "dms.yml", simulator)
    client = await start_console(config_file)
    before = exporter_of(client).config
    content_type, data = BAD_BODIES[body]
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        response = await client.post(
            "/console/endpoints/devices",
            data=data,
            headers={"Content-Type": content_type},
            allow_redirects=False,
        )
    assert response.status == 400
    assert exporter_of(client).config is before
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if "console" in r.name]
    assert lines == [(logging.DEBUG, "console form refused")]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_edit_applies_at_once_and_is_kept_in_the_state_file(
    simulator, tmp_path, start_console
):
    config_file = write_config(tmp_path / "dms.yml", simulator)
    client = await start_console(config_file)
    status, _ = await post(client, "/console/endpoints/devices", interval="2m")
    assert status == 303
    status, _ = await post(client, "/console/endpoints/groups", enabled="false")
    assert status == 303
    exporter = exporter_of(client)
    assert exporter.config.endpoints["devices"].interval == 120
    body = await scrape(client)
    assert "Refreshed every 120s" in body
    assert value(body, "dms_exporter_endpoint_enabled", endpoint="groups") == 0
    assert not samples(body, "dms_group_info")
    state = json.loads(Path(default_state_path(str(config_file))).read_text())
    assert state["endpoints"] == {"devices": {"interval": 120.0}, "groups": {"enabled": False}}
    page = await (await client.get("/console/endpoints")).text()
    assert page.count("set in console, overrides") == 2
    assert not list(tmp_path.glob(".dms.console.json.*"))  # no temporary file left behind


def notes_in(page: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'class="note" role="status">([^<]*)<', page)]


async def test_refresh_soon_after_a_poll_says_when_it_polled(simulator, tmp_path, start_console):
    client = await start_console(write_config(tmp_path / "dms.yml", simulator))
    exporter = exporter_of(client)
    before = exporter.store.status("alarms").polls_total
    response = await client.post(
        "/console/endpoints/alarms/refresh", headers={"X-Console": "fetch"}
    )
    assert response.status == 200
    row = await response.text()
    assert row.lstrip().startswith('<tr id="endpoint-alarms"')
    [note] = notes_in(row)  # refresh_min_gap: 10s by default
    pattern = r"polled \d s ago, within refresh_min_gap \(10s\): answered with that poll"
    assert re.fullmatch(pattern, note), note
    assert errors_in(row) == []
    assert exporter.store.status("alarms").polls_total == before
    # without the page's script: the page itself, with the same note
    plain = await client.post("/console/endpoints/alarms/refresh", allow_redirects=False)
    assert plain.status == 200
    page = await plain.text()
    assert notes_in(page)[0].startswith("polled ") and errors_in(page) == []


async def test_refresh_after_the_gap_polls(simulator, tmp_path, start_console):
    client = await start_console(
        write_config(tmp_path / "dms.yml", simulator, refresh_min_gap="0s")
    )
    exporter = exporter_of(client)
    before = exporter.store.status("alarms").polls_total
    response = await client.post(
        "/console/endpoints/alarms/refresh", headers={"X-Console": "fetch"}
    )
    assert notes_in(await response.text()) == ["polled just now"]
    assert exporter.store.status("alarms").polls_total == before + 1
    plain = await client.post("/console/endpoints/alarms/refresh", allow_redirects=False)
    assert plain.status == 303
    assert exporter.store.status("alarms").polls_total == before + 2


async def test_the_devices_index_follows_a_changed_table_without_a_page_view(
    simulator, tmp_path, start_console
):
    client = await start_console(
        write_config(tmp_path / "dms.yml", simulator, refresh_min_gap="0s")
    )
    store, index = exporter_of(client).store, CONSOLES[client].devices
    assert (await client.get("/console/devices")).status == 200  # the first view builds it
    device_id = device_ids(simulator)[5]
    simulator.set_device(device_id, name="Renamed Halifax 9")
    await exporter_of(client).refresh("devices")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while index.current is None or index.current.table is not store.tables["devices"]:
        assert loop.time() < deadline, "the index was not rebuilt within 10 s"
        await asyncio.sleep(0.05)
    page = await (await client.get("/console/devices", params={"q": "renamed halifax"})).text()
    assert f'data-device="{device_id}"' in page and "· 1 rows" in page


async def test_two_browsers_editing_at_once_lose_no_edit(simulator, tmp_path, start_console):
    config_file = write_config(tmp_path / "dms.yml", simulator)
    client = await start_console(config_file)
    ids = device_ids(simulator)[:8]
    results = await asyncio.gather(
        *(
            post(client, "/console/devices/description", device_id=i, description=f"rack {i}")
            for i in ids
        ),
        post(client, "/console/endpoints/alarms", interval="45s"),
        post(client, "/console/settings", setting="alarm_retrieval", value="all"),
    )
    assert [status for status, _ in results] == [303] * (len(ids) + 2)
    state = json.loads(Path(default_state_path(str(config_file))).read_text())
    assert state["descriptions"] == {i: f"rack {i}" for i in ids}
    assert state["endpoints"] == {"alarms": {"interval": 45.0}}
    assert state["alarm_retrieval"] == "all"
    body = await scrape(client)
    for i in ids:
        assert samples(body, "dms_device_info", device_id=i)[0][0]["display_name"] == f"rack {i}"


async def test_reload_keeps_console_edits_and_revert_restores_the_file_value(
    simulator, tmp_path, start_console
):
    device_id = device_ids(simulator)[3]
    config_file = write_config(
        tmp_path / "dms.yml", simulator, display_names={"devices": {device_id: "From YAML"}}
    )
    client = await start_console(config_file)

    def display_name(body: str) -> str:
        return samples(body, "dms_device_info", device_id=device_id)[0][0]["display_name"]

    assert display_name(await scrape(client)) == "From YAML"
    status, _ = await post(
        client, "/console/devices/description", device_id=device_id, description="From console"
    )
    assert status == 303
    assert display_name(await scrape(client)) == "From console"
    devices = await (await client.get("/console/devices", params={"q": device_id})).text()
    assert "set in console, overrides" in devices and "From YAML" in devices

    assert (await client.post("/-/reload")).status == 200  # the YAML is unchanged
    assert display_name(await scrape(client)) == "From console"

    status, _ = await post(client, "/console/devices/description", device_id=device_id, revert="1")
    assert status == 303
    assert display_name(await scrape(client)) == "From YAML"
    state = json.loads(Path(default_state_path(str(config_file))).read_text())
    assert "descriptions" not in state


async def test_an_edit_during_a_reload_keeps_both(simulator, tmp_path, start_console):
    device_id = device_ids(simulator)[2]
    config_file = write_config(tmp_path / "dms.yml", simulator)
    client = await start_console(config_file)
    exporter = exporter_of(client)
    source = CONSOLES[client].source
    build = source._build

    def slow_build(base: Any, edits: Any) -> Any:
        # the reload (in a worker thread) has read the file and the state, and takes its time
        if threading.current_thread() is not threading.main_thread():
            time.sleep(0.5)
        return build(base, edits)

    source._build = slow_build  # type: ignore[method-assign]
    write_config(
        tmp_path / "dms.yml", simulator, display_names={"devices": {device_id: "New YAML"}}
    )
    reload = asyncio.create_task(exporter.reload())
    await asyncio.sleep(0.2)  # the reload has read the file and the (not yet edited) state
    status, _ = await post(client, "/console/endpoints/alarms", interval="45s")
    assert status == 303 and await reload
    assert exporter.config.display_names[device_id] == "New YAML"  # the reload's change
    assert exporter.config.endpoints["alarms"].interval == 45  # and the edit


async def test_settings_switches_change_metrics_and_pages(simulator, tmp_path, start_console):
    client = await start_console(write_config(tmp_path / "dms.yml", simulator))
    page = await (await client.get("/console/authorization")).text()
    assert "Schedule authorizations" in page
    status, _ = await post(
        client, "/console/settings", setting="allow_schedule_authorization", value="false"
    )
    assert status == 303
    body = await scrape(client)
    assert not samples(body, "dms_schedule_authorization_info")
    page = await (await client.get("/console/authorization")).text()
    assert "Schedule authorizations" not in page
    settings = await (await client.get("/console/settings")).text()
    assert "set in console, overrides" in settings
    status, _ = await post(
        client, "/console/settings", setting="allow_schedule_authorization", revert="1"
    )
    assert status == 303
    assert exporter_of(client).config.allow_schedule_authorization is True


async def test_descriptions_go_to_the_display_names_file(simulator, tmp_path, start_console):
    inline_id, file_id = device_ids(simulator)[:2]
    names = tmp_path / "names.yml"
    names.write_text(yaml.safe_dump({file_id: "From file"}))
    config_file = write_config(
        tmp_path / "dms.yml",
        simulator,
        display_names={"file": "names.yml", "devices": {inline_id: "Inline"}},
    )
    client = await start_console(config_file)
    status, _ = await post(
        client, "/console/devices/description", device_id=file_id, description="Edited"
    )
    assert status == 303
    assert yaml.safe_load(names.read_text()) == {file_id: "Edited"}
    body = await scrape(client)
    assert samples(body, "dms_device_info", device_id=file_id)[0][0]["display_name"] == "Edited"
    status, page = await post(
        client, "/console/devices/description", device_id=inline_id, description="Nope"
    )
    assert status == 400 and "display_names.devices" in errors_in(page)[0]
    assert not Path(default_state_path(str(config_file))).exists()


async def test_a_state_file_that_cannot_be_written_changes_nothing(
    simulator, tmp_path, start_console
):
    config_file = write_config(tmp_path / "dms.yml", simulator)
    client = await start_console(config_file)
    exporter = exporter_of(client)
    before = exporter.config
    Path(default_state_path(str(config_file))).mkdir()  # a directory where the file should go
    status, page = await post(client, "/console/endpoints/devices", interval="2m")
    assert status == 400 and "cannot write" in errors_in(page)[0]
    assert exporter.config is before


def test_a_bad_state_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "dms.console.json"
    for text, problem in (
        ("{not json", "not a console state file"),
        ('{"endpoints": {"bogus": {"enabled": false}}}', "endpoints.bogus: unknown endpoint"),
        ('{"endpoints": {"devices": {"interval": "fast"}}}', "must be a number of seconds"),
        ('{"descriptions": {"d": 5}}', "descriptions.d: must be text"),
    ):
        path.write_text(text)
        with pytest.raises(ConfigError) as error:
            StateFile(str(path)).load()
        assert str(path) in str(error.value) and problem in str(error.value)


def test_demo_keeps_edits_in_memory_or_in_the_given_state_file(tmp_path):
    from test_cli import free_port, wait_for

    state = tmp_path / "demo.json"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dms_exporter", "--demo", "--demo.devices", "50",
         "--console.state-file", str(state), "--web.listen-address", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        page = wait_for(f"{base}/console/settings")
        assert f"In <code>{state}</code>" in page
        request = urllib.request.Request(
            f"{base}/console/settings",
            data=b"setting=alarm_retrieval&value=all",
            headers={"Origin": base},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # follows the 303
            assert "set in console, overrides" in answer.read().decode()
        assert json.loads(state.read_text())["alarm_retrieval"] == "all"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
