"""The exporter's own process metrics, under the names and HELP of prometheus-client's process,
platform and GC collectors (what a dashboard for any Python exporter reads).

Added to the tail of the exposition after the health block (``Store.tail``) and read at every
scrape, so the cost of the exporter itself (CPU, resident memory, open fds, start time, garbage
collection) can be graphed and alerted on like any other exporter's. They are read straight from
``/proc/self`` and ``gc`` and written with this package's text writer: prometheus-client's
collectors and ``generate_latest`` cost about 0.1 ms a scrape, several times as much. Without
``/proc`` (not Linux) the ``process_*`` families are left out, as prometheus-client does.
"""

from __future__ import annotations

import gc
import os
import platform
import resource
from collections.abc import Callable

from .text import Family, Sample, render_openmetrics, render_text

__all__ = ["process_exposition", "process_family_names"]

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")

#: kind, OpenMetrics name, HELP, label names: prometheus-client's, in its order.
_FAMILIES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("gauge", "process_virtual_memory_bytes", "Virtual memory size in bytes.", ()),
    ("gauge", "process_resident_memory_bytes", "Resident memory size in bytes.", ()),
    (
        "gauge",
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        (),
    ),
    ("counter", "process_cpu_seconds", "Total user and system CPU time spent in seconds.", ()),
    ("gauge", "process_open_fds", "Number of open file descriptors.", ()),
    ("gauge", "process_max_fds", "Maximum number of open file descriptors.", ()),
    (
        "gauge",
        "python_info",
        "Python platform information",
        ("implementation", "major", "minor", "patchlevel", "version"),
    ),
    ("counter", "python_gc_objects_collected", "Objects collected during gc", ("generation",)),
    (
        "counter",
        "python_gc_objects_uncollectable",
        "Uncollectable objects found during GC",
        ("generation",),
    ),
    (
        "counter",
        "python_gc_collections",
        "Number of times this generation was collected",
        ("generation",),
    ),
)
_SUFFIX = {"counter": "_total"}
_PYTHON_INFO: list[Sample] = [
    (
        (
            platform.python_implementation(),
            *platform.python_version_tuple(),
            platform.python_version(),
        ),
        1,
    )
]


def _boot_time() -> float | None:
    """Unix time the machine booted (``/proc/stat`` btime); None without ``/proc``."""
    try:
        with open("/proc/stat", "rb") as stat:
            for line in stat:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


_BOOT_TIME = _boot_time()


def _process_samples() -> dict[str, list[Sample]]:
    """The ``process_*`` families' samples now, by name; none without ``/proc``."""
    if _BOOT_TIME is None:
        return {}
    try:
        fd = os.open("/proc/self/stat", os.O_RDONLY)
        try:
            fields = os.read(fd, 4096).rsplit(b")", 1)[-1].split()
        finally:
            os.close(fd)
        open_fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        return {}
    max_fds = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return {
        "process_virtual_memory_bytes": [((), int(fields[20]))],
        "process_resident_memory_bytes": [((), int(fields[21]) * _PAGE_BYTES)],
        "process_start_time_seconds": [((), int(fields[19]) / _TICKS + _BOOT_TIME)],
        "process_cpu_seconds": [((), (int(fields[11]) + int(fields[12])) / _TICKS)],
        "process_open_fds": [((), open_fds)],
        "process_max_fds": [((), float("inf") if max_fds == resource.RLIM_INFINITY else max_fds)],
    }


def _python_samples() -> dict[str, list[Sample]]:
    """The ``python_*`` families' samples now, by name."""
    stats = list(enumerate(gc.get_stats()))
    return {
        "python_info": _PYTHON_INFO,
        "python_gc_objects_collected": [((str(g),), s["collected"]) for g, s in stats],
        "python_gc_objects_uncollectable": [((str(g),), s["uncollectable"]) for g, s in stats],
        "python_gc_collections": [((str(g),), s["collections"]) for g, s in stats],
    }


def process_exposition(*, openmetrics: bool, wanted: Callable[[str, str], bool]) -> bytes:
    """The process families ``wanted(OpenMetrics name, text name)`` accepts, in the format
    asked for (OpenMetrics without ``# EOF``: the caller ends the exposition)."""
    values = _process_samples() | _python_samples()
    families = [
        Family(name, kind, help_, labels, values[name])
        for kind, name, help_, labels in _FAMILIES
        if name in values and wanted(name, name + _SUFFIX.get(kind, ""))
    ]
    return render_openmetrics(families) if openmetrics else render_text(families)


def process_family_names() -> list[tuple[str, str]]:
    """(OpenMetrics name, text name) of each process family."""
    return [(name, name + _SUFFIX.get(kind, "")) for kind, name, _, _ in _FAMILIES]
