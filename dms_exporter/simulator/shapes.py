"""API shapes the simulator can speak besides the documented one: list envelopes, paging styles,
login requests and answers, and how the token (or an API key) is sent.

Named presets (``LIST_SHAPES``, ``LOGIN_SHAPES``) model well-known REST styles; each is a plain
dataclass, so a test can build any other combination. Pure functions only: the server calls them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from .clock import iso

PAGING_STYLES = ("offset", "page", "next", "link", "cursor", "none")
ITEMS_MARK = "\x00items\x00"  # replaced by the raw items array after dumping the envelope


class BadRequest(ValueError):
    """A query parameter the API refuses (400 INVALID_PARAMETER)."""


@dataclass(frozen=True)
class ListShape:
    """How collections are answered and paged.

    ``items``/``total`` are dotted paths in the envelope (``items`` None: a bare array). Paging:
    ``offset`` (offset/limit), ``page`` (page number from ``first_page`` and size), ``next``
    (page numbers, the next page's URL at ``next_path`` in the body), ``link`` (the same in a
    ``Link: <...>; rel="next"`` header), ``cursor`` (an opaque cursor at ``cursor_path``, sent
    back as ``cursor_param``) or ``none`` (everything in one answer).
    """

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

    def __post_init__(self) -> None:
        if self.paging not in PAGING_STYLES:
            raise ValueError(f"paging must be one of {', '.join(PAGING_STYLES)}")


@dataclass(frozen=True)
class LoginShape:
    """How the login is asked for and answered, and how later calls carry the token.

    ``encoding``: ``json`` or ``form`` body with ``username_field``/``password_field``, or
    ``basic`` (a Basic header, no body). ``expiry``: ``seconds`` (at ``expiry_path``),
    ``timestamp`` (ISO 8601 at ``expiry_path``) or ``none``.
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


def login_answer(shape: LoginShape, token: str, ttl: float, now: float) -> dict[str, Any]:
    """The login answer carrying ``token`` valid for ``ttl`` seconds from ``now``."""
    answer: dict[str, Any] = {}
    _put(answer, shape.token_path, token)
    if shape.expiry == "seconds":
        _put(answer, shape.expiry_path, int(ttl))
    elif shape.expiry == "timestamp":
        _put(answer, shape.expiry_path, iso(now + ttl))
    if shape.token_path == "access_token":
        answer["token_type"] = "bearer"
    return answer


def token_from(shape: LoginShape, headers: Mapping[str, str]) -> str | None:
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
