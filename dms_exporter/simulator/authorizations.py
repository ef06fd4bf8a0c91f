"""Effective authorizations, one row per device and service, derived on demand, never stored.

A row is ``{"deviceId": ...`` plus two pre-serialized parts around its ``authorized`` flag. The
parts are shared by every device with the same authorization sets, so 100,000 devices with four
services each cost a few kilobytes, and a page of 1,000 rows is a few hundred byte joins.
"""

from __future__ import annotations

import bisect
import itertools
import json
from array import array
from collections.abc import Sequence
from typing import Any, NamedTuple, overload

from .collection import dumps

LIVE_SCHEDULE_STATES = ("PENDING", "ACTIVE")
DEAUTHORIZED, PARTIALLY_AUTHORIZED = 2, 1  # codes in the device authorization-state bytearray


class _Part(NamedTuple):
    head: bytes  # from ',"serviceId"' up to '"authorized":'
    tail: bytes  # from ',"validFrom"' to the closing brace
    service_id: str
    owner: int  # authorization set (permanent) or schedule index


def _part(service_id: str, set_id: str, schedule: dict[str, Any] | None, owner: int) -> _Part:
    head = (
        b',"serviceId":'
        + dumps(service_id)
        + b',"authorizationSetId":'
        + dumps(set_id)
        + b',"scheduleAuthorizationId":'
        + dumps(schedule["id"] if schedule else None)
        + b',"source":'
        + (b'"SCHEDULE"' if schedule else b'"PERMANENT"')
        + b',"authorized":'
    )
    valid_from = schedule["startTime"] if schedule else None
    valid_to = schedule["endTime"] if schedule else None
    tail = b',"validFrom":' + dumps(valid_from) + b',"validTo":' + dumps(valid_to) + b"}"
    return _Part(head, tail, service_id, owner)


class AuthorizationIndex(Sequence[bytes]):
    """The ``/authorizations`` collection: ordered by device, then permanent rows (in set
    order), then rows of live (PENDING or ACTIVE) schedules. Supports ``len`` and slicing."""

    def __init__(
        self,
        device_ids: list[str],
        authorization_sets: list[dict[str, Any]],
        schedules: list[dict[str, Any]],
        device_sets: list[tuple[int, ...]],
        device_schedules: dict[int, tuple[int, ...]],
        authorization_states: bytearray,
    ) -> None:
        self._device_ids = device_ids
        self._auth_states = authorization_states
        self._enabled = [bool(s.get("enabled", True)) for s in authorization_sets]
        signatures: dict[tuple[int, ...], int] = {}
        self._sig_parts: list[list[_Part]] = []
        sig_of = array("H")
        for sig in device_sets:
            number = signatures.get(sig)
            if number is None:
                number = signatures[sig] = len(self._sig_parts)
                self._sig_parts.append(self._permanent_parts(authorization_sets, sig))
            sig_of.append(number)
        self._sig_of = sig_of
        self._device_schedules = device_schedules
        self._schedule_parts = [
            [_part(sid, s["authorizationSetId"], s, k) for sid in s["serviceIds"]]
            for k, s in enumerate(schedules)
        ]
        self._active = [False] * len(schedules)
        self._live = [False] * len(schedules)
        self._schedule_cache: dict[tuple[int, ...], list[_Part]] = {}
        self._starts: array[int] | None = None
        self.set_schedule_states([s["state"] for s in schedules])

    @staticmethod
    def _permanent_parts(sets: list[dict[str, Any]], sig: tuple[int, ...]) -> list[_Part]:
        parts: dict[str, _Part] = {}
        for k in sig:
            for service_id in sets[k]["serviceIds"]:
                parts.setdefault(service_id, _part(service_id, sets[k]["id"], None, k))
        return list(parts.values())

    def set_schedule(self, index: int, schedule: dict[str, Any]) -> None:
        """Follow a schedule whose window, services or set changed."""
        self._schedule_parts[index] = [
            _part(sid, schedule["authorizationSetId"], schedule, index)
            for sid in schedule["serviceIds"]
        ]
        self._schedule_cache.clear()
        self._starts = None

    def set_schedule_states(self, states: list[str]) -> None:
        """Follow the schedules' current states (rows appear, flip or go away)."""
        active = [s == "ACTIVE" for s in states]
        live = [s in LIVE_SCHEDULE_STATES for s in states]
        if live != self._live:
            self._schedule_cache.clear()
            self._starts = None
        self._active, self._live = active, live

    def _scheduled(self, schedules: tuple[int, ...]) -> list[_Part]:
        parts = self._schedule_cache.get(schedules)
        if parts is None:
            seen: dict[str, _Part] = {}
            for k in schedules:
                if self._live[k]:
                    for part in self._schedule_parts[k]:
                        seen.setdefault(part.service_id, part)
            parts = self._schedule_cache[schedules] = list(seen.values())
        return parts

    def rows_of(self, index: int) -> list[bytes]:
        """The rows of the device at position ``index``, serialized."""
        prefix = b'{"deviceId":' + dumps(self._device_ids[index])
        state = self._auth_states[index]
        granted = state != DEAUTHORIZED
        permanent = self._sig_parts[self._sig_of[index]]
        last = len(permanent) - 1 if state == PARTIALLY_AUTHORIZED else -1
        rows = [
            b"".join(
                (
                    prefix,
                    p.head,
                    b"true" if granted and self._enabled[p.owner] and j != last else b"false",
                    p.tail,
                )
            )
            for j, p in enumerate(permanent)
        ]
        schedules = self._device_schedules.get(index)
        if schedules:
            for p in self._scheduled(schedules):
                flag = b"true" if granted and self._active[p.owner] else b"false"
                rows.append(b"".join((prefix, p.head, flag, p.tail)))
        return rows

    def _row_starts(self) -> array[int]:
        if self._starts is None:
            sizes = [len(parts) for parts in self._sig_parts]
            counts = [sizes[s] for s in self._sig_of]
            for index, schedules in self._device_schedules.items():
                counts[index] += len(self._scheduled(schedules))
            self._starts = array("q", itertools.accumulate(counts, initial=0))
        return self._starts

    def __len__(self) -> int:
        return self._row_starts()[-1]

    @overload
    def __getitem__(self, item: int) -> bytes: ...
    @overload
    def __getitem__(self, item: slice) -> list[bytes]: ...
    def __getitem__(self, item: int | slice) -> bytes | list[bytes]:
        if isinstance(item, int):
            rows = self[item : item + 1] if item >= 0 else self[len(self) + item :][:1]
            if not rows:
                raise IndexError(item)
            return rows[0]
        start, stop, step = item.indices(len(self))
        if step != 1:
            raise ValueError("only contiguous slices")
        starts = self._row_starts()
        index = bisect.bisect_right(starts, start) - 1
        skip, need, out = start - starts[index] if stop > start else 0, stop - start, []
        while need > 0 and index < len(self._sig_of):
            rows = self.rows_of(index)[skip : skip + need]
            out.extend(rows)
            need -= len(rows)
            skip = 0
            index += 1
        return out

    def decoded(self) -> list[dict[str, Any]]:
        """Every row as a dict (for tests and assertions; slow at scale)."""
        return [json.loads(row) for row in self[:]]
