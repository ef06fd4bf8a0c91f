"""A tiny DMS client for the simulator tests (independent of the exporter's client)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from dms_exporter.simulator import Simulator

#: Every data path of the API, in the order of docs/dms-api.md.
TIMEOUT = aiohttp.ClientTimeout(total=10)
DATA_PATHS = (
    "/system/info",
    "/devices",
    "/groups",
    "/services",
    "/authorization-sets",
    "/schedule-authorizations",
    "/authorizations",
    "/destinations",
    "/alarms",
)


def basic_header(username: str, password: str) -> str:
    """An HTTP Basic ``Authorization`` value."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class Reply:
    """Status, headers and body of one response; ``json`` is None when the body is not JSON."""

    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body
        try:
            self.json: Any = json.loads(body)
        except ValueError:
            self.json = None

    def error_code(self) -> str:
        """The ``error.code`` of an error body (asserting the documented shape)."""
        assert isinstance(self.json, dict) and set(self.json) == {"error"}, self.body[:200]
        error = self.json["error"]
        assert set(error) == {"code", "message"} and error["code"].isupper(), error
        assert isinstance(error["message"], str) and error["message"]
        return error["code"]


class Dms:
    """Logs in to a simulator and GETs its endpoints over real HTTP."""

    def __init__(self, sim: Simulator, session: aiohttp.ClientSession) -> None:
        self.sim, self.session = sim, session
        self.token: str | None = None

    async def login(self, username: str | None = None, password: str | None = None) -> Reply:
        creds = {
            "username": username or self.sim.username,
            "password": password or self.sim.password,
        }
        async with self.session.post(self.sim.base_url + "/auth/login", json=creds) as resp:
            reply = Reply(resp.status, resp.headers, await resp.read())
        if reply.status == 200 and isinstance(reply.json, dict) and "token" in reply.json:
            self.token = reply.json["token"]
        return reply

    def auth_headers(self) -> dict[str, str]:
        if self.sim.auth.mode == "basic":
            return {"Authorization": basic_header(self.sim.username, self.sim.password)}
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def get(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> Reply:
        """GET ``base_url + path``; logs in first (token mode) if not yet done."""
        if self.sim.auth.mode == "token" and self.token is None and headers is None:
            assert (await self.login()).status == 200
        async with self.session.get(
            self.sim.base_url + path,
            params={k: str(v) for k, v in params.items()},
            headers=self.auth_headers() if headers is None else headers,
        ) as resp:
            return Reply(resp.status, resp.headers, await resp.read())

    async def page_all(
        self, path: str, limit: int = 1000, max_pages: int = 500, **params: Any
    ) -> list[dict[str, Any]]:
        """Every item of an envelope collection, following offset/limit to the end."""
        items: list[dict[str, Any]] = []
        for _ in range(max_pages):
            reply = await self.get(path, offset=len(items), limit=limit, **params)
            assert reply.status == 200, reply.body[:200]
            page = reply.json
            assert set(page) == {"total", "offset", "limit", "items"}
            items.extend(page["items"])
            if not page["items"] or len(items) >= page["total"]:
                return items
        raise AssertionError(f"{path}: more than {max_pages} pages")

    async def control(self, method: str, path: str, body: Any = None) -> Reply:
        """Call the control API (``/_sim``)."""
        async with self.session.request(method, self.sim.control_url + path, json=body) as resp:
            return Reply(resp.status, resp.headers, await resp.read())


async def eventually(check: Callable[[], Any], timeout: float = 5.0, step: float = 0.02) -> Any:
    """Await ``check()`` (sync or async) until it returns something truthy; fail after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(step)
