"""The simulator's clock: real time (or a fixed instant when frozen) plus an advance offset."""

from __future__ import annotations

import time
from datetime import UTC, datetime

#: The fixed instant of frozen mode: 2026-06-01T12:00:00Z.
FROZEN_EPOCH = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC).timestamp()


def iso(seconds: float | None) -> str | None:
    """Unix seconds as ISO 8601 UTC with a ``Z`` (whole seconds), or ``None``."""
    if seconds is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(seconds)))


def parse_iso(text: str) -> float:
    """ISO 8601 UTC text (``2026-06-01T12:00:00Z``) as Unix seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Clock:
    """What time the simulated DMS thinks it is.

    Live: the wall clock plus every ``advance``. Frozen: ``start`` (default ``FROZEN_EPOCH``)
    plus every ``advance``; it never moves by itself.
    """

    def __init__(self, frozen: bool = False, start: float | None = None) -> None:
        self.frozen = frozen
        self._offset = 0.0
        if start is None:
            start = FROZEN_EPOCH if frozen else float(int(time.time()))
        self._base = start
        self._real_base = time.time()

    def now(self) -> float:
        """Current simulated time in Unix seconds."""
        if self.frozen:
            return self._base + self._offset
        return self._base + (time.time() - self._real_base) + self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock forward (or back, if negative); returns the new time."""
        self._offset += float(seconds)
        return self.now()
