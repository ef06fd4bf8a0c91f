"""Families of the ``destinations`` group: device outputs."""

from __future__ import annotations

from ..exposition import Family
from ..model import DESTINATION_STATUSES, Destination, Device, Table
from . import DisplayNames, RenderContext, gauge, info, stateset

__all__ = ["destination_families"]

_DESTINATION = ("destination_id", "device_id", "display_name")


def destination_families(
    destinations: Table[Destination] | None,
    devices: Table[Device] | None,
    ctx: RenderContext,
) -> list[Family]:
    """Info, status and enabled flag of each destination; ``devices`` only names the device."""
    rows = destinations.rows if destinations else ()
    name_of = DisplayNames(devices, ctx)
    keys = [(d.id, d.device_id, name_of(d.device_id)) for d in rows]
    return [
        info(
            "dms_destination",
            ctx.help(
                "Each destination (device output): name, type, address, port and service"
                " (value 1).",
                "destinations",
            ),
            (*_DESTINATION, "name", "type", "address", "port", "service_id"),
            [
                (
                    *key,
                    d.name,
                    d.type,
                    d.ip_address,
                    "" if d.ip_port is None else str(d.ip_port),
                    d.service_id,
                )
                for key, d in zip(keys, rows, strict=True)
            ],
        ),
        stateset(
            "dms_destination_status",
            ctx.help("Status of each destination.", "destinations"),
            _DESTINATION,
            DESTINATION_STATUSES,
            [(key, d.status) for key, d in zip(keys, rows, strict=True)],
        ),
        gauge(
            "dms_destination_enabled",
            ctx.help("1 if the destination is enabled.", "destinations"),
            _DESTINATION,
            [(key, int(d.enabled)) for key, d in zip(keys, rows, strict=True)],
        ),
    ]
