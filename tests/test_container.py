"""The image itself: built from deploy/Dockerfile with Podman and run as the Kubernetes manifest runs it (uid 10001,
read-only root filesystem, no capabilities, only the manifest's volumes: a /tmp in memory and the trusted issuers
read-only; PostgreSQL from the settings). Its HEALTHCHECK passes, a hook call gets its card, readiness writes to the
database, and SIGTERM stops it cleanly. The image is built on a stand-in base (tests/podman_support.py)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from podman_support import LIMITS, podman, service_image
from support import free_port, hook_request, load_scenario, service_url
from test_auth import Signer

pytestmark = [pytest.mark.server, pytest.mark.container]


@pytest.fixture(scope="module")
def image():
    return service_image()


@pytest.fixture
def running(image, own_postgres_url, tmp_path):
    """The image run as deploy/kubernetes/deployment.yaml runs it, on a port of the host's loopback."""
    issuers_folder = tmp_path / "issuers"
    issuers_folder.mkdir()
    signer = Signer(issuers_folder / "ehr-jwks.json")
    (issuers_folder / "trusted-issuers.json").write_text(json.dumps([{"iss": "https://ehr.example.org", "jwks_file": "ehr-jwks.json"}]))
    issuers_folder.chmod(0o755)
    for path in issuers_folder.iterdir():
        path.chmod(0o644)
    port = free_port()
    name = f"cds-test-{uuid.uuid4().hex[:8]}"
    # The host's PostgreSQL listens on its loopback: slirp4netns lets the container reach it as 10.0.2.2.
    database = own_postgres_url.replace("@127.0.0.1:", "@10.0.2.2:")
    podman("run", "--detach", "--name", name, *LIMITS,
           "--network", "slirp4netns:allow_host_loopback=true", "--publish", f"127.0.0.1:{port}:8080",
           "--user", "10001:10001", "--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp:rw,size=64m,mode=1777",
           "--volume", f"{issuers_folder}:/etc/cds-service/issuers:ro", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
           "--env", f"CDS_DATABASE_URL={database}", "--env", "CDS_AUTH=required",
           "--env", "CDS_TRUSTED_ISSUERS=@/etc/cds-service/issuers/trusted-issuers.json",
           "--env", f"CDS_PUBLIC_BASE_URL=http://127.0.0.1:{port}", image)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthz/live", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, podman("logs", name, check=False).stdout[-3000:]
            time.sleep(0.5)
        yield name, base, signer
    finally:
        podman("rm", "--force", name, check=False)


def test_the_image_declares_its_healthcheck_and_runs_as_uid_10001(image):
    inspected = json.loads(podman("image", "inspect", image).stdout)[0]
    assert inspected["Config"]["User"] == "10001:10001"
    check = inspected["Healthcheck"]  # kept because the image is built in Docker format (OCI has no HEALTHCHECK)
    assert check["Test"][0] == "CMD" and "/healthz/live" in " ".join(check["Test"])


def test_run_as_the_manifest_runs_it_it_is_healthy_answers_and_stops_cleanly_on_sigterm(running):
    name, base, signer = running
    assert podman("healthcheck", "run", name, check=False).returncode == 0
    ready = requests.get(f"{base}/healthz/ready", timeout=10)
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok"}  # a write to PostgreSQL committed
    path = service_url("patient-view")
    token = signer.token(f"{base}{path}")
    response = requests.post(f"{base}{path}", json=hook_request(load_scenario("ad-primary-nonresponse-adult")),
                             headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 200
    assert [c["source"]["topic"]["code"] for c in response.json()["cards"]] == ["dupilumab-inadequate-response"]
    assert response.headers["Server"] == "nginx"  # the front proxy answered: requests reach gunicorn whole
    stopped = time.monotonic()
    podman("stop", "--time", "35", name, timeout=60)
    assert time.monotonic() - stopped < 30  # within the manifest's grace period, not killed at its end
    state = json.loads(podman("inspect", name).stdout)[0]["State"]
    assert state["ExitCode"] == 0, podman("logs", name, check=False).stdout[-3000:]
    logs = podman("logs", name).stdout + podman("logs", name).stderr
    assert "Shutting down: Master" in logs
    assert "Traceback" not in logs and token not in logs
