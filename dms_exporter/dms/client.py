"""The DMS HTTP client: one aiohttp session, login, paging, and every failure as an ``errors`` type.

``DmsClient.fetch`` returns the endpoint's JSON: a list (paging envelopes followed to the end and
unwrapped, or a bare array) or an object (``/system/info``). It never sleeps for ``Retry-After``;
it carries the hint on the error and the poller decides. Messages name the endpoint, method, path
and status and never hold the password, the token or more than a short excerpt of a body.

A body cut short of its ``Content-Length`` (the connection dropped mid-answer) is a
``DmsConnectionError``: the transport failed, the DMS may have sent valid JSON. A body that arrived
whole but is not JSON, is HTML, or has the wrong shape is a ``DmsPayloadError``.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import hashlib
import json
import logging
import math
import re
import ssl
import time
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any, NamedTuple, Self
from urllib.parse import urljoin, urlsplit

import aiohttp
import orjson
from yarl import URL

from .. import __version__
from ..config import DmsSettings, EndpointSettings
from ..config.secrets import known_secrets, mask
from ..errors import (
    DmsApiError,
    DmsAuthError,
    DmsConnectionError,
    DmsHttpError,
    DmsIncompleteError,
    DmsPageLimitError,
    DmsPayloadError,
    DmsTimeoutError,
    DmsUnavailableError,
)
from ..model import DmsLinks, LoginState
from ..vocabulary import encodable
from .auth import Answer, Login, basic_header, refusal_text
from .budget import Budget
from .cookies import OriginJar, origin
from .failover import Failover
from .paging import OnPage, Page, PagingError, collect

__all__ = ["DmsClient"]

log = logging.getLogger(__name__)

_DECODE_IN_THREAD_BYTES = 1 << 20  # decode larger bodies off the event loop
#: A body larger than this is refused, so a runaway proxy or DMS cannot exhaust memory; a page
#: of 1,000 devices is about 0.5 MB and a bare array of 100,000 devices about 45 MB.
MAX_BODY_BYTES = 256 << 20
_EXCERPT_CHARS = 120
#: Redirects followed for one request (each on the DMS's own origin).
MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: Endpoints whose requests go first within the request budget (dms.max_concurrency).
PRIORITY_ENDPOINTS = frozenset({"alarms", "system"})
#: The longest a Retry-After of the DMS holds back every request (longer hints are cut to it,
#: so that data does not go stale for a typo in a proxy's header).
MAX_PAUSE = 600.0
#: The settings that decide which DMS is reached and how one logs in to it.
_CONNECTION_FIELDS = (
    "url", "standby_urls", "username", "password", "auth", "login_path", "proxy", "proxy_url",
    "tls", "login", "token_header", "api_key_header",
)  # fmt: skip


class Reply(NamedTuple):
    """An answer read whole: the response, its body (not decoded) and the redirects on the way."""

    response: aiohttp.ClientResponse
    body: bytes
    hops: tuple[aiohttp.ClientResponse, ...]


class DmsClient:
    """Talks to one DMS. Create it anywhere; its session is made on first use in the loop."""

    def __init__(
        self,
        settings: DmsSettings,
        login_state: LoginState | None = None,
        *,
        clock: Callable[[], float] = time.time,
        links: DmsLinks | None = None,
    ) -> None:
        """``login_state`` receives the login counts and backoff, ``links`` the active URL and
        reachability (new ones if not given); ``clock`` (Unix time) times the login backoff."""
        self.settings = settings
        self._known_secrets = known_secrets(settings)
        self._tokens: list[str] = []  # the last tokens sent
        self._session: aiohttp.ClientSession | None = None
        self._jar: OriginJar | None = None  # the session's cookies
        self._budget = Budget(settings.max_concurrency)
        self._failover = Failover(self, login_state or LoginState(), links or DmsLinks(), clock)
        #: loop time before which no request starts (a Retry-After of the DMS, for everyone)
        self.paused_until = 0.0

    @property
    def _login(self) -> Login:
        """The login at the member talked to now (a failover brings a new one)."""
        return self._failover.login

    @property
    def login_warning(self) -> str:
        """What the last login answer lacked that the config expects ("" if nothing)."""
        return self._login.warning

    @property
    def logins(self) -> dict[str, int]:
        """Login attempts by result (``model.LOGIN_RESULTS``)."""
        return self._login.state.counts

    def same_connection(self, settings: DmsSettings) -> bool:
        """True if ``settings`` reach and log in to the DMS as this client does, so the
        session and the token can be kept."""
        return all(getattr(settings, f) == getattr(self.settings, f) for f in _CONNECTION_FIELDS)

    def reconfigure(self, settings: DmsSettings) -> None:
        """Adopt settings that keep the session and the token (timeouts, paging, the budget);
        see ``same_connection``."""
        self._budget.resize(settings.max_concurrency)
        self._failover.links.hold = settings.failover_hold
        self.settings = settings

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session (and stop checking for failback); a later ``fetch`` opens a new
        session."""
        await self._failover.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(
        self,
        endpoint: EndpointSettings,
        on_page: OnPage | None = None,
        *,
        stats: dict[str, Any] | None = None,
        truncate: bool = False,
    ) -> Any:
        """GET ``endpoint``'s JSON, following pages; the whole call within ``endpoint.timeout``.
        With ``on_page``, a list endpoint's items go to it page by page (``paging.collect``).
        ``stats`` receives ``pages`` and the last HTTP ``status``; ``truncate`` returns the items
        of ``dms.max_pages`` pages instead of failing with ``page_limit`` (``--probe.pages``)."""
        try:
            async with asyncio.timeout(endpoint.timeout):
                active = self._failover.links.active
                body = await self._fetch(endpoint, on_page, stats, truncate)
                if endpoint.name == "system":
                    self._failover.note_system(active, endpoint, body)
                return body
        except DmsApiError:
            raise
        except TimeoutError as exc:
            raise DmsTimeoutError(
                f"{endpoint.name}: GET {endpoint.path}: the poll did not finish within "
                f"{endpoint.timeout:g}s",
                endpoint=endpoint.name,
            ) from exc

    async def _fetch(
        self,
        endpoint: EndpointSettings,
        on_page: OnPage | None,
        stats: dict[str, Any] | None = None,
        truncate: bool = False,
    ) -> Any:
        if endpoint.name == "system":  # the one endpoint that is a single object
            body = await self._get(endpoint, dict(endpoint.params))
            if stats is not None:
                stats["pages"] = 1
            if isinstance(body, list | dict):
                return body
            detail = f"not a JSON object or array but {type(body).__name__}"
            raise self.error(DmsPayloadError, endpoint, "GET", endpoint.path, detail)

        async def get(target: str, params: Mapping[str, str] | None) -> Page:
            link: dict[str, str] = {}
            if params is None:  # a next link the DMS sent
                body = await self._get(endpoint, None, url=self._same_origin(endpoint, target),
                                       headers_out=link)  # fmt: skip
            else:
                body = await self._get(endpoint, dict(params), headers_out=link)
            return Page(body, link.get("Link"), link.get(":status"), link.get(":digest"))

        try:
            return await collect(
                get,
                endpoint.path,
                endpoint.params,
                endpoint.envelope,
                endpoint.paging,
                page_size=self.settings.page_size,
                max_pages=self.settings.max_pages,
                on_page=on_page,
                stats=stats,
                truncate=truncate,
            )
        except PagingError as exc:
            cls: type[DmsApiError] = DmsPayloadError
            if exc.page_limit or exc.incomplete:
                cls = DmsPageLimitError if exc.page_limit else DmsIncompleteError
            raise self.error(cls, endpoint, "GET", endpoint.path, str(exc)) from exc

    def _same_origin(self, endpoint: EndpointSettings, link: str) -> str:
        """A next link as an absolute URL; refused unless on the DMS's own scheme, host and
        port (the token must never go to another server)."""
        base = self._failover.links.active + endpoint.path
        url = urljoin(base, link)
        if urlsplit(url)[:2] != urlsplit(base)[:2]:
            detail = f"the next link leads away from the DMS: {self._excerpt(link)}"
            raise self.error(DmsPayloadError, endpoint, "GET", endpoint.path, detail)
        return url

    async def _get(
        self,
        endpoint: EndpointSettings,
        params: dict[str, str] | None,
        *,
        url: str | None = None,
        headers_out: dict[str, str] | None = None,
    ) -> Any:
        """One authenticated GET (of ``url`` instead of the endpoint's path when given); with
        a token, log in again once on 401 and retry once."""
        kwargs: dict[str, Any] = {"params": params, "url": url, "headers_out": headers_out}
        if self.settings.auth != "token":  # basic and api_key: in the session's headers
            return await self.request(endpoint, "GET", endpoint.path, **kwargs)
        login = self._login
        token = await login.token(endpoint)
        try:
            body = await self.request(endpoint, "GET", endpoint.path, token=token, **kwargs)
        except (DmsAuthError, DmsHttpError) as exc:
            if not _session_ended(exc, login):
                raise
            refusal = login.refused(endpoint, token, exc)  # right after the login: no new one
            if refusal is not None:
                raise refusal from exc
            log.debug("session refused, logging in again", extra={"endpoint": endpoint.name})
        else:
            login.accepted(token)
            return body
        login = self._login  # a failover may have moved to another member meanwhile
        token = await login.token(endpoint, refused=token)  # in the backoff: its error
        try:
            body = await self.request(endpoint, "GET", endpoint.path, token=token, **kwargs)
        except (DmsAuthError, DmsHttpError) as exc:
            if not _session_ended(exc, login):
                raise
            refusal = login.refused(endpoint, token, exc)
            if refusal is not None:
                raise refusal from exc
            code = exc.code or "no error code"
            detail = f"{refusal_text(exc)} even after logging in again ({code})"
            status = exc.status
            error = self.error(DmsAuthError, endpoint, "GET", endpoint.path, detail, status=status)
            raise error from exc
        login.accepted(token)
        return body

    async def request(
        self,
        endpoint: EndpointSettings,
        method: str,
        path: str,
        *,
        headers_out: dict[str, str] | None = None,
        **send: Any,
    ) -> Any:
        """One HTTP request within ``settings.timeout``; the decoded JSON of a 2xx answer.

        ``send``: the keywords of ``_send`` (``params``, ``token``, ``url``, ``base``...);
        ``headers_out`` receives the answer's ``Link`` header, its status (as ``:status``) and
        the SHA-1 of its body (as ``:digest``)."""
        reply = await self._send(endpoint, method, path, **send)
        if headers_out is not None:  # for paging (Link), its pages and --probe (the status)
            headers = reply.response.headers
            headers_out[":status"] = str(reply.response.status)
            headers_out[":digest"] = hashlib.sha1(reply.body, usedforsecurity=False).hexdigest()
            if "Link" in headers:
                headers_out["Link"] = headers["Link"]
        return await self._decode(endpoint, method, path, reply)

    async def answer(
        self, endpoint: EndpointSettings, method: str, path: str, *, json: bool, **kwargs: Any
    ) -> Answer:
        """The login's answer (``auth.Transport.answer``): headers, cookies set, JSON."""
        reply = await self._send(endpoint, method, path, **kwargs)
        cookies: dict[str, str] = {}
        for step in (*reply.hops, reply.response):
            cookies.update((name, m.value) for name, m in step.cookies.items() if m.value)
        try:
            decoded = await self._decode(endpoint, method, path, reply)
        except DmsPayloadError:
            if json:
                raise
            decoded = None  # the token is elsewhere: the body may be empty, a page, anything
        return Answer(reply.response.headers, cookies, decoded)

    async def _send(
        self,
        endpoint: EndpointSettings,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: dict[str, str] | None = None,
        form_body: dict[str, str] | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        url: str | None = None,
        base: str | None = None,
    ) -> Reply:
        """One HTTP request up to a 2xx answer, read whole. The request goes to ``base + path``,
        ``base`` by default the active DMS URL; ``url`` replaces that. A call redirected to an
        HTML page or the login path is a ``DmsAuthError`` (the session ended), unless it is the
        login itself; a redirect to another origin is not followed (``_exchange``)."""
        settings = self.settings
        base = base or self._failover.links.active
        if token and token not in self._tokens:  # masked even after a new login replaced it
            self._tokens = [*self._tokens[-3:], token]
        if token and settings.login.sends_token:
            headers = {
                **(headers or {}),
                settings.token_header.name: settings.token_header.value(token),
            }
        proxy = settings.proxy_url if settings.proxy == "url" else None
        session = self._get_session(endpoint)
        loop = asyncio.get_running_loop()
        if self.paused_until > loop.time():  # the DMS asked every client to wait
            await asyncio.sleep(self.paused_until - loop.time())
        # the login has priority too: every poll waits for it
        priority = endpoint.name in PRIORITY_ENDPOINTS or path == settings.login_path
        await self._budget.acquire(priority)
        # The exchange runs as its own task and keeps its slot until the DMS has answered (or
        # dms.timeout): a poll that gives up must not leave the DMS working on a request the
        # budget no longer counts.
        exchange = asyncio.create_task(
            self._exchange(
                session,
                method,
                url or base + path,
                params,
                json_body,
                form_body,
                headers,
                proxy,
            )
        )
        login = path == settings.login_path and token is None
        exchange.add_done_callback(functools.partial(self._exchange_done, base, login))
        try:
            reply = await asyncio.shield(exchange)
        except TimeoutError as exc:
            detail = f"no answer within dms.timeout={settings.timeout:g}s"
            raise self.error(DmsTimeoutError, endpoint, method, path, detail) from exc
        except _BodyTooLarge as exc:
            detail = f"the answer is larger than {MAX_BODY_BYTES >> 20} MiB"
            raise self.error(DmsPayloadError, endpoint, method, path, detail) from exc
        except aiohttp.ClientPayloadError as exc:
            detail = f"the answer was cut off: {self._excerpt(str(exc))}"
            raise self.error(DmsConnectionError, endpoint, method, path, detail) from exc
        except (aiohttp.ClientError, OSError) as exc:
            detail = f"connection failed: {self._excerpt(str(exc)) or type(exc).__name__}"
            raise self.error(DmsConnectionError, endpoint, method, path, detail) from exc
        response, hops = reply.response, reply.hops
        status = response.status
        target = _redirect_target(response)
        if target is not None:  # not followed: another origin, or too many
            away = origin(target) != origin(response.url)
            why = f"redirected away from the DMS, to {self._excerpt(str(target.origin()))}"
            detail = f"HTTP {status}: " + (why if away else f"more than {MAX_REDIRECTS} redirects")
            raise self.error(DmsHttpError, endpoint, method, path, detail, status=status)
        if not 200 <= status < 300:
            raise self._status_error(endpoint, method, path, reply)
        if hops and not login and self._at_login_page(response):
            to = self._excerpt(response.url.path)
            detail = f"the session ended: redirected to {to}"
            raise self.error(DmsAuthError, endpoint, method, path, detail, status=hops[0].status)
        return reply

    def _at_login_page(self, response: aiohttp.ClientResponse) -> bool:
        """Whether a redirected call ended at a login page: HTML, or the login path."""
        login_path = urlsplit(self._failover.links.active + self.settings.login_path).path
        return response.content_type == "text/html" or response.url.path == login_path

    async def _decode(
        self, endpoint: EndpointSettings, method: str, path: str, reply: Reply
    ) -> Any:
        """The JSON of a 2xx answer, or a ``DmsPayloadError``."""
        body, status = reply.body, reply.response.status
        if reply.response.content_type == "text/html":
            detail = f"HTTP {status}: an HTML page, not JSON (a proxy or login page?)"
            raise self.error(DmsPayloadError, endpoint, method, path, detail, status=status)
        try:
            if len(body) > _DECODE_IN_THREAD_BYTES:
                return await asyncio.get_running_loop().run_in_executor(None, decode_json, body)
            return decode_json(body)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            detail = f"HTTP {status}: the body is not JSON ({self._excerpt(str(exc))})"
            error = self.error(DmsPayloadError, endpoint, method, path, detail, status=status)
            raise error from exc

    async def _exchange(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        params: dict[str, str] | None,
        json_body: dict[str, str] | None,
        form_body: dict[str, str] | None,
        headers: dict[str, str] | None,
        proxy: str | None,
    ) -> Reply:
        """Send one request and read the whole answer, within ``dms.timeout``. Redirects are
        followed here, up to ``MAX_REDIRECTS`` and only on the request's own scheme, host and port:
        aiohttp would carry a token sent in a header other than ``Authorization`` (``X-Auth-Token``)
        to any server a redirect names."""
        hops: list[aiohttp.ClientResponse] = []
        async with asyncio.timeout(self.settings.timeout):
            while True:
                async with session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    data=form_body,
                    headers=headers,
                    proxy=proxy,
                    allow_redirects=False,
                ) as response:
                    body = await _read_capped(response)
                target = _redirect_target(response)
                if target is None or origin(target) != origin(response.url):
                    return Reply(response, body, tuple(hops))
                if len(hops) == MAX_REDIRECTS:
                    return Reply(response, body, tuple(hops))
                hops.append(response)
                url, params = str(target), None  # the target carries its own query
                if response.status == 303 or (response.status in (301, 302) and method != "GET"):
                    method, json_body, form_body = "GET", None, None  # as browsers do

    def _exchange_done(self, base: str, login: bool, task: asyncio.Task[Any]) -> None:
        """Free the slot, note whether ``base`` answered (and fail over if it keeps not
        answering), and mark a failure seen when the poll that wanted it has given up."""
        self._budget.release()
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, aiohttp.ClientPayloadError | _BodyTooLarge):
            answered = True  # it answered; what it sent is the problem
        elif error is not None:
            answered = False  # connection failed or timed out
        else:
            response = task.result().response
            # a 503 with Retry-After is a busy member asking for less load, not a dead one
            wait = response.headers.get("Retry-After") if response.status == 503 else None
            answered = response.status < 500 or _retry_after(wait) is not None
        self._failover.note(base, answered, login=login)

    def _status_error(
        self, endpoint: EndpointSettings, method: str, path: str, reply: Reply
    ) -> DmsApiError:
        """The error for a non-2xx answer, with the DMS's ``{"error": {code, message}}``."""
        response, body = reply.response, reply.body
        status = response.status
        code, message = _dms_error(body)
        code, message = (code and self._excerpt(code)) or None, self._excerpt(message)
        detail = " ".join(filter(None, (f"HTTP {status}", code)))
        if message:
            detail += f": {message}"
        elif not code and body:
            detail += f" ({len(body)} bytes of {response.content_type})"
        kwargs: dict[str, Any] = {"status": status, "code": code}
        if status == 401:
            return self.error(DmsAuthError, endpoint, method, path, detail, **kwargs)
        if status == 429 or status >= 500:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            if retry_after is not None:  # slow every endpoint's requests, not only this one
                until = asyncio.get_running_loop().time() + min(retry_after, MAX_PAUSE)
                self.paused_until = max(self.paused_until, until)
            kwargs["retry_after"] = retry_after
            if retry_after is not None:
                detail += f" (retry after {retry_after:.0f}s)"
            return self.error(DmsUnavailableError, endpoint, method, path, detail, **kwargs)
        return self.error(DmsHttpError, endpoint, method, path, detail, **kwargs)

    def error(
        self,
        cls: type[DmsApiError],
        endpoint: EndpointSettings,
        method: str,
        path: str,
        detail: str,
        **kwargs: Any,
    ) -> DmsApiError:
        """``cls`` with a message naming endpoint, method and path; the secrets masked."""
        message = mask(f"{endpoint.name}: {method} {path}: {detail}", self._secrets())
        return cls(message, endpoint=endpoint.name, **kwargs)

    def _secrets(self) -> set[str]:
        cookies = self._jar.values if self._jar is not None else ()
        return {*self._known_secrets, *self._tokens, *cookies, self._login.current or ""}

    def _excerpt(self, text: str) -> str:
        """A short excerpt of text from the DMS or the network, masked before it is cut."""
        return _clip(mask(text, self._secrets()))

    def _get_session(self, endpoint: EndpointSettings) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            settings = self.settings
            verify: ssl.SSLContext | bool = settings.tls.verify
            if verify and settings.tls.ca_file:
                try:
                    verify = ssl.create_default_context(cafile=settings.tls.ca_file)
                except (OSError, ssl.SSLError) as exc:
                    detail = f"cannot load dms.tls.ca_file {settings.tls.ca_file}: {exc}"
                    raise self.error(DmsConnectionError, endpoint, "GET", "", detail) from exc
            headers = {"Accept": "application/json", "User-Agent": f"dms-exporter/{__version__}"}
            if settings.auth == "basic":
                headers["Authorization"] = basic_header(settings.username, settings.password)
            elif settings.auth == "api_key":
                headers[settings.api_key_header] = settings.password
            self._jar = OriginJar(remembered=self._jar.values if self._jar else ())
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=verify),
                trust_env=settings.proxy == "environment",
                headers=headers,
                cookie_jar=self._jar,
            )
        return self._session


def _session_ended(error: DmsApiError, login: Login) -> bool:
    """Whether a refused call means "log in again": a 401 or a redirect to the login page, or a
    403 when the session rides on a cookie (appliances end idle sessions so)."""
    if isinstance(error, DmsAuthError):
        return True
    return error.status == 403 and bool(login.cookies)


def _redirect_target(response: aiohttp.ClientResponse) -> URL | None:
    """Where a redirect answer sends the request (None: not a redirect)."""
    location = response.headers.get("Location")
    if response.status not in _REDIRECTS or not location:
        return None
    try:
        return response.url.join(URL(location))
    except ValueError:
        return None


def _clip(text: str) -> str:
    """A short, single-line excerpt of text that came from the DMS, encodable as UTF-8 (it
    reaches pages, logs and files)."""
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", encodable(text)).strip()
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 3] + "..."


def decode_json(body: bytes) -> Any:
    """The JSON value of a DMS answer, or ``ValueError``.

    orjson decodes twice as fast as ``json`` (a DMS of 100,000 devices sends 44 MB of JSON a
    minute); what it refuses and ``json`` takes (a byte order mark, ``NaN``, UTF-16, a lone
    surrogate) is decoded by ``json``, so an answer is read as before. One difference stays:
    an integer beyond 64 bits becomes a float.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def _dms_error(body: bytes) -> tuple[str | None, str]:
    """``(code, message)`` from a ``{"error": {"code", "message"}}`` body, else ``(None, "")``."""
    try:
        error = decode_json(body).get("error")
    except (ValueError, AttributeError):
        return None, ""
    if not isinstance(error, dict):
        return None, ""
    code, message = error.get("code"), error.get("message")
    code = code if isinstance(code, str) and code else None
    return code, message if isinstance(message, str) else ""


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # "-0000": UTC by RFC 5322
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


class _BodyTooLarge(Exception):
    pass


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    """The whole body, or ``_BodyTooLarge`` as soon as it passes ``MAX_BODY_BYTES``."""
    if (response.content_length or 0) > MAX_BODY_BYTES:
        raise _BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)
