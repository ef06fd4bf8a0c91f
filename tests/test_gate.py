"""The quality gate: unit rules, and end to end a content fault of the simulator never replaces
good data (counts unchanged, endpoint reported ``suspect``)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from conftest import exporter_config, samples, scrape, value

from dms_exporter.config import GateSettings
from dms_exporter.polling.gate import Quality, judge

GOOD = Quality(items=1000, skipped=0, issues={"deviceType": 1000, "lastContact": 50})


def test_a_first_poll_is_applied_whatever_it_holds() -> None:
    assert judge(Quality(items=10, skipped=9, issues={"state": 10}), None, GateSettings()) is None


@pytest.mark.parametrize(
    ("new", "problem"),
    [
        (Quality(items=1000, skipped=101), "101 of 1000 rows skipped"),
        (Quality(items=1000, skipped=0, issues={"connectionState": 101}), "field connectionState"),
        # a field already this bad in the last good poll is how this DMS is: no reason to hold
        (Quality(items=1000, skipped=0, issues={"deviceType": 1000}), None),
        (Quality(items=1000, skipped=100, issues={"connectionState": 100}), None),  # 10%: not above
        (Quality(items=1000, skipped=0, issues={"lastContact": 200}), None),  # last good had 5%
        (
            Quality(items=1000, skipped=0, issues={"lastContact": 200, "a": 300, "b": 300}),
            "field a: 300 of 1000 rows with an unknown or wrongly typed value, the last good poll "
            "had 0 of 1000 (and 1 more field)",
        ),
    ],
)
def test_a_poll_far_worse_than_the_last_good_one_is_suspect(
    new: Quality, problem: str | None
) -> None:
    verdict = judge(new, GOOD, GateSettings())
    assert verdict is None if problem is None else problem in verdict


def test_thresholds_are_per_endpoint_and_the_gate_can_be_switched_off() -> None:
    new = Quality(items=1000, skipped=0, issues={"connectionState": 50})
    assert judge(new, GOOD, GateSettings()) is None
    assert judge(new, GOOD, GateSettings(bad_values_above=0.04)) is not None
    assert judge(new, GOOD, GateSettings(enabled=False, bad_values_above=0.04)) is None


def truth(body: str) -> dict[str, object]:
    """What an operator watches: devices by state, active alarms, authorized services."""
    by_state: Counter[str] = Counter()
    for labels, v in samples(body, "dms_devices"):
        by_state[labels["connection_state"]] += int(v)
    by_auth = {
        labels["authorization_state"]: v
        for labels, v in samples(body, "dms_devices_by_authorization_state")
    }
    services: Counter[str] = Counter()
    for labels, v in samples(body, "dms_device_authorized_services"):
        services[labels["source"]] += int(v)
    return {
        "devices": dict(by_state),
        "authorization_states": by_auth,
        "active_alarms": sorted(
            labels["alarm_id"]
            for labels, _ in samples(body, "dms_alarm_asserted_timestamp_seconds")
        ),
        "alarm_counts": sum(v for _, v in samples(body, "dms_alarms", state="active")),
        "authorized_services": dict(services),
    }


@pytest.mark.parametrize("endpoint", ["devices", "alarms", "authorizations"])
@pytest.mark.parametrize("kind", ["unknown_enums", "missing_fields", "wrong_types"])
async def test_content_fault_keeps_the_counts_and_reports_suspect(
    simulator, start_exporter, endpoint: str, kind: str
) -> None:
    for device in ("dev-000001", "dev-000002", "dev-000003", None):
        simulator.raise_alarm(device_id=device, severity="CRITICAL")
    client = await start_exporter(exporter_config(simulator))
    before = truth(await scrape(client))
    assert before["active_alarms"] and before["authorized_services"] and before["devices"]
    simulator.add_fault(endpoint, kind)
    for _ in range(2):  # the fault lasts: every poll during it is held back
        response = await client.post(f"/-/refresh/{endpoint}")
        assert response.status == 502
        status = await response.json()
        assert status["last_result"] == "suspect"
    assert "not applied" in status["last_error"]
    body = await scrape(client)
    assert truth(body) == before
    assert value(body, "dms_exporter_endpoint_up", endpoint=endpoint) == 0
    errors = value(body, "dms_exporter_endpoint_errors_total", endpoint=endpoint, reason="suspect")
    assert errors == 2
    simulator.clear_faults()
    assert (await client.post(f"/-/refresh/{endpoint}")).status == 200
    assert truth(await scrape(client)) == before


async def test_a_suspect_poll_logs_one_line_naming_the_field(
    simulator, start_exporter, caplog
) -> None:
    client = await start_exporter(exporter_config(simulator))
    simulator.add_fault("devices", "unknown_enums")
    caplog.set_level("DEBUG", logger="dms_exporter")
    for _ in range(3):
        await client.post("/-/refresh/devices")
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert (warnings[0].endpoint, warnings[0].reason) == ("devices", "suspect")
    lines = [warnings[0].error]
    n = len(simulator.world.devices)
    # the worst fields, the first by name: authorizationState, connectionState, controlMode and
    # deviceType all carry a word the exporter does not know
    assert f"field authorizationState: {n} of {n} rows" in lines[0]
    assert "the last good poll had 0 of" in lines[0] and "(and 3 more fields)" in lines[0]


async def test_scrapes_during_lasting_content_faults_keep_the_truth(
    simulator, start_exporter
) -> None:
    """Polled every second by the exporter's own loops, each content fault in turn on devices,
    alarms and authorizations at once, 2 s each: every scrape meanwhile shows the same counts."""
    for device in ("dev-000001", "dev-000002", None):
        simulator.raise_alarm(device_id=device, severity="MAJOR")
    fast = {"interval": "1s", "timeout": "900ms", "stale_after": "60s"}  # held data stays
    watched = ("devices", "alarms", "authorizations")
    config = exporter_config(simulator, endpoints=dict.fromkeys(watched, fast))
    client = await start_exporter(config)
    before = truth(await scrape(client))
    loop = asyncio.get_running_loop()
    scrapes = 0
    for kind in ("unknown_enums", "missing_fields", "wrong_types"):
        for endpoint in watched:
            simulator.add_fault(endpoint, kind)
        until = loop.time() + 2.0
        while loop.time() < until:
            assert truth(await scrape(client)) == before
            scrapes += 1
            await asyncio.sleep(0.25)
        simulator.clear_faults()
    body = await scrape(client)
    for endpoint in watched:
        suspect = value(body, "dms_exporter_endpoint_errors_total", endpoint=endpoint,
                        reason="suspect")  # fmt: skip
        assert suspect >= 3, endpoint  # at least one held-back poll per fault
    assert scrapes >= 6  # a few scrapes in every phase, even on a busy machine
