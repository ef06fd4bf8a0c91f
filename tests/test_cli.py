"""The command line, run as a real process: config check, bad config, demo, SIGHUP reload."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import value

PYTHON = sys.executable


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "dms_exporter", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_for(url: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, body = http_get(url)
            if status == 200:
                return body
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not 200 within {timeout}s")


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert "dms-exporter" in result.stdout


def test_bad_config_exits_non_zero_naming_file_and_key(tmp_path: Path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "dms: {url: http://127.0.0.1:1/dms-api/v1, username: u, password: p}\n"
        "endpoints: {devices: {interval: fast}}\n"
    )
    for args in (["--config.file", str(bad)], ["--config.check", "--config.file", str(bad)]):
        result = run_cli(*args)
        assert result.returncode == 1
        assert "bad.yml" in result.stderr
        assert "endpoints.devices.interval" in result.stderr


def test_config_check_accepts_a_good_config(tmp_path: Path):
    good = tmp_path / "good.yml"
    good.write_text("dms: {url: http://127.0.0.1:1/dms-api/v1, username: u, password: p}\n")
    result = run_cli("--config.check", "--config.file", str(good))
    assert result.returncode == 0, result.stderr
    assert "p" not in result.stdout.replace("dms-exporter", "").split()


@pytest.fixture
def simulator_process():
    port = free_port()
    proc = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "dms_exporter.simulator",
            "--devices",
            "30",
            "--frozen",
            "--listen-address",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/_sim/state")
        yield f"http://127.0.0.1:{port}/dms-api/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_sighup_reload_applies_a_good_config_and_keeps_it_on_a_bad_one(
    tmp_path: Path, simulator_process: str
):
    config = tmp_path / "dms.yml"
    base = (
        f"dms: {{url: '{simulator_process}', username: monitor, password: monitor-secret,"
        " proxy: direct}\n"
    )
    config.write_text(base)
    port = free_port()
    proc = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "dms_exporter",
            "--config.file",
            str(config),
            "--web.listen-address",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_for(f"http://127.0.0.1:{port}/-/ready")
        body = wait_for(metrics)
        assert value(body, "dms_exporter_endpoint_enabled", endpoint="groups") == 1

        config.write_text(base + "endpoints: {groups: {enabled: false}}\n")
        os.kill(proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            body = wait_for(metrics)
            if value(body, "dms_exporter_endpoint_enabled", endpoint="groups") == 0:
                break
            time.sleep(0.2)
        assert value(body, "dms_exporter_endpoint_enabled", endpoint="groups") == 0
        assert value(body, "dms_exporter_config_last_reload_successful") == 1

        config.write_text(base + "endpoints: {groups: {enabled: maybe}}\n")
        os.kill(proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            body = wait_for(metrics)
            if value(body, "dms_exporter_config_last_reload_successful") == 0:
                break
            time.sleep(0.2)
        assert value(body, "dms_exporter_config_last_reload_successful") == 0
        assert value(body, "dms_exporter_endpoint_enabled", endpoint="groups") == 0
        assert value(body, "dms_exporter_endpoint_up", endpoint="devices") == 1
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=15)
    assert "monitor-secret" not in stderr
    assert "endpoints.groups.enabled" in stderr  # the rejected reload says why


def test_demo_serves_simulator_data():
    port = free_port()
    proc = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "dms_exporter",
            "--demo",
            "--demo.devices",
            "200",
            "--web.listen-address",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/-/ready")
        body = wait_for(f"http://127.0.0.1:{port}/metrics")
        from conftest import samples

        assert len(samples(body, "dms_device_info")) == 200
        assert samples(body, "dms_alarm_asserted_timestamp_seconds")
    finally:
        proc.terminate()
        proc.wait(timeout=15)
