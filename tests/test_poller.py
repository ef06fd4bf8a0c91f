"""Polling keeps going whatever happens: render failures, reloads racing refreshes."""

from __future__ import annotations

import asyncio
import gc

import pytest
from conftest import exporter_config, samples, scrape

from dms_exporter.model import Alarm
from dms_exporter.polling import store
from dms_exporter.polling.poller import fill_asserted_times


async def test_a_render_failure_is_a_failed_poll_and_polling_goes_on(
    simulator, start_exporter, monkeypatch
):
    client = await start_exporter(exporter_config(simulator))
    good = samples(await scrape(client), "dms_destination_info")
    real_render = store.render_group

    def broken(group, *args):
        if group == "destinations":
            raise RuntimeError("a bug in a family")
        return real_render(group, *args)

    monkeypatch.setattr(store, "render_group", broken)
    simulator.set_destination(next(iter(simulator.world.destinations)), status="ERROR")
    response = await client.post("/-/refresh/destinations")
    assert response.status == 502
    assert (await response.json())["last_result"] == "payload"
    assert samples(await scrape(client), "dms_destination_info") == good  # last good kept

    monkeypatch.setattr(store, "render_group", real_render)
    assert (await client.post("/-/refresh/destinations")).status == 200
    assert (await client.post("/-/refresh/devices")).status == 200  # other loops unharmed


async def test_reload_while_a_refresh_is_in_flight_still_answers(
    simulator, start_exporter, tmp_path
):
    config_file = tmp_path / "dms.yml"
    config_file.write_text(
        f"dms: {{url: '{simulator.base_url}', username: {simulator.username},"
        f" password: {simulator.password}, proxy: direct}}\nrefresh_min_gap: 0\n"
    )
    from dms_exporter.config import load_config

    client = await start_exporter(load_config(str(config_file)), config_file=str(config_file))
    simulator.add_fault(endpoint="groups", kind="latency", seconds=1.0, count=1)
    refresh = asyncio.create_task(client.post("/-/refresh/groups"))
    await asyncio.sleep(0.2)
    # a new path for groups: the reload replaces its poller, cancelling the poll in flight
    with config_file.open("a") as f:
        f.write("endpoints: {groups: {params: {view: all}}}\n")
    assert (await client.post("/-/reload")).status == 200
    response = await asyncio.wait_for(refresh, timeout=10)
    # the refresh answers with the endpoint's status: still the good first poll, not an error
    assert response.status == 200
    answer = await response.json()
    assert (answer["endpoint"], answer["up"], answer["last_result"]) == ("groups", True, "ok")


def alarm(alarm_id: str, asserted: float | None) -> Alarm:
    return Alarm(alarm_id, "dev-1", "device", "Input 1", "SIGNAL_LOSS", "", "major", "active",
                 asserted, None, False)  # fmt: skip


def test_an_alarm_without_asserted_time_keeps_its_first_seen_time():
    rows, seen = fill_asserted_times((alarm("a", None), alarm("b", 50.0)), {}, now=100.0)
    assert [r.asserted_time for r in rows] == [100.0, 50.0]
    rows, seen = fill_asserted_times((alarm("a", None), alarm("c", None)), seen, now=160.0)
    assert [r.asserted_time for r in rows] == [100.0, 160.0]
    assert seen == {"a": 100.0, "c": 160.0}  # cleared alarms are forgotten


async def test_a_failed_render_changes_no_group(simulator, start_exporter, monkeypatch):
    client = await start_exporter(exporter_config(simulator))
    real_render = store.render_group

    def alarms_broken(group, *args):
        if group == "alarms":
            raise RuntimeError("a bug in the alarm families")
        return real_render(group, *args)

    monkeypatch.setattr(store, "render_group", alarms_broken)
    simulator.set_device("dev-000001", connectionState="OFFLINE")
    assert (await client.post("/-/refresh/devices")).status == 502
    body = await scrape(client)  # devices feeds four groups; none may show the rejected table
    assert samples(
        body, "dms_device_connection_state", device_id="dev-000001",
        dms_device_connection_state="offline",
    )[0][1] == 0  # fmt: skip


async def test_stop_ends_a_poller_woken_at_the_same_moment(simulator):
    from dms_exporter.dms import DmsClient
    from dms_exporter.polling.poller import EndpointPoller

    config = exporter_config(simulator)
    poller_store = store.Store(config)
    async with DmsClient(config.dms) as client:
        poller = EndpointPoller(config.endpoints["system"], client, poller_store)
        poller.start()
        for _ in range(100):  # bounded: until the first poll is done and the loop waits
            if poller_store.status("system").last_poll is not None:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        poller._wake.set()  # as a refresh finishing in the same loop step as the stop
        stopping = asyncio.ensure_future(poller.stop())
        done, _ = await asyncio.wait([stopping], timeout=5)
        assert done, "stop() did not end: the poll loop swallowed its cancel"


async def test_polls_start_every_interval_however_long_they_take(simulator, start_exporter):
    # start to start: 0.3s polls every 0.5s make 11 polls in 5.2s (end to start would make 7)
    fast = {"interval": "500ms", "timeout": "450ms"}
    config = exporter_config(simulator, endpoints={"alarms": fast})
    await start_exporter(config)
    simulator.reset_request_counts()
    simulator.add_fault(endpoint="alarms", kind="latency", seconds=0.3)
    await asyncio.sleep(5.2)
    assert simulator.request_counts["alarms"] >= 9


@pytest.mark.parametrize("dms", ["answering", "failing"])
async def test_a_burst_of_refreshes_polls_at_most_once_per_gap(simulator, start_exporter, dms):
    """Five clients pressing refresh in a loop for 4 s with a 1 s gap: over the time from the
    first press to the last answer the DMS gets at most ``duration / gap + 1`` polls of the
    endpoint, whether its polls succeed or fail, and every refresh is answered with a status
    (never refused)."""
    gap, seconds = 1.0, 4.0
    client = await start_exporter(exporter_config(simulator, refresh_min_gap=f"{gap:g}s"))
    if dms == "failing":
        simulator.add_fault(endpoint="devices", kind="status", status=500)
    loop = asyncio.get_running_loop()
    await asyncio.sleep(gap)  # the start-up poll's gap is over: the burst starts clean
    polls_before = simulator.request_counts["devices"]
    codes: list[int] = []
    started = loop.time()
    end = started + seconds

    async def press() -> None:
        while loop.time() < end and len(codes) < 5000:  # bounded in time and count
            response = await client.post("/-/refresh/devices")
            codes.append(response.status)
            await response.read()
            await asyncio.sleep(0.01)

    await asyncio.gather(*(press() for _ in range(5)))
    duration = loop.time() - started
    polls = simulator.request_counts["devices"] - polls_before
    assert 2 <= polls <= duration / gap + 1, (polls, duration)
    assert len(codes) >= 10
    assert set(codes) == ({200} if dms == "answering" else {502})


async def test_concurrent_refreshes_join_the_poll_in_flight(simulator, start_exporter):
    client = await start_exporter(exporter_config(simulator, refresh_min_gap="1s"))
    simulator.reset_request_counts()
    simulator.add_fault(endpoint="alarms", kind="latency", seconds=0.5, count=1)
    await asyncio.sleep(1.1)  # past the gap after the first poll: one refresh may poll
    responses = await asyncio.gather(*(client.post("/-/refresh/alarms") for _ in range(5)))
    assert [r.status for r in responses] == [200] * 5  # one poll, the others joined it
    assert simulator.request_counts["alarms"] == 1
    # and now the gap holds: the next refresh answers with that poll
    response = await client.post("/-/refresh/alarms")
    assert response.status == 200 and not (await response.json())["refreshed"]
    assert simulator.request_counts["alarms"] == 1


async def test_first_polls_pause_the_collector_then_only_big_ones_do(
    simulator, start_exporter, monkeypatch
):
    """At start nothing is held, so no table's size is known: every first poll runs with the
    collector paused (a start at 100,000 devices spent about a second in full collections);
    after it, a poll of a small table runs with it on."""
    from dms_exporter.polling import poller

    paused: dict[str, list[bool]] = {}
    real_feed = poller.Parser.feed

    def feed(self, items, digest=None):
        paused.setdefault(self.endpoint, []).append(not gc.isenabled())
        return real_feed(self, items, digest)

    monkeypatch.setattr(poller.Parser, "feed", feed)
    client = await start_exporter(exporter_config(simulator))
    assert paused["devices"] and all(flag for flags in paused.values() for flag in flags)
    paused.clear()
    simulator.set_device("dev-000001", connectionState="OFFLINE")  # a page comes back changed
    assert (await client.post("/-/refresh/devices")).status == 200
    assert paused["devices"] and not any(paused["devices"]) and gc.isenabled()


async def test_big_polls_pause_the_collector_and_always_restore_it(
    simulator, start_exporter, monkeypatch
):
    """A big poll runs with the cyclic garbage collector off (it only costs CPU there); after
    it, applied or failed, and with polls overlapping, the collector is on again."""
    from dms_exporter import heap
    from dms_exporter.polling import poller

    monkeypatch.setattr(poller, "PAUSE_COLLECTOR_ROWS", 1)  # every endpoint is big here
    paused = []
    real_feed = poller.Parser.feed

    def feed(self, items, digest=None):
        paused.append(not gc.isenabled())
        return real_feed(self, items, digest)

    monkeypatch.setattr(poller.Parser, "feed", feed)
    client = await start_exporter(exporter_config(simulator))
    assert gc.isenabled()
    paused.clear()
    simulator.set_device("dev-000001", connectionState="OFFLINE")
    refreshes = [client.post(f"/-/refresh/{name}") for name in ("devices", "alarms", "groups")]
    assert [r.status for r in await asyncio.gather(*refreshes)] == [200, 200, 200]
    assert paused and all(paused) and gc.isenabled()
    simulator.add_fault(endpoint="devices", kind="status", status=500, count=1)
    assert (await client.post("/-/refresh/devices")).status == 502
    assert gc.isenabled()
    gc.disable()  # switched off by someone else: a pause does not switch it on
    try:
        with heap.collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


async def test_alarms_sent_without_asserted_time_keep_it_through_unchanged_polls(
    simulator, start_exporter
):
    """The time an alarm without ``assertedTime`` was first seen is its series' value for as
    long as it is active, also after polls that found every page as it was."""
    simulator.add_fault(endpoint="alarms", kind="missing_fields", fields=["assertedTime"])
    client = await start_exporter(exporter_config(simulator))
    name = "dms_alarm_asserted_timestamp_seconds"
    first = {s[0]["alarm_id"]: s[1] for s in samples(await scrape(client), name)}
    assert first
    await asyncio.sleep(0.05)  # a later poll's clock differs
    assert (await client.post("/-/refresh/alarms")).status == 200  # every page the same
    simulator.raise_alarm(device_id="dev-000001", severity="MINOR")  # now a page differs
    assert (await client.post("/-/refresh/alarms")).status == 200
    after = {s[0]["alarm_id"]: s[1] for s in samples(await scrape(client), name)}
    assert len(after) == len(first) + 1
    assert {i: after[i] for i in first} == first
