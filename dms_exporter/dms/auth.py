"""The DMS login: one token for every poller, one login at a time, and a backoff after failures.

``Login.token`` returns a valid token, logging in when there is none, when it expires soon, or
when the DMS refused it. A login runs as its own task: every caller waiting for it gets its
outcome, success or failure, and a caller that gives up (its poll timed out) does not cancel it;
the login's own limit is ``dms.timeout``. After a failed login no new one is tried before a
backoff ends: after a refusal (401/403 or the DMS's "bad credentials" error) it starts at
``dms.login_backoff.initial`` and doubles with each refusal in a row up to ``.max``; after the
DMS could not be reached or answered an error it is ``.initial``. Both are jittered. Callers in
the backoff get the last failure again, without a request. A refused call (401, or as the
client judges a session ended: a 403 with a session cookie, a redirect to the login page) with a
token that no call has accepted since the login that gave it (``refused``) is a refused login
too: the DMS takes the credentials but not the session (a revoked role, another tenant), and
logging in again at every poll would not change that. The streak of refusals ends when a call
accepts a token (``accepted``). ``_post_login`` is the one place that knows how the credentials
are sent and how the answer is read: the token at a path of its body, in one of its headers, or
none (``dms.login.token_from: cookie``: the cookies it sets are the session; the client's jar
keeps them, and the "token" is their values, to tell sessions apart). ``Login.cookies`` names
the cookies the last login answer set: with them, a ``403`` also means the session ended.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..config import DmsSettings, EndpointSettings
from ..config.shape import LoginShape
from ..errors import (
    DmsApiError,
    DmsAuthError,
    DmsConnectionError,
    DmsHttpError,
    DmsPayloadError,
    DmsTimeoutError,
    DmsUnavailableError,
)
from ..model import LoginState
from ..vocabulary import parse_time
from .paging import walk

__all__ = [
    "BACKOFF_JITTER",
    "REFUSAL_CODES",
    "Answer",
    "Login",
    "Transport",
    "basic_header",
    "login_result",
    "refusal_text",
]

log = logging.getLogger(__name__)

#: Each backoff is multiplied by a random factor in [1 - BACKOFF_JITTER, 1]: never longer than
#: configured, and exporters that share an account do not retry in lockstep.
BACKOFF_JITTER = 0.1
#: Names of headers or body fields of a login answer that may carry a token
#: (``X-Subject-Token``, ``X-Auth-Token``, ``csrfToken``, ``sessionId``).
_TOKEN_HEADER = re.compile(r"token|session|auth|csrf", re.IGNORECASE)
_NOT_TOKEN_HEADERS = frozenset({"set-cookie", "www-authenticate"})
#: DMS error codes of a login answer that mean "these credentials are refused", whatever the
#: HTTP status (some DMS answer 400 or 500 with them).
REFUSAL_CODES = frozenset(
    {"INVALID_CREDENTIALS", "BAD_CREDENTIALS", "AUTHENTICATION_FAILED", "ACCOUNT_LOCKED",
     "ACCOUNT_DISABLED", "USER_LOCKED", "PASSWORD_EXPIRED"}
)  # fmt: skip


def login_result(error: DmsApiError) -> str:
    """``refused``, ``unreachable`` or ``error``: how a failed login is counted."""
    if isinstance(error, DmsAuthError):
        return "refused"
    if isinstance(error, DmsConnectionError | DmsTimeoutError):
        return "unreachable"
    return "error"


@dataclass(frozen=True, slots=True)
class Answer:
    """A 2xx answer to the login: its headers, the cookies it set (on its way through
    redirects too) and its JSON (None when it is none)."""

    headers: Mapping[str, str]
    cookies: Mapping[str, str] = field(default_factory=dict)
    body: Any = None


class Transport(Protocol):
    """What a login needs of the client that holds it: the settings, one request, and errors
    whose messages name the call with every secret masked (``DmsClient`` is one)."""

    settings: DmsSettings

    @property
    def answer(self) -> Callable[..., Awaitable[Answer]]:
        """``(endpoint, method, path, json=, base=, json_body=|form_body=|headers=)``: the
        ``Answer`` of a 2xx answer, else a ``DmsApiError``; with ``json``, a body that is not
        JSON is a ``DmsPayloadError``."""

    @property
    def error(self) -> Callable[..., DmsApiError]:
        """``(cls, endpoint, method, path, detail, **kwargs)``: ``cls`` with a message naming
        the call, every secret masked."""


class Login:
    """The token of one ``DmsClient``; see the module docstring."""

    def __init__(
        self,
        client: Transport,
        state: LoginState,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        url: str | None = None,
    ) -> None:
        """``url``: the DMS member to log in to (None: the client's active one)."""
        self.state = state
        self.url = url
        self._client = client
        self._clock = clock
        self._rng = rng or random.Random()
        self._attempt: asyncio.Task[str] | None = None
        self._token: str | None = None
        self._renew_at = math.inf  # loop time after which to log in again
        self._last_error: DmsApiError | None = None
        self._accepted = False  # a call has succeeded with the token held
        #: what the last login answer lacked that the config expects ("" if nothing)
        self.warning = ""
        self._counted: str | None = None  # the token whose 401 was counted as a refusal
        #: the names of the cookies the last login answer set (a session riding on cookies)
        self.cookies: tuple[str, ...] = ()

    @property
    def current(self) -> str | None:
        """The token held, if any (for masking it in messages)."""
        return self._token

    async def token(self, endpoint: EndpointSettings, refused: str | None = None) -> str:
        """A valid token: the cached one unless it expires soon or was ``refused``; else the
        outcome of the login in flight or of a new one (or, in the backoff, the last failure)."""
        now = asyncio.get_running_loop().time()
        token = self._token
        if token is not None and token != refused and now < self._renew_at:
            return token
        if self._attempt is None:
            if self._last_error is not None and self._in_backoff():
                raise self._backoff_error(endpoint, self._last_error)
            self._token = None
            self._attempt = asyncio.create_task(self._log_in(endpoint), name="dms-login")
            self._attempt.add_done_callback(_retrieve)
        # shield: a waiting poll that times out must not cancel the login the others wait for
        return await asyncio.shield(self._attempt)

    def accepted(self, token: str) -> None:
        """A call succeeded with ``token``: if it is the one held, the refusals in a row end."""
        if token == self._token and not self._accepted:
            self._accepted = True
            self.state.refusals = 0

    def refused(
        self, endpoint: EndpointSettings, token: str, error: DmsApiError
    ) -> DmsApiError | None:
        """A call got 401 with ``token``. If it is the token held and no call has accepted it,
        count a refused login, start the backoff (once per token) and return the error to raise
        instead of logging in again; else None. The token is kept, so an endpoint the DMS does
        answer keeps working."""
        if token != self._token or self._accepted or self._counted == token:
            return None
        self._counted = token
        state = self.state
        state.refusals += 1
        state.last_result = "refused"
        delay = self._backoff("refused")
        state.next_attempt = self._clock() + delay
        code = f" {error.code}" if error.code else ""
        detail = (
            f"{refusal_text(error)}{code} right after a successful login as "
            f"{self._client.settings.username!r}: the DMS takes the credentials but refuses "
            "the calls (a revoked role, another tenant?)"
        )
        kwargs = {"status": error.status, "code": error.code}
        self._last_error = self._client.error(
            DmsAuthError, endpoint, "GET", endpoint.path, detail, **kwargs
        )
        level = logging.WARNING if state.refusals == 1 else logging.DEBUG
        log.log(
            level,
            "DMS refused the calls after a successful login",
            extra={"retry_in_seconds": round(delay), "error": str(self._last_error)},
        )
        return self._last_error

    async def _log_in(self, endpoint: EndpointSettings) -> str:
        state = self.state
        try:
            token, expires_in = await self._post_login(endpoint)
        except DmsApiError as exc:
            result = login_result(exc)
            state.counts[result] += 1
            state.last_result = result
            self._last_error = exc
            state.refusals = state.refusals + 1 if result == "refused" else 0
            delay = self._backoff(result)
            state.next_attempt = self._clock() + delay
            # a refusal is logged once per streak; an outage is logged by the endpoints' health
            level = logging.WARNING if state.refusals == 1 else logging.DEBUG
            log.log(
                level,
                "DMS login failed",
                extra={"result": result, "retry_in_seconds": round(delay), "error": str(exc)},
            )
            raise
        finally:
            self._attempt = None
        state.counts["success"] += 1
        state.last_result = "success"
        state.next_attempt = None  # the refusals in a row end when a call accepts the token
        self._last_error = None
        self._accepted = False
        renew_in = math.inf
        if _is_seconds(expires_in) and expires_in > 0:
            renew_in = expires_in - min(60.0, expires_in / 10)
        self._token = token
        self._renew_at = asyncio.get_running_loop().time() + renew_in
        log.debug("logged in to the DMS", extra={"expires_in": expires_in})
        return token

    def _backoff(self, result: str) -> float:
        """Seconds before the next login after a failure of kind ``result``."""
        settings = self._client.settings
        delay = settings.login_backoff_initial
        if result == "refused":
            doublings = min(self.state.refusals - 1, 60)  # 2**60 s is beyond any max
            delay = min(delay * 2**doublings, settings.login_backoff_max)
        return delay * self._rng.uniform(1 - BACKOFF_JITTER, 1)

    def _in_backoff(self) -> bool:
        next_attempt = self.state.next_attempt
        return next_attempt is not None and self._clock() < next_attempt

    def _backoff_error(self, endpoint: EndpointSettings, last: DmsApiError) -> DmsApiError:
        """The last login failure again, for a caller that comes during the backoff."""
        assert self.state.next_attempt is not None
        wait = self.state.next_attempt - self._clock()
        detail = f"no login before the backoff ends in {wait:.0f}s; the last one failed: "
        detail += str(last).split(": ", 2)[-1]  # without "endpoint: POST path: "
        path = self._client.settings.login_path
        kwargs = {"status": last.status, "code": last.code}
        return self._client.error(
            type(last), endpoint, self._client.settings.login.method, path, detail, **kwargs
        )

    async def _post_login(self, endpoint: EndpointSettings) -> tuple[str, Any]:
        """Send the credentials as ``dms.login`` says; ``(token, seconds until it expires or
        None)``. A refusal (401, 403 or a code in ``REFUSAL_CODES``) is a ``DmsAuthError``."""
        client = self._client
        settings = client.settings
        shape = settings.login
        path, method = settings.login_path, shape.method
        fields = {shape.username_field: settings.username, shape.password_field: settings.password}
        kwargs: dict[str, Any] = {}
        if shape.encoding == "json":
            kwargs["json_body"] = fields
        elif shape.encoding == "form":
            kwargs["form_body"] = fields
        else:
            kwargs["headers"] = {
                "Authorization": basic_header(settings.username, settings.password)
            }
        try:
            answer = await client.answer(
                endpoint, method, path, json=shape.token_from == "body", base=self.url, **kwargs
            )
        except (DmsAuthError, DmsHttpError, DmsUnavailableError) as exc:
            if exc.status in (404, 405):  # no login there, or not by this method
                detail = str(exc).split(": ", 2)[-1]  # without "endpoint: POST path: "
                detail += f" (is the login at {method} {path}? see dms.login_path, login.method)"
                kwargs = {"status": exc.status, "code": exc.code}
                raise client.error(type(exc), endpoint, method, path, detail, **kwargs) from exc
            if exc.status not in (401, 403) and exc.code not in REFUSAL_CODES:
                raise
            detail = f"login as {settings.username!r} refused: HTTP {exc.status}"
            if exc.code:
                detail += f" {exc.code}"
            kwargs = {"status": exc.status, "code": exc.code}
            raise client.error(DmsAuthError, endpoint, method, path, detail, **kwargs) from exc
        self.cookies = tuple(answer.cookies)
        body = answer.body
        token = _token(shape, body, answer.headers, answer.cookies)
        if token is None:
            detail = _no_token(shape, answer)
            raise client.error(DmsPayloadError, endpoint, method, path, detail)
        sent = walk(body, shape.expiry_path) if shape.expiry_path else None
        expiry = sent
        if shape.expiry == "timestamp":
            ends = parse_time(sent)
            expiry = None if ends is None else ends - time.time()
        elif isinstance(sent, str):  # "3600" from a DMS that quotes its numbers
            expiry = _number(sent)
        self._note_expiry(shape, sent, expiry)
        return token, expiry

    def _note_expiry(self, shape: LoginShape, sent: Any, expiry: Any) -> None:
        """Set ``warning`` when the answer lacks the expiry the config reads (logged once while
        it lasts): the token is then kept until a call is refused."""
        warning = ""
        if shape.expiry_path and not _is_seconds(expiry):
            what = "no" if sent is None else f"an unreadable ({type(sent).__name__})"
            warning = (
                f"the login answer has {what} expiry at {shape.expiry_path!r} "
                f"(dms.login.expiry_path, expiry: {shape.expiry}): the token is kept until a call "
                "is refused; set login.expiry_path to where the answer keeps it, or "
                "login.expiry: none"
            )
        if warning and warning != self.warning:
            log.warning("DMS login answer without its expiry", extra={"detail": warning})
        self.warning = warning


def _token_paths(body: Any, prefix: str = "", depth: int = 2) -> list[str]:
    """Dotted paths of the non-empty text fields of a login answer named like a token."""
    found: list[str] = []
    if not isinstance(body, dict):
        return found
    for key, value in body.items():
        if isinstance(value, str) and value and _TOKEN_HEADER.search(str(key)):
            found.append(f"{prefix}{key}")
        elif isinstance(value, dict) and depth > 1:
            found += _token_paths(value, f"{prefix}{key}.", depth - 1)
    return found


def refusal_text(error: DmsApiError) -> str:
    """How a call was refused: ``HTTP 401``, ``HTTP 403`` or ``a redirect to the login page``."""
    if error.status is not None and 300 <= error.status < 400:
        return "a redirect to the login page"
    return f"HTTP {error.status}"


def _token(
    shape: LoginShape, body: Any, headers: Mapping[str, str], cookies: Mapping[str, str]
) -> str | None:
    """The token of a login answer, where ``shape.token_from`` says; None if it is not there."""
    if shape.token_from == "cookie":
        return ";".join(cookies.values()) or None
    if shape.token_from == "header":
        token: Any = headers.get(shape.token_header or "")
    else:
        token = walk(body, shape.token_path)
    return token if isinstance(token, str) and token else None


def _no_token(shape: LoginShape, answer: Answer) -> str:
    """Why no token was found, and where the answer seems to keep its session instead: a text
    field of its body, a header or a cookie whose name says token or session."""
    headers, cookies = answer.headers, answer.cookies
    if shape.token_from == "cookie":
        return "the answer set no cookie (see dms.login.token_from)"
    if shape.token_from == "header":
        detail = f"no header {shape.token_header} in the answer (see dms.login.token_header)"
    else:
        detail = f"no token at {shape.token_path!r} in the answer (see dms.login.token_path)"
        paths = _token_paths(answer.body)
        if paths:
            detail += f"; a token seems to be at {paths[0]!r}: set dms.login.token_path: {paths[0]}"
            if cookies:  # a session cookie and a token to echo: a CSRF token
                detail += (
                    f" (the cookie {', '.join(cookies)} it set is kept without a key; if calls "
                    "are then refused, send the token in the header the DMS wants: "
                    "dms.token_header.name)"
                )
            return detail
    named = [h for h in dict.fromkeys(headers) if h.lower() != (shape.token_header or "").lower()]
    found = [h for h in named if _TOKEN_HEADER.search(h) and h.lower() not in _NOT_TOKEN_HEADERS]
    if found:
        return (
            f"{detail}; its header {found[0]} looks like the token: set dms.login.token_from: "
            f"header and dms.login.token_header: {found[0]}"
        )
    if cookies:
        return (
            f"{detail}; it set the cookie {', '.join(cookies)}: if that is the session, set "
            "dms.login.token_from: cookie"
        )
    return detail


def basic_header(username: str, password: str) -> str:
    """The ``Authorization`` value of HTTP Basic."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _retrieve(task: asyncio.Task[str]) -> None:
    """Mark a login's failure as seen, when every poll waiting for it has given up."""
    if not task.cancelled():
        task.exception()


def _is_seconds(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
