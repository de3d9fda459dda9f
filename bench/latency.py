"""Latency of one hook call, in-process and over HTTP against `cds-service serve`.

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


def over_http(runs: int, concurrency: int) -> dict[str, dict[str, float]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "CDS_LOG_LEVEL": "WARNING", "CDS_DATABASE_URL": "sqlite:////tmp/cds-bench.sqlite3"}
    server = subprocess.Popen([sys.executable, "-m", "cds_service", "serve", "--port", str(port)], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                requests.get(f"{base}/cds-services", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        path = ROOT / "fhir_fixtures" / "requests" / "ad-primary-nonresponse-adult.patient-view.json"
        body = path.read_bytes()
        url = f"{base}/cds-services/dupilumab-next-line-patient-view"
        headers = {"Content-Type": "application/json"}
        results = {}
        for workers in (1, concurrency):
            sessions = [requests.Session() for _ in range(workers)]

            def call(index: int) -> float:
                started = time.perf_counter()
                response = sessions[index % workers].post(url, data=body, headers=headers, timeout=10)
                response.raise_for_status()
                return (time.perf_counter() - started) * 1000

            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(call, range(workers * 5)))  # warm connections and workers
                started = time.perf_counter()
                samples = list(pool.map(call, range(runs)))
                elapsed = time.perf_counter() - started
            results[f"{workers} concurrent"] = {**percentiles(samples), "requests_per_second": runs / elapsed}
        return results
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    report = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "in_process_ms": in_process(args.runs),
        "http_ms": over_http(args.runs, args.concurrency),
    }
    print(f"{'in-process (ms)':58} {'median':>8} {'p95':>8} {'p99':>8}")
    for name, row in report["in_process_ms"].items():
        print(f"{name:58} {row['median']:8.2f} {row['p95']:8.2f} {row['p99']:8.2f}")
    print(f"{'HTTP, adult patient-view (ms)':58} {'median':>8} {'p95':>8} {'p99':>8} {'req/s':>8}")
    for name, row in report["http_ms"].items():
        print(f"{name:58} {row['median']:8.2f} {row['p95']:8.2f} {row['p99']:8.2f} {row['requests_per_second']:8.0f}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latency.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
