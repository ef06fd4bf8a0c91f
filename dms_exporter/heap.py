"""Keeping the C heap from holding freed memory (glibc; a no-op with any other C library).

Polls decode megabytes of JSON and renders and plain scrapes build megabytes of bytes, all freed
soon after; glibc keeps freed memory mapped (per thread arena, and in the main heap once its
mmap threshold has grown), so without care the resident size follows the worst moment, not the
data held. ``trim``, called after each big poll and plain scrape, hands free pages back to the
OS. ``tune`` caps the arenas and fixes glibc's two thresholds so that memory is reused between
those trims instead of being handed back and faulted in again at every free: buffers up to
32 MiB (a page of JSON, a family's body) come from the heap, and the heap's top is not trimmed
at each ``free``. With glibc's defaults for a program that sets the mmap threshold (as this one
did, at 256 KiB), a devices poll at 100,000 devices took about 48,000 page faults; with these,
about 1,000 (docs/performance.md, third round).

``collector_paused`` keeps Python's cyclic garbage collector off while a big poll decodes and
converts: a page's JSON lives from its decoding until its rows are made, long enough for the
young collections to move it to the old generation, whose growth then sets off full collections
that walk every object the exporter holds (several per poll of 100,000 devices, about a third
of its CPU). Reference counting still frees all of it; nothing a poll builds is cyclic.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import threading
from collections.abc import Iterator

__all__ = ["collector_paused", "trim", "tune"]

_M_MMAP_THRESHOLD = -3  # glibc mallopt parameters
_M_ARENA_MAX = -8
_M_TRIM_THRESHOLD = -1
_MMAP_THRESHOLD = 32 << 20  # glibc's ceiling for its own adaptive threshold
_TRIM_THRESHOLD = 64 << 20
_ARENA_MAX = 2


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim, libc.mallopt  # noqa: B018 (glibc has both)
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()
_tuned = False


def tune() -> None:
    """Set glibc's mmap and trim thresholds and arena cap, once per process."""
    global _tuned
    if _LIBC is not None and not _tuned:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        _LIBC.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
        _LIBC.mallopt(_M_ARENA_MAX, _ARENA_MAX)
        _tuned = True


def trim() -> None:
    """Return the free memory of every arena to the OS (``malloc_trim``)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


_pause_lock = threading.Lock()
_pauses = 0  # collector_paused blocks entered and not left
_resume = False  # whether the collector was on when the first of them was entered


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Automatic garbage collection off within the block (and any overlapping one), restored
    when the last of them ends."""
    global _pauses, _resume
    with _pause_lock:
        if _pauses == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _resume:
                gc.enable()
