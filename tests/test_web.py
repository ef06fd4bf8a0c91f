"""The HTTP handlers one by one: status codes and bodies an operator or Prometheus sees."""

from __future__ import annotations

import pytest
from conftest import exporter_config, samples, scrape, value

from dms_exporter.exposition.text import CONTENT_TYPE_TEXT
from dms_exporter.model import ENDPOINTS
from dms_exporter.web.app import EXPORTER_KEY, accepts_gzip


@pytest.mark.parametrize(
    ("header", "gzip"),
    [
        ("", False),
        ("gzip", True),
        ("deflate, gzip;q=0.5", True),
        ("GZIP", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0, identity", False),
        ("br, deflate", False),
        ("gzip;q=nonsense", True),
    ],
)
def test_accepts_gzip(header: str, gzip: bool) -> None:
    assert accepts_gzip(header) is gzip


async def test_reload_without_a_file_says_so(simulator, start_exporter):
    client = await start_exporter(exporter_config(simulator))  # as --demo runs: no file
    response = await client.post("/-/reload")
    assert response.status == 409
    assert "No configuration file to reload" in await response.text()
    assert (await client.get("/-/reload")).status == 405


async def test_rejected_reload_answers_every_reason_and_keeps_running(
    simulator, start_exporter, tmp_path
):
    config_file = tmp_path / "dms.yml"
    good = (
        f"dms: {{url: '{simulator.base_url}', username: {simulator.username},"
        f" password: {simulator.password}, proxy: direct}}\n"
    )
    config_file.write_text(good)
    client = await start_exporter(exporter_config(simulator), config_file=str(config_file))
    config_file.write_text(good + "endpoints: {devices: {interval: 0}, nope: {}}\n")
    response = await client.post("/-/reload")
    assert response.status == 500
    lines = (await response.text()).splitlines()
    assert lines[0] == "Reload failed; the running config is kept:"
    assert [line.split(": ")[1] for line in lines[1:]] == [
        "endpoints.nope",
        "endpoints.devices.interval",
    ]
    assert simulator.password not in "\n".join(lines)
    config_file.write_text(good)
    ok = await client.post("/-/reload")
    assert (ok.status, await ok.text()) == (200, "Reloaded\n")
    assert client.server.app[EXPORTER_KEY].reload_error is None


async def test_refresh_answers(simulator, start_exporter):
    client = await start_exporter(
        exporter_config(simulator, endpoints={"groups": {"enabled": False}})
    )
    ok = await client.post("/-/refresh/devices")
    assert ok.status == 200
    assert (await ok.json())["endpoint"] == "devices"
    unknown = await client.post("/-/refresh/nope")
    assert unknown.status == 404
    assert (await unknown.json())["endpoints"] == list(ENDPOINTS)
    disabled = await client.post("/-/refresh/groups")
    assert disabled.status == 409
    assert (await disabled.json())["status"]["last_result"] == "disabled"
    simulator.add_fault("alarms", "status", status=503)
    failed = await client.post("/-/refresh/alarms")
    assert failed.status == 502
    assert (await failed.json())["last_result"] == "unavailable"


async def test_metrics_headers_and_length(simulator, start_exporter):
    client = await start_exporter(exporter_config(simulator))
    response = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
    body = await response.read()
    assert response.headers["Content-Type"] == CONTENT_TYPE_TEXT
    assert response.headers["Vary"] == "Accept, Accept-Encoding"
    assert int(response.headers["Content-Length"]) == len(body)
    assert body.decode().startswith("# HELP ")
    assert "dms_device_info{" in await scrape(client)


async def test_endpoints_json_lists_every_endpoint(simulator, start_exporter):
    client = await start_exporter(exporter_config(simulator))
    answer = await (await client.get("/api/v1/endpoints")).json()
    assert [e["endpoint"] for e in answer["endpoints"]] == list(ENDPOINTS)
    assert {e["last_result"] for e in answer["endpoints"]} == {"ok"}


async def test_landing_page_links(simulator, start_exporter):
    client = await start_exporter(exporter_config(simulator))
    response = await client.get("/")
    assert response.content_type == "text/html"
    text = await response.text()
    for href in ("/metrics", "/api/v1/endpoints", "/-/healthy", "/-/ready"):
        assert f'href="{href}"' in text
    assert (await client.get("/-/ready")).status == 200
    assert await (await client.get("/-/healthy")).text() == "Healthy\n"


async def test_process_metrics_are_in_the_scrape_and_follow_name_filter(simulator, start_exporter):
    client = await start_exporter(exporter_config(simulator))
    for accept in (None, "application/openmetrics-text;version=1.0.0"):
        body = await scrape(client, accept)
        assert value(body, "process_resident_memory_bytes") > 10e6
        assert value(body, "process_open_fds") >= 3  # stdio at least, and the listening socket
        assert value(body, "process_cpu_seconds_total") > 0
        assert samples(body, "python_gc_collections_total", generation="0")
        assert body.count("# EOF") == (1 if accept else 0)
    only = await client.get("/metrics?name[]=process_open_fds&name[]=dms_up")
    names = {
        line.split()[2] for line in (await only.text()).splitlines() if line.startswith("# TYPE")
    }
    assert names == {"process_open_fds", "dms_up"}
