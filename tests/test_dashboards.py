"""The Grafana dashboards in grafana/dashboards/: well-formed, wired to the datasource variable,
every query valid PromQL over catalogued metrics, and every panel shows data against a real
Prometheus scraping the real exporter (``--demo``). Grafana itself cannot be
installed here (see ../shared/research/tooling.md), so this is as close as it gets."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import promstack
import pytest
from prometheus_client.parser import text_string_to_metric_families

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


@contextlib.contextmanager
def _process(*args: str, ready: str) -> Iterator[None]:
    """A ``python -m`` process, until ``ready`` (a URL) answers 200."""
    proc = subprocess.Popen(
        [sys.executable, "-m", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        promstack.wait_until(lambda: promstack.http_get(ready)[0] == 200, timeout=60)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.fixture(scope="module")
def demo_exporter(tmp_path_factory):
    """The real exporter polling a real, live simulator (60 devices that go offline and back,
    raise and clear alarms, open schedule windows), at the demo's intervals, with cleared
    alarms counted (``alarms.retrieval: all``); yields its host:port once it is ready."""
    sim, port = promstack.free_port(), promstack.free_port()
    config = tmp_path_factory.mktemp("exporter") / "dms.yml"
    config.write_text(
        f"dms: {{url: 'http://127.0.0.1:{sim}/dms-api/v1', username: monitor,"
        " password: monitor-secret, proxy: direct}\n"
        "defaults: {interval: 5s}\nendpoints: {alarms: {interval: 2s}}\n"
        "alarms: {retrieval: all}\n"
    )
    with (
        _process("dms_exporter.simulator", "--devices", "60", "--listen-address",
                 f"127.0.0.1:{sim}", ready=f"http://127.0.0.1:{sim}/_sim/state"),
        _process("dms_exporter", "--config.file", str(config), "--web.listen-address",
                 f"127.0.0.1:{port}", ready=f"http://127.0.0.1:{port}/-/ready"),
    ):  # fmt: skip
        yield f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def device_with_alarm(demo_exporter) -> str:
    """A device that has an active alarm, for the device dashboard's ``$device``."""
    path = "/metrics?name[]=dms_alarm_asserted_timestamp_seconds"
    _, body = promstack.http_get(f"http://{demo_exporter}{path}")
    ids = sorted(
        sample.labels["device_id"]
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.labels["device_id"]
    )
    assert ids, "the simulator has no device alarm"
    return ids[0]


@pytest.fixture(scope="module")
def prometheus_with_dms_data(tmp_path_factory, demo_exporter):
    tmp_path = tmp_path_factory.mktemp("dashboards")
    scrape = {"job_name": "dms", "static_configs": [{"targets": [demo_exporter]}]}
    with promstack.prometheus(tmp_path, [scrape]) as prom:
        # rate() and increase() need two samples
        prom.wait_for('count_over_time(dms_up{job="dms"}[1m]) >= 2', timeout=30)
        yield prom


@needs_prometheus
@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_panel_shows_data(prometheus_with_dms_data, device_with_alarm, name):
    """Each query returns at least one series, and each series has the labels its legend
    uses. A join on a label that does not exist or a misspelt selector returns nothing,
    which promtool alone cannot see."""
    prom = prometheus_with_dms_data
    d = DASHBOARDS[name]
    empty = []
    for panel in d["panels"]:
        for target in panel["targets"]:
            where = f"{panel['title']} / {target['refId']}"
            result = prom.query(substitute(target["expr"], device=device_with_alarm))
            if not result:
                empty.append(where)
                continue
            legend_labels = re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", ""))
            for series in result:
                missing = [x for x in legend_labels if x not in series["metric"]]
                assert not missing, f"{where}: legend uses {missing}, series has {series}"
    assert not empty, f"queries without data: {empty}"


@needs_prometheus
def test_device_variable_lists_devices_by_display_name(prometheus_with_dms_data, demo_exporter):
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
    _, body = promstack.http_get(f"http://{demo_exporter}/metrics?name[]=dms_device_info")
    exported = {
        labels["device_id"]: labels["display_name"]
        for family in text_string_to_metric_families(body.decode())
        for labels in (sample.labels for sample in family.samples)
    }
    assert len(exported) == 60
    assert found == exported


@needs_prometheus
def test_job_and_instance_variables_find_the_exporter(prometheus_with_dms_data):
    prom = prometheus_with_dms_data
    for where, expr in variable_exprs(DASHBOARDS["dms-fleet-overview"]):
        assert prom.query(substitute(expr)), where


def test_deploy_doc_states_the_families_each_dashboard_and_rule_group_needs():
    """docs/deploy.md's table: the DMS families each dashboard and rule group reads, and
    whether the lean preset leaves one out ("works" only if it leaves none out)."""
    import yaml
    from test_rules import RULE_FILES

    from dms_exporter.exposition.selection import PRESETS, switchable_families

    known = switchable_families()
    readers: dict[str, set[str]] = {}
    for name, dashboard in DASHBOARDS.items():
        exprs = [e for _, e in queries(dashboard) + variable_exprs(dashboard)]
        readers[f"dashboard `{name}`"] = set().union(*map(promstack.metric_names_in, exprs))
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            exprs = [rule["expr"] for rule in group["rules"]]
            readers[f"rules `{group['name']}`"] = set().union(
                *map(promstack.metric_names_in, exprs)
            )
    text = (promstack.ROOT / "docs" / "deploy.md").read_text()
    rows = dict(
        (m[0], (m[1], m[2]))
        for m in re.findall(r"^\| ((?:dashboard|rules) `[\w-]+`) \| ([^|]+) \| ([^|]+) \|$",
                            text, re.M)
    )  # fmt: skip
    assert set(rows) == set(readers)
    for reader, names in readers.items():
        data = sorted(n for n in names if n.startswith("dms_") and n != "dms_up"
                      and not n.startswith("dms_exporter_"))  # fmt: skip
        cell, lean = rows[reader]
        assert cell.strip() == (", ".join(f"`{n}`" for n in data) or "(health only)"), reader
        left_out = [n for n in data if known.get(n) in PRESETS["lean"]]
        assert (lean.strip() == "works") == (not left_out), reader
