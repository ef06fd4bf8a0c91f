"""The in-process handle: start a simulator on a port, change it, stop it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

from aiohttp import web

from .auth import Authenticator
from .catalog import ENDPOINTS
from .clock import Clock, iso
from .control import CONTROL_PATH, control_app
from .faults import FaultBook, parse_fault_spec
from .server import BASE_PATH, DmsApi, error_response
from .shapes import LIST_SHAPES, LOGIN_SHAPES, ListShape, LoginShape
from .world import World

log = logging.getLogger("dms_exporter.simulator")

P = ParamSpec("P")
R = TypeVar("R")


def _on_world(method: Callable[Concatenate[World, P], R]) -> Callable[Concatenate[Simulator, P], R]:
    """A ``Simulator`` method that calls ``method`` on the simulator's world."""

    @functools.wraps(method)
    def call(sim: Simulator, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return method(sim.world, *args, **kwargs)

    return call


class Simulator:
    """A simulated Harmonic DMS serving real HTTP. ``await start()`` generates the population
    and binds the port (0 = any free one); ``await stop()`` cleans up. Also an async context
    manager. Control methods mirror the ``/_sim`` API."""

    def __init__(
        self,
        devices: int = 100,
        seed: int = 1,
        frozen: bool = False,
        auth: str = "token",
        bare_arrays: bool = False,
        token_ttl: float = 3600.0,
        change_rate: float = 0.01,
        tick_interval: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "monitor",
        password: str = "monitor-secret",
        *,
        faults: Iterable[str | Mapping[str, Any]] = (),
        base_path: str = BASE_PATH,
        paths: Mapping[str, str] | None = None,
        field_names: Mapping[str, Mapping[str, str]] | None = None,
        start_time: float | None = None,
        access_log: bool = False,
        role: str | None = None,
        list_shape: str | ListShape | None = None,
        login_shape: str | LoginShape = "default",
    ) -> None:
        """``role`` overrides the ``role`` of ``/system/info`` (``BACKUP`` for a standby DMS);
        also changeable while running with ``set_role``. ``list_shape`` and ``login_shape`` are
        a preset name of ``shapes.LIST_SHAPES`` / ``shapes.LOGIN_SHAPES`` or a shape;
        ``list_shape`` None is the documented envelope (or ``bare_arrays``)."""
        if devices < 1:
            raise ValueError("devices must be at least 1")
        self.devices, self.seed, self.frozen = devices, seed, frozen
        self.bare_arrays, self.change_rate, self.tick_interval = (
            bare_arrays,
            change_rate,
            tick_interval,
        )
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""
        self.paths, self.field_names = dict(paths or {}), dict(field_names or {})
        self.clock = Clock(frozen=frozen, start=start_time)
        self.list_shape = _shape(LIST_SHAPES, list_shape) if list_shape is not None else None
        self.login_shape = _shape(LOGIN_SHAPES, login_shape)
        self.auth = Authenticator(
            auth, username, password, token_ttl, self.clock, login=self.login_shape
        )
        self.faults = FaultBook()
        for spec in faults:
            self.add_fault(**(parse_fault_spec(spec) if isinstance(spec, str) else dict(spec)))
        self.request_counts: dict[str, int] = dict.fromkeys(ENDPOINTS, 0)
        self.role = role
        #: API requests being answered now, and the most at once since the last reset
        self.in_flight = 0
        self.peak_in_flight = 0
        self._access_log = access_log
        self._world: World | None = None
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Simulator(devices={self.devices}, seed={self.seed}, url={self.base_url!r})"

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> Simulator:
        """Generate the population, bind the port and start serving (and ticking). Started
        again after ``stop``, it serves the same world on the same port: a DMS restart keeps
        its database."""
        if self._runner is not None:
            return self
        if self._world is None:
            self._world = await asyncio.to_thread(
                World.create, self.devices, self.seed, self.clock, self.change_rate
            )
        if self.role is not None:
            self._world.set_role(self.role)
        app = self._app()
        self._runner = web.AppRunner(
            app, access_log=log if self._access_log else None, handle_signals=False
        )
        await self._runner.setup()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            await self._runner.cleanup()
            self._runner = None
            raise
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        if not self.frozen and self.change_rate > 0 and self.tick_interval > 0:
            self._ticker = asyncio.create_task(self._tick_forever(), name="dms-simulator-tick")
        log.info(
            "DMS simulator started",
            extra={
                "url": self.base_url,
                "devices": self.devices,
                "seed": self.seed,
                "auth": self.auth.mode,
                "username": self.username,
                "frozen": self.frozen,
            },
        )
        return self

    async def stop(self) -> None:
        """Stop ticking and serving; safe to call twice."""
        # cancelled as the exporter's failback check is: the simulator imports nothing of it
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Simulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            try:
                self.world.tick()
            except Exception:  # a bug in the dynamics must not stop the server
                log.exception("simulator tick failed")

    def _app(self) -> web.Application:
        api = DmsApi(
            self.world,
            self.faults,
            self.auth,
            self.request_counts,
            self.bare_arrays,
            self.field_names,
            self.list_shape,
        )
        app = web.Application(middlewares=[self._count_in_flight, _json_errors(self.base_path)])
        app.add_routes(api.routes(self.base_path, self.paths))
        app.add_subapp(CONTROL_PATH, control_app(self))
        return app

    @web.middleware
    async def _count_in_flight(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Count the API requests being answered at once (the control API does not count)."""
        if request.path.startswith(CONTROL_PATH):
            return await handler(request)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await handler(request)
        finally:
            self.in_flight -= 1

    # -- addresses -----------------------------------------------------------------------

    @property
    def _url_host(self) -> str:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"[{host}]" if ":" in host else host

    @property
    def root_url(self) -> str:
        """``http://host:port``."""
        return f"http://{self._url_host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The DMS API base URL, e.g. ``http://127.0.0.1:8480/dms-api/v1``."""
        return self.root_url + self.base_path

    @property
    def control_url(self) -> str:
        """The control API URL, e.g. ``http://127.0.0.1:8480/_sim``."""
        return self.root_url + CONTROL_PATH

    @property
    def world(self) -> World:
        """The in-memory population (after ``start``)."""
        if self._world is None:
            raise RuntimeError("the simulator is not started")
        return self._world

    # -- control -------------------------------------------------------------------------

    def add_fault(self, endpoint: str, kind: str, count: int | None = None, **params: Any) -> str:
        """Add a fault (see ``faults.FAULT_KINDS``); returns its id. ``count`` None: until
        cleared. ``skip=N`` lets N requests through first."""
        return self.faults.add(endpoint, kind, count, **params).id

    def clear_faults(self, fault_id: str | None = None) -> int:
        """Remove one fault or all of them; returns how many went."""
        return self.faults.clear(fault_id)

    # the World's own methods, with their signatures and docstrings (after ``start``)
    raise_alarm = _on_world(World.raise_alarm)
    clear_alarm = _on_world(World.clear_alarm)
    set_device = _on_world(World.set_device)
    set_destination = _on_world(World.set_destination)

    def revoke_tokens(self) -> int:
        """Revoke every token issued so far (their next call gets 401 TOKEN_REVOKED)."""
        return self.auth.revoke_all()

    def expire_tokens(self) -> int:
        """Expire every token issued so far (their next call gets 401 TOKEN_EXPIRED)."""
        return self.auth.expire_all()

    def advance_clock(self, seconds: float) -> float:
        """Move the simulated clock (frozen or not); schedule states follow. Returns the new
        time in Unix seconds."""
        now = self.clock.advance(seconds)
        self.world.sync()
        return now

    def tick(self) -> None:
        """Run one step of the dynamics now (also in frozen mode)."""
        self.world.tick()

    def reset_request_counts(self) -> None:
        """Set every request count back to 0, and the peak concurrency to the requests in
        flight now."""
        for key in self.request_counts:
            self.request_counts[key] = 0
        self.peak_in_flight = self.in_flight

    def set_role(self, role: str) -> str:
        """Make ``/system/info`` report ``role`` (``PRIMARY``, ``BACKUP``, ``STANDALONE``)."""
        self.role = role
        self.world.set_role(role)
        return role

    def state(self) -> dict[str, Any]:
        """What ``GET /_sim/state`` answers: counts, clock, faults, request counts."""
        return {
            "clock": iso(self.clock.now()),
            "frozen": self.frozen,
            "seed": self.seed,
            "auth": self.auth.mode,
            "bareArrays": self.bare_arrays,
            "listShape": repr(self.list_shape) if self.list_shape else "documented",
            "loginShape": repr(self.login_shape),
            "baseUrl": self.base_url,
            "counts": self.world.counts(),
            "faults": [f.to_json() for f in self.faults.faults],
            "requestCounts": dict(self.request_counts),
            "inFlight": self.in_flight,
            "peakInFlight": self.peak_in_flight,
            "role": self.world.system["role"],
            "tokens": self.auth.token_count,
        }


def _shape(presets: Mapping[str, Any], shape: Any) -> Any:
    if isinstance(shape, str):
        if shape not in presets:
            raise ValueError(f"unknown shape {shape!r}; one of {', '.join(presets)}")
        return presets[shape]
    return shape


def _json_errors(base_path: str) -> Any:
    """Middleware: 404/405 under the DMS base path in the DMS error shape."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if request.path.startswith(CONTROL_PATH) or not request.path.startswith(base_path):
                raise
            code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status, "HTTP_ERROR")
            return error_response(
                exc.status, code, f"{request.method} {request.path}: {exc.reason}"
            )

    return middleware


@asynccontextmanager
async def start_simulator(**kwargs: Any) -> AsyncIterator[Simulator]:
    """``async with start_simulator(devices=50, seed=1, frozen=True) as sim:`` a running
    simulator on a free port of 127.0.0.1, stopped on exit. Takes ``Simulator``'s arguments."""
    sim = Simulator(**kwargs)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()
