"""End to end: the exporter polling a real simulator over HTTP, scraped over HTTP."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Callable

from conftest import exporter_config, samples, scrape, value, wait_until_ready
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

from dms_exporter.config import load_config
from dms_exporter.exposition.text import CONTENT_TYPE_OPENMETRICS, CONTENT_TYPE_TEXT
from dms_exporter.web.app import EXPORTER_KEY

OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


async def test_openmetrics_exposition_parses_strictly_and_has_simulator_data(
    simulator, start_exporter
):
    client = await start_exporter(exporter_config(simulator))
    response = await client.get("/metrics", headers={"Accept": OPENMETRICS})
    assert response.headers["Content-Type"] == CONTENT_TYPE_OPENMETRICS
    body = await response.text()
    assert body.endswith("# EOF\n")
    families = {f.name: f for f in parse_om(body)}  # raises on any format error
    devices = len(simulator.world.devices)
    assert len(families["dms_device"].samples) == devices
    assert families["dms_device_connection_state"].type == "stateset"
    assert families["dms_up"].samples[0].value == 1


async def test_plain_text_is_the_default_and_gzip_is_honoured(simulator, start_exporter):
    client = await start_exporter(exporter_config(simulator))
    plain = await client.get("/metrics")
    assert plain.headers["Content-Type"] == CONTENT_TYPE_TEXT
    plain_body = await plain.read()
    zipped = await client.get(
        "/metrics", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
    )
    assert zipped.headers["Content-Encoding"] == "gzip"
    raw = await zipped.read()
    assert len(raw) < len(plain_body) / 3
    unzipped = gzip.decompress(raw).decode()
    # the same data series; health values (durations, timestamps) may move between scrapes
    data = [line for line in unzipped.splitlines() if line.startswith("dms_device_info")]
    assert data == [
        line for line in plain_body.decode().splitlines() if line.startswith("dms_device_info")
    ]
    assert data
    refused = await client.get("/metrics", headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers


async def test_health_of_every_endpoint_is_shown(simulator, start_exporter):
    client = await start_exporter(
        exporter_config(simulator, endpoints={"services": {"enabled": False}})
    )
    body = await scrape(client)
    assert value(body, "dms_exporter_endpoint_up", endpoint="devices") == 1
    assert value(body, "dms_exporter_endpoint_enabled", endpoint="services") == 0
    assert value(body, "dms_exporter_endpoint_interval_seconds", endpoint="devices") == 60
    assert value(body, "dms_exporter_endpoint_rows", endpoint="devices") == len(
        simulator.world.devices
    )
    status = await (await client.get("/api/v1/endpoints")).json()
    by_name = {e["endpoint"]: e for e in status["endpoints"]}
    assert by_name["devices"]["last_result"] == "ok"
    assert by_name["devices"]["last_success"] is not None
    assert by_name["services"]["last_result"] == "disabled"
    assert not samples(body, "dms_service_info")


async def test_custom_description_is_the_display_name_everywhere(simulator, start_exporter):
    device_id = next(iter(simulator.world.devices))
    config = exporter_config(
        simulator, display_names={"devices": {device_id: "Denver Affiliate Rack 3"}}
    )
    client = await start_exporter(config)
    body = await scrape(client)
    for name in (
        "dms_device_info",
        "dms_device_connection_state",
        "dms_destination_info",
        "dms_device_authorized_services",
    ):
        found = samples(body, name, device_id=device_id)
        assert found, name
        assert {labels["display_name"] for labels, _ in found} == {"Denver Affiliate Rack 3"}


async def test_description_change_applies_on_reload(simulator, start_exporter, tmp_path):
    config_file = tmp_path / "dms.yml"
    base = (
        f"dms: {{url: '{simulator.base_url}', username: {simulator.username},"
        f" password: {simulator.password}, proxy: direct}}\n"
    )
    config_file.write_text(base + "display_names: {devices: {dev-000004: Old Rack}}\n")
    client = await start_exporter(load_config(str(config_file)), config_file=str(config_file))
    before = await scrape(client)
    assert samples(before, "dms_destination_info", device_id="dev-000004", display_name="Old Rack")

    config_file.write_text(base + "display_names: {devices: {dev-000004: New Rack}}\n")
    assert (await client.post("/-/reload")).status == 200
    after = await scrape(client)
    for name in ("dms_device_info", "dms_destination_info", "dms_device_authorized_services"):
        assert samples(after, name, device_id="dev-000004", display_name="New Rack"), name
        assert not samples(after, name, display_name="Old Rack"), name

    config_file.write_text(base + "display_names: {devices: [not, a, map]}\n")
    rejected = await client.post("/-/reload")
    assert rejected.status == 500
    reason = await rejected.text()
    assert f"{config_file}: display_names.devices: must be a mapping, got a list" in reason
    assert simulator.password not in reason
    kept = await scrape(client)
    assert samples(kept, "dms_device_info", device_id="dev-000004", display_name="New Rack")
    assert value(kept, "dms_exporter_config_last_reload_successful") == 0


async def test_schedule_authorization_switch(simulator, start_exporter):
    on = await scrape(await start_exporter(exporter_config(simulator)))
    off = await scrape(
        await start_exporter(exporter_config(simulator, allow_schedule_authorization=False))
    )
    assert samples(on, "dms_schedule_authorization_info")
    assert samples(on, "dms_device_authorized_services", source="schedule")
    assert not samples(off, "dms_schedule_authorization_info")
    assert not samples(off, "dms_device_authorized_services", source="schedule")
    assert samples(off, "dms_device_authorized_services", source="permanent")


async def test_alarm_retrieval_active_or_all(simulator, start_exporter):
    active = await scrape(await start_exporter(exporter_config(simulator)))
    every = await scrape(
        await start_exporter(exporter_config(simulator, alarms={"retrieval": "all"}))
    )
    assert not samples(active, "dms_alarms", state="cleared")
    cleared = sum(v for _, v in samples(every, "dms_alarms", state="cleared"))
    assert cleared > 0
    # one series per ACTIVE alarm in both modes, never one per cleared alarm
    assert len(samples(every, "dms_alarm_asserted_timestamp_seconds")) == len(
        samples(active, "dms_alarm_asserted_timestamp_seconds")
    )


async def test_refresh_on_demand_shows_a_new_alarm(simulator, start_exporter):
    client = await start_exporter(exporter_config(simulator))
    alarm = simulator.raise_alarm(
        device_id="dev-000003",
        severity="CRITICAL",
        code="SIGNAL_LOSS",
        fault_object="DVB-S2 Input 1",
    )
    before = await scrape(client)
    assert not samples(before, "dms_alarm_asserted_timestamp_seconds", alarm_id=alarm["id"])
    response = await client.post("/-/refresh/alarms")
    assert response.status == 200
    assert (await response.json())["last_result"] == "ok"
    after = await scrape(client)
    found = samples(after, "dms_alarm_asserted_timestamp_seconds", alarm_id=alarm["id"])
    assert len(found) == 1
    labels, _ = found[0]
    assert (labels["severity"], labels["code"], labels["device_id"]) == (
        "critical",
        "SIGNAL_LOSS",
        "dev-000003",
    )


async def test_refresh_errors(simulator, start_exporter):
    client = await start_exporter(
        exporter_config(simulator, endpoints={"groups": {"enabled": False}})
    )
    assert (await client.post("/-/refresh/nope")).status == 404
    assert (await client.get("/-/refresh/devices")).status == 405
    assert (await client.post("/-/refresh/groups")).status == 409


async def test_logs_in_again_after_token_expiry(simulator, start_exporter):
    client = await start_exporter(exporter_config(simulator))
    body = await scrape(client)
    logins = value(body, "dms_exporter_logins_total", result="success")
    simulator.expire_tokens()
    response = await client.post("/-/refresh/devices")
    assert response.status == 200
    body = await scrape(client)
    assert value(body, "dms_exporter_logins_total", result="success") == logins + 1
    assert value(body, "dms_exporter_endpoint_up", endpoint="devices") == 1


async def test_failing_endpoint_leaves_the_others_and_its_last_good_data(simulator, start_exporter):
    client = await start_exporter(exporter_config(simulator))
    before = await scrape(client)
    destinations = samples(before, "dms_destination_info")
    assert destinations
    simulator.add_fault(endpoint="destinations", kind="status", status=500)
    response = await client.post("/-/refresh/destinations")
    assert response.status == 502
    assert (await response.json())["last_result"] == "unavailable"
    assert (await client.post("/-/refresh/devices")).status == 200
    after = await scrape(client)
    assert value(after, "dms_exporter_endpoint_up", endpoint="destinations") == 0
    assert (
        value(
            after,
            "dms_exporter_endpoint_errors_total",
            endpoint="destinations",
            reason="unavailable",
        )
        == 1
    )
    assert samples(after, "dms_destination_info") == destinations  # last good data kept
    assert value(after, "dms_exporter_endpoint_up", endpoint="devices") == 1


async def test_slow_endpoint_does_not_delay_another(simulator, start_exporter):
    config = exporter_config(simulator, endpoints={"groups": {"interval": "10s", "timeout": "3s"}})
    client = await start_exporter(config)
    simulator.add_fault(endpoint="groups", kind="latency", seconds=2.5)
    loop = asyncio.get_running_loop()
    slow = asyncio.create_task(client.post("/-/refresh/groups"))
    await asyncio.sleep(0.1)
    started = loop.time()
    response = await client.post("/-/refresh/devices")
    assert response.status == 200
    assert loop.time() - started < 1.5
    assert (await slow).status == 200


async def test_old_data_is_kept_marked_stale_then_dropped_health_stays(simulator, start_exporter):
    config = exporter_config(
        simulator,
        endpoints={
            "destinations": {
                "interval": "1s",
                "timeout": "500ms",
                "stale_after": "2s",
                "drop_after": "4s",
            }
        },
    )
    client = await start_exporter(config)
    held = samples(await scrape(client), "dms_destination_info")
    assert held
    simulator.add_fault(endpoint="destinations", kind="status", status=503)
    loop = asyncio.get_running_loop()

    async def scrape_until(done: Callable[[str], bool], seconds: float) -> str:
        deadline = loop.time() + seconds
        body = await scrape(client)
        while not done(body) and loop.time() < deadline:
            await asyncio.sleep(0.1)
            body = await scrape(client)
        return body

    def stale(body: str) -> bool:
        return value(body, "dms_exporter_endpoint_stale", endpoint="destinations") == 1

    body = await scrape_until(stale, 8)
    assert stale(body)
    assert samples(body, "dms_destination_info") == held  # old, but shown
    assert value(body, "dms_exporter_endpoint_data_age_seconds", endpoint="destinations") > 2
    body = await scrape_until(lambda b: not samples(b, "dms_destination_info"), 8)
    assert not samples(body, "dms_destination_info")  # past drop_after
    assert stale(body)
    assert value(body, "dms_exporter_endpoint_up", endpoint="destinations") == 0
    assert value(body, "dms_exporter_endpoint_rows", endpoint="destinations") == 0
    assert samples(body, "dms_device_info")  # other endpoints untouched
    simulator.clear_faults()
    # the 500 ms poll timeout can run out on a loaded machine, so allow a few polls to recover
    deadline = loop.time() + 15
    while (await client.post("/-/refresh/destinations")).status != 200:
        assert loop.time() < deadline, "destinations did not recover after the fault cleared"
        await asyncio.sleep(0.2)
    body = await scrape(client)
    assert samples(body, "dms_destination_info")
    assert value(body, "dms_exporter_endpoint_stale", endpoint="destinations") == 0


async def test_device_state_change_shows_after_refresh(simulator, start_exporter):
    client = await start_exporter(exporter_config(simulator))
    simulator.set_device("dev-000001", connectionState="OFFLINE")
    assert (await client.post("/-/refresh/devices")).status == 200
    body = await scrape(client)
    assert (
        value(
            body,
            "dms_device_connection_state",
            device_id="dev-000001",
            dms_device_connection_state="offline",
        )
        == 1
    )


async def test_ready_only_after_first_poll_and_pending_is_not_down(simulator, start_exporter):
    """While the first poll of devices runs: healthy, not ready, and devices pending (no
    endpoint_up sample, so no alert on it), the other endpoints up; then ready and up."""
    simulator.add_fault(endpoint="devices", kind="latency", seconds=2.0)
    client = await start_exporter(exporter_config(simulator), wait_ready=False)
    exporter = client.server.app[EXPORTER_KEY]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while exporter.store.status("alarms").last_poll is None and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert (await client.get("/-/healthy")).status == 200
    assert (await client.get("/-/ready")).status == 503
    body = await scrape(client)
    assert not samples(body, "dms_exporter_endpoint_up", endpoint="devices")
    assert value(body, "dms_exporter_endpoint_polls_total", endpoint="devices") == 0
    assert value(body, "dms_exporter_endpoint_up", endpoint="alarms") == 1
    status = await (await client.get("/api/v1/endpoints")).json()
    assert {e["endpoint"]: e["last_result"] for e in status["endpoints"]}["devices"] == "pending"
    await wait_until_ready(client)
    body = await scrape(client)
    assert value(body, "dms_exporter_endpoint_up", endpoint="devices") == 1
    landing = await client.get("/")
    assert "/metrics" in await landing.text()


async def test_secrets_never_shown(simulator, start_exporter, caplog):
    client = await start_exporter(exporter_config(simulator))
    simulator.add_fault(endpoint="system", kind="status", status=500)
    await client.post("/-/refresh/system")
    texts = [
        await scrape(client),
        json.dumps(await (await client.get("/api/v1/endpoints")).json()),
        caplog.text,
    ]
    for text in texts:
        assert simulator.password not in text
