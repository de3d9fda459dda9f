"""Trusting CDS clients: only JWTs from allowlisted issuers, for the exact URL called, once (REQ 176, 177,
195, 199, 201, 203, 205)."""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from support import EXTERNAL, hook_request, load_json, load_scenario, service_url

ISSUER = "https://ehr.example.org"
BASE = "http://localhost"  # Flask's test client calls http://localhost/...


class Signer:
    """An EHR: private keys, and a JWKS file the service is configured with."""

    def __init__(self, path):
        self.path = path
        self.keys: dict[str, tuple[str, object]] = {}
        self.add("es-1", "ES384")

    def add(self, kid: str, alg: str) -> None:
        private = ec.generate_private_key(ec.SECP384R1()) if alg.startswith("ES") else rsa.generate_private_key(65537, 2048)
        self.keys[kid] = (alg, private)
        jwks = {"keys": []}
        for key_id, (key_alg, key) in self.keys.items():
            public = json.loads(jwt.algorithms.get_default_algorithms()[key_alg].to_jwk(key.public_key()))
            jwks["keys"].append({**public, "kid": key_id, "use": "sig", "alg": key_alg})
        self.path.write_text(json.dumps(jwks))

    def token(self, aud: str, kid: str = "es-1", **changes) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": aud, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
        headers = {"kid": kid, "typ": "JWT"}
        for key, value in changes.items():
            if key.startswith("header_"):
                headers[key.removeprefix("header_")] = value
            elif value is None:
                claims.pop(key, None)
            else:
                claims[key] = value
        alg, private = self.keys[kid]
        return jwt.encode(claims, private, algorithm=alg, headers=headers)


@pytest.fixture
def signer(tmp_path):
    return Signer(tmp_path / "ehr-jwks.json")


@pytest.fixture
def secured(make_app, signer, tmp_path):
    def build(issuer_extra: dict | None = None, **settings):
        issuers = [{"iss": ISSUER, "jwks_file": str(signer.path), **(issuer_extra or {})}]
        config = tmp_path / "issuers.json"
        config.write_text(json.dumps(issuers))
        return make_app(CDS_AUTH="required", CDS_TRUSTED_ISSUERS=f"@{config}",
                        CDS_JWT_ALGORITHMS="ES384,RS384", **settings).test_client()

    return build


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def call(client, token, path=None, body=None):
    path = path or service_url("patient-view")
    body = body or hook_request(load_scenario("ad-primary-nonresponse-adult"))
    return client.post(path, json=body, headers=bearer(token))


def assert_refused(response):
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    outcome = response.get_json()
    assert outcome["issue"] == [{"severity": "error", "code": "login", "diagnostics": "authentication failed"}]


def test_a_valid_token_opens_discovery_services_and_feedback(secured, signer):
    client = secured()
    assert client.get("/cds-services", headers=bearer(signer.token(f"{BASE}/cds-services"))).status_code == 200
    assert call(client, signer.token(BASE + service_url("patient-view"))).status_code == 200
    feedback = load_json(EXTERNAL / "ahrq-cql-services" / "feedbackFor2.json")
    path = service_url("patient-view") + "/feedback"
    assert client.post(path, json=feedback, headers=bearer(signer.token(BASE + path))).status_code == 200


def test_rsa_tokens_work_too_and_the_audience_may_be_a_list(secured, signer):
    signer.add("rsa-1", "RS384")
    client = secured()
    url = BASE + service_url("patient-view")
    assert call(client, signer.token([url, "https://other"], kid="rsa-1")).status_code == 200


@pytest.mark.parametrize(
    "change",
    [
        {"aud": f"{BASE}/cds-services"},  # a token for discovery used on a service
        {"iss": "https://someone-else.example.org"},
        {"exp": int(time.time()) - 3600},
        {"iat": int(time.time()) + 3600},
        {"jti": None},
        {"exp": None},
        {"exp": int(time.time()) + 86400},  # lifetime beyond CDS_JWT_MAX_LIFETIME_SECONDS
    ],
)
def test_a_token_with_wrong_claims_is_refused_without_detail(secured, signer, change):
    change = dict(change)
    url = change.pop("aud", BASE + service_url("patient-view"))
    assert_refused(call(secured(), signer.token(url, **change)))


def unsigned_segments(header: dict, claims: dict) -> str:
    """A token as an attacker writes it, with members PyJWT would refuse to encode (its signature is never reached)."""
    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}.{part('not-a-signature')}"


@pytest.mark.parametrize("header, iss", [
    ({}, [ISSUER]), ({}, {"url": ISSUER}), ({"kid": ["es-1"]}, ISSUER), ({"jku": ["https://ehr.example.org/jwks"]}, ISSUER),
])
def test_a_token_whose_issuer_kid_or_jku_is_not_a_string_is_refused_not_a_server_error(secured, header, iss):
    """Issue 20, item 6: an unverified `iss` list or object answered 500 (unhashable) before any key was checked."""
    now = int(time.time())
    claims = {"iss": iss, "aud": BASE + service_url("patient-view"), "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    token = unsigned_segments({"alg": "ES384", "typ": "JWT", **header}, claims)
    assert_refused(call(secured(), token))


def test_no_token_or_a_malformed_one_is_refused(secured):
    client = secured()
    assert_refused(client.get("/cds-services"))
    assert_refused(client.get("/cds-services", headers={"Authorization": "Bearer not.a.jwt"}))
    assert_refused(client.get("/cds-services", headers={"Authorization": "Basic dXNlcjpwYXNz"}))


def test_unsigned_and_hmac_tokens_are_refused(secured, signer):
    """REQ 201, 203: never `none`, never a shared secret."""
    url = f"{BASE}/cds-services"
    claims = {"iss": ISSUER, "aud": url, "iat": int(time.time()), "exp": int(time.time()) + 300, "jti": "x"}
    unsigned = jwt.encode(claims, None, algorithm="none")
    public_pem = json.loads(signer.path.read_text())["keys"][0]["x"]  # a value an attacker can read
    hmac = jwt.encode({**claims, "jti": "y"}, public_pem, algorithm="HS256", headers={"kid": "es-1"})
    client = secured()
    assert_refused(client.get("/cds-services", headers=bearer(unsigned)))
    assert_refused(client.get("/cds-services", headers=bearer(hmac)))


def test_hmac_cannot_be_allowed_by_setting(make_app):
    with pytest.raises(ValueError):
        make_app(CDS_AUTH="required", CDS_JWT_ALGORITHMS="ES384,HS256")


def test_a_replayed_token_is_refused(secured, signer):
    client = secured()
    token = signer.token(f"{BASE}/cds-services")
    assert client.get("/cds-services", headers=bearer(token)).status_code == 200
    assert_refused(client.get("/cds-services", headers=bearer(token)))


def test_a_new_key_is_fetched_when_an_unknown_kid_arrives(secured, signer):
    client = secured()
    assert client.get("/cds-services", headers=bearer(signer.token(f"{BASE}/cds-services"))).status_code == 200
    signer.add("es-2+rotated==", "ES384")  # kids may contain + and =
    token = signer.token(f"{BASE}/cds-services", kid="es-2+rotated==", sub="Practitioner/1", nbf=int(time.time()) - 5)
    assert client.get("/cds-services", headers=bearer(token)).status_code == 200


def test_a_tenant_bound_issuer_needs_the_tenant(secured, signer):
    client = secured({"tenant": "hospital-a"})
    url = f"{BASE}/cds-services"
    assert_refused(client.get("/cds-services", headers=bearer(signer.token(url))))
    assert_refused(client.get("/cds-services", headers=bearer(signer.token(url, tenant="hospital-b"))))
    assert client.get("/cds-services", headers=bearer(signer.token(url, tenant="hospital-a"))).status_code == 200


def test_a_jku_outside_the_issuers_allowlist_is_refused(make_app, signer, tmp_path):
    config = tmp_path / "issuers.json"
    config.write_text(json.dumps([{"iss": ISSUER, "jwks_url": "https://ehr.example.org/jwks.json"}]))
    client = make_app(CDS_AUTH="required", CDS_TRUSTED_ISSUERS=f"@{config}").test_client()
    token = signer.token(f"{BASE}/cds-services", header_jku="https://attacker.example.com/jwks.json")
    assert_refused(client.get("/cds-services", headers=bearer(token)))


def test_the_public_base_url_is_the_audience_behind_a_proxy(secured, signer):
    client = secured(CDS_PUBLIC_BASE_URL="https://cds.example.org")
    assert_refused(client.get("/cds-services", headers=bearer(signer.token(f"{BASE}/cds-services"))))
    assert client.get("/cds-services", headers=bearer(signer.token("https://cds.example.org/cds-services"))).status_code == 200


def test_refusals_are_logged_with_claims_but_never_the_token(secured, signer, caplog):
    token = signer.token("https://wrong.example.org/cds-services", sub="Practitioner/7")
    with caplog.at_level(logging.WARNING, logger="cds_service.auth"):
        assert_refused(secured().get("/cds-services", headers=bearer(token)))
    assert "audience is not the URL called" in caplog.text and "Practitioner/7" in caplog.text
    assert token not in caplog.text and token.split(".")[2] not in caplog.text


def test_cors_preflight_needs_no_token(secured):
    response = secured().options("/cds-services", headers={"Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "GET"})
    assert response.status_code in (200, 204)


def test_a_token_the_public_cds_hooks_sandbox_signed_verifies_when_the_sandbox_is_trusted(make_app, tmp_path):
    """A real ES384 token from sandbox.cds-hooks.org (2020), checked with its published key. The clock
    leeway is widened to reach back to 2020: everything else (key, kid, jku, alg, audience) is as live."""
    captured = load_json(EXTERNAL / "cds-hooks-sandbox" / "captured-token.json")
    config = tmp_path / "issuers.json"
    config.write_text(json.dumps([{
        "iss": "https://sandbox.cds-hooks.org",
        "jwks_file": str(EXTERNAL / "cds-hooks-sandbox" / "jwks.json"),
        "jku": ["https://sandbox.cds-hooks.org/.well-known/jwks.json"],
    }]))
    exp = jwt.decode(captured["token"], options={"verify_signature": False})["exp"]
    client = make_app(
        CDS_AUTH="required", CDS_TRUSTED_ISSUERS=f"@{config}", CDS_PUBLIC_BASE_URL="http://127.0.0.1:8000",
        CDS_JWT_LEEWAY_SECONDS=int(time.time() - exp + 3600),
    ).test_client()
    response = client.get("/cds-services", headers=bearer(captured["token"]))
    assert response.status_code == 200
    assert_refused(client.get("/cds-services", headers=bearer(captured["token"])))  # and only once
    untrusted = make_app(CDS_AUTH="required", CDS_PUBLIC_BASE_URL="http://127.0.0.1:8000").test_client()
    assert_refused(untrusted.get("/cds-services", headers=bearer(captured["token"])))


def test_the_workers_of_one_replica_share_the_replay_cache_without_redis(tmp_path):
    """`cds-service serve` runs several worker processes; a jti seen by one is refused by another."""
    import subprocess
    import sys

    from cds_service.trust.shared import WorkersState
    from support import child_env

    path = str(tmp_path / "workers-state.sqlite3")
    first = WorkersState(path)
    assert first.add_if_absent("jti:seen", 60)

    def claim_in_another_process(key: str) -> bool:
        code = "import sys; from cds_service.trust.shared import WorkersState; print(WorkersState(sys.argv[1]).add_if_absent(sys.argv[2], 60))"
        return subprocess.run([sys.executable, "-c", code, path, key], capture_output=True, text=True, check=True,
                              env=child_env(tmp_path)).stdout.strip() == "True"

    assert not claim_in_another_process("jti:seen")
    assert claim_in_another_process("jti:new")
    assert not first.add_if_absent("jti:new", 60)
    assert first.add_if_absent("jti:short", 0) and first.add_if_absent("jti:short", 60)  # expired entries are reused
