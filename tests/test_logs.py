"""Log lines: logfmt and JSON, and a known secret never printed whatever a caller logs."""

from __future__ import annotations

import json
import logging

import pytest

from dms_exporter.logs import setup_logging


@pytest.fixture
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_logfmt_line_and_secret_masked(capsys, restore_root_logger):
    secrets = setup_logging("info", "logfmt", ["hunter2"])
    logging.getLogger("dms_exporter.test").warning("login failed for %s with %s", "bob", "hunter2")
    secrets.secrets.add("rotated-pw")  # a reload teaches it the new password
    logging.getLogger("dms_exporter.test").info("url=http://bob:rotated-pw@dms")
    logging.getLogger("dms_exporter.test").debug("not shown at info")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert "level=warning logger=dms_exporter.test" in lines[0]
    assert 'msg="login failed for bob with <secret>"' in lines[0]
    assert "rotated-pw" not in lines[1] and "<secret>" in lines[1]


def test_secret_in_a_traceback_is_masked(capsys, restore_root_logger):
    setup_logging("info", "logfmt", ["hunter2"])
    try:
        raise ValueError("bad password hunter2")
    except ValueError:
        logging.getLogger("dms_exporter.test").exception("failed")
    err = capsys.readouterr().err
    assert "ValueError: bad password <secret>" in err.replace("\\n", "\n")
    assert "hunter2" not in err


def test_json_lines(capsys, restore_root_logger):
    setup_logging("debug", "json", ["hunter2"])
    logging.getLogger("dms_exporter.test").debug("token %s", "hunter2")
    entry = json.loads(capsys.readouterr().err.strip())
    assert entry["level"] == "debug"
    assert entry["msg"] == "token <secret>"
    assert entry["ts"].endswith("Z")
