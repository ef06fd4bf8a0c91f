"""What every console page shares: the app key, the navigation, a refused edit shown again, the
state shown on top of every page, the HTML answer and the template's formatting filters."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from yarl import URL

from ... import __version__
from ...vocabulary import encodable
from .service import Console

__all__ = [
    "CONSOLE_KEY",
    "PAGES",
    "SHOWN",
    "Refused",
    "format_seconds",
    "format_utc",
    "page_context",
    "page_response",
    "render_page",
]

CONSOLE_KEY = web.AppKey("console", Console)

#: (path, title) of every page, in the order of the navigation bar.
PAGES = (
    ("endpoints", "Endpoints"),
    ("devices", "Devices"),
    ("authorization", "Authorization"),
    ("destinations", "Destinations"),
    ("alarms", "Alarms"),
    ("settings", "Settings"),
)


@dataclass(frozen=True, slots=True)
class Refused:
    """An edit that was refused, shown again on its page: the message by field, the values the
    operator typed, the HTTP status, and the page's URL (None: the request's)."""

    errors: Mapping[Any, str]
    values: Mapping[Any, str] = field(default_factory=dict)
    status: int = 400
    url: URL | None = None


SHOWN = Refused({}, status=200)  # a plain page view: nothing refused


def page_context(request: web.Request, page: str) -> dict[str, Any]:
    """What every page shows: navigation, and the DMS and login state on top."""
    console = request.app[CONSOLE_KEY]
    store = console.exporter.store
    system = store.tables["system"]
    info = system.rows[0] if system is not None and system.rows else None
    statuses = store.statuses()
    auth_failing = [s.endpoint for s in statuses if s.last_result == "auth"]
    return {
        "page": page,
        "pages": PAGES,
        "version": __version__,
        "dms_url": store.links.active or console.exporter.config.dms.url,
        "links": store.links,
        # every member of a failover list was asked and says it is a standby
        "no_active_member": all(store.links.standby.get(url) for url in store.links.urls),
        "dms_up": store.dms_up,
        "ready": store.ready,
        "system": info,
        "login": store.login,
        "auth_failing": auth_failing,
        "config_name": os.path.basename(console.source.name),
        "config_path": console.source.name,
        "state_path": console.source.state.path,
        "now": time.time(),
    }


def render_page(
    request: web.Request, template: str, page: str, refused: Refused = SHOWN, **more: Any
) -> web.Response:
    """``template`` for the navigation entry ``page``, with the state on top and ``more``."""
    context = {**page_context(request, page), "errors": refused.errors, "values": refused.values}
    context.update(more)
    html = aiohttp_jinja2.render_string(template, request, context)
    return page_response(html, status=refused.status)


def page_response(html: str, status: int = 200) -> web.Response:
    """An HTML answer; text UTF-8 cannot carry (a lone surrogate that came in) is replaced."""
    return web.Response(text=encodable(html), content_type="text/html", status=status)


def format_seconds(value: float | None) -> str:
    """A duration as the config writes it: ``500ms``, ``30s``, ``5m``, ``1h``, ``90s``."""
    if value is None:
        return ""
    if value < 1:
        return f"{value * 1000:.0f}ms"
    for unit, size in (("h", 3600), ("m", 60)):
        if value >= size and value % size == 0:
            return f"{value / size:g}{unit}"
    return f"{value:g}s"


def format_utc(value: float | None) -> str:
    """A Unix time as UTC text (the page's script shows it in the browser's local time)."""
    if value is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))
