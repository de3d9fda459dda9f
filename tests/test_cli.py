"""`cds-service evaluate`: one request through the same pipeline, no server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from support import REQUESTS, ROOT, child_env, hook_request, load_json, load_scenario, unrelated_draft_order

CLI = [sys.executable, "-m", "cds_service"]


@pytest.fixture
def run(tmp_path):
    """`run(*args, stdin=..., env_extra=...)`: the command in a process of its own, without the caller's CDS_* settings."""

    def run_cli(*args, stdin: bytes | None = None, env_extra=None):
        env = child_env(tmp_path, **(env_extra or {}))
        return subprocess.run([*CLI, *args], input=stdin, capture_output=True, cwd=ROOT, env=env, timeout=60)

    return run_cli


def test_evaluate_prints_the_card_for_a_fixture_request(run):
    result = run("evaluate", str(REQUESTS / "ad-primary-nonresponse-adult.patient-view.json"), "--now", "2025-09-01T12:00:00Z")
    assert result.returncode == 0, result.stderr.decode()
    (card,) = json.loads(result.stdout)["cards"]
    assert card["summary"].startswith("Dupilumab: no adequate response after 26 weeks")


def test_evaluate_reads_stdin_and_explains_its_reasoning(run):
    body = json.dumps(hook_request(load_scenario("dupilumab-for-asthma-only"))).encode()
    result = run("evaluate", "-", "--now", "2025-09-01T12:00:00Z", "--explain", stdin=body)
    assert result.returncode == 0
    assert json.loads(result.stdout) == {"cards": []}
    assert "reasoning: no active atopic dermatitis diagnosis" in result.stderr.decode()


def test_evaluate_explains_an_order_it_has_no_advice_on(run):
    scenario = load_scenario("ad-primary-nonresponse-adult")
    body = json.dumps(hook_request(scenario, "order-select", draft_orders=[unrelated_draft_order(scenario.patient_id)])).encode()
    result = run("evaluate", "-", "--now", "2025-09-01T12:00:00Z", "--explain", stdin=body)
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout) == {"cards": []}
    assert "reasoning: no dupilumab order in focus" in result.stderr.decode()


def test_evaluate_gives_the_same_answer_as_the_http_endpoint(run, client):
    path = REQUESTS / "ad-primary-nonresponse-adult.order-select.json"
    body = load_json(path)
    result = run("evaluate", str(path), "--now", "2025-09-01T12:00:00Z", env_extra={"CDS_PUBLIC_BASE_URL": "http://localhost"})
    over_http = client.post(f"/cds-services/dupilumab-next-line-{body['hook']}", json=body).get_json()
    assert json.loads(result.stdout) == over_http


@pytest.mark.parametrize(
    "stdin, code, text",
    [
        (b"{oops", 2, "not valid JSON"),
        (json.dumps({"hook": "patient-view", "hookInstance": "x", "context": {}}).encode(), 2, "hookInstance"),
        (json.dumps({"hook": "encounter-start"}).encode(), 2, "no service"),
    ],
)
def test_evaluate_reports_bad_requests_as_an_operation_outcome(run, stdin, code, text):
    result = run("evaluate", "-", stdin=stdin)
    assert result.returncode == code
    outcome = json.loads(result.stdout)
    assert outcome["resourceType"] == "OperationOutcome"
    assert text in result.stdout.decode()


def test_evaluate_exits_3_when_required_data_is_missing(run):
    body = hook_request(load_scenario("ad-primary-nonresponse-adult"))
    del body["prefetch"]["Observation"]
    result = run("evaluate", "-", stdin=json.dumps(body).encode())
    assert result.returncode == 3
    assert "prefetch key 'Observation' was not sent" in result.stdout.decode()


def test_a_bad_setting_stops_the_command_with_a_clear_message(run):
    result = run("evaluate", "-", stdin=b"{}", env_extra={"CDS_REGION": "Mars"})
    assert result.returncode == 64
    assert "CDS_REGION must be a region code of the knowledge base, such as US or EU; got 'Mars'" in result.stderr.decode()


def write(path, text: str) -> str:
    path.write_text(text)
    return str(path)


# Operator mistakes: one plain line on stderr naming what is wrong and how to put it right, and the exit code the
# README gives (64 a wrong value or unreadable request, 78 an unusable file the service needs, 3 no database).
MISTAKES = [
    ("evaluate a missing file", ["evaluate", "no-such-request.json"], {}, 64, "cannot read the request no-such-request.json: No such file"),
    ("evaluate a folder", ["evaluate", "fhir_fixtures"], {}, 64, "cannot read the request fhir_fixtures: Is a directory"),
    ("a database URL of no known kind", ["serve"], {"CDS_DATABASE_URL": "nonsense://x"}, 64,
     "CDS_DATABASE_URL must start with sqlite:/// (a file) or postgresql:// (a server)"),
    ("an unknown log level", ["serve"], {"CDS_LOG_LEVEL": "LOUD"}, 64, "CDS_LOG_LEVEL must be one of debug, info, warning, error, critical"),
    ("a shared-secret JWT algorithm", ["serve"], {"CDS_JWT_ALGORITHMS": "ES384,HS256"}, 64,
     "CDS_JWT_ALGORITHMS may list only asymmetric algorithms"),
    ("PostgreSQL not listening", ["serve", "--port", "1"], {"CDS_DATABASE_URL": "postgresql://cds:s3cret@127.0.0.1:9/cds"}, 3,
     "PostgreSQL at 127.0.0.1:9/cds unavailable"),
    ("a trusted-issuers file that is not JSON", ["serve", "--port", "1"], {"CDS_AUTH": "required", "CDS_TRUSTED_ISSUERS": "@{tmp}/issuers.json"},
     78, "is not valid JSON (Expecting property name enclosed in double quotes at line 1, column 2)"),
    ("a trusted-issuers file that is missing", ["serve", "--port", "1"], {"CDS_AUTH": "required", "CDS_TRUSTED_ISSUERS": "@{tmp}/none.json"},
     78, "none.json: No such file or directory"),
]


@pytest.mark.parametrize("mistake, args, settings, code, says", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_an_operator_mistake_is_one_plain_line_and_a_documented_exit_code(run, tmp_path, mistake, args, settings, code, says):
    write(tmp_path / "issuers.json", "{not json")
    result = run(*args, stdin=b"", env_extra={k: v.replace("{tmp}", str(tmp_path)) for k, v in settings.items()})
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == code, lines
    assert len(lines) == 1 and lines[0].startswith("cds-service: ") and says in lines[0], lines
    assert "s3cret" not in lines[0]


def test_a_region_the_knowledge_base_does_not_hold_stops_the_service_naming_the_ones_it_does(run):
    result = run("evaluate", "-", stdin=b"{}", env_extra={"CDS_REGION": "UK"})
    assert result.returncode != 0
    assert result.stderr.decode().strip() == "cds-service: CDS_REGION=UK is not a region of the knowledge base; set it to one of EU, US"


def test_fixture_requests_are_the_scenarios_they_are_named_after():
    """The ready-to-send requests in fhir_fixtures/requests/ must not drift from the scenarios."""
    files = sorted(REQUESTS.glob("*.json"))
    assert files
    for path in files:
        scenario_name, hook, _ = path.name.rsplit(".", 2)
        stored = load_json(path)
        rebuilt = hook_request(load_scenario(scenario_name), hook)
        rebuilt["hookInstance"] = stored["hookInstance"]
        assert stored == rebuilt, path.name
