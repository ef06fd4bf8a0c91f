"""Rendering groups: catalogue coverage, determinism, dependencies, promtool, and renders that
redo only what changed (byte for byte the same as a render from scratch)."""

from __future__ import annotations

import dataclasses
import random
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)

from dms_exporter import model
from dms_exporter.exposition import render
from dms_exporter.exposition.families import RenderContext
from dms_exporter.exposition.families.health import health_families
from dms_exporter.exposition.gzipstream import inflate
from dms_exporter.exposition.render import (
    GROUPS,
    UNIT_ROWS,
    group_families,
    groups_for,
    render_group,
)
from dms_exporter.exposition.text import Family, render_openmetrics, render_text

NOW = 1_780_000_000.0
README = Path(__file__).resolve().parent.parent / "README.md"
ALL = RenderContext(display_names={"dev-3": 'Spare "B" IRD'}, alarm_retrieval="all")


def realistic_tables() -> dict[str, model.Table]:
    """A little of everything: three devices (one never contacted), every endpoint filled."""
    devices = [
        model.Device(
            id=f"dev-{i}", name=f"KXYZ {i}", unit_address=f"00012345678{i}",
            serial_number=f"PV81K-2231-045{i}", mac_address=f"00:0E:5C:12:34:5{i}",
            model="ProView 8130" if i < 3 else "XOS Edge",
            device_type="ird" if i < 3 else "xos_edge", firmware_version="1.8.1.0.26",
            connection_state=("online", "offline", "never_connected")[i - 1], control_mode="dms",
            last_contact=NOW - i if i < 3 else None,
            group_ids=("g-west", "g-aff") if i < 3 else ("g-west",), site="Denver Headend",
            region="US-West", authorization_state="authorized",
        )
        for i in (1, 2, 3)
    ]  # fmt: skip
    rows: dict[str, tuple] = {
        "system": (model.SystemInfo("DMS-PRIMARY", "11.4.0.0", "primary", NOW, 864000.0, 25000),),
        "devices": tuple(devices),
        "groups": (model.Group("g-west", "West", "", 412), model.Group("g-aff", "Aff", "", None)),
        "services": (model.Service("svc-101", "Network East HD", 101, "basic"),),
        "authorization_sets": (
            model.AuthorizationSet("as-basic", "Basic", "permanent", True, ("svc-101",),
                                   ("g-aff",), (), 1830, NOW),
        ),
        "schedule_authorizations": (
            model.ScheduleAuthorization("sa-1", "Sunday Game", "as-basic", ("svc-101",),
                                        ("g-west",), (), NOW, NOW + 3600, "pending", 412),
        ),
        "authorizations": tuple(
            model.Authorization(d.id, "svc-101", "as-basic", sa, src, True, None, None)
            for d in devices
            for sa, src in (("", "permanent"), ("sa-1", "schedule"))
        ),
        "destinations": tuple(
            model.Destination(f"dst-{d.id}-{k}", d.id, f"Output {k}", "ip", True, "svc-101",
                              "239.10.1.1", 5000 + k, "ok")
            for d in devices
            for k in (1, 2)
        ),
        "alarms": (
            model.Alarm("al-1", "dev-1", "device", "DVB-S2 Input 1", "SIGNAL_LOSS",
                        "Input signal lost", "critical", "active", NOW - 60, None, False),
            model.Alarm("al-2", "", "dms", "", "DEVICE_NOT_RESPONDING", "Device dev-3 silent",
                        "major", "active", None, None, False),
            model.Alarm("al-3", "dev-3", "device", "GbE 1", "GBE_LINK_DOWN", "Link down",
                        "minor", "cleared", NOW - 600, NOW - 300, True),
        ),
    }  # fmt: skip
    return {ep: model.Table(ep, r, NOW) for ep, r in rows.items()}


def health() -> list[Family]:
    status = model.EndpointStatus(
        "devices", "/devices", True, 60.0, True, False, NOW, NOW, 0.3, "ok", "", 3, 5,
        {"timeout": 1}, 0, 0, NOW - 30,
    )  # fmt: skip
    return health_families(
        [status],
        dms_up=True,
        logins={"success": 1, "refused": 0},
        login_next_attempt=NOW + 30,
        # failed over: the main does not answer, the standby says it is one
        links=model.DmsLinks(
            urls=("http://a/v1", "http://b/v1"),
            active="http://b/v1",
            reachable={"http://a/v1": False},
            standby={"http://b/v1": True},
        ),
        render_durations={"devices": 0.01},
        config_reload_ok=True,
        config_reload_ts=NOW - 100,
        version="0.1.0",
        start_time=NOW - 100,
        now=NOW,
    )


def full_render(
    tables: dict[str, model.Table], ctx: RenderContext = ALL, openmetrics: bool = False
) -> bytes:
    health_text = render_openmetrics(health()) if openmetrics else render_text(health())
    groups = [render_group(group, tables, ctx).plain(openmetrics) for group in GROUPS]
    return b"".join(groups) + health_text


def series(tables: dict[str, model.Table], ctx: RenderContext = ALL) -> int:
    return sum(render_group(g, tables, ctx).series for g in GROUPS) + sum(
        len(f.samples) for f in health()
    )


def catalogue() -> dict[str, tuple[str, str]]:
    """Metric name -> (type, labels cell) from README.md's metric reference tables."""
    section = README.read_text().split("## Metric reference")[1].split("\n## ")[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| ([a-z]+)[^|]*\|([^|]*)\|", section, re.MULTILINE)
    return {name: (kind, labels) for name, kind, labels in rows}


def test_catalogue_is_read() -> None:
    assert len(catalogue()) > 40  # guards the parsing below


def test_full_render_has_exactly_the_catalogue_families() -> None:
    text = full_render(realistic_tables()).decode()
    # process_*/python_*: prometheus-client's collectors at scrape time (tests/test_web.py)
    rendered = {n for n in catalogue() if not n.startswith(("process_", "python_"))}
    assert set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE)) == rendered


def test_catalogue_types_and_labels_match_the_code() -> None:
    groups = [group_families(g, realistic_tables(), ALL) for g in GROUPS]
    suffix = {"counter": "_total", "info": "_info"}
    for family in [f for families in groups for f in families] + health():
        kind, labels = catalogue()[family.name + suffix.get(family.kind, "")]
        assert kind == family.kind, family.name
        for label in family.label_names:
            assert re.search(rf"\b{label}\b", labels), (family.name, label)


def test_every_family_has_samples_in_a_realistic_render() -> None:
    text = full_render(realistic_tables()).decode()
    families = re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE)
    with_samples = {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[0] != "#"
    }
    assert [name for name in families if name not in with_samples] == []


def test_openmetrics_full_render_parses_strictly() -> None:
    body = full_render(realistic_tables(), openmetrics=True) + b"# EOF\n"
    families = list(parse_openmetrics(body.decode()))
    assert sum(len(f.samples) for f in families) == series(realistic_tables())


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_a_full_render() -> None:
    body = full_render(realistic_tables())
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


def test_render_is_deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    first = full_render(realistic_tables())
    monkeypatch.setattr("time.time", lambda: NOW + 86400)
    assert full_render(realistic_tables()) == first  # new but equal tables: the same bytes


def test_series_counts_samples() -> None:
    output = render_group("system", realistic_tables(), ALL)
    assert output.series == 4
    text = output.plain()
    assert text.count(b"\n") - text.count(b"# ") == 4


def test_missing_tables_render_headers_only() -> None:
    output = render_group("devices", {}, ALL)
    assert output.series == 0
    assert b"# TYPE dms_device_info gauge\n" in output.plain()


@pytest.mark.parametrize("endpoint", model.ENDPOINTS)
def test_groups_for_names_exactly_the_groups_a_table_change_touches(endpoint: str) -> None:
    tables = realistic_tables()
    before = {g: render_group(g, tables, ALL).plain() for g in GROUPS}
    tables[endpoint] = model.Table(endpoint, (), NOW)
    changed = {g for g in GROUPS if render_group(g, tables, ALL).plain() != before[g]}
    assert changed == set(groups_for(endpoint))


def test_groups_for() -> None:
    assert groups_for("system") == ("system",)
    assert groups_for("devices") == ("devices", "authorization", "destinations", "alarms")
    assert groups_for("authorizations") == ("authorization",)
    with pytest.raises(ValueError, match="unknown endpoint"):
        groups_for("device")
    with pytest.raises(ValueError, match="unknown group"):
        render_group("device", {}, ALL)


def test_health_renders_alone() -> None:
    text = render_text(health()).decode()
    assert 'dms_exporter_endpoint_errors_total{endpoint="devices",reason="timeout"} 1\n' in text


def fleet(n: int) -> dict[str, model.Table]:
    """``n`` devices (several blocks) with a destination and an active alarm each."""
    base = realistic_tables()
    template = base["devices"].rows[0]
    devices = tuple(
        dataclasses.replace(template, id=f"dev-{i:05d}", name=f"IRD {i}") for i in range(n)
    )
    destinations = tuple(
        dataclasses.replace(base["destinations"].rows[0], id=f"dst-{i}", device_id=d.id)
        for i, d in enumerate(devices)
    )
    alarms = tuple(
        dataclasses.replace(base["alarms"].rows[0], id=f"al-{i}", device_id=d.id)
        for i, d in enumerate(devices)
    )
    return base | {
        "devices": model.Table("devices", devices, NOW),
        "destinations": model.Table("destinations", destinations, NOW),
        "alarms": model.Table("alarms", alarms, NOW),
    }


def with_device(tables: dict[str, model.Table], index: int, **fields) -> dict[str, model.Table]:
    """``tables`` with device ``index`` changed; every other row is the same object."""
    rows = list(tables["devices"].rows)
    rows[index] = dataclasses.replace(rows[index], **fields)
    return tables | {"devices": model.Table("devices", tuple(rows), NOW + 60)}


def renders(tables, previous=None):
    return {g: render_group(g, tables, ALL, previous and previous[g]) for g in GROUPS}


@pytest.fixture
def runs_of_one_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run one unit, so that a test sees which units were redone."""
    monkeypatch.setattr(render, "RUN_BYTES", 1)


@pytest.fixture(params=[1, 2000, 12000, render.RUN_BYTES], ids=["1-unit", "2kB", "12kB", "default"])
def run_bytes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of one unit, of a few units (a run partly redone) and of the default length."""
    monkeypatch.setattr(render, "RUN_BYTES", request.param)


@pytest.mark.usefixtures("runs_of_one_unit")
def test_a_changed_device_redoes_one_block_and_gives_the_bytes_of_a_full_render() -> None:
    tables = fleet(3 * UNIT_ROWS)
    before = renders(tables)
    tables = with_device(tables, UNIT_ROWS + 5, connection_state="offline")
    after = renders(tables, before)
    for group in GROUPS:
        assert after[group].plain() == render_group(group, tables, ALL).plain(), group
        assert after[group].plain(True) == render_group(group, tables, ALL).plain(True), group
    old, new = before["devices"].families[1], after["devices"].families[1]
    assert new.name == "dms_device_connection_state" and new.body != old.body
    assert new.body[: new.ends[0]] == old.body[: old.ends[0]]  # blocks 0 and 2 kept as they were
    assert new.body[new.ends[1] :] == old.body[old.ends[1] :]
    for group in ("authorization", "destinations", "alarms"):  # no display name changed
        assert after[group].families is before[group].families, group


def _other(value: object) -> object:
    """A different value of the same kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, tuple):
        return (*value, "g-new")
    if value is None:
        return NOW
    return f"{value}-x"


#: Fields no metric shows (the console does): changing them alone must render nothing.
_NOT_SHOWN = {("alarms", "description"), ("alarms", "cleared_time"), ("alarms", "acknowledged")}


def _changed_text(before: dict, after: dict, group: str) -> set[str]:
    old = {f.name: render_text([f]) for f in group_families(group, before, ALL)}
    new = group_families(group, after, ALL)
    return {f.name for f in new if render_text([f]) != old.get(f.name)}


def _redone(before: dict, after: dict, group: str) -> set[str]:
    old = {f.name: f for f in before[group].families}
    return {f.name for f in after[group].families if f is not old.get(f.name)}


@pytest.mark.parametrize(
    ("endpoint", "field"),
    [("devices", f.name) for f in dataclasses.fields(model.Device)]
    + [("destinations", f.name) for f in dataclasses.fields(model.Destination)]
    + [("alarms", f.name) for f in dataclasses.fields(model.Alarm)],
)
def test_a_field_changed_alone_redoes_exactly_the_families_that_show_it(
    endpoint: str, field: str
) -> None:
    tables = fleet(3 * UNIT_ROWS)
    before = renders(tables)
    rows = list(tables[endpoint].rows)
    index = UNIT_ROWS + 2
    rows[index] = dataclasses.replace(rows[index], **{field: _other(getattr(rows[index], field))})
    changed = tables | {endpoint: model.Table(endpoint, tuple(rows), NOW + 60)}
    after = renders(changed, before)
    for group in GROUPS:
        assert after[group].plain() == render_group(group, changed, ALL).plain(), group
        assert _redone(before, after, group) == _changed_text(tables, changed, group), group
    if (endpoint, field) not in _NOT_SHOWN:
        assert _changed_text(tables, changed, groups_for(endpoint)[0])


@pytest.mark.usefixtures("run_bytes")
def test_polls_that_change_a_few_items_here_and_there_give_the_bytes_of_a_full_render() -> None:
    """Random rounds: a few devices and destinations changed in random fields, sometimes
    several in one unit, at its edges, to values that give no line or more lines."""
    rng = random.Random(1)
    tables = fleet(5 * UNIT_ROWS + 3)
    previous = renders(tables)
    choices = {
        "connection_state": ["online", "offline", "sideways"],
        "last_contact": [None, NOW, NOW + 7.5],
        "group_ids": [(), ("g-west",), ("g-west", "g-aff", "g-new")],
        "name": ["IRD 1", 'Odd "name"', ""],
        "status": ["ok", "error", "disabled", "weird"],
        "enabled": [True, False],
    }
    for _ in range(40):
        changed = dict(tables)
        for endpoint in ("devices", "destinations"):
            rows = list(changed[endpoint].rows)
            fields = [f.name for f in dataclasses.fields(rows[0]) if f.name in choices]
            for i in rng.sample(range(len(rows)), rng.choice([1, 2, 3, 9])):
                field = rng.choice(fields)
                rows[i] = dataclasses.replace(rows[i], **{field: rng.choice(choices[field])})
            changed[endpoint] = model.Table(endpoint, tuple(rows), NOW)
        tables, previous = changed, renders(changed, previous)
        for group in GROUPS:
            assert previous[group].plain() == render_group(group, tables, ALL).plain(), group
            assert previous[group].series == render_group(group, tables, ALL).series, group
            for family in previous[group].families:  # the CRC the gzip trailer will carry
                lines = inflate(family.body)
                assert family.crcs.total == (zlib.crc32(lines), len(lines)), family.name


def _spread(n: int) -> dict[str, model.Table]:
    """``fleet(n)`` over several sites and models, in several groups, of mixed states."""
    tables = fleet(n)
    devices = tuple(
        dataclasses.replace(
            d,
            site=f"Site {i % 5}",
            model=("ProView 7100", "ProView 8130", "XOS Edge")[i % 3],
            connection_state=("online", "offline", "unknown")[i % 7 % 3],
            group_ids=(f"g-{i % 4}",),
        )
        for i, d in enumerate(tables["devices"].rows)
    )
    groups = tuple(model.Group(f"g-{k}", f"Group {k}", "", None) for k in range(4))
    return tables | {
        "devices": model.Table("devices", devices, NOW),
        "groups": model.Table("groups", groups, NOW),
    }


def test_fleet_counts_updated_from_the_last_render_equal_counts_made_afresh() -> None:
    """Random rounds of a few devices changed in the fields the fleet counts read, to new
    states, modes, sites and models (a site and model that appear or go), and a groups table
    changed on its own: the counts updated from the last render are the counts made afresh."""
    rng = random.Random(3)
    tables = _spread(4 * UNIT_ROWS + 5)
    previous = render_group("devices", tables, ALL)
    choices = {
        "connection_state": ["online", "offline", "unknown", "sideways"],
        "control_mode": ["dms", "local", "odd"],
        "authorization_state": ["authorized", "unauthorized", "odd"],
        "site": ["Site 0", "Site 3", "Site new"],
        "model": ["ProView 7100", "ProView 9000"],
        "group_ids": [(), ("g-1",), ("g-2", "g-3")],
    }
    for round_ in range(60):
        rows = list(tables["devices"].rows)
        for i in rng.sample(range(len(rows)), rng.choice([1, 1, 2, 5])):
            field = rng.choice(list(choices))
            rows[i] = dataclasses.replace(rows[i], **{field: rng.choice(choices[field])})
        tables = tables | {"devices": model.Table("devices", tuple(rows), NOW + round_)}
        if round_ % 10 == 9:  # the groups' own device counts: a table the tally does not read
            groups = tuple(
                dataclasses.replace(g, device_count=round_) for g in tables["groups"].rows
            )
            tables = tables | {"groups": model.Table("groups", groups, NOW + round_)}
        previous = render_group("devices", tables, ALL, previous)
        fresh = render_group("devices", tables, ALL)
        assert previous.plain() == fresh.plain(), round_
        assert previous.tally == fresh.tally, round_


def test_a_changed_state_does_not_count_every_site_again() -> None:
    tables = _spread(4 * UNIT_ROWS)
    before = render_group("devices", tables, ALL)
    device = tables["devices"].rows[6]
    changed = with_device(tables, 6, connection_state="sideways")
    after = render_group("devices", changed, ALL, before)
    old, new = before.items["by_site"], after.items["by_site"]
    kept = [o for o, n in zip(old, new, strict=True) if o is n]
    assert len(kept) == len(old) - 1  # only the device's site and model counted again
    assert (device.site, device.model) not in {item[:2] for item in kept}


def test_a_schedule_poll_does_not_count_the_authorizations_again() -> None:
    tables = fleet(3 * UNIT_ROWS)
    before = render_group("authorization", tables, ALL)
    rows = tables["schedule_authorizations"].rows
    schedules = (dataclasses.replace(rows[0], state="active"), *rows[1:])
    for endpoint, changed_rows in (
        ("schedule_authorizations", schedules),
        ("devices", tables["devices"].rows),  # a new devices table, the same ids and names
    ):
        changed = tables | {endpoint: model.Table(endpoint, changed_rows, NOW + 60)}
        after = render_group("authorization", changed, ALL, before)
        assert after.plain() == render_group("authorization", changed, ALL).plain()
        assert after.items["devices"] is before.items["devices"], endpoint  # per-device counts
        assert after.items["services"] is before.items["services"], endpoint
    renamed = with_device(tables, 1, name="Renamed IRD")
    after = render_group("authorization", renamed, ALL, before)
    assert b'display_name="Renamed IRD"' in after.plain()
    assert after.plain() == render_group("authorization", renamed, ALL).plain()


@pytest.mark.usefixtures("runs_of_one_unit")
def test_a_renamed_device_redoes_its_block_in_the_groups_that_show_names() -> None:
    tables = fleet(3 * UNIT_ROWS)
    before = renders(tables)
    tables = with_device(tables, 2 * UNIT_ROWS + 1, name="Renamed IRD")
    after = renders(tables, before)
    for group in GROUPS:
        assert after[group].plain() == render_group(group, tables, ALL).plain(), group
    old, new = before["destinations"].families[0], after["destinations"].families[0]
    assert b'display_name="Renamed IRD"' in after["destinations"].plain()
    assert new.body[: new.ends[1]] == old.body[: old.ends[1]]  # only the last block redone


def test_an_equal_poll_renders_nothing_new() -> None:
    tables = fleet(2 * UNIT_ROWS)
    before = renders(tables)
    again = {**tables, "devices": model.Table("devices", tables["devices"].rows, NOW + 60)}
    after = renders(again, before)
    assert all(after[g].families is before[g].families for g in GROUPS)


@pytest.mark.usefixtures("run_bytes")
def test_added_and_removed_devices_give_the_bytes_of_a_full_render() -> None:
    tables = fleet(2 * UNIT_ROWS + 3)
    previous = renders(tables)
    rows = tables["devices"].rows
    for changed in (rows[:-2], rows[1:], (*rows, dataclasses.replace(rows[0], id="dev-new"))):
        tables = tables | {"devices": model.Table("devices", changed, NOW)}
        previous = renders(tables, previous)
        for group in GROUPS:
            assert previous[group].plain() == render_group(group, tables, ALL).plain(), group


def test_a_new_setting_renders_again() -> None:
    tables = fleet(10)
    before = render_group("alarms", tables, ALL)
    active = dataclasses.replace(ALL, alarm_retrieval="active")
    after = render_group("alarms", tables, active, before)
    assert after.plain() == render_group("alarms", tables, active).plain() != before.plain()


def test_disabled_families_are_left_out() -> None:
    ctx = dataclasses.replace(ALL, disabled=frozenset({"dms_device_group_member"}))
    text = render_group("devices", realistic_tables(), ctx).plain()
    assert b"dms_device_group_member" not in text and b"dms_device_info" in text
