"""The DMS login: one token for every poller, renewed before it expires.

``Login.token`` returns a valid token, logging in when there is none, when it expires soon, or
when the DMS refused it. Concurrent callers wait for one login. ``_post_login`` is the one place
that knows how the credentials are sent and how the answer is read.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING, Any

from ..config import EndpointSettings
from ..errors import DmsApiError, DmsAuthError, DmsHttpError, DmsPayloadError

if TYPE_CHECKING:
    from .client import DmsClient

__all__ = ["Login"]

log = logging.getLogger(__name__)


class Login:
    """The token of one ``DmsClient``; see the module docstring."""

    def __init__(self, client: DmsClient) -> None:
        self.counts: dict[str, int] = {"success": 0, "failure": 0}
        self._client = client
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._renew_at = math.inf  # loop time after which to log in again

    @property
    def current(self) -> str | None:
        """The token held, if any (for masking it in messages)."""
        return self._token

    async def token(self, endpoint: EndpointSettings, refused: str | None = None) -> str:
        """A valid token: the cached one unless it expires soon or was ``refused``."""
        async with self._lock:  # concurrent callers wait for one login
            now = asyncio.get_running_loop().time()
            token = self._token
            if token is not None and token != refused and now < self._renew_at:
                return token
            self._token = None
            try:
                token, expires_in = await self._post_login(endpoint)
            except DmsApiError:
                self.counts["failure"] += 1
                raise
            self.counts["success"] += 1
            renew_in = math.inf
            if _is_seconds(expires_in) and expires_in > 0:
                renew_in = expires_in - min(60.0, expires_in / 10)
            self._token, self._renew_at = token, now + renew_in
            log.debug("logged in to the DMS", extra={"expires_in": expires_in})
            return token

    async def _post_login(self, endpoint: EndpointSettings) -> tuple[str, Any]:
        """POST the credentials; ``(token, expiresIn)``. 401 or 403 is a ``DmsAuthError``."""
        client = self._client
        settings = client.settings
        path = settings.login_path
        credentials = {"username": settings.username, "password": settings.password}
        try:
            body = await client._request(endpoint, "POST", path, json_body=credentials)
        except (DmsAuthError, DmsHttpError) as exc:
            if exc.status not in (401, 403):
                raise
            detail = f"login as {settings.username!r} refused: HTTP {exc.status}"
            kwargs = {"status": exc.status, "code": exc.code}
            raise client._error(DmsAuthError, endpoint, "POST", path, detail, **kwargs) from exc
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise client._error(DmsPayloadError, endpoint, "POST", path, "no token in the answer")
        return token, body.get("expiresIn")


def _is_seconds(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
