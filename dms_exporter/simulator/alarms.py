"""Alarms: building one, and the book that holds active and cleared alarms in id order."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from .catalog import ALARM_CODES
from .clock import iso
from .collection import Collection, dumps


def make_alarm(
    number: int,
    *,
    code: str,
    severity: str,
    device_id: str | None,
    fault_object: str,
    asserted: float,
    cleared: float | None = None,
    acknowledged: bool = False,
    source: str | None = None,
    description: str | None = None,
    recovery_tip: str | None = None,
) -> dict[str, Any]:
    """An alarm object as the API serves it. Text defaults come from the code's catalogue
    entry; ``source`` defaults to DEVICE when there is a device, else DMS."""
    known = ALARM_CODES.get(code)
    return {
        "id": f"al-{number}",
        "deviceId": device_id,
        "source": source or ("DEVICE" if device_id else "DMS"),
        "faultObject": fault_object,
        "code": code,
        "description": description or (known.description if known else code.replace("_", " ")),
        "severity": severity,
        "state": "ACTIVE" if cleared is None else "CLEARED",
        "assertedTime": iso(asserted),
        "clearedTime": iso(cleared),
        "acknowledged": acknowledged,
        "recoveryTip": recovery_tip or (known.recovery_tip if known else ""),
    }


def fault_object_for(code: str, rng: random.Random, device_id: str | None) -> str:
    """A plausible ``faultObject`` for an alarm code."""
    if code == "SIGNAL_LOSS":
        return f"DVB-S2 Input {rng.randint(1, 4)}"
    if code == "TS_SYNC_LOSS":
        return f"Transport Stream {rng.randint(1, 2)}"
    if code in ("CC_ERRORS", "PID_MISSING"):
        return f"PID 0x{rng.randrange(0x20, 0x1FFF):04X}"
    if code == "GBE_LINK_DOWN":
        return f"GbE Port {rng.randint(1, 2)}"
    if code == "DEVICE_NOT_RESPONDING":
        return f"Device {device_id or 'unknown'}"
    if code == "OTA_COMMAND_FAILED":
        return f"OTA Carrier {rng.randint(1, 3)}"
    return f"Authorization Set as-{rng.randint(1, 99):02d}"


class AlarmBook(Collection):
    """Every alarm (active and cleared) in id order, with the active ones tracked apart."""

    def __init__(self, alarms: Iterable[dict[str, Any]] = ()) -> None:
        super().__init__()
        self._active: dict[str, None] = {}
        self._views: dict[str, list[bytes]] = {}
        self.next_number = 10001
        for alarm in alarms:
            self.add(alarm)

    def add(self, alarm: dict[str, Any]) -> None:
        """Store a new alarm (its id must be new); numbering continues after the highest."""
        alarm_id = alarm["id"]
        if alarm.get("state") == "ACTIVE":
            self._active[alarm_id] = None
        self.put(alarm_id, alarm)
        number = alarm_id.rpartition("-")[2]
        if number.isdigit():
            self.next_number = max(self.next_number, int(number) + 1)

    def take_number(self) -> int:
        """Reserve the next alarm number."""
        self.next_number += 1
        return self.next_number - 1

    def clear(self, alarm_id: str, when: float) -> dict[str, Any]:
        """Mark an alarm CLEARED at ``when`` (no change if it already is); returns it."""
        alarm = self[alarm_id]
        if alarm_id in self._active:
            del self._active[alarm_id]
            alarm["state"] = "CLEARED"
            alarm["clearedTime"] = iso(when)
            self.put(alarm_id, alarm)
        return alarm

    @property
    def active_ids(self) -> list[str]:
        """Ids of the active alarms, oldest first."""
        return list(self._active)

    def is_active(self, alarm_id: str) -> bool:
        return alarm_id in self._active

    def put_blob(self, item_id: str, blob: bytes) -> None:
        self._views.clear()
        super().put_blob(item_id, blob)

    def remove(self, item_ids: Iterable[str]) -> None:
        self._views.clear()
        ids = list(item_ids)
        for item_id in ids:
            self._active.pop(item_id, None)
        super().remove(ids)

    def view(self, state: str | None, device_id: str | None = None) -> list[bytes]:
        """Alarms as JSON bytes: ``state`` None (all), ``active`` or ``cleared``; optionally
        only those of one device."""
        key = state or "all"
        blobs = self._views.get(key)
        if blobs is None:
            if state == "active":
                blobs = [self.blob(alarm_id) for alarm_id in self._active]
            elif state == "cleared":
                blobs = [
                    b for i, b in zip(self, self.blobs(), strict=True) if i not in self._active
                ]
            else:
                blobs = self.blobs()
            self._views[key] = blobs
        if device_id is None:
            return blobs
        needle = b'"deviceId":' + dumps(device_id) + b","
        return [b for b in blobs if needle in b]

    def trim_cleared(self, keep: int) -> int:
        """Forget the oldest cleared alarms beyond ``keep``; returns how many went."""
        cleared = [alarm_id for alarm_id in self if alarm_id not in self._active]
        excess = len(cleared) - keep
        if excess <= 0:
            return 0
        self.remove(cleared[:excess])
        return excess
