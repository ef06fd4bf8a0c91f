"""Pure functions from tables to ``Family`` lists, one module per domain, plus their helpers.

Every family of the README's metric reference is declared once, in the module of its group. A table
that is ``None`` (never polled, disabled or stale) gives the family's HELP/TYPE with no samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..config import ENDPOINT_DEFAULTS
from ..exposition import Family, Sample
from ..model import OTHER, Device, Table

__all__ = [
    "DisplayNames",
    "RenderContext",
    "counter",
    "gauge",
    "info",
    "known",
    "stateset",
]


@dataclass(frozen=True, slots=True)
class RenderContext:
    """The parts of the configuration that change rendered bytes (so a change re-renders all)."""

    display_names: Mapping[str, str] = field(default_factory=dict)  # device id -> description
    allow_schedule_authorization: bool = True
    alarm_retrieval: Literal["active", "all"] = "active"
    paths: Mapping[str, str] = field(
        default_factory=lambda: {name: path for name, (path, _) in ENDPOINT_DEFAULTS.items()}
    )
    intervals: Mapping[str, float] = field(
        default_factory=lambda: {name: every for name, (_, every) in ENDPOINT_DEFAULTS.items()}
    )

    def help(self, what: str, endpoint: str) -> str:
        """HELP text: ``what``, how often it is refreshed, then ``Polled from GET <path>.``"""
        interval = self.intervals.get(endpoint)
        every = f" Refreshed every {interval:g}s." if interval is not None else ""
        path = self.paths.get(endpoint, ENDPOINT_DEFAULTS[endpoint][0])
        return f"{what}{every} Polled from GET {path}."


class DisplayNames:
    """The one display-name rule: custom description if configured, else device name, else id.

    Works for any id: one the devices table does not know gets its custom description or its id,
    and the empty id (alarms raised by the DMS itself) gets ``""``.
    """

    __slots__ = ("_custom", "_names")

    def __init__(self, devices: Table[Device] | None, ctx: RenderContext) -> None:
        self._custom = ctx.display_names
        self._names = {d.id: d.name for d in devices.rows if d.name} if devices else {}

    def __call__(self, device_id: str) -> str:
        return self._custom.get(device_id) or self._names.get(device_id) or device_id


def known(value: str, values: tuple[str, ...]) -> str:
    """``value`` if it is one of ``values``, else ``other`` (vocabulary already maps most)."""
    return value if value in values else OTHER


def gauge(
    name: str,
    help: str,
    label_names: tuple[str, ...] = (),
    samples: Iterable[Sample] = (),
) -> Family:
    """A gauge family."""
    return Family(name, "gauge", help, label_names, list(samples))


def counter(
    name: str,
    help: str,
    label_names: tuple[str, ...] = (),
    samples: Iterable[Sample] = (),
) -> Family:
    """A counter family; ``name`` without ``_total``."""
    return Family(name, "counter", help, label_names, list(samples))


def info(
    name: str, help: str, label_names: tuple[str, ...], rows: Iterable[tuple[str, ...]] = ()
) -> Family:
    """An info family (``name`` without ``_info``): one sample valued 1 per label-value tuple."""
    return Family(name, "info", help, label_names, [(values, 1) for values in rows])


def stateset(
    name: str,
    help: str,
    label_names: tuple[str, ...],
    states: tuple[str, ...],
    rows: Iterable[tuple[tuple[str, ...], str]] = (),
) -> Family:
    """A stateset whose state label is ``name``: per (label values, state) one sample per state.

    The current state is 1, the others 0; a state not in ``states`` counts as ``other``
    (the rule of ``known``, here as a dict fallback since this runs per device).
    """
    one_hot = {current: [(state, int(state == current)) for state in states] for current in states}
    fallback = one_hot.get(OTHER, [(state, 0) for state in states])
    samples: list[Sample] = []
    extend = samples.extend
    for values, current in rows:
        extend([((*values, state), v) for state, v in one_hot.get(current, fallback)])
    return Family(name, "stateset", help, (*label_names, name), samples)
