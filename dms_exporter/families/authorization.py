"""Families of the ``authorization`` group: authorization sets, schedules, per-device counts."""

from __future__ import annotations

from collections import Counter

from ..exposition import Family, Sample
from ..model import (
    AUTHORIZATION_SOURCES,
    OTHER,
    SCHEDULE_STATES,
    Authorization,
    AuthorizationSet,
    Device,
    ScheduleAuthorization,
    Table,
)
from . import DisplayNames, RenderContext, gauge, info, known, stateset

__all__ = ["authorization_families"]

_SET = ("authorization_set_id",)
_SCHEDULE = ("schedule_authorization_id",)


def authorization_families(
    authorization_sets: Table[AuthorizationSet] | None,
    schedule_authorizations: Table[ScheduleAuthorization] | None,
    authorizations: Table[Authorization] | None,
    devices: Table[Device] | None,
    ctx: RenderContext,
) -> list[Family]:
    """Authorization sets, schedule authorizations and ``dms_device_authorized_services``.

    With ``allow_schedule_authorization`` off, the ``dms_schedule_authorization_*`` families are
    left out entirely (no HELP/TYPE either: they do not exist in such a deployment), and
    ``/authorizations`` rows with source ``schedule`` and authorization sets of type ``schedule``
    are ignored.
    """
    sets = authorization_sets.rows if authorization_sets else ()
    if not ctx.allow_schedule_authorization:
        sets = tuple(s for s in sets if s.type != "schedule")
    families = [
        info(
            "dms_authorization_set",
            ctx.help("Each authorization set: name and type (value 1).", "authorization_sets"),
            (*_SET, "name", "type"),
            [(s.id, s.name, s.type) for s in sets],
        ),
        gauge(
            "dms_authorization_set_enabled",
            ctx.help("1 if the authorization set is enabled.", "authorization_sets"),
            _SET,
            [((s.id,), int(s.enabled)) for s in sets],
        ),
        gauge(
            "dms_authorization_set_devices",
            ctx.help(
                "Devices the authorization set targets (its deviceCount); absent if not sent.",
                "authorization_sets",
            ),
            _SET,
            [((s.id,), s.device_count) for s in sets if s.device_count is not None],
        ),
        gauge(
            "dms_authorization_set_services",
            ctx.help("Services the authorization set entitles.", "authorization_sets"),
            _SET,
            [((s.id,), len(s.service_ids)) for s in sets],
        ),
    ]
    if ctx.allow_schedule_authorization:
        families += _schedule_families(schedule_authorizations, ctx)
    families.append(_authorized_services(authorizations, devices, ctx))
    return families


def _schedule_families(
    schedules: Table[ScheduleAuthorization] | None, ctx: RenderContext
) -> list[Family]:
    rows = schedules.rows if schedules else ()
    endpoint = "schedule_authorizations"
    return [
        info(
            "dms_schedule_authorization",
            ctx.help(
                "Each schedule authorization: name and the authorization set it applies (value 1).",
                endpoint,
            ),
            (*_SCHEDULE, "name", "authorization_set_id"),
            [(s.id, s.name, s.authorization_set_id) for s in rows],
        ),
        stateset(
            "dms_schedule_authorization_state",
            ctx.help("State of each schedule authorization.", endpoint),
            _SCHEDULE,
            SCHEDULE_STATES,
            [((s.id,), s.state) for s in rows],
        ),
        gauge(
            "dms_schedule_authorization_start_timestamp_seconds",
            ctx.help("Unix time the schedule authorization window starts.", endpoint),
            _SCHEDULE,
            [((s.id,), s.start_time) for s in rows if s.start_time is not None],
        ),
        gauge(
            "dms_schedule_authorization_end_timestamp_seconds",
            ctx.help("Unix time the schedule authorization window ends.", endpoint),
            _SCHEDULE,
            [((s.id,), s.end_time) for s in rows if s.end_time is not None],
        ),
        gauge(
            "dms_schedule_authorization_devices",
            ctx.help("Devices the schedule authorization targets (its deviceCount).", endpoint),
            _SCHEDULE,
            [((s.id,), s.device_count) for s in rows if s.device_count is not None],
        ),
    ]


def _authorized_services(
    authorizations: Table[Authorization] | None,
    devices: Table[Device] | None,
    ctx: RenderContext,
) -> Family:
    """Authorized services per device and source.

    Every device known to either table gets ``permanent`` (and ``schedule`` when allowed), 0
    included; ``other`` only when non-zero. No samples without an authorizations table.
    """
    sources = ("permanent", "schedule") if ctx.allow_schedule_authorization else ("permanent",)
    counts: Counter[tuple[str, str]] = Counter()
    device_ids: dict[str, None] = {}  # an ordered set: devices table order, then new ids
    if authorizations:
        device_ids.update((d.id, None) for d in (devices.rows if devices else ()))
        for a in authorizations.rows:
            source = known(a.source, AUTHORIZATION_SOURCES)
            if source == "schedule" and not ctx.allow_schedule_authorization:
                continue
            device_ids.setdefault(a.device_id)
            if a.authorized:
                counts[a.device_id, source] += 1
    name_of = DisplayNames(devices, ctx)
    samples: list[Sample] = []
    for device_id in device_ids:
        name = name_of(device_id)
        samples += [((device_id, name, s), counts[device_id, s]) for s in sources]
        if other := counts[device_id, OTHER]:
            samples.append(((device_id, name, OTHER), other))
    return gauge(
        "dms_device_authorized_services",
        ctx.help(
            "Services each device is authorized for, by source (effective authorizations).",
            "authorizations",
        ),
        ("device_id", "display_name", "source"),
        samples,
    )
