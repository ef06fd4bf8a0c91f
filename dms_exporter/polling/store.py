"""In-memory tables, endpoint health and the pre-rendered exposition.

The store is the one place the pollers write to and the web handlers read from. Each endpoint's
last good ``Table`` is replaced whole; when a table changes, the family groups that depend on it
are rendered again (in a worker thread, so a 100k-device render never blocks the event loop;
``render`` redoes only the blocks whose items changed) and their cached segments are swapped in.
A scrape only lists cached segments and adds the *tail*: the health block, kept rendered
until what it shows changes, with the data ages and the process metrics read at that scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields

from .. import __version__, heap
from ..config import Config, EndpointSettings
from ..errors import ERROR_REASONS
from ..exposition.families.health import DATA_AGE, data_age_family, health_families
from ..exposition.gzipstream import GZIP_HEADER, Segment, combine, compress, stored, trailer
from ..exposition.process import process_exposition
from ..exposition.render import (
    GROUPS,
    GZIP_LEVEL,
    FamilyOutput,
    GroupOutput,
    RenderContext,
    groups_for,
    render_group,
)
from ..exposition.text import OPENMETRICS_EOF, render_openmetrics, render_text
from ..model import ENDPOINTS, DmsLinks, EndpointStatus, LoginState, Table
from .transitions import TransitionLog

__all__ = ["TRIM_ROWS", "Exposition", "Store", "render_context"]

log = logging.getLogger(__name__)

#: Cached segments smaller than this together are held joined, as one write of a scrape.
_JOIN_BYTES = 64 * 1024
#: After a poll of at least this many rows, freed heap is handed back to the OS (``heap.trim``).
TRIM_ROWS = 1000


def render_context(config: Config) -> RenderContext:
    """The render settings a config implies."""
    return RenderContext(
        display_names=config.display_names,
        allow_schedule_authorization=config.allow_schedule_authorization,
        alarm_retrieval=config.alarm_retrieval,
        paths={name: ep.path for name, ep in config.endpoints.items()},
        intervals={name: ep.interval for name, ep in config.endpoints.items()},
        disabled=config.metrics.disabled,
    )


@dataclass(slots=True)
class _Health:
    """Mutable health of one endpoint; ``EndpointStatus`` is its frozen view."""

    settings: EndpointSettings
    up: bool = False
    stale: bool = False  # the data outlived stale_after (shown marked old, or dropped)
    restored: bool = False  # the table shown was read back from disk, not polled yet
    last_poll: float | None = None
    last_success: float | None = None
    last_duration: float | None = None
    last_result: str = "pending"
    last_error: str = ""
    polls_total: int = 0
    errors_total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_REASONS, 0))
    rows_skipped_total: int = 0
    unknown_values_total: int = 0


#: The fields of ``_Health`` that ``EndpointStatus`` shows as they are.
_HEALTH_FIELDS = tuple(f.name for f in fields(_Health) if f.name != "settings")


@dataclass(frozen=True, slots=True)
class Exposition:
    """The parts of one ``/metrics`` answer, in order; the handler writes them one by one.

    With ``inflate``, each part is a raw deflate segment (``gzipstream``) to inflate on its own
    and the body is their plain bytes; without, the parts are the body (one gzip member)."""

    parts: tuple[bytes, ...]
    content_length: int
    inflate: bool = False


@dataclass(frozen=True, slots=True)
class _HealthBlock:
    """The health block rendered for one ``state`` of the store, in one format, without
    ``DATA_AGE`` (the one family that moves with the clock, written after it at each scrape)."""

    state: tuple[object, ...]
    segment: Segment


@dataclass(frozen=True, slots=True)
class _Cached:
    """The cached segments of a whole scrape in one format, before the tail, and their
    combined (CRC-32, plain length), so that a gzip scrape combines only the tail's."""

    parts: tuple[bytes, ...]
    crc: int
    size: int


class Store:
    """Tables, health and rendered chunks of every endpoint; see the module docstring."""

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.time) -> None:
        heap.tune()
        self._clock = clock
        self.start_time = clock()
        self.tables: dict[str, Table | None] = dict.fromkeys(ENDPOINTS)
        self._health: dict[str, _Health] = {}
        self._outputs: dict[str, GroupOutput] = {}
        self._cached: dict[bool, _Cached] = {}  # openmetrics? -> every family's segments
        self._health_blocks: dict[bool, _HealthBlock] = {}  # openmetrics? -> the last one
        self._render_durations: dict[str, float] = {}
        self._render_locks = {group: asyncio.Lock() for group in GROUPS}
        self.login = LoginState()  # the DMS client writes it
        self.links = DmsLinks()  # the DMS client writes it
        #: alarm id -> when a poll first saw it, for alarms the DMS sends without assertedTime;
        #: kept here, not in the poller, so it survives reloads and stale drops
        self.alarm_first_seen: Mapping[str, float] = {}
        #: endpoint -> whether its table changed (else a poll only confirmed it) since the
        #: snapshot writer last took them (``take_unsaved``), and the event that wakes it
        self._unsaved: dict[str, bool] = {}
        self.unsaved = asyncio.Event()
        self.config_reload_ok = True
        self.config_reload_timestamp: float | None = self.start_time
        self.transitions = TransitionLog()
        self.context = render_context(config)
        self.apply_config(config)

    # -- configuration ---------------------------------------------------------------------

    def apply_config(self, config: Config) -> set[str]:
        """Adopt a (new) config: settings, render context; drop tables of disabled endpoints.
        Returns the groups to render again: all if the render context changed, else those
        whose tables were dropped."""
        context = render_context(config)
        groups = set(GROUPS) if context != self.context else set()
        self.config = config
        self.context = context
        for name, settings in config.endpoints.items():
            health = self._health.get(name)
            if health is None:
                health = self._health[name] = _Health(settings)
            health.settings = settings
            if not settings.enabled:
                if self.tables[name] is not None:
                    groups.update(groups_for(name))
                self.tables[name] = None
                health.up = False
                health.stale = health.restored = False
                health.last_result = "disabled"
            elif health.last_result == "disabled":
                health.last_result = "pending"
        return groups

    # -- writes from the pollers -----------------------------------------------------------

    async def record_success(
        self,
        endpoint: str,
        table: Table,
        *,
        changed: bool,
        duration: float,
        alarm_first_seen: Mapping[str, float] | None = None,
        rows_skipped: int = 0,
        unknown_values: int = 0,
    ) -> None:
        """Keep ``table`` as the endpoint's data and, if its rows ``changed``, render what it
        touches; the poll counts as done (health, readiness) once its data is in the
        exposition. If the render fails, the last good table is put back and the error raised.
        """
        health = self._health[endpoint]
        old = self.tables[endpoint]
        self.tables[endpoint] = table  # even if unchanged: staleness is judged by fetched_at
        if changed or old is None:
            try:
                await self.render(groups_for(endpoint))
            except BaseException:
                self.tables[endpoint] = old
                raise
        self._unsaved[endpoint] = self._unsaved.get(endpoint, False) or changed or old is None
        self.unsaved.set()
        health.stale = health.restored = False
        if alarm_first_seen is not None:
            self.alarm_first_seen = alarm_first_seen
        health.polls_total += 1
        health.up = True
        health.last_poll = health.last_success = self._clock()
        health.last_duration = duration
        health.last_result = "ok"
        health.last_error = ""
        health.rows_skipped_total += rows_skipped
        health.unknown_values_total += unknown_values
        self.transitions.success(endpoint, duration=duration, rows=len(table.rows))
        self.transitions.check_ready(self._enabled())
        if len(table.rows) >= TRIM_ROWS:
            await asyncio.get_running_loop().run_in_executor(None, heap.trim)

    def record_failure(
        self,
        endpoint: str,
        *,
        reason: str,
        message: str,
        duration: float,
        rows_skipped: int = 0,
        unknown_values: int = 0,
    ) -> None:
        """Count a failed poll (and the bad rows and values of an answer not applied); the
        last good table stays, marked old after ``stale_after``, until ``drop_after``."""
        health = self._health[endpoint]
        health.rows_skipped_total += rows_skipped
        health.unknown_values_total += unknown_values
        health.polls_total += 1
        health.up = False
        health.last_poll = self._clock()
        health.last_duration = duration
        health.last_result = reason
        health.last_error = message
        health.errors_total[reason] = health.errors_total.get(reason, 0) + 1
        self.transitions.failure(endpoint, reason=reason, error=message, duration=duration)
        self.transitions.check_ready(self._enabled())

    def _enabled(self) -> list[str]:
        return [name for name, h in self._health.items() if h.settings.enabled]

    async def expire_stale(self) -> None:
        """Mark tables older than their ``stale_after`` as old (their series stay), drop
        those older than ``drop_after`` and render what that changed."""
        now = self._clock()
        groups: set[str] = set()
        for name, health in self._health.items():
            table = self.tables[name]
            if table is None:
                continue
            age = now - table.fetched_at
            settings = health.settings
            if settings.drop_after is not None and age > settings.drop_after:
                log.warning(
                    "endpoint data dropped",
                    extra={"endpoint": name, "age_seconds": round(age), "why": health.last_result},
                )
                self.tables[name] = None
                health.stale, health.restored = True, False
                groups.update(groups_for(name))
            elif age > settings.stale_after and not health.stale:
                log.warning(
                    "endpoint data stale, last good data kept",
                    extra={"endpoint": name, "age_seconds": round(age), "why": health.last_result},
                )
                health.stale = True
        await self.render(group for group in GROUPS if group in groups)

    def restore(self, table: Table, alarm_first_seen: Mapping[str, float]) -> bool:
        """Show ``table``, read back from disk at start, until the endpoint's first poll
        replaces it; False (and nothing changes) if the endpoint already has a table, is
        disabled, or the table is older than ``drop_after``. The caller renders."""
        name = table.endpoint
        health = self._health[name]
        settings = health.settings
        age = self._clock() - table.fetched_at
        too_old = settings.drop_after is not None and age > settings.drop_after
        if self.tables[name] is not None or not settings.enabled or too_old:
            return False
        self.tables[name] = table
        health.restored = True
        health.stale = age > settings.stale_after
        if name == "alarms":
            self.alarm_first_seen = alarm_first_seen
        return True

    def take_unsaved(self) -> dict[str, tuple[Table, bool]]:
        """The tables polled since the last call, each with whether it changed (for the
        snapshot on disk)."""
        polled, self._unsaved = self._unsaved, {}
        self.unsaved.clear()
        return {
            name: (table, changed)
            for name, changed in polled.items()
            if (table := self.tables[name]) is not None
        }

    async def render(self, groups: Iterable[str]) -> None:
        """Render ``groups`` from one snapshot of the tables, in a worker thread, and swap the
        bytes in all together: if one group fails, none changes and the error is raised."""
        wanted = set(groups)
        ordered = [group for group in GROUPS if group in wanted]
        loop = asyncio.get_running_loop()
        async with contextlib.AsyncExitStack() as locks:
            for group in ordered:  # always in GROUPS order, so two renders cannot deadlock
                await locks.enter_async_context(self._render_locks[group])
            tables = dict(self.tables)  # a shallow copy: tables themselves are immutable
            outputs: dict[str, GroupOutput] = {}
            for group in ordered:
                started = time.perf_counter()
                previous = self._outputs.get(group)
                outputs[group] = await loop.run_in_executor(
                    None, render_group, group, tables, self.context, previous
                )
                self._render_durations[group] = time.perf_counter() - started
            self._outputs.update(outputs)
            self._cached = {om: _cache(self._families(), om) for om in (False, True)}

    # -- reads for the web handlers ----------------------------------------------------------

    def status(self, endpoint: str) -> EndpointStatus:
        """The frozen status of one endpoint."""
        health = self._health[endpoint]
        table = self.tables[endpoint]
        settings = health.settings
        kept = {name: getattr(health, name) for name in _HEALTH_FIELDS}
        kept["errors_total"] = dict(health.errors_total)
        return EndpointStatus(
            endpoint=endpoint,
            path=settings.path,
            enabled=settings.enabled,
            interval=settings.interval,
            rows=len(table.rows) if table is not None else 0,
            **kept,
            data_time=table.fetched_at if table is not None else None,
        )

    def statuses(self) -> list[EndpointStatus]:
        """The status of every endpoint, in the canonical order."""
        return [self.status(name) for name in ENDPOINTS]

    @property
    def ready(self) -> bool:
        """True once every enabled endpoint has been polled at least once."""
        return all(h.last_poll is not None for h in self._health.values() if h.settings.enabled)

    @property
    def dms_up(self) -> bool | None:
        """The last poll of ``system`` succeeded (if it is off: of any enabled endpoint);
        None while pending (nothing polled yet)."""
        system = self._health["system"]
        watched = [system] if system.settings.enabled else self._health.values()
        polled = [h for h in watched if h.settings.enabled and h.last_poll is not None]
        return any(h.up for h in polled) if polled else None

    def tail(self, *, openmetrics: bool, names: frozenset[str] | None = None) -> list[Segment]:
        """The segments added to the stream after the cached ones: the health block, the
        process metrics (and OpenMetrics' ``# EOF``); families switched off or not named are
        left out. The data ages and the process metrics are read at every scrape; the rest of
        the health block is rendered again only when what it shows changed."""
        disabled = self.context.disabled

        def wanted(name: str, text_name: str) -> bool:
            named = names is None or name in names or text_name in names
            return named and name not in disabled

        now = self._clock()
        statuses = self.statuses()
        state = self._health_state(statuses)
        block = self._health_blocks.get(openmetrics) if names is None else None
        if block is None or block.state != state:
            block = self._health_block(statuses, state, openmetrics, wanted, now)
            if names is None:
                self._health_blocks[openmetrics] = block
        render = render_openmetrics if openmetrics else render_text
        ages = render([data_age_family(statuses, now)]) if wanted(DATA_AGE, DATA_AGE) else b""
        process = process_exposition(openmetrics=openmetrics, wanted=wanted)
        end = OPENMETRICS_EOF if openmetrics else b""
        # stored, not compressed: a compressor call gives the GIL up, and a scrape during a
        # render waits for it at each such call (docs/performance.md, the scrape path)
        return [block.segment, stored(ages + process + end)]

    def _health_state(self, statuses: list[EndpointStatus]) -> tuple[object, ...]:
        """Everything the health block shows but the data ages: equal states, equal bytes."""
        login, links = self.login, self.links
        return (
            statuses,
            tuple(login.counts.items()),
            login.next_attempt,
            links.urls,
            links.active,
            tuple(links.reachable.items()),
            tuple(links.standby.items()),
            tuple(self._render_durations.items()),
            self.config_reload_ok,
            self.config_reload_timestamp,
            self.context.disabled,
        )

    def _health_block(
        self,
        statuses: list[EndpointStatus],
        state: tuple[object, ...],
        openmetrics: bool,
        wanted: Callable[[str, str], bool],
        now: float,
    ) -> _HealthBlock:
        families = health_families(
            statuses,
            dms_up=self.dms_up,
            logins=self.login.counts,
            login_next_attempt=self.login.next_attempt,
            links=self.links,
            render_durations=self._render_durations,
            config_reload_ok=self.config_reload_ok,
            config_reload_ts=self.config_reload_timestamp,
            version=__version__,
            start_time=self.start_time,
            now=now,
        )
        render = render_openmetrics if openmetrics else render_text
        text = render(f for f in families if f.name != DATA_AGE and wanted(f.name, f.text_name))
        return _HealthBlock(state, compress(text, GZIP_LEVEL))

    def _families(self, names: frozenset[str] | None = None) -> list[FamilyOutput]:
        """Cached families in scrape order; only those named (either spelling) if ``names``."""
        families = [f for g in GROUPS if g in self._outputs for f in self._outputs[g].families]
        if names is None:
            return families
        return [f for f in families if f.name in names or f.text_name in names]

    def exposition(
        self, *, openmetrics: bool, gzipped: bool, names: frozenset[str] | None = None
    ) -> Exposition:
        """The body of a scrape: cached family segments, then the tail (the health block and
        the process metrics, as of now). With ``names``, only the families so named (OpenMetrics
        or text name); nothing is rendered for them, only the cached segments picked."""
        tail = self.tail(openmetrics=openmetrics, names=names)
        cached = self._cached.get(openmetrics) if names is None else None
        if cached is None:
            cached = _cache(self._families(names), openmetrics)
        crc, size = combine(((s.crc, s.size) for s in tail), (cached.crc, cached.size))
        if not gzipped:
            ending = b"".join([s.data for s in tail])
            return Exposition((*cached.parts, ending), size, inflate=True)
        ending = b"".join([*(s.data for s in tail), trailer(crc, size)])  # one write, not three
        parts = (GZIP_HEADER, *cached.parts, ending)
        return Exposition(parts, sum(map(len, parts)))


def _cache(families: list[FamilyOutput], openmetrics: bool) -> _Cached:
    """The segments of ``families`` in order (header, samples) and their combined CRC."""
    segments: list[Segment] = []
    for family in families:
        segments += (family.head(openmetrics), family.samples)
    segments = [s for s in segments if s.size]
    crc, size = combine((s.crc, s.size) for s in segments)
    parts: list[bytes] = []
    for segment in segments:  # small neighbours joined: fewer writes per scrape
        if parts and len(parts[-1]) + len(segment.data) <= _JOIN_BYTES:
            parts[-1] += segment.data
        else:
            parts.append(segment.data)
    return _Cached(tuple(parts), crc, size)
