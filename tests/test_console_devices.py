"""The Devices page's index: search, filters, sort and paging agree with a plain scan."""

from __future__ import annotations

import itertools

from dms_exporter.exposition.families import RenderContext
from dms_exporter.model import Device, Table
from dms_exporter.web.console.devices import DeviceIndex, DeviceQuery


def device(n: int) -> Device:
    return Device(
        id=f"dev-{n:04d}",
        name=f"{('Denver', 'Albany', 'Halifax')[n % 3]} Edge {n % 7}" if n % 11 else "",
        unit_address=f"{n * 7919:012d}",
        serial_number=f"SN-{n:05d}",
        mac_address="",
        model=("ProView 7100", "XOS Edge")[n % 2],
        device_type="ird",
        firmware_version="",
        connection_state=("online", "offline", "unknown")[n % 3 - 1],
        control_mode="dms",
        last_contact=None if n % 5 == 0 else 1_700_000_000.0 + (n * 37) % 1000,
        group_ids=(f"g{n % 4}",) if n % 6 else (),
        site=("Denver", "Albany", "")[n % 3],
        region="US",
        authorization_state="authorized",
    )


ROWS = tuple(device(n) for n in range(500))
CONTEXT = RenderContext(display_names={"dev-0003": "KXYZ Denver rack 3", "dev-0004": ""})
INDEX = DeviceIndex(Table("devices", ROWS, 0.0), CONTEXT)


def key(d: Device) -> str:
    return CONTEXT.display_names.get(d.id) or d.name or d.id


def test_display_key_is_the_metrics_rule():
    by_id = {d.id: k for d, k in zip(INDEX.rows, INDEX.keys, strict=True)}
    assert by_id["dev-0003"] == "KXYZ Denver rack 3"  # the custom description
    assert by_id["dev-0004"] == ROWS[4].name  # an empty description falls back to the name
    assert by_id["dev-0011"] == "dev-0011"  # no name: the id


def test_search_filters_sort_and_pages_agree_with_a_plain_scan():
    for q, state, model, group, sort, desc in itertools.product(
        ("", "denver", "SN-0004", "KXYZ", "nothing"),
        ("", "online"),
        ("", "XOS Edge"),
        ("", "g1"),
        ("display", "last_contact", "id"),
        (False, True),
    ):
        wanted = [
            d
            for d in ROWS
            if (
                not q
                or q.casefold()
                in "\n".join(
                    (d.id, d.name, CONTEXT.display_names.get(d.id, ""), d.unit_address,
                     d.serial_number)
                ).casefold()
            )
            and (not state or d.connection_state == state)
            and (not model or d.model == model)
            and (not group or group in d.group_ids)
        ]  # fmt: skip
        sort_key = {
            "display": lambda d: (key(d).casefold(), d.id),
            "last_contact": lambda d: (d.last_contact or -1.0, d.id),
            "id": lambda d: (d.id, d.id),
        }[sort]
        wanted.sort(key=sort_key, reverse=desc)
        query = DeviceQuery(q=q, state=state, model=model, group=group, sort=sort, desc=desc,
                            page=2, per_page=20)  # fmt: skip
        page = INDEX.search(query)
        assert page.total == len(wanted), query
        assert page.devices == (wanted[20:40] if len(wanted) > 20 else wanted[:20]), query
        assert page.keys == [key(d) for d in page.devices]


def test_a_page_past_the_end_is_the_last_page():
    page = INDEX.search(DeviceQuery(page=99, per_page=50))
    assert (page.page, page.pages, len(page.devices)) == (10, 10, 50)
    assert page.devices[-1] == sorted(ROWS, key=lambda d: (key(d).casefold(), d.id))[-1]
