"""An HTTP listener that holds under abuse: aiohttp's request handling behind connection limits.

- request headers must arrive within ``header_timeout`` of a connection's (or a request's) first
  byte, and a keep-alive connection idle for ``idle_timeout`` is closed (aiohttp alone waits an
  hour and has no header limit, so idle sockets pile up until the process runs out of files);
- at most ``max_connections`` at once, below the file limit: when full, the connection that has
  waited longest without sending a request is closed to make room, so a scrape always gets in;
- accept errors (``Too many open files``) are one log line per interval with a count;
- malformed requests and clients that hang up are debug lines without a traceback.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import resource
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

__all__ = [
    "GuardedSite",
    "default_max_connections",
    "quiet_server_logger",
    "rate_limit_accept_errors",
    "track_requests",
]

log = logging.getLogger(__name__)

HEADER_TIMEOUT_SECONDS = 10.0
IDLE_TIMEOUT_SECONDS = 75.0
#: Connections accepted per wake-up: asyncio accepts up to its backlog in one go, before any of
#: them can be counted against the cap. The kernel's listen queue is longer (LISTEN_QUEUE), so a
#: client's connection waits there instead of being dropped.
ACCEPT_BATCH = 32
LISTEN_QUEUE = 1024
#: Files kept free below the file limit: connections closed to make room are released one loop
#: turn later, so two accept batches, plus DMS sessions, logs and config reads.
RESERVED_FILES = 2 * ACCEPT_BATCH + 128
ACCEPT_ERROR_LOG_INTERVAL = 10.0
#: The soft file limit the exporter raises itself to when the hard limit allows (as the deploy
#: files set): every connection is a file.
FILE_LIMIT = 65536
_SWEEP_SECONDS = 1.0
#: A first request whose head (request line and headers) is longer than this is refused; aiohttp
#: refuses a line over 8,190 bytes itself.
MAX_HEAD_BYTES = 64 << 10
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def default_max_connections() -> int:
    """The connection cap: the process's file limit less a reserve."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(16, soft - RESERVED_FILES)


def raise_file_limit() -> int:
    """Raise the soft file limit toward the hard one (as Go programs do), up to FILE_LIMIT;
    the soft limit after. Nothing is asked when it is already there (the systemd unit's
    syscall filter forbids setrlimit; its LimitNOFILE sets both limits)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = FILE_LIMIT if hard == resource.RLIM_INFINITY else min(hard, FILE_LIMIT)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


class _Connection(asyncio.Protocol):
    """One connection. aiohttp's protocol is made only once the first request's headers are
    complete, so a connection that never sends them (the usual idle attack) costs a buffer of a
    few bytes instead of a parser and a task; after that, bytes pass straight through."""

    def __init__(self, site: GuardedSite, factory: Callable[[], asyncio.Protocol]) -> None:
        self.site = site
        self.factory = factory
        self.inner: Any = None  # aiohttp's RequestHandler, once made
        self.buffer = bytearray()  # the first request's head until it is complete
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a request is being handled
        self.since = time.monotonic()  # start of the current wait (headers or idle)
        self.waiting_headers = True  # False while idle between requests

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if not self.site.admit(self):
            transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
            if not self.busy and not self.waiting_headers:
                self.waiting_headers, self.since = True, time.monotonic()
                self.site.waited(self)
            self.inner.data_received(data)
            return
        self.buffer += data
        if b"\n\r\n" in self.buffer or b"\n\n" in self.buffer:  # the head is complete
            self.inner = self.factory()
            self.inner.connection_made(self.transport)
            head, self.buffer = bytes(self.buffer), bytearray()
            self.inner.data_received(head)
        elif len(self.buffer) > MAX_HEAD_BYTES:
            log.debug("request head too large", extra={"bytes": len(self.buffer)})
            self.close()

    def eof_received(self) -> bool | None:
        if self.inner is None:
            return False  # hung up before a whole request: close
        return self.inner.eof_received()  # type: ignore[no-any-return]

    def connection_lost(self, exc: Exception | None) -> None:
        self.site.connections.pop(self, None)
        if self.inner is not None:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def request_started(self) -> None:
        self.busy = True

    def request_done(self) -> None:
        self.busy, self.waiting_headers, self.since = False, False, time.monotonic()
        self.site.waited(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


@web.middleware
async def track_requests(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Tell the connection a request arrived and when it is done (outermost middleware)."""
    transport = request.transport
    connection = transport.get_protocol() if transport is not None else None
    if not isinstance(connection, _Connection):  # e.g. a test server without GuardedSite
        return await handler(request)
    connection.request_started()
    try:
        return await handler(request)
    finally:
        connection.request_done()


class GuardedSite(web.BaseSite):
    """A TCP site with the limits above; use instead of ``web.TCPSite``."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str | None,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int | None = None,
        header_timeout: float = HEADER_TIMEOUT_SECONDS,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=ACCEPT_BATCH)
        self._host, self._port = host, port
        self.max_connections = max_connections or default_max_connections()
        self.header_timeout = header_timeout
        self.idle_timeout = idle_timeout
        #: Open connections, ordered by the start of their current wait (oldest first).
        self.connections: OrderedDict[_Connection, None] = OrderedDict()
        self.evicted = 0
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host or '0.0.0.0'}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        self._server = await loop.create_server(
            lambda: _Connection(self, server),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=True,
            ssl_handshake_timeout=self.header_timeout if self._ssl_context else None,
        )
        for listener in self._server.sockets:  # asyncio listened with ACCEPT_BATCH
            with socket.socket(fileno=os.dup(listener.fileno())) as sock:
                sock.listen(LISTEN_QUEUE)
        self._sweeper = asyncio.create_task(self._sweep(), name="connection-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        await super().stop()

    def admit(self, connection: _Connection) -> bool:
        """Register a new connection; when full, close the longest-waiting idle one first."""
        if len(self.connections) >= self.max_connections:
            victim = next((c for c in self.connections if not c.busy), None)
            if victim is None:
                self.evicted += 1
                return False
            self.connections.pop(victim, None)
            victim.close()
            self.evicted += 1
        self.connections[connection] = None
        return True

    def waited(self, connection: _Connection) -> None:
        """``connection`` started a new wait: it is now the youngest."""
        if connection in self.connections:
            self.connections.move_to_end(connection)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(_SWEEP_SECONDS)
            now = time.monotonic()
            for connection in list(self.connections):
                if connection.busy:
                    continue
                limit = self.header_timeout if connection.waiting_headers else self.idle_timeout
                if now - connection.since > limit:
                    connection.close()


def rate_limit_accept_errors(
    loop: asyncio.AbstractEventLoop, interval: float = ACCEPT_ERROR_LOG_INTERVAL
) -> None:
    """Log out-of-resource errors (accept with no file left) once per ``interval`` with a
    count, and leave every other loop error to the default handler."""
    state = {"count": 0, "last": -interval}

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if not (isinstance(exc, OSError) and exc.errno in _RESOURCE_ERRNOS):
            loop.default_exception_handler(context)
            return
        state["count"] += 1
        now = time.monotonic()
        if now - state["last"] >= interval:
            log.error(
                "cannot accept connections",
                extra={
                    "error": exc.strerror or str(exc),
                    "count": state["count"],  # since the previous such line
                    "hint": "raise the file limit (LimitNOFILE) or lower --web.max-connections",
                },
            )
            state["count"], state["last"] = 0, now

    loop.set_exception_handler(handler)


class _QuietServerLog:
    """aiohttp's per-connection logger: a client's fault (malformed request, hang-up) is a debug
    line with no traceback; anything else stays an error with its traceback."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def exception(self, msg: str, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else None
        if isinstance(exc, HttpProcessingError | ConnectionError | asyncio.CancelledError):
            self.debug(msg, *args, exc_info=exc)
        else:
            self.logger.error(msg, *args, exc_info=exc_info, **kwargs)

    def debug(self, msg: str, *args: Any, exc_info: Any = None, **kwargs: Any) -> None:
        """A constant message with aiohttp's text and the error as fields."""
        fields = {"detail": msg % args if args else msg}
        if isinstance(exc_info, BaseException):
            fields["error"] = _describe(exc_info)
        self.logger.debug("client connection", extra={**kwargs.get("extra", {}), **fields})

    def __getattr__(self, name: str) -> Any:
        return getattr(self.logger, name)


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def quiet_server_logger() -> logging.Logger:
    """The ``logger`` to give ``web.AppRunner``."""
    return _QuietServerLog(logging.getLogger("dms_exporter.http"))  # type: ignore[return-value]
