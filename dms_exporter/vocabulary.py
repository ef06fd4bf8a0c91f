"""DMS JSON -> model rows: the only module that knows how the DMS spells things.

Each endpoint has a *plan*: the row type and, in that type's field order, the canonical API field
name (``dms-api.md``; dotted for nested, e.g. ``location.site``) and how to convert its value. An
operator's ``fields`` renames map a canonical name to the name their DMS uses. Conversion never
raises on a bad value: a row without its id is skipped, an unknown enum value becomes
``model.OTHER``, anything else missing or of the wrong type becomes ``""``, ``None``, ``False`` or
``()``. A row that repeats an earlier row's id is skipped. ``DmsPayloadError`` is raised only for a
payload of the wrong overall shape, or one whose rows are all unusable (so the last good table
stays).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import model
from .errors import DmsPayloadError

__all__ = ["KNOWN_FIELDS", "Parsed", "parse", "parse_time"]


@dataclass(frozen=True, slots=True)
class Parsed:
    """The rows of one payload and what was wrong with it (counts, never an exception)."""

    rows: tuple[Any, ...]
    skipped: int  # rows dropped: not an object, or without their id
    unknown_values: int  # enum values that were missing or not known, exported as model.OTHER


# Field kinds. ID fields come first in every row type; a row lacking one is skipped.
_ID, _TEXT, _INT, _FLOAT, _BOOL, _IDS, _TIME = "id", "text", "int", "float", "bool", "ids", "time"

_Spec = tuple[str, Any]  # (canonical API field name, kind or the enum's tuple of values)

_PLANS: dict[str, tuple[type, tuple[_Spec, ...]]] = {
    "system": (
        model.SystemInfo,
        (
            ("name", _TEXT),
            ("version", _TEXT),
            ("role", model.SYSTEM_ROLES),
            ("serverTime", _TIME),
            ("uptimeSeconds", _FLOAT),
            ("licensedDevices", _INT),
        ),
    ),
    "devices": (
        model.Device,
        (
            ("id", _ID),
            ("name", _TEXT),
            ("unitAddress", _TEXT),
            ("serialNumber", _TEXT),
            ("macAddress", _TEXT),
            ("model", _TEXT),
            ("deviceType", model.DEVICE_TYPES),
            ("firmwareVersion", _TEXT),
            ("connectionState", model.CONNECTION_STATES),
            ("controlMode", model.CONTROL_MODES),
            ("lastContact", _TIME),
            ("groupIds", _IDS),
            ("location.site", _TEXT),
            ("location.region", _TEXT),
            ("authorizationState", model.DEVICE_AUTHORIZATION_STATES),
        ),
    ),
    "groups": (
        model.Group,
        (("id", _ID), ("name", _TEXT), ("parentId", _TEXT), ("deviceCount", _INT)),
    ),
    "services": (
        model.Service,
        (("id", _ID), ("name", _TEXT), ("programNumber", _INT), ("tier", _TEXT)),
    ),
    "authorization_sets": (
        model.AuthorizationSet,
        (
            ("id", _ID),
            ("name", _TEXT),
            ("type", model.AUTHORIZATION_SET_TYPES),
            ("enabled", _BOOL),
            ("serviceIds", _IDS),
            ("targetGroupIds", _IDS),
            ("targetDeviceIds", _IDS),
            ("deviceCount", _INT),
            ("lastModified", _TIME),
        ),
    ),
    "schedule_authorizations": (
        model.ScheduleAuthorization,
        (
            ("id", _ID),
            ("name", _TEXT),
            ("authorizationSetId", _TEXT),
            ("serviceIds", _IDS),
            ("targetGroupIds", _IDS),
            ("targetDeviceIds", _IDS),
            ("startTime", _TIME),
            ("endTime", _TIME),
            ("state", model.SCHEDULE_STATES),
            ("deviceCount", _INT),
        ),
    ),
    "authorizations": (
        model.Authorization,
        (
            ("deviceId", _ID),
            ("serviceId", _ID),
            ("authorizationSetId", _TEXT),
            ("scheduleAuthorizationId", _TEXT),
            ("source", model.AUTHORIZATION_SOURCES),
            ("authorized", _BOOL),
            ("validFrom", _TIME),
            ("validTo", _TIME),
        ),
    ),
    "destinations": (
        model.Destination,
        (
            ("id", _ID),
            ("deviceId", _TEXT),
            ("name", _TEXT),
            ("type", model.DESTINATION_TYPES),
            ("enabled", _BOOL),
            ("serviceId", _TEXT),
            ("ipAddress", _TEXT),
            ("ipPort", _INT),
            ("status", model.DESTINATION_STATUSES),
        ),
    ),
    "alarms": (
        model.Alarm,
        (
            ("id", _ID),
            ("deviceId", _TEXT),
            ("source", model.ALARM_SOURCES),
            ("faultObject", _TEXT),
            ("code", _TEXT),
            ("description", _TEXT),
            ("severity", model.ALARM_SEVERITIES),
            ("state", model.ALARM_STATES),
            ("assertedTime", _TIME),
            ("clearedTime", _TIME),
            ("acknowledged", _BOOL),
        ),
    ),
}
assert tuple(_PLANS) == model.ENDPOINTS

#: Canonical API field names each endpoint reads: the keys allowed in an endpoint's ``fields``.
KNOWN_FIELDS: Mapping[str, tuple[str, ...]] = {
    endpoint: tuple(name for name, _ in specs) for endpoint, (_, specs) in _PLANS.items()
}


# --- value converters: any JSON value in, the model's type out, never raising ---------------


#: Numbers beyond this are not a count or a time the DMS could mean; they become None, so a
#: 400-digit integer (valid JSON) never reaches float conversion or the exposition.
_MAX_NUMBER = 2**63


def _utf8(v: str) -> str:
    # JSON may carry a lone surrogate ("\ud800"), which cannot be encoded as UTF-8 later.
    if v.isascii():
        return v
    return v.encode("utf-8", "replace").decode("utf-8")


def _id(v: Any) -> str | None:
    if v.__class__ is str:
        return _utf8(v) or None
    if isinstance(v, int | float) and not isinstance(v, bool):
        return str(v)
    return None


def _text(v: Any) -> str:
    if v.__class__ is str:
        return _utf8(v)
    if isinstance(v, int | float) and not isinstance(v, bool):
        return str(v)
    return ""


def _float(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            return None
    if isinstance(v, int | float) and -_MAX_NUMBER < v < _MAX_NUMBER:  # also rejects NaN, inf
        return float(v)
    return None


def _int(v: Any) -> int | None:
    if v.__class__ is int:
        return v if -_MAX_NUMBER < v < _MAX_NUMBER else None
    f = _float(v)
    return None if f is None else int(f)


def _bool(v: Any) -> bool:
    if v is True or v is False:
        return v
    return isinstance(v, str) and v.lower() == "true"


def _ids(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list):
        return ()
    return tuple(dict.fromkeys(s for s in map(_id, v) if s is not None))  # no repeats


def parse_time(v: Any) -> float | None:
    """ISO 8601 text (``Z`` or an offset, with or without a fraction) -> Unix seconds, else None.

    A time without an offset is taken as UTC, as the DMS sends UTC.
    """
    if v.__class__ is not str:
        return None
    try:
        t = datetime.fromisoformat(v)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.timestamp()


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    _ID: _id,
    _TEXT: _text,
    _INT: _int,
    _FLOAT: _float,
    _BOOL: _bool,
    _IDS: _ids,
    _TIME: parse_time,
}


def _enum(values: tuple[str, ...], unknown: list[int]) -> Callable[[Any], str]:
    """A converter from the DMS's UPPER_CASE spelling to ``values``; counts misses in unknown."""
    known = {v.upper(): v for v in values if v != model.OTHER}
    known.update({v: v for v in values if v != model.OTHER})

    def convert(v: Any) -> str:
        found = known.get(v) if v.__class__ is str else None
        if found is None:
            unknown[0] += 1
            return model.OTHER
        return found

    return convert


def _sharing(convert: Callable[[Any], Any], shared: dict[Any, Any]) -> Callable[[Any], Any]:
    """``convert`` returning the first equal object it returned, so that rows share repeated
    values (a model name, a service id, a group list) instead of each holding a copy."""

    def share(v: Any) -> Any:
        value = convert(v)
        return shared.setdefault(value, value)

    return share


def _walk(v: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(v, dict):
            return None
        v = v.get(key)
    return v


def parse(endpoint: str, payload: Any, fields: Mapping[str, str], now: float) -> Parsed:
    """Turn one endpoint's JSON into model rows.

    ``payload`` is a dict for ``system`` and a list of objects for every other endpoint (the
    client has already unwrapped paging envelopes); any other shape raises ``DmsPayloadError``.
    ``fields`` maps canonical API field names to the names this DMS uses. ``now`` is the poll
    time; no rule needs it yet, it is accepted so that callers need not change when one does.
    """
    del now
    row_type, specs = _PLANS[endpoint]
    unknown = [0]
    plan = []
    n_ids = 0
    shared: dict[Any, Any] = {}  # one object per distinct text value, id or id list
    for canonical, kind in specs:
        first, *rest = fields.get(canonical, canonical).split(".")
        convert = _enum(kind, unknown) if isinstance(kind, tuple) else _CONVERTERS[kind]
        if kind in (_ID, _TEXT, _IDS):
            convert = _sharing(convert, shared)
        plan.append((first, tuple(rest) or None, convert))
        n_ids += kind == _ID

    if endpoint == "system":
        if not isinstance(payload, dict):
            raise _shape_error(endpoint, "an object", payload)
        items: list[Any] = [payload]
    elif isinstance(payload, list):
        items = payload
    else:
        raise _shape_error(endpoint, "a list of objects", payload)

    id_plan, value_plan = plan[:n_ids], plan[n_ids:]
    # A repeated id would repeat a series and make Prometheus reject the whole scrape. Two
    # authorization rows of one device and service may differ in source, so source joins their
    # key; a row repeated across pages is still counted once.
    key_size = n_ids
    if endpoint == "authorizations":
        key_size = 1 + next(i for i, (name, _) in enumerate(specs) if name == "source")
    seen: set[tuple[Any, ...]] = set()
    rows = []
    skipped = 0
    for item in items:
        if not isinstance(item, dict):
            skipped += 1
            continue
        values = [_get(item, key, rest, convert) for key, rest, convert in id_plan]
        if None in values:
            skipped += 1
            continue
        values += [_get(item, key, rest, convert) for key, rest, convert in value_plan]
        row_key = tuple(values[:n_ids]) + tuple(values[n_ids:key_size][-1:])
        if row_key in seen:
            skipped += 1
            continue
        seen.add(row_key)
        rows.append(row_type(*values))
    if items and not rows:
        # Every row unusable (a renamed id field, a broken page): keep the last good table
        # instead of replacing it with an empty one.
        raise DmsPayloadError(
            f"{endpoint}: none of {len(items)} items has a usable id", endpoint=endpoint
        )
    return Parsed(rows=tuple(rows), skipped=skipped, unknown_values=unknown[0])


def _get(
    item: dict[str, Any], key: str, rest: tuple[str, ...] | None, convert: Callable[[Any], Any]
) -> Any:
    """The converted value of ``key`` (then the ``rest`` of a dotted path) in ``item``."""
    v = item.get(key)
    return convert(v if rest is None else _walk(v, rest))


def _shape_error(endpoint: str, expected: str, payload: Any) -> DmsPayloadError:
    got = type(payload).__name__
    return DmsPayloadError(f"{endpoint}: expected {expected}, got {got}", endpoint=endpoint)
