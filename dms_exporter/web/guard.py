"""Who may do what, as one aiohttp middleware in front of every route.

- ``basic_auth_users`` in the web config: every request needs a user (as the exporter-toolkit
  does), checked with bcrypt; verified answers are cached so a scrape does not pay bcrypt.
- Every method other than GET and HEAD is an admin action (reload, refresh, console edits).
  Without basic auth it is allowed only from loopback, unless ``--web.enable-admin-api``.
- Every admin action carries a same-origin check, so no page of another origin can reload or
  edit through a visitor's browser: its ``Origin`` must be this server; without one, its
  ``Referer``; without either, ``Sec-Fetch-Site`` must say same-origin or none (typed by the
  user). A request with none of the three is not from a browser page (curl, scripts).
- Every answer carries ``DEFAULT_HEADERS`` (no framing: clickjacking; a CSP for the console's
  own script and style), each replaced by the same header of ``http_server_config.headers``;
  ``rate_limit`` answers 429.
- A body longer than ``MAX_BODY_BYTES`` gets 413, and a request's body is read only once all
  of the above let it in.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import ipaddress
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import bcrypt
from aiohttp import web

from ..config.web import RateLimit, WebConfig, WebConfigFile
from .server import MAX_BODY_BYTES, admit_body

__all__ = ["SAFE_METHODS", "Guard"]

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD"})
#: Headers of every answer unless the web config sets the same header.
DEFAULT_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}
#: ``Sec-Fetch-Site`` values of a request a page of this origin, or the user, made.
_OWN_FETCH_SITES = frozenset({"same-origin", "none"})
CACHE_SIZE = 100  # verified (user, hash, password) answers kept, as the toolkit does
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Guard:
    """The middleware and response hook; ``install`` adds both to an application."""

    def __init__(self, web_config: WebConfigFile, *, admin_api: bool = False) -> None:
        self.web_config = web_config
        self.admin_api = admin_api
        self._verified: dict[bytes, bool] = {}
        self._bcrypt_lock = asyncio.Lock()  # bcrypt is CPU-heavy: one at a time, off the loop
        self._cache_key = os.urandom(16)  # cache keys are keyed hashes, not plain passwords
        self._unknown_user_hash: bytes | None = None
        self._bucket = _Bucket()

    def install(self, app: web.Application) -> None:
        app.middlewares.append(self.middleware)
        app.on_response_prepare.append(self._add_headers)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        config = self.web_config.current()
        if config.rate_limit is not None and not self._bucket.take(config.rate_limit):
            return web.Response(status=429, text="Too Many Requests\n")
        if config.users and not await self._authenticated(request, config):
            return web.Response(
                status=401, text="Unauthorized\n", headers={"WWW-Authenticate": "Basic"}
            )
        if request.method not in SAFE_METHODS:
            refused = self._refuse_admin(request, config)
            if refused:
                log.debug(
                    "admin action refused",
                    extra={
                        "method": request.method,
                        "path": request.path,
                        "remote": request.remote,
                        "reason": refused,
                    },
                )
                return web.Response(status=403, text=f"Forbidden: {refused}\n")
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return web.Response(status=413, text="Request body too large\n")
        admit_body(request)  # allowed: now its body may be read
        return await handler(request)

    async def _add_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        for name, value in {**DEFAULT_HEADERS, **self.web_config.config.headers}.items():
            response.headers[name] = value

    def _refuse_admin(self, request: web.Request, config: WebConfig) -> str | None:
        """Why this admin action is refused, or None to allow it."""
        if not _same_origin(request):
            return "cross-origin request"
        if config.users or self.admin_api:  # authenticated above, or opened by the operator
            return None
        if _is_loopback(request.remote) and _is_loopback_host(request.host):
            return None
        return (
            "admin actions are allowed only from loopback; configure basic_auth_users in "
            "--web.config.file or start with --web.enable-admin-api"
        )

    async def _authenticated(self, request: web.Request, config: WebConfig) -> bool:
        credentials = _basic_credentials(request.headers.get("Authorization", ""))
        if credentials is None:
            return False
        user, password = credentials
        hashed = config.users.get(user)
        known = hashed is not None
        if hashed is None:  # the same bcrypt work for an unknown user: no user enumeration
            hashed = await self._unknown_hash()
        key = hashlib.blake2b(
            b"\0".join((user.encode(errors="surrogateescape"), hashed, password)),
            key=self._cache_key,
        ).digest()
        ok = self._verified.get(key)
        if ok is None:
            async with self._bcrypt_lock:
                ok = await asyncio.get_running_loop().run_in_executor(
                    None, _checkpw, password, hashed
                )
            if len(self._verified) >= CACHE_SIZE:  # random eviction, as the toolkit
                del self._verified[random.choice(list(self._verified))]
            self._verified[key] = ok
        if not (ok and known):
            log.debug("basic auth failed", extra={"remote": request.remote})
        return ok and known

    async def _unknown_hash(self) -> bytes:
        if self._unknown_user_hash is None:
            self._unknown_user_hash = await asyncio.get_running_loop().run_in_executor(
                None, bcrypt.hashpw, os.urandom(16).hex().encode(), bcrypt.gensalt(10)
            )
        return self._unknown_user_hash


class _Bucket:
    """A token bucket: ``burst`` requests at once, then one per ``interval`` seconds."""

    def __init__(self) -> None:
        self.tokens = 0.0
        self.updated = time.monotonic()
        self.limit: RateLimit | None = None

    def take(self, limit: RateLimit) -> bool:
        now = time.monotonic()
        if limit != self.limit:
            self.limit, self.tokens = limit, float(limit.burst)
        self.tokens = min(float(limit.burst), self.tokens + (now - self.updated) / limit.interval)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # e.g. a password over bcrypt's 72 bytes
        return False


def _basic_credentials(header: str) -> tuple[str, bytes] | None:
    """``(user, password)`` of a ``Basic`` Authorization header, else None."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    return user.decode(errors="surrogateescape"), password


def _same_origin(request: web.Request) -> bool:
    """Whether a browser made ``request`` from a page of this server (or no browser did)."""
    headers = request.headers
    site = headers.get("Sec-Fetch-Site")
    if site is not None and site not in _OWN_FETCH_SITES:
        return False
    source = headers.get("Origin", headers.get("Referer"))  # the Referer only without Origin
    return source is None or _same_host(source, request.host)


def _same_host(url: str, host: str) -> bool:
    """Whether ``url`` (an Origin or a Referer) names ``host``; ``null`` never does."""
    try:
        return urlsplit(url).netloc.lower() == host.lower()
    except ValueError:
        return False


def _is_loopback(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _is_loopback_host(host: str) -> bool:
    """A Host header naming this machine's loopback: a DNS-rebinding page never does."""
    name = urlsplit(f"//{host}").hostname or ""
    return name == "localhost" or name.endswith(".localhost") or _is_loopback(name)
