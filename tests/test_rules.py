"""The Prometheus rules in deploy/prometheus/: valid, unit-tested, documented, and built only
from metrics the exporter exposes (README.md's metric reference)."""

from __future__ import annotations

import re
import tomllib
from collections import defaultdict
from pathlib import Path

import promstack
import pytest
import yaml

PROMETHEUS_DIR = promstack.ROOT / "deploy" / "prometheus"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
RUNBOOK = promstack.ROOT / "docs" / "runbook.md"
#: The one place the runbook's address is set (docs/deploy.md)
RUNBOOK_URL = (
    tomllib.loads((promstack.ROOT / "pyproject.toml").read_text())["project"]["urls"]["Runbook"]
    + "#"
)

needs_promtool = pytest.mark.skipif(
    promstack.binary("promtool") is None, reason=promstack.missing_reason("promtool")
)


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules_of_kind(kind: str) -> list[dict]:
    """Every rule with key `kind` ("alert" or "record") over all rule files."""
    return [
        rule
        for path in RULE_FILES
        for group in load(path)["groups"]
        for rule in group["rules"]
        if kind in rule
    ]


ALERTS = rules_of_kind("alert")
RECORDS = rules_of_kind("record")


def test_there_are_rules_and_tests():
    assert RULE_FILES and TEST_FILES
    assert len(ALERTS) >= 11
    assert RECORDS


# --- promtool -------------------------------------------------------------------------------


@needs_promtool
@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules_is_clean(path):
    result = promstack.promtool_check_rules(path, lint="all")
    assert result.returncode == 0, result.stderr
    assert "SUCCESS" in result.stdout
    # lint findings (duplicate rules) are printed to stderr even with rc 0
    assert result.stderr == "", result.stderr


@needs_promtool
def test_example_prometheus_config_is_valid():
    promtool = promstack.binary("promtool")
    result = promstack.run([promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    # it loads both rule files
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout


@needs_promtool
@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(path):
    result = promstack.run([promstack.binary("promtool"), "test", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


# --- every alert is complete and tested -----------------------------------------------------


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: r["alert"])
def test_alert_has_routing_severity_and_annotations(rule):
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert annotations["description"].strip()
    assert annotations["runbook_url"] == RUNBOOK_URL + rule["alert"].lower()
    # longer than one poll: a single late or failed poll never notifies anybody
    assert rule.get("for"), "every alert needs a for: duration"


def test_alert_names_are_unique():
    names = [rule["alert"] for rule in ALERTS]
    assert len(names) == len(set(names))


def test_alarm_alerts_keep_the_alarm_severity_apart_from_the_routing_one():
    """Alarm series carry the DMS alarm's own `severity`; the rule's label would overwrite it."""
    for rule in ALERTS:
        if "dms_alarm_asserted_timestamp_seconds" in rule["expr"]:
            assert '"alarm_severity", "$1", "severity"' in rule["expr"], rule["alert"]
            assert "group_left(site, region)" in rule["expr"], rule["alert"]


def unit_test_cases() -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
    """alertname -> alert_rule_test cases that expect it firing, and that expect silence."""
    firing: dict[str, list[dict]] = defaultdict(list)
    silent: dict[str, list[dict]] = defaultdict(list)
    for path in TEST_FILES:
        for test in load(path)["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else silent)[case["alertname"]].append(case)
    return firing, silent


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: r["alert"])
def test_alert_has_a_firing_and_a_silent_unit_test(rule):
    firing, silent = unit_test_cases()
    name = rule["alert"]
    assert firing[name], f"no promtool test shows {name} firing"
    assert silent[name], f"no promtool test shows {name} not firing"
    for case in firing[name]:
        for alert in case["exp_alerts"]:
            # exact: promtool compares the full label and annotation sets
            assert alert["exp_labels"]["severity"] == rule["labels"]["severity"]
            assert set(alert["exp_annotations"]) == set(rule["annotations"])


def test_unit_tests_only_name_existing_alerts():
    firing, silent = unit_test_cases()
    assert set(firing) | set(silent) <= {rule["alert"] for rule in ALERTS}


def test_every_recording_rule_has_an_expression_test():
    tested = {
        case["expr"].strip()
        for path in TEST_FILES
        for test in load(path)["tests"]
        for case in test.get("promql_expr_test", [])
    }
    untested = [rule["record"] for rule in RECORDS if rule["record"] not in tested]
    assert not untested, f"recording rules without a promql_expr_test: {untested}"


def test_recording_rule_names_follow_level_metric_operations():
    for rule in RECORDS:
        assert re.fullmatch(r"dms:[a-z_]+:[a-z0-9_]+", rule["record"]), rule["record"]


# --- the runbook ----------------------------------------------------------------------------


def runbook_anchors() -> set[str]:
    """GitHub's anchors for the runbook's headings (lower case, spaces to dashes)."""
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", RUNBOOK.read_text(encoding="utf-8"), re.M)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


def test_every_runbook_url_has_a_section():
    anchors = runbook_anchors()
    missing = [
        rule["alert"]
        for rule in ALERTS
        if rule["annotations"]["runbook_url"].split("#", 1)[1] not in anchors
    ]
    assert not missing, f"no section in docs/runbook.md for {missing}"


def test_runbook_has_no_section_for_an_alert_that_does_not_exist():
    sections = set(re.findall(r"^## (Dms\w+)\s*$", RUNBOOK.read_text(encoding="utf-8"), re.M))
    assert sections == {rule["alert"] for rule in ALERTS}


def test_runbook_sections_say_meaning_impact_check_resolve():
    text = RUNBOOK.read_text(encoding="utf-8")
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        title = section.splitlines()[0]
        for part in ("**Meaning.**", "**Impact.**", "**Check.**", "**Resolve.**"):
            assert part in section, f"runbook section {title} lacks {part}"


# --- metrics exist --------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ALERTS + RECORDS, ids=lambda r: r.get("alert") or r["record"])
def test_rule_uses_only_catalogued_metrics_and_labels(rule):
    catalogue = promstack.metric_reference()
    assert promstack.unknown_names(rule["expr"], catalogue) == []
    # series recorded by other rules must be recorded here
    recorded = set(re.findall(r"dms:[a-z_]+:[a-z0-9_]+", rule["expr"]))
    assert recorded <= {r["record"] for r in RECORDS}


def test_catalogue_parser_sees_the_whole_catalogue():
    """Guards the check above against a parser that silently finds nothing."""
    catalogue = promstack.metric_reference()
    assert len(catalogue) >= 45
    assert "dms_device_info" in catalogue and "dms_exporter_logins_total" in catalogue
    assert "site" in catalogue["dms_device_info"]
    assert "dms_device_connection_state" in catalogue["dms_device_connection_state"]
    assert promstack.unknown_names('dms_devices{colour="x"}', catalogue) == [
        "dms_devices has no label colour"
    ]
    assert promstack.unknown_names("dms_nonsense", catalogue) == ["unknown metric dms_nonsense"]


def seconds(duration: str) -> float:
    """A Prometheus duration (``90s``, ``5m``, ``1h30m``) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * units[u] for n, u in parts)


def test_dms_none_reachable_cannot_page_before_dms_down():
    """One outage pages once: Alertmanager inhibits DmsNoneReachable while DmsDown fires, so
    DmsNoneReachable must not fire first. Its condition can start up to two `system` polls (60 s
    by default, a poll and its timeout) before DmsDown's (`dms_up` changes at a system poll;
    reachability at any request), so its `for:` is at least that much longer."""
    by_name = {rule["alert"]: rule for rule in ALERTS}
    none_reachable = seconds(by_name["DmsNoneReachable"]["for"])
    down = seconds(by_name["DmsDown"]["for"])
    assert none_reachable >= down + 2 * 60
