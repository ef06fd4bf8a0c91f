"""The exporter's own process metrics: prometheus-client's process, platform and GC collectors.

They live in a registry of their own (never the global one), are collected at scrape time and
added to the tail of the exposition after the health block (``Store.tail``), so the cost of the
exporter itself (CPU, resident memory, open fds, start time, garbage collection) can be graphed
and alerted on like any other exporter's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client import generate_latest as generate_text
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

__all__ = ["process_exposition", "process_family_names"]

_REGISTRY = CollectorRegistry(auto_describe=False)
ProcessCollector(registry=_REGISTRY)
PlatformCollector(registry=_REGISTRY)
GCCollector(registry=_REGISTRY)

_SUFFIX = {"counter": "_total", "info": "_info"}


class _Collected:
    """Already collected metrics, in the shape ``generate_latest`` reads."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics = list(metrics)

    def collect(self) -> list[Metric]:
        return self._metrics


def process_exposition(*, openmetrics: bool, wanted: Callable[[str, str], bool]) -> bytes:
    """The process families ``wanted(OpenMetrics name, text name)`` accepts, in the format
    asked for (OpenMetrics without ``# EOF``: the caller ends the exposition)."""
    metrics = [m for m in _REGISTRY.collect() if wanted(m.name, m.name + _SUFFIX.get(m.type, ""))]
    if not metrics:
        return b""
    if openmetrics:
        return generate_openmetrics(_Collected(metrics)).removesuffix(b"# EOF\n")
    return generate_text(_Collected(metrics))


def process_family_names() -> list[tuple[str, str]]:
    """(OpenMetrics name, text name) of each process family."""
    return [(m.name, m.name + _SUFFIX.get(m.type, "")) for m in _REGISTRY.collect()]
