"""The console's edits and the state file that keeps them.

``Edits`` is what an operator changed in the console: per-endpoint ``enabled`` and ``interval``,
custom descriptions, and the two switches. It is frozen; every edit makes a new one from the
latest, so two browsers editing at once each change only their own field. ``StateFile`` writes it
atomically (temporary file, fsync, rename, fsync of the directory) as JSON, or keeps it in memory
when there is no path (demo mode). ``overlay`` puts the edits over a config mapping, so the
config's own validator checks the result and a console value has the same meaning as in YAML.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ...errors import ConfigError
from ...model import ENDPOINTS

__all__ = [
    "MAX_DESCRIPTION",
    "RETRIEVALS",
    "Edits",
    "StateFile",
    "atomic_write",
    "check_description",
    "overlay",
    "remove_leftovers",
]

#: Longest custom description the console accepts (characters); a label value, so kept short.
MAX_DESCRIPTION = 200
RETRIEVALS = ("active", "all")
_VERSION = 1


@dataclass(frozen=True, slots=True)
class Edits:
    """Values set in the console; a key that is absent means "as in the config file"."""

    enabled: Mapping[str, bool] = field(default_factory=dict)  # endpoint -> on/off
    interval: Mapping[str, float] = field(default_factory=dict)  # endpoint -> seconds
    descriptions: Mapping[str, str] = field(default_factory=dict)  # device id -> text
    allow_schedule_authorization: bool | None = None
    alarm_retrieval: str | None = None

    def set(self, attr: str, key: str | None, value: Any) -> Edits:
        """A copy with ``attr`` (or ``attr[key]``) set; ``value`` None removes it (revert)."""
        if key is not None:
            updated = dict(getattr(self, attr))
            if value is None:
                updated.pop(key, None)
            else:
                updated[key] = value
            value = updated
        changes: dict[str, Any] = {attr: value}
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"version": _VERSION}
        endpoints: dict[str, dict[str, Any]] = {}
        for name in ENDPOINTS:
            entry: dict[str, Any] = {}
            if name in self.enabled:
                entry["enabled"] = self.enabled[name]
            if name in self.interval:
                entry["interval"] = self.interval[name]
            if entry:
                endpoints[name] = entry
        if endpoints:
            data["endpoints"] = endpoints
        if self.descriptions:
            data["descriptions"] = dict(sorted(self.descriptions.items()))
        if self.allow_schedule_authorization is not None:
            data["allow_schedule_authorization"] = self.allow_schedule_authorization
        if self.alarm_retrieval is not None:
            data["alarm_retrieval"] = self.alarm_retrieval
        return data

    @classmethod
    def from_json(cls, data: Any, source: str) -> Edits:
        """Validate a state file's content; ``ConfigError`` naming ``source`` and the key."""

        def fail(key: str, problem: str) -> ConfigError:
            return ConfigError(f"{source}: {key}: {problem}")

        if not isinstance(data, dict):
            raise fail("(top)", "must be a JSON object")
        unknown = set(data) - {
            "version",
            "endpoints",
            "descriptions",
            "allow_schedule_authorization",
            "alarm_retrieval",
        }
        if unknown:
            raise fail(sorted(unknown)[0], "unknown key")
        if data.get("version", _VERSION) != _VERSION:
            raise fail("version", f"must be {_VERSION}, got {data.get('version')!r}")
        enabled: dict[str, bool] = {}
        interval: dict[str, float] = {}
        endpoints = data.get("endpoints", {})
        if not isinstance(endpoints, dict):
            raise fail("endpoints", "must be an object")
        for name, entry in endpoints.items():
            key = f"endpoints.{name}"
            if name not in ENDPOINTS:
                raise fail(key, "unknown endpoint")
            if not isinstance(entry, dict) or set(entry) - {"enabled", "interval"}:
                raise fail(key, "must be an object with enabled and/or interval")
            if "enabled" in entry:
                if not isinstance(entry["enabled"], bool):
                    raise fail(f"{key}.enabled", "must be true or false")
                enabled[name] = entry["enabled"]
            if "interval" in entry:
                seconds = entry["interval"]
                if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                    raise fail(f"{key}.interval", "must be a number of seconds")
                interval[name] = float(seconds)
        descriptions = data.get("descriptions", {})
        if not isinstance(descriptions, dict):
            raise fail("descriptions", "must be an object")
        for device_id, text in descriptions.items():
            problem = check_description(text) if isinstance(text, str) else "must be text"
            if problem:
                raise fail(f"descriptions.{device_id}", problem)
        schedules = data.get("allow_schedule_authorization")
        if schedules is not None and not isinstance(schedules, bool):
            raise fail("allow_schedule_authorization", "must be true or false")
        retrieval = data.get("alarm_retrieval")
        if retrieval is not None and retrieval not in RETRIEVALS:
            raise fail("alarm_retrieval", 'must be "active" or "all"')
        return cls(enabled, interval, dict(descriptions), schedules, retrieval)


def check_description(text: str) -> str | None:
    """Why ``text`` cannot be a custom description, or None if it can."""
    if len(text) > MAX_DESCRIPTION:
        return f"at most {MAX_DESCRIPTION} characters, got {len(text)}"
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        return "must be one line of text (no control characters)"
    return None


def overlay(data: Any, edits: Edits, *, descriptions: bool = True) -> Any:
    """``data`` (a config mapping as YAML gives it) with ``edits`` over it.

    Descriptions go over ``display_names.devices`` (so they win over the file's and the inline
    ones) unless ``descriptions`` is false (they are kept in ``display_names.file`` instead).
    Anything that is not a mapping is returned as is, for the validator to reject.
    """
    if not isinstance(data, Mapping):
        return data
    out = dict(data)

    def section(parent: dict[str, Any], key: str) -> dict[str, Any]:
        value = parent.get(key)
        child = dict(value) if isinstance(value, Mapping) else {}
        if value is not None and not isinstance(value, Mapping):
            return {}  # not a mapping: leave it for the validator to name
        parent[key] = child
        return child

    for name in ENDPOINTS:
        if name in edits.enabled or name in edits.interval:
            endpoint = section(section(out, "endpoints"), name)
            if name in edits.enabled:
                endpoint["enabled"] = edits.enabled[name]
            if name in edits.interval:
                endpoint["interval"] = edits.interval[name]
    if descriptions and edits.descriptions:
        names = section(out, "display_names")
        names["devices"] = {**(names.get("devices") or {}), **edits.descriptions}
    if edits.allow_schedule_authorization is not None:
        out["allow_schedule_authorization"] = edits.allow_schedule_authorization
    if edits.alarm_retrieval is not None:
        section(out, "alarms")["retrieval"] = edits.alarm_retrieval
    return out


class StateFile:
    """Where the edits are kept: a JSON file, or memory only when ``path`` is None."""

    def __init__(self, path: str | None) -> None:
        self.path = path

    def load(self) -> Edits:
        """The saved edits (none if the file does not exist yet); ``ConfigError`` if bad."""
        if self.path is None:
            return Edits()
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return Edits()
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{self.path}: not a console state file: {exc}") from None
        return Edits.from_json(data, self.path)

    def save(self, edits: Edits) -> None:
        """Write ``edits`` atomically; ``OSError`` if it cannot (then nothing changed)."""
        if self.path is not None:
            text = json.dumps(edits.to_json(), indent=2, ensure_ascii=False) + "\n"
            atomic_write(self.path, text)


def atomic_write(path: str, text: str) -> None:
    """Replace ``path`` with ``text``: a reader sees the old file or the new one, never half,
    and after a crash the file is one or the other (temporary file, fsync, rename, dir fsync;
    a temporary file a kill left behind is removed by ``remove_leftovers`` at the next start)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(path), dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(path):
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_leftovers(path: str) -> list[str]:
    """Remove the temporary files of ``path`` that ``atomic_write`` left when the process was
    killed between writing and renaming; their names."""
    directory = os.path.dirname(os.path.abspath(path))
    prefix = _temporary_prefix(path)
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    removed = []
    for name in names:
        if name.startswith(prefix) and _MKSTEMP_SUFFIX.fullmatch(name[len(prefix) :]):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, name))
                removed.append(os.path.join(directory, name))
    return removed


def _temporary_prefix(path: str) -> str:
    return f".{os.path.basename(path)}."


#: What ``tempfile.mkstemp`` puts after the prefix.
_MKSTEMP_SUFFIX = re.compile(r"[a-z0-9_]{8}")
