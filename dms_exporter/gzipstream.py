"""One gzip member built from independently compressed pieces (the way pigz joins its blocks).

Each ``Segment`` is raw deflate data from a fresh compressor ended with ``Z_SYNC_FLUSH``: it
starts and ends on a byte boundary and refers to nothing before it, so segments concatenate into
one deflate stream, and any run of them inflates on its own. A body is ``GZIP_HEADER``, the
segments, then ``trailer(crc, size)``: a final empty block and the CRC-32 and length of the
whole, combined from the segments' own (``crc32_combine``, zlib's algorithm; Python's ``zlib``
does not expose it). Every gzip reader reads such a body to the end, ``curl --compressed`` and
single-member decoders included.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "EMPTY",
    "GZIP_HEADER",
    "CrcTree",
    "Segment",
    "combine",
    "compress",
    "crc32_combine",
    "inflate",
    "trailer",
]

#: gzip header: deflate, no flags, mtime 0 (the bytes do not depend on the clock), OS unknown.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_FINAL_EMPTY_BLOCK = b"\x03\x00"  # what zlib's Z_FINISH writes after a sync flush
_POLY = 0xEDB88320  # CRC-32, reflected


@dataclass(frozen=True, slots=True)
class Segment:
    """Raw deflate bytes ending on a sync flush, with the CRC-32 and length of what they hold."""

    data: bytes
    crc: int
    size: int


EMPTY = Segment(b"", 0, 0)


def compress(plain: bytes, level: int = 1) -> Segment:
    """``plain`` as a segment (a fresh compressor, so it depends on nothing before it)."""
    if not plain:
        return EMPTY
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    data = compressor.compress(plain) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return Segment(data, zlib.crc32(plain), len(plain))


def inflate(data: bytes) -> bytes:
    """The plain bytes of one or more concatenated segments."""
    return zlib.decompressobj(-15).decompress(data)


def trailer(crc: int, size: int) -> bytes:
    """The end of a gzip body whose contents have CRC-32 ``crc`` and length ``size``."""
    return _FINAL_EMPTY_BLOCK + struct.pack("<II", crc, size & 0xFFFFFFFF)


def _multmodp(a: int, b: int) -> int:
    """a * b modulo the CRC-32 polynomial (reflected bit order)."""
    m = 1 << 31
    p = 0
    while True:
        if a & m:
            p ^= b
            if not a & (m - 1):
                return p
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1


def _x2n_table() -> tuple[int, ...]:
    p = 1 << 30  # x^1
    table = [p]
    for _ in range(31):
        p = _multmodp(p, p)
        table.append(p)
    return tuple(table)


_X2N = _x2n_table()  # x^(2^n) modulo the polynomial


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A + B from crc(A), crc(B) and len(B) (zlib's ``crc32_combine``)."""
    p = 1 << 31  # x^0
    n, k = len2, 3  # x^(8 * len2)
    while n:
        if n & 1:
            p = _multmodp(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return _multmodp(p, crc1) ^ crc2


def combine(parts: Iterable[tuple[int, int]], start: tuple[int, int] = (0, 0)) -> tuple[int, int]:
    """(CRC-32, length) of consecutive pieces given as (CRC-32, length) each."""
    crc, size = start
    for part_crc, part_size in parts:
        if part_size:
            crc = crc32_combine(crc, part_crc, part_size) if size else part_crc
            size += part_size
    return crc, size


class CrcTree:
    """(CRC-32, length) of a sequence of pieces, kept so that replacing a few pieces costs a
    few combines each (log of the count), not one per piece."""

    __slots__ = ("_levels",)

    def __init__(self, leaves: Sequence[tuple[int, int]]) -> None:
        levels = [list(leaves)]
        while len(levels[-1]) > 1:
            below = levels[-1]
            levels.append([combine(below[i : i + 2]) for i in range(0, len(below), 2)])
        self._levels = levels

    @property
    def leaves(self) -> list[tuple[int, int]]:
        """(CRC-32, length) of each piece."""
        return self._levels[0]

    @property
    def total(self) -> tuple[int, int]:
        """(CRC-32, length) of all the pieces."""
        top = self._levels[-1]
        return top[0] if top else (0, 0)

    def replaced(self, changes: dict[int, tuple[int, int]]) -> CrcTree:
        """A new tree with the pieces at the given indexes replaced (same count of pieces)."""
        tree = CrcTree.__new__(CrcTree)
        levels = [list(level) for level in self._levels]
        dirty = set(changes)
        for index, leaf in changes.items():
            levels[0][index] = leaf
        for depth in range(1, len(levels)):
            below, level = levels[depth - 1], levels[depth]
            dirty = {i // 2 for i in dirty}
            for i in dirty:
                level[i] = combine(below[2 * i : 2 * i + 2])
        tree._levels = levels
        return tree
