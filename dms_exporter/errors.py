"""The exporter's exception tree.

Every failure that reaches the poller is a ``DmsApiError`` with a bounded ``reason``; the reason
becomes the ``reason`` label of ``dms_exporter_endpoint_errors_total``.
"""

from __future__ import annotations

__all__ = [
    "ERROR_REASONS",
    "ConfigError",
    "DmsApiError",
    "DmsAuthError",
    "DmsConnectionError",
    "DmsExporterError",
    "DmsHttpError",
    "DmsIncompleteError",
    "DmsPageLimitError",
    "DmsPayloadError",
    "DmsSuspectError",
    "DmsTimeoutError",
    "DmsUnavailableError",
]

#: Every value the ``reason`` attribute (and so the metric label) can take.
ERROR_REASONS: tuple[str, ...] = (
    "timeout",  # the request or the whole poll ran out of time
    "connection",  # refused, reset, dropped, DNS, TLS
    "auth",  # login refused, or 401 after a fresh login
    "rate_limited",  # 429
    "unavailable",  # 5xx
    "http_error",  # any other non-2xx status
    "payload",  # not JSON, HTML, truncated, wrong shape
    "page_limit",  # paging did not end within the page cap
    "incomplete",  # paging ended with fewer items than the DMS's own total
    "suspect",  # the answer was far worse than the last good one (gate.py) and was not applied
)


# One class per failure kind, so a caller can catch exactly one kind; each names its ``reason``
# (the label value it shows as) in its class line, checked against ``ERROR_REASONS``.


class DmsExporterError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(DmsExporterError):
    """The configuration is invalid. The message names the file, the key and the problem."""


class DmsApiError(DmsExporterError):
    """A DMS call failed. ``reason`` is one of ``ERROR_REASONS``; messages never hold secrets."""

    reason: str = "http_error"

    def __init_subclass__(cls, *, reason: str, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if reason not in ERROR_REASONS:
            raise ValueError(f"{cls.__name__}: reason {reason!r} is not in ERROR_REASONS")
        cls.reason = reason

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.status = status
        self.code = code


class DmsHttpError(DmsApiError, reason="http_error"):
    """A non-2xx status that is not auth, rate limiting or unavailability."""


class DmsAuthError(DmsApiError, reason="auth"):
    """Login refused, or a call still answered 401 after logging in again."""


class DmsUnavailableError(DmsApiError, reason="unavailable"):
    """5xx (``unavailable``) or 429 (``rate_limited``); ``retry_after`` in seconds if sent."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after
        if self.status == 429:
            self.reason = "rate_limited"


class DmsTimeoutError(DmsApiError, TimeoutError, reason="timeout"):
    """The request did not complete in time."""


class DmsConnectionError(DmsApiError, ConnectionError, reason="connection"):
    """The connection could not be made or was dropped."""


class DmsPayloadError(DmsApiError, reason="payload"):
    """The body is not the JSON we expect: HTML, truncated, not JSON, or the wrong shape."""


class DmsPageLimitError(DmsApiError, reason="page_limit"):
    """Paging went past the configured page cap."""


class DmsIncompleteError(DmsApiError, reason="incomplete"):
    """Paging ended with fewer items than the DMS says the list holds."""


class DmsSuspectError(DmsApiError, reason="suspect"):
    """The answer parsed but was far worse than the last good one, so it was not applied."""
