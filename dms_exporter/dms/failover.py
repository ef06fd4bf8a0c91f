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
answers and is active again, and moves back if so. ``Links`` keeps the decision; the client does
the move.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from ..model import DmsLinks

__all__ = ["FAILOVER_AFTER", "STANDBY_ROLES", "Links", "is_standby"]

log = logging.getLogger(__name__)

#: Failed requests in a row to the active URL that make the client move to the next one.
FAILOVER_AFTER = 3
#: ``role`` values of ``/system/info`` that mean "not the active member" (upper case).
STANDBY_ROLES = frozenset({"BACKUP", "STANDBY", "PASSIVE", "SECONDARY"})


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
