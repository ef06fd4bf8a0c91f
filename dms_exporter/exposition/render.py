"""Rendering family groups to cached, compressed output, redoing only what changed.

A group's sources (``families.GroupSpec``) are sequences of items (a device; a destination and
its device's display name; ...), cut into units of ``UNIT_ROWS`` items. Each family keeps, per
unit, the sample lines of that unit's items as one ``gzipstream.Segment`` (all made by one
compressor reset between units, so each stands alone), joined in one ``body``; HELP/TYPE headers
are separate small segments, one per format (sample lines are the same in both formats).

On a new render, each source's items are compared with the previous render's, position by
position. Rows are reused object for object when unchanged, so this is mostly identity checks;
for a changed row the fields that differ are found once, and each family renders again only the
units holding an item whose change touches the fields it reads (``FamilySpec.reads``): a device
whose last contact moved redoes one unit of one family. Sums over the devices (fleet counts) are
updated from the changed rows only. A group whose tables are the very same objects, or whose only
new table is ``devices`` with the same ids and names, is not rendered at all.

No plain text is kept: the plain exposition is inflated from the segments when asked for.
"""

from __future__ import annotations

import operator
from array import array
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate, chain, compress, repeat
from typing import Any

from ..model import ENDPOINTS, Device, Table, row_values
from .families import (
    FamilySpec,
    GroupSpec,
    RenderContext,
    Tables,
    alarms,
    authorization,
    destinations,
    devices,
    system,
)
from .gzipstream import Compressor, CrcTree, Segment, inflate
from .gzipstream import compress as compress_segment
from .text import openmetrics_header, text_header

__all__ = [
    "GROUPS",
    "GZIP_LEVEL",
    "UNIT_ROWS",
    "FamilyOutput",
    "GroupOutput",
    "RenderContext",
    "group_families",
    "groups_for",
    "render_group",
]

#: Group -> its declaration. Order is the order of the groups in a scrape.
_SPECS: Mapping[str, GroupSpec] = {
    "system": system.GROUP,
    "devices": devices.GROUP,
    "authorization": authorization.GROUP,
    "destinations": destinations.GROUP,
    "alarms": alarms.GROUP,
}
#: Group -> the endpoints whose tables it is rendered from (``devices`` only for display names
#: in the last three).
GROUPS: Mapping[str, tuple[str, ...]] = {g: spec.endpoints for g, spec in _SPECS.items()}

#: gzip level of cached segments; see bench/bench_render.py for the measured trade-off.
GZIP_LEVEL = 1
#: Items per unit: a changed item costs formatting and compressing this many items' lines in
#: each family it changes; smaller units compress worse (each unit is compressed without its
#: neighbours). Measured in bench/bench_render.py.
UNIT_ROWS = 8
#: Units formatted together (the templates are made once per batch; the text of one batch is
#: held at a time).
_BATCH_UNITS = 256

#: What changed -> the indexes of the items where it did. What changed is the names of a row's
#: fields, or None for anything (an item added, removed, or not a row).
Changes = Mapping[frozenset[str] | None, list[int]]


@dataclass(frozen=True, slots=True)
class FamilyOutput:
    """One family rendered: its names, a header segment per format, and the sample segments of
    its units joined in ``body`` (``sizes``: each unit's segment's length in it)."""

    name: str  # OpenMetrics family name
    text_name: str  # text 0.0.4 name (``_total``/``_info`` added)
    text_head: Segment
    openmetrics_head: Segment
    body: bytes
    sizes: array[int]
    crcs: CrcTree  # (CRC-32, plain length) of each unit's segment
    counts: array[int]  # samples per unit

    @property
    def samples(self) -> Segment:
        """All the sample lines, as one segment."""
        crc, size = self.crcs.total
        return Segment(self.body, crc, size)

    @property
    def series(self) -> int:
        return sum(self.counts)

    @property
    def ends(self) -> list[int]:
        """Where each unit's segment ends in ``body``."""
        return list(accumulate(self.sizes))

    def head(self, openmetrics: bool) -> Segment:
        return self.openmetrics_head if openmetrics else self.text_head


@dataclass(frozen=True, slots=True)
class GroupOutput:
    """A rendered group: its families in order, the items of each source (to see what changed
    next time), the tables and settings it was rendered from, and the tally of its tallied
    source (``GroupSpec.tally``)."""

    families: tuple[FamilyOutput, ...]
    items: Mapping[str, tuple[Any, ...]]
    tables: tuple[Table | None, ...]
    ctx: RenderContext
    tally: Counter[Any] | None = None

    @property
    def series(self) -> int:
        return sum(f.series for f in self.families)

    def plain(self, openmetrics: bool = False) -> bytes:
        """The group's exposition as plain bytes (for tests and tools; scrapes stream)."""
        return b"".join(inflate(f.head(openmetrics).data + f.body) for f in self.families)


def groups_for(endpoint: str) -> tuple[str, ...]:
    """The groups a change in ``endpoint``'s table touches, in ``GROUPS`` order."""
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}")
    return tuple(group for group, endpoints in GROUPS.items() if endpoint in endpoints)


def _spec(group: str) -> GroupSpec:
    try:
        return _SPECS[group]
    except KeyError:
        raise ValueError(f"unknown group {group!r}") from None


def group_families(group: str, tables: Tables, ctx: RenderContext) -> list:
    """The families of one group from ``tables``, whole (endpoint -> table; missing: empty)."""
    return _spec(group).families(tables, ctx)


def render_group(
    group: str, tables: Tables, ctx: RenderContext, previous: GroupOutput | None = None
) -> GroupOutput:
    """Render one group from ``tables`` (endpoint -> table; missing or None: no samples),
    reusing whatever of ``previous`` (this group's last output) is still right."""
    spec = _spec(group)
    inputs = tuple(tables.get(endpoint) for endpoint in spec.endpoints)
    if previous is not None and previous.ctx != ctx:
        previous = None
    if previous is not None and _same_inputs(group, spec, previous.tables, inputs):
        return replace(previous, tables=inputs)
    old_items = previous.items if previous is not None else {}
    items = {name: tuple(seq) for name, seq in spec.sources(tables, ctx).items()}
    old_tables = dict(zip(spec.endpoints, previous.tables, strict=True)) if previous else {}
    for name, (endpoints, make) in spec.kept.items():
        kept = name in old_items and all(
            _same_table(e, old_tables[e], tables.get(e)) for e in endpoints
        )
        items[name] = old_items[name] if kept else tuple(make(tables, ctx))
    rows = {id(table.rows) for table in inputs if table is not None}
    changes = {
        name: _changes(old_items.get(name), seq, remember=id(seq) in rows)
        for name, seq in items.items()
    }
    tally = None
    if spec.tally is not None and spec.derived is not None:
        tally = _tally(spec, items[spec.tallied], previous, changes[spec.tallied])
        for name, seq in spec.derived(tally, tables, ctx).items():
            items[name] = tuple(seq)
            changes[name] = _changes(old_items.get(name), items[name])
    old_families = {f.name: f for f in previous.families} if previous else {}
    families = tuple(
        _render_family(s, ctx, items[s.source], changes[s.source], old_families.get(s.name))
        for s in spec.enabled(ctx)
    )
    if (
        previous is not None
        and len(families) == len(previous.families)
        and all(map(operator.is_, families, previous.families))
    ):
        families = previous.families  # every family kept: nothing new to list
    return GroupOutput(families, items, inputs, ctx, tally)


def _same_inputs(
    group: str,
    spec: GroupSpec,
    old: Sequence[Table | None],
    new: Sequence[Table | None],
) -> bool:
    """True if the group would render the same: the same tables, except perhaps a ``devices``
    table read only for display names in which no id or name changed."""
    if group == "devices":
        return all(map(operator.is_, old, new))
    return all(map(_same_table, spec.endpoints, old, new))


def _same_table(endpoint: str, a: Table | None, b: Table | None) -> bool:
    """The same table, or for ``devices`` (read for display names) the same ids and names."""
    return a is b or (endpoint == "devices" and _same_names(a, b))


def _same_names(a: Table[Device] | None, b: Table[Device] | None) -> bool:
    """Both tables list the same device ids with the same names, in the same order."""
    if a is None or b is None or len(a.rows) != len(b.rows):
        return a is b
    changes = _changes(a.rows, b.rows, remember=True)
    return changes is not None and not _indexes(changes, _ID_AND_NAME)


_ID_AND_NAME = frozenset({"id", "name"})
#: The last changes found between two tables' rows, with those rows: the devices group finds
#: them, then the three groups that show display names ask whether an id or a name changed.
_remembered: list[tuple[Any, Any, Changes | None]] = [((), (), None)]


def _changes(
    old: Sequence[Any] | None, new: Sequence[Any], *, remember: bool = False
) -> Changes | None:
    """What changed from ``old`` to ``new``, position by position (None without ``old``:
    everything is new). Rows of one kind are compared field by field, the rest as wholes.
    With ``remember``, the answer is kept for the same two sequences asked next."""
    if old is None:
        return None
    last_old, last_new, last = _remembered[0]  # one read: renders run in threads
    if last_old is old and last_new is new:
        return last
    changes = _find_changes(old, new)
    if remember:
        _remembered[0] = (old, new, changes)
    return changes


def _find_changes(old: Sequence[Any], new: Sequence[Any]) -> Changes:
    changes: dict[frozenset[str] | None, list[int]] = {}
    moved = list(compress(range(len(new)), map(operator.is_not, old, new)))
    kinds = set(map(type, map(new.__getitem__, moved))) | set(
        map(type, map(old.__getitem__, moved))
    )
    getter = row_values(kinds.pop()) if len(kinds) == 1 else None
    if getter is not None:
        names, get = getter
        olds = map(get, map(old.__getitem__, moved))
        news = map(get, map(new.__getitem__, moved))
        differ = map(tuple, map(map, repeat(operator.ne), olds, news))
        known: dict[tuple[bool, ...], frozenset[str]] = {}
        for i, flags in zip(moved, differ, strict=True):
            if any(flags):
                fields = known.get(flags)
                if fields is None:
                    fields = known[flags] = frozenset(compress(names, flags))
                changes.setdefault(fields, []).append(i)
    else:  # new tuples each render (a destination and its device's name): most are equal
        unequal = map(operator.ne, map(old.__getitem__, moved), map(new.__getitem__, moved))
        for i in compress(moved, unequal):
            fields = _changed_fields(old[i], new[i])
            if fields is None or fields:
                changes.setdefault(fields, []).append(i)
    gone_or_new = range(min(len(old), len(new)), max(len(old), len(new)))
    if gone_or_new:
        changes.setdefault(None, []).extend(gone_or_new)
    return changes


def _changed_fields(a: Any, b: Any) -> frozenset[str] | None:
    """The fields that differ between two rows, or two tuples holding rows (their other parts
    equal); None if something else differs; empty if nothing does."""
    if type(a) is tuple and type(b) is tuple and len(a) == len(b):
        fields: frozenset[str] = frozenset()
        for x, y in zip(a, b, strict=True):
            if x is not y:
                more = _changed_fields(x, y) if type(x) is type(y) is not tuple else None
                if more is None and x != y:
                    return None
                fields |= more or frozenset()
        return fields
    getter = row_values(type(a)) if type(a) is type(b) else None
    if getter is None:
        return frozenset() if a == b else None
    names, get = getter
    return frozenset(compress(names, map(operator.ne, get(a), get(b))))


def _indexes(changes: Changes, reads: frozenset[str] | None) -> list[list[int]]:
    """The index lists of the changes that touch ``reads``."""
    return [indexes for fields, indexes in changes.items() if _touches(fields, reads)]


def _touches(fields: frozenset[str] | None, reads: frozenset[str] | None) -> bool:
    return fields is None or reads is None or not fields.isdisjoint(reads)


def _tally(
    spec: GroupSpec, items: Sequence[Any], previous: GroupOutput | None, changes: Changes | None
) -> Counter[Any]:
    """``spec.tally`` of ``items``: the previous one updated with the changed items only."""
    assert spec.tally is not None
    old = previous.items.get(spec.tallied) if previous is not None else None
    if previous is None or previous.tally is None or old is None or changes is None:
        return spec.tally(items)
    touched = sorted(chain.from_iterable(_indexes(changes, spec.tally_reads)))
    if not touched:
        return previous.tally
    removed = spec.tally([old[i] for i in touched if i < len(old)])
    total = previous.tally.copy()
    total.subtract(removed)
    total.update(spec.tally([items[i] for i in touched if i < len(items)]))
    for key in removed:
        if total.get(key, 0) <= 0:
            del total[key]
    return total


def _render_family(
    spec: FamilySpec,
    ctx: RenderContext,
    items: tuple[Any, ...],
    changes: Changes | None,
    old: FamilyOutput | None,
) -> FamilyOutput:
    """One family's output: with ``old`` (rendered under the same settings, so its headers
    hold too), only the units holding an item whose change touches what the family reads are
    rendered again; the others keep ``old``'s segments."""
    units = -(-len(items) // UNIT_ROWS)
    if old is None or changes is None:
        dirty: Sequence[int] = range(units)
    else:
        touched = set(
            map(UNIT_ROWS.__rfloordiv__, chain.from_iterable(_indexes(changes, spec.reads)))
        )
        dirty = sorted(u for u in touched if u < units)
        if not dirty and units == len(old.sizes):
            return old
    if old is None:
        empty = spec.family(ctx, ())
        name, text_name = empty.name, empty.text_name
        heads = (compress_segment(text_header(empty).encode(), GZIP_LEVEL),
                 compress_segment(openmetrics_header(empty).encode(), GZIP_LEVEL))  # fmt: skip
    else:
        name, text_name = old.name, old.text_name
        heads = (old.text_head, old.openmetrics_head)
    compressor = Compressor(GZIP_LEVEL)
    segments: list[Segment] = []
    counts: list[int] = []
    for start in range(0, len(dirty), _BATCH_UNITS):  # a batch's text at a time: a low peak
        batch = spec.unit_lines(
            ctx,
            [
                items[u * UNIT_ROWS : (u + 1) * UNIT_ROWS]
                for u in dirty[start : start + _BATCH_UNITS]
            ],
        )
        segments += [compressor.segment(text.encode()) for text, _ in batch]
        counts += [count for _, count in batch]
    if old is None or changes is None:
        body = b"".join(segment.data for segment in segments)
        sizes = array("I", [len(segment.data) for segment in segments])
        unit_counts = array("I", counts)
        crcs = CrcTree([(segment.crc, segment.size) for segment in segments])
    else:
        body, sizes, unit_counts, crcs = _spliced(old, units, dirty, segments, counts)
    return FamilyOutput(name, text_name, heads[0], heads[1], body, sizes, crcs, unit_counts)


def _spliced(
    old: FamilyOutput,
    units: int,
    dirty: Sequence[int],
    segments: Sequence[Segment],
    new_counts: Sequence[int],
) -> tuple[bytes, array[int], array[int], CrcTree]:
    """``old``'s body, sizes, counts and CRCs with the ``dirty`` units replaced by
    ``segments`` (and cut or grown to ``units``); runs of kept units are copied in one piece."""
    starts = list(accumulate(old.sizes, initial=0))
    sizes = array("I", old.sizes[:units])
    counts = array("I", old.counts[:units])
    if units > len(sizes):
        grow = array("I", bytes(4 * (units - len(sizes))))
        sizes += grow
        counts += grow
    pieces: list[bytes] = []
    kept_from = 0
    for unit, segment, count in zip(dirty, segments, new_counts, strict=True):
        if kept_from < unit:
            pieces.append(old.body[starts[kept_from] : starts[unit]])
        pieces.append(segment.data)
        sizes[unit], counts[unit] = len(segment.data), count
        kept_from = unit + 1
    if kept_from < units:
        pieces.append(old.body[starts[kept_from] : starts[units]])
    leaves = {u: (s.crc, s.size) for u, s in zip(dirty, segments, strict=True)}
    if units == len(old.sizes):
        crcs = old.crcs.replaced(leaves)
    else:
        kept = old.crcs.leaves
        crcs = CrcTree([leaves[u] if u in leaves else kept[u] for u in range(units)])
    return b"".join(pieces), sizes, counts, crcs
