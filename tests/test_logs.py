"""Log lines: real logfmt fields and JSON keys, levels named as the flag names them, a known
secret never printed whatever a caller logs, and one line per change of polling state."""

from __future__ import annotations

import json
import logging
import re

import pytest
from conftest import exporter_config

from dms_exporter.exporter import Exporter
from dms_exporter.logs import setup_logging
from dms_exporter.model import ENDPOINTS
from dms_exporter.web.app import EXPORTER_KEY

_PAIR = re.compile(r'([^\s="]+)=("(?:[^"\\]|\\.)*"|[^\s="]*)(?: |$)')


def parse_logfmt(line: str) -> dict[str, str]:
    """A strict logfmt parser: ``key=value`` or ``key="json-escaped value"``, one space apart;
    anything else in the line fails the test."""
    fields: dict[str, str] = {}
    position = 0
    while position < len(line):
        match = _PAIR.match(line, position)
        assert match, f"not logfmt at {position}: {line[position:]!r} in {line!r}"
        key, raw = match.groups()
        assert key not in fields, f"{key} twice in {line!r}"
        fields[key] = json.loads(raw) if raw.startswith('"') else raw
        position = match.end()
    return fields


@pytest.fixture
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def emit_failure() -> None:
    logging.getLogger("dms_exporter.test").warning(
        "endpoint failing",
        extra={"endpoint": "devices", "reason": "timeout", "error": 'said "no" = nope\nhunter2'},
    )


def test_logfmt_fields_parse_into_endpoint_and_reason(capsys, restore_root_logger):
    setup_logging("info", "logfmt", ["hunter2"])
    emit_failure()
    line = capsys.readouterr().err.strip()
    fields = parse_logfmt(line)
    assert fields["level"] == "warn"
    assert fields["logger"] == "dms_exporter.test"
    assert fields["msg"] == "endpoint failing"
    assert (fields["endpoint"], fields["reason"]) == ("devices", "timeout")
    assert fields["error"] == 'said "no" = nope\n<secret>'  # quoted, escaped, masked
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", fields["ts"])


def test_json_fields_are_real_keys(capsys, restore_root_logger):
    setup_logging("debug", "json", ["hunter2"])
    emit_failure()
    logging.getLogger("dms_exporter.test").debug("token", extra={"token": "hunter2", "rows": 3})
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert first["level"] == "warn"
    assert (first["msg"], first["endpoint"], first["reason"]) == (
        "endpoint failing",
        "devices",
        "timeout",
    )
    assert "hunter2" not in json.dumps(first)
    assert (second["level"], second["token"], second["rows"]) == ("debug", "<secret>", 3)


def test_log_level_warn_hides_info_and_names_the_level_as_the_flag(capsys, restore_root_logger):
    setup_logging("warn", "logfmt")
    logger = logging.getLogger("dms_exporter.test")
    logger.info("not shown at warn")
    logger.warning("shown")
    logger.error("shown too")
    levels = [parse_logfmt(line)["level"] for line in capsys.readouterr().err.splitlines()]
    assert levels == ["warn", "error"]


def test_secret_in_message_args_and_a_later_password_is_masked(capsys, restore_root_logger):
    secrets = setup_logging("info", "logfmt", ["hunter2"])
    logging.getLogger("dms_exporter.test").warning("login failed for %s with %s", "bob", "hunter2")
    secrets.secrets.add("rotated-pw")  # a reload teaches it the new password
    logging.getLogger("dms_exporter.test").info("url", extra={"url": "http://bob:rotated-pw@dms"})
    first, second = map(parse_logfmt, capsys.readouterr().err.splitlines())
    assert first["msg"] == "login failed for bob with <secret>"
    assert second["url"] == "http://bob:<secret>@dms"


def test_secret_in_a_traceback_is_masked(capsys, restore_root_logger):
    setup_logging("info", "logfmt", ["hunter2"])
    try:
        raise ValueError("bad password hunter2")
    except ValueError:
        logging.getLogger("dms_exporter.test").exception("failed")
    fields = parse_logfmt(capsys.readouterr().err.strip())
    assert "ValueError: bad password <secret>" in fields["exc"]
    assert "hunter2" not in fields["exc"]


def test_a_field_named_like_a_line_key_does_not_replace_it(capsys, restore_root_logger):
    setup_logging("info", "json")
    logging.getLogger("dms_exporter.test").info("x", extra={"level": "custom", "ts": 1})
    entry = json.loads(capsys.readouterr().err)
    assert (entry["level"], entry["level_"], entry["ts_"]) == ("info", "custom", 1)


async def test_unreachable_dms_gives_one_summary_line_then_ready(
    simulator, tmp_path, capsys, restore_root_logger
):
    """Every endpoint fails to connect: one ``DMS unreachable`` line, not one per endpoint;
    then ``ready`` with each endpoint's first-poll duration; then one line when it is back."""
    setup_logging("info", "logfmt")
    dms = {"url": "http://127.0.0.1:9/dms-api/v1", "username": "u", "password": "p"}
    config_file = tmp_path / "dms.yml"
    config_file.write_text(json.dumps({"dms": {**dms, "proxy": "direct"}}))
    exporter = Exporter(exporter_config(simulator, dms=dms), config_file=str(config_file))
    await exporter.start()
    try:
        for name in ENDPOINTS:
            await exporter.refresh(name)
        good = {"url": simulator.base_url, "username": simulator.username}
        good["password"] = simulator.password
        # refresh_min_gap 0: the new pollers have just polled, the refreshes below poll again
        new = {"dms": {**good, "proxy": "direct"}, "refresh_min_gap": 0}
        config_file.write_text(json.dumps(new))
        assert await exporter.reload()
        for name in ENDPOINTS:
            assert (await exporter.refresh(name)).status.up
    finally:
        await exporter.stop()
    lines = [parse_logfmt(line) for line in capsys.readouterr().err.splitlines()]
    polling = [f for f in lines if f["logger"] == "dms_exporter.polling"]
    assert [f["msg"] for f in polling] == ["DMS unreachable", "ready", "DMS reachable"], polling
    assert polling[0]["reason"] == "connection" and polling[0]["endpoint"] in ENDPOINTS
    assert polling[1]["failing"].split(",") == list(ENDPOINTS)
    assert all(float(polling[1][f"{name}_seconds"]) >= 0 for name in ENDPOINTS)


async def test_a_failing_endpoint_logs_one_json_line_with_endpoint_and_reason(
    simulator, start_exporter, capsys, restore_root_logger
):
    setup_logging("info", "json")
    client = await start_exporter(exporter_config(simulator))
    exporter = client.server.app[EXPORTER_KEY]
    simulator.add_fault("devices", "status", status=503)
    for _ in range(3):
        assert not (await exporter.refresh("devices")).status.up
    simulator.clear_faults()
    assert (await exporter.refresh("devices")).status.up
    entries = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    about_devices = [e for e in entries if e.get("endpoint") == "devices"]
    assert [(e["level"], e["msg"]) for e in about_devices] == [
        ("warn", "endpoint failing"),
        ("info", "endpoint recovered"),
    ]
    assert about_devices[0]["reason"] == about_devices[1]["reason"] == "unavailable"
