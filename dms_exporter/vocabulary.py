"""DMS JSON -> model rows: the only module that knows how the DMS spells things.

Each endpoint has a *plan*: the row type and, in that type's field order, the canonical API field
name (``docs/dms-api.md``; dotted for nested, e.g. ``location.site``) and how to convert its value.
An operator's ``fields`` renames map a canonical name to the name their DMS uses, and ``values``
maps a DMS's own enum words to the documented ones. Enum words match whatever their case and ``-``,
``_`` or space (``Online``, ``on-line`` and ``ON_LINE`` are all ``ONLINE``). Conversion never raises
on a bad value: a row without its id (a string or an integer) is skipped, an unknown enum value
becomes ``model.OTHER``, anything else missing or of the wrong type becomes ``""``, ``None``,
``False`` or ``()``. A row that repeats an earlier row's id is skipped. Per field, ``Parsed.issues``
counts the rows whose value was an unknown or missing enum word or of a JSON type other than the
documented one, for the quality gate (``gate.py``). ``DmsPayloadError`` is raised only for a payload
of the wrong overall shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import model
from .errors import DmsPayloadError

__all__ = [
    "ENUM_FIELDS",
    "KNOWN_FIELDS",
    "Parsed",
    "Parser",
    "enum_converter",
    "enum_key",
    "parse",
    "parse_time",
]


@dataclass(frozen=True, slots=True)
class Parsed:
    """The rows of one payload and what was wrong with it (counts, never an exception)."""

    rows: tuple[Any, ...]
    skipped: int  # rows dropped: not an object, or without their id
    unknown_values: int  # enum values that were missing or not known, exported as model.OTHER
    items: int = 0  # items in the payload, usable or not
    #: canonical field -> rows whose value was an unknown enum word or of the wrong JSON type
    issues: Mapping[str, int] = field(default_factory=dict)


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
#: Per endpoint, its enum fields and their documented values (upper case, as the DMS sends them).
ENUM_FIELDS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    endpoint: {
        name: tuple(v.upper() for v in kind if v != model.OTHER)
        for name, kind in specs
        if isinstance(kind, tuple)
    }
    for endpoint, (_, specs) in _PLANS.items()
}
#: The JSON types each kind of field is documented with; any other non-null type is an issue.
_JSON_TYPES: dict[str, frozenset[type]] = {
    _ID: frozenset({str, int}),
    _TEXT: frozenset({str}),
    _INT: frozenset({int}),
    _FLOAT: frozenset({int, float}),
    _BOOL: frozenset({bool}),
    _IDS: frozenset({list}),
    _TIME: frozenset({str, int, float}),
}
_ENUM_TYPES = frozenset({str})


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
    """A string or an integer (never a float, a boolean, a list or an object) as text."""
    if v.__class__ is str:
        return _utf8(v) or None
    if v.__class__ is int and -_MAX_NUMBER < v < _MAX_NUMBER:
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


#: A number of at least this many is epoch milliseconds, below it epoch seconds: 1e11 seconds is
#: the year 5138 and 1e11 milliseconds is March 1973, so no DMS time falls on the wrong side.
_EPOCH_MS_FROM = 1e11


def parse_time(v: Any) -> float | None:
    """A time -> Unix seconds, else None; the form is detected per value.

    ISO 8601 text (``Z`` or an offset, with or without a fraction; no offset is UTC, as the DMS
    sends UTC), or a number (or numeric text) of epoch seconds or epoch milliseconds.
    """
    if v.__class__ is str:
        try:
            t = datetime.fromisoformat(v)
        except ValueError:
            v = _float(v)
        else:
            if t.tzinfo is None:
                t = t.replace(tzinfo=UTC)
            return t.timestamp()
    seconds = _float(v)
    if seconds is None or seconds <= 0:
        return None
    return seconds / 1000 if seconds >= _EPOCH_MS_FROM else seconds


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    _ID: _id,
    _TEXT: _text,
    _INT: _int,
    _FLOAT: _float,
    _BOOL: _bool,
    _IDS: _ids,
    _TIME: parse_time,
}


def enum_key(word: str) -> str:
    """The form enum words are compared in: lower case without ``-``, ``_`` and spaces."""
    return word.lower().replace("-", "").replace("_", "").replace(" ", "")


def _enum(
    values: tuple[str, ...], words: Mapping[str, str], issues: list[int], i: int
) -> Callable[[Any], str]:
    """A converter from the DMS's spelling to ``values``; ``words`` maps a DMS's own words to
    documented ones. A miss counts in ``issues[i]``; exact spellings are looked up first."""
    known = {v: v for v in values if v != model.OTHER}
    by_key = {enum_key(v): v for v in known}
    for word, meant in words.items():
        by_key[enum_key(word)] = by_key[enum_key(meant)]
    known.update({v.upper(): v for v in known})
    known.update({w: by_key[enum_key(w)] for w in words})
    get = known.get

    def convert(v: Any) -> str:
        if v.__class__ is not str:
            issues[i] += 1
            return model.OTHER
        found = get(v) or by_key.get(enum_key(v))
        if found is None:
            issues[i] += 1
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


def enum_converter(endpoint: str, name: str, words: Mapping[str, str]) -> Callable[[Any], str]:
    """How ``parse`` reads the enum field ``name`` of ``endpoint`` with the value map ``words``:
    a known value, or ``model.OTHER`` (for ``--probe``)."""
    kind = dict(_PLANS[endpoint][1])[name]
    return _enum(kind, words, [0], 0)


def _constant(value: str) -> Callable[[Any], str]:
    """A converter that ignores the DMS's value."""
    return lambda _v: value


_Step = tuple[str, tuple[str, ...] | None, Callable[[Any], Any], frozenset[type] | None, int]


def parse(
    endpoint: str,
    payload: Any,
    fields: Mapping[str, str],
    now: float,
    *,
    values: Mapping[str, Mapping[str, str]] | None = None,
    constants: Mapping[str, str] | None = None,
) -> Parsed:
    """Turn one endpoint's JSON into model rows.

    ``payload`` is a dict for ``system`` and a list of objects for every other endpoint (the
    client has already unwrapped paging envelopes); any other shape raises ``DmsPayloadError``.
    ``fields`` maps canonical API field names to the names this DMS uses; ``values`` maps, per
    canonical enum field, this DMS's words to documented ones; ``constants`` gives canonical
    enum fields one value for every row whatever the DMS says (an alarm listed by the
    active-alarms call is active). ``now`` is the poll time; no rule needs it yet, it is
    accepted so that callers need not change when one does.
    """
    del now
    parser = Parser(endpoint, fields, values=values, constants=constants)
    parser.feed_payload(payload)
    return parser.result()


class Parser:
    """``parse`` a page at a time: ``feed`` each page's items as it arrives (its JSON can then be
    freed, so a big endpoint never holds all its JSON at once), then ``result``. Rows repeated
    across pages are dropped as within one."""

    def __init__(
        self,
        endpoint: str,
        fields: Mapping[str, str],
        *,
        values: Mapping[str, Mapping[str, str]] | None = None,
        constants: Mapping[str, str] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._row_type, specs = _PLANS[endpoint]
        self._specs = specs
        values = values or {}
        constants = constants or {}
        self._issues = [0] * len(specs)
        plan: list[_Step] = []
        n_ids = 0
        shared: dict[Any, Any] = {}  # one object per distinct text value, id or id list
        for i, (canonical, kind) in enumerate(specs):
            first, *rest = fields.get(canonical, canonical).split(".")
            if canonical in constants:
                plan.append((first, None, _constant(constants[canonical]), None, i))
                continue
            if isinstance(kind, tuple):
                convert = _enum(kind, values.get(canonical, {}), self._issues, i)
                types: frozenset[type] | None = None  # the converter counts its own misses
            else:
                convert, types = _CONVERTERS[kind], _JSON_TYPES[kind]
            if kind in (_ID, _TEXT, _IDS):
                convert = _sharing(convert, shared)
            plan.append((first, tuple(rest) or None, convert, types, i))
            n_ids += kind == _ID
        self._n_ids = n_ids
        self._id_plan, self._value_plan = plan[:n_ids], plan[n_ids:]
        # A repeated id would repeat a series and make Prometheus reject the whole scrape. Two
        # authorization rows of one device and service may differ in source, so source joins
        # their key; a row repeated across pages is still counted once.
        self._key_size = n_ids
        if endpoint == "authorizations":
            self._key_size = 1 + next(i for i, (name, _) in enumerate(specs) if name == "source")
        self._seen: set[tuple[Any, ...]] = set()
        self._rows: list[Any] = []
        self._skipped = 0
        self._items = 0

    def feed_payload(self, payload: Any) -> None:
        """Feed a whole answer: a dict for ``system``, a list of objects for the others."""
        if self.endpoint == "system":
            if not isinstance(payload, dict):
                raise _shape_error(self.endpoint, "an object", payload)
            self.feed([payload])
        elif isinstance(payload, list):
            self.feed(payload)
        else:
            raise _shape_error(self.endpoint, "a list of objects", payload)

    def feed(self, items: list[Any]) -> None:
        """Convert one page of items into rows."""
        issues, n_ids, key_size, seen = self._issues, self._n_ids, self._key_size, self._seen
        id_plan, value_plan, row_type = self._id_plan, self._value_plan, self._row_type
        rows = self._rows
        self._items += len(items)
        for item in items:
            if not isinstance(item, dict):
                self._skipped += 1
                continue
            row = [_get(item, step, issues) for step in id_plan]
            if None in row:
                self._skipped += 1
                continue
            row += [_get(item, step, issues) for step in value_plan]
            row_key = tuple(row[:n_ids]) + tuple(row[n_ids:key_size][-1:])
            if row_key in seen:
                self._skipped += 1
                continue
            seen.add(row_key)
            rows.append(row_type(*row))

    def result(self) -> Parsed:
        """The rows and counts of everything fed."""
        specs, issues = self._specs, self._issues
        by_field = {name: n for (name, kind), n in zip(specs, issues, strict=True) if n}
        unknown = sum(
            n for (_, kind), n in zip(specs, issues, strict=True) if isinstance(kind, tuple)
        )
        return Parsed(
            rows=tuple(self._rows),
            skipped=self._skipped,
            unknown_values=unknown,
            items=self._items,
            issues=by_field,
        )


def _get(item: dict[str, Any], step: _Step, issues: list[int]) -> Any:
    """The converted value of one plan step in ``item``; a value of an undocumented JSON type
    counts in ``issues`` (converted all the same where it can be)."""
    key, rest, convert, types, i = step
    v = item.get(key)
    if rest is not None:
        for part in rest:
            if not isinstance(v, dict):
                if v is not None:  # a parent that is not an object: this value has no place
                    issues[i] += 1
                    v = None
                break
            v = v.get(part)
    if types is not None and v is not None and v.__class__ not in types:
        issues[i] += 1
    return convert(v)


def _shape_error(endpoint: str, expected: str, payload: Any) -> DmsPayloadError:
    got = type(payload).__name__
    return DmsPayloadError(f"{endpoint}: expected {expected}, got {got}", endpoint=endpoint)
