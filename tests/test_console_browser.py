"""The console in a real browser: headless Chromium (Selenium) against the exporter and the
simulator, both real processes on 127.0.0.1, with 20,000 devices.

The tests share one simulator, one exporter (restarted by one test) and one browser session, and
run in file order: each builds on the state the previous ones left.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from browser import browser_missing, chromium
from conftest import samples
from test_cli import free_port, wait_for

pytestmark = pytest.mark.skipif(bool(browser_missing()), reason=str(browser_missing()))

DEVICES = 20_000
PAGES = ("endpoints", "devices", "authorization", "destinations", "alarms", "settings")
#: families with a display_name label, one of each group that carries it
DISPLAY_NAMED = ("dms_device_info", "dms_device_authorized_services", "dms_destination_info")
WAIT = 20.0
#: the device whose description is edited: it has destinations in the frozen simulator (seed 1),
#: and dms.yml gives it a description (to revert to)
DEVICE = "dev-000001"  # seconds: generous, the machine is shared


@dataclass
class Stack:
    """The simulator's URL, the config file and the running exporter."""

    dms_url: str
    config: Path
    port: int
    exporter: subprocess.Popen[str] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_exporter(self) -> None:
        self.exporter = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dms_exporter",
                "--config.file",
                str(self.config),
                "--web.listen-address",
                f"127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(f"{self.base}/-/ready", timeout=60)

    def stop_exporter(self) -> str:
        assert self.exporter is not None
        self.exporter.terminate()
        _, stderr = self.exporter.communicate(timeout=15)
        self.exporter = None
        return stderr

    def metrics(self, *names: str) -> str:
        """The exposition, only the families ``names`` (``name[]``): at 20,000 devices the
        whole of it is tens of megabytes."""
        query = urllib.parse.urlencode([("name[]", name) for name in names])
        with urllib.request.urlopen(f"{self.base}/metrics?{query}", timeout=30) as response:
            return response.read().decode()


def _spawn(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    sim_port = free_port()
    sim = _spawn(
        [
            "-m",
            "dms_exporter.simulator",
            "--devices",
            str(DEVICES),
            "--frozen",
            "--listen-address",
            f"127.0.0.1:{sim_port}",
        ]
    )
    try:
        wait_for(f"http://127.0.0.1:{sim_port}/_sim/state", timeout=60)
        config = tmp_path_factory.mktemp("console") / "dms.yml"
        stack = Stack(f"http://127.0.0.1:{sim_port}/dms-api/v1", config, free_port())
        write_config(stack, {DEVICE: "From YAML"})
        stack.start_exporter()
        try:
            yield stack
        finally:
            if stack.exporter is not None:
                stack.stop_exporter()
    finally:
        sim.terminate()
        sim.wait(timeout=15)


def write_config(stack: Stack, display_names: dict[str, str]) -> None:
    stack.config.write_text(
        yaml.safe_dump(
            {
                "dms": {
                    "url": stack.dms_url,
                    "username": "monitor",
                    "password": "monitor-secret",
                    "proxy": "direct",
                },
                "defaults": {"interval": "60s"},
                "refresh_min_gap": "1s",  # Refresh soon after start-up must poll
                "display_names": {"devices": display_names},
            }
        )
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        driver.set_page_load_timeout(WAIT)
        yield driver


def wait_until(condition: Any, what: str, timeout: float = WAIT) -> Any:
    from selenium.common.exceptions import WebDriverException

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = condition()
        except WebDriverException:  # the page or row was replaced while we read it
            result = None
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}")


def console_errors(driver: Any) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def by_css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def all_css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def lines(body: str, name: str, needle: str = "") -> list[tuple[dict[str, str], float]]:
    """The samples of ``name`` whose line holds ``needle``: the exposition of 20,000 devices is
    tens of megabytes, too much to parse whole in a test, so only those lines are parsed."""
    prefixes = (name + "{", name + " ")
    chosen = [line for line in body.splitlines() if line.startswith(prefixes) and needle in line]
    return samples("\n".join(chosen) + "\n", name)


def display_names(body: str, device_id: str) -> dict[str, set[str]]:
    """The display_name of ``device_id`` on each family that carries it."""
    needle = f'device_id="{device_id}"'
    return {
        name: {labels["display_name"] for labels, _ in lines(body, name, needle)}
        for name in DISPLAY_NAMED
    }


def reload_time(stack: Stack) -> float:
    """When the config was last loaded (at start, then at each successful reload)."""
    name = "dms_exporter_config_last_reload_success_timestamp_seconds"
    return lines(stack.metrics(name), name)[0][1]


def test_every_page_renders_without_console_errors(stack, browser):
    browser.get(f"{stack.base}/console/devices")
    first = by_css(browser, "tr[data-device] td.key a").get_attribute("href")
    for url in [f"{stack.base}/console/{page}" for page in PAGES] + [first]:
        browser.get(url)
        assert by_css(browser, "h1").text, url
        assert console_errors(browser) == [], url
    # the script has turned every time into local time with "… ago"
    browser.get(f"{stack.base}/console/endpoints")
    assert "ago)" in by_css(browser, "#endpoint-devices .last-poll time").text


def test_refresh_polls_and_updates_the_row(stack, browser):
    browser.get(f"{stack.base}/console/endpoints")
    selector = "#endpoint-alarms .last-poll time"
    before = float(by_css(browser, selector).get_attribute("data-ts"))
    time.sleep(0.05)  # so the next poll's time differs even on a coarse clock
    by_css(browser, "#endpoint-alarms form[data-refresh] button").click()
    wait_until(
        lambda: float(by_css(browser, selector).get_attribute("data-ts")) > before,
        "the alarms row shows a newer last poll",
    )
    assert console_errors(browser) == []


def test_a_bad_interval_gets_a_message_and_changes_nothing(stack, browser):
    browser.get(f"{stack.base}/console/endpoints")
    field = by_css(browser, "#endpoint-devices input[name=interval]")
    field.clear()
    field.send_keys("0")
    by_css(browser, "#endpoint-devices form.interval button").click()
    message = wait_until(lambda: all_css(browser, "#endpoint-devices .error"), "a message")
    assert "must be more than zero" in message[0].text
    # the refused form answers 400, which Chromium logs; nothing else may be logged
    assert [e["message"] for e in console_errors(browser)] == [
        f"{stack.base}/console/endpoints/devices - Failed to load resource: the server "
        "responded with a status of 400 (Bad Request)"
    ]
    assert "Refreshed every 60s. Polled from GET /devices." in stack.metrics("dms_device_info")


def test_switching_an_endpoint_off_removes_its_series(stack, browser):
    assert lines(stack.metrics("dms_group_info"), "dms_group_info")
    browser.get(f"{stack.base}/console/endpoints")
    by_css(browser, "#endpoint-groups input[type=checkbox]").click()
    wait_until(
        lambda: "set in console" in by_css(browser, "#endpoint-groups").text,
        "the page says the console switched groups off",
    )
    body = stack.metrics("dms_group_info", "dms_exporter_endpoint_enabled")
    assert not lines(body, "dms_group_info")
    assert lines(body, "dms_exporter_endpoint_enabled", '"groups"')[0][1] == 0


def test_a_description_edit_becomes_the_display_name_everywhere(stack, browser):
    device_id = DEVICE
    names = display_names(stack.metrics(*DISPLAY_NAMED), device_id)
    assert names == {family: {"From YAML"} for family in names}  # on every family: a real check
    browser.get(f"{stack.base}/console/devices?q={device_id}")
    field = by_css(browser, f'tr[data-device="{device_id}"] input[name=description]')
    field.clear()
    field.send_keys("KXYZ Denver rack 3")
    by_css(browser, f'tr[data-device="{device_id}"] form.description button').click()
    wait_until(
        lambda: "set in console" in by_css(browser, f'tr[data-device="{device_id}"]').text,
        "the row says the description is set in the console",
    )
    assert by_css(browser, f'tr[data-device="{device_id}"] td.key').text == "KXYZ Denver rack 3"
    names = display_names(stack.metrics(*DISPLAY_NAMED), device_id)
    assert names == {family: {"KXYZ Denver rack 3"} for family in names}
    state = json.loads(stack.config.with_name("dms.console.json").read_text())
    assert state["descriptions"] == {device_id: "KXYZ Denver rack 3"}


def test_edits_survive_a_restart_and_a_sighup_with_the_yaml_unchanged(stack, browser):
    stack.stop_exporter()
    stack.start_exporter()
    device_id = DEVICE
    names = display_names(stack.metrics(*DISPLAY_NAMED), device_id)
    assert names["dms_device_info"] == {"KXYZ Denver rack 3"}
    started = reload_time(stack)
    time.sleep(0.01)
    os.kill(stack.exporter.pid, signal.SIGHUP)  # type: ignore[union-attr]
    wait_until(lambda: reload_time(stack) > started, "the reload")
    body = stack.metrics(*DISPLAY_NAMED, "dms_exporter_endpoint_enabled")
    assert display_names(body, device_id)["dms_device_info"] == {"KXYZ Denver rack 3"}
    assert lines(body, "dms_exporter_endpoint_enabled", '"groups"')[0][1] == 0
    browser.get(f"{stack.base}/console/devices?q={device_id}")
    assert by_css(browser, f'tr[data-device="{device_id}"] td.key').text == "KXYZ Denver rack 3"


def test_revert_restores_the_yaml_value(stack, browser):
    device_id = DEVICE
    browser.get(f"{stack.base}/console/devices?q={device_id}")
    by_css(browser, f'tr[data-device="{device_id}"] button[name=revert]').click()
    wait_until(
        lambda: by_css(browser, f'tr[data-device="{device_id}"] td.key').text == "From YAML",
        "the display key is the YAML value again",
    )
    names = display_names(stack.metrics(*DISPLAY_NAMED), device_id)
    assert names == {family: {"From YAML"} for family in names}
    browser.get(f"{stack.base}/console/endpoints")
    by_css(browser, "#endpoint-groups button[name=revert]").click()
    wait_until(
        lambda: (
            lines(
                stack.metrics("dms_exporter_endpoint_enabled"),
                "dms_exporter_endpoint_enabled",
                '"groups"',
            )[0][1]
            == 1
        ),
        "groups is polled again, as dms.yml says",
    )


def test_search_and_page_20000_devices(stack, browser):
    from selenium.webdriver.common.keys import Keys

    browser.get(f"{stack.base}/console/devices")
    assert f"of {DEVICES // 50} · {DEVICES} rows" in by_css(browser, ".pager").text
    by_css(browser, "a[rel=next]").click()
    wait_until(lambda: "page 2 of" in by_css(browser, ".pager").text, "page 2")
    assert len(all_css(browser, "tr[data-device]")) == 50
    serial = all_css(browser, "tr[data-device] td")[4].text
    search = by_css(browser, "input[name=q]")
    search.send_keys(serial, Keys.ENTER)
    wait_until(lambda: "· 1 rows" in by_css(browser, ".pager").text, "one match for a serial")
    assert all_css(browser, "tr[data-device] td")[4].text == serial
    browser.get(f"{stack.base}/console/devices?state=online&sort=last_contact&desc=1&page=3")
    rows = all_css(browser, "tr[data-device]")
    assert len(rows) == 50
    assert {r.find_element("css selector", ".badge").text for r in rows} <= {"online"}
    assert console_errors(browser) == []


# --- the demo: intervals (5 s) shorter than refresh_min_gap (10 s) ----------------------------


@pytest.fixture(scope="module")
def demo() -> Iterator[str]:
    """``dms-exporter --demo`` as a process; yields its base URL."""
    port = free_port()
    exporter = _spawn(
        ["-m", "dms_exporter", "--demo", "--demo.devices", "100",
         "--web.listen-address", f"127.0.0.1:{port}"]
    )  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{port}/-/ready", timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        exporter.terminate()
        exporter.wait(timeout=15)


def test_refresh_on_the_demo_always_polls_or_says_when_it_polled(demo, browser):
    """Pressed every 2 s over 12 s (past the 10 s gap, across several 5 s scheduled polls):
    each press swaps in a row with either a newer last poll ("polled just now") or "polled N s
    ago"; never an error."""
    import re

    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    browser.get(f"{demo}/console/endpoints")
    row_css = "#endpoint-devices"
    for _ in range(6):
        started = time.monotonic()
        row = by_css(browser, row_css)
        before = float(by_css(browser, f"{row_css} .last-poll time").get_attribute("data-ts"))
        by_css(browser, f"{row_css} form[data-refresh] button").click()
        WebDriverWait(browser, WAIT).until(expected_conditions.staleness_of(row))
        note = wait_until(lambda: by_css(browser, f"{row_css} .note").text, "a note")
        after = float(by_css(browser, f"{row_css} .last-poll time").get_attribute("data-ts"))
        assert all_css(browser, f"{row_css} .error") == []
        assert not by_css(browser, f"{row_css} .last-error").text.startswith("refresh failed")
        if note == "polled just now":
            assert after > before
        else:
            assert re.fullmatch(
                r"polled \d+ s ago, within refresh_min_gap \(10s\): answered with that poll", note
            ), note
        time.sleep(max(0.0, started + 2.0 - time.monotonic()))  # pace the presses, not a wait
    assert console_errors(browser) == []


# -- hostile pages and a hostile DMS --------------------------------------------------------------
# A page of another site is served on 127.0.0.2: another origin and, for the browser, another
# site than the exporter on 127.0.0.1.


class _Handler(http.server.BaseHTTPRequestHandler):
    """A quiet request handler with one way to answer."""

    def reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serving(handler: type[_Handler], host: str) -> Iterator[int]:
    """``handler`` on ``host`` in a thread; its port."""
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def other_site(page: str) -> Iterator[str]:
    """``page`` (HTML) at ``/`` of another site; its URL."""

    class Page(_Handler):
        def do_GET(self) -> None:
            self.reply(200, [("Content-Type", "text/html; charset=utf-8")], page.encode())

    with serving(Page, "127.0.0.2") as port:
        yield f"http://127.0.0.2:{port}/"


@contextmanager
def origin_stripping_proxy(port: int) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A proxy in front of the exporter that drops ``Origin`` and ``Sec-Fetch-*`` (as some
    privacy proxies and extensions do), so a browser's request keeps only its ``Referer``; its
    URL and the headers of every POST it forwarded."""
    posts: list[dict[str, str]] = []
    hop_by_hop = {"connection", "keep-alive", "proxy-connection", "transfer-encoding"}

    class Proxy(_Handler):
        def forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {
                name: value
                for name, value in self.headers.items()
                if name.lower() not in hop_by_hop
                and name.lower() != "origin"
                and not name.lower().startswith("sec-fetch-")
            }
            if self.command == "POST":
                posts.append(headers)
            upstream = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            upstream.close()
            kept = [
                (name, value)
                for name, value in answer.getheaders()
                if name.lower() not in hop_by_hop | {"content-length"}
            ]
            self.reply(answer.status, kept, data)

        do_GET = do_POST = forward

    with serving(Proxy, "127.0.0.1") as proxy_port:
        yield f"http://127.0.0.1:{proxy_port}", posts


def endpoint_enabled(stack: Stack, endpoint: str) -> float:
    name = "dms_exporter_endpoint_enabled"
    return lines(stack.metrics(name), name, f'"{endpoint}"')[0][1]


def test_a_page_of_another_site_cannot_frame_the_console(stack, browser):
    frame = (
        f'<!doctype html><iframe id="console" src="{stack.base}/console/endpoints" width="900" '
        'height="500" onload="document.body.dataset.loaded = \'yes\'"></iframe>'
    )
    with other_site(frame) as site:
        browser.get(site)
        wait_until(
            lambda: by_css(browser, "body").get_attribute("data-loaded") == "yes",
            "the frame finished loading",
        )
        refusals = [e["message"] for e in console_errors(browser)]
        assert any("frame-ancestors 'none'" in message for message in refusals), refusals
        browser.switch_to.frame(by_css(browser, "iframe#console"))
        try:
            # Chromium shows its own error page in the frame: nothing of the console to click
            assert all_css(browser, "#endpoint-devices input[type=checkbox]") == []
            assert "Endpoints" not in browser.page_source
        finally:
            browser.switch_to.default_content()
    browser.get(f"{stack.base}/console/endpoints")  # the console itself still renders
    assert all_css(browser, "#endpoint-devices input[type=checkbox]")


def test_a_cross_site_post_with_only_a_referer_is_refused(stack, browser):
    assert endpoint_enabled(stack, "devices") == 1
    with origin_stripping_proxy(stack.port) as (proxy, posts):
        form = (
            f'<!doctype html><form method="post" action="{proxy}/console/endpoints/devices">'
            '<input type="hidden" name="enabled" value="false">'
            '<button id="prize">Claim your prize</button></form>'
        )
        with other_site(form) as site:
            browser.get(site)
            by_css(browser, "#prize").click()
            wait_until(
                lambda: "Forbidden: cross-origin request" in browser.page_source,
                "the exporter refused the post",
            )
        assert posts[-1]["Referer"].startswith(site.rstrip("/")) and "Origin" not in posts[-1]
        assert endpoint_enabled(stack, "devices") == 1
        # the same proxy lets the console's own edits through: their Referer is the console
        browser.get(f"{proxy}/console/endpoints")
        by_css(browser, "#endpoint-groups input[type=checkbox]").click()
        wait_until(lambda: endpoint_enabled(stack, "groups") == 0, "groups switched off")
        assert posts[-1]["Referer"].startswith(proxy) and "Origin" not in posts[-1]
        by_css(browser, "#endpoint-groups button[name=revert]").click()
        wait_until(lambda: endpoint_enabled(stack, "groups") == 1, "groups as dms.yml says")


@contextmanager
def dms_with_error(message_json: str) -> Iterator[str]:
    """A DMS that logs in and answers every other request with a 500 whose error message is
    ``message_json`` (JSON string content, escapes as sent); its API URL."""

    class Dms(_Handler):
        def answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.endswith("/auth/login"):
                status, body = 200, b'{"token": "Tk0123456789", "expiresIn": 3600}'
            else:
                status = 500
                body = b'{"error": {"code": "E", "message": "%s"}}' % message_json.encode()
            self.reply(status, [("Content-Type", "application/json")], body)

        do_GET = do_POST = answer

    with serving(Dms, "127.0.0.1") as port:
        yield f"http://127.0.0.1:{port}/dms-api/v1"


def test_a_dms_error_with_a_lone_surrogate_renders(tmp_path, browser):
    with dms_with_error("broken \\ud800 record") as dms_url:
        broken = Stack(dms_url, tmp_path / "dms.yml", free_port())
        write_config(broken, {})
        broken.start_exporter()
        try:
            console_errors(browser)  # read: what earlier tests left in the log is gone
            browser.get(f"{broken.base}/console/endpoints")
            row = wait_until(
                lambda: "broken ? record" in by_css(browser, "#endpoint-groups").text,
                "the groups row shows the DMS's error, the surrogate replaced",
            )
            assert row
            assert console_errors(browser) == []
        finally:
            stderr = broken.stop_exporter()
    assert "Traceback" not in stderr and "level=error" not in stderr
