"""The secrets this process holds, in every spelling it sends them, and masking them out of text.

Every text that can reach a log line, an HTTP answer or an exception is masked with ``mask``
before it is cut short, so a cut cannot leave part of a secret behind. A DMS or a proxy that
echoes a request echoes it as it travelled, so each secret is known in every spelling a request
gives it: as typed, JSON-escaped (a login body), URL-encoded (a form or a query: ``%20`` and
``+``, either case of hex) and, with its user, as a Basic credential.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping

from .settings import DmsSettings

__all__ = ["MASK", "known_secrets", "mask", "proxy_secrets", "spellings"]

MASK = "***"
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy")


def known_secrets(settings: DmsSettings, environ: Mapping[str, str] = os.environ) -> set[str]:
    """The password, the Basic credential it makes, and any proxy credential in use, each in
    every spelling."""
    secrets = set(_credential(settings.username, settings.password))
    if settings.proxy == "environment":
        secrets |= proxy_secrets(environ)
    elif settings.proxy_url:
        secrets |= _url_secrets(settings.proxy_url)
    return {s for s in secrets if s}


def proxy_secrets(environ: Mapping[str, str]) -> set[str]:
    """The credentials in the proxy variables (``HTTP_PROXY=http://user:password@host``)."""
    secrets: set[str] = set()
    for name, value in environ.items():
        if name.lower() in _PROXY_VARIABLES:
            secrets |= _url_secrets(value)
    return secrets


def _url_secrets(url: str) -> set[str]:
    """The credentials in ``url``'s userinfo, read by hand: ``urlsplit`` cuts the authority at
    a ``/`` in the password (``http://user:pa/ss@proxy``) and would miss it."""
    _, scheme, rest = url.partition("://")
    userinfo, at, _ = rest.rpartition("@")
    if not (scheme and at):
        return set()
    user, colon, password = userinfo.partition(":")
    if not (colon and password):
        return set()
    unquote = urllib.parse.unquote
    return {*_credential(unquote(user), unquote(password)), *spellings(password)}


def _credential(user: str, password: str) -> set[str]:
    """``password`` and ``user:password`` in every spelling, and the Base64 of the pair (a
    Basic or Proxy-Authorization header: UTF-8 from us, Latin-1 from aiohttp's proxy auth)."""
    pair = f"{user}:{password}"
    basic = set()
    for charset in ("utf-8", "latin-1"):
        with contextlib.suppress(UnicodeEncodeError):  # not every password is Latin-1
            basic.add(base64.b64encode(pair.encode(charset)).decode("ascii"))
    return {*spellings(password), *spellings(pair), *basic}


def spellings(secret: str) -> set[str]:
    """``secret`` as typed, JSON-escaped and URL-encoded."""
    escaped = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    escaped |= {text.replace("/", "\\/") for text in escaped}  # JSON may escape "/" too
    quote = urllib.parse.quote
    encoded = {quote(secret, safe=""), quote(secret), urllib.parse.quote_plus(secret)}
    encoded |= {_LOWER_HEX.sub(lambda m: m[0].lower(), text) for text in encoded}
    return {secret, *escaped, *encoded}


_LOWER_HEX = re.compile(r"%[0-9A-F]{2}")


def mask(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret replaced by ``MASK``, the longest first (a password inside
    ``user:password`` must not leave the user's part dangling... or the reverse)."""
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
