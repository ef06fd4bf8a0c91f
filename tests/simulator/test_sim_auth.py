"""Both auth styles: token login with expiry and revocation, and HTTP Basic on every call."""

from __future__ import annotations

import aiohttp
from sim_client import DATA_PATHS, TIMEOUT, Dms, basic_header

from dms_exporter.simulator import start_simulator


async def test_token_login_and_every_refusal() -> None:
    async with (
        start_simulator(devices=20, frozen=True, token_ttl=600) as sim,
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
    ):
        dms = Dms(sim, session)
        good = await dms.login()
        assert good.status == 200 and set(good.json) == {"token", "expiresIn"}
        assert good.json["expiresIn"] == 600 and len(good.json["token"]) >= 16
        for path in DATA_PATHS:
            assert (await dms.get(path)).status == 200, path

        wrong = await dms.login(password="guess")
        assert wrong.status == 401 and wrong.error_code() == "INVALID_CREDENTIALS"
        assert (await dms.login(username="admin")).status == 401
        async with session.post(sim.base_url + "/auth/login", data=b"not json") as resp:
            assert resp.status == 400
        async with session.post(sim.base_url + "/auth/login", json=["monitor"]) as resp:
            assert resp.status == 400

        refusals = {
            "AUTHENTICATION_REQUIRED": {},
            "INVALID_TOKEN": {"Authorization": "Bearer not-a-token"},
        }
        basic = basic_header(sim.username, sim.password)
        refusals["AUTHENTICATION_REQUIRED "] = {"Authorization": basic}  # Basic in token mode
        for code, headers in refusals.items():
            reply = await dms.get("/devices", headers=headers)
            assert reply.status == 401 and reply.error_code() == code.strip()
        assert sim.request_counts["login"] == 5


async def test_tokens_expire_with_the_clock_and_on_demand() -> None:
    async with (
        start_simulator(devices=20, frozen=True, token_ttl=600) as sim,
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
    ):
        dms = Dms(sim, session)
        await dms.login()
        sim.advance_clock(599)
        assert (await dms.get("/groups")).status == 200
        sim.advance_clock(1)
        expired = await dms.get("/groups")
        assert expired.status == 401 and expired.error_code() == "TOKEN_EXPIRED"

        await dms.login()
        assert (await dms.get("/groups")).status == 200
        assert sim.expire_tokens() == 2
        reply = await dms.get("/groups")
        assert reply.status == 401 and reply.error_code() == "TOKEN_EXPIRED"

        await dms.login()
        assert sim.revoke_tokens() >= 1
        reply = await dms.get("/groups")
        assert reply.status == 401 and reply.error_code() == "TOKEN_REVOKED"
        await dms.login()  # a fresh login works again
        assert (await dms.get("/groups")).status == 200

        # the same through the control API
        assert (await dms.control("POST", "/tokens/expire")).json == {"expired": 1}
        assert (await dms.get("/groups")).error_code() == "TOKEN_EXPIRED"
        await dms.login()
        assert (await dms.control("POST", "/tokens/revoke")).json["revoked"] >= 1
        assert (await dms.get("/groups")).error_code() == "TOKEN_REVOKED"


async def test_basic_auth_on_every_call() -> None:
    async with (
        start_simulator(
            devices=20, frozen=True, auth="basic", username="ops", password="s3cret:with:colons"
        ) as sim,
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
    ):
        dms = Dms(sim, session)
        for path in DATA_PATHS:
            assert (await dms.get(path)).status == 200, path
        for headers in (
            {},
            {"Authorization": basic_header("ops", "wrong")},
            {"Authorization": "Basic !!!not-base64"},
            {"Authorization": "Bearer something"},
        ):
            reply = await dms.get("/devices", headers=headers)
            assert reply.status == 401, headers
            assert reply.headers["WWW-Authenticate"].startswith("Basic")
            assert reply.error_code() in ("AUTHENTICATION_REQUIRED", "INVALID_CREDENTIALS")
        login = await dms.login()
        assert login.status == 404 and login.error_code() == "NOT_FOUND"
