"""The request budget: how many requests the exporter has in flight to the DMS at once.

At most ``size`` requests run together over all endpoints. Callers with priority (the alarm and
system polls, and the login everyone waits for) are served before the others as slots free up,
so the alarm poll waits for at most one request in flight, never for a walk of many pages. With
three slots or more the others never take the last one, which stays free for priority callers;
with two, a slow poll of one endpoint still leaves the other slot to the rest.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

__all__ = ["Budget"]


class Budget:
    """A semaphore with priority and a reserved slot; see the module docstring."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.busy = 0
        self._order = itertools.count()
        # (0 for priority else 1, arrival, priority, future): the first is served first
        self._waiting: list[tuple[int, int, bool, asyncio.Future[None]]] = []

    def resize(self, size: int) -> None:
        """Change the size; requests in flight finish, waiters are served as slots free."""
        self.size = size
        self._wake()

    def release(self) -> None:
        """Give back a slot taken with ``acquire``."""
        self.busy -= 1
        self._wake()

    def _fits(self, priority: bool) -> bool:
        return self.busy < (self.size if priority or self.size < 3 else self.size - 1)

    async def acquire(self, priority: bool) -> None:
        """Wait for a slot and take it (a caller cancelled while waiting takes none)."""
        if not self._waiting and self._fits(priority):
            self.busy += 1
            return
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (0 if priority else 1, next(self._order), priority, future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # served as it was cancelled
                self.busy -= 1
                self._wake()
            raise

    def _wake(self) -> None:
        """Hand free slots to the waiters in order (cancelled ones are dropped)."""
        while self._waiting:
            _, _, priority, future = self._waiting[0]
            if future.done():
                heapq.heappop(self._waiting)
                continue
            if not self._fits(priority):
                return
            heapq.heappop(self._waiting)
            self.busy += 1
            future.set_result(None)
