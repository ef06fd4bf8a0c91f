"""Faults on demand: what can go wrong per endpoint, the book of active faults, and the pure
transformations that damage items.

A fault is ``(endpoint, kind, params)`` plus ``count`` (apply to that many requests, then
vanish; ``None`` = until cleared) and ``skip`` (let that many requests through first). The
endpoint ``*`` matches every endpoint, ``login`` included.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .catalog import ENDPOINTS, UNKNOWN_ENUMS
from .clock import parse_iso

#: Kinds and their parameters with defaults.
FAULT_KINDS: dict[str, dict[str, Any]] = {
    "latency": {"seconds": 1.0},
    "status": {"status": 503, "retry_after": None, "code": None, "message": None, "location": None},
    "html": {"status": 200},
    "truncated": {"fraction": 0.5},
    "drop_connection": {"before_headers": False},
    "wrong_types": {"every": 1, "where": "items"},
    "unknown_enums": {"every": 1},
    "missing_fields": {"every": 1, "fields": None, "null": False},
    "unknown_ids": {"every": 1},
    "endless_paging": {},
    "expire_token": {},
    "revoke_token": {},
}
#: Kinds applied before the credentials are checked; the others apply after a good login.
TOKEN_KINDS = ("expire_token", "revoke_token")
#: Kinds that replace the response (the first one in the book wins).
RESPONSE_KINDS = ("status", "html", "drop_connection", "truncated")
#: Kinds that damage items, applied in this order.
ITEM_KINDS = ("unknown_ids", "unknown_enums", "missing_fields", "wrong_types")
#: The positional argument of the compact syntax (``devices=status:503``), per kind.
MAIN_PARAM = {"latency": "seconds", "status": "status", "html": "status", "truncated": "fraction"}

#: Fields removed by ``missing_fields`` when no ``fields`` are given.
DEFAULT_MISSING: dict[str, tuple[str, ...]] = {
    "login": ("token",),
    "system": ("version", "role", "uptimeSeconds"),
    "devices": (
        "connectionState",
        "lastContact",
        "model",
        "location",
        "groupIds",
        "authorizationState",
    ),
    "groups": ("name", "parentId", "deviceCount"),
    "services": ("name", "programNumber", "tier"),
    "authorization_sets": ("name", "type", "enabled", "serviceIds", "deviceCount"),
    "schedule_authorizations": ("state", "startTime", "endTime", "deviceCount"),
    "authorizations": ("serviceId", "source", "authorized"),
    "destinations": ("deviceId", "type", "status", "enabled"),
    "alarms": ("severity", "state", "assertedTime", "code"),
}
#: Fields that refer to another collection, replaced by ``unknown_ids``.
REFERENCE_FIELDS: dict[str, tuple[str, ...]] = {
    "devices": ("groupIds",),
    "groups": ("parentId",),
    "services": ("id",),
    "authorization_sets": ("serviceIds", "targetGroupIds", "targetDeviceIds"),
    "schedule_authorizations": ("authorizationSetId", "serviceIds", "targetGroupIds"),
    "authorizations": ("deviceId", "serviceId", "authorizationSetId"),
    "destinations": ("deviceId", "serviceId"),
    "alarms": ("deviceId",),
}
_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class FaultError(ValueError):
    """A fault that cannot be set: unknown endpoint, kind or parameter, or a bad value."""


@dataclass
class Fault:
    """One fault in the book."""

    id: str
    endpoint: str
    kind: str
    params: dict[str, Any]
    count: int | None = None  # requests left to damage; None = until cleared
    skip: int = 0  # requests still to let through first
    hits: int = 0  # requests damaged so far

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "endpoint": self.endpoint,
            "kind": self.kind,
            "params": self.params,
            "count": self.count,
            "skip": self.skip,
            "hits": self.hits,
        }


@dataclass
class FaultBook:
    """The faults in force, in the order they were added."""

    faults: list[Fault] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def add(
        self, endpoint: str, kind: str, count: int | None = None, skip: int = 0, **params: Any
    ) -> Fault:
        """Validate and add a fault; raises ``FaultError``."""
        if endpoint != "*" and endpoint not in ENDPOINTS:
            raise FaultError(f"unknown endpoint {endpoint!r}; one of *, {', '.join(ENDPOINTS)}")
        if kind not in FAULT_KINDS:
            raise FaultError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        unknown = sorted(set(params) - set(FAULT_KINDS[kind]))
        if unknown:
            raise FaultError(f"fault {kind!r} takes no parameter {', '.join(unknown)}")
        if count is not None and (not isinstance(count, int) or count < 1):
            raise FaultError("count must be a positive integer or null")
        if not isinstance(skip, int) or skip < 0:
            raise FaultError("skip must be a non-negative integer")
        merged = {**FAULT_KINDS[kind], **params}
        _check_params(kind, merged)
        fault = Fault(f"f-{next(self._ids)}", endpoint, kind, merged, count, skip)
        self.faults.append(fault)
        return fault

    def clear(self, fault_id: str | None = None) -> int:
        """Remove one fault, or all; returns how many went."""
        before = len(self.faults)
        self.faults = [f for f in self.faults if fault_id is not None and f.id != fault_id]
        return before - len(self.faults)

    def take(
        self, endpoint: str, kinds: tuple[str, ...] | None = None, exclude: tuple[str, ...] = ()
    ) -> list[Fault]:
        """The faults that hit this request now (counted; one-shot faults used up go)."""
        hit = []
        for fault in self.faults:
            if fault.endpoint not in ("*", endpoint) or fault.kind in exclude:
                continue
            if kinds is not None and fault.kind not in kinds:
                continue
            if fault.skip:
                fault.skip -= 1
                continue
            fault.hits += 1
            if fault.count is not None:
                fault.count -= 1
            hit.append(fault)
        if hit:
            self.faults = [f for f in self.faults if f.count is None or f.count > 0]
        return hit


def _check_params(kind: str, p: dict[str, Any]) -> None:
    def number(name: str, low: float, high: float, integer: bool = False) -> None:
        value = p[name]
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok or not low <= value <= high:
            raise FaultError(f"{kind}: {name} must be a number in [{low}, {high}]")

    if kind == "latency":
        number("seconds", 0, 3600)
    elif kind in ("status", "html"):
        number("status", 100, 599, integer=True)
        if p.get("retry_after") is not None:
            number("retry_after", 0, 86400)
    elif kind == "truncated":
        number("fraction", 0, 0.999)
    elif kind in ITEM_KINDS:
        number("every", 1, 10**9, integer=True)
    if kind == "wrong_types" and p["where"] not in ("items", "body"):
        raise FaultError("wrong_types: where must be items or body")
    if (
        kind == "missing_fields"
        and p["fields"] is not None
        and not (isinstance(p["fields"], list) and all(isinstance(f, str) for f in p["fields"]))
    ):
        raise FaultError("missing_fields: fields must be a list of field names")


def parse_fault_spec(spec: str) -> dict[str, Any]:
    """Parse the compact syntax ``ENDPOINT=KIND[:VALUE][,key=value...]`` into the keyword
    arguments of ``FaultBook.add``. Values are JSON scalars when they parse as such, else text;
    ``fields`` takes names joined with ``+``. Example: ``alarms=status:429,retry_after=5,count=2``.
    """
    endpoint, sep, rest = spec.partition("=")
    if not sep or not rest:
        raise FaultError(f"fault {spec!r}: expected ENDPOINT=KIND[:VALUE][,key=value...]")
    head, *pairs = rest.split(",")
    kind, colon, main = head.partition(":")
    args: dict[str, Any] = {"endpoint": endpoint.strip(), "kind": kind.strip()}
    if colon:
        if kind not in MAIN_PARAM:
            raise FaultError(f"fault {spec!r}: {kind} takes no :VALUE")
        args[MAIN_PARAM[kind]] = _scalar(main)
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq:
            raise FaultError(f"fault {spec!r}: expected key=value, got {pair!r}")
        key = key.strip()
        args[key] = value.split("+") if key == "fields" else _scalar(value)
    return args


def _scalar(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


# -- item damage: pure functions on decoded JSON -----------------------------------------


def wrong_types(item: dict[str, Any]) -> dict[str, Any]:
    """Numbers and booleans as strings, digit strings and times as numbers, objects as lists,
    lists as comma-joined text."""
    out: dict[str, Any] = {}
    for key, value in item.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            value = str(value)
        elif isinstance(value, str) and value.isdigit():
            value = int(value)
        elif isinstance(value, str) and _ISO.match(value):
            value = int(parse_iso(value))
        elif isinstance(value, dict):
            value = list(value.values())
        elif isinstance(value, list):
            value = ",".join(str(v) for v in value)
        out[key] = value
    return out


def unknown_enums(item: dict[str, Any]) -> dict[str, Any]:
    """Every enum field set to a value no client knows."""
    return {k: UNKNOWN_ENUMS.get(k, v) if v is not None else v for k, v in item.items()}


def missing_fields(
    item: dict[str, Any], endpoint: str, fields: list[str] | None, null: bool
) -> dict[str, Any]:
    """Drop (or, with ``null``, null out) the given fields, or the endpoint's default ones."""
    names = fields if fields is not None else DEFAULT_MISSING.get(endpoint, ())
    if null:
        return {k: None if k in names else v for k, v in item.items()}
    return {k: v for k, v in item.items() if k not in names}


def unknown_ids(item: dict[str, Any], endpoint: str, serial: int) -> dict[str, Any]:
    """Every reference to another collection replaced by an id nobody knows."""
    out = dict(item)
    for key in REFERENCE_FIELDS.get(endpoint, ()):
        value = out.get(key)
        if isinstance(value, str):
            out[key] = _unknown(value, serial)
        elif isinstance(value, list):
            out[key] = [_unknown(v, serial) for v in value] or [_unknown(key, serial)]
    return out


def _unknown(value: str, serial: int) -> str:
    prefix = value.split("-", 1)[0] if "-" in value else "x"
    return f"{prefix}-unknown-{serial}"


def damage(
    item: dict[str, Any], faults: list[Fault], endpoint: str, position: int
) -> dict[str, Any]:
    """Apply the item-damaging faults that select this item (``position % every == 0``)."""
    for fault in sorted(faults, key=lambda f: ITEM_KINDS.index(f.kind)):
        p = fault.params
        if position % p["every"]:
            continue
        if fault.kind == "unknown_ids":
            item = unknown_ids(item, endpoint, position)
        elif fault.kind == "unknown_enums":
            item = unknown_enums(item)
        elif fault.kind == "missing_fields":
            item = missing_fields(item, endpoint, p["fields"], p["null"])
        elif fault.kind == "wrong_types" and p["where"] == "items":
            item = wrong_types(item)
    return item
