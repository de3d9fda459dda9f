"""Sizing: what one replica, configured as in production, answers per second.

    .venv/bin/python bench/replica.py [--seconds 10] [--connections 16]

One `cds-service serve` with client JWTs required (ES384; every call carries a token never seen before,
its jti recorded in Redis), feedback and audit in PostgreSQL (the local servers), patient-view calls
for distinct synthetic patients of 100 resources with the patient cache off, so every call is assessed
afresh (the worst case; repeated calls for one patient are faster, see bench/run.py). Run with one
worker, then one worker per core. Needs wrk. Prints a table and writes bench/results/replica.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from bench.run import Server, load  # noqa: E402
from bench.synthetic import hook_request, patient_record  # noqa: E402
from cds_service.hooks.catalog import SERVICES  # noqa: E402
from test_auth import ISSUER, Signer  # noqa: E402

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
PATIENT_VIEW = next(s for s in SERVICES if s.hook == "patient-view")


def patient_view_bodies(patients: int, size: int = 100) -> list[bytes]:
    return [orjson.dumps(hook_request(patient_record(size, seed=i, patient_id=f"sizing-{i}"), "patient-view", str(uuid.uuid4())))
            for i in range(patients)]


def measure(workers: int, seconds: float, connections: int, database_url: str, folder: Path) -> dict[str, float]:
    signer = Signer(folder / f"jwks-{workers}.json")
    issuers = folder / f"issuers-{workers}.json"
    issuers.write_text(json.dumps([{"iss": ISSUER, "jwks_file": str(signer.path)}]))
    prefix = f"cds-sizing-{uuid.uuid4().hex[:8]}:"
    server = Server(workers, {"CDS_AUTH": "required", "CDS_TRUSTED_ISSUERS": f"@{issuers}", "CDS_DATABASE_URL": database_url,
                              "CDS_REDIS_URL": REDIS_URL, "CDS_REDIS_PREFIX": prefix, "CDS_PATIENT_CACHE_RESOURCES": "0",
                              "CDS_MAX_REQUESTS": "2000",  # as deployed
                              "CDS_BENCH_ECHO": "false"})
    try:
        url = f"{server.base}/cds-services/{PATIENT_VIEW.id}"
        bodies = patient_view_bodies(200)
        needed = int(1500 * workers * (seconds + 2))  # more than the fastest run here could use
        started = time.monotonic()
        tokens = folder / f"tokens-{workers}.txt"
        tokens.write_text("\n".join(signer.token(url) for _ in range(needed)) + "\n")
        print(f"  {needed} tokens signed in {time.monotonic() - started:.1f} s", file=sys.stderr)
        warm = folder / f"warm-{workers}.txt"
        warm.write_text("\n".join(signer.token(url) for _ in range(3000)) + "\n")
        load(url, bodies, 2, 1, tokens=warm)  # every worker loaded and connected
        return load(url, bodies, connections, seconds, tokens=tokens)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    name = f"cds_sizing_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    results: dict[str, dict[str, float]] = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            for workers in sorted({1, cores}):
                print(f"{workers} worker(s)...", file=sys.stderr)
                results[f"{workers} worker(s)"] = measure(workers, args.seconds, args.connections,
                                                          f"postgresql://postgres@127.0.0.1:5432/{name}", Path(folder))
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    print(f"\nOne replica, patient-view, 100-resource patients, cache off, JWT per call, PostgreSQL + Redis; "
          f"{cores} cores, {args.connections} connections, {args.seconds:g} s")
    print(f"{'workers':<12}{'req/s':>10}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for label, row in results.items():
        print(f"{label:<12}{row['requests_per_second']:>10.0f}{row['median']:>10.1f}{row['p90']:>10.1f}{row['p99']:>10.1f}{row['errors']:>8}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "replica.json").write_text(json.dumps({"machine": {"cores": cores, "python": platform.python_version()},
                                                   "seconds": args.seconds, "connections": args.connections,
                                                   "results": results}, indent=2))


if __name__ == "__main__":
    main()
