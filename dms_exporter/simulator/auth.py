"""Authentication: token or session-cookie login with expiry and revocation, or HTTP Basic or an
API key on every call."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .clock import Clock
from .shapes import LoginShape, login_answer, token_in

AUTH_MODES = ("token", "basic", "api_key")


@dataclass(frozen=True)
class Denied:
    """Why a call is refused: the error code and message of the 401 body."""

    code: str
    message: str


@dataclass(frozen=True)
class Issued:
    """A successful login's answer: its body, and the headers and cookies it sets."""

    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)


@dataclass
class Authenticator:
    """Checks credentials and tokens against the simulator clock. Never logs the password."""

    mode: str
    username: str
    password: str = field(repr=False)
    token_ttl: float
    clock: Clock
    login: LoginShape = field(default_factory=LoginShape)  # how tokens are asked for and sent
    api_key_header: str = "X-API-Key"  # mode api_key: the header that must hold the password
    _tokens: dict[str, float] = field(default_factory=dict, repr=False)  # token -> expiry
    _revoked: set[str] = field(default_factory=set, repr=False)
    _bound: dict[str, str] = field(default_factory=dict, repr=False)  # session -> its token

    def __post_init__(self) -> None:
        if self.mode not in AUTH_MODES:
            raise ValueError(f"auth must be one of {', '.join(AUTH_MODES)}")

    def credentials_ok(self, username: object, password: object) -> bool:
        """Constant-time comparison of a username and password."""
        if not isinstance(username, str) or not isinstance(password, str):
            return False
        user_ok = hmac.compare_digest(username.encode(), self.username.encode())
        pass_ok = hmac.compare_digest(password.encode(), self.password.encode())
        return user_ok and pass_ok

    def issue_token(self) -> Issued:
        """A new token (and session cookie, if the login shape has one), valid for
        ``token_ttl`` simulated seconds: the login answer."""
        now = self.clock.now()
        if len(self._tokens) > 10000:
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
            self._bound = {s: t for s, t in self._bound.items() if s in self._tokens}
        shape = self.login
        token = secrets.token_urlsafe(24)
        self._tokens[token] = now + self.token_ttl
        issued = Issued(login_answer(shape, token, self.token_ttl, now))
        if shape.token_from == "header":
            issued.headers[shape.answer_header] = token
        if shape.cookie:
            session = token
            if shape.sends_token:  # a session of its own, bound to the token
                session = secrets.token_urlsafe(24)
                self._tokens[session] = now + self.token_ttl
                self._bound[session] = token
            issued.cookies[shape.cookie] = session
        return issued

    def check(
        self, headers: Mapping[str, str], cookies: Mapping[str, str] | None = None
    ) -> Denied | None:
        """``None`` if the request's headers and cookies let the call through, else why not."""
        if self.mode == "api_key":
            key = headers.get(self.api_key_header)
            if key is None:
                return Denied("AUTHENTICATION_REQUIRED", f"{self.api_key_header} required")
            if not hmac.compare_digest(key.encode(), self.password.encode()):
                return Denied("INVALID_API_KEY", "invalid API key")
            return None
        if self.mode == "basic":
            return self.check_basic(headers.get("Authorization"))
        shape = self.login
        if shape.cookie:
            session = (cookies or {}).get(shape.cookie)
            denied = self._valid(session, "session cookie")
            if denied is not None or not shape.sends_token:
                return denied
            token = token_in(shape, headers)
            if token is None or token != self._bound.get(session or ""):
                return Denied("INVALID_CSRF_TOKEN", f"{shape.token_header} missing or wrong")
            return None
        return self._valid(token_in(shape, headers), "token")

    def _valid(self, value: str | None, what: str) -> Denied | None:
        """``None`` if ``value`` is a token or session issued, not revoked and not expired."""
        if value is None:
            return Denied("AUTHENTICATION_REQUIRED", f"{what} required")
        if value in self._revoked:
            return Denied("TOKEN_REVOKED", "token has been revoked")
        expiry = self._tokens.get(value)
        if expiry is None:
            return Denied("INVALID_TOKEN", "unknown token")
        if self.clock.now() >= expiry:
            return Denied("TOKEN_EXPIRED", "token has expired")
        return None

    def check_basic(self, authorization: str | None) -> Denied | None:
        """``None`` if an ``Authorization: Basic`` value holds the right credentials."""
        scheme, _, value = (authorization or "").strip().partition(" ")
        value = value.strip()
        if scheme.lower() != "basic" or not value:
            return Denied("AUTHENTICATION_REQUIRED", "HTTP Basic credentials required")
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return Denied("INVALID_CREDENTIALS", "malformed Basic credentials")
        if not self.credentials_ok(user, password):
            return Denied("INVALID_CREDENTIALS", "invalid username or password")
        return None

    def revoke_all(self) -> int:
        """Revoke every token issued so far; returns how many."""
        count = len(self._tokens)
        self._revoked.update(self._tokens)
        self._tokens.clear()
        return count

    def expire_all(self) -> int:
        """Make every token issued so far expired now; returns how many."""
        now = self.clock.now()
        for token in self._tokens:
            self._tokens[token] = min(self._tokens[token], now)
        return len(self._tokens)

    @property
    def token_count(self) -> int:
        """Tokens issued and not revoked (expired ones included)."""
        return len(self._tokens)
