"""``POST /-/refresh/<endpoint>`` within ``refresh_min_gap``: never a refusal, never more polls of
the DMS than the gap allows (the real simulator counts them)."""

from __future__ import annotations

import asyncio
import re

from conftest import exporter_config

#: Endpoints switched off, so only ``system`` and ``devices`` run in these tests.
QUIET = {
    name: {"enabled": False}
    for name in ("groups", "services", "authorization_sets", "schedule_authorizations",
                 "authorizations", "destinations", "alarms")
}  # fmt: skip


async def test_a_refresh_soon_after_a_good_poll_answers_that_poll(simulator, start_exporter):
    client = await start_exporter(
        exporter_config(simulator, endpoints=QUIET, refresh_min_gap="30s")
    )
    polls = simulator.request_counts["devices"]
    response = await client.post("/-/refresh/devices")
    assert response.status == 200
    answer = await response.json()
    assert answer["up"] and answer["rows"] == 40
    assert answer["refreshed"] is False
    assert 0 <= answer["polled_ago"] < 30
    assert 0 < answer["refresh_polls_in"] <= 30
    assert answer["message"].startswith(f"polled {round(answer['polled_ago'])} s ago")
    assert simulator.request_counts["devices"] == polls  # the DMS was not asked again


async def test_a_refresh_after_a_failed_poll_waits_for_the_gap_then_polls(
    simulator, start_exporter
):
    client = await start_exporter(exporter_config(simulator, endpoints=QUIET, refresh_min_gap="1s"))
    loop = asyncio.get_running_loop()
    simulator.add_fault(endpoint="devices", kind="status", status=500, count=1)
    deadline = loop.time() + 10
    while True:  # the first refresh after the start-up poll's gap meets the fault
        response = await client.post("/-/refresh/devices")
        answer = await response.json()
        if answer["refreshed"]:
            break
        assert loop.time() < deadline, "no refresh polled within 10 s"
        await asyncio.sleep(0.1)
    assert response.status == 502 and answer["last_result"] == "unavailable"
    polls = simulator.request_counts["devices"]
    started = loop.time()
    response = await client.post("/-/refresh/devices")  # the last poll failed a moment ago
    waited = loop.time() - started
    answer = await response.json()
    assert response.status == 200, answer
    assert answer["refreshed"] is True and answer["up"]
    assert answer["polled_ago"] < 1
    assert simulator.request_counts["devices"] == polls + 1
    assert waited >= 0.5  # it waited for the rest of the 1 s gap before polling


async def test_a_refresh_does_not_wait_out_a_long_retry_after(simulator, start_exporter):
    """The DMS asked for a minute's pause: a refresh answers the failed poll at once (502 with
    ``Retry-After``) instead of hanging the operator's request, and asks the DMS nothing."""
    client = await start_exporter(exporter_config(simulator, endpoints=QUIET))  # gap 0
    simulator.add_fault(endpoint="devices", kind="status", status=429, retry_after=60, count=1)
    response = await client.post("/-/refresh/devices")
    assert response.status == 502 and (await response.json())["refreshed"] is True
    polls = simulator.request_counts["devices"]
    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await client.post("/-/refresh/devices")
    assert loop.time() - started < 5
    answer = await response.json()
    assert response.status == 502 and answer["refreshed"] is False
    assert 50 <= int(response.headers["Retry-After"]) <= 60
    assert re.match(r"polled \d+ s ago; the DMS asked to wait \(Retry-After\)", answer["message"])
    assert simulator.request_counts["devices"] == polls
