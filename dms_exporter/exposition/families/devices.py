"""Families of the ``devices`` group: devices, fleet counts, groups and services."""

from __future__ import annotations

import operator
from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ...model import (
    CONNECTION_STATES,
    CONTROL_MODES,
    DEVICE_AUTHORIZATION_STATES,
    Device,
    Group,
    Service,
    Table,
)
from ..text import Family
from . import DisplayNames, FamilySpec, GroupSpec, RenderContext, Since, Sources, Tables, known

__all__ = ["GROUP", "device_families"]

_DEVICE = ("device_id", "display_name")
_KEY = frozenset({"id", "name"})  # what a device's display name is made from (and its id)


def _reads(*fields: str) -> frozenset[str]:
    return _KEY | frozenset(fields)


def _sources(tables: Tables, ctx: RenderContext) -> Sources:
    """Devices (the rows themselves: a device's lines depend on its row and the settings
    only), groups and services; the ``fleet`` and group sizes come from ``_derived``."""
    devices = tables.get("devices")
    services = tables.get("services")
    return {
        "devices": devices.rows if devices else (),
        "services": services.rows if services else (),
    }


def _tally(devices: Sequence[Device]) -> Counter[tuple[Any, ...]]:
    """Devices by model and state, by authorization state, and group members."""
    counts: Counter[tuple[Any, ...]] = Counter(
        ("model", d.model, known(d.connection_state, CONNECTION_STATES)) for d in devices
    )
    counts.update(
        ("authorization", known(d.authorization_state, DEVICE_AUTHORIZATION_STATES))
        for d in devices
    )
    counts.update(  # the site and model as one key part: _derived reads it as it is
        ("site", (d.site, d.model), known(d.connection_state, CONNECTION_STATES)) for d in devices
    )
    counts.update(("control", known(d.control_mode, CONTROL_MODES)) for d in devices)
    counts.update(("member", g) for d in devices for g in d.group_ids)
    return counts


def _derived(
    counts: Counter[tuple[Any, ...]], tables: Tables, ctx: RenderContext, since: Since | None
) -> Sources:
    """The fleet counts from the tally: updated from ``since`` where only counts of known
    sites, models and states moved (a device's state: a thousandth of the work at 20,000
    devices), else made afresh."""
    if since is not None:
        updated = _updated(counts, since)
        if updated is not None:
            return updated
    present = tables.get("devices") is not None
    column = {state: i for i, state in enumerate(CONNECTION_STATES)}
    by_model_state: dict[tuple[str, str], int] = {}
    by_authorization: dict[str, int] = {}
    by_control: dict[str, int] = {}
    members: dict[str, int] = {}
    by_site: dict[tuple[str, str], list[int]] = {}
    for key, n in counts.items():  # one pass, making no key: the site keys are thousands
        kind = key[0]
        if kind == "site":
            by_site.setdefault(key[1], [0] * len(column))[column[key[2]]] = n
        elif kind == "member":
            members[key[1]] = n
        elif kind == "model":
            by_model_state[key[1:]] = n
        elif kind == "authorization":
            by_authorization[key[1]] = n
        elif kind == "control":
            by_control[key[1]] = n
    groups = tables.get("groups")

    def group_size(group: Group) -> int | None:
        if group.device_count is not None:
            return group.device_count
        return members.get(group.id, 0) if present else None

    return {  # one source per family (_DERIVED): a change in one count redoes that family only
        "by_model_state": [(by_model_state, present)],
        "by_authorization": [(by_authorization, present)],
        # an item per site and model (thousands of sites): a change redoes one unit of them
        "by_site": [(*pair, *row) for pair, row in sorted(by_site.items())],
        "by_control": [(by_control, present)],
        "groups": [(g, group_size(g)) for g in (groups.rows if groups else ())],
    }


#: The sources ``_derived`` makes.
_DERIVED = ("by_model_state", "by_authorization", "by_site", "by_control", "groups")
#: Tally kinds -> the derived source holding their counts, as (mapping, devices present).
_COUNTS_IN = {
    "model": "by_model_state",
    "authorization": "by_authorization",
    "control": "by_control",
}


def _updated(counts: Counter[tuple[Any, ...]], since: Since) -> Sources | None:
    """``since``'s derived sources with the moved counts put in, or None where that is not
    enough (a group's member count, or a site and model that appear or go)."""
    if any(key[0] not in _COUNTS_IN and key[0] != "site" for key in since.moved):
        return None
    old = since.items
    sources: dict[str, Sequence[Any]] = {name: old[name] for name in _DERIVED}
    by_site = list(old["by_site"])
    for pair in {key[1] for key in since.moved if key[0] == "site"}:
        row = tuple(counts.get(("site", pair, state), 0) for state in CONNECTION_STATES)
        at = bisect_left(by_site, pair, key=operator.itemgetter(0, 1))
        if not any(row) or at == len(by_site) or by_site[at][:2] != pair:
            return None
        by_site[at] = (*pair, *row)
    sources["by_site"] = by_site
    for kind, name in _COUNTS_IN.items():
        moved = [key for key in since.moved if key[0] == kind]
        if moved:
            ((mapping, present),) = old[name]
            mapping = dict(mapping)
            for key in moved:
                part = key[1:] if kind == "model" else key[1]
                if key in counts:
                    mapping[part] = counts[key]
                else:
                    del mapping[part]
            sources[name] = [(mapping, present)]
    return sources


def _fleet(item: tuple[Mapping[tuple[str, str], int], bool]) -> list[Any]:
    by_model_state, _ = item
    models = sorted({model for model, _ in by_model_state})
    return [
        ((model, state), by_model_state.get((model, state), 0))
        for model in models
        for state in CONNECTION_STATES
    ]


def _by_authorization(item: tuple[Mapping[str, int], bool]) -> list[Any]:
    by_authorization, present = item
    if not present:
        return []
    return [((s,), by_authorization.get(s, 0)) for s in DEVICE_AUTHORIZATION_STATES]


def _by_site(item: tuple[Any, ...]) -> list[Any]:
    site, model, *counts = item
    return [((site, model, state), n) for state, n in zip(CONNECTION_STATES, counts, strict=True)]


def _by_control_mode(item: tuple[Mapping[str, int], bool]) -> list[Any]:
    by_control, present = item
    return [((m,), by_control.get(m, 0)) for m in CONTROL_MODES] if present else []


def _specs(ctx: RenderContext) -> list[FamilySpec]:
    def key(d: Device) -> tuple[str, str]:
        return d.id, DisplayNames.of(d, ctx)

    def info(d: Device) -> list[tuple[str, ...]]:
        return [
            (*key(d), d.name, d.unit_address, d.serial_number, d.mac_address, d.model,
             d.device_type, d.firmware_version, d.site, d.region)
        ]  # fmt: skip

    return [
        FamilySpec(
            "dms_device", "info", "Static properties of each device (value 1).", "devices",
            (*_DEVICE, "name", "unit_address", "serial_number", "mac_address", "model",
             "device_type", "firmware_version", "site", "region"),
            "devices", info,
            reads=_reads("unit_address", "serial_number", "mac_address", "model", "device_type",
                         "firmware_version", "site", "region"),
        ),
        FamilySpec(
            "dms_device_connection_state", "stateset",
            "Connection state of each device to the DMS.", "devices", _DEVICE, "devices",
            lambda d: [(key(d), d.connection_state)], CONNECTION_STATES,
            reads=_reads("connection_state"),
        ),
        FamilySpec(
            "dms_device_control_mode", "stateset",
            "Who controls each device: the DMS or its local front panel.", "devices", _DEVICE,
            "devices", lambda d: [(key(d), d.control_mode)], CONTROL_MODES,
            reads=_reads("control_mode"),
        ),
        FamilySpec(
            "dms_device_authorization_state", "stateset",
            "Authorization state of each device as the DMS reports it.", "devices", _DEVICE,
            "devices", lambda d: [(key(d), d.authorization_state)], DEVICE_AUTHORIZATION_STATES,
            reads=_reads("authorization_state"),
        ),
        FamilySpec(
            "dms_device_last_contact_timestamp_seconds", "gauge",
            "Unix time the DMS last heard from each device; absent if never.", "devices",
            _DEVICE, "devices",
            lambda d: [(key(d), d.last_contact)] if d.last_contact is not None else [],
            reads=_reads("last_contact"),
        ),
        FamilySpec(
            "dms_device_group_member", "gauge", "Group membership of each device (value 1).",
            "devices", (*_DEVICE, "group_id"), "devices",
            lambda d: [((*key(d), g), 1) for g in d.group_ids],
            reads=_reads("group_ids"),
        ),
        *_SPECS,
    ]  # fmt: skip


_SPECS = (
    FamilySpec(
        "dms_devices", "gauge",
        "Devices by model and connection state; every state of every model present.",
        "devices", ("model", "connection_state"), "by_model_state", _fleet,
    ),
    FamilySpec(
        "dms_devices_by_authorization_state", "gauge",
        "Devices by authorization state; every state, 0 included.", "devices",
        ("authorization_state",), "by_authorization", _by_authorization,
    ),
    FamilySpec(
        "dms_devices_by_site", "gauge",
        "Devices by site, model and connection state; every state of every site and model"
        " present.", "devices", ("site", "model", "connection_state"), "by_site", _by_site,
    ),
    FamilySpec(
        "dms_devices_by_control_mode", "gauge",
        "Devices by control mode (DMS or local front panel); every mode, 0 included.",
        "devices", ("control_mode",), "by_control", _by_control_mode,
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

GROUP = GroupSpec(
    ("devices", "groups", "services"),
    _sources,
    _specs,
    tallied="devices",
    tally=_tally,
    derived=_derived,
    tally_reads=frozenset(
        {"model", "connection_state", "authorization_state", "site", "control_mode", "group_ids"}
    ),
)


def device_families(
    devices: Table[Device] | None,
    groups: Table[Group] | None,
    services: Table[Service] | None,
    ctx: RenderContext,
) -> list[Family]:
    """Per-device info, states, last contact and group membership; fleet, group, service."""
    return GROUP.families({"devices": devices, "groups": groups, "services": services}, ctx)
