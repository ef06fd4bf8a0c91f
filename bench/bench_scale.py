"""The exporter at scale, side by side with its references, in one run.

    python bench/bench_scale.py --devices 20000,100000 --live-minutes 10 [--live-devices 100000]
        [--iterations 15] [--repeats 3] [--json out.json] [--root <checkout>]
    python bench/bench_scale.py --compare before.json after.json

For each size, with a simulator and the exporter as separate processes on 127.0.0.1:

- **ready**: seconds from start to ``/-/ready``, and RSS then;
- **renders** (frozen simulator, every interval 1 h, ``POST /-/refresh/<endpoint>``): a devices
  poll with nothing changed, with 1 device's ``connectionState`` changed, 1 device's
  ``lastContact``, 1 % of devices and all of them (a simulator ``unknown_enums`` fault on every
  100th / every device, set and cleared); a destinations poll with nothing changed and with one
  destination's status changed; an alarms poll with nothing changed and with one alarm raised
  or cleared. *render* is the sum of ``dms_exporter_render_duration_seconds`` over the groups
  that rendered (wall time of the render threads); *CPU* the exporter's CPU seconds over the
  whole poll (fetch, decode, convert, compare, render, and what it set going: the snapshot
  file written), from an idle exporter until it is idle again;
- **memory**: RSS after 5 all-changed devices polls and 10 plain scrapes, and the peak (VmHWM);
- **bytes**: the gzip body against ``gzip -6`` and ``gzip -1`` of the same plain text;
- **scrape**: the exporter's gzip and plain ``/metrics`` against nginx serving the same plain
  text and, with ``gzip_static``, its ``gzip -6`` file (the real limit) and the exporter's own
  gzip bytes; interleaved, one urllib client for every target; medians;
- **scrape during a render**: gzip scrapes one after another while an all-changed devices poll
  runs (fetch, parse and render), against as many scrapes with nothing running; each followed
  by a scrape of nginx serving the same gzip bytes, whose slowdown is the machine's (the
  simulator and this script share its cores), not the exporter's;
- **prometheus_client**: ``generate_latest`` alone on the same series (families prebuilt from
  the saved body, not timed);
- **live** (``--live-minutes`` > 0): a live simulator (its defaults) and the exporter at default
  intervals: CPU seconds per minute and RSS over that window.

The machine's load average is recorded with every phase. Prints Markdown, ending with the
issue's "Done when" table; ``--json`` keeps the figures and ``--compare`` prints two such runs
side by side. Bounded: every wait has a deadline and every loop a count. ``--root`` runs another
checkout's exporter (e.g. main before a change) with the same script.
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
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from bench_exporter import READY_TIMEOUT, free_port, memory_mb, scrape, wait_ok

ROOT = Path(__file__).resolve().parent.parent
NGINX = "/usr/sbin/nginx"
TICKS = os.sysconf("SC_CLK_TCK")
RENDER = re.compile(r'^dms_exporter_render_duration_seconds\{group="([^"]+)"\} (\S+)$', re.M)
DURING_MAX_SCRAPES = 200  # per all-changed poll
PHASES = ("renders", "memory", "scrapes", "during")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def load() -> str:
    """The machine's load averages (1, 5, 15 minutes), as ``uptime`` shows them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


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


def settled_cpu(pid: int, quiet: float = 0.2, limit: float = 30.0) -> float:
    """The process's CPU seconds once it has used none for ``quiet`` seconds (what a poll set
    going after it answered, such as writing the snapshot, is then counted), or at ``limit``."""
    deadline = time.monotonic() + limit
    cpu = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        cpu, last = cpu_seconds(pid), cpu
        if cpu == last:
            break
    return cpu


def refresh(env: dict, endpoint: str = "devices") -> tuple[float, float]:
    """(render seconds, exporter CPU seconds) of one ``POST /-/refresh/<endpoint>``, the CPU
    counted until the exporter is idle again."""
    before = render_durations(env["base"])
    cpu = settled_cpu(env["pid"])
    http("POST", f"{env['base']}/-/refresh/{endpoint}")
    cpu = settled_cpu(env["pid"]) - cpu
    after = render_durations(env["base"])
    return sum(v for g, v in after.items() if before.get(g) != v), cpu


def first_label(body: bytes, family: str, label: str) -> str:
    found = re.search(rf'^{family}\{{(?:[^}}]*,)?{label}="([^"]+)"'.encode(), body, re.M)
    assert found is not None, f"no {family} with {label} in the exposition"
    return found.group(1).decode()


def change_all(env: dict, k: int) -> None:
    """Make the next devices poll see every device changed: the fault set on even ``k``,
    cleared on odd ``k`` (each changes every device's enums from the last poll's)."""
    if k % 2 == 0:
        fault = {"endpoint": "devices", "kind": "unknown_enums", "every": 1}
        http("POST", f"{env['sim']}/_sim/faults", fault)
    else:
        http("DELETE", f"{env['sim']}/_sim/faults")


def all_changed(env: dict, k: int) -> tuple[float, float]:
    """(render seconds, CPU seconds) of a devices poll in which every device changed."""
    change_all(env, k)
    return refresh(env)


def measure_renders(env: dict, repeats: int) -> dict[str, list[tuple[float, float]]]:
    """Render and CPU per scenario (see the module docstring)."""
    sim = env["sim"]
    plain = gzip.decompress(fetch(f"{env['base']}/metrics", gzipped=True))
    device = first_label(plain, "dms_device_info", "device_id")
    destination = first_label(plain, "dms_destination_info", "destination_id")
    out: dict[str, list[tuple[float, float]]] = {}

    def run(name: str, endpoint: str, change: Callable[[int], None] | None) -> None:
        for k in range(repeats):
            if change is not None:
                change(k)
            out.setdefault(name, []).append(refresh(env, endpoint))

    refresh(env)  # settle: the first refresh after start may see clock changes
    states = ("OFFLINE", "ONLINE")
    run("0", "devices", None)
    run("1 state", "devices", lambda k: http(
        "POST", f"{sim}/_sim/devices/{device}", {"connectionState": states[k % 2]}))  # fmt: skip
    run("1 contact", "devices", lambda k: http(
        "POST", f"{sim}/_sim/devices/{device}",
        {"lastContact": f"2026-06-01T11:{k % 60:02d}:{(7 * k + 1) % 60:02d}Z"}))  # fmt: skip
    for name, every in (("1%", 100), ("100%", 1)):
        for _ in range(max(1, repeats // 2)):
            fault = {"endpoint": "devices", "kind": "unknown_enums", "every": every}
            http("POST", f"{sim}/_sim/faults", fault)
            out.setdefault(name, []).append(refresh(env))
            http("DELETE", f"{sim}/_sim/faults")
            out[name].append(refresh(env))
    refresh(env, "destinations")
    run("destinations 0", "destinations", None)
    statuses = ("ERROR", "OK")
    run("destinations 1", "destinations", lambda k: http(
        "POST", f"{sim}/_sim/destinations/{destination}", {"status": statuses[k % 2]}))  # fmt: skip
    refresh(env, "alarms")
    run("alarms 0", "alarms", None)
    raised: list[str] = []

    def alarm(k: int) -> None:  # raise one, then clear it: one alarm changed each time
        if k % 2 == 0:
            reply = http("POST", f"{sim}/_sim/alarms", {"deviceId": device, "severity": "MINOR"})
            raised.append(json.loads(reply)["id"])
        else:
            http("POST", f"{sim}/_sim/alarms/{raised[-1]}/clear")

    run("alarms 1", "alarms", alarm)
    return out


def measure_memory(env: dict) -> dict[str, float]:
    """RSS after 5 all-changed devices polls and 10 plain scrapes, and the peak."""
    for k in range(5):
        all_changed(env, k)
    http("DELETE", f"{env['sim']}/_sim/faults")
    for _ in range(10):
        scrape(f"{env['base']}/metrics", False)
    rss, peak = memory_mb(env["pid"])
    return {"rss": rss, "peak": peak, "load": load()}


def measure_during_render(env: dict, polls: int) -> dict[str, list[float]]:
    """gzip scrape times while an all-changed devices poll runs, and as many when idle; each
    scrape followed by one of nginx serving the same gzip bytes (the share of the slowdown
    that is the machine's, not the exporter's)."""
    url = f"{env['base']}/metrics"
    ours = fetch(url, gzipped=True)
    # nginx() waits for /metrics; gzip_static serves ours/metrics.gz for ours/metrics
    with nginx({"metrics": b"", "ours/metrics": b"", "ours/metrics.gz": ours}) as nginx_url:
        targets = [url] + ([f"{nginx_url}/ours/metrics"] if nginx_url else [])
        if nginx_url:
            assert scrape(targets[1], True)[1] == len(ours), "nginx did not serve our gzip bytes"
        during: list[list[float]] = [[] for _ in targets]
        for k in range(polls):
            done = threading.Event()

            def poll(k: int = k, done: threading.Event = done) -> None:
                try:  # only the requests: reading the render metrics would take this process's
                    # GIL for a while (a whole body inflated and searched) and stall its scrapes
                    change_all(env, k)
                    http("POST", f"{env['base']}/-/refresh/devices")
                finally:
                    done.set()

            worker = threading.Thread(target=poll)
            worker.start()
            time.sleep(0.05)  # the poll request is on its way
            for _ in range(DURING_MAX_SCRAPES):
                if done.is_set():
                    break
                for times, target in zip(during, targets, strict=True):
                    times.append(scrape(target, True)[0])
            worker.join(timeout=600)
        http("DELETE", f"{env['sim']}/_sim/faults")
        refresh(env)
        idle: list[list[float]] = [[] for _ in targets]
        for _ in range(max(len(during[0]), 10)):
            for times, target in zip(idle, targets, strict=True):
                times.append(scrape(target, True)[0])
    out = {"during": during[0], "idle": idle[0]}
    if nginx_url:
        out |= {"nginx_during": during[1], "nginx_idle": idle[1]}
    return out


def gzip_cli(plain: bytes, level: int) -> bytes:
    """``gzip -<level>`` of ``plain`` (the gzip program; Python's zlib if it is missing)."""
    if shutil.which("gzip"):
        return subprocess.run(
            ["gzip", f"-{level}", "-n", "-c"], input=plain, capture_output=True, check=True
        ).stdout
    return gzip.compress(plain, level, mtime=0)


@contextlib.contextmanager
def nginx(files: dict[str, bytes]) -> Iterator[str | None]:
    """nginx serving ``files`` (path -> bytes) with ``gzip_static`` and ``sendfile``."""
    if not Path(NGINX).exists():
        print(f"nginx not found at {NGINX}: skipping the nginx reference", file=sys.stderr)
        yield None
        return
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # nginx workers run as an unprivileged user when started as root
        html = Path(tmp, "html")
        for path, data in files.items():
            Path(html, path).parent.mkdir(parents=True, exist_ok=True)
            Path(html, path).write_bytes(data)
        for d in (html, *html.rglob("*")):
            os.chmod(d, 0o755 if d.is_dir() else 0o644)
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
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def measure_scrapes(env: dict, iterations: int) -> dict[str, float]:
    """Body sizes, and median scrape times of the exporter and of nginx, interleaved."""
    url = f"{env['base']}/metrics"
    plain, gzipped = fetch(url, gzipped=False), fetch(url, gzipped=True)
    level6, level1 = gzip_cli(plain, 6), gzip_cli(plain, 1)
    out: dict[str, float] = {
        "plain_bytes": len(plain),
        "gzip_bytes": len(gzipped),
        "gzip6_bytes": len(level6),
        "gzip1_bytes": len(level1),
    }
    files = {"metrics": plain, "metrics.gz": level6, "ours/metrics": plain,
             "ours/metrics.gz": gzipped}  # fmt: skip
    with nginx(files) as nginx_url:
        targets = [("ours_gzip", url, True), ("ours_plain", url, False)]
        if nginx_url:
            targets += [
                ("nginx6_gzip", f"{nginx_url}/metrics", True),
                ("nginx_plain", f"{nginx_url}/metrics", False),
                ("nginx_ours_gzip", f"{nginx_url}/ours/metrics", True),
            ]
            sizes = {who: scrape(target, gz)[1] for who, target, gz in targets}
            assert sizes["nginx6_gzip"] == len(level6), "nginx did not serve the gzip -6 file"
        times: dict[str, list[float]] = {}
        for _ in range(iterations):
            for who, target, gz in targets:
                times.setdefault(who, []).append(scrape(target, gz)[0])
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


def bench_frozen(
    devices: int, iterations: int, repeats: int, root: Path, peer: bool, phases: set[str]
) -> dict[str, object]:
    with processes(devices, frozen=True, interval="1h", root=root) as env:
        result: dict[str, object] = {"devices": devices, "ready_s": env["ready_s"]}
        result["load_start"] = load()
        result["rss_ready"] = memory_mb(env["pid"])[0]
        if "renders" in phases:
            result["renders"] = measure_renders(env, repeats)
            result["load_renders"] = load()
        if "memory" in phases:
            result["memory"] = measure_memory(env)
        result["scrapes"] = measure_scrapes(env, iterations)
        result["load_scrapes"] = load()
        if "during" in phases:
            result["during"] = measure_during_render(env, max(3, repeats))
            result["load_during"] = load()
        result["rss"], result["peak_rss"] = memory_mb(env["pid"])
        body = Path(env["tmp"], "body.prom")
        saved = Path(tempfile.mkdtemp(), "body.prom")
        shutil.copy(body, saved)
    try:
        result["peer_s"] = peer_generate_latest(saved) if peer else None
    finally:
        shutil.rmtree(saved.parent)
    return result


def bench_live(devices: int, minutes: float, root: Path) -> dict[str, object]:
    with processes(devices, frozen=False, interval=None, root=root) as env:
        rss_ready = memory_mb(env["pid"])[0]
        load_start = load()
        cpu, started = cpu_seconds(env["pid"]), time.monotonic()
        samples = []
        while time.monotonic() - started < minutes * 60:
            time.sleep(min(10.0, max(0.0, minutes * 60 - (time.monotonic() - started))))
            samples.append(memory_mb(env["pid"])[0])
        cpu = cpu_seconds(env["pid"]) - cpu
        elapsed = time.monotonic() - started
        rss, peak = memory_mb(env["pid"])
    return {
        "minutes": minutes,
        "ready_s": env["ready_s"],
        "rss_ready": rss_ready,
        "cpu_per_min": cpu / elapsed * 60,
        "rss_mean": statistics.fmean(samples),
        "rss_end": rss,
        "peak_rss": peak,
        "load_start": load_start,
        "load_end": load(),
    }


def med(pairs: list, i: int) -> float:
    return statistics.median(p[i] for p in pairs)


def figures(r: dict) -> dict[str, float]:
    """The headline figures of one size's result, by name (those of the phases it ran)."""
    s = r["scrapes"]
    f = {
        "gzip_mb": s["gzip_bytes"] / 1e6,
        "gzip6_mb": s["gzip6_bytes"] / 1e6,
        "gzip1_mb": s["gzip1_bytes"] / 1e6,
        "plain_mb": s["plain_bytes"] / 1e6,
        "gzip_vs_6": s["gzip_bytes"] / s["gzip6_bytes"],
        "gzip_vs_1": s["gzip_bytes"] / s["gzip1_bytes"],
        "ours_gzip_ms": s["ours_gzip"] * 1e3,
        "ours_plain_ms": s["ours_plain"] * 1e3,
        "ready_s": r["ready_s"],
    }
    if "memory" in r:
        f["rss_after"], f["peak_rss"] = r["memory"]["rss"], r["memory"]["peak"]
    during = r.get("during")
    if during:
        f["during_med_ms"] = statistics.median(during["during"]) * 1e3 if during["during"] else 0
        f["during_max_ms"] = max(during["during"], default=0) * 1e3
        f["idle_med_ms"] = statistics.median(during["idle"]) * 1e3
        f["idle_max_ms"] = max(during["idle"]) * 1e3
        f["during_vs_idle"] = f["during_med_ms"] / f["idle_med_ms"]
        if during.get("nginx_during"):
            f["nginx_during_med_ms"] = statistics.median(during["nginx_during"]) * 1e3
            f["nginx_idle_med_ms"] = statistics.median(during["nginx_idle"]) * 1e3
            f["nginx_during_vs_idle"] = f["nginx_during_med_ms"] / f["nginx_idle_med_ms"]
    if "nginx6_gzip" in s:
        f["nginx6_gzip_ms"] = s["nginx6_gzip"] * 1e3
        f["nginx_plain_ms"] = s["nginx_plain"] * 1e3
        f["nginx_ours_gzip_ms"] = s["nginx_ours_gzip"] * 1e3
        f["gzip_vs_nginx6"] = s["ours_gzip"] / s["nginx6_gzip"]
        f["gzip_vs_nginx_ours"] = s["ours_gzip"] / s["nginx_ours_gzip"]
        f["plain_vs_nginx"] = s["ours_plain"] / s["nginx_plain"]
    if r.get("peer_s"):
        f["peer_s"] = r["peer_s"]
        f["peer_vs_gzip"] = r["peer_s"] / s["ours_gzip"]
    if "renders" in r:
        f.update(render_figures(r["renders"]))
    live = r.get("live")
    if live:
        f["live_cpu_min"] = live["cpu_per_min"]
        f["live_ready_s"] = live["ready_s"]
        f["live_rss_mean"] = live["rss_mean"]
        f["live_peak_rss"] = live["peak_rss"]
    return f


def render_figures(renders: dict) -> dict[str, float]:
    """Renders and poll CPU as shares of an all-changed devices poll's."""
    all_render = med(renders["100%"], 0)
    idle_cpu = med(renders["0"], 1)
    all_cpu = max(med(renders["100%"], 1) - idle_cpu, 1e-9)
    f = {"poll0_cpu": idle_cpu, "all_render_s": all_render, "all_cpu": all_cpu}
    for name in ("1 state", "1 contact", "1%"):
        f[f"render {name}"] = med(renders[name], 0) / all_render * 100
        f[f"cpu {name}"] = (med(renders[name], 1) - idle_cpu) / all_cpu * 100
    for endpoint in ("destinations", "alarms"):
        f[f"render {endpoint} 1"] = med(renders[f"{endpoint} 1"], 0) / all_render * 100
        base = med(renders[f"{endpoint} 0"], 1)
        f[f"{endpoint}0_cpu"] = base
        f[f"cpu {endpoint} 1"] = (med(renders[f"{endpoint} 1"], 1) - base) / all_cpu * 100
    return f


#: (label, figure, format, target, whether lower is the goal); the issue's "Done when".
DONE_WHEN = [
    ("gzip body / `gzip -6` of the same text", "gzip_vs_6", "{:.2f}x", 1.25),
    ("gzip scrape / nginx serving that `gzip -6` file", "gzip_vs_nginx6", "{:.2f}x", 1.3),
    ("live CPU per minute (s)", "live_cpu_min", "{:.2f}", 3.0),
    ("ready after start (s)", "ready_s", "{:.1f}", 10.0),
    ("devices poll, nothing changed: CPU (s)", "poll0_cpu", "{:.2f}", 0.5),
    ("render, 1 device's connection state / all changed (%)", "render 1 state", "{:.1f}", 2.0),
    ("render, 1 % of devices / all changed (%)", "render 1%", "{:.1f}", 10.0),
    ("RSS after 5 all-changed polls + 10 plain scrapes (MB)", "rss_after", "{:.0f}", 450),
    ("peak RSS (MB)", "peak_rss", "{:.0f}", 600),
    ("gzip scrape during an all-changed poll / idle (medians)", "during_vs_idle", "{:.2f}x", 1.5),
]


def report(r: dict) -> None:
    n, f, live = r["devices"], figures(r), r.get("live")
    print(f"\n### {n:,} devices\n")
    loads = [
        ("start", "load_start"),
        ("after renders", "load_renders"),
        ("after scrapes", "load_scrapes"),
        ("after scrapes during a poll", "load_during"),
    ]
    print("- load (1/5/15 min): " + ", ".join(f"{w} {r[k]}" for w, k in loads if k in r))
    memory = (f"; after 5 all-changed polls and 10 plain scrapes {f['rss_after']:.0f} MB (peak "
              f"{f['peak_rss']:.0f} MB)" if "rss_after" in f else "")  # fmt: skip
    print(f"- ready {r['ready_s']:.1f} s; RSS at ready {r['rss_ready']:.0f} MB{memory};"
          f" at the end {r['rss']:.0f} MB, peak {r['peak_rss']:.0f} MB")  # fmt: skip
    print(f"- bytes: plain {f['plain_mb']:.1f} MB; gzip ours {f['gzip_mb']:.2f} MB, `gzip -6` "
          f"{f['gzip6_mb']:.2f} MB, `gzip -1` {f['gzip1_mb']:.2f} MB: ours / -6 "
          f"**{f['gzip_vs_6']:.2f}x**, ours / -1 {f['gzip_vs_1']:.2f}x")  # fmt: skip
    if "nginx6_gzip_ms" in f:
        print(f"- gzip scrape median: ours {f['ours_gzip_ms']:.1f} ms, nginx `gzip -6` file "
              f"{f['nginx6_gzip_ms']:.1f} ms (ours / that **{f['gzip_vs_nginx6']:.2f}x**), nginx"
              f" on our own gzip bytes {f['nginx_ours_gzip_ms']:.1f} ms "
              f"({f['gzip_vs_nginx_ours']:.2f}x)")  # fmt: skip
        print(
            f"- plain scrape median: ours {f['ours_plain_ms']:.1f} ms, nginx "
            f"{f['nginx_plain_ms']:.1f} ms, ours / nginx **{f['plain_vs_nginx']:.2f}x**"
        )
    if "peer_s" in f:
        print(
            f"- prometheus_client generate_latest on the same series: {f['peer_s']:.2f} s; "
            f"peer / our gzip scrape {f['peer_vs_gzip']:.0f}x"
        )
    if "during_vs_idle" in f:
        print(f"- gzip scrape during an all-changed devices poll: median {f['during_med_ms']:.1f} "
              f"ms, max {f['during_max_ms']:.1f} ms ({len(r['during']['during'])} scrapes); idle "
              f"{f['idle_med_ms']:.1f} / {f['idle_max_ms']:.1f} ms: "
              f"**{f['during_vs_idle']:.2f}x**")  # fmt: skip
    if "nginx_during_vs_idle" in f:
        print(f"- the same for nginx serving our gzip bytes, each right after one of ours: median "
              f"{f['nginx_during_med_ms']:.1f} ms during, {f['nginx_idle_med_ms']:.1f} ms idle: "
              f"{f['nginx_during_vs_idle']:.2f}x (the machine's share)")  # fmt: skip
    if "renders" in r:
        report_renders(r["renders"], f)
    if live:
        print(f"\n- live ({live['minutes']:g} min, simulator defaults, default intervals): "
              f"ready {live['ready_s']:.1f} s, CPU **{live['cpu_per_min']:.2f} s per minute**, RSS "
              f"at ready {live['rss_ready']:.0f} MB, mean {live['rss_mean']:.0f} MB, end "
              f"{live['rss_end']:.0f} MB, peak {live['peak_rss']:.0f} MB; load "
              f"{live['load_start']} at the start, {live['load_end']} at the end")  # fmt: skip


def report_renders(renders: dict, f: dict[str, float]) -> None:
    print(
        "\n| poll, what changed | render (s, median) | render / all changed | poll CPU (s) "
        "| CPU - same poll unchanged | that / all changed |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    all_render, all_cpu = f["all_render_s"], f["all_cpu"]
    for name in ("0", "1 state", "1 contact", "1%", "100%", "destinations 0", "destinations 1",
                 "alarms 0", "alarms 1"):  # fmt: skip
        render, cpu = med(renders[name], 0), med(renders[name], 1)
        endpoint = name.split()[0] if name.split()[0] in ("destinations", "alarms") else ""
        base = med(renders[f"{endpoint} 0" if endpoint else "0"], 1)
        label = name if endpoint else f"devices {name}"
        print(f"| {label} | {render:.3f} | {render / all_render * 100:.1f} % | {cpu:.2f} | "
              f"{cpu - base:.2f} | {(cpu - base) / all_cpu * 100:.1f} % |")  # fmt: skip


def done_when(results: list[dict], columns: list[str] | None = None) -> None:
    """The issue's "Done when" table: one column per result (size, or before/after)."""
    heads = columns or [f"{r['devices']:,}" for r in results]
    print("\n| Done when | target | " + " | ".join(heads) + " |")
    print("|---|---:|" + "---:|" * len(heads))
    table = [figures(r) for r in results]
    for label, key, fmt, target in DONE_WHEN:
        cells = []
        for f in table:
            if key not in f:
                cells.append("-")
                continue
            met = "met" if f[key] <= target else "**not met**"
            cells.append(f"{fmt.format(f[key])} {met}")
        print(f"| {label} | <= {target:g} | " + " | ".join(cells) + " |")


def compare(paths: list[Path]) -> None:
    """Two or more ``--json`` runs side by side, size by size, and their figures."""
    runs = [(p.stem, json.loads(p.read_text())) for p in paths]
    for size in sorted({r["devices"] for _, run in runs for r in run["results"]}):
        picked = [(name, r) for name, run in runs for r in run["results"] if r["devices"] == size]
        print(f"\n## {size:,} devices")
        done_when([r for _, r in picked], [name for name, _ in picked])
        keys = [k for k in figures(picked[0][1]) if all(k in figures(r) for _, r in picked)]
        print("\n| figure | " + " | ".join(name for name, _ in picked) + " |")
        print("|---|" + "---:|" * len(picked))
        for k in keys:
            print(f"| {k} | " + " | ".join(f"{figures(r)[k]:.3g}" for _, r in picked) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="20000,100000")
    parser.add_argument("--iterations", type=int, default=15, help="scrapes per target (bounded)")
    parser.add_argument("--repeats", type=int, default=3, help="polls per render scenario")
    parser.add_argument("--live-minutes", type=float, default=0.0)
    parser.add_argument("--live-devices", default="", help="sizes with a live window (all)")
    parser.add_argument("--no-peer", action="store_true", help="skip prometheus_client")
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose exporter to run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--compare", type=Path, nargs="+", help="print --json runs side by side")
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help="frozen phases to run, of " + ",".join(PHASES) + " (scrapes always run)",
    )
    args = parser.parse_args()
    if args.compare:
        compare(args.compare)
        return
    iterations = max(1, min(args.iterations, 200))
    repeats = max(1, min(args.repeats, 20))
    root = args.root.resolve()
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, exporter from "
          f"{root} ({commit or 'no git'}), {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, "
          f"load {load()}")  # fmt: skip
    phases = {p for p in args.phases.split(",") if p}
    if phases - set(PHASES):
        parser.error(f"--phases: unknown {','.join(sorted(phases - set(PHASES)))}")
    sizes = [int(x) for x in args.devices.split(",")]
    live_sizes = {int(x) for x in args.live_devices.split(",") if x} or set(sizes)
    results = []
    for n in sizes:
        result = bench_frozen(n, iterations, repeats, root, not args.no_peer, phases)
        if args.live_minutes > 0 and n in live_sizes:
            result["live"] = bench_live(n, args.live_minutes, root)
        results.append(result)
        report(result)
        sys.stdout.flush()
        if args.json:
            args.json.write_text(json.dumps({"root": str(root), "commit": commit,
                                             "results": results}, indent=1))  # fmt: skip
    done_when(results)


if __name__ == "__main__":
    main()
