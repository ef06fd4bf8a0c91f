"""The README cannot drift: its metric reference matches a real exposition, and its test
command is the one CI runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import exporter_config
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
OPENMETRICS = "application/openmetrics-text;version=1.0.0"
ROW = re.compile(
    r"^\| `(?P<name>(?:dms|process|python)_[a-z_]+)` \| (?P<type>gauge|counter|info|stateset) \|"
    r" (?P<labels>[^|]*) \|",
    re.M,
)


def documented() -> dict[str, tuple[str, set[str]]]:
    rows = {}
    for match in ROW.finditer(README):
        labels = {label.strip() for label in match["labels"].split(",")} - {"—", ""}
        rows[match["name"]] = (match["type"], labels)
    return rows


def sample_name(family) -> str:
    return {"info": f"{family.name}_info", "counter": f"{family.name}_total"}.get(
        family.type, family.name
    )


async def test_metric_reference_matches_the_exposition(simulator, start_exporter):
    config = exporter_config(simulator, alarms={"retrieval": "all"})
    client = await start_exporter(config)
    await client.post("/-/refresh/alarms")  # a second poll: counters and timestamps all present
    response = await client.get("/metrics", headers={"Accept": OPENMETRICS})
    exposed = {}
    for family in parse_om(await response.text()):
        labels = {label for sample in family.samples for label in sample.labels}
        exposed[sample_name(family)] = (family.type, labels, len(family.samples))
    docs = documented()
    assert set(docs) == set(exposed), "README metric reference differs from /metrics"
    for name, (doc_type, doc_labels) in docs.items():
        exp_type, exp_labels, count = exposed[name]
        assert doc_type == exp_type, name
        assert count > 0, f"{name} has no sample with the simulator"
        assert doc_labels == exp_labels, name


def test_ci_runs_the_readme_test_command():
    commands = re.search(r"```sh\n(.*?)\n(.*?)\n```", README, re.S)
    assert commands, "README must open with the two commands"
    demo, tests = (line.split("#")[0].strip() for line in commands.groups())
    assert "--demo" in demo
    assert tests in (ROOT / ".ci" / "run").read_text()


def test_code_is_ruff_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_reference_to_the_api_model_names_a_file_that_exists():
    """``dms-api.md`` is cited by docs, code and tests: each citation must resolve, from the
    repository root or from the citing file's directory."""
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    cited = 0
    for name in files:
        path = ROOT / name
        if path.suffix not in (".md", ".py", ".yml", ".yaml") or path == Path(__file__):
            continue
        for ref in re.findall(r"[\w./-]*dms-api\.md", path.read_text(errors="replace")):
            cited += 1
            assert (ROOT / ref).is_file() or (path.parent / ref).is_file(), f"{name}: {ref}"
    assert cited >= 5


SERIES_ROW = re.compile(r"^\| `(dms_[a-z_]+)` \| \d[^|]*\| (yes|no) \| (yes|no) \|$", re.M)


async def test_series_per_device_table_lists_every_per_device_family_and_the_presets(
    simulator, start_exporter
):
    from dms_exporter.exposition.selection import PRESETS

    client = await start_exporter(exporter_config(simulator))
    response = await client.get("/metrics", headers={"Accept": OPENMETRICS})
    per_device = set()
    for family in parse_om(await response.text()):
        if any(s.labels.get("device_id") for s in family.samples):
            per_device.add(sample_name(family))
    rows = {name: (full, lean) for name, full, lean in SERIES_ROW.findall(README)}
    assert set(rows) == per_device
    lean_off = {name for name, (_, lean) in rows.items() if lean == "no"}
    assert {n.removesuffix("_info") for n in lean_off} == PRESETS["lean"]
    assert all(full == "yes" for full, _ in rows.values())
