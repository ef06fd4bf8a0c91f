"""Tables in, samples out: one block of tests per family module."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from dms_exporter import model
from dms_exporter.errors import ERROR_REASONS
from dms_exporter.exposition.families import RenderContext
from dms_exporter.exposition.families.alarms import alarm_families
from dms_exporter.exposition.families.authorization import authorization_families
from dms_exporter.exposition.families.destinations import destination_families
from dms_exporter.exposition.families.devices import device_families
from dms_exporter.exposition.families.health import POLL_RESULTS, health_families
from dms_exporter.exposition.families.system import system_families
from dms_exporter.exposition.text import Family, render_text

NOW = 1_780_000_000.0


def table(endpoint: str, *rows: Any, fetched_at: float = NOW) -> model.Table:
    return model.Table(endpoint, tuple(rows), fetched_at)


def device(device_id: str, **fields: Any) -> model.Device:
    values: dict[str, Any] = dict(
        id=device_id, name=f"Name {device_id}", unit_address="000123456789",
        serial_number="PV81K-2231-0457", mac_address="00:0E:5C:12:34:56", model="ProView 8130",
        device_type="ird", firmware_version="1.8.1.0.26", connection_state="online",
        control_mode="dms", last_contact=NOW - 18, group_ids=(), site="Denver Headend",
        region="US-West", authorization_state="authorized",
    )  # fmt: skip
    return model.Device(**values | fields)


def alarm(alarm_id: str, **fields: Any) -> model.Alarm:
    values: dict[str, Any] = dict(
        id=alarm_id, device_id="d1", source="device", fault_object="DVB-S2 Input 1",
        code="SIGNAL_LOSS", description="Input signal lost", severity="critical", state="active",
        asserted_time=NOW - 60, cleared_time=None, acknowledged=False,
    )  # fmt: skip
    return model.Alarm(**values | fields)


def authorization(device_id: str, source: str, authorized: bool = True) -> model.Authorization:
    return model.Authorization(
        device_id=device_id,
        service_id="svc-101",
        authorization_set_id="as-1",
        schedule_authorization_id="sa-1" if source == "schedule" else "",
        source=source,
        authorized=authorized,
        valid_from=None,
        valid_to=None,
    )


def destination(destination_id: str, device_id: str, **fields: Any) -> model.Destination:
    values: dict[str, Any] = dict(
        id=destination_id, device_id=device_id, name="Output 1", type="ip", enabled=True,
        service_id="svc-101", ip_address="239.10.1.1", ip_port=5000, status="ok",
    )  # fmt: skip
    return model.Destination(**values | fields)


SETS = table(
    "authorization_sets",
    model.AuthorizationSet(
        "as-1", "Basic", "permanent", True, ("svc-101", "svc-102"), (), (), 1830, None
    ),
)
SCHEDULES = table(
    "schedule_authorizations",
    model.ScheduleAuthorization(
        "sa-1",
        "Sunday Game",
        "as-1",
        ("svc-201",),
        ("g-west",),
        (),
        NOW - 60,
        NOW + 3600,
        "active",
        412,
    ),
)


def by_name(families: list[Family]) -> dict[str, Family]:
    return {f.name: f for f in families}


def samples(families: list[Family], name: str) -> dict[tuple[str, ...], float]:
    """label values -> value of one family."""
    return dict(by_name(families)[name].samples)


def column(families: list[Family], name: str, label: str) -> list[str]:
    """The values of one label over a family's samples, in order."""
    family = by_name(families)[name]
    i = family.label_names.index(label)
    return [values[i] for values, _ in family.samples]


# -- display names ---------------------------------------------------------------------------


def test_display_name_custom_description_then_name_then_id() -> None:
    devices = table("devices", device("d1"), device("d2"), device("d3", name=""))
    ctx = RenderContext(display_names={"d1": "Denver uplink"})
    families = device_families(devices, None, None, ctx)
    assert column(families, "dms_device", "display_name") == ["Denver uplink", "Name d2", "d3"]
    # the same name on every per-device family
    assert set(column(families, "dms_device_connection_state", "display_name")) == {
        "Denver uplink",
        "Name d2",
        "d3",
    }


def test_unknown_device_ids_in_destinations_and_alarms_do_not_crash() -> None:
    devices = table("devices", device("d1"))
    ctx = RenderContext(display_names={"ghost-2": "Spare IRD"})
    dests = table(
        "destinations",
        destination("x1", "d1"),
        destination("x2", "ghost-1"),
        destination("x3", "ghost-2"),
    )
    families = destination_families(dests, devices, ctx)
    assert column(families, "dms_destination", "display_name") == [
        "Name d1",
        "ghost-1",
        "Spare IRD",
    ]
    alarms = table("alarms", alarm("a1", device_id="ghost-1"), alarm("a2", device_id="ghost-2"))
    families = alarm_families(alarms, devices, ctx)
    assert column(families, "dms_alarm_asserted_timestamp_seconds", "display_name") == [
        "ghost-1",
        "Spare IRD",
    ]


def test_destinations_name_their_device_by_the_same_rule_as_the_device_families() -> None:
    devices = table("devices", device("d1"), device("d2", name=""), device("d3"), device("d4"))
    ctx = RenderContext(display_names={"d1": "Denver uplink", "d3": ""})
    dests = table("destinations", *(destination(f"x{i}", f"d{i}") for i in range(1, 6)))
    names = column(destination_families(dests, devices, ctx), "dms_destination", "display_name")
    assert names == ["Denver uplink", "d2", "Name d3", "Name d4", "d5"]
    assert names[:4] == column(
        device_families(devices, None, None, ctx), "dms_device", "display_name"
    )


def test_destinations_without_devices_table_use_ids() -> None:
    families = destination_families(
        table("destinations", destination("x1", "d1")), None, RenderContext()
    )
    assert samples(families, "dms_destination_enabled") == {("x1", "d1", "d1"): 1}
    assert samples(families, "dms_destination") == {
        ("x1", "d1", "d1", "Output 1", "ip", "239.10.1.1", "5000", "svc-101"): 1
    }


# -- devices ---------------------------------------------------------------------------------


def test_device_states_are_one_hot_and_unknown_is_other() -> None:
    devices = table(
        "devices",
        device("d1"),
        device("d2", connection_state="other", control_mode="bogus"),
    )
    states = samples(
        device_families(devices, None, None, RenderContext()), "dms_device_connection_state"
    )
    assert states == {
        ("d1", "Name d1", "online"): 1,
        ("d1", "Name d1", "offline"): 0,
        ("d1", "Name d1", "unknown"): 0,
        ("d1", "Name d1", "never_connected"): 0,
        ("d1", "Name d1", "other"): 0,
        ("d2", "Name d2", "online"): 0,
        ("d2", "Name d2", "offline"): 0,
        ("d2", "Name d2", "unknown"): 0,
        ("d2", "Name d2", "never_connected"): 0,
        ("d2", "Name d2", "other"): 1,
    }
    modes = samples(
        device_families(devices, None, None, RenderContext()), "dms_device_control_mode"
    )
    assert {k[2] for k, v in modes.items() if k[0] == "d2" and v} == {"other"}


def test_fleet_counts_include_zeros_for_every_state_of_every_model() -> None:
    devices = table(
        "devices",
        device("d1"),
        device("d2", connection_state="offline"),
        device("d3", model="XOS Edge", authorization_state="deauthorized"),
    )
    families = device_families(devices, None, None, RenderContext())
    fleet = samples(families, "dms_devices")
    assert len(fleet) == 2 * len(model.CONNECTION_STATES)
    assert fleet[("ProView 8130", "online")] == 1
    assert fleet[("ProView 8130", "offline")] == 1
    assert fleet[("ProView 8130", "never_connected")] == 0
    assert fleet[("XOS Edge", "online")] == 1
    assert fleet[("XOS Edge", "offline")] == 0
    assert samples(families, "dms_devices_by_authorization_state") == {
        ("authorized",): 2,
        ("partially_authorized",): 0,
        ("deauthorized",): 1,
        ("other",): 0,
    }


def test_last_contact_absent_when_null_and_group_membership() -> None:
    devices = table(
        "devices", device("d1", group_ids=("g-west", "g-aff")), device("d2", last_contact=None)
    )
    families = device_families(devices, None, None, RenderContext())
    assert samples(families, "dms_device_last_contact_timestamp_seconds") == {
        ("d1", "Name d1"): NOW - 18
    }
    assert samples(families, "dms_device_group_member") == {
        ("d1", "Name d1", "g-west"): 1,
        ("d1", "Name d1", "g-aff"): 1,
    }


def test_group_devices_from_device_count_else_counted() -> None:
    devices = table(
        "devices", device("d1", group_ids=("g-west",)), device("d2", group_ids=("g-west",))
    )
    groups = table(
        "groups",
        model.Group("g-west", "West", "", None),
        model.Group("g-east", "East", "g-root", 412),
    )
    services = table("services", model.Service("svc-101", "Network East HD", None, "basic"))
    families = device_families(devices, groups, services, RenderContext())
    assert samples(families, "dms_group_devices") == {("g-west",): 2, ("g-east",): 412}
    assert samples(families, "dms_group") == {
        ("g-west", "West", ""): 1,
        ("g-east", "East", "g-root"): 1,
    }
    assert samples(families, "dms_service") == {("svc-101", "Network East HD", "", "basic"): 1}
    # without a devices table a missing deviceCount cannot be counted: no sample
    families = device_families(None, groups, None, RenderContext())
    assert samples(families, "dms_group_devices") == {("g-east",): 412}


# -- tables that are None --------------------------------------------------------------------


@pytest.mark.parametrize(
    "families",
    [
        system_families(None, RenderContext()),
        device_families(None, None, None, RenderContext()),
        authorization_families(None, None, None, None, RenderContext()),
        destination_families(None, None, RenderContext()),
        alarm_families(None, None, RenderContext(alarm_retrieval="all")),
    ],
    ids=["system", "devices", "authorization", "destinations", "alarms"],
)
def test_none_tables_give_headers_without_samples(families: list[Family]) -> None:
    assert families
    assert [f.name for f in families if f.samples] == []
    assert all(f"# TYPE {f.name}" in render_text(families).decode() for f in families)


def test_authorized_services_need_the_authorizations_table() -> None:
    families = authorization_families(
        None, None, None, table("devices", device("d1")), RenderContext()
    )
    assert samples(families, "dms_device_authorized_services") == {}


# -- authorization ---------------------------------------------------------------------------


def test_authorized_services_counted_per_device_and_source() -> None:
    devices = table("devices", device("d1"), device("d2"))
    rows = table(
        "authorizations",
        authorization("d1", "permanent"),
        authorization("d1", "permanent"),
        authorization("d1", "permanent", authorized=False),
        authorization("d1", "schedule"),
        authorization("d1", "other"),
        authorization("ghost", "permanent"),
    )
    families = authorization_families(SETS, SCHEDULES, rows, devices, RenderContext())
    assert samples(families, "dms_device_authorized_services") == {
        ("d1", "Name d1", "permanent"): 2,
        ("d1", "Name d1", "schedule"): 1,
        ("d1", "Name d1", "other"): 1,
        ("d2", "Name d2", "permanent"): 0,  # known device, no rows: 0
        ("d2", "Name d2", "schedule"): 0,
        ("ghost", "ghost", "permanent"): 1,
        ("ghost", "ghost", "schedule"): 0,
    }


def test_schedule_authorization_switch() -> None:
    rows = table(
        "authorizations",
        authorization("d1", "permanent"),
        authorization("d1", "schedule"),
        authorization("d9", "schedule"),
    )
    devices = table("devices", device("d1"))
    on = authorization_families(SETS, SCHEDULES, rows, devices, RenderContext())
    off = authorization_families(
        SETS, SCHEDULES, rows, devices, RenderContext(allow_schedule_authorization=False)
    )
    schedule_families = {
        "dms_schedule_authorization",
        "dms_schedule_authorization_state",
        "dms_schedule_authorization_start_timestamp_seconds",
        "dms_schedule_authorization_end_timestamp_seconds",
        "dms_schedule_authorization_devices",
    }
    assert schedule_families <= set(by_name(on))
    assert samples(on, "dms_schedule_authorization_state")[("sa-1", "active")] == 1
    assert samples(on, "dms_schedule_authorization_devices") == {("sa-1",): 412}
    assert not schedule_families & set(by_name(off))
    assert "dms_schedule_authorization" not in render_text(off).decode()
    assert samples(off, "dms_device_authorized_services") == {("d1", "Name d1", "permanent"): 1}
    assert "schedule" in column(on, "dms_device_authorized_services", "source")


def test_schedule_type_authorization_sets_follow_the_switch() -> None:
    mixed = table(
        "authorization_sets",
        *SETS.rows,
        model.AuthorizationSet("as-2", "Sunday", "schedule", True, (), (), (), None, None),
    )
    on = authorization_families(mixed, None, None, None, RenderContext())
    off = authorization_families(
        mixed, None, None, None, RenderContext(allow_schedule_authorization=False)
    )
    assert set(samples(on, "dms_authorization_set_enabled")) == {("as-1",), ("as-2",)}
    assert set(samples(off, "dms_authorization_set_enabled")) == {("as-1",)}


def test_authorization_sets() -> None:
    families = authorization_families(SETS, None, None, None, RenderContext())
    assert samples(families, "dms_authorization_set") == {("as-1", "Basic", "permanent"): 1}
    assert samples(families, "dms_authorization_set_enabled") == {("as-1",): 1}
    assert samples(families, "dms_authorization_set_devices") == {("as-1",): 1830}
    assert samples(families, "dms_authorization_set_services") == {("as-1",): 2}


# -- alarms ----------------------------------------------------------------------------------


ALARMS = table(
    "alarms",
    alarm("a1"),
    alarm("a2", severity="major", asserted_time=None),
    alarm("a3", device_id="", source="dms", code="OTA_COMMAND_FAILED"),
    alarm("c1", state="cleared", cleared_time=NOW - 5),
    alarm("c2", state="cleared", severity="minor", cleared_time=NOW - 5),
    fetched_at=NOW + 1,
)


def test_alarm_counts_active_retrieval() -> None:
    families = alarm_families(ALARMS, table("devices", device("d1")), RenderContext())
    counts = samples(families, "dms_alarms")
    assert len(counts) == len(model.ALARM_SEVERITIES) * len(model.ALARM_SOURCES)
    assert {k[1] for k in counts} == {"active"}
    assert counts[("critical", "active", "device")] == 1
    assert counts[("critical", "active", "dms")] == 1
    assert counts[("major", "active", "device")] == 1
    assert counts[("info", "active", "other")] == 0


def test_alarm_counts_all_retrieval_add_cleared() -> None:
    unknown_state = alarm("u1", state="other")
    alarms = dataclasses.replace(ALARMS, rows=(*ALARMS.rows, unknown_state))
    counts = samples(
        alarm_families(alarms, None, RenderContext(alarm_retrieval="all")), "dms_alarms"
    )
    assert len(counts) == 2 * len(model.ALARM_SEVERITIES) * len(model.ALARM_SOURCES) + 1
    assert counts[("critical", "cleared", "device")] == 1
    assert counts[("minor", "cleared", "device")] == 1
    assert counts[("major", "cleared", "device")] == 0
    assert counts[("critical", "other", "device")] == 1


def test_one_series_per_active_alarm_only() -> None:
    for retrieval in ("active", "all"):
        families = alarm_families(
            ALARMS, table("devices", device("d1")), RenderContext(alarm_retrieval=retrieval)
        )
        assert samples(families, "dms_alarm_asserted_timestamp_seconds") == {
            ("a1", "d1", "Name d1", "critical", "SIGNAL_LOSS", "DVB-S2 Input 1", "device"): NOW
            - 60,
            # no assertedTime: the time of the poll that fetched it
            ("a2", "d1", "Name d1", "major", "SIGNAL_LOSS", "DVB-S2 Input 1", "device"): NOW + 1,
            # raised by the DMS itself: no device
            ("a3", "", "", "critical", "OTA_COMMAND_FAILED", "DVB-S2 Input 1", "dms"): NOW - 60,
        }


def test_no_free_text_in_labels() -> None:
    devices = table("devices", device("d1"))
    text = render_text(alarm_families(ALARMS, devices, RenderContext(alarm_retrieval="all")))
    assert b"Input signal lost" not in text
    assert (
        "description"
        not in by_name(alarm_families(ALARMS, devices, RenderContext()))[
            "dms_alarm_asserted_timestamp_seconds"
        ].label_names
    )


# -- system ----------------------------------------------------------------------------------


def test_system_values_and_null_fields() -> None:
    system = table(
        "system", model.SystemInfo("DMS-PRIMARY", "11.4.0.0", "primary", NOW, 864000.0, 25000)
    )
    families = system_families(system, RenderContext())
    assert samples(families, "dms") == {("DMS-PRIMARY", "11.4.0.0", "primary"): 1}
    assert samples(families, "dms_uptime_seconds") == {(): 864000.0}
    assert samples(families, "dms_licensed_devices") == {(): 25000}
    assert samples(families, "dms_server_time_seconds") == {(): NOW}
    bare = table("system", model.SystemInfo("DMS", "11.4.0.0", "other", None, None, None))
    assert [f.name for f in system_families(bare, RenderContext()) if f.samples] == ["dms"]


# -- HELP ------------------------------------------------------------------------------------


def test_help_names_the_configured_path_and_interval() -> None:
    ctx = RenderContext(paths={"devices": "/api/v2/edge-devices"}, intervals={"devices": 90.0})
    for family in device_families(None, None, None, ctx)[:6]:
        assert family.help.endswith(" Refreshed every 90s. Polled from GET /api/v2/edge-devices.")
    # endpoints not in the context fall back to the default path, without an interval
    assert by_name(device_families(None, None, None, ctx))["dms_group"].help.endswith(
        "(value 1). Polled from GET /groups."
    )


# -- health ----------------------------------------------------------------------------------


def status(endpoint: str, **fields: Any) -> model.EndpointStatus:
    values: dict[str, Any] = dict(
        endpoint=endpoint, path=f"/{endpoint}", enabled=True, interval=60.0, up=True,
        stale=False, last_poll=NOW, last_success=NOW, last_duration=0.25, last_result="ok",
        last_error="", rows=10, polls_total=3, errors_total={"timeout": 1},
        rows_skipped_total=0, unknown_values_total=2,
    )  # fmt: skip
    return model.EndpointStatus(**values | fields)


def health(*statuses: model.EndpointStatus) -> list[Family]:
    return health_families(
        statuses,
        dms_up=True,
        logins={"success": 1},
        render_durations={"devices": 0.5},
        config_reload_ok=True,
        config_reload_ts=None,
        version="0.1.0",
        start_time=NOW - 100,
        now=NOW,
    )


def test_health_families() -> None:
    families = health(
        status("devices", data_time=NOW - 20),
        # no poll has worked since the restart: the alarms read before it are shown, old
        status(
            "alarms",
            up=False,
            stale=True,
            last_success=None,
            errors_total={},
            last_result="connection",
            data_time=NOW - 400,
            restored=True,
        ),
        status(
            "groups",
            enabled=False,
            last_poll=None,
            last_success=None,
            last_duration=None,
            polls_total=0,
            errors_total={},
            rows=0,
            last_result="disabled",
        ),
    )
    assert samples(families, "dms_up") == {(): 1}
    assert samples(families, "dms_exporter_endpoint_up") == {
        ("devices",): 1,
        ("alarms",): 0,
        # groups: never polled, so pending: no sample rather than a 0 an alert would see
    }
    assert samples(families, "dms_exporter_endpoint_rows") == {
        ("devices",): 10,
        ("alarms",): 10,  # stale, but its last good data is shown
        ("groups",): 0,
    }
    assert samples(families, "dms_exporter_endpoint_stale") == {
        ("devices",): 0,
        ("alarms",): 1,
        ("groups",): 0,
    }
    # groups shows no data: no age
    assert samples(families, "dms_exporter_endpoint_data_age_seconds") == {
        ("devices",): 20,
        ("alarms",): 400,
    }
    assert samples(families, "dms_exporter_endpoint_data_restored") == {
        ("devices",): 0,
        ("alarms",): 1,
        ("groups",): 0,
    }
    results = samples(families, "dms_exporter_endpoint_last_poll_result")
    assert {key for key, one in results.items() if one} == {
        ("devices", "ok"),
        ("alarms", "connection"),
        ("groups", "disabled"),
    }
    assert len(results) == 3 * len(POLL_RESULTS)
    assert samples(families, "dms_exporter_endpoint_last_poll_timestamp_seconds") == {
        ("devices",): NOW,
        ("alarms",): NOW,
    }
    errors = samples(families, "dms_exporter_endpoint_errors")
    assert len(errors) == 3 * len(ERROR_REASONS)
    assert errors[("devices", "timeout")] == 1
    assert errors[("alarms", "timeout")] == 0
    assert samples(families, "dms_exporter_logins") == {
        ("success",): 1, ("refused",): 0, ("unreachable",): 0, ("error",): 0
    }  # fmt: skip
    assert samples(families, "dms_exporter_login_next_attempt_timestamp_seconds") == {(): 0}
    assert samples(families, "dms_exporter_config_last_reload_success_timestamp_seconds") == {}
    assert [k[0] for k in samples(families, "dms_exporter_build")] == ["0.1.0"]
