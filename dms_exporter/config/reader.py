"""The generic config reader: typed checks of one value each, every problem collected with the
source and the dotted key, a bad key abandoned without stopping the rest."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any, NoReturn
from urllib.parse import urlsplit

__all__ = ["Reader", "join_key", "type_name", "value_or"]

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
#: Longer than any sensible interval or timeout, and small enough for float and asyncio.
_MAX_DURATION = 365 * 86400
_DURATION_WHAT = 'a duration like "30s" or a number of seconds'
_SECRET_KEYS = frozenset({"dms.password"})
#: ``user:password@`` in a URL, masked in messages: up to the last ``@``, since a password may
#: hold a ``/`` (which ends the authority for ``urlsplit``), a space or even an ``@``.
_USERINFO = re.compile(r"//.*@")


class _Skip(Exception):
    """Raised by ``Reader.fail`` once the problem is recorded: abandons the current key."""


class Reader:
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
        """Record a problem and carry on reading; once, even when it is met again (a bad
        ``defaults`` key is read for every endpoint)."""
        line = f"{self.source}: {key}: {problem}" if key else f"{self.source}: {problem}"
        if line not in self.problems:
            self.problems.append(line)

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
            return f"a {type_name(value)}"
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
                self.note(
                    join_key(key, name), f"unknown key (expected one of: {', '.join(allowed)})"
                )
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
        if _USERINFO.search(text):  # before parsing: a parse error would quote the password
            hint = (
                "use dms.username and dms.password"
                if key.startswith("dms.url")
                else "not supported"
            )
            self.fail(key, f"must not hold credentials (user:password@): {hint}")
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as exc:
            self.fail(key, f"is not a valid URL ({exc}), got {self.show(key, text)}")
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
            if self.keep(self.string_item, join_key(key, name), name, item):
                result[name] = str(item)
        return result

    def string_item(self, key: str, name: Any, item: Any) -> bool:
        if not isinstance(name, str):
            self.fail(key, f"the key must be text, YAML read a {type_name(name)}: quote it")
        self.expect(key, item, (str, int, float), "a string")
        return True


def value_or(m: Mapping[str, Any], key: str, default: Any) -> Any:
    """``m[key]``, or ``default`` when it is missing or null."""
    value = m.get(key)
    return default if value is None else value


def join_key(key: str, name: object) -> str:
    return f"{key}.{name}" if key else str(name)


def type_name(value: Any) -> str:
    names = {dict: "mapping", list: "list", bool: "boolean", int: "number", float: "number"}
    return names.get(type(value), type(value).__name__)
