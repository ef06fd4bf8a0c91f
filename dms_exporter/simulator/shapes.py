"""API shapes the simulator can speak besides the documented one: list envelopes, paging styles,
fields served under other names or as codes, login requests and answers, and how the session
(a token, a cookie, or both) is carried.

Named presets (``LIST_SHAPES``, ``LOGIN_SHAPES``) model well-known REST styles; each is a plain
dataclass, so a test can build any other combination. Pure functions only: the server calls them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from .clock import iso, parse_iso

PAGING_STYLES = ("offset", "page", "next", "link", "cursor", "none")
TOKEN_FROM = ("body", "header", "cookie")
SESSION_ENDS = ("401", "403", "redirect")
#: Where the ``redirect`` session end sends a call (an HTML page, as appliances do).
LOGIN_PAGE = "/login.html"
ITEMS_MARK = "\x00items\x00"  # replaced by the raw items array after dumping the envelope


class BadRequest(ValueError):
    """A query parameter the API refuses (400 INVALID_PARAMETER)."""


@dataclass(frozen=True)
class Served:
    """One documented field served another way: at another (dotted) ``path``, its enum words
    as ``codes`` (a number, numeric text or a boolean per word), or a time in epoch ms."""

    name: str
    path: str
    codes: Mapping[str, Any] = field(default_factory=dict)
    epoch_ms: bool = False


@dataclass(frozen=True)
class ListShape:
    """How collections are answered and paged.

    ``items``/``total`` are dotted paths in the envelope (``items`` None: a bare array). Paging:
    ``offset`` (offset/limit), ``page`` (page number from ``first_page`` and size), ``next``
    (page numbers, the next page's URL at ``next_path`` in the body), ``link`` (the same in a
    ``Link: <...>; rel="next"`` header), ``cursor`` (an opaque cursor at ``cursor_path``, sent
    back as ``cursor_param``) or ``none`` (everything in one answer).
    """

    # Field lists with defaults, alike in shape to the dialect below and to other settings
    # dataclasses (the console's DeviceQuery): declarations, and the simulator shares no code.
    items: str | None = "items"
    total: str | None = "total"
    paging: str = "offset"
    offset_param: str = "offset"
    limit_param: str = "limit"
    page_param: str = "page"
    size_param: str = "size"
    first_page: int = 1
    next_path: str = "next"
    cursor_path: str = "next_cursor"
    cursor_param: str = "cursor"
    echo: bool = False  # also send offset and limit in the envelope (the documented shape)
    max_size: int = 1000
    #: per endpoint, the fields served another way (``Served``)
    fields: Mapping[str, tuple[Served, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.paging not in PAGING_STYLES:
            raise ValueError(f"paging must be one of {', '.join(PAGING_STYLES)}")


@dataclass(frozen=True)
class LoginShape:
    """How the login is asked for and answered, and how later calls carry the token.

    ``encoding``: ``json`` or ``form`` body with ``username_field``/``password_field``, or
    ``basic`` (a Basic header, no body). ``expiry``: ``seconds`` (at ``expiry_path``),
    ``timestamp`` (ISO 8601 at ``expiry_path``) or ``none``. ``token_from``: the token is at
    ``token_path`` in the body, in the answer's header ``answer_header``, or there is none and
    the session is the ``cookie`` alone. With ``cookie`` set, the login also sets that cookie and
    every call must carry it (besides the token, if any). ``session_end``: a call without a
    valid session gets ``401``, ``403``, or a redirect to an HTML login page.
    """

    method: str = "POST"
    path: str = "/auth/login"
    encoding: str = "json"
    username_field: str = "username"
    password_field: str = "password"
    token_path: str = "token"
    expiry_path: str = "expiresIn"
    expiry: str = "seconds"
    token_header: str = "Authorization"
    token_scheme: str = "Bearer"  # "": the header holds the token alone
    token_from: str = "body"
    answer_header: str = "X-Subject-Token"
    cookie: str | None = None
    session_end: str = "401"
    status: int = 200  # of a successful login

    def __post_init__(self) -> None:
        if self.token_from not in TOKEN_FROM:
            raise ValueError(f"token_from must be one of {', '.join(TOKEN_FROM)}")
        if self.session_end not in SESSION_ENDS:
            raise ValueError(f"session_end must be one of {', '.join(SESSION_ENDS)}")
        if self.token_from == "cookie" and not self.cookie:
            raise ValueError("token_from cookie needs the cookie's name")

    @property
    def sends_token(self) -> bool:
        """Whether calls carry a token in ``token_header`` (not only a cookie)."""
        return self.token_from != "cookie"


#: An appliance's fields (Java-style embedded web servers): states as numeric codes, a flag for
#: the alarm state, nested status, times in epoch milliseconds.
APPLIANCE_FIELDS: dict[str, tuple[Served, ...]] = {
    "devices": (
        Served(
            "connectionState",
            "status.connection",
            {"UNKNOWN": 0, "ONLINE": 1, "OFFLINE": 2, "NEVER_CONNECTED": 3},
        ),
        Served("controlMode", "status.mode", {"LOCAL": "0", "DMS": "1"}),  # numeric text
        Served("lastContact", "status.lastSeen", epoch_ms=True),
    ),
    "alarms": (
        Served(
            "severity", "severity", {"CRITICAL": 1, "MAJOR": 2, "MINOR": 3, "WARNING": 4, "INFO": 5}
        ),
        Served("state", "active", {"ACTIVE": True, "CLEARED": False}),
        Served("assertedTime", "raisedAt", epoch_ms=True),
    ),
}


# The presets here and in LOGIN_SHAPES look alike on purpose: one DMS dialect each, as data.
LIST_SHAPES: dict[str, ListShape] = {
    "default": ListShape(echo=True),
    "bare": ListShape(items=None, total=None, paging="none"),
    # Django REST framework: {count, next, previous, results}, ?page=N&page_size=M from 1
    "drf": ListShape(
        items="results", total="count", paging="next", size_param="page_size", next_path="next"
    ),
    # JSON:API: {data, meta: {total}, links: {next}}, ?page[number]=N&page[size]=M
    "jsonapi": ListShape(
        items="data",
        total="meta.total",
        paging="next",
        page_param="page[number]",
        size_param="page[size]",
        next_path="links.next",
    ),
    # Spring Data: {content, totalElements, totalPages, number, size}, ?page=N&size=M from 0
    "spring": ListShape(items="content", total="totalElements", paging="page", first_page=0),
    # a bare array per page, the next page in the Link header (GitHub style)
    "link": ListShape(items=None, total=None, paging="link", size_param="per_page"),
    # a cursor: {items, meta: {next_cursor}}, ?after=<cursor>&limit=M
    "cursor": ListShape(
        total=None, paging="cursor", cursor_path="meta.next_cursor", cursor_param="after"
    ),
    # HAL without paging: {_embedded: {items: [...]}}
    "hal": ListShape(items="_embedded.items", total=None, paging="none"),
    # an appliance: bare arrays, the next page in the Link header, numeric codes (APPLIANCE_FIELDS)
    "appliance": ListShape(
        items=None, total=None, paging="link", size_param="per_page", fields=APPLIANCE_FIELDS
    ),
}

LOGIN_SHAPES: dict[str, LoginShape] = {
    "default": LoginShape(),
    # OAuth2 password grant style: a form body, {access_token, token_type, expires_in}
    "oauth": LoginShape(
        path="/oauth/token",
        encoding="form",
        token_path="access_token",
        expiry_path="expires_in",
    ),
    # nested answer, expiry as a timestamp, the token alone in X-Auth-Token
    "session": LoginShape(
        path="/sessions",
        username_field="user",
        password_field="pass",
        token_path="data.session.id",
        expiry_path="data.session.expiresAt",
        expiry="timestamp",
        token_header="X-Auth-Token",
        token_scheme="",
    ),
    # GET with HTTP Basic, no expiry, "Authorization: Token <t>"
    "basic_get": LoginShape(
        method="GET", path="/auth/token", encoding="basic", expiry="none", token_scheme="Token"
    ),
    # a Java appliance: a form login answering {"status": "ok"} and a JSESSIONID cookie, the
    # session ending with a redirect to the login page
    "cookie": LoginShape(
        path="/login",
        encoding="form",
        username_field="j_username",
        password_field="j_password",
        token_from="cookie",
        cookie="JSESSIONID",
        expiry="none",
        session_end="redirect",
    ),
    # OpenStack Keystone style: 201 with the token in X-Subject-Token, sent back in X-Auth-Token;
    # the body says when it expires ({"token": {"expires_at": ...}})
    "header": LoginShape(
        path="/auth/tokens",
        token_from="header",
        expiry="timestamp",
        expiry_path="token.expires_at",
        token_header="X-Auth-Token",
        token_scheme="",
        status=201,
    ),
    # a session cookie plus a CSRF token from the body, echoed in X-CSRF-Token on every call
    "csrf": LoginShape(
        path="/session",
        token_path="csrfToken",
        expiry="none",
        token_header="X-CSRF-Token",
        token_scheme="",
        cookie="SESSION",
        session_end="403",
    ),
}


def window(shape: ListShape, query: Mapping[str, str], count: int) -> tuple[int, int]:
    """``(offset, limit)`` of the items a request asks for; ``BadRequest`` for a bad value."""
    if shape.paging == "none":
        return 0, count
    if shape.paging == "cursor" and shape.cursor_param in query:
        offset = _decode_cursor(query[shape.cursor_param])
        return offset, query_int(query, shape.limit_param, 100, 1)
    if shape.paging in ("offset", "cursor"):
        limit = min(shape.max_size, query_int(query, shape.limit_param, 100, 1))
        return query_int(query, shape.offset_param, 0, 0), limit
    size = min(shape.max_size, query_int(query, shape.size_param, 100, 1))
    page = query_int(query, shape.page_param, shape.first_page, shape.first_page)
    return (page - shape.first_page) * size, size


def render(
    shape: ListShape,
    items: Sequence[bytes],
    total: int,
    offset: int,
    limit: int,
    url: str,
    query: Mapping[str, str],
) -> tuple[bytes, dict[str, str]]:
    """The body and extra headers of one page of ``items`` (already cut to the window)."""
    raw = b"[" + b",".join(items) + b"]"
    headers: dict[str, str] = {}
    more = offset + len(items) < total and bool(items)
    next_url = _next_url(shape, url, query, offset, limit) if more else None
    if shape.paging == "link" and next_url:
        headers["Link"] = f'<{next_url}>; rel="next"'
    if shape.items is None:
        return raw, headers
    envelope: dict[str, Any] = {}
    _put(envelope, shape.items, ITEMS_MARK)
    if shape.total:
        _put(envelope, shape.total, total)
    if shape.echo:
        envelope.update(offset=offset, limit=limit)
    if shape.paging == "next":
        _put(envelope, shape.next_path, next_url)
    if shape.paging == "cursor":
        cursor = _encode_cursor(offset + len(items)) if more else None
        _put(envelope, shape.cursor_path, cursor)
    if shape.paging == "page":  # Spring also says which page this is
        envelope.update(number=offset // max(limit, 1) + shape.first_page, size=limit)
    body = json.dumps(envelope, separators=(",", ":")).encode()
    return body.replace(json.dumps(ITEMS_MARK).encode(), raw), headers


def recode(served: Sequence[Served], item: dict[str, Any]) -> dict[str, Any]:
    """``item`` with each ``served`` field moved to its path, as its code or epoch ms."""
    for way in served:
        if way.name not in item:
            continue
        value = item.pop(way.name)
        if way.codes:
            value = way.codes.get(value, value)  # a word without a code is sent as it is
        elif way.epoch_ms and isinstance(value, str):
            value = round(parse_iso(value) * 1000)
        _put(item, way.path, value)
    return item


def login_answer(shape: LoginShape, token: str, ttl: float, now: float) -> dict[str, Any]:
    """The login answer's body for ``token`` valid for ``ttl`` seconds from ``now`` (the token
    itself only when it comes in the body)."""
    answer: dict[str, Any] = {}
    if shape.token_from == "body":
        _put(answer, shape.token_path, token)
    elif shape.token_from == "cookie":
        answer["status"] = "ok"
    if shape.expiry == "seconds":
        _put(answer, shape.expiry_path, int(ttl))
    elif shape.expiry == "timestamp":
        _put(answer, shape.expiry_path, iso(now + ttl))
    if shape.token_path == "access_token":
        answer["token_type"] = "bearer"
    return answer


def token_in(shape: LoginShape, headers: Mapping[str, str]) -> str | None:
    """The token a request carries, or None (missing, or the wrong scheme)."""
    value = (headers.get(shape.token_header) or "").strip()
    if not shape.token_scheme:
        return value or None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != shape.token_scheme.lower() or not token.strip():
        return None
    return token.strip()


def _next_url(
    shape: ListShape, url: str, query: Mapping[str, str], offset: int, limit: int
) -> str | None:
    if shape.paging not in ("next", "link"):
        return None
    page = (offset + limit) // max(limit, 1) + shape.first_page
    params = {**query, shape.page_param: str(page), shape.size_param: str(limit)}
    return f"{url}?{urlencode(params)}"


def _put(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        target = target.setdefault(key, {})
    target[last] = value


def query_int(query: Mapping[str, str], name: str, default: int, low: int) -> int:
    """The integer query parameter ``name`` (``default`` when absent), at least ``low``."""
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from None
    if value < low:
        raise BadRequest(f"{name} must be at least {low}, got {value}")
    return value


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("o:"):
            raise ValueError(text)
        return int(text[2:])
    except ValueError:
        raise BadRequest(f"unknown cursor {cursor[:40]!r}") from None
