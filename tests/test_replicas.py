"""Several replicas behind a load balancer: one PostgreSQL store, one Redis for replay and key caches.
Uses the PostgreSQL and Redis servers that run locally on the development and CI machines."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from contextlib import closing

import psycopg
import pytest
import requests

from cds_service.storage import open_store
from conftest import REDIS_URL
from support import EXTERNAL, ROOT, child_env, free_port, hook_request, load_json, load_scenario, service_url, wait_until_up
from test_auth import ISSUER, Signer

PUBLIC = "https://cds.example.org"  # what the load balancer exposes; the tokens' audience


def test_the_postgresql_store_migrates_once_and_keeps_feedback_idempotent(make_app, postgres_url):
    app = make_app(CDS_DATABASE_URL=postgres_url)
    client = app.test_client()
    make_app(CDS_DATABASE_URL=postgres_url)  # a second replica starting: migrations are not applied twice
    with psycopg.connect(postgres_url) as connection:
        assert [r[0] for r in connection.execute("SELECT version FROM schema_migrations ORDER BY version")] == [1, 2, 3]
    feedback = load_json(EXTERNAL / "ahrq-cql-services" / "feedbackFor2.json")
    url = service_url("patient-view") + "/feedback"
    assert client.post(url, json=feedback).get_json() == {"received": 2, "stored": 2}
    assert client.post(url, json=feedback).get_json() == {"received": 2, "stored": 0}
    scenario = load_scenario("ad-primary-nonresponse-adult")
    assert client.post(service_url("patient-view"), json=hook_request(scenario)).status_code == 200
    app.extensions["cds_service"].audit.flush()
    with closing(open_store(postgres_url)) as store:
        assert len(store.feedback_entries()) == 2
        assert store.audit_entries()[-1].cards[0][1] == "dupilumab-inadequate-response"
        assert [row.topic for row in store.feedback_report()] == ["dupilumab-inadequate-response"]


def test_feedback_the_database_refuses_is_a_503_so_the_client_retries(make_app, postgres_url):
    client = make_app(CDS_DATABASE_URL=postgres_url).test_client()
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("ALTER TABLE feedback RENAME TO feedback_moved")
    try:
        body = {"feedback": [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "2025-09-01T12:00:00Z"}]}
        response = client.post(service_url("patient-view") + "/feedback", json=body)
        assert response.status_code == 503
        assert response.get_json()["issue"][0]["code"] == "transient"
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute("ALTER TABLE feedback_moved RENAME TO feedback")


@pytest.fixture
def replicas(tmp_path, postgres_url, redis_prefix):
    signer = Signer(tmp_path / "ehr-jwks.json")
    issuers = tmp_path / "issuers.json"
    issuers.write_text(json.dumps([{"iss": ISSUER, "jwks_file": str(signer.path)}]))
    env = child_env(tmp_path, CDS_DATABASE_URL=postgres_url, CDS_REDIS_URL=REDIS_URL, CDS_REDIS_PREFIX=redis_prefix,
                    CDS_AUTH="required", CDS_TRUSTED_ISSUERS=f"@{issuers}", CDS_PUBLIC_BASE_URL=PUBLIC,
                    CDS_LOG_LEVEL="WARNING")
    processes, bases = [], []
    for _ in range(2):
        port = free_port()
        processes.append(subprocess.Popen([sys.executable, "-m", "cds_service", "serve", "--port", str(port), "--workers", "2"],
                                          cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        bases.append(f"http://127.0.0.1:{port}")
    for base, process in zip(bases, processes):
        wait_until_up(f"{base}/healthz/ready", process, require_ok=True)
    yield signer, bases, postgres_url
    for process in processes:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@pytest.mark.server
def test_a_token_replayed_to_the_other_replica_is_refused(replicas):
    signer, (first, second), _ = replicas
    path = service_url("patient-view")
    body = hook_request(load_scenario("ad-primary-nonresponse-adult"))
    token = signer.token(PUBLIC + path)
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.post(first + path, json=body, headers=headers, timeout=10).status_code == 200
    assert requests.post(second + path, json=body, headers=headers, timeout=10).status_code == 401
    assert requests.post(first + path, json=body, headers=headers, timeout=10).status_code == 401


@pytest.mark.server
def test_feedback_sent_to_either_replica_lands_in_one_store(replicas):
    signer, (first, second), database = replicas
    path = service_url("order-sign") + "/feedback"
    feedback = load_json(EXTERNAL / "ahrq-cql-services" / "feedbackFor2.json")
    one, two = ({"feedback": [item]} for item in feedback["feedback"])
    for base, body in ((first, one), (second, two), (second, one)):  # the last is a repeat, via the other replica
        response = requests.post(base + path, json=body, headers={"Authorization": f"Bearer {signer.token(PUBLIC + path)}"}, timeout=10)
        assert response.status_code == 200
    assert response.json() == {"received": 1, "stored": 0}
    with closing(open_store(database)) as store:
        assert len(store.feedback_entries("dupilumab-next-line-order-sign")) == 2


def test_a_previous_release_still_starts_on_a_newer_schema(make_app, postgres_url, caplog):
    """Rollback: migrations only add, so an older release runs on the schema a newer one migrated."""
    make_app(CDS_DATABASE_URL=postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("INSERT INTO schema_migrations (version) VALUES (99)")
    try:
        client = make_app(CDS_DATABASE_URL=postgres_url).test_client()
        assert "schema version 99 is newer than this release's" in caplog.text
        assert client.get("/healthz/ready").status_code == 200
        body = {"feedback": [{"card": "rollback-card", "outcome": "overridden", "outcomeTimestamp": "2026-11-22T10:00:00Z"}]}
        assert client.post(service_url("patient-view") + "/feedback", json=body).get_json() == {"received": 1, "stored": 1}
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute("DELETE FROM schema_migrations WHERE version = 99")
