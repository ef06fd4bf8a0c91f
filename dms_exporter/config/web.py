"""``--web.config.file``: TLS, basic auth and response headers, in the Prometheus
exporter-toolkit format, so the file an operator already has for node_exporter works unchanged.

``load_web_config(path)`` validates a file into a frozen ``WebConfig`` (``ConfigError`` with one
line per problem otherwise). ``WebConfigFile`` keeps the last good one, re-reads the file (and the
certificate files it names) when they change, and keeps the listener's ``SSLContext`` current:
the toolkit re-reads the file on every request and connection; this checks at most once a second.
Documented in docs/configuration.md ("Web config").
"""

from __future__ import annotations

import logging
import os
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from .load import read_yaml
from .tls import OPENSSL_CIPHERS, TlsServerSettings, configure_context, server_context

__all__ = ["WebConfig", "WebConfigFile", "load_web_config"]

log = logging.getLogger(__name__)

#: Go's names (crypto/tls) of the cipher suites the toolkit accepts, and their IANA numbers.
GO_CIPHER_SUITES: Mapping[str, int] = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": 0x002F,
    "TLS_RSA_WITH_AES_256_CBC_SHA": 0x0035,
    "TLS_RSA_WITH_AES_128_GCM_SHA256": 0x009C,
    "TLS_RSA_WITH_AES_256_GCM_SHA384": 0x009D,
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": 0xC009,
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": 0xC00A,
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": 0xC013,
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": 0xC014,
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": 0xC02B,
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": 0xC02C,
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": 0xC02F,
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": 0xC030,
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": 0xCCA8,
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": 0xCCA9,
    # TLS 1.3 suites: accepted and, as in Go, not configurable (always on with TLS 1.3).
    "TLS_AES_128_GCM_SHA256": 0x1301,
    "TLS_AES_256_GCM_SHA384": 0x1302,
    "TLS_CHACHA20_POLY1305_SHA256": 0x1303,
}
#: Go's curve names -> OpenSSL's.
CURVES: Mapping[str, str] = {
    "CurveP256": "prime256v1",
    "CurveP384": "secp384r1",
    "CurveP521": "secp521r1",
    "X25519": "X25519",
}
TLS_VERSIONS: Mapping[str, ssl.TLSVersion] = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
CLIENT_AUTH_TYPES: Mapping[str, ssl.VerifyMode] = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
#: Go policies Python's ssl cannot express: it verifies every client certificate it asks for.
_UNVERIFIED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert")
#: Headers the toolkit lets a file set, and their allowed values (empty: any value).
HEADERS: Mapping[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}
_BCRYPT = re.compile(r"\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}")
_GO_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h))+|0")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_TOP_KEYS = ("tls_server_config", "http_server_config", "basic_auth_users", "rate_limit")
_TLS_KEYS = (
    "cert_file",
    "key_file",
    "client_ca_file",
    "client_ca",
    "client_auth_type",
    "min_version",
    "max_version",
    "cipher_suites",
    "prefer_server_cipher_suites",
    "curve_preferences",
)
#: Toolkit keys this server does not support, and why.
_UNSUPPORTED_TLS = {
    "cert": "inline certificates are not supported: use cert_file",
    "key": "inline keys are not supported: use key_file",
    "client_allowed_sans": "not supported: use a client CA that issues only allowed clients",
}
CHECK_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class RateLimit:
    interval: float  # seconds between requests; the bucket refills one request per interval
    burst: int


@dataclass(frozen=True, slots=True)
class WebConfig:
    """A validated web config; the empty one (no file) serves plain HTTP to everybody."""

    tls: TlsServerSettings | None = None
    users: Mapping[str, bytes] = field(default_factory=dict, repr=False)  # user -> bcrypt hash
    headers: Mapping[str, str] = field(default_factory=dict)
    rate_limit: RateLimit | None = None
    source: str = "<none>"

    def files(self) -> tuple[str, ...]:
        """The files whose change means a reload: the config and its TLS files."""
        tls = self.tls
        named = (tls.cert_file, tls.key_file, tls.client_ca_file) if tls else ()
        return (self.source, *filter(None, named))


def load_web_config(path: str) -> WebConfig:
    """Read and validate ``path``, including loading its certificates; ``ConfigError``."""
    reader = _Reader(path)
    config = reader.config(read_yaml(path, quote=False))
    if reader.problems:
        raise ConfigError("\n".join(reader.problems))
    return config


class _Reader:
    """Validates one web config mapping; problems name the key, as the main config's do."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.base_dir = os.path.dirname(source) or "."
        self.problems: list[str] = []

    def note(self, key: str, problem: str) -> None:
        self.problems.append(
            f"{self.source}: {key}: {problem}" if key else f"{self.source}: {problem}"
        )

    def mapping(self, key: str, value: Any, allowed: tuple[str, ...] | None) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.note(key, "must be a mapping")
            return {}
        good = {}
        for name, item in value.items():
            sub = f"{key}.{name}" if key else str(name)
            if not isinstance(name, str):
                self.note(sub, "the key must be text: quote it")
            elif allowed is not None and name not in allowed:
                if key == "tls_server_config" and name in _UNSUPPORTED_TLS:
                    self.note(sub, _UNSUPPORTED_TLS[name])
                else:
                    self.note(sub, f"unknown key (expected one of: {', '.join(allowed)})")
            else:
                good[name] = item
        return good

    def text(self, key: str, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            self.note(key, "must be a string")
            return None
        return value

    def choice(self, key: str, value: Any, choices: Mapping[str, Any], default: str) -> Any:
        name = self.text(key, value) or default
        if name not in choices:
            self.note(key, f"must be one of {', '.join(choices)}, got {name!r}")
            return choices[default]
        return choices[name]

    def names(self, key: str, value: Any) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.note(key, "must be a list of strings")
            return []
        return value

    def path(self, key: str, value: Any) -> str | None:
        name = self.text(key, value)
        return None if name is None else os.path.join(self.base_dir, os.path.expanduser(name))

    def config(self, data: Any) -> WebConfig:
        top = self.mapping("", data, _TOP_KEYS)
        http = self.mapping(
            "http_server_config", top.get("http_server_config"), ("http2", "headers")
        )
        if not isinstance(http.get("http2", True), bool):
            self.note("http_server_config.http2", "must be true or false")
        return WebConfig(
            tls=self.tls(
                self.mapping("tls_server_config", top.get("tls_server_config"), _TLS_KEYS)
            ),
            users=self.users(top.get("basic_auth_users")),
            headers=self.headers(http.get("headers")),
            rate_limit=self.rate_limit(
                self.mapping("rate_limit", top.get("rate_limit"), ("interval", "burst"))
            ),
            source=self.source,
        )

    def tls(self, m: dict[str, Any]) -> TlsServerSettings | None:
        key = "tls_server_config"
        enabled = ("cert_file", "key_file", "client_ca_file", "client_ca", "client_auth_type")
        if not any(m.get(k) for k in enabled):  # the toolkit's test: no TLS, plain HTTP
            return None
        cert_file, key_file = (
            self.path(f"{key}.cert_file", m.get("cert_file")),
            self.path(f"{key}.key_file", m.get("key_file")),
        )
        for name, value in (("cert_file", cert_file), ("key_file", key_file)):
            if value is None:
                self.note(f"{key}.{name}", "required when TLS is configured")
        auth_type = (
            self.text(f"{key}.client_auth_type", m.get("client_auth_type")) or "NoClientCert"
        )
        if auth_type in _UNVERIFIED_CLIENT_AUTH:
            self.note(
                f"{key}.client_auth_type",
                f"{auth_type} is not supported (Python's ssl verifies every client certificate "
                "it asks for): use VerifyClientCertIfGiven or RequireAndVerifyClientCert",
            )
            auth_type = "NoClientCert"
        verify_mode = self.choice(
            f"{key}.client_auth_type", auth_type, CLIENT_AUTH_TYPES, "NoClientCert"
        )
        client_ca_file = self.path(f"{key}.client_ca_file", m.get("client_ca_file"))
        client_ca = self.text(f"{key}.client_ca", m.get("client_ca"))
        if (client_ca_file or client_ca) and verify_mode == ssl.CERT_NONE:
            self.note(
                f"{key}.client_auth_type", "a client CA is configured without a client auth policy"
            )
        settings = TlsServerSettings(
            cert_file=cert_file or "",
            key_file=key_file or "",
            client_ca_file=client_ca_file,
            client_ca=client_ca,
            verify_mode=verify_mode,
            min_version=self.choice(
                f"{key}.min_version", m.get("min_version"), TLS_VERSIONS, "TLS12"
            ),
            max_version=self.choice(
                f"{key}.max_version", m.get("max_version"), TLS_VERSIONS, "TLS13"
            ),
            ciphers=self.ciphers(f"{key}.cipher_suites", m.get("cipher_suites")),
            prefer_server_cipher_suites=self.flag(
                f"{key}.prefer_server_cipher_suites", m.get("prefer_server_cipher_suites"), True
            ),
            curve=self.curve(f"{key}.curve_preferences", m.get("curve_preferences")),
        )
        if settings.min_version > settings.max_version:
            self.note(f"{key}.min_version", "is above max_version")
        if cert_file and key_file and not self.problems:
            try:
                server_context(settings)
            except ConfigError as exc:
                self.note("", str(exc))
        return settings

    def flag(self, key: str, value: Any, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.note(key, "must be true or false")
            return default
        return value

    def ciphers(self, key: str, value: Any) -> str | None:
        names = []
        for name in self.names(key, value):
            number = GO_CIPHER_SUITES.get(name)
            if number is None:
                self.note(
                    key,
                    f"unknown cipher {name!r} (Go's names: {', '.join(GO_CIPHER_SUITES)})",
                )
            elif number < 0x1301 or number > 0x1303:
                if number not in OPENSSL_CIPHERS:
                    self.note(key, f"{name} is not available in this OpenSSL")
                else:
                    names.append(OPENSSL_CIPHERS[number])
        return ":".join(names) or None

    def curve(self, key: str, value: Any) -> str | None:
        names = self.names(key, value)
        for name in names:
            if name not in CURVES:
                self.note(key, f"unknown curve {name!r} (expected one of: {', '.join(CURVES)})")
                return None
        if len(names) > 1:
            self.note(key, "Python's ssl can restrict the handshake to one curve only: give one")
            return None
        return CURVES[names[0]] if names else None

    def users(self, value: Any) -> dict[str, bytes]:
        users = {}
        for name, hashed in self.mapping("basic_auth_users", value, None).items():
            if not isinstance(hashed, str) or not _BCRYPT.fullmatch(hashed):
                self.note(
                    f"basic_auth_users.{name}",
                    "must be a bcrypt hash (htpasswd -nBC 10 \"\" | tr -d ':\\n')",
                )
            else:
                users[name] = hashed.encode()
        return users

    def headers(self, value: Any) -> dict[str, str]:
        headers = {}
        for name, text in self.mapping("http_server_config.headers", value, None).items():
            key = f"http_server_config.headers.{name}"
            allowed = HEADERS.get(name)
            if allowed is None:
                self.note(key, f"can not be configured (allowed: {', '.join(HEADERS)})")
            elif not isinstance(text, str):
                self.note(key, "must be a string")
            elif allowed and text not in allowed:
                self.note(key, f"must be one of {', '.join(allowed)}, got {text!r}")
            elif text:
                headers[name] = text
        return headers

    def rate_limit(self, m: dict[str, Any]) -> RateLimit | None:
        interval_text, burst = m.get("interval"), m.get("burst", 0)
        if interval_text is None:
            return None
        match = _GO_DURATION.fullmatch(str(interval_text))
        if match is None:
            self.note(
                "rate_limit.interval", f"must be a duration like 1s or 100ms, got {interval_text!r}"
            )
            return None
        seconds = sum(
            float(n) * _GO_UNITS[u]
            for n, u in re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", str(interval_text))
        )
        if not isinstance(burst, int) or isinstance(burst, bool) or burst < 0:
            self.note("rate_limit.burst", "must be a whole number")
            return None
        return RateLimit(seconds, burst) if seconds > 0 else None


class WebConfigFile:
    """The running web config: the last good one, re-read when its files change.

    ``context`` is the ``SSLContext`` the listener serves with (None without TLS); a reload
    updates it in place, so new connections use the new certificate and settings.
    ``sni_callback`` also hands each new connection a context with the current client CAs.
    """

    def __init__(self, path: str | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self.config = WebConfig() if path is None else load_web_config(path)
        self._signature = self._stat()
        self._checked = clock()
        self._fresh: ssl.SSLContext | None = None
        self.context: ssl.SSLContext | None = None
        if self.config.tls is not None:
            self.context = server_context(self.config.tls)
            self.context.sni_callback = self._on_handshake

    def current(self) -> WebConfig:
        """The config to apply now, after a re-read if a file changed (checked once a second)."""
        if self.path is not None and self._clock() - self._checked >= CHECK_INTERVAL_SECONDS:
            self._checked = self._clock()
            signature = self._stat()
            if signature != self._signature:
                self._signature = signature
                self._reload()
        return self.config

    def _reload(self) -> None:
        assert self.path is not None
        try:
            new = load_web_config(self.path)
            if (new.tls is None) != (self.config.tls is None):
                raise ConfigError(f"{self.path}: turning TLS on or off needs a restart")
            if (
                new.tls is not None
                and self.config.tls is not None
                and new.tls.curve != self.config.tls.curve
            ):
                raise ConfigError(
                    f"{self.path}: tls_server_config.curve_preferences: a change needs a restart"
                )
            fresh = None if new.tls is None else server_context(new.tls)
            if self.context is not None and new.tls is not None:
                configure_context(self.context, new.tls)
        except ConfigError as exc:
            log.error(
                "web config reload failed, keeping the last good one", extra={"error": str(exc)}
            )
            return
        self.config, self._fresh = new, fresh
        self._signature = self._stat()  # the new config may name other files
        log.info("web config reloaded", extra={"file": self.path})

    def _on_handshake(
        self, sslobj: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext
    ) -> None:
        self.current()
        if self._fresh is not None:
            sslobj.context = self._fresh  # the trusted client CAs follow the connection's context

    def _stat(self) -> tuple[tuple[int, int, int], ...]:
        if self.path is None:
            return ()
        signature = []
        for name in (self.path, *self.config.files()[1:]):
            try:
                st = os.stat(name)
                signature.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                signature.append((0, 0, 0))
        return tuple(signature)
