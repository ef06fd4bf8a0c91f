"""Families of the ``authorization`` group: authorization sets, schedules, per-device counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from ...model import (
    AUTHORIZATION_SOURCES,
    OTHER,
    SCHEDULE_STATES,
    Authorization,
    AuthorizationSet,
    Device,
    ScheduleAuthorization,
    Table,
)
from ..text import Family, Sample
from . import DisplayNames, FamilySpec, GroupSpec, RenderContext, Sources, Tables, known

__all__ = ["GROUP", "authorization_families", "authorized_services_per_device"]

_SET = ("authorization_set_id",)
_SCHEDULE = ("schedule_authorization_id",)
#: device id, display name, (source, authorized services) pairs (few distinct ones: shared)
_Device = tuple[str, str, tuple[tuple[str, int], ...]]


def _sources(tables: Tables, ctx: RenderContext) -> Sources:
    """Authorization sets and schedule authorizations (the per-device and per-service counts
    are ``GROUP.kept``: made again only when ``/authorizations`` or a device's name changes).

    With ``allow_schedule_authorization`` off, ``/authorizations`` rows with source ``schedule``
    and authorization sets of type ``schedule`` are ignored.
    """
    sets = tables.get("authorization_sets")
    set_rows = sets.rows if sets else ()
    if not ctx.allow_schedule_authorization:
        set_rows = tuple(s for s in set_rows if s.type != "schedule")
    schedules = tables.get("schedule_authorizations")
    return {
        "sets": set_rows,
        "schedules": schedules.rows if schedules else (),
    }


def _sources_allowed(ctx: RenderContext) -> tuple[str, ...]:
    return ("permanent", "schedule") if ctx.allow_schedule_authorization else ("permanent",)


def _effective(
    authorizations: Table[Authorization], ctx: RenderContext
) -> Iterator[tuple[Authorization, str]]:
    """Each row with its source, without ``schedule`` rows when those are not allowed."""
    for a in authorizations.rows:
        source = known(a.source, AUTHORIZATION_SOURCES)
        if source != "schedule" or ctx.allow_schedule_authorization:
            yield a, source


def _authorized_devices(
    authorizations: Table[Authorization] | None, ctx: RenderContext
) -> list[tuple[str, tuple[Sample, ...]]]:
    """Per service seen in ``/authorizations``: devices authorized for it, by source (the
    allowed sources, 0 included; ``other`` only when non-zero)."""
    if not authorizations:
        return []
    sources = _sources_allowed(ctx)
    devices: dict[tuple[str, str], set[str]] = {}
    services: dict[str, None] = {}
    for a, source in _effective(authorizations, ctx):
        services.setdefault(a.service_id)
        if a.authorized:
            devices.setdefault((a.service_id, source), set()).add(a.device_id)
    items = []
    for service in sorted(services):
        samples: list[Sample] = [
            ((service, s), len(devices.get((service, s), ()))) for s in sources
        ]
        if other := len(devices.get((service, OTHER), ())):
            samples.append(((service, OTHER), other))
        items.append((service, tuple(samples)))
    return items


def authorized_services_per_device(
    authorizations: Table[Authorization] | None,
    devices: Table[Device] | None,
    ctx: RenderContext,
) -> list[_Device]:
    """Authorized services per device and source.

    Every device known to either table gets ``permanent`` (and ``schedule`` when allowed), 0
    included; ``other`` only when non-zero. No samples without an authorizations table.
    """
    sources = _sources_allowed(ctx)
    counts: Counter[tuple[str, str]] = Counter()
    device_ids: dict[str, None] = {}  # an ordered set: devices table order, then new ids
    if authorizations:
        device_ids.update((d.id, None) for d in (devices.rows if devices else ()))
        for a, source in _effective(authorizations, ctx):
            device_ids.setdefault(a.device_id)
            if a.authorized:
                counts[a.device_id, source] += 1
    name_of = DisplayNames(devices, ctx)
    shared: dict[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]] = {}
    items: list[_Device] = []
    for device_id in device_ids:
        by_source = [(s, counts[device_id, s]) for s in sources]
        if other := counts[device_id, OTHER]:
            by_source.append((OTHER, other))
        key = tuple(by_source)
        items.append((device_id, name_of(device_id), shared.setdefault(key, key)))
    return items


def _specs(ctx: RenderContext) -> list[FamilySpec]:
    """With ``allow_schedule_authorization`` off, the ``dms_schedule_authorization_*`` families
    are left out entirely (no HELP/TYPE either: they do not exist in such a deployment)."""
    return [*_SET_SPECS, *(_SCHEDULE_SPECS if ctx.allow_schedule_authorization else ()),
            _AUTHORIZED_DEVICES, _AUTHORIZED]  # fmt: skip


_SET_SPECS = (
    FamilySpec(
        "dms_authorization_set", "info", "Each authorization set: name and type (value 1).",
        "authorization_sets", (*_SET, "name", "type"), "sets", lambda s: [(s.id, s.name, s.type)],
    ),
    FamilySpec(
        "dms_authorization_set_enabled", "gauge", "1 if the authorization set is enabled.",
        "authorization_sets", _SET, "sets", lambda s: [((s.id,), int(s.enabled))],
    ),
    FamilySpec(
        "dms_authorization_set_devices", "gauge",
        "Devices the authorization set targets (its deviceCount); absent if not sent.",
        "authorization_sets", _SET, "sets",
        lambda s: [((s.id,), s.device_count)] if s.device_count is not None else [],
    ),
    FamilySpec(
        "dms_authorization_set_services", "gauge", "Services the authorization set entitles.",
        "authorization_sets", _SET, "sets", lambda s: [((s.id,), len(s.service_ids))],
    ),
)  # fmt: skip

_ENDPOINT = "schedule_authorizations"
_SCHEDULE_SPECS = (
    FamilySpec(
        "dms_schedule_authorization", "info",
        "Each schedule authorization: name and the authorization set it applies (value 1).",
        _ENDPOINT, (*_SCHEDULE, "name", "authorization_set_id"), "schedules",
        lambda s: [(s.id, s.name, s.authorization_set_id)],
    ),
    FamilySpec(
        "dms_schedule_authorization_state", "stateset",
        "State of each schedule authorization.", _ENDPOINT, _SCHEDULE, "schedules",
        lambda s: [((s.id,), s.state)], SCHEDULE_STATES,
    ),
    FamilySpec(
        "dms_schedule_authorization_start_timestamp_seconds", "gauge",
        "Unix time the schedule authorization window starts.", _ENDPOINT, _SCHEDULE,
        "schedules", lambda s: [((s.id,), s.start_time)] if s.start_time is not None else [],
    ),
    FamilySpec(
        "dms_schedule_authorization_end_timestamp_seconds", "gauge",
        "Unix time the schedule authorization window ends.", _ENDPOINT, _SCHEDULE,
        "schedules", lambda s: [((s.id,), s.end_time)] if s.end_time is not None else [],
    ),
    FamilySpec(
        "dms_schedule_authorization_devices", "gauge",
        "Devices the schedule authorization targets (its deviceCount).", _ENDPOINT, _SCHEDULE,
        "schedules",
        lambda s: [((s.id,), s.device_count)] if s.device_count is not None else [],
    ),
)  # fmt: skip

_AUTHORIZED = FamilySpec(
    "dms_device_authorized_services", "gauge",
    "Services each device is authorized for, by source (effective authorizations).",
    "authorizations", ("device_id", "display_name", "source"), "devices",
    lambda item: [((item[0], item[1], source), n) for source, n in item[2]],
)  # fmt: skip
_AUTHORIZED_DEVICES = FamilySpec(
    "dms_service_authorized_devices", "gauge",
    "Devices authorized for each service, by source (effective authorizations).",
    "authorizations", ("service_id", "source"), "services", lambda item: item[1],
)  # fmt: skip

GROUP = GroupSpec(
    ("authorizations", "authorization_sets", "schedule_authorizations", "devices"),
    _sources,
    _specs,
    kept={
        "devices": (
            ("authorizations", "devices"),
            lambda t, ctx: authorized_services_per_device(
                t.get("authorizations"), t.get("devices"), ctx
            ),
        ),
        "services": (
            ("authorizations",),
            lambda t, ctx: _authorized_devices(t.get("authorizations"), ctx),
        ),
    },
)


def authorization_families(
    authorization_sets: Table[AuthorizationSet] | None,
    schedule_authorizations: Table[ScheduleAuthorization] | None,
    authorizations: Table[Authorization] | None,
    devices: Table[Device] | None,
    ctx: RenderContext,
) -> list[Family]:
    """Authorization sets, schedule authorizations and ``dms_device_authorized_services``."""
    tables = {
        "authorization_sets": authorization_sets,
        "schedule_authorizations": schedule_authorizations,
        "authorizations": authorizations,
        "devices": devices,
    }
    return GROUP.families(tables, ctx)
