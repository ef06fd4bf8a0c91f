"""The ``metrics:`` switch: presets and single families, validated, applied on reload without a
poll, and what the lean preset costs per device against the full one."""

from __future__ import annotations

import pytest
from conftest import exporter_config, samples, scrape, value
from prometheus_client.parser import text_string_to_metric_families

from dms_exporter.config import config_from_mapping, load_config
from dms_exporter.errors import ConfigError
from dms_exporter.exposition.selection import PRESETS, switchable_families
from dms_exporter.simulator import start_simulator

LEAN_KEEPS = (
    "dms_device_info",
    "dms_device_connection_state",
    "dms_device_last_contact_timestamp_seconds",
    "dms_alarm_asserted_timestamp_seconds",
)
FLEET = (
    "dms_devices",
    "dms_devices_by_site",
    "dms_devices_by_control_mode",
    "dms_devices_by_authorization_state",
    "dms_service_authorized_devices",
    "dms_destinations",
)


def families(body: str) -> set[str]:
    """OpenMetrics names of the families in a text exposition."""
    known = switchable_families()
    types = (line.split()[2] for line in body.splitlines() if line.startswith("# TYPE "))
    return {known.get(name, name) for name in types}


def per_device_series(body: str) -> dict[str, int]:
    """Family (sample name) -> series that carry a device_id, alarms left out."""
    counts: dict[str, int] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.labels.get("device_id") and not sample.name.startswith("dms_alarm"):
                counts[sample.name] = counts.get(sample.name, 0) + 1
    return counts


async def test_lean_keeps_what_alerts_need_and_costs_a_third_per_device(start_exporter):
    async with start_simulator(devices=300, seed=5, frozen=True) as sim:
        full = await scrape(await start_exporter(exporter_config(sim)))
        lean = await scrape(await start_exporter(exporter_config(sim, metrics={"preset": "lean"})))
    devices = len(samples(full, "dms_device_info"))
    assert devices == 300
    full_per_device = sum(per_device_series(full).values()) / devices
    lean_per_device = sum(per_device_series(lean).values()) / devices
    assert full_per_device >= 3 * lean_per_device, (full_per_device, lean_per_device)
    for name in LEAN_KEEPS:
        assert len(samples(lean, name)) == len(samples(full, name)) > 0, name
    for name in FLEET:
        assert samples(lean, name) == samples(full, name) != [], name
    assert PRESETS["lean"] <= families(full)
    assert not PRESETS["lean"] & families(lean)
    # the fleet counts add up to what the per-device series say
    offline = samples(full, "dms_device_connection_state", dms_device_connection_state="offline")
    by_site = samples(lean, "dms_devices_by_site", connection_state="offline")
    assert sum(v for _, v in by_site) == sum(v for _, v in offline) > 0
    statuses = samples(full, "dms_destination_status")
    ok = sum(v for labels, v in statuses if labels["dms_destination_status"] == "ok")
    assert sum(v for _, v in samples(lean, "dms_destinations", status="ok")) == ok


async def test_switching_families_on_reload_renders_without_polling(simulator, start_exporter,
                                                                    tmp_path):  # fmt: skip
    config_file = tmp_path / "dms.yml"
    base = (
        f"dms: {{url: '{simulator.base_url}', username: {simulator.username},"
        f" password: {simulator.password}, proxy: direct}}\n"
    )
    config_file.write_text(base)
    client = await start_exporter(load_config(str(config_file)), config_file=str(config_file))
    before = await scrape(client)
    polls = value(before, "dms_exporter_endpoint_polls_total", endpoint="devices")
    assert samples(before, "dms_device_group_member")
    config_file.write_text(
        base + "metrics: {preset: lean, enable: [dms_destination_status],"
        " disable: [dms_device_last_contact_timestamp_seconds, python_gc_collections_total]}\n"
    )
    assert (await client.post("/-/reload")).status == 200
    after = await scrape(client)
    assert not samples(after, "dms_device_group_member")
    assert not samples(after, "dms_device_last_contact_timestamp_seconds")
    assert not samples(after, "python_gc_collections_total")
    assert samples(after, "dms_destination_status")  # enabled again over the preset
    assert samples(after, "dms_device_connection_state")
    assert value(after, "dms_exporter_endpoint_polls_total", endpoint="devices") == polls
    config_file.write_text(base)
    assert (await client.post("/-/reload")).status == 200
    back = await scrape(client)
    assert len(samples(back, "dms_device_group_member")) == len(
        samples(before, "dms_device_group_member")
    )
    assert value(back, "dms_exporter_endpoint_polls_total", endpoint="devices") == polls


def test_metrics_config_is_validated() -> None:
    dms = {"url": "http://h/x", "username": "u", "password": "p"}
    config = config_from_mapping({"dms": dms, "metrics": {"disable": ["dms_device_info"]}}, "m")
    assert config.metrics.disabled == {"dms_device"}  # text and OpenMetrics names both work
    assert config_from_mapping({"dms": dms}, "m").metrics.disabled == frozenset()
    bad = {"preset": "tiny", "disable": ["dms_exporter_endpoint_up", 3], "enable": "x"}
    with pytest.raises(ConfigError) as caught:
        config_from_mapping({"dms": dms, "metrics": bad}, "m")
    keys = [line.split(": ")[1] for line in str(caught.value).splitlines()]
    assert keys == ["metrics.preset", "metrics.disable[0]", "metrics.disable[1]", "metrics.enable"]
