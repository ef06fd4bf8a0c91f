"""The control API under ``/_sim``: tests and operators change the simulator while it runs.

Every route calls the same method of the in-process ``Simulator`` handle, so HTTP and Python
callers cannot drift apart. Errors use the DMS error shape.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from .clock import iso
from .collection import dumps
from .faults import FaultBook, FaultError, parse_fault_spec
from .server import error_response


class Controlled(Protocol):
    """The simulator as the control API sees it (``runner.Simulator`` is the one)."""

    faults: FaultBook
    request_counts: dict[str, int]

    def state(self) -> dict[str, Any]: ...
    def add_fault(self, endpoint: str, kind: str, count: int | None = None, **p: Any) -> str: ...
    def clear_faults(self, fault_id: str | None = None) -> int: ...
    def raise_alarm(self, **fields: Any) -> dict[str, Any]: ...
    def clear_alarm(self, alarm_id: str) -> dict[str, Any]: ...
    def set_device(self, device_id: str, **fields: Any) -> dict[str, Any]: ...
    def set_destination(self, destination_id: str, **fields: Any) -> dict[str, Any]: ...
    def revoke_tokens(self) -> int: ...
    def expire_tokens(self) -> int: ...
    def advance_clock(self, seconds: float) -> float: ...
    def tick(self) -> None: ...
    def set_role(self, role: str) -> str: ...
    def reset_request_counts(self) -> None: ...


CONTROL_PATH = "/_sim"


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=dumps(obj), headers={"Content-Type": "application/json; charset=utf-8"}
    )


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise FaultError("body must be JSON") from None
    if not isinstance(body, dict):
        raise FaultError("body must be a JSON object")
    return body


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except KeyError as exc:
        return error_response(404, "NOT_FOUND", f"unknown id {exc.args[0]!r}")
    except (ValueError, TypeError) as exc:
        return error_response(400, "BAD_REQUEST", str(exc))


def control_app(sim: Controlled) -> web.Application:
    """The ``/_sim`` sub-application for ``sim``."""

    async def state(request: web.Request) -> web.Response:
        return _json(sim.state())

    async def list_faults(request: web.Request) -> web.Response:
        return _json([f.to_json() for f in sim.faults.faults])

    async def add_fault(request: web.Request) -> web.Response:
        body = await _body(request)
        if "spec" in body:
            body = {**parse_fault_spec(str(body.pop("spec"))), **body}
        params = {**body.pop("params", {}), **body}
        fault_id = sim.add_fault(**params)
        fault = next(f for f in sim.faults.faults if f.id == fault_id)
        return _json(fault.to_json(), 201)

    async def clear_faults(request: web.Request) -> web.Response:
        fault_id = request.match_info.get("id")
        cleared = sim.clear_faults(fault_id)
        if fault_id is not None and not cleared:
            raise KeyError(fault_id)
        return _json({"cleared": cleared})

    async def raise_alarm(request: web.Request) -> web.Response:
        body = await _body(request)
        names = {
            "deviceId": "device_id",
            "faultObject": "fault_object",
            "recoveryTip": "recovery_tip",
        }
        alarm = sim.raise_alarm(**{names.get(k, k): v for k, v in body.items()})
        return _json(alarm, 201)

    async def clear_alarm(request: web.Request) -> web.Response:
        return _json(sim.clear_alarm(request.match_info["id"]))

    async def set_device(request: web.Request) -> web.Response:
        return _json(sim.set_device(request.match_info["id"], **await _body(request)))

    async def set_destination(request: web.Request) -> web.Response:
        return _json(sim.set_destination(request.match_info["id"], **await _body(request)))

    async def revoke(request: web.Request) -> web.Response:
        return _json({"revoked": sim.revoke_tokens()})

    async def expire(request: web.Request) -> web.Response:
        return _json({"expired": sim.expire_tokens()})

    async def advance(request: web.Request) -> web.Response:
        seconds = (await _body(request)).get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise ValueError("seconds must be a number")
        return _json({"clock": iso(sim.advance_clock(seconds))})

    async def tick(request: web.Request) -> web.Response:
        sim.tick()
        return _json(sim.state())

    async def set_role(request: web.Request) -> web.Response:
        role = (await _body(request)).get("role")
        if not isinstance(role, str) or not role:
            raise ValueError("role must be a string such as PRIMARY or BACKUP")
        return _json({"role": sim.set_role(role)})

    async def reset_counts(request: web.Request) -> web.Response:
        sim.reset_request_counts()
        return _json(sim.request_counts)

    app = web.Application(middlewares=[_errors])
    app.add_routes(
        [
            web.get("/state", state),
            web.get("/faults", list_faults),
            web.post("/faults", add_fault),
            web.delete("/faults", clear_faults),
            web.delete("/faults/{id}", clear_faults),
            web.post("/alarms", raise_alarm),
            web.post("/alarms/{id}/clear", clear_alarm),
            web.post("/devices/{id}", set_device),
            web.post("/destinations/{id}", set_destination),
            web.post("/tokens/revoke", revoke),
            web.post("/tokens/expire", expire),
            web.post("/clock/advance", advance),
            web.post("/tick", tick),
            web.delete("/request-counts", reset_counts),
            web.post("/role", set_role),
        ]
    )
    return app
