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
    admit_body,
    make_runner,
    rate_limit_accept_errors,
    track_requests,
)

Start = Callable[..., Awaitable[tuple[str, int, GuardedSite]]]


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hello\n")


async def echo(request: web.Request) -> web.Response:
    """Reads the body, as a console form does."""
    return web.Response(text=f"{len(await request.read())} bytes\n")


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(3)
    return web.Response(text="slow\n")


@web.middleware
async def allow_only_ok(request: web.Request, handler: Any) -> web.StreamResponse:
    """A guard: refuses a POST without ``X-Ok`` before its body is read."""
    if request.method == "POST" and "X-Ok" not in request.headers:
        return web.Response(status=403, text="no\n")
    admit_body(request)
    return await handler(request)


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    runners: list[web.AppRunner] = []

    async def start_site(**limits: Any) -> tuple[str, int, GuardedSite]:
        app = web.Application(middlewares=[track_requests, allow_only_ok])
        app.router.add_get("/", hello)
        app.router.add_post("/echo", echo)
        app.router.add_get("/slow", slow)
        runner = make_runner(app)
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
    host, port, _ = await start(request_timeout=1.0)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
    began = time.monotonic()
    assert await closed_within(reader, 5)
    assert 0.9 <= time.monotonic() - began < 4
    silent_reader, _ = await asyncio.open_connection(host, port)  # sends nothing at all
    assert await closed_within(silent_reader, 5)


async def test_idle_keep_alive_is_closed_and_a_working_one_is_not(start: Start) -> None:
    host, port, _ = await start(request_timeout=5.0, idle_timeout=1.5)
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


SLOW_BODY = b"POST /echo HTTP/1.1\r\nHost: x\r\nX-Ok: 1\r\nContent-Length: 1000\r\n\r\na"


async def test_a_slow_body_is_cut_off_at_the_request_deadline(start: Start) -> None:
    host, port, _ = await start(request_timeout=1.0)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(SLOW_BODY)  # 1 of 1,000 bytes, then one more now and then
    began = time.monotonic()
    for _ in range(3):
        await asyncio.sleep(0.4)
        writer.write(b"a")
    assert await closed_within(reader, 5)
    assert 0.9 <= time.monotonic() - began < 4
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(SLOW_BODY.replace(b"1000", b"3") + b"bc")  # a whole body in time: answered
    assert b"3 bytes" in await reader.readuntil(b"bytes\n")


async def test_slow_bodies_cannot_hold_every_place(start: Start) -> None:
    host, port, site = await start(max_connections=6)
    slow_bodies = []
    for _ in range(12):
        _, writer = await asyncio.open_connection(host, port)
        writer.write(SLOW_BODY)
        slow_bodies.append(writer)
    await asyncio.sleep(0.3)
    assert len(site.connections) <= 6
    for _ in range(5):
        assert await get(host, port) == 200
    for writer in slow_bodies:
        writer.close()


async def test_a_refused_body_is_not_read_or_waited_for(start: Start) -> None:
    host, port, _ = await start(request_timeout=30.0)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(SLOW_BODY.replace(b"X-Ok: 1\r\n", b""))  # refused; its body never comes
    began = time.monotonic()
    assert (await reader.readuntil(b"no\n")).startswith(b"HTTP/1.1 403")
    assert await closed_within(reader, 5)  # closed after the answer: no lingering
    assert time.monotonic() - began < 2


async def test_one_address_holds_at_most_its_share(start: Start) -> None:
    host, port, site = await start(max_connections=8)
    assert site.client_share == 4

    async def slow_request(source: str) -> bytes:
        reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
        writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            return await reader.read(1024)
        except ConnectionError:
            return b""
        finally:
            writer.close()

    busy = [asyncio.create_task(slow_request("127.0.0.1")) for _ in range(8)]
    await asyncio.sleep(0.5)  # all eight asked; the first four are being answered
    other = await asyncio.wait_for(slow_request("127.0.0.2"), 5)
    assert b"slow" in other  # another address still gets in
    answers = await asyncio.gather(*busy)
    assert sum(b"slow" in answer for answer in answers) == 4


async def test_malformed_requests_are_quiet_debug_lines(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    host, port, _ = await start(request_timeout=1.0)  # the TLS bytes never end a head
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
