"""Latency of one hook call, in-process and over HTTP against `cds-service serve`, and of the
FHIR-fallback path (no prefetch: the service reads everything from the test FHIR server).

    .venv/bin/python bench/latency.py [--runs 300] [--concurrency 8]

Prints a table and writes bench/results/latency.json. Requests are the ready-made
fixtures in fhir_fixtures/requests/ (full prefetch). Figures depend on the machine:
the JSON records it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cds_service.hooks.catalog import SERVICES  # noqa: E402
from cds_service.hooks.validation import parse_hook_request  # noqa: E402
from cds_service.pipeline import Engine, evaluate_hook  # noqa: E402
from cds_service.settings import Settings  # noqa: E402

NOW = datetime(2025, 9, 1, 12, tzinfo=timezone.utc)
SERVICE_FOR_HOOK = {s.hook: s for s in SERVICES}


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return {"median": statistics.median(ordered), "p95": pick(0.95), "p99": pick(0.99), "n": len(ordered)}


def in_process(runs: int) -> dict[str, dict[str, float]]:
    engine = Engine.from_settings(Settings.from_env({}))
    results = {}
    for path in sorted((ROOT / "fhir_fixtures" / "requests").glob("*.json")):
        raw = path.read_bytes()
        service = SERVICE_FOR_HOOK[json.loads(raw)["hook"]]
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            body = json.loads(raw)
            evaluate_hook(parse_hook_request(body, service.hook), service, engine, NOW)
            samples.append((time.perf_counter() - started) * 1000)
        results[path.name] = percentiles(samples)
    return results


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(extra_env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "CDS_LOG_LEVEL": "WARNING", "CDS_DATABASE_URL": "sqlite:////tmp/cds-bench.sqlite3", "CDS_AUTH": "off", **extra_env}
    server = subprocess.Popen([sys.executable, "-m", "cds_service", "serve", "--port", str(port)], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(f"{base}/cds-services", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    return server, base


def _load(url: str, body: bytes, runs: int, workers: int) -> dict[str, float]:
    sessions = [requests.Session() for _ in range(workers)]
    headers = {"Content-Type": "application/json"}

    def call(index: int) -> float:
        started = time.perf_counter()
        response = sessions[index % workers].post(url, data=body, headers=headers, timeout=10)
        response.raise_for_status()
        return (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(call, range(workers * 3)))  # warm connections and workers
        started = time.perf_counter()
        samples = list(pool.map(call, range(runs)))
        elapsed = time.perf_counter() - started
    return {**percentiles(samples), "requests_per_second": runs / elapsed}


def over_http(runs: int, concurrency: int) -> dict[str, dict[str, float]]:
    server, base = _serve({})
    try:
        body = (ROOT / "fhir_fixtures" / "requests" / "ad-primary-nonresponse-adult.patient-view.json").read_bytes()
        url = f"{base}/cds-services/dupilumab-next-line-patient-view"
        return {f"{workers} concurrent": _load(url, body, runs, workers) for workers in (1, concurrency)}
    finally:
        server.terminate()
        server.wait(timeout=30)


def fhir_fallback(runs: int, concurrency: int) -> dict[str, dict[str, float]]:
    """No prefetch at all: 7 reads from the test FHIR server (Medplum's engine, in memory) per call."""
    from cds_service.fixtures import load_fixtures, start_fhir_server

    fhir, fhir_base = start_fhir_server(0)
    server = None
    try:
        load_fixtures(fhir_base)
        direct = []
        with requests.Session() as session:
            for _ in range(20):
                started = time.perf_counter()
                session.get(f"{fhir_base}/Observation?patient=pnr-adult", timeout=10).raise_for_status()
                direct.append((time.perf_counter() - started) * 1000)
        server, base = _serve({"CDS_FHIR_ALLOWLIST": fhir_base, "CDS_FHIR_ALLOW_HTTP": "true", "CDS_FHIR_TIME_BUDGET_MS": "5000"})
        request = json.loads((ROOT / "fhir_fixtures" / "requests" / "ad-primary-nonresponse-adult.patient-view.json").read_bytes())
        request["fhirServer"] = fhir_base
        del request["prefetch"]
        body = json.dumps(request).encode()
        url = f"{base}/cds-services/dupilumab-next-line-patient-view"
        results = {"one FHIR search, direct": percentiles(direct)}
        for workers in (1, concurrency):
            results[f"hook call, {workers} concurrent"] = _load(url, body, max(runs // 5, 20), workers)
        return results
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        fhir.terminate()
        fhir.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    report = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "in_process_ms": in_process(args.runs),
        "http_ms": over_http(args.runs, args.concurrency),
        "fhir_fallback_ms": fhir_fallback(args.runs, args.concurrency),
    }
    print(f"{'in-process (ms)':58} {'median':>8} {'p95':>8} {'p99':>8}")
    for name, row in report["in_process_ms"].items():
        print(f"{name:58} {row['median']:8.2f} {row['p95']:8.2f} {row['p99']:8.2f}")
    print(f"{'HTTP, adult patient-view (ms)':58} {'median':>8} {'p95':>8} {'p99':>8} {'req/s':>8}")
    for name, row in report["http_ms"].items():
        print(f"{name:58} {row['median']:8.2f} {row['p95']:8.2f} {row['p99']:8.2f} {row['requests_per_second']:8.0f}")
    print(f"{'FHIR fallback, no prefetch (ms)':58} {'median':>8} {'p95':>8} {'p99':>8} {'req/s':>8}")
    for name, row in report["fhir_fallback_ms"].items():
        print(f"{name:58} {row['median']:8.2f} {row['p95']:8.2f} {row['p99']:8.2f} {row.get('requests_per_second', 0):8.0f}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latency.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
