"""The exporter's configuration as a frozen tree of dataclasses; nothing is mutated after loading
(a reload builds a new ``Config``). ``docs/configuration.md`` documents every key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .shape import Envelope, GateSettings, LoginShape, Paging, TokenHeader

__all__ = ["Config", "DmsSettings", "EndpointSettings", "MetricsSettings", "TlsSettings"]


@dataclass(frozen=True, slots=True)
class TlsSettings:
    verify: bool = True
    ca_file: str | None = None


@dataclass(frozen=True, slots=True)
class DmsSettings:
    """How to reach and log in to the DMS."""

    url: str  # base URL including the API prefix, e.g. https://dms:8443/dms-api/v1 (the main)
    username: str
    password: str = field(repr=False)
    auth: Literal["token", "basic", "api_key"] = "token"
    login_path: str = "/auth/login"
    login: LoginShape = field(default_factory=LoginShape)  # the login request and answer
    token_header: TokenHeader = field(default_factory=TokenHeader)  # how the token is sent
    api_key_header: str = "X-API-Key"  # auth api_key: the header that carries the password
    proxy: Literal["environment", "direct", "url"] = "environment"
    proxy_url: str | None = None
    tls: TlsSettings = TlsSettings()
    timeout: float = 10.0  # seconds, per HTTP request
    page_size: int = 1000
    max_pages: int = 1000
    max_concurrency: int = 2  # DMS requests in flight at once, over all endpoints
    login_backoff_initial: float = 30.0  # seconds without a login after a failed one
    login_backoff_max: float = 900.0  # the backoff after refusals in a row doubles up to this
    standby_urls: tuple[str, ...] = ()  # further members of a redundant DMS, in failover order
    failback_interval: float = 60.0  # seconds between checks whether the main is back
    failover_hold: float = 300.0  # seconds a member that said standby is not moved to again


#: Default ``drop_after``: an endpoint's last good data stays exported (marked old) for a day
#: without a successful poll, longer than any DMS restart, maintenance or night-long outage.
DROP_AFTER = 86400.0


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    """One GET endpoint: whether and how often to poll it, and how its JSON is spelled."""

    name: str  # one of model.ENDPOINTS
    enabled: bool
    interval: float  # seconds between polls
    timeout: float  # seconds for a whole poll (all pages); always below interval
    stale_after: float  # seconds after the last success when the table is marked old
    path: str  # relative to DmsSettings.url
    params: Mapping[str, str]  # extra query parameters
    fields: Mapping[str, str]  # API field name from docs/dms-api.md -> name this DMS uses
    #                             (dotted for nested: "location.site")
    envelope: Envelope = field(default_factory=Envelope)  # where a list keeps items and total
    paging: Paging = field(default_factory=Paging)
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # enum word maps
    constants: Mapping[str, str] = field(default_factory=dict)  # enum field -> fixed value
    gate: GateSettings = field(default_factory=GateSettings)
    #: seconds after the last success when the old table's series are dropped; None: never
    drop_after: float | None = DROP_AFTER


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """Which families are exported (``selection``): a preset and single families switched."""

    preset: str = "full"
    disabled: frozenset[str] = frozenset()  # OpenMetrics family names left out


@dataclass(frozen=True, slots=True)
class Config:
    dms: DmsSettings
    endpoints: Mapping[str, EndpointSettings]  # every name in model.ENDPOINTS
    display_names: Mapping[str, str]  # device id -> operator's custom description
    allow_schedule_authorization: bool = True
    alarm_retrieval: Literal["active", "all"] = "active"
    refresh_min_gap: float = 10.0  # seconds after a poll before a refresh on demand polls again
    metrics: MetricsSettings = MetricsSettings()
    source: str = "<built-in>"  # the file it came from, for messages
