"""Families of the ``system`` group: the DMS server itself (GET /system/info)."""

from __future__ import annotations

from collections.abc import Callable

from ...model import SystemInfo, Table
from ..text import Family, Sample
from . import FamilySpec, GroupSpec, RenderContext, Sources, Tables

__all__ = ["GROUP", "system_families"]


def _sources(tables: Tables, ctx: RenderContext) -> Sources:
    system = tables.get("system")
    return {"system": system.rows if system else ()}


def _value(field: str) -> Callable[[SystemInfo], list[Sample]]:
    """Samples of one numeric field; a null field has no sample."""
    return lambda row: [((), v)] if (v := getattr(row, field)) is not None else []


_SPECS = (
    FamilySpec(
        "dms", "info", "DMS server name, software version and redundancy role.", "system",
        ("name", "version", "role"), "system", lambda row: [(row.name, row.version, row.role)],
    ),
    FamilySpec(
        "dms_uptime_seconds", "gauge", "Seconds since the DMS server started.", "system", (),
        "system", _value("uptime_seconds"),
    ),
    FamilySpec(
        "dms_licensed_devices", "gauge", "Number of devices the DMS licence allows.", "system",
        (), "system", _value("licensed_devices"),
    ),
    FamilySpec(
        "dms_server_time_seconds", "gauge",
        "The DMS server's clock, as Unix time, when it answered.", "system", (), "system",
        _value("server_time"),
    ),
)  # fmt: skip

GROUP = GroupSpec(("system",), _sources, lambda ctx: _SPECS)


def system_families(system: Table[SystemInfo] | None, ctx: RenderContext) -> list[Family]:
    """``dms_info``, uptime, licensed devices and server time; a null field has no sample."""
    return GROUP.families({"system": system}, ctx)
