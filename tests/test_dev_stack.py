"""`cds-service dev`, the local demo stack, with real parts: the Node FHIR server (Medplum's engine) with its
development SMART authorization server, the service under gunicorn, and Chromium for the SMART app. The
requests the public CDS Hooks sandbox makes (launch registration, POST _search) are sent as its source sends
them (cds-hooks/sandbox: src/retrieve-data-helpers/launch-context-retrieval.js, service-exchange.js)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import FHIR_TOKEN
from support import ROOT, child_env, free_port, hook_request, load_scenario, scenario_names, service_url

ISSUER = "https://ehr.example.org"
CHROMIUM = "/usr/bin/chromium"
PATIENT_VIEW = service_url("patient-view")


class Signer:
    """A CDS client (an EHR): an ES384 key, published to the service in a JWKS file."""

    def __init__(self, folder: Path):
        self.key = ec.generate_private_key(ec.SECP384R1())
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        (folder / "jwks.json").write_text(json.dumps({"keys": [{**public, "kid": "k1", "use": "sig", "alg": "ES384"}]}))
        self.issuers = folder / "issuers.json"
        self.issuers.write_text(json.dumps([{"iss": ISSUER, "jwks_file": str(folder / "jwks.json")}]))

    def headers(self, aud: str) -> dict[str, str]:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": aud, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
        return {"Authorization": "Bearer " + jwt.encode(claims, self.key, algorithm="ES384", headers={"kid": "k1", "typ": "JWT"})}


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def register_launch(fhir: str, patient: str, app_context: str | None = None, launch_url: str = "http://127.0.0.1:1/smart/launch") -> str:
    """POST {fhir}/_services/smart/Launch as the sandbox does; the launch id."""
    parameters = {"patient": patient, "smart_messaging_origin": "https://sandbox.cds-hooks.org"}
    if app_context is not None:
        parameters["appContext"] = app_context
    response = requests.post(f"{fhir}/_services/smart/Launch", json={"launchUrl": launch_url, "parameters": parameters},
                             headers={"Accept": "application/json", "Origin": "https://sandbox.cds-hooks.org"}, timeout=10)
    assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] == "*"
    return response.json()["launch_id"]


def authorize(fhir: str, **parameters: str) -> requests.Response:
    configuration = requests.get(f"{fhir}/.well-known/smart-configuration", timeout=10).json()
    return requests.get(configuration["authorization_endpoint"], params=parameters, allow_redirects=False, timeout=10)


def read_dev_output(process: subprocess.Popen, path: Path, seconds: float = 180) -> str:
    """What `dev` printed, once it says how to stop it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = path.read_text()
        if "Stop with Ctrl-C." in text:
            return text
        assert process.poll() is None, f"dev exited with {process.returncode}: {text}"
        time.sleep(0.2)
    raise AssertionError(f"dev printed no 'Stop with' within {seconds:g} s: {path.read_text()}")


@pytest.fixture(scope="module")
def stack(fhir_server, tmp_path_factory):
    """`cds-service dev` with authentication on (a trusted test issuer) and the session's other FHIR server
    (tests/conftest.py, which needs its own token) on the caller's CDS_FHIR_ALLOWLIST."""
    folder = tmp_path_factory.mktemp("dev")
    signer = Signer(folder)
    port, fhir_port = free_port(), free_port()
    env = child_env(folder, CDS_AUTH="required", CDS_TRUSTED_ISSUERS=f"@{signer.issuers}", CDS_FHIR_ALLOWLIST=fhir_server,
                    CDS_SECRET_KEY="test-secret", CDS_LOG_LEVEL="INFO")
    out, err = folder / "stdout.txt", folder / "stderr.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "cds_service", "dev", "--port", str(port), "--fhir-port", str(fhir_port)],
                                   cwd=ROOT, env=env, stdout=stdout, stderr=stderr)
    seen: list[dict] = []
    try:
        output = read_dev_output(process, out)
        yield {"port": port, "fhir": f"http://127.0.0.1:{fhir_port}/fhir", "fhir_port": fhir_port, "output": output,
               "signer": signer, "other_fhir": fhir_server, "service": f"http://127.0.0.1:{port}"}
        seen = requests.get(f"http://127.0.0.1:{fhir_port}/__requests", timeout=5).json()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    log = err.read_text()
    for token in {r["token"] for r in seen if r["token"]} | ISSUED_TOKENS:  # the SMART app's token among them
        assert token not in log, "an access token was logged"
    assert not port_in_use(port) and not port_in_use(fhir_port), "dev left a server running"


ISSUED_TOKENS: set[str] = set()


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def post_hook(stack, body: dict, name: str = "127.0.0.1", aud_name: str | None = None) -> requests.Response:
    url = f"http://{name}:{stack['port']}{PATIENT_VIEW}"
    aud = f"http://{aud_name or name}:{stack['port']}{PATIENT_VIEW}"
    return requests.post(url, json=body, headers=stack["signer"].headers(aud), timeout=60)


def without_prefetch(name: str, fhir: str, token: str | None = None) -> dict:
    body = hook_request(load_scenario(name))
    del body["prefetch"]
    body["fhirServer"] = fhir
    if token:
        body["fhirAuthorization"] = {"access_token": token, "token_type": "Bearer", "expires_in": 300,
                                     "scope": "patient/*.read", "subject": "cds-service"}
    return body


# -- the SMART authorization server of the dev FHIR server ---------------------------------------------------------


@pytest.mark.server
def test_the_fhir_server_publishes_a_smart_configuration_on_the_name_it_was_reached_by(stack):
    for name in ("127.0.0.1", "localhost"):
        response = requests.get(f"http://{name}:{stack['fhir_port']}/fhir/.well-known/smart-configuration", timeout=10)
        assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] == "*"
        document = response.json()
        assert document["authorization_endpoint"] == f"http://{name}:{stack['fhir_port']}/oauth/authorize"
        assert document["token_endpoint"] == f"http://{name}:{stack['fhir_port']}/oauth/token"
        assert document["code_challenge_methods_supported"] == ["S256"]
        assert {"launch-ehr", "launch-standalone", "client-public", "context-ehr-patient", "permission-v2"} <= set(document["capabilities"])
        assert {"launch", "launch/patient", "openid", "fhirUser", "patient/*.rs"} <= set(document["scopes_supported"])
    metadata = requests.get(f"{stack['fhir']}/metadata", timeout=10).json()
    assert "SMART-on-FHIR" in json.dumps(metadata["rest"][0]["security"])


@pytest.mark.server
def test_a_sandbox_launch_registration_then_authorize_and_token_give_the_patient_the_encounter_and_the_app_context(stack):
    fhir = stack["fhir"]
    preflight = requests.options(f"{fhir}/_services/smart/Launch", timeout=10, headers={
        "Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type", "Access-Control-Request-Private-Network": "true"})
    assert preflight.status_code == 204 and "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
    assert preflight.headers["Access-Control-Allow-Private-Network"] == "true"
    app_context = json.dumps({"topic": "dupilumab-inadequate-response", "patientId": "pnr-adult"})
    launch = register_launch(fhir, "pnr-adult", app_context)
    verifier, challenge = pkce()
    redirect_uri = "http://127.0.0.1:1/smart/callback"
    scope = "launch openid fhirUser patient/Patient.rs patient/Observation.rs"
    answer = authorize(fhir, response_type="code", client_id="dupilumab-cds", redirect_uri=redirect_uri, scope=scope,
                       state="state-1", aud=fhir, code_challenge=challenge, code_challenge_method="S256", launch=launch)
    assert answer.status_code == 302
    back = urlsplit(answer.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(back.query).items()}
    assert f"{back.scheme}://{back.netloc}{back.path}" == redirect_uri and query["state"] == "state-1" and "error" not in query
    form = {"grant_type": "authorization_code", "code": query["code"], "redirect_uri": redirect_uri, "client_id": "dupilumab-cds"}
    configuration = requests.get(f"{fhir}/.well-known/smart-configuration", timeout=10).json()
    wrong = requests.post(configuration["token_endpoint"], data={**form, "code_verifier": pkce()[0]}, timeout=10)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    spent = requests.post(configuration["token_endpoint"], data={**form, "code_verifier": verifier}, timeout=10)
    assert spent.status_code == 400  # a code is good for one try

    verifier, challenge = pkce()
    answer = authorize(fhir, response_type="code", client_id="dupilumab-cds", redirect_uri=redirect_uri, scope=scope,
                       state="state-2", aud=fhir, code_challenge=challenge, code_challenge_method="S256", launch=launch)
    form["code"] = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    token = requests.post(configuration["token_endpoint"], data={**form, "code_verifier": verifier}, timeout=10)
    assert token.status_code == 200 and token.headers["Cache-Control"] == "no-store"
    granted = token.json()
    ISSUED_TOKENS.add(granted["access_token"])
    assert granted["patient"] == "pnr-adult" and granted["encounter"] == "enc-pnr-adult"
    assert granted["appContext"] == app_context and granted["scope"] == scope and granted["token_type"] == "Bearer"
    keys = jwt.PyJWKSet.from_dict(requests.get(configuration["jwks_uri"], timeout=10).json())
    identity = jwt.decode(granted["id_token"], keys.keys[0].key, algorithms=["RS256"], audience="dupilumab-cds")
    assert identity["fhirUser"] == f"{fhir}/Practitioner/dev-dermatologist"
    assert requests.get(f"{fhir}/Practitioner/dev-dermatologist", timeout=10).json()["name"][0]["family"]
    assert requests.get(f"{fhir}/Encounter/enc-pnr-adult", timeout=10).json()["subject"]["reference"] == "Patient/pnr-adult"
    reused = requests.post(configuration["token_endpoint"], data={**form, "code_verifier": verifier}, timeout=10)
    assert reused.status_code == 400


@pytest.mark.server
def test_authorize_refuses_what_a_real_server_refuses(stack):
    fhir = stack["fhir"]
    verifier, challenge = pkce()
    good = {"response_type": "code", "client_id": "app", "redirect_uri": "http://127.0.0.1:1/cb", "scope": "launch/patient",
            "state": "s", "aud": fhir, "code_challenge": challenge, "code_challenge_method": "S256"}
    missing_redirect = authorize(fhir, **{k: v for k, v in good.items() if k != "redirect_uri"})
    assert missing_redirect.status_code == 400 and "Location" not in missing_redirect.headers
    for changes, reason in [({"code_challenge_method": "plain"}, "PKCE"), ({"state": ""}, "state"),
                            ({"aud": "https://fhir.example.org/r4"}, "aud"), ({"launch": "unknown"}, "launch")]:
        answer = authorize(fhir, **{**good, **changes})
        query = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
        assert answer.status_code == 302 and query["error"] and reason in query["error_description"] and "code" not in query
    standalone = authorize(fhir, **good)  # no launch: the demo server's standalone patient
    code = parse_qs(urlsplit(standalone.headers["Location"]).query)["code"][0]
    token = requests.post(f"http://127.0.0.1:{stack['fhir_port']}/oauth/token", timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": good["redirect_uri"], "code_verifier": verifier})
    assert token.status_code == 200 and token.json()["patient"] == "pnr-adult" and "id_token" not in token.json()
    ISSUED_TOKENS.add(token.json()["access_token"])


@pytest.mark.node
def test_tokens_are_required_on_fhir_reads_only_when_asked_and_then_the_issued_ones_are_accepted():
    from cds_service.fixtures import start_fhir_server

    process, fhir = start_fhir_server(0, env={"REQUIRE_ISSUED_TOKEN": "1"})
    try:
        assert requests.get(f"{fhir}/Patient", timeout=10).status_code == 401
        assert requests.get(f"{fhir}/Patient", headers={"Authorization": "Bearer made-up"}, timeout=10).status_code == 401
        assert requests.get(f"{fhir}/.well-known/smart-configuration", timeout=10).status_code == 200
        verifier, challenge = pkce()
        answer = authorize(fhir, response_type="code", client_id="app", redirect_uri="http://127.0.0.1:1/cb", state="s", aud=fhir,
                           scope="patient/*.rs", code_challenge=challenge, code_challenge_method="S256",
                           launch=register_launch(fhir, "p1"))
        code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
        token = requests.post(fhir.replace("/fhir", "/oauth/token"), timeout=10, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:1/cb", "code_verifier": verifier}).json()
        assert token["patient"] == "p1" and "encounter" not in token
        read = requests.get(f"{fhir}/Patient", headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=10)
        assert read.status_code == 200 and read.json()["type"] == "searchset"
    finally:
        process.terminate()
        process.wait(timeout=30)


# -- the SMART app, launched as the sandbox launches it --------------------------------------------------------------


@pytest.mark.server
@pytest.mark.browser
def test_the_smart_app_launched_from_a_card_through_the_dev_authorization_server_shows_the_course(stack):
    playwright = pytest.importorskip("playwright.sync_api")
    response = post_hook(stack, without_prefetch("ad-primary-nonresponse-adult", stack["fhir"]))
    assert response.status_code == 200, response.text
    link = next(link for card in response.json()["cards"] for link in card.get("links", []) if link["type"] == "smart")
    assert link["url"] == f"{stack['service']}/smart/launch"
    # what the sandbox does with a card's SMART link: register the launch context, open url?launch=...&iss=...
    launch = register_launch(stack["fhir"], "pnr-adult", link["appContext"], link["url"])
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"])
        try:
            page = browser.new_page()
            page.goto(f"{link['url']}?launch={launch}&iss={stack['fhir']}")
            try:
                page.wait_for_selector("#timeline svg", timeout=60_000)
            except playwright.TimeoutError:
                pytest.fail(f"no course drawn; the page at {page.url} reads: {page.inner_text('body')[:600]!r}")
            assert page.inner_text(".banner h1") == "pnr-adult Fixture"  # the card's patient, by name
            assert "no adequate response" in page.inner_text(".card .summary")
            assert "code=" not in page.url
        finally:
            browser.close()


# -- what the sandbox sends to the FHIR server and the service -------------------------------------------------------


@pytest.mark.server
def test_post_search_with_a_form_body_answers_the_same_searchset_as_get(stack):
    fhir = stack["fhir"]
    posted = requests.post(f"{fhir}/Observation/_search", data={"patient": "pnr-adult"}, timeout=30,
                           headers={"Accept": "application/json+fhir", "Origin": "https://sandbox.cds-hooks.org"})
    assert posted.status_code == 200, posted.text
    bundle = posted.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset" and bundle["entry"]
    assert {e["resource"]["subject"]["reference"] for e in bundle["entry"]} == {"Patient/pnr-adult"}
    got = requests.get(f"{fhir}/Observation", params={"patient": "pnr-adult"}, timeout=30).json()
    assert sorted(e["resource"]["id"] for e in bundle["entry"]) == sorted(e["resource"]["id"] for e in got["entry"])
    both = requests.post(f"{fhir}/Condition/_search?patient=pnr-adult", data={"_count": "1"}, timeout=30).json()
    assert len(both["entry"]) == 1 and both["entry"][0]["resource"]["subject"]["reference"] == "Patient/pnr-adult"


@pytest.mark.server
def test_the_service_reads_the_dev_server_and_the_servers_the_caller_allows_and_no_other(stack):
    own = post_hook(stack, without_prefetch("ad-primary-nonresponse-adult", stack["fhir"]))
    theirs = post_hook(stack, without_prefetch("ad-primary-nonresponse-adult", stack["other_fhir"], FHIR_TOKEN))
    assert own.status_code == 200, own.json()
    assert theirs.status_code == 200, theirs.json()
    assert own.json()["cards"][0]["source"]["topic"]["code"] == theirs.json()["cards"][0]["source"]["topic"]["code"]
    refused = post_hook(stack, without_prefetch("ad-primary-nonresponse-adult", "http://127.0.0.1:9/fhir"))
    assert refused.status_code == 412 and "allowlist" in refused.text


@pytest.mark.server
def test_the_service_accepts_tokens_for_either_local_name_and_links_use_the_first(stack):
    discovery = "/cds-services"
    for called, aud in [("127.0.0.1", "127.0.0.1"), ("localhost", "localhost"), ("127.0.0.1", "localhost")]:
        url = f"http://{called}:{stack['port']}{discovery}"
        response = requests.get(url, headers=stack["signer"].headers(f"http://{aud}:{stack['port']}{discovery}"), timeout=30)
        assert response.status_code == 200, (called, aud)
    other = requests.get(f"{stack['service']}{discovery}", headers=stack["signer"].headers(f"http://example.org:{stack['port']}{discovery}"),
                         timeout=30)
    assert other.status_code == 401
    via_localhost = post_hook(stack, without_prefetch("drosd-severe-persistent", stack["fhir"]), name="localhost")
    assert via_localhost.status_code == 200, via_localhost.text
    assert via_localhost.json()["cards"][0]["links"][0]["url"] == f"{stack['service']}/smart/launch"


# -- what dev prints, and how it refuses ------------------------------------------------------------------------------


@pytest.mark.server
def test_dev_prints_a_line_per_patient_with_what_the_cards_show_and_a_sandbox_link(stack):
    lines = stack["output"].splitlines()
    for name in scenario_names():
        scenario = load_scenario(name)
        line = next((line for line in lines if line.startswith(f"  {scenario.patient_id} ")), None)
        assert line is not None, f"no line for {scenario.patient_id} ({name})"
        link = re.search(r"(https://sandbox\.cds-hooks\.org/\S+)$", line).group(1)
        query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
        assert query == {"fhirServiceUrl": stack["fhir"], "serviceDiscoveryURL": f"{stack['service']}/cds-services",
                         "patientId": scenario.patient_id}
        shows = line[len(f"  {scenario.patient_id} "):line.index(link)]
        if not scenario.expected["cards"]:
            assert "no card" in shows
        for card in scenario.expected["cards"]:
            assert f"({card['indicator']})" in shows
        if scenario.expected.get("region", "US") != "US":
            assert f"CDS_REGION={scenario.expected['region']}" in shows
    pnr = next(line for line in lines if line.startswith("  pnr-adult "))
    assert "Dupilumab inadequate response (warning)" in pnr
    assert f"{stack['service']}/smart/launch?iss={stack['fhir']}" in stack["output"]


def run_dev(*arguments: str, tmp_path: Path, **settings: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cds_service", "dev", *arguments], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=child_env(tmp_path, **settings))


def test_dev_refuses_busy_ports_in_one_line_before_starting_anything(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy, free = taken.getsockname()[1], free_port()
        for arguments, named in [(("--port", str(busy), "--fhir-port", str(free)), f"port {busy} (the service, --port)"),
                                 (("--port", str(free), "--fhir-port", str(busy)), f"port {busy} (the FHIR server, --fhir-port)")]:
            result = run_dev(*arguments, tmp_path=tmp_path)
            assert result.returncode == 75, result.stderr
            assert result.stderr.count("\n") == 1 and result.stderr.startswith("cds-service: ") and named in result.stderr
            assert result.stdout == "" and "Traceback" not in result.stderr
            assert not port_in_use(free)  # nothing was started on the other port
    same = run_dev("--port", str(free), "--fhir-port", str(free), tmp_path=tmp_path)
    assert same.returncode == 75 and same.stderr.count("\n") == 1


def test_a_bad_public_base_url_is_one_plain_line(tmp_path):
    result = run_dev("--port", str(free_port()), tmp_path=tmp_path, CDS_PUBLIC_BASE_URL="http://127.0.0.1:8080,localhost:8080")
    assert result.returncode == 64 and result.stderr.count("\n") == 1
    assert "CDS_PUBLIC_BASE_URL 'localhost:8080' is not a base URL" in result.stderr and "Traceback" not in result.stderr


def test_dev_combines_the_callers_allowlist_and_keeps_the_callers_budget_and_public_names():
    from cds_service.fixtures import DEV_FHIR_TIME_BUDGET_MS, dev_environment

    default = dev_environment({}, port=8080, host="127.0.0.1", fhir_port=8081)
    assert default["CDS_FHIR_ALLOWLIST"] == "http://127.0.0.1:8081/fhir,http://localhost:8081/fhir"
    assert default["CDS_FHIR_TIME_BUDGET_MS"] == DEV_FHIR_TIME_BUDGET_MS and int(DEV_FHIR_TIME_BUDGET_MS) > 800
    assert default["CDS_PUBLIC_BASE_URL"] == "http://127.0.0.1:8080,http://localhost:8080"
    caller = {"CDS_FHIR_ALLOWLIST": "https://fhir.example.org/r4, http://127.0.0.1:8081/fhir", "CDS_FHIR_TIME_BUDGET_MS": "1500",
              "CDS_PUBLIC_BASE_URL": "http://localhost:8080"}
    combined = dev_environment(caller, port=8080, host="127.0.0.1", fhir_port=8081)
    assert combined["CDS_FHIR_ALLOWLIST"] == "http://127.0.0.1:8081/fhir,http://localhost:8081/fhir,https://fhir.example.org/r4"
    assert combined["CDS_FHIR_TIME_BUDGET_MS"] == "1500" and combined["CDS_PUBLIC_BASE_URL"] == "http://localhost:8080"


# -- several public base URLs, in process ----------------------------------------------------------------------------


def test_any_listed_public_base_url_is_accepted_as_aud_and_the_first_names_the_service(make_app, tmp_path):
    signer = Signer(tmp_path)
    client = make_app(CDS_AUTH="required", CDS_TRUSTED_ISSUERS=f"@{signer.issuers}",
                      CDS_PUBLIC_BASE_URL="https://cds.example.org, https://cds.internal.example.org/").test_client()
    for base in ("https://cds.example.org", "https://cds.internal.example.org"):
        assert client.get("/cds-services", headers=signer.headers(f"{base}/cds-services")).status_code == 200
    for wrong in ("http://localhost/cds-services", "https://other.example.org/cds-services", "https://cds.example.org/cds-services/x"):
        assert client.get("/cds-services", headers=signer.headers(wrong)).status_code == 401
    body = hook_request(load_scenario("ad-primary-nonresponse-adult"))
    response = client.post(PATIENT_VIEW, json=body, headers=signer.headers(f"https://cds.internal.example.org{PATIENT_VIEW}"))
    assert response.status_code == 200
    assert response.get_json()["cards"][0]["links"][0]["url"] == "https://cds.example.org/smart/launch"
