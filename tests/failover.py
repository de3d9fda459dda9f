"""Two replicas behind nginx, under load, while one is stopped and started again.

    .venv/bin/python tests/failover.py [--seconds 20] [--connections 8]

Clients call hooks with a fresh JWT each and send feedback; a third of the way in, replica A is stopped
(SIGTERM, as Kubernetes or compose stop it), and once it has exited it is started again. Afterwards: every
response, every stored feedback row against every acknowledged one, and tokens replayed through the load
balancer. The stack is either ProcessStack here (the topology of deploy/compose.yaml without containers:
Debian's nginx running deploy/nginx's configuration, only the upstream addresses and listen port differing,
in front of two `cds-service serve` processes sharing the local PostgreSQL and Redis; tests/test_load_balanced.py)
or deploy/compose.yaml itself under Podman (tests/test_compose.py). Run directly, it prints the figures of
ProcessStack.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from support import REQUESTS, ROOT, child_env, free_port, load_deploy_check, load_json, metric_samples, service_url, wait_until_up  # noqa: E402
from test_auth import ISSUER, Signer  # noqa: E402

HOOK_PATH = service_url("patient-view")
FEEDBACK_PATH = HOOK_PATH + "/feedback"


def _nginx() -> str:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(found).exists():
        raise RuntimeError("nginx is needed (scripts/setup --node installs Debian's)")
    return found


@dataclass
class Call:
    kind: str  # "hook" or "feedback"
    started: float  # seconds since the load began
    seconds: float
    status: int | None  # None: no HTTP response at all
    error: str = ""


@dataclass
class Figures:
    seconds: float
    connections: int
    calls: list[Call] = field(default_factory=list)
    stopped_at: float = 0.0  # replica A: SIGTERM sent
    exited_at: float = 0.0  # replica A: process gone (in-flight calls finished)
    back_at: float = 0.0  # replica A: ready again
    feedback_acknowledged: int = 0
    feedback_stored: int = 0
    replays_tried: int = 0
    replays_refused: int = 0
    retried_by_nginx: int = 0
    served_by_a_after_restart: int = 0
    card_ms_direct: float | None = None  # median, one card response over keep-alive, straight to replica B
    card_ms_through_nginx: float = 0.0  # the same, through nginx
    card_ms_added_by_nginx: float | None = None  # median of the differences, the calls alternating between the two

    def summary(self) -> dict[str, object]:
        latencies = sorted(call.seconds * 1000 for call in self.calls if call.status == 200)
        failed = [call for call in self.calls if call.status != 200]
        during = [call for call in self.calls if self.stopped_at <= call.started <= self.back_at]

        def pct(p: float) -> float:
            return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1) if latencies else 0.0

        return {
            "seconds": self.seconds,
            "connections": self.connections,
            "calls": len(self.calls),
            "hook calls": sum(call.kind == "hook" for call in self.calls),
            "feedback calls": sum(call.kind == "feedback" for call in self.calls),
            "requests per second": round(len(self.calls) / self.seconds, 1),
            "failed": len(failed),
            "failures": sorted({f"{call.kind} {call.status or call.error}" for call in failed}),
            "calls while replica A was stopped or starting": len(during),
            "replica A drain seconds (SIGTERM to exit)": round(self.exited_at - self.stopped_at, 2),
            "replica A down seconds (SIGTERM to ready)": round(self.back_at - self.stopped_at, 2),
            "calls nginx retried on the other replica": self.retried_by_nginx,
            "calls replica A answered after its restart": self.served_by_a_after_restart,
            "latency ms p50/p95/p99/max": [pct(0.5), pct(0.95), pct(0.99), round(latencies[-1], 1) if latencies else 0.0],
            "feedback rows acknowledged / stored": [self.feedback_acknowledged, self.feedback_stored],
            "replayed tokens refused / tried": [self.replays_refused, self.replays_tried],
            "card response ms direct / through nginx / added by nginx (medians)": [
                self.card_ms_direct, self.card_ms_through_nginx, self.card_ms_added_by_nginx],
        }


class ProcessStack:
    """nginx + two replicas on loopback ports, sharing one PostgreSQL database and one Redis prefix."""

    def __init__(self, folder: Path, database_url: str, redis_url: str, redis_prefix: str):
        self.folder = folder
        self.signer = Signer(folder / "ehr-jwks.json")
        issuers = folder / "issuers.json"
        issuers.write_text(json.dumps([{"iss": ISSUER, "jwks_file": str(self.signer.path)}]))
        self.lb_port = free_port()
        self.base = f"http://127.0.0.1:{self.lb_port}"
        self.ports = [free_port(), free_port()]
        self.database_url = database_url
        self.env = child_env(folder, CDS_DATABASE_URL=database_url, CDS_REDIS_URL=redis_url, CDS_REDIS_PREFIX=redis_prefix,
                             CDS_AUTH="required", CDS_TRUSTED_ISSUERS=f"@{issuers}", CDS_PUBLIC_BASE_URL=self.base,
                             CDS_SECRET_KEY=uuid.uuid4().hex, CDS_LOG_LEVEL="WARNING")
        self.replicas: list[subprocess.Popen | None] = [None, None]
        self.nginx: subprocess.Popen | None = None

    def start_replica(self, index: int) -> None:
        log = open(self.folder / f"replica-{index}.log", "ab")
        self.replicas[index] = subprocess.Popen(
            [sys.executable, "-m", "cds_service", "serve", "--port", str(self.ports[index]), "--workers", "2"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait_until_up(f"http://127.0.0.1:{self.ports[index]}/healthz/ready", self.replicas[index], require_ok=True)

    def stop_replica(self, index: int) -> None:
        process = self.replicas[index]
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)

    def start(self) -> None:
        for index in (0, 1):
            self.start_replica(index)
        prefix = self.folder / "nginx"
        prefix.mkdir()
        config = load_deploy_check().nginx_prefix(ROOT / "deploy" / "nginx", prefix, [f"127.0.0.1:{port}" for port in self.ports])
        server = prefix / "cds-service.conf"
        text = server.read_text()
        assert text.count("listen 8080;") == 1
        server.write_text(text.replace("listen 8080;", f"listen 127.0.0.1:{self.lb_port};"))
        self.access_log = open(self.folder / "nginx-access.log", "wb")
        self.nginx = subprocess.Popen([_nginx(), "-p", str(prefix), "-c", str(config), "-g", "daemon off; error_log stderr;"],
                                      env=child_env(self.folder), stdout=self.access_log, stderr=open(self.folder / "nginx-error.log", "wb"))
        wait_until_up(f"{self.base}/healthz/ready", self.nginx, require_ok=True)

    def stop(self) -> None:
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)  # graceful
            self.nginx.wait(timeout=30)
        for index in (0, 1):
            self.stop_replica(index)

    def fail_timeout_seconds(self) -> float:
        return fail_timeout_seconds(self.folder / "nginx" / "upstream.conf")

    def calls_answered(self, index: int) -> int:
        return calls_answered(metric_samples(f"http://127.0.0.1:{self.ports[index]}"))

    def retried_calls(self) -> int:
        """Calls nginx passed to a second replica (its access log lists both upstreams)."""
        return retried_calls((self.folder / "nginx-access.log").read_text())

    def direct_base(self, index: int) -> str | None:
        return f"http://127.0.0.1:{self.ports[index]}"

    def stored_feedback(self, cards: list[str]) -> set[str]:
        with psycopg.connect(self.database_url) as connection:
            return {row[0] for row in connection.execute("SELECT card FROM feedback WHERE card = ANY(%s)", (cards,))}


def fail_timeout_seconds(upstream_conf: Path) -> float:
    """How long nginx leaves a failed replica alone, as its upstream configuration says."""
    return float(re.search(r"fail_timeout=(\d+)s", upstream_conf.read_text()).group(1))


def calls_answered(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> int:
    """Hook and feedback calls a replica answered since it (last) started, from its /metrics samples."""
    return int(sum(value for (name, labels), value in samples.items()
                   if name == "cds_requests_total" and dict(labels)["endpoint"] in {"call_service", "feedback"}))


def retried_calls(access_log: str) -> int:
    """Calls nginx passed to a second replica: deploy/nginx's access log lines (JSON) list both upstreams."""
    return sum("," in json.loads(line).get("upstream", "") for line in access_log.splitlines() if line.startswith("{"))


def card_latency_ms(stack, bases: list[str], body: dict, calls: int = 60) -> list[float]:
    """Median milliseconds of a hook call answered with its card (about 8 KB) at each base, one after another over
    one keep-alive connection per base (as an EHR's client), after 10 to warm up. With two bases the calls alternate,
    so a busy machine slows both alike, and a third figure is the median of the paired differences."""
    sessions = [requests.Session() for _ in bases]
    times: list[list[float]] = [[] for _ in bases]
    for _ in range(calls + 10):
        for session, base, measured in zip(sessions, bases, times, strict=True):
            headers = {"Authorization": f"Bearer {stack.signer.token(stack.base + HOOK_PATH)}"}
            payload = {**body, "hookInstance": str(uuid.uuid4())}
            started = time.perf_counter()
            response = session.post(base + HOOK_PATH, json=payload, headers=headers, timeout=30)
            measured.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200 and response.json()["cards"], response.status_code
    medians = [round(statistics.median(measured[10:]), 2) for measured in times]
    if len(bases) == 2:
        medians.append(round(statistics.median(b - a for a, b in zip(times[0][10:], times[1][10:], strict=True)), 2))
    return medians


def run_failover(stack, seconds: float = 20, connections: int = 8) -> Figures:
    """Load through `stack` (ProcessStack, or tests/test_compose.py's ComposeStack) while its replica A restarts."""
    body = load_json(REQUESTS / "ad-primary-nonresponse-adult.patient-view.json")
    figures = Figures(seconds=seconds, connections=connections)
    lock = threading.Lock()
    accepted_tokens: list[tuple[str, dict]] = []
    acknowledged_cards: list[str] = []
    stop = threading.Event()
    stack.start()
    direct = stack.direct_base(1)  # None where the replicas are not reachable but through nginx
    if direct:
        figures.card_ms_direct, figures.card_ms_through_nginx, figures.card_ms_added_by_nginx = card_latency_ms(
            stack, [direct, stack.base], body)
    else:
        [figures.card_ms_through_nginx] = card_latency_ms(stack, [stack.base], body)
    began = time.monotonic()

    def client(index: int) -> None:
        session = requests.Session()  # keep-alive to nginx, as an EHR's HTTP client does
        sequence = 0
        while not stop.is_set():
            sequence += 1
            if sequence % 5 == 0:
                kind, path = "feedback", FEEDBACK_PATH
                card = str(uuid.uuid4())
                payload = {"feedback": [{"card": card, "outcome": "accepted", "outcomeTimestamp": "2026-11-22T10:00:00Z",
                                         "acceptedSuggestions": [{"id": "suggestion-1"}]}]}
            else:
                kind, path = "hook", HOOK_PATH
                payload = {**body, "hookInstance": str(uuid.uuid4())}
            token = stack.signer.token(stack.base + path)
            started = time.monotonic()
            try:
                response = session.post(stack.base + path, json=payload, headers={"Authorization": f"Bearer {token}"}, timeout=30)
                call = Call(kind, started - began, time.monotonic() - started, response.status_code)
            except requests.RequestException as error:
                call = Call(kind, started - began, time.monotonic() - started, None, type(error).__name__)
                response = None
            with lock:
                figures.calls.append(call)
                if response is not None and response.status_code == 200:
                    if kind == "feedback" and response.json().get("stored") == 1:
                        acknowledged_cards.append(card)
                    elif kind == "hook" and len(accepted_tokens) < 200:
                        accepted_tokens.append((token, payload))

    threads = [threading.Thread(target=client, args=(index,), daemon=True) for index in range(connections)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(seconds / 3)
        figures.stopped_at = time.monotonic() - began
        stack.stop_replica(0)
        figures.exited_at = time.monotonic() - began
        time.sleep(1.0)  # the load balancer runs on one replica for a moment
        stack.start_replica(0)
        figures.back_at = time.monotonic() - began
        # Load goes on for `seconds` in all, and at least long enough after the restart for nginx to try the
        # replica again: on a slow machine the restart took 7 s of a 12 s run and replica A got no call back.
        time.sleep(max(seconds - (time.monotonic() - began), stack.fail_timeout_seconds() + 1.0))
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        figures.seconds = round(time.monotonic() - began, 2)

        # Tokens accepted before the restart stay refused, through the load balancer, to both replicas.
        for token, payload in accepted_tokens[::4]:
            response = requests.post(stack.base + HOOK_PATH, json=payload, headers={"Authorization": f"Bearer {token}"}, timeout=10)
            figures.replays_tried += 1
            figures.replays_refused += response.status_code == 401
        figures.served_by_a_after_restart = stack.calls_answered(0)
        figures.feedback_acknowledged = len(acknowledged_cards)
        figures.feedback_stored = len(stack.stored_feedback(acknowledged_cards))
        figures.retried_by_nginx = stack.retried_calls()
    finally:
        stop.set()
        stack.stop()
    return figures


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    name = f"cds_failover_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.database_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    database_url = args.database_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        stack = ProcessStack(Path(tempfile.mkdtemp(prefix="cds-failover-")), database_url, args.redis_url,
                             f"cds-failover-{uuid.uuid4().hex[:8]}:")
        figures = run_failover(stack, args.seconds, args.connections)
        print(json.dumps(figures.summary(), indent=2))
    finally:
        with psycopg.connect(args.database_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
