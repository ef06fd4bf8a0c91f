"""Slow clients (slowloris) against an exporter with a 1,024 file limit, and a normal client.

The exporter runs as a process (``--demo``) under ``RLIMIT_NOFILE`` = ``--nofile``.
``--connections`` attacker sockets connect and reconnect whenever the server closes them; with
``--attack head`` each sends half a request and then one header line every 5 s, with
``--attack body`` a complete ``POST`` head (``Content-Length: 1000000``, or
``--content-length``) and then one body byte every 5 s. Meanwhile a normal client scrapes
``/metrics`` once a second on a new connection, with a 1 s limit. Prints the scrapes that
succeeded, their latency, the exporter's RSS when idle and at its peak during the attack, its
CPU time, and how much its log grew.

With ``--netns`` the attackers run in a network namespace made for the run (a veth pair,
10.213.21.1 on this side, 10.213.21.2 inside; removed after), so they come from a non-loopback
address: the exporter listens on 10.213.21.1 and the normal client scrapes it from this side.

    python bench/bench_slowloris.py [--connections 2000] [--seconds 60] [--nofile 1024]
    python bench/bench_slowloris.py --attack body --connections 900 --no-reconnect --seconds 30
    sudo python bench/bench_slowloris.py --attack body --netns   # needs root for ip netns
    python bench/bench_slowloris.py --source /tmp/older-checkout   # the same, for older code
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from bench_exporter import free_port, memory_mb, wait_ok

ROOT = Path(__file__).resolve().parent.parent
SCRAPE_LIMIT = 1.0  # seconds: a scrape slower than this counts as failed
DRIP_SECONDS = 5.0  # an attacker sends one header line or one body byte this often
#: The namespace's veth pair: this side and the inside, a /30 of private space.
NETNS_HOST, NETNS_PEER = "10.213.21.1", "10.213.21.2"
#: A complete head whose body (a console edit) never comes: one byte every DRIP_SECONDS.
BODY_HEAD = (
    "POST {path} HTTP/1.1\r\nHost: {host}\r\n"
    "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {length}\r\n\r\n"
)


async def attacker(
    host: str,
    port: int,
    deadline: float,
    stats: dict[str, int],
    reconnect: bool = True,
    body_path: str | None = None,
    content_length: int = 1000000,
) -> None:
    """One slowloris socket: half a request then a header line every 5 s, or (``body_path``) a
    whole POST head then a body byte every 5 s; reconnect when closed."""
    if body_path is None:
        first, drip = f"GET /metrics HTTP/1.1\r\nHost: {host}\r\n".encode(), b"X-Slow: 1\r\n"
    else:
        head = BODY_HEAD.format(path=body_path, host=host, length=content_length)
        first, drip = head.encode(), b"a"
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            stats["connect_errors"] += 1
            await asyncio.sleep(0.5)
            continue
        stats["connects"] += 1
        try:
            writer.write(first)
            while time.monotonic() < deadline:
                try:
                    async with asyncio.timeout(min(DRIP_SECONDS, deadline - time.monotonic())):
                        if not await reader.read(1024):
                            break  # closed by the server
                except TimeoutError:
                    writer.write(drip)
        except OSError:
            pass
        finally:
            writer.close()
        if not reconnect:
            return
        await asyncio.sleep(0.1)


async def scraper(
    host: str, port: int, deadline: float, paths: tuple[str, ...] = ("/metrics",)
) -> list[float | str]:
    """One request a second on a new connection, to each of ``paths`` in turn; each its
    latency, or why it failed."""
    results: list[float | str] = []
    turn = 0
    while time.monotonic() < deadline:
        began = time.monotonic()
        step = "connect"
        path, turn = paths[turn % len(paths)], turn + 1
        try:
            async with asyncio.timeout(SCRAPE_LIMIT):
                reader, writer = await asyncio.open_connection(host, port)
                step = "answer"
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
                )
                body = await reader.read()
                writer.close()
            whole = path != "/metrics" or b"dms_exporter_build_info" in body
            ok = body.startswith(b"HTTP/1.1 200") and whole
            results.append(time.monotonic() - began if ok else f"answer {body[:40]!r}")
        except TimeoutError:
            results.append(f"no {step} within 1 s")
        except OSError as exc:
            results.append(type(exc).__name__)
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
    return results


async def attack(
    host: str,
    port: int,
    connections: int,
    seconds: float,
    reconnect: bool = True,
    body_path: str | None = None,
    content_length: int = 1000000,
) -> dict[str, int]:
    """The attackers of one run, in this process; how often they connected."""
    deadline = time.monotonic() + seconds
    stats = {"connects": 0, "connect_errors": 0}
    await asyncio.gather(
        *(
            attacker(host, port, deadline, stats, reconnect, body_path, content_length)
            for _ in range(connections)
        )
    )
    return stats


def limit_files(nofile: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def namespace() -> Any:
    """A network namespace joined to this one by a veth pair; its name. Removed after."""
    name = f"bench-slow-{os.getpid()}"
    host_if, peer_if = f"bsh{os.getpid() % 100000}", f"bsp{os.getpid() % 100000}"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True)

    ip("netns", "add", name)
    try:
        ip("link", "add", host_if, "type", "veth", "peer", "name", peer_if)
        ip("link", "set", peer_if, "netns", name)
        ip("addr", "add", f"{NETNS_HOST}/30", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("-n", name, "addr", "add", f"{NETNS_PEER}/30", "dev", peer_if)
        ip("-n", name, "link", "set", peer_if, "up")
        ip("-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "link", "del", host_if], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)


NGINX_CONFIG = """daemon off; worker_processes 1; user root; pid {tmp}/nginx.pid;
error_log {tmp}/server.log warn;
events {{ worker_connections {connections}; }}
http {{
  access_log off; default_type text/plain;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  server {{ listen {host}:{port}; root {tmp}/www; location / {{ }} }}
}}
"""


def start_exporter(tmp: Path, host: str, port: int, nofile: int, source: str) -> Any:
    """The exporter (``--demo``, 100 devices) from ``source``, ready."""
    env = {**os.environ, "PYTHONPATH": source}
    with (tmp / "server.log").open("ab") as log:
        exporter = subprocess.Popen(
            [sys.executable, "-m", "dms_exporter", "--demo", "--demo.devices", "100",
             "--web.listen-address", f"{host}:{port}"],
            stdout=log, stderr=log, env=env, cwd=source,
            preexec_fn=lambda: limit_files(nofile),
        )  # fmt: skip
    wait_ok(f"http://{host}:{port}/-/ready", 120)
    time.sleep(2)  # the first polls settle
    return exporter


def start_nginx(tmp: Path, host: str, port: int, nofile: int, source: str) -> Any:
    """The reference: nginx (defaults but for paths and 1 worker) serving the exporter's
    exposition as a file at /metrics, under the same file limit."""
    exporter = start_exporter(tmp, host, port, nofile, source)
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=30) as answer:
            exposition = answer.read()
    finally:
        exporter.terminate()
        exporter.wait(30)
    (tmp / "www").mkdir()
    (tmp / "www" / "metrics").write_bytes(exposition)
    (tmp / "server.log").write_bytes(b"")
    config = tmp / "nginx.conf"
    connections = nofile - 32  # nginx's own files besides its connections
    config.write_text(NGINX_CONFIG.format(tmp=tmp, host=host, port=port, connections=connections))
    nginx = subprocess.Popen(
        ["nginx", "-c", str(config), "-p", str(tmp)], preexec_fn=lambda: limit_files(nofile)
    )
    wait_ok(f"http://{host}:{port}/metrics", 30)
    return nginx


def process_tree(pid: int) -> list[int]:
    """``pid`` and its children (nginx's workers)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *(int(child) for child in children)]


def tree_rss(pid: int) -> float:
    return sum(memory_mb(p)[0] for p in process_tree(pid))


def tree_cpu(pid: int) -> float:
    return sum(cpu_seconds(p) for p in process_tree(pid))


def measure(
    connections: int,
    seconds: float,
    nofile: int,
    source: str = str(ROOT),
    reconnect: bool = True,
    body_path: str | None = None,
    netns: str | None = None,
    content_length: int = 1000000,
    reference: bool = False,
) -> dict[str, Any]:
    """Run the attack against an exporter process from ``source`` (or, ``reference``, nginx
    serving its exposition); the figures.

    The attackers and the normal client are processes of their own, so the client's timing
    does not depend on a busy event loop; the attackers run inside ``netns`` if given."""
    host = NETNS_HOST if netns else "127.0.0.1"
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "server.log"
        start = start_nginx if reference else start_exporter
        server = start(Path(tmp), host, port, nofile, source)
        try:
            idle_rss = tree_rss(server.pid)
            before = log_path.read_bytes()
            cpu_before = tree_cpu(server.pid)
            began = time.monotonic()
            command = [
                sys.executable, __file__, "--attack-only", host, str(port),
                "--connections", str(connections), "--seconds", str(seconds),
                *([] if reconnect else ["--no-reconnect"]),
                *(["--attack", "body", "--path", body_path] if body_path else []),
                "--content-length", str(content_length),
            ]  # fmt: skip
            if netns:
                command = ["ip", "netns", "exec", netns, *command]
            attackers = subprocess.Popen(command, stdout=subprocess.PIPE)
            time.sleep(2)  # let the slow connections pile up first
            scrape = [sys.executable, __file__, "--scrape-only", host, str(port),
                      "--seconds", str(seconds - 2), "--paths"]  # fmt: skip
            client, health = (
                subprocess.Popen([*scrape, paths], stdout=subprocess.PIPE)
                for paths in ("/metrics", "" if reference else "/-/healthy,/-/ready")
            )
            peak_rss = idle_rss
            while client.poll() is None:
                peak_rss = max(peak_rss, tree_rss(server.pid))
                time.sleep(0.5)
            scrapes = json.loads(client.communicate()[0])
            checks = json.loads(health.communicate()[0])
            stats = json.loads(attackers.communicate(timeout=seconds + 30)[0])
            elapsed = time.monotonic() - began
            cpu = tree_cpu(server.pid) - cpu_before
            grown = log_path.read_bytes()[len(before) :]
            alive = server.poll() is None
        finally:
            server.terminate()
            server.wait(30)
    return {
        "scrapes": scrapes,
        "health": checks,
        "elapsed": elapsed,
        "log": grown,
        "alive": alive,
        "idle_rss": idle_rss,
        "peak_rss": peak_rss,
        "cpu": cpu,
        **stats,
    }


def raise_own_file_limit(connections: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, connections + 512)), hard))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--nofile", type=int, default=1024)
    parser.add_argument("--source", default=str(ROOT), help="checkout whose exporter to run")
    parser.add_argument(
        "--no-reconnect", action="store_true", help="attackers closed by the server stay away"
    )
    parser.add_argument(
        "--attack", choices=("head", "body"), default="head",
        help="slow request heads (default) or complete heads with a slow body",
    )  # fmt: skip
    parser.add_argument(
        "--path", default="/console/endpoints/devices", help="where --attack body posts"
    )
    parser.add_argument(
        "--content-length", type=int, default=1000000, help="what --attack body announces"
    )
    parser.add_argument(
        "--reference", action="store_true", help="attack nginx serving the exposition instead"
    )
    parser.add_argument(
        "--netns", action="store_true", help="attack from a network namespace (needs root)"
    )
    parser.add_argument("--scrape-only", nargs=2, metavar=("HOST", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--paths", default="/metrics", help=argparse.SUPPRESS)
    parser.add_argument("--attack-only", nargs=2, metavar=("HOST", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seconds > 600 or args.connections > 10000:
        parser.error("at most 600 s and 10,000 connections")  # every load loop is bounded
    if args.scrape_only:
        host, port = args.scrape_only
        deadline = time.monotonic() + args.seconds
        paths = tuple(filter(None, args.paths.split(",")))
        print(json.dumps(asyncio.run(scraper(host, int(port), deadline, paths)) if paths else []))
        return
    if args.attack_only:
        raise_own_file_limit(args.connections)
        host, port = args.attack_only
        body_path = None if args.attack == "head" else args.path
        stats = asyncio.run(
            attack(host, int(port), args.connections, args.seconds, not args.no_reconnect,
                   body_path, args.content_length)
        )  # fmt: skip
        print(json.dumps(stats))
        return
    load = os.getloadavg()[0]
    body_path = args.path if args.attack == "body" else None
    with namespace() if args.netns else contextlib.nullcontext() as netns:
        result = measure(
            args.connections, args.seconds, args.nofile, args.source, not args.no_reconnect,
            body_path, netns, args.content_length, args.reference,
        )  # fmt: skip
    scrapes, grown = result["scrapes"], result["log"]
    ok = [s for s in scrapes if isinstance(s, float)]
    failures = Counter(s for s in scrapes if isinstance(s, str))
    what = (
        "slow heads"
        if body_path is None
        else f"slow bodies (POST {body_path}, Content-Length {args.content_length})"
    )
    where = f"namespace {NETNS_PEER}" if args.netns else "loopback"
    server = "nginx (reference) serving the exposition" if args.reference else "the exporter"
    print(f"source: {args.source}; {server}; load average before: {load:.2f}")
    print(
        f"{args.connections} {'reconnecting' if not args.no_reconnect else 'one-shot'} "
        f"connections, {what}, from {where}, file limit {args.nofile}, {result['elapsed']:.0f} s"
    )
    print(f"attacker connects: {result['connects']}, connect errors: {result['connect_errors']}")
    print(f"scrapes ok within {SCRAPE_LIMIT:g} s: {len(ok)} of {len(scrapes)}")
    for failure, count in failures.items():
        print(f"  failed: {failure} ({count})")
    if ok:
        median, worst = statistics.median(ok) * 1000, max(ok) * 1000
        print(f"scrape latency: median {median:.0f} ms, max {worst:.0f} ms")
    if result["health"]:
        good = sum(isinstance(c, float) for c in result["health"])
        print(f"/-/healthy and /-/ready ok within 1 s: {good} of {len(result['health'])}")
    print(
        f"server RSS: idle {result['idle_rss']:.0f} MB, peak {result['peak_rss']:.0f} MB; "
        f"CPU during the attack {result['cpu']:.1f} s"
    )
    lines = grown.count(b"\n")
    print(f"log growth: {lines} lines, {len(grown) / 1e6:.2f} MB; server alive: {result['alive']}")
    for line in grown.splitlines()[:3]:
        print("  " + line.decode(errors="replace")[:160])


if __name__ == "__main__":
    main()
