"""Config loading: every invalid file names its key and problem; valid files fill every default."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dms_exporter.config import Envelope, config_from_mapping, demo_config, load_config
from dms_exporter.errors import ConfigError
from dms_exporter.model import ENDPOINT_DEFAULTS, ENDPOINTS
from dms_exporter.vocabulary import KNOWN_FIELDS

FIXTURES = Path(__file__).parent / "fixtures" / "config"
INVALID = sorted((FIXTURES / "invalid").glob("*.yml"))
VALID = FIXTURES / "valid"
EXAMPLE = Path(__file__).parent.parent / "deploy" / "config.example.yml"
SECRET = "s3cr3t-Pa55"  # the password every invalid fixture uses, where it has one


def minimal(**top: object) -> dict[str, object]:
    """The smallest valid mapping, with ``top`` keys added."""
    dms = {"url": "http://127.0.0.1:8080/dms-api/v1", "username": "monitor", "password": SECRET}
    return {"dms": dms, **top}


@pytest.fixture(autouse=True)
def _no_test_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DMS_EXPORTER_TEST_UNSET_PASSWORD", raising=False)


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_file_names_key_and_problem(path: Path) -> None:
    expected = path.with_suffix(".expected").read_text().strip()
    expected = expected.replace("{dir}", str(path.parent))
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert str(caught.value) == f"{path}: {expected}"
    assert SECRET not in str(caught.value)
    assert "31415926" not in str(caught.value)  # the password of password_wrong_type.yml


def test_every_invalid_fixture_has_its_expected_message() -> None:
    assert len(INVALID) >= 20
    expected = {p.stem for p in (FIXTURES / "invalid").glob("*.expected")}
    assert expected == {p.stem for p in INVALID}


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match=r"nope\.yml: cannot read: No such file"):
        load_config(str(FIXTURES / "nope.yml"))


def test_minimal_config_fills_every_endpoint_with_defaults() -> None:
    config = config_from_mapping(minimal(), "mem.yml")
    assert tuple(config.endpoints) == ENDPOINTS
    for name, (path, interval) in ENDPOINT_DEFAULTS.items():
        settings = config.endpoints[name]
        assert (settings.name, settings.path, settings.interval) == (name, path, interval)
        assert settings.enabled
        assert settings.timeout == min(interval * 0.8, interval - 1)
        assert settings.stale_after == 3 * interval
        assert settings.drop_after == 86400  # a day of old data is shown, then dropped
        assert settings.fields == {}
    assert config.endpoints["alarms"].params == {"state": "active"}
    assert config.endpoints["devices"].params == {}
    dms = config.dms
    assert (dms.auth, dms.login_path, dms.proxy, dms.proxy_url) == (
        "token",
        "/auth/login",
        "environment",
        None,
    )
    assert (dms.timeout, dms.page_size, dms.max_pages, dms.max_concurrency) == (10, 1000, 1000, 2)
    assert dms.tls.verify and dms.tls.ca_file is None
    assert config.display_names == {}
    assert config.allow_schedule_authorization
    assert config.alarm_retrieval == "active"
    assert config.source == "mem.yml"


def test_drop_after_from_defaults_per_endpoint_or_never() -> None:
    config = config_from_mapping(
        minimal(
            defaults={"drop_after": "2h"},
            endpoints={"alarms": {"drop_after": "never"}, "devices": {"drop_after": "3m"}},
        ),
        "mem.yml",
    )
    assert config.endpoints["groups"].drop_after == 7200
    assert config.endpoints["alarms"].drop_after is None  # held until the DMS answers
    assert config.endpoints["devices"].drop_after == 180  # = stale_after: the old behaviour
    with pytest.raises(ConfigError, match=r"endpoints\.alarms\.stale_after: must be a duration"):
        config_from_mapping(minimal(endpoints={"alarms": {"stale_after": "never"}}), "mem.yml")


def test_full_file_overrides() -> None:
    config = load_config(str(VALID / "full.yml"))
    dms = config.dms
    assert dms.url == "https://dms.example.net:8443/dms-api/v1"  # trailing slash dropped
    assert dms.password == "file-Pa55word"  # from password.txt, newline stripped
    assert (dms.auth, dms.login_path) == ("basic", "/api/login")
    assert (dms.proxy, dms.proxy_url) == ("url", "http://proxy.example.net:3128")
    assert not dms.tls.verify
    assert (dms.timeout, dms.page_size, dms.max_pages, dms.max_concurrency) == (1.5, 500, 50, 2)

    devices = config.endpoints["devices"]
    assert (devices.interval, devices.timeout, devices.stale_after) == (90, 60, 600)
    assert devices.path == "/edge-devices"
    assert devices.params == {"view": "full", "depth": "2"}
    assert devices.fields == {"connectionState": "status", "location.site": "siteName"}
    groups = config.endpoints["groups"]  # from defaults: interval 2m, stale_after 10m
    assert (groups.interval, groups.timeout, groups.stale_after) == (120, 96, 600)
    assert not config.endpoints["authorizations"].enabled
    alarms = config.endpoints["alarms"]
    assert alarms.interval == 30
    assert alarms.params == {"severity": "critical", "status": "open"}

    assert config.display_names == {
        "dev-000123": "KXYZ Denver (inline)",  # inline wins over the file
        "dev-000124": "KABC Boulder",
    }
    assert not config.allow_schedule_authorization


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("30s", 30), ("5m", 300), ("1h", 3600), ("2.5s", 2.5), (45, 45), (0.25, 0.25)],
)
def test_durations(text: object, seconds: float) -> None:
    config = config_from_mapping(minimal(dms={**minimal()["dms"], "timeout": text}), "m.yml")
    assert config.dms.timeout == seconds


def test_short_interval_gets_a_timeout_below_it() -> None:
    data = minimal(endpoints={"alarms": {"interval": "1s"}, "devices": {"interval": "2s"}})
    config = config_from_mapping(data, "m.yml")
    assert config.endpoints["alarms"].timeout == 0.5
    assert config.endpoints["devices"].timeout == 1.0


def test_retrieval_all_sends_no_state_param() -> None:
    config = config_from_mapping(minimal(alarms={"retrieval": "all"}), "m.yml")
    assert config.alarm_retrieval == "all"
    assert config.endpoints["alarms"].params == {}


def test_password_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DMS_TEST_PASSWORD", "env-Pa55")
    data = minimal()
    data["dms"] = {
        "url": "https://dms:8443/x",
        "username": "u",
        "password_env": "DMS_TEST_PASSWORD",
    }
    assert config_from_mapping(data, "m.yml").dms.password == "env-Pa55"


def test_password_file_relative_to_config(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("file-secret\r\n")
    (tmp_path / "c.yml").write_text(
        "dms: {url: 'http://dms/api', username: u, password_file: pw}\n"
    )
    assert load_config(str(tmp_path / "c.yml")).dms.password == "file-secret"


def test_password_never_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = config_from_mapping(minimal(), "m.yml")
    assert SECRET not in repr(config)
    assert SECRET not in str(config)
    monkeypatch.setenv("DMS_TEST_PASSWORD", SECRET)
    cases = [
        minimal(dms={**minimal()["dms"], "password": [SECRET]}),
        minimal(dms={**minimal()["dms"], "password_env": "DMS_TEST_PASSWORD"}),
        minimal(dms={**minimal()["dms"], "password": {"value": SECRET}}),
    ]
    for data in cases:
        with pytest.raises(ConfigError) as caught:
            config_from_mapping(data, "m.yml")
        assert SECRET not in str(caught.value)


def test_ca_file_relative_to_config(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not checked here\n")
    data = minimal(dms={**minimal()["dms"], "tls": {"ca_file": "ca.pem"}})
    config = config_from_mapping(data, str(tmp_path / "c.yml"))
    assert config.dms.tls.ca_file == str(tmp_path / "ca.pem")
    data["dms"]["tls"] = {"ca_file": "missing.pem"}  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"c\.yml: dms\.tls\.ca_file: no such file: .*missing"):
        config_from_mapping(data, str(tmp_path / "c.yml"))


def test_display_names_file_errors_name_that_file(tmp_path: Path) -> None:
    (tmp_path / "names.yml").write_text("dev-1: [a, b]\n")
    data = minimal(display_names={"file": "names.yml"})
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(data, str(tmp_path / "c.yml"))
    assert str(caught.value) == (
        f"{tmp_path / 'names.yml'}: entry 1: must have a text value (quote it), got a list"
    )


def test_demo_config() -> None:
    config = demo_config("http://127.0.0.1:9999/dms-api/v1", "demo", "demo-pw")
    assert config.source == "<demo>"
    assert config.dms.password == "demo-pw"
    assert config.dms.proxy == "direct"
    assert {s.interval for n, s in config.endpoints.items() if n != "alarms"} == {5}
    assert config.endpoints["alarms"].interval == 2
    assert all(s.timeout < s.interval for s in config.endpoints.values())
    tuned = demo_config("http://h/x", "u", "p", endpoints={"devices": {"enabled": False}})
    assert not tuned.endpoints["devices"].enabled
    assert tuned.endpoints["alarms"].interval == 2  # merged, not replaced


def test_every_problem_is_reported_in_one_run(tmp_path: Path) -> None:
    """Three mistakes in three sections: three lines, each naming the file and its key."""
    data = minimal(
        dms={**minimal()["dms"], "page_size": 0, "colour": "blue"},
        endpoints={"devices": {"interval": "fast"}},
    )
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(data, "m.yml")
    lines = str(caught.value).splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith("m.yml: dms.colour: unknown key (expected one of: url, username,")
    assert lines[1:] == [
        "m.yml: dms.page_size: must be from 1 to 1000, got 0",
        'm.yml: endpoints.devices.interval: must be a duration like "30s" or a number of seconds,'
        ' got "fast"',
    ]


@pytest.mark.parametrize("interval", [0, "1d", "fast", -5])
def test_a_bad_default_is_one_line_though_every_endpoint_takes_it(interval: Any) -> None:
    data = minimal(defaults={"interval": interval, "timeout": "0s"})
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(data, "m.yml")
    keys = [line.split(": ")[1] for line in str(caught.value).splitlines()]
    assert keys == ["defaults.interval", "defaults.timeout"]


def test_a_failing_section_does_not_hide_the_next(tmp_path: Path) -> None:
    """A broken dms section, a broken display names file and a bad top-level flag."""
    (tmp_path / "names.yml").write_text("dev-1: [a]\n")
    data = {
        "dms": "not a mapping",
        "display_names": {"file": "names.yml"},
        "allow_schedule_authorization": "yes",
        "endpoints": {"alarms": {"stale_after": "1s"}, "groups": {"fields": {"nope": "x"}}},
    }
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(data, str(tmp_path / "c.yml"))
    keys = [line.split(": ")[1] for line in str(caught.value).splitlines()]
    assert keys == [
        "dms",
        "endpoints.groups.fields.nope",
        "endpoints.alarms.stale_after",
        "entry 1",
        "allow_schedule_authorization",
    ]


def test_example_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DMS_PASSWORD", "example-pw")
    config = load_config(str(EXAMPLE))
    assert config.dms.password == "example-pw"
    assert tuple(config.endpoints) == ENDPOINTS


def test_docs_list_every_field_and_key() -> None:
    docs = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    for endpoint, fields in KNOWN_FIELDS.items():
        row = f"| `{endpoint}` | " + ", ".join(f"`{f}`" for f in fields) + " |"
        assert row in docs, endpoint
    keys = ["url", "username", "password_env", "password_file", "auth", "login_path", "proxy"]
    keys += ["tls.verify", "tls.ca_file", "page_size", "max_pages", "max_concurrency"]
    keys += ["enabled", "interval", "stale_after", "path", "params", "fields", "retrieval"]
    keys += ["active_params", "allow_schedule_authorization", "devices", "file"]
    keys += ["preset", "disable", "enable"]
    keys += ["login", "token_header", "api_key_header", "envelope", "paging", "values", "gate"]
    keys += ["items", "total", "style", "offset_param", "size_param", "page_param", "first_page"]
    keys += ["next_path", "next_header", "cursor_path", "cursor_param", "login.method"]
    keys += ["login.encoding", "login.username_field", "login.password_field", "login.token_path"]
    keys += ["login.expiry", "login.expiry_path", "token_header.name", "token_header.scheme"]
    keys += ["login.token_from", "login.token_header"]
    keys += ["skipped_above", "bad_values_above", "last_good_below"]
    for key in keys:
        assert f"`{key}`" in docs, key


def test_the_worked_shape_examples_in_the_docs_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    """Django REST framework, JSON:API, Spring Data and a Java appliance, as
    docs/configuration.md shows them."""
    monkeypatch.setenv("DMS_PASSWORD", "pw")
    docs = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", docs, re.DOTALL)
    # (the bare-array examples, two documents in one block, are probed in test_probe.py)
    shaped = [
        yaml.safe_load(b) for b in blocks if "envelope:" in b and "url:" in b and "---" not in b
    ]
    assert len(shaped) == 4
    drf, jsonapi, spring, appliance = (config_from_mapping(data, "docs.yml") for data in shaped)
    assert drf.endpoints["devices"].envelope == Envelope(items="results", total="count")
    assert drf.endpoints["devices"].paging.style == "next"
    assert jsonapi.endpoints["alarms"].paging.page_param == "page[number]"
    assert jsonapi.endpoints["alarms"].paging.params == ("page[size]", "page[number]")
    assert spring.endpoints["devices"].paging.first_page == 0
    assert spring.endpoints["alarms"].paging.style == "none"
    assert spring.dms.login.token_path == "access_token"
    assert appliance.dms.login.token_from == "cookie"
    assert appliance.endpoints["alarms"].values["state"] == {"true": "ACTIVE", "false": "CLEARED"}
