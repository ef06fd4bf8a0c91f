"""The whole stack with real components on 127.0.0.1: DMS simulator -> exporter -> a real
Prometheus (the shipped alerting and recording rules loaded) -> a real Alertmanager (the shipped
config) -> a local webhook receiver.

- Every Grafana panel query, annotation and variable query, and every rule expression, evaluated
  by Prometheus over /api/v1/query against data scraped from the real exporter, returns without
  error and returns data (unless listed in EMPTY_BY_DESIGN, with the reason).
- `promtool check metrics` finds nothing wrong in the exporter's text exposition.
- An alarm raised in the simulator reaches Alertmanager's webhook as a DmsAlarmCritical alert
  carrying the alarm's labels, routed to the pager receiver.

The conditions the alert expressions look for are created for real rather than faked in an
exposition: a healthy exporter ("main": critical, major and DMS alarms, 10 of 60 devices offline,
cleared alarms counted with `alarms.retrieval: all`), a second exporter on a second, damaged
simulator ("broken": the system endpoint answers 503, devices stops answering after one poll,
alarms answers 401, schedule states are missing, and a reload of its config file was rejected),
a third exporter whose two DMS URLs both refuse connections ("nowhere"), and a scrape target
nobody listens on ("down"). The main exporter's first DMS URL refuses connections too, so it
runs on its standby URL, the healthy simulator.

Simulators and exporters run on their own event loop in a background thread: the promstack
helpers block (subprocesses, time.sleep), and the exporter must keep serving scrapes meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import promstack
import pytest
import yaml
from aiohttp import web
from conftest import exporter_config
from test_dashboards import DASHBOARDS, queries, substitute, variable_exprs
from test_rules import ALERTS, RECORDS, RULE_FILES

from dms_exporter.config import load_config
from dms_exporter.exporter import Exporter
from dms_exporter.simulator import Simulator
from dms_exporter.web.app import make_app

_MISSING = [b for b in ("prometheus", "promtool", "alertmanager") if promstack.binary(b) is None]
pytestmark = pytest.mark.skipif(
    bool(_MISSING), reason="; ".join(promstack.missing_reason(b) for b in _MISSING)
)

ALERTMANAGER_CONFIG = promstack.ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
JOB = "dms"  # the rules select up{job="dms"}; the dashboards' $job resolves to it
DISPLAY_NAME = "Stack test rack 7"  # the operator's description of the device under test
TIMEOUT = 60  # seconds; every wait below is bounded by it or less

# Expressions (by the ids of all_expressions()) that return nothing here by design, with why.
# Everything else must return data. Kept honest by test_empty_by_design_is_current.
EMPTY_BY_DESIGN: dict[str, str] = {}

T = TypeVar("T")


# --- the exporter side: simulators and exporters on a background event loop ----------------


class LoopThread:
    """An asyncio loop running in a daemon thread; run coroutines and calls on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="stack", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = TIMEOUT) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call a sync function on the loop's thread (the simulator is not thread-safe)."""

        async def call() -> T:
            return fn(*args, **kwargs)

        return self.run(call())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


async def serve(exporter: Exporter) -> tuple[web.AppRunner, str]:
    """Serve an exporter on a free port of 127.0.0.1; (runner, host:port)."""
    runner = web.AppRunner(make_app(exporter), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"{host}:{port}"


@dataclass
class Dms:
    """What runs on the background loop."""

    sim: Simulator  # healthy simulator behind "main"
    broken_sim: Simulator  # damaged simulator behind "broken"
    runners: list[web.AppRunner]
    main: str  # host:port of the healthy exporter
    broken: str  # host:port of the exporter of the damaged DMS
    nowhere: str  # host:port of the exporter whose DMS URLs all refuse connections
    device_id: str  # the device the alarms are raised on
    device: dict[str, Any]  # its JSON
    closed: list[socket.socket]  # bound, not listening: the URLs that refuse connections
    lean: str  # host:port of an exporter of the healthy DMS with metrics.preset lean

    async def stop(self) -> None:
        for sock in self.closed:
            sock.close()
        for runner in self.runners:
            await runner.cleanup()
        await self.sim.stop()
        await self.broken_sim.stop()


async def start_dms(tmp_path: Path) -> Dms:
    sim = await Simulator(devices=60, seed=3, change_rate=0).start()  # live clock, no churn
    broken_sim = await Simulator(devices=5, seed=4, change_rate=0).start()
    runners: list[web.AppRunner] = []
    closed = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(3)]
    refused = []
    for sock in closed:  # a port bound but not listening refuses connections
        sock.bind(("127.0.0.1", 0))
        refused.append(f"http://127.0.0.1:{sock.getsockname()[1]}/dms-api/v1")
    try:
        devices = [sim.world.devices[i] for i in sim.world.devices]
        online = [d for d in devices if d["connectionState"] == "ONLINE"]
        # the device under test: online, at a site (so the alert carries the site)
        device = next(d for d in online if d["location"]["site"])
        # a mass outage: 7 more devices offline makes > 10 % of 60 (DmsFleetOfflineRatioHigh)
        for d in [d for d in online if d is not device][:7]:
            sim.set_device(d["id"], connectionState="OFFLINE")
        sim.raise_alarm(device["id"], "CRITICAL", "SIGNAL_LOSS", "DVB-S2 Input 2")
        sim.raise_alarm(device["id"], "MAJOR", "CC_ERRORS", "PID 0x0100")
        sim.raise_alarm(None, "CRITICAL", "OTA_COMMAND_FAILED", "OTA Carrier 1")  # the DMS's own
        config = exporter_config(
            sim,
            defaults={"interval": "2s"},
            endpoints={"alarms": {"interval": "1s"}},
            alarms={"retrieval": "all"},  # cleared alarms are counted
            display_names={"devices": {device["id"]: DISPLAY_NAME}},
        )
        # the main DMS URL refuses connections: the exporter runs on the standby (the
        # simulator) for DmsRunningOnStandby
        dms = dataclasses.replace(config.dms, url=refused[0], standby_urls=(sim.base_url,))
        runner, main = await serve(Exporter(dataclasses.replace(config, dms=dms)))
        runners.append(runner)
        # no DMS URL answers: DmsNoneReachable
        nowhere_dms = dataclasses.replace(config.dms, url=refused[1], standby_urls=(refused[2],))
        runner, nowhere = await serve(Exporter(dataclasses.replace(config, dms=nowhere_dms)))
        runners.append(runner)
        # the healthy DMS exported with the lean preset: the alarm alerts must still fire
        lean_config = exporter_config(
            sim,
            defaults={"interval": "2s"},
            endpoints={"alarms": {"interval": "1s"}},
            display_names={"devices": {device["id"]: DISPLAY_NAME}},
            metrics={"preset": "lean"},
        )
        runner, lean = await serve(Exporter(lean_config))
        runners.append(runner)

        # The damaged DMS, each fault for one alert expression.
        broken_sim.add_fault("system", "status", status=503)  # DmsDown, DmsEndpointFailing
        broken_sim.add_fault("devices", "status", status=503, skip=1)  # DmsEndpointDataStale
        broken_sim.add_fault("alarms", "status", status=401)  # DmsLoginFailing (reason auth)
        # no state for any schedule: the one inside its window is not reported active
        broken_sim.add_fault("schedule_authorizations", "missing_fields", fields=["state"])
        config_file = tmp_path / "broken.yml"
        config_file.write_text(
            yaml.safe_dump(
                {
                    "dms": {
                        "url": broken_sim.base_url,
                        "username": broken_sim.username,
                        "password": broken_sim.password,
                        "proxy": "direct",
                    },
                    "defaults": {"interval": "1s"},
                }
            )
        )
        broken_exporter = Exporter(load_config(str(config_file)), config_file=str(config_file))
        runner, broken = await serve(broken_exporter)
        runners.append(runner)
        # a good answer applied first (however slow this machine), then words nobody knows:
        # DmsEndpointSuspect
        for _ in range(600):
            if broken_exporter.store.tables["destinations"] is not None:
                break
            await asyncio.sleep(0.05)
        broken_sim.add_fault("destinations", "unknown_enums")
        config_file.write_text("dms: [not, a, mapping\n")
        assert not await broken_exporter.reload()  # DmsConfigReloadFailed
        return Dms(
            sim, broken_sim, runners, main, broken, nowhere, device["id"], device, closed, lean
        )
    except BaseException:
        for sock in closed:
            sock.close()
        for runner in runners:
            await runner.cleanup()
        await sim.stop()
        await broken_sim.stop()
        raise


# --- Prometheus and Alertmanager --------------------------------------------------------------


def rules_with_short_for() -> dict[str, str]:
    """The shipped rule files with every `for:` set to 0s, so alerts fire at the first
    evaluation instead of after 1 to 15 minutes. Nothing else changes: the expressions are the
    shipped ones, byte for byte."""
    rules = {}
    for path in RULE_FILES:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in data["groups"]:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = "0s"
        rules[path.name] = yaml.safe_dump(data, sort_keys=False)
    return rules


def alertmanager_config(hook_url: str) -> dict[str, Any]:
    """The shipped Alertmanager config with every webhook pointed at the local receiver and
    the group waits cut from 30 s / 5 m to 1 s; routes, grouping and inhibitions unchanged."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = f"{hook_url}/{receiver['name']}"

    def shorten(route: dict[str, Any]) -> None:
        for key in ("group_wait", "group_interval"):
            if key in route:
                route[key] = "1s"
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    return config


@dataclass
class Stack:
    loop: LoopThread
    dms: Dms
    down: str  # host:port of a scrape target nobody listens on
    prom: promstack.Prometheus
    am: promstack.Alertmanager
    hook: promstack.Webhook


def targets(prom: promstack.Prometheus) -> list[tuple[str, str, str]]:
    """(scrape URL, health, last error) of every target: what a failed wait shows."""
    status, body = promstack.http_get(f"{prom.url}/api/v1/targets")
    active = json.loads(body)["data"]["activeTargets"] if status == 200 else []
    return [(t["scrapeUrl"], t["health"], t["lastError"]) for t in active]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp_path = tmp_path_factory.mktemp("stack")
    with contextlib.ExitStack() as cleanup:
        loop = LoopThread()
        cleanup.callback(loop.close)
        dms = loop.run(start_dms(tmp_path))
        cleanup.callback(lambda: loop.run(dms.stop()))
        # a port bound but not listening refuses connections, and nothing else can take it
        closed = cleanup.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        closed.bind(("127.0.0.1", 0))
        down = f"127.0.0.1:{closed.getsockname()[1]}"
        hook = cleanup.enter_context(promstack.webhook_receiver())
        am = cleanup.enter_context(promstack.alertmanager(tmp_path, alertmanager_config(hook.url)))
        scrape = {
            "job_name": JOB,
            "static_configs": [{"targets": [dms.main, dms.broken, dms.nowhere, dms.lean, down]}],
        }
        prom = cleanup.enter_context(
            promstack.prometheus(
                tmp_path, [scrape], rules=rules_with_short_for(), alertmanager_url=am.address
            )
        )
        main = f'job="{JOB}", instance="{dms.main}"'
        deadline = time.monotonic() + TIMEOUT  # for the three waits together
        try:
            for expr in (
                f"up{{{main}}} == 1",
                # two samples for rate() and increase(), and the recording rules evaluated
                f"count_over_time(dms_up{{{main}}}[1m]) >= 2",
                f"dms:devices_by_connection_state:sum{{{main}}}",
            ):
                prom.wait_for(expr, timeout=max(1.0, deadline - time.monotonic()))
        except TimeoutError as e:
            raise TimeoutError(
                f"{e}\ntargets: {targets(prom)}\nprometheus log:\n{prom.log()}"
            ) from e
        yield Stack(loop, dms, down, prom, am, hook)


# --- 1. every dashboard query and rule expression returns data -------------------------------


def all_expressions(stack: Stack) -> dict[str, str]:
    """id -> PromQL: every dashboard panel target, annotation and variable query (Grafana's
    variables set to the main exporter and the device under test), and every rule's expr."""
    values = {"job": JOB, "instance": stack.dms.main, "device": stack.dms.device_id}
    exprs = {
        f"{uid}: {where}": substitute(expr, **values)
        for uid, dashboard in DASHBOARDS.items()
        for where, expr in queries(dashboard) + variable_exprs(dashboard)
    }
    exprs |= {f"alert {rule['alert']}": rule["expr"] for rule in ALERTS}
    exprs |= {f"record {rule['record']}": rule["expr"] for rule in RECORDS}
    return exprs


def test_every_dashboard_query_and_rule_expression_returns_data(stack):
    exprs = all_expressions(stack)
    assert len(exprs) > 100
    assert set(EMPTY_BY_DESIGN) <= set(exprs), "EMPTY_BY_DESIGN names unknown expressions"
    errors: dict[str, str] = {}
    empty = dict(exprs)
    # Poll only what is still empty; data that is there stays there (nothing is cleared).
    deadline = time.monotonic() + 30
    for _ in range(60):
        for key, expr in list(empty.items()):
            try:
                if stack.prom.query(expr):
                    del empty[key]
            except ValueError as e:  # Prometheus rejected the query
                errors[key] = str(e)
                del empty[key]
        if set(empty) <= set(EMPTY_BY_DESIGN) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not errors, f"queries Prometheus rejected: {errors}"
    unexpected = sorted(set(empty) - set(EMPTY_BY_DESIGN))
    assert not unexpected, "no data from:\n" + "\n".join(f"{k}: {empty[k]}" for k in unexpected)


def test_empty_by_design_is_current(stack):
    """An expression listed as empty that returns data has outgrown its excuse."""
    exprs = all_expressions(stack)
    with_data = [key for key in EMPTY_BY_DESIGN if stack.prom.query(exprs[key])]
    assert not with_data, f"remove from EMPTY_BY_DESIGN, they return data: {with_data}"


def test_every_alert_fires_against_the_real_exporters(stack):
    """Each alert of the rules fires (its `for:` cut to 0s), so each was seen matching the
    condition it is written for, created for real on a simulator."""
    expected = {rule["alert"] for rule in ALERTS} - {
        key.removeprefix("alert ") for key in EMPTY_BY_DESIGN
    }

    def firing() -> set[str]:
        return {a["labels"]["alertname"] for a in stack.prom.alerts() if a["state"] == "firing"}

    try:
        promstack.wait_until(lambda: expected <= firing(), timeout=30, interval=0.5)
    except TimeoutError:
        pytest.fail(f"alerts never firing: {sorted(expected - firing())}")


def test_alarm_and_device_alerts_fire_with_the_lean_preset(stack):
    """Every alert on DMS alarms and devices fires for the lean exporter too, with the device's
    site joined in from dms_device_info (which lean keeps)."""
    wanted = {"DmsAlarmCritical", "DmsAlarmMajor", "DmsDeviceOffline", "DmsFleetOfflineRatioHigh"}

    def firing() -> dict[str, list[dict[str, str]]]:
        alerts: dict[str, list[dict[str, str]]] = {}
        for alert in stack.prom.alerts():
            if alert["state"] == "firing" and alert["labels"].get("instance") == stack.dms.lean:
                alerts.setdefault(alert["labels"]["alertname"], []).append(alert["labels"])
        return alerts

    try:
        alerts = promstack.wait_until(lambda: wanted <= set(f := firing()) and f, timeout=30)
    except TimeoutError:
        pytest.fail(f"not firing for the lean exporter: {sorted(wanted - set(firing()))}")
    on_device = [a for a in alerts["DmsAlarmCritical"] if a.get("device_id") == stack.dms.device_id]
    assert on_device and on_device[0]["display_name"] == DISPLAY_NAME
    assert on_device[0]["site"] == stack.dms.device["location"]["site"]


# --- 2. promtool check metrics ----------------------------------------------------------------


@pytest.mark.parametrize("which", ["main", "broken"])
def test_promtool_check_metrics_is_clean(stack, which):
    """The text format (no Accept header), healthy and with every endpoint in trouble."""
    address = getattr(stack.dms, which)
    # urllib sends no Accept header: the exporter answers text format 0.0.4
    status, body = promstack.http_get(f"http://{address}/metrics")
    assert status == 200
    assert body.startswith(b"# HELP ")
    result = subprocess.run(
        [promstack.binary("promtool"), "check", "metrics"],
        input=body,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b""), result


# --- 3. a simulator alarm reaches Alertmanager -----------------------------------------------


def test_alarm_reaches_alertmanager_with_its_labels(stack):
    dms = stack.dms
    raised = time.monotonic()
    alarm = stack.loop.call(
        dms.sim.raise_alarm, dms.device_id, "CRITICAL", "TS_SYNC_LOSS", "Transport Stream 2"
    )

    def ours(alert: dict[str, Any]) -> bool:
        labels = alert["labels"]
        return (labels.get("alarm_id"), labels.get("instance"), alert["status"]) == (
            alarm["id"],
            dms.main,
            "firing",
        )

    alert = stack.hook.wait_for(ours, timeout=TIMEOUT)
    latency = time.monotonic() - raised
    print(f"alarm {alarm['id']} raised in the simulator -> Alertmanager webhook: {latency:.1f} s")
    assert latency <= TIMEOUT
    assert alert["labels"] == {
        "alertname": "DmsAlarmCritical",
        "severity": "critical",  # the routing severity of the rule
        "alarm_severity": "critical",  # the alarm's own, kept apart
        "alarm_id": alarm["id"],
        "device_id": dms.device_id,
        "display_name": DISPLAY_NAME,
        "code": "TS_SYNC_LOSS",
        "fault_object": "Transport Stream 2",
        "source": "device",
        "site": dms.device["location"]["site"],  # joined from dms_device_info
        "region": dms.device["location"]["region"],
        "job": JOB,
        "instance": dms.main,
    }
    assert alert["annotations"]["summary"] == f"DMS critical alarm TS_SYNC_LOSS on {DISPLAY_NAME}"
    payloads = [p for p in list(stack.hook.payloads) if alert in p.get("alerts", [])]
    assert payloads
    for payload in payloads:
        assert payload["receiver"] == "dms-pager"
        assert payload["groupLabels"] == {
            "alertname": "DmsAlarmCritical",
            "code": "TS_SYNC_LOSS",
            "site": dms.device["location"]["site"],
        }
    [held] = [
        a
        for a in stack.am.alerts()
        if (a["labels"].get("alarm_id"), a["labels"].get("instance")) == (alarm["id"], dms.main)
    ]
    assert held["status"]["state"] == "active"  # not inhibited
