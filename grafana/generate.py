"""Write the Grafana dashboards in grafana/dashboards/ from the definitions below.

    python grafana/generate.py            # rewrite grafana/dashboards/*.json
    python grafana/generate.py --check    # exit 1 if a committed file differs from its source

The JSON files are what Grafana loads (see grafana/provisioning/); this script is their source,
so that every dashboard gets the same variables, data source wiring, links and conventions:

- a `datasource` variable (type datasource, Prometheus) used by every panel and every query;
- `job` and `instance` variables taken from `dms_up`, applied to every query;
- stable uids (`dms-*`), the tag `dms` (the dashboards link to each other by it), schemaVersion 39;
- panel ids unique per dashboard, panels placed left to right, top to bottom on the 24-column grid.

The dashboard functions switch the formatter off: one compact statement per panel reads better.

tests/test_dashboards.py checks the files (valid PromQL, known metric names) and that they are
what this script writes. Standard library only.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"

Json = dict[str, Any]
Queries = str | list[str | tuple[str, str]]  # one expr, or several (expr or (expr, legend))

DS = {"type": "prometheus", "uid": "${datasource}"}
S = 'job=~"$job", instance=~"$instance"'  # the selector every query carries
TAGS = ["dms", "dms-exporter-mixin"]


# --- PromQL helpers -------------------------------------------------------------------------


def state_code(metric: str, states: list[str], sel: str, by: str = "") -> str:
    """One series per object, valued with the 1-based index of its current state.

    A state set has one 0/1 series per state, labelled with the metric's own name. In
    `x{x="a"} * 1 or x{x="b"} * 2 ...` the label sets differ so `or` keeps them all, and the sum
    picks the one state that is 1. mappings() turns the index back into the state's name.
    """
    parts = [f'{metric}{{{sel}, {metric}="{s}"}} * {i}' for i, s in enumerate(states, 1)]
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (\n    " + "\n  or ".join(parts) + "\n)"


def by(labels: str, expr: str, agg: str = "sum", *, sort: bool = False) -> tuple[str, str]:
    """`agg by (labels) (expr)` and the legend naming each series by those labels, so that the
    two cannot disagree; sort=True puts the largest first (bar gauges)."""
    query = f"{agg} by ({labels}) ({expr})"
    legend = " ".join("{{" + label.strip() + "}}" for label in labels.split(","))
    return (f"sort_desc({query})" if sort else query), legend


def mappings(states: list[tuple[str, str]]) -> list[Json]:
    """Value mappings 1..n -> (state name, colour), matching state_code()."""
    return value_map({i: state for i, state in enumerate(states, 1)})


def value_map(values: dict[int, tuple[str, str]]) -> list[Json]:
    options = {
        str(v): {"text": text, "color": color, "index": i}
        for i, (v, (text, color)) in enumerate(values.items())
    }
    return [{"type": "value", "options": options}]


def names(states: list[tuple[str, str]]) -> list[str]:
    return [s for s, _ in states]


# Colours per state; the order is the state_code() index.
CONNECTION = [
    ("online", "green"),
    ("offline", "red"),
    ("unknown", "orange"),
    ("never_connected", "text"),
    ("other", "purple"),
]
CONTROL = [("dms", "green"), ("local", "orange"), ("other", "purple")]
DEVICE_AUTH = [
    ("authorized", "green"),
    ("partially_authorized", "orange"),
    ("deauthorized", "red"),
    ("other", "purple"),
]
SCHEDULE = [
    ("pending", "blue"),
    ("active", "green"),
    ("expired", "text"),
    ("cancelled", "purple"),
    ("other", "orange"),
]
DESTINATION = [("ok", "green"), ("error", "red"), ("disabled", "text"), ("other", "purple")]

UP = value_map({0: ("down", "red"), 1: ("up", "green")})
YES_NO = value_map({0: ("no", "text"), 1: ("yes", "green")})
OK_FAILED = value_map({0: ("failed", "red"), 1: ("ok", "green")})
STALE = value_map({0: ("no", "green"), 1: ("stale", "red")})
WINDOW = value_map({0: ("outside window", "transparent"), 1: ("window open", "green")})


# --- panels ---------------------------------------------------------------------------------


def _targets(queries: Queries, legend: str, mode: str) -> list[Json]:
    """Prometheus targets; mode is "range", "instant" or "table" (instant, table format)."""
    items = [queries] if isinstance(queries, str) else queries
    out = []
    for item in items:
        expr, leg = (item, legend) if isinstance(item, str) else item
        t: Json = {"datasource": DS, "expr": expr, "legendFormat": leg or "__auto"}
        if mode == "table":
            t["format"] = "table"
        t["instant"] = mode != "range"
        t["range"] = mode == "range"
        out.append(t)
    return out


def _thresholds(steps: list[tuple[float | None, str]]) -> Json:
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in steps]}


GREEN = [(None, "green")]
RED_FROM_1 = [(None, "green"), (1, "red")]


LAST_VALUE = {"calcs": ["lastNotNull"], "fields": "", "values": False}  # reduceOptions
LEGEND = {"displayMode": "list", "placement": "bottom", "showLegend": True}


def _panel(
    kind: str,
    title: str,
    targets: list[Json],
    description: str,
    defaults: Json,
    options: Json,
    overrides: list[Json] | None = None,
    **rest: Any,
) -> Json:
    """A panel; rest (transformations) goes between its targets and its fieldConfig."""
    return {
        "type": kind,
        "title": title,
        "description": description,
        "targets": targets,
        **rest,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options,
    }


# The builders share their head (title, queries, legend, description, then _panel); each
# spells out its own options, which the dashboards below pass by name.
def stat(
    title: str,
    queries: Queries,
    legend: str = "",
    *,
    unit: str = "short",
    thresholds: list[tuple[float | None, str]] = GREEN,
    value_mappings: list[Json] | None = None,
    text_mode: str = "auto",
    background: bool = False,
    description: str = "",
) -> Json:
    """A single value (instant query); text_mode="name" shows the legend instead."""
    return _panel(
        "stat",
        title,
        _targets(queries, legend, "instant"),
        description,
        {
            "unit": unit,
            "thresholds": _thresholds(thresholds),
            "mappings": value_mappings or [],
            "color": {"mode": "thresholds"},
        },
        {
            "reduceOptions": LAST_VALUE,
            "colorMode": "background" if background else "value",
            "graphMode": "none",
            "textMode": text_mode,
            "justifyMode": "auto",
            "orientation": "auto",
        },
    )


def timeseries(
    title: str,
    queries: Queries,
    legend: str = "",
    *,
    unit: str = "short",
    stack: bool = False,
    description: str = "",
) -> Json:
    return _panel(
        "timeseries",
        title,
        _targets(queries, legend, "range"),
        description,
        {
            "unit": unit,
            "min": 0,
            "color": {"mode": "palette-classic"},
            "custom": {
                "drawStyle": "line",
                "lineWidth": 1,
                "fillOpacity": 20 if stack else 0,
                "showPoints": "never",
                "stacking": {"mode": "normal" if stack else "none", "group": "A"},
            },
        },
        {"legend": LEGEND, "tooltip": {"mode": "multi", "sort": "desc"}},
    )


def stacked(title: str, labels: str, expr: str, agg: str = "sum", *, description: str = "") -> Json:
    """A time series stacked by `labels` (`by()`): how a total splits, over time."""
    return timeseries(title, *by(labels, expr, agg), stack=True, description=description)


def bargauge(title: str, queries: Queries, legend: str = "", *, description: str = "") -> Json:
    """Horizontal bars, one per series (instant query): counts by model, code, site."""
    return _panel(
        "bargauge",
        title,
        _targets(queries, legend, "instant"),
        description,
        {
            "unit": "short",
            "min": 0,
            "color": {"mode": "palette-classic"},
            "thresholds": _thresholds(GREEN),
        },
        {
            "reduceOptions": LAST_VALUE,
            "orientation": "horizontal",
            "displayMode": "basic",
            "showUnfilled": True,
        },
    )


def state_timeline(
    title: str, queries: Queries, legend: str, value_mappings: list[Json], *, description: str = ""
) -> Json:
    """One coloured band per series over time; values are mapped to names and colours."""
    return _panel(
        "state-timeline",
        title,
        _targets(queries, legend, "range"),
        description,
        {
            "mappings": value_mappings,
            "color": {"mode": "thresholds"},
            "thresholds": _thresholds([(None, "transparent")]),
            "custom": {"fillOpacity": 80, "lineWidth": 0},
        },
        {
            "showValue": "never",
            "mergeValues": True,
            "rowHeight": 0.8,
            "alignValue": "left",
            "legend": LEGEND,
            "tooltip": {"mode": "single", "sort": "none"},
        },
    )


def table(
    title: str,
    queries: Queries,
    *,
    hide: tuple[str, ...] = (),
    rename: dict[str, str] | None = None,
    order: tuple[str, ...] = (),
    overrides: list[Json] | None = None,
    sort_by: str | None = None,
    description: str = "",
) -> Json:
    """Instant queries as a table, one column per label; several queries are merged on their
    common label columns (their values become the columns "Value #A", "Value #B", ...)."""
    transformations: list[Json] = []
    if not isinstance(queries, str) and len(queries) > 1:
        transformations.append({"id": "merge", "options": {}})
    transformations.append(
        {
            "id": "organize",
            "options": {
                "excludeByName": {name: True for name in ("Time", "job", *hide)},
                "renameByName": rename or {},
                "indexByName": {name: i for i, name in enumerate(order)},
            },
        }
    )
    options: Json = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by, "desc": True}]
    return _panel(
        "table",
        title,
        _targets(queries, "", "table"),
        description,
        {"custom": {"align": "auto", "filterable": True}},
        options,
        overrides,
        transformations=transformations,
    )


def column(name: str, **props: Any) -> Json:
    """A table column override by (renamed) name: unit=, decimals=, mappings=, links=,
    thresholds=; color_text=True colours the cell text by mapping or threshold."""
    properties = []
    for key, value in props.items():
        if key == "color_text":
            properties.append({"id": "custom.cellOptions", "value": {"type": "color-text"}})
        else:
            properties.append({"id": key, "value": value})
    return {"matcher": {"id": "byName", "options": name}, "properties": properties}


DEVICE_LINK = [
    {
        "title": "Open device",
        "url": (
            "/d/dms-device/dms-device?${__url_time_range}&var-datasource=${datasource}"
            "&var-job=${job}&var-instance=${instance}&var-device=${__data.fields.device_id}"
        ),
    }
]


class Layout:
    """Places panels left to right on Grafana's 24-column grid, wrapping to a new row."""

    def __init__(self) -> None:
        self.panels: list[Json] = []
        self.x = self.y = self.row_h = 0

    def add(self, w: int, h: int, panel: Json) -> None:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel["id"] = len(self.panels) + 1
        panel["datasource"] = DS
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        for i, t in enumerate(panel["targets"]):
            t["refId"] = chr(ord("A") + i)
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)


# --- variables and the dashboard frame ------------------------------------------------------


def variable_datasource() -> Json:
    return {
        "type": "datasource",
        "name": "datasource",
        "label": "Data source",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
    }


def variable_query(
    name: str, label: str, query: str, *, all_: bool = False, regex: str = ""
) -> Json:
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DS,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "current": {},
        "hide": 0,
        "includeAll": all_,
        "allValue": ".*" if all_ else None,
        "multi": all_,
        "options": [],
        "refresh": 2,  # on time range change: exporters and devices come and go
        "regex": regex,
        "sort": 1,
    }


def variable_custom(name: str, label: str, values: list[str]) -> Json:
    return {
        "type": "custom",
        "name": name,
        "label": label,
        "query": ",".join(values),
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "hide": 0,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "options": [],
    }


def common_variables() -> list[Json]:
    return [
        variable_datasource(),
        variable_query("job", "Job", "label_values(dms_up, job)"),
        variable_query(
            "instance", "Exporter", 'label_values(dms_up{job=~"$job"}, instance)', all_=True
        ),
    ]


def frame(uid: str, title: str, description: str, lay: Layout, variables: list[Json]) -> Json:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": TAGS,
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": [
            {
                "type": "dashboards",
                "title": "DMS dashboards",
                "tags": ["dms"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
                "icon": "external link",
                "targetBlank": False,
            }
        ],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                },
                {
                    # firing DMS alerts of the selected exporters, from Prometheus' ALERTS series
                    "datasource": DS,
                    "enable": True,
                    "hide": False,
                    "iconColor": "red",
                    "name": "DMS alerts",
                    "expr": f'ALERTS{{alertname=~"Dms.+", alertstate="firing", {S}}}',
                    "step": "1m",
                    "titleFormat": "{{alertname}}",
                    "textFormat": "{{instance}} {{display_name}} {{endpoint}}",
                    "useValueForTime": False,
                },
            ]
        },
        "templating": {"list": variables},
        "panels": lay.panels,
    }


DASHBOARDS: dict[str, Callable[[], Json]] = {}  # file name -> the dashboard's JSON


def dashboard(
    uid: str, title: str
) -> Callable[[Callable[[Layout], list[Json]]], Callable[[], Json]]:
    """Register the decorated function as the dashboard `uid` (written to `uid`.json): it adds
    the panels to a Layout and returns the variables it needs besides common_variables(); its
    docstring is the dashboard's description."""

    def register(panels: Callable[[Layout], list[Json]]) -> Callable[[], Json]:
        if not panels.__doc__:  # also under python -OO, which strips docstrings
            raise SystemExit(f"{panels.__name__}: no docstring, the dashboard's description")
        description = " ".join(panels.__doc__.split())

        def build() -> Json:
            lay = Layout()
            variables = panels(lay)
            return frame(uid, title, description, lay, [*common_variables(), *variables])

        DASHBOARDS[f"{uid}.json"] = build
        return build

    return register


# --- the dashboards -------------------------------------------------------------------------
# One call per panel: panels of one kind look alike because they are declarations, not logic.


@dashboard("dms-fleet-overview", "DMS / Fleet overview")
def fleet_overview(lay: Layout) -> list[Json]:
    """All devices managed by the DMS: connection state by model and site, who is offline."""
    offline = f'(dms_device_connection_state{{{S}, dms_device_connection_state="offline"}} == 1)'
    offline_share = f'sum(dms_devices{{{S}, connection_state="offline"}}) / sum(dms_devices{{{S}}})'
    # fmt: off
    lay.add(4, 4, stat("DMS", f"min(dms_up{{{S}}})", value_mappings=UP, background=True,
                       description="Whether the exporter's last poll of the DMS succeeded."))
    lay.add(4, 4, stat("Devices", f"sum(dms_devices{{{S}}})"))
    lay.add(4, 4, stat("Online", f'sum(dms_devices{{{S}, connection_state="online"}})'))
    lay.add(4, 4, stat("Offline", f'sum(dms_devices{{{S}, connection_state="offline"}})',
                       thresholds=RED_FROM_1))
    lay.add(4, 4, stat("Offline share", offline_share, unit="percentunit",
                       thresholds=[(None, "green"), (0.05, "orange"), (0.1, "red")],
                       description="DmsFleetOfflineRatioHigh fires above 10 % for 10 minutes."))
    lay.add(4, 4, stat("Licence use", f"sum(dms_devices{{{S}}}) / sum(dms_licensed_devices{{{S}}})",
                       unit="percentunit",
                       thresholds=[(None, "green"), (0.9, "orange"), (1, "red")],
                       description="Managed devices over the DMS's licensed device count."))
    lay.add(12, 8, stacked("Devices by connection state", "connection_state",
                           f"dms_devices{{{S}}}"))
    lay.add(6, 8, bargauge("Devices by model", *by("model", f"dms_devices{{{S}}}", sort=True)))
    lay.add(6, 8, bargauge(
        "Devices by authorization state",
        *by("authorization_state", f"dms_devices_by_authorization_state{{{S}}}"),
    ))
    lay.add(12, 10, table(
        "Devices by site",
        [
            f"count by (site, region) (dms_device_info{{{S}}})",
            f"count by (site, region) (\n  {offline}\n"
            f"  * on(job, instance, device_id) group_left(site, region) dms_device_info{{{S}}}\n)",
        ],
        rename={"Value #A": "Devices", "Value #B": "Offline"},
        overrides=[column("Offline", color_text=True, thresholds=_thresholds(RED_FROM_1))],
        sort_by="Offline",
        description="Sites come from each device's location in the DMS (dms_device_info).",
    ))
    lay.add(12, 10, stacked(
        "Offline devices by site",
        "site",
        f"\n  {offline}\n"
        f"  * on(job, instance, device_id) group_left(site) dms_device_info{{{S}}}\n",
        "count",
    ))
    lay.add(24, 10, table(
        "Offline devices",
        [
            f"{offline}\n* on(job, instance, device_id)"
            f" group_left(model, site, region, firmware_version, serial_number)\n"
            f"  dms_device_info{{{S}}}",
            f"1000 * dms_device_last_contact_timestamp_seconds{{{S}}}\n"
            f"and on(job, instance, device_id) {offline}",
        ],
        hide=("Value #A", "dms_device_connection_state"),
        rename={"Value #B": "Last contact", "display_name": "Device"},
        order=("Device", "device_id", "model", "site", "region", "Last contact"),
        overrides=[column("Last contact", unit="dateTimeAsIso"),
                   column("Device", links=DEVICE_LINK)],
        description="Devices the DMS reports as offline now, with their last contact.",
    ))
    lay.add(12, 8, table(
        "Firmware versions",
        f"count by (model, firmware_version) (dms_device_info{{{S}}})",
        rename={"Value": "Devices"},
        sort_by="Devices",
    ))
    lay.add(12, 8, bargauge(
        "Devices by control mode",
        *by("control_mode", f"dms_devices_by_control_mode{{{S}}}"),
        description="local: someone at the site controls the device, not the DMS.",
    ))
    # fmt: on
    return []


@dashboard("dms-device", "DMS / Device")
def device(lay: Layout) -> list[Json]:
    """One device: state, alarms, authorization, groups and destinations."""
    d = f'{S}, device_id="$device"'
    connection = state_code("dms_device_connection_state", names(CONNECTION), d)
    # fmt: off
    lay.add(6, 4, stat("Connection state", connection, value_mappings=mappings(CONNECTION),
                       background=True))
    lay.add(4, 4, stat("Control mode",
                       state_code("dms_device_control_mode", names(CONTROL), d),
                       value_mappings=mappings(CONTROL), background=True))
    lay.add(4, 4, stat("Authorization",
                       state_code("dms_device_authorization_state", names(DEVICE_AUTH), d),
                       value_mappings=mappings(DEVICE_AUTH), background=True))
    lay.add(4, 4, stat("Since last contact",
                       f"time() - max(dms_device_last_contact_timestamp_seconds{{{d}}})",
                       unit="s", thresholds=[(None, "green"), (300, "orange"), (900, "red")]))
    lay.add(3, 4, stat("Authorized services", f"sum(dms_device_authorized_services{{{d}}})",
                       thresholds=[(None, "red"), (1, "green")]))
    lay.add(3, 4, stat("Active alarms",
                       f"count(dms_alarm_asserted_timestamp_seconds{{{d}}}) or vector(0)",
                       thresholds=RED_FROM_1))
    lay.add(24, 4, table(
        "Device",
        f"dms_device_info{{{d}}}",
        hide=("__name__", "Value", "instance"),
        order=("display_name", "name", "device_id", "model", "device_type", "firmware_version",
               "site", "region"),
    ))
    lay.add(24, 5, state_timeline("Connection state over time", connection, "connection state",
                                  mappings(CONNECTION)))
    lay.add(24, 7, table(
        "Active alarm list",
        f"1000 * dms_alarm_asserted_timestamp_seconds{{{d}}}",
        hide=("instance", "device_id", "display_name"),
        rename={"Value": "Asserted"},
        order=("severity", "code", "fault_object", "alarm_id", "source", "Asserted"),
        overrides=[column("Asserted", unit="dateTimeAsIso")],
        sort_by="Asserted",
    ))
    lay.add(12, 7, stacked(
        "Authorized services by source",
        "source",
        f"dms_device_authorized_services{{{d}}}",
        description="Rows of /authorizations with authorized: true for this device.",
    ))
    lay.add(12, 7, table(
        "Groups",
        f"max by (group_id, name) (\n  dms_device_group_member{{{d}}}\n"
        f"  * on(job, instance, group_id) group_left(name) dms_group_info{{{S}}}\n)",
        hide=("Value",),
    ))
    lay.add(24, 6, table(
        "Destinations",
        [
            f"max by (destination_id, name, type, address, port, service_id)"
            f" (dms_destination_info{{{d}}})",
            f"max by (destination_id, dms_destination_status) (dms_destination_status{{{d}}} == 1)",
            f"max by (destination_id) (dms_destination_enabled{{{d}}})",
        ],
        hide=("Value #A", "Value #B"),
        rename={"dms_destination_status": "Status", "Value #C": "Enabled"},
        order=("destination_id", "name", "Status", "Enabled", "type", "address", "port",
               "service_id"),
        overrides=[column("Enabled", mappings=YES_NO)],
    ))
    lay.add(24, 6, state_timeline(
        "Destination status over time",
        state_code("dms_destination_status", names(DESTINATION), d, by="destination_id"),
        "{{destination_id}}",
        mappings(DESTINATION),
    ))
    # Value device_id, shown as display_name. query_result() prints each series with its labels
    # in alphabetical order, so device_id comes before display_name.
    device_var = variable_query(
        "device",
        "Device",
        f"query_result(dms_device_info{{{S}}})",
        regex='/device_id="(?<value>[^"]*)".*display_name="(?<text>[^"]*)"/',
    )
    device_var["refresh"] = 1  # on dashboard load only: the list can be long
    # fmt: on
    return [device_var]


@dashboard("dms-alarms", "DMS / Alarms")
def alarms(lay: Layout) -> list[Json]:
    """Active DMS alarms by severity, code and site, and the list of active alarms."""
    a = f'{S}, severity=~"$severity"'
    alarm = f"dms_alarm_asserted_timestamp_seconds{{{a}}}"
    site_join = f"* on(job, instance, device_id) group_left(site, region) dms_device_info{{{S}}}"
    # fmt: off
    for sev, color in [("critical", "red"), ("major", "orange"), ("minor", "yellow"),
                       ("warning", "blue"), ("info", "text")]:
        lay.add(4, 4, stat(sev.capitalize(),
                           f'sum(dms_alarms{{{S}, state="active", severity="{sev}"}})',
                           thresholds=[(None, "green"), (1, color)], background=True))
    lay.add(4, 4, stat("Oldest active alarm", f"time() - min({alarm})", unit="s"))
    lay.add(12, 8, stacked("Active alarms by severity", "severity",
                           f'dms_alarms{{{a}, state="active"}}'))
    lay.add(6, 8, bargauge("Active alarms by code", *by("code", alarm, "count", sort=True)))
    lay.add(6, 8, bargauge(
        "Active alarms by site",
        *by("site", f"{alarm} {site_join}", "count", sort=True),
        description="Device alarms only: alarms raised by the DMS itself have no site.",
    ))
    lay.add(24, 12, table(
        "Active alarms",
        # alarms of unknown devices and of the DMS itself have no site; the `or` keeps them
        f"1000 * (\n  {alarm}\n  {site_join}\nor on(job, instance, alarm_id)\n  {alarm}\n)",
        hide=("instance",),
        rename={"Value": "Asserted", "display_name": "Device"},
        order=("Asserted", "severity", "code", "Device", "site", "fault_object", "source",
               "alarm_id", "device_id", "region"),
        overrides=[column("Asserted", unit="dateTimeAsIso"), column("Device", links=DEVICE_LINK)],
        sort_by="Asserted",
    ))
    lay.add(12, 8, table(
        "Devices with the most active alarms",
        f'topk(10, count by (device_id, display_name)'
        f' (dms_alarm_asserted_timestamp_seconds{{{a}, source="device"}}))',
        rename={"Value": "Active alarms", "display_name": "Device"},
        overrides=[column("Device", links=DEVICE_LINK)],
        sort_by="Active alarms",
    ))
    lay.add(12, 8, stacked(
        "Active alarms by source",
        "source",
        f'dms_alarms{{{a}, state="active"}}',
        description="device: raised by a device; dms: raised by the DMS itself.",
    ))
    lay.add(24, 8, stacked(
        "Cleared alarms held by the DMS",
        "severity",
        f'dms_alarms{{{a}, state="cleared"}}',
        description="Only with alarms.retrieval: all in the exporter's configuration (the "
        "exporter then polls the DMS's whole alarm history). Empty with the default, active.",
    ))
    severity = variable_custom(
        "severity", "Severity", ["critical", "major", "minor", "warning", "info", "other"]
    )
    # fmt: on
    return [severity]


@dashboard("dms-authorization", "DMS / Authorization")
def authorization(lay: Layout) -> list[Json]:
    """Authorization sets and schedule authorizations: states, windows, entitled devices."""
    sa = "schedule_authorization_id"
    start = f"dms_schedule_authorization_start_timestamp_seconds{{{S}}}"
    end = f"dms_schedule_authorization_end_timestamp_seconds{{{S}}}"
    state = "dms_schedule_authorization_state"
    with_name = f"* on(job, instance, {sa}) group_left(name) dms_schedule_authorization_info{{{S}}}"
    # the same condition as the alert DmsScheduleAuthorizationNotActive, without its `for:`
    not_active = (
        f"({start} <= time())\n"
        f"and on(job, instance, {sa}) ({end} > time())\n"
        f'and on(job, instance, {sa}) ({state}{{{S}, {state}="active"}} == 0)\n'
        f'unless on(job, instance, {sa}) ({state}{{{S}, {state}="cancelled"}} == 1)'
    )
    in_window = f"({start} <= bool time())\n* on(job, instance, {sa})\n({end} > bool time())"
    # fmt: off
    lay.add(4, 4, stat("Authorization sets", f"count(dms_authorization_set_info{{{S}}})"))
    lay.add(4, 4, stat("Enabled sets", f"sum(dms_authorization_set_enabled{{{S}}})"))
    lay.add(4, 4, stat("Schedules active", f'sum({state}{{{S}, {state}="active"}})'))
    lay.add(4, 4, stat("Schedules pending", f'sum({state}{{{S}, {state}="pending"}})'))
    lay.add(4, 4, stat(
        "In window, not active",
        f"count(\n{not_active}\n) or vector(0)",
        thresholds=RED_FROM_1,
        background=True,
        description="Schedules whose window contains now but which the DMS does not report as "
        "active (alert DmsScheduleAuthorizationNotActive).",
    ))
    lay.add(4, 4, stat(
        "Devices deauthorized",
        f'sum(dms_devices_by_authorization_state{{{S}, authorization_state="deauthorized"}})',
        thresholds=[(None, "green"), (1, "orange")],
    ))
    lay.add(12, 8, stacked("Devices by authorization state", "authorization_state",
                           f"dms_devices_by_authorization_state{{{S}}}"))
    lay.add(12, 8, stacked(
        "Authorized services by source, all devices",
        "source",
        f"dms_service_authorized_devices{{{S}}}",
        description="Device x service rows with authorized: true (/authorizations), summed"
        " over services from the fleet-level dms_service_authorized_devices.",
    ))
    lay.add(24, 8, state_timeline(
        "Schedule authorization state over time",
        f"{state_code(state, names(SCHEDULE), S, by=f'job, instance, {sa}')}\n{with_name}",
        "{{name}}",
        mappings(SCHEDULE),
    ))
    lay.add(24, 8, state_timeline(
        "Schedule windows",
        f"{in_window}\n{with_name}",
        "{{name}}",
        WINDOW,
        description="When each schedule's window (start to end) contains the time.",
    ))
    lay.add(24, 8, table(
        "Schedule authorizations",
        [
            f"max by ({sa}, name, authorization_set_id) (dms_schedule_authorization_info{{{S}}})",
            f"1000 * max by ({sa}) ({start})",
            f"1000 * max by ({sa}) ({end})",
            f"max by ({sa}, {state}) ({state}{{{S}}} == 1)",
            f"max by ({sa}) (dms_schedule_authorization_devices{{{S}}})",
        ],
        hide=("Value #A", "Value #D"),
        rename={"Value #B": "Start", "Value #C": "End", "Value #E": "Devices", state: "State"},
        order=("name", sa, "State", "Start", "End", "Devices", "authorization_set_id"),
        overrides=[column("Start", unit="dateTimeAsIso"), column("End", unit="dateTimeAsIso")],
        sort_by="Start",
    ))
    lay.add(24, 8, table(
        "Authorization sets: devices and services",
        [
            f"max by (authorization_set_id, name, type) (dms_authorization_set_info{{{S}}})",
            f"max by (authorization_set_id) (dms_authorization_set_enabled{{{S}}})",
            f"max by (authorization_set_id) (dms_authorization_set_devices{{{S}}})",
            f"max by (authorization_set_id) (dms_authorization_set_services{{{S}}})",
        ],
        hide=("Value #A",),
        rename={"Value #B": "Enabled", "Value #C": "Devices", "Value #D": "Services"},
        order=("name", "authorization_set_id", "type", "Enabled", "Devices", "Services"),
        overrides=[column("Enabled", mappings=YES_NO)],
        sort_by="Devices",
    ))
    # fmt: on
    return []


@dashboard("dms-exporter-health", "DMS / Exporter health")
def exporter_health(lay: Layout) -> list[Json]:
    """dms-exporter's own health: each DMS endpoint's polls, errors, data age and size."""
    ep = "dms_exporter_endpoint"

    def by_endpoint(metric: str, agg: str = "max") -> str:
        return f"{agg} by (endpoint) ({ep}_{metric}{{{S}}})"

    def rate_by(metric: str, by: str, fn: str = "rate") -> str:
        return f"sum by ({by}) ({fn}({metric}{{{S}}}[$__rate_interval]))"

    age = by_endpoint("data_age_seconds")
    # fmt: off
    lay.add(3, 4, stat("DMS", f"min(dms_up{{{S}}})", value_mappings=UP, background=True))
    lay.add(5, 4, stat("DMS server", f"dms_info{{{S}}}", "{{name}} {{version}} ({{role}})",
                       text_mode="name"))
    lay.add(4, 4, stat("Exporter version", f"dms_exporter_build_info{{{S}}}",
                       "{{version}} (Python {{python_version}})", text_mode="name"))
    lay.add(4, 4, stat("Exporter uptime", f"time() - max(dms_exporter_start_time_seconds{{{S}}})",
                       unit="s"))
    lay.add(4, 4, stat("Last config reload",
                       f"min(dms_exporter_config_last_reload_successful{{{S}}})",
                       value_mappings=OK_FAILED, background=True))
    lay.add(4, 4, stat(
        "DMS clock offset",
        f"max(dms_server_time_seconds{{{S}}})"
        f' - max({ep}_last_poll_timestamp_seconds{{{S}, endpoint="system"}})',
        unit="s",
        description="DMS server time minus the exporter's clock at the end of the system poll "
        "(exact to within that poll's duration). Schedule windows depend on the DMS clock.",
    ))
    lay.add(24, 10, table(
        "Endpoints",
        [
            by_endpoint("enabled"),
            by_endpoint("up"),
            by_endpoint("interval_seconds"),
            age,
            by_endpoint("poll_duration_seconds"),
            by_endpoint("rows"),
            by_endpoint("stale"),
            f"sum by (endpoint) (increase({ep}_errors_total{{{S}}}[$__range]))",
            f"sum by (endpoint) (increase({ep}_polls_total{{{S}}}[$__range]))",
            by_endpoint("data_restored"),
        ],
        rename={"Value #A": "Enabled", "Value #B": "Up", "Value #C": "Interval",
                "Value #D": "Data age", "Value #E": "Last poll duration",
                "Value #F": "Rows", "Value #G": "Stale", "Value #H": "Errors (range)",
                "Value #I": "Polls (range)", "Value #J": "Restored"},
        order=("endpoint", "Enabled", "Up", "Interval", "Data age", "Stale", "Restored",
               "Last poll duration", "Rows", "Errors (range)", "Polls (range)"),
        overrides=[
            column("Enabled", mappings=YES_NO),
            column("Up", mappings=UP, color_text=True),
            column("Stale", mappings=STALE, color_text=True),
            column("Restored", mappings=YES_NO),
            column("Interval", unit="s"),
            column("Data age", unit="s"),
            column("Last poll duration", unit="s"),
            column("Errors (range)", decimals=0),
            column("Polls (range)", decimals=0),
        ],
        description="One row per DMS endpoint: the same data as the exporter's /api/v1/endpoints."
        " Data age: how old the data its series show is (kept through DMS outages, marked"
        " Stale after stale_after, and across restarts: Restored until the first poll).",
    ))
    lay.add(12, 8, timeseries("Poll duration by endpoint", by_endpoint("poll_duration_seconds"),
                              "{{endpoint}}", unit="s"))
    lay.add(12, 8, timeseries("Poll errors by endpoint and reason",
                              rate_by(f"{ep}_errors_total", "endpoint, reason"),
                              "{{endpoint}} {{reason}}", unit="reqps", stack=True))
    lay.add(12, 8, timeseries("Age of data by endpoint", age, "{{endpoint}}", unit="s",
                              description="How old the data each endpoint shows is. It grows"
                              " while the DMS cannot be read; DmsEndpointDataStale fires above"
                              " stale_after (three poll intervals by default)."))
    lay.add(12, 8, timeseries("Rows by endpoint", by_endpoint("rows"), "{{endpoint}}"))
    lay.add(8, 8, timeseries("Logins to the DMS",
                             rate_by("dms_exporter_logins_total", "result", "increase"),
                             "{{result}}"))
    lay.add(8, 8, timeseries(
        "Skipped rows and unknown values",
        [
            (rate_by(f"{ep}_rows_skipped_total", "endpoint", "increase"), "skipped {{endpoint}}"),
            (rate_by(f"{ep}_unknown_values_total", "endpoint", "increase"), "unknown {{endpoint}}"),
        ],
        description="Rows without an id are skipped; enum values the exporter does not know are "
        "exported as other. Both suggest a DMS that differs from the model: see the field "
        "renames in the exporter's configuration.",
    ))
    lay.add(8, 8, timeseries(
        "Render and scrape duration",
        [
            (f"max by (group) (dms_exporter_render_duration_seconds{{{S}}})", "render {{group}}"),
            (f"max(scrape_duration_seconds{{{S}}})", "scrape"),
        ],
        unit="s",
    ))
    # fmt: on
    return []


def render(build: Callable[[], Json]) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    out_of_date = []
    OUT.mkdir(exist_ok=True)
    for filename, build in DASHBOARDS.items():
        path = OUT / filename
        text = render(build)
        if not check:
            path.write_text(text, encoding="utf-8")
        elif not path.exists() or path.read_text(encoding="utf-8") != text:
            out_of_date.append(filename)
    if out_of_date:
        print("out of date; run python grafana/generate.py:", *out_of_date, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
