"""Reading enum fields sent as codes against reading them as words, in one run.

    python bench/bench_codes.py [--devices 100000] [--runs 5] [--root <checkout>]

The devices of a frozen simulator population, three ways: as the DMS documents them (words),
with ``connectionState`` and ``controlMode`` as integer codes (``1``), and as numeric text
(``"1"``); each parsed by ``vocabulary.parse`` with the ``values`` map that names the codes.
Prints the median CPU seconds of a parse per way and its ratio to words. ``--root`` parses with
another checkout's ``dms_exporter`` (words only mean the same there before codes were read).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

CONNECTION = {"UNKNOWN": 0, "ONLINE": 1, "OFFLINE": 2, "NEVER_CONNECTED": 3}
MODE = {"LOCAL": 0, "DMS": 1}
VALUES = {
    "connectionState": {str(code): word for word, code in CONNECTION.items()},
    "controlMode": {str(code): word for word, code in MODE.items()},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    args = parser.parse_args()
    sys.path.insert(0, args.root)
    from dms_exporter.simulator.clock import Clock
    from dms_exporter.simulator.world import World
    from dms_exporter.vocabulary import parse

    world = World.create(args.devices, 1, Clock(frozen=True), 0.0)
    words = [json.loads(blob) for blob in world.listing("devices", None, None)]
    numbers = [
        {**d, "connectionState": CONNECTION.get(d["connectionState"], 9),
         "controlMode": MODE.get(d["controlMode"], 9)}
        for d in words
    ]  # fmt: skip
    texts = [{**d, "connectionState": str(d["connectionState"]),
              "controlMode": str(d["controlMode"])} for d in numbers]  # fmt: skip
    words = [{**d} for d in words]  # copies like the others, so that memory layout is alike
    ways = {"words": words, "integer codes": numbers, "numeric text": texts}
    print(f"{args.devices} devices, {args.runs} runs, dms_exporter from {args.root}")
    print("| sent as | CPU s per parse (median) | / words | unknown values |")
    print("|---|---|---|---|")
    base = None
    for name, items in ways.items():
        times, unknown = [], 0
        for _ in range(args.runs):
            started = time.process_time()
            unknown = parse("devices", items, {}, 0.0, values=VALUES).unknown_values
            times.append(time.process_time() - started)
        median = statistics.median(times)
        base = base or median
        print(f"| {name} | {median:.3f} | {median / base:.2f} | {unknown} |")


if __name__ == "__main__":
    main()
