"""What the exporter makes of a DMS configured from the docs or from ``--probe``'s advice: rows
exported against the rows the DMS holds, endpoint health, log lines, and logins.

    python bench/partial_walks.py first-page     # pages from 0, paging.first_page left at 1
    python bench/partial_walks.py probe-advice   # envelope.items set as --probe says, no paging
    python bench/partial_walks.py bare           # a bare-array DMS with envelope: bare
    python bench/partial_walks.py relogin [--seconds 20] [--interval 5s]
                                                 # login 200, then 401 on every call
    python bench/partial_walks.py expiry         # a login answer without login.expiry_path

Each case starts a frozen simulator process and the exporter (``--probe`` first, then the
exporter itself) on 127.0.0.1, waits for every endpoint's first poll (``relogin``: the given
time), and prints per endpoint the rows exported, the rows the DMS holds, ``up`` and the last
reason; then the exporter's warning and error log lines, and the logins the DMS answered.
Bounded: every wait has a deadline; the processes are stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from bench_exporter import free_port, wait_ok

DEVICES = 2000
#: Rows of each endpoint's table as the simulator counts them (alarms: active ones, as polled).
COUNTED = {"alarms": "alarms_active"}


def case_setup(case: str) -> tuple[list[str], dict[str, Any]]:
    """Simulator flags and the ``dms`` keys an operator would have written for ``case``."""
    if case == "first-page":  # the docs' Spring Data example without first_page: 0
        dms = {"envelope": {"items": "content", "total": "totalElements"},
               "paging": {"style": "page", "page_param": "page", "size_param": "size"}}  # fmt: skip
        return ["--shape", "spring"], dms
    if case == "probe-advice":  # --probe said: a list is at 'content' (set envelope.items)
        return ["--shape", "spring"], {"envelope": {"items": "content"}}
    if case == "bare":  # the docs: envelope: bare means every page is a bare JSON array
        return ["--bare-arrays"], {"envelope": "bare"}
    if case == "relogin":  # a revoked role: the login answers, every call gets 401
        return ["--fault", "*=revoke_token"], {}
    if case == "expiry":  # the login answer lacks expiresIn (login.expiry_path's default)
        return ["--fault", "login=missing_fields,fields=expiresIn"], {}
    raise SystemExit(f"unknown case {case}")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("case", choices=("first-page", "probe-advice", "bare", "relogin", "expiry"))
    parser.add_argument("--seconds", type=float, default=20.0, help="relogin: how long to run")
    parser.add_argument("--interval", default=None, help="defaults.interval (default: built-in)")
    args = parser.parse_args()
    sim_flags, dms = case_setup(args.case)
    sim_port, port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    sim = subprocess.Popen(
        [sys.executable, "-m", "dms_exporter.simulator", f"--listen-address=127.0.0.1:{sim_port}",
         f"--devices={DEVICES}", "--frozen", "--log-level=warning", *sim_flags],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    exporter = None
    try:
        wait_ok(f"{sim_url}/_sim/state", 120)
        config = {
            "dms": {"url": f"{sim_url}/dms-api/v1", "username": "monitor",
                    "password": "monitor-secret", "proxy": "direct", **dms},
        }  # fmt: skip
        if args.interval:
            config["defaults"] = {"interval": args.interval}
        work = Path(tempfile.mkdtemp(prefix="partial-walks-"))
        config_file = work / "dms.yml"
        config_file.write_text(yaml.safe_dump(config))
        print(f"config: {json.dumps(config['dms'] | {'url': '...', 'password': '...'})}")

        probe = subprocess.run(
            [sys.executable, "-m", "dms_exporter", "--probe", f"--config.file={config_file}"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        print(f"--probe exit {probe.returncode}:")
        for line in probe.stdout.splitlines():
            if line.startswith(("DMS ", "warning", "FAIL", "OK")) or "verdict" in line:
                print("   ", line)
        for line in probe.stderr.splitlines():
            print("    stderr:", line)

        urllib.request.urlopen(
            urllib.request.Request(f"{sim_url}/_sim/request-counts", method="DELETE"),
            timeout=10,
        ).read()
        log_file = work / "exporter.log"
        with log_file.open("w") as log:
            exporter = subprocess.Popen(
                [sys.executable, "-m", "dms_exporter", f"--config.file={config_file}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        started = time.monotonic()
        wait_ok(f"http://127.0.0.1:{port}/-/healthy", 60)
        status: dict[str, Any] = {}
        deadline = started + (args.seconds if args.case == "relogin" else 120)
        while time.monotonic() < deadline:
            status = get_json(f"http://127.0.0.1:{port}/api/v1/endpoints")
            if args.case != "relogin" and all(e["last_poll"] for e in status["endpoints"]):
                break
            time.sleep(0.25)
        ran = time.monotonic() - started
        state = get_json(f"{sim_url}/_sim/state")
        counts = state["counts"]
        print(f"after {ran:.1f}s (exporter running):")
        print(f"    {'endpoint':<24} {'exported':>8} {'in DMS':>7}  up  last_result")
        for e in status["endpoints"]:
            held = counts.get(COUNTED.get(e["endpoint"], e["endpoint"]), 1)
            up = int(bool(e["up"]))
            print(f"    {e['endpoint']:<24} {e['rows']:>8} {held:>7}  {up:>2}  {e['last_result']}")
        print(f"    logins answered by the DMS: {state['requestCounts'].get('login', 0)}")
    finally:
        for proc in (exporter, sim):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    lines = [
        line for line in log_file.read_text().splitlines()
        if "level=warn" in line or "level=error" in line
    ]  # fmt: skip
    print(f"exporter warning/error log lines: {len(lines)}")
    for line in lines[:12]:
        print("   ", line[:300])


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
