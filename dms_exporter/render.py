"""Which family group depends on which endpoints, and rendering a group to cached bytes.

A group is rendered when one of its tables changes; the ``Chunk`` holds both formats and the
gzip of each. Every gzip part is a complete gzip member, so a scrape can concatenate the cached
gzip parts of several chunks (RFC 1952 section 2.2) and send them as one gzip body.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .exposition import Family, render_both
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
    """A rendered group: text 0.0.4, OpenMetrics (no ``# EOF``), the gzip of each, series count."""

    text: bytes
    openmetrics: bytes
    text_gzip: bytes
    openmetrics_gzip: bytes
    series: int


def groups_for(endpoint: str) -> tuple[str, ...]:
    """The groups a change in ``endpoint``'s table touches, in ``GROUPS`` order."""
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}")
    return tuple(group for group, endpoints in GROUPS.items() if endpoint in endpoints)


def render_families(families: Sequence[Family]) -> Chunk:
    """Render ``families`` in both formats and gzip each as one complete gzip member."""
    text, openmetrics = render_both(families)
    return Chunk(
        text=text,
        openmetrics=openmetrics,
        text_gzip=gzip.compress(text, compresslevel=GZIP_LEVEL, mtime=0),
        openmetrics_gzip=gzip.compress(openmetrics, compresslevel=GZIP_LEVEL, mtime=0),
        series=sum(len(f.samples) for f in families),
    )


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
