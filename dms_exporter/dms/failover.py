"""Failover between the members of a redundant DMS: which URL the client talks to.

The client starts on the main (the first URL). It moves to the next URL (round robin) after
``FAILOVER_AFTER`` requests in a row to the active URL fail to connect, time out or get a 5xx (a
failed login counts as enough: every poll waits for it, and the login backoff would hold the
next attempts back), or when its ``/system/info`` says it is not the active member
(``STANDBY_ROLES``). While it is away from the main, the client checks every
``dms.failback_interval`` whether the main answers and is active again, and moves back if so.
``Links`` keeps the decision; the client does the move.
"""

from __future__ import annotations

import logging
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
    """The URLs of one DMS, the active one and their reachability (in ``state``)."""

    def __init__(self, urls: tuple[str, ...], state: DmsLinks) -> None:
        self.urls = urls
        self.index = 0
        self.state = state
        state.urls, state.active = urls, urls[0]
        state.reachable = {url: ok for url, ok in state.reachable.items() if url in urls}
        self._failures = 0

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

    def next_index(self, *, answering: bool = False) -> int | None:
        """The URL after the active one (round robin); with ``answering``, the first after it
        not known to be unreachable. None if there is no such other URL."""
        count = len(self.urls)
        for step in range(1, count):
            index = (self.index + step) % count
            if not answering or self.state.reachable.get(self.urls[index]) is not False:
                return index
        return None

    def move(self, index: int, why: str) -> None:
        """Make ``urls[index]`` the active URL (logged once per move)."""
        old = self.active
        self.index, self._failures = index, 0
        self.state.active = self.active
        level = logging.INFO if index == 0 else logging.WARNING
        what = "DMS failback to the main" if index == 0 else "DMS failover"
        log.log(level, what, extra={"from_url": old, "to_url": self.active, "why": why})
