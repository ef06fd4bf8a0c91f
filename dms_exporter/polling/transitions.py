"""Log lines for what changes in polling: one line per change of state, not one per poll.

The store reports every poll here. An endpoint that starts failing gives one warning, one that
recovers one info line; while the DMS cannot be reached at all (reason ``connection``) the first
endpoint to notice gives one ``DMS unreachable`` line for all of them, and the first success after
it one ``DMS reachable`` line. Once every enabled endpoint has been polled, one ``ready`` line
gives each endpoint's first-poll duration.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

__all__ = ["UNREACHABLE_REASONS", "TransitionLog"]

log = logging.getLogger("dms_exporter.polling")

#: Failure reasons that mean the DMS as a whole cannot be reached, not one endpoint.
UNREACHABLE_REASONS = frozenset({"connection"})


class TransitionLog:
    """Remembers each endpoint's last outcome and logs only the changes."""

    def __init__(self) -> None:
        self._failing: dict[str, str] = {}  # endpoint -> reason of its failing polls
        self._unreachable = False
        self._first_poll: dict[str, float] = {}  # endpoint -> seconds its first poll took
        self._ready = False

    def success(self, endpoint: str, *, duration: float, rows: int) -> None:
        self._first_poll.setdefault(endpoint, duration)
        if self._unreachable:
            self._unreachable = False
            log.info("DMS reachable", extra={"endpoint": endpoint})
        reason = self._failing.pop(endpoint, None)
        fields = {"endpoint": endpoint, "rows": rows, "duration_seconds": round(duration, 3)}
        if reason is not None and reason not in UNREACHABLE_REASONS:
            log.info("endpoint recovered", extra={**fields, "reason": reason})
        else:
            log.debug("endpoint polled", extra=fields)

    def failure(self, endpoint: str, *, reason: str, error: str, duration: float) -> None:
        self._first_poll.setdefault(endpoint, duration)
        previous = self._failing.get(endpoint)
        self._failing[endpoint] = reason
        fields = {"endpoint": endpoint, "reason": reason, "error": error}
        if reason in UNREACHABLE_REASONS and self._unreachable:
            log.debug("endpoint failing", extra=fields)
        elif reason in UNREACHABLE_REASONS:
            self._unreachable = True
            log.warning("DMS unreachable", extra=fields)
        elif previous != reason:
            log.warning("endpoint failing", extra=fields)
        else:
            log.debug("endpoint still failing", extra=fields)

    def check_ready(self, enabled: Collection[str]) -> None:
        """Log ``ready`` the first time every endpoint in ``enabled`` has been polled."""
        if self._ready or not all(name in self._first_poll for name in enabled):
            return
        self._ready = True
        durations = {f"{name}_seconds": round(self._first_poll[name], 3) for name in enabled}
        failing = ",".join(name for name in enabled if name in self._failing)
        log.info("ready", extra={**durations, "failing": failing})
