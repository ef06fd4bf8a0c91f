"""One gzip member built from independently compressed pieces (the way pigz joins its blocks).

Each ``Segment`` is raw deflate data from a fresh compressor ended with ``Z_SYNC_FLUSH``: it
starts and ends on a byte boundary and refers to nothing before it, so segments concatenate into
one deflate stream, and any run of them inflates on its own. A body is ``GZIP_HEADER``, the
segments, then ``trailer(crc, size)``: a final empty block and the CRC-32 and length of the
whole, combined from the segments' own (``crc32_combine``, zlib's algorithm; Python's ``zlib``
does not expose it: the C function is called from the system's libz when it loads, else the same
algorithm in Python). Every gzip reader reads such a body to the end, ``curl --compressed`` and
single-member decoders included.

``Compressor`` makes many segments with one zlib compressor, resetting it with ``Z_FULL_FLUSH``
between them: the same independence, without the cost of a new compressor per segment.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import struct
import zlib
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "EMPTY",
    "GZIP_HEADER",
    "Compressor",
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


class Compressor:
    """Segments from one compressor: each ends with ``Z_FULL_FLUSH``, which empties the
    compressor's history, so no segment refers to another and each can be replaced alone."""

    __slots__ = ("_zlib",)

    def __init__(self, level: int = 1) -> None:
        self._zlib = zlib.compressobj(level, zlib.DEFLATED, -15)

    def segment(self, plain: bytes) -> Segment:
        if not plain:
            return EMPTY
        data = self._zlib.compress(plain) + self._zlib.flush(zlib.Z_FULL_FLUSH)
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


def _crc32_combine_python(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A + B from crc(A), crc(B) and len(B) (zlib's ``crc32_combine``)."""
    p = 1 << 31  # x^0
    n, k = len2, 3  # x^(8 * len2)
    while n:
        if n & 1:
            p = _multmodp(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return _multmodp(p, crc1) ^ crc2


def _libz_crc32_combine() -> Callable[[int, int, int], int] | None:
    """zlib's own ``crc32_combine64`` (40 times faster than the Python one), if libz loads and
    agrees with the Python one on a known case."""
    try:
        function = ctypes.CDLL(ctypes.util.find_library("z") or "libz.so.1").crc32_combine64
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_ulong
    function.argtypes = (ctypes.c_ulong, ctypes.c_ulong, ctypes.c_int64)
    a, b = b"dms-exporter", b"\x00\xff" * 1000
    if function(zlib.crc32(a), zlib.crc32(b), len(b)) != zlib.crc32(a + b):
        return None
    return function  # type: ignore[no-any-return]


crc32_combine: Callable[[int, int, int], int] = _libz_crc32_combine() or _crc32_combine_python


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
    few combines each (log of the count), not one per piece. Each level is two arrays."""

    __slots__ = ("_levels",)

    def __init__(self, leaves: Sequence[tuple[int, int]]) -> None:
        level = (array("L", [crc for crc, _ in leaves]), array("Q", [size for _, size in leaves]))
        levels = [level]
        while len(level[0]) > 1:
            crcs, sizes = level
            up = [_pair(crcs, sizes, i) for i in range(0, len(crcs), 2)]
            level = (array("L", [crc for crc, _ in up]), array("Q", [size for _, size in up]))
            levels.append(level)
        self._levels = levels

    @property
    def leaves(self) -> list[tuple[int, int]]:
        """(CRC-32, length) of each piece."""
        crcs, sizes = self._levels[0]
        return list(zip(crcs, sizes, strict=True))

    @property
    def total(self) -> tuple[int, int]:
        """(CRC-32, length) of all the pieces."""
        crcs, sizes = self._levels[-1]
        return (crcs[0], sizes[0]) if crcs else (0, 0)

    def replaced(self, changes: dict[int, tuple[int, int]]) -> CrcTree:
        """A new tree with the pieces at the given indexes replaced (same count of pieces)."""
        tree = CrcTree.__new__(CrcTree)
        levels = [(array("L", crcs), array("Q", sizes)) for crcs, sizes in self._levels]
        crcs, sizes = levels[0]
        for index, (crc, size) in changes.items():
            crcs[index], sizes[index] = crc, size
        dirty = sorted(changes)
        combine = crc32_combine
        for depth in range(1, len(levels)):
            (below_crcs, below_sizes), (crcs, sizes) = levels[depth - 1], levels[depth]
            last = len(below_crcs) - 1
            dirty = sorted(set(map((2).__rfloordiv__, dirty)))
            for i in dirty:  # inlined _pair: this loop is most of a small render's CRC work
                left = 2 * i
                crc, size = below_crcs[left], below_sizes[left]
                if left < last and (right_size := below_sizes[left + 1]):
                    right_crc = below_crcs[left + 1]
                    crc = combine(crc, right_crc, right_size) if size else right_crc
                    size += right_size
                crcs[i], sizes[i] = crc, size
        tree._levels = levels
        return tree


def _pair(crcs: array[int], sizes: array[int], i: int) -> tuple[int, int]:
    """(CRC-32, length) of pieces ``i`` and ``i + 1`` (``i`` alone if it is the last)."""
    if i + 1 == len(crcs) or not sizes[i + 1]:
        return crcs[i], sizes[i]
    if not sizes[i]:
        return crcs[i + 1], sizes[i + 1]
    return crc32_combine(crcs[i], crcs[i + 1], sizes[i + 1]), sizes[i] + sizes[i + 1]
