"""Logging set-up: logfmt or JSON lines on stderr, with known secrets masked.

A log call gives a short constant message and its details as fields through ``extra``:
``log.warning("endpoint failing", extra={"endpoint": "devices", "reason": "timeout"})`` prints
``msg="endpoint failing" endpoint=devices reason=timeout`` (logfmt) or the same keys in JSON, so a
log pipeline can select lines by field.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

__all__ = ["LEVELS", "SecretsFilter", "fields", "setup_logging"]

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
MASK = "<secret>"
#: A record's level as the --log.level flag names it.
_LEVEL_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "error",
}
#: Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
#: Keys every line starts with; a field of the same name is written with a trailing "_".
_LINE_KEYS = ("ts", "level", "logger", "msg", "exc")


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra`` fields of ``record``, in the order the caller gave them."""
    return {(f"{key}_" if key in _LINE_KEYS else key): vars(record)[key] for key in _extra(record)}


def _extra(record: logging.LogRecord) -> list[str]:
    return [k for k in vars(record) if k not in _RECORD_ATTRIBUTES and not k.startswith("_")]


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
            for key in _extra(record):
                value = vars(record)[key]
                if not isinstance(value, int | float | None):
                    setattr(record, key, self.mask(str(value)))
        return True

    def mask(self, text: str) -> str:
        """``text`` with every known secret replaced."""
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text


_TRACEBACKS = logging.Formatter()


def _entry(record: logging.LogRecord) -> dict[str, Any]:
    """Everything one line says, in the order it says it."""
    entry: dict[str, Any] = {
        "ts": _timestamp(record),
        "level": _LEVEL_NAMES.get(record.levelno, record.levelname.lower()),
        "logger": record.name,
        "msg": record.getMessage(),
        **fields(record),
    }
    if record.exc_text:  # formatted (and masked) by SecretsFilter
        entry["exc"] = record.exc_text
    return entry


class _LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{key}={_logfmt_value(v)}" for key, v in _entry(record).items())


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_entry(record), ensure_ascii=False, default=str)


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + (
        f".{int(record.msecs):03d}Z"
    )


def _logfmt_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        value = f"{value:.6g}"
    text = "" if value is None else str(value)
    if text and text.isprintable() and not any(c in text for c in ' "=\\'):
        return text
    return json.dumps(text, ensure_ascii=False)


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
