"""Families of the ``devices`` group: devices, fleet counts, groups and services."""

from __future__ import annotations

from collections import Counter
from typing import Any

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
from . import DisplayNames, FamilySpec, GroupSpec, RenderContext, Sources, Tables, known

__all__ = ["GROUP", "device_families"]

_DEVICE = ("device_id", "display_name")
_Item = tuple[Device, str]  # a device and its display name


def _sources(tables: Tables, ctx: RenderContext) -> Sources:
    devices = tables.get("devices")
    rows = devices.rows if devices else ()
    name_of = DisplayNames(devices, ctx)
    groups = tables.get("groups")
    services = tables.get("services")
    summary = (
        Counter((d.model, known(d.connection_state, CONNECTION_STATES)) for d in rows),
        Counter(known(d.authorization_state, DEVICE_AUTHORIZATION_STATES) for d in rows),
        devices is not None,
    )
    members = Counter(g for d in rows for g in d.group_ids)

    def group_size(group: Group) -> int | None:
        if group.device_count is not None:
            return group.device_count
        return members[group.id] if devices else None

    return {
        "devices": [(d, name_of(d.id)) for d in rows],
        "fleet": [summary],
        "groups": [(g, group_size(g)) for g in (groups.rows if groups else ())],
        "services": services.rows if services else (),
    }


def _info(item: _Item) -> list[tuple[str, ...]]:
    d, name = item
    return [
        (d.id, name, d.name, d.unit_address, d.serial_number, d.mac_address, d.model,
         d.device_type, d.firmware_version, d.site, d.region)
    ]  # fmt: skip


def _fleet(item: tuple[Counter[tuple[str, str]], Counter[str], bool]) -> list[Any]:
    by_model_state, _, _ = item
    models = sorted({model for model, _ in by_model_state})
    return [
        ((model, state), by_model_state[model, state])
        for model in models
        for state in CONNECTION_STATES
    ]


def _by_authorization(item: tuple[Counter[tuple[str, str]], Counter[str], bool]) -> list[Any]:
    _, by_authorization, present = item
    return [((s,), by_authorization[s]) for s in DEVICE_AUTHORIZATION_STATES] if present else []


_SPECS = (
    FamilySpec(
        "dms_device", "info", "Static properties of each device (value 1).", "devices",
        (*_DEVICE, "name", "unit_address", "serial_number", "mac_address", "model",
         "device_type", "firmware_version", "site", "region"),
        "devices", _info,
    ),
    FamilySpec(
        "dms_device_connection_state", "stateset", "Connection state of each device to the DMS.",
        "devices", _DEVICE, "devices",
        lambda item: [((item[0].id, item[1]), item[0].connection_state)], CONNECTION_STATES,
    ),
    FamilySpec(
        "dms_device_control_mode", "stateset",
        "Who controls each device: the DMS or its local front panel.", "devices", _DEVICE,
        "devices", lambda item: [((item[0].id, item[1]), item[0].control_mode)], CONTROL_MODES,
    ),
    FamilySpec(
        "dms_device_authorization_state", "stateset",
        "Authorization state of each device as the DMS reports it.", "devices", _DEVICE,
        "devices", lambda item: [((item[0].id, item[1]), item[0].authorization_state)],
        DEVICE_AUTHORIZATION_STATES,
    ),
    FamilySpec(
        "dms_device_last_contact_timestamp_seconds", "gauge",
        "Unix time the DMS last heard from each device; absent if never.", "devices", _DEVICE,
        "devices",
        lambda item: [((item[0].id, item[1]), t)] if (t := item[0].last_contact) is not None
        else [],
    ),
    FamilySpec(
        "dms_device_group_member", "gauge", "Group membership of each device (value 1).",
        "devices", (*_DEVICE, "group_id"), "devices",
        lambda item: [((item[0].id, item[1], g), 1) for g in item[0].group_ids],
    ),
    FamilySpec(
        "dms_devices", "gauge",
        "Devices by model and connection state; every state of every model present.",
        "devices", ("model", "connection_state"), "fleet", _fleet,
    ),
    FamilySpec(
        "dms_devices_by_authorization_state", "gauge",
        "Devices by authorization state; every state, 0 included.", "devices",
        ("authorization_state",), "fleet", _by_authorization,
    ),
    FamilySpec(
        "dms_group", "info", "Each device group: name and parent group id (value 1).", "groups",
        ("group_id", "name", "parent_id"), "groups",
        lambda item: [(item[0].id, item[0].name, item[0].parent_id)],
    ),
    FamilySpec(
        "dms_group_devices", "gauge",
        "Devices in each group: the DMS's deviceCount, else counted from the devices' groupIds.",
        "groups", ("group_id",), "groups",
        lambda item: [((item[0].id,), item[1])] if item[1] is not None else [],
    ),
    FamilySpec(
        "dms_service", "info", "Each service (channel) that can be entitled (value 1).",
        "services", ("service_id", "name", "program_number", "tier"), "services",
        lambda s: [(s.id, s.name, "" if s.program_number is None else str(s.program_number),
                    s.tier)],
    ),
)  # fmt: skip

GROUP = GroupSpec(("devices", "groups", "services"), _sources, lambda ctx: _SPECS)


def device_families(
    devices: Table[Device] | None,
    groups: Table[Group] | None,
    services: Table[Service] | None,
    ctx: RenderContext,
) -> list[Family]:
    """Per-device info, states, last contact and group membership; fleet, group, service."""
    return GROUP.families({"devices": devices, "groups": groups, "services": services}, ctx)
