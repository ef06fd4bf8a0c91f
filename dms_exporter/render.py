"""Which family group depends on which endpoints, and rendering a group to cached bytes.

A group is rendered when one of its tables changes; the ``Chunk`` holds both formats and the
gzip of each, as byte parts: each family's header, then its sample lines. Sample lines are the
same in both formats, so one bytes object (and one gzip of it) serves both: a group's samples
are held once plain and once gzipped. Every gzip part is a complete gzip member, so a scrape can
concatenate the cached gzip parts of several chunks (RFC 1952 section 2.2) as one gzip body.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .exposition import Family, openmetrics_header, sample_lines, text_header
from .families import RenderContext
from .families.alarms import alarm_families
from .families.authorization import authorization_families
from .families.destinations import destination_families
from .families.devices import device_families
from .families.system import system_families
from .model import ENDPOINTS, Table

__all__ = [
    "GROUPS",
    "GZIP_LEVEL",
    "Chunk",
    "RenderContext",
    "group_families",
    "groups_for",
    "render_families",
    "render_group",
]

#: Group -> the endpoints whose tables it is rendered from (``devices`` only for display names
#: in the last three). Order is the order of the groups in a scrape.
GROUPS: Mapping[str, tuple[str, ...]] = {
    "system": ("system",),
    "devices": ("devices", "groups", "services"),
    "authorization": ("authorization_sets", "schedule_authorizations", "authorizations", "devices"),
    "destinations": ("destinations", "devices"),
    "alarms": ("alarms", "devices"),
}

#: gzip level of cached chunks; see bench/bench_render.py for the measured trade-off.
GZIP_LEVEL = 1

_Tables = Mapping[str, Table | None]

_BUILDERS: Mapping[str, Callable[[_Tables, RenderContext], list[Family]]] = {
    "system": lambda t, ctx: system_families(t.get("system"), ctx),
    "devices": lambda t, ctx: device_families(
        t.get("devices"), t.get("groups"), t.get("services"), ctx
    ),
    "authorization": lambda t, ctx: authorization_families(
        t.get("authorization_sets"),
        t.get("schedule_authorizations"),
        t.get("authorizations"),
        t.get("devices"),
        ctx,
    ),
    "destinations": lambda t, ctx: destination_families(
        t.get("destinations"), t.get("devices"), ctx
    ),
    "alarms": lambda t, ctx: alarm_families(t.get("alarms"), t.get("devices"), ctx),
}


@dataclass(frozen=True, slots=True)
class Chunk:
    """A rendered group: the byte parts of text 0.0.4, of OpenMetrics (no ``# EOF``) and of the
    gzip of each, in order; and its series count. Sample parts are shared between formats."""

    text: tuple[bytes, ...]
    openmetrics: tuple[bytes, ...]
    text_gzip: tuple[bytes, ...]
    openmetrics_gzip: tuple[bytes, ...]
    series: int


def groups_for(endpoint: str) -> tuple[str, ...]:
    """The groups a change in ``endpoint``'s table touches, in ``GROUPS`` order."""
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}")
    return tuple(group for group, endpoints in GROUPS.items() if endpoint in endpoints)


def render_families(families: Sequence[Family]) -> Chunk:
    """Render ``families`` in both formats, and each part as one complete gzip member."""
    text: list[bytes] = []
    openmetrics: list[bytes] = []
    text_gzip: list[bytes] = []
    openmetrics_gzip: list[bytes] = []
    for family in families:
        text_head = text_header(family).encode()
        openmetrics_head = openmetrics_header(family).encode()
        text.append(text_head)
        openmetrics.append(openmetrics_head)
        text_gzip.append(_gzip(text_head))
        openmetrics_gzip.append(_gzip(openmetrics_head))
        samples = sample_lines(family).encode()
        if samples:
            samples_gzip = _gzip(samples)
            for parts, part in (
                (text, samples),
                (openmetrics, samples),
                (text_gzip, samples_gzip),
                (openmetrics_gzip, samples_gzip),
            ):
                parts.append(part)
    return Chunk(
        text=tuple(text),
        openmetrics=tuple(openmetrics),
        text_gzip=tuple(text_gzip),
        openmetrics_gzip=tuple(openmetrics_gzip),
        series=sum(len(f.samples) for f in families),
    )


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


def group_families(group: str, tables: _Tables, ctx: RenderContext) -> list[Family]:
    """The families of one group from ``tables`` (endpoint -> table; missing or None: empty)."""
    try:
        build = _BUILDERS[group]
    except KeyError:
        raise ValueError(f"unknown group {group!r}") from None
    return build(tables, ctx)


def render_group(group: str, tables: _Tables, ctx: RenderContext) -> Chunk:
    """Render one group from ``tables`` (endpoint -> table; missing or None: no samples)."""
    return render_families(group_families(group, tables, ctx))
