"""Failover to a standby DMS: the main (a real process) is killed with SIGKILL and comes back;
both members say standby; an overloaded main asks to retry later."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from conftest import samples, scrape, value

from dms_exporter.config import Config, config_from_mapping
from dms_exporter.errors import ConfigError
from dms_exporter.simulator import Simulator, start_simulator

SIM = ["--devices", "40", "--seed", "7", "--frozen"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def start_main(port: int) -> subprocess.Popen[bytes]:
    """The main DMS as its own process; returns once it answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "dms_exporter.simulator", *SIM,
         "--listen-address", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    async with aiohttp.ClientSession() as session:
        for _ in range(200):  # bounded: about 20 s
            try:
                async with session.get(f"http://127.0.0.1:{port}/_sim/state") as response:
                    if response.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError("the main simulator did not start")


async def eventually(check: Any, seconds: float) -> float:
    """Seconds until ``await check()`` is true; fails after ``seconds``."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() - started < seconds:
        if await check():
            return loop.time() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {seconds}s")


async def test_main_killed_then_back(start_exporter):
    port = free_port()
    main_url = f"http://127.0.0.1:{port}/dms-api/v1"
    main = await start_main(port)
    try:
        # the standby still says BACKUP: it is used because the main does not answer
        async with start_simulator(devices=40, seed=7, frozen=True, role="BACKUP") as standby:
            config = config_from_mapping({
                "dms": {"url": [main_url, standby.base_url], "username": standby.username,
                        "password": standby.password, "proxy": "direct", "timeout": "1s",
                        "failback_interval": "1s"},
                "defaults": {"interval": "2s"},
            }, "test.yml")  # fmt: skip
            client = await start_exporter(config)
            active = 'dms_exporter_dms_url_active{url="%s",main="%s"} 1'

            async def on(url: str, is_main: bool) -> bool:
                return active % (url, str(is_main).lower()) in await scrape(client)

            assert await on(main_url, True)
            assert standby.request_counts["devices"] == 0
            fewest = [len(samples(await scrape(client), "dms_device_info"))]

            async def watch() -> None:
                while True:
                    count = len(samples(await scrape(client), "dms_device_info"))
                    fewest[0] = min(fewest[0], count)
                    await asyncio.sleep(0.1)

            watcher = asyncio.create_task(watch())
            main.send_signal(signal.SIGKILL)
            main.wait(timeout=10)
            standby.reset_request_counts()

            async def serving_from_standby() -> bool:
                body = await scrape(client)
                return (
                    active % (standby.base_url, "false") in body
                    and standby.request_counts["devices"] > 0
                    and value(body, "dms_exporter_endpoint_up", endpoint="devices") == 1
                )

            took = await eventually(serving_from_standby, 10.0)
            assert took <= 2 * 2.0 + 1.0  # within two intervals (and a second of slack)
            body = await scrape(client)
            assert value(body, "dms_exporter_dms_url_reachable", url=main_url, main="true") == 0
            status = await (await client.get("/api/v1/endpoints")).json()
            dms = status.pop("dms")
            assert dms.pop("standby")[main_url] is False  # the main said PRIMARY at start
            assert dms == {
                "urls": [main_url, standby.base_url],
                "active_url": standby.base_url,
                "reachable": {main_url: False, standby.base_url: True},
            }

            main = await start_main(port)
            await eventually(lambda: on(main_url, True), 10.0)  # failback_interval is 1 s
            watcher.cancel()
            assert fewest[0] == 40  # no table emptied at any time
    finally:
        main.kill()
        main.wait(timeout=10)


def test_dms_url_may_be_a_list_with_the_main_first():
    def dms(url: Any) -> dict[str, Any]:
        return {"dms": {"url": url, "username": "u", "password": "p"}}

    config = config_from_mapping(dms(["https://a/v1/", "https://b/v1"]), "t.yml")
    assert (config.dms.url, config.dms.standby_urls) == ("https://a/v1", ("https://b/v1",))
    assert config_from_mapping(dms("https://a/v1"), "t.yml").dms.standby_urls == ()
    for bad, problem in (
        ([], "t.yml: dms.url: the list is empty"),
        (["https://a/v1", "https://a/v1/"], "t.yml: dms.url: lists a URL twice"),
        (["https://a/v1", "ftp://b"], "t.yml: dms.url.1: must be an http:// or https:// URL"),
    ):
        with pytest.raises(ConfigError) as caught:
            config_from_mapping(dms(bad), "t.yml")
        assert str(caught.value).startswith(problem)


def test_failover_hold_is_five_minutes_unless_set():
    def hold(**dms: Any) -> float:
        mapping = {"dms": {"url": "https://a/v1", "username": "u", "password": "p", **dms}}
        return config_from_mapping(mapping, "t.yml").dms.failover_hold

    assert hold() == 300
    assert hold(failover_hold="90s") == 90
    assert hold(failover_hold=0) == 0  # move at every standby answer, as before
    with pytest.raises(ConfigError) as caught:
        hold(failover_hold="soon")
    assert str(caught.value).startswith("t.yml: dms.failover_hold: must be a duration")


async def test_a_main_down_from_the_start_fails_over_at_the_first_login(start_exporter):
    with socket.socket() as closed:  # bound, not listening: refuses connections
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/dms-api/v1"
        async with start_simulator(devices=40, seed=7, frozen=True) as standby:
            config = config_from_mapping({
                "dms": {"url": [dead, standby.base_url], "username": standby.username,
                        "password": standby.password, "proxy": "direct"},
                "defaults": {"interval": "1s"},
            }, "test.yml")  # fmt: skip
            client = await start_exporter(config)

            async def serving() -> bool:
                body = await scrape(client)
                return len(samples(body, "dms_device_info")) == 40

            # one refused login moves it (not three, which the login backoff would spread out)
            assert await eventually(serving, 5.0) < 5.0
            body = await scrape(client)
            assert value(body, "dms_exporter_logins_total", result="unreachable") == 1
            assert value(body, "dms_exporter_dms_url_active", url=standby.base_url,
                         main="false") == 1  # fmt: skip


# --- both members standby, and an overloaded active member ----------------------------------

#: Only ``system`` and ``devices`` are polled, every half second.
FAST = {
    "defaults": {"interval": "500ms"},
    "endpoints": {
        name: {"enabled": False}
        for name in ("groups", "services", "authorization_sets", "schedule_authorizations",
                     "authorizations", "destinations", "alarms")
    },
}  # fmt: skip


def pair_config(main: Simulator, standby: Simulator, **dms: Any) -> Config:
    return config_from_mapping({
        "dms": {"url": [main.base_url, standby.base_url], "username": main.username,
                "password": main.password, "proxy": "direct", "timeout": "2s", **dms},
        **FAST,
    }, "test.yml")  # fmt: skip


@contextlib.asynccontextmanager
async def pair(main_role: str, standby_role: str) -> AsyncIterator[tuple[Simulator, Simulator]]:
    """Two members of one DMS (the same frozen data), reporting these roles."""
    async with (
        start_simulator(devices=40, seed=7, frozen=True, role=main_role) as main,
        start_simulator(devices=40, seed=7, frozen=True, role=standby_role) as standby,
    ):
        yield main, standby


def moves(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The moves between members the exporter logged, in order (``to_url`` of each)."""
    logged = ("DMS failover", "DMS failback")
    return [r.to_url for r in caplog.records if r.getMessage().startswith(logged)]


async def test_both_members_standby_do_not_make_the_exporter_move_at_every_poll(
    start_exporter, caplog
):
    caplog.set_level("INFO")
    async with pair("BACKUP", "BACKUP") as (main, standby):
        client = await start_exporter(pair_config(main, standby, failover_hold="1h"))

        async def system_polls(count: int) -> bool:
            return main.request_counts["system"] + standby.request_counts["system"] >= count

        await eventually(lambda: system_polls(12), 20.0)  # six seconds of polls or more
        assert len(moves(caplog)) <= 1, moves(caplog)  # main befc0fb: one move per system poll
        body = await scrape(client)
        assert value(body, "dms_exporter_endpoint_up", endpoint="devices") == 1  # data flows
        assert value(body, "dms_exporter_logins_total", result="success") <= 2
        # what the operator sees: the member it asked says standby
        assert value(body, "dms_exporter_dms_url_standby", url=main.base_url, main="true") == 1
        status = await (await client.get("/api/v1/endpoints")).json()
        assert status["dms"]["standby"][main.base_url] is True


async def test_after_the_hold_it_looks_again_and_finds_the_member_that_became_active(
    start_exporter, caplog
):
    caplog.set_level("INFO")
    async with pair("BACKUP", "BACKUP") as (main, standby):
        # failback_interval long: only the hold can bring it to the member that turns active
        client = await start_exporter(
            pair_config(main, standby, failover_hold="3s", failback_interval="1h")
        )

        async def asked_main() -> bool:
            return main.request_counts["system"] >= 1

        await eventually(asked_main, 10.0)
        active = 'dms_exporter_dms_url_active{url="%s",main="%s"} 1'
        body = await scrape(client)
        on_main = active % (main.base_url, "true") in body
        idle = standby if on_main else main  # the member it is not on turns active
        idle.set_role("PRIMARY")

        async def on_idle() -> bool:
            return active % (idle.base_url, str(idle is main).lower()) in await scrape(client)

        took = await eventually(on_idle, 15.0)
        assert took <= 3.0 + 3.0  # the hold, then a system poll or two
        count = len(moves(caplog))
        await asyncio.sleep(2.0)  # four more system polls: it stays on the active member
        assert len(moves(caplog)) == count and await on_idle()


@pytest.mark.parametrize("retry_after", [1, None], ids=["retry-after", "no-retry-after"])
async def test_an_overloaded_active_main_is_back_pressure_not_failure(
    start_exporter, caplog, retry_after
):
    """503 with Retry-After: the exporter waits as asked and stays on the main; without
    Retry-After a 503 is a failure like any other and it fails over to the standby."""
    caplog.set_level("INFO")
    async with pair("PRIMARY", "BACKUP") as (main, standby):
        client = await start_exporter(pair_config(main, standby, failback_interval="1h"))
        main.reset_request_counts()
        fault = {} if retry_after is None else {"retry_after": retry_after}
        main.add_fault(endpoint="*", kind="status", status=503, **fault)
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def moved() -> bool:
            return bool(moves(caplog))

        if retry_after is None:
            await eventually(moved, 10.0)
            assert moves(caplog) == [standby.base_url]
            return
        await asyncio.sleep(4.0)  # eight poll intervals of each endpoint
        elapsed = loop.time() - started
        assert moves(caplog) == []
        assert sum(standby.request_counts.values()) == 0
        asked = main.request_counts["system"] + main.request_counts["devices"]
        # each Retry-After holds every request back for a second: about one request of each
        # endpoint per second instead of two
        assert asked <= 2 * (elapsed / retry_after + 1), asked
        body = await scrape(client)
        assert value(body, "dms_exporter_dms_url_reachable", url=main.base_url,
                     main="true") == 1  # fmt: skip
        assert value(body, "dms_exporter_endpoint_up", endpoint="devices") == 0
        main.clear_faults()

        async def recovered() -> bool:
            return value(await scrape(client), "dms_exporter_endpoint_up", endpoint="devices") == 1

        await eventually(recovered, 10.0)
        assert moves(caplog) == []
