"""The demo patients tell the same story every day: fixture dates are moved to today wherever a scenario is shown,
`cds-service fixtures request` makes a today-dated request for any patient and drug, and a development server can
be pinned to a date (CDS_DEV_NOW), which production configuration refuses."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest

from cds_service.api import create_app
from cds_service.fixture_dates import materialise, shift_days
from cds_service.settings import Settings, SettingsError
from support import REQUESTS, ROOT, child_env, load_json, load_scenario, service_url

CLI = [sys.executable, "-m", "cds_service"]


@pytest.fixture
def run(tmp_path):
    def run_cli(*args, stdin: bytes | None = None, **settings):
        env = child_env(tmp_path, **settings)
        return subprocess.run([*CLI, *args], input=stdin, capture_output=True, cwd=ROOT, env=env, timeout=60)

    return run_cli


def test_every_date_moves_by_the_same_days_and_nothing_else_changes():
    resource = {
        "resourceType": "Observation", "id": "pnr-adult-easi-25", "effectiveDateTime": "2025-08-25T09:30:00Z",
        "issued": "2025-08-25", "code": {"coding": [{"system": "http://loinc.org", "code": "72166-2"}]},
        "note": [{"text": "EASI 23 on 2025-08-25, week 25"}], "valueQuantity": {"value": 2025},
        "extension": [{"url": "x", "valueDate": "2019-04"}, {"url": "y", "valueString": "2025-13-45"}],
    }
    moved = materialise(resource, 10)
    assert moved["effectiveDateTime"] == "2025-09-04T09:30:00Z"
    assert moved["issued"] == "2025-09-04"
    assert moved["note"][0]["text"] == "EASI 23 on 2025-09-04, week 25"
    assert moved["extension"][0]["valueDate"] == "2019-04"  # a partial date moves with its first day (1 April + 10 days)
    assert moved["id"] == "pnr-adult-easi-25" and moved["code"]["coding"][0]["code"] == "72166-2"
    assert moved["valueQuantity"]["value"] == 2025 and moved["extension"][1]["valueString"] == "2025-13-45"
    assert materialise(resource, 0) == resource
    assert materialise({"birthDate": "1991-03-01"}, 365) == {"birthDate": "1992-02-29"}


def test_a_scenario_told_as_of_another_day_keeps_its_weeks_and_ages():
    written = load_scenario("ad-primary-nonresponse-adult")
    later = load_scenario("ad-primary-nonresponse-adult", as_of=date(2027, 3, 15))
    assert later.evaluate_at.date() == date(2027, 3, 15)
    days = shift_days(written.evaluate_at, date(2027, 3, 15))
    start = date.fromisoformat(written.of_type("MedicationStatement")[0]["effectivePeriod"]["start"])
    assert later.of_type("MedicationStatement")[0]["effectivePeriod"]["start"] == (start + timedelta(days=days)).isoformat()
    assert "23 (2027-03-" in " ".join(later.expected["cards"][0]["detail_includes"])  # the expected texts move alike


def test_fixtures_request_gives_today_s_story_for_a_patient(run):
    request = run("fixtures", "request", "ad-primary-nonresponse-adult")
    assert request.returncode == 0, request.stderr.decode()
    body = json.loads(request.stdout)
    assert body["hook"] == "patient-view" and body["context"]["patientId"] == "pnr-adult"
    answer = run("evaluate", "-", stdin=request.stdout)  # the clock: now
    assert answer.returncode == 0, answer.stderr.decode()
    (card,) = json.loads(answer.stdout)["cards"]
    assert card["summary"].startswith("Dupilumab: no adequate response after 26 weeks")
    expected = load_scenario("ad-primary-nonresponse-adult", as_of=datetime.now(UTC).date()).expected["cards"][0]
    for text in expected["detail_includes"]:  # with their dates moved to today's story
        assert text in card["detail"]


def test_fixtures_request_drafts_the_order_the_sandbox_cannot(run):
    """The public sandbox's Rx View offers no upadacitinib: the order-select call for it is made here instead."""
    # by patient id, as `dev` and `fixtures list` name it
    request = run("fixtures", "request", "neut", "--hook", "order-select", "--order", "upadacitinib 15 mg tablet", "--dose-mg", "15")
    assert request.returncode == 0, request.stderr.decode()
    answer = run("evaluate", "-", stdin=request.stdout)
    cards = json.loads(answer.stdout)["cards"]
    assert cards[0]["source"]["topic"]["code"] == "therapy-safety" and cards[0]["indicator"] == "critical"
    assert "neutrophil" in cards[0]["detail"].lower()


@pytest.mark.parametrize("args, message", [
    (["fixtures", "request", "no-such-patient"], "no scenario or patient id 'no-such-patient'"),
    (["fixtures", "request", "ad-primary-nonresponse-adult", "--hook", "encounter-start"], "--hook must be one of"),
    (["fixtures", "request", "ad-primary-nonresponse-adult", "--order", "upadacitinib"], "--order is for order-select and order-sign"),
])
def test_fixtures_request_refuses_a_mistake_in_one_line(run, args, message):
    result = run(*args)
    assert result.returncode == 64
    err = result.stderr.decode()
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_fixtures_list_says_what_each_patient_shows(run):
    result = run("fixtures", "list")
    lines = result.stdout.decode().splitlines()
    assert "pnr-adult\tad-primary-nonresponse-adult\tDupilumab inadequate response (warning)" in lines
    assert "resp\tad-dupilumab-responder\tno card" in lines
    assert "eu-pnr-adult\teu-adult-nonresponse\tDupilumab inadequate response (warning) [with CDS_REGION=EU]" in lines


def test_a_development_server_pinned_to_a_date_answers_as_of_that_date(tmp_path):
    """The fixture request files are written as of their scenario's evaluate_at: CDS_DEV_NOW answers them as the
    README's curl shows, the same as `evaluate --now`."""
    settings = Settings.from_env({"CDS_AUTH": "off", "CDS_DEV_NOW": "2025-09-01T12:00:00Z",
                                  "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"})
    client = create_app(settings).test_client()
    body = load_json(REQUESTS / "ad-primary-nonresponse-adult.patient-view.json")
    (card,) = client.post(service_url("patient-view"), json=body).get_json()["cards"]
    assert card["summary"].startswith("Dupilumab: no adequate response after 26 weeks")


@pytest.mark.parametrize("environ, message", [
    ({"CDS_AUTH": "required", "CDS_DEV_NOW": "2025-09-01"}, "refused with CDS_AUTH=required"),
    ({"CDS_AUTH": "off", "CDS_DEV_NOW": "yesterday"}, "CDS_DEV_NOW must be an ISO date or date-time"),
])
def test_the_development_clock_is_refused_in_production_and_when_malformed(environ, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(environ)


def test_serve_refuses_a_pinned_clock_in_production_in_one_line(run):
    result = run("serve", CDS_AUTH="required", CDS_DEV_NOW="2025-09-01")
    assert result.returncode != 0
    err = result.stderr.decode()
    assert "CDS_DEV_NOW" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
