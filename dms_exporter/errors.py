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


# The classes below look alike on purpose: one class per failure kind, so a caller can catch
# exactly one kind, and one ``reason`` each, the label value it shows as.


class DmsExporterError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(DmsExporterError):
    """The configuration is invalid. The message names the file, the key and the problem."""


class DmsApiError(DmsExporterError):
    """A DMS call failed. ``reason`` is one of ``ERROR_REASONS``; messages never hold secrets."""

    reason = "http_error"

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


class DmsHttpError(DmsApiError):
    """A non-2xx status that is not auth, rate limiting or unavailability."""

    reason = "http_error"


class DmsAuthError(DmsApiError):
    """Login refused, or a call still answered 401 after logging in again."""

    reason = "auth"


class DmsUnavailableError(DmsApiError):
    """5xx (``unavailable``) or 429 (``rate_limited``); ``retry_after`` in seconds if sent."""

    reason = "unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after
        if self.status == 429:
            self.reason = "rate_limited"


class DmsTimeoutError(DmsApiError, TimeoutError):
    """The request did not complete in time."""

    reason = "timeout"


class DmsConnectionError(DmsApiError, ConnectionError):
    """The connection could not be made or was dropped."""

    reason = "connection"


class DmsPayloadError(DmsApiError):
    """The body is not the JSON we expect: HTML, truncated, not JSON, or the wrong shape."""

    reason = "payload"


class DmsPageLimitError(DmsApiError):
    """Paging went past the configured page cap."""

    reason = "page_limit"


class DmsIncompleteError(DmsApiError):
    """Paging ended with fewer items than the DMS says the list holds."""

    reason = "incomplete"


class DmsSuspectError(DmsApiError):
    """The answer parsed but was far worse than the last good one, so it was not applied."""

    reason = "suspect"
