"""GET /cds-services: the discovery document, and CORS for browser-based clients."""

from __future__ import annotations

import re

from support import walk

TOKEN = re.compile(r"\{\{([^}]*)\}\}")
ALLOWED_TOKENS = {
    "context.patientId", "context.userId", "context.encounterId",
    "userPractitionerId", "userPractitionerRoleId", "userPatientId", "userRelatedPersonId",
}


def test_discovery_lists_one_service_per_hook(client):
    """REQ 4, 5, 6, 7, 8, 9, 10, 13."""
    response = client.get("/cds-services")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    services = response.get_json()["services"]
    assert sorted(s["hook"] for s in services) == ["order-select", "order-sign", "patient-view"]
    for service in services:
        assert service["id"] and service["title"] and service["description"]
        assert re.fullmatch(r"[A-Za-z0-9\-]+", service["id"])


def test_each_service_endpoint_is_base_url_plus_id(client):
    """REQ 16: {baseUrl}/cds-services/{id} answers for every listed id (here with a 400 for an empty body)."""
    for service in client.get("/cds-services").get_json()["services"]:
        assert client.post(f"/cds-services/{service['id']}", json={}).status_code == 400


def test_prefetch_templates_use_only_2_0_tokens_and_the_recommended_queries(client):
    """REQ 29, 36, 55, 56, 57, 58, 59."""
    for service in client.get("/cds-services").get_json()["services"]:
        assert service["prefetch"], "the logic reads patient data, so it asks for it"
        for key, template in service["prefetch"].items():
            assert set(TOKEN.findall(template)) <= ALLOWED_TOKENS
            path, _, query = template.partition("?")
            if not query:
                assert re.fullmatch(r"[A-Z][A-Za-z]+/\{\{context\.patientId\}\}", path), template
            else:
                assert re.fullmatch(r"[A-Z][A-Za-z]+", path)
                for parameter in query.split("&"):
                    name = parameter.split("=")[0]
                    assert name in {"patient", "subject", "code", "category", "status", "date", "_count", "_sort"}, template


def test_discovery_has_no_empty_attributes(client):
    """REQ 3."""
    for path, value in walk(client.get("/cds-services").get_json()):
        assert value not in (None, "", [], {}), path


def test_cors_allows_the_sandbox_on_discovery_service_and_feedback(client):
    """REQ 208: browser clients send Authorization and Content-Type on GET, POST and OPTIONS."""
    origin = {"Origin": "https://sandbox.cds-hooks.org"}
    service = client.get("/cds-services").get_json()["services"][0]["id"]
    for path in ("/cds-services", f"/cds-services/{service}", f"/cds-services/{service}/feedback"):
        preflight = client.options(
            path,
            headers={**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"},
        )
        assert preflight.status_code in (200, 204)
        assert preflight.headers["Access-Control-Allow-Origin"] == "*"
        allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "content-type"} <= allowed
        assert {"GET", "POST", "OPTIONS"} <= {m.strip() for m in preflight.headers["Access-Control-Allow-Methods"].split(",")}
    assert client.get("/cds-services", headers=origin).headers["Access-Control-Allow-Origin"] == "*"


def test_cors_can_be_limited_to_named_origins(make_app):
    client = make_app(CDS_CORS_ORIGINS="https://ehr.example.org").test_client()
    allowed = client.get("/cds-services", headers={"Origin": "https://ehr.example.org"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://ehr.example.org"
    other = client.get("/cds-services", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in other.headers
