"""One background poll loop per DMS endpoint.

A poller waits (interval with a little jitter), fetches its endpoint through the client, parses
the answer into rows in a worker thread, and hands the table to the store, which re-renders what
changed. A failure of any kind is recorded in the store and the loop goes on; nothing a DMS sends
can end it. ``poll_now`` serves refresh on demand and never starts a second poll in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Callable

from .client import DmsClient
from .config import EndpointSettings
from .errors import DmsApiError, DmsUnavailableError
from .model import Alarm, EndpointStatus, Table
from .store import Store
from .vocabulary import parse

__all__ = ["JITTER", "EndpointPoller"]

log = logging.getLogger(__name__)

#: Each wait is the interval times a random factor in [1 - JITTER, 1 + JITTER], so endpoints
#: with the same interval do not hit the DMS in lockstep.
JITTER = 0.05


class EndpointPoller:
    """Polls one enabled endpoint until ``stop``; see the module docstring."""

    def __init__(
        self,
        settings: EndpointSettings,
        client: DmsClient,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._client = client
        self._store = store
        self._clock = clock
        self._rng = rng or random.Random()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: asyncio.Task[EndpointStatus] | None = None
        self._wake = asyncio.Event()
        self._failing = False  # for logging transitions only
        self._retry_after: float | None = None

    def start(self) -> None:
        """Start the loop: the first poll runs at once."""
        self._task = asyncio.create_task(self._run(), name=f"poll-{self.settings.name}")

    async def stop(self) -> None:
        """Cancel the loop and any poll in flight, and wait for them to end."""
        for task in (self._task, self._in_flight):
            if task is not None:
                task.cancel()
        for task in (self._task, self._in_flight):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._in_flight = None

    async def poll_now(self) -> EndpointStatus:
        """Poll now (or join the poll in flight) and return the endpoint's status after it."""
        if self._in_flight is None or self._in_flight.done():
            self._in_flight = asyncio.create_task(self._poll())
        # shield: a client that hangs up must not cancel a poll the loop may also be awaiting
        status = await asyncio.shield(self._in_flight)
        self._wake.set()  # restart the wait, so the next scheduled poll is a full interval away
        return status

    async def _run(self) -> None:
        while True:
            await self.poll_now()
            while True:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self._next_delay())
                except TimeoutError:
                    break  # due
                # woken: a refresh on demand has just polled, so wait a full interval again

    def _next_delay(self) -> float:
        delay = self.settings.interval * self._rng.uniform(1 - JITTER, 1 + JITTER)
        if self._retry_after is not None:
            delay = max(delay, self._retry_after)
        return delay

    async def _poll(self) -> EndpointStatus:
        name = self.settings.name
        started = time.perf_counter()
        self._retry_after = None
        try:
            payload = await self._client.fetch(self.settings)
            now = self._clock()
            parsed = await asyncio.get_running_loop().run_in_executor(
                None, parse, name, payload, self.settings.fields, now
            )
        except DmsApiError as exc:
            self._record_failure(exc.reason, str(exc), time.perf_counter() - started)
            if isinstance(exc, DmsUnavailableError):
                self._retry_after = exc.retry_after
            return self._store.status(name)
        except Exception as exc:  # a bug of ours must not end polling; the log has the trace
            log.exception("unexpected error polling endpoint=%s", name)
            self._record_failure("payload", type(exc).__name__, time.perf_counter() - started)
            return self._store.status(name)
        rows = parsed.rows
        old = self._store.tables[name]
        if name == "alarms":
            rows = fill_asserted_times(rows, old, now)
        duration = time.perf_counter() - started
        await self._store.record_success(
            name,
            Table(endpoint=name, rows=rows, fetched_at=now),
            duration=duration,
            rows_skipped=parsed.skipped,
            unknown_values=parsed.unknown_values,
        )
        if self._failing:
            log.info("endpoint recovered endpoint=%s", name)
            self._failing = False
        log.debug("polled endpoint=%s rows=%d duration_seconds=%.3f", name, len(rows), duration)
        return self._store.status(name)

    def _record_failure(self, reason: str, message: str, duration: float) -> None:
        name = self.settings.name
        if not self._failing:  # log the transition, not every failed poll
            log.warning("endpoint failing endpoint=%s reason=%s error=%s", name, reason, message)
            self._failing = True
        else:
            log.debug("endpoint still failing endpoint=%s reason=%s", name, reason)
        self._store.record_failure(name, reason=reason, message=message, duration=duration)


def fill_asserted_times(
    rows: tuple[Alarm, ...], previous: Table | None, now: float
) -> tuple[Alarm, ...]:
    """Give alarms without ``assertedTime`` the time we first saw them, so their series is
    stable from poll to poll instead of taking the time of each poll."""
    if all(row.asserted_time is not None for row in rows):
        return rows
    seen = {row.id: row.asserted_time for row in previous.rows} if previous is not None else {}
    filled = []
    for row in rows:
        if row.asserted_time is None:
            first_seen = seen.get(row.id) or now
            row = dataclasses.replace(row, asserted_time=first_seen)
        filled.append(row)
    return tuple(filled)
