"""deploy/ cannot rot: the image's install script runs here, and every manifest is checked against the service."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from support import ROOT, child_env, free_port, load_deploy_check, wait_until_up

DEPLOY = ROOT / "deploy"


check = load_deploy_check()


@pytest.fixture(scope="module")
def routes_and_settings():
    return check._service_routes(), check._settings()


@pytest.mark.nginx
@pytest.mark.compose
def test_deploy_check_passes_with_every_tool_it_uses(tmp_path):
    # CI installs nginx and docker-compose (scripts/setup --node), so their checks run rather than being skipped.
    assert shutil.which("docker-compose") and (shutil.which("nginx") or Path("/usr/sbin/nginx").exists())
    run = subprocess.run([sys.executable, str(DEPLOY / "check.py")], capture_output=True, text=True, timeout=120,
                         env=child_env(tmp_path))
    assert run.returncode == 0, run.stderr
    assert "consistent" in run.stdout


def _copy_kubernetes(tmp_path: Path) -> Path:
    folder = tmp_path / "kubernetes"
    shutil.copytree(DEPLOY / "kubernetes", folder)
    return folder


def test_the_check_catches_a_broken_deployment(tmp_path, routes_and_settings):
    folder = _copy_kubernetes(tmp_path)
    deployment = folder / "deployment.yaml"
    text = deployment.read_text()
    text = text.replace("path: /healthz/ready", "path: /health/ready")
    text = text.replace("              memory: 512Mi  #", "              #")
    text = text.replace("terminationGracePeriodSeconds: 35", "terminationGracePeriodSeconds: 20")
    text = text.replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false")
    deployment.write_text(text)
    (folder / "configmap.yaml").write_text((folder / "configmap.yaml").read_text().replace("CDS_WORKERS:", "CDS_WORKER:"))
    problems = "\n".join(check.check_manifests(folder, *routes_and_settings))
    assert "readinessProbe path /health/ready is not a route" in problems
    assert "no memory limits" in problems
    assert "terminationGracePeriodSeconds must exceed" in problems
    assert "read-only root filesystem" in problems
    assert "CDS_WORKER is not a setting" in problems


def test_the_check_catches_manifests_kubernetes_would_reject(tmp_path, routes_and_settings):
    folder = _copy_kubernetes(tmp_path)
    (folder / "pdb.yaml").write_text((folder / "pdb.yaml").read_text().replace("apiVersion: policy/v1", "apiVersion: policy/v1beta1"))
    (folder / "hpa.yaml").write_text((folder / "hpa.yaml").read_text().replace("averageUtilization: 60", "averageUtilisation: 60"))
    (folder / "extra.yaml").write_text((folder / "service.yaml").read_text())
    problems = "\n".join(check.check_manifests(folder, *routes_and_settings))
    assert "pdb.yaml: PodDisruptionBudget could not be validated for 1.29.0" in problems  # policy/v1beta1 is gone
    assert re.search(r"hpa.yaml: HorizontalPodAutoscaler fails Kubernetes 1.37.0 schema: .*averageUtilisation", problems)
    assert "extra.yaml: not listed in kustomization.yaml" in problems


@pytest.mark.nginx
@pytest.mark.compose
def test_the_check_catches_a_broken_image_compose_file_or_nginx_config(tmp_path, routes_and_settings):
    dockerfile = tmp_path / "Dockerfile"
    text = (DEPLOY / "Dockerfile").read_text()
    dockerfile.write_text(text.replace("USER 10001:10001", "USER root").replace("3.11.13-slim-bookworm", "3.11-slim"))
    problems = "\n".join(check.check_dockerfile(dockerfile, *routes_and_settings))
    assert "non-root" in problems and "not pinned" in problems

    stack = tmp_path / "deploy"
    shutil.copytree(DEPLOY, stack, ignore=shutil.ignore_patterns("kubernetes", "__pycache__"))
    compose = stack / "compose.yaml"
    compose.write_text(compose.read_text().replace("stop_grace_period: 30s", "stop_grace_perod: 30s"))
    (stack / "nginx" / "upstream.conf").write_text((stack / "nginx" / "upstream.conf").read_text().replace("cds-2:8080", "cds-3:8080"))
    problems = "\n".join(check.check_compose(stack, routes_and_settings[1]))
    assert "stop_grace_perod" in problems  # docker-compose's own validation of the compose specification
    assert "balances ['cds-1', 'cds-3'], compose runs ['cds-1', 'cds-2']" in problems

    conf = stack / "nginx" / "cds-service.conf"
    conf.write_text(conf.read_text().replace("proxy_next_upstream_tries 2;", "proxy_next_upstream_tries two;"))
    assert "\"proxy_next_upstream_tries\" directive invalid number" in "\n".join(check.check_nginx(stack / "nginx"))


def _dockerfile_env() -> dict[str, str]:
    block = re.search(r"^ENV (.*?)(?=^\S)", (DEPLOY / "Dockerfile").read_text(), re.MULTILINE | re.DOTALL).group(1)
    return dict(item.split("=", 1) for item in shlex.split(block.replace("\\\n", " ")))


def _healthcheck_command() -> list[str]:
    text = (DEPLOY / "Dockerfile").read_text()
    return json.loads(re.search(r"^HEALTHCHECK .*?CMD (\[.*?\])$", text, re.MULTILINE | re.DOTALL).group(1))


@pytest.mark.server
def test_the_image_install_script_installs_a_service_that_serves_and_passes_its_health_check(tmp_path):
    """What `docker build` runs (deploy/install), then the image's CMD and HEALTHCHECK with its ENV."""
    venv = tmp_path / "opt-cds-service"
    install = subprocess.run([str(DEPLOY / "install"), str(venv)], capture_output=True, text=True, timeout=600,
                             env=child_env(tmp_path))
    assert install.returncode == 0, install.stdout + install.stderr
    assert "installed and checked" in install.stdout and str(venv) in install.stdout  # not the source checkout

    port = free_port()
    env = child_env(tmp_path, **_dockerfile_env())
    env.update(PATH=f"{venv}/bin:{os.environ['PATH']}", CDS_PORT=str(port), CDS_AUTH="off",
               CDS_DATABASE_URL=f"sqlite:///{tmp_path}/store.sqlite3")  # /var/lib/cds-service is the image's volume
    command = re.search(r'^CMD (\[.*\])$', (DEPLOY / "Dockerfile").read_text(), re.MULTILINE).group(1)
    process = subprocess.Popen(json.loads(command), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/healthz/live", process)
        health = [arg.replace(":8080/", f":{port}/") for arg in _healthcheck_command()]
        assert subprocess.run(health, env=env, timeout=10).returncode == 0
        assert requests.get(f"{base}/healthz/ready", timeout=5).json()["status"] == "ready"
        assert requests.get(f"{base}/cds-services", timeout=5).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
