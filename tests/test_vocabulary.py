"""vocabulary.parse: the docs/dms-api.md examples become the expected rows; bad values never
raise."""

from __future__ import annotations

import hashlib
import json
import operator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dms_exporter import model
from dms_exporter.errors import DmsPayloadError
from dms_exporter.vocabulary import KNOWN_FIELDS, Parsed, Parser, parse, parse_time

FIXTURES = Path(__file__).parent / "fixtures" / "dms"
NOW = 1_780_315_200.0  # 2026-06-01T12:00:00Z
T_11_59_42 = NOW - 18
T_11_40_03 = NOW - 1197
T_17_00, T_21_00 = NOW + 5 * 3600, NOW + 9 * 3600

EXPECTED: dict[str, Any] = {
    "system": model.SystemInfo(
        name="DMS-PRIMARY",
        version="11.4.0.0",
        role="primary",
        server_time=NOW,
        uptime_seconds=864000.0,
        licensed_devices=25000,
    ),
    "devices": model.Device(
        id="dev-000123",
        name="KXYZ Denver",
        unit_address="000123456789",
        serial_number="PV81K-2231-0457",
        mac_address="00:0E:5C:12:34:56",
        model="ProView 8130",
        device_type="ird",
        firmware_version="1.8.1.0.26",
        connection_state="online",
        control_mode="dms",
        last_contact=T_11_59_42,
        group_ids=("g-west", "g-affiliates"),
        site="Denver Headend",
        region="US-West",
        authorization_state="authorized",
    ),
    "groups": model.Group(id="g-west", name="West Region", parent_id="", device_count=412),
    "services": model.Service(
        id="svc-101", name="Network East HD", program_number=101, tier="BASIC"
    ),
    "authorization_sets": model.AuthorizationSet(
        id="as-basic",
        name="Basic Package",
        type="permanent",
        enabled=True,
        service_ids=("svc-101", "svc-102"),
        target_group_ids=("g-affiliates",),
        target_device_ids=(),
        device_count=1830,
        last_modified=NOW - 12 * 86400 - 4 * 3600,
    ),
    "schedule_authorizations": model.ScheduleAuthorization(
        id="sa-sunday-west",
        name="Sunday Game - West",
        authorization_set_id="as-sports",
        service_ids=("svc-201",),
        target_group_ids=("g-west",),
        target_device_ids=(),
        start_time=T_17_00,
        end_time=T_21_00,
        state="active",
        device_count=412,
    ),
    "authorizations": model.Authorization(
        device_id="dev-000123",
        service_id="svc-201",
        authorization_set_id="as-sports",
        schedule_authorization_id="sa-sunday-west",
        source="schedule",
        authorized=True,
        valid_from=T_17_00,
        valid_to=T_21_00,
    ),
    "destinations": model.Destination(
        id="dst-000123-1",
        device_id="dev-000123",
        name="Output 1",
        type="ip",
        enabled=True,
        service_id="svc-101",
        ip_address="239.10.1.1",
        ip_port=5000,
        status="ok",
    ),
    "alarms": model.Alarm(
        id="al-88213",
        device_id="dev-000123",
        source="device",
        fault_object="DVB-S2 Input 1",
        code="SIGNAL_LOSS",
        description="Input signal lost",
        severity="critical",
        state="active",
        asserted_time=T_11_40_03,
        cleared_time=None,
        acknowledged=False,
    ),
}


def example(endpoint: str) -> Any:
    return json.loads((FIXTURES / endpoint / "example.json").read_text())


def device(**changes: Any) -> dict[str, Any]:
    """The docs/dms-api.md device with ``changes`` applied (a value of ... removes the key)."""
    item = {**example("devices")[0], **changes}
    return {k: v for k, v in item.items() if v is not ...}


@pytest.mark.parametrize("endpoint", model.ENDPOINTS)
def test_example_parses_to_expected_row(endpoint: str) -> None:
    parsed = parse(endpoint, example(endpoint), {}, now=NOW)
    assert parsed == Parsed(
        rows=(EXPECTED[endpoint],), skipped=0, unknown_values=0, items=1, issues={}
    )


def test_known_fields_cover_every_endpoint_and_example_key() -> None:
    assert tuple(KNOWN_FIELDS) == model.ENDPOINTS
    assert "location.site" in KNOWN_FIELDS["devices"]
    assert "deviceId" in KNOWN_FIELDS["authorizations"]
    unused = {"recoveryTip"}  # in the API, not in the model
    for endpoint in model.ENDPOINTS:
        payload = example(endpoint)
        item = payload if isinstance(payload, dict) else payload[0]
        top = {name.split(".")[0] for name in KNOWN_FIELDS[endpoint]}
        assert set(item) - unused == top, endpoint


def test_renames_including_dotted() -> None:
    item = device(connectionState=..., location=..., status="OFFLINE", siteName="Boulder")
    item["geo"] = {"area": {"name": "US-Mountain"}}
    fields = {
        "connectionState": "status",
        "location.site": "siteName",
        "location.region": "geo.area.name",
    }
    (row,) = parse("devices", [item], fields, now=NOW).rows
    assert (row.connection_state, row.site, row.region) == ("offline", "Boulder", "US-Mountain")


def test_renamed_id() -> None:
    parsed = parse("groups", [{"groupId": "g-1", "name": "One"}], {"id": "groupId"}, now=NOW)
    assert [r.id for r in parsed.rows] == ["g-1"]


def test_unknown_enum_values_become_other_and_are_counted() -> None:
    items = [
        device(id="d1", connectionState="SLEEPING"),  # unknown spelling
        device(id="d2", controlMode=3, deviceType=None),  # wrong type, null
        device(id="d3", authorizationState=...),  # missing
        device(id="d4", connectionState="OTHER"),  # our placeholder is not a DMS value
        device(id="d5", connectionState="online"),  # lower case is accepted
    ]
    parsed = parse("devices", items, {}, now=NOW)
    rows = {r.id: r for r in parsed.rows}
    assert rows["d1"].connection_state == model.OTHER
    assert (rows["d2"].control_mode, rows["d2"].device_type) == (model.OTHER, model.OTHER)
    assert rows["d3"].authorization_state == model.OTHER
    assert rows["d4"].connection_state == model.OTHER
    assert rows["d5"].connection_state == "online"
    assert parsed.unknown_values == 5
    assert parsed.skipped == 0


def test_missing_fields_get_empty_values() -> None:
    (row,) = parse("devices", [{"id": "dev-1"}], {}, now=NOW).rows
    assert row == model.Device(
        id="dev-1",
        name="",
        unit_address="",
        serial_number="",
        mac_address="",
        model="",
        device_type=model.OTHER,
        firmware_version="",
        connection_state=model.OTHER,
        control_mode=model.OTHER,
        last_contact=None,
        group_ids=(),
        site="",
        region="",
        authorization_state=model.OTHER,
    )
    (alarm,) = parse(
        "alarms", [{"id": "al-1", "source": "DMS", "deviceId": None}], {}, now=NOW
    ).rows
    assert (alarm.device_id, alarm.source, alarm.acknowledged) == ("", "dms", False)


def test_wrong_types_do_not_raise() -> None:
    item = device(
        name=42,  # number where text is expected: its text
        unitAddress=True,  # a boolean is not text
        model={"x": 1},
        groupIds=["g-1", 7, None, {"id": "g-2"}, ""],  # keep what can be an id
        location="Denver",  # not an object: site and region empty
        lastContact=[1780315182],  # not a time
        serialNumber=12.5,  # a float is never an id-like text
    )
    parsed = parse("devices", [item], {}, now=NOW)
    (row,) = parsed.rows
    assert (row.name, row.unit_address, row.model) == ("42", "", "")
    assert row.group_ids == ("g-1", "7")
    assert (row.site, row.region, row.last_contact) == ("", "", None)
    # every value of an undocumented JSON type is counted against its field, for the gate
    assert parsed.issues == dict.fromkeys(
        ["name", "unitAddress", "serialNumber", "model", "lastContact", "location.site",
         "location.region"], 1
    )  # fmt: skip


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (101, 101),
        ("101", 101),
        (101.0, 101),
        ("1e2", 100),
        ("ten", None),
        (True, None),
        (None, None),
    ],
)
def test_numbers(value: Any, expected: int | None) -> None:
    (row,) = parse("services", [{"id": "s", "programNumber": value}], {}, now=NOW).rows
    assert row.program_number == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), (False, False), ("true", True), ("no", False), (1, False)]
)
def test_booleans(value: Any, expected: bool) -> None:
    (row,) = parse("destinations", [{"id": "d", "enabled": value}], {}, now=NOW).rows
    assert row.enabled is expected


def test_rows_without_id_are_skipped_and_counted() -> None:
    items = [
        device(id="ok"),
        device(id=...),
        device(id=None),
        device(id=""),
        "dev-5",
        None,
        device(id=12345),  # a numeric id is kept as text
    ]
    parsed = parse("devices", items, {}, now=NOW)
    assert [r.id for r in parsed.rows] == ["ok", "12345"]
    assert parsed.skipped == 5


def test_repeated_ids_are_skipped_so_no_series_repeats() -> None:
    items = [device(id="a", groupIds=["g1", "g2", "g1"]), device(id="b"), device(id="a")]
    parsed = parse("devices", items, {}, now=NOW)
    assert [r.id for r in parsed.rows] == ["a", "b"]
    assert parsed.skipped == 1
    assert parsed.rows[0].group_ids == ("g1", "g2")


def test_authorization_rows_of_one_pair_are_all_kept() -> None:
    base = example("authorizations")[0]
    permanent = {**base, "source": "PERMANENT", "scheduleAuthorizationId": None}
    parsed = parse("authorizations", [base, permanent], {}, now=NOW)
    assert len(parsed.rows) == 2 and parsed.skipped == 0


def test_authorization_needs_device_and_service() -> None:
    base = example("authorizations")[0]
    items = [base, {**base, "serviceId": None}, {**base, "deviceId": ...}]
    items[2] = {k: v for k, v in items[2].items() if v is not ...}
    parsed = parse("authorizations", items, {}, now=NOW)
    assert len(parsed.rows) == 1 and parsed.skipped == 2


def test_skipped_rows_do_not_count_unknown_values() -> None:
    parsed = parse("devices", [{"connectionState": "WEIRD"}, device(id="a")], {}, now=NOW)
    assert (len(parsed.rows), parsed.skipped, parsed.unknown_values) == (1, 1, 0)


def test_a_payload_with_no_usable_row_has_no_rows_and_says_how_many_items() -> None:
    parsed = parse("devices", [{"connectionState": "ONLINE"}, {"deviceId": "x"}], {}, now=NOW)
    assert (parsed.rows, parsed.items, parsed.skipped) == ((), 2, 2)


def test_hostile_values_become_safe_values() -> None:
    items = json.loads(json.dumps([device(id="a", name="bad \ud800 name")]))  # valid JSON
    row = parse("devices", items, {}, now=NOW).rows[0]
    row.name.encode("utf-8")  # a lone surrogate would raise here, at render time
    groups = parse("groups", [{"id": "g", "deviceCount": 10**400}], {}, now=NOW).rows
    assert groups[0].device_count is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-01T12:00:00Z", NOW),
        ("2026-06-01T12:00:00.250Z", NOW + 0.25),
        ("2026-06-01T14:00:00+02:00", NOW),
        ("2026-06-01T07:00:00-05:00", NOW),
        ("2026-06-01T12:00:00", NOW),  # no offset: UTC, as the DMS sends
        (None, None),
        ("", None),
        ("yesterday", None),
        ("2026-13-01T00:00:00Z", None),
        (1780315200, NOW),  # epoch seconds
        (1780315200250, NOW + 0.25),  # epoch milliseconds, told apart per value
        ("1780315200", NOW),
        (1780315200.5, NOW + 0.5),
        (True, None),
        (0, None),
        ([1780315200], None),
    ],
)
def test_times(text: Any, expected: float | None) -> None:
    assert parse_time(text) == expected
    (row,) = parse("alarms", [{"id": "a", "assertedTime": text}], {}, now=NOW).rows
    assert row.asserted_time == expected


@pytest.mark.parametrize(
    ("endpoint", "payload"),
    [
        ("devices", {"items": []}),
        ("devices", "text"),
        ("alarms", None),
        ("system", [{"name": "DMS"}]),
    ],
)
def test_wrong_overall_shape_raises(endpoint: str, payload: Any) -> None:
    with pytest.raises(DmsPayloadError) as caught:
        parse(endpoint, payload, {}, now=NOW)
    assert caught.value.endpoint == endpoint and caught.value.reason == "payload"


def test_empty_collection() -> None:
    assert parse("alarms", [], {}, now=NOW) == Parsed(rows=(), skipped=0, unknown_values=0)


@pytest.mark.parametrize("word", ["ONLINE", "online", "Online", "On-Line", "ON_LINE", "on line"])
def test_enum_words_match_whatever_their_case_and_separators(word: str) -> None:
    parsed = parse("devices", [device(connectionState=word)], {}, now=NOW)
    assert parsed.rows[0].connection_state == "online"
    assert parsed.unknown_values == 0
    never = parse("devices", [device(connectionState="never-connected")], {}, now=NOW)
    assert never.rows[0].connection_state == "never_connected"


def test_value_maps_give_a_dms_its_own_words_and_only_true_unknowns_are_other() -> None:
    words = {"connectionState": {"up": "ONLINE", "Down": "offline"}}
    items = [device(id="a", connectionState="UP"), device(id="b", connectionState="down"),
             device(id="c", connectionState="sideways")]  # fmt: skip
    parsed = parse("devices", items, {}, now=NOW, values=words)
    assert [r.connection_state for r in parsed.rows] == ["online", "offline", model.OTHER]
    assert parsed.issues == {"connectionState": 1}


def test_constants_override_what_the_dms_says() -> None:
    items = [{"id": "a", "state": "CLEARED"}, {"id": "b"}, {"id": "c", "state": "WEIRD"}]
    parsed = parse("alarms", items, {}, now=NOW, constants={"state": "active"})
    assert [r.state for r in parsed.rows] == ["active"] * 3
    assert "state" not in parsed.issues


@pytest.mark.parametrize("bad_id", [[10007], 10007.0, True, {"id": "x"}])
def test_ids_are_only_strings_or_integers(bad_id: Any) -> None:
    parsed = parse("devices", [device(id=bad_id), device(id=10007)], {}, now=NOW)
    assert [r.id for r in parsed.rows] == ["10007"]
    assert parsed.skipped == 1


def test_a_page_reads_as_its_items_one_by_one() -> None:
    """A page is converted a field at a time, with shortcuts for plain columns: one odd value
    in a page (another type, a lone surrogate, a repeated group, an unknown word, a missing id,
    a repeated row) changes that item's row and counts only, as if each item came alone."""
    odd = [
        device(id="dev-1"),
        device(id="dev-2", name="Zürich Süd", groupIds=["g-1", "g-1"]),
        device(id="dev-3", name=7, connectionState="sideways", location="Denver"),
        device(id="dev-4", serialNumber="bad \ud800", lastContact=1780315182250),
        device(id="", macAddress=["x"]),
        device(id=5, groupIds=["g-1", 2], authorizationState=None),
        device(id="dev-1", name="a repeat"),
        "not an object",
        device(id="dev-6", controlMode="Local", lastContact=None, deviceType=True),
    ]
    whole = parse("devices", odd, {}, now=NOW)
    alone = [parse("devices", [item], {}, now=NOW) for item in odd]
    expected = [row for p in alone for row in p.rows]
    del expected[[row.name for row in expected].index("a repeat")]  # dev-1 came first
    assert whole.rows == tuple(expected)
    assert whole.skipped == sum(p.skipped for p in alone) + 1  # the repeated dev-1
    assert whole.unknown_values == sum(p.unknown_values for p in alone)
    assert whole.issues == {
        name: sum(p.issues.get(name, 0) for p in alone) for name in whole.issues
    }
    by_id = {row.id: row for row in whole.rows}
    assert by_id["dev-2"].name == "Zürich Süd" and by_id["dev-2"].group_ids == ("g-1",)
    assert (by_id["dev-3"].name, by_id["dev-3"].connection_state) == ("7", "other")
    assert by_id["dev-4"].serial_number == "bad ?"  # UTF-8 cannot carry a lone surrogate
    assert by_id["5"].group_ids == ("g-1", "2")
    assert by_id["dev-6"].control_mode == "local"


def test_rows_share_their_repeated_values() -> None:
    """A fleet repeats models, sites, regions and group lists: each distinct one is held once
    (the decoded JSON has a copy per device)."""
    items = json.loads(json.dumps([device(id=f"dev-{k}") for k in range(3)]))
    rows = parse("devices", items, {}, now=NOW).rows
    for name in ("model", "site", "region", "group_ids", "firmware_version"):
        first = getattr(rows[0], name)
        assert all(getattr(row, name) is first for row in rows[1:]), name
    # the next poll: the first device unchanged (kept), the other two made again, sharing
    held = (rows[0], replace(rows[1], name="old"), replace(rows[2], name="old"))
    parser = Parser("devices", {}, previous=held)
    parser.feed(json.loads(json.dumps(items)))
    again = parser.result().rows
    assert again == rows and again[0] is held[0]
    for name in ("model", "site", "region", "group_ids", "firmware_version"):
        assert getattr(again[1], name) is getattr(again[2], name), name


@pytest.mark.parametrize(
    ("sent", "state"),
    [(1, "online"), ("1", "online"), (1.0, "online"), ("1.0", "online"), (2, "offline"),
     (-1, model.OTHER), (7, model.OTHER), (True, model.OTHER), (1.5, model.OTHER)],
)  # fmt: skip
def test_numeric_codes_map_whatever_json_type_carries_them(sent: Any, state: str) -> None:
    codes = {"connectionState": {"1": "ONLINE", "2": "OFFLINE"}}
    parsed = parse("devices", [device(connectionState=sent)], {}, now=NOW, values=codes)
    assert parsed.rows[0].connection_state == state
    assert parsed.issues.get("connectionState", 0) == (state == model.OTHER)


def test_boolean_codes_map_and_are_not_numbers() -> None:
    """``true`` is the code ``true``, never the code ``1`` (Python's ``True == 1``)."""
    codes = {"state": {"true": "ACTIVE", "false": "CLEARED"}, "severity": {"1": "CRITICAL"}}
    items = [{"id": "a", "state": True, "severity": 1}, {"id": "b", "state": "false"},
             {"id": "c", "state": 1, "severity": True}]  # fmt: skip
    parsed = parse("alarms", items, {}, now=NOW, values=codes)
    assert [(r.state, r.severity) for r in parsed.rows] == [
        ("active", "critical"),
        ("cleared", model.OTHER),
        (model.OTHER, model.OTHER),
    ]


def test_a_column_of_integer_codes_reads_as_code_by_code() -> None:
    """The shortcut for a page of integers gives what each item alone gives."""
    codes = {"connectionState": {"0": "UNKNOWN", "1": "ONLINE", "-1": "OFFLINE"}}
    sent = [1, 0, -1, None, 9, 1]
    items = [device(id=f"d{i}", connectionState=v) for i, v in enumerate(sent)]
    whole = parse("devices", items, {}, now=NOW, values=codes)
    alone = [parse("devices", [item], {}, now=NOW, values=codes) for item in items]
    assert whole.rows == tuple(p.rows[0] for p in alone)
    assert [r.connection_state for r in whole.rows] == [
        "online",
        "unknown",
        "offline",
        model.OTHER,
        model.OTHER,
        "online",
    ]
    assert whole.issues == {"connectionState": 2}


def _poll(pages: list[list[Any]], held: Parsed | None = None) -> Parsed:
    """One poll of ``pages`` as the poller feeds them: each with the digest of its bytes,
    after ``held`` (the last poll's result) when given."""
    parser = Parser(
        "devices",
        {},
        previous=held.rows if held is not None else (),
        previous_pages=held.pages if held is not None else (),
    )
    for page in pages:
        raw = json.dumps(page).encode()
        parser.feed(json.loads(raw), hashlib.sha1(raw).hexdigest())
    return parser.result()


def _devices_in_pages() -> list[list[Any]]:
    """Four pages of devices with what a poll counts: an unknown state, an item without its id,
    one that is not an object, a device repeated on a later page."""
    pages = [[device(id=f"d-{p}-{i}", name=f"D {p}.{i}") for i in range(5)] for p in range(4)]
    pages[0][1] = device(id="d-0-1", connectionState="SLEEPING")
    pages[1][2] = device(id=...)
    pages[2][0] = "not a device"
    pages[3][4] = device(id="d-0-3", name="D 0.3")
    return pages


def test_a_page_that_comes_back_the_same_gives_the_rows_and_counts_it_gave() -> None:
    pages = _devices_in_pages()
    first = _poll(pages)
    assert (first.skipped, first.unknown_values, first.items) == (3, 1, 20)
    again = _poll(pages, held=first)
    # what the metrics count (skipped rows, unknown values) is counted again at every poll
    assert again == replace(first, pages=again.pages)
    assert all(map(operator.is_, again.rows, first.rows))
    assert again.pages == first.pages


@pytest.mark.parametrize("changed", [0, 1, 2, 3])
def test_after_a_changed_page_the_rows_are_made_as_by_a_first_poll(changed: int) -> None:
    pages = _devices_in_pages()
    first = _poll(pages)
    pages[changed] = [*pages[changed][:2], device(id="d-new", name="New"), *pages[changed][3:]]
    pages[changed].append(device(id="d-0-0", name="a repeat of the first device"))
    assert _poll(pages, held=first) == _poll(pages)
