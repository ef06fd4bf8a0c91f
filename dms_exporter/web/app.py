"""The exporter's HTTP interface (aiohttp).

``/metrics`` writes the store's pre-rendered parts; nothing here calls the DMS except
``POST /-/refresh/<endpoint>``, which an operator asks for explicitly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import logging
import math
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from .. import __version__, heap
from ..config.web import WebConfigFile
from ..exporter import Exporter, UnknownEndpointError
from ..exposition import gzipstream
from ..exposition.text import CONTENT_TYPE_OPENMETRICS, CONTENT_TYPE_TEXT, choose_format
from ..model import ENDPOINTS
from ..polling.store import Exposition
from .console import Console, add_console
from .guard import Guard
from .server import MAX_BODY_BYTES, track_requests

__all__ = ["EXPORTER_KEY", "make_app"]

EXPORTER_KEY = web.AppKey("exporter", Exporter)
#: Compressed bytes inflated per step of a plain scrape (about 1 MB of text each): the body is
#: streamed, never held whole.
INFLATE_STEP = 64 * 1024

log = logging.getLogger(__name__)


def make_app(
    exporter: Exporter,
    console: Console | None = None,
    *,
    web_config: WebConfigFile | None = None,
    admin_api: bool = False,
) -> web.Application:
    """The aiohttp application serving ``exporter`` (and ``console`` under ``/console/``);
    it starts and stops the exporter.

    Every route is behind the guard (``guard.py``): basic auth from ``web_config``, and every
    method but GET/HEAD is an admin action (loopback only unless ``admin_api``).
    """
    app = web.Application(middlewares=[track_requests], client_max_size=MAX_BODY_BYTES)
    Guard(web_config or WebConfigFile(None), admin_api=admin_api).install(app)
    app[EXPORTER_KEY] = exporter
    if console is not None:
        add_console(app, console)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", landing)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_get("/api/v1/endpoints", endpoints)
    app.router.add_post("/-/refresh/{endpoint}", refresh)
    app.router.add_post("/-/reload", reload)
    app.cleanup_ctx.append(_run_exporter)
    return app


async def _run_exporter(app: web.Application):  # type: ignore[no-untyped-def]
    exporter = app[EXPORTER_KEY]
    await exporter.start()
    yield
    await exporter.stop()


async def metrics(request: web.Request) -> web.StreamResponse:
    """The exposition, in the format the Accept header asks for, gzipped if accepted; only the
    families named by ``name[]`` parameters if any. HEAD answers the headers GET would."""
    openmetrics = choose_format(request.headers.get("Accept", "")) == "openmetrics"
    gzipped = accepts_gzip(request.headers.get("Accept-Encoding", ""))
    names = frozenset(request.query.getall("name[]", ())) or None
    exposition = request.app[EXPORTER_KEY].store.exposition(
        openmetrics=openmetrics, gzipped=gzipped, names=names
    )
    response = web.StreamResponse(
        headers={"Content-Type": CONTENT_TYPE_OPENMETRICS if openmetrics else CONTENT_TYPE_TEXT}
    )
    if gzipped:
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept, Accept-Encoding"
    response.content_length = exposition.content_length
    try:
        await response.prepare(request)
        if request.method != "HEAD":
            await _write_body(response, exposition)
        await response.write_eof()
    except ConnectionError as exc:  # the client hung up; nothing to answer any more
        log.debug("scrape client went away", extra={"peer": request.remote, "error": str(exc)})
    except asyncio.CancelledError:  # the server cancels the handler of a lost connection
        log.debug("scrape client went away", extra={"peer": request.remote, "error": "cancelled"})
        raise
    return response


async def _write_body(response: web.StreamResponse, exposition: Exposition) -> None:
    if not exposition.inflate:
        for part in exposition.parts:
            await response.write(part)
        return
    # the parts are one deflate stream (see gzipstream): one inflater, fed in steps of about
    # INFLATE_STEP compressed bytes, each inflated in a worker thread while the last is sent
    inflater = gzipstream.inflater()
    loop = asyncio.get_running_loop()
    try:
        for step in _steps(exposition.parts):
            await response.write(await loop.run_in_executor(None, _inflate, inflater, step))
    finally:
        await loop.run_in_executor(None, heap.trim)  # the steps' buffers, freed by now


def _steps(parts: tuple[bytes, ...]) -> Iterator[list[memoryview]]:
    """The parts cut and grouped into lists of about ``INFLATE_STEP`` bytes."""
    step: list[memoryview] = []
    size = 0
    for part in parts:
        view = memoryview(part)
        for start in range(0, len(view), INFLATE_STEP):
            piece = view[start : start + INFLATE_STEP]
            step.append(piece)
            size += len(piece)
            if size >= INFLATE_STEP:
                yield step
                step, size = [], 0
    if step:
        yield step


def _inflate(inflater: Any, step: list[memoryview]) -> bytes:
    return b"".join([inflater.decompress(piece) for piece in step])


def accepts_gzip(accept_encoding: str) -> bool:
    """True if the Accept-Encoding header admits gzip (``gzip`` or ``*``, q above 0)."""
    for coding in accept_encoding.split(","):
        name, _, params = coding.partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = (
                params.strip().removeprefix("q=").strip()
                if params.strip().startswith("q=")
                else "1"
            )
            try:
                return float(q) > 0
            except ValueError:
                return True
    return False


async def landing(request: web.Request) -> web.Response:
    """A small page with links, for a person who opens the exporter in a browser."""
    links = "".join(
        f'<li><a href="{href}">{html.escape(text)}</a></li>'
        for href, text in (
            ("/console/", "Console"),
            ("/metrics", "Metrics"),
            ("/api/v1/endpoints", "Endpoint status (JSON)"),
            ("/-/healthy", "Health"),
            ("/-/ready", "Readiness"),
        )
    )
    body = (
        "<!doctype html><html><head><title>DMS Exporter</title></head><body>"
        f"<h1>DMS Exporter</h1><p>Version {html.escape(__version__)}</p><ul>{links}</ul>"
        "<p>Refresh one endpoint now: <code>POST /-/refresh/&lt;endpoint&gt;</code>, "
        f"endpoints: {', '.join(ENDPOINTS)}.</p></body></html>"
    )
    return web.Response(text=body, content_type="text/html")


async def healthy(request: web.Request) -> web.Response:
    """200 while the process serves requests."""
    return web.Response(text="Healthy\n")


async def ready(request: web.Request) -> web.Response:
    """200 once every enabled endpoint has been polled once, 503 before."""
    if request.app[EXPORTER_KEY].store.ready:
        return web.Response(text="Ready\n")
    return web.Response(status=503, text="Not ready: waiting for the first poll\n")


async def endpoints(request: web.Request) -> web.Response:
    """The status of every endpoint, of the login (its backoff) and of the DMS URLs as JSON."""
    store = request.app[EXPORTER_KEY].store
    login, links = store.login, store.links
    return web.json_response(
        {
            "endpoints": [dataclasses.asdict(s) for s in store.statuses()],
            "login": {
                "last_result": login.last_result,
                "next_attempt": login.next_attempt,
                "logins_total": dict(login.counts),
            },
            "dms": {
                "urls": list(links.urls),
                "active_url": links.active,
                "reachable": dict(links.reachable),
                "standby": dict(links.standby),
            },
        }
    )


async def refresh(request: web.Request) -> web.Response:
    """Poll one endpoint now, or answer with a poll that is fresh enough (within
    ``refresh_min_gap``): the endpoint's status with ``refreshed``, ``polled_ago``,
    ``refresh_polls_in`` and ``message``; 200 if that poll succeeded, 502 if it failed (with
    ``Retry-After`` when no poll ran for this refresh)."""
    exporter = request.app[EXPORTER_KEY]
    name = request.match_info["endpoint"]
    try:
        refreshed = await exporter.refresh(name)
    except UnknownEndpointError:
        return web.json_response(
            {"error": f"unknown endpoint {name!r}", "endpoints": list(ENDPOINTS)}, status=404
        )
    status = refreshed.status
    if not status.enabled:
        return web.json_response(
            {"error": f"endpoint {name!r} is disabled", "status": dataclasses.asdict(status)},
            status=409,
        )
    answer = {
        **dataclasses.asdict(status),
        "refreshed": refreshed.polled,
        "polled_ago": round(refreshed.age, 3),
        "refresh_polls_in": round(refreshed.next_poll_in, 3),
        "message": refreshed.message,
    }
    if status.up:
        return web.json_response(answer)
    headers = {} if refreshed.polled else {"Retry-After": str(math.ceil(refreshed.next_poll_in))}
    return web.json_response(answer, status=502, headers=headers)


async def reload(request: web.Request) -> web.Response:
    """Reload the config file; 200 if applied, 500 with the reasons if rejected (the running
    config stays), 409 if there is no file (``--demo``)."""
    exporter = request.app[EXPORTER_KEY]
    if exporter.config_file is None:
        text = "No configuration file to reload: the exporter runs without one (--demo)\n"
        return web.Response(status=409, text=text)
    if await exporter.reload():
        return web.Response(text="Reloaded\n")
    reasons = exporter.reload_error or "the exporter is stopping"
    text = f"Reload failed; the running config is kept:\n{reasons}\n"
    return web.Response(status=500, text=text)
