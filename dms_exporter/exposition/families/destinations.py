"""Families of the ``destinations`` group: device outputs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from operator import attrgetter

from ...model import DESTINATION_STATUSES, Destination, Device, Table
from ..text import Family, Sample
from . import DisplayNames, FamilySpec, GroupSpec, RenderContext, Since, Sources, Tables, known

__all__ = ["GROUP", "destination_families"]

_DESTINATION = ("destination_id", "device_id", "display_name")
_Item = tuple[Destination, str]  # a destination and its device's display name
_KEY = frozenset({"id", "device_id"})


def _sources(tables: Tables, ctx: RenderContext) -> Sources:
    """Each destination with its device's display name; the counts come from ``_derived``."""
    destinations = tables.get("destinations")
    rows = destinations.rows if destinations else ()
    names = DisplayNames(tables.get("devices"), ctx).many(map(_device_id, rows))
    return {"destinations": list(zip(rows, names, strict=True))}


_device_id = attrgetter("device_id")


def _tally(items: Sequence[_Item]) -> Counter[tuple[str, str]]:
    """Destinations by type and status."""
    return Counter((d.type, known(d.status, DESTINATION_STATUSES)) for d, _ in items)


def _derived(
    counts: Counter[tuple[str, str]], tables: Tables, ctx: RenderContext, since: Since | None
) -> Sources:
    """The counts by type and status, made afresh (a few dozen: ``since`` would not pay)."""
    return {"counts": [(counts, tables.get("destinations") is not None)]}


def _counts(item: tuple[Counter[tuple[str, str]], bool]) -> list[Sample]:
    counts, present = item
    if not present:
        return []
    types = sorted({kind for kind, _ in counts})
    return [((t, s), counts[t, s]) for t in types for s in DESTINATION_STATUSES]


def _info(item: _Item) -> list[tuple[str, ...]]:
    d, name = item
    port = "" if d.ip_port is None else str(d.ip_port)
    return [(d.id, d.device_id, name, d.name, d.type, d.ip_address, port, d.service_id)]


_SPECS = (
    FamilySpec(
        "dms_destination", "info",
        "Each destination (device output): name, type, address, port and service (value 1).",
        "destinations", (*_DESTINATION, "name", "type", "address", "port", "service_id"),
        "destinations", _info,
        reads=_KEY | {"name", "type", "ip_address", "ip_port", "service_id"},
    ),
    FamilySpec(
        "dms_destination_status", "stateset", "Status of each destination.", "destinations",
        _DESTINATION, "destinations",
        lambda item: [((item[0].id, item[0].device_id, item[1]), item[0].status)],
        DESTINATION_STATUSES, reads=_KEY | {"status"},
    ),
    FamilySpec(
        "dms_destination_enabled", "gauge", "1 if the destination is enabled.", "destinations",
        _DESTINATION, "destinations",
        lambda item: [((item[0].id, item[0].device_id, item[1]), int(item[0].enabled))],
        reads=_KEY | {"enabled"},
    ),
    FamilySpec(
        "dms_destinations", "gauge",
        "Destinations by type and status; every status of every type present.",
        "destinations", ("type", "status"), "counts", _counts,
    ),
)  # fmt: skip

GROUP = GroupSpec(
    ("destinations", "devices"), _sources, lambda ctx: _SPECS,
    tallied="destinations", tally=_tally, derived=_derived,
    tally_reads=frozenset({"type", "status"}),
)  # fmt: skip


def destination_families(
    destinations: Table[Destination] | None,
    devices: Table[Device] | None,
    ctx: RenderContext,
) -> list[Family]:
    """Info, status and enabled flag of each destination; ``devices`` only names the device."""
    return GROUP.families({"destinations": destinations, "devices": devices}, ctx)
