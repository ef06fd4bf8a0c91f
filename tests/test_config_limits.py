"""Hostile or broken config files: each is one message naming the problem, never a traceback,
never a word of a file that may hold the password; a reload keeps the running config."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import run_cli

from dms_exporter.config import load_config
from dms_exporter.config.load import MAX_YAML_BYTES
from dms_exporter.errors import ConfigError
from dms_exporter.exporter import Exporter

PASSWORD = "Zq7-hunter2-Lm9x"
GOOD = f"dms:\n  url: http://127.0.0.1:9/dms-api/v1\n  username: monitor\n  password: {PASSWORD}\n"


def deep_yaml(levels: int) -> str:
    return GOOD + "display_names:\n  devices:\n    x: " + "[" * levels + "]" * levels + "\n"


BAD = {
    "deep": (deep_yaml(1000), "invalid YAML: nested deeper than 100 levels"),
    "bad_ipv6_url": (
        GOOD.replace("http://127.0.0.1:9", "http://[::1"),
        'dms.url: is not a valid URL (Invalid IPv6 URL), got "http://[::1/dms-api/v1"',
    ),
    "bad_proxy_url": (
        GOOD + "  proxy: http://[::1\n",
        'dms.proxy: is not a valid URL (Invalid IPv6 URL), got "http://[::1"',
    ),
    "duplicate_key": (
        GOOD + "  username: other\n",
        "line 5, column 3: invalid YAML: duplicate key 'username'",
    ),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_file_is_one_message(tmp_path: Path, name: str) -> None:
    text, message = BAD[name]
    path = tmp_path / "dms.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert str(caught.value) == f"{path}: {message}"


def test_yaml_within_the_depth_limit_loads(tmp_path: Path) -> None:
    path = tmp_path / "dms.yml"
    path.write_text(GOOD + "endpoints:\n  devices:\n    params:\n      a: " + "x" + "\n")
    assert load_config(str(path)).endpoints["devices"].params == {"a": "x"}
    path.write_text(deep_yaml(90))  # parses; then rejected as a wrong type, by name
    with pytest.raises(ConfigError, match=r"display_names\.devices\.x: must be a string"):
        load_config(str(path))


def test_display_names_file_that_is_the_password_file_is_not_echoed(tmp_path: Path) -> None:
    for content in (PASSWORD, f"'{PASSWORD}", f"!{PASSWORD} x", f"{PASSWORD}: [1]"):
        (tmp_path / "password").write_text(content + "\n")
        path = tmp_path / "dms.yml"
        path.write_text(GOOD + "display_names:\n  file: password\n")
        with pytest.raises(ConfigError) as caught:
            load_config(str(path))
        assert str(caught.value).startswith(f"{tmp_path / 'password'}: "), caught.value
        for i in range(len(PASSWORD) - 5):
            assert PASSWORD[i : i + 6] not in str(caught.value), (content, caught.value)


def test_cli_exits_1_with_one_line_for_each_bad_file(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yml"
    with huge.open("w") as f:  # 50 MB of valid YAML
        f.write(GOOD + "display_names:\n  devices:\n")
        line = "    d%07d: " + "n" * 40 + "\n"
        f.writelines(line % i for i in range(50 * (1 << 20) // len(line % 0)))
    assert huge.stat().st_size > 5 * MAX_YAML_BYTES
    files = {"huge": (huge, "larger than 10 MiB, refused")}
    for name, (text, message) in BAD.items():
        path = tmp_path / f"{name}.yml"
        path.write_text(text)
        files[name] = (path, message)
    for path, message in files.values():
        result = run_cli("--config.check", "--config.file", str(path))
        assert result.returncode == 1, result
        assert result.stderr == f"dms-exporter: invalid configuration: {path}: {message}\n"
        assert "Traceback" not in result.stderr + result.stdout


async def test_reload_of_each_bad_file_keeps_the_running_config(tmp_path: Path) -> None:
    path = tmp_path / "dms.yml"
    path.write_text(GOOD)
    exporter = Exporter(load_config(str(path)), config_file=str(path))
    running = exporter.config
    for text, message in BAD.values():
        path.write_text(text)
        assert await exporter.reload() is False
        assert exporter.config is running
        assert exporter.reload_error == f"{path}: {message}"  # what POST /-/reload answers
    assert exporter.store.config_reload_ok is False
