"""What an orchestrator and its monitoring see: liveness, readiness, Prometheus metrics, JSON logs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import psycopg
import pytest
import requests

from conftest import POSTGRES_ADMIN
from support import REQUESTS, ROOT, child_env, free_port, hook_request, metric_samples, load_json, load_scenario, service_url, wait_until_up
from test_auth import ISSUER, Signer, bearer


# Unreachable dependencies below are free ports: nothing listens there.


def test_liveness_answers_without_checking_dependencies(make_app):
    client = make_app(CDS_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0").test_client()
    response = client.get("/healthz/live")
    assert response.status_code == 200 and response.get_json() == {"status": "live"}


def test_ready_on_embedded_defaults(client):
    response = client.get("/healthz/ready")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": {"database": "ok"}}


def test_not_ready_while_the_configured_redis_is_unreachable(make_app):
    client = make_app(CDS_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0").test_client()
    response = client.get("/healthz/ready")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "ok", "cache": "unavailable"}


def test_not_ready_when_the_postgresql_database_goes_away(make_app, own_postgres_url):
    client = make_app(CDS_DATABASE_URL=own_postgres_url).test_client()
    assert client.get("/healthz/ready").status_code == 200
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {own_postgres_url.rsplit('/', 1)[1]} WITH (FORCE)")
    response = client.get("/healthz/ready")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "unavailable"
    assert client.get("/healthz/live").status_code == 200  # no restart loop for a database outage


# -- the served process: metrics summed across workers, JSON logs ---------------------------------------

SECRET_ACCESS_TOKEN = "fhir-access-token-that-must-never-be-logged"
CLINICAL_NOTE = "Flares after stopping; burning eyes since the third dose"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ops")
    signer = Signer(folder / "jwks.json")
    issuers = folder / "issuers.json"
    issuers.write_text(json.dumps([{"iss": ISSUER, "jwks_file": str(signer.path)}]))
    port = free_port()
    env = child_env(folder, CDS_DATABASE_URL=f"sqlite:///{folder / 'store.sqlite3'}", CDS_AUTH="required",
                    CDS_TRUSTED_ISSUERS=f"@{issuers}", CDS_LOG_LEVEL="INFO", CDS_LOG_FORMAT="json",
                    CDS_METRICS_DIR=str(folder / "metrics"))
    log = open(folder / "service.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "cds_service", "serve", "--port", str(port), "--workers", "2"],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_until_up(f"{base}/healthz/ready", process, require_ok=True)
    yield base, signer, process, folder / "service.log"
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def _value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.server
def test_metrics_add_up_across_gunicorn_workers(served):
    base, signer, _, _ = served
    path = service_url("patient-view")
    service = path.rsplit("/", 1)[1]
    before = metric_samples(base)
    body = load_json(REQUESTS / "ad-primary-nonresponse-adult.patient-view.json")
    sent = 24  # a new connection each: the two workers share them
    for _ in range(sent):
        response = requests.post(base + path, json=body, headers=bearer(signer.token(f"{base}{path}")), timeout=10)
        assert response.status_code == 200
    refused = requests.post(base + path, json=body, headers=bearer(signer.token(f"{base}{path}", exp=int(time.time()) - 600)), timeout=10)
    assert refused.status_code == 401
    after = metric_samples(base)

    def grew(name, **labels):
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert grew("cds_requests_total", endpoint="call_service", service=service, status="200") == sent
    assert grew("cds_requests_total", endpoint="call_service", service=service, status="401") == 1
    assert grew("cds_request_duration_seconds_count", endpoint="call_service", service=service) == sent + 1
    assert grew("cds_cards_total", topic="dupilumab-inadequate-response") == sent
    assert grew("cds_auth_failures_total", reason="expired") == 1
    hits, misses = grew("cds_patient_cache_lookups_total", result="hit"), grew("cds_patient_cache_lookups_total", result="miss")
    assert hits + misses == sent and misses <= 2  # the same chart every time: at most a first miss in each worker


@pytest.mark.server
def test_logs_are_json_lines_with_request_id_and_hook_instance_and_no_secrets(served):
    base, signer, process, log_path = served
    path = service_url("patient-view")
    scenario = load_scenario("ad-primary-nonresponse-adult")
    body = hook_request(scenario)
    for entry in body["prefetch"]["Condition"]["entry"]:
        entry["resource"]["note"] = [{"text": CLINICAL_NOTE}]
    body["fhirServer"] = "https://ehr.example.org/fhir"
    body["fhirAuthorization"] = {"access_token": SECRET_ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 300,
                                 "scope": "patient/*.read", "subject": "cds-service"}
    token = signer.token(f"{base}{path}")
    response = requests.post(base + path, json=body, headers=bearer(token), timeout=10)
    assert response.status_code == 200
    replay = requests.post(base + path, json=body, headers=bearer(token), timeout=10)
    assert replay.status_code == 401
    time.sleep(0.3)  # let the workers' handlers write
    text = log_path.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is one JSON object
    served_line = [entry for entry in lines if entry.get("request_id") == response.headers["X-Request-Id"]]
    assert served_line and served_line[0]["hook_instance"] == body["hookInstance"]
    assert any(entry.get("request_id") == replay.headers["X-Request-Id"] and "jti replayed" in entry["message"] for entry in lines)
    for secret in (SECRET_ACCESS_TOKEN, token, token.split(".")[1]):
        assert secret not in text
    assert CLINICAL_NOTE not in text
    assert scenario.patient_id not in text


@pytest.mark.server
def test_workers_recycled_after_max_requests_keep_serving_and_counting(tmp_path):
    """gunicorn replaces a worker after CDS_MAX_REQUESTS; the others' metrics files and the replay cache stay."""
    port = free_port()
    env = child_env(tmp_path, CDS_DATABASE_URL=f"sqlite:///{tmp_path / 'store.sqlite3'}", CDS_AUTH="off",
                    CDS_MAX_REQUESTS="10", CDS_LOG_LEVEL="WARNING")
    process = subprocess.Popen([sys.executable, "-m", "cds_service", "serve", "--port", str(port), "--workers", "2"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/healthz/live", process)
        body = load_json(REQUESTS / "ad-primary-nonresponse-adult.patient-view.json")
        path = service_url("patient-view")
        statuses = [requests.post(base + path, json=body, timeout=10).status_code for _ in range(60)]
        assert statuses == [200] * 60  # each worker was replaced several times along the way
        samples = metric_samples(base)
        assert _value(samples, "cds_requests_total", endpoint="call_service", service=path.rsplit("/", 1)[1], status="200") == 60
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_a_metrics_failure_never_fails_the_call(client, monkeypatch):
    from cds_service import metrics

    def broken():
        raise OSError("No space left on device")

    monkeypatch.setattr(metrics, "_get", broken)
    monkeypatch.setattr(metrics, "_children", {})  # no series looked up by earlier calls
    body = hook_request(load_scenario("ad-primary-nonresponse-adult"))
    response = client.post(service_url("patient-view"), json=body)
    assert response.status_code == 200 and len(response.get_json()["cards"]) == 1


def test_every_reason_a_token_is_refused_for_counts_under_a_named_label():
    """Auth failures are counted by a bounded label; a new refusal reason must not fall into "other" unnoticed."""
    import re

    from cds_service import metrics

    source = (ROOT / "cds_service" / "trust" / "verify.py").read_text()
    reasons = re.findall(r'AuthFailure\(f?"([^"]+)"', source)
    assert len(reasons) >= 15
    unlabelled = [reason for reason in reasons if not any(reason.startswith(start) for start, _ in metrics._AUTH_REASONS)]
    assert unlabelled == []


def test_a_call_frees_its_parsed_request_once_the_answer_is_written():
    """Freeing a large request takes milliseconds, so it waits until the answer is written; it must then happen
    (kept any longer, every call would leak its request)."""
    import weakref

    from flask import Response

    from cds_service.api.routes import _freed_after_sending

    class Parsed:
        pass

    parsed = Parsed()
    alive = weakref.ref(parsed)
    response = _freed_after_sending(Response(b"{}"), parsed)
    del parsed
    assert alive() is not None  # the server is still writing the answer
    response.close()
    del response
    assert alive() is None
