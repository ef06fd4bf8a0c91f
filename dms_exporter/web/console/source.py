"""Where the running config comes from: the YAML file (or the demo mapping) plus console edits.

The file's mapping is kept as last read (a console edit must not pick up a YAML change nobody
reloaded); ``load`` reads the file again, for ``SIGHUP`` and ``POST /-/reload``, and overlays the
edits, so a reload with the YAML unchanged keeps them. Custom descriptions go to the state file,
or, when the config names a ``display_names.file``, into that file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import yaml  # type: ignore[import-untyped]

from ...config import Config, config_from_mapping
from ...config.load import read_yaml
from .state import Edits, StateFile, atomic_write, overlay, remove_leftovers

__all__ = ["ConfigSource"]


class ConfigSource:
    """The config file's mapping (or a given one), the edits and the file they are kept in."""

    def __init__(
        self, state: StateFile, *, path: str | None = None, mapping: Any = None, name: str = ""
    ) -> None:
        """``path``: the config file; else ``mapping`` (demo) named ``name`` in messages.
        Raises ``ConfigError`` for an unreadable config or state file."""
        self.path = path
        self.name = path or name or "<demo>"
        self.state = state
        self.edits = state.load()
        self._base: Any = read_yaml(path) if path is not None else mapping
        self._file_config: tuple[Any, Config] | None = None

    # -- building configs ----------------------------------------------------------------

    def load(self) -> Config:
        """Read the config file again and overlay the edits (a reload); ``ConfigError``."""
        base = read_yaml(self.path) if self.path is not None else self._base
        config = self._build(base, self.edits)
        self._base = base
        return config

    @property
    def base(self) -> object:
        """The file's mapping as last read: a new object after every reload (an identity)."""
        return self._base

    def build(self, edits: Edits) -> Config:
        """The config ``edits`` give over the file as last read; ``ConfigError`` if invalid."""
        return self._build(self._base, edits)

    def file_config(self) -> Config:
        """The config without console edits (what dms.yml says), for "overrides" notes."""
        cached = self._file_config
        if cached is None or cached[0] is not self._base:
            cached = self._file_config = (self._base, self._build(self._base, Edits()))
        return cached[1]

    def _build(self, base: Any, edits: Edits) -> Config:
        data = overlay(base, edits, descriptions=self.descriptions_file is None)
        return config_from_mapping(data, self.name)

    # -- descriptions --------------------------------------------------------------------

    @property
    def inline_descriptions(self) -> Mapping[str, Any]:
        """``display_names.devices`` of the config file (console edits not included)."""
        names = _section(_section(self._base, "display_names"), "devices")
        return names

    @property
    def descriptions_file(self) -> str | None:
        """The config's ``display_names.file``, resolved, if it names one."""
        name = _section(self._base, "display_names").get("file")
        if not isinstance(name, str) or not name.strip():
            return None
        base_dir = os.path.dirname(self.path) if self.path else "."
        return os.path.join(base_dir or ".", os.path.expanduser(name))

    def remove_leftovers(self) -> list[str]:
        """Remove the temporary files of saves a kill interrupted (the state file's and the
        descriptions file's); their names. Only at start: no save runs yet."""
        paths = (self.state.path, self.descriptions_file)
        return [name for path in paths if path for name in remove_leftovers(path)]

    def write_description(self, device_id: str, text: str | None) -> None:
        """Set (or with None remove) one entry of ``display_names.file``, atomically."""
        path = self.descriptions_file
        assert path is not None
        names = dict(_section({"names": read_yaml(path, quote=False)}, "names"))
        if text is None:
            names.pop(device_id, None)
        else:
            names[device_id] = text
        atomic_write(path, yaml.safe_dump(names, allow_unicode=True, sort_keys=True))


def _section(data: Any, key: str) -> Mapping[str, Any]:
    value = data.get(key) if isinstance(data, Mapping) else None
    return value if isinstance(value, Mapping) else {}
