"""The login: one at a time for every poller, its own timeout, a backoff after failures."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from conftest import exporter_config, value, wait_until_ready

from dms_exporter.dms import DmsClient
from dms_exporter.errors import DmsAuthError, DmsConnectionError, DmsUnavailableError
from dms_exporter.model import ENDPOINT_DEFAULTS
from dms_exporter.web.app import EXPORTER_KEY


class FakeClock:
    """Unix time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_wrong_password_for_ten_minutes_makes_at_most_six_logins(simulator):
    config = exporter_config(simulator)
    wrong = dataclasses.replace(config.dms, password="not-the-password")  # default backoff
    clock = FakeClock()
    simulator.reset_request_counts()
    async with DmsClient(wrong, clock=clock) as client:
        for _ in range(600):  # ten minutes, a second at a time: every endpoint polls each
            for endpoint in config.endpoints.values():
                with pytest.raises(DmsAuthError):
                    await client.fetch(endpoint)
            clock.now += 1.0
        counts = client.logins
    attempts = simulator.request_counts["login"]
    assert 4 <= attempts <= 6  # 0, 30, 90, 210, 450 s (jittered): backed off, not given up
    assert counts == {"success": 0, "refused": attempts, "unreachable": 0, "error": 0}


async def test_a_dms_refusing_every_call_after_login_gets_at_most_six_logins_in_ten_minutes(
    simulator, caplog
):
    # the login answers 200 with a token, every call then gets 401 (a revoked role, another
    # tenant): each endpoint polled at its default interval for ten minutes of fake time
    simulator.add_fault(endpoint="*", kind="revoke_token")
    config = exporter_config(simulator)
    clock = FakeClock()
    simulator.reset_request_counts()
    async with DmsClient(config.dms, clock=clock) as client:
        for second in range(600):
            for name, endpoint in config.endpoints.items():
                if second % ENDPOINT_DEFAULTS[name][1] == 0:
                    with pytest.raises(DmsAuthError, match="right after a successful login"):
                        await client.fetch(endpoint)
            clock.now += 1.0
        state = client._login.state
    attempts = simulator.request_counts["login"]
    assert 4 <= attempts <= 6  # 0, 30, 90, 210, 450 s (jittered), as for a wrong password
    assert state.last_result == "refused" and state.refusals == attempts
    refusals = [r for r in caplog.records if "refused the calls" in r.getMessage()]
    assert [r.levelname for r in refusals if r.levelname == "WARNING"] == ["WARNING"]


async def test_one_endpoint_refused_after_login_leaves_the_others_polling(simulator):
    # the role may read everything but alarms, which answers 401: the other endpoints keep
    # the token, and alarms' polls do not log in again within the backoff
    config = exporter_config(simulator)
    clock = FakeClock()
    simulator.reset_request_counts()
    async with DmsClient(config.dms, clock=clock) as client:
        assert await client.fetch(config.endpoints["devices"])
        simulator.add_fault(endpoint="alarms", kind="status", status=401)
        with pytest.raises(DmsAuthError, match="right after a successful login"):
            await client.fetch(config.endpoints["alarms"])  # 401, a new login, 401 again
        for _ in range(10):  # within the backoff: no login for alarms' polls
            with pytest.raises(DmsAuthError, match="backoff ends"):
                await client.fetch(config.endpoints["alarms"])
            assert await client.fetch(config.endpoints["devices"])
            clock.now += 2.0
    assert simulator.request_counts["login"] == 2


async def test_the_backoff_doubles_after_refusals_and_not_after_outages(simulator):
    config = exporter_config(simulator)
    endpoint = config.endpoints["system"]
    clock = FakeClock()
    wrong = dataclasses.replace(config.dms, password="wrong")
    async with DmsClient(wrong, clock=clock) as client:
        for expected_wait in (30, 60, 120, 240, 480, 900, 900):
            with pytest.raises(DmsAuthError):
                await client.fetch(endpoint)
            wait = client._login.state.next_attempt - clock.now
            assert expected_wait * 0.9 <= wait <= expected_wait
            clock.now += wait
    closed = dataclasses.replace(config.dms, url="http://127.0.0.1:9/dms-api/v1")
    async with DmsClient(closed, clock=clock) as client:
        for _ in range(3):
            with pytest.raises(DmsConnectionError):
                await client.fetch(endpoint)
            wait = client._login.state.next_attempt - clock.now
            assert 27 <= wait <= 30  # an outage does not double the backoff
            with pytest.raises(DmsConnectionError, match="backoff ends"):
                await client.fetch(endpoint)  # within the backoff: no attempt, same reason
            clock.now += wait
        assert client.logins == {"success": 0, "refused": 0, "unreachable": 3, "error": 0}


async def test_a_login_error_is_counted_apart_from_a_refusal(simulator):
    config = exporter_config(simulator)
    simulator.add_fault(endpoint="login", kind="status", status=500, count=1)
    clock = FakeClock()
    async with DmsClient(config.dms, clock=clock) as client:
        with pytest.raises(DmsUnavailableError):
            await client.fetch(config.endpoints["system"])
        clock.now += 31
        simulator.add_fault(endpoint="login", kind="status", status=400, count=1,
                            code="INVALID_CREDENTIALS")  # fmt: skip
        with pytest.raises(DmsAuthError, match="INVALID_CREDENTIALS"):
            await client.fetch(config.endpoints["system"])  # the DMS's own "bad credentials"
        clock.now += 31
        assert await client.fetch(config.endpoints["system"])
        assert client.logins == {"success": 1, "refused": 1, "unreachable": 0, "error": 1}


async def test_a_login_slower_than_every_poll_timeout_completes_once(simulator, start_exporter):
    # the login takes 3 s; polls give up after 1 s or 2 s; the login is not cancelled with
    # them, and every endpoint recovers with its one token
    endpoints = {name: {"interval": "1500ms", "timeout": "1s"} for name in ("system", "alarms")}
    config = exporter_config(
        simulator, defaults={"interval": "3s", "timeout": "2s"}, endpoints=endpoints
    )
    simulator.add_fault(endpoint="login", kind="latency", seconds=3.0)
    simulator.reset_request_counts()
    client = await start_exporter(config, wait_ready=False)
    await wait_until_ready(client, timeout=20)
    for _ in range(200):  # bounded: until every endpoint has succeeded
        body = await (await client.get("/api/v1/endpoints")).json()
        if all(e["up"] for e in body["endpoints"]):
            break
        await asyncio.sleep(0.1)
    assert all(e["up"] for e in body["endpoints"]), body
    assert simulator.request_counts["login"] == 1
    assert body["login"]["logins_total"]["success"] == 1


async def test_refusals_show_in_metrics_and_a_credentials_change_ends_the_backoff(
    simulator, start_exporter
):
    config = exporter_config(simulator)
    wrong = dataclasses.replace(config.dms, password="wrong")
    client = await start_exporter(dataclasses.replace(config, dms=wrong))
    exporter = client.server.app[EXPORTER_KEY]
    body = await (await client.get("/metrics")).text()
    assert value(body, "dms_exporter_logins_total", result="refused") == 1  # nine endpoints
    assert value(body, "dms_exporter_logins_total", result="unreachable") == 0
    assert value(body, "dms_exporter_login_next_attempt_timestamp_seconds") > 0
    status = await (await client.get("/api/v1/endpoints")).json()
    assert status["login"]["last_result"] == "refused" and status["login"]["next_attempt"]
    assert {e["last_result"] for e in status["endpoints"]} == {"auth"}

    await exporter.apply_config(config)  # the right password: a new login at once
    for _ in range(100):  # bounded: until the new pollers have polled
        if (await client.get("/-/ready")).status == 200 and exporter.store.status("devices").up:
            break
        await asyncio.sleep(0.05)
    body = await (await client.get("/metrics")).text()
    assert value(body, "dms_exporter_logins_total", result="success") == 1
    assert value(body, "dms_exporter_logins_total", result="refused") == 1  # kept
    assert value(body, "dms_exporter_login_next_attempt_timestamp_seconds") == 0


async def test_a_login_answer_without_its_expiry_is_logged_once(simulator, caplog):
    # the token is kept until a call is refused: one warning line naming the key, not one per
    # login
    simulator.add_fault(endpoint="login", kind="missing_fields", fields=["expiresIn"])
    config = exporter_config(simulator)
    simulator.reset_request_counts()
    async with DmsClient(config.dms) as client:
        assert await client.fetch(config.endpoints["devices"])
        simulator.expire_tokens()  # a 401 to a token that worked: a second login
        assert await client.fetch(config.endpoints["devices"])
        assert client.login_warning.startswith(
            "the login answer has no expiry at 'expiresIn' (dms.login.expiry_path"
        )
    assert simulator.request_counts["login"] == 2
    lines = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [r.getMessage() for r in lines] == ["DMS login answer without its expiry"]
    assert "login.expiry: none" in lines[0].detail
