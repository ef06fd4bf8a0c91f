"""``dms-exporter --probe``: what a DMS really sends, endpoint by endpoint, against the config.

``probe`` logs in, fetches each enabled endpoint once (every page, or ``pages``) and reports per
endpoint: URL, HTTP status, time, pages and rows; per field the exporter reads, the share of rows
where it was found and its JSON types; enum words the exporter does not know, with counts; fields
in the answer that no mapping reads, with the closest unread field suggested for a ``fields``
rename; and a one-line verdict. ``render_text`` and ``render_json`` print it. The password and
the token never appear: the client masks them in every error, and nothing else carries them.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import Config, EndpointSettings, Paging
from ..errors import DmsApiError
from ..model import OTHER
from ..vocabulary import ENUM_FIELDS, KNOWN_FIELDS, enum_converter, parse
from .client import DmsClient
from .paging import walk

__all__ = ["EndpointProbe", "FieldProbe", "ProbeReport", "probe", "render_json", "render_text"]

#: An enum value that is a code, as ``_unknown_values`` shows it: a number or a boolean.
_CODE = re.compile(r"-?\d+(\.\d+)?|true|false")
_JSON_TYPE_NAMES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
}


@dataclass(frozen=True, slots=True)
class FieldProbe:
    """One field the exporter reads: where, how often it was found, as which JSON types."""

    name: str  # the API name (``fields`` key)
    path: str  # where this config reads it
    found: int  # rows where it was present and not null
    types: tuple[str, ...]  # JSON types seen, most frequent first


@dataclass(frozen=True, slots=True)
class EndpointProbe:
    """What one endpoint answered."""

    endpoint: str
    url: str
    status: str  # "200", or the error reason and status
    seconds: float
    pages: int
    rows: int  # items received
    rows_with_id: int  # rows the exporter would keep
    total: int | None = None  # the number of items the DMS says the list holds, if it says
    total_at: str = ""  # where in the answer it says so
    truncated: bool = False  # more pages after --probe.pages
    fields: tuple[FieldProbe, ...] = ()
    unknown_values: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    unused_fields: Mapping[str, str | None] = field(default_factory=dict)  # name -> suggestion
    #: enum field -> the ``values`` map to fill in, when every unknown value is a code
    proposed_values: Mapping[str, str] = field(default_factory=dict)
    error: str = ""
    ok: bool = False
    verdict: str = ""


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """Every enabled endpoint's answer, and the logins the probe needed."""

    endpoints: tuple[EndpointProbe, ...]
    logins: Mapping[str, int]
    warnings: tuple[str, ...] = ()  # what the login answer lacked that the config expects

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.endpoints)


async def probe(config: Config, *, pages: int | None = None) -> ProbeReport:
    """Fetch each enabled endpoint once and describe its answer; see the module docstring."""
    settings = config.dms
    if pages is not None:
        settings = dataclasses.replace(settings, max_pages=pages)
    results = []
    async with DmsClient(settings) as client:
        for endpoint in config.endpoints.values():
            if endpoint.enabled:
                results.append(await _probe_one(client, endpoint, truncate=pages is not None))
        logins = {k: v for k, v in client.logins.items() if isinstance(v, int)}
        warnings = (client.login_warning,) if client.login_warning else ()
    return ProbeReport(tuple(results), logins, warnings)


async def _probe_one(
    client: DmsClient, endpoint: EndpointSettings, truncate: bool
) -> EndpointProbe:
    url = client.settings.url + endpoint.path
    stats: dict[str, Any] = {"pages": 0, "status": ""}
    started = time.perf_counter()
    try:
        payload = await client.fetch(endpoint, stats=stats, truncate=truncate)
    except DmsApiError as exc:
        code = exc.status or stats["status"]
        status = f"HTTP {code}, {exc.reason}" if code else exc.reason
        error = str(exc).split(": ", 2)[-1]  # without "endpoint: GET path: "
        return EndpointProbe(
            endpoint=endpoint.name,
            url=url,
            status=status,
            seconds=time.perf_counter() - started,
            pages=stats["pages"],
            rows=stats.get("items", 0),
            rows_with_id=0,
            total=stats.get("total"),
            total_at=stats.get("total_at", ""),
            error=error,
            verdict=f"FAIL: {error}",
        )
    seconds = time.perf_counter() - started
    items = [payload] if isinstance(payload, dict) and endpoint.name == "system" else payload
    items = items if isinstance(items, list) else []
    try:
        rows_with_id = len(
            parse(endpoint.name, payload, endpoint.fields, 0.0, values=endpoint.values).rows
        )
    except DmsApiError as exc:
        rows_with_id, shape_error = 0, str(exc)
    else:
        shape_error = ""
    objects = [item for item in items if isinstance(item, dict)]
    fields = _fields(endpoint, objects)
    unknown = _unknown_values(endpoint, objects)
    unused = _unused(endpoint, objects, fields)
    proposed = _proposed_values(endpoint.name, unknown)
    result = EndpointProbe(
        endpoint=endpoint.name,
        url=url,
        status=f"HTTP {stats['status'] or 200}",
        seconds=seconds,
        pages=stats["pages"] or 1,
        rows=len(items),
        rows_with_id=rows_with_id,
        total=stats.get("total"),
        total_at=stats.get("total_at", ""),
        truncated=stats.get("truncated", False),
        fields=fields,
        unknown_values=unknown,
        unused_fields=unused,
        proposed_values=proposed,
        error=shape_error or await _page_before_the_first(client, endpoint, items, stats),
    )
    ok, verdict = _verdict(result, endpoint.envelope.total)
    return dataclasses.replace(result, ok=ok, verdict=verdict)


async def _page_before_the_first(
    client: DmsClient, endpoint: EndpointSettings, items: list[Any], stats: Mapping[str, Any]
) -> str:
    """With page numbers from 1 and no count to compare with, ask for page 0 once: a DMS that
    answers it with other items counts from 0, and the walk missed its first page. "" if not."""
    paging = endpoint.paging
    if paging.style != "page" or paging.first_page != 1 or stats.get("total") is not None:
        return ""  # other paging, or a count the walk was already held to
    if endpoint.name == "system":
        return ""
    params = {**endpoint.params, paging.page_param or "": "0"}
    if paging.size_param:
        params[paging.size_param] = str(client.settings.page_size)
    one_request = Paging(style="none", offset_param=None, size_param=None)
    try:
        zero = await client.fetch(dataclasses.replace(endpoint, params=params, paging=one_request))
    except DmsApiError:
        return ""  # no page 0 (a 400 or 404): pages count from 1
    if not isinstance(zero, list) or not zero or (items and zero == items[: len(zero)]):
        return ""  # empty, or page 1 again: nothing before the first page
    return (
        f"page 0 answers {len(zero)} items that page 1 does not start with: the DMS counts its "
        "pages from 0 and the walk missed the first; set paging.first_page: 0"
    )


def _fields(endpoint: EndpointSettings, objects: list[dict[str, Any]]) -> tuple[FieldProbe, ...]:
    out = []
    for name in KNOWN_FIELDS[endpoint.name]:
        path = endpoint.fields.get(name, name)
        types: Counter[str] = Counter()
        for obj in objects:
            value = walk(obj, path)
            if value is not None:
                types[_JSON_TYPE_NAMES.get(type(value), type(value).__name__)] += 1
        found = sum(types.values())
        out.append(FieldProbe(name, path, found, tuple(t for t, _ in types.most_common())))
    return tuple(out)


def _unknown_values(
    endpoint: EndpointSettings, objects: list[dict[str, Any]]
) -> dict[str, dict[str, int]]:
    """Per enum field, the words found that the exporter does not know, with counts."""
    out: dict[str, dict[str, int]] = {}
    for name in ENUM_FIELDS[endpoint.name]:
        if name in endpoint.constants:
            continue
        convert = enum_converter(endpoint.name, name, endpoint.values.get(name, {}))
        words: Counter[str] = Counter()
        for obj in objects:
            value = walk(obj, endpoint.fields.get(name, name))
            if value is not None and convert(value) == OTHER:
                words[value if isinstance(value, str) else json.dumps(value)[:40]] += 1
        if words:
            out[name] = dict(words.most_common(10))
    return out


def _proposed_values(endpoint: str, unknown: Mapping[str, Mapping[str, int]]) -> dict[str, str]:
    """Per enum field whose unknown values are all numeric or boolean codes, the ``values``
    map to fill in (``{1: ?, 2: ?}``) and the words to fill it with."""
    out = {}
    for name, words in unknown.items():
        codes = [_CODE.fullmatch(word) for word in words]
        if all(codes):
            keys = sorted(words, key=lambda w: (w in ("true", "false"), _code_order(w)))
            words_of = ", ".join(ENUM_FIELDS[endpoint][name])
            out[name] = f"{{{name}: {{{', '.join(f'{k}: ?' for k in keys)}}}}} with {words_of}"
    return out


def _code_order(word: str) -> float:
    try:
        return float(word)
    except ValueError:
        return 0.0


def _unused(
    endpoint: EndpointSettings, objects: list[dict[str, Any]], fields: tuple[FieldProbe, ...]
) -> dict[str, str | None]:
    """Fields no mapping reads -> the closest field the exporter found nowhere. An object no
    mapping reads into is shown by its fields (``status.connection``)."""
    read = {f.path.split(".")[0] for f in fields}
    seen: Counter[str] = Counter()
    for obj in objects:
        for key, value in obj.items():
            if isinstance(value, dict) and key not in read:
                seen.update(f"{key}.{sub}" for sub in value if isinstance(sub, str))
            elif isinstance(key, str):
                seen[key] += 1
    missing = {f.name: f for f in fields if f.found == 0}
    out: dict[str, str | None] = {}
    for key, _ in seen.most_common():
        if key in read:
            continue
        out[key] = _closest(key.rsplit(".", 1)[-1], missing)
    return out


def _closest(key: str, missing: Mapping[str, FieldProbe]) -> str | None:
    """The unread field ``key`` most likely stands for, by similar spelling."""
    if not missing:
        return None
    by_form = {n.lower().replace("_", "").replace(".", ""): n for n in missing}
    match = difflib.get_close_matches(key.lower().replace("_", ""), by_form, n=1, cutoff=0.6)
    return by_form[match[0]] if match else None


def _verdict(result: EndpointProbe, total_path: str | None) -> tuple[bool, str]:
    """``(ok, one line)``; ``total_path``: the envelope's ``total`` of the endpoint."""
    if result.error:
        return False, f"FAIL: {result.error}"
    if result.rows == 0:
        return True, "OK, but the answer is empty: nothing to check"
    if result.rows_with_id == 0:
        return False, f"FAIL: none of {result.rows} rows has a usable id"
    notes = []
    never = [f.name for f in result.fields if f.found == 0]
    if never:
        notes.append(f"never found: {', '.join(never)}")
    unknown = sum(sum(words.values()) for words in result.unknown_values.values())
    if unknown:
        notes.append(f"{unknown} unknown enum value{'s' if unknown > 1 else ''}")
    renames = [f"{k} -> {v}" for k, v in result.unused_fields.items() if v]
    if renames:
        notes.append(f"likely renames: {', '.join(renames)}")
    if result.total == result.rows and result.total_at != total_path:  # not a page's count
        notes.append(f"the DMS's count is at {result.total_at!r}: set envelope.total to it")
    head = f"{result.rows_with_id} of {result.rows} rows with an id"
    if result.truncated:
        of = f" of the {result.total} the DMS reports" if result.total is not None else ""
        first = "the first page" if result.pages == 1 else f"the first {result.pages} pages"
        head += f" ({first}{of}: --probe.pages)"
    return True, ("OK: " if not notes else "CHECK: ") + "; ".join([head, *notes])


def render_text(config: Config, report: ProbeReport) -> str:
    """A report for a person."""
    logins = ", ".join(f"{k} {v}" for k, v in report.logins.items() if v) or "none needed"
    lines = [f"DMS {config.dms.url} (auth {config.dms.auth}; logins: {logins})"]
    lines += [f"warning: {warning}" for warning in report.warnings]
    lines.append("")
    for r in report.endpoints:
        lines.append(
            f"{r.endpoint}: GET {r.url} -> {r.status}, {r.seconds:.2f}s, {r.pages} page(s), "
            f"{r.rows} rows"
            + (f" of {r.total}" if r.total is not None and r.total != r.rows else "")
        )
        if r.fields and r.rows:
            width = max(len(f.path) for f in r.fields)
            for f in r.fields:
                share = f"{100 * f.found / r.rows:5.1f}%"
                path = f.path if f.path == f.name else f"{f.path} (as {f.name})"
                lines.append(f"  {path:<{width}}  {share}  {', '.join(f.types) or '-'}")
        for name, words in r.unknown_values.items():
            shown = ", ".join(f"{w!r} x{n}" for w, n in words.items())
            lines.append(f"  unknown {name} values: {shown} (map them in values.{name})")
            if name in r.proposed_values:
                lines.append(
                    f"  {name} is sent as codes: fill in values: {r.proposed_values[name]}"
                )
        for key, suggestion in r.unused_fields.items():
            hint = f": rename with fields: {{{suggestion}: {key}}}" if suggestion else ""
            lines.append(f"  not read: {key}{hint}")
        lines.append(f"  verdict: {r.verdict}")
        lines.append("")
    failed = [r.endpoint for r in report.endpoints if not r.ok]
    lines.append(f"FAIL: {', '.join(failed)}" if failed else "OK: every enabled endpoint answered")
    return "\n".join(lines) + "\n"


def render_json(config: Config, report: ProbeReport) -> str:
    """The same report for scripts."""
    return json.dumps(
        {
            "dms": config.dms.url,
            "ok": report.ok,
            "logins": dict(report.logins),
            "warnings": list(report.warnings),
            "endpoints": [dataclasses.asdict(r) for r in report.endpoints],
        },
        indent=2,
    )
