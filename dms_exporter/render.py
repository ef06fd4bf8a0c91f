"""Rendering family groups to cached, compressed output, redoing only what changed.

A group's sources (``families.GroupSpec``) are cut into blocks of ``BLOCK_ROWS`` items. Each
family keeps, per block, the sample lines of that block's items as one ``gzipstream.Segment``,
all joined in one ``body``; HELP/TYPE headers are separate small segments, one per format (sample
lines are the same in both formats, so a body serves both). On a new render, a block whose items
equal the previous render's (rows are reused object for object when unchanged, so this is mostly
an identity check) keeps its segment; only changed blocks are rendered and compressed again and
spliced in. A group whose tables are the very same objects, or whose only new table is
``devices`` with the same ids and names, is not rendered at all.

No plain text is kept: the plain exposition is inflated from the segments when asked for.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate, compress
from typing import Any

from .exposition import openmetrics_header, text_header
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
from .gzipstream import CrcTree, Segment, inflate
from .gzipstream import compress as compress_segment
from .model import ENDPOINTS, Device, Table

__all__ = [
    "BLOCK_ROWS",
    "GROUPS",
    "GZIP_LEVEL",
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
#: Items per block: a changed item costs rendering and compressing this many items' lines per
#: family it appears in; smaller blocks compress a little worse and cost more CRC combining.
BLOCK_ROWS = 256


@dataclass(frozen=True, slots=True)
class FamilyOutput:
    """One family rendered: its names, a header segment per format, and the sample segments of
    its blocks joined in ``body`` (``ends``: where each block's segment ends in it)."""

    name: str  # OpenMetrics family name
    text_name: str  # text 0.0.4 name (``_total``/``_info`` added)
    text_head: Segment
    openmetrics_head: Segment
    body: bytes
    ends: tuple[int, ...]
    crcs: CrcTree  # (CRC-32, plain length) of each block's segment
    series: tuple[int, ...]  # samples per block

    @property
    def samples(self) -> Segment:
        """All the sample lines, as one segment."""
        crc, size = self.crcs.total
        return Segment(self.body, crc, size)

    def head(self, openmetrics: bool) -> Segment:
        return self.openmetrics_head if openmetrics else self.text_head


@dataclass(frozen=True, slots=True)
class GroupOutput:
    """A rendered group: its families in order, the items of each block of each source (to see
    what changed next time), and the tables and settings it was rendered from."""

    families: tuple[FamilyOutput, ...]
    blocks: Mapping[str, tuple[tuple[Any, ...], ...]]
    tables: tuple[Table | None, ...]
    ctx: RenderContext
    tallies: tuple[Counter[Any], ...] = ()  # per block of the tallied source (GroupSpec.tally)

    @property
    def series(self) -> int:
        return sum(sum(f.series) for f in self.families)

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
    sources = dict(spec.sources(tables, ctx))
    blocks = {name: _blocks(items) for name, items in sources.items()}
    dirty = {name: _dirty(name, b, previous) for name, b in blocks.items()}
    tallies: tuple[Counter[Any], ...] = ()
    if spec.tally is not None and spec.derived is not None:
        redo = set(dirty[spec.tallied])
        kept = previous.tallies if previous else ()
        tallies = tuple(
            kept[i] if i < len(kept) and i not in redo else spec.tally(block)
            for i, block in enumerate(blocks[spec.tallied])
        )
        total: Counter[Any] = Counter()
        for tally in tallies:
            total.update(tally)
        for name, items in spec.derived(total, tables, ctx).items():
            blocks[name] = _blocks(items)
            dirty[name] = _dirty(name, blocks[name], previous)
    old_families = {f.name: f for f in previous.families} if previous else {}
    families = tuple(
        _render_family(s, ctx, blocks[s.source], dirty[s.source], old_families.get(s.name))
        for s in spec.enabled(ctx)
    )
    if (
        previous is not None
        and len(families) == len(previous.families)
        and all(map(operator.is_, families, previous.families))
    ):
        families = previous.families  # every family kept: nothing new to list
    return GroupOutput(families, blocks, inputs, ctx, tallies)


def _same_inputs(
    group: str,
    spec: GroupSpec,
    old: Sequence[Table | None],
    new: Sequence[Table | None],
) -> bool:
    """True if the group would render the same: the same tables, except perhaps a ``devices``
    table read only for display names in which no id or name changed."""
    for endpoint, a, b in zip(spec.endpoints, old, new, strict=True):
        if a is b:
            continue
        if endpoint == "devices" and group != "devices" and _same_names(a, b):
            continue
        return False
    return True


def _same_names(a: Table[Device] | None, b: Table[Device] | None) -> bool:
    """Both tables list the same device ids with the same names, in the same order."""
    if a is None or b is None or len(a.rows) != len(b.rows):
        return a is b
    moved = compress(range(len(a.rows)), map(operator.is_not, a.rows, b.rows))
    return all(a.rows[i].id == b.rows[i].id and a.rows[i].name == b.rows[i].name for i in moved)


def _blocks(items: Sequence[Any]) -> tuple[tuple[Any, ...], ...]:
    items = tuple(items)  # a table's rows already are: its slices are then made in C
    return tuple(items[i : i + BLOCK_ROWS] for i in range(0, len(items), BLOCK_ROWS))


def _dirty(
    source: str, blocks: tuple[tuple[Any, ...], ...], previous: GroupOutput | None
) -> Sequence[int]:
    """Indexes of the blocks that differ from the previous render's (all without one). Rows
    are reused when unchanged, so this is mostly identity checks."""
    if previous is None:
        return range(len(blocks))
    old = previous.blocks.get(source, ())
    return [i for i, block in enumerate(blocks) if i >= len(old) or old[i] != block]


def _render_family(
    spec: FamilySpec,
    ctx: RenderContext,
    blocks: tuple[tuple[Any, ...], ...],
    dirty: Sequence[int],
    old: FamilyOutput | None,
) -> FamilyOutput:
    """One family's output; blocks not in ``dirty`` keep ``old``'s segment (``old`` was
    rendered under the same settings, so its headers hold too)."""
    if old is not None and not dirty and len(blocks) == len(old.ends):
        return old
    if old is None:
        empty = spec.family(ctx, ())
        name, text_name = empty.name, empty.text_name
        heads = (compress_segment(text_header(empty).encode(), GZIP_LEVEL),
                 compress_segment(openmetrics_header(empty).encode(), GZIP_LEVEL))  # fmt: skip
    else:
        name, text_name = old.name, old.text_name
        heads = (old.text_head, old.openmetrics_head)
    renders: dict[int, tuple[Segment, int]] = {}
    for i in dirty:
        lines, count = spec.lines(ctx, blocks[i])
        renders[i] = (compress_segment(lines.encode(), GZIP_LEVEL), count)
    pieces: list[bytes] = []
    series: list[int] = []
    for i in range(len(blocks)):
        if i in renders:
            pieces.append(renders[i][0].data)
            series.append(renders[i][1])
        else:
            assert old is not None  # every block is dirty without an old output
            pieces.append(old.body[old.ends[i - 1] if i else 0 : old.ends[i]])
            series.append(old.series[i])
    leaves = {i: (segment.crc, segment.size) for i, (segment, _) in renders.items()}
    if old is not None and len(blocks) == len(old.ends):
        crcs = old.crcs.replaced(leaves)
    else:
        kept = old.crcs.leaves if old is not None else ()
        crcs = CrcTree([leaves[i] if i in leaves else kept[i] for i in range(len(blocks))])
    return FamilyOutput(
        name=name,
        text_name=text_name,
        text_head=heads[0],
        openmetrics_head=heads[1],
        body=b"".join(pieces),
        ends=tuple(accumulate(map(len, pieces))),
        crcs=crcs,
        series=tuple(series),
    )
