"""Families of the ``devices`` group: devices, fleet counts, groups and services."""

from __future__ import annotations

from collections import Counter

from ..exposition import Family
from ..model import (
    CONNECTION_STATES,
    CONTROL_MODES,
    DEVICE_AUTHORIZATION_STATES,
    Device,
    Group,
    Service,
    Table,
)
from . import DisplayNames, RenderContext, gauge, info, known, stateset

__all__ = ["device_families"]

_DEVICE = ("device_id", "display_name")


def device_families(
    devices: Table[Device] | None,
    groups: Table[Group] | None,
    services: Table[Service] | None,
    ctx: RenderContext,
) -> list[Family]:
    """Per-device info, states, last contact and group membership; fleet, group, service."""
    rows = devices.rows if devices else ()
    group_rows = groups.rows if groups else ()
    name_of = DisplayNames(devices, ctx)
    keys = [(d.id, name_of(d.id)) for d in rows]  # (device_id, display_name), in table order

    by_model_state = Counter((d.model, known(d.connection_state, CONNECTION_STATES)) for d in rows)
    by_authorization = Counter(
        known(d.authorization_state, DEVICE_AUTHORIZATION_STATES) for d in rows
    )
    members = Counter(g for d in rows for g in d.group_ids)

    def group_size(group: Group) -> int | None:
        if group.device_count is not None:
            return group.device_count
        return members[group.id] if devices else None

    return [
        info(
            "dms_device",
            ctx.help("Static properties of each device (value 1).", "devices"),
            (
                *_DEVICE,
                "name",
                "unit_address",
                "serial_number",
                "mac_address",
                "model",
                "device_type",
                "firmware_version",
                "site",
                "region",
            ),
            [
                (
                    *key,
                    d.name,
                    d.unit_address,
                    d.serial_number,
                    d.mac_address,
                    d.model,
                    d.device_type,
                    d.firmware_version,
                    d.site,
                    d.region,
                )
                for key, d in zip(keys, rows, strict=True)
            ],
        ),
        stateset(
            "dms_device_connection_state",
            ctx.help("Connection state of each device to the DMS.", "devices"),
            _DEVICE,
            CONNECTION_STATES,
            [(key, d.connection_state) for key, d in zip(keys, rows, strict=True)],
        ),
        stateset(
            "dms_device_control_mode",
            ctx.help("Who controls each device: the DMS or its local front panel.", "devices"),
            _DEVICE,
            CONTROL_MODES,
            [(key, d.control_mode) for key, d in zip(keys, rows, strict=True)],
        ),
        stateset(
            "dms_device_authorization_state",
            ctx.help("Authorization state of each device as the DMS reports it.", "devices"),
            _DEVICE,
            DEVICE_AUTHORIZATION_STATES,
            [(key, d.authorization_state) for key, d in zip(keys, rows, strict=True)],
        ),
        gauge(
            "dms_device_last_contact_timestamp_seconds",
            ctx.help("Unix time the DMS last heard from each device; absent if never.", "devices"),
            _DEVICE,
            [
                (key, d.last_contact)
                for key, d in zip(keys, rows, strict=True)
                if d.last_contact is not None
            ],
        ),
        gauge(
            "dms_device_group_member",
            ctx.help("Group membership of each device (value 1).", "devices"),
            (*_DEVICE, "group_id"),
            [((*key, g), 1) for key, d in zip(keys, rows, strict=True) for g in d.group_ids],
        ),
        gauge(
            "dms_devices",
            ctx.help(
                "Devices by model and connection state; every state of every model present.",
                "devices",
            ),
            ("model", "connection_state"),
            [
                ((model, state), by_model_state[model, state])
                for model in sorted({d.model for d in rows})
                for state in CONNECTION_STATES
            ],
        ),
        gauge(
            "dms_devices_by_authorization_state",
            ctx.help("Devices by authorization state; every state, 0 included.", "devices"),
            ("authorization_state",),
            [((s,), by_authorization[s]) for s in DEVICE_AUTHORIZATION_STATES] if devices else [],
        ),
        info(
            "dms_group",
            ctx.help("Each device group: name and parent group id (value 1).", "groups"),
            ("group_id", "name", "parent_id"),
            [(g.id, g.name, g.parent_id) for g in group_rows],
        ),
        gauge(
            "dms_group_devices",
            ctx.help(
                "Devices in each group: the DMS's deviceCount, else counted from the devices'"
                " groupIds.",
                "groups",
            ),
            ("group_id",),
            [((g.id,), n) for g in group_rows if (n := group_size(g)) is not None],
        ),
        info(
            "dms_service",
            ctx.help("Each service (channel) that can be entitled (value 1).", "services"),
            ("service_id", "name", "program_number", "tier"),
            [
                (s.id, s.name, "" if s.program_number is None else str(s.program_number), s.tier)
                for s in (services.rows if services else ())
            ],
        ),
    ]
