"""The last good tables on disk: written when a poll changes them, read back at start, and any
file that is not ours ignored with one log line."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from conftest import exporter_config, samples, scrape, value

from dms_exporter.__main__ import snapshot_directory
from dms_exporter.model import Alarm, Device, Table
from dms_exporter.polling import snapshot

DMS = "http://127.0.0.1:8480/dms-api/v1"
NOW = 1_700_000_000.0  # in the past: a file time is never taken from the future


def alarms(at: float = NOW) -> Table:
    rows = (
        Alarm("al-1", "dev-1", "device", "DVB-S2 Input 1", "SIGNAL_LOSS", "Signal lost",
              "critical", "active", at - 60, None, False),
        Alarm("al-2", "", "dms", "", "OTA_COMMAND_FAILED", "", "major", "active", None, None,
              True),
    )  # fmt: skip
    return Table("alarms", rows, at)


def devices(at: float = NOW) -> Table:
    rows = (
        Device("dev-1", "KXYZ Denver", "000123", "PV-1", "00:0E:5C:12:34:56", "ProView 8130",
               "ird", "1.8.1", "online", "dms", at - 5, ("grp-1", "grp-2"), "Denver", "US-West",
               "authorized"),
    )  # fmt: skip
    return Table("devices", rows, at)


def test_a_table_comes_back_as_it_was_written(tmp_path: Path) -> None:
    snapshot.save(tmp_path, alarms(), True, DMS, {"al-2": NOW - 30})
    snapshot.save(tmp_path, devices(), True, DMS)
    kept = snapshot.read(tmp_path, "alarms", DMS)
    assert kept is not None
    assert kept.table == alarms()
    assert kept.first_seen == {"al-2": NOW - 30}
    back = snapshot.read(tmp_path, "devices", DMS)
    assert back is not None and back.table == devices()  # group ids a tuple again
    # written whole and renamed: no temporary file left, readable by the owner only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alarms.json.gz", "devices.json.gz"]
    assert (tmp_path / "alarms.json.gz").stat().st_mode & 0o777 == 0o600


def test_a_poll_that_found_the_same_rows_only_moves_the_read_time(tmp_path: Path) -> None:
    snapshot.save(tmp_path, alarms(), True, DMS)
    written = (tmp_path / "alarms.json.gz").read_bytes()
    snapshot.save(tmp_path, alarms(NOW + 600), False, DMS)
    assert (tmp_path / "alarms.json.gz").read_bytes() == written
    kept = snapshot.read(tmp_path, "alarms", DMS)
    assert kept is not None and kept.table.fetched_at == NOW + 600
    assert kept.table.rows == alarms().rows


def document(**changes: Any) -> bytes:
    data = json.loads(gzip.decompress(snapshot.encode(alarms(), DMS)))
    return gzip.compress(json.dumps({**data, **changes}).encode())


def row(**changes: Any) -> list[Any]:
    values = list(dataclasses.astuple(alarms().rows[0]))
    names = [f.name for f in dataclasses.fields(Alarm)]
    for name, new in changes.items():
        values[names.index(name)] = new
    return values


NOT_OURS = {
    "random bytes": b"\x00\x01 not gzip at all",
    "truncated": snapshot.encode(alarms(), DMS)[:-20],
    "not JSON": gzip.compress(b"alarms: [1, 2"),
    "a JSON list": gzip.compress(b"[1, 2, 3]"),
    "another format": document(format="prometheus-snapshot"),
    "another version": document(version=snapshot.VERSION + 1),
    "another endpoint": document(endpoint="devices"),
    "another DMS": document(dms="http://other-dms:8480/dms-api/v1"),
    "other fields": document(fields=["id", "code"]),
    "a row too short": document(rows=[row()[:3]]),
    "a text for a time": document(rows=[row(asserted_time="yesterday")]),
    "a number for a text": document(rows=[row(code=7)]),
    "no time": document(fetched_at=None),
    "an endless time": gzip.compress(
        json.dumps(json.loads(gzip.decompress(document())))
        .replace(f'"fetched_at": {NOW}', '"fetched_at": Infinity')
        .encode()
    ),
}


@pytest.mark.parametrize("content", NOT_OURS.values(), ids=NOT_OURS.keys())
def test_a_file_that_is_not_ours_is_ignored_with_one_log_line(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "alarms.json.gz").write_bytes(content)
    assert snapshot.read(tmp_path, "alarms", DMS) is None
    [record] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.getMessage() == "snapshot file ignored"
    assert record.endpoint == "alarms"  # type: ignore[attr-defined]


def test_a_file_over_the_size_limit_is_not_read_or_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    snapshot.save(tmp_path, alarms(), True, DMS)
    monkeypatch.setattr(snapshot, "MAX_BYTES", 100)
    assert snapshot.read(tmp_path, "alarms", DMS) is None
    assert "more than 100 bytes" in caplog.records[-1].problem  # type: ignore[attr-defined]
    with pytest.raises(snapshot.SnapshotError):
        snapshot.save(tmp_path, devices(), True, DMS)
    assert not (tmp_path / "devices.json.gz").exists()


def test_no_file_is_no_snapshot_and_no_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert snapshot.read(tmp_path / "never-made", "alarms", DMS) is None
    assert not caplog.records


def test_where_the_snapshot_lives_by_default() -> None:
    assert snapshot_directory(None, "/etc/dms/dms.yml") == Path("/etc/dms/dms.snapshot")
    assert snapshot_directory("/var/lib/dms-exporter/snapshot", "dms.yml") == Path(
        "/var/lib/dms-exporter/snapshot"
    )
    assert snapshot_directory("", "dms.yml") is None  # switched off
    assert snapshot_directory(None, None) is None  # --demo


# -- the exporter: written as it polls, shown at start -----------------------------------------


async def eventually(check: Any, seconds: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check():
        assert loop.time() < deadline, "not true in time"
        await asyncio.sleep(0.05)


async def test_a_restarted_exporter_shows_the_last_alarms_before_it_can_poll(
    simulator, start_exporter, tmp_path
):
    alarm = simulator.raise_alarm("dev-000001", "CRITICAL", "SIGNAL_LOSS", "DVB-S2 Input 1")
    config = exporter_config(simulator)
    first = await start_exporter(config, snapshot_dir=tmp_path)
    before = samples(await scrape(first), "dms_alarm_asserted_timestamp_seconds")
    assert alarm["id"] in {labels["alarm_id"] for labels, _ in before}
    # written as the polls changed the tables, not only at a clean stop (a kill -9 loses nothing)
    await eventually(lambda: (tmp_path / "alarms.json.gz").exists())
    await eventually(lambda: (tmp_path / "devices.json.gz").exists())
    await first.close()

    # the DMS cannot be reached now: the exporter starts with what it had
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        unreachable = dataclasses.replace(
            config,
            dms=dataclasses.replace(config.dms, url=f"http://127.0.0.1:{port}/dms-api/v1"),
        )
        # the snapshot is of the simulator's URL: keep it for this test
        for path in tmp_path.glob("*.json.gz"):
            data = json.loads(gzip.decompress(path.read_bytes()))
            data["dms"] = unreachable.dms.url
            path.write_bytes(gzip.compress(json.dumps(data).encode()))
            os.utime(path, (data["fetched_at"], data["fetched_at"]))
        second = await start_exporter(unreachable, snapshot_dir=tmp_path, wait_ready=False)
        body = await scrape(second)
    assert samples(body, "dms_alarm_asserted_timestamp_seconds") == before
    assert value(body, "dms_exporter_endpoint_data_restored", endpoint="alarms") == 1
    assert value(body, "dms_exporter_endpoint_data_age_seconds", endpoint="alarms") >= 0
    assert samples(body, "dms_device_info")


async def test_the_first_poll_replaces_a_restored_table(simulator, start_exporter, tmp_path):
    config = exporter_config(simulator)
    stale = Table("alarms", alarms().rows, NOW)  # of long ago, of another world
    snapshot.save(tmp_path, stale, True, config.dms.url)
    client = await start_exporter(
        config, snapshot_dir=tmp_path
    )  # ready: every endpoint polled once
    body = await scrape(client)
    ids = {
        labels["alarm_id"] for labels, _ in samples(body, "dms_alarm_asserted_timestamp_seconds")
    }
    assert "al-1" not in ids
    assert value(body, "dms_exporter_endpoint_data_restored", endpoint="alarms") == 0
    assert value(body, "dms_exporter_endpoint_stale", endpoint="alarms") == 0
