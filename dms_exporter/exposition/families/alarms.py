"""Families of the ``alarms`` group: alarm counts and one series per active alarm."""

from __future__ import annotations

from collections import Counter

from ...model import ALARM_SEVERITIES, ALARM_SOURCES, ALARM_STATES, OTHER, Alarm, Device, Table
from ..text import Family, Sample
from . import DisplayNames, FamilySpec, GroupSpec, RenderContext, Sources, Tables, known

__all__ = ["GROUP", "alarm_families"]


def _sources(tables: Tables, ctx: RenderContext) -> Sources:
    """``counts``: one item, the samples of ``dms_alarms``; ``active``: (alarm, display name,
    asserted time) per active alarm.

    Counts cover every severity x source for state ``active`` (0 included) and, with alarm
    retrieval ``all``, for ``cleared`` too (plus ``other`` when non-zero). With retrieval
    ``active``, rows in any other state are not counted. Cleared alarms never get a series of
    their own, and the free-text description is never a label.
    """
    alarms = tables.get("alarms")
    rows = alarms.rows if alarms else ()
    name_of = DisplayNames(tables.get("devices"), ctx)
    counts = Counter(
        (
            known(a.severity, ALARM_SEVERITIES),
            known(a.state, ALARM_STATES),
            known(a.source, ALARM_SOURCES),
        )
        for a in rows
    )
    states = ("active", "cleared") if ctx.alarm_retrieval == "all" else ("active",)
    keys = [
        (sev, state, src) for state in states for sev in ALARM_SEVERITIES for src in ALARM_SOURCES
    ]
    if ctx.alarm_retrieval == "all":
        keys += sorted(key for key in counts if key[1] == OTHER)
    fetched_at = alarms.fetched_at if alarms else 0.0
    return {
        "counts": [tuple((key, counts[key]) for key in keys) if alarms else ()],
        "active": [
            (a, name_of(a.device_id), fetched_at if a.asserted_time is None else a.asserted_time)
            for a in rows
            if a.state == "active"
        ],
    }


def _asserted(item: tuple[Alarm, str, float]) -> list[Sample]:
    a, name, asserted = item
    labels = (
        a.id,
        a.device_id,
        name,
        known(a.severity, ALARM_SEVERITIES),
        a.code,
        a.fault_object,
        known(a.source, ALARM_SOURCES),
    )
    return [(labels, asserted)]


_SPECS = (
    FamilySpec(
        "dms_alarms", "gauge", "Alarms held, by severity, state and source.", "alarms",
        ("severity", "state", "source"), "counts", lambda samples: samples,
    ),
    FamilySpec(
        "dms_alarm_asserted_timestamp_seconds", "gauge",
        "Unix time each active alarm was asserted "
        "(when the exporter first saw it if the DMS sent none).",
        "alarms",
        ("alarm_id", "device_id", "display_name", "severity", "code", "fault_object", "source"),
        "active", _asserted,
        reads=frozenset({"id", "device_id", "severity", "code", "fault_object", "source",
                         "asserted_time"}),
    ),
)  # fmt: skip

GROUP = GroupSpec(("alarms", "devices"), _sources, lambda ctx: _SPECS)


def alarm_families(
    alarms: Table[Alarm] | None, devices: Table[Device] | None, ctx: RenderContext
) -> list[Family]:
    """``dms_alarms`` counts and ``dms_alarm_asserted_timestamp_seconds`` per active alarm."""
    return GROUP.families({"alarms": alarms, "devices": devices}, ctx)
