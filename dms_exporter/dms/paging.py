"""Paging: how the pages of one list endpoint are asked for, unwrapped and ended.

``collect`` follows one endpoint's configured style (``config_shape.Paging``) and envelope
(``config_shape.Envelope``) to the end and returns every item. Styles: ``offset`` (offset and
size parameters), ``page`` (page number from 0 or 1 and size), ``next`` (a URL or path at a dotted
path in the body, or the ``Link: <...>; rel="next"`` header), ``cursor`` (a token at a dotted path,
sent back as a parameter) and ``none``. Every style ends on an empty page, at the total when the
answer sends one, and fails on a page that repeats the previous one (a DMS that ignores the
paging parameter would otherwise be read to the page cap) or that goes past ``dms.max_pages``.
A walk that ends with fewer items than the DMS's own total fails too (``incomplete``): pages
counted from the wrong number, or a DMS that ignores the paging parameters, would otherwise be
exported as the whole list. The total is the envelope's ``total``; when that path is missing
from the answer, a count the answer carries under a usual name (``totalElements``, ``count``,
``meta.total``...), which is never used to end a walk, only to notice one that ended early.

A bare JSON array is one complete answer, unless the envelope is ``bare`` (then its pages follow
the style like any other). The HTTP side is the caller's ``get``: this module never does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from ..config import Envelope, Paging

__all__ = ["OnPage", "Page", "PagingError", "collect", "link_next", "walk"]


@dataclass(frozen=True, slots=True)
class Page:
    """One answer: the decoded body and its ``Link`` header (None if absent)."""

    body: Any
    link: str | None = None
    status: str | None = None  # the HTTP status, for --probe
    digest: str | None = None  # of the body's bytes: a page that came back the same


class PagingError(Exception):
    """The answer cannot be paged as configured; ``page_limit`` for the page cap,
    ``incomplete`` for a walk that ended short of the DMS's total, else payload."""

    def __init__(self, message: str, *, page_limit: bool = False, incomplete: bool = False) -> None:
        super().__init__(message)
        self.page_limit = page_limit
        self.incomplete = incomplete


#: ``get(target, params)``: ``target`` is the endpoint's path, or a next link as the DMS sent it
#: (``params`` is then None: the link carries them).
Getter = Callable[[str, Mapping[str, str] | None], Awaitable[Page]]
#: ``on_page(items, digest)``: one page's items and the digest of the bytes they came in.
OnPage = Callable[[list[Any], str | None], Awaitable[None]]

_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
#: Names (lower case, without ``_`` and ``-``) under which answers carry the number of items of
#: the whole list; looked for when the envelope's ``total`` path is missing from the answer.
_TOTAL_NAMES = frozenset(
    {"total", "count", "totalcount", "totalelements", "totalitems", "totalresults",
     "totalrecords", "totalrows", "totalhits", "recordstotal", "numfound"}
)  # fmt: skip
_REL_NEXT = re.compile(r';\s*rel\s*=\s*"?(?:[^"]*\s)?next(?:\s[^"]*)?"?', re.IGNORECASE)


def walk(body: Any, path: str) -> Any:
    """The value at a dotted ``path`` in ``body``, or None."""
    for key in path.split("."):
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


def link_next(header: str | None) -> str | None:
    """The target of ``rel="next"`` in a ``Link`` header, or None."""
    for match in _LINK.finditer(header or ""):
        if _REL_NEXT.search(match[2]):
            return match[1].strip() or None
    return None


async def collect(
    get: Getter,
    path: str,
    params: Mapping[str, str],
    envelope: Envelope,
    paging: Paging,
    *,
    page_size: int,
    max_pages: int,
    on_page: OnPage | None = None,
    stats: dict[str, Any] | None = None,
    truncate: bool = False,
) -> list[Any]:
    """Every item of one list endpoint; see the module docstring. With ``on_page``, each
    page's items go to it as they arrive instead (and the list returned is empty), so that a
    caller can convert them and let the page's JSON go. ``stats`` receives ``pages``, the last
    ``status``, the ``items`` received and, when the DMS reports one, its ``total`` and the path
    ``total_at`` it was found at; ``truncate`` returns what ``max_pages`` pages held instead of
    failing (and sets ``truncated``)."""
    stats = {} if stats is None else stats
    query = {**params, **_first_params(paging, page_size)}
    page = await get(path, query)
    stats.update(pages=1, status=page.status)
    if isinstance(page.body, list) and not envelope.bare:
        if on_page is None:
            return page.body  # a bare array without paging: the whole list
        await on_page(page.body, page.digest)
        return []
    items: list[Any] = []
    received = 0
    previous: list[Any] | None = None
    seen_cursors: set[str] = set()
    pages = 0
    first_count = 0  # items on the first page, for the hint of an incomplete walk
    while True:
        found = _items(page.body, envelope, pages + 1)
        pages += 1
        stats.update(pages=pages, status=page.status)
        first_count = len(found) if pages == 1 else first_count
        if previous is not None and found and found == previous:
            fix = "set the endpoint's paging"
            if envelope.bare:
                fix = (
                    "a DMS that sends its whole list as one bare array needs paging: {style: none}"
                )
            raise PagingError(
                f"page {pages} repeats page {pages - 1}: does the DMS ignore "
                f"{_what_moves(paging)}? ({fix})"
            )
        received += len(found)
        stats["items"] = received
        if on_page is None:
            items.extend(found)
        else:
            await on_page(found, page.digest)
        total = walk(page.body, envelope.total) if envelope.total else None
        reported = _reported_total(page.body, envelope)
        if reported is not None:
            stats.update(total=reported[0], total_at=reported[1])
        if _is_count(total) and received >= total:
            return items
        short_ends = not _is_count(total)  # with a total, a short page is not the end
        target, query = (
            _next(page, paging, params, page_size, pages, received, found, short_ends)
            if found
            else (None, {})
        )
        if target is None:  # the walk's end: did it read what the DMS says it has?
            if reported is not None and received < reported[0]:
                raise PagingError(
                    _incomplete(received, reported, pages, first_count, envelope, paging,
                                page_size),
                    incomplete=True,
                )  # fmt: skip
            return items
        if paging.style == "cursor":
            cursor = query[paging.cursor_param or ""]
            if cursor in seen_cursors:
                raise PagingError(f"page {pages + 1}: the cursor {cursor[:40]!r} came back again")
            seen_cursors.add(cursor)
        if pages >= max_pages:
            if truncate:
                stats["truncated"] = True
                return items
            raise PagingError(
                f"more pages after dms.max_pages={pages} ({received} items so far)",
                page_limit=True,
            )
        previous = found
        page = await get(target, None) if target else await get(path, query)


def _first_params(paging: Paging, page_size: int) -> dict[str, str]:
    params = {}
    if paging.style == "offset" and paging.offset_param:
        params[paging.offset_param] = "0"
    if paging.style == "page" and paging.page_param:
        params[paging.page_param] = str(paging.first_page)
    if paging.size_param and paging.style != "none":
        params[paging.size_param] = str(page_size)
    return params


def _items(body: Any, envelope: Envelope, number: int) -> list[Any]:
    """The items of one page, or a ``PagingError`` naming the items path."""
    if envelope.bare or isinstance(body, list):
        if isinstance(body, list):
            return body
        raise PagingError(f"page {number}: expected a bare JSON array, got {_kind(body)}")
    found = walk(body, envelope.items or "")
    if isinstance(found, list):
        return found
    if isinstance(body, dict):
        keys = ", ".join(key[:40] for key in sorted(map(str, body))[:10]) or "none"
        lists = _list_paths(body)
        hint = f"; a list is at {lists[0]!r} (set envelope.items)" if lists else ""
        raise PagingError(
            f"page {number}: no list at {envelope.items!r} in the answer (its keys: {keys}){hint}"
        )
    raise PagingError(f"page {number}: expected a JSON object, got {_kind(body)}")


def _list_paths(body: dict[str, Any], prefix: str = "", depth: int = 2) -> list[str]:
    """Dotted paths of the lists of objects in ``body``, to suggest an items path."""
    found = []
    for key, value in body.items():
        path = f"{prefix}{key}"
        if isinstance(value, list) and (not value or isinstance(value[0], dict)):
            found.append(path)
        elif isinstance(value, dict) and depth > 1:
            found += _list_paths(value, path + ".", depth - 1)
    return found


def _next(
    page: Page,
    paging: Paging,
    params: Mapping[str, str],
    page_size: int,
    pages: int,
    count: int,
    found: list[Any],
    short_ends: bool,
) -> tuple[str | None, dict[str, str]]:
    """``(target, params)`` of the page after ``pages`` pages, or ``(None, {})`` at the end.

    ``target`` "" means the endpoint's own path."""
    style = paging.style
    if style in ("offset", "page"):
        size = page_size
        reported = walk(page.body, paging.size_param) if paging.size_param else None
        if _is_count(reported) and 0 < reported < size:  # the DMS capped the page size
            size = int(reported)
        if short_ends and len(found) < size:
            return None, {}
        query = {**params, **_first_params(paging, page_size)}
        if style == "offset":
            query[paging.offset_param or ""] = str(count)
        else:
            query[paging.page_param or ""] = str(paging.first_page + pages)
        return "", query
    if style == "next":
        link = walk(page.body, paging.next_path) if paging.next_path else link_next(page.link)
        if not isinstance(link, str) or not link.strip():
            return None, {}
        return link.strip(), {}
    if style == "cursor":
        cursor = walk(page.body, paging.cursor_path or "")
        if cursor is None or cursor == "" or isinstance(cursor, bool | dict | list):
            return None, {}
        query = {**params, **_first_params(paging, page_size)}
        query[paging.cursor_param or ""] = str(cursor)
        return "", query
    return None, {}  # none: one request


def _reported_total(body: Any, envelope: Envelope) -> tuple[int, str] | None:
    """``(count, path)`` of the number of items the DMS says the list holds, or None: at the
    envelope's ``total``, else (that path missing) at a usual name at most two levels deep."""
    if envelope.total is None or not isinstance(body, dict):
        return None  # no total configured (a bare array, or total: null)
    total = walk(body, envelope.total)
    if total is not None:
        return (total, envelope.total) if _is_count(total) else None
    for key, value in body.items():
        if _is_count(value) and _total_name(key):
            return value, key
    for key, value in body.items():
        if isinstance(value, dict):
            for inner, count in value.items():
                if _is_count(count) and _total_name(inner):
                    return count, f"{key}.{inner}"
    return None


def _total_name(key: Any) -> bool:
    return isinstance(key, str) and key.lower().replace("_", "").replace("-", "") in _TOTAL_NAMES


def _incomplete(
    received: int,
    reported: tuple[int, str],
    pages: int,
    first_count: int,
    envelope: Envelope,
    paging: Paging,
    page_size: int,
) -> str:
    """One line: what the walk read against the DMS's total, and the keys that decide it."""
    total, at = reported
    line = (
        f"the walk ended after {pages} page{'s' if pages > 1 else ''} with {received} of the "
        f"{total} items the DMS reports at {at!r}"
    )
    if at != envelope.total:
        line += f" (envelope.total {envelope.total!r} is not in the answer: set it to {at!r})"
    short = 0 < first_count < page_size
    sent = f"the first page held {first_count} items where {page_size} were asked for"
    if paging.style == "page":
        other = "0? then paging.first_page: 0" if paging.first_page else "1? then first_page: 1"
        hint = f"paging: first_page is {paging.first_page} (does the DMS count pages from {other})"
        if short:
            hint += f", and size_param {paging.size_param!r} ({sent})"
    elif paging.style == "offset":
        hint = (
            f"paging: {sent} with offset_param {paging.offset_param!r} and size_param "
            f"{paging.size_param!r} (a DMS that numbers its pages needs paging: "
            "{style: page, page_param: ..., first_page: 0 or 1})"
        )
    elif paging.style == "none":
        hint = "paging: the DMS pages this list (set its style, and first_page for page numbers)"
    else:
        hint = f"paging: style {paging.style} found no further page"
    return f"{line}; check {hint}"


def _what_moves(paging: Paging) -> str:
    moving = {
        "offset": paging.offset_param,
        "page": paging.page_param,
        "cursor": paging.cursor_param,
        "next": "its own next link",
    }.get(paging.style)
    return f"the parameter {moving}" if paging.style != "next" else str(moving)


def _is_count(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _kind(body: Any) -> str:
    kinds: dict[type, str] = {dict: "an object", list: "an array"}
    return kinds.get(type(body), type(body).__name__)
