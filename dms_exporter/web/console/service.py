"""Console edits: validate, keep, apply; one at a time, each on the latest state.

Every edit runs under one lock: it takes the latest ``Edits``, changes its one field, builds the
config (the config's own validator judges the value), writes the state file, and only then
applies the config through ``Exporter.apply_config``. A value the validator rejects, or a state
file that cannot be written, raises ``EditError`` and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ...config import Config
from ...errors import ConfigError
from ...exporter import Exporter

# the metrics' rule for services per device, so the page shows exactly the series' values
from ...exposition.families.authorization import authorized_services_per_device
from ...model import ENDPOINTS
from .devices import DeviceIndexCache
from .source import ConfigSource
from .state import Edits, check_description

__all__ = ["INDEX_CHECK_SECONDS", "Console", "EditError"]

log = logging.getLogger(__name__)

#: How often the devices index is checked against the devices table (a cheap identity test).
INDEX_CHECK_SECONDS = 1.0


class EditError(Exception):
    """An edit that was refused: ``field`` names the form field, ``message`` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Console:
    """The console's model: the exporter it edits, the config source and the device index."""

    def __init__(self, exporter: Exporter, source: ConfigSource) -> None:
        self.exporter = exporter
        self.source = source
        self.devices = DeviceIndexCache()
        self._lock = asyncio.Lock()
        self._authorized: tuple[tuple[Any, ...], list[Any]] | None = None

    async def set_endpoint(
        self, name: str, *, enabled: bool | None = None, interval: str | None = None
    ) -> None:
        """Switch an endpoint on/off and/or set its interval (a duration, as in YAML)."""
        self._known_endpoint(name)
        if enabled is not None:
            await self._edit("enabled", lambda e: e.set("enabled", name, enabled), name)
        if interval is not None:
            await self._edit("interval", lambda e: e.set("interval", name, interval.strip()), name)

    async def revert_endpoint(self, name: str, field: str) -> None:
        """Drop the console's value of ``field`` (enabled or interval): the file's applies."""
        self._known_endpoint(name)
        if field not in ("enabled", "interval"):
            raise EditError("revert", f"unknown field {field!r}")
        await self._edit(field, lambda e: e.set(field, name, None), name, revert=True)

    async def set_description(self, device_id: str, text: str | None) -> None:
        """Set (None: revert) a device's custom description."""
        if text is not None:
            text = text.strip()
            problem = check_description(text)
            if problem:
                raise EditError("description", problem)
        devices = self.exporter.store.tables["devices"]
        known = devices is None or any(d.id == device_id for d in devices.rows)
        if not known and device_id not in self.source.edits.descriptions:
            raise EditError("description", f"unknown device {device_id!r}")
        if self.source.descriptions_file is None:
            await self._edit(
                "description",
                lambda e: e.set("descriptions", device_id, text),
                device_id,
                revert=text is None,
            )
            return
        if device_id in self.source.inline_descriptions:
            raise EditError(
                "description",
                "set in the config file (display_names.devices), which wins over "
                "display_names.file: change it there",
            )
        async with self._lock:
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(None, self.source.write_description, device_id, text)
            except (OSError, ConfigError) as exc:
                raise EditError("description", _why(exc)) from None
            await self._apply("description", self.source.edits)
            kept_in = self.source.descriptions_file
            _log_edit("description", device_id, revert=text is None, kept_in=kept_in)

    async def set_setting(self, name: str, value: bool | str | None) -> None:
        """Set (None: revert) ``allow_schedule_authorization`` or ``alarm_retrieval``."""
        if name not in ("allow_schedule_authorization", "alarm_retrieval"):
            raise EditError("setting", f"unknown setting {name!r}")
        await self._edit(name, lambda e: e.set(name, None, value), "", revert=value is None)

    async def authorized_services(self) -> list[tuple[str, str, tuple[Any, ...]]]:
        """Per device: id, display key and its ``dms_device_authorized_services`` values as
        (source, count) pairs, by the metrics' own rule; computed in a worker thread once per
        tables and settings."""
        store = self.exporter.store
        key = (store.tables["authorizations"], store.tables["devices"], store.context)
        cached = self._authorized
        if cached is None or any(a is not b for a, b in zip(cached[0], key, strict=True)):
            result = await asyncio.get_running_loop().run_in_executor(
                None, authorized_services_per_device, *key
            )
            cached = self._authorized = (key, result)
        return cached[1]

    async def keep_index_fresh(self, every: float = INDEX_CHECK_SECONDS) -> None:
        """Rebuild the devices index soon after the devices table or the descriptions change,
        once the Devices page has been viewed, so a page view rarely waits for a build."""
        store = self.exporter.store
        while True:
            await asyncio.sleep(every)
            if self.devices.current is not None:
                try:
                    await self.devices.get(store.tables["devices"], store.context)
                except Exception:  # a bug here must not end the loop; the page builds it too
                    log.exception("devices index build failed")

    # -- internals -----------------------------------------------------------------------

    def _known_endpoint(self, name: str) -> None:
        if name not in ENDPOINTS:
            raise EditError("endpoint", f"unknown endpoint {name!r}")

    async def _edit(
        self, field: str, change: Callable[[Edits], Edits], subject: str, *, revert: bool = False
    ) -> None:
        async with self._lock:
            edits = change(self.source.edits)
            base = self.source.base
            config = self._build(field, edits)
            # an interval typed as text ("2m") is kept as the seconds the validator read
            edits = replace(
                edits, interval={n: config.endpoints[n].interval for n in edits.interval}
            )
            try:
                await asyncio.get_running_loop().run_in_executor(
                    None, self.source.state.save, edits
                )
            except OSError as exc:
                raise EditError(field, _why(exc)) from None
            self.source.edits = edits
            await self._apply_over_latest_file(config, base)
            _log_edit(field, subject, revert=revert, kept_in=self.source.state.path)

    async def _apply(self, field: str, edits: Edits) -> None:
        base = self.source.base
        await self._apply_over_latest_file(self._build(field, edits), base)

    async def _apply_over_latest_file(self, config: Config, base: object) -> None:
        """Apply ``config``, built over the file's mapping ``base``; if a reload has read the
        file since (and applied it with the edits it saw then), apply the latest edits over
        what it read, so neither the reload nor the edit is lost."""
        await self.exporter.apply_config(config)
        while self.source.base is not base:
            base = self.source.base
            try:
                config = self.source.build(self.source.edits)
            except ConfigError as exc:  # the reload itself would have been refused the same
                log.warning("console edits do not fit the reloaded file", extra={"error": str(exc)})
                return
            await self.exporter.apply_config(config)

    def _build(self, field: str, edits: Edits) -> Config:
        try:
            return self.source.build(edits)
        except ConfigError as exc:
            raise EditError(field, _why(exc, self.source.name)) from None


def _log_edit(field: str, subject: str, *, revert: bool, kept_in: str | None) -> None:
    """One info line per applied console edit: what changed, not the value (an audit trail)."""
    log.info(
        "console edit reverted" if revert else "console edit applied",
        extra={"field": field, "subject": subject, "kept_in": kept_in or "memory"},
    )


def _why(exc: Exception, source: str = "") -> str:
    """A short reason for the page: without the config file's name in front."""
    if isinstance(exc, OSError):
        return f"cannot write {exc.filename or 'the state file'}: {exc.strerror or exc}"
    return str(exc).removeprefix(f"{source}: ")
