"""DmsClient against real HTTP servers on 127.0.0.1: paging, login, errors, timeouts, proxies.

aioresponses is not used: 0.7.9 fails every mocked request with aiohttp 3.14 (``stream_writer``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from dms_exporter.config import DmsSettings, EndpointSettings, Envelope, Paging
from dms_exporter.dms import DmsClient
from dms_exporter.errors import (
    DmsApiError,
    DmsAuthError,
    DmsConnectionError,
    DmsHttpError,
    DmsPageLimitError,
    DmsPayloadError,
    DmsTimeoutError,
    DmsUnavailableError,
)

PREFIX = "/dms-api/v1"
PASSWORD = "pw-Secr3t-77"
TOKEN = "tok-0123456789abcdef"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ServerFactory = Callable[..., Awaitable[Any]]


def settings(url: str, **overrides: Any) -> DmsSettings:
    values: dict[str, Any] = {
        "url": url,
        "username": "monitor",
        "password": PASSWORD,
        "proxy": "direct",
        "timeout": 2.0,
    }
    return DmsSettings(**{**values, **overrides})


def endpoint(name: str = "devices", path: str = "/devices", **overrides: Any) -> EndpointSettings:
    values: dict[str, Any] = {
        "name": name,
        "enabled": True,
        "interval": 60.0,
        "timeout": 5.0,
        "stale_after": 180.0,
        "path": path,
        "params": {},
        "fields": {},
    }
    return EndpointSettings(**{**values, **overrides})


def error_body(status: int, code: str, message: str = "text", **kw: Any) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, **kw)


class FakeDms:
    """A DMS with token login and one collection; tests replace handlers as they need."""

    def __init__(self, items: list[dict[str, Any]] | None = None) -> None:
        self.items = items if items is not None else [{"id": f"dev-{i}"} for i in range(2500)]
        self.tokens = {TOKEN}  # tokens the DMS accepts
        self.refuse_all = False
        self.next_tokens = [TOKEN]
        self.expires_in: float = 3600
        self.login_delay = 0.0
        self.logins: list[dict[str, Any]] = []
        self.requests: list[web.Request] = []

    def page(self, request: web.Request, total: bool = True) -> dict[str, Any]:
        offset = int(request.query.get("offset", 0))
        limit = int(request.query.get("limit", 1000))
        body = {"offset": offset, "limit": limit, "items": self.items[offset : offset + limit]}
        return {**body, "total": len(self.items)} if total else body

    async def login(self, request: web.Request) -> web.Response:
        credentials = await request.json()
        self.logins.append(credentials)
        await asyncio.sleep(self.login_delay)
        if credentials != {"username": "monitor", "password": PASSWORD}:
            return error_body(401, "INVALID_CREDENTIALS", "wrong username or password")
        token = self.next_tokens.pop(0) if len(self.next_tokens) > 1 else self.next_tokens[0]
        self.tokens.add(token)
        return web.json_response({"token": token, "expiresIn": self.expires_in})

    async def devices(self, request: web.Request) -> web.Response:
        self.requests.append(request)
        header = request.headers.get("Authorization", "")
        if self.refuse_all or header.removeprefix("Bearer ") not in self.tokens:
            return error_body(401, "UNAUTHORIZED", "token missing or expired")
        return web.json_response(self.page(request))

    async def start(self, aiohttp_server: ServerFactory, **routes: Handler) -> str:
        """Serve login plus ``routes`` (path without prefix -> handler); the base URL."""
        app = web.Application()
        app.router.add_post(PREFIX + "/auth/login", self.login)
        for path, handler in {"/devices": self.devices, **routes}.items():
            app.router.add_get(PREFIX + path, handler)
        server = await aiohttp_server(app, host="127.0.0.1")
        return str(server.make_url(PREFIX))


@pytest.fixture
async def dms(aiohttp_server: ServerFactory) -> AsyncIterator[tuple[FakeDms, DmsClient]]:
    fake = FakeDms()
    url = await fake.start(aiohttp_server)
    async with DmsClient(settings(url)) as client:
        yield fake, client


async def serve(aiohttp_server: ServerFactory, handler: Handler, **kw: Any) -> DmsClient:
    """A client for a DMS whose every GET under the prefix is ``handler`` (Basic auth)."""
    app = web.Application()
    app.router.add_get(PREFIX + "/{tail:.*}", handler)
    server = await aiohttp_server(app, host="127.0.0.1")
    return DmsClient(settings(str(server.make_url(PREFIX)), auth="basic", **kw))


async def fetch_error(client: DmsClient, ep: EndpointSettings | None = None) -> DmsApiError:
    """The error ``fetch`` raises; asserts the secrets are not in its message."""
    async with client:
        with pytest.raises(DmsApiError) as caught:
            await client.fetch(ep or endpoint())
    message = str(caught.value)
    assert PASSWORD not in message and TOKEN not in message
    assert caught.value.endpoint == (ep or endpoint()).name
    return caught.value


# --- shapes and paging -----------------------------------------------------------------------


async def test_envelope_is_followed_to_the_end(dms: tuple[FakeDms, DmsClient]) -> None:
    fake, client = dms
    items = await client.fetch(endpoint(params={"view": "full"}))
    assert items == fake.items
    assert [(r.query["offset"], r.query["limit"]) for r in fake.requests] == [
        ("0", "1000"),
        ("1000", "1000"),
        ("2000", "1000"),
    ]
    assert all(r.query["view"] == "full" for r in fake.requests)


async def test_short_page_without_total_is_the_end(aiohttp_server: ServerFactory) -> None:
    fake = FakeDms(items=[{"id": str(i)} for i in range(1010)])

    async def no_total(request: web.Request) -> web.Response:
        fake.requests.append(request)
        return web.json_response(fake.page(request, total=False))

    url = await fake.start(aiohttp_server, **{"/devices": no_total})
    async with DmsClient(settings(url)) as client:
        assert len(await client.fetch(endpoint())) == 1010
    assert len(fake.requests) == 2


async def test_short_page_before_total_is_not_the_end(aiohttp_server: ServerFactory) -> None:
    fake = FakeDms(items=[{"id": str(i)} for i in range(700)])

    async def capped(request: web.Request) -> web.Response:  # 300 a page, whatever limit says
        fake.requests.append(request)
        offset = int(request.query["offset"])
        page = {"total": 700, "offset": offset, "limit": 1000}
        return web.json_response({**page, "items": fake.items[offset : offset + 300]})

    url = await fake.start(aiohttp_server, **{"/devices": capped})
    async with DmsClient(settings(url)) as client:
        assert await client.fetch(endpoint()) == fake.items
    assert [r.query["offset"] for r in fake.requests] == ["0", "300", "600"]


async def test_bare_array_is_returned_whole(aiohttp_server: ServerFactory) -> None:
    calls = []

    async def bare(request: web.Request) -> web.Response:
        calls.append(request.path)
        return web.json_response([{"id": "a"}, {"id": "b"}])

    client = await serve(aiohttp_server, bare)
    async with client:
        assert await client.fetch(endpoint()) == [{"id": "a"}, {"id": "b"}]
    assert calls == [PREFIX + "/devices"]


async def test_object_is_returned_without_paging_params(aiohttp_server: ServerFactory) -> None:
    queries = []
    info = {"name": "DMS-PRIMARY", "version": "11.4.0.0", "role": "PRIMARY"}

    async def system(request: web.Request) -> web.Response:
        queries.append(dict(request.query))
        return web.json_response(info)

    client = await serve(aiohttp_server, system)
    async with client:
        assert await client.fetch(endpoint("system", "/system/info")) == info
    assert queries == [{}]


async def test_page_cap(aiohttp_server: ServerFactory) -> None:
    calls = []

    async def endless(request: web.Request) -> web.Response:  # full pages, no total, forever
        calls.append(request.query["offset"])
        return web.json_response({"items": [{"id": f"x{request.query['offset']}"}] * 10})

    client = await serve(aiohttp_server, endless, page_size=10, max_pages=3)
    error = await fetch_error(client)
    assert isinstance(error, DmsPageLimitError) and error.reason == "page_limit"
    assert "max_pages=3" in str(error)
    assert calls == ["0", "10", "20"]


async def test_a_page_that_repeats_the_previous_one_ends_the_poll(
    aiohttp_server: ServerFactory,
) -> None:
    calls = []

    async def ignores_offset(request: web.Request) -> web.Response:  # the same page, forever
        calls.append(request.query["offset"])
        return web.json_response({"items": [{"id": str(i)} for i in range(10)]})

    client = await serve(aiohttp_server, ignores_offset, page_size=10, max_pages=50)
    error = await fetch_error(client)
    assert error.reason == "payload"
    assert "page 2 repeats page 1: does the DMS ignore the parameter offset?" in str(error)
    assert calls == ["0", "10"]


async def test_a_next_link_to_another_server_is_refused(aiohttp_server: ServerFactory) -> None:
    """The token must never follow a link away from the DMS."""
    calls = []

    async def leading_away(request: web.Request) -> web.Response:
        calls.append(request.path_qs)
        return web.json_response({"results": [{"id": "1"}], "next": "http://elsewhere:1/x?p=2"})

    client = await serve(aiohttp_server, leading_away)
    paging = Paging(style="next", offset_param=None, size_param=None, next_path="next")
    ep = endpoint(envelope=Envelope(items="results", total=None), paging=paging)
    error = await fetch_error(client, ep)
    assert error.reason == "payload"
    assert "the next link leads away from the DMS: http://elsewhere:1/x?p=2" in str(error)
    assert calls == [PREFIX + "/devices"]


# --- authentication ----------------------------------------------------------------------------


async def test_token_login_then_bearer(dms: tuple[FakeDms, DmsClient]) -> None:
    fake, client = dms
    await client.fetch(endpoint())
    await client.fetch(endpoint())
    assert fake.logins == [{"username": "monitor", "password": PASSWORD}]
    assert {r.headers["Authorization"] for r in fake.requests} == {f"Bearer {TOKEN}"}
    assert client.logins == {"success": 1, "refused": 0, "unreachable": 0, "error": 0}


async def test_relogin_on_401_then_success(dms: tuple[FakeDms, DmsClient]) -> None:
    fake, client = dms
    fake.next_tokens = [TOKEN, "tok-second"]
    await client.fetch(endpoint())
    fake.tokens = {"tok-second"}  # the DMS forgets the first token
    assert len(await client.fetch(endpoint())) == 2500
    assert len(fake.logins) == 2
    assert fake.requests[-1].headers["Authorization"] == "Bearer tok-second"
    assert client.logins == {"success": 2, "refused": 0, "unreachable": 0, "error": 0}


async def test_second_401_is_an_auth_error(dms: tuple[FakeDms, DmsClient]) -> None:
    fake, client = dms
    await client.fetch(endpoint())  # the token works, then the DMS refuses every call
    fake.refuse_all = True
    error = await fetch_error(client)
    assert isinstance(error, DmsAuthError) and error.status == 401
    assert "HTTP 401 UNAUTHORIZED right after a successful login as 'monitor'" in str(error)
    assert len(fake.logins) == 2 and len(fake.requests) == 5  # 3 pages, then 401 twice
    # the new token was refused at once: a refused login, so the next poll waits for the
    # backoff instead of logging in again
    error = await fetch_error(client)
    assert "no login before the backoff ends" in str(error) and len(fake.logins) == 2


async def test_401_right_after_login_is_a_refused_login(dms: tuple[FakeDms, DmsClient]) -> None:
    fake, client = dms
    fake.refuse_all = True
    error = await fetch_error(client)
    assert isinstance(error, DmsAuthError) and error.status == 401
    assert "HTTP 401 UNAUTHORIZED right after a successful login as 'monitor'" in str(error)
    assert len(fake.logins) == 1 and len(fake.requests) == 1


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_login(aiohttp_server: ServerFactory, status: int) -> None:
    fake = FakeDms()

    async def refuse(request: web.Request) -> web.Response:
        fake.logins.append(await request.json())
        return error_body(status, "INVALID_CREDENTIALS", f"bad password {PASSWORD}")

    app = web.Application()
    app.router.add_post(PREFIX + "/auth/login", refuse)
    server = await aiohttp_server(app, host="127.0.0.1")
    client = DmsClient(settings(str(server.make_url(PREFIX))))
    error = await fetch_error(client)
    assert isinstance(error, DmsAuthError) and error.reason == "auth"
    assert error.status == status and error.code == "INVALID_CREDENTIALS"
    assert str(error).startswith("devices: POST /auth/login: login as 'monitor' refused")
    assert client.logins == {"success": 0, "refused": 1, "unreachable": 0, "error": 0}


async def test_wrong_password_counts_a_failed_login(aiohttp_server: ServerFactory) -> None:
    fake = FakeDms()
    url = await fake.start(aiohttp_server)
    client = DmsClient(settings(url, password="wrong-one"))
    assert isinstance(await fetch_error(client), DmsAuthError)
    assert client.logins == {"success": 0, "refused": 1, "unreachable": 0, "error": 0}
    assert fake.requests == []


async def test_concurrent_fetches_log_in_once(dms: tuple[FakeDms, DmsClient]) -> None:
    fake, client = dms
    fake.login_delay = 0.05
    results = await asyncio.gather(*(client.fetch(endpoint()) for _ in range(8)))
    assert all(len(r) == 2500 for r in results)
    assert len(fake.logins) == 1


async def test_token_renewed_before_expiry(dms: tuple[FakeDms, DmsClient]) -> None:
    fake, client = dms
    fake.expires_in = 0.3
    await client.fetch(endpoint())
    await asyncio.sleep(0.3)
    await client.fetch(endpoint())
    assert len(fake.logins) == 2
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in fake.requests)


async def test_basic_auth_on_every_call(aiohttp_server: ServerFactory) -> None:
    headers = []

    async def basic(request: web.Request) -> web.Response:
        headers.append(request.headers.get("Authorization"))
        return web.json_response({"total": 3, "items": [{"id": "a"}, {"id": "b"}, {"id": "c"}]})

    client = await serve(aiohttp_server, basic)
    async with client:
        await client.fetch(endpoint())
        await client.fetch(endpoint("groups", "/groups"))
    expected = "Basic " + base64.b64encode(f"monitor:{PASSWORD}".encode()).decode()
    assert headers == [expected, expected]
    assert client.logins == {"success": 0, "refused": 0, "unreachable": 0, "error": 0}


# --- HTTP errors and bad bodies ----------------------------------------------------------------


def answer(status: int, body: bytes | str = b"", **headers: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        content_type = headers.pop("content_type", "application/json")
        return web.Response(status=status, body=body, content_type=content_type, headers=headers)

    return handler


@pytest.mark.parametrize(
    ("status", "headers", "reason", "retry_after"),
    [
        (500, {}, "unavailable", None),
        (503, {"Retry-After": "7"}, "unavailable", 7.0),
        (429, {"Retry-After": "3"}, "rate_limited", 3.0),
        (429, {"Retry-After": "soon"}, "rate_limited", None),
    ],
)
async def test_unavailable(
    aiohttp_server: ServerFactory,
    status: int,
    headers: dict[str, str],
    reason: str,
    retry_after: float | None,
) -> None:
    body = json.dumps({"error": {"code": "BUSY", "message": "try later"}})
    error = await fetch_error(await serve(aiohttp_server, answer(status, body, **headers)))
    assert isinstance(error, DmsUnavailableError)
    assert (error.reason, error.status, error.retry_after, error.code) == (
        reason,
        status,
        retry_after,
        "BUSY",
    )
    assert str(error).startswith(f"devices: GET /devices: HTTP {status} BUSY: try later")


async def test_retry_after_as_http_date(aiohttp_server: ServerFactory) -> None:
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 120))
    error = await fetch_error(await serve(aiohttp_server, answer(503, "", **{"Retry-After": when})))
    assert isinstance(error, DmsUnavailableError)
    assert error.retry_after is not None and 100 < error.retry_after <= 121


async def test_404_carries_the_dms_error_code(aiohttp_server: ServerFactory) -> None:
    echo = f"no such path; your token {TOKEN} and password {PASSWORD}\n" + "x" * 500
    body = json.dumps({"error": {"code": "NOT_FOUND", "message": echo}})
    url = await FakeDms().start(aiohttp_server, **{"/devices": answer(404, body)})
    error = await fetch_error(DmsClient(settings(url)))  # token auth: the client knows the token
    assert isinstance(error, DmsHttpError) and error.reason == "http_error"
    assert (error.status, error.code) == (404, "NOT_FOUND")
    assert str(error).startswith("devices: GET /devices: HTTP 404 NOT_FOUND: no such path")
    assert len(str(error)) < 200  # an excerpt, not the body


@pytest.mark.parametrize("status", [200, 502])
async def test_html_page(aiohttp_server: ServerFactory, status: int) -> None:
    html = "<html><body><h1>Proxy login</h1>" + "blah " * 200 + "</body></html>"
    handler = answer(status, html, content_type="text/html")
    error = await fetch_error(await serve(aiohttp_server, handler))
    assert isinstance(error, DmsPayloadError if status == 200 else DmsUnavailableError)
    assert "Proxy login" not in str(error)
    assert f"devices: GET /devices: HTTP {status}" in str(error)


@pytest.mark.parametrize("body", [b"not json at all", b'{"items": [1, 2', b"\xff\xfe\x00"])
async def test_not_json(aiohttp_server: ServerFactory, body: bytes) -> None:
    error = await fetch_error(await serve(aiohttp_server, answer(200, body)))
    assert isinstance(error, DmsPayloadError) and error.reason == "payload"
    assert "not JSON" in str(error)


@pytest.mark.parametrize(
    "body",
    [
        b'\xef\xbb\xbf[{"id": "a", "signal": 1.5}]',  # a byte order mark first
        b'[{"id": "a", "signal": NaN}]',  # what some JSON writers send for a missing number
        '[{"id": "a", "signal": 1.5}]'.encode("utf-16"),
    ],
)
async def test_answers_json_reads_loosely_are_still_read(
    aiohttp_server: ServerFactory, body: bytes
) -> None:
    client = await serve(aiohttp_server, answer(200, body))
    async with client:
        items = await client.fetch(endpoint())
    assert [item["id"] for item in items] == ["a"]


async def test_json_scalar_is_a_payload_error(aiohttp_server: ServerFactory) -> None:
    error = await fetch_error(await serve(aiohttp_server, answer(200, b'"hello"')))
    assert isinstance(error, DmsPayloadError)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_oversized_body_is_refused(
    aiohttp_server: ServerFactory, monkeypatch: pytest.MonkeyPatch, chunked: bool
) -> None:
    monkeypatch.setattr("dms_exporter.dms.client.MAX_BODY_BYTES", 4096)
    body = b"[" + b",".join([b'{"id": "dev-000001"}'] * 1000) + b"]"

    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if chunked:
            response.enable_chunked_encoding()
        else:
            response.content_length = len(body)
        await response.prepare(request)
        for start in range(0, len(body), 1024):
            await response.write(body[start : start + 1024])
        return response

    error = await fetch_error(await serve(aiohttp_server, big))
    assert isinstance(error, DmsPayloadError)
    assert "larger than" in str(error)


@contextlib.asynccontextmanager
async def raw_server(reply: bytes | None) -> AsyncIterator[str]:
    """A TCP server that reads a request, writes ``reply`` (None: nothing) and hangs up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if reply is not None:
            writer.write(reply)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}{PREFIX}"


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{",
        None,  # the server hangs up without answering
    ],
    ids=["truncated", "disconnected"],
)
async def test_connection_dropped(reply: bytes | None) -> None:
    async with raw_server(reply) as url:
        error = await fetch_error(DmsClient(settings(url, auth="basic")))
    assert isinstance(error, DmsConnectionError) and error.reason == "connection"
    assert str(error).startswith("devices: GET /devices: ")


async def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = await fetch_error(DmsClient(settings(f"http://127.0.0.1:{port}{PREFIX}")))
    assert isinstance(error, DmsConnectionError)
    assert str(error).startswith("devices: POST /auth/login: connection failed")


# --- time limits -------------------------------------------------------------------------------


async def test_request_timeout(aiohttp_server: ServerFactory) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.json_response([])

    client = await serve(aiohttp_server, slow, timeout=0.2)
    started = time.monotonic()
    error = await fetch_error(client)
    assert time.monotonic() - started < 0.8
    assert isinstance(error, DmsTimeoutError) and error.reason == "timeout"
    assert "no answer within dms.timeout=0.2s" in str(error)


async def test_whole_fetch_timeout(aiohttp_server: ServerFactory) -> None:
    async def slow_pages(request: web.Request) -> web.Response:  # each page is quick enough
        await asyncio.sleep(0.1)
        return web.json_response({"items": [{"id": f"x{request.query['offset']}"}] * 10})

    client = await serve(aiohttp_server, slow_pages, page_size=10, timeout=1.0)
    started = time.monotonic()
    error = await fetch_error(client, endpoint(timeout=0.35))
    assert time.monotonic() - started < 0.8
    assert isinstance(error, DmsTimeoutError)
    assert str(error) == "devices: GET /devices: the poll did not finish within 0.35s"


# --- proxies -----------------------------------------------------------------------------------


@pytest.fixture
async def proxy(aiohttp_raw_server: ServerFactory) -> tuple[str, list[str]]:
    """A forward proxy stand-in: answers every request itself and records the URL asked for."""
    seen: list[str] = []

    async def handler(request: web.BaseRequest) -> web.Response:
        seen.append(str(request.url))
        return web.json_response([{"id": "via-proxy"}])

    server = await aiohttp_raw_server(handler, host="127.0.0.1")
    return str(server.make_url("")), seen


@pytest.fixture
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


async def test_direct_ignores_proxy_env(
    aiohttp_server: ServerFactory, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    clean_proxy_env.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # would refuse the connection
    fake = FakeDms()
    url = await fake.start(aiohttp_server)
    async with DmsClient(settings(url, proxy="direct")) as client:
        assert len(await client.fetch(endpoint())) == 2500


async def test_environment_uses_proxy_env(
    proxy: tuple[str, list[str]], clean_proxy_env: pytest.MonkeyPatch
) -> None:
    proxy_url, seen = proxy
    clean_proxy_env.setenv("HTTP_PROXY", proxy_url)
    client = DmsClient(settings("http://dms.invalid/dms-api/v1", proxy="environment", auth="basic"))
    async with client:
        assert await client.fetch(endpoint()) == [{"id": "via-proxy"}]
    assert seen == ["http://dms.invalid/dms-api/v1/devices?offset=0&limit=1000"]


async def test_proxy_url_is_used(
    proxy: tuple[str, list[str]], clean_proxy_env: pytest.MonkeyPatch
) -> None:
    proxy_url, seen = proxy
    clean_proxy_env.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # not the one configured
    dms = settings("http://dms.invalid/dms-api/v1", proxy="url", proxy_url=proxy_url, auth="basic")
    async with DmsClient(dms) as client:
        assert await client.fetch(endpoint()) == [{"id": "via-proxy"}]
    assert seen == ["http://dms.invalid/dms-api/v1/devices?offset=0&limit=1000"]
