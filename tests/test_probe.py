"""``dms-exporter --probe`` against the simulator: it names each mismatch between the DMS and the
config and suggests the fix; its exit status says whether every endpoint yields rows with ids;
it never shows the password or a token."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from dms_exporter.simulator import Simulator, start_simulator


async def run_probe(sim: Simulator, tmp_path: Path, *flags: str, **top: Any) -> tuple[int, str]:
    config = {
        "dms": {
            "url": sim.base_url,
            "username": sim.username,
            "password": sim.password,
            "proxy": "direct",
            "page_size": 10,
        },
        **top,
    }
    path = tmp_path / "probe.yml"
    path.write_text(yaml.safe_dump(config))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dms_exporter", "--probe", f"--config.file={path}", *flags,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    text = out.decode()
    assert sim.password not in text
    for token in sim.auth._tokens:
        assert token not in text
    assert proc.returncode is not None
    return proc.returncode, text


async def test_probe_names_three_mismatches_and_suggests_each_fix(tmp_path: Path) -> None:
    renamed = {"devices": {"connectionState": "connState"}}
    async with start_simulator(devices=30, seed=3, frozen=True, field_names=renamed) as sim:
        sim.set_device("dev-000001", controlMode="REMOTE")
        rc, out = await run_probe(
            sim, tmp_path, endpoints={"groups": {"envelope": {"items": "data"}}}
        )
    assert rc == 1
    # 1. a renamed field: never found, and the unread field suggested as its rename
    assert "connectionState       0.0%  -" in out
    assert "not read: connState: rename with fields: {connectionState: connState}" in out
    # 2. an enum word the exporter does not know, with its count
    assert "unknown controlMode values: 'REMOTE' x1 (map them in values.controlMode)" in out
    # 3. a wrong items path: the keys the answer has and where the list really is
    assert (
        "groups: GET " in out
        and "no list at 'data' in the answer (its keys: items, limit, offset, total); a list is "
        "at 'items' (set envelope.items)"
        in out
    )
    assert out.rstrip().endswith("FAIL: groups")


async def test_probe_of_a_matching_config_exits_0_and_speaks_json(tmp_path: Path) -> None:
    renamed = {"devices": {"connectionState": "connState"}}
    async with start_simulator(devices=30, seed=3, frozen=True, field_names=renamed) as sim:
        endpoints = {"devices": {"fields": {"connectionState": "connState"}}}
        rc, out = await run_probe(
            sim, tmp_path, "--probe.format=json", "--probe.pages=2", endpoints=endpoints
        )
    assert rc == 0, out
    report = json.loads(out)
    assert report["ok"] is True and report["logins"]["success"] == 1
    devices = next(e for e in report["endpoints"] if e["endpoint"] == "devices")
    assert (devices["pages"], devices["rows"], devices["rows_with_id"]) == (2, 20, 20)
    state = next(f for f in devices["fields"] if f["name"] == "connectionState")
    assert (state["path"], state["found"], state["types"]) == ("connState", 20, ["string"])
    assert devices["unknown_values"] == {} and "connState" not in devices["unused_fields"]


async def test_probe_exits_1_when_an_endpoint_fails(tmp_path: Path) -> None:
    async with start_simulator(devices=5, seed=3, frozen=True) as sim:
        sim.add_fault("destinations", "status", status=404)
        rc, out = await run_probe(sim, tmp_path)
    assert rc == 1
    assert "destinations: GET " in out and "-> HTTP 404, http_error" in out
