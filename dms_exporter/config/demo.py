"""The in-memory config of ``--demo``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .settings import Config
from .validate import config_from_mapping

__all__ = ["demo_config", "demo_mapping"]


def demo_config(base_url: str, username: str, password: str, **overrides: Any) -> Config:
    """An in-memory config for ``--demo``: every endpoint every 5 s, alarms every 2 s.

    ``overrides`` are top-level config keys, merged recursively over the demo's mapping.
    """
    return config_from_mapping(demo_mapping(base_url, username, password, **overrides), "<demo>")


def demo_mapping(base_url: str, username: str, password: str, **overrides: Any) -> dict[str, Any]:
    """The mapping ``demo_config`` validates (the console overlays its edits on it)."""
    data: dict[str, Any] = {
        "dms": {"url": base_url, "username": username, "password": password, "proxy": "direct"},
        "defaults": {"interval": "5s"},
        "endpoints": {"alarms": {"interval": "2s"}},
    }
    return _merged(data, overrides)


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = _merged(old, value)
        else:
            out[key] = value
    return out
