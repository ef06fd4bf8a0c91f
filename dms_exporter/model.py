"""Domain rows the exporter holds in memory, one frozen dataclass per DMS object.

Rows come out of ``vocabulary`` (the only module that knows DMS JSON) and go into ``render``.
Enum fields hold the lower-case spelling of a known value, or ``OTHER`` for a value the DMS sent
that we do not know; times are Unix seconds (float) or ``None``; missing text is ``""``.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

OTHER = "other"

#: Default path and poll interval (seconds) of each endpoint, as in docs/dms-api.md.
ENDPOINT_DEFAULTS: Mapping[str, tuple[str, float]] = {
    "system": ("/system/info", 60.0),
    "devices": ("/devices", 60.0),
    "groups": ("/groups", 300.0),
    "services": ("/services", 300.0),
    "authorization_sets": ("/authorization-sets", 300.0),
    "schedule_authorizations": ("/schedule-authorizations", 60.0),
    "authorizations": ("/authorizations", 600.0),
    "destinations": ("/destinations", 300.0),
    "alarms": ("/alarms", 30.0),
}
#: Endpoint names, in API table order.
ENDPOINTS: tuple[str, ...] = tuple(ENDPOINT_DEFAULTS)

CONNECTION_STATES = ("online", "offline", "unknown", "never_connected", OTHER)
CONTROL_MODES = ("dms", "local", OTHER)
DEVICE_TYPES = ("ird", "xos_edge", OTHER)
DEVICE_AUTHORIZATION_STATES = ("authorized", "partially_authorized", "deauthorized", OTHER)
SYSTEM_ROLES = ("primary", "backup", "standalone", OTHER)
AUTHORIZATION_SET_TYPES = ("permanent", "schedule", OTHER)
SCHEDULE_STATES = ("pending", "active", "expired", "cancelled", OTHER)
AUTHORIZATION_SOURCES = ("permanent", "schedule", OTHER)
DESTINATION_TYPES = ("ip", "asi", "sdi", OTHER)
DESTINATION_STATUSES = ("ok", "error", "disabled", OTHER)
ALARM_SOURCES = ("device", "dms", OTHER)
ALARM_SEVERITIES = ("critical", "major", "minor", "warning", "info", OTHER)
ALARM_STATES = ("active", "cleared", OTHER)


@dataclass(frozen=True, slots=True)
class SystemInfo:
    name: str
    version: str
    role: str
    server_time: float | None
    uptime_seconds: float | None
    licensed_devices: int | None


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    name: str
    unit_address: str
    serial_number: str
    mac_address: str
    model: str
    device_type: str
    firmware_version: str
    connection_state: str
    control_mode: str
    last_contact: float | None
    group_ids: tuple[str, ...]
    site: str
    region: str
    authorization_state: str


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    name: str
    parent_id: str
    device_count: int | None


@dataclass(frozen=True, slots=True)
class Service:
    id: str
    name: str
    program_number: int | None
    tier: str


# Authorization sets and schedule authorizations share target fields but stay two row types: the
# DMS serves them from two endpoints (docs/dms-api.md), and each row mirrors its own.
@dataclass(frozen=True, slots=True)
class AuthorizationSet:
    id: str
    name: str
    type: str
    enabled: bool
    service_ids: tuple[str, ...]
    target_group_ids: tuple[str, ...]
    target_device_ids: tuple[str, ...]
    device_count: int | None
    last_modified: float | None


@dataclass(frozen=True, slots=True)
class ScheduleAuthorization:
    id: str
    name: str
    authorization_set_id: str
    service_ids: tuple[str, ...]
    target_group_ids: tuple[str, ...]
    target_device_ids: tuple[str, ...]
    start_time: float | None
    end_time: float | None
    state: str
    device_count: int | None


@dataclass(frozen=True, slots=True)
class Authorization:
    device_id: str
    service_id: str
    authorization_set_id: str
    schedule_authorization_id: str
    source: str
    authorized: bool
    valid_from: float | None
    valid_to: float | None


@dataclass(frozen=True, slots=True)
class Destination:
    id: str
    device_id: str
    name: str
    type: str
    enabled: bool
    service_id: str
    ip_address: str
    ip_port: int | None
    status: str


@dataclass(frozen=True, slots=True)
class Alarm:
    id: str
    device_id: str
    source: str
    fault_object: str
    code: str
    description: str
    severity: str
    state: str
    asserted_time: float | None
    cleared_time: float | None
    acknowledged: bool


Row = TypeVar("Row")


@dataclass(frozen=True, slots=True)
class Table(Generic[Row]):
    """One endpoint's whole answer from one successful poll. Replaced, never mutated."""

    endpoint: str
    rows: tuple[Row, ...]
    fetched_at: float


RowValues = tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]
_ROW_VALUES: dict[type, RowValues | None] = {}


def row_values(kind: type) -> RowValues | None:
    """A row class's field names and a getter of all of a row's values at once (None if
    ``kind`` is not a row class of several fields); made once per class."""
    try:
        return _ROW_VALUES[kind]
    except KeyError:
        names = (
            tuple(f.name for f in dataclasses.fields(kind))
            if dataclasses.is_dataclass(kind)
            else ()
        )
        getter = (names, operator.attrgetter(*names)) if len(names) > 1 else None
        _ROW_VALUES[kind] = getter
        return getter


def reuse_unchanged(
    old: Table | None, rows: tuple[Row, ...], *, compared: bool = False
) -> tuple[tuple[Row, ...], bool]:
    """``rows`` with each row equal to the old table's row at the same place replaced by that
    old row, and whether anything differs. Equal rows then are the same objects: the new
    parse's copies are freed, and the renderer sees an unchanged row by identity. ``compared``:
    the parser did that already (a row not the old one there differs from it)."""
    if old is None:
        return rows, True
    old_rows = old.rows
    if not compared:
        kept = [
            previous if previous is row or previous == row else row
            for previous, row in zip(old_rows, rows, strict=False)
        ]
        rows = (*kept, *rows[len(kept) :])
    changed = len(rows) != len(old_rows) or any(map(operator.is_not, rows, old_rows))
    return rows, changed


@dataclass(frozen=True, slots=True)
class EndpointStatus:
    """What ``/api/v1/endpoints`` and the health metrics show for one endpoint."""

    endpoint: str
    path: str
    enabled: bool
    interval: float
    up: bool  # the last poll succeeded
    stale: bool  # the last good data outlived stale_after: shown marked old, or dropped
    last_poll: float | None  # Unix time the last poll ended
    last_success: float | None
    last_duration: float | None  # seconds
    last_result: str  # "ok", one of errors.ERROR_REASONS, "disabled", or "pending"
    last_error: str  # short message of the last failure, secrets removed; "" if none
    rows: int  # rows in the table held now
    polls_total: int
    errors_total: Mapping[str, int]  # reason -> count
    rows_skipped_total: int
    unknown_values_total: int
    data_time: float | None = None  # Unix time the data shown was read from the DMS; None: none
    restored: bool = False  # the data shown was read back from disk at start, not polled yet


#: The ``result`` label values of ``dms_exporter_logins_total``.
LOGIN_RESULTS: tuple[str, ...] = ("success", "refused", "unreachable", "error")


@dataclass(slots=True)
class LoginState:
    """Logins to the DMS: counts by result and the backoff after failures. One per exporter,
    handed from client to client so the counts continue (the DMS client writes it)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LOGIN_RESULTS, 0))
    next_attempt: float | None = None  # Unix time before which no login is tried (backoff)
    last_result: str = ""  # one of LOGIN_RESULTS, "" before the first login
    refusals: int = 0  # refused logins in a row; the backoff doubles with each


@dataclass(slots=True)
class DmsLinks:
    """Which DMS URL is in use, which answer and which say they are a standby: written by the
    DMS client for the metrics. ``urls`` lists the main first, then its standbys in failover
    order."""

    urls: tuple[str, ...] = ()
    active: str = ""
    reachable: dict[str, bool] = field(default_factory=dict)  # url -> its last request answered
    standby: dict[str, bool] = field(default_factory=dict)  # url -> its last role said standby
