"""POST /cds-services/{id}/feedback: validated, stored once however often it is sent (REQ 148)."""

from __future__ import annotations

import copy

import pytest

from cds_service.storage import open_store
from support import EXTERNAL, load_json, service_url

FEEDBACK = service_url("patient-view") + "/feedback"


@pytest.fixture
def ahrq_feedback():
    return load_json(EXTERNAL / "ahrq-cql-services" / "feedbackFor2.json")


def stored(settings):
    return open_store(settings.database_url).feedback_entries()


def test_feedback_from_another_project_is_stored(client, settings, ahrq_feedback):
    response = client.post(FEEDBACK, json=ahrq_feedback)
    assert response.status_code == 200
    assert response.get_json() == {"received": 2, "stored": 2}
    rows = stored(settings)
    assert sorted(r.card for r in rows) == ["4e0a3a1e-3283-4575-ab82-028d55fe2719", "5e0a3a1e-3283-4575-ab82-028d55fe2719"]
    assert {r.accepted_suggestions for r in rows} == {("e56e1945-20b3-4393-8503-a1a20fd73152",), ("f56e1945-20b3-4393-8503-a1a20fd73152",)}
    assert all(r.service_id == "dupilumab-next-line-patient-view" and r.outcome == "accepted" for r in rows)


def test_the_same_feedback_sent_twice_is_stored_once(client, settings, ahrq_feedback):
    client.post(FEEDBACK, json=ahrq_feedback)
    again = client.post(FEEDBACK, json=ahrq_feedback)
    assert again.status_code == 200
    assert again.get_json() == {"received": 2, "stored": 0}
    assert len(stored(settings)) == 2


def test_feedback_survives_a_restart(make_app, settings, ahrq_feedback):
    make_app().test_client().post(FEEDBACK, json=ahrq_feedback)
    restarted = make_app().test_client()
    assert restarted.post(FEEDBACK, json=ahrq_feedback).get_json()["stored"] == 0
    assert len(stored(settings)) == 2


def test_an_override_keeps_its_reason_and_comment(client, settings):
    body = {
        "feedback": [
            {
                "card": "9b6c7f0e-1111-4222-8333-444455556666",
                "outcome": "overridden",
                "overrideReason": {
                    "reason": {"system": "http://example.org/fhir/CodeSystem/dupilumab-cds-override-reason", "code": "plan-in-place", "display": "Next-line therapy already planned"},
                    "userComment": "starting upadacitinib next visit",
                },
                "outcomeTimestamp": "2025-09-01T12:30:00Z",
            }
        ]
    }
    assert client.post(FEEDBACK, json=body).status_code == 200
    (row,) = stored(settings)
    assert (row.outcome, row.override_reason_code, row.user_comment) == ("overridden", "plan-in-place", "starting upadacitinib next visit")


def test_an_override_without_a_reason_is_accepted(client):
    """overrideReason is optional in CDS Hooks 2.0 (REQ 160)."""
    body = {"feedback": [{"card": "c1", "outcome": "overridden", "outcomeTimestamp": "2025-09-01T12:30:00Z"}]}
    assert client.post(FEEDBACK, json=body).status_code == 200


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda f: f.pop("acceptedSuggestions"), "feedback[0].acceptedSuggestions"),  # REQ 158
        (lambda f: f.update(outcome="ignored"), "feedback[0].outcome"),  # REQ 156
        (lambda f: f.pop("card"), "feedback[0].card"),  # REQ 155
        (lambda f: f.pop("outcomeTimestamp"), "feedback[0].outcomeTimestamp"),  # REQ 161
        (lambda f: f.update(outcomeTimestamp="yesterday"), "feedback[0].outcomeTimestamp"),
        (lambda f: f.update(overrideReason={"reason": {"code": "x"}}), "feedback[0].overrideReason.reason.system"),
        (lambda f: f.update(acceptedSuggestions=[{}]), "feedback[0].acceptedSuggestions[0].id"),
    ],
)
def test_invalid_feedback_is_a_400_naming_the_field_and_nothing_is_stored(client, settings, ahrq_feedback, change, field):
    body = copy.deepcopy(ahrq_feedback)
    change(body["feedback"][0])
    response = client.post(FEEDBACK, json=body)
    assert response.status_code == 400
    assert field in [e for i in response.get_json()["issue"] for e in i.get("expression", [])]
    assert stored(settings) == []


@pytest.mark.parametrize("body", [{}, {"feedback": []}, {"feedback": "accepted"}, []])
def test_a_feedback_body_without_feedback_items_is_a_400(client, body):
    assert client.post(FEEDBACK, json=body).status_code == 400
