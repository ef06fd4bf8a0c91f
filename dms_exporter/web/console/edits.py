"""The console's edits: every POST handler (forms and the Refresh button).

Each edit goes through ``Console`` (validate, keep, apply). A refused edit renders its page
again with the message next to its field (status 400) and changes nothing; an accepted one
redirects back (303), so reloading the page does not post again.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDictProxy
from yarl import URL

from ...model import ENDPOINTS
from .frame import CONSOLE_KEY, Refused, page_response
from .pages import device_page, devices_page, endpoint_rows, endpoints_page, settings_page
from .service import EditError

__all__ = ["description_edit", "endpoint_edit", "endpoint_refresh", "settings_edit"]

log = logging.getLogger(__name__)


async def _form(request: web.Request) -> MultiDictProxy[Any]:
    """The posted form; 400 and one debug line if it is not text: bytes that are not UTF-8 (or
    not the charset it names), a charset Python does not know, UTF-7 that decodes to a lone
    surrogate, a broken multipart body."""
    try:
        form = await request.post()
        for value in form.values():
            if isinstance(value, str):
                value.encode("utf-8")
    except (UnicodeError, LookupError, ValueError) as exc:
        log.debug(
            "console form refused",
            extra={"path": request.path, "remote": request.remote, "error": type(exc).__name__},
        )
        raise web.HTTPBadRequest(text="Bad Request: the form is not text\n") from None
    return form


async def endpoint_edit(request: web.Request) -> web.Response:
    """Switch, interval or revert of one endpoint (form fields ``enabled``, ``interval``,
    ``revert``)."""
    console = request.app[CONSOLE_KEY]
    name = request.match_info["endpoint"]
    form = await _form(request)
    field = "revert"
    try:
        if "revert" in form:
            field = str(form["revert"])
            await console.revert_endpoint(name, field)
        elif "enabled" in form:
            field = "enabled"
            await console.set_endpoint(name, enabled=form.getall("enabled")[-1] == "true")
        elif "interval" in form:
            field = "interval"
            await console.set_endpoint(name, interval=str(form["interval"]))
        else:
            raise EditError("form", "nothing to change")
    except EditError as exc:
        if exc.field == "endpoint":  # no row to show it next to: on top of the page
            return await endpoints_page(request, Refused({("", ""): exc.message}, status=404))
        values = {(name, "interval"): str(form.get("interval", ""))}
        return await endpoints_page(request, Refused({(name, field): exc.message}, values))
    raise web.HTTPSeeOther(f"/console/endpoints#endpoint-{name}")


async def endpoint_refresh(request: web.Request) -> web.Response:
    """Poll one endpoint now (or show the poll fresh enough to answer for it, with "polled
    N s ago"); the page's script gets the new row, a plain form a redirect or the page."""
    console = request.app[CONSOLE_KEY]
    name = request.match_info["endpoint"]
    if name not in ENDPOINTS:
        message = f"unknown endpoint {name!r}"
        return await endpoints_page(request, Refused({("", ""): message}, status=404))
    refreshed = await console.exporter.refresh(name)
    notes = {name: refreshed.message}
    if request.headers.get("X-Console") != "fetch":
        if not refreshed.polled:  # the note would be lost in a redirect
            return await endpoints_page(request, notes=notes)
        raise web.HTTPSeeOther(f"/console/endpoints#endpoint-{name}")
    [row] = [r for r in endpoint_rows(console, notes) if r["status"].endpoint == name]
    template = aiohttp_jinja2.get_env(request.app).get_template("endpoint_row.html")
    return page_response(template.render(row=row, errors={}, values={}))


async def description_edit(request: web.Request) -> web.Response:
    """Set or revert one device's custom description; back to the page it was edited on."""
    console = request.app[CONSOLE_KEY]
    form = await _form(request)
    device_id = str(form.get("device_id", ""))
    back = str(form.get("next", ""))
    if not back.startswith("/console/"):  # only back into the console, never elsewhere
        back = "/console/devices"
    try:
        if "revert" in form:
            await console.set_description(device_id, None)
        else:
            await console.set_description(device_id, str(form.get("description", "")))
    except EditError as exc:
        url = URL(back)
        errors = {device_id: exc.message}
        values = {device_id: str(form.get("description", ""))}
        page = device_page if url.path == "/console/device" else devices_page
        return await page(request, Refused(errors, values, url=url))
    raise web.HTTPSeeOther(back)


async def settings_edit(request: web.Request) -> web.Response:
    """Set or revert ``allow_schedule_authorization`` or ``alarm_retrieval``."""
    console = request.app[CONSOLE_KEY]
    form = await _form(request)
    name = str(form.get("setting", ""))
    try:
        if "revert" in form:
            await console.set_setting(name, None)
        elif name == "allow_schedule_authorization":
            await console.set_setting(name, form.getall("value", ["false"])[-1] == "true")
        else:
            await console.set_setting(name, str(form.get("value", "")))
    except EditError as exc:
        return await settings_page(request, Refused({name: exc.message}))
    raise web.HTTPSeeOther("/console/settings")
