"""An audit record per hook call, and the feedback report by card topic."""

from __future__ import annotations

import json
import subprocess
import sys

from cds_service.storage import open_store
from support import ROOT, child_env, hook_request, service_url


def test_every_hook_call_is_audited_without_tokens_or_free_text(scenario_client, settings):
    scenario, client = scenario_client("inadequate-with-mild-drosd")
    app = client.application
    body = hook_request(scenario)
    body["fhirAuthorization"] = {"access_token": "secret-token-123", "token_type": "Bearer"}
    cards = client.post(service_url("patient-view"), json=body).get_json()["cards"]
    client.post(service_url("patient-view"), json={"hook": "patient-view"})  # a bad call is audited too
    app.extensions["cds_service"].audit.flush()
    store = open_store(settings.database_url)
    first, second = store.audit_entries()
    assert (first.service_id, first.hook, first.hook_instance, first.patient, first.status, first.outcome) == (
        "dupilumab-next-line-patient-view", "patient-view", body["hookInstance"], scenario.patient_id, 200, "ok")
    assert [topic for _, topic in first.cards] == [c["source"]["topic"]["code"] for c in cards]
    assert (second.status, second.outcome) == (400, "invalid")
    database = settings.database_url.removeprefix("sqlite:///")
    raw = open(database, "rb").read()
    assert b"secret-token-123" not in raw
    assert cards[0]["detail"][:40].encode() not in raw  # no clinical text in the store


def test_the_feedback_report_gives_rates_and_reasons_by_topic(scenario_client, settings):
    scenario, client = scenario_client("inadequate-with-mild-drosd")
    app = client.application
    calls = [client.post(service_url("patient-view"), json=hook_request(scenario)).get_json()["cards"] for _ in range(3)]
    inadequate = [cards[0] for cards in calls]
    ocular = [cards[1] for cards in calls]
    feedback = [
        {"card": inadequate[0]["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": inadequate[0]["suggestions"][0]["uuid"]}],
         "outcomeTimestamp": "2025-09-01T12:10:00Z"},
        {"card": inadequate[1]["uuid"], "outcome": "overridden", "outcomeTimestamp": "2025-09-01T12:11:00Z",
         "overrideReason": {"reason": inadequate[1]["overrideReasons"][2]}},
        {"card": ocular[0]["uuid"], "outcome": "overridden", "outcomeTimestamp": "2025-09-01T12:12:00Z",
         "overrideReason": {"reason": ocular[0]["overrideReasons"][0], "userComment": "seen by ophthalmology"}},
    ]
    assert client.post(service_url("patient-view") + "/feedback", json={"feedback": feedback}).status_code == 200
    app.extensions["cds_service"].audit.flush()
    result = subprocess.run([sys.executable, "-m", "cds_service", "feedback", "report", "--json"], cwd=ROOT,
                            capture_output=True, text=True, env={"CDS_DATABASE_URL": settings.database_url, "PATH": ""}, timeout=60)
    assert result.returncode == 0, result.stderr
    report = {row["topic"]: row for row in json.loads(result.stdout)}
    failure = report["dupilumab-inadequate-response"]
    assert (failure["cards_issued"], failure["feedback"], failure["accepted"], failure["overridden"]) == (3, 2, 1, 1)
    assert failure["acceptance_rate"] == 0.5
    assert failure["override_reasons"] == [{"reason": "Next-line therapy already planned", "count": 1}]
    eye = report["dupilumab-ocular-surface-disease"]
    assert eye["override_rate"] == 1.0 and eye["override_reasons"][0]["reason"] == "Eye disease already managed with ophthalmology"
    table = subprocess.run([sys.executable, "-m", "cds_service", "feedback", "report"], cwd=ROOT, capture_output=True,
                           text=True, env={"CDS_DATABASE_URL": settings.database_url, "PATH": ""}, timeout=60)
    assert "dupilumab-inadequate-response" in table.stdout and "50%" in table.stdout


IDLE_WRITERS = """
import sys, time
from datetime import datetime, timezone
from cds_service.storage import open_store
from cds_service.storage.audit import AuditWriter
from cds_service.storage.base import AuditRecord
store = open_store(sys.argv[1])
writers = [AuditWriter(store) for _ in range(300)]
for writer in writers:
    writer.record(AuditRecord(at=datetime.now(timezone.utc), service_id="s", hook="patient-view", hook_instance=None,
                              client_issuer=None, client_tenant=None, patient=None, status=200, outcome="ok", latency_ms=1.0))
time.sleep(1.5)  # each has written its record
before = time.process_time()
time.sleep(2)
print(len(store.audit_entries()), time.process_time() - before)
"""


def test_idle_audit_writers_use_no_cpu(tmp_path):
    """A writer per worker (and per app in a test session) sleeps until a record comes: 300 idle writers took about
    0.09 CPU-s every 2 s when each woke every 0.2 s."""
    done = subprocess.run([sys.executable, "-c", IDLE_WRITERS, f"sqlite:///{tmp_path / 'audit.sqlite3'}"], cwd=ROOT,
                          env=child_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    written, cpu_seconds = done.stdout.split()
    assert int(written) == 300
    assert float(cpu_seconds) < 0.02
