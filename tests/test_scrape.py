"""/metrics as HTTP clients see it: one gzip member every reader reads to the end, HEAD with
headers only, ``name[]`` picking families, and a client that hangs up mid-scrape."""

from __future__ import annotations

import asyncio
import gzip
import logging
import shutil
import socket
import zlib

import pytest
from conftest import exporter_config
from test_golden import data_lines as _data_lines

from dms_exporter.simulator import start_simulator

GZIP = {"Accept-Encoding": "gzip"}
OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


def data_lines(body: str) -> str:
    """The body without the health block (it moves between scrapes) and ``# EOF``."""
    return _data_lines(body.removesuffix("# EOF\n"))


async def get(client, path: str = "/metrics", **headers: str) -> bytes:
    headers = {"Accept-Encoding": "identity", **headers}  # aiohttp asks for gzip by default
    response = await client.get(path, headers=headers, auto_decompress=False)
    assert response.status == 200
    return await response.read()


@pytest.mark.parametrize("fmt", [{}, OPENMETRICS], ids=["text", "openmetrics"])
async def test_gzip_body_is_one_member_a_single_member_decoder_reads_to_the_end(
    simulator, start_exporter, fmt
):
    client = await start_exporter(exporter_config(simulator))
    plain = (await get(client, **fmt)).decode()
    zipped = await get(client, **GZIP, **fmt)
    decoder = zlib.decompressobj(wbits=31)
    body = decoder.decompress(zipped).decode()
    assert decoder.eof and decoder.unused_data == b""  # one member, nothing after it
    assert gzip.decompress(zipped).decode() == body
    assert data_lines(body) == data_lines(plain) and "dms_device_info{" in body
    assert body.endswith("# EOF\n" if fmt else "\n") and "dms_exporter_start_time_seconds" in body


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_curl_compressed_reads_the_whole_body(simulator, start_exporter):
    client = await start_exporter(exporter_config(simulator))
    plain = (await get(client)).decode()
    curl = await asyncio.create_subprocess_exec(
        "curl", "--silent", "--show-error", "--fail", "--compressed", "-D", "-",
        str(client.make_url("/metrics")),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(curl.communicate(), timeout=60)
    assert (curl.returncode, err) == (0, b"")
    headers, _, body = out.decode().partition("\r\n\r\n")
    assert "content-encoding: gzip" in headers.lower()
    assert data_lines(body) == data_lines(plain) and "dms_device_info{" in body
    last = body.rstrip().splitlines()[-1]  # the tail's last family: the whole body was read
    assert last.startswith('python_gc_collections_total{generation="2"} ')


def raw_exchange(port: int, request: bytes, timeout: float = 10.0) -> bytes:
    """Send raw HTTP/1.1 on one connection; read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def test_head_answers_headers_only_with_the_get_length(simulator, start_exporter):
    client = await start_exporter(exporter_config(simulator))
    path = "/metrics?name[]=dms_device_info"  # no health block: the same length every time
    for headers in ({}, GZIP):
        body = await get(client, path, **headers)
        request = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        # HEAD, then a GET on the same keep-alive connection: it must be read at the right place
        answer = await asyncio.to_thread(
            raw_exchange,
            client.port,
            f"HEAD {path} HTTP/1.1\r\nHost: x\r\n{request}\r\n"
            "GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(),
        )
        head, _, rest = answer.partition(b"\r\n\r\n")
        assert f"Content-Length: {len(body)}".encode() in head
        assert rest.startswith(b"HTTP/1.1 200 OK\r\n") and rest.endswith(b"Healthy\n")


async def test_name_filter_returns_only_the_named_families(simulator, start_exporter):
    client = await start_exporter(exporter_config(simulator))
    path = "/metrics?name[]=dms_device_info&name[]=dms_destination_status&name[]=dms_up"
    for headers in ({}, GZIP):
        body = await get(client, path, **headers)
        text = (gzip.decompress(body) if headers else body).decode()
        names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
        assert names == {"dms_device_info", "dms_destination_status", "dms_up"}
        assert text.count("dms_device_info{") == len(simulator.world.devices)
    om = (await get(client, "/metrics?name[]=dms_device", **OPENMETRICS)).decode()
    assert "# TYPE dms_device info\n" in om and om.endswith("# EOF\n")


async def test_a_client_hanging_up_mid_scrape_is_a_debug_line(start_exporter, caplog):
    async with start_simulator(devices=3000, seed=3, frozen=True) as sim:
        client = await start_exporter(exporter_config(sim))
        caplog.set_level(logging.DEBUG)

        def hang_up() -> bytes:
            with socket.create_connection(("127.0.0.1", client.port), timeout=10) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                return sock.recv(4096)

        for _ in range(3):
            assert (await asyncio.to_thread(hang_up)).startswith(b"HTTP/1.1 200")
        # the server notices the hang-up when a write fails: on a loaded machine that can take
        # a while, so wait for the line (bounded) rather than a fixed time
        async with asyncio.timeout(20):
            while not any("scrape client went away" in r.getMessage() for r in caplog.records):
                await asyncio.sleep(0.1)
        assert (await client.get("/-/healthy")).status == 200
        assert len(await get(client)) > 1_000_000  # still serves whole scrapes
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == []
    assert any("scrape client went away" in r.getMessage() for r in caplog.records)
