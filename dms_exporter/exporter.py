"""The running exporter: one config, one DMS client, one store and a poller per endpoint.

``Exporter`` owns their lifetime. ``reload`` validates a new config before touching anything and
keeps the old one when the new one is bad (blackbox_exporter's "validate, then swap").
``apply_config`` then changes only what differs: pollers of unchanged endpoints keep running
with their tables, timers and polls in flight, and the client keeps its session and token unless
the way to reach or log in to the DMS changed. No reload empties a table that holds good data.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

from .config import Config, EndpointSettings, load_config
from .dms import DmsClient
from .errors import ConfigError
from .exposition.render import GROUPS
from .polling import snapshot
from .polling.poller import EndpointPoller, Refreshed
from .polling.store import Store
from .tasks import cancel_and_wait

__all__ = ["Exporter", "Refreshed", "UnknownEndpointError"]

log = logging.getLogger(__name__)

#: How often stale tables are looked for; staleness limits are minutes, so a second is plenty.
STALENESS_CHECK_SECONDS = 1.0


class UnknownEndpointError(KeyError):
    """A refresh asked for an endpoint that does not exist."""


class Exporter:
    """Polls the DMS in the background and keeps ``store`` up to date."""

    def __init__(
        self,
        config: Config,
        *,
        config_file: str | None = None,
        on_config: Callable[[Config], None] | None = None,
        loader: Callable[[], Config] | None = None,
        snapshot_dir: Path | None = None,
    ) -> None:
        """``on_config`` is called with every config applied by a reload (the CLI teaches the
        log's secrets filter the new password with it). ``loader`` builds the config a reload
        applies (default: ``load_config(config_file)``; the console overlays its edits).
        ``snapshot_dir``: where the last good tables are kept across restarts (None: not)."""
        self.config = config
        self._on_config = on_config
        self.config_file = config_file
        self._loader = loader
        self.store = Store(config)
        self._client: DmsClient | None = None
        self._pollers: dict[str, EndpointPoller] = {}
        self._staleness_task: asyncio.Task[None] | None = None
        self._snapshot_dir = snapshot_dir
        self._snapshot_task: asyncio.Task[None] | None = None
        self._snapshot_failing = False  # to log a failing write once, not at every poll
        self._saving: asyncio.Future[None] | None = None
        self._reload_lock = asyncio.Lock()
        #: why the last reload was rejected (one line per problem, no secrets); None if applied
        self.reload_error: str | None = None
        self._stopped = False

    async def start(self) -> None:
        """Render the tables kept on disk (or empty groups), then start a poller per enabled
        endpoint."""
        if self._snapshot_dir is not None:
            await self._restore(self._snapshot_dir)
        await self.store.render(GROUPS)
        self._client = self._new_client()
        for name, settings in self.config.endpoints.items():
            if settings.enabled:
                self._start_poller(name)
        self._staleness_task = asyncio.create_task(self._expire_stale(), name="staleness")
        if self._snapshot_dir is not None:
            self._snapshot_task = asyncio.create_task(
                self._keep_snapshot(self._snapshot_dir), name="snapshot"
            )

    async def stop(self) -> None:
        """Stop every poller and close the DMS session (after a reload in progress)."""
        async with self._reload_lock:
            self._stopped = True
            if self._staleness_task is not None:
                await cancel_and_wait(self._staleness_task)
            await self._stop_pollers(list(self._pollers))
            await self._close_client()
            if self._snapshot_task is not None and self._snapshot_dir is not None:
                await cancel_and_wait(self._snapshot_task)
                if self._saving is not None:
                    await self._saving
                await self._save(self._snapshot_dir)  # what the last polls changed

    async def refresh(self, endpoint: str) -> Refreshed:
        """Poll ``endpoint`` now, within ``refresh_min_gap`` (``EndpointPoller.refresh``); a
        disabled endpoint is not polled."""
        if endpoint not in self.config.endpoints:
            raise UnknownEndpointError(endpoint)
        poller = self._pollers.get(endpoint)
        if poller is None:
            status = self.store.status(endpoint)
            return Refreshed(status, polled=False, age=0.0, next_poll_in=0.0,
                             message=f"{endpoint} is switched off")  # fmt: skip
        return await poller.refresh()

    async def reload(self) -> bool:
        """Load ``config_file`` again; apply it if valid, else keep the running config."""
        async with self._reload_lock:
            if self.config_file is None or self._stopped:
                return self.config_file is None
            try:
                new = await asyncio.get_running_loop().run_in_executor(None, self._load)
            except ConfigError as exc:
                self.reload_error = str(exc)
                for problem in str(exc).splitlines():
                    log.error(
                        "config reload failed, keeping the running config",
                        extra={"file": self.config_file, "problem": problem},
                    )
                self.store.config_reload_ok = False
                return False
            except Exception as exc:  # a bug in validation must not leave a half-applied reload
                # the type only: the message of an unexpected error could quote the file
                self.reload_error = f"{self.config_file}: unexpected {type(exc).__name__}"
                log.exception(
                    "config reload failed, keeping the running config",
                    extra={"file": self.config_file},
                )
                self.store.config_reload_ok = False
                return False
            self.reload_error = None
            applied = await self._apply(new)
            self.store.config_reload_ok = True
            self.store.config_reload_timestamp = time.time()
            if applied:
                log.info("config reloaded", extra={"file": self.config_file})
            else:
                log.debug(
                    "config file unchanged, nothing to apply", extra={"file": self.config_file}
                )
            return True

    def _load(self) -> Config:
        if self._loader is not None:
            return self._loader()
        assert self.config_file is not None
        return load_config(self.config_file)

    async def apply_config(self, new: Config) -> None:
        """Apply an already validated config, changing only what differs (serialized with
        reloads); see the module docstring."""
        async with self._reload_lock:
            if not self._stopped and not await self._apply(new):
                log.debug("config unchanged, nothing to apply", extra={"source": new.source})

    async def _apply(self, new: Config) -> bool:
        """Change what differs between the running config and ``new``; False if nothing does.
        The caller holds the reload lock."""
        old = self.config
        if dataclasses.replace(new, source=old.source) == old:
            return False
        if self._on_config is not None:
            self._on_config(new)
        if self._staleness_task is None:  # not started: nothing runs yet
            self.config = new
            self.store.apply_config(new)
            return True
        client = self._client
        new_client = client is None or not client.same_connection(new.dms)
        restart = [
            name
            for name, settings in new.endpoints.items()
            if new_client or _needs_new_poller(old.endpoints[name], settings)
        ]
        await self._stop_pollers([name for name in restart if name in self._pollers])
        if new_client:
            await self._close_client()
        elif client is not None:
            client.reconfigure(new.dms)
        self.config = new
        groups = self.store.apply_config(new)
        if groups:
            await self.store.render(groups)
        for name, poller in self._pollers.items():
            poller.update(new.endpoints[name])
            poller.min_gap = new.refresh_min_gap
        if self._client is None:
            self._client = self._new_client()
        for name in restart:
            if new.endpoints[name].enabled:
                self._start_poller(name)
        return True

    def _new_client(self) -> DmsClient:
        """A client for the running config: the login counts continue, a backoff does not
        (a new client is made when the URL or the credentials changed)."""
        login = self.store.login
        login.next_attempt, login.refusals = None, 0
        return DmsClient(self.config.dms, login, links=self.store.links)

    async def _close_client(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _start_poller(self, name: str) -> None:
        assert self._client is not None
        poller = EndpointPoller(
            self.config.endpoints[name],
            self._client,
            self.store,
            min_gap=self.config.refresh_min_gap,
        )
        self._pollers[name] = poller
        poller.start()

    async def _stop_pollers(self, names: list[str]) -> None:
        # removed first: a refresh from now on finds no poller instead of a stopping one
        pollers = [self._pollers.pop(name) for name in names]
        await asyncio.gather(*(p.stop() for p in pollers))

    async def _restore(self, directory: Path) -> None:
        """Show the tables kept in ``directory`` until each endpoint's first poll."""
        loop = asyncio.get_running_loop()
        restored: dict[str, int] = {}
        for name, settings in self.config.endpoints.items():
            if not settings.enabled:
                continue
            kept = await loop.run_in_executor(
                None, snapshot.read, directory, name, self.config.dms.url
            )
            if kept is not None and self.store.restore(kept.table, kept.first_seen):
                restored[f"{name}_age_seconds"] = round(time.time() - kept.table.fetched_at)
        if restored:
            log.info(
                "last good data restored from disk", extra={"path": str(directory), **restored}
            )

    async def _keep_snapshot(self, directory: Path) -> None:
        """Write each table a poll changed (touch those it confirmed) as polls go."""
        while True:
            await self.store.unsaved.wait()
            # shielded: a stop waits for the write in progress instead of losing the tables
            # it took
            self._saving = asyncio.ensure_future(self._save(directory))
            await asyncio.shield(self._saving)

    async def _save(self, directory: Path) -> None:
        loop = asyncio.get_running_loop()
        url = self.config.dms.url
        for name, (table, changed) in self.store.take_unsaved().items():
            first_seen = self.store.alarm_first_seen if name == "alarms" else None
            try:
                await loop.run_in_executor(
                    None, snapshot.save, directory, table, changed, url, first_seen
                )
            except (OSError, snapshot.SnapshotError) as exc:
                if not self._snapshot_failing:
                    problem = exc.strerror if isinstance(exc, OSError) else str(exc)
                    log.warning(
                        "snapshot not written",
                        extra={"endpoint": name, "path": str(directory), "problem": problem},
                    )
                self._snapshot_failing = True
            else:
                if self._snapshot_failing:
                    log.info("snapshot written again", extra={"path": str(directory)})
                self._snapshot_failing = False

    async def _expire_stale(self) -> None:
        while True:
            await asyncio.sleep(STALENESS_CHECK_SECONDS)
            try:
                await self.store.expire_stale()
            except Exception:  # e.g. a render failure; the next check tries again
                log.exception("staleness check failed")


def _needs_new_poller(old: EndpointSettings, new: EndpointSettings) -> bool:
    """A poller is replaced (and polls at once) when its endpoint is switched on or off or
    asks the DMS something else; a change of timing alone keeps it running."""
    if not (old.enabled and new.enabled):
        return old.enabled != new.enabled
    asks = ("path", "params", "fields", "values", "envelope", "paging")
    return any(getattr(old, key) != getattr(new, key) for key in asks)
