"""Families declared as data, one module per group, plus the helpers they share.

Every family of the README's metric reference is declared once, in the module of its group, as a
``FamilySpec``: name, kind, HELP, labels, the *source* of the group it reads (a sequence of items,
e.g. ``(device, display name)`` pairs) and a function from one item to its samples. A group
(``GroupSpec``) names the tables it reads and turns them into its sources. Because samples come
per item, the renderer can cache the output of blocks of items and redo only blocks whose items
changed (``render``). A table that is ``None`` (never polled, disabled or stale) gives the
family's HELP/TYPE with no samples.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Literal

from ...model import ENDPOINT_DEFAULTS, OTHER, Device, Table
from ..text import Family, Sample, sample_texts, stateset_texts

Labels = tuple[str, ...]

__all__ = [
    "DisplayNames",
    "FamilySpec",
    "GroupSpec",
    "RenderContext",
    "Since",
    "Sources",
    "Tables",
    "counter",
    "gauge",
    "info",
    "known",
    "stateset",
]


@dataclass(frozen=True, slots=True)
class RenderContext:
    """The parts of the configuration that change rendered bytes (so a change re-renders all)."""

    display_names: Mapping[str, str] = field(default_factory=dict)  # device id -> description
    allow_schedule_authorization: bool = True
    alarm_retrieval: Literal["active", "all"] = "active"
    paths: Mapping[str, str] = field(
        default_factory=lambda: {name: path for name, (path, _) in ENDPOINT_DEFAULTS.items()}
    )
    intervals: Mapping[str, float] = field(
        default_factory=lambda: {name: every for name, (_, every) in ENDPOINT_DEFAULTS.items()}
    )
    #: OpenMetrics names of families left out of the exposition (checked in one place:
    #: ``GroupSpec.enabled``); for a ``metrics:`` config switch
    disabled: frozenset[str] = frozenset()

    def help(self, what: str, endpoint: str) -> str:
        """HELP text: ``what``, how often it is refreshed, then ``Polled from GET <path>.``"""
        interval = self.intervals.get(endpoint)
        every = f" Refreshed every {interval:g}s." if interval is not None else ""
        path = self.paths.get(endpoint, ENDPOINT_DEFAULTS[endpoint][0])
        return f"{what}{every} Polled from GET {path}."


class DisplayNames:
    """The one display-name rule: custom description if configured, else device name, else id.

    Works for any id: one the devices table does not know gets its custom description or its id,
    and the empty id (alarms raised by the DMS itself) gets ``""``.
    """

    __slots__ = ("_custom", "_names")

    def __init__(self, devices: Table[Device] | None, ctx: RenderContext) -> None:
        self._custom = ctx.display_names
        self._names = _names_of(devices)

    def __call__(self, device_id: str) -> str:
        return self._custom.get(device_id) or self._names.get(device_id) or device_id

    def many(self, device_ids: Iterable[str]) -> list[str]:
        """``self(i)`` for each id, by one dict lookup each (a big table's names at once)."""
        names = dict(self._names)
        names.update((i, name) for i, name in self._custom.items() if name)
        ids = list(device_ids)
        return list(map(names.get, ids, ids))

    @staticmethod
    def of(device: Device, ctx: RenderContext) -> str:
        """The same rule for a device row at hand (no table needed)."""
        return ctx.display_names.get(device.id) or device.name or device.id


def _names_of(devices: Table[Device] | None) -> Mapping[str, str]:
    """Device id -> name, made once per devices table (three groups and the alarms, polled
    every 30 s, ask for the same table's)."""
    if devices is None:
        return {}
    table, names = _last_names[0]  # one read: renders run in threads
    if table is not devices:
        names = {d.id: d.name for d in devices.rows if d.name}
        _last_names[0] = (devices, names)
    return names


_last_names: list[tuple[Table[Device] | None, Mapping[str, str]]] = [(None, {})]


def known(value: str, values: tuple[str, ...]) -> str:
    """``value`` if it is one of ``values``, else ``other`` (vocabulary already maps most)."""
    return value if value in values else OTHER


def gauge(name: str, help: str, labels: Labels = (), samples: Iterable[Sample] = ()) -> Family:
    """A gauge family."""
    return Family(name, "gauge", help, labels, list(samples))


def counter(name: str, help: str, labels: Labels = (), samples: Iterable[Sample] = ()) -> Family:
    """A counter family; ``name`` without ``_total``."""
    return Family(name, "counter", help, labels, list(samples))


def info(
    name: str, help: str, label_names: tuple[str, ...], rows: Iterable[tuple[str, ...]] = ()
) -> Family:
    """An info family (``name`` without ``_info``): one sample valued 1 per label-value tuple."""
    return Family(name, "info", help, label_names, [(values, 1) for values in rows])


def stateset(
    name: str,
    help: str,
    label_names: tuple[str, ...],
    states: tuple[str, ...],
    rows: Iterable[tuple[tuple[str, ...], str]] = (),
) -> Family:
    """A stateset whose state label is ``name``: per (label values, state) one sample per state.

    The current state is 1, the others 0; a state not in ``states`` counts as ``other``
    (the rule of ``known``, here as a dict fallback since this runs per device).
    """
    one_hot = {current: [(state, int(state == current)) for state in states] for current in states}
    fallback = one_hot.get(OTHER, [(state, 0) for state in states])
    samples: list[Sample] = []
    extend = samples.extend
    for values, current in rows:
        extend([((*values, state), v) for state, v in one_hot.get(current, fallback)])
    return Family(name, "stateset", help, (*label_names, name), samples)


Tables = Mapping[str, Table | None]
Sources = Mapping[str, Sequence[Any]]


@dataclass(frozen=True, slots=True)
class FamilySpec:
    """One family: its OpenMetrics name, kind, HELP (``what``, for ``RenderContext.help`` with
    ``endpoint``), label names (a stateset's state label is added) and, from one item of its
    group's ``source``, its samples: ``(label values, value)`` for a gauge or counter, label
    values for an info (value 1), ``(label values, current state)`` for a stateset of
    ``states``. ``reads``: the fields of the item's row its samples depend on, if they are
    fewer than all (a change in other fields leaves its lines as they were)."""

    name: str
    kind: str
    what: str
    endpoint: str
    labels: tuple[str, ...]
    source: str
    samples: Callable[[Any], Sequence[Any]]
    states: tuple[str, ...] = ()
    reads: frozenset[str] | None = None

    def family(self, ctx: RenderContext, items: Iterable[Any]) -> Family:
        """The family with the samples of ``items``."""
        help = ctx.help(self.what, self.endpoint)
        rows = chain.from_iterable(map(self.samples, items))
        if self.kind == "info":
            return info(self.name, help, self.labels, rows)
        if self.kind == "stateset":
            return stateset(self.name, help, self.labels, self.states, rows)
        return Family(self.name, self.kind, help, self.labels, list(rows))

    def unit_lines(
        self, ctx: RenderContext, units: Iterable[Sequence[Any]]
    ) -> list[tuple[str, int]]:
        """``lines`` of each unit of items, with the line templates made once (a stateset
        takes a shorter way to the same text)."""
        samples = self.samples
        groups = [list(chain.from_iterable(map(samples, unit))) for unit in units]
        if self.kind == "stateset":
            return stateset_texts(self.name, self.labels, self.states, groups, OTHER)
        if self.kind == "info":
            groups = [[(values, 1) for values in group] for group in groups]
        family = self.family(ctx, ())
        return list(zip(sample_texts(family, groups), map(len, groups), strict=True))


@dataclass(frozen=True, slots=True)
class Since:
    """What a render of derived sources may start from: the last render's items (derived
    sources included), made from the same tables but the tallied one, and the tally's keys whose
    count has moved since."""

    items: Mapping[str, Sequence[Any]]
    moved: frozenset[Any]


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """A group: the tables it reads (the first is its own; ``devices`` in another group's list
    is read for display names only), its sources from those tables, and its families (some
    exist only under some settings)."""

    endpoints: tuple[str, ...]
    sources: Callable[[Tables, RenderContext], Sources]
    specs: Callable[[RenderContext], Sequence[FamilySpec]]
    #: Sums over a big source, kept per block so that a render recounts only changed blocks:
    #: the source, a function from a block of its items to a Counter, and the sources made from
    #: the total and the tables (given a ``Since``, they may update the last ones instead).
    tallied: str = ""
    tally: Callable[[Sequence[Any]], Counter[Any]] | None = None
    derived: Callable[[Counter[Any], Tables, RenderContext, Since | None], Sources] | None = None
    #: the fields of the tallied rows the tally reads (None: all)
    tally_reads: frozenset[str] | None = None
    #: Costly sources made from a few of the group's tables: name -> (those endpoints, the
    #: function). A render in which those tables are unchanged (``devices``: the same ids and
    #: names) keeps the last render's items instead of calling the function.
    kept: Mapping[str, tuple[tuple[str, ...], Callable[[Tables, RenderContext], Sequence[Any]]]] = (
        field(default_factory=dict)
    )

    def enabled(self, ctx: RenderContext) -> list[FamilySpec]:
        """The group's families under ``ctx``, without the ones switched off."""
        return [spec for spec in self.specs(ctx) if spec.name not in ctx.disabled]

    def families(self, tables: Tables, ctx: RenderContext) -> list[Family]:
        """Every family of the group, whole (for tests and benchmarks; ``render`` caches)."""
        sources = dict(self.sources(tables, ctx))
        sources.update((name, make(tables, ctx)) for name, (_, make) in self.kept.items())
        if self.tally is not None and self.derived is not None:
            sources.update(self.derived(self.tally(sources[self.tallied]), tables, ctx, None))
        return [spec.family(ctx, sources[spec.source]) for spec in self.enabled(ctx)]
