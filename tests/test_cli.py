"""The command line, run as a real process: config check, bad config, demo, SIGHUP reload."""

from __future__ import annotations

import os
import shlex
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


def test_config_check_prints_one_line_per_mistake(tmp_path: Path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "dms: {url: ftp://dms/x, username: u, password: hunter2-secret, page_size: 0}\n"
        "endpoints: {devices: {interval: fast}}\n"
    )
    result = run_cli("--config.check", "--config.file", str(bad))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert [line.split(": ")[3] for line in lines] == [
        "dms.url",
        "dms.page_size",
        "endpoints.devices.interval",
    ], result.stderr
    assert all(line.startswith(f"dms-exporter: invalid configuration: {bad}: ") for line in lines)
    assert "hunter2" not in result.stderr + result.stdout


def test_config_check_accepts_a_good_config_without_showing_its_password(tmp_path: Path):
    good = tmp_path / "good.yml"
    good.write_text(
        "dms: {url: http://127.0.0.1:1/dms-api/v1, username: u, password: hunter2-secret}\n"
    )
    result = run_cli("--config.check", "--config.file", str(good))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"dms-exporter: configuration {good} is valid\n"
    assert result.stderr == ""


def test_example_config_checks_clean_with_the_command_in_its_header():
    """deploy/config.example.yml's header says how to check it; that command must pass."""
    deploy = Path(__file__).parent.parent / "deploy"
    header = (deploy / "config.example.yml").read_text().split("\n\n")[0]
    commands = [line[1:].strip() for line in header.splitlines() if "--config.check" in line]
    assert len(commands) == 1, header
    words = shlex.split(commands[0])
    env = dict(os.environ)
    env.pop("DMS_PASSWORD", None)
    while "=" in words[0]:
        name, _, setting = words.pop(0).partition("=")
        env[name] = setting
    assert words[0] == "dms-exporter"
    result = subprocess.run(
        [PYTHON, "-m", "dms_exporter", *words[1:]],
        cwd=deploy,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "is valid" in result.stdout


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


@pytest.fixture
def busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    ("case", "args", "expected"),
    [
        ("port in use", ["--web.listen-address", "127.0.0.1:{busy}"], "cannot listen on"),
        ("unknown host", ["--web.listen-address", "no-such-host.invalid:9"], "cannot listen on"),
        ("no demo devices", ["--demo.devices", "0"], "--demo.devices: must be a whole number"),
        ("bad address", ["--web.listen-address", "localhost"], "expected host:port"),
    ],
)
def test_start_up_failure_is_one_line_and_exit_1(busy_port, case, args, expected):
    args = [arg.replace("{busy}", str(busy_port)) for arg in args]
    result = run_cli("--demo", "--demo.devices", "5", *args, "--log.level", "warn")
    assert result.returncode == 1, case
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]


def test_temporary_files_of_saves_killed_before_their_rename_are_removed_at_start(
    tmp_path: Path, simulator_process: str
):
    """A kill -9 between writing a console save and renaming it leaves ``.<file>.XXXXXXXX``
    next to the state file (or the descriptions file): the next start removes it, and only it."""
    config = tmp_path / "dms.yml"
    config.write_text(
        f"dms: {{url: '{simulator_process}', username: monitor, password: monitor-secret,"
        " proxy: direct}\ndisplay_names: {file: names.yml}\n"
    )
    (tmp_path / "names.yml").write_text("dev-000001: From the file\n")
    (tmp_path / "dms.console.json").write_text('{"endpoints": {"groups": {"enabled": false}}}\n')
    leftovers = [tmp_path / ".dms.console.json.k9x_2abc", tmp_path / ".names.yml.0q1w2e3r"]
    for leftover in leftovers:
        leftover.write_text('{"endpoints": {"gro')  # cut short by the kill
    kept = [tmp_path / ".dms.console.json.bak", tmp_path / ".names.yml.too-long-suffix"]
    for other in kept:
        other.write_text("an operator's own file\n")
    port = free_port()
    proc = subprocess.Popen(
        [PYTHON, "-m", "dms_exporter", "--config.file", str(config),
         "--web.listen-address", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        body = wait_for(f"http://127.0.0.1:{port}/metrics")
        assert value(body, "dms_exporter_endpoint_enabled", endpoint="groups") == 0  # the edit
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=15)
    assert not any(leftover.exists() for leftover in leftovers)
    assert all(other.exists() for other in kept)
    lines = [line for line in stderr.splitlines() if "interrupted console saves" in line]
    assert len(lines) == 1 and all(str(leftover) in lines[0] for leftover in leftovers)
