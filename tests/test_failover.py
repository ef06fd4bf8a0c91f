"""Failover to a standby DMS: the main (a real process) is killed with SIGKILL and comes back."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from typing import Any

import aiohttp
import pytest
from conftest import samples, scrape, value

from dms_exporter.config import config_from_mapping
from dms_exporter.errors import ConfigError
from dms_exporter.simulator import start_simulator

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
            assert status["dms"] == {
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
