"""deploy/docker, deploy/kubernetes, deploy/systemd and grafana/provisioning: they load, and
their pieces point at each other (ports, paths, names, the rules) the way the stack needs.

Docker and a Kubernetes cluster are not available here, so these are structural checks, plus
the real tools where they happen to be installed (docker-compose, systemd-analyze,
kubernetes-validate)."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import promstack
import pytest
import yaml

from dms_exporter.config import config_from_mapping

ROOT = promstack.ROOT
DOCKER = ROOT / "deploy" / "docker"
K8S = ROOT / "deploy" / "kubernetes"
UNIT = ROOT / "deploy" / "systemd" / "dms-exporter.service"
PROVISIONING = ROOT / "grafana" / "provisioning"
PORT = 9883


def load(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_all(path: Path) -> list:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def check_exporter_config(mapping: dict, tmp_path: Path) -> None:
    """Validate a config with the exporter's own loader, its password file swapped for a
    temporary one (the real one exists only in the container)."""
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    mapping["dms"]["password_file"] = str(secret)
    loaded = config_from_mapping(mapping, str(tmp_path / "config.yml"))
    assert loaded.dms.password == "s3cret"


# --- compose --------------------------------------------------------------------------------

COMPOSE = load(DOCKER / "compose.yml")
SERVICES = COMPOSE["services"]


def bind_mounts(service: dict) -> list[tuple[Path, str]]:
    """(host path, container path) of a service's bind mounts (named volumes left out)."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts.append(((DOCKER / source).resolve(), target))
    return mounts


def test_compose_has_the_whole_stack():
    assert set(SERVICES) == {"simulator", "dms-exporter", "prometheus", "alertmanager", "grafana"}


def test_compose_bind_mounts_exist():
    for name, service in SERVICES.items():
        for source, _ in bind_mounts(service):
            assert source.exists(), f"{name}: {source} does not exist"
    for secret in COMPOSE["secrets"].values():
        assert (DOCKER / secret["file"]).is_file()


def test_compose_publishes_ports_on_loopback_only():
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_compose_exporter_polls_the_simulator_with_the_mounted_secret(tmp_path):
    exporter = SERVICES["dms-exporter"]
    command = " ".join(exporter["command"])
    assert f"--web.listen-address=0.0.0.0:{PORT}" in command
    config_path = re.search(r"--config.file=(\S+)", command).group(1)
    [(config_file, _)] = [m for m in bind_mounts(exporter) if m[1] == config_path]
    config = load(config_file)
    # the simulator's service name and port
    simulator_command = " ".join(SERVICES["simulator"]["command"])
    port = re.search(r"--listen-address 0\.0\.0\.0:(\d+)", simulator_command).group(1)
    assert config["dms"]["url"] == f"http://simulator:{port}/dms-api/v1"
    assert config["dms"]["password_file"] == "/run/secrets/dms-password"
    assert exporter["secrets"] == ["dms-password"]
    assert (DOCKER / COMPOSE["secrets"]["dms-password"]["file"]).read_text().strip()
    check_exporter_config(config, tmp_path)


def test_compose_prometheus_gets_the_rules_and_finds_the_exporter_and_alertmanager():
    [(prom_dir, target)] = bind_mounts(SERVICES["prometheus"])
    assert prom_dir == ROOT / "deploy" / "prometheus" and target == "/etc/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in SERVICES["prometheus"]["command"]
    config = load(prom_dir / "prometheus.yml")
    for rule_file in config["rule_files"]:
        assert (prom_dir / rule_file).is_file()
    [dms_job] = [job for job in config["scrape_configs"] if job["job_name"] == "dms"]
    assert dms_job["static_configs"][0]["targets"] == [f"dms-exporter:{PORT}"]
    assert dms_job["scrape_interval"] == "30s" and dms_job["scrape_timeout"] == "10s"
    [am] = config["alerting"]["alertmanagers"]
    assert am["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert "--cluster.listen-address=" in SERVICES["alertmanager"]["command"]


def test_compose_grafana_mounts_provisioning_and_the_dashboards_where_the_provider_looks():
    mounts = dict((target, source) for source, target in bind_mounts(SERVICES["grafana"]))
    assert mounts["/etc/grafana/provisioning"] == PROVISIONING
    [provider] = load(PROVISIONING / "dashboards" / "dms.yml")["providers"]
    assert mounts[provider["options"]["path"]] == ROOT / "grafana" / "dashboards"
    [datasource] = load(PROVISIONING / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (ROOT / "grafana" / "dashboards" / Path(home).name).is_file()


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_docker_compose_config_accepts_the_file():
    result = promstack.run(["docker-compose", "-f", str(DOCKER / "compose.yml"), "config", "-q"])
    assert result.returncode == 0, result.stderr


# --- Dockerfile -----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


def test_dockerfile_runs_the_exporter_as_non_root_with_a_healthcheck():
    instructions = dockerfile_instructions()
    froms = [arg for op, arg in instructions if op == "FROM"]
    assert all(arg.startswith("python:3.11-slim") for arg in froms)
    runtime = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM") :]
    ops = dict(runtime)
    user = ops["USER"].split(":")[0]
    assert user not in ("root", "0")
    assert ops["EXPOSE"] == str(PORT)
    assert f"http://127.0.0.1:{PORT}/-/healthy" in ops["HEALTHCHECK"]
    assert "urllib.request" in ops["HEALTHCHECK"]
    assert ops["ENTRYPOINT"] == '["dms-exporter"]'
    assert "--config.file=" in ops["CMD"] and f"0.0.0.0:{PORT}" in ops["CMD"]
    assert any(
        op == "RUN" and "pip install" in arg and arg.endswith(".") for op, arg in instructions
    )


def test_dockerfile_copies_what_exists():
    for op, arg in dockerfile_instructions():
        if op == "COPY" and not arg.startswith("--from"):
            *sources, _ = arg.split()
            for source in sources:
                if "*" not in source:
                    assert (ROOT / source).exists(), source


# --- Kubernetes -----------------------------------------------------------------------------

KUSTOMIZATION = load(K8S / "kustomization.yaml")
MANIFESTS = {name: load_all(K8S / name) for name in KUSTOMIZATION["resources"]}


def manifest(kind: str) -> dict:
    [doc] = [d for docs in MANIFESTS.values() for d in docs if d["kind"] == kind]
    return doc


def container() -> dict:
    [c] = manifest("Deployment")["spec"]["template"]["spec"]["containers"]
    return c


def test_kustomization_lists_every_manifest():
    assert set(KUSTOMIZATION["resources"]) == {p.name for p in K8S.glob("*.yaml")} - {
        "kustomization.yaml"
    }
    kinds = {d["kind"] for docs in MANIFESTS.values() for d in docs}
    assert kinds == {
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "ServiceMonitor",
        "PrometheusRule",
    }


def test_prometheusrule_wraps_the_rule_files_unchanged():
    groups = []
    for name in ("dms-alerts.yml", "dms-recording.yml"):
        groups += load(ROOT / "deploy" / "prometheus" / "rules" / name)["groups"]
    assert manifest("PrometheusRule")["spec"]["groups"] == groups


def test_prometheusrule_is_what_the_generator_writes():
    result = promstack.run([sys.executable, str(K8S / "generate.py"), "--check"])
    assert result.returncode == 0, result.stderr


def test_deployment_probes_hit_healthy_and_ready_on_the_container_port():
    c = container()
    [port] = c["ports"]
    assert port["containerPort"] == PORT
    assert f"--web.listen-address=0.0.0.0:{PORT}" in c["args"]
    for probe, path in (("livenessProbe", "/-/healthy"), ("readinessProbe", "/-/ready")):
        get = c[probe]["httpGet"]
        assert get["path"] == path
        assert get["port"] in (port["name"], port["containerPort"])


def test_deployment_runs_non_root_read_only_with_resources():
    pod = manifest("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    c = container()
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    assert manifest("Deployment")["spec"]["replicas"] == 1


def test_deployment_mounts_the_configmap_as_config_file_and_the_secret_as_password_file(tmp_path):
    c = container()
    pod = manifest("Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    config_file = next(a.split("=", 1)[1] for a in c["args"] if a.startswith("--config.file="))

    configmap = manifest("ConfigMap")
    assert volumes["config"]["configMap"]["name"] == configmap["metadata"]["name"]
    assert mounts["config"]["mountPath"] == config_file
    config = yaml.safe_load(configmap["data"][mounts["config"]["subPath"]])

    secret = manifest("Secret")
    assert volumes["dms-password"]["secret"]["secretName"] == secret["metadata"]["name"]
    [key] = secret["stringData"]
    assert config["dms"]["password_file"] == f"{mounts['dms-password']['mountPath']}/{key}"
    check_exporter_config(config, tmp_path)


def test_service_and_servicemonitor_reach_the_pod_as_job_dms():
    pod_labels = manifest("Deployment")["spec"]["template"]["metadata"]["labels"]
    service = manifest("Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    [port] = service["spec"]["ports"]
    assert port["targetPort"] == container()["ports"][0]["name"]

    monitor = manifest("ServiceMonitor")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == port["name"]
    assert endpoint["path"] == "/metrics"
    # the alert DmsExporterDown selects up{job="dms"}
    assert {"action": "replace", "targetLabel": "job", "replacement": "dms"} in endpoint[
        "relabelings"
    ]


@pytest.mark.parametrize(
    "name", ["configmap.yaml", "secret.yaml", "deployment.yaml", "service.yaml"]
)
def test_core_manifests_match_the_kubernetes_schema(name):
    validate = pytest.importorskip("kubernetes_validate")
    for doc in MANIFESTS[name]:
        validate.validate(doc, "1.30.0", strict=True)


# --- systemd --------------------------------------------------------------------------------


def unit_entries() -> dict[str, list[str]]:
    """`Key` -> values of the [Service] section (keys may repeat), continuation lines joined."""
    text = UNIT.read_text().replace("\\\n", " ")
    section, entries = "", {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            entries.setdefault(key, []).append(" ".join(value.split()))
    return entries


def test_systemd_unit_runs_the_exporter_with_its_config_and_reloads_with_sighup():
    entries = unit_entries()
    [exec_start] = entries["ExecStart"]
    assert exec_start.split()[0].endswith("/dms-exporter")
    assert "--config.file=/etc/dms-exporter/config.yml" in exec_start
    assert f"--web.listen-address=0.0.0.0:{PORT}" in exec_start
    assert entries["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert entries["DynamicUser"] == ["yes"]
    assert entries["NoNewPrivileges"] == ["yes"]
    assert entries["ProtectSystem"] == ["strict"]
    assert entries["LoadCredential"] == ["dms-password:/etc/dms-exporter/dms-password"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_has_no_complaints(tmp_path):
    """Unknown keys and bad values are warnings on stderr. The binary does not exist here, so a
    copy with ExecStart pointing at /bin/true is verified."""
    text = UNIT.read_text().replace("/opt/dms-exporter/bin/dms-exporter", "/bin/true")
    copy = tmp_path / UNIT.name
    copy.write_text(text)
    result = promstack.run(["systemd-analyze", "verify", str(copy)])
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "" and result.stdout.strip() == ""


def test_every_deploy_form_gives_the_exporter_65536_files():
    """The connection cap sits below the file limit; 1,024 (the usual default) is too few."""
    assert unit_entries()["LimitNOFILE"] == ["65536"]
    compose = load(DOCKER / "compose.yml")
    assert compose["services"]["dms-exporter"]["ulimits"]["nofile"] == {
        "soft": 65536,
        "hard": 65536,
    }
    from dms_exporter.web.server import FILE_LIMIT

    assert FILE_LIMIT == 65536  # what the exporter raises itself to in a container or a pod
