"""``python -m dms_exporter.simulator`` as a real process: flags, faults from flags, clean exit."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp
from sim_client import basic_header

TIMEOUT = aiohttp.ClientTimeout(total=10)


async def spawn(*args: str) -> asyncio.subprocess.Process:
    """The simulator as a child process on a free port, its output piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dms_exporter.simulator", "--listen-address", "127.0.0.1:0",
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def start(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    """Start the simulator on a free port; returns the process and the API base URL."""
    proc = await spawn(*args)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    match = re.search(r"API (http://\S+)", line)
    assert match, line
    return proc, match.group(1)


async def stop(proc: asyncio.subprocess.Process) -> str:
    """SIGTERM, expect a clean exit; returns everything the process printed."""
    proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0, err
    return out.decode() + err.decode()


async def test_token_mode_with_a_fault_from_a_flag() -> None:
    proc, base = await start(
        "--devices",
        "300",
        "--seed",
        "3",
        "--frozen",
        "--password",
        "pw-never-logged",
        "--fault",
        "devices=status:503,count=1",
    )
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            creds = {"username": "monitor", "password": "pw-never-logged"}
            async with session.post(base + "/auth/login", json=creds) as resp:
                token = (await resp.json())["token"]
            headers = {"Authorization": f"Bearer {token}"}
            async with session.get(base + "/devices", headers=headers) as resp:
                assert resp.status == 503
            async with session.get(base + "/devices?limit=1000", headers=headers) as resp:
                page = await resp.json()
            assert page["total"] == 300 and len(page["items"]) == 300
            async with session.get(base.replace("/dms-api/v1", "/_sim/state")) as resp:
                assert (await resp.json())["frozen"] is True
    finally:
        printed = await stop(proc)
    assert "pw-never-logged" not in printed


async def test_basic_auth_and_bare_arrays_flags() -> None:
    proc, base = await start(
        "--devices",
        "25",
        "--auth",
        "basic",
        "--bare-arrays",
        "--username",
        "ops",
        "--password",
        "pw",
    )
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            headers = {"Authorization": basic_header("ops", "pw")}
            async with session.get(base + "/devices", headers=headers) as resp:
                assert len(await resp.json()) == 25
            async with session.get(base + "/devices") as resp:
                assert resp.status == 401
    finally:
        await stop(proc)


async def test_shape_and_login_shape_flags() -> None:
    """--shape spring --login-shape oauth: a form login answering access_token, Spring pages."""
    proc, base = await start("--devices", "25", "--shape", "spring", "--login-shape", "oauth")
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            form = {"username": "monitor", "password": "monitor-secret"}
            async with session.post(base + "/oauth/token", data=form) as resp:
                token = (await resp.json())["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            async with session.get(base + "/devices?page=1&size=10", headers=headers) as resp:
                page = await resp.json()
            assert page["totalElements"] == 25 and page["number"] == 1
            assert page["content"][0]["id"] == "dev-000011"
    finally:
        await stop(proc)


async def test_bad_flags_exit_with_2() -> None:
    for args in (
        ["--fault", "devices=boom"],
        ["--listen-address", "nowhere"],
        ["--devices", "0"],
        ["--auth", "kerberos"],
    ):
        proc = await spawn(*args)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 2, (args, err)
        assert err.strip(), args
