"""Command line: ``dms-exporter --config.file=dms.yml`` or ``dms-exporter --demo``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import NoReturn

from . import __version__
from .config import Config, demo_mapping
from .config.secrets import known_secrets
from .config.web import WebConfigFile
from .errors import ConfigError
from .exporter import Exporter
from .logs import LEVELS, setup_logging
from .web.app import make_app
from .web.console import ConfigSource, Console, StateFile, default_state_path
from .web.server import (
    GuardedSite,
    make_runner,
    raise_file_limit,
    rate_limit_accept_errors,
)

log = logging.getLogger("dms_exporter")

DEFAULT_PORT = 9883
#: Seconds a thread may hold the GIL while another waits for it (Python's default: 0.005). The
#: event loop gives the GIL up at every socket call of a scrape; during a render or a poll's
#: parsing it then waits up to this long to get it back, each time (docs/performance.md).
SWITCH_INTERVAL_SECONDS = 0.0002


class StartupError(Exception):
    """The exporter cannot start; the message is the one line the operator sees."""


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are start-up failures too: one line on stderr and exit status 1."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"{self.prog}: {message} (see --help)\n")


def _at_least_one(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return number


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Prometheus-style flags."""
    parser = _Parser(prog="dms-exporter", description="Prometheus exporter for the Harmonic DMS.")
    parser.add_argument("--config.file", dest="config_file", help="YAML configuration file")
    parser.add_argument(
        "--config.check",
        dest="config_check",
        action="store_true",
        help="validate the configuration file and exit (0 if valid)",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        default=None,
        help=f"host:port to serve on (default :{DEFAULT_PORT}; 127.0.0.1:{DEFAULT_PORT} "
        "with --demo)",
    )
    parser.add_argument(
        "--console.state-file",
        dest="state_file",
        default=None,
        help="where console edits are kept (default: next to the config file, "
        "dms.yml -> dms.console.json; with --demo: in memory unless given)",
    )
    parser.add_argument(
        "--snapshot.directory",
        dest="snapshot_dir",
        default=None,
        help="where the last good tables are kept, to be shown at once after a restart "
        "(default: next to the config file, dms.yml -> dms.snapshot; with --demo: not kept "
        "unless given; an empty value: not kept)",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        help="exporter-toolkit web config: TLS, basic auth, headers (docs/configuration.md)",
    )
    parser.add_argument(
        "--web.enable-admin-api",
        dest="enable_admin_api",
        action="store_true",
        help="allow reload, refresh and other write actions from any address, not only "
        "loopback (with basic_auth_users they need a user instead)",
    )
    parser.add_argument(
        "--web.max-connections",
        dest="max_connections",
        type=_at_least_one,
        default=None,
        help="concurrent HTTP connections (default: the file limit less 192)",
    )
    parser.add_argument("--log.level", dest="log_level", choices=list(LEVELS), default="info")
    parser.add_argument(
        "--log.format", dest="log_format", choices=["logfmt", "json"], default="logfmt"
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="start an embedded DMS simulator and export it (no config file needed)",
    )
    parser.add_argument(
        "--demo.devices",
        dest="demo_devices",
        type=_at_least_one,
        default=1000,
        help="devices in the demo simulator (default 1000)",
    )
    parser.add_argument(
        "--probe",
        action="store_true",
        help="fetch each enabled endpoint once, report what the DMS sends against the config "
        "(fields found, unknown enum words, likely renames) and exit: 0 if every endpoint "
        "yields rows with ids, else 1",
    )
    parser.add_argument(
        "--probe.pages",
        dest="probe_pages",
        type=_at_least_one,
        default=None,
        help="with --probe: at most this many pages per endpoint (default: all)",
    )
    parser.add_argument(
        "--probe.format", dest="probe_format", choices=["text", "json"], default="text"
    )
    parser.add_argument("--version", action="version", version=f"dms-exporter {__version__}")
    args = parser.parse_args(argv)
    if args.demo == bool(args.config_file):
        parser.error("give exactly one of --config.file or --demo")
    if args.config_check and not args.config_file:
        parser.error("--config.check needs --config.file")
    if args.probe and not args.config_file:
        parser.error("--probe needs --config.file")
    return args


def run_probe(config: Config, pages: int | None, output: str) -> int:
    """``--probe``: print what each enabled endpoint sends; 0 if every one yields rows."""
    from .dms.probe import probe, render_json, render_text  # only the probe needs it

    logging.basicConfig(level=logging.ERROR)  # the report is the output, not log lines
    report = asyncio.run(probe(config, pages=pages))
    render = render_json if output == "json" else render_text
    print(render(config, report))
    return 0 if report.ok else 1


def snapshot_directory(flag: str | None, config_file: str | None) -> Path | None:
    """``--snapshot.directory``: as given (empty: none), else next to the config file."""
    if flag is not None:
        return Path(flag) if flag else None
    if config_file is None:  # --demo
        return None
    return Path(os.path.splitext(config_file)[0] + ".snapshot")


def split_listen_address(address: str) -> tuple[str | None, int]:
    """``host:port`` -> (host, port); an empty host (``:9883``) means every interface."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--web.listen-address: expected host:port, got {address!r}")
    return (host.strip("[]") or None), int(port)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dms-exporter`` console script."""
    args = parse_args(argv)
    source: ConfigSource | None = None
    try:
        if args.config_file:
            source = ConfigSource(
                StateFile(args.state_file or default_state_path(args.config_file)),
                path=args.config_file,
            )
            config = source.build(source.edits)
        web_config = WebConfigFile(args.web_config_file)
    except ConfigError as exc:
        for problem in str(exc).splitlines():
            print(f"dms-exporter: invalid configuration: {problem}", file=sys.stderr)
        return 1
    if args.config_check:
        print(f"dms-exporter: configuration {args.config_file} is valid")
        return 0
    if args.probe:
        return run_probe(config, args.probe_pages, args.probe_format)
    listen = args.listen_address or (
        f"127.0.0.1:{DEFAULT_PORT}" if args.demo else f":{DEFAULT_PORT}"
    )
    try:
        host, port = split_listen_address(listen)
    except ValueError as exc:
        print(f"dms-exporter: {exc}", file=sys.stderr)
        return 1
    raise_file_limit()
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    secrets = setup_logging(args.log_level, args.log_format)
    if source is not None:
        secrets.secrets.update(known_secrets(config.dms))
        removed = source.remove_leftovers()
        if removed:
            log.info(
                "removed temporary files of interrupted console saves",
                extra={"files": ", ".join(removed)},
            )
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(args, source, web_config, host, port, secrets.secrets))
    except StartupError as exc:
        log.error("cannot start", extra={"error": str(exc)})
        return 1
    return 0


async def _serve(
    args: argparse.Namespace,
    source: ConfigSource | None,
    web_config: WebConfigFile,
    host: str | None,
    port: int,
    secrets: set[str],
) -> None:
    rate_limit_accept_errors(asyncio.get_running_loop())
    async with _dms_config(args, source) as source:
        running_config = source.build(source.edits)
        secrets.update(known_secrets(running_config.dms))
        exporter = Exporter(
            running_config,
            config_file=args.config_file,
            on_config=lambda new: secrets.update(known_secrets(new.dms)),
            loader=source.load,
            snapshot_dir=snapshot_directory(args.snapshot_dir, args.config_file),
        )
        app = make_app(
            exporter,
            Console(exporter, source),
            web_config=web_config,
            admin_api=args.enable_admin_api,
        )
        runner = make_runner(app)
        await runner.setup()
        try:
            site = GuardedSite(
                runner,
                host,
                port,
                ssl_context=web_config.context,
                max_connections=args.max_connections,
            )
            try:
                await site.start()
            except OSError as exc:  # in use, not allowed, unknown host (socket.gaierror)
                address = f"{host or ''}:{port}"
                raise StartupError(f"cannot listen on {address}: {exc.strerror or exc}") from None
            log.info(
                "listening",
                extra={
                    "address": site.name,
                    "max_connections": site.max_connections,
                    "auth": "basic" if web_config.config.users else "none",
                    "version": __version__,
                    "dms": running_config.dms.url,
                },
            )
            await _wait_for_signals(exporter)
        finally:
            await runner.cleanup()


@contextlib.asynccontextmanager
async def _dms_config(
    args: argparse.Namespace, source: ConfigSource | None
) -> AsyncIterator[ConfigSource]:
    """The config to run: the file's, or a demo config pointing at an embedded simulator."""
    if source is not None:
        yield source
        return
    from .simulator import start_simulator  # only the demo needs it

    async with start_simulator(devices=args.demo_devices, seed=1) as sim:
        log.info(
            "demo simulator started", extra={"url": sim.base_url, "devices": args.demo_devices}
        )
        mapping = demo_mapping(sim.base_url, sim.username, sim.password)
        try:
            source = ConfigSource(StateFile(args.state_file), mapping=mapping, name="<demo>")
        except ConfigError as exc:  # the demo's --console.state-file
            raise StartupError(str(exc)) from None
        yield source


async def _wait_for_signals(exporter: Exporter) -> None:
    """Serve until SIGTERM or SIGINT; reload the config on SIGHUP."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reloads: set[asyncio.Task[bool]] = set()

    def on_hup() -> None:
        if exporter.config_file is None:
            log.warning("SIGHUP ignored: no configuration file to reload (--demo)")
            return
        task = asyncio.create_task(exporter.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    log.info("shutting down")


if __name__ == "__main__":
    sys.exit(main())
