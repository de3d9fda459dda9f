"""deploy/compose.yaml as it is, under Podman (podman-compose from the test tools): nginx in front of two replicas of the image,
sharing PostgreSQL and Redis, each in its container on the stack's own network. The failover test of
tests/test_load_balanced.py is repeated through it: replica A is stopped with `podman-compose stop` under load and
started again.

A test override (written per run) changes only what this machine needs: the stand-in images
(tests/podman_support.py), the ulimits Podman needs as root, a test issuer trusted in place of the public sandbox
(its files mounted read-only), and the host port (CDS_STACK_PORT, which compose.yaml reads)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from failover import calls_answered, fail_timeout_seconds, retried_calls, run_failover
from podman_support import podman, service_image, stand_in_images
from support import ROOT, child_env, free_port, parse_metric_samples
from test_auth import ISSUER, Signer

pytestmark = [pytest.mark.server, pytest.mark.container]

COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
PODMAN_COMPOSE = Path(sys.executable).parent / "podman-compose"
LIMITS = {"nofile": 1024, "nproc": 1024}
IN_CONTAINER_GET = "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"


class ComposeStack:
    """The stack as `podman-compose up` runs it, for tests/failover.py."""

    def __init__(self, folder: Path, image: str, stand_ins: dict[str, str]):
        assert PODMAN_COMPOSE.exists(), "podman-compose is one of the test tools (scripts/setup)"
        self.folder = folder
        self.project = f"cdstest{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        issuers = folder / "issuers"
        issuers.mkdir()
        self.signer = Signer(issuers / "ehr-jwks.json")
        (issuers / "trusted-issuers.json").write_text(json.dumps([{"iss": ISSUER, "jwks_file": "ehr-jwks.json"}]))
        issuers.chmod(0o755)  # the replicas run as uid 10001
        for path in issuers.iterdir():
            path.chmod(0o644)
        replica = {"image": image, "ulimits": LIMITS, "volumes": [f"{issuers}:/etc/cds-service/test:ro"],
                   "environment": {"CDS_TRUSTED_ISSUERS": "@/etc/cds-service/test/trusted-issuers.json", "CDS_PUBLIC_BASE_URL": self.base}}
        services = {"cds-1": replica, "cds-2": replica, "lb": {"image": stand_ins["nginx"], "ulimits": LIMITS},
                    "postgres": {"image": stand_ins["postgres"], "ulimits": LIMITS}, "redis": {"image": stand_ins["redis"], "ulimits": LIMITS}}
        self.override = folder / "compose.test.yaml"
        self.override.write_text(json.dumps({"services": services}, indent=2))  # JSON is YAML
        self.env = child_env(folder, CDS_STACK_PORT=str(self.port))  # compose.yaml reads the host port from it
        self.log = folder / "podman-compose.log"
        self.logs: dict[str, str] = {}  # each container's output, kept when the stack stops

    def compose(self, *args: str, timeout: float = 300) -> None:
        command = [str(PODMAN_COMPOSE), "--project-name", self.project, "--file", str(COMPOSE_FILE), "--file", str(self.override), *args]
        with self.log.open("a") as log:
            log.write(f"$ {' '.join(command)}\n")
            log.flush()
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=self.env, timeout=timeout)
        assert done.returncode == 0, f"podman-compose {args[0]} exited with {done.returncode}: {self.log.read_text()[-3000:]}"

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"

    def inside(self, service: str, *command: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return podman("exec", self.container(service), *command, timeout=timeout, check=False)

    def replica_ready(self, index: int) -> bool:
        return self.inside(f"cds-{index + 1}", "python", "-c", IN_CONTAINER_GET, "http://127.0.0.1:8080/healthz/ready").returncode == 0

    def wait_until(self, ready, what: str, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while not ready():
            if time.monotonic() > deadline:
                states = podman("ps", "--all", "--filter", f"label=io.podman.compose.project={self.project}",
                                "--format", "{{.Names}} {{.Status}}", check=False).stdout
                logs = {s: podman("logs", "--tail", "20", self.container(s), check=False) for s in ("cds-1", "cds-2", "lb", "postgres")}
                raise AssertionError(f"{what} within {seconds:g} s: {states}\n" + "\n".join(
                    f"--- {s}\n{r.stdout[-1500:]}{r.stderr[-1500:]}" for s, r in logs.items()))
            time.sleep(0.5)

    def lb_ready(self) -> bool:
        try:
            return requests.get(f"{self.base}/healthz/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    # -- what tests/failover.py asks of a stack ------------------------------------------------------------------

    def start(self) -> None:
        self.started = time.monotonic()
        self.compose("up", "--detach", "--no-build")
        self.wait_until(lambda: self.replica_ready(0) and self.replica_ready(1) and self.lb_ready(), "the stack was not ready")
        self.ready_seconds = time.monotonic() - self.started

    def stop(self) -> None:
        for service in ("cds-1", "cds-2", "lb"):
            logs = podman("logs", self.container(service), timeout=60, check=False)
            self.logs[service] = logs.stdout + logs.stderr
        self.compose("down", "--volumes", "--timeout", "30", timeout=180)
        podman("network", "rm", "--force", f"{self.project}_default", check=False)

    def stop_replica(self, index: int) -> None:
        self.compose("stop", "--timeout", "30", f"cds-{index + 1}", timeout=60)

    def start_replica(self, index: int) -> None:
        self.compose("start", f"cds-{index + 1}", timeout=60)
        self.wait_until(lambda: self.replica_ready(index), f"replica {index + 1} was not ready again", seconds=60)

    def fail_timeout_seconds(self) -> float:
        return fail_timeout_seconds(ROOT / "deploy" / "nginx" / "upstream.conf")

    def calls_answered(self, index: int) -> int:
        metrics = self.inside(f"cds-{index + 1}", "python", "-c", IN_CONTAINER_GET, "http://127.0.0.1:8080/metrics")
        assert metrics.returncode == 0, metrics.stderr
        return calls_answered(parse_metric_samples(metrics.stdout))

    def retried_calls(self) -> int:
        return retried_calls(podman("logs", self.container("lb"), timeout=60).stdout)

    def direct_base(self, index: int) -> None:
        return None  # the replicas publish no port: everything goes through nginx, as in compose's design

    def stored_feedback(self, cards: list[str]) -> set[str]:
        rows = self.inside("postgres", "psql", "--username=cds", "--dbname=cds", "--tuples-only", "--no-align",
                           "--command=SELECT card FROM feedback", timeout=60)
        assert rows.returncode == 0, rows.stderr
        return set(rows.stdout.split()) & set(cards)


@pytest.fixture(scope="module")
def images():
    return service_image(), stand_in_images()


def test_the_compose_stack_under_podman_loses_no_call_no_feedback_and_admits_no_replay_when_a_replica_restarts(images, tmp_path):
    stack = ComposeStack(tmp_path, *images)
    figures = run_failover(stack, seconds=15, connections=6)
    summary = figures.summary()
    print(summary, f"ready after {stack.ready_seconds:.1f} s")  # the figures, for the run's log (pytest -s or -rA)
    assert summary["calls while replica A was stopped or starting"] > 50  # the restart happened under load
    assert summary["failed"] == 0, summary["failures"]
    assert figures.feedback_acknowledged > 50 and figures.feedback_stored == figures.feedback_acknowledged
    assert figures.replays_tried >= 10 and figures.replays_refused == figures.replays_tried
    assert figures.served_by_a_after_restart > 0  # nginx sent calls to the replica again once it was back
    for service in ("cds-1", "cds-2"):
        # A replica that started before PostgreSQL took connections said so in one line and was restarted.
        assert "Traceback" not in stack.logs[service]
        assert "eyJ" not in stack.logs[service]  # no token (a JWT's header starts so) in the logs
