"""An HTTP listener that holds under abuse: aiohttp's request handling behind connection limits.

- a whole request, head and body, must arrive within ``request_timeout`` of its first byte (of
  the connection's start for the first one), and a keep-alive connection idle for
  ``idle_timeout`` is closed (aiohttp alone waits an hour and has no header or body limit, so
  slow sockets pile up until the process runs out of files);
- a request's body is kept from aiohttp until the guard has let the request in (``admit_body``),
  so a client that may not post costs no body buffer, and is not waited for after the answer
  (``make_runner``: no lingering);
- at most ``max_connections`` at once, below the file limit, and at most ``client_share`` of them
  from one address: when either is full, the connection that has waited longest on its client
  (idle, or still sending its head or body) is closed to make room, so a scrape always gets in; a
  request being answered is never closed;
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
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

__all__ = [
    "MAX_BODY_BYTES",
    "GuardedSite",
    "admit_body",
    "default_max_connections",
    "make_runner",
    "quiet_server_logger",
    "rate_limit_accept_errors",
    "track_requests",
]

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_SECONDS = 10.0
IDLE_TIMEOUT_SECONDS = 75.0
#: The largest request body taken (admin and console forms are a few hundred bytes); a longer
#: ``Content-Length`` is refused before a byte of the body is read.
MAX_BODY_BYTES = 64 << 10
#: The share of ``max_connections`` one client address may hold.
CLIENT_SHARE = 0.5
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
    few bytes instead of a parser and a task; after that, bytes pass straight through, except a
    request's body until ``admit_body``."""

    def __init__(self, site: GuardedSite, factory: Callable[[], asyncio.Protocol]) -> None:
        self.site = site
        self.factory = factory
        self.inner: Any = None  # aiohttp's RequestHandler, once made
        self.buffer = bytearray()  # the first request's head until it is complete
        self.transport: asyncio.Transport | None = None
        self.peer = ""  # the client's address
        self.busy = False  # a request is being handled
        self.request: web.BaseRequest | None = None  # the one being handled
        self.held: bytearray | None = None  # its body's bytes while the guard decides
        self.paused = False  # reading paused because ``held`` is full
        self.since = time.monotonic()  # start of the current wait (request or idle)
        self.waiting_headers = True  # False while idle between requests

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        if not self.site.admit(self):
            transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
            if self.held is not None:  # a body the guard has not let in yet
                self.held += data
                if len(self.held) > MAX_BODY_BYTES and self.transport is not None:
                    self.paused = True
                    self.transport.pause_reading()
                return
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
        self.site.forget(self)
        if self.inner is not None:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    @property
    def receiving(self) -> bool:
        """Still sending a request's head or body."""
        if not self.busy:
            return self.waiting_headers
        return self.request is not None and not self.request.content.is_eof()

    @property
    def waiting(self) -> bool:
        """Waiting on the client (idle or receiving): may be closed to make room."""
        return not self.busy or self.receiving

    def request_started(self, request: web.BaseRequest) -> None:
        self.busy, self.request, self.held = True, request, bytearray()

    def admit_body(self) -> None:
        """Hand the held body bytes to aiohttp, and any that follow."""
        held, self.held = self.held, None
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        if held and self.inner is not None:
            self.inner.data_received(bytes(held))

    def request_done(self) -> None:
        self.admit_body()  # a refused request's body: aiohttp sees it unfinished and closes
        self.busy, self.request = False, None
        self.waiting_headers, self.since = False, time.monotonic()
        self.site.waited(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def _connection_of(request: web.BaseRequest) -> _Connection | None:
    transport = request.transport
    connection = transport.get_protocol() if transport is not None else None
    return connection if isinstance(connection, _Connection) else None


@web.middleware
async def track_requests(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Tell the connection a request arrived and when it is done (outermost middleware)."""
    if request.transport is None:  # closed (to make room) before its handler started
        raise ConnectionResetError("the connection closed before its request was handled")
    connection = _connection_of(request)
    if connection is None:  # e.g. a test server without GuardedSite
        return await handler(request)
    connection.request_started(request)
    try:
        return await handler(request)
    except RuntimeError as exc:  # aiohttp's "Connection closed." while a body was read
        if connection.transport is None or connection.transport.is_closing():
            raise ConnectionResetError(str(exc)) from None  # a client's fault: a quiet line
        raise
    finally:
        connection.request_done()


def admit_body(request: web.BaseRequest) -> None:
    """Let ``request``'s body be read: call once the request is allowed."""
    connection = _connection_of(request)
    if connection is not None:
        connection.admit_body()


def make_runner(app: web.Application) -> web.AppRunner:
    """The runner to serve ``app`` with a ``GuardedSite``: no access log, quiet client faults,
    keep-alive as long as the site's idle limit, and no lingering (aiohttp would wait up to 10 s
    for a body the handler did not read, a refused request's: the connection is closed after
    the answer instead)."""
    return web.AppRunner(
        app,
        access_log=None,
        keepalive_timeout=IDLE_TIMEOUT_SECONDS,
        logger=quiet_server_logger(),
        lingering_time=0,
    )


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
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=ACCEPT_BATCH)
        self._host, self._port = host, port
        self.max_connections = max_connections or default_max_connections()
        self.client_share = max(1, int(self.max_connections * CLIENT_SHARE))
        self.request_timeout = request_timeout
        self.idle_timeout = idle_timeout
        #: Open connections, ordered by the start of their current wait (oldest first).
        self.connections: OrderedDict[_Connection, None] = OrderedDict()
        self.per_client: Counter[str] = Counter()
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
            ssl_handshake_timeout=self.request_timeout if self._ssl_context else None,
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
        """Register a new connection; when its address holds its share, or the server is full,
        close the longest-waiting one (of that address, or of all) first."""
        peer = connection.peer
        if self.per_client[peer] >= self.client_share and not self._evict(peer):
            return False
        if len(self.connections) >= self.max_connections and not self._evict(None):
            return False
        self.connections[connection] = None
        self.per_client[peer] += 1
        return True

    def _evict(self, peer: str | None) -> bool:
        """Close the longest-waiting connection (of ``peer`` if given); False if none waits."""
        self.evicted += 1
        victim = next(
            (c for c in self.connections if c.waiting and (peer is None or c.peer == peer)), None
        )
        if victim is None:
            return False
        self.forget(victim)
        victim.close()
        return True

    def forget(self, connection: _Connection) -> None:
        """``connection`` is gone (or going): it holds no place any more."""
        if self.connections.pop(connection, False) is None:
            self.per_client[connection.peer] -= 1
            if not self.per_client[connection.peer]:
                del self.per_client[connection.peer]

    def waited(self, connection: _Connection) -> None:
        """``connection`` started a new wait: it is now the youngest."""
        if connection in self.connections:
            self.connections.move_to_end(connection)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(_SWEEP_SECONDS)
            now = time.monotonic()
            for connection in list(self.connections):
                if connection.receiving:
                    limit = self.request_timeout
                elif not connection.busy:
                    limit = self.idle_timeout
                else:
                    continue  # being answered
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
