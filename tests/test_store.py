"""The store on its own: health per poll, pending before the first poll, readiness, old data
kept marked stale, dropped and back, config changes, and the scrape body it assembles."""

from __future__ import annotations

import gzip

import pytest
from conftest import samples, value

from dms_exporter.config import config_from_mapping
from dms_exporter.model import ENDPOINTS, SystemInfo, Table
from dms_exporter.polling.store import Store

DMS = {"url": "http://127.0.0.1:9/dms-api/v1", "username": "u", "password": "secret-pw"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def make_store(clock: Clock, **top: object) -> Store:
    return Store(config_from_mapping({"dms": DMS, **top}, "test.yml"), clock=clock)


def system_table(at: float, name: str = "DMS-PRIMARY") -> Table:
    return Table("system", (SystemInfo(name, "11.4.0.0", "primary", at, 864000.0, 25000),), at)


def body(store: Store, **names: object) -> str:
    exposition = store.exposition(openmetrics=False, gzipped=True, **names)  # type: ignore[arg-type]
    return gzip.decompress(b"".join(exposition.parts)).decode()


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_pending_until_the_first_poll_then_up_or_down(clock):
    store = make_store(clock)
    await store.render(["system"])
    text = body(store)
    assert not samples(text, "dms_up")
    assert not samples(text, "dms_exporter_endpoint_up")
    assert {s.last_result for s in store.statuses()} == {"pending"}
    assert not store.ready

    await store.record_success("system", system_table(clock.now), changed=True, duration=0.1)
    store.record_failure("devices", reason="timeout", message="slow", duration=8.0)
    text = body(store)
    assert value(text, "dms_up") == 1
    assert value(text, "dms_exporter_endpoint_up", endpoint="system") == 1
    assert value(text, "dms_exporter_endpoint_up", endpoint="devices") == 0
    assert value(text, "dms_exporter_endpoint_errors_total", endpoint="devices", reason="timeout")
    assert not samples(text, "dms_exporter_endpoint_up", endpoint="alarms")  # still pending
    [(labels, one)] = samples(text, "dms_info")
    assert (labels["name"], labels["version"], labels["role"], one) == (
        "DMS-PRIMARY",
        "11.4.0.0",
        "primary",
        1,
    )
    assert not store.ready


async def test_ready_once_every_enabled_endpoint_polled_even_if_it_failed(clock):
    store = make_store(clock, endpoints={"groups": {"enabled": False}})
    await store.render(["system"])
    for name in ENDPOINTS:
        if name != "groups":
            assert not store.ready
            store.record_failure(name, reason="connection", message="refused", duration=0.01)
    assert store.ready
    assert store.status("groups").last_result == "disabled"
    assert store.dms_up is False


async def test_old_data_stays_marked_stale_until_drop_after_then_comes_back(clock):
    store = make_store(
        clock,
        endpoints={"system": {"interval": "10s", "stale_after": "30s", "drop_after": "1h"}},
    )
    await store.record_success("system", system_table(clock.now), changed=True, duration=0.1)
    store.record_failure("system", reason="connection", message="refused", duration=0.1)
    clock.now += 31
    await store.expire_stale()
    text = body(store)
    assert samples(text, "dms_info")  # the last good data is still shown, marked old
    assert value(text, "dms_exporter_endpoint_stale", endpoint="system") == 1
    assert value(text, "dms_exporter_endpoint_data_age_seconds", endpoint="system") == 31
    assert value(text, "dms_exporter_endpoint_rows", endpoint="system") == 1
    assert (
        value(
            text,
            "dms_exporter_endpoint_last_poll_result",
            endpoint="system",
            dms_exporter_endpoint_last_poll_result="connection",
        )
        == 1
    )
    clock.now += 3600
    await store.expire_stale()
    text = body(store)
    assert not samples(text, "dms_info")  # past drop_after: dropped
    assert value(text, "dms_exporter_endpoint_stale", endpoint="system") == 1
    assert value(text, "dms_exporter_endpoint_rows", endpoint="system") == 0
    assert not samples(text, "dms_exporter_endpoint_data_age_seconds", endpoint="system")
    # the same data again: not changed, but the dropped series must come back
    await store.record_success("system", system_table(clock.now), changed=False, duration=0.1)
    text = body(store)
    assert samples(text, "dms_info")
    assert value(text, "dms_exporter_endpoint_stale", endpoint="system") == 0
    assert value(text, "dms_exporter_endpoint_data_age_seconds", endpoint="system") == 0


async def test_never_dropped_with_drop_after_never(clock):
    store = make_store(clock, endpoints={"system": {"drop_after": "never"}})
    await store.record_success("system", system_table(clock.now), changed=True, duration=0.1)
    clock.now += 300 * 86400
    await store.expire_stale()
    text = body(store)
    assert samples(text, "dms_info")
    assert value(text, "dms_exporter_endpoint_stale", endpoint="system") == 1


async def test_disabling_an_endpoint_drops_its_table_and_renders(clock):
    store = make_store(clock)
    await store.record_success("system", system_table(clock.now), changed=True, duration=0.1)
    groups = store.apply_config(
        config_from_mapping({"dms": DMS, "endpoints": {"system": {"enabled": False}}}, "t.yml")
    )
    assert "system" in groups
    await store.render(groups)
    text = body(store)
    assert not samples(text, "dms_info")
    assert value(text, "dms_exporter_endpoint_enabled", endpoint="system") == 0
    assert store.status("system").last_result == "disabled"


async def test_names_pick_families_from_cache_and_tail(clock):
    store = make_store(clock)
    await store.record_success("system", system_table(clock.now), changed=True, duration=0.1)
    text = body(store, names=frozenset({"dms_info", "dms_exporter_endpoint_polls_total"}))
    types = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert types == ["dms_info", "dms_exporter_endpoint_polls_total"]


async def test_plain_and_gzip_bodies_agree_and_lengths_are_exact(clock):
    store = make_store(clock)
    await store.record_success("system", system_table(clock.now), changed=True, duration=0.1)
    for openmetrics in (False, True):
        zipped = store.exposition(openmetrics=openmetrics, gzipped=True)
        assert zipped.content_length == sum(map(len, zipped.parts))
        text = gzip.decompress(b"".join(zipped.parts)).decode()
        assert text.endswith("# EOF\n") is openmetrics
        plain = store.exposition(openmetrics=openmetrics, gzipped=False)
        assert plain.inflate
        assert "dms_info{" in text
    assert "secret-pw" not in body(store)


async def test_every_scrape_shows_the_state_and_ages_of_that_moment(clock):
    """The health block is kept rendered between changes: each change, by whichever writer,
    shows at the next scrape, in both formats, and the data ages follow the clock."""
    store = make_store(clock)
    start = clock.now
    store.links.urls, store.links.active = ("http://a/v1", "http://b/v1"), "http://a/v1"
    await store.record_success("system", system_table(clock.now), changed=True, duration=0.1)

    def both() -> list[str]:
        """The text body, and the OpenMetrics one's sample lines (the same in both formats)."""
        om = store.exposition(openmetrics=True, gzipped=True)
        text = gzip.decompress(b"".join(om.parts)).decode()
        assert text.endswith("# EOF\n")
        return [body(store), "".join(line for line in text.splitlines(True) if line[0] != "#")]

    for text in both():
        assert value(text, "dms_exporter_endpoint_data_age_seconds", endpoint="system") == 0
        assert value(text, "dms_exporter_endpoint_polls_total", endpoint="system") == 1
    for age in (7, 45.5):  # the clock alone moves
        clock.now = start + age
        for text in both():
            assert value(text, "dms_exporter_endpoint_data_age_seconds", endpoint="system") == age
            assert value(text, "dms_exporter_endpoint_polls_total", endpoint="system") == 1

    store.record_failure("system", reason="timeout", message="slow", duration=8.0)
    text = body(store)
    assert value(text, "dms_exporter_endpoint_up", endpoint="system") == 0
    assert value(text, "dms_exporter_endpoint_errors_total", endpoint="system", reason="timeout")
    assert value(text, "dms_exporter_endpoint_polls_total", endpoint="system") == 2

    def refused() -> None:  # the DMS client writes these in place
        store.login.counts["refused"] += 1

    def failed_over() -> None:
        store.links.active = "http://b/v1"

    def unreachable() -> None:
        store.links.reachable["http://a/v1"] = False

    def reload_failed() -> None:
        store.config_reload_ok = False

    for change, name, labels, shown in (
        (refused, "dms_exporter_logins_total", {"result": "refused"}, 1),
        (failed_over, "dms_exporter_dms_url_active", {"url": "http://b/v1", "main": "false"}, 1),
        (unreachable, "dms_exporter_dms_url_reachable", {"url": "http://a/v1"}, 0),
        (reload_failed, "dms_exporter_config_last_reload_successful", {}, 0),
    ):
        assert all([v for _, v in samples(text, name, **labels)] != [shown] for text in both())
        change()  # one at a time: each alone must show at the next scrape
        for text in both():
            assert value(text, name, **labels) == shown

    before = value(body(store), "dms_exporter_render_duration_seconds", group="system")
    await store.render(["system"])  # a render alone (as after a config reload)
    for text in both():
        assert value(text, "dms_exporter_render_duration_seconds", group="system") != before
