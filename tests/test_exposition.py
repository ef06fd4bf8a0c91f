"""The exposition writer: exact output in both formats, escaping, parsers, promtool, Accept."""

from __future__ import annotations

import math
import shutil
import subprocess

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from dms_exporter.exposition.text import (
    OPENMETRICS_EOF,
    Family,
    choose_format,
    render_openmetrics,
    render_text,
    sample_lines,
    stateset_texts,
)


def tiny() -> list[Family]:
    """One family of each kind, plus an empty one."""
    return [
        Family("dms_up", "gauge", "1 if up.", (), [((), 1)]),
        Family("dms_polls", "counter", "Polls done.", ("endpoint",), [(("devices",), 7)]),
        Family("dms_device", "info", "Device.", ("device_id", "model"), [(("d1", "PV 8130"), 1)]),
        Family(
            "dms_state",
            "stateset",
            "State.",
            ("device_id", "dms_state"),
            [(("d1", "online"), 1), (("d1", "offline"), 0)],
        ),
        Family("dms_last_seconds", "gauge", "Last.", ("device_id",), [(("d1",), 1.5)]),
        Family("dms_empty", "gauge", "Nothing yet.", ("device_id",), []),
    ]


TINY_TEXT = """\
# HELP dms_up 1 if up.
# TYPE dms_up gauge
dms_up 1
# HELP dms_polls_total Polls done.
# TYPE dms_polls_total counter
dms_polls_total{endpoint="devices"} 7
# HELP dms_device_info Device.
# TYPE dms_device_info gauge
dms_device_info{device_id="d1",model="PV 8130"} 1
# HELP dms_state State.
# TYPE dms_state gauge
dms_state{device_id="d1",dms_state="online"} 1
dms_state{device_id="d1",dms_state="offline"} 0
# HELP dms_last_seconds Last.
# TYPE dms_last_seconds gauge
dms_last_seconds{device_id="d1"} 1.5
# HELP dms_empty Nothing yet.
# TYPE dms_empty gauge
"""

TINY_OPENMETRICS = """\
# HELP dms_up 1 if up.
# TYPE dms_up gauge
dms_up 1
# HELP dms_polls Polls done.
# TYPE dms_polls counter
dms_polls_total{endpoint="devices"} 7
# HELP dms_device Device.
# TYPE dms_device info
dms_device_info{device_id="d1",model="PV 8130"} 1
# HELP dms_state State.
# TYPE dms_state stateset
dms_state{device_id="d1",dms_state="online"} 1
dms_state{device_id="d1",dms_state="offline"} 0
# HELP dms_last_seconds Last.
# TYPE dms_last_seconds gauge
dms_last_seconds{device_id="d1"} 1.5
# HELP dms_empty Nothing yet.
# TYPE dms_empty gauge
"""


def test_text_format_exact() -> None:
    assert render_text(tiny()).decode() == TINY_TEXT


def test_openmetrics_format_exact_without_eof() -> None:
    assert render_openmetrics(tiny()).decode() == TINY_OPENMETRICS


NASTY = 'back\\slash "quoted"\nnext line'


def nasty() -> list[Family]:
    return [
        Family(
            "dms_quoted",
            "gauge",
            'Help with \\ and "quotes"\nand a newline.',
            ("v",),
            [((NASTY,), 1)],
        ),
        Family("dms_plain", "gauge", "Plain.", ("v",), [(("plain",), 2)]),
    ]


def test_label_values_escaped_in_both_formats() -> None:
    line = 'dms_quoted{v="back\\\\slash \\"quoted\\"\\nnext line"} 1\n'
    text, openmetrics = render_text(nasty()), render_openmetrics(nasty())
    assert line in text.decode()
    assert line in openmetrics.decode()
    assert 'dms_plain{v="plain"} 2\n' in text.decode()


@pytest.mark.parametrize(
    ("value", "escaped"),
    [("a\\b", "a\\\\b"), ("a\nb", "a\\nb"), ('a"b', 'a\\"b'), ("a\\", "a\\\\")],
    ids=["backslash", "newline", "quote", "trailing-backslash"],
)
def test_each_special_character_alone_is_escaped(value: str, escaped: str) -> None:
    family = Family("dms_x", "gauge", "X.", ("v", "w"), [(("plain", value), 1)])
    assert render_text([family]).endswith(f'dms_x{{v="plain",w="{escaped}"}} 1\n'.encode())


def test_help_escaped_per_format() -> None:
    text, openmetrics = render_text(nasty()), render_openmetrics(nasty())
    assert '# HELP dms_quoted Help with \\\\ and "quotes"\\nand a newline.\n' in text.decode()
    assert (
        '# HELP dms_quoted Help with \\\\ and \\"quotes\\"\\nand a newline.\n'
        in openmetrics.decode()
    )


def test_escaped_values_round_trip_through_both_parsers() -> None:
    text, openmetrics = render_text(nasty()), render_openmetrics(nasty())
    for parsed in (
        parse_text(text.decode()),
        parse_openmetrics(openmetrics.decode() + OPENMETRICS_EOF.decode()),
    ):
        first = next(iter(parsed))
        assert first.samples[0].labels == {"v": NASTY}
        assert first.documentation == 'Help with \\ and "quotes"\nand a newline.'


def test_special_values() -> None:
    values = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "big": 1e20}
    values |= {"ts": 1780000000.25, "int": 3}
    fam = Family("dms_x", "gauge", "X.", ("k",), [((k,), v) for k, v in values.items()])
    openmetrics = render_openmetrics([fam]).decode()
    assert 'dms_x{k="nan"} NaN\n' in openmetrics
    assert 'dms_x{k="inf"} +Inf\n' in openmetrics
    assert 'dms_x{k="-inf"} -Inf\n' in openmetrics
    values = {
        s.labels["k"]: s.value
        for s in next(iter(parse_openmetrics(openmetrics + "# EOF\n"))).samples
    }
    assert math.isnan(values.pop("nan"))
    assert values == {
        "inf": math.inf,
        "-inf": -math.inf,
        "big": 1e20,
        "ts": 1780000000.25,
        "int": 3,
    }


def _summary(families) -> list[tuple[str, str, list[tuple[str, dict[str, str], float]]]]:
    return [(f.name, f.type, [(s.name, s.labels, s.value) for s in f.samples]) for f in families]


def test_openmetrics_strict_parser_sees_the_same_families() -> None:
    parsed = parse_openmetrics(render_openmetrics(tiny()).decode() + "# EOF\n")
    suffix = {"counter": "_total", "info": "_info"}
    expected = [
        (
            f.name,
            f.kind,
            [
                (f.name + suffix.get(f.kind, ""), dict(zip(f.label_names, lv, strict=True)), v)
                for lv, v in f.samples
            ],
        )
        for f in tiny()
    ]
    assert _summary(parsed) == expected


def test_text_parser_reads_text_format() -> None:
    parsed = _summary(parse_text(render_text(tiny()).decode()))
    assert [(name, kind) for name, kind, _ in parsed] == [
        ("dms_up", "gauge"),
        ("dms_polls", "counter"),  # the text parser strips _total from a counter's family name
        ("dms_device_info", "gauge"),
        ("dms_state", "gauge"),
        ("dms_last_seconds", "gauge"),
        ("dms_empty", "gauge"),
    ]
    assert parsed[2][2] == [("dms_device_info", {"device_id": "d1", "model": "PV 8130"}, 1.0)]
    assert parsed[1][2] == [("dms_polls_total", {"endpoint": "devices"}, 7.0)]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_text_format() -> None:
    result = subprocess.run(
        ["promtool", "check", "metrics"],
        input=render_text(tiny() + nasty()),
        capture_output=True,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


@pytest.mark.parametrize(
    ("name", "kind", "labels", "problem"),
    [
        ("dms-up", "gauge", (), "invalid metric name"),
        ("dms_up", "histogram", (), "kind"),
        ("dms_device_info", "info", (), "must not end with _info"),
        ("dms_polls_total", "counter", (), "must not end with _total"),
        ("dms_up", "gauge", ("device-id",), "invalid label name"),
        ("dms_up", "gauge", ("__name",), "invalid label name"),
        ("dms_up", "gauge", ("a", "a"), "duplicate"),
        ("dms_state", "stateset", ("device_id", "state"), "last label must be 'dms_state'"),
    ],
)
def test_family_validation(name: str, kind: str, labels: tuple[str, ...], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Family(name, kind, "Help.", labels)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "text"),
        ("", "text"),
        ("*/*", "text"),
        ("text/plain; version=0.0.4", "text"),
        ("application/openmetrics-text", "openmetrics"),
        ("application/openmetrics-text; version=1.0.0; charset=utf-8", "openmetrics"),
        ("application/openmetrics-text;version=0.0.1", "text"),
        ("application/openmetrics-text; version=2.0.0", "text"),
        ("application/openmetrics-text; version=1.0.0; q=0", "text"),
        # what Prometheus 2.x sends
        (
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
            "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            "openmetrics",
        ),
        ("text/plain;q=0.5, Application/OpenMetrics-Text;Version=1.0.0;q=0.9", "openmetrics"),
    ],
)
def test_choose_format(accept: str | None, expected: str) -> None:
    assert choose_format(accept) == expected


@pytest.mark.parametrize(
    "rows",
    [
        [(("d1", "plain"), "online"), (("d2", "x"), "offline")],
        [(("d1", 'say "hi"'), "online"), (("d2", "back\\slash\nline"), "weird")],
        [(("d3", "n"), "not-a-state")],
    ],
)
@pytest.mark.parametrize("fallback", ["other", "missing"])
def test_stateset_lines_match_the_expanded_family(rows, fallback) -> None:
    states = ("online", "offline", "other")
    expanded = Family("s", "stateset", "h", ("id", "name", "s"))
    for values, current in rows:
        hot = current if current in states else fallback
        expanded.samples += [((*values, st), int(st == hot)) for st in states]
    ((lines, count),) = stateset_texts("s", ("id", "name"), states, [rows], fallback)
    assert (lines, count) == (sample_lines(expanded), len(expanded.samples))


def test_process_families_are_prometheus_clients_with_its_values() -> None:
    """The process block reads /proc and gc itself, yet shows what prometheus-client's own
    collectors show for the same process: names, types, HELP and (read moments apart) values."""
    from prometheus_client import (
        CollectorRegistry,
        GCCollector,
        PlatformCollector,
        ProcessCollector,
        generate_latest,
    )

    from dms_exporter.exposition.process import process_exposition, process_family_names

    registry = CollectorRegistry(auto_describe=False)
    for collector in (ProcessCollector, PlatformCollector, GCCollector):
        collector(registry=registry)
    ours = {
        f.name: f for f in parse_text(process_exposition(openmetrics=False, wanted=all_).decode())
    }
    theirs = {f.name: f for f in parse_text(generate_latest(registry).decode())}
    assert [(f.name, f.type, f.documentation) for f in ours.values()] == [
        (f.name, f.type, f.documentation) for f in theirs.values()
    ]
    assert [name for name, _ in process_family_names()] == list(ours)

    def values(family_name: str, source: dict) -> dict[tuple, float]:
        family = source[family_name]
        return {tuple(sorted(s.labels.items())): s.value for s in family.samples}

    for exact in ("process_start_time_seconds", "process_max_fds", "process_open_fds"):
        assert values(exact, ours) == pytest.approx(values(exact, theirs), abs=0.02), exact
    for close in ("process_virtual_memory_bytes", "process_resident_memory_bytes"):
        assert values(close, ours) == pytest.approx(values(close, theirs), rel=0.05), close
    cpu = "process_cpu_seconds"
    assert values(cpu, ours) == pytest.approx(values(cpu, theirs), abs=0.5)
    assert values("python_info", ours) == values("python_info", theirs)
    assert values("python_gc_collections", ours).keys() == {
        (("generation", str(g)),) for g in range(3)
    }
    om = process_exposition(openmetrics=True, wanted=all_).decode() + "# EOF\n"
    assert [f.name for f in parse_openmetrics(om)] == list(ours)


def all_(name: str, text_name: str) -> bool:
    return True
