"""The listener under abuse, on a real socket: slow headers and idle keep-alive connections are
closed, a full server makes room for a new client, and a client's fault is one quiet line."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from dms_exporter.web.server import (
    GuardedSite,
    quiet_server_logger,
    rate_limit_accept_errors,
    track_requests,
)

Start = Callable[..., Awaitable[tuple[str, int, GuardedSite]]]


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hello\n")


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    runners: list[web.AppRunner] = []

    async def start_site(**limits: Any) -> tuple[str, int, GuardedSite]:
        app = web.Application(middlewares=[track_requests])
        app.router.add_get("/", hello)
        runner = web.AppRunner(app, logger=quiet_server_logger(), keepalive_timeout=75)
        await runner.setup()
        runners.append(runner)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        site = GuardedSite(runner, "127.0.0.1", port, **limits)
        await site.start()
        return "127.0.0.1", port, site

    yield start_site
    for runner in runners:
        await runner.cleanup()


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True if the server closes the connection within ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(1024):
                pass
        return True
    except TimeoutError:
        return False


async def get(host: str, port: int) -> int:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(f"http://{host}:{port}/") as response,
    ):
        return response.status


async def test_slow_headers_are_cut_off(start: Start) -> None:
    host, port, _ = await start(header_timeout=1.0)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
    began = time.monotonic()
    assert await closed_within(reader, 5)
    assert 0.9 <= time.monotonic() - began < 4
    silent_reader, _ = await asyncio.open_connection(host, port)  # sends nothing at all
    assert await closed_within(silent_reader, 5)


async def test_idle_keep_alive_is_closed_and_a_working_one_is_not(start: Start) -> None:
    host, port, _ = await start(header_timeout=5.0, idle_timeout=1.5)
    reader, writer = await asyncio.open_connection(host, port)
    for _ in range(3):  # busy with requests for longer than the idle limit: kept open
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"hello" in await reader.readuntil(b"hello\n")
        await asyncio.sleep(0.7)
    began = time.monotonic()
    assert await closed_within(reader, 5)
    assert time.monotonic() - began < 3


async def test_a_full_server_makes_room_for_a_new_client(start: Start) -> None:
    host, port, site = await start(max_connections=5)
    idle = [await asyncio.open_connection(host, port) for _ in range(20)]
    await asyncio.sleep(0.2)
    assert len(site.connections) <= 5
    for _ in range(5):
        assert await get(host, port) == 200
    assert len(site.connections) <= 5
    for _, writer in idle:
        writer.close()


async def test_malformed_requests_are_quiet_debug_lines(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    host, port, _ = await start(header_timeout=1.0)  # the TLS bytes never end a head
    caplog.set_level(logging.DEBUG)
    for request in (
        b"GARBAGE\r\n\r\n",
        b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 64,  # TLS to the HTTP port
    ):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(request)
        await closed_within(reader, 5)
        writer.close()
    reader, writer = await asyncio.open_connection(host, port)  # hangs up mid-request
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    writer.transport.abort()
    await asyncio.sleep(0.2)
    assert await get(host, port) == 200
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == []
    assert [r.getMessage() for r in caplog.records if r.exc_info or r.exc_text] == []
    quiet = [r for r in caplog.records if r.name == "dms_exporter.http"]
    assert len(quiet) >= 3


async def test_accept_errors_are_one_line_per_interval_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    rate_limit_accept_errors(loop, interval=0.5)
    try:
        error = OSError(errno.EMFILE, "Too many open files")
        context = {"message": "socket.accept() out of system resource", "exception": error}
        with caplog.at_level(logging.ERROR):
            for _ in range(10_000):
                loop.call_exception_handler(context)
            await asyncio.sleep(0.6)
            loop.call_exception_handler(context)
    finally:
        loop.set_exception_handler(previous)
    lines = [(r.getMessage(), r.error, r.count) for r in caplog.records]  # type: ignore[attr-defined]
    assert lines == [
        ("cannot accept connections", "Too many open files", 1),
        ("cannot accept connections", "Too many open files", 10000),
    ]


def test_idle_connections_at_a_low_file_limit_leave_scrapes_working_and_logs_quiet() -> None:
    """The bench (bench/bench_slowloris.py) small: 600 idle connections against an exporter
    process limited to 256 files, a scrape a second on a new connection, each within 1 s."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from bench_slowloris import measure

    result = measure(connections=600, seconds=6, nofile=256, reconnect=False)
    assert result["alive"]
    assert len(result["scrapes"]) >= 3
    assert all(isinstance(s, float) for s in result["scrapes"]), result["scrapes"]
    assert result["log"].count(b"\n") < 100
