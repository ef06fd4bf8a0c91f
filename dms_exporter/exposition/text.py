"""A small, fast writer of Prometheus text 0.0.4 and OpenMetrics 1.0 from ``Family`` values.

prometheus_client spends about 10 µs per series (docs/performance.md), too slow for
100k devices x ~30 series. This writer validates names once per family, builds every sample line
with one ``%`` format, and escapes a family's label values only when a count over its lines shows
that one needs it (it is rare). Sample lines are the same in both formats (only HELP/TYPE lines
differ), so a caller that needs both (``render.render_families``) formats them once and pairs
them with ``text_header`` and ``openmetrics_header``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Literal

__all__ = [
    "CONTENT_TYPE_OPENMETRICS",
    "CONTENT_TYPE_TEXT",
    "KINDS",
    "OPENMETRICS_EOF",
    "Family",
    "Sample",
    "choose_format",
    "escape_label_value",
    "openmetrics_header",
    "render_openmetrics",
    "render_text",
    "sample_lines",
    "sample_texts",
    "stateset_texts",
    "text_header",
]

CONTENT_TYPE_TEXT = "text/plain; version=0.0.4; charset=utf-8"
"""Content type of the Prometheus text format 0.0.4."""
CONTENT_TYPE_OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
"""Content type of OpenMetrics 1.0."""
OPENMETRICS_EOF = b"# EOF\n"
"""The line that ends an OpenMetrics exposition; the HTTP handler appends it once."""

KINDS: tuple[str, ...] = ("gauge", "counter", "info", "stateset")

Sample = tuple[tuple[str, ...], float]
"""Label values in ``label_names`` order, and the value (int or float; never bool)."""

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# kind -> (suffix of sample names, TYPE in text 0.0.4); the suffix is part of the text family name.
_SUFFIX_AND_TEXT_TYPE: dict[str, tuple[str, str]] = {
    "gauge": ("", "gauge"),
    "counter": ("_total", "counter"),
    "info": ("_info", "gauge"),
    "stateset": ("", "gauge"),
}


@dataclass(slots=True)
class Family:
    """One metric family: OpenMetrics name (no ``_info``/``_total``), kind, HELP and samples.

    ``samples`` holds ``(label values in label_names order, value)``. For a stateset,
    ``label_names`` ends with the state label, which OpenMetrics requires to be the family name,
    and each state is one sample valued 0 or 1. Raises ``ValueError`` on an invalid name.
    """

    name: str
    kind: str
    help: str
    label_names: tuple[str, ...]
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not _METRIC_NAME.fullmatch(self.name):
            raise ValueError(f"invalid metric name {self.name!r}")
        if self.kind not in _SUFFIX_AND_TEXT_TYPE:
            raise ValueError(f"{self.name}: kind {self.kind!r} is not one of {KINDS}")
        suffix = _SUFFIX_AND_TEXT_TYPE[self.kind][0]
        if suffix and self.name.endswith(suffix):
            raise ValueError(f"{self.name}: a {self.kind} family name must not end with {suffix}")
        for label in self.label_names:
            if not _LABEL_NAME.fullmatch(label) or label.startswith("__"):
                raise ValueError(f"{self.name}: invalid label name {label!r}")
        if len(set(self.label_names)) != len(self.label_names):
            raise ValueError(f"{self.name}: duplicate label names {self.label_names}")
        if self.kind == "stateset" and self.label_names[-1:] != (self.name,):
            raise ValueError(f"{self.name}: a stateset's last label must be {self.name!r}")

    @property
    def text_name(self) -> str:
        """The family's name in text 0.0.4 (``_total``/``_info`` added)."""
        return self.name + _SUFFIX_AND_TEXT_TYPE[self.kind][0]


def escape_label_value(value: str) -> str:
    """Escape a label value (same rule in both formats): backslash, newline, double quote."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _escape_help_text(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _escape_help_openmetrics(text: str) -> str:
    return escape_label_value(text)  # OpenMetrics HELP is an escaped-string, quotes included


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(value)


def sample_lines(family: Family) -> str:
    """The family's sample lines, identical in both formats."""
    return sample_texts(family, [family.samples])[0]


def sample_texts(family: Family, groups: Iterable[Sequence[Sample]]) -> list[str]:
    """The sample lines of each group of samples, as ``family`` (its name, kind and labels;
    not its samples) would write them: the same bytes as ``sample_lines`` of each group.

    Fast path: format raw label values and values with one ``%`` per sample, then prove by
    counting that no label value held a quote, backslash or newline and no value was NaN or
    infinite; only a group that fails the check is formatted again with escaping.
    """
    labels = family.label_names
    name = family.name + _SUFFIX_AND_TEXT_TYPE[family.kind][0]
    if labels:
        template = name + "{" + ",".join(f'{label}="%s"' for label in labels) + "} %s\n"
    else:
        template = name + " %s\n"
    quotes = 2 * len(labels)
    texts: list[str] = []
    for samples in groups:
        if not samples:
            texts.append("")
            continue
        if math.isfinite(sum(map(itemgetter(1), samples))):
            lines = "".join([template % (*lv, v) for lv, v in samples])
            if (
                lines.count('"') == quotes * len(samples)
                and lines.count("\\") == 0
                and lines.count("\n") == len(samples)
            ):
                texts.append(lines)
                continue
        texts.append(
            "".join(
                [
                    template % (*map(escape_label_value, map(str, lv)), _format_value(v))
                    for lv, v in samples
                ]
            )
        )
    return texts


def stateset_texts(
    name: str,
    label_names: tuple[str, ...],
    states: tuple[str, ...],
    groups: Iterable[Sequence[tuple[tuple[str, ...], str]]],
    fallback_state: str,
) -> list[tuple[str, int]]:
    """The sample lines of a stateset ``name`` (its state label is ``name``) and their count,
    for each group of ``(label values, current state)`` rows: each row gives one line per state,
    1 for the current one; a current state not in ``states`` counts as ``fallback_state`` (0
    everywhere if that is not a state either). The same bytes as ``sample_lines`` of the
    expanded family, with one ``%`` per row instead of one per line; escaping as there."""
    head = name + "{" + "".join(f'{label}="%s",' for label in label_names)
    one_hot = {
        current: "".join(f'{head}{name}="{state}"}} {int(state == current)}\n' for state in states)
        for current in states
    }
    fallback = one_hot.get(
        fallback_state, "".join(f'{head}{name}="{state}"}} 0\n' for state in states)
    )
    n = len(states)
    quotes = 2 * (len(label_names) + 1)
    texts: list[tuple[str, int]] = []
    for rows in groups:
        count = n * len(rows)
        lines = "".join([one_hot.get(current, fallback) % (values * n) for values, current in rows])
        if (
            lines.count('"') == quotes * count
            and lines.count("\\") == 0
            and lines.count("\n") == count
        ):
            texts.append((lines, count))
            continue
        family = Family(name, "stateset", "", (*label_names, name))
        for values, current in rows:
            hot = current if current in states else fallback_state
            family.samples += [((*values, state), int(state == hot)) for state in states]
        texts.append((sample_lines(family), count))
    return texts


def text_header(family: Family) -> str:
    suffix, text_type = _SUFFIX_AND_TEXT_TYPE[family.kind]
    name = family.name + suffix
    return f"# HELP {name} {_escape_help_text(family.help)}\n# TYPE {name} {text_type}\n"


def openmetrics_header(family: Family) -> str:
    name = family.name
    return f"# HELP {name} {_escape_help_openmetrics(family.help)}\n# TYPE {name} {family.kind}\n"


def render_text(families: Iterable[Family]) -> bytes:
    """Prometheus text 0.0.4: info -> gauge `<name>_info`, stateset -> gauge, counter `_total`."""
    return _render_one(families, text_header)


def render_openmetrics(families: Iterable[Family]) -> bytes:
    """OpenMetrics 1.0 without the final ``# EOF`` (the HTTP handler appends it once)."""
    return _render_one(families, openmetrics_header)


def _render_one(families: Iterable[Family], header: Callable[[Family], str]) -> bytes:
    out: list[str] = []
    for family in families:
        out += (header(family), sample_lines(family))
    return "".join(out).encode()


def choose_format(accept_header: str | None) -> Literal["text", "openmetrics"]:
    """``"openmetrics"`` if Accept lists application/openmetrics-text at version 1.0.0 or none."""
    for media_range in (accept_header or "").split(","):
        media_type, *params = (part.strip() for part in media_range.split(";"))
        if media_type.lower() != "application/openmetrics-text":
            continue
        options = {k.strip().lower(): v.strip() for k, _, v in (p.partition("=") for p in params)}
        if _quality(options.get("q", "1")) > 0 and options.get("version", "1.0.0") == "1.0.0":
            return "openmetrics"
    return "text"


def _quality(q: str) -> float:
    try:
        return float(q)
    except ValueError:
        return 1.0
