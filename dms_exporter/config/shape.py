"""How a DMS shapes its answers, as configured: list envelope, paging style, login request and
answer, how the token is sent, enum value maps and the quality gate.

The dataclasses are plain data the client and the vocabulary read. The ``read_*`` functions
validate one section with ``Reader``, so every problem names its dotted key, and reject
contradictory shapes (a key the chosen style does not use, a page style without its page
parameter, an expiry path with ``expiry: none``...). ``docs/configuration.md`` documents each key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from ..vocabulary import ENUM_FIELDS, code_text, enum_key
from .reader import Reader

__all__ = [
    "PAGING_STYLES",
    "TOKEN_FROM",
    "Envelope",
    "GateSettings",
    "LoginShape",
    "Paging",
    "TokenHeader",
    "read_envelope",
    "read_gate",
    "read_header_name",
    "read_login",
    "read_paging",
    "read_token_header",
    "read_values",
]

PAGING_STYLES = ("offset", "page", "next", "cursor", "none")
#: The keys each paging style uses besides ``style``; any other is a contradiction.
_STYLE_KEYS: dict[str, tuple[str, ...]] = {
    "offset": ("offset_param", "size_param"),
    "page": ("page_param", "size_param", "first_page"),
    "next": ("next_path", "next_header", "size_param"),
    "cursor": ("cursor_path", "cursor_param", "size_param"),
    "none": (),
}
_PAGING_KEYS = ("style", *dict.fromkeys(k for keys in _STYLE_KEYS.values() for k in keys))
_LOGIN_KEYS = (
    "method",
    "encoding",
    "username_field",
    "password_field",
    "token_from",
    "token_path",
    "token_header",
    "expiry_path",
    "expiry",
)
TOKEN_FROM = ("body", "header", "cookie")
_GATE_KEYS = ("enabled", "skipped_above", "bad_values_above", "last_good_below")
_DOTTED = re.compile(r"[^.\s]+(\.[^.\s]+)*")
_RATIO = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*%")


@dataclass(frozen=True, slots=True)
class GateSettings:
    """Thresholds of the gate of one endpoint, as shares from 0 to 1."""

    enabled: bool = True
    skipped_above: float = 0.10
    bad_values_above: float = 0.10
    last_good_below: float = 0.01


@dataclass(frozen=True, slots=True)
class Envelope:
    """Where a list answer keeps its items and its total, as dotted paths."""

    items: str | None = "items"  # None: the answer is a bare JSON array
    total: str | None = "total"  # None: the answer sends no total

    @property
    def bare(self) -> bool:
        return self.items is None


@dataclass(frozen=True, slots=True)
class Paging:
    """How the pages of a list are asked for; only the style's own fields are set."""

    style: str = "offset"
    offset_param: str | None = "offset"
    size_param: str | None = "limit"  # the page size parameter; None: not sent
    page_param: str | None = None
    first_page: int = 1
    next_path: str | None = None  # dotted path of the next page's URL or path in the body
    next_header: bool = False  # the next page is the ``Link: <...>; rel="next"`` header
    cursor_path: str | None = None  # dotted path of the cursor in the body
    cursor_param: str | None = None  # the query parameter the cursor is sent back in

    @property
    def params(self) -> tuple[str, ...]:
        """The query parameters this style sets itself."""
        names = (self.offset_param, self.size_param, self.page_param, self.cursor_param)
        return tuple(n for n in names if n is not None)


@dataclass(frozen=True, slots=True)
class LoginShape:
    """How the login request is sent and its answer read (``dms.auth: token``)."""

    method: str = "POST"
    encoding: str = "json"  # json | form (the two fields in the body) | basic (a Basic header)
    username_field: str = "username"
    password_field: str = "password"
    token_from: str = "body"  # body (at token_path) | header (token_header) | cookie (no token)
    token_path: str = "token"
    token_header: str | None = None  # the login answer's header holding the token
    expiry_path: str | None = "expiresIn"
    expiry: str = "seconds"  # seconds (from now) | timestamp (when it ends) | none (until 401)

    @property
    def sends_token(self) -> bool:
        """Whether calls carry a token (``token_from: cookie``: the session cookie alone)."""
        return self.token_from != "cookie"


@dataclass(frozen=True, slots=True)
class TokenHeader:
    """How the token is sent: ``<name>: <scheme> <token>``, or the token alone."""

    name: str = "Authorization"
    scheme: str = "Bearer"  # "": the header holds the token alone

    def value(self, token: str) -> str:
        return f"{self.scheme} {token}" if self.scheme else token


def _style_defaults(style: str) -> Paging:
    return Paging(
        style=style,
        offset_param="offset" if style == "offset" else None,
        size_param={"offset": "limit", "page": "size"}.get(style),
        next_path="next" if style == "next" else None,
    )


def read_paging(r: Reader, key: str, value: Any, base: Paging) -> Paging:
    """A ``paging`` section over ``base`` (the global one); another style starts afresh."""
    m = r.section(key, value, _PAGING_KEYS)
    if not m:
        return base
    style = r.choice(f"{key}.style", m.get("style"), base.style, PAGING_STYLES)
    paging = base if style == base.style else _style_defaults(style)
    used = _STYLE_KEYS[style]
    for name in m:
        if name != "style" and name in _PAGING_KEYS and name not in used:
            uses = ", ".join(used) or "no other key"
            r.fail(f"{key}.{name}", f"is not used by paging style {style} (it uses: {uses})")
    changes: dict[str, Any] = {"style": style}
    for name in ("offset_param", "size_param", "page_param", "cursor_param"):
        if name in m:
            changes[name] = None if m[name] is None else _param(r, f"{key}.{name}", m[name])
    for name in ("next_path", "cursor_path"):
        if name in m:
            changes[name] = None if m[name] is None else _dotted(r, f"{key}.{name}", m[name])
    if "first_page" in m:
        changes["first_page"] = r.integer(f"{key}.first_page", m["first_page"], 1, 0, 1)
    if "next_header" in m:
        changes["next_header"] = r.boolean(f"{key}.next_header", m["next_header"], False)
        if changes["next_header"] and "next_path" not in m:
            changes["next_path"] = None
    paging = replace(paging, **changes)
    _check_paging(r, key, paging)
    return paging


def _check_paging(r: Reader, key: str, p: Paging) -> None:
    """The contradictions and gaps a style cannot work with."""
    if p.style == "offset" and p.offset_param is None:
        r.fail(f"{key}.offset_param", "is required with paging style offset")
    if p.style == "page" and p.page_param is None:
        r.fail(f"{key}.page_param", "is required with paging style page (e.g. page, pageNumber)")
    if p.style == "cursor":
        for name in ("cursor_path", "cursor_param"):
            if getattr(p, name) is None:
                r.fail(f"{key}.{name}", "is required with paging style cursor")
    if p.style == "next" and p.next_header == (p.next_path is not None):
        problem = "both set" if p.next_header else "neither set"
        r.fail(f"{key}.next_path", f"give exactly one of next_path and next_header ({problem})")
    names = list(p.params)
    if len(set(names)) != len(names):
        r.fail(key, f"two paging parameters share a name ({', '.join(names)})")


def read_envelope(r: Reader, key: str, value: Any, base: Envelope) -> Envelope:
    """An ``envelope``: ``bare``, or ``{items, total}`` dotted paths merged over ``base``."""
    if value == "bare":
        return Envelope(items=None, total=None)
    m = r.section(key, value, ("items", "total"))
    if not m:
        return base
    items = base.items
    if "items" in m:  # null: a bare array
        items = None if m["items"] is None else _dotted(r, f"{key}.items", m["items"])
    total = base.total
    if "total" in m:
        total = None if m["total"] is None else _dotted(r, f"{key}.total", m["total"])
    if items is None and total is not None:
        r.fail(f"{key}.total", "a bare array has no total: set items too, or drop total")
    return Envelope(items=items, total=total)


def read_login(r: Reader, key: str, value: Any) -> LoginShape:
    """``dms.login``: the request's method, encoding and field names, the answer's paths."""
    m = r.section(key, value, _LOGIN_KEYS)
    method = r.choice(f"{key}.method", m.get("method"), "POST", ("POST", "PUT", "GET"))
    encoding = r.choice(f"{key}.encoding", m.get("encoding"), "json", ("json", "form", "basic"))
    if method == "GET" and encoding != "basic":
        r.fail(f"{key}.encoding", "a GET login has no body: use encoding basic, or method POST")
    if encoding == "basic":
        for name in ("username_field", "password_field"):
            if name in m:
                r.fail(f"{key}.{name}", "is not used with encoding basic (a Basic header)")
    token_from = r.choice(f"{key}.token_from", m.get("token_from"), "body", TOKEN_FROM)
    if token_from != "body" and "token_path" in m:
        r.note(f"{key}.token_path", f"is not used with token_from: {token_from}")
    token_header = None
    if token_from == "header":
        if m.get("token_header") is None:
            r.fail(f"{key}.token_header", "is required with token_from: header (X-Subject-Token)")
        token_header = read_header_name(r, f"{key}.token_header", m["token_header"])
    elif "token_header" in m:
        r.fail(f"{key}.token_header", "is used only with token_from: header")
    # a session cookie usually says nothing of its end: kept until a call is refused
    default_expiry = "none" if token_from == "cookie" else "seconds"
    expiry = r.choice(
        f"{key}.expiry", m.get("expiry"), default_expiry, ("seconds", "timestamp", "none")
    )
    expiry_path: str | None = "expiresIn" if expiry == "seconds" else None
    if m.get("expiry_path") is not None:
        if expiry == "none":
            r.fail(f"{key}.expiry_path", "contradicts expiry: none (the token is kept until 401)")
        expiry_path = _dotted(r, f"{key}.expiry_path", m["expiry_path"])
    elif expiry == "timestamp":
        r.fail(f"{key}.expiry_path", "is required with expiry: timestamp")
    return LoginShape(
        method=method,
        encoding=encoding,
        username_field=_param(r, f"{key}.username_field", m.get("username_field", "username")),
        password_field=_param(r, f"{key}.password_field", m.get("password_field", "password")),
        token_from=token_from,
        token_path=_dotted(r, f"{key}.token_path", m.get("token_path", "token")),
        token_header=token_header,
        expiry_path=expiry_path,
        expiry=expiry,
    )


def read_token_header(r: Reader, key: str, value: Any) -> TokenHeader:
    """``dms.token_header``: a header name and a scheme (none by default off Authorization)."""
    m = r.section(key, value, ("name", "scheme"))
    name = read_header_name(r, f"{key}.name", m.get("name", "Authorization"))
    default_scheme = "Bearer" if name.lower() == "authorization" else ""
    scheme = m.get("scheme", default_scheme)
    if scheme is None:
        scheme = ""
    r.expect(f"{key}.scheme", scheme, (str,), "a string")
    if scheme and not re.fullmatch(r"[A-Za-z][A-Za-z0-9._-]*", scheme):
        r.fail(f"{key}.scheme", f"must be one word like Bearer or Token, got {r.show(key, scheme)}")
    return TokenHeader(name=name, scheme=scheme)


def read_values(r: Reader, key: str, value: Any, endpoint: str) -> dict[str, dict[str, str]]:
    """``values``: per enum field, this DMS's words or codes -> the documented words. A code
    (a YAML number or boolean key, ``1: ONLINE``, ``true: ACTIVE``) is keyed by its text."""
    enums = ENUM_FIELDS[endpoint]
    m = r.section(key, value, tuple(enums) or ("(no enum field)",))
    result: dict[str, dict[str, str]] = {}
    for name, words in m.items():
        if name not in enums:
            continue  # already reported as an unknown key
        words = r.keep(r.section, f"{key}.{name}", words, None) or {}
        mapped = r.keep(r.strings, f"{key}.{name}", {_code_key(w): v for w, v in words.items()})
        mapped = mapped or {}
        by_key = {enum_key(v): v for v in enums[name]}
        for word, meant in mapped.items():
            if enum_key(meant) not in by_key:
                r.note(
                    f"{key}.{name}.{word}",
                    f"must be one of {', '.join(enums[name])}, got {r.show(key, meant)}",
                )
            elif not enum_key(word):
                r.note(f"{key}.{name}.{word}", "the DMS word must not be empty")
        result[name] = {w: by_key[enum_key(v)] for w, v in mapped.items() if enum_key(v) in by_key}
    return result


def _code_key(word: Any) -> Any:
    """A ``values`` key as text: a number or boolean as its code text, anything else as is."""
    code = None if isinstance(word, str) else code_text(word)
    return word if code is None else code


def read_gate(r: Reader, key: str, value: Any) -> GateSettings:
    """``gate``: the quality gate's thresholds as shares (``0.1``) or percentages (``10%``)."""
    m = r.section(key, value, _GATE_KEYS)
    base = GateSettings()
    gate = GateSettings(
        enabled=r.boolean(f"{key}.enabled", m.get("enabled"), True),
        **{
            name: _ratio(r, f"{key}.{name}", m[name])
            if m.get(name) is not None
            else getattr(base, name)
            for name in _GATE_KEYS[1:]
        },
    )
    for name in ("skipped_above", "bad_values_above"):
        if getattr(gate, name) < gate.last_good_below:
            r.fail(f"{key}.{name}", "must not be below last_good_below")
    return gate


def _ratio(r: Reader, key: str, value: Any) -> float:
    what = 'a share from 0 to 1 or a percentage like "10%"'
    share = r.expect(key, value, (int, float, str), what)
    if isinstance(value, str):
        match = _RATIO.fullmatch(value.strip())
        if match is None:
            r.fail(key, f"must be {what}, got {r.show(key, value)}")
        share = float(match[1]) / 100
    if not 0 <= share <= 1:
        r.fail(key, f"must be {what}, got {r.show(key, value)}")
    return float(share)


def _dotted(r: Reader, key: str, value: Any) -> str:
    """A dotted path into a JSON answer, like ``meta.total`` or ``_embedded.devices``."""
    text = r.text(key, value).strip()
    if not _DOTTED.fullmatch(text):
        r.fail(key, f"must be a dotted path like meta.total, got {r.show(key, text)}")
    return text


def _param(r: Reader, key: str, value: Any) -> str:
    """A query parameter or body field name, like ``page[number]``."""
    text = r.text(key, value)
    if text != text.strip() or any(c in text for c in "&=?#"):
        r.fail(key, f"must be a parameter name, got {r.show(key, text)}")
    return text


def read_header_name(r: Reader, key: str, value: Any) -> str:
    """An HTTP header name, like ``X-Auth-Token``."""
    text = r.text(key, value).strip()
    if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", text):
        r.fail(key, f"must be an HTTP header name, got {r.show(key, text)}")
    return text
