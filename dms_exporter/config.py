"""The exporter's configuration: YAML in, a frozen tree of dataclasses out.

``load_config(path)`` reads and validates a file and raises one ``ConfigError`` whose message has
one line per problem found, each naming the file, the dotted key and the problem. Nothing here is
mutated after loading; a reload builds a new ``Config``. ``docs/configuration.md`` documents
every key.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NoReturn
from urllib.parse import urlsplit

import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the dependencies

from .config_shape import (
    Envelope,
    LoginShape,
    Paging,
    TokenHeader,
    read_envelope,
    read_gate,
    read_header_name,
    read_login,
    read_paging,
    read_token_header,
    read_values,
)
from .errors import ConfigError
from .gate import GateSettings
from .model import ENDPOINTS
from .vocabulary import KNOWN_FIELDS

__all__ = [
    "ENDPOINT_DEFAULTS",
    "Config",
    "DmsSettings",
    "EndpointSettings",
    "MetricsSettings",
    "TlsSettings",
    "config_from_mapping",
    "demo_config",
    "demo_mapping",
    "load_config",
]

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
assert tuple(ENDPOINT_DEFAULTS) == ENDPOINTS


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
    fields: Mapping[str, str]  # API field name from docs/dms-api.md -> name this DMS uses
    #                             (dotted for nested: "location.site")
    envelope: Envelope = field(default_factory=Envelope)  # where a list keeps items and total
    paging: Paging = field(default_factory=Paging)
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # enum word maps
    constants: Mapping[str, str] = field(default_factory=dict)  # enum field -> fixed value
    gate: GateSettings = field(default_factory=GateSettings)


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


def load_config(path: str) -> Config:
    """Read, validate and return the config at ``path``; ``ConfigError`` on any problem."""
    return config_from_mapping(_read_yaml(path), path)


def config_from_mapping(data: Any, source: str, *, base_dir: str | None = None) -> Config:
    """Validate ``data`` (as ``yaml.safe_load`` returns it) into a ``Config``.

    ``source`` names the origin in error messages. Relative file names in the config
    (``password_file``, ``tls.ca_file``, ``display_names.file``) are resolved against
    ``base_dir``, by default the directory of ``source``.
    """
    if base_dir is None:
        base_dir = "." if source.startswith("<") else os.path.dirname(source) or "."
    reader = _Reader(source, base_dir)
    config = reader.keep(reader.config, data)
    if reader.problems:
        raise ConfigError("\n".join(reader.problems))
    return config


def demo_config(base_url: str, username: str, password: str, **overrides: Any) -> Config:
    """An in-memory config for ``--demo``: every endpoint every 5 s, alarms every 2 s.

    ``overrides`` are top-level config keys, merged recursively over the demo's mapping.
    """
    return config_from_mapping(demo_mapping(base_url, username, password, **overrides), "<demo>")


def demo_mapping(base_url: str, username: str, password: str, **overrides: Any) -> dict[str, Any]:
    """The mapping ``demo_config`` validates (the console overlays its edits on it)."""
    data: dict[str, Any] = {
        "dms": {"url": base_url, "username": username, "password": password, "proxy": "direct"},
        "defaults": {"interval": "5s"},
        "endpoints": {"alarms": {"interval": "2s"}},
    }
    return _merged(data, overrides)


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = _merged(old, value)
        else:
            out[key] = value
    return out


#: Larger or deeper files are refused before they can exhaust memory or the parser's stack.
MAX_YAML_BYTES = 10 << 20
MAX_YAML_DEPTH = 100


class _StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses duplicate mapping keys and nesting deeper than
    ``MAX_YAML_DEPTH`` (the composer is recursive: a deep file would end in RecursionError)."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.YAMLError(f"nested deeper than {MAX_YAML_DEPTH} levels")
            return super().compose_node(parent, index)  # type: ignore[no-untyped-call]
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen = set()
        for key_node, _ in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key in seen and key_node.tag != "tag:yaml.org,2002:merge":
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def _read_yaml(path: str, *, quote: bool = True) -> Any:
    """The YAML document at ``path``. With ``quote=False`` (a file that may hold a secret) an
    error shows only the position and the kind of problem, never a word of the content."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_YAML_BYTES + 1)
        if len(data) > MAX_YAML_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_YAML_BYTES >> 20} MiB, refused")
        return yaml.load(data.decode("utf-8"), Loader=_StrictLoader)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: cannot read: not UTF-8 text") from None
    except RecursionError:  # a structure the depth check does not see (e.g. alias chains)
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        # Only the problem and its position: the excerpt PyYAML adds could show a secret.
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or (str(exc) if type(exc) is yaml.YAMLError else "")
        problem = problem or "not valid YAML"
        if not quote:
            problem = _QUOTED.sub("...", problem)
        raise ConfigError(f"{path}: {where}invalid YAML: {problem}") from None


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
#: Longer than any sensible interval or timeout, and small enough for float and asyncio.
_MAX_DURATION = 365 * 86400
_DURATION_WHAT = 'a duration like "30s" or a number of seconds'
_SECRET_KEYS = frozenset({"dms.password"})
_USERINFO = re.compile(r"//[^/@\s]*@")  # user:password@ in a URL, masked in messages
_PASSWORD_KEYS = ("password", "password_env", "password_file")
_TOP_KEYS = (
    "dms",
    "defaults",
    "endpoints",
    "display_names",
    "allow_schedule_authorization",
    "alarms",
    "refresh_min_gap",
    "metrics",
)
_DMS_KEYS = (
    "url",
    "username",
    *_PASSWORD_KEYS,
    "auth",
    "login_path",
    "proxy",
    "tls",
    "timeout",
    "page_size",
    "max_pages",
    "max_concurrency",
    "login_backoff",
    "login",
    "token_header",
    "api_key_header",
    "envelope",
    "paging",
    "failback_interval",
)
_AUTHS = ("token", "basic", "api_key")
_SHAPE_KEYS = ("envelope", "paging")  # in dms: for every list endpoint, overridable per endpoint
_RETRIEVALS = ("active", "all")
_TIMING_KEYS = ("interval", "timeout", "stale_after")
_ENDPOINT_KEYS = ("enabled", *_TIMING_KEYS, "path", "params", "fields", "values", "gate",
                  *_SHAPE_KEYS)  # fmt: skip


class _Skip(Exception):
    """Raised by ``_Reader.fail`` once the problem is recorded: abandons the current key."""


class _Reader:
    """Validates one config mapping; every problem names the source and the dotted key.

    ``fail`` records a problem and abandons only the key (or section) being read: ``keep``
    around each key lets the others be read, so one run reports every problem.
    """

    def __init__(self, source: str, base_dir: str, problems: list[str] | None = None) -> None:
        self.source = source
        self.base_dir = base_dir
        self.problems: list[str] = [] if problems is None else problems

    # --- shared checks ------------------------------------------------------------------

    def note(self, key: str, problem: str) -> None:
        """Record a problem and carry on reading."""
        self.problems.append(
            f"{self.source}: {key}: {problem}" if key else f"{self.source}: {problem}"
        )

    def fail(self, key: str, problem: str) -> NoReturn:
        """Record a problem and abandon the current key."""
        self.note(key, problem)
        raise _Skip

    def keep(self, read: Callable[..., Any], *args: Any) -> Any:
        """``read(*args)``, or None when it failed (its problems are recorded)."""
        try:
            return read(*args)
        except _Skip:
            return None

    def show(self, key: str, value: Any) -> str:
        """``value`` as an error message shows it: never a secret, never a long text."""
        if value is None:
            return "null"
        if key in _SECRET_KEYS or not isinstance(value, str | int | float):
            return f"a {_type_name(value)}"
        text = json.dumps(_USERINFO.sub("//***@", value)) if isinstance(value, str) else repr(value)
        return text if len(text) <= 60 else text[:56] + '..."'

    def expect(self, key: str, value: Any, types: tuple[type, ...], what: str) -> Any:
        """``value`` if it is one of ``types`` (a bool counts only as a bool), else fail."""
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            self.fail(key, f"must be {what}, got {self.show(key, value)}")
        return value

    def section(self, key: str, value: Any, allowed: Collection[str] | None) -> dict[Any, Any]:
        """A mapping (null is empty) whose keys are all in ``allowed`` (None: any key)."""
        if value is None:
            return {}
        self.expect(key, value, (dict,), "a mapping")
        for name in value:
            if allowed is not None and name not in allowed:
                self.note(_join(key, name), f"unknown key (expected one of: {', '.join(allowed)})")
        return value

    def text(self, key: str, value: Any) -> str:
        if not self.expect(key, value, (str,), "a non-empty string").strip():
            self.fail(key, "must not be empty")
        return value

    def choice(self, key: str, value: Any, default: str, choices: tuple[str, ...]) -> Any:
        if value is None:
            return default
        if value not in choices:
            expected = " or ".join(f'"{c}"' for c in choices)
            self.fail(key, f"must be {expected}, got {self.show(key, value)}")
        return value

    def boolean(self, key: str, value: Any, default: bool) -> bool:
        return default if value is None else self.expect(key, value, (bool,), "true or false")

    def integer(self, key: str, value: Any, default: int, low: int, high: int) -> int:
        if value is None:
            return default
        self.expect(key, value, (int,), f"a whole number from {low} to {high}")
        if not low <= value <= high:
            self.fail(key, f"must be from {low} to {high}, got {value}")
        return value

    def duration(self, key: str, value: Any, *, zero: bool = False) -> float:
        """``500ms``, ``30s``, ``5m``, ``1h`` or a bare number of seconds; more than zero
        (or zero, if ``zero``)."""
        seconds = self.expect(key, value, (str, int, float), _DURATION_WHAT)
        if isinstance(value, str):
            match = _DURATION.fullmatch(value.strip())
            if match is None:
                self.fail(key, f"must be {_DURATION_WHAT}, got {self.show(key, value)}")
            seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
        above_low = seconds >= 0 if zero else seconds > 0
        if not (above_low and seconds < _MAX_DURATION):  # also rejects NaN and 400 digits
            least = "zero or more" if zero else "more than zero"
            self.fail(key, f"must be {least} and under a year, got {self.show(key, value)}")
        return float(seconds)

    def url(self, key: str, value: Any) -> str:
        """An http(s) URL with a host and no credentials, query or fragment."""
        text = self.text(key, value).strip()
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as exc:
            self.fail(key, f"is not a valid URL ({exc}), got {self.show(key, text)}")
        if parts.username or parts.password:
            hint = (
                "use dms.username and dms.password"
                if key.startswith("dms.url")
                else "not supported"
            )
            self.fail(key, f"must not hold credentials (user:password@): {hint}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.fail(key, f"must be an http:// or https:// URL, got {self.show(key, text)}")
        if parts.query or parts.fragment:
            self.fail(key, "must not have a query or fragment")
        return text.rstrip("/")

    def urls(self, value: Any) -> list[str]:
        """``dms.url``: one URL, or a list of them (the main first, then its standbys)."""
        if not isinstance(value, list):
            return [self.url("dms.url", value)]
        if not value:
            self.fail("dms.url", "the list is empty")
        urls = [self.url(f"dms.url.{i}", item) for i, item in enumerate(value)]
        if len(set(urls)) < len(urls):
            self.fail("dms.url", "lists a URL twice")
        return urls

    def path(self, key: str, value: Any) -> str:
        path = self.text(key, value)
        if not path.startswith("/") or "?" in path or "#" in path:
            self.fail(key, f'must start with "/" and have no query (use params), got {path!r}')
        return path

    def file(self, key: str, value: Any) -> str:
        """An existing file, relative to the config file's directory."""
        path = os.path.join(self.base_dir, os.path.expanduser(self.text(key, value)))
        if not os.path.isfile(path):
            self.fail(key, f"no such file: {path}")
        return path

    def strings(self, key: str, value: Any) -> dict[str, str]:
        """A mapping of text keys to text values (numbers are turned into text)."""
        result = {}
        for name, item in self.section(key, value, None).items():
            if self.keep(self.string_item, _join(key, name), name, item):
                result[name] = str(item)
        return result

    def string_item(self, key: str, name: Any, item: Any) -> bool:
        if not isinstance(name, str):
            self.fail(key, f"the key must be text, YAML read a {_type_name(name)}: quote it")
        self.expect(key, item, (str, int, float), "a string")
        return True

    # --- sections -----------------------------------------------------------------------

    def config(self, data: Any) -> Config:
        """The whole file; each section and key is read even when an earlier one failed."""
        if data is None:
            self.fail("", "the file is empty; dms.url and dms.username are required")
        top = self.section("", data, _TOP_KEYS)
        keep = self.keep
        alarms = keep(self.section, "alarms", top.get("alarms"), ("retrieval", "active_params"))
        alarms = alarms or {}
        retrieval = keep(
            self.choice, "alarms.retrieval", alarms.get("retrieval"), "active", _RETRIEVALS
        )
        dms_section = keep(self.section, "dms", top.get("dms"), _DMS_KEYS)
        dms: Any = None if dms_section is None else keep(self.dms, dms_section)
        dms_section = dms_section or {}
        lists = (
            keep(read_envelope, self, "dms.envelope", dms_section.get("envelope"), Envelope())
            or Envelope(),
            keep(read_paging, self, "dms.paging", dms_section.get("paging"), Paging()) or Paging(),
        )
        endpoints = keep(self.endpoints, top.get("defaults"), top.get("endpoints"), lists) or {}
        if retrieval == "active" and endpoints.get("alarms") is not None:
            active = _get(alarms, "active_params", {"state": "active"})
            settings = endpoints["alarms"]
            extra = keep(self.params, "alarms.active_params", active) or {}
            for param in set(extra) & set(settings.paging.params):
                self.note(f"alarms.active_params.{param}", "is set by paging")
            # an alarm the active-alarms call lists is active, whatever its state field says
            endpoints["alarms"] = replace(
                settings, params={**settings.params, **extra}, constants={"state": "active"}
            )
        schedules = top.get("allow_schedule_authorization")
        return Config(
            dms=dms,
            endpoints=endpoints,
            display_names=keep(self.display_names, top.get("display_names")),
            allow_schedule_authorization=keep(
                self.boolean, "allow_schedule_authorization", schedules, True
            ),
            alarm_retrieval=retrieval,
            refresh_min_gap=keep(
                lambda: self.duration(
                    "refresh_min_gap", _get(top, "refresh_min_gap", 10.0), zero=True
                )
            ),
            metrics=keep(self.metrics, top.get("metrics")) or MetricsSettings(),
            source=self.source,
        )

    def metrics(self, value: Any) -> MetricsSettings:
        """``metrics``: a preset, and families switched off or back on over it by name."""
        from .selection import PRESETS, disabled_families, switchable_families

        m = self.section("metrics", value, ("preset", "disable", "enable"))
        preset = self.keep(self.choice, "metrics.preset", m.get("preset"), "full", tuple(PRESETS))
        preset = preset or "full"
        known = switchable_families()
        switched: dict[str, set[str]] = {}
        for key in ("disable", "enable"):
            where = f"metrics.{key}"
            listed = _get(m, key, [])
            names = self.keep(self.expect, where, listed, (list,), "a list of family names") or []
            switched[key] = set()
            for i, name in enumerate(names):
                if not isinstance(name, str) or name not in known:
                    self.note(
                        f"{where}[{i}]",
                        f"not a family the exporter can switch, got {self.show(where, name)}"
                        " (see the README's metric reference)",
                    )
                else:
                    switched[key].add(known[name])
        return MetricsSettings(
            preset=preset,
            disabled=disabled_families(preset, switched["disable"], switched["enable"]),
        )

    def dms(self, m: dict[str, Any]) -> DmsSettings:
        keep = self.keep
        auth = keep(self.choice, "dms.auth", m.get("auth"), "token", _AUTHS)
        for key in ("url", "username") if auth != "api_key" else ("url",):
            if m.get(key) is None:
                self.note(f"dms.{key}", "required")
        only_with = {"login": "token", "token_header": "token", "api_key_header": "api_key"}
        for key, only in only_with.items():
            if m.get(key) is not None and auth is not None and auth != only:
                self.note(f"dms.{key}", f"is used only with dms.auth: {only} (auth is {auth})")
        tls = keep(self.section, "dms.tls", m.get("tls"), ("verify", "ca_file")) or {}
        ca_file = tls.get("ca_file")
        proxy: tuple[Any, str | None] = keep(self.proxy, _get(m, "proxy", "environment")) or (
            "environment",
            None,
        )
        url, username = m.get("url"), m.get("username")
        urls = (keep(self.urls, url) or []) if url is not None else []
        return DmsSettings(
            url=urls[0] if urls else "",
            standby_urls=tuple(urls[1:]),
            failback_interval=keep(
                self.duration, "dms.failback_interval", _get(m, "failback_interval", 60.0)
            ),
            username=keep(self.text, "dms.username", username) if username is not None else "",
            password=keep(self.password, m),
            auth=auth,
            login_path=keep(self.path, "dms.login_path", _get(m, "login_path", "/auth/login")),
            login=keep(read_login, self, "dms.login", m.get("login")) or LoginShape(),
            token_header=keep(read_token_header, self, "dms.token_header", m.get("token_header"))
            or TokenHeader(),
            api_key_header=keep(
                read_header_name, self, "dms.api_key_header", _get(m, "api_key_header", "X-API-Key")
            ),
            proxy=proxy[0],
            proxy_url=proxy[1],
            tls=TlsSettings(
                verify=keep(self.boolean, "dms.tls.verify", tls.get("verify"), True),
                ca_file=None if ca_file is None else keep(self.file, "dms.tls.ca_file", ca_file),
            ),
            timeout=keep(self.duration, "dms.timeout", _get(m, "timeout", 10.0)),
            page_size=keep(self.integer, "dms.page_size", m.get("page_size"), 1000, 1, 1000),
            max_pages=keep(self.integer, "dms.max_pages", m.get("max_pages"), 1000, 1, 1_000_000),
            max_concurrency=keep(
                self.integer, "dms.max_concurrency", m.get("max_concurrency"), 2, 1, 100
            ),
            **(keep(self.login_backoff, m.get("login_backoff")) or {}),
        )

    def login_backoff(self, value: Any) -> dict[str, float]:
        """``dms.login_backoff``: ``initial`` (default 30s) and ``max`` (default 15m)."""
        m = self.section("dms.login_backoff", value, ("initial", "max"))
        initial = self.duration("dms.login_backoff.initial", _get(m, "initial", 30.0))
        most = self.duration("dms.login_backoff.max", _get(m, "max", 900.0))
        if most < initial:
            self.fail("dms.login_backoff.max", f"must be at least initial ({initial:g}s)")
        return {"login_backoff_initial": initial, "login_backoff_max": most}

    def proxy(self, value: Any) -> tuple[Any, str | None]:
        """``dms.proxy`` as (mode, proxy URL or None)."""
        proxy = self.text("dms.proxy", value)
        if proxy in ("environment", "direct"):
            return proxy, None
        if not proxy.startswith(("http://", "https://")):
            what = '"environment", "direct" or an http:// URL'
            self.fail("dms.proxy", f"must be {what}, got {self.show('dms.proxy', proxy)}")
        return "url", self.url("dms.proxy", proxy)

    def password(self, m: dict[str, Any]) -> str:
        """The password from exactly one of password, password_env and password_file."""
        given = [k for k in _PASSWORD_KEYS if m.get(k) is not None]
        if len(given) != 1:
            problem = "is required" if not given else f"is given {len(given)} times"
            self.fail("dms.password", f"{problem}: set exactly one of {', '.join(_PASSWORD_KEYS)}")
        key = f"dms.{given[0]}"
        if given[0] == "password_env":
            name = self.text(key, m[given[0]])
            password = os.environ.get(name)
            if password is None:
                self.fail(key, f"environment variable {name} is not set")
        elif given[0] == "password_file":
            path = self.file(key, m[given[0]])
            try:
                with open(path, encoding="utf-8") as f:
                    password = f.read().rstrip("\r\n")
            except OSError as exc:
                self.fail(key, f"cannot read {path}: {exc.strerror}")
            except UnicodeDecodeError:
                self.fail(key, f"cannot read {path}: not UTF-8 text")
        else:
            password = self.expect(key, m[given[0]], (str,), "a string")
        if not password:
            self.fail(key, "the password is empty")
        return password

    def endpoints(
        self, defaults: Any, endpoints: Any, lists: tuple[Envelope, Paging]
    ) -> dict[str, EndpointSettings]:
        timing = self.section("defaults", defaults, _TIMING_KEYS)
        shared = {k: (timing.get(k), f"defaults.{k}") for k in _TIMING_KEYS}
        configured = self.section("endpoints", endpoints, ENDPOINTS)
        return {
            name: self.keep(self.endpoint, name, configured.get(name), shared, lists)
            for name in ENDPOINTS
        }

    def endpoint(
        self,
        name: str,
        value: Any,
        shared: dict[str, tuple[Any, str]],
        lists: tuple[Envelope, Paging],
    ) -> EndpointSettings:
        """One endpoint: its own keys, else ``defaults``, else the built-in defaults."""
        key = f"endpoints.{name}"
        m = self.section(key, value, _ENDPOINT_KEYS)
        default_path, default_interval = ENDPOINT_DEFAULTS[name]
        own = {k: (m[k], f"{key}.{k}") for k in _TIMING_KEYS if m.get(k) is not None}
        timing = {**shared, **own}
        seconds = {
            k: None if v is None else self.keep(self.duration, where, v)
            for k, (v, where) in timing.items()
        }
        interval = seconds["interval"] or default_interval
        timeout = seconds["timeout"] or max(min(interval * 0.8, interval - 1.0), interval / 2)
        stale_after = seconds["stale_after"] or 3 * interval
        for k, value, ok, relation in (
            ("timeout", timeout, timeout < interval, "less than"),
            ("stale_after", stale_after, stale_after >= interval, "at least"),
        ):
            if not ok:
                where = timing[k][1]
                of = "" if where.startswith(key) else f" of endpoint {name}"
                self.note(
                    where, f"must be {relation} the interval{of} ({interval:g}s), got {value:g}s"
                )
        fields = self.keep(self.strings, f"{key}.fields", m.get("fields")) or {}
        for canonical, renamed in fields.items():
            self.keep(self.rename, name, f"{key}.fields.{canonical}", canonical, renamed)
        envelope, paging = lists
        if name == "system":  # one object, not a list
            for k in _SHAPE_KEYS:
                if m.get(k) is not None:
                    self.note(f"{key}.{k}", "system answers one object, not a list")
        else:
            envelope = self.keep(read_envelope, self, f"{key}.envelope", m.get("envelope"),
                                 envelope) or envelope  # fmt: skip
            given = m.get("paging")
            paging = self.keep(read_paging, self, f"{key}.paging", given, paging) or paging
        params = self.keep(self.params, f"{key}.params", m.get("params")) or {}
        for param in params:
            if param in paging.params:
                where = f"{key}.paging" if m.get("paging") is not None else "dms.paging"
                self.note(f"{key}.params.{param}", f"is set by paging (see {where})")
        return EndpointSettings(
            name=name,
            enabled=self.keep(self.boolean, f"{key}.enabled", m.get("enabled"), True),
            interval=interval,
            timeout=timeout,
            stale_after=stale_after,
            path=self.keep(self.path, f"{key}.path", _get(m, "path", default_path)),
            params=params,
            fields=fields,
            envelope=envelope,
            paging=paging,
            values=self.keep(read_values, self, f"{key}.values", m.get("values"), name) or {},
            gate=self.keep(read_gate, self, f"{key}.gate", m.get("gate")) or GateSettings(),
        )

    def rename(self, endpoint: str, key: str, canonical: str, renamed: Any) -> None:
        """One ``fields`` entry: a known API field renamed to a non-empty text."""
        if canonical not in KNOWN_FIELDS[endpoint]:
            known = ", ".join(KNOWN_FIELDS[endpoint])
            self.fail(key, f"not a field of {endpoint} (known: {known})")
        self.text(key, renamed)

    def params(self, key: str, value: Any) -> dict[str, str]:
        return self.strings(key, value)

    def display_names(self, value: Any) -> dict[str, str]:
        """``display_names.file`` (a YAML map of id: text) overlaid by ``display_names.devices``."""
        m = self.section("display_names", value, ("devices", "file"))
        names: dict[str, str] = {}
        if m.get("file") is not None:
            path = self.keep(self.file, "display_names.file", m["file"])
            if path is not None:
                try:
                    data = _read_yaml(path, quote=False)
                except ConfigError as exc:
                    self.problems.append(str(exc))
                else:
                    reader = _Reader(path, self.base_dir, self.problems)
                    names = reader.keep(reader.names_file, data) or {}
        names.update(self.keep(self.strings, "display_names.devices", m.get("devices")) or {})
        return names

    def names_file(self, data: Any) -> dict[str, str]:
        """A display-names file's ``id: text`` entries. Problems name an entry by its position
        and show no content: the option may point at the password file by mistake."""
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.fail("", f"must be a mapping of device id to text, got a {_type_name(data)}")
        names = {}
        for number, (name, item) in enumerate(data.items(), start=1):
            if not isinstance(name, str) or not isinstance(item, str | int | float):
                problem = "a text key" if not isinstance(name, str) else "a text value"
                got = _type_name(name if not isinstance(name, str) else item)
                self.note(f"entry {number}", f"must have {problem} (quote it), got a {got}")
            else:
                names[name] = str(item)
        return names


def _get(m: Mapping[str, Any], key: str, default: Any) -> Any:
    """``m[key]``, or ``default`` when it is missing or null."""
    value = m.get(key)
    return default if value is None else value


def _join(key: str, name: object) -> str:
    return f"{key}.{name}" if key else str(name)


def _type_name(value: Any) -> str:
    names = {dict: "mapping", list: "list", bool: "boolean", int: "number", float: "number"}
    return names.get(type(value), type(value).__name__)
