"""One background poll loop per DMS endpoint.

A poller waits (interval with a little jitter), fetches its endpoint through the client, parses
the answer into rows in a worker thread, and hands the table to the store, which re-renders what
changed. A failure of any kind is recorded in the store and the loop goes on; nothing a DMS sends
can end it. ``poll_now`` serves refresh on demand and never starts a second poll in flight.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from .config import EndpointSettings
from .dms import DmsClient
from .errors import DmsApiError, DmsUnavailableError
from .model import Alarm, EndpointStatus, Table
from .store import Store
from .vocabulary import Parsed, parse

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
        self._failing = False  # to log an unexpected error once, not at every poll
        self._retry_after: float | None = None
        self._stopped = False

    def start(self) -> None:
        """Start the loop: the first poll runs at once."""
        self._task = asyncio.create_task(self._run(), name=f"poll-{self.settings.name}")

    async def stop(self) -> None:
        """Cancel the loop and any poll in flight, and wait for them to end."""
        self._stopped = True
        for task in (self._task, self._in_flight):
            if task is not None:
                task.cancel()
        for task in (self._task, self._in_flight):
            if task is not None:
                await wait_cancelled(task)
        self._task = self._in_flight = None

    async def poll_now(self) -> EndpointStatus:
        """Poll now (or join the poll in flight) and return the endpoint's status after it."""
        if self._stopped:  # a refresh racing a reload: the new poller will poll at once
            return self._store.status(self.settings.name)
        if self._in_flight is None or self._in_flight.done():
            self._in_flight = asyncio.create_task(self._poll())
        try:
            # shield: a client that hangs up must not cancel a poll the loop also awaits
            status = await asyncio.shield(self._in_flight)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # we are being cancelled ourselves
            return self._store.status(self.settings.name)  # stop() cancelled the poll
        self._wake.set()  # restart the wait, so the next scheduled poll is a full interval away
        return status

    async def _run(self) -> None:
        while True:
            try:
                await self.poll_now()
            except Exception:  # _poll records every failure; this is a last line of defence
                log.exception("poll loop error", extra={"endpoint": self.settings.name})
            while True:
                self._wake.clear()
                try:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                    # cancel that arrives as the event is set, and stop() would wait forever
                    async with asyncio.timeout(self._next_delay()):
                        await self._wake.wait()
                except TimeoutError:
                    break  # due
                # woken: a refresh on demand has just polled, so wait a full interval again

    def _next_delay(self) -> float:
        delay = self.settings.interval * self._rng.uniform(1 - JITTER, 1 + JITTER)
        if self._retry_after is not None:
            # honour Retry-After, but never for so long that the data goes stale for it
            delay = max(delay, min(self._retry_after, self.settings.stale_after))
        return delay

    async def _poll(self) -> EndpointStatus:
        name = self.settings.name
        started = time.perf_counter()
        self._retry_after = None
        try:
            payload = await self._client.fetch(self.settings)
            now = self._clock()
            old = self._store.tables[name]
            first_seen = self._store.alarm_first_seen
            table, parsed, changed, first_seen = await asyncio.get_running_loop().run_in_executor(
                None, self._prepare, payload, now, old, first_seen
            )
            duration = time.perf_counter() - started
            await self._store.record_success(
                name,
                table,
                alarm_first_seen=first_seen if name == "alarms" else None,
                changed=changed,
                duration=duration,
                rows_skipped=parsed.skipped,
                unknown_values=parsed.unknown_values,
            )
        except DmsApiError as exc:
            self._record_failure(exc.reason, str(exc), time.perf_counter() - started)
            if isinstance(exc, DmsUnavailableError):
                self._retry_after = exc.retry_after
            return self._store.status(name)
        except Exception as exc:  # a bug of ours must not end polling; the log has the trace
            if not self._failing:
                log.exception("unexpected error polling", extra={"endpoint": name})
            self._record_failure("payload", type(exc).__name__, time.perf_counter() - started)
            return self._store.status(name)
        self._failing = False  # the store logs the recovery
        return self._store.status(name)

    def _prepare(
        self, payload: Any, now: float, old: Table | None, first_seen: Mapping[str, float]
    ) -> tuple[Table, Parsed, bool, Mapping[str, float]]:
        """Parse, fill alarm times and compare with the table held. Pure, so it runs in a
        worker thread (all three scale with the number of rows)."""
        name = self.settings.name
        parsed = parse(name, payload, self.settings.fields, now)
        rows = parsed.rows
        if name == "alarms":
            rows, first_seen = fill_asserted_times(rows, first_seen, now)
        changed = old is None or old.rows != rows
        return Table(endpoint=name, rows=rows, fetched_at=now), parsed, changed, first_seen

    def _record_failure(self, reason: str, message: str, duration: float) -> None:
        self._failing = True  # the store logs the transition
        self._store.record_failure(
            self.settings.name, reason=reason, message=message, duration=duration
        )


def fill_asserted_times(
    rows: tuple[Alarm, ...], first_seen: Mapping[str, float], now: float
) -> tuple[tuple[Alarm, ...], dict[str, float]]:
    """Give alarms without ``assertedTime`` the time we first saw them, so their series keeps
    one value from poll to poll; returns the rows and the first-seen times of this poll."""
    filled = []
    seen_now: dict[str, float] = {}
    for row in rows:
        if row.asserted_time is None:
            seen_now[row.id] = first_seen.get(row.id, now)
            row = dataclasses.replace(row, asserted_time=seen_now[row.id])
        filled.append(row)
    return tuple(filled), seen_now


async def wait_cancelled(task: asyncio.Task[Any]) -> None:
    """Wait for a task we cancelled to end; a cancel aimed at the caller still propagates."""
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
