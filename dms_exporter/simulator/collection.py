"""An ordered store of JSON items kept pre-serialized, so a page is a join of bytes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, the one serialization the simulator uses everywhere."""
    return _ENCODER.encode(obj).encode()


class Collection(Mapping[str, dict[str, Any]]):
    """Items by id in a stable order; each item held only as its JSON bytes.

    Reading an item (``coll[id]``) decodes a fresh dict: changing that dict changes nothing, use
    ``put`` or ``update``. ``blobs()`` is the ordered list of bytes that pages are cut from.
    """

    def __init__(self, items: Iterable[tuple[str, bytes]] = ()) -> None:
        self._items: dict[str, bytes] = dict(items)
        self._blobs: list[bytes] | None = None
        self._pos: dict[str, int] | None = None

    def __getitem__(self, item_id: str) -> dict[str, Any]:
        return json.loads(self._items[item_id])

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def blob(self, item_id: str) -> bytes:
        """The JSON bytes of one item (``KeyError`` if unknown)."""
        return self._items[item_id]

    def blobs(self) -> list[bytes]:
        """Every item's JSON bytes in order (a cached list: do not modify it)."""
        if self._blobs is None:
            self._blobs = list(self._items.values())
            self._pos = None
        return self._blobs

    def put(self, item_id: str, obj: dict[str, Any]) -> None:
        """Insert (at the end) or replace an item, re-serializing only this one."""
        self.put_blob(item_id, dumps(obj))

    def put_blob(self, item_id: str, blob: bytes) -> None:
        """Insert (at the end) or replace an item given as JSON bytes."""
        known = item_id in self._items
        self._items[item_id] = blob
        if not known:
            self._blobs = None
            self._pos = None
        elif self._blobs is not None:
            if self._pos is None:
                self._pos = {key: i for i, key in enumerate(self._items)}
            self._blobs[self._pos[item_id]] = blob

    def update(self, item_id: str, **fields: Any) -> dict[str, Any]:
        """Set top-level fields of an item; returns the new item."""
        obj = self[item_id]
        obj.update(fields)
        self.put(item_id, obj)
        return obj

    def remove(self, item_ids: Iterable[str]) -> None:
        """Drop items (unknown ids are ignored)."""
        for item_id in item_ids:
            self._items.pop(item_id, None)
        self._blobs = None
        self._pos = None
