"""YAML in, a validated ``Config`` out: the rules of every section, on top of ``Reader``.

``load_config(path)`` reads and validates a file and raises one ``ConfigError`` whose message has
one line per problem found, each naming the file, the dotted key and the problem.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from ..errors import ConfigError
from ..exposition.selection import PRESETS, disabled_families, switchable_families
from ..model import ENDPOINT_DEFAULTS, ENDPOINTS
from ..vocabulary import KNOWN_FIELDS
from .load import read_yaml
from .reader import Reader, type_name, value_or
from .settings import (
    DROP_AFTER,
    Config,
    DmsSettings,
    EndpointSettings,
    MetricsSettings,
    TlsSettings,
)
from .shape import (
    Envelope,
    GateSettings,
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

__all__ = ["config_from_mapping", "load_config"]

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
    "failover_hold",
)
_AUTHS = ("token", "basic", "api_key")
_SHAPE_KEYS = ("envelope", "paging")  # in dms: for every list endpoint, overridable per endpoint
_RETRIEVALS = ("active", "all")
_TIMING_KEYS = ("interval", "timeout", "stale_after", "drop_after")
_NEVER = "never"  # drop_after: the last good data is never dropped
_ENDPOINT_KEYS = ("enabled", *_TIMING_KEYS, "path", "params", "fields", "values", "gate",
                  *_SHAPE_KEYS)  # fmt: skip


def load_config(path: str) -> Config:
    """Read, validate and return the config at ``path``; ``ConfigError`` on any problem."""
    return config_from_mapping(read_yaml(path), path)


def config_from_mapping(data: Any, source: str, *, base_dir: str | None = None) -> Config:
    """Validate ``data`` (as ``yaml.safe_load`` returns it) into a ``Config``.

    ``source`` names the origin in error messages. Relative file names in the config
    (``password_file``, ``tls.ca_file``, ``display_names.file``) are resolved against
    ``base_dir``, by default the directory of ``source``.
    """
    if base_dir is None:
        base_dir = "." if source.startswith("<") else os.path.dirname(source) or "."
    reader = ConfigReader(source, base_dir)
    config = reader.keep(reader.config, data)
    if reader.problems:
        raise ConfigError("\n".join(reader.problems))
    return config


class ConfigReader(Reader):
    """``Reader`` with the rules of every section of the config file."""

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
            active = value_or(alarms, "active_params", {"state": "active"})
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
                    "refresh_min_gap", value_or(top, "refresh_min_gap", 10.0), zero=True
                )
            ),
            metrics=keep(self.metrics, top.get("metrics")) or MetricsSettings(),
            source=self.source,
        )

    def metrics(self, value: Any) -> MetricsSettings:
        """``metrics``: a preset, and families switched off or back on over it by name."""

        m = self.section("metrics", value, ("preset", "disable", "enable"))
        preset = self.keep(self.choice, "metrics.preset", m.get("preset"), "full", tuple(PRESETS))
        preset = preset or "full"
        known = switchable_families()
        switched: dict[str, set[str]] = {}
        for key in ("disable", "enable"):
            where = f"metrics.{key}"
            listed = value_or(m, key, [])
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
        proxy: tuple[Any, str | None] = keep(self.proxy, value_or(m, "proxy", "environment")) or (
            "environment",
            None,
        )
        url, username = m.get("url"), m.get("username")
        urls = (keep(self.urls, url) or []) if url is not None else []
        login = keep(read_login, self, "dms.login", m.get("login")) or LoginShape()
        if not login.sends_token and m.get("token_header") is not None:
            self.note("dms.token_header", "is not used with dms.login.token_from: cookie")
        return DmsSettings(
            url=urls[0] if urls else "",
            standby_urls=tuple(urls[1:]),
            failback_interval=keep(
                self.duration, "dms.failback_interval", value_or(m, "failback_interval", 60.0)
            ),
            failover_hold=keep(
                lambda: self.duration(
                    "dms.failover_hold", value_or(m, "failover_hold", 300.0), zero=True
                )
            ),
            username=keep(self.text, "dms.username", username) if username is not None else "",
            password=keep(self.password, m),
            auth=auth,
            login_path=keep(self.path, "dms.login_path", value_or(m, "login_path", "/auth/login")),
            login=login,
            token_header=keep(read_token_header, self, "dms.token_header", m.get("token_header"))
            or TokenHeader(),
            api_key_header=keep(
                read_header_name,
                self,
                "dms.api_key_header",
                value_or(m, "api_key_header", "X-API-Key"),
            ),
            proxy=proxy[0],
            proxy_url=proxy[1],
            tls=TlsSettings(
                verify=keep(self.boolean, "dms.tls.verify", tls.get("verify"), True),
                ca_file=None if ca_file is None else keep(self.file, "dms.tls.ca_file", ca_file),
            ),
            timeout=keep(self.duration, "dms.timeout", value_or(m, "timeout", 10.0)),
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
        initial = self.duration("dms.login_backoff.initial", value_or(m, "initial", 30.0))
        most = self.duration("dms.login_backoff.max", value_or(m, "max", 900.0))
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
        never = timing.get("drop_after", (None,))[0] == _NEVER
        seconds = {
            k: None
            if v is None or (never and k == "drop_after")
            else self.keep(self.duration, where, v)
            for k, (v, where) in timing.items()
        }
        interval = seconds["interval"] or default_interval
        timeout = seconds["timeout"] or max(min(interval * 0.8, interval - 1.0), interval / 2)
        stale_after = seconds["stale_after"] or 3 * interval
        drop_after = None if never else seconds.get("drop_after") or max(DROP_AFTER, stale_after)
        for k, value, ok, relation in (
            ("timeout", timeout, timeout < interval, "less than the interval"),
            ("stale_after", stale_after, stale_after >= interval, "at least the interval"),
            ("drop_after", drop_after, drop_after is None or drop_after >= stale_after,
             "at least stale_after"),
        ):  # fmt: skip
            if not ok:
                where = timing[k][1]
                of = "" if where.startswith(key) else f" of endpoint {name}"
                limit = stale_after if k == "drop_after" else interval
                self.note(where, f"must be {relation}{of} ({limit:g}s), got {value:g}s")
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
            drop_after=drop_after,
            path=self.keep(self.path, f"{key}.path", value_or(m, "path", default_path)),
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
                    data = read_yaml(path, quote=False)
                except ConfigError as exc:
                    self.problems.append(str(exc))
                else:
                    reader = ConfigReader(path, self.base_dir, self.problems)
                    names = reader.keep(reader.names_file, data) or {}
        names.update(self.keep(self.strings, "display_names.devices", m.get("devices")) or {})
        return names

    def names_file(self, data: Any) -> dict[str, str]:
        """A display-names file's ``id: text`` entries. Problems name an entry by its position
        and show no content: the option may point at the password file by mistake."""
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.fail("", f"must be a mapping of device id to text, got a {type_name(data)}")
        names = {}
        for number, (name, item) in enumerate(data.items(), start=1):
            if not isinstance(name, str) or not isinstance(item, str | int | float):
                problem = "a text key" if not isinstance(name, str) else "a text value"
                got = type_name(name if not isinstance(name, str) else item)
                self.note(f"entry {number}", f"must have {problem} (quote it), got a {got}")
            else:
                names[name] = str(item)
        return names
