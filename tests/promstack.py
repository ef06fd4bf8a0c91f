"""Real Prometheus, Alertmanager and a webhook receiver for tests, all on 127.0.0.1.

No tests here; test modules import it (`import promstack`). Everything binds to loopback on free
ports, keeps its data in a directory the caller owns (pytest's tmp_path), and is killed when its
context manager exits, also on failure. Every wait is bounded.

    with promstack.webhook_receiver() as hook, \\
         promstack.alertmanager(tmp_path, promstack.webhook_config(hook.url)) as am, \\
         promstack.prometheus(tmp_path, scrape_config, rules={"a.yml": rules_text},
                              alertmanager_url=am.address) as prom:
        prom.wait_for('up{job="demo"} == 1', timeout=20)
        hook.wait_for(lambda alert: alert["labels"]["alertname"] == "Always", timeout=30)

Pitfalls from ../shared/research/tooling.md handled here: Debian's binaries default to
0.0.0.0 (so every listen address is given explicitly, including Alertmanager's cluster gossip,
switched off with an empty `--cluster.listen-address=`); Prometheus' first alert send is lost
before the Alertmanager is discovered and the next one comes a minute later
(`--rules.alert.resend-delay=1s`); the first scrape lands ~6 s after start even with a 1 s
interval, so callers wait for data, not only for /-/ready.

Also the static helpers the rule and dashboard tests share: find a binary, run
`promtool check rules`, and the metric names of README.md's metric reference.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import yaml

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# Debian ships Alertmanager as prometheus-alertmanager; upstream tarballs call it alertmanager.
BINARIES = {
    "prometheus": ("prometheus",),
    "promtool": ("promtool",),
    "alertmanager": ("prometheus-alertmanager", "alertmanager"),
    "amtool": ("amtool",),
}


def binary(name: str) -> str | None:
    """Path of a Prometheus-stack binary ("prometheus", "promtool", "alertmanager", "amtool")."""
    for candidate in BINARIES[name]:
        path = shutil.which(candidate)
        if path:
            return path
    return None


def missing_reason(name: str) -> str:
    """The skip reason when binary(name) is None."""
    package = "prometheus-alertmanager" if name in ("alertmanager", "amtool") else "prometheus"
    return f"{name} not installed (apt-get install --no-install-recommends {package})"


# --- static checks --------------------------------------------------------------------------


def run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a tool, capture its output; never hangs longer than `timeout` seconds."""
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def promtool_check_rules(*paths: Path, lint: str = "all") -> subprocess.CompletedProcess[str]:
    """`promtool check rules --lint=...` on rule files. rc 0 and no lint output is clean."""
    promtool = binary("promtool")
    assert promtool, missing_reason("promtool")
    return run([promtool, "check", "rules", f"--lint={lint}", *map(str, paths)])


def check_promql(exprs: dict[str, str], tmp_dir: Path) -> subprocess.CompletedProcess[str]:
    """Parse PromQL expressions with promtool by writing them as recording rules.

    `exprs` maps a name (for the error message) to an expression. promtool 2.42 has no
    "check this query" command, but it parses every rule of a rule file and names the bad one.
    """
    rules = [
        {"record": f"check:expr_{i}:x", "expr": expr, "labels": {"source": name[:200]}}
        for i, (name, expr) in enumerate(exprs.items())
    ]
    path = tmp_dir / "exprs.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "exprs", "rules": rules}]}))
    return promtool_check_rules(path)


_CATALOGUE_ROW = re.compile(
    r"^\|\s*`dms_[a-z_]+`\s*\|\s*(?:gauge|counter|info|stateset)\s*\|.*$", re.MULTILINE
)
_METRIC_NAME = re.compile(r"(?<![\w:$.])dms_[a-z_]+")
_SELECTOR = re.compile(r"(?<![\w:$.])(dms_[a-z_]+)\s*\{([^}]*)\}")
_MATCHER_LABEL = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
TARGET_LABELS = frozenset({"job", "instance"})  # added by Prometheus to every scraped series


def metric_reference() -> dict[str, frozenset[str]]:
    """README.md's metric reference: exposed metric name -> its label names.

    Names are as scraped (`_info`, `_total` included); a state set's labels include its state
    label (named like the metric). A row is `| `name` | type | labels or — | endpoint | meaning |`.
    """
    text = README.read_text(encoding="utf-8")
    reference = text.split("## Metric reference", 1)[1].split("\n## ", 1)[0]
    metrics = {}
    for row in _CATALOGUE_ROW.findall(reference):
        name, _kind, label_cell = (cell.strip() for cell in row.strip().strip("|").split("|")[:3])
        labels = {label.strip() for label in label_cell.split(",")} - {"—", ""}
        metrics[name.strip("`")] = frozenset(labels)
    return metrics


def metric_names_in(expr: str) -> set[str]:
    """`dms_*` names an expression uses (a state set's label is named like its metric, so
    those pass the same check)."""
    return set(_METRIC_NAME.findall(expr))


def unknown_names(expr: str, catalogue: dict[str, frozenset[str]]) -> list[str]:
    """Problems with the catalogue in one expression: metric names it does not list, and
    labels matched in a selector (`metric{label="..."}`) that the metric does not have."""
    problems = [f"unknown metric {name}" for name in metric_names_in(expr) - catalogue.keys()]
    for name, matchers in _SELECTOR.findall(expr):
        known = catalogue.get(name, frozenset()) | TARGET_LABELS
        problems += [
            f"{name} has no label {label}"
            for label in _MATCHER_LABEL.findall(matchers)
            if name in catalogue and label not in known
        ]
    return problems


# --- servers --------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_until(check: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """Call `check` until it returns something truthy; TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except (OSError, ValueError) as e:  # connection refused while starting, bad JSON
            last_error = e
        if time.monotonic() >= deadline:
            raise TimeoutError(f"not true after {timeout} s (last error: {last_error})")
        time.sleep(interval)


@dataclass
class Server:
    """A started binary: its base URL, process and log file."""

    name: str
    address: str  # host:port
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = 15) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}):\n{self.log()}")
            return http_get(f"{self.url}/-/ready", timeout=1)[0] == 200

        try:
            wait_until(ready, timeout)
        except TimeoutError as e:
            raise TimeoutError(f"{self.name} not ready after {timeout} s:\n{self.log()}") from e


ServerT = TypeVar("ServerT", bound=Server)


@contextlib.contextmanager
def _run_server(
    cls: type[ServerT], name: str, args: list[str], address: str, log_path: Path
) -> Iterator[ServerT]:
    """Start a binary, wait for its /-/ready, and always stop it (TERM, then KILL) on exit."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    server = cls(name, address, process, log_path)
    try:
        server.wait_ready()
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class Prometheus(Server):
    """A running Prometheus with query helpers over its HTTP API."""

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; the result vector (list of {"metric": ..., "value": [t, "v"]}).

        Raises ValueError with Prometheus' message if the query is rejected.
        """
        params = {"query": expr}
        if at is not None:
            params["time"] = str(at)
        status, body = http_get(f"{self.url}/api/v1/query?{urllib.parse.urlencode(params)}")
        reply = json.loads(body)
        if status != 200 or reply.get("status") != "success":
            raise ValueError(f"query {expr!r} failed ({status}): {reply.get('error', body[:300])}")
        data = reply["data"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def wait_for(self, expr: str, timeout: float = 30) -> list[dict[str, Any]]:
        """Poll `expr` until it returns at least one series; that result. Query errors are
        raised at once (a typo should not cost `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{expr!r} returned nothing for {timeout} s")
            time.sleep(0.5)

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts Prometheus holds (pending and firing)."""
        status, body = http_get(f"{self.url}/api/v1/alerts")
        return json.loads(body)["data"]["alerts"] if status == 200 else []


class Alertmanager(Server):
    def alerts(self) -> list[dict[str, Any]]:
        """Alerts it holds, each with status.state ("active", "suppressed") and inhibitedBy."""
        status, body = http_get(f"{self.url}/api/v2/alerts")
        return json.loads(body) if status == 200 else []

    def post(self, *label_sets: dict[str, str]) -> None:
        """Send alerts as Prometheus would (firing, no end time)."""
        alerts = [{"labels": labels, "annotations": {}} for labels in label_sets]
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200, response.read()


@contextlib.contextmanager
def prometheus(
    tmp_path: Path,
    scrape_configs: list[dict[str, Any]],
    *,
    rules: dict[str, str] | None = None,
    alertmanager_url: str | None = None,
    scrape_self: bool = False,
    interval: str = "1s",
    extra_args: tuple[str, ...] = (),
) -> Iterator[Prometheus]:
    """Start Prometheus with these scrape configs and rule files (file name -> YAML text).

    `alertmanager_url` is host:port of an Alertmanager to send alerts to; `scrape_self` adds a
    job "prometheus" scraping this Prometheus. Scrape and evaluation intervals default to 1 s.
    """
    binary_path = binary("prometheus")
    assert binary_path, missing_reason("prometheus")
    home = tmp_path / f"prometheus-{free_port()}"
    (home / "rules").mkdir(parents=True)
    for filename, text in (rules or {}).items():
        (home / "rules" / filename).write_text(text)
    address = f"127.0.0.1:{free_port()}"
    if scrape_self:
        scrape_configs = [
            *scrape_configs,
            {"job_name": "prometheus", "static_configs": [{"targets": [address]}]},
        ]
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [f"rules/{name}" for name in rules or {}],
        "scrape_configs": scrape_configs,
    }
    if alertmanager_url:
        config["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": [alertmanager_url]}]}]
        }
    (home / "prometheus.yml").write_text(yaml.safe_dump(config))
    args = [
        binary_path,
        f"--config.file={home / 'prometheus.yml'}",
        f"--storage.tsdb.path={home / 'data'}",
        f"--web.listen-address={address}",
        # the first send is lost before the Alertmanager is discovered; the default resend
        # delay of 1 m would then hold the alert back for a minute
        "--rules.alert.resend-delay=1s",
        "--log.level=warn",
        *extra_args,
    ]
    with _run_server(Prometheus, "prometheus", args, address, home / "prometheus.log") as server:
        yield server


def webhook_config(url: str, **route: Any) -> dict[str, Any]:
    """An Alertmanager config sending everything at once to one webhook."""
    return {
        "route": {
            "receiver": "hook",
            "group_by": ["alertname"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
            **route,
        },
        "receivers": [{"name": "hook", "webhook_configs": [{"url": url, "send_resolved": True}]}],
    }


@contextlib.contextmanager
def alertmanager(tmp_path: Path, config: dict[str, Any] | str | Path) -> Iterator[Alertmanager]:
    """Start Alertmanager with a config (a dict, YAML text, or a file path) and fresh storage
    (Alertmanager remembers what it sent: a reused storage path would swallow notifications)."""
    binary_path = binary("alertmanager")
    assert binary_path, missing_reason("alertmanager")
    home = tmp_path / f"alertmanager-{free_port()}"
    home.mkdir(parents=True)
    if isinstance(config, Path):
        config_path = config
    else:
        config_path = home / "alertmanager.yml"
        text = config if isinstance(config, str) else yaml.safe_dump(config)
        config_path.write_text(text)
    address = f"127.0.0.1:{free_port()}"
    args = [
        binary_path,
        f"--config.file={config_path}",
        f"--storage.path={home / 'data'}",
        f"--web.listen-address={address}",
        "--cluster.listen-address=",  # no gossip (it would listen on 0.0.0.0:9094)
        "--log.level=warn",
    ]
    log_path = home / "alertmanager.log"
    with _run_server(Alertmanager, "alertmanager", args, address, log_path) as server:
        yield server


@dataclass
class Webhook:
    """What a webhook receiver got: Alertmanager's JSON payloads, in arrival order."""

    url: str
    payloads: list[dict[str, Any]] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)  # time.monotonic() of each payload
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert of every payload, flattened."""
        with self._lock:
            return [alert for payload in self.payloads for alert in payload.get("alerts", [])]

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30
    ) -> dict[str, Any]:
        """The first received alert matching `predicate`, waiting up to `timeout` seconds."""

        def find() -> dict[str, Any] | None:
            return next((a for a in self.alerts() if predicate(a)), None)

        try:
            return wait_until(find, timeout)
        except TimeoutError as e:
            raise TimeoutError(f"no matching alert in {timeout} s; got {self.alerts()}") from e


@contextlib.contextmanager
def webhook_receiver(path: str = "/hook") -> Iterator[Webhook]:
    """An HTTP server on 127.0.0.1 recording the JSON bodies POSTed to it."""
    hook: Webhook

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            try:
                payload = json.loads(body)
            except ValueError:
                payload = {"invalid": body.decode(errors="replace")}
            with hook._lock:
                hook.payloads.append(payload)
                hook.arrived.append(time.monotonic())
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook = Webhook(url=f"http://127.0.0.1:{server.server_address[1]}{path}")
    thread = threading.Thread(target=server.serve_forever, name="webhook", daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def static_metrics(text: str | Callable[[], str]) -> Iterator[str]:
    """Serve a text exposition at http://127.0.0.1:PORT/metrics; yields host:port.

    `text` may be a function, called per scrape, to change the data while a test runs.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = (text() if callable(text) else text).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
