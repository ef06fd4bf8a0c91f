"""DMS JSON -> model rows: the only module that knows how the DMS spells things.

Each endpoint has a *plan*: the row type and, in that type's field order, the canonical API field
name (``docs/dms-api.md``; dotted for nested, e.g. ``location.site``) and how to convert its value.
An operator's ``fields`` renames map a canonical name to the name their DMS uses, and ``values``
maps a DMS's own enum words to the documented ones. Enum words match whatever their case and ``-``,
``_`` or space (``Online``, ``on-line`` and ``ON_LINE`` are all ``ONLINE``); a number or a boolean
is read as its text (``1``, ``true``), so ``values`` can map a DMS's codes. Conversion never raises
on a bad value: a row without its id (a string or an integer) is skipped, an unknown enum value
becomes ``model.OTHER``, anything else missing or of the wrong type becomes ``""``, ``None``,
``False`` or ``()``. A row that repeats an earlier row's id is skipped. Per field, ``Parsed.issues``
counts the rows whose value was an unknown or missing enum word or of a JSON type other than the
documented one, for the quality gate (``gate.py``). ``DmsPayloadError`` is raised only for a payload
of the wrong overall shape.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain, compress, repeat, zip_longest
from operator import eq, itemgetter
from typing import Any

from . import model
from .errors import DmsPayloadError

__all__ = [
    "ENUM_FIELDS",
    "KNOWN_FIELDS",
    "ROW_TYPES",
    "PageRecord",
    "Parsed",
    "Parser",
    "code_text",
    "encodable",
    "enum_converter",
    "enum_key",
    "parse",
    "parse_time",
]


@dataclass(frozen=True, slots=True)
class PageRecord:
    """What one page of an answer made: the next poll takes its rows as they are when the same
    page comes back byte for byte (``digest``) after pages that all did too."""

    digest: str
    rows: int  # rows it added
    items: int
    skipped: int
    issues: tuple[int, ...]  # per field of the plan, as ``Parser`` counts them


@dataclass(frozen=True, slots=True)
class Parsed:
    """The rows of one payload and what was wrong with it (counts, never an exception)."""

    rows: tuple[Any, ...]
    skipped: int  # rows dropped: not an object, or without their id
    unknown_values: int  # enum values that were missing or not known, exported as model.OTHER
    items: int = 0  # items in the payload, usable or not
    #: canonical field -> rows whose value was an unknown enum word or of the wrong JSON type
    issues: Mapping[str, int] = field(default_factory=dict)
    pages: tuple[PageRecord, ...] = ()  # of the pages fed with a digest, in order


# Field kinds. ID fields come first in every row type; a row lacking one is skipped.
_ID, _TEXT, _INT, _FLOAT, _BOOL, _IDS, _TIME = "id", "text", "int", "float", "bool", "ids", "time"

_Spec = tuple[str, Any]  # (canonical API field name, kind or the enum's tuple of values)

#: Per endpoint: its row type and the fields it reads, in the row's order (data, alike by design).
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

#: The row class (``model``) of each endpoint's table.
ROW_TYPES: Mapping[str, type] = {endpoint: kind for endpoint, (kind, _) in _PLANS.items()}
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


def encodable(v: str) -> str:
    """``v`` with every lone surrogate replaced by ``?``: JSON may carry one (``"\\ud800"``),
    which UTF-8 cannot encode, so a page, a file or a scrape holding it would fail later."""
    if v.isascii():
        return v
    return v.encode("utf-8", "replace").decode("utf-8")


def _id(v: Any) -> str | None:
    """A string or an integer (never a float, a boolean, a list or an object) as text."""
    if v.__class__ is str:
        return encodable(v) or None
    if v.__class__ is int and -_MAX_NUMBER < v < _MAX_NUMBER:
        return str(v)
    return None


def _text(v: Any) -> str:
    if v.__class__ is str:
        return encodable(v)
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
    """The form enum words are compared in: lower case without ``-``, ``_`` and spaces; a
    numeric code as ``code_text`` writes it (``-1`` stays apart from ``1``, ``2.0`` is ``2``)."""
    if _NUMERIC.fullmatch(word):
        number = float(word) if "." in word else int(word)
        return code_text(number) or word
    return word.lower().replace("-", "").replace("_", "").replace(" ", "")


#: Numeric text read as a code; bounded, as ``int()`` of thousands of digits raises.
_NUMERIC = re.compile(r"\s*-?\d{1,20}(\.\d{1,20})?\s*", re.ASCII)


def code_text(v: Any) -> str | None:
    """A numeric or boolean enum code as the text ``values`` keys it by: ``1``, ``1.5``,
    ``true``; None for anything else. An integral float is its integer (``2.0`` is ``2``), so
    a code reads the same as a JSON number, as numeric text or as a YAML key."""
    if v is True or v is False:
        return "true" if v else "false"
    if v.__class__ is int:
        return str(v)
    if v.__class__ is float and math.isfinite(v):
        return str(int(v)) if v.is_integer() else repr(v)
    return None


def _enum(
    values: tuple[str, ...], words: Mapping[str, str], issues: list[int], i: int
) -> tuple[Callable[[Any], str], Mapping[str, str]]:
    """A converter from the DMS's spelling to ``values``, and its table of exact spellings
    (looked up first); ``words`` maps a DMS's own words to documented ones. A miss counts in
    ``issues[i]``."""
    known = {v: v for v in values if v != model.OTHER}
    by_key = {enum_key(v): v for v in known}
    for word, meant in words.items():
        by_key[enum_key(word)] = by_key[enum_key(meant)]
    known.update({v.upper(): v for v in known})
    known.update({w: by_key[enum_key(w)] for w in words})
    get = known.get

    def convert(v: Any) -> str:
        if v.__class__ is not str:
            v = code_text(v)
            if v is None:
                issues[i] += 1
                return model.OTHER
        found = get(v) or by_key.get(enum_key(v))
        if found is None:
            issues[i] += 1
            return model.OTHER
        return found

    return convert, known


def enum_converter(endpoint: str, name: str, words: Mapping[str, str]) -> Callable[[Any], str]:
    """How ``parse`` reads the enum field ``name`` of ``endpoint`` with the value map ``words``:
    a known value, or ``model.OTHER`` (for ``--probe``)."""
    kind = dict(_PLANS[endpoint][1])[name]
    return _enum(kind, words, [0], 0)[0]


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


_NONE = type(None)
_STR_OR_NONE = frozenset({str, _NONE})
_INT_OR_NONE = frozenset({int, _NONE})
_MISSING = object()

#: Converts one column: the values of one field in every item of a page, and the set of their
#: types (computed once per column); returns the converted values, in order.
_ColumnConverter = Callable[[list[Any], set[type]], list[Any]]
_Step = tuple[str, tuple[str, ...] | None, _ColumnConverter, frozenset[type] | None, int]


def _as_is(texts: Iterable[str]) -> bool:
    """Whether ``encodable`` returns each of ``texts`` unchanged (equal): all are strings and
    none holds a lone surrogate (which UTF-8 cannot encode)."""
    try:
        "".join(texts).encode("utf-8")
    except (TypeError, UnicodeEncodeError):
        return False
    return True


def _per_value(convert: Callable[[Any], Any]) -> _ColumnConverter:
    """The column converter that converts value by value: the reference for the others, which
    take shortcuts only where they give the same result."""
    return lambda col, _kinds: list(map(convert, col))


def _strings(convert: Callable[[Any], Any]) -> _ColumnConverter:
    """Text or ids: strings as they are (``encodable`` would return an equal one); empty and
    missing values, and any column of other values, through ``convert``."""
    slow = _per_value(convert)

    def column(col: list[Any], kinds: set[type]) -> list[Any]:
        if not kinds <= _STR_OR_NONE or not _as_is(filter(None, col)):
            return slow(col, kinds)
        if not all(col):  # "" or None: text makes both "", an id None
            return [v if v else convert(v) for v in col]
        return col

    return column


def _id_lists(col: list[Any], kinds: set[type]) -> list[Any]:
    """Lists of ids: lists of distinct non-empty strings become tuples as they are."""
    if kinds == {list}:
        every = list(chain.from_iterable(col))
        if all(every) and _as_is(every):  # no empty or non-string id
            tuples = list(map(tuple, col))
            if list(map(len, tuples)) == list(map(len, map(set, tuples))):  # none repeated
                return tuples
    return list(map(_ids, col))


def _times() -> _ColumnConverter:
    """Times: a text's value is looked up in the times already read in this parse (a fleet
    shares few distinct times), so each distinct text is parsed once."""
    cache: dict[str | None, float | None] = {}
    get, slow = cache.get, _per_value(parse_time)

    def column(col: list[Any], kinds: set[type]) -> list[Any]:
        if not kinds <= _STR_OR_NONE:
            return slow(col, kinds)
        out = list(map(get, col, repeat(_MISSING)))
        if _MISSING in out:
            for j, v in enumerate(out):
                if v is _MISSING:
                    out[j] = cache[col[j]] = parse_time(col[j])
        return out

    return column


def _enums(convert: Callable[[Any], str], known: Mapping[str, str]) -> _ColumnConverter:
    """Enum words: exact spellings (or integer codes) looked up all at once, the rest through
    ``convert`` (which counts the misses)."""
    codes = {int(w): v for w, v in known.items() if w.isascii() and w.lstrip("-").isdigit()}
    get, slow = known.get, _per_value(convert)

    def column(col: list[Any], kinds: set[type]) -> list[Any]:
        if kinds <= _INT_OR_NONE:  # no bool in the column: True would find the code 1
            out = list(map(codes.get, col))
        elif kinds <= _STR_OR_NONE:
            out = list(map(get, col))
        else:
            return slow(col, kinds)
        if None in out:
            out = [convert(col[j]) if v is None else v for j, v in enumerate(out)]
        return out

    return column


def _booleans(col: list[Any], kinds: set[type]) -> list[Any]:
    return col if kinds == {bool} else list(map(_bool, col))


def _constant(value: str) -> _ColumnConverter:
    """A converter that ignores the DMS's value."""
    return lambda col, _kinds: [value] * len(col)


def _column_converter(
    kind: Any, words: Mapping[str, str], issues: list[int], i: int
) -> _ColumnConverter:
    """How a column of field ``i`` of this ``kind`` is converted (``words``: its value map)."""
    if isinstance(kind, tuple):
        return _enums(*_enum(kind, words, issues, i))
    makers: dict[str, Callable[[], _ColumnConverter]] = {
        _ID: lambda: _strings(_id),
        _TEXT: lambda: _strings(_text),
        _IDS: lambda: _id_lists,
        _TIME: _times,
        _BOOL: lambda: _booleans,
    }
    maker = makers.get(kind)
    return maker() if maker is not None else _per_value(_CONVERTERS[kind])


class Parser:
    """``parse`` a page at a time: ``feed`` each page's items as it arrives (its JSON can then be
    freed, so a big endpoint never holds all its JSON at once), then ``result``. Rows repeated
    across pages are dropped as within one.

    A page is converted a field at a time (a column of values, one per item), so that what
    repeats per value runs inside ``map``, ``set`` and dict lookups instead of a Python call
    per value: a column of plain values (ASCII text, known enum words, booleans) takes a
    shortcut, any other goes value by value through the same converters as before."""

    def __init__(
        self,
        endpoint: str,
        fields: Mapping[str, str],
        *,
        values: Mapping[str, Mapping[str, str]] | None = None,
        constants: Mapping[str, str] | None = None,
        previous: Sequence[Any] = (),
        previous_pages: Sequence[PageRecord] = (),
    ) -> None:
        """``previous``: the rows of the table held, reused where a row's values are equal;
        ``previous_pages``: the pages that made them (``Parsed.pages`` of the same settings)."""
        self.endpoint = endpoint
        self._row_type, specs = _PLANS[endpoint]
        self._previous = previous
        getter = model.row_values(self._row_type)
        assert getter is not None
        self._values_of = getter[1]
        self._specs = specs
        values = values or {}
        constants = constants or {}
        self._issues = [0] * len(specs)
        plan: list[_Step] = []
        n_ids = 0
        for i, (canonical, kind) in enumerate(specs):
            first, *rest = fields.get(canonical, canonical).split(".")
            if canonical in constants:
                plan.append((first, None, _constant(constants[canonical]), None, i))
                continue
            # an enum's converter counts its own misses
            types = None if isinstance(kind, tuple) else _JSON_TYPES[kind]
            words = values.get(canonical, {})
            convert = _column_converter(kind, words, self._issues, i)
            plan.append((first, tuple(rest) or None, convert, types, i))
            n_ids += kind == _ID
        self._n_ids = n_ids
        self._id_plan, self._value_plan = plan[:n_ids], plan[n_ids:]
        # new rows share their repeated values (a model name, a service id, a group list):
        # one object per distinct text, id or id list
        self._shared: dict[Any, Any] = {}
        self._shareable = tuple(kind in (_ID, _TEXT, _IDS) for _, kind in specs)
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
        self._previous_pages = previous_pages
        self._pages: list[PageRecord] = []
        self._taking = True  # every page so far came back as it was: its rows taken as they are

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

    def feed(self, items: list[Any], digest: str | None = None) -> None:
        """Convert one page of items into rows; ``digest``: of the bytes the page came in.

        While every page comes back with the digest it had at its place in the previous poll,
        its rows are that poll's rows as they are, with the counts it made then: the same bytes
        after the same pages make the same rows and counts, so converting them again would only
        cost (a quiet endpoint's poll is mostly that)."""
        if self._taking:
            if self._take_again(digest):
                return
            self._taking = False  # from here rows are made: those taken count as seen
            self._seen.update(map(self._key_of, self._rows))
        counts = (self._items, self._skipped, len(self._rows), list(self._issues))
        self._convert(items)
        if digest is not None:
            items_before, skipped_before, rows_before, issues_before = counts
            issues = tuple(map(int.__sub__, self._issues, issues_before))
            self._pages.append(PageRecord(digest, len(self._rows) - rows_before,
                                          self._items - items_before,
                                          self._skipped - skipped_before, issues))  # fmt: skip

    def _take_again(self, digest: str | None) -> bool:
        """Take the previous poll's rows of this page if it came back the same; see ``feed``."""
        at = len(self._pages)
        if digest is None or at >= len(self._previous_pages):
            return False
        page = self._previous_pages[at]
        start = len(self._rows)
        if page.digest != digest or start + page.rows > len(self._previous):
            return False
        self._rows.extend(self._previous[start : start + page.rows])
        self._items += page.items
        self._skipped += page.skipped
        self._issues[:] = map(int.__add__, self._issues, page.issues)
        self._pages.append(page)
        return True

    def _key_of(self, row: Any) -> tuple[Any, ...]:
        """The key ``_convert`` dedupes by, of a row made earlier."""
        values = self._values_of(row)
        return values[: self._n_ids] + values[self._n_ids : self._key_size][-1:]

    def _convert(self, items: list[Any]) -> None:
        self._items += len(items)
        if not all(map(isinstance, items, repeat(dict))):
            given = len(items)
            items = [item for item in items if isinstance(item, dict)]
            self._skipped += given - len(items)
        ids = [self._column(step, items) for step in self._id_plan]
        if any(None in col for col in ids):  # rows without their id are skipped unread
            usable = [None not in key for key in zip(*ids, strict=True)]
            self._skipped += usable.count(False)
            items = list(compress(items, usable))
            ids = [list(compress(col, usable)) for col in ids]
        columns = ids + [self._column(step, items) for step in self._value_plan]
        key_columns = columns[: self._n_ids] + columns[self._n_ids : self._key_size][-1:]
        keys = list(zip(*key_columns, strict=True)) if key_columns else [()] * len(items)
        seen = self._seen
        if len(set(keys)) == len(keys) and seen.isdisjoint(keys):
            seen.update(keys)
        else:
            new = []
            for key in keys:  # a repeated row: the first one counts
                new.append(key not in seen)
                seen.add(key)
            self._skipped += new.count(False)
            columns = [list(compress(col, new)) for col in columns]
        self._add_rows(columns)

    def _add_rows(self, columns: list[list[Any]]) -> None:
        """Append a row per item of ``columns``: the previous poll's row at the same place when
        its values are equal (the renderer then sees it unchanged by identity), else a new one.
        Comparing values before making a row spares making, sharing and freeing a row per
        unchanged item, which also keeps them from piling up for the garbage collector."""
        rows = self._rows
        start, count = len(rows), len(columns[0])
        previous = self._previous[start : start + count]
        same = list(map(eq, map(self._values_of, previous), zip(*columns, strict=True)))
        if len(previous) == count and all(same):
            rows.extend(previous)
            return
        same += [False] * (count - len(same))
        changed = [j for j, equal in enumerate(same) if not equal]
        if len(changed) < count:
            pick = itemgetter(*changed, 0)  # the extra index keeps the result a tuple
            columns = [pick(col)[:-1] for col in columns]
        setdefault = self._shared.setdefault
        columns = [
            list(map(setdefault, col, col)) if share else col
            for col, share in zip(columns, self._shareable, strict=True)
        ]
        made = map(self._row_type, *columns)
        rows.extend(next(made) if not equal else old for old, equal in zip_longest(previous, same))

    def _column(self, step: _Step, items: list[dict[str, Any]]) -> list[Any]:
        """The converted values of one plan step in every item; a value of an undocumented JSON
        type counts in the issues (converted all the same where it can be)."""
        key, rest, convert, types, i = step
        col: list[Any] = list(map(dict.get, items, repeat(key)))
        for part in rest or ():
            kinds = set(map(type, col))
            if kinds <= {dict}:
                col = list(map(dict.get, col, repeat(part)))
                continue
            # a parent that is not an object: this value has no place
            self._issues[i] += sum(v is not None and not isinstance(v, dict) for v in col)
            col = [v.get(part) if isinstance(v, dict) else None for v in col]
        kinds = set(map(type, col))
        if types is not None and not kinds - {_NONE} <= types:
            self._issues[i] += sum(v is not None and v.__class__ not in types for v in col)
        return convert(col, kinds)

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
            pages=tuple(self._pages),
        )


def _shape_error(endpoint: str, expected: str, payload: Any) -> DmsPayloadError:
    got = type(payload).__name__
    return DmsPayloadError(f"{endpoint}: expected {expected}, got {got}", endpoint=endpoint)
