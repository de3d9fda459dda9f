"""POST /cds-services/{id}/feedback: validated, stored once however often it is sent (REQ 148)."""

from __future__ import annotations

import copy

import pytest

from cds_service.storage import open_store
from support import EXTERNAL, load_json, replaced, service_url

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


OVERRIDE = {
    "card": "9b6c7f0e-1111-4222-8333-444455556666",
    "outcome": "overridden",
    "overrideReason": {
        "reason": {"system": "http://example.org/fhir/CodeSystem/dupilumab-cds-override-reason", "code": "plan-in-place",
                   "display": "Next-line therapy already planned"},
        "userComment": "starting upadacitinib next visit",
    },
    "outcomeTimestamp": "2025-09-01T12:30:00Z",
}


def test_an_override_keeps_its_reason_and_comment(client, settings):
    assert client.post(FEEDBACK, json={"feedback": [OVERRIDE]}).status_code == 200
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


# -- feedback identity (docs/operations.md): a re-send that only writes the same feedback differently is stored once

@pytest.mark.parametrize("path, value", [
    ("outcomeTimestamp", "2025-09-01T12:30:00.000Z"),
    ("outcomeTimestamp", "2025-09-01T12:30:00+00:00"),
    ("outcomeTimestamp", "2025-09-01T14:30:00+02:00"),
    ("outcomeTimestamp", "2025-09-01t12:30:00z"),
    ("extension", [{"url": "http://example.org/ehr-session", "valueString": "42"}]),
    ("overrideReason.reason.display", "Plan in place"),
])
def test_feedback_written_differently_is_the_same_feedback_and_stored_once(client, settings, path, value):
    assert client.post(FEEDBACK, json={"feedback": [OVERRIDE]}).get_json() == {"received": 1, "stored": 1}
    again = client.post(FEEDBACK, json={"feedback": [replaced(OVERRIDE, path, value)]})
    assert again.status_code == 200 and again.get_json() == {"received": 1, "stored": 0}
    assert len(stored(settings)) == 1


@pytest.mark.parametrize("path, value", [
    ("outcomeTimestamp", "2025-09-01T12:30:01Z"),
    ("outcomeTimestamp", "2025-09-01T12:30:00+02:00"),  # two hours earlier, another moment
    ("overrideReason.userComment", "patient prefers to wait"),
    ("overrideReason.reason.code", "patient-declined"),
    ("card", "9b6c7f0e-1111-4222-8333-444455556667"),
])
def test_feedback_that_says_something_else_is_stored_as_well(client, settings, path, value):
    client.post(FEEDBACK, json={"feedback": [OVERRIDE]})
    assert client.post(FEEDBACK, json={"feedback": [replaced(OVERRIDE, path, value)]}).get_json() == {"received": 1, "stored": 1}
    assert len(stored(settings)) == 2


def test_accepted_suggestions_in_another_order_are_the_same_feedback(client, settings):
    item = {"card": "c1", "outcome": "accepted", "outcomeTimestamp": "2025-09-01T12:30:00Z",
            "acceptedSuggestions": [{"id": "a"}, {"id": "b"}]}
    client.post(FEEDBACK, json={"feedback": [item]})
    reordered = {**item, "acceptedSuggestions": [{"id": "b"}, {"id": "a"}]}
    assert client.post(FEEDBACK, json={"feedback": [reordered]}).get_json()["stored"] == 0


@pytest.mark.parametrize("timestamp", ["2025-02-30T12:00:00Z", "2025-09-01T25:00:00Z", "2025-13-01T12:00:00Z"])
def test_a_timestamp_that_names_no_real_moment_is_a_400(client, settings, timestamp):
    response = client.post(FEEDBACK, json={"feedback": [{**OVERRIDE, "outcomeTimestamp": timestamp}]})
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["feedback[0].outcomeTimestamp"]
    assert stored(settings) == []


def test_feedback_with_a_member_nested_hundreds_of_levels_is_stored_and_a_retry_is_not_stored_again(client, settings):
    """The idempotency key once serialised the whole item, and serialising fails past 254 levels: every retry was a 500."""
    deep = "[" * 300 + "1" + "]" * 300
    body = ('{"feedback": [{"card": "c2", "outcome": "overridden", "outcomeTimestamp": "2025-09-01T12:30:00Z", '
            f'"extension": {deep}}}]}}').encode()
    first = client.post(FEEDBACK, data=body, content_type="application/json")
    retry = client.post(FEEDBACK, data=body, content_type="application/json")
    assert (first.status_code, first.get_json()) == (200, {"received": 1, "stored": 1})
    assert (retry.status_code, retry.get_json()) == (200, {"received": 1, "stored": 0})
