"""``python -m dms_exporter.simulator`` / ``dms-simulator``: run a simulated DMS until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from .auth import AUTH_MODES
from .faults import FAULT_KINDS, FaultError, parse_fault_spec
from .runner import Simulator
from .shapes import LIST_SHAPES, LOGIN_SHAPES

EPILOG = f"""\
faults: --fault ENDPOINT=KIND[:VALUE][,key=value...]  (repeatable)
  ENDPOINT: login, system, devices, groups, services, authorization_sets,
            schedule_authorizations, authorizations, destinations, alarms, or * for all
  KIND:     {", ".join(FAULT_KINDS)}
  examples: --fault devices=status:503,count=2   --fault alarms=status:429,retry_after=5
            --fault '*=latency:0.5'   --fault destinations=missing_fields,fields=status+type
the password can also come from the environment variable DMS_SIM_PASSWORD.
"""


def listen_address(text: str) -> tuple[str, int]:
    """``host:port`` (IPv6 as ``[::1]:8480``) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def fault_spec(text: str) -> str:
    try:
        parse_fault_spec(text)
    except FaultError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dms-simulator",
        description="A simulated Harmonic DMS REST API (base path /dms-api/v1, control /_sim).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--listen-address",
        type=listen_address,
        default=("127.0.0.1", 8480),
        metavar="HOST:PORT",
        help="where to listen (default 127.0.0.1:8480; port 0: any)",
    )
    p.add_argument("--devices", type=int, default=100, help="number of devices (default 100)")
    p.add_argument("--seed", type=int, default=1, help="population seed (default 1)")
    p.add_argument(
        "--auth",
        choices=AUTH_MODES,
        default="token",
        help="token: POST /auth/login then Bearer; basic: HTTP Basic on every call; api_key: "
        "the password in X-API-Key on every call",
    )
    p.add_argument("--username", default="monitor", help="API user (default monitor)")
    p.add_argument(
        "--password",
        default=os.environ.get("DMS_SIM_PASSWORD", "monitor-secret"),
        help="API password (default monitor-secret, or $DMS_SIM_PASSWORD)",
    )
    p.add_argument("--token-ttl", type=float, default=3600.0, help="token lifetime, s (3600)")
    p.add_argument(
        "--bare-arrays",
        action="store_true",
        help="answer collections with a bare JSON array, no paging",
    )
    p.add_argument(
        "--shape",
        dest="list_shape",
        choices=sorted(LIST_SHAPES),
        default=None,
        help="list envelope and paging style (default: the documented {total,offset,limit,items})",
    )
    p.add_argument(
        "--login-shape",
        choices=sorted(LOGIN_SHAPES),
        default="default",
        help="login request and answer, and how the token is sent (default: POST /auth/login, "
        "Bearer)",
    )
    p.add_argument(
        "--frozen",
        action="store_true",
        help="no dynamics, clock fixed at 2026-06-01T12:00:00Z (golden tests)",
    )
    p.add_argument(
        "--change-rate",
        type=float,
        default=0.01,
        help="fraction of things changed per tick (default 0.01)",
    )
    p.add_argument("--tick-interval", type=float, default=1.0, help="seconds per tick (1.0)")
    p.add_argument("--base-path", default="/dms-api/v1", help="API base path (/dms-api/v1)")
    p.add_argument(
        "--fault",
        dest="faults",
        action="append",
        type=fault_spec,
        default=[],
        metavar="SPEC",
        help="a fault from the start (see below); repeatable",
    )
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.add_argument(
        "--role",
        default=None,
        help="role /system/info reports, e.g. BACKUP for a standby DMS (default PRIMARY)",
    )
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return p


async def serve(sim: Simulator) -> None:
    """Run ``sim`` until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with sim:
        print(f"DMS simulator: API {sim.base_url}  control {sim.control_url}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dms-simulator``."""
    # every option but these two is a keyword argument of Simulator, under the same name
    options = vars(parser().parse_args(argv))
    log_level = options.pop("log_level")
    host, port = options.pop("listen_address")
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        sim = Simulator(host=host, port=port, **options)
        asyncio.run(serve(sim))
    except (ValueError, OSError) as exc:
        print(f"dms-simulator: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
