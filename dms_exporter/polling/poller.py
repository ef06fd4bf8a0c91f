"""One background poll loop per DMS endpoint.

A poller starts a poll every interval (start to start, with a little jitter), fetches its
endpoint through the client, parses the answer into rows in a worker thread, and hands the table
to the store, which re-renders what changed. A poll that overruns its interval delays the next;
two polls of one endpoint never overlap. A failure of any kind is recorded in the store and the
loop goes on; nothing a DMS sends can end it. ``refresh`` serves refresh on demand: it joins the
poll in flight; within ``min_gap`` after the last poll it answers with that poll if it succeeded,
and after a failed one it waits for the gap to end and polls. Either way the DMS gets no more
polls from refreshes than one per ``min_gap``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from .. import heap
from ..config import EndpointSettings
from ..dms import DmsClient
from ..errors import DmsApiError, DmsPayloadError, DmsSuspectError, DmsUnavailableError
from ..model import Alarm, EndpointStatus, Table, reuse_unchanged
from ..tasks import wait_cancelled
from ..vocabulary import PageRecord, Parsed, Parser
from .gate import Quality, judge
from .store import Store

__all__ = ["JITTER", "MAX_REFRESH_WAIT", "EndpointPoller", "Refreshed"]

log = logging.getLogger(__name__)

#: Each interval is multiplied by a random factor in [1 - JITTER, 1 + JITTER], so endpoints
#: with the same interval do not hit the DMS in lockstep.
JITTER = 0.05
#: A poll of an endpoint whose table holds at least this many rows runs with the cyclic garbage
#: collector paused (``heap.collector_paused``); below it, collections are cheap anyway. So does
#: an endpoint's first poll (nothing held yet: its size unknown): at start, with every table new,
#: full collections over the rows being made cost about a second at 100,000 devices.
PAUSE_COLLECTOR_ROWS = 10_000


#: The longest a refresh waits for ``min_gap`` to end after a failed poll; past it, the failed
#: poll is the answer at once (an HTTP client should not hang for minutes).
MAX_REFRESH_WAIT = 30.0


@dataclasses.dataclass(frozen=True, slots=True)
class Refreshed:
    """The answer to a refresh on demand: the endpoint's status after the poll it describes."""

    status: EndpointStatus
    polled: bool  # a poll ran for this refresh (started by it, or joined while in flight)
    age: float  # seconds since that poll ended
    next_poll_in: float  # seconds until a refresh may poll again (0: at once)
    message: str  # for the operator: "polled just now", "polled 3 s ago, within ..."


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
        min_gap: float = 0.0,
    ) -> None:
        self.settings = settings
        self.min_gap = min_gap  # seconds after a poll ends before a refresh may poll again
        self._client = client
        self._store = store
        self._clock = clock
        self._rng = rng or random.Random()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: asyncio.Task[EndpointStatus] | None = None
        self._wake = asyncio.Event()
        self._failing = False  # to log an unexpected error once, not at every poll
        self._factor = 1.0  # jitter of the current interval
        self._started: float | None = None  # loop time the last poll started
        self._finished: float | None = None  # loop time the last poll ended
        self._ended = asyncio.Event()  # set when a poll ends (then replaced by a new one)
        self._hold_until = 0.0  # loop time before which no scheduled poll starts (Retry-After)
        self._last_good: Quality | None = None  # of the last table applied, for the gate
        #: the rows of the last table applied, the settings they were parsed under and the
        #: pages that made them: a page that comes back the same is not converted again
        self._pages: tuple[tuple[Any, ...], EndpointSettings, tuple[PageRecord, ...]] | None = None
        self._stopped = False

    def start(self) -> None:
        """Start the loop: the first poll runs at once."""
        self._task = asyncio.create_task(self._run(), name=f"poll-{self.settings.name}")

    def update(self, settings: EndpointSettings) -> None:
        """Adopt new timing (interval, timeout, stale_after) of the same endpoint; a changed
        interval moves the next poll without polling now."""
        interval_changed = settings.interval != self.settings.interval
        self.settings = settings
        if interval_changed:
            self._wake.set()

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

    async def refresh(self) -> Refreshed:
        """A poll on demand that never polls the DMS more than once per ``min_gap``: joins the
        poll in flight; within the gap after a poll that succeeded, answers with that poll;
        after one that failed, waits for the gap to end (or for another poll) and polls. A wait
        longer than ``MAX_REFRESH_WAIT`` (a long gap or ``Retry-After``) is not waited for."""
        loop = asyncio.get_running_loop()
        asked = loop.time()
        while not self._stopped:
            if self._in_flight is not None and not self._in_flight.done():
                return self._refreshed(await self.poll_now(), polled=True)
            if self._finished is not None and self._finished >= asked:  # ended as we waited
                return self._refreshed(self._store.status(self.settings.name), polled=True)
            wait = self._refresh_wait()
            if wait <= 0:
                return self._refreshed(await self.poll_now(), polled=True)
            status = self._store.status(self.settings.name)
            if status.up or wait > MAX_REFRESH_WAIT:
                return self._refreshed(status, polled=False)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._ended.wait()
        # a refresh racing a reload: the new poller polls at once
        return self._refreshed(self._store.status(self.settings.name), polled=False)

    def _refresh_wait(self) -> float:
        """Seconds until a refresh may poll: ``min_gap`` after the last poll ended, and not
        before a ``Retry-After`` of the DMS has passed."""
        gap_end = -float("inf") if self._finished is None else self._finished + self.min_gap
        ready = max(gap_end, self._hold_until, self._client.paused_until)
        return ready - asyncio.get_running_loop().time()

    def _refreshed(self, status: EndpointStatus, *, polled: bool) -> Refreshed:
        now = asyncio.get_running_loop().time()
        age = 0.0 if self._finished is None else max(0.0, now - self._finished)
        wait = max(0.0, self._refresh_wait())
        if polled:
            message = "polled just now"
        elif self._finished is not None and age < self.min_gap:
            message = (
                f"polled {int(age)} s ago, within refresh_min_gap ({self.min_gap:g}s): "
                "answered with that poll"
            )
        else:
            message = (
                f"polled {int(age)} s ago; the DMS asked to wait (Retry-After): "
                f"a refresh polls again in {math.ceil(wait)} s"
            )
        return Refreshed(status, polled, age, wait, message)

    async def poll_now(self) -> EndpointStatus:
        """Poll now (or join the poll in flight) and return the endpoint's status after it."""
        if self._stopped:
            return self._store.status(self.settings.name)
        if self._in_flight is None or self._in_flight.done():
            self._started = asyncio.get_running_loop().time()
            self._factor = self._rng.uniform(1 - JITTER, 1 + JITTER)
            self._in_flight = asyncio.create_task(self._poll())
            self._wake.set()  # the loop counts the next interval from this start
        try:
            # shield: a client that hangs up must not cancel a poll the loop also awaits
            return await asyncio.shield(self._in_flight)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # we are being cancelled ourselves
            return self._store.status(self.settings.name)  # stop() cancelled the poll

    def _due(self) -> float:
        """Loop time of the next scheduled poll: an interval after the last one started."""
        if self._started is None:
            return 0.0
        due = self._started + self.settings.interval * self._factor
        return max(due, self._hold_until, self._client.paused_until)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            delay = self._due() - loop.time()
            if delay <= 0:
                try:
                    await self.poll_now()
                except Exception:  # _poll records every failure; this is a last line of defence
                    log.exception("poll loop error", extra={"endpoint": self.settings.name})
                continue
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancel that arrives as the event is set, and stop() would wait forever
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            except TimeoutError:
                pass  # due
            # woken: a refresh started a poll or the interval changed; compute the wait again

    async def _poll(self) -> EndpointStatus:
        try:
            return await self._fetch_and_store()
        finally:
            self._finished = asyncio.get_running_loop().time()
            self._ended.set()
            self._ended = asyncio.Event()

    async def _fetch_and_store(self) -> EndpointStatus:
        name = self.settings.name
        started = time.perf_counter()
        try:
            held = self._store.tables[name]
            big = held is None or len(held.rows) >= PAUSE_COLLECTOR_ROWS
            with heap.collector_paused() if big else contextlib.nullcontext():
                table, parsed, changed, first_seen = await self._fetch_and_parse(held)
            quality = Quality.of(parsed)
            self._check(quality, parsed)
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
            self._last_good = quality
            # only rows as the parser made them: the alarms' filled-in times are not in a page
            kept = table.rows is parsed.rows
            self._pages = (table.rows, self.settings, parsed.pages) if kept else None
        except DmsSuspectError as exc:
            self._record_failure(exc.reason, str(exc), time.perf_counter() - started,
                                 rows_skipped=parsed.skipped,
                                 unknown_values=parsed.unknown_values)  # fmt: skip
            return self._store.status(name)
        except DmsApiError as exc:
            self._record_failure(exc.reason, str(exc), time.perf_counter() - started)
            if isinstance(exc, DmsUnavailableError) and exc.retry_after is not None:
                # honour Retry-After, but never for so long that the data goes stale for it
                hold = min(exc.retry_after, self.settings.stale_after)
                self._hold_until = asyncio.get_running_loop().time() + hold
            return self._store.status(name)
        except Exception as exc:  # a bug of ours must not end polling; the log has the trace
            if not self._failing:
                log.exception("unexpected error polling", extra={"endpoint": name})
            self._record_failure("payload", type(exc).__name__, time.perf_counter() - started)
            return self._store.status(name)
        self._failing = False  # the store logs the recovery
        return self._store.status(name)

    async def _fetch_and_parse(
        self, held: Table | None
    ) -> tuple[Table, Parsed, bool, Mapping[str, float]]:
        """Fetch the endpoint and parse it page by page (rows equal to ``held``'s are kept as
        its objects); see ``_prepare`` for the rest."""
        loop = asyncio.get_running_loop()
        settings, name = self.settings, self.settings.name
        previous_pages: tuple[PageRecord, ...] = ()
        if self._pages is not None and held is not None:
            rows, parsed_under, pages = self._pages
            if rows is held.rows and parsed_under is settings:
                previous_pages = pages
        parser = Parser(name, settings.fields, values=settings.values,
                        constants=settings.constants,
                        previous=held.rows if held is not None else (),
                        previous_pages=previous_pages)  # fmt: skip

        async def on_page(items: list[Any], digest: str | None) -> None:
            # page by page, in a worker thread: the JSON of a big endpoint is never held
            # whole, so its peak does not become the process's resident size
            await loop.run_in_executor(None, parser.feed, items, digest)

        payload = await self._client.fetch(settings, on_page)
        now = self._clock()
        old = self._store.tables[name]
        first_seen = self._store.alarm_first_seen
        # the parser kept the rows equal to held's; alarm times filled in make new rows
        compared = old is held and name != "alarms"
        return await loop.run_in_executor(
            None, self._prepare, parser, payload, now, old, first_seen, compared
        )

    def _prepare(
        self,
        parser: Parser,
        payload: Any,
        now: float,
        old: Table | None,
        first_seen: Mapping[str, float],
        compared: bool = False,
    ) -> tuple[Table, Parsed, bool, Mapping[str, float]]:
        """Finish parsing (``payload``: what the client returned besides the pages it fed to
        ``parser``), fill alarm times and compare with the table held. Pure, so it runs in a
        worker thread (all three scale with the number of rows)."""
        name = self.settings.name
        if payload != []:  # system's object, or a list the client did not page
            parser.feed_payload(payload)
        parsed = parser.result()
        rows = parsed.rows
        if name == "alarms":
            rows, first_seen = fill_asserted_times(rows, first_seen, now)
        rows, changed = reuse_unchanged(old, rows, compared=compared)
        return Table(endpoint=name, rows=rows, fetched_at=now), parsed, changed, first_seen

    def _check(self, quality: Quality, parsed: Parsed) -> None:
        """Raise if the answer must not replace the table held: suspect, or no usable row."""
        name = self.settings.name
        problem = judge(quality, self._last_good, self.settings.gate)
        if problem is not None:
            raise DmsSuspectError(f"{name}: answer not applied: {problem}", endpoint=name)
        if parsed.items and not parsed.rows:
            # Every row unusable (a renamed id field, a broken page) and nothing to compare
            # with: keep the last good table (if any) instead of an empty one.
            detail = f"{name}: none of {parsed.items} items has a usable id"
            raise DmsPayloadError(detail, endpoint=name)

    def _record_failure(self, reason: str, message: str, duration: float, **counts: int) -> None:
        self._failing = True  # the store logs the transition
        self._store.record_failure(
            self.settings.name, reason=reason, message=message, duration=duration, **counts
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
