"""Rendering family groups to cached, compressed output, redoing only what changed.

A group's sources (``families.GroupSpec``) are sequences of items (a device; a destination and
its device's display name; ...), cut into units of ``UNIT_ROWS`` items, and the units into runs
of about ``RUN_BYTES`` of text. Each family keeps, per run, the sample lines of that run's items
as one ``gzipstream.Segment`` (all made by one compressor reset between runs, so each stands
alone), joined in one ``body``, and the length and sample count of each unit's lines; HELP/TYPE
headers are separate small segments, one per format (sample lines are the same in both formats).

On a new render, each source's items are compared with the previous render's, position by
position. Rows are reused object for object when unchanged, so this is mostly identity checks;
for a changed row the fields that differ are found once, and each family renders again only the
units holding an item whose change touches the fields it reads (``FamilySpec.reads``), and
compresses again the runs holding those units (their other units inflated from the old segment,
not formatted again): a device whose last contact moved redoes one unit and one run of one
family. Sums over the devices (fleet counts) are updated from the changed rows only, and the
sources made from them from the moved sums only. A group whose tables are the very same objects,
or whose only new table is ``devices`` with the same ids and names, is not rendered at all.

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

from .. import heap
from ..model import ENDPOINTS, Device, Table, row_values
from .families import (
    FamilySpec,
    GroupSpec,
    RenderContext,
    Since,
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

#: gzip level of the small segments made at scrape time (the health block) and of headers.
GZIP_LEVEL = 1
#: Plain bytes of a run (about: a whole number of units) and its gzip level. Runs are compressed
#: each on its own, so they must be long enough for deflate's 32 KiB of history to pay: runs of
#: 128 KiB at level 2 come to 1.14x ``gzip -6`` of the simulator's whole exposition (units of 8
#: items alone made 2.4-2.5x). Every run holding a changed unit is inflated and compressed
#: again, so longer runs and higher levels cost more when changes are spread thin. Measured in
#: bench/bench_scale.py and bench/bench_render.py (docs/performance.md).
RUN_BYTES = 128 * 1024
RUN_LEVEL = 2
#: At most this many units a run (a family whose first items had no lines would make one run).
_MAX_RUN_UNITS = 256
#: Items per unit: a changed item costs formatting this many items' lines in each family it
#: changes (and compressing its run again). Measured in bench/bench_render.py.
UNIT_ROWS = 8
#: Units formatted together (the templates are made once per batch; the text of one batch and
#: of one run is held at a time).
_BATCH_UNITS = 256

#: What changed -> the indexes of the items where it did. What changed is the names of a row's
#: fields, or None for anything (an item added, removed, or not a row).
Changes = Mapping[frozenset[str] | None, list[int]]


@dataclass(frozen=True, slots=True)
class FamilyOutput:
    """One family rendered: its names, a header segment per format, and the sample segments of
    its runs (``run_units`` units each) joined in ``body``."""

    name: str  # OpenMetrics family name
    text_name: str  # text 0.0.4 name (``_total``/``_info`` added)
    text_head: Segment
    openmetrics_head: Segment
    body: bytes
    sizes: array[int]  # each run's segment's length in ``body``
    crcs: CrcTree  # (CRC-32, plain length) of each run's segment
    counts: array[int]  # samples per unit
    lengths: array[int]  # plain length of each unit's lines
    run_units: int  # units per run

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
        """Where each run's segment ends in ``body``."""
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
    reusing whatever of ``previous`` (this group's last output) is still right.

    The cyclic garbage collector is paused meanwhile (``heap.collector_paused``): a render
    makes an item per destination (a tuple of it and its device's name), hundreds of thousands
    of them, whose allocation set off full collections over every object the exporter holds,
    most of the cost of a render after one changed destination (docs/performance.md). Nothing
    a render makes is cyclic; reference counting frees it."""
    with heap.collector_paused():
        return _render_group(group, tables, ctx, previous)


def _render_group(
    group: str, tables: Tables, ctx: RenderContext, previous: GroupOutput | None
) -> GroupOutput:
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
    devices = tables.get("devices")
    devices_rows = devices.rows if devices is not None else None
    changes = {  # the devices' changes are remembered for the groups that show their names
        name: _changes(old_items.get(name), seq, remember=seq is devices_rows)
        for name, seq in items.items()
    }
    tally = None
    if spec.tally is not None and spec.derived is not None:
        tally, moved = _tally(spec, items[spec.tallied], previous, changes[spec.tallied])
        since = None
        if previous is not None and moved is not None and _same_but_tallied(spec, previous, inputs):
            since = Since(previous.items, moved)
        for name, seq in spec.derived(tally, tables, ctx, since).items():
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
#: The last changes found between two devices tables' rows, with those rows: the devices group
#: finds them, then the three groups that show display names ask whether an id or a name
#: changed (only the devices' are kept: another table's would push them out, and each of the
#: three would compare 100,000 devices again).
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
) -> tuple[Counter[Any], frozenset[Any] | None]:
    """``spec.tally`` of ``items``: the previous one updated with the changed items only; and
    the keys whose count moved from the previous one (None: counted afresh)."""
    assert spec.tally is not None
    old = previous.items.get(spec.tallied) if previous is not None else None
    if previous is None or previous.tally is None or old is None or changes is None:
        return spec.tally(items), None
    touched = sorted(chain.from_iterable(_indexes(changes, spec.tally_reads)))
    if not touched:
        return previous.tally, frozenset()
    removed = spec.tally([old[i] for i in touched if i < len(old)])
    added = spec.tally([items[i] for i in touched if i < len(items)])
    total = previous.tally.copy()
    total.subtract(removed)
    total.update(added)
    for key in removed:
        if total.get(key, 0) <= 0:
            del total[key]
    before = previous.tally
    moved = frozenset(k for k in removed.keys() | added.keys() if total.get(k) != before.get(k))
    return total, moved


def _same_but_tallied(spec: GroupSpec, previous: GroupOutput, inputs: Sequence[Any]) -> bool:
    """The group's tables other than the tallied one are the very ones of ``previous``, and
    the tallied one is there in both: what the derived sources read, bar the tally, is the same."""
    return all(
        (new is not None and old is not None) if endpoint == spec.tallied else new is old
        for endpoint, old, new in zip(spec.endpoints, previous.tables, inputs, strict=True)
    )


def _render_family(
    spec: FamilySpec,
    ctx: RenderContext,
    items: tuple[Any, ...],
    changes: Changes | None,
    old: FamilyOutput | None,
) -> FamilyOutput:
    """One family's output: with ``old`` (rendered under the same settings, so its headers
    hold too), only the units holding an item whose change touches what the family reads are
    formatted again, and only the runs holding them compressed again (the other units of such
    a run are inflated from its old segment); the other runs keep ``old``'s segments."""
    units = -(-len(items) // UNIT_ROWS)
    if old is None or changes is None:
        dirty: Sequence[int] = range(units)
    else:
        touched = set(
            map(UNIT_ROWS.__rfloordiv__, chain.from_iterable(_indexes(changes, spec.reads)))
        )
        dirty = sorted(u for u in touched if u < units)
        if not dirty and units == len(old.counts):
            return old
    if old is None:
        empty = spec.family(ctx, ())
        name, text_name = empty.name, empty.text_name
        heads = (compress_segment(text_header(empty).encode(), GZIP_LEVEL),
                 compress_segment(openmetrics_header(empty).encode(), GZIP_LEVEL))  # fmt: skip
    else:
        name, text_name = old.name, old.text_name
        heads = (old.text_head, old.openmetrics_head)
    runs = _Runs(old, units)
    for start in range(0, len(dirty), _BATCH_UNITS):  # a batch's text at a time: a low peak
        batch = dirty[start : start + _BATCH_UNITS]
        texts = spec.unit_lines(ctx, [items[u * UNIT_ROWS : (u + 1) * UNIT_ROWS] for u in batch])
        runs.add(batch, [(text.encode(), count) for text, count in texts])
    return runs.output(name, text_name, heads)


class _Runs:
    """The runs of one family render: new unit texts come in unit order; a run is compressed
    once the units after it are reached, from its new units' texts and, for the rest, its old
    segment inflated and cut at the old units' lengths."""

    def __init__(self, old: FamilyOutput | None, units: int) -> None:
        self.old = old
        self.units = units
        self.run_units = old.run_units if old is not None else 0  # set by the first texts
        self.counts = array("I", old.counts[:units]) if old is not None else array("I")
        self.lengths = array("I", old.lengths[:units]) if old is not None else array("I")
        if len(self.counts) < units:
            grow = array("I", bytes(4 * (units - len(self.counts))))
            self.counts += grow
            self.lengths += grow
        self.texts: dict[int, bytes] = {}  # new texts of the run being filled
        self.run = -1
        self.segments: dict[int, Segment] = {}
        self.starts = list(accumulate(old.sizes, initial=0)) if old is not None else []
        self.compressor = Compressor(RUN_LEVEL)
        if old is not None and units != len(old.counts) and units:
            self._last_run_changes = (units - 1) // old.run_units  # shorter or longer now
        else:
            self._last_run_changes = -1

    def add(self, units: Sequence[int], texts: Sequence[tuple[bytes, int]]) -> None:
        if not self.run_units:  # from the first texts: a family's lines are about as long
            plain = sum(len(text) for text, _ in texts)
            self.run_units = min(_MAX_RUN_UNITS, max(1, RUN_BYTES * len(texts) // max(1, plain)))
        for unit, (text, count) in zip(units, texts, strict=True):
            run = unit // self.run_units
            if run != self.run:
                self._flush(run)
            self.texts[unit] = text
            self.counts[unit], self.lengths[unit] = count, len(text)

    def _flush(self, upto: int) -> None:
        """Compress the run being filled, and the run whose length changed if it comes before
        ``upto``; then start on run ``upto``."""
        if self.run >= 0:
            self._compress(self.run)
        if 0 <= self._last_run_changes < upto and self._last_run_changes not in self.segments:
            self._compress(self._last_run_changes)
        self.run = upto

    def _compress(self, run: int) -> None:
        lo, hi = run * self.run_units, min((run + 1) * self.run_units, self.units)
        texts = self.texts
        if any(u not in texts for u in range(lo, hi)):
            texts = self._old_texts(run, lo, hi) | texts
        self.segments[run] = self.compressor.segment(b"".join([texts[u] for u in range(lo, hi)]))
        self.texts = {}

    def _old_texts(self, run: int, lo: int, hi: int) -> dict[int, bytes]:
        """The texts of units ``lo`` to ``hi`` (those that existed) from ``old``'s run."""
        old = self.old
        assert old is not None
        plain = inflate(old.body[self.starts[run] : self.starts[run + 1]])
        out, at = {}, 0
        for unit in range(lo, min(hi, len(old.lengths))):
            out[unit] = plain[at : at + old.lengths[unit]]
            at += old.lengths[unit]
        return out

    def output(self, name: str, text_name: str, heads: tuple[Segment, Segment]) -> FamilyOutput:
        self._flush(self.units)
        self.run_units = self.run_units or _MAX_RUN_UNITS
        runs = -(-self.units // self.run_units)
        old = self.old
        if old is None:
            segments = [self.segments[r] for r in range(runs)]
            body = b"".join(segment.data for segment in segments)
            sizes = array("I", [len(segment.data) for segment in segments])
            crcs = CrcTree([(segment.crc, segment.size) for segment in segments])
        else:
            body, sizes, crcs = _spliced(old, runs, self.segments)
        return FamilyOutput(name, text_name, heads[0], heads[1], body, sizes, crcs, self.counts,
                            self.lengths, self.run_units)  # fmt: skip


def _spliced(
    old: FamilyOutput, runs: int, segments: Mapping[int, Segment]
) -> tuple[bytes, array[int], CrcTree]:
    """``old``'s body, sizes and CRCs with the runs in ``segments`` replaced (and cut or grown
    to ``runs``); runs of kept segments are copied in one piece."""
    starts = list(accumulate(old.sizes, initial=0))
    sizes = array("I", old.sizes[:runs])
    if runs > len(sizes):
        sizes += array("I", bytes(4 * (runs - len(sizes))))
    pieces: list[bytes] = []
    kept_from = 0
    for run in sorted(segments):
        if kept_from < run:
            pieces.append(old.body[starts[kept_from] : starts[run]])
        pieces.append(segments[run].data)
        sizes[run] = len(segments[run].data)
        kept_from = run + 1
    if kept_from < runs:
        pieces.append(old.body[starts[kept_from] : starts[runs]])
    leaves = {r: (s.crc, s.size) for r, s in segments.items()}
    if runs == len(old.sizes):
        crcs = old.crcs.replaced(leaves)
    else:
        kept = old.crcs.leaves
        crcs = CrcTree([leaves[r] if r in leaves else kept[r] for r in range(runs)])
    return b"".join(pieces), sizes, crcs
