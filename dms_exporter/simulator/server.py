"""The DMS API over HTTP: routes, authentication, paging, and faults applied to responses."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from aiohttp import web

from .auth import Authenticator, Denied
from .collection import dumps
from .faults import ITEM_KINDS, RESPONSE_KINDS, TOKEN_KINDS, Fault, FaultBook, damage
from .shapes import LOGIN_PAGE, BadRequest, ListShape, query_int, recode, render, window
from .world import World

BASE_PATH = "/dms-api/v1"
#: Headers a list handler adds to its answer (a paging ``Link``).
EXTRA_HEADERS = web.RequestKey("extra_headers", dict)
LOGIN_PATH = "/auth/login"
#: Endpoint name -> path under the base path.
PATHS: dict[str, str] = {
    "system": "/system/info",
    "devices": "/devices",
    "groups": "/groups",
    "services": "/services",
    "authorization_sets": "/authorization-sets",
    "schedule_authorizations": "/schedule-authorizations",
    "authorizations": "/authorizations",
    "destinations": "/destinations",
    "alarms": "/alarms",
}
#: Endpoints that also serve one item at ``<path>/{id}``.
ITEM_ENDPOINTS = (
    "devices",
    "groups",
    "services",
    "authorization_sets",
    "schedule_authorizations",
    "destinations",
    "alarms",
)
#: Endpoints that take ``?deviceId=``.
DEVICE_FILTERED = ("authorizations", "destinations", "alarms")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
JSON_TYPE = "application/json; charset=utf-8"
ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}
HTML_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """An error in the documented shape ``{"error": {"code", "message"}}``."""
    body = dumps({"error": {"code": code, "message": message}})
    return web.Response(
        status=status, body=body, headers={"Content-Type": JSON_TYPE, **(headers or {})}
    )


def html_page(status: int) -> str:
    """A proxy's error page; for a non-error status, the page a portal shows in its place."""
    shown = status if status >= 400 else 503
    try:
        reason = HTTPStatus(shown).phrase
    except ValueError:
        reason = "Error"
    return HTML_PAGE.format(status=shown, reason=reason)


@dataclass(frozen=True)
class Query:
    offset: int = 0
    limit: int = DEFAULT_LIMIT
    state: str | None = None
    device_id: str | None = None


def parse_query(query: Mapping[str, str], endpoint: str, paged: bool = True) -> Query:
    """Validate ``offset``, ``limit`` (capped at 1000; ignored unless ``paged``), ``state``
    and ``deviceId``."""

    state = query.get("state")
    if state is not None and endpoint == "alarms":
        state = state.lower()
        if state not in ("active", "cleared", "all"):
            raise BadRequest(f"state must be active, cleared or all, got {query['state']!r}")
        state = None if state == "all" else state
    device_id = query.get("deviceId") if endpoint in DEVICE_FILTERED else None
    state = state if endpoint == "alarms" else None
    if not paged:
        return Query(state=state, device_id=device_id)
    offset = query_int(query, "offset", 0, 0)
    limit = min(MAX_LIMIT, query_int(query, "limit", DEFAULT_LIMIT, 1))
    return Query(offset, limit, state, device_id)


@dataclass
class DmsApi:
    """The request handlers of the simulated DMS."""

    world: World
    faults: FaultBook
    auth: Authenticator
    request_counts: dict[str, int]
    bare_arrays: bool = False
    field_names: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    list_shape: ListShape | None = None  # None: the documented envelope (or bare_arrays)

    def routes(
        self, base_path: str = BASE_PATH, paths: Mapping[str, str] | None = None
    ) -> list[web.RouteDef]:
        """Every route of the API under ``base_path``; ``paths`` overrides endpoint paths."""
        paths = {**PATHS, **(paths or {})}
        login = self.auth.login
        routes = [
            web.route(login.method, base_path + login.path, self.login),
            web.get(LOGIN_PAGE, self._login_page),
        ]
        for endpoint, path in paths.items():
            if endpoint == "system":
                routes.append(web.get(base_path + path, self._handler(endpoint, self._system)))
                continue
            routes.append(web.get(base_path + path, self._handler(endpoint, self._list)))
            if endpoint in ITEM_ENDPOINTS:
                routes.append(
                    web.get(base_path + path + "/{id}", self._handler(endpoint, self._item))
                )
        return routes

    # -- login ---------------------------------------------------------------------------

    async def login(self, request: web.Request) -> web.StreamResponse:
        """``POST /auth/login``: a token for good credentials (404 in Basic mode)."""
        self.request_counts["login"] = self.request_counts.get("login", 0) + 1
        faults = self.faults.take("login", exclude=TOKEN_KINDS)
        early = await self._early(request, faults)
        if early is not None:
            return early
        if self.auth.mode != "token":
            return error_response(404, "NOT_FOUND", f"token login is disabled: {self.auth.mode}")
        shape = self.auth.login
        if shape.encoding == "basic":
            denied = self.auth.check_basic(request.headers.get("Authorization"))
            if denied is not None:
                return error_response(401, denied.code, denied.message)
        else:
            body: Any
            try:
                body = (
                    dict(await request.post()) if shape.encoding == "form" else await request.json()
                )
            except (ValueError, UnicodeDecodeError):
                return error_response(400, "BAD_REQUEST", f"body must be {shape.encoding}")
            if not isinstance(body, dict):
                return error_response(400, "BAD_REQUEST", "body must be a JSON object")
            user, password = body.get(shape.username_field), body.get(shape.password_field)
            if not self.auth.credentials_ok(user, password):
                return error_response(401, "INVALID_CREDENTIALS", "invalid username or password")
        issued = self.auth.issue_token()
        request[EXTRA_HEADERS] = dict(issued.headers)
        for name, value in issued.cookies.items():  # one at most
            request[EXTRA_HEADERS]["Set-Cookie"] = f"{name}={value}; Path=/; HttpOnly"
        body = self._object(issued.body, "login", faults)
        response = await self._send(request, "login", body, faults)
        response.set_status(shape.status)
        return response

    async def _login_page(self, request: web.Request) -> web.StreamResponse:
        """Where an appliance sends a call whose session ended: an HTML form."""
        return web.Response(
            text="<html><body><form method=post><input name=j_username></form></body></html>",
            content_type="text/html",
        )

    # -- data endpoints ------------------------------------------------------------------

    def _handler(
        self, endpoint: str, build: Callable[[web.Request, str, Query, list[Fault]], bytes]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            self.request_counts[endpoint] = self.request_counts.get(endpoint, 0) + 1
            for fault in self.faults.take(endpoint, kinds=TOKEN_KINDS):
                if fault.kind == "expire_token":
                    self.auth.expire_all()
                else:
                    self.auth.revoke_all()
            denied = self.auth.check(request.headers, request.cookies)
            if denied is not None:
                return self._unauthorized(denied)
            paged = not self.bare_arrays and self.list_shape is None
            try:
                query = parse_query(request.query, endpoint, paged=paged)
            except BadRequest as exc:
                return error_response(400, "INVALID_PARAMETER", str(exc))
            faults = self.faults.take(endpoint, exclude=TOKEN_KINDS)
            early = await self._early(request, faults)
            if early is not None:
                return early
            try:
                body = build(request, endpoint, query, faults)
            except BadRequest as exc:
                return error_response(400, "INVALID_PARAMETER", str(exc))
            except KeyError:
                return error_response(
                    404, "NOT_FOUND", f"no {endpoint} item {request.match_info.get('id')!r}"
                )
            return await self._send(request, endpoint, body, faults)

        return handle

    def _unauthorized(self, denied: Denied) -> web.Response:
        """401 (403, or a redirect to the login page, as the login shape says)."""
        headers = {"WWW-Authenticate": 'Basic realm="DMS"'} if self.auth.mode == "basic" else {}
        end = self.auth.login.session_end if self.auth.mode == "token" else "401"
        if end == "redirect":
            return web.Response(status=302, headers={"Location": LOGIN_PAGE})
        return error_response(int(end), denied.code, denied.message, headers)

    def _system(
        self, request: web.Request, endpoint: str, query: Query, faults: list[Fault]
    ) -> bytes:
        self.world.sync()
        return self._object(self.world.system, endpoint, faults)

    def _item(
        self, request: web.Request, endpoint: str, query: Query, faults: list[Fault]
    ) -> bytes:
        self.world.sync()
        blob = self.world.collection(endpoint).blob(request.match_info["id"])
        return self._object(json.loads(blob), endpoint, faults) if faults else blob

    def _object(self, obj: dict[str, Any], endpoint: str, faults: list[Fault]) -> bytes:
        obj = damage(obj, [f for f in faults if f.kind in ITEM_KINDS], endpoint, 0)
        if any(f.kind == "wrong_types" and f.params["where"] == "body" for f in faults):
            return dumps([obj])
        return dumps(obj)

    def _list(
        self, request: web.Request, endpoint: str, query: Query, faults: list[Fault]
    ) -> bytes:
        listing = self.world.listing(endpoint, query.device_id, query.state)
        kinds = {f.kind for f in faults}
        offset, limit = query.offset, query.limit
        item_faults = [f for f in faults if f.kind in ITEM_KINDS]
        if self.list_shape is not None:
            offset, limit = window(self.list_shape, request.query, len(listing))
            served = self.list_shape.fields.get(endpoint, ())
            items = [
                dumps(recode(served, damage(json.loads(b), item_faults, endpoint, offset + i)))
                if item_faults or served
                else b
                for i, b in enumerate(listing[offset : offset + limit])
            ]
            url = str(request.url.with_query(None))
            body, request[EXTRA_HEADERS] = render(
                self.list_shape, items, len(listing), offset, limit, url, request.query
            )
            return body
        if self.bare_arrays:
            offset, items = 0, list(listing[:])
            total = len(items)
        elif "endless_paging" in kinds:
            items, total = _endless(listing, offset, limit)
        else:
            items, total = list(listing[offset : offset + limit]), len(listing)
        if item_faults:
            items = [
                dumps(damage(json.loads(b), item_faults, endpoint, offset + i))
                for i, b in enumerate(items)
            ]
        if any(f.kind == "wrong_types" and f.params["where"] == "body" for f in item_faults):
            keyed = b"{" + b",".join(b'"%d":%s' % (offset + i, b) for i, b in enumerate(items))
            if self.bare_arrays:
                return keyed + b"}"
            return b'{"total":"%d","offset":"%d","limit":"%d","items":%s}}' % (
                total,
                offset,
                limit,
                keyed,
            )
        joined = b",".join(items)
        if self.bare_arrays:
            return b"[" + joined + b"]"
        return b'{"total":%d,"offset":%d,"limit":%d,"items":[%s]}' % (total, offset, limit, joined)

    # -- responses and faults ------------------------------------------------------------

    async def _early(self, request: web.Request, faults: list[Fault]) -> web.StreamResponse | None:
        """Latency, then a fault that answers before any data is built (or ``None``)."""
        delay = sum(f.params["seconds"] for f in faults if f.kind == "latency")
        if delay:
            await asyncio.sleep(delay)
        fault = next((f for f in faults if f.kind in RESPONSE_KINDS), None)
        if fault is None:
            return None
        p = fault.params
        if fault.kind == "status":
            status = p["status"]
            headers = {} if p["retry_after"] is None else {"Retry-After": str(p["retry_after"])}
            if p["location"] is not None:  # a redirect (status 3xx), to anywhere
                headers["Location"] = p["location"]
            code = p["code"] or ERROR_CODES.get(status, f"HTTP_{status}")
            message = p["message"] or f"simulated {status} ({code.lower().replace('_', ' ')})"
            return error_response(status, code, message, headers)
        if fault.kind == "html":
            return web.Response(
                status=p["status"], text=html_page(p["status"]), content_type="text/html"
            )
        if fault.kind == "drop_connection" and p["before_headers"]:
            return await _drop(request, b"")
        return None

    async def _send(
        self, request: web.Request, endpoint: str, body: bytes, faults: list[Fault]
    ) -> web.StreamResponse:
        names = self.field_names.get(endpoint)
        if names:
            for canonical, served in names.items():
                body = body.replace(b'"%s":' % canonical.encode(), b'"%s":' % served.encode())
        fault = next((f for f in faults if f.kind in RESPONSE_KINDS), None)
        if fault is not None and fault.kind == "truncated":
            body = body[: int(len(body) * fault.params["fraction"])]
        elif fault is not None and fault.kind == "drop_connection":
            return await _drop(request, body)
        headers = {"Content-Type": JSON_TYPE, **request.get(EXTRA_HEADERS, {})}
        return web.Response(body=body, headers=headers)


def _endless(listing: Sequence[bytes], offset: int, limit: int) -> tuple[list[bytes], int]:
    """A full page at any offset, past the end too (ids get a ``-x<lap>`` suffix), and a
    ``total`` that is always one page further."""
    n = len(listing)
    if n == 0:
        return [], offset + 2 * limit
    items = []
    for position in range(offset, offset + limit):
        blob = listing[position % n]
        if position >= n:
            obj = json.loads(blob)
            if "id" in obj:
                obj["id"] = f"{obj['id']}-x{position // n}"
            blob = dumps(obj)
        items.append(blob)
    return items, max(n, offset + limit) + limit


async def _drop(request: web.Request, body: bytes) -> web.StreamResponse:
    """Close the connection: at once (empty ``body``), or after the headers and half the body."""
    transport = request.transport
    if not body:
        if transport is not None:
            transport.close()
        raise asyncio.CancelledError
    response = web.StreamResponse(
        headers={"Content-Type": JSON_TYPE, "Content-Length": str(len(body))}
    )
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    if transport is not None:
        transport.close()
    raise asyncio.CancelledError


__all__ = ["BASE_PATH", "PATHS", "DmsApi", "error_response", "html_page", "parse_query"]
