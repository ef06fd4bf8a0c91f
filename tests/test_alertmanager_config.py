"""deploy/alertmanager/alertmanager.yml: valid, routes each DMS alert to the right receiver,
groups DMS alarms by code and site, and inhibits symptoms of a dead exporter or DMS."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import promstack
import pytest
import yaml

CONFIG = promstack.ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
ALERT_RULES = promstack.ROOT / "deploy" / "prometheus" / "rules" / "dms-alerts.yml"

needs_amtool = pytest.mark.skipif(
    promstack.binary("amtool") is None, reason=promstack.missing_reason("amtool")
)

# Where each alert of the rules file must end up (with its severity from the rules file).
EXPECTED_RECEIVER = {
    "DmsAlarmCritical": "dms-pager",
    "DmsAlarmMajor": "dms-ticket",
    "DmsDeviceOffline": "dms-ticket",
    "DmsFleetOfflineRatioHigh": "dms-pager",
    "DmsScheduleAuthorizationNotActive": "dms-pager",
    "DmsDown": "dms-pager",
    "DmsNoneReachable": "dms-pager",
    "DmsRunningOnStandby": "dms-ticket",
    # the exporter's own health goes to whoever runs the monitoring, whatever its severity
    "DmsExporterDown": "dms-monitoring",
    "DmsEndpointFailing": "dms-monitoring",
    "DmsEndpointSuspect": "dms-monitoring",
    "DmsEndpointDataStale": "dms-monitoring",
    "DmsLoginFailing": "dms-monitoring",
    "DmsConfigReloadFailed": "dms-monitoring",
}


def alert_severities() -> dict[str, str]:
    rules = yaml.safe_load(ALERT_RULES.read_text())
    return {
        rule["alert"]: rule["labels"]["severity"]
        for group in rules["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def route(*labels: str) -> str:
    """The receiver amtool resolves for an alert with these `name=value` labels."""
    result = promstack.run(
        [promstack.binary("amtool"), "config", "routes", "test", f"--config.file={CONFIG}", *labels]
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@needs_amtool
def test_amtool_check_config():
    result = promstack.run([promstack.binary("amtool"), "check-config", str(CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_in_the_rules_has_an_expected_receiver():
    assert set(EXPECTED_RECEIVER) == set(alert_severities())


@needs_amtool
@pytest.mark.parametrize("alertname", sorted(EXPECTED_RECEIVER))
def test_alert_routes_to_its_receiver(alertname):
    severity = alert_severities()[alertname]
    labels = [f"alertname={alertname}", f"severity={severity}", "job=dms", "instance=x:9883"]
    assert route(*labels) == EXPECTED_RECEIVER[alertname]


@needs_amtool
@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        # a critical DMS alarm, as DmsAlarmCritical labels it, pages
        (
            [
                "alertname=DmsAlarmCritical",
                "severity=critical",
                "alarm_severity=critical",
                "code=SIGNAL_LOSS",
                "site=Denver Headend",
                "device_id=dev-000123",
            ],
            "dms-pager",
        ),
        # a major alarm is a warning: a ticket
        (["alertname=DmsAlarmMajor", "severity=warning", "alarm_severity=major"], "dms-ticket"),
        # an exporter alert goes to the monitoring team even when critical
        (["alertname=DmsExporterDown", "severity=critical", "job=dms"], "dms-monitoring"),
        # info is dropped; a stray alert without a DMS route still lands somewhere visible
        (["alertname=DmsSomethingNew", "severity=info"], "dms-null"),
        (["alertname=NotOurs", "severity=critical"], "dms-ticket"),
    ],
    ids=["critical-alarm", "major-alarm", "exporter", "info", "unmatched"],
)
def test_amtool_routes(labels, receiver):
    assert route(*labels) == receiver


@needs_amtool
def test_amtool_verify_receivers_catches_a_wrong_expectation():
    """The check above would notice a routing change: amtool itself disagrees with a wrong
    expected receiver (rc 1)."""
    result = promstack.run(
        [
            promstack.binary("amtool"),
            "config",
            "routes",
            "test",
            f"--config.file={CONFIG}",
            "--verify.receivers=dms-ticket",
            "alertname=DmsAlarmCritical",
            "severity=critical",
        ]
    )
    assert result.returncode == 1


def test_alarm_notifications_are_grouped_by_code_and_site():
    config = yaml.safe_load(CONFIG.read_text())
    [alarm_route] = [
        r for r in config["route"]["routes"] if any("DmsAlarmCritical" in m for m in r["matchers"])
    ]
    assert alarm_route["group_by"] == ["alertname", "code", "site"]


# --- a real Alertmanager with this config ---------------------------------------------------


needs_alertmanager = pytest.mark.skipif(
    promstack.binary("alertmanager") is None, reason=promstack.missing_reason("alertmanager")
)


@contextlib.contextmanager
def shipped_alertmanager(
    tmp_path: Path,
) -> Iterator[tuple[promstack.Alertmanager, promstack.Webhook]]:
    """A real Alertmanager with the config as shipped, its webhooks pointed at a local receiver
    (path: the receiver's name) and its waits cut to a second."""
    config = yaml.safe_load(CONFIG.read_text())
    config["route"].update(group_wait="1s", group_interval="1s")
    with promstack.webhook_receiver() as hook:
        for receiver in config["receivers"]:
            for webhook in receiver.get("webhook_configs", []):
                webhook["url"] = f"{hook.url}/{receiver['name']}"
        with promstack.alertmanager(tmp_path, config) as am:
            yield am, hook


@needs_alertmanager
def test_real_alertmanager_notifies_and_inhibits(tmp_path):
    """The config as shipped, with its webhooks pointed at a local receiver and its waits cut to
    a second: a critical alarm reaches the pager grouped by code and site; a dead exporter
    suppresses everything else of that exporter; DmsDown suppresses endpoint alerts but not the
    login alert that explains it; a mass outage suppresses per-device alerts."""
    with shipped_alertmanager(tmp_path) as (am, hook):
        a = {"job": "dms", "instance": "a:9883"}  # an exporter that is down
        b = {"job": "dms", "instance": "b:9883"}  # a DMS that is down
        c = {"job": "dms", "instance": "c:9883"}  # fine exporter, critical alarm
        am.post(
            {**c, "alertname": "DmsAlarmCritical", "severity": "critical",
             "code": "SIGNAL_LOSS", "site": "Denver", "alarm_id": "al-1"},
            {**a, "alertname": "DmsExporterDown", "severity": "critical"},
            {**a, "alertname": "DmsAlarmCritical", "severity": "critical",
             "code": "SIGNAL_LOSS", "site": "Boise", "alarm_id": "al-2"},
            {**b, "alertname": "DmsDown", "severity": "critical"},
            {**b, "alertname": "DmsEndpointFailing", "severity": "warning",
             "endpoint": "alarms"},
            {**b, "alertname": "DmsLoginFailing", "severity": "warning"},
            {**c, "alertname": "DmsFleetOfflineRatioHigh", "severity": "critical"},
            {**c, "alertname": "DmsDeviceOffline", "severity": "warning", "device_id": "d1"},
        )  # fmt: skip

        notified = hook.wait_for(
            lambda alert: alert["labels"].get("alarm_id") == "al-1", timeout=20
        )
        assert notified["status"] == "firing"
        [payload] = [p for p in hook.payloads if p["receiver"] == "dms-pager"
                     and p["groupLabels"].get("site") == "Denver"]  # fmt: skip
        assert payload["groupLabels"] == {
            "alertname": "DmsAlarmCritical",
            "code": "SIGNAL_LOSS",
            "site": "Denver",
        }

        def state(alertname: str, instance: str) -> str:
            [alert] = [
                x for x in am.alerts()
                if x["labels"]["alertname"] == alertname
                and x["labels"]["instance"] == instance
            ]  # fmt: skip
            return alert["status"]["state"]

        assert state("DmsExporterDown", "a:9883") == "active"
        assert state("DmsAlarmCritical", "a:9883") == "suppressed"
        assert state("DmsDown", "b:9883") == "active"
        assert state("DmsEndpointFailing", "b:9883") == "suppressed"
        assert state("DmsLoginFailing", "b:9883") == "active"
        assert state("DmsAlarmCritical", "c:9883") == "active"
        assert state("DmsFleetOfflineRatioHigh", "c:9883") == "active"
        assert state("DmsDeviceOffline", "c:9883") == "suppressed"


@needs_alertmanager
def test_one_dms_outage_pages_once(tmp_path):
    """A DMS outage makes DmsDown, DmsNoneReachable and (after a failover) DmsRunningOnStandby
    fire for the same exporter: the pager gets DmsDown alone. DmsNoneReachable of another
    exporter, whose DmsDown is not firing, still pages."""
    with shipped_alertmanager(tmp_path) as (am, hook):
        down = {"job": "dms", "instance": "down:9883"}
        other = {"job": "dms", "instance": "other:9883"}
        am.post(
            {**down, "alertname": "DmsNoneReachable", "severity": "critical"},
            {**down, "alertname": "DmsRunningOnStandby", "severity": "warning",
             "url": "https://dms-b/dms-api/v1"},
            {**down, "alertname": "DmsDown", "severity": "critical"},
            {**other, "alertname": "DmsNoneReachable", "severity": "critical"},
        )  # fmt: skip
        hook.wait_for(lambda a: a["labels"]["alertname"] == "DmsDown", timeout=20)
        hook.wait_for(lambda a: a["labels"]["instance"] == "other:9883", timeout=20)
        states = {
            (a["labels"]["alertname"], a["labels"]["instance"]): a["status"]["state"]
            for a in am.alerts()
        }
        assert states == {
            ("DmsDown", "down:9883"): "active",
            ("DmsNoneReachable", "down:9883"): "suppressed",
            ("DmsRunningOnStandby", "down:9883"): "suppressed",
            ("DmsNoneReachable", "other:9883"): "active",
        }
        paged = [
            (a["labels"]["alertname"], a["labels"]["instance"])
            for p in hook.payloads if p["receiver"] == "dms-pager"
            for a in p["alerts"]
        ]  # fmt: skip
        assert sorted(set(paged)) == [
            ("DmsDown", "down:9883"), ("DmsNoneReachable", "other:9883")
        ]  # fmt: skip
        assert not [p for p in hook.payloads if p["receiver"] == "dms-ticket"]
