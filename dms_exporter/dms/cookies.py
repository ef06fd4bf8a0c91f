"""The DMS session's cookies: kept per origin and sent back only to that origin.

An appliance-style DMS keeps its session in a cookie (``JSESSIONID``) that the login answer sets.
aiohttp's default jar refuses cookies from an IP address (a DMS is often addressed by one) and
matches by domain, so a cookie of one member of a DMS pair could reach the other. ``OriginJar``
keeps each cookie for the exact scheme, host and port that set it, honours its path,
``Max-Age`` and ``Expires``, and remembers every value it held, so that they can be masked.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable, Iterable, Iterator
from http.cookies import BaseCookie, Morsel, SimpleCookie
from types import MappingProxyType
from typing import Any

from aiohttp.abc import AbstractCookieJar
from yarl import URL

__all__ = ["OriginJar", "origin"]

#: Values remembered for masking after their cookie was replaced or expired.
_REMEMBERED = 16
_Origin = tuple[str, str, int | None]


class OriginJar(AbstractCookieJar):
    """A cookie jar scoped to origins; see the module docstring."""

    def __init__(
        self, *, remembered: Iterable[str] = (), clock: Callable[[], float] = time.time
    ) -> None:
        """``remembered``: values of an earlier jar, still masked."""
        super().__init__(loop=asyncio.get_running_loop())
        self._clock = clock
        self._cookies: dict[_Origin, dict[str, tuple[Morsel[str], float]]] = {}
        self._values: list[str] = list(remembered)[-_REMEMBERED:]

    # -- what aiohttp calls -----------------------------------------------------------------

    def update_cookies(self, cookies: Any, response_url: URL | None = None) -> None:
        """Keep the cookies an answer of ``response_url`` set (a past expiry deletes one)."""
        if response_url is None or not response_url.is_absolute():
            return
        held = self._cookies.setdefault(origin(response_url), {})
        items = cookies.items() if hasattr(cookies, "items") else cookies
        for name, value in items:
            morsel = value if isinstance(value, Morsel) else SimpleCookie({name: value})[name]
            expires = _expiry(morsel, self._clock())
            if expires <= self._clock():
                held.pop(name, None)
                continue
            if not morsel["path"].startswith("/"):
                morsel["path"] = _default_path(response_url.path)
            held[name] = (morsel, expires)
            self._remember(morsel.value)

    def filter_cookies(self, request_url: URL) -> BaseCookie[str]:
        """The cookies to send to ``request_url``: its origin's, on its path, not expired."""
        found: SimpleCookie = SimpleCookie()
        if not request_url.is_absolute():
            return found
        held = self._cookies.get(origin(request_url), {})
        now = self._clock()
        for name, (morsel, expires) in list(held.items()):
            if expires <= now:
                del held[name]
            elif _path_matches(request_url.path or "/", morsel["path"]):
                found[name] = morsel.value
        return found

    def clear(self, predicate: Any = None) -> None:
        for held in self._cookies.values():
            for name, (morsel, _) in list(held.items()):
                if predicate is None or predicate(morsel):
                    del held[name]

    def clear_domain(self, domain: str) -> None:
        for origin in [o for o in self._cookies if o[1] == domain]:
            del self._cookies[origin]

    def __iter__(self) -> Iterator[Morsel[str]]:
        return (m for held in self._cookies.values() for m, _ in held.values())

    def __len__(self) -> int:
        return sum(map(len, self._cookies.values()))

    @property
    def unsafe(self) -> bool:
        return True  # an IP address is an origin like any other

    @property
    def quote_cookie(self) -> bool:
        return True

    @property
    def cookies(self) -> MappingProxyType[tuple[str, str], SimpleCookie]:
        out: dict[tuple[str, str], SimpleCookie] = {}
        for (_, host, _), held in self._cookies.items():
            for morsel, _ in held.values():
                out.setdefault((host, morsel["path"]), SimpleCookie())[morsel.key] = morsel
        return MappingProxyType(out)

    @property
    def host_only_cookies(self) -> frozenset[tuple[str, str, str]]:
        held = self._cookies.items()
        return frozenset((host, "/", m.key) for (_, host, _), h in held for m, _ in h.values())

    # -- ours ---------------------------------------------------------------------------------

    def names(self, url: str) -> tuple[str, ...]:
        """The names of the cookies held for ``url``'s origin."""
        return tuple(self._cookies.get(origin(URL(url)), {}))

    @property
    def values(self) -> tuple[str, ...]:
        """Every cookie value held now or lately: secrets, masked in every message."""
        return tuple(self._values)

    def _remember(self, value: str) -> None:
        if value and value not in self._values:
            self._values = [*self._values[-(_REMEMBERED - 1) :], value]


def origin(url: URL) -> _Origin:
    """The scheme, host and port of ``url`` (the port also when it is the scheme's default)."""
    return (url.scheme.lower(), (url.host or "").lower(), url.explicit_port or url.port)


def _expiry(morsel: Morsel[str], now: float) -> float:
    """When a cookie ends (``inf``: with the session); ``Max-Age`` wins over ``Expires``."""
    max_age = morsel["max-age"]
    if max_age:
        try:
            return now + int(max_age)
        except ValueError:
            pass
    expires = morsel["expires"]
    if expires:
        try:
            return email.utils.parsedate_to_datetime(expires).timestamp()
        except (TypeError, ValueError):
            pass
    return float("inf")


def _default_path(path: str) -> str:
    """RFC 6265 5.1.4: the directory of the request path."""
    return path[: path.rfind("/")] or "/" if path.startswith("/") else "/"


def _path_matches(path: str, cookie_path: str) -> bool:
    if path == cookie_path or cookie_path == "/":
        return True
    return path.startswith(cookie_path) and (
        cookie_path.endswith("/") or path[len(cookie_path)] == "/"
    )
