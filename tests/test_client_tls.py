"""HTTPS to the DMS: a CA file, the system trust store, and verification switched off, against a
real TLS server on 127.0.0.1 with a certificate made for the test by openssl."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from dms_exporter.config import DmsSettings, EndpointSettings, TlsSettings
from dms_exporter.dms import DmsClient
from dms_exporter.errors import DmsConnectionError

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")

DEVICES = [{"id": "dev-000001"}, {"id": "dev-000002"}]
ENDPOINT = EndpointSettings(
    name="devices", enabled=True, interval=60, timeout=10, stale_after=180,
    path="/devices", params={}, fields={},
)  # fmt: skip


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    cert, key = tmp_path / "dms.crt", tmp_path / "dms.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


@pytest.fixture
async def https_dms(certificate: tuple[Path, Path]) -> AsyncIterator[str]:
    """A DMS over HTTPS on 127.0.0.1 (Basic auth, one bare-array endpoint); yields its URL."""

    async def devices(request: web.Request) -> web.Response:
        return web.json_response(DEVICES)

    app = web.Application()
    app.router.add_get("/dms-api/v1/devices", devices)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    await web.SockSite(runner, sock, ssl_context=context).start()
    try:
        yield f"https://127.0.0.1:{port}/dms-api/v1"
    finally:
        await runner.cleanup()


def settings(url: str, tls: TlsSettings) -> DmsSettings:
    return DmsSettings(url=url, username="monitor", password="pw", auth="basic",
                       proxy="direct", tls=tls, timeout=5)  # fmt: skip


async def test_ca_file_makes_the_dms_certificate_trusted(https_dms, certificate):
    tls = TlsSettings(verify=True, ca_file=str(certificate[0]))
    async with DmsClient(settings(https_dms, tls)) as client:
        assert await client.fetch(ENDPOINT) == DEVICES


async def test_unknown_certificate_is_refused_as_a_connection_error(https_dms):
    async with DmsClient(settings(https_dms, TlsSettings(verify=True))) as client:
        with pytest.raises(DmsConnectionError) as caught:
            await client.fetch(ENDPOINT)
    assert caught.value.reason == "connection"
    assert "certificate" in str(caught.value).lower()


async def test_verification_off_accepts_any_certificate(https_dms):
    async with DmsClient(settings(https_dms, TlsSettings(verify=False))) as client:
        assert await client.fetch(ENDPOINT) == DEVICES
