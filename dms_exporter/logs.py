"""Logging set-up: logfmt or JSON lines on stderr, with known secrets masked."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable

__all__ = ["LEVELS", "SecretsFilter", "setup_logging"]

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
MASK = "<secret>"


class SecretsFilter(logging.Filter):
    """Replaces every known secret in a record's final message; a last line of defence, since
    no code path logs a password or token on purpose."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = {s for s in secrets if s}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if self.secrets:
            record.msg, record.args = self.mask(record.getMessage()), None
            if record.exc_text:
                record.exc_text = self.mask(record.exc_text)
        return True

    def mask(self, text: str) -> str:
        """``text`` with every known secret replaced."""
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text


_TRACEBACKS = logging.Formatter()


class _LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"ts={_timestamp(record)} level={record.levelname.lower()} "
            f"logger={record.name} msg={_quote(record.getMessage())}"
        )
        if record.exc_text:  # formatted (and masked) by SecretsFilter
            line += f" exc={_quote(record.exc_text)}"
        return line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_text:  # formatted (and masked) by SecretsFilter
            entry["exc"] = record.exc_text
        return json.dumps(entry)


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + (
        f".{int(record.msecs):03d}Z"
    )


def _quote(text: str) -> str:
    if text and not any(c in text for c in ' "=\n'):
        return text
    return json.dumps(text)


def setup_logging(level: str, fmt: str, secrets: Iterable[str] = ()) -> SecretsFilter:
    """Send logs to stderr at ``level`` in ``fmt`` (logfmt|json); return the secrets filter
    so a reload can teach it a new password."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _LogfmtFormatter())
    secrets_filter = SecretsFilter(secrets)
    handler.addFilter(secrets_filter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return secrets_filter
