"""TLS for the listener: the server ``SSLContext`` made from validated ``TlsServerSettings``
(``web`` reads them from ``--web.config.file``), and the ciphers this OpenSSL knows."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from ..errors import ConfigError

__all__ = [
    "DEFAULT_CIPHERS",
    "OPENSSL_CIPHERS",
    "TlsServerSettings",
    "configure_context",
    "server_context",
]


#: Python's default cipher list for TLS <= 1.2 (TLS 1.3 suites are not configurable).
DEFAULT_CIPHERS = ":".join(
    c["name"]
    for c in ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).get_ciphers()
    if c["protocol"] != "TLSv1.3"
)
#: IANA number -> OpenSSL name of every cipher this OpenSSL knows.
OPENSSL_CIPHERS: dict[int, str] = {}
_all = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
_all.set_ciphers("ALL:@SECLEVEL=0")
for _c in _all.get_ciphers():
    OPENSSL_CIPHERS[_c["id"] & 0xFFFF] = _c["name"]
del _all


@dataclass(frozen=True, slots=True)
class TlsServerSettings:
    cert_file: str
    key_file: str
    client_ca_file: str | None = None
    client_ca: str | None = field(default=None, repr=False)  # inline PEM
    verify_mode: ssl.VerifyMode = ssl.CERT_NONE
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    ciphers: str | None = None  # OpenSSL cipher list for TLS <= 1.2; None: Python's default
    prefer_server_cipher_suites: bool = True
    curve: str | None = None  # OpenSSL curve name


def server_context(tls: TlsServerSettings) -> ssl.SSLContext:
    """A new server ``SSLContext`` for ``tls``; ``ConfigError`` if a file does not load."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    configure_context(context, tls)
    if tls.verify_mode != ssl.CERT_NONE:
        try:
            if tls.client_ca_file or tls.client_ca:
                context.load_verify_locations(cafile=tls.client_ca_file, cadata=tls.client_ca)
            else:  # as Go: the system's roots
                context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise ConfigError(
                f"tls_server_config: cannot load the client CA: {_reason(exc)}"
            ) from None
    if tls.curve is not None:
        context.set_ecdh_curve(tls.curve)
    return context


def configure_context(context: ssl.SSLContext, tls: TlsServerSettings) -> None:
    """Apply everything but the trusted CAs and the curve to ``context`` (new or serving)."""
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"tls_server_config: cannot load cert_file {tls.cert_file} with key_file "
            f"{tls.key_file}: {_reason(exc)}"
        ) from None
    context.minimum_version = tls.min_version
    context.maximum_version = tls.max_version
    context.verify_mode = tls.verify_mode
    context.set_ciphers(tls.ciphers or DEFAULT_CIPHERS)
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, ssl.SSLError):
        return exc.strerror
    return getattr(exc, "reason", None) or str(exc)
