"""A database that is locked, slow or refuses writes: readiness says so, feedback gets a quick 503, hook calls
keep their cards, and no audit record is lost when a worker stops or is recycled during the outage."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import psycopg
import pytest
import requests

from cds_service.storage import open_store
from conftest import POSTGRES_ADMIN
from support import ROOT, child_env, free_port, hook_request, load_scenario, service_url, wait_until_up

PATIENT_VIEW = service_url("patient-view")
FEEDBACK = PATIENT_VIEW + "/feedback"


def feedback_item(number: int) -> dict:
    return {"feedback": [{"card": f"card-{number}", "outcome": "overridden", "outcomeTimestamp": "2026-01-01T10:00:00Z"}]}


@contextmanager
def write_locked(path):
    """Another process's transaction holding the SQLite file's write lock (a backup, a stuck migration)."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def sqlite_path(settings) -> str:
    return settings.database_url.removeprefix("sqlite:///")


def test_readiness_writes_so_a_write_locked_sqlite_file_is_not_ready(client, settings):
    assert client.get("/healthz/ready").status_code == 200
    with write_locked(sqlite_path(settings)):
        started = time.monotonic()
        response = client.get("/healthz/ready")
        waited = time.monotonic() - started
    assert response.status_code == 503 and response.get_json()["checks"] == {"database": "unavailable"}
    assert waited < 3.0, waited  # the probe does not hang on the lock (it waits 1 s; before, the probe never noticed)
    assert client.get("/healthz/ready").status_code == 200


def test_readiness_writes_so_a_read_only_postgresql_database_is_not_ready(make_app, own_postgres_url):
    """A database switched to read-only (a failover to a standby, a full disk) answers SELECT 1 but takes no write."""
    client = make_app(CDS_DATABASE_URL=own_postgres_url).test_client()
    assert client.get("/healthz/ready").status_code == 200
    name = own_postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
    for _ in range(3):  # the pool notices its connections were closed, then reconnects read-only
        response = client.get("/healthz/ready")
    assert response.status_code == 503 and response.get_json()["checks"]["database"] == "unavailable"


def test_a_locked_database_costs_feedback_a_quick_503_and_hook_calls_keep_their_cards(make_app, settings):
    app = make_app()
    body = hook_request(load_scenario("ad-primary-nonresponse-adult"))

    def feedback(number):
        started = time.monotonic()
        status = app.test_client().post(FEEDBACK, json=feedback_item(number)).status_code
        return status, time.monotonic() - started

    def hook_call(_):
        started = time.monotonic()
        response = app.test_client().post(PATIENT_VIEW, json=body)
        return response.status_code, len(response.get_json()["cards"]), time.monotonic() - started

    with write_locked(sqlite_path(settings)), ThreadPoolExecutor(max_workers=16) as pool:
        feedbacks = [pool.submit(feedback, n) for n in range(12)]
        calls = [pool.submit(hook_call, n) for n in range(12)]
        feedback_results = [f.result() for f in feedbacks]
        call_results = [f.result() for f in calls]
    assert {status for status, _ in feedback_results} == {503}
    assert max(seconds for _, seconds in feedback_results) < 3.0  # before: 10 s each, holding every thread
    assert all(status == 200 and cards == 1 for status, cards, _ in call_results), call_results
    after = app.test_client().post(FEEDBACK, json=feedback_item(99))
    assert after.status_code == 200 and after.get_json() == {"received": 1, "stored": 1}


@pytest.mark.server
def test_no_audit_record_is_lost_when_workers_are_recycled_while_the_database_refuses_writes(tmp_path):
    """One worker, recycled every 8 requests, serves 30 calls while the database is locked: every worker that exits
    spools what it could not write; once the lock is gone the next worker writes them all."""
    database = tmp_path / "store.sqlite3"
    port = free_port()
    env = child_env(tmp_path, CDS_DATABASE_URL=f"sqlite:///{database}", CDS_AUTH="off", CDS_MAX_REQUESTS="8",
                    CDS_LOG_LEVEL="WARNING", CDS_LOG_FORMAT="text", TMPDIR=str(tmp_path))
    log = tmp_path / "service.log"
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "cds_service", "serve", "--port", str(port), "--workers", "1"],
                                   cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    body = hook_request(load_scenario("ad-primary-nonresponse-adult"))
    try:
        wait_until_up(f"{base}/healthz/live", process)
        instances = set()
        with write_locked(str(database)):
            for number in range(30):
                body["hookInstance"] = f"00000000-0000-4000-8000-{number:012d}"
                instances.add(body["hookInstance"])
                response = requests.post(base + PATIENT_VIEW, json=body, timeout=30)
                assert response.status_code == 200 and len(response.json()["cards"]) == 1
        deadline = time.monotonic() + 60
        audited: set[str | None] = set()
        while time.monotonic() < deadline and not instances <= audited:
            requests.post(base + PATIENT_VIEW, json={**body, "hookInstance": "00000000-0000-4000-8000-999999999999"}, timeout=30)
            time.sleep(1)
            audited = {r.hook_instance for r in open_store(f"sqlite:///{database}").audit_entries()}
        assert instances <= audited, f"{len(instances - audited)} of 30 audit records lost"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    text = log.read_text()
    assert "spooled" in text and "dropped" not in text
    assert "Traceback" not in text
