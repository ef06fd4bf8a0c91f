"""The exporter at scale, side by side with its references, in one run.

    python bench/bench_scale.py --devices 20000,100000 [--iterations 15] [--live-minutes 3]

For each size, with a simulator and the exporter as separate processes on 127.0.0.1:

- **ready**: seconds from start to ``/-/ready``, and RSS then;
- **render after a devices poll** (frozen simulator, every interval 1 h, ``POST
  /-/refresh/devices``) with 0 devices changed, 1 device (its ``lastContact``), 1 % of devices
  and all of them (a simulator ``unknown_enums`` fault on every 100th / every device, set and
  cleared); *render* is the sum of ``dms_exporter_render_duration_seconds`` over the groups that
  rendered, *CPU* the exporter's CPU seconds over the whole refresh (fetch and parse included);
- **scrape**: the exporter's gzip and plain ``/metrics`` against nginx (``gzip_static``) serving
  the bytes saved from a scrape, interleaved, one urllib client for every target; medians;
- **RSS** after those scrapes (VmRSS, and VmHWM: the peak);
- **prometheus_client**: ``generate_latest`` alone on the same series (families prebuilt from
  the saved body, not timed);
- **live** (``--live-minutes`` > 0): a live simulator (its defaults) and the exporter at default
  intervals: CPU seconds per minute and RSS over that window.

Prints Markdown with the ratios (ours / nginx, peer / ours, 1 changed / all changed). Bounded:
every wait has a deadline and every loop a count. ``--root`` runs another checkout's exporter
(e.g. main before a change) with the same script.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from bench_exporter import READY_TIMEOUT, free_port, memory_mb, scrape, wait_ok

ROOT = Path(__file__).resolve().parent.parent
NGINX = "/usr/sbin/nginx"
TICKS = os.sysconf("SC_CLK_TCK")
RENDER = re.compile(r'^dms_exporter_render_duration_seconds\{group="([^"]+)"\} (\S+)$', re.M)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def http(method: str, url: str, body: object | None = None, timeout: float = 600) -> bytes:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def fetch(url: str, gzipped: bool) -> bytes:
    headers = {"Accept-Encoding": "gzip"} if gzipped else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=600) as r:
        return r.read()


@contextlib.contextmanager
def processes(devices: int, *, frozen: bool, interval: str | None, root: Path) -> Iterator[dict]:
    """A simulator and an exporter on loopback; yields their URLs and the exporter's pid."""
    sim_port, exp_port = free_port(), free_port()
    sim_args = ["--frozen"] if frozen else []
    procs: list[subprocess.Popen] = []
    env = {**os.environ, "PYTHONPATH": str(root)}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "dms_exporter.simulator", "--devices", str(devices),
                 *sim_args, "--listen-address", f"127.0.0.1:{sim_port}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root, env=env,
            ))  # fmt: skip
            sim = f"http://127.0.0.1:{sim_port}"
            wait_ok(f"{sim}/_sim/state", READY_TIMEOUT)
            config = Path(tmp, "dms.yml")
            config.write_text(
                f"dms: {{url: '{sim}/dms-api/v1', username: monitor,"
                " password: monitor-secret, proxy: direct, timeout: 120s}\n"
                + (f"defaults: {{interval: {interval}}}\n" if interval else "")
                + ("refresh_min_gap: 0s\n" if frozen and _knows(root, "refresh_min_gap") else "")
                # the bench changes every device with a simulator fault; let it through
                + (
                    "endpoints: {devices: {gate: {enabled: false}}}\n"
                    if frozen and _knows(root, '"gate"')
                    else ""
                )
            )
            started = time.monotonic()
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "dms_exporter", "--config.file", str(config),
                 "--web.listen-address", f"127.0.0.1:{exp_port}", "--log.level", "warn"],
                cwd=root, env=env,
            ))  # fmt: skip
            base = f"http://127.0.0.1:{exp_port}"
            wait_ok(f"{base}/-/ready", READY_TIMEOUT)
            ready = time.monotonic() - started
            yield {"sim": sim, "base": base, "pid": procs[-1].pid, "ready_s": ready, "tmp": tmp}
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(timeout=60)


def _knows(root: Path, key: str) -> bool:
    """Whether the exporter at ``root`` has a setting (older ones do not)."""
    package = Path(root, "dms_exporter")
    sources = [package / "config.py", *sorted((package / "config").glob("*.py"))]
    return any(key in p.read_text() for p in sources if p.exists())


def render_durations(base: str) -> dict[str, float]:
    body = fetch(f"{base}/metrics", gzipped=True)
    return {g: float(v) for g, v in RENDER.findall(gzip.decompress(body).decode())}


def refresh_devices(env: dict) -> tuple[float, float]:
    """(render seconds, exporter CPU seconds) of one ``POST /-/refresh/devices``."""
    before = render_durations(env["base"])
    cpu = cpu_seconds(env["pid"])
    http("POST", f"{env['base']}/-/refresh/devices")
    cpu = cpu_seconds(env["pid"]) - cpu
    after = render_durations(env["base"])
    return sum(v for g, v in after.items() if before.get(g) != v), cpu


def measure_renders(env: dict, repeats: int) -> dict[str, list[tuple[float, float]]]:
    """Render and CPU per scenario: 0, 1, 1 % and all devices changed."""
    sim = env["sim"]
    body = fetch(f"{env['base']}/metrics", gzipped=True)
    device_id = re.search(rb'dms_device_info\{device_id="([^"]+)"', gzip.decompress(body))
    assert device_id is not None, "no device in the exposition"
    one = device_id.group(1).decode()
    out: dict[str, list[tuple[float, float]]] = {"0": [], "1": [], "1%": [], "100%": []}
    refresh_devices(env)  # settle: the first refresh after start may see clock changes
    for k in range(repeats):
        out["0"].append(refresh_devices(env))
        contact = f"2026-06-01T11:{k % 60:02d}:{(7 * k + 1) % 60:02d}Z"
        http("POST", f"{sim}/_sim/devices/{one}", {"lastContact": contact})
        out["1"].append(refresh_devices(env))
    for name, every in (("1%", 100), ("100%", 1)):
        for _ in range(max(1, repeats // 2)):
            fault = {"endpoint": "devices", "kind": "unknown_enums", "every": every}
            http("POST", f"{sim}/_sim/faults", fault)
            out[name].append(refresh_devices(env))
            http("DELETE", f"{sim}/_sim/faults")
            out[name].append(refresh_devices(env))
    return out


@contextlib.contextmanager
def nginx(plain: bytes, gzipped: bytes) -> Iterator[str | None]:
    """nginx serving ``plain`` at /metrics (and ``gzipped`` as metrics.gz for gzip_static)."""
    if not Path(NGINX).exists():
        print(f"nginx not found at {NGINX}: skipping the nginx reference", file=sys.stderr)
        yield None
        return
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # nginx workers run as an unprivileged user when started as root
        html = Path(tmp, "html")
        html.mkdir()
        Path(html, "metrics").write_bytes(plain)
        Path(html, "metrics.gz").write_bytes(gzipped)
        port = free_port()
        Path(tmp, "nginx.conf").write_text(f"""
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  sendfile on;
  default_type text/plain;
  server {{
    listen 127.0.0.1:{port};
    root {html};
    location / {{ gzip_static on; }}
  }}
}}
""")
        proc = subprocess.Popen([NGINX, "-p", tmp, "-c", f"{tmp}/nginx.conf", "-g", "daemon off;"])
        try:
            wait_ok(f"http://127.0.0.1:{port}/metrics", 30)
            yield f"http://127.0.0.1:{port}/metrics"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def measure_scrapes(env: dict, iterations: int) -> dict[str, float]:
    """Median scrape times of the exporter and nginx on the same bytes, interleaved."""
    url = f"{env['base']}/metrics"
    plain, gzipped = fetch(url, gzipped=False), fetch(url, gzipped=True)
    out: dict[str, float] = {"plain_bytes": len(plain), "gzip_bytes": len(gzipped)}
    with nginx(plain, gzipped) as nginx_url:
        targets = {"ours": url, **({"nginx": nginx_url} if nginx_url else {})}
        times: dict[str, list[float]] = {}
        for _ in range(iterations):
            for who, target in targets.items():
                for kind, gz in (("gzip", True), ("plain", False)):
                    times.setdefault(f"{who}_{kind}", []).append(scrape(target, gz)[0])
    out.update({key: statistics.median(values) for key, values in times.items()})
    Path(env["tmp"], "body.prom").write_bytes(plain)
    return out


def peer_generate_latest(body_path: Path) -> float:
    """Seconds of prometheus_client ``generate_latest`` alone on the series of a saved body.

    Runs in a child process so the bench itself does not hold millions of sample objects."""
    code = r"""
import re, sys, time
from prometheus_client import Metric
from prometheus_client.exposition import generate_latest
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
families, family = [], None
types = {}
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        if line.startswith("# HELP "):
            _, _, name, doc = line.rstrip("\n").split(" ", 3)
            help_ = doc
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            family = Metric(name, help_, kind)
            families.append(family)
        else:
            head, _, value = line.rpartition(" ")
            name, _, labels = head.partition("{")
            family.add_sample(name, dict(LABEL.findall(labels)), float(value))
class Collector:
    def collect(self):
        return families
started = time.perf_counter()
generate_latest(Collector())
print(time.perf_counter() - started)
"""
    out = subprocess.run(
        [sys.executable, "-c", code, str(body_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    return float(out.stdout.strip())


def bench_frozen(devices: int, iterations: int, repeats: int, root: Path) -> dict[str, object]:
    with processes(devices, frozen=True, interval="1h", root=root) as env:
        result: dict[str, object] = {"devices": devices, "ready_s": env["ready_s"]}
        result["rss_ready"] = memory_mb(env["pid"])[0]
        result["renders"] = measure_renders(env, repeats)
        result["scrapes"] = measure_scrapes(env, iterations)
        result["rss"], result["peak_rss"] = memory_mb(env["pid"])
        body = Path(env["tmp"], "body.prom")
        saved = Path(tempfile.mkdtemp(), "body.prom")
        shutil.copy(body, saved)
    try:
        result["peer_s"] = peer_generate_latest(saved)
    finally:
        shutil.rmtree(saved.parent)
    return result


def bench_live(devices: int, minutes: float, root: Path) -> dict[str, float]:
    with processes(devices, frozen=False, interval=None, root=root) as env:
        rss_ready = memory_mb(env["pid"])[0]
        cpu, started = cpu_seconds(env["pid"]), time.monotonic()
        samples = []
        while time.monotonic() - started < minutes * 60:
            time.sleep(min(10.0, max(0.0, minutes * 60 - (time.monotonic() - started))))
            samples.append(memory_mb(env["pid"])[0])
        cpu = cpu_seconds(env["pid"]) - cpu
        elapsed = time.monotonic() - started
        rss, peak = memory_mb(env["pid"])
    return {
        "ready_s": env["ready_s"],
        "rss_ready": rss_ready,
        "cpu_per_min": cpu / elapsed * 60,
        "rss_mean": statistics.fmean(samples),
        "rss_end": rss,
        "peak_rss": peak,
    }


def med(pairs: list[tuple[float, float]], i: int) -> float:
    return statistics.median(p[i] for p in pairs)


def report(r: dict, live: dict | None) -> None:
    n = r["devices"]
    s = r["scrapes"]
    print(f"\n### {n:,} devices\n")
    print(f"- ready {r['ready_s']:.1f} s; RSS at ready {r['rss_ready']:.0f} MB, after the scrapes "
          f"{r['rss']:.0f} MB, peak {r['peak_rss']:.0f} MB")  # fmt: skip
    print(f"- body: plain {s['plain_bytes'] / 1e6:.1f} MB, gzip {s['gzip_bytes'] / 1e6:.2f} MB")
    for kind in ("gzip", "plain"):
        ours = s[f"ours_{kind}"] * 1e3
        line = f"- {kind} scrape median: ours {ours:.1f} ms"
        if f"nginx_{kind}" in s:
            ref = s[f"nginx_{kind}"] * 1e3
            line += f", nginx {ref:.1f} ms, ours / nginx **{ours / ref:.2f}x**"
        print(line)
    peer = r["peer_s"]
    print(f"- prometheus_client generate_latest on the same series: {peer:.2f} s; "
          f"peer / our gzip scrape {peer / s['ours_gzip']:.0f}x, "
          f"peer / our plain scrape {peer / s['ours_plain']:.1f}x")  # fmt: skip
    renders = r["renders"]
    everything = med(renders["100%"], 0)
    # render work as CPU: a refresh's CPU minus that of a refresh with nothing changed (fetch
    # and parse); unlike the render durations (wall time) it does not grow with other load
    idle = med(renders["0"], 1)
    everything_cpu = max(med(renders["100%"], 1) - idle, 1e-9)
    print(
        "\n| devices changed | render (s, median) | render / all | refresh CPU (s, median) "
        "| refresh CPU - no-change refresh CPU | that / all |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name in ("0", "1", "1%", "100%"):
        render, cpu = med(renders[name], 0), med(renders[name], 1)
        print(f"| {name} | {render:.3f} | {render / everything * 100:.1f} % | {cpu:.2f} | "
              f"{cpu - idle:.2f} | {(cpu - idle) / everything_cpu * 100:.1f} % |")  # fmt: skip
    if live:
        print(f"\n- live ({live['minutes']:g} min, simulator defaults, default intervals): "
              f"ready {live['ready_s']:.1f} s, CPU {live['cpu_per_min']:.2f} s per minute, RSS "
              f"at ready {live['rss_ready']:.0f} MB, mean {live['rss_mean']:.0f} MB, end "
              f"{live['rss_end']:.0f} MB, peak {live['peak_rss']:.0f} MB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="20000,100000")
    parser.add_argument("--iterations", type=int, default=15, help="scrapes per target (bounded)")
    parser.add_argument("--repeats", type=int, default=3, help="refreshes per render scenario")
    parser.add_argument("--live-minutes", type=float, default=0.0)
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose exporter to run")
    args = parser.parse_args()
    iterations = max(1, min(args.iterations, 200))
    repeats = max(1, min(args.repeats, 20))
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"exporter from {args.root}")  # fmt: skip
    for n in (int(x) for x in args.devices.split(",")):
        result = bench_frozen(n, iterations, repeats, args.root.resolve())
        live = None
        if args.live_minutes > 0:
            live = {**bench_live(n, args.live_minutes, args.root.resolve()),
                    "minutes": args.live_minutes}  # fmt: skip
        report(result, live)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
