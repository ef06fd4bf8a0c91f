"""The console's pages: every GET handler (what every page shares is in ``frame``).

Pages only read: the store's tables and statuses, the running config and the console's edits.
An edit that was refused renders its page again through these handlers, with the message next
to the field (see ``edits``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from ...exposition.families import DisplayNames
from ...model import ALARM_SEVERITIES, Table
from .devices import SORTS, DeviceQuery
from .frame import CONSOLE_KEY, SHOWN, Refused, format_seconds, render_page
from .service import Console

__all__ = [
    "alarms_page",
    "authorization_page",
    "destinations_page",
    "device_page",
    "devices_page",
    "endpoint_rows",
    "endpoints_page",
    "settings_page",
]

PER_PAGE = 50


def _origin(edit: Any, file_value: Any, config_name: str) -> dict[str, Any] | None:
    """Where a shown value comes from, if the console set it: the file's value it overrides."""
    if edit is None:
        return None
    return {"file_value": file_value, "config_name": os.path.basename(config_name)}


# -- endpoints -------------------------------------------------------------------------------


def endpoint_rows(console: Console, notes: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """One row per endpoint for endpoint_row.html; ``notes``: what a refresh did, by endpoint."""
    store = console.exporter.store
    file_config = console.source.file_config()
    edits = console.source.edits
    rows = []
    for status in store.statuses():
        name = status.endpoint
        file_settings = file_config.endpoints[name]
        rows.append(
            {
                "status": status,
                "note": (notes or {}).get(name, ""),
                "enabled_origin": _origin(
                    edits.enabled.get(name),
                    "on" if file_settings.enabled else "off",
                    console.source.name,
                ),
                "interval_origin": _origin(
                    edits.interval.get(name),
                    format_seconds(file_settings.interval),
                    console.source.name,
                ),
            }
        )
    return rows


async def endpoints_page(
    request: web.Request, refused: Refused = SHOWN, notes: Mapping[str, str] | None = None
) -> web.Response:
    """Every endpoint: switch, interval, last poll and success, result, Refresh; ``notes`` by
    endpoint under its Refresh button (what a refresh did)."""
    console = request.app[CONSOLE_KEY]
    return render_page(
        request,
        "endpoints.html",
        "endpoints",
        refused,
        rows=endpoint_rows(console, notes),
    )


# -- devices -----------------------------------------------------------------------------------


def _device_query(q: Mapping[str, str]) -> DeviceQuery:
    try:
        page = int(q.get("page", "1"))
    except ValueError:
        page = 1
    sort = q.get("sort", "display")
    return DeviceQuery(
        q=q.get("q", "").strip()[:200],
        state=q.get("state", ""),
        model=q.get("model", ""),
        group=q.get("group", ""),
        site=q.get("site", ""),
        sort=sort if sort in SORTS else "display",
        desc=q.get("desc") == "1",
        page=page,
        per_page=PER_PAGE,
    )


async def devices_page(request: web.Request, refused: Refused = SHOWN) -> web.Response:
    """Search, filters, sort, paging; the custom description editable in each row."""
    console = request.app[CONSOLE_KEY]
    store = console.exporter.store
    url = refused.url or request.rel_url  # an edit that failed shows the page it came from
    query = _device_query(url.query)
    index = await console.devices.get(store.tables["devices"], store.context)
    if not index.has_order(query.sort):
        await asyncio.get_running_loop().run_in_executor(None, index.order, query.sort)
    result = index.search(query)
    edits = console.source.edits.descriptions
    file_names = console.source.file_config().display_names
    inline = console.source.inline_descriptions
    in_file = console.source.descriptions_file is not None
    rows = []
    for device, key in zip(result.devices, result.keys, strict=True):
        custom = store.context.display_names.get(device.id, "")
        if device.id in edits:
            origin = "console"
        elif device.id in inline:
            origin = "config"
        elif device.id in file_names:
            origin = "file" if in_file else "config"
        else:
            origin = ""
        rows.append(
            {
                "device": device,
                "key": key,
                "description": custom,
                "origin": origin,
                "file_value": file_names.get(device.id, ""),
            }
        )
    params = {
        k: v
        for k, v in (
            ("q", query.q),
            ("state", query.state),
            ("model", query.model),
            ("group", query.group),
            ("site", query.site),
            ("sort", "" if query.sort == "display" else query.sort),
            ("desc", "1" if query.desc else ""),
        )
        if v
    }
    return render_page(
        request,
        "devices.html",
        "devices",
        refused,
        query=query,
        result=result,
        rows=rows,
        index=index,
        sorts=list(SORTS),
        params=params,
        page_url=lambda page: "?" + urlencode({**params, "page": page}),
        sort_url=lambda sort: (
            "?"
            + urlencode(
                {
                    **{k: v for k, v in params.items() if k not in ("sort", "desc")},
                    "sort": sort,
                    **({"desc": "1"} if sort == query.sort and not query.desc else {}),
                }
            )
        ),
        here=str(url),
        devices_polled=store.tables["devices"] is not None,
        group_names={g.id: g.name or g.id for g in _rows(store.tables["groups"])},
        descriptions_file=console.source.descriptions_file,
    )


async def device_page(request: web.Request, refused: Refused = SHOWN) -> web.Response:
    """One device: its fields, groups, authorized services, destinations, active alarms."""
    console = request.app[CONSOLE_KEY]
    store = console.exporter.store
    url = refused.url or request.rel_url
    device_id = url.query.get("id", "")
    tables = store.tables
    index = await console.devices.get(tables["devices"], store.context)
    position = index.position.get(device_id)
    if position is None:
        raise web.HTTPNotFound(text=f"unknown device {device_id!r}\n")
    device = index.rows[position]
    groups = _by_id(tables["groups"])
    services = _by_id(tables["services"])
    allow_schedule = store.context.allow_schedule_authorization
    authorizations = [
        a
        for a in _rows(tables["authorizations"])
        if a.device_id == device_id and (allow_schedule or a.source != "schedule")
    ]
    return render_page(
        request,
        "device.html",
        "devices",
        refused,
        device=device,
        key=index.keys[position],
        description=store.context.display_names.get(device_id, ""),
        origin="console" if device_id in console.source.edits.descriptions else "",
        descriptions_file=console.source.descriptions_file,
        groups=[(g, groups.get(g)) for g in device.group_ids],
        authorizations=[(a, services.get(a.service_id)) for a in authorizations],
        destinations=[d for d in _rows(tables["destinations"]) if d.device_id == device_id],
        alarms=sorted(
            (
                a
                for a in _rows(tables["alarms"])
                if a.device_id == device_id and a.state == "active"
            ),
            key=lambda a: -(a.asserted_time or 0.0),
        ),
        here=str(url),
    )


def _rows(table: Table[Any] | None) -> tuple[Any, ...]:
    return table.rows if table is not None else ()


def _by_id(table: Table[Any] | None) -> dict[str, Any]:
    return {row.id: row for row in _rows(table)}


def _paged(request: web.Request, rows: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """The rows of the page asked for, and what the pager macro shows of them."""
    try:
        page = int(request.query.get("page", "1"))
    except ValueError:
        page = 1
    pages = max(1, -(-len(rows) // PER_PAGE))
    page = min(max(1, page), pages)
    params = {k: v for k, v in request.query.items() if k != "page"}
    pager = {
        "page_no": page,
        "page_count": pages,
        "page_url": lambda n: "?" + urlencode({**params, "page": n}),
        "total": len(rows),
    }
    return rows[(page - 1) * PER_PAGE : page * PER_PAGE], pager


# -- authorization, destinations, alarms -------------------------------------------------------


def _source_counts(counts: Any) -> Iterator[tuple[str, float]]:
    """(source, count) of one device's ``dms_device_authorized_services`` samples (the
    renderer's item already holds them so)."""
    yield from counts


async def authorization_page(request: web.Request) -> web.Response:
    """Sets, schedule authorizations (only while allowed, as the metrics) and services per
    device by source."""
    console = request.app[CONSOLE_KEY]
    store = console.exporter.store
    tables = store.tables
    allow_schedule = store.context.allow_schedule_authorization
    sets = [
        s for s in _rows(tables["authorization_sets"]) if allow_schedule or s.type != "schedule"
    ]
    per_device = await console.authorized_services()
    page_rows, pager = _paged(request, per_device)
    return render_page(
        request,
        "authorization.html",
        "authorization",
        sets=sets,
        schedules=list(_rows(tables["schedule_authorizations"])) if allow_schedule else None,
        per_device=[
            {"device_id": device_id, "key": name, "counts": dict(_source_counts(samples))}
            for device_id, name, samples in page_rows
        ],
        **pager,
        allow_schedule=allow_schedule,
        polled=tables["authorizations"] is not None,
    )


async def destinations_page(request: web.Request) -> web.Response:
    """Every destination with its device's display key."""
    store = request.app[CONSOLE_KEY].exporter.store
    tables = store.tables
    name_of = DisplayNames(tables["devices"], store.context)
    rows = [(d, name_of(d.device_id)) for d in _rows(tables["destinations"])]
    page_rows, pager = _paged(request, rows)
    return render_page(
        request,
        "destinations.html",
        "destinations",
        rows=page_rows,
        **pager,
        polled=tables["destinations"] is not None,
    )


async def alarms_page(request: web.Request) -> web.Response:
    """Alarms, newest first: active (default) or all held, filtered by severity."""
    store = request.app[CONSOLE_KEY].exporter.store
    tables = store.tables
    show = "all" if request.query.get("show") == "all" else "active"
    severity = request.query.get("severity", "")
    name_of = DisplayNames(tables["devices"], store.context)
    alarms = [
        a
        for a in _rows(tables["alarms"])
        if (show == "all" or a.state == "active") and (not severity or a.severity == severity)
    ]
    alarms.sort(key=lambda a: -(a.asserted_time or 0.0))
    page_rows, pager = _paged(request, alarms)
    return render_page(
        request,
        "alarms.html",
        "alarms",
        rows=[(a, name_of(a.device_id) if a.device_id else "") for a in page_rows],
        show=show,
        severity=severity,
        severities=ALARM_SEVERITIES,
        retrieval=store.context.alarm_retrieval,
        **pager,
        polled=tables["alarms"] is not None,
    )


# -- settings ----------------------------------------------------------------------------------


async def settings_page(request: web.Request, refused: Refused = SHOWN) -> web.Response:
    """The two switches, with where their value comes from."""
    console = request.app[CONSOLE_KEY]
    config = console.exporter.config
    file_config = console.source.file_config()
    edits = console.source.edits
    return render_page(
        request,
        "settings.html",
        "settings",
        refused,
        config=config,
        schedule_origin=_origin(
            edits.allow_schedule_authorization,
            "true" if file_config.allow_schedule_authorization else "false",
            console.source.name,
        ),
        retrieval_origin=_origin(
            edits.alarm_retrieval, file_config.alarm_retrieval, console.source.name
        ),
        descriptions_file=console.source.descriptions_file,
    )
