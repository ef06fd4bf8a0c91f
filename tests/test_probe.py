"""``dms-exporter --probe`` against the simulator: it names each mismatch between the DMS and the
config and suggests the fix; its exit status says whether every endpoint yields rows with ids;
it never shows the password or a token."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dms_exporter.simulator import Simulator, start_simulator
from dms_exporter.simulator.shapes import ListShape


async def run_probe(
    sim: Simulator, tmp_path: Path, *flags: str, dms: dict[str, Any] | None = None, **top: Any
) -> tuple[int, str]:
    config = {
        "dms": {
            "url": sim.base_url,
            "username": sim.username,
            "password": sim.password,
            "proxy": "direct",
            "page_size": 10,
            **(dms or {}),
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


SPRING = {
    "envelope": {"items": "content", "total": "totalElements"},
    "paging": {"style": "page", "page_param": "page", "size_param": "size", "first_page": 0},
}


async def test_probe_fails_a_walk_short_of_the_dms_total_naming_first_page(tmp_path: Path) -> None:
    """Pages counted from 0, first_page left at 1: the walk misses the first page. --probe
    reads on to the end, compares with the DMS's count and names the key."""
    paging = {**SPRING["paging"]}
    del paging["first_page"]
    async with start_simulator(devices=30, seed=3, frozen=True, list_shape="spring") as sim:
        rc, out = await run_probe(sim, tmp_path, dms={**SPRING, "paging": paging})
    assert rc == 1
    assert "-> HTTP 200, incomplete, " in out and "3 page(s), 20 rows of 30" in out
    assert (
        "verdict: FAIL: the walk ended after 3 pages with 20 of the 30 items the DMS reports at "
        "'totalElements'; check paging: first_page is 1 (does the DMS count pages from 0? then "
        "paging.first_page: 0)"
    ) in out
    assert out.rstrip().endswith(
        "FAIL: devices, groups, services, authorization_sets, "
        "schedule_authorizations, authorizations, destinations, alarms"
    )


async def test_probe_fails_an_items_path_without_the_dms_paging(tmp_path: Path) -> None:
    """--probe's own advice taken alone (envelope.items, paging left at offset): the DMS sends
    its first 100 devices of 150 whatever offset and limit say. No more "OK: 100 of 100"."""
    dms = {"envelope": {"items": "content"}, "page_size": 1000}
    async with start_simulator(devices=150, seed=3, frozen=True, list_shape="spring") as sim:
        rc, out = await run_probe(sim, tmp_path, dms=dms)
    assert rc == 1
    assert "1 page(s), 100 rows of 150" in out
    assert (
        "FAIL: the walk ended after 1 page with 100 of the 150 items the DMS reports at "
        "'totalElements' (envelope.total 'total' is not in the answer: set it to "
        "'totalElements'); check paging: the first page held 100 items where 1000 were asked "
        "for with offset_param 'offset' and size_param 'limit' (a DMS that numbers its pages "
        "needs paging: {style: page, page_param: ..., first_page: 0 or 1})"
    ) in out


async def test_probe_of_the_right_paging_sees_the_whole_list_or_its_total(tmp_path: Path) -> None:
    async with start_simulator(devices=30, seed=3, frozen=True, list_shape="spring") as sim:
        rc, out = await run_probe(sim, tmp_path, dms=SPRING)
        assert rc == 0, out
        assert "3 page(s), 30 rows\n" in out  # the whole list: no "of" a total
        rc, out = await run_probe(sim, tmp_path, "--probe.pages=1", dms=SPRING)
    assert rc == 0, out
    assert "1 page(s), 10 rows of 30" in out
    assert (
        "verdict: OK: 10 of 10 rows with an id (the first page of the 30 the DMS reports: "
        "--probe.pages)" in out
    )


@pytest.mark.parametrize(("document", "served"), [(0, "bare"), (1, "link")])
async def test_the_docs_bare_array_examples_pass_probe(
    tmp_path: Path, document: int, served: str
) -> None:
    """docs/configuration.md's two configurations for a DMS answering bare arrays, each against
    a simulator answering that way: --probe reads every list whole and exits 0."""
    docs = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", docs, re.DOTALL) if "bare" in b)
    dms = list(yaml.safe_load_all(block))[document]["dms"]
    shape = {k: v for k, v in dms.items() if k not in ("url", "username", "password_env")}
    async with start_simulator(devices=25, seed=3, frozen=True, list_shape=served) as sim:
        rc, out = await run_probe(sim, tmp_path, "--probe.format=json", dms=shape)
        truth = sim.world.counts()
    assert rc == 0, out
    report = {e["endpoint"]: e for e in json.loads(out)["endpoints"]}
    assert report["devices"]["rows"] == report["devices"]["rows_with_id"] == truth["devices"]
    assert report["authorizations"]["rows"] == truth["authorizations"]
    assert report["devices"]["pages"] == (1 if served == "bare" else 3)  # 10 a page


async def test_probe_warns_of_a_login_answer_without_its_expiry(tmp_path: Path) -> None:
    async with start_simulator(devices=5, seed=3, frozen=True) as sim:
        sim.add_fault("login", "missing_fields", fields=["expiresIn"])
        rc, out = await run_probe(sim, tmp_path)
        assert rc == 0, out  # a warning, not a failure: every endpoint answered
        assert out.splitlines()[1] == (
            "warning: the login answer has no expiry at 'expiresIn' (dms.login.expiry_path, "
            "expiry: seconds): the token is kept until a call is refused; set "
            "login.expiry_path to where the answer keeps it, or login.expiry: none"
        )
        rc, out = await run_probe(sim, tmp_path, dms={"login": {"expiry": "none"}})
    assert rc == 0 and "warning" not in out


@pytest.mark.parametrize(("served_from", "fails"), [(0, True), (1, False)])
async def test_probe_asks_for_page_0_when_no_count_can_tell(
    tmp_path: Path, served_from: int, fails: bool
) -> None:
    """Page numbers and no total anywhere: --probe asks for page 0 once. A DMS counting from 0
    answers it with the items the walk from page 1 missed: FAIL naming first_page. A DMS
    counting from 1 refuses it (400): OK."""
    served = ListShape(items="content", total=None, paging="page", first_page=served_from)
    dms = {
        "envelope": {"items": "content", "total": None},
        "paging": {"style": "page", "page_param": "page", "size_param": "size"},
    }
    async with start_simulator(devices=25, seed=3, frozen=True, list_shape=served) as sim:
        rc, out = await run_probe(sim, tmp_path, dms=dms)
    assert rc == (1 if fails else 0), out
    missed = (
        "verdict: FAIL: page 0 answers 10 items that page 1 does not start with: the DMS counts "
        "its pages from 0 and the walk missed the first; set paging.first_page: 0"
    )
    assert (missed in out) is fails
    assert ("devices: GET " in out and "3 page(s), 25 rows" in out) is not fails
