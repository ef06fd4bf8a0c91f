"""Deterministic generation of a DMS population: the same (size, seed, epoch) gives the same bytes.

Every random choice comes from one ``random.Random(seed)`` consumed in a fixed order; nothing
iterates a ``set`` of strings. Devices and destinations come out already serialized, so 100,000
devices never exist as 100,000 dicts.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from dataclasses import dataclass, field
from typing import Any

from .alarms import fault_object_for, make_alarm
from .catalog import (
    ALARM_CODES,
    AUTHORIZATION_STATES,
    CONNECTION_STATES,
    DEVICE_ALARM_CODES,
    DMS_ALARM_CODES,
    MODELS,
)
from .clock import iso
from .collection import dumps
from .names import (
    CALL_PREFIX,
    CATEGORIES,
    EVENTS,
    NETWORKS,
    REGIONS,
    SITE_KINDS,
    TIERS,
    VARIANTS,
)

QUARTER_HOUR = 900
DAY = 86400

CONNECTION_WEIGHTS = (90, 95, 97, 100)  # cumulative, CONNECTION_STATES order
AUTHORIZATION_WEIGHTS = (90, 96, 100)  # cumulative, AUTHORIZATION_STATES order
MODEL_WEIGHTS = tuple(itertools.accumulate(m.weight for m in MODELS))
DESTINATION_COUNT_WEIGHTS = (50, 85, 100)  # 1, 2 or 3 outputs
IRD_OUTPUT_WEIGHTS = (50, 85, 100)  # IP, ASI, SDI


def service_count(devices: int) -> int:
    """About 20 services for a small DMS, up to 200 for a large one."""
    return max(20, min(200, round(20 + 0.6 * math.sqrt(devices))))


def weighted(rng: random.Random, cumulative: tuple[int, ...]) -> int:
    """An index drawn with the given cumulative weights (faster than ``rng.choices``)."""
    return bisect.bisect_right(cumulative, rng.random() * cumulative[-1])


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


@dataclass
class Population:
    """Everything a new world starts from. Small collections are dicts; devices and
    destinations are ``(id, json bytes)``; per-device facts the dynamics need are compact."""

    epoch: float
    system: dict[str, Any]
    groups: list[dict[str, Any]]
    services: list[dict[str, Any]]
    authorization_sets: list[dict[str, Any]]
    schedules: list[dict[str, Any]]
    devices: list[tuple[str, bytes]] = field(default_factory=list)
    destinations: list[tuple[str, bytes]] = field(default_factory=list)
    destinations_by_device: list[tuple[str, ...]] = field(default_factory=list)
    connection_states: bytearray = field(default_factory=bytearray)  # CONNECTION_STATES index
    authorization_states: bytearray = field(default_factory=bytearray)  # AUTHORIZATION_STATES
    device_sets: list[tuple[int, ...]] = field(default_factory=list)  # authorization set indices
    device_schedules: dict[int, tuple[int, ...]] = field(default_factory=dict)
    alarms: list[dict[str, Any]] = field(default_factory=list)


def schedule_state(schedule: dict[str, Any], now: float, start: float, end: float) -> str:
    """A schedule's state at ``now`` (CANCELLED stays CANCELLED)."""
    if schedule.get("state") == "CANCELLED":
        return "CANCELLED"
    if now < start:
        return "PENDING"
    return "ACTIVE" if now < end else "EXPIRED"


class _Generator:
    """One generation run; methods are called in a fixed order by ``generate``."""

    def __init__(self, devices: int, seed: int, epoch: float) -> None:
        self.n = devices
        self.rng = random.Random(seed)
        self.epoch = float(int(epoch))
        self.regions = REGIONS[: min(len(REGIONS), 3 + devices // 10000)]
        self.site_count = max(len(self.regions), min(2500, devices // 40))

    def groups(self) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
        """Regions, their sites, then the cross-cutting categories; returns the groups and
        each site's (region index, city)."""
        groups: list[dict[str, Any]] = []
        sites: list[tuple[int, str]] = []
        site_groups: list[list[dict[str, Any]]] = [[] for _ in self.regions]
        r_count = len(self.regions)
        for s in range(self.site_count):
            r = s % r_count
            cities = self.regions[r][1]
            city = cities[(s // r_count) % len(cities)]
            kind = SITE_KINDS[(s // (r_count * len(cities))) % len(SITE_KINDS)]
            lap = s // (r_count * len(cities) * len(SITE_KINDS))
            name = f"{city} {kind}" + (f" {lap + 1}" if lap else "")
            site_groups[r].append(
                {
                    "id": f"g-site-{s + 1:04d}",
                    "name": name,
                    "parentId": f"g-{slug(self.regions[r][0])}",
                    "deviceCount": 0,
                }
            )
            sites.append((r, city))
        for r, (region, _cities) in enumerate(self.regions):
            groups.append(
                {
                    "id": f"g-{slug(region)}",
                    "name": f"{region} Region",
                    "parentId": None,
                    "deviceCount": 0,
                }
            )
            groups.extend(site_groups[r])
        for gid, name, _package in CATEGORIES:
            groups.append({"id": gid, "name": name, "parentId": None, "deviceCount": 0})
        return groups, sites

    def services(self) -> list[dict[str, Any]]:
        count = service_count(self.n)
        tiers = list(TIERS) + self.rng.choices(TIERS, weights=(50, 20, 15, 15), k=count - 4)
        services = []
        for k in range(count):
            name = f"{NETWORKS[k % len(NETWORKS)]} {VARIANTS[(k // len(NETWORKS)) % len(VARIANTS)]}"
            services.append(
                {"id": f"svc-{101 + k}", "name": name, "programNumber": 101 + k, "tier": tiers[k]}
            )
        return services

    def _pick(self, pool: list[str], low: int, high: int) -> list[str]:
        return self.rng.sample(pool, min(len(pool), self.rng.randint(low, high)))

    def _device_ids(self, low: int, high: int) -> list[str]:
        return [
            f"dev-{self.rng.randint(1, self.n):06d}" for _ in range(self.rng.randint(low, high))
        ]

    def authorization_sets(
        self, services: list[dict[str, Any]], site_ids: list[str]
    ) -> list[dict[str, Any]]:
        pools = {t: [s["id"] for s in services if s["tier"] == t] for t in TIERS}
        sets: list[dict[str, Any]] = []

        def add(
            set_id: str,
            name: str,
            service_ids: list[str],
            groups: list[str],
            devices: list[str],
            enabled: bool = True,
        ) -> None:
            modified = self.epoch - self.rng.randint(1, 90 * 24 * 60) * 60
            sets.append(
                {
                    "id": set_id,
                    "name": name,
                    "type": "PERMANENT",
                    "enabled": enabled,
                    "serviceIds": service_ids,
                    "targetGroupIds": groups,
                    "targetDeviceIds": devices,
                    "deviceCount": 0,
                    "lastModified": iso(modified),
                }
            )

        for region, _cities in self.regions:
            add(
                f"as-basic-{slug(region)}",
                f"Basic Package - {region}",
                self._pick(pools["BASIC"], 2, 2),
                [f"g-{slug(region)}"],
                [],
            )
        for gid, _name, package in CATEGORIES:
            add(f"as-{gid[2:]}", package, self._pick(pools["PREMIUM"], 1, 2), [gid], [])
        for k in range(max(2, min(20, len(services) // 10))):
            add(
                f"as-sports-{k + 1:02d}",
                f"Sports Package {k + 1}",
                self._pick(pools["SPORTS"], 1, 2),
                self._pick(site_ids, 1, max(1, min(3, len(site_ids) // 4))),
                self._device_ids(0, 3),
                enabled=k == 0 or self.rng.random() < 0.9,
            )
        return sets

    def schedules(
        self, services: list[dict[str, Any]], site_names: dict[str, str], sports_set_ids: list[str]
    ) -> list[dict[str, Any]]:
        site_ids = list(site_names)
        events = [s["id"] for s in services if s["tier"] == "EVENT"]
        base = self.epoch // QUARTER_HOUR * QUARTER_HOUR
        schedules = []
        for k in range(max(4, min(24, 4 + len(services) // 10))):
            kind = ("ACTIVE", "PENDING", "EXPIRED", "CANCELLED")[k % 4]
            if kind == "ACTIVE":
                start = base - QUARTER_HOUR * self.rng.randint(1, 8)
                end = base + QUARTER_HOUR * self.rng.randint(2, 16)
            elif kind == "EXPIRED":
                end = base - QUARTER_HOUR * self.rng.randint(1, 96 * 14)
                start = end - QUARTER_HOUR * self.rng.randint(4, 24)
            else:
                start = base + QUARTER_HOUR * self.rng.randint(2, 96 * 7)
                end = start + QUARTER_HOUR * self.rng.randint(4, 24)
            if k == 0:
                region = self.regions[0][0]
                targets, where = [f"g-{slug(region)}"], region.removeprefix("US-")
            else:
                targets = self._pick(site_ids, 1, 2)
                where = " + ".join(site_names[t] for t in targets)
            event = EVENTS[k % len(EVENTS)]
            schedule = {
                "id": f"sa-{slug(event)}-{k + 1}",
                "name": f"{event} - {where}",
                "authorizationSetId": sports_set_ids[k % len(sports_set_ids)],
                "serviceIds": self._pick(events, 1, 2),
                "targetGroupIds": targets,
                "targetDeviceIds": self._device_ids(0, 2),
                "startTime": iso(start),
                "endTime": iso(end),
                "state": kind,
                "deviceCount": 0,
            }
            schedule["state"] = schedule_state(schedule, self.epoch, start, end)
            schedules.append(schedule)
        return schedules

    def devices(self, pop: Population, sites: list[tuple[int, str]]) -> None:
        """Devices and their destinations, serialized as they are made."""
        rng, epoch = self.rng, self.epoch
        groups = {g["id"]: g for g in pop.groups}
        set_index = _target_index(pop.authorization_sets)
        schedule_index = _target_index(pop.schedules)
        interned: dict[tuple[int, ...], tuple[int, ...]] = {}
        sig_services: dict[tuple[int, ...], list[str]] = {}
        all_services = [s["id"] for s in pop.services]
        unit_base = rng.randrange(10**11)
        mac_base = rng.randrange(2**24)
        for i in range(1, self.n + 1):
            device_id = f"dev-{i:06d}"
            model = MODELS[weighted(rng, MODEL_WEIGHTS)]
            firmware = model.firmware[0] if rng.random() < 0.7 else rng.choice(model.firmware)
            if rng.random() < 0.95:
                s = rng.randrange(len(sites))
                r, city = sites[s]
                site_gid: str | None = f"g-site-{s + 1:04d}"
            else:
                r = rng.randrange(len(self.regions))
                city, site_gid = rng.choice(self.regions[r][1]), None
            region = self.regions[r][0]
            group_ids = [f"g-{slug(region)}"] + ([site_gid] if site_gid else [])
            if rng.random() < 0.7:
                group_ids.append(rng.choice(CATEGORIES)[0])
            state = weighted(rng, CONNECTION_WEIGHTS)
            auth = weighted(rng, AUTHORIZATION_WEIGHTS)
            last_contact = {
                0: epoch - rng.randint(0, 120),
                1: epoch - rng.randint(600, 7 * DAY),
                2: epoch - rng.randint(3600, 30 * DAY),
                3: None,
            }[state]
            if model.device_type == "XOS_EDGE":
                name = f"{city} Edge {rng.randint(1, 12):02d}"
            else:
                letters = rng.randrange(26**3)
                call = "".join(chr(65 + letters // 26**p % 26) for p in (2, 1, 0))
                name = f"{CALL_PREFIX[region]}{call} {city}"
            device = {
                "id": device_id,
                "unitAddress": f"{(unit_base + i * 104729) % 10**12:012d}",
                "serialNumber": f"{model.serial_prefix}-{rng.randint(18, 25)}"
                f"{rng.randint(1, 52):02d}-{rng.randrange(10000):04d}",
                "macAddress": _mac(mac_base + i * 13),
                "model": model.name,
                "deviceType": model.device_type,
                "firmwareVersion": firmware,
                "name": name,
                "connectionState": CONNECTION_STATES[state],
                "controlMode": "DMS" if rng.random() < 0.95 else "LOCAL",
                "lastContact": iso(last_contact),
                "groupIds": group_ids,
                "location": {
                    "site": groups[site_gid]["name"] if site_gid else None,
                    "region": region,
                },
                "authorizationState": AUTHORIZATION_STATES[auth],
            }
            pop.devices.append((device_id, dumps(device)))
            pop.connection_states.append(state)
            pop.authorization_states.append(auth)
            for gid in group_ids:
                groups[gid]["deviceCount"] += 1
            sig = _targets_of(set_index, group_ids, device_id)
            sig = interned.setdefault(sig, sig)
            pop.device_sets.append(sig)
            for k in sig:
                pop.authorization_sets[k]["deviceCount"] += 1
            schedules = _targets_of(schedule_index, group_ids, device_id)
            if schedules:
                pop.device_schedules[i - 1] = schedules
                for k in schedules:
                    pop.schedules[k]["deviceCount"] += 1
            if sig not in sig_services:
                ids = [sid for k in sig for sid in pop.authorization_sets[k]["serviceIds"]]
                sig_services[sig] = ids or all_services
            self._destinations(pop, i, r, model.device_type, sig_services[sig])

    def _destinations(
        self, pop: Population, i: int, region: int, device_type: str, services: list[str]
    ) -> None:
        rng = self.rng
        ids = []
        for k in range(1, weighted(rng, DESTINATION_COUNT_WEIGHTS) + 2):
            if device_type == "XOS_EDGE":
                kind = "IP" if rng.random() < 0.9 else "ASI"
            else:
                kind = ("IP", "ASI", "SDI")[weighted(rng, IRD_OUTPUT_WEIGHTS)]
            enabled = rng.random() < 0.95
            status = "DISABLED" if not enabled else ("OK" if rng.random() < 0.93 else "ERROR")
            dst_id = f"dst-{i:06d}-{k}"
            destination = {
                "id": dst_id,
                "deviceId": f"dev-{i:06d}",
                "name": f"Output {k}",
                "type": kind,
                "enabled": enabled,
                "serviceId": rng.choice(services),
                "ipAddress": (
                    f"239.{10 + region}.{(i >> 8) & 255}.{i & 255}" if kind == "IP" else None
                ),
                "ipPort": 5000 + k if kind == "IP" else None,
                "status": status,
            }
            pop.destinations.append((dst_id, dumps(destination)))
            ids.append(dst_id)
        pop.destinations_by_device.append(tuple(ids))

    def alarms(self, pop: Population) -> None:
        """Active alarms (about 2 per 100 devices) and a cleared history ten times larger."""
        rng, epoch = self.rng, self.epoch
        active = max(1, round(self.n * 0.02))
        drafts: list[tuple[float, int, dict[str, Any]]] = []
        for j in range(active * 11):
            is_active = j < active
            if is_active:
                asserted = epoch - rng.randint(60, 3 * DAY)
                cleared = None
            else:
                asserted = epoch - rng.randint(3600, 30 * DAY)
                cleared = min(epoch - 1, asserted + rng.randint(60, 2 * DAY))
            if rng.random() < 0.85:
                code = rng.choice(DEVICE_ALARM_CODES)
                device_id: str | None = self._device_in_state(pop.connection_states, 0)
                subject = device_id
            else:
                code = rng.choice(DMS_ALARM_CODES)
                device_id = None
                wanted = 1 if code == "DEVICE_NOT_RESPONDING" else 0
                subject = self._device_in_state(pop.connection_states, wanted)
            drafts.append(
                (
                    asserted,
                    j,
                    {
                        "code": code,
                        "severity": rng.choice(ALARM_CODES[code].severities),
                        "device_id": device_id,
                        "fault_object": fault_object_for(code, rng, subject),
                        "asserted": asserted,
                        "cleared": cleared,
                        "acknowledged": rng.random() < (0.2 if is_active else 0.7),
                    },
                )
            )
        drafts.sort(key=lambda d: (d[0], d[1]))
        pop.alarms = [make_alarm(10001 + n, **d[2]) for n, d in enumerate(drafts)]

    def _device_in_state(self, states: bytearray, state: int) -> str:
        """A random device id, preferring one in connection state ``state`` (a few tries)."""
        i = self.rng.randrange(self.n)
        for _ in range(4):
            if states[i] == state:
                break
            i = self.rng.randrange(self.n)
        return f"dev-{i + 1:06d}"


def _mac(value: int) -> str:
    value %= 2**24
    return f"00:0E:5C:{value >> 16:02X}:{(value >> 8) & 255:02X}:{value & 255:02X}"


def _target_index(
    targets: list[dict[str, Any]],
) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """(group id -> indices, device id -> indices) of the sets or schedules that target them."""
    by_group: dict[str, list[int]] = {}
    by_device: dict[str, list[int]] = {}
    for k, target in enumerate(targets):
        for gid in target["targetGroupIds"]:
            by_group.setdefault(gid, []).append(k)
        for did in target["targetDeviceIds"]:
            by_device.setdefault(did, []).append(k)
    return by_group, by_device


def _targets_of(
    index: tuple[dict[str, list[int]], dict[str, list[int]]], group_ids: list[str], device_id: str
) -> tuple[int, ...]:
    by_group, by_device = index
    found = [k for gid in group_ids for k in by_group.get(gid, ())]
    found.extend(by_device.get(device_id, ()))
    return tuple(sorted(dict.fromkeys(found)))


def generate(devices: int, seed: int, epoch: float) -> Population:
    """A population of ``devices`` devices for ``seed``, with times relative to ``epoch``."""
    if devices < 1:
        raise ValueError("devices must be at least 1")
    gen = _Generator(devices, seed, epoch)
    groups, sites = gen.groups()
    site_ids = [g["id"] for g in groups if g["id"].startswith("g-site-")]
    services = gen.services()
    sets = gen.authorization_sets(services, site_ids)
    sports = [s["id"] for s in sets if s["id"].startswith("as-sports-")]
    site_names = {g["id"]: g["name"] for g in groups if g["id"] in site_ids}
    schedules = gen.schedules(services, site_names, sports)
    boot = gen.epoch - 864000 - gen.rng.randint(0, 86400)
    licensed = max(1000, math.ceil(devices * 1.25 / 1000) * 1000)
    system = {
        "name": "DMS-PRIMARY",
        "version": "11.4.0.0",
        "bootTime": boot,
        "licensedDevices": licensed,
        "role": "PRIMARY",
    }
    pop = Population(gen.epoch, system, groups, services, sets, schedules)
    gen.devices(pop, sites)
    gen.alarms(pop)
    return pop
