"""The simulated DMS's state: collections served as bytes, and the dynamics that change them."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from .alarms import AlarmBook, fault_object_for, make_alarm
from .authorizations import AuthorizationIndex
from .catalog import (
    ALARM_CODES,
    AUTHORIZATION_STATES,
    CONNECTION_STATES,
    DEVICE_ALARM_CODES,
    DMS_ALARM_CODES,
)
from .clock import Clock, iso, parse_iso
from .collection import Collection, dumps
from .population import QUARTER_HOUR, Population, generate, schedule_state

ONLINE, OFFLINE, UNKNOWN, NEVER_CONNECTED = range(4)
OTHER_STATE = 255  # a connection or authorization state set to a value outside the enum

#: Endpoint name -> World attribute holding its collection.
COLLECTIONS = {
    "devices": "devices",
    "groups": "groups",
    "services": "services",
    "authorization_sets": "authorization_sets",
    "schedule_authorizations": "schedule_authorizations",
    "authorizations": "authorizations",
    "destinations": "destinations",
    "alarms": "alarms",
}


class World:
    """Everything the simulated DMS knows. Collections are ``Collection`` mappings (id -> a
    decoded copy of the item); ``authorizations`` is a sequence of row bytes."""

    def __init__(
        self, pop: Population, clock: Clock, seed: int = 1, change_rate: float = 0.01
    ) -> None:
        self.clock = clock
        self.change_rate = change_rate
        self.rng = random.Random(f"dynamics-{seed}")
        self._system = pop.system
        self.devices = Collection(pop.devices)
        self.device_index = {device_id: i for i, (device_id, _) in enumerate(pop.devices)}
        self._device_ids = list(self.device_index)
        self.connection_states = pop.connection_states
        self.authorization_states = pop.authorization_states
        self.groups = Collection((g["id"], dumps(g)) for g in pop.groups)
        self.services = Collection((s["id"], dumps(s)) for s in pop.services)
        self.authorization_sets = Collection((s["id"], dumps(s)) for s in pop.authorization_sets)
        self._schedules = pop.schedules
        self._windows = [
            (parse_iso(s["startTime"]), parse_iso(s["endTime"])) for s in pop.schedules
        ]
        self.schedule_authorizations = Collection((s["id"], dumps(s)) for s in pop.schedules)
        self.destinations = Collection(pop.destinations)
        self._destinations_of = pop.destinations_by_device
        self._destination_ids = list(self.destinations)
        self.alarms = AlarmBook(pop.alarms)
        self.authorizations = AuthorizationIndex(
            self._device_ids,
            pop.authorization_sets,
            pop.schedules,
            pop.device_sets,
            pop.device_schedules,
            pop.authorization_states,
        )
        self.alarm_target = max(1, round(len(self.devices) * 0.02))
        self.cleared_keep = max(
            len(self.alarms) - len(self.alarms.active_ids), 10 * self.alarm_target
        )
        self._not_responding: dict[str, str] = {}  # device id -> its DEVICE_NOT_RESPONDING alarm
        self._carry: dict[str, float] = {}
        self.sync()

    @classmethod
    def create(
        cls,
        devices: int = 100,
        seed: int = 1,
        clock: Clock | None = None,
        change_rate: float = 0.01,
    ) -> World:
        """Generate a population for ``seed`` at the clock's current time."""
        clock = clock or Clock()
        return cls(generate(devices, seed, clock.now()), clock, seed, change_rate)

    # -- reading -------------------------------------------------------------------------

    @property
    def system(self) -> dict[str, Any]:
        """The ``/system/info`` object at the current simulated time."""
        now = self.clock.now()
        s = self._system
        return {
            "name": s["name"],
            "version": s["version"],
            "serverTime": iso(now),
            "uptimeSeconds": max(0, int(now - s["bootTime"])),
            "licensedDevices": s["licensedDevices"],
            "role": s["role"],
        }

    def set_role(self, role: str) -> None:
        """The redundancy role ``/system/info`` reports from now on."""
        self._system = {**self._system, "role": role}

    def sync(self) -> None:
        """Bring clock-driven state (schedule states) up to the current simulated time."""
        now = self.clock.now()
        states = []
        for k, schedule in enumerate(self._schedules):
            state = schedule_state(schedule, now, *self._windows[k])
            if state != schedule["state"]:
                schedule["state"] = state
                self.schedule_authorizations.put(schedule["id"], schedule)
            states.append(state)
        self.authorizations.set_schedule_states(states)

    def listing(
        self, endpoint: str, device_id: str | None = None, state: str | None = None
    ) -> Sequence[bytes]:
        """The items of a collection endpoint as JSON bytes, optionally filtered."""
        self.sync()
        if endpoint == "alarms":
            return self.alarms.view(state, device_id)
        if device_id is not None and endpoint in ("authorizations", "destinations"):
            index = self.device_index.get(device_id)
            if index is None:
                return []
            if endpoint == "authorizations":
                return self.authorizations.rows_of(index)
            return [self.destinations.blob(d) for d in self._destinations_of[index]]
        if endpoint == "authorizations":
            return self.authorizations
        return self.collection(endpoint).blobs()

    def collection(self, endpoint: str) -> Any:
        """The collection behind an endpoint name."""
        return getattr(self, COLLECTIONS[endpoint])

    def counts(self) -> dict[str, int]:
        """How many items each collection holds now."""
        self.sync()
        active = len(self.alarms.active_ids)
        return {
            "devices": len(self.devices),
            "groups": len(self.groups),
            "services": len(self.services),
            "authorization_sets": len(self.authorization_sets),
            "schedule_authorizations": len(self.schedule_authorizations),
            "authorizations": len(self.authorizations),
            "destinations": len(self.destinations),
            "alarms": len(self.alarms),
            "alarms_active": active,
            "alarms_cleared": len(self.alarms) - active,
            "devices_online": self.connection_states.count(ONLINE),
        }

    # -- changing ------------------------------------------------------------------------

    def set_device(self, device_id: str, **fields: Any) -> dict[str, Any]:
        """Set top-level fields of a device (any JSON value); ``KeyError`` if unknown."""
        index = self.device_index[device_id]
        if fields.get("id", device_id) != device_id:
            raise ValueError("a device's id cannot change")
        device = self.devices.update(device_id, **fields)
        if "connectionState" in fields:
            self.connection_states[index] = _code(CONNECTION_STATES, device["connectionState"])
        if "authorizationState" in fields:
            self.authorization_states[index] = _code(
                AUTHORIZATION_STATES, device["authorizationState"]
            )
        return device

    def set_destination(self, destination_id: str, **fields: Any) -> dict[str, Any]:
        """Set top-level fields of a destination; ``KeyError`` if unknown."""
        if destination_id not in self.destinations:
            raise KeyError(destination_id)
        return self.destinations.update(destination_id, **fields)

    def raise_alarm(
        self,
        device_id: str | None = None,
        severity: str = "MAJOR",
        code: str = "SIGNAL_LOSS",
        fault_object: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Raise an alarm now; ``device_id`` None makes a DMS alarm. Returns the alarm.
        ``extra``: ``source``, ``description``, ``recovery_tip``, ``acknowledged``."""
        if device_id is not None and device_id not in self.device_index:
            raise KeyError(device_id)
        alarm = make_alarm(
            self.alarms.take_number(),
            code=code,
            severity=severity,
            device_id=device_id,
            fault_object=fault_object or fault_object_for(code, self.rng, device_id),
            asserted=self.clock.now(),
            **extra,
        )
        self.alarms.add(alarm)
        return alarm

    def clear_alarm(self, alarm_id: str) -> dict[str, Any]:
        """Clear an alarm now (no change if already cleared); ``KeyError`` if unknown."""
        return self.alarms.clear(alarm_id, self.clock.now())

    # -- dynamics ------------------------------------------------------------------------

    def _quota(self, name: str, expected: float) -> int:
        """How many changes of a kind to make this tick; fractions carry to the next tick."""
        carry = self._carry.get(name, 0.0) + expected
        whole = int(carry)
        self._carry[name] = carry - whole
        return whole

    def tick(self) -> None:
        """One step of life: about ``change_rate`` of devices, destinations and active alarms
        change; alarms are raised to keep about 2 active per 100 devices; expired schedules
        get a next window now and then."""
        rng, rate, now = self.rng, self.change_rate, self.clock.now()
        for _ in range(self._quota("devices", rate * len(self._device_ids))):
            self._churn_device(rng.randrange(len(self._device_ids)), now)
        for _ in range(self._quota("destinations", rate * 0.2 * len(self._destination_ids))):
            self._flip_destination(rng.choice(self._destination_ids))
        active = self.alarms.active_ids
        for _ in range(min(len(active), self._quota("clear", rate * len(active)))):
            alarm_id = active.pop(rng.randrange(len(active)))
            self.alarms.clear(alarm_id, now)
        for _ in range(self._quota("raise", rate * self.alarm_target)):
            self._raise_random()
        if len(self.alarms) - len(self.alarms.active_ids) > self.cleared_keep * 1.1:
            self.alarms.trim_cleared(self.cleared_keep)
        for k, schedule in enumerate(self._schedules):
            if schedule["state"] == "EXPIRED" and rng.random() < rate:
                self._reschedule(k, now)
        self.sync()

    def _reschedule(self, index: int, now: float) -> None:
        """Give an expired schedule its next window, a quarter hour to six hours ahead."""
        start = (now // QUARTER_HOUR + self.rng.randint(1, 24)) * QUARTER_HOUR
        end = start + QUARTER_HOUR * self.rng.randint(4, 16)
        schedule = self._schedules[index]
        schedule.update(startTime=iso(start), endTime=iso(end), state="PENDING")
        self._windows[index] = (start, end)
        self.schedule_authorizations.put(schedule["id"], schedule)
        self.authorizations.set_schedule(index, schedule)

    def _churn_device(self, index: int, now: float) -> None:
        device_id = self._device_ids[index]
        state = self.connection_states[index]
        roll = self.rng.random()
        if state == ONLINE:
            if roll < 0.04:
                self.set_device(device_id, connectionState="OFFLINE")
                alarm = self.raise_alarm(
                    None, "MAJOR", "DEVICE_NOT_RESPONDING", fault_object=f"Device {device_id}"
                )
                self._not_responding[device_id] = alarm["id"]
            elif roll < 0.05:
                self.set_device(device_id, connectionState="UNKNOWN")
            else:
                self.set_device(device_id, lastContact=iso(now))
        elif roll < (0.1 if state == NEVER_CONNECTED else 0.6):
            self.set_device(device_id, connectionState="ONLINE", lastContact=iso(now))
            alarm_id = self._not_responding.pop(device_id, None)
            if alarm_id is not None and alarm_id in self.alarms:
                self.alarms.clear(alarm_id, now)

    def _flip_destination(self, destination_id: str) -> None:
        status = self.destinations[destination_id]["status"]
        if status != "DISABLED":
            self.set_destination(destination_id, status="ERROR" if status == "OK" else "OK")

    def _raise_random(self) -> None:
        rng = self.rng
        if rng.random() < 0.85:
            index = rng.randrange(len(self._device_ids))
            code = rng.choice(DEVICE_ALARM_CODES)
            self.raise_alarm(
                self._device_ids[index], rng.choice(ALARM_CODES[code].severities), code
            )
        else:
            code = rng.choice([c for c in DMS_ALARM_CODES if c != "DEVICE_NOT_RESPONDING"])
            self.raise_alarm(None, rng.choice(ALARM_CODES[code].severities), code)


def _code(values: tuple[str, ...], value: object) -> int:
    return values.index(value) if value in values else OTHER_STATE
