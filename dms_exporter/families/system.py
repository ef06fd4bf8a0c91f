"""Families of the ``system`` group: the DMS server itself (GET /system/info)."""

from __future__ import annotations

from ..exposition import Family, Sample
from ..model import SystemInfo, Table
from . import RenderContext, gauge, info

__all__ = ["system_families"]


def system_families(system: Table[SystemInfo] | None, ctx: RenderContext) -> list[Family]:
    """``dms_info``, uptime, licensed devices and server time; a null field has no sample."""
    rows = system.rows if system else ()

    def value(field: str) -> list[Sample]:
        return [((), v) for row in rows if (v := getattr(row, field)) is not None]

    return [
        info(
            "dms",
            ctx.help("DMS server name, software version and redundancy role.", "system"),
            ("name", "version", "role"),
            [(row.name, row.version, row.role) for row in rows],
        ),
        gauge(
            "dms_uptime_seconds",
            ctx.help("Seconds since the DMS server started.", "system"),
            samples=value("uptime_seconds"),
        ),
        gauge(
            "dms_licensed_devices",
            ctx.help("Number of devices the DMS licence allows.", "system"),
            samples=value("licensed_devices"),
        ),
        gauge(
            "dms_server_time_seconds",
            ctx.help("The DMS server's clock, as Unix time, when it answered.", "system"),
            samples=value("server_time"),
        ),
    ]
