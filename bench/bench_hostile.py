"""Hostile clients, hostile DMS answers and careless operators: one probe per row of the table
of the second hardening round (the slow-body row is bench_slowloris.py --attack body).

Every probe runs the exporter as a process on 127.0.0.1 against a real DMS simulator (or, for
the secret probe, a DMS that echoes what it is sent in every encoding) and prints what a user
would see: status codes, headers, lines, files. Nothing leaves loopback; every loop is bounded.

    python bench/bench_hostile.py                 # every probe
    python bench/bench_hostile.py --only secrets  # one of: framing referer surrogate encoding
                                                  #   url-password secrets interval tempfile
    python bench/bench_hostile.py --source /tmp/older-checkout
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import html
import json
import os
import random
import re
import secrets as secrets_module
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import yaml
from aiohttp import web
from bench_exporter import free_port

ROOT = Path(__file__).resolve().parent.parent
USER, PASSWORD = "monitor", "monitor-secret"  # the simulator's account
WEB_USER, WEB_PASSWORD = "prometheus", "scrape-secret"
#: A password with every character that has its own spelling in JSON, URLs or Basic.
HARD_PASSWORD = 'Pw" \\+/:é€' + secrets_module.token_hex(4)
TIMEOUT = aiohttp.ClientTimeout(total=20)
SOURCE = str(ROOT)


@contextlib.contextmanager
def process(*args: str, **kwargs: Any) -> Any:
    """A Python process of ``SOURCE`` (``-m`` module and arguments), stopped after."""
    env = {**os.environ, "PYTHONPATH": SOURCE, "NO_PROXY": "*"}
    proc = subprocess.Popen([sys.executable, *args], env=env, cwd=SOURCE, **kwargs)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def wait_ready(base: str, seconds: float = 60, auth: aiohttp.BasicAuth | None = None) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(timeout=TIMEOUT, auth=auth) as session:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(base + "/-/ready") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{base} not ready within {seconds} s")


@contextlib.asynccontextmanager
async def simulator() -> AsyncIterator[str]:
    """A DMS simulator process on loopback; its API URL."""
    port = free_port()
    with process("-m", "dms_exporter.simulator", "--devices", "50",
                 "--listen-address", f"127.0.0.1:{port}",
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            while True:
                try:
                    async with session.get(base + "/_sim/state") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    if time.monotonic() > deadline:
                        raise
                await asyncio.sleep(0.2)
        yield base


@contextlib.asynccontextmanager
async def fake_dms(message: str) -> AsyncIterator[str]:
    """A DMS on loopback that logs in and answers every other request with a 500 whose error
    message is ``message``, sent as JSON escapes; its API URL."""

    async def answer(request: web.Request) -> web.Response:
        if request.path.endswith("/auth/login"):
            return web.json_response({"token": "Tk" + secrets_module.token_hex(12)})
        body = json.dumps({"error": {"code": "E", "message": message}})  # ensure_ascii: escapes
        return web.Response(status=500, text=body, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/dms-api/v1"
    finally:
        await runner.cleanup()


def write_config(directory: Path, dms_url: str, **extra: Any) -> Path:
    config = {
        "dms": {"url": dms_url, "username": USER, "password": PASSWORD, "proxy": "direct"},
        "defaults": {"interval": "60s"},
        "refresh_min_gap": 0,
        **extra,
    }
    path = directory / "dms.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


@contextlib.asynccontextmanager
async def exporter(
    config: Path, *extra: str, auth: aiohttp.BasicAuth | None = None
) -> AsyncIterator[tuple[str, Path]]:
    """The exporter on ``config`` at debug level; its base URL and its log file."""
    port = free_port()
    log = config.with_name("exporter.log")
    with log.open("wb") as out, process(
        "-m", "dms_exporter", "--config.file", str(config), "--log.level", "debug",
        "--web.listen-address", f"127.0.0.1:{port}", *extra, stdout=out, stderr=out,
    ):  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        await wait_ready(base, auth=auth)
        yield base, log


async def request(
    url: str,
    method: str = "GET",
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    auth: aiohttp.BasicAuth | None = None,
) -> tuple[int, Any, str]:
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT, auth=auth) as session,
        session.request(method, url, data=data, headers=headers, allow_redirects=False) as response,
    ):
        return response.status, response.headers, await response.text(errors="replace")


def error_lines(log: Path, since: int = 0) -> list[str]:
    text = log.read_bytes()[since:].decode(errors="replace")
    return [line for line in text.splitlines() if "level=error" in line or "Traceback" in line]


# -- the probes: each returns (what it did, what it saw) ---------------------------------------

Probe = Callable[[Path, str], Awaitable[tuple[str, str]]]


async def framing(tmp: Path, dms: str) -> tuple[str, str]:
    async with exporter(write_config(tmp, dms)) as (base, _):
        _, headers, _ = await request(base + "/console/endpoints")
    frame = headers.get("X-Frame-Options", "none")
    csp = headers.get("Content-Security-Policy", "none")
    return (
        "GET /console/endpoints: framing headers",
        f"X-Frame-Options: {frame}; Content-Security-Policy: {csp}",
    )


async def referer(tmp: Path, dms: str) -> tuple[str, str]:
    hashed = bcrypt.hashpw(WEB_PASSWORD.encode(), bcrypt.gensalt(10)).decode()
    web_config = tmp / "web.yml"
    web_config.write_text(yaml.safe_dump({"basic_auth_users": {WEB_USER: hashed}}))
    auth = aiohttp.BasicAuth(WEB_USER, WEB_PASSWORD)
    seen = []
    async with exporter(
        write_config(tmp, dms), "--web.config.file", str(web_config), auth=auth
    ) as (base, _):
        for name, headers in (
            ("foreign Referer, no Origin", {"Referer": "http://evil.example/page"}),
            ("foreign Origin", {"Origin": "http://evil.example"}),
            ("same-origin Referer", {"Referer": base + "/console/endpoints"}),
        ):
            status, _, _ = await request(
                base + "/console/endpoints/groups",
                "POST",
                data=b"enabled=true",
                auth=auth,
                headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
            )
            seen.append(f"{name}: {status}")
    return "POST /console/endpoints/groups with basic auth", "; ".join(seen)


async def surrogate(tmp: Path, dms: str) -> tuple[str, str]:
    async with (
        fake_dms("broken \ud800 record") as broken,
        exporter(write_config(tmp, broken)) as (base, log),
    ):
        statuses = []
        for path in ("/console/endpoints", "/api/v1/endpoints", "/metrics"):
            status, _, text = await request(base + path)
            shown = "?" if "broken ? record" in text else "\\ud800" if "\\ud800" in text else ""
            statuses.append(f"{path} {status}" + (f" (shows {shown})" if shown else ""))
        errors = error_lines(log)
    return (
        "a DMS whose error message holds a lone surrogate",
        f"{'; '.join(statuses)}; error lines in the log: {len(errors)}",
    )


async def encoding(tmp: Path, dms: str) -> tuple[str, str]:
    bodies = {
        "invalid UTF-8": ("application/x-www-form-urlencoded", b"interval=\xff\xfe30s"),
        "unknown charset": ("application/x-www-form-urlencoded; charset=x-nonesuch",
                            b"interval=30s"),
        "UTF-7 to a surrogate": ("application/x-www-form-urlencoded; charset=utf-7",
                                 b"interval=+2AA-"),
        "multipart, invalid UTF-8": ("multipart/form-data; boundary=b",
                                     b'--b\r\nContent-Disposition: form-data; name="interval"'
                                     b"\r\n\r\n\xff\xfe\r\n--b--\r\n"),
    }  # fmt: skip
    seen = []
    async with exporter(write_config(tmp, dms)) as (base, log):
        for name, (content_type, body) in bodies.items():
            before = log.stat().st_size
            status, _, _ = await request(
                base + "/console/endpoints/devices",
                "POST",
                data=body,
                headers={"Content-Type": content_type},
            )
            seen.append(f"{name}: {status}, {len(error_lines(log, before))} error lines")
    return "console form bodies in a bad encoding", "; ".join(seen)


async def url_password(tmp: Path, dms: str) -> tuple[str, str]:
    password = "pa/ss" + secrets_module.token_hex(4)
    parts = urllib.parse.urlsplit(dms)
    bad_url = f"{parts.scheme}://{USER}:{password}@{parts.netloc}{parts.path}"
    bad = write_config(tmp, bad_url)
    check = subprocess.run(
        [sys.executable, "-m", "dms_exporter", "--config.check", "--config.file", str(bad)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": SOURCE}, cwd=SOURCE,
    )  # fmt: skip
    seen = [f"--config.check: {(check.stdout + check.stderr).count(password)}"]
    port = free_port()
    start = subprocess.run(
        [sys.executable, "-m", "dms_exporter", "--config.file", str(bad),
         "--web.listen-address", f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": SOURCE},
        cwd=SOURCE,
    )  # fmt: skip
    seen.append(f"start-up: {(start.stdout + start.stderr).count(password)}")
    good = write_config(tmp, dms)
    async with exporter(good) as (base, log):
        write_config(tmp, bad_url)
        status, _, text = await request(base + "/-/reload", "POST")
        seen.append(f"/-/reload answer ({status}): {text.count(password)}")
        await asyncio.sleep(0.5)
        seen.append(f"log: {log.read_text(errors='replace').count(password)}")
    return "password with '/' in dms.url: times the password is shown", "; ".join(seen)


def spellings(password: str) -> dict[str, str]:
    """``password`` as it can travel: as typed, JSON-escaped, URL-encoded, Basic."""
    return {
        "typed": password,
        "json": json.dumps(password)[1:-1],
        "json-utf8": json.dumps(password, ensure_ascii=False)[1:-1],
        "url %20": urllib.parse.quote(password, safe=""),
        "url +": urllib.parse.quote_plus(password),
        "basic": base64.b64encode(f"{USER}:{password}".encode()).decode(),
    }


def _fragments(secret: str) -> set[str]:
    """Every 6-character piece of ``secret``: a cut excerpt can show part of one."""
    return {secret[i : i + 6] for i in range(len(secret) - 5)}


async def secrets(tmp: Path, dms: str) -> tuple[str, str]:
    known = spellings(HARD_PASSWORD)
    message = " ".join(f"{name}={value}" for name, value in known.items())
    outputs: list[tuple[str, str]] = []
    async with fake_dms(message) as echo:
        config = write_config(tmp, echo)
        data = yaml.safe_load(config.read_text())
        data["dms"]["password"] = HARD_PASSWORD
        data["defaults"]["interval"] = "1s"
        config.write_text(yaml.safe_dump(data, allow_unicode=True))
        async with exporter(config) as (base, log):
            await asyncio.sleep(2.5)
            for path in ("/api/v1/endpoints", "/console/endpoints", "/metrics"):
                _, _, text = await request(base + path)
                outputs.append((path, text))
            for name in ("system", "devices", "groups"):
                _, _, text = await request(base + f"/-/refresh/{name}", "POST")
                outputs.append((f"/-/refresh/{name}", text))
        outputs.append(("log", log.read_text(errors="replace")))
        probe = subprocess.run(
            [sys.executable, "-m", "dms_exporter", "--probe", "--config.file", str(config)],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONPATH": SOURCE}, cwd=SOURCE,
        )  # fmt: skip
        outputs.append(("--probe", probe.stdout + probe.stderr))
    if os.environ.get("BENCH_DEBUG"):
        for where, text in outputs:
            print(where, text[:1500])
    fragments = {name: _fragments(value) for name, value in known.items()}
    leaked = {
        where: sorted(
            name
            for name, pieces in fragments.items()
            if any(piece in text or piece in html.unescape(text) for piece in pieces)
        )
        for where, text in outputs
    }
    shown = "; ".join(f"{where}: {', '.join(names)}" for where, names in leaked.items() if names)
    count = sum(1 for names in leaked.values() if names)
    return (
        f"a DMS echoing the password {HARD_PASSWORD!r} in every spelling",
        f"{count} of {len(outputs)} outputs show a spelling" + (f" ({shown})" if shown else ""),
    )


async def interval(tmp: Path, dms: str) -> tuple[str, str]:
    seen = []
    for value in ("0", "1d", "fast"):
        config = write_config(tmp, dms)
        data = yaml.safe_load(config.read_text())
        data["defaults"]["interval"] = value
        config.write_text(yaml.safe_dump(data))
        check = subprocess.run(
            [sys.executable, "-m", "dms_exporter", "--config.check", "--config.file", str(config)],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": SOURCE}, cwd=SOURCE,
        )  # fmt: skip
        lines = [line for line in check.stderr.splitlines() if "interval" in line]
        seen.append(f"{value!r}: {len(lines)} lines, exit {check.returncode}")
    return "--config.check with a bad defaults.interval", "; ".join(seen)


async def tempfile_probe(tmp: Path, dms: str, kills: int = 20) -> tuple[str, str]:
    config = write_config(tmp, dms)
    leftovers_seen = 0
    for _ in range(kills):
        port = free_port()
        with process("-m", "dms_exporter", "--config.file", str(config),
                     "--web.listen-address", f"127.0.0.1:{port}",
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:  # fmt: skip
            base = f"http://127.0.0.1:{port}"
            await wait_ready(base)

            async def edit(n: int, base: str = base) -> None:
                with contextlib.suppress(aiohttp.ClientError, OSError, asyncio.TimeoutError):
                    await request(
                        base + "/console/endpoints/groups", "POST",
                        data=f"interval={30 + n}s".encode(),
                        headers={"Content-Type": "application/x-www-form-urlencoded"},
                    )  # fmt: skip

            edits = [asyncio.create_task(edit(n)) for n in range(20)]
            await asyncio.sleep(random.uniform(0.0, 0.05))
            os.kill(proc.pid, signal.SIGKILL)
            await asyncio.gather(*edits)
        leftovers_seen = len(list(tmp.glob(".dms.console.json.*")))
    port = free_port()
    with process("-m", "dms_exporter", "--config.file", str(config),
                 "--web.listen-address", f"127.0.0.1:{port}",
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):  # fmt: skip
        await wait_ready(f"http://127.0.0.1:{port}")
        after = len(list(tmp.glob(".dms.console.json.*")))
    return (
        f"kill -9 during console saves, {kills} times, then one more start",
        f"temporary files left after the kills: {leftovers_seen}, after the next start: {after}",
    )


PROBES: dict[str, Probe] = {
    "framing": framing,
    "referer": referer,
    "surrogate": surrogate,
    "encoding": encoding,
    "url-password": url_password,
    "secrets": secrets,
    "interval": interval,
    "tempfile": tempfile_probe,
}


async def run(names: list[str]) -> None:
    async with simulator() as sim:
        dms = sim + "/dms-api/v1"
        for name in names:
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    what, seen = await PROBES[name](Path(tmp), dms)
                except Exception as exc:  # a probe that cannot run says why, the others run
                    what, seen = name, f"probe failed: {type(exc).__name__}: {exc}"
            seen = re.sub(r"\s+", " ", seen)
            print(f"{name:13} {what}\n{'':13} -> {seen}", flush=True)


def main() -> None:
    global SOURCE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(PROBES), action="append")
    parser.add_argument("--source", default=str(ROOT), help="checkout whose exporter to run")
    args = parser.parse_args()
    SOURCE = args.source
    print(f"source: {SOURCE}")
    asyncio.run(run(args.only or list(PROBES)))


if __name__ == "__main__":
    main()
