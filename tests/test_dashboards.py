"""The Grafana dashboards in grafana/dashboards/: well-formed, wired to the datasource variable,
every query valid PromQL over catalogued metrics, and every panel shows data against a real
Prometheus scraping an exposition shaped like the exporter's. Grafana itself cannot be
installed here (see ../shared/research/tooling.md), so this is as close as it gets."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import promstack
import pytest

from dms_exporter.model import ENDPOINTS

GRAFANA = promstack.ROOT / "grafana"
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
DS = {"type": "prometheus", "uid": "${datasource}"}
EXPECTED = {
    "dms-fleet-overview",
    "dms-device",
    "dms-alarms",
    "dms-authorization",
    "dms-exporter-health",
}

needs_promtool = pytest.mark.skipif(
    promstack.binary("promtool") is None, reason=promstack.missing_reason("promtool")
)
needs_prometheus = pytest.mark.skipif(
    promstack.binary("prometheus") is None, reason=promstack.missing_reason("prometheus")
)


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


DASHBOARDS = {path.stem: load(path) for path in DASHBOARD_FILES}


def queries(dashboard: dict) -> list[tuple[str, str]]:
    """(where, expr) for every panel target and annotation query."""
    out = [
        (f"{panel['title']} / {target['refId']}", target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    out += [
        (f"annotation {a['name']}", a["expr"])
        for a in dashboard["annotations"]["list"]
        if "expr" in a
    ]
    return out


def variable_exprs(dashboard: dict) -> list[tuple[str, str]]:
    """The PromQL inside query variables: label_values(EXPR, label) and query_result(EXPR)."""
    out = []
    for var in dashboard["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)|query_result\((.+)\)", query)
        assert m, f"variable {var['name']}: unexpected query {query}"
        out.append((f"variable {var['name']}", m.group(1) or m.group(3)))
    return out


def substitute(expr: str, **values: str) -> str:
    """Replace Grafana's variables by concrete values, the way Grafana would before sending."""
    concrete = {
        "__rate_interval": "1m",
        "__interval": "30s",
        "__range": "1h",
        "job": "dms",
        "instance": ".*",
        "device": "dev-000123",
        "severity": ".*",
        **values,
    }

    def replace(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        assert name in concrete, f"unknown variable ${name} in {expr}"
        return concrete[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", replace, expr)


def test_all_five_dashboards_exist():
    assert {d["uid"] for d in DASHBOARDS.values()} == EXPECTED
    assert {path.stem for path in DASHBOARD_FILES} == EXPECTED  # file name = uid


def test_generated_files_are_up_to_date():
    """grafana/generate.py is the source; the JSON must be what it writes."""
    result = promstack.run([sys.executable, str(GRAFANA / "generate.py"), "--check"])
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_frame(name):
    d = DASHBOARDS[name]
    assert d["schemaVersion"] >= 36
    assert d["title"].startswith("DMS / ")
    assert "dms" in d["tags"]
    assert d.get("id") is None  # provisioning assigns ids; a fixed id clashes on import
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name_ in ("job", "instance"):
        assert variables[name_]["type"] == "query"
        assert variables[name_]["datasource"] == DS


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_panels_have_unique_ids_and_use_the_datasource_variable(name):
    panels = DASHBOARDS[name]["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["datasource"] == DS, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DS, panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_panels_fit_the_grid_without_overlapping(name):
    cells: dict[tuple[int, int], str] = {}
    for panel in DASHBOARDS[name]["panels"]:
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_panel_ids_and_titles_are_unique_per_dashboard_and_uids_across():
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(uids) == len(set(uids))
    for d in DASHBOARDS.values():
        titles = [p["title"] for p in d["panels"]]
        assert len(titles) == len(set(titles)), d["uid"]


def test_device_links_point_at_the_device_dashboard():
    links = [
        link["url"]
        for d in DASHBOARDS.values()
        for panel in d["panels"]
        for override in panel["fieldConfig"]["overrides"]
        for prop in override["properties"]
        if prop["id"] == "links"
        for link in prop["value"]
    ]
    assert links
    assert all(url.startswith("/d/dms-device/") and "var-device=" in url for url in links)


@needs_promtool
def test_every_query_is_valid_promql(tmp_path):
    exprs = {
        f"{name}: {where}": substitute(expr)
        for name, d in DASHBOARDS.items()
        for where, expr in queries(d) + variable_exprs(d)
    }
    assert len(exprs) > 80
    result = promstack.check_promql(exprs, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_queries_use_only_catalogued_metrics_and_labels(name):
    catalogue = promstack.metric_reference()
    d = DASHBOARDS[name]
    for where, expr in queries(d) + variable_exprs(d):
        assert promstack.unknown_names(expr, catalogue) == [], where


# --- against a real Prometheus --------------------------------------------------------------


def exposition() -> str:
    """A small text exposition shaped like the exporter's (README.md): two devices (one
    offline), alarms of every kind, a schedule inside its window but still pending, and the
    exporter's health block. Timestamps follow the clock, so build it per scrape."""
    now = time.time()
    lines: list[str] = []

    def add(metric: str, value: float, /, **labels: str) -> None:
        rendered = ",".join(f'{k}="{v}"' for k, v in labels.items())
        lines.append(f"{metric}{{{rendered}}} {value}")

    def stateset(metric: str, current: str, states: tuple[str, ...], /, **labels: str) -> None:
        for s in states:
            add(metric, int(s == current), **labels, **{metric: s})

    add("dms_up", 1)
    add("dms_info", 1, name="DMS-PRIMARY", version="11.4.0.0", role="primary")
    add("dms_uptime_seconds", 864000)
    add("dms_licensed_devices", 25000)
    add("dms_server_time_seconds", now - 2)
    connection = ("online", "offline", "unknown", "never_connected", "other")
    for dev, name, site, model, state in (
        ("dev-000123", "KXYZ Denver", "Denver Headend", "ProView 8130", "online"),
        ("dev-000124", "KABC Boise", "Boise", "ProView 7100", "offline"),
    ):
        d = {"device_id": dev, "display_name": name}
        add("dms_device_info", 1, **d, name=name, unit_address="0001", serial_number="PV81K",
            mac_address="00:0E:5C:12:34:56", model=model, device_type="ird",
            firmware_version="1.8.1.0.26", site=site, region="US-West")  # fmt: skip
        stateset("dms_device_connection_state", state, connection, **d)
        stateset("dms_device_control_mode", "dms", ("dms", "local", "other"), **d)
        stateset("dms_device_authorization_state", "authorized",
                 ("authorized", "partially_authorized", "deauthorized", "other"), **d)  # fmt: skip
        add("dms_device_last_contact_timestamp_seconds", now - 1200, **d)
        add("dms_device_group_member", 1, **d, group_id="g-west")
        add("dms_device_authorized_services", 3, **d, source="permanent")
        add("dms_device_authorized_services", 1, **d, source="schedule")
        for s in connection:
            add("dms_devices", int(s == state), model=model, connection_state=s)
        for dst in ("1", "2"):
            x = {"destination_id": f"dst-{dev}-{dst}", **d}
            add("dms_destination_info", 1, **x, name=f"Output {dst}", type="ip",
                address="239.10.1.1", port="5000", service_id="svc-101")  # fmt: skip
            stateset("dms_destination_status", "ok", ("ok", "error", "disabled", "other"), **x)
            add("dms_destination_enabled", 1, **x)
    for s in ("authorized", "partially_authorized", "deauthorized", "other"):
        add("dms_devices_by_authorization_state", 2 if s == "authorized" else 0,
            authorization_state=s)  # fmt: skip
    add("dms_group_info", 1, group_id="g-west", name="West Region", parent_id="")
    add("dms_group_devices", 2, group_id="g-west")
    add("dms_service_info", 1, service_id="svc-101", name="Network East HD", program_number="101",
        tier="basic")  # fmt: skip
    add("dms_authorization_set_info", 1, authorization_set_id="as-sports", name="Sports",
        type="permanent")  # fmt: skip
    add("dms_authorization_set_enabled", 1, authorization_set_id="as-sports")
    add("dms_authorization_set_devices", 2, authorization_set_id="as-sports")
    add("dms_authorization_set_services", 4, authorization_set_id="as-sports")
    sa = {"schedule_authorization_id": "sa-sunday-west"}
    add("dms_schedule_authorization_info", 1, **sa, name="Sunday Game - West",
        authorization_set_id="as-sports")  # fmt: skip
    stateset("dms_schedule_authorization_state", "pending",
             ("pending", "active", "expired", "cancelled", "other"), **sa)  # fmt: skip
    add("dms_schedule_authorization_start_timestamp_seconds", now - 600, **sa)
    add("dms_schedule_authorization_end_timestamp_seconds", now + 3000, **sa)
    add("dms_schedule_authorization_devices", 2, **sa)
    for sev in ("critical", "major", "minor", "warning", "info", "other"):
        for source in ("device", "dms", "other"):
            add("dms_alarms", 1 if sev == "critical" else 0, severity=sev, state="active",
                source=source)  # fmt: skip
            add("dms_alarms", 5, severity=sev, state="cleared", source=source)
    for alarm, dev, name, sev, code, source in (
        ("al-1", "dev-000123", "KXYZ Denver", "critical", "SIGNAL_LOSS", "device"),
        ("al-2", "dev-000124", "KABC Boise", "major", "CC_ERRORS", "device"),
        ("al-3", "", "", "critical", "OTA_COMMAND_FAILED", "dms"),
    ):
        labels = {"alarm_id": alarm, "device_id": dev, "display_name": name, "severity": sev}
        add("dms_alarm_asserted_timestamp_seconds", now - 300, **labels, code=code,
            fault_object="Input 1", source=source)  # fmt: skip
    for ep in ENDPOINTS:
        e = {"endpoint": ep}
        for metric, value in (
            ("up", 1), ("enabled", 1), ("interval_seconds", 60), ("stale", 0), ("rows", 10),
            ("last_poll_timestamp_seconds", now - 5), ("last_success_timestamp_seconds", now - 5),
            ("poll_duration_seconds", 0.2), ("polls_total", 100), ("rows_skipped_total", 0),
            ("unknown_values_total", 1),
        ):  # fmt: skip
            add(f"dms_exporter_endpoint_{metric}", value, **e)
        add("dms_exporter_endpoint_errors_total", 2, **e, reason="timeout")
    add("dms_exporter_logins_total", 3, result="success")
    add("dms_exporter_logins_total", 0, result="refused")
    add("dms_exporter_login_next_attempt_timestamp_seconds", 0)
    for group in ("system", "devices", "authorization", "destinations", "alarms"):
        add("dms_exporter_render_duration_seconds", 0.01, group=group)
    add("dms_exporter_config_last_reload_successful", 1)
    add("dms_exporter_config_last_reload_success_timestamp_seconds", now - 3600)
    add("dms_exporter_build_info", 1, version="0.1.0", python_version="3.11.7")
    add("dms_exporter_start_time_seconds", now - 3600)
    return "\n".join(lines) + "\n"


def test_fixture_exposition_covers_the_catalogue():
    exposed = {line.split("{", 1)[0] for line in exposition().splitlines()}
    assert exposed == set(promstack.metric_reference())


@pytest.fixture(scope="module")
def prometheus_with_dms_data(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("dashboards")
    with (
        promstack.static_metrics(exposition) as page,
        promstack.prometheus(
            tmp_path, [{"job_name": "dms", "static_configs": [{"targets": [page]}]}]
        ) as prom,
    ):
        # rate() and increase() need two samples
        prom.wait_for('count_over_time(dms_up{job="dms"}[1m]) >= 2', timeout=30)
        yield prom


@needs_prometheus
@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_panel_shows_data(prometheus_with_dms_data, name):
    """Each query returns at least one series, and each series has the labels its legend
    uses. A join on a label that does not exist or a misspelt selector returns nothing,
    which promtool alone cannot see."""
    prom = prometheus_with_dms_data
    d = DASHBOARDS[name]
    empty = []
    for panel in d["panels"]:
        for target in panel["targets"]:
            where = f"{panel['title']} / {target['refId']}"
            result = prom.query(substitute(target["expr"]))
            if not result:
                empty.append(where)
                continue
            legend_labels = re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", ""))
            for series in result:
                missing = [x for x in legend_labels if x not in series["metric"]]
                assert not missing, f"{where}: legend uses {missing}, series has {series}"
    assert not empty, f"queries without data: {empty}"


@needs_prometheus
def test_device_variable_lists_devices_by_display_name(prometheus_with_dms_data):
    """The device variable: Grafana renders query_result() series as `name{k="v",...} value ts`
    (labels in the order Prometheus returns them, sorted), then applies the regex."""
    prom = prometheus_with_dms_data
    [var] = [v for v in DASHBOARDS["dms-device"]["templating"]["list"] if v["name"] == "device"]
    [(_, expr)] = [x for x in variable_exprs(DASHBOARDS["dms-device"]) if "device" in x[0]]
    regex = re.compile(var["regex"].strip("/").replace("(?<", "(?P<"))
    found = {}
    for series in prom.query(substitute(expr)):
        labels = dict(series["metric"])
        name = labels.pop("__name__")
        text = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
        m = regex.search(f"{text} 1 {int(time.time())}")
        assert m, text
        found[m.group("value")] = m.group("text")
    assert found == {"dev-000123": "KXYZ Denver", "dev-000124": "KABC Boise"}


@needs_prometheus
def test_job_and_instance_variables_find_the_exporter(prometheus_with_dms_data):
    prom = prometheus_with_dms_data
    for where, expr in variable_exprs(DASHBOARDS["dms-fleet-overview"]):
        assert prom.query(substitute(expr)), where
