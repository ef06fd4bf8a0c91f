"""The test stack in promstack.py works: a real Prometheus scrapes a page and itself, evaluates a
rule, and its alert reaches a webhook through a real Alertmanager, in bounded time."""

from __future__ import annotations

import time

import promstack
import pytest

pytestmark = [
    pytest.mark.skipif(
        promstack.binary("prometheus") is None, reason=promstack.missing_reason("prometheus")
    ),
    pytest.mark.skipif(
        promstack.binary("alertmanager") is None, reason=promstack.missing_reason("alertmanager")
    ),
]

ALWAYS = """
groups:
  - name: promstack
    rules:
      - alert: PromstackAlways
        expr: vector(1)
        labels: {severity: info}
        annotations: {summary: always firing}
"""

PAGE = """\
# HELP promstack_demo_value A value served by a static page.
# TYPE promstack_demo_value gauge
promstack_demo_value{colour="blue"} 42
"""


def test_alert_reaches_webhook_and_processes_are_stopped(tmp_path):
    started = time.monotonic()
    with (
        promstack.webhook_receiver() as hook,
        promstack.static_metrics(PAGE) as page,
        promstack.alertmanager(tmp_path, promstack.webhook_config(hook.url)) as am,
        promstack.prometheus(
            tmp_path,
            [{"job_name": "page", "static_configs": [{"targets": [page]}]}],
            rules={"always.yml": ALWAYS},
            alertmanager_url=am.address,
            scrape_self=True,
        ) as prom,
    ):
        assert prom.address.startswith("127.0.0.1:") and am.address.startswith("127.0.0.1:")

        # data from the static page arrives (the first scrape takes ~6 s)
        [sample] = prom.wait_for('promstack_demo_value{job="page"}', timeout=20)
        assert sample["metric"]["colour"] == "blue"
        assert sample["value"][1] == "42"
        [own] = prom.wait_for('up{job="prometheus"} == 1', timeout=10)
        assert own["metric"]["instance"] == prom.address

        alert = hook.wait_for(
            lambda a: a["labels"].get("alertname") == "PromstackAlways", timeout=30
        )
        assert alert["status"] == "firing"
        assert alert["labels"]["severity"] == "info"
        assert alert["annotations"]["summary"] == "always firing"
        assert time.monotonic() - started < 40

        # a rejected query is an error, not an empty result
        with pytest.raises(ValueError, match="parse error"):
            prom.query("sum(")
        prom_process, am_process = prom.process, am.process

    # the context managers stopped both servers
    assert prom_process.poll() is not None
    assert am_process.poll() is not None
