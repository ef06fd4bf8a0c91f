"""Every known secret through every output: the exporter runs as a real process against a DMS
that echoes what it is sent (password, token, Basic and proxy credentials) in its error
messages, at every offset around the excerpt cut, and the password in every spelling a request
can give it (JSON-escaped, URL-encoded with %20 and +, Basic). The passwords hold ``" \\ + / :``
and non-ASCII characters, each of which those spellings change. Neither the whole secret nor any
6-character piece of any spelling may appear in the logs (logfmt and JSON), in any HTTP answer,
in --probe's report or in --config.check.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets
import socket
import sys
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from test_cli import run_cli

from dms_exporter.model import ENDPOINTS

USER = "monitor"
TIMEOUT = aiohttp.ClientTimeout(total=20)


def fragments(secret: str) -> set[str]:
    return {secret[i : i + 6] for i in range(len(secret) - 5)}


def password() -> str:
    """A new password with every character JSON, URLs and forms spell differently."""
    return 'Pw" \\+/:é€' + secrets.token_hex(9)


def spellings(name: str, secret: str) -> dict[str, str]:
    """``secret`` as typed and in each spelling a request can give it, by name."""
    return {
        name: secret,
        f"{name} as JSON": json.dumps(secret)[1:-1],
        f"{name} as UTF-8 JSON": json.dumps(secret, ensure_ascii=False)[1:-1],
        f"{name} URL-encoded": urllib.parse.quote(secret, safe=""),
        f"{name} form-encoded": urllib.parse.quote_plus(secret),
    }


def leaks(text: str, known: dict[str, str]) -> list[str]:
    """The names of the secrets that appear in ``text``, whole or as a 6-character piece."""
    return [name for name, secret in known.items() if any(f in text for f in fragments(secret))]


class EchoDms:
    """A DMS that logs in (token) and answers every other request with a 500 whose message
    echoes the password and the Authorization header after padding that grows with each call,
    so the secrets straddle the client's 120-character excerpt at every offset."""

    def __init__(self, password: str, token: str) -> None:
        self.password, self.token, self.calls = password, token, 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        if request.path.endswith("/auth/login"):
            return web.json_response({"token": self.token, "expiresIn": 3600})
        pad = "x" * (self.calls % 130)
        auth = request.headers.get("Authorization", "")
        proxy = request.headers.get("Proxy-Authorization", "")
        spelled = " ".join(f"{k}={v}" for k, v in spellings("pw", self.password).items())
        message = f"{pad} pw={self.password} auth={auth} proxy={proxy} url={request.url} {spelled}"
        status = 401 if self.calls % 7 == 0 else 500
        return web.json_response(
            {"error": {"code": f"E{pad}{self.password}", "message": message}}, status=status
        )


@pytest.fixture
async def echo_dms() -> AsyncIterator[tuple[str, EchoDms]]:
    dms = EchoDms(password=password(), token="Tk" + secrets.token_hex(12))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", dms.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"127.0.0.1:{port}", dms
    await runner.cleanup()


async def crawl(base: str) -> list[str]:
    """Every answer the exporter gives: the known routes, every link of its pages (bounded),
    a refresh of every endpoint and a reload."""
    answers: list[str] = []
    seen: set[str] = set()
    queue = ["/", "/metrics", "/-/healthy", "/-/ready", "/api/v1/endpoints", "/console/"]
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        while queue and len(seen) < 60:
            path = queue.pop(0)
            if path in seen:
                continue
            seen.add(path)
            async with session.get(base + path) as response:
                text = await response.text()
            answers.append(f"{response.status} {response.headers} {text}")
            for link in re.findall(r'href="(/[^"#]*)"', text):
                if not link.startswith("/console/static"):
                    queue.append(link.replace("&amp;", "&"))
        for path in [*(f"/-/refresh/{name}" for name in ENDPOINTS), "/-/reload"]:
            async with session.post(base + path) as response:
                answers.append(f"{response.status} {await response.text()}")
    return answers


async def run_exporter(
    tmp_path: Path, config: dict[str, Any], env: dict[str, str], fmt: str
) -> tuple[list[str], str]:
    """Run the exporter until every endpoint failed at least twice; its answers and its log."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config_file = tmp_path / "dms.yml"
    config_file.write_text(yaml.safe_dump(config))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dms_exporter", "--config.file", str(config_file),
        "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "debug", "--log.format", fmt,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, **env},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            for _ in range(100):
                await asyncio.sleep(0.2)
                try:
                    async with session.get(base + "/-/ready") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    continue
        await asyncio.sleep(2.5)  # a few more failed polls (interval 1s)
        answers = await crawl(base)
    finally:
        process.terminate()
        _, log = await process.communicate()
    return answers, log.decode()


CASES = {
    # password source, DMS auth, log format, proxy through the environment
    "inline-token-logfmt": ("password", "token", "logfmt", False),
    "file-basic-json": ("password_file", "basic", "json", False),
    "env-token-json": ("password_env", "token", "json", False),
    "env-basic-logfmt-proxy": ("password_env", "basic", "logfmt", True),
}


@pytest.mark.parametrize("case", CASES)
async def test_no_secret_in_any_output(
    case: str, tmp_path: Path, echo_dms: tuple[str, EchoDms]
) -> None:
    source, auth, fmt, proxied = CASES[case]
    address, dms = echo_dms
    env: dict[str, str] = {"NO_PROXY": "", "no_proxy": ""}
    dms_config: dict[str, Any] = {
        "url": f"http://{address}/dms-api/v1", "username": USER, "auth": auth,
        "proxy": "environment" if proxied else "direct", "timeout": "2s",
    }  # fmt: skip
    if source == "password":
        dms_config["password"] = dms.password
    elif source == "password_file":
        (tmp_path / "password").write_text(dms.password + "\n")
        dms_config["password_file"] = "password"
    else:
        env["DMS_TEST_PASSWORD"] = dms.password
        dms_config["password_env"] = "DMS_TEST_PASSWORD"
    known = {
        **spellings("password", dms.password),
        "basic": base64.b64encode(f"{USER}:{dms.password}".encode()).decode(),
    }
    if auth == "token":
        known["token"] = dms.token
    if proxied:  # the echo DMS acts as the proxy too: it sees the absolute URL and answers
        # aiohttp sends a proxy's credentials in Latin-1: a password beyond it cannot work
        proxy_password = 'Px" \\+/:é' + secrets.token_hex(9)
        quoted = urllib.parse.quote(proxy_password, safe="")
        env["HTTP_PROXY"] = f"http://squid:{quoted}@{address}"
        known |= spellings("proxy password", proxy_password)
        for charset in ("utf-8", "latin-1"):
            pair = f"squid:{proxy_password}".encode(charset)
            known[f"proxy basic {charset}"] = base64.b64encode(pair).decode()
    config = {"dms": dms_config, "defaults": {"interval": "1s"}, "refresh_min_gap": 0}
    answers, log = await run_exporter(tmp_path, config, env, fmt)
    probe = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dms_exporter", "--probe", "--probe.format",
        "json" if fmt == "json" else "text", "--config.file", str(tmp_path / "dms.yml"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env={**os.environ, **env},
    )  # fmt: skip
    probe_output = (await asyncio.wait_for(probe.communicate(), 60))[0].decode()

    assert dms.calls > 20  # the DMS was asked, and echoed, many times
    assert "pw=***" in log or "pw=<secret>" in log  # the echo reached the log, masked
    assert leaks(log, known) == [], log[-3000:]
    for answer in answers:
        assert leaks(answer, known) == [], answer[:3000]
    assert "pw=***" in probe_output  # --probe showed the DMS's errors, masked
    assert leaks(probe_output, known) == [], probe_output[-3000:]
    if fmt == "json":
        assert all(json.loads(line) for line in log.splitlines())


def test_config_check_never_shows_the_password(tmp_path: Path) -> None:
    password = "Pw" + secrets.token_hex(9)
    (tmp_path / "password").write_text(password + "\n")
    hard = globals()["password"]()  # with a "/", which ends a URL's authority for a parser
    base = {"url": "http://127.0.0.1:9/api", "username": USER}
    configs = [
        {"dms": {**base, "password": 31415926}},
        {"dms": {**base, "password_file": "password"}, "display_names": {"file": "password"}},
        {"dms": {**base, "password": password, "url": f"http://{USER}:{password}@host/api"}},
        {"dms": {**base, "password": hard, "url": f"http://{USER}:{hard}@host/api"}},
        {"dms": {**base, "password": hard, "url": [f"http://{USER}:{hard}@host:1/api", "x"]}},
        {"dms": {**base, "password": password, "proxy": f"http://u:{password}@proxy:3128"}},
        {"dms": {**base, "password": password, "username": ["x"]}},
    ]
    for config in configs:
        path = tmp_path / "dms.yml"
        path.write_text(yaml.safe_dump(config))
        result = run_cli("--config.check", "--config.file", str(path))
        assert result.returncode == 1, config
        known = {**spellings("password", password), **spellings("hard", hard)}
        assert leaks(result.stdout + result.stderr, known) == [], result.stderr
        assert "31415926" not in result.stderr
