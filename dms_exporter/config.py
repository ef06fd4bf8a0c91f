"""The exporter's configuration: YAML in, a frozen tree of dataclasses out.

``load_config(path)`` reads and validates a file and raises ``ConfigError`` naming the file, the
key and the problem. Nothing here is mutated after loading; a reload builds a new ``Config``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .model import ENDPOINTS

__all__ = [
    "ENDPOINT_DEFAULTS",
    "Config",
    "DmsSettings",
    "EndpointSettings",
    "TlsSettings",
    "load_config",
]

#: Default path and poll interval (seconds) of each endpoint, as in ../shared/dms-api.md.
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
assert tuple(ENDPOINT_DEFAULTS) == ENDPOINTS


@dataclass(frozen=True, slots=True)
class TlsSettings:
    verify: bool = True
    ca_file: str | None = None


@dataclass(frozen=True, slots=True)
class DmsSettings:
    """How to reach and log in to the DMS."""

    url: str  # base URL including the API prefix, e.g. https://dms:8443/dms-api/v1
    username: str
    password: str = field(repr=False)
    auth: Literal["token", "basic"] = "token"
    login_path: str = "/auth/login"
    proxy: Literal["environment", "direct", "url"] = "environment"
    proxy_url: str | None = None
    tls: TlsSettings = TlsSettings()
    timeout: float = 10.0  # seconds, per HTTP request
    page_size: int = 1000
    max_pages: int = 1000
    max_concurrency: int = 4  # DMS requests in flight at once, over all endpoints


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    """One GET endpoint: whether and how often to poll it, and how its JSON is spelled."""

    name: str  # one of model.ENDPOINTS
    enabled: bool
    interval: float  # seconds between polls
    timeout: float  # seconds for a whole poll (all pages); always below interval
    stale_after: float  # seconds after the last success when the table's series are dropped
    path: str  # relative to DmsSettings.url
    params: Mapping[str, str]  # extra query parameters
    fields: Mapping[str, str]  # API field name from dms-api.md -> name this DMS uses
    #                             (dotted for nested: "location.site")


@dataclass(frozen=True, slots=True)
class Config:
    dms: DmsSettings
    endpoints: Mapping[str, EndpointSettings]  # every name in model.ENDPOINTS
    display_names: Mapping[str, str]  # device id -> operator's custom description
    allow_schedule_authorization: bool = True
    alarm_retrieval: Literal["active", "all"] = "active"
    source: str = "<built-in>"  # the file it came from, for messages


def load_config(path: str) -> Config:
    """Read, validate and return the config at ``path``; ``ConfigError`` on any problem."""
    raise NotImplementedError
