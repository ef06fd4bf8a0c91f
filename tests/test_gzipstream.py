"""The gzip body's parts: segments that stand alone, and CRC-32s combined without the text."""

from __future__ import annotations

import gzip
import random
import zlib

import pytest

from dms_exporter.exposition.gzipstream import (
    GZIP_HEADER,
    Compressor,
    CrcTree,
    combine,
    compress,
    crc32_combine,
    inflate,
    stored,
    trailer,
)


def test_segments_of_one_compressor_stand_alone_in_any_order() -> None:
    compressor = Compressor()
    texts = [f'dms_device_online{{device_id="dev-{i}"}} 1\n'.encode() * 3 for i in range(5)]
    segments = [compressor.segment(text) for text in texts]
    order = [4, 0, 3, 3, 1]  # a segment repeated, others dropped: each refers to nothing else
    data = b"".join(segments[i].data for i in order)
    assert inflate(data) == b"".join(texts[i] for i in order)
    crc, size = zlib.crc32(b""), 0
    for i in order:
        crc, size = zlib.crc32(texts[i], crc), size + len(texts[i])
    body = GZIP_HEADER + data + trailer(crc, size)
    assert gzip.decompress(body) == b"".join(texts[i] for i in order)  # checks the CRC too


@pytest.mark.parametrize("pieces", [1, 2, 3, 8, 1000])
def test_a_crc_tree_follows_replaced_pieces(pieces: int) -> None:
    rng = random.Random(pieces)
    texts = [rng.randbytes(rng.choice([0, 1, 7, 300])) for _ in range(pieces)]
    tree = CrcTree([(zlib.crc32(t), len(t)) for t in texts])
    for _ in range(30):
        changed = {rng.randrange(pieces): rng.randbytes(rng.choice([0, 2, 50])) for _ in range(3)}
        for i, text in changed.items():
            texts[i] = text
        tree = tree.replaced({i: (zlib.crc32(t), len(t)) for i, t in changed.items()})
        whole = b"".join(texts)
        assert tree.total == (zlib.crc32(whole), len(whole))


def test_combined_crcs_equal_the_crc_of_the_joined_bytes() -> None:
    rng = random.Random(7)
    for _ in range(50):
        a, b = rng.randbytes(rng.randrange(100)), rng.randbytes(rng.randrange(1, 5000))
        assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def test_stored_segments_join_compressed_ones_in_one_member() -> None:
    """Text written as stored blocks (more than one block's 65,535 bytes, a few bytes,
    nothing) reads back between compressed segments, by gzip and by the plain scrape's
    inflater."""
    rng = random.Random(7)
    big = bytes(rng.randrange(256) for _ in range(150_000))
    texts = [b"dms_up 1\n" * 50, big, b"# EOF\n", b"", b"process_open_fds 12\n"]
    segments = [compress(texts[0], 2), stored(texts[1]), stored(texts[2]), stored(texts[3])]
    segments.append(Compressor(2).segment(texts[4]))
    data = b"".join(s.data for s in segments)
    assert inflate(data) == b"".join(texts)
    assert len(stored(big).data) < len(big) + 20  # stored: 5 bytes a block, not compressed
    crc, size = combine((s.crc, s.size) for s in segments)
    assert gzip.decompress(GZIP_HEADER + data + trailer(crc, size)) == b"".join(texts)
