"""Golden exposition: a frozen simulator gives the same DMS series, byte for byte, every run.

Health series (durations, poll times) are left out: they change from run to run. To accept an
intended change, run with ``UPDATE_GOLDEN=1`` and review the diff of tests/golden/.
"""

from __future__ import annotations

import os
from pathlib import Path

from conftest import exporter_config

from dms_exporter.simulator import start_simulator

GOLDEN = Path(__file__).parent / "golden" / "frozen-12-devices.prom"
HEALTH_PREFIXES = ("dms_exporter_", "dms_up", "process_", "python_")


def data_lines(body: str) -> str:
    """The exposition without the exporter's health families (their HELP/TYPE lines too)."""
    kept = []
    for line in body.splitlines(keepends=True):
        name = line.split(" ")[2] if line.startswith("#") else line
        if not name.startswith(HEALTH_PREFIXES):
            kept.append(line)
    return "".join(kept)


async def test_frozen_simulator_gives_the_golden_exposition(start_exporter):
    async with start_simulator(devices=12, seed=11, frozen=True) as sim:
        config = exporter_config(
            sim,
            alarms={"retrieval": "all"},
            display_names={"devices": {"dev-000002": 'Golden "quoted" name\\with backslash'}},
        )
        client = await start_exporter(config)
        response = await client.get("/metrics")
        body = data_lines(await response.text())
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(body)
    assert body == GOLDEN.read_text(), "exposition changed; see the module docstring"
