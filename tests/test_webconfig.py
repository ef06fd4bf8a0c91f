"""``--web.config.file`` (exporter-toolkit format) on a real listener: TLS with and without client
certificates (openssl-made), bcrypt basic auth, headers, re-reading the file, and the guard on
admin actions from loopback and from this machine's non-loopback address."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import os
import re
import shutil
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import pytest
import yaml
from pki import Pki, make_pki

from dms_exporter.config import load_config
from dms_exporter.config.web import WebConfigFile, load_web_config
from dms_exporter.errors import ConfigError
from dms_exporter.exporter import Exporter
from dms_exporter.web import guard
from dms_exporter.web.app import make_app
from dms_exporter.web.server import GuardedSite, make_runner

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")

PASSWORD = "scrape-Pa55-w0rd"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()  # low cost: fast tests
TIMEOUT = aiohttp.ClientTimeout(total=10)


def non_loopback_address() -> str | None:
    """This machine's own non-loopback IPv4 address (traffic to it stays on this machine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
        except OSError:
            return None
        address = sock.getsockname()[0]
    return None if ipaddress.ip_address(address).is_loopback else address


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


Serve = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve(simulator: Any, tmp_path: Path) -> AsyncIterator[Serve]:
    """Start the exporter (with a config file, so it can reload) behind a ``GuardedSite``;
    the base URL."""
    runners: list[Any] = []
    config_file = tmp_path / "dms.yml"
    dms = {"url": simulator.base_url, "username": simulator.username}
    config_file.write_text(
        yaml.safe_dump(
            {
                "dms": {**dms, "password": simulator.password, "proxy": "direct"},
                "refresh_min_gap": 0,  # the refreshes below follow the first polls at once
            }
        )
    )

    async def start(web_config: Path | None = None, host: str = "127.0.0.1", **kwargs: Any) -> str:

        web_file = WebConfigFile(None if web_config is None else str(web_config))
        exporter = Exporter(load_config(str(config_file)), config_file=str(config_file))
        runner = make_runner(make_app(exporter, web_config=web_file, **kwargs))
        await runner.setup()
        runners.append(runner)
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        await GuardedSite(runner, host, port, ssl_context=web_file.context).start()
        scheme = "https" if web_file.context else "http"
        return f"{scheme}://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


def client_context(pki: Pki, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if cert is not None:
        context.load_cert_chain(str(cert), str(key))
    return context


async def get(url: str, *, method: str = "GET", **kwargs: Any) -> tuple[int, Any, str]:
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.request(method, url, **kwargs) as response,
    ):
        return response.status, response.headers, await response.text()


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def node_exporter_style(pki: Pki, **tls: str) -> str:
    lines = [
        "tls_server_config:",
        f"  cert_file: {pki.server_cert}",
        f"  key_file: {pki.server_key}",
        *(f"  {k}: {v}" for k, v in tls.items()),
        "http_server_config:",
        "  headers:",
        "    X-Frame-Options: deny",
        "    X-Content-Type-Options: nosniff",
        "basic_auth_users:",
        f"  prometheus: {HASH}",
    ]
    return "\n".join(lines) + "\n"


# --- the file --------------------------------------------------------------------------------


def test_node_exporter_style_file_loads(tmp_path: Path, pki: Pki) -> None:
    path = write(tmp_path / "web.yml", node_exporter_style(pki, min_version="TLS13"))
    config = load_web_config(str(path))
    assert config.tls is not None and config.tls.min_version == ssl.TLSVersion.TLSv1_3
    assert list(config.users) == ["prometheus"]
    assert config.headers == {"X-Frame-Options": "deny", "X-Content-Type-Options": "nosniff"}


def test_every_problem_is_one_line_naming_the_key(tmp_path: Path, pki: Pki) -> None:
    text = f"""\
tls_server_config:
  cert_file: {pki.server_cert}
  key_file: {pki.server_key}
  cert: inline
  client_allowed_sans: [a]
  client_auth_type: RequestClientCert
  curve_preferences: [CurveP256, X25519]
  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]
  min_version: TLS9
http_server_config:
  headers:
    X-Frame-Options: allow
    Server: me
basic_auth_users:
  alice: plain-text-password
metrics_path: /x
"""
    path = write(tmp_path / "web.yml", text)
    with pytest.raises(ConfigError) as caught:
        load_web_config(str(path))
    lines = str(caught.value).splitlines()
    keys = [line.removeprefix(f"{path}: ").split(":")[0] for line in lines]
    assert keys == [
        "metrics_path",
        "tls_server_config.cert",
        "tls_server_config.client_allowed_sans",
        "tls_server_config.client_auth_type",
        "tls_server_config.min_version",
        "tls_server_config.cipher_suites",
        "tls_server_config.curve_preferences",
        "basic_auth_users.alice",
        "http_server_config.headers.X-Frame-Options",
        "http_server_config.headers.Server",
    ]
    assert "plain-text-password" not in str(caught.value)
    assert "use VerifyClientCertIfGiven or RequireAndVerifyClientCert" in str(caught.value)


def test_bad_certificate_files_are_named(tmp_path: Path, pki: Pki) -> None:
    path = write(
        tmp_path / "web.yml",
        f"tls_server_config:\n  cert_file: {pki.client_key}\n  key_file: {pki.server_key}\n",
    )
    with pytest.raises(ConfigError, match=r"cannot load cert_file .*client\.key with key_file"):
        load_web_config(str(path))
    write(path, f"tls_server_config:\n  key_file: {pki.server_key}\n")
    with pytest.raises(ConfigError, match=r"tls_server_config\.cert_file: required"):
        load_web_config(str(path))


# --- TLS and basic auth ----------------------------------------------------------------------


async def test_tls_and_basic_auth(tmp_path: Path, pki: Pki, serve: Serve) -> None:
    base = await serve(write(tmp_path / "web.yml", node_exporter_style(pki)))
    tls = client_context(pki)
    good = basic("prometheus", PASSWORD)
    status, headers, body = await get(f"{base}/metrics", ssl=tls, headers=good)
    assert status == 200 and "dms_exporter_build_info" in body
    assert headers["X-Frame-Options"] == "deny"
    for auth in (
        None,
        basic("prometheus", "wrong"),
        basic("eve", PASSWORD),
    ):
        status, headers, _ = await get(f"{base}/metrics", ssl=tls, headers=auth)
        assert (status, headers["WWW-Authenticate"]) == (401, "Basic")
        assert headers["X-Content-Type-Options"] == "nosniff"  # on every answer
    with pytest.raises(aiohttp.ClientError):  # plain HTTP to the TLS port
        await get(base.replace("https", "http") + "/metrics", headers=good)


async def test_verified_passwords_are_cached(tmp_path: Path, pki: Pki, serve: Serve, monkeypatch):
    calls = []

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(password)
        return bcrypt.checkpw(password, hashed)

    monkeypatch.setattr(guard, "_checkpw", counting)
    base = await serve(write(tmp_path / "web.yml", f"basic_auth_users:\n  prometheus: {HASH}\n"))
    for _ in range(5):
        status, _, _ = await get(f"{base}/-/healthy", headers=basic("prometheus", PASSWORD))
        assert status == 200
        status, _, _ = await get(f"{base}/-/healthy", headers=basic("nobody", PASSWORD))
        assert status == 401
    assert len(calls) == 2  # one bcrypt per distinct (user, password), not one per request


@pytest.mark.parametrize("auth_type", ["RequireAndVerifyClientCert", "VerifyClientCertIfGiven"])
async def test_client_certificates(tmp_path: Path, pki: Pki, serve: Serve, auth_type: str) -> None:
    text = (
        f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
        f"  client_auth_type: {auth_type}\n  client_ca_file: {pki.ca}\n"
    )
    base = await serve(write(tmp_path / "web.yml", text))
    trusted = client_context(pki, pki.client_cert, pki.client_key)
    assert (await get(f"{base}/-/healthy", ssl=trusted))[0] == 200
    with pytest.raises(aiohttp.ClientError):  # a certificate from another CA
        await get(f"{base}/-/healthy", ssl=client_context(pki, pki.stranger_cert, pki.stranger_key))
    if auth_type == "RequireAndVerifyClientCert":
        with pytest.raises(aiohttp.ClientError):
            await get(f"{base}/-/healthy", ssl=client_context(pki))
    else:
        assert (await get(f"{base}/-/healthy", ssl=client_context(pki)))[0] == 200


async def test_changed_file_is_reread_and_a_broken_one_keeps_the_last_good(
    tmp_path: Path, pki: Pki, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "web.yml", f"basic_auth_users:\n  prometheus: {HASH}\n")
    base = await serve(path)
    new_hash = bcrypt.hashpw(b"rotated-pw", bcrypt.gensalt(4)).decode()
    write(path, f"basic_auth_users:\n  prometheus: {new_hash}\n")
    await asyncio.sleep(1.1)  # checked at most once a second
    assert (await get(f"{base}/-/healthy", headers=basic("prometheus", "rotated-pw")))[0] == 200
    assert (await get(f"{base}/-/healthy", headers=basic("prometheus", PASSWORD)))[0] == 401
    write(path, "basic_auth_users: [\n")
    os.utime(path, (1, 1))  # a different mtime even within the same clock tick
    await asyncio.sleep(1.1)
    with caplog.at_level(logging.ERROR, logger="dms_exporter.config.web"):
        for _ in range(3):
            status, _, _ = await get(f"{base}/-/healthy", headers=basic("prometheus", "rotated-pw"))
            assert status == 200
    failures = [r.error for r in caplog.records if "keeping the last good" in r.getMessage()]  # type: ignore[attr-defined]
    assert len(failures) == 1 and "invalid YAML" in failures[0]


async def test_rotated_certificate_is_served_to_new_connections(
    tmp_path: Path, pki: Pki, serve: Serve
):
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(pki.server_cert, cert)
    shutil.copy(pki.server_key, key)
    base = await serve(
        write(tmp_path / "web.yml", f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    )
    first = await _peer_certificate(base, pki)
    rotated = make_pki(tmp_path / "rotated")
    shutil.copy(rotated.server_cert, cert)
    shutil.copy(rotated.server_key, key)
    await asyncio.sleep(1.1)  # checked at most once a second, at the next handshake
    assert await _peer_certificate(base, rotated) != first


async def _peer_certificate(base: str, pki: Pki) -> bytes:
    host, port = base.removeprefix("https://").rsplit(":", 1)
    _, writer = await asyncio.open_connection(host, int(port), ssl=client_context(pki))
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    return der


# --- admin actions ---------------------------------------------------------------------------


async def test_admin_actions_from_loopback_and_same_origin_only(serve: Serve) -> None:
    base = await serve()
    assert (await get(f"{base}/-/reload", method="POST"))[0] == 200
    same = {"Origin": base}
    assert (await get(f"{base}/-/refresh/system", method="POST", headers=same))[0] == 200
    for origin in ("http://evil.example", "null", base.replace("127.0.0.1", "localhost")):
        status, _, body = await get(f"{base}/-/reload", method="POST", headers={"Origin": origin})
        assert (status, body) == (403, "Forbidden: cross-origin request\n")
    status, _, _ = await get(
        f"{base}/-/reload", method="POST", headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert status == 403
    # a DNS-rebinding page reaches loopback under its own name
    status, _, _ = await get(f"{base}/-/reload", method="POST", headers={"Host": "evil.example"})
    assert status == 403


async def test_same_origin_is_origin_then_referer_then_sec_fetch_site(
    tmp_path: Path, serve: Serve
) -> None:
    plain = await serve()
    authed = await serve(write(tmp_path / "web.yml", f"basic_auth_users:\n  ops: {HASH}\n"))
    evil = "http://evil.example"
    for base, auth in ((plain, {}), (authed, basic("ops", PASSWORD))):
        allowed = [
            {},  # no browser: curl, a script
            {"Origin": base},
            {"Origin": base, "Referer": f"{evil}/page"},  # the Origin decides when there is one
            {"Referer": f"{base}/console/endpoints"},
            {"Sec-Fetch-Site": "same-origin"},
            {"Sec-Fetch-Site": "none"},  # typed by the user
        ]
        refused = [
            {"Referer": f"{evil}/page"},  # a browser or proxy that sent no Origin
            {"Referer": "null"},
            {"Origin": evil, "Referer": f"{base}/console/endpoints"},
            {"Sec-Fetch-Site": "same-site"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Origin": base, "Sec-Fetch-Site": "cross-site"},
            {"Referer": f"{base}/console/endpoints", "Sec-Fetch-Site": "same-site"},
        ]
        for headers in allowed:
            status, _, _ = await get(f"{base}/-/reload", method="POST", headers={**auth, **headers})
            assert status == 200, (base, headers)
        for headers in refused:
            status, _, body = await get(
                f"{base}/-/reload", method="POST", headers={**auth, **headers}
            )
            assert (status, body) == (403, "Forbidden: cross-origin request\n"), (base, headers)


async def test_answers_forbid_framing_unless_the_file_says_otherwise(
    tmp_path: Path, serve: Serve
) -> None:
    base = await serve()
    for path in ("/", "/metrics", "/-/healthy"):
        _, headers, _ = await get(f"{base}{path}")
        assert headers["X-Frame-Options"] == "DENY", path
        policy = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy, path
        assert headers["X-Content-Type-Options"] == "nosniff", path
    configured = await serve(
        write(
            tmp_path / "web.yml",
            "http_server_config:\n  headers:\n    X-Frame-Options: sameorigin\n"
            "    Content-Security-Policy: \"frame-ancestors 'self'\"\n",
        )
    )
    _, headers, _ = await get(f"{configured}/")
    assert headers["X-Frame-Options"] == "sameorigin"
    assert headers["Content-Security-Policy"] == "frame-ancestors 'self'"
    assert headers["X-Content-Type-Options"] == "nosniff"  # a default the file did not replace


async def test_a_long_body_is_refused_before_it_is_read(serve: Serve) -> None:
    base = await serve()
    port = int(base.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST /-/reload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Length: 1000000\r\n\r\n".encode()
    )  # and not a byte of the body
    answer = await asyncio.wait_for(reader.read(), 5)  # answered and closed at once
    assert answer.startswith(b"HTTP/1.1 413")
    writer.close()
    status, _, _ = await get(f"{base}/-/reload", method="POST", data=b"x" * 1000)
    assert status == 200  # a short body is fine


@pytest.fixture
def outside_address() -> str:
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    return address


async def test_admin_actions_from_another_address(
    tmp_path: Path, serve: Serve, outside_address: str
) -> None:
    base = await serve(host=outside_address)
    for path in ("/-/reload", "/-/refresh/system", "/-/refresh/nope", "/anything"):
        status, _, body = await get(f"{base}{path}", method="POST")
        assert status == 403 and "only from loopback" in body, path
    status, _, body = await get(f"{base}/metrics")
    assert status == 200 and "dms_exporter_build_info" in body

    opened = await serve(host=outside_address, admin_api=True)
    assert (await get(f"{opened}/-/reload", method="POST"))[0] == 200

    authed = await serve(
        write(tmp_path / "web.yml", f"basic_auth_users:\n  ops: {HASH}\n"), host=outside_address
    )
    user = basic("ops", PASSWORD)
    assert (await get(f"{authed}/-/reload", method="POST"))[0] == 401
    assert (await get(f"{authed}/-/reload", method="POST", headers=user))[0] == 200
    assert (await get(f"{authed}/-/refresh/system", method="POST", headers=user))[0] == 200
    status, _, _ = await get(
        f"{authed}/-/reload", method="POST", headers={**user, "Origin": "http://evil.example"}
    )
    assert status == 403


def test_config_check_validates_the_web_config(tmp_path: Path, pki: Pki) -> None:
    from test_cli import run_cli

    config = write(
        tmp_path / "dms.yml",
        "dms:\n  url: http://127.0.0.1:9/api\n  username: u\n  password: p\n",
    )
    web = write(tmp_path / "web.yml", node_exporter_style(pki))
    result = run_cli("--config.check", "--config.file", str(config), "--web.config.file", str(web))
    assert result.returncode == 0, result.stderr
    write(web, "basic_auth_users:\n  alice: hunter2\ntls_server_config:\n  cert_file: nope.crt\n")
    result = run_cli("--config.check", "--config.file", str(config), "--web.config.file", str(web))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"dms-exporter: invalid configuration: {web}: tls_server_config.key_file: "
        "required when TLS is configured",
        f"dms-exporter: invalid configuration: {web}: basic_auth_users.alice: must be a "
        "bcrypt hash (htpasswd -nBC 10 \"\" | tr -d ':\\n')",
    ]


def test_docs_name_every_web_config_key() -> None:
    from dms_exporter.config import web as webconfig

    docs = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    section = docs[docs.index("## Web config") :]
    keys = [*webconfig._TOP_KEYS, *webconfig._TLS_KEYS, *webconfig._UNSUPPORTED_TLS, "headers"]
    for key in keys:
        assert re.search(rf"[`.]{key}[`.,]", section), key
    for name in (*webconfig.CURVES, *webconfig.CLIENT_AUTH_TYPES, *webconfig.HEADERS):
        assert f"`{name}`" in section, name


async def test_rate_limit_answers_429_beyond_the_burst(tmp_path: Path, serve: Serve) -> None:
    base = await serve(write(tmp_path / "web.yml", "rate_limit:\n  interval: 10s\n  burst: 3\n"))
    statuses = [(await get(f"{base}/-/healthy"))[0] for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
