"""Failover between the members of a redundant DMS: which URL the client talks to.

The client starts on the main (the first URL). It moves to the next URL (round robin) after
``FAILOVER_AFTER`` requests in a row to the active URL fail to connect, time out or get a 5xx (a
failed login counts as enough: every poll waits for it, and the login backoff would hold the
next attempts back). A 503 with ``Retry-After`` is not a failure: the member is up and asks for
less load (the client honours the wait). It also moves when the active member's
``/system/info`` says it is not the active member (``STANDBY_ROLES``), to the next member that
is not known to be unreachable and has not said the same within ``dms.failover_hold``: when
every member says standby it stays where it is, and looks again once the hold has passed. While
it is away from the main, the client checks every ``dms.failback_interval`` whether the main
answers and is active again, and moves back if so. ``Links`` keeps the decision; ``Failover``
does the move (with a login of the new member) and the failback checks, for the client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

from ..config import EndpointSettings
from ..errors import DmsApiError
from ..model import DmsLinks, LoginState
from ..tasks import cancel_and_wait
from .auth import Login, Transport

__all__ = ["FAILOVER_AFTER", "STANDBY_ROLES", "Failover", "Links", "Member", "is_standby"]

log = logging.getLogger(__name__)

#: Failed requests in a row to the active URL that make the client move to the next one.
FAILOVER_AFTER = 3
#: ``role`` values of ``/system/info`` that mean "not the active member" (upper case).
STANDBY_ROLES = frozenset({"BACKUP", "STANDBY", "PASSIVE", "SECONDARY"})
#: The system endpoint as the failback check asks for it when no poll of it was seen.
_SYSTEM = EndpointSettings(
    name="system", enabled=True, interval=60.0, timeout=30.0, stale_after=180.0,
    path="/system/info", params={}, fields={},
)  # fmt: skip


def is_standby(system: Any, role_field: str = "role") -> bool:
    """True if a ``/system/info`` answer says its DMS is not the active member."""
    role = system.get(role_field) if isinstance(system, dict) else None
    return isinstance(role, str) and role.strip().upper() in STANDBY_ROLES


class Links:
    """The URLs of one DMS, the active one, their reachability and roles (in ``state``)."""

    def __init__(self, urls: tuple[str, ...], state: DmsLinks, hold: float = 300.0) -> None:
        self.urls = urls
        self.index = 0
        self.state = state
        self.hold = hold  # seconds a member that said standby is not moved to again
        state.urls, state.active = urls, urls[0]
        state.reachable = {url: ok for url, ok in state.reachable.items() if url in urls}
        state.standby = {url: s for url, s in state.standby.items() if url in urls}
        self._failures = 0
        self._said_standby: dict[str, float] = {}  # url -> loop time it last said standby
        self._staying = False  # every member says standby; logged once

    @property
    def active(self) -> str:
        return self.urls[self.index]

    @property
    def on_main(self) -> bool:
        return self.index == 0

    def note(self, url: str, answered: bool, *, login: bool = False) -> bool:
        """Record a request's outcome; True if the client should move to the next URL."""
        self.state.reachable[url] = answered
        if url != self.active:
            return False
        self._failures = 0 if answered else self._failures + 1
        enough = FAILOVER_AFTER if not login or answered else 1
        return len(self.urls) > 1 and self._failures >= enough

    def note_role(self, url: str, standby: bool, now: float) -> int | None:
        """Record what ``url``'s ``/system/info`` said (``now``: loop time). If it is the
        active URL and says standby, the index to move to: the next URL not known to be
        unreachable nor to have said standby within ``hold``; None to stay."""
        self.state.standby[url] = standby
        if not standby:
            self._said_standby.pop(url, None)
            self._staying = self._staying and url != self.active
            return None
        self._said_standby[url] = now
        if url != self.active or len(self.urls) == 1:
            return None
        for index in self._others():
            other = self.urls[index]
            said = self._said_standby.get(other)
            if self.state.reachable.get(other) is not False and (
                said is None or now - said >= self.hold
            ):
                return index
        if not self._staying:
            self._staying = True
            log.warning(
                "every DMS member answering says it is a standby; staying on the active URL",
                extra={"url": url, "hold_seconds": self.hold},
            )
        return None

    def next_index(self) -> int | None:
        """The URL after the active one (round robin); None if there is no other URL."""
        return next(self._others(), None)

    def _others(self) -> Iterator[int]:
        """The indexes of the other URLs, round robin from the active one."""
        count = len(self.urls)
        return ((self.index + step) % count for step in range(1, count))

    def move(self, index: int, why: str) -> None:
        """Make ``urls[index]`` the active URL (logged once per move)."""
        old = self.active
        self.index, self._failures, self._staying = index, 0, False
        self.state.active = self.active
        level = logging.INFO if index == 0 else logging.WARNING
        what = "DMS failback to the main" if index == 0 else "DMS failover"
        log.log(level, what, extra={"from_url": old, "to_url": self.active, "why": why})


class Member(Transport, Protocol):
    """What a failover needs of the client: a login's ``Transport``, and one request."""

    @property
    def request(self) -> Callable[..., Awaitable[Any]]:
        """``(endpoint, method, path, token=, base=)``: the JSON of a 2xx answer, else a
        ``DmsApiError``."""


class Failover:
    """Which member of a DMS ``client`` talks to, and its login there (``login``): moves on
    ``Links``' decision and, while away from the main, checks for it (``close`` stops that)."""

    def __init__(
        self,
        client: Member,
        login_state: LoginState,
        links: DmsLinks,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``login_state`` and ``links`` receive the login counts and backoff, and the active
        URL and reachability; ``clock`` (Unix time) times the login backoff."""
        settings = client.settings
        urls = (settings.url, *settings.standby_urls)
        self.links = Links(urls, links, settings.failover_hold)
        self.login = Login(client, login_state, clock=clock, url=settings.url)
        self.system: EndpointSettings | None = None  # the system endpoint, for failback checks
        self._client = client
        self._clock = clock
        self._failback: asyncio.Task[None] | None = None

    def note(self, url: str, answered: bool, *, login: bool) -> None:
        """A request to ``url`` got an answer (or not); move on if the active URL keeps not
        answering (``Links.note``)."""
        if self.links.note(url, answered, login=login):
            to = self.links.next_index()
            if to is not None:
                self.move(to, "no answer")

    def note_system(self, url: str, endpoint: EndpointSettings, system: Any) -> None:
        """The system info ``url`` answered: move on if it says it is a standby."""
        self.system = endpoint
        standby = is_standby(system, endpoint.fields.get("role", "role"))
        to = self.links.note_role(url, standby, asyncio.get_running_loop().time())
        if to is not None:
            self.move(to, "it is a standby")

    async def close(self) -> None:
        """Stop checking for failback."""
        if self._failback is not None:
            await cancel_and_wait(self._failback)
            self._failback = None

    def move(self, index: int, why: str, login: Login | None = None) -> None:
        """Talk to ``urls[index]`` from now on, with ``login`` (else a new one: a token of one
        member is no good at another); check for failback while away from the main."""
        links = self.links
        if index == links.index:
            return
        links.move(index, why)
        state = self.login.state
        state.next_attempt, state.refusals = None, 0  # the backoff was for the other member
        if login is None:
            login = Login(self._client, state, clock=self._clock, url=links.active)
        login.state = state
        self.login = login
        if not links.on_main and (self._failback is None or self._failback.done()):
            self._failback = asyncio.get_running_loop().create_task(
                self._check_main(), name="dms-failback"
            )

    async def _check_main(self) -> None:
        """Every ``dms.failback_interval`` while away from the main: log in to the main (with
        a login of its own) and GET its system info; move back once it answers as active."""
        main = self.links.urls[0]
        login: Login | None = None
        while not self.links.on_main:
            await asyncio.sleep(self._client.settings.failback_interval)
            endpoint, auth = self.system or _SYSTEM, self._client.settings.auth
            if login is None or login.state.last_result in ("unreachable", "error"):
                # this check already waits failback_interval between tries; only a refused
                # login keeps the backoff (so the account is not locked)
                state = LoginState(counts=self.login.state.counts)
                login = Login(self._client, state, clock=self._clock, url=main)
            try:
                token = None if auth != "token" else await login.token(endpoint)
                async with asyncio.timeout(endpoint.timeout):
                    body = await self._client.request(
                        endpoint, "GET", endpoint.path, token=token, base=main
                    )
            except (DmsApiError, TimeoutError) as exc:
                log.debug("the main DMS is not back", extra={"url": main, "error": str(exc)})
                continue
            standby = is_standby(body, endpoint.fields.get("role", "role"))
            self.links.note_role(main, standby, asyncio.get_running_loop().time())
            if not standby:
                self.move(0, "the main is back", login)
