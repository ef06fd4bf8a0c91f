"""The running exporter: one config, one DMS client, one store and a poller per endpoint.

``Exporter`` owns their lifetime. ``reload`` validates a new config before touching anything and
keeps the old one when the new one is bad (blackbox_exporter's "validate, then swap").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from .config import Config, load_config
from .dms import DmsClient
from .errors import ConfigError
from .model import EndpointStatus
from .poller import EndpointPoller, wait_cancelled
from .render import GROUPS
from .store import Store

__all__ = ["Exporter", "UnknownEndpointError"]

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
        clock: Callable[[], float] = time.time,
        on_config: Callable[[Config], None] | None = None,
    ) -> None:
        """``on_config`` is called with every config applied by a reload (the CLI teaches the
        log's secrets filter the new password with it)."""
        self.config = config
        self._on_config = on_config
        self.config_file = config_file
        self.store = Store(config, clock=clock)
        self._clock = clock
        self._client: DmsClient | None = None
        self._pollers: dict[str, EndpointPoller] = {}
        self._staleness_task: asyncio.Task[None] | None = None
        self._reload_lock = asyncio.Lock()
        self._stopped = False

    async def start(self) -> None:
        """Render empty groups, then start a poller per enabled endpoint."""
        await self.store.render(GROUPS)
        self._start_pollers()
        self._staleness_task = asyncio.create_task(self._expire_stale(), name="staleness")

    async def stop(self) -> None:
        """Stop every poller and close the DMS session (after a reload in progress)."""
        async with self._reload_lock:
            self._stopped = True
            if self._staleness_task is not None:
                self._staleness_task.cancel()
                await wait_cancelled(self._staleness_task)
            await self._stop_pollers()

    async def refresh(self, endpoint: str) -> EndpointStatus:
        """Poll ``endpoint`` now; its status afterwards. A disabled endpoint is not polled."""
        if endpoint not in self.config.endpoints:
            raise UnknownEndpointError(endpoint)
        poller = self._pollers.get(endpoint)
        if poller is None:
            return self.store.status(endpoint)
        return await poller.poll_now()

    async def reload(self) -> bool:
        """Load ``config_file`` again; apply it if valid, else keep the running config."""
        async with self._reload_lock:
            if self.config_file is None or self._stopped:
                return self.config_file is None
            try:
                new = await asyncio.get_running_loop().run_in_executor(
                    None, load_config, self.config_file
                )
            except ConfigError as exc:
                for problem in str(exc).splitlines():
                    log.error(
                        "config reload failed, keeping the running config",
                        extra={"file": self.config_file, "problem": problem},
                    )
                self.store.config_reload_ok = False
                return False
            except Exception:  # a bug in validation must not leave a half-applied reload
                log.exception(
                    "config reload failed, keeping the running config",
                    extra={"file": self.config_file},
                )
                self.store.config_reload_ok = False
                return False
            if self._on_config is not None:
                self._on_config(new)
            await self._stop_pollers()
            self.config = new
            self.store.apply_config(new)
            self.store.config_reload_ok = True
            self.store.config_reload_timestamp = self._clock()
            await self.store.render(GROUPS)
            self._start_pollers()
            log.info("config reloaded", extra={"file": self.config_file})
            return True

    def _start_pollers(self) -> None:
        self._client = DmsClient(self.config.dms)
        self._client.logins.update(self.store.logins)  # counters continue across reloads
        self.store.logins = self._client.logins
        for name, settings in self.config.endpoints.items():
            if settings.enabled:
                poller = EndpointPoller(settings, self._client, self.store, clock=self._clock)
                self._pollers[name] = poller
                poller.start()

    async def _stop_pollers(self) -> None:
        pollers = list(self._pollers.values())
        self._pollers.clear()  # a refresh from now on finds no poller instead of a stopping one
        await asyncio.gather(*(p.stop() for p in pollers))
        if self._client is not None:
            self.store.logins = dict(self._client.logins)  # keep the counts across reloads
            await self._client.close()
            self._client = None

    async def _expire_stale(self) -> None:
        while True:
            await asyncio.sleep(STALENESS_CHECK_SECONDS)
            try:
                await self.store.expire_stale()
            except Exception:  # e.g. a render failure; the next check tries again
                log.exception("staleness check failed")
