"""A real Prometheus (2.42 on this machine) scrapes the exporter over TLS with a client
certificate and basic auth, as an operator's scrape config would (`scheme: https`,
`tls_config`, `basic_auth`); the same target with a wrong password is down with a 401.
Certificates are made by openssl for the test; the exporter runs as a process (`--demo`)
with a node_exporter-style `--web.config.file`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import bcrypt
import promstack
import pytest
from pki import make_pki

pytestmark = pytest.mark.skipif(
    promstack.binary("prometheus") is None or shutil.which("openssl") is None,
    reason=f"{promstack.missing_reason('prometheus')}; openssl needed too",
)

PASSWORD = "scrape-Pa55"


def test_prometheus_scrapes_over_tls_with_basic_auth(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode()
    web_config = tmp_path / "web.yml"
    web_config.write_text(
        "tls_server_config:\n"
        f"  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
        f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {pki.ca}\n"
        "basic_auth_users:\n"
        f"  prometheus: {hashed}\n"
    )
    address = f"127.0.0.1:{promstack.free_port()}"
    log_path = tmp_path / "exporter.log"
    with log_path.open("wb") as log:
        exporter = subprocess.Popen(
            [sys.executable, "-m", "dms_exporter", "--demo", "--demo.devices", "20",
             "--web.listen-address", address, "--web.config.file", str(web_config)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    tls = {
        "ca_file": str(pki.ca),
        "cert_file": str(pki.client_cert),
        "key_file": str(pki.client_key),
    }

    def job(name: str, password: str) -> dict[str, object]:
        return {
            "job_name": name,
            "scheme": "https",
            "tls_config": tls,
            "basic_auth": {"username": "prometheus", "password": password},
            "static_configs": [{"targets": [address]}],
        }

    try:
        with promstack.prometheus(
            tmp_path, [job("secured", PASSWORD), job("wrong", "nope")]
        ) as prom:
            prom.wait_for('up{job="secured"} == 1', timeout=60)
            prom.wait_for('dms_exporter_build_info{job="secured"}', timeout=30)
            prom.wait_for('up{job="wrong"} == 0', timeout=30)
            targets = promstack.http_get(f"{prom.url}/api/v1/targets")[1].decode()
            assert "401 Unauthorized" in targets
    finally:
        exporter.terminate()
        exporter.wait(30)
    assert "Traceback" not in log_path.read_text()
