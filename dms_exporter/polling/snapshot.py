"""The last good tables on disk, so that a restarted exporter shows them at once.

One file per endpoint in a directory (``--snapshot.directory``), ``<endpoint>.json.gz``: one
gzipped JSON document naming its format, version, DMS and endpoint, the time the table was read
from the DMS, the row fields and the rows as lists of values. A file is written whole to a
temporary name, synced and renamed over the old one, so a reader (or a ``kill -9`` in the
middle) never sees half a file. It is written only when a poll changed the table; a poll that
found the same rows only sets the file's modification time, which then says when the table was
last read. At start each file is read once; one that is missing, too big, corrupt, of another
format or version, of another DMS or with other fields is ignored with one log line, and the
endpoint starts empty as it would without a snapshot.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import operator
import os
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from zlib_ng import gzip_ng

from ..model import Table
from ..vocabulary import ROW_TYPES

__all__ = ["FORMAT", "MAX_BYTES", "VERSION", "Restored", "SnapshotError", "read", "save"]

log = logging.getLogger(__name__)

FORMAT = "dms-exporter-snapshot"
#: Raised whenever the document's layout or the meaning of a field changes: an older file is
#: then ignored instead of misread.
VERSION = 1
#: Most bytes of one file, compressed or not, written or read (a table beyond it is not kept).
MAX_BYTES = 512 * 1024 * 1024
#: zlib-ng's level 2: the file is rewritten whenever the table changes, so it must be cheap
#: (with orjson, about a third of the CPU of ``json`` and zlib's level 1, for a smaller file;
#: docs/performance.md).
_GZIP_LEVEL = 2


class SnapshotError(Exception):
    """A snapshot file that cannot be used; the message says why in a few words."""


@dataclass(frozen=True, slots=True)
class Restored:
    """A table read back from disk, and the alarms' first-seen times kept with it."""

    table: Table
    first_seen: Mapping[str, float]


def path_of(directory: Path, endpoint: str) -> Path:
    return directory / f"{endpoint}.json.gz"


def encode(table: Table, dms: str, first_seen: Mapping[str, float] | None = None) -> bytes:
    """The gzipped document of ``table`` read from the DMS at ``dms``."""
    fields = _fields(table.endpoint)
    values = operator.attrgetter(*fields)
    document = {
        "format": FORMAT,
        "version": VERSION,
        "dms": dms,
        "endpoint": table.endpoint,
        "fetched_at": table.fetched_at,
        "fields": fields,
        "rows": [values(row) for row in table.rows],
        "first_seen": dict(first_seen or {}),
    }
    # orjson writes what json.dumps(separators=(",", ":")) would; no value is NaN or infinite
    # (the vocabulary refuses them, and the times are the clock's)
    try:
        text = orjson.dumps(document)
    except orjson.JSONEncodeError as exc:
        raise SnapshotError(f"not encodable ({exc})") from None
    if len(text) > MAX_BYTES:
        raise SnapshotError(f"{len(text)} bytes, more than {MAX_BYTES}")
    return gzip_ng.compress(text, _GZIP_LEVEL, mtime=0)


def decode(data: bytes, endpoint: str, dms: str) -> Restored:
    """The table of a document ``encode`` made for ``endpoint`` of ``dms``; ``SnapshotError``
    for anything else."""
    try:
        inflater = zlib.decompressobj(wbits=31)
        text = inflater.decompress(data, MAX_BYTES)
        if inflater.unconsumed_tail or not inflater.eof:
            raise SnapshotError("truncated, or more than the size limit")
        document = orjson.loads(text)
    except (zlib.error, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
        raise SnapshotError(f"not a gzipped JSON document ({type(exc).__name__})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SnapshotError("not a dms-exporter snapshot")
    if document.get("version") != VERSION:
        raise SnapshotError(f"version {document.get('version')!r}, this exporter reads {VERSION}")
    if document.get("endpoint") != endpoint:
        raise SnapshotError(f"of endpoint {document.get('endpoint')!r}")
    if document.get("dms") != dms:
        raise SnapshotError("of another DMS URL")
    kind = ROW_TYPES[endpoint]
    if document.get("fields") != _fields(endpoint):
        raise SnapshotError("rows of other fields")
    checks = [_CHECKS[str(f.type)] for f in dataclasses.fields(kind)]
    try:
        rows = tuple(kind(*_values(values, checks)) for values in document["rows"])
        fetched_at = float(document["fetched_at"])
        if not math.isfinite(fetched_at):
            raise ValueError("fetched_at is not a time")
        first_seen = {str(k): float(v) for k, v in document.get("first_seen", {}).items()}
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise SnapshotError(f"rows of the wrong shape ({type(exc).__name__})") from None
    return Restored(Table(endpoint, rows, fetched_at), first_seen)


def _fields(endpoint: str) -> list[str]:
    return [f.name for f in dataclasses.fields(ROW_TYPES[endpoint])]


def _is_ids(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


#: Per field type of the row classes, whether a JSON value is one (a file must not put a text
#: where the renderer expects a number).
_CHECKS: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "int | None": lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)),
    "float | None": lambda v: v is None or (isinstance(v, int | float) and not isinstance(v, bool)),
    "tuple[str, ...]": _is_ids,
}


def _values(values: Any, checks: list[Callable[[Any], bool]]) -> list[Any]:
    """One row's values as the row holds them (lists of ids as tuples); ``ValueError`` if
    they do not fit its fields."""
    if not isinstance(values, list) or len(values) != len(checks):
        raise ValueError("a row of the wrong length")
    if not all(check(v) for check, v in zip(checks, values, strict=True)):
        raise ValueError("a value of the wrong type")
    return [tuple(v) if isinstance(v, list) else v for v in values]


def save(
    directory: Path,
    table: Table,
    changed: bool,
    dms: str,
    first_seen: Mapping[str, float] | None = None,
) -> None:
    """Keep ``table`` in ``directory``: the whole file if it ``changed`` (or has none yet),
    else only its modification time set to when the table was read. Blocking: call it in a
    worker thread. ``OSError`` or ``SnapshotError`` if it cannot."""
    path = path_of(directory, table.endpoint)
    if not changed:
        with contextlib.suppress(FileNotFoundError):
            os.utime(path, (table.fetched_at, table.fetched_at))
            return
    _write(directory, encode(table, dms, first_seen), table.endpoint, table.fetched_at)


def _write(directory: Path, data: bytes, endpoint: str, read_at: float) -> None:
    """Replace the endpoint's file with ``data`` atomically (temporary file, fsync, rename),
    its modification time set to ``read_at``."""
    directory.mkdir(parents=True, exist_ok=True)
    target = path_of(directory, endpoint)
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        # owner-only: the tables hold device names and addresses
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.utime(temporary, (read_at, read_at))
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a power cut
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read(directory: Path, endpoint: str, dms: str) -> Restored | None:
    """The endpoint's table kept in ``directory``, or None (missing, or unusable: logged)."""
    path = path_of(directory, endpoint)
    try:
        stat = path.stat()
        if stat.st_size > MAX_BYTES:
            raise SnapshotError(f"more than {MAX_BYTES} bytes")
        restored = decode(path.read_bytes(), endpoint, dms)
    except FileNotFoundError:
        return None
    except (OSError, SnapshotError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) else str(exc)
        log.warning(
            "snapshot file ignored",
            extra={"endpoint": endpoint, "path": str(path), "problem": problem},
        )
        return None
    # a poll that found the same rows set the modification time: the table was read then
    read_at = max(restored.table.fetched_at, min(stat.st_mtime, time.time()))
    return dataclasses.replace(
        restored, table=dataclasses.replace(restored.table, fetched_at=read_at)
    )
