"""Rendering groups: catalogue coverage, chunk gzip, determinism, dependencies, promtool."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)

from dms_exporter import model
from dms_exporter.exposition import Family, render_text
from dms_exporter.families import RenderContext
from dms_exporter.families.health import health_families
from dms_exporter.render import (
    GROUPS,
    Chunk,
    group_families,
    groups_for,
    render_families,
    render_group,
)

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
        {"timeout": 1}, 0, 0,
    )  # fmt: skip
    return health_families(
        [status],
        dms_up=True,
        logins={"success": 1, "failure": 0},
        render_durations={"devices": 0.01},
        config_reload_ok=True,
        config_reload_ts=NOW - 100,
        version="0.1.0",
        start_time=NOW - 100,
    )


def full_render(tables: dict[str, model.Table], ctx: RenderContext = ALL) -> list[Chunk]:
    return [render_group(group, tables, ctx) for group in GROUPS] + [render_families(health())]


def catalogue() -> dict[str, tuple[str, str]]:
    """Metric name -> (type, labels cell) from README.md's metric reference tables."""
    section = README.read_text().split("## Metric reference")[1].split("\n## ")[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| ([a-z]+)[^|]*\|([^|]*)\|", section, re.MULTILINE)
    return {name: (kind, labels) for name, kind, labels in rows}


def test_catalogue_is_read() -> None:
    assert len(catalogue()) > 40  # guards the parsing below


def test_full_render_has_exactly_the_catalogue_families() -> None:
    text = b"".join(p for c in full_render(realistic_tables()) for p in c.text).decode()
    assert set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE)) == set(catalogue())


def test_catalogue_types_and_labels_match_the_code() -> None:
    groups = [group_families(g, realistic_tables(), ALL) for g in GROUPS]
    suffix = {"counter": "_total", "info": "_info"}
    for family in [f for families in groups for f in families] + health():
        kind, labels = catalogue()[family.name + suffix.get(family.kind, "")]
        assert kind == family.kind, family.name
        for label in family.label_names:
            assert re.search(rf"\b{label}\b", labels), (family.name, label)


def test_every_family_has_samples_in_a_realistic_render() -> None:
    text = b"".join(p for c in full_render(realistic_tables()) for p in c.text).decode()
    families = re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE)
    with_samples = {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[0] != "#"
    }
    assert [name for name in families if name not in with_samples] == []


def test_openmetrics_full_render_parses_strictly() -> None:
    chunks = full_render(realistic_tables())
    body = b"".join(p for c in chunks for p in c.openmetrics) + b"# EOF\n"
    families = list(parse_openmetrics(body.decode()))
    assert sum(len(f.samples) for f in families) == sum(c.series for c in chunks)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_a_full_render() -> None:
    body = b"".join(p for c in full_render(realistic_tables()) for p in c.text)
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


def test_formats_share_sample_parts() -> None:
    chunk = render_group("devices", realistic_tables(), ALL)
    big = max(chunk.text, key=len)
    assert any(p is big for p in chunk.openmetrics)  # held once, not once per format


def test_gzip_parts_of_chunks_concatenate_into_one_stream() -> None:
    chunks = full_render(realistic_tables())
    for plain, gzipped in (("text", "text_gzip"), ("openmetrics", "openmetrics_gzip")):
        joined = b"".join(p for c in chunks for p in getattr(c, gzipped))
        assert gzip.decompress(joined) == b"".join(p for c in chunks for p in getattr(c, plain))


def test_render_is_deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    first = full_render(realistic_tables())
    monkeypatch.setattr("time.time", lambda: NOW + 86400)  # gzip headers must not hold the clock
    assert full_render(realistic_tables()) == first  # new but equal tables: the same bytes


def test_series_counts_samples() -> None:
    chunk = render_group("system", realistic_tables(), ALL)
    assert chunk.series == 4
    text = b"".join(chunk.text)
    assert text.count(b"\n") - text.count(b"# ") == 4


def test_missing_tables_render_headers_only() -> None:
    chunk = render_group("devices", {}, ALL)
    assert chunk.series == 0
    assert b"# TYPE dms_device_info gauge\n" in b"".join(chunk.text)


@pytest.mark.parametrize("endpoint", model.ENDPOINTS)
def test_groups_for_names_exactly_the_groups_a_table_change_touches(endpoint: str) -> None:
    tables = realistic_tables()
    before = {g: render_group(g, tables, ALL) for g in GROUPS}
    tables[endpoint] = model.Table(endpoint, (), NOW)
    changed = {g for g in GROUPS if render_group(g, tables, ALL) != before[g]}
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
