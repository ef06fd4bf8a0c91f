"""The console's aiohttp sub-application: templates, routes and the devices index keeper.

Pages (``pages``) are GET; every edit and the Refresh button (``edits``) are POST, so the
exporter's guard treats them as admin actions with a same-origin check.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from ...tasks import cancel_and_wait
from . import edits, pages
from .frame import CONSOLE_KEY, format_seconds, format_utc
from .service import Console
from .state import MAX_DESCRIPTION

__all__ = ["add_console"]


def add_console(app: web.Application, console: Console) -> None:
    """Serve ``console`` under ``/console/`` of ``app``; ``/console`` leads to its first page."""

    async def to_first_page(request: web.Request) -> web.Response:
        raise web.HTTPSeeOther("/console/endpoints")

    app.router.add_get("/console", to_first_page)
    sub = _console_app(console)
    sub.router.add_get("/", to_first_page)
    app.add_subapp("/console/", sub)
    app.cleanup_ctx.append(_index_keeper(console))


def _index_keeper(console: Console) -> Any:
    async def keep(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(console.keep_index_fresh(), name="console-index")
        yield
        await cancel_and_wait(task)

    return keep


def _console_app(console: Console) -> web.Application:
    app = web.Application()
    app[CONSOLE_KEY] = console
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader(__package__ or "", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(seconds=format_seconds, utc=format_utc)
    env.globals["max_description"] = MAX_DESCRIPTION
    app.router.add_get("/endpoints", pages.endpoints_page)
    app.router.add_post("/endpoints/{endpoint}", edits.endpoint_edit)
    app.router.add_post("/endpoints/{endpoint}/refresh", edits.endpoint_refresh)
    app.router.add_get("/devices", pages.devices_page)
    app.router.add_post("/devices/description", edits.description_edit)
    app.router.add_get("/device", pages.device_page)
    app.router.add_get("/authorization", pages.authorization_page)
    app.router.add_get("/destinations", pages.destinations_page)
    app.router.add_get("/alarms", pages.alarms_page)
    app.router.add_get("/settings", pages.settings_page)
    app.router.add_post("/settings", edits.settings_edit)
    app.router.add_static("/static", os.path.join(os.path.dirname(__file__), "static"))
    return app
