"""The secrets this process holds, in every spelling it sends them, and masking them out of text.

Every text that can reach a log line, an HTTP answer or an exception is masked with ``mask``
before it is cut short, so a cut cannot leave part of a secret behind.
"""

from __future__ import annotations

import base64
import os
import urllib.parse
from collections.abc import Iterable, Mapping

from .settings import DmsSettings

__all__ = ["MASK", "known_secrets", "mask", "proxy_secrets"]

MASK = "***"
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy")


def known_secrets(settings: DmsSettings, environ: Mapping[str, str] = os.environ) -> set[str]:
    """The password, the Basic credential it makes, and any proxy credential in use."""
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
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return set()
    if not parts.password:
        return set()
    user, password = urllib.parse.unquote(parts.username or ""), parts.password
    return {*_credential(user, urllib.parse.unquote(password)), password}


def _credential(user: str, password: str) -> tuple[str, ...]:
    """``password``, ``user:password`` and its Base64 (a Basic or Proxy-Authorization header)."""
    pair = f"{user}:{password}"
    encoded = base64.b64encode(pair.encode()).decode("ascii")
    return password, pair, encoded


def mask(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret replaced by ``MASK``, the longest first (a password inside
    ``user:password`` must not leave the user's part dangling... or the reverse)."""
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
