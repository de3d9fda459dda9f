#!/usr/bin/env python3
"""Check everything in deploy/ against the service it deploys, so the files cannot silently rot.

    .venv/bin/python deploy/check.py          (CI runs it through tests/test_deploy.py)

- Kubernetes manifests: strict validation against the Kubernetes JSON schemas (oldest and newest
  supported version), the kustomization lists every manifest, selectors match the pod labels, every
  container has requests, limits, probes and a non-root read-only security context, probe paths are
  routes of the service, and the grace period covers preStop plus gunicorn's graceful shutdown.
- Every CDS_* name in the ConfigMap, Secret example, compose env file and Dockerfile is a setting.
- Dockerfile: multi-stage, pinned base, installed with deploy/install, non-root, health check on a route.
- compose: two replicas, load balancer, PostgreSQL and Redis; `docker-compose config` when installed.
- nginx: `nginx -t` on deploy/nginx with a local upstream, when nginx is installed.
Prints each problem and exits 1 if there is any.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable

import yaml

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")  # oldest in support at several clouds, newest schema here
NOT_APPLIED = {"secret.example.yaml"}  # created from a secret store, never from git


def _documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def _service_routes() -> set[str]:
    sys.path.insert(0, str(ROOT))
    from cds_service.api import create_app
    from cds_service.settings import Settings

    with tempfile.TemporaryDirectory() as folder:
        settings = {"CDS_AUTH": "off", "CDS_DATABASE_URL": f"sqlite:///{folder}/routes.sqlite3", "CDS_LOG_LEVEL": "ERROR"}
        app = create_app(Settings.from_env(settings))
        return {rule.rule for rule in app.url_map.iter_rules()}


def _settings() -> set[str]:
    sys.path.insert(0, str(ROOT))
    from cds_service.settings import SETTINGS_DOC

    return set(SETTINGS_DOC)


def check_manifests(folder: Path, routes: set[str], settings: set[str]) -> list[str]:
    from kubernetes_validate import validate
    from kubernetes_validate import ValidationError

    problems: list[str] = []
    files = sorted(p for p in folder.glob("*.yaml") if p.name != "kustomization.yaml")
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    listed = set(kustomization.get("resources", []))
    for path in files:
        if path.name not in listed and path.name not in NOT_APPLIED:
            problems.append(f"{path.name}: not listed in kustomization.yaml")
    for name in listed - {p.name for p in files}:
        problems.append(f"kustomization.yaml: lists {name}, which does not exist")

    resources: list[tuple[str, dict[str, Any]]] = []
    for path in files:
        for document in _documents(path):
            resources.append((path.name, document))
            for version in KUBERNETES_VERSIONS:
                try:
                    validate(document, version, strict=True)
                except ValidationError as error:
                    problems.append(f"{path.name}: {document.get('kind')} fails Kubernetes {version} schema: {error.message} at {'/'.join(map(str, error.path))}")
                except Exception as error:  # an unknown kind or version is a problem too
                    problems.append(f"{path.name}: {document.get('kind')} could not be validated for {version}: {error}")

    def of_kind(kind: str) -> list[dict[str, Any]]:
        return [document for _, document in resources if document.get("kind") == kind]

    deployments = of_kind("Deployment")
    if len(deployments) != 1:
        return problems + [f"expected one Deployment, found {len(deployments)}"]
    deployment = deployments[0]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"].get("labels", {})

    def selects_pods(selector: dict[str, str] | None) -> bool:
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    if not selects_pods(deployment["spec"]["selector"].get("matchLabels")):
        problems.append("Deployment: its selector does not match its pod labels")
    for service in of_kind("Service"):
        if service["spec"].get("type") != "ExternalName" and not selects_pods(service["spec"].get("selector")):
            problems.append(f"Service {service['metadata']['name']}: selector does not match the pods")
    for budget in of_kind("PodDisruptionBudget"):
        if not selects_pods(budget["spec"]["selector"].get("matchLabels")):
            problems.append("PodDisruptionBudget: selector does not match the pods")
    autoscalers = of_kind("HorizontalPodAutoscaler")
    if not autoscalers or autoscalers[0]["spec"]["scaleTargetRef"]["name"] != deployment["metadata"]["name"]:
        problems.append("HorizontalPodAutoscaler: missing, or not scaling the Deployment")
    elif autoscalers[0]["spec"].get("minReplicas", 1) < 2:
        problems.append("HorizontalPodAutoscaler: minReplicas below 2 leaves no replica during a restart")
    if not of_kind("PodDisruptionBudget"):
        problems.append("no PodDisruptionBudget")

    spec = pod["spec"]
    pod_security = spec.get("securityContext", {})
    if not pod_security.get("runAsNonRoot"):
        problems.append("Deployment: pod securityContext.runAsNonRoot is not true")
    config_names = {document["metadata"]["name"] for document in of_kind("ConfigMap")}
    secret_names = {document["metadata"]["name"] for _, document in resources if document.get("kind") == "Secret"}
    pauses: list[int] = []
    for container in spec["containers"]:
        where = f"container {container['name']}"
        resources_ = container.get("resources", {})
        for part in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in resources_.get(part, {}):
                    problems.append(f"{where}: no {resource} {part}")
        security = container.get("securityContext", {})
        if security.get("allowPrivilegeEscalation") is not False or not security.get("readOnlyRootFilesystem"):
            problems.append(f"{where}: must not escalate privileges and must have a read-only root filesystem")
        if "ALL" not in security.get("capabilities", {}).get("drop", []):
            problems.append(f"{where}: does not drop all capabilities")
        ports = {port.get("name"): port["containerPort"] for port in container.get("ports", [])}
        for probe in ("livenessProbe", "readinessProbe"):
            if probe not in container:
                problems.append(f"{where}: no {probe}")
                continue
            http = container[probe].get("httpGet", {})
            if http.get("path") not in routes:
                problems.append(f"{where}: {probe} path {http.get('path')} is not a route of the service")
            if http.get("port") not in ports and http.get("port") not in ports.values():
                problems.append(f"{where}: {probe} port {http.get('port')} is not a container port")
        if container.get("readinessProbe", {}).get("httpGet", {}).get("path") == container.get("livenessProbe", {}).get("httpGet", {}).get("path"):
            problems.append(f"{where}: liveness and readiness must differ (a database outage must not restart pods)")
        for source in container.get("envFrom", []):
            if "configMapRef" in source and source["configMapRef"]["name"] not in config_names:
                problems.append(f"{where}: envFrom ConfigMap {source['configMapRef']['name']} is not defined")
            if "secretRef" in source and source["secretRef"]["name"] not in secret_names:
                problems.append(f"{where}: envFrom Secret {source['secretRef']['name']} has no example")
        pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        pauses.append(int(pre_stop[1]) if pre_stop[:1] == ["sleep"] and len(pre_stop) == 2 else 0)

    from cds_service.server import gunicorn_options
    from cds_service.settings import Settings

    graceful = gunicorn_options(Settings.from_env({}), host="0.0.0.0", port=8080, workers=1)["graceful_timeout"]
    pause = max(pauses, default=0)
    if spec.get("terminationGracePeriodSeconds", 30) <= pause + graceful:
        problems.append(f"Deployment: terminationGracePeriodSeconds must exceed preStop ({pause} s) + graceful_timeout ({graceful} s)")

    for kind in ("ConfigMap", "Secret"):
        for document in of_kind(kind):
            data = {**document.get("data", {}), **document.get("stringData", {})}
            problems += _unknown_settings(f"{kind} {document['metadata']['name']}", (k for k in data if k.startswith("CDS_")), settings)
    return problems


def _unknown_settings(where: str, names: Iterable[str], settings: set[str]) -> list[str]:
    return [f"{where}: {name} is not a setting of the service" for name in names if name not in settings]


def check_dockerfile(path: Path, routes: set[str], settings: set[str]) -> list[str]:
    text = path.read_text()
    problems = []
    stages = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    if len(stages) < 2:
        problems.append("Dockerfile: not multi-stage")
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", text, re.MULTILINE)
    if not base or not re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base.group(1)):
        problems.append("Dockerfile: base image is not pinned to a Python patch release and Debian release")
    if not re.search(r"^RUN deploy/install ", text, re.MULTILINE):
        problems.append("Dockerfile: does not install with deploy/install (the script CI runs)")
    user = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    if not user or user[-1].split(":")[0] in {"root", "0"}:
        problems.append("Dockerfile: does not run as a non-root user")
    health = re.search(r"^HEALTHCHECK .*?urlopen\('http://127\.0\.0\.1:8080(/[^']*)'", text, re.MULTILINE | re.DOTALL)
    if not health or health.group(1) not in routes:
        problems.append("Dockerfile: HEALTHCHECK does not call a route of the service")
    if not re.search(r'^CMD \["cds-service", "serve"\]', text, re.MULTILINE):
        problems.append("Dockerfile: CMD is not `cds-service serve`")
    problems += _unknown_settings("Dockerfile", re.findall(r"\b(CDS_[A-Z_]+)=", text), settings)
    return problems


def check_compose(folder: Path, settings: set[str]) -> list[str]:
    problems = []
    compose = yaml.safe_load((folder / "compose.yaml").read_text())
    services = compose.get("services", {})
    replicas = [name for name, service in services.items() if service.get("build", {}).get("dockerfile") == "deploy/Dockerfile"]
    if len(replicas) < 2:
        problems.append(f"compose.yaml: {len(replicas)} service replica(s), expected two")
    for name in ("lb", "postgres", "redis"):
        if name not in services:
            problems.append(f"compose.yaml: no {name} service")
    upstream = (folder / "nginx" / "upstream.conf").read_text()
    balanced = set(re.findall(r"^\s*server\s+([\w.-]+):8080", upstream, re.MULTILINE))
    if balanced != set(replicas):
        problems.append(f"nginx/upstream.conf balances {sorted(balanced)}, compose runs {sorted(replicas)}")
    env_names = [line.split("=", 1)[0] for line in (folder / "compose.env").read_text().splitlines() if line and not line.startswith("#")]
    problems += _unknown_settings("compose.env", env_names, settings)
    if shutil.which("docker-compose"):
        run = subprocess.run(["docker-compose", "-f", str(folder / "compose.yaml"), "config", "--quiet"],
                             capture_output=True, text=True, cwd=folder)
        if run.returncode:
            problems.append(f"docker-compose config: {run.stderr.strip()}")
    return problems


def nginx_prefix(folder: Path, target: Path, replicas: Iterable[str]) -> Path:
    """deploy/nginx as a runnable prefix, with the given replica addresses as its upstream."""
    for path in folder.glob("*.conf"):
        if path.name != "upstream.conf":
            shutil.copy(path, target / path.name)
    servers = "".join(f"    server {address} max_fails=1 fail_timeout=5s;\n" for address in replicas)
    (target / "upstream.conf").write_text(f"upstream cds_service {{\n{servers}    keepalive 32;\n}}\n")
    return target / "nginx.conf"


def check_nginx(folder: Path) -> list[str]:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        return []
    with tempfile.TemporaryDirectory() as prefix:
        config = nginx_prefix(folder, Path(prefix), ["127.0.0.1:18081", "127.0.0.1:18082"])
        run = subprocess.run([nginx, "-t", "-q", "-p", prefix, "-c", str(config), "-g", "error_log stderr;"],
                             capture_output=True, text=True)
        return [f"nginx -t: {run.stderr.strip()}"] if run.returncode else []


def main() -> int:
    routes, settings = _service_routes(), _settings()
    problems = (
        check_manifests(DEPLOY / "kubernetes", routes, settings)
        + check_dockerfile(DEPLOY / "Dockerfile", routes, settings)
        + check_compose(DEPLOY, settings)
        + check_nginx(DEPLOY / "nginx")
    )
    for problem in problems:
        print(f"deploy/check: {problem}", file=sys.stderr)
    if not problems:
        print("deploy/check: Kubernetes manifests, Dockerfile, compose stack and nginx configuration are consistent")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
