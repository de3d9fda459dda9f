"""The real server: `cds-service serve` (gunicorn) on a free port, called over HTTP."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys

import pytest
import requests

from cds_service.storage import open_store
from support import EXTERNAL, REQUESTS, ROOT, child_env, free_port, load_json, wait_until_up

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    database = tmp_path_factory.mktemp("served") / "feedback.sqlite3"
    env = child_env(database.parent, CDS_DATABASE_URL=f"sqlite:///{database}", CDS_MAX_BODY_BYTES="200000", CDS_LOG_LEVEL="WARNING",
                    CDS_AUTH="off")
    process = subprocess.Popen(
        [sys.executable, "-m", "cds_service", "serve", "--port", str(port), "--workers", "2"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/healthz/live", process)
    except AssertionError as failure:
        process.kill()
        pytest.fail(f"{failure}:\n" + process.stdout.read().decode())
    yield base, database, process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_discovery_over_http_from_gunicorn(server):
    base, _, _ = server
    response = requests.get(f"{base}/cds-services", headers={"Origin": "https://sandbox.cds-hooks.org"}, timeout=5)
    assert response.status_code == 200
    assert response.headers["Server"].startswith("gunicorn")  # the production server, not Flask's
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert len(response.json()["services"]) == 3


def test_a_fixture_request_gets_its_card_over_http(server):
    """The served clock is the real one: the course is ongoing, so the card still fires, with more weeks."""
    base, _, _ = server
    body = load_json(REQUESTS / "ad-primary-nonresponse-adult.patient-view.json")
    response = requests.post(f"{base}/cds-services/dupilumab-next-line-patient-view", json=body, timeout=10)
    assert response.status_code == 200
    (card,) = response.json()["cards"]
    assert card["source"]["topic"]["code"] == "dupilumab-inadequate-response"
    assert [s["label"].split()[1] for s in card["suggestions"]][:2] == ["upadacitinib", "abrocitinib"]


def test_order_sign_and_external_requests_over_http(server):
    base, _, _ = server
    body = load_json(REQUESTS / "ad-primary-nonresponse-adult.order-sign.json")
    response = requests.post(f"{base}/cds-services/dupilumab-next-line-order-sign", json=body, timeout=10)
    assert response.status_code == 200 and len(response.json()["cards"]) == 1
    inferno = load_json(EXTERNAL / "inferno-crd" / "order_select_hook_request.json")
    response = requests.post(f"{base}/cds-services/dupilumab-next-line-order-select", json=inferno, timeout=10)
    assert response.status_code == 200 and response.json() == {"cards": []}


def test_errors_over_http_are_operation_outcomes(server):
    base, _, _ = server
    service = f"{base}/cds-services/dupilumab-next-line-patient-view"
    bad = requests.post(service, data=b"{", headers={"Content-Type": "application/json"}, timeout=5)
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"
    huge = requests.post(service, data=b" " * 300_000, headers={"Content-Type": "application/json"}, timeout=5)
    assert huge.status_code == 413 and huge.json()["resourceType"] == "OperationOutcome"
    missing = requests.post(f"{base}/cds-services/nope", json={}, timeout=5)
    assert missing.status_code == 404


def chunked(base: str, chunks: list[bytes], content_type: bytes = b"application/json") -> tuple[int, dict]:
    """POST a body with Transfer-Encoding: chunked, each of `chunks` written as sent (size line included)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /cds-services/dupilumab-next-line-patient-view HTTP/1.1\r\nHost: x\r\nContent-Type: " + content_type
                     + b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + b"".join(chunks))
        answer = b""
        while data := sock.recv(65536):
            answer += data
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}".encode() + b"\r\n" + data + b"\r\n"


@pytest.mark.parametrize("size_line", [b"zz", b"-5", b"1x"])
def test_a_malformed_chunk_size_is_a_400(server, size_line):
    base, _, _ = server
    status, body = chunked(base, [size_line + b"\r\nabc\r\n0\r\n\r\n"])
    assert status == 400 and body["resourceType"] == "OperationOutcome"
    assert "could not be read" in body["issue"][0]["diagnostics"]


def test_a_chunked_body_over_the_limit_is_a_413_and_one_within_it_is_answered(server):
    base, _, _ = server  # the server's limit: 200,000 bytes
    over = b"[" + b"1," * 100_000 + b"1]"
    status, body = chunked(base, [chunk(over[:150_000]), chunk(over[150_000:]), b"0\r\n\r\n"])
    assert status == 413 and body["resourceType"] == "OperationOutcome"
    request = json.dumps(load_json(REQUESTS / "ad-primary-nonresponse-adult.patient-view.json")).encode()
    status, body = chunked(base, [chunk(request[:1000]), chunk(request[1000:]), b"0\r\n\r\n"])
    assert status == 200 and len(body["cards"]) == 1


def test_feedback_over_http_is_stored_once(server):
    base, database, _ = server
    feedback = load_json(EXTERNAL / "ahrq-cql-services" / "feedbackFor2.json")
    url = f"{base}/cds-services/dupilumab-next-line-order-select/feedback"
    assert requests.post(url, json=feedback, timeout=5).json() == {"received": 2, "stored": 2}
    assert requests.post(url, json=feedback, timeout=5).json() == {"received": 2, "stored": 0}
    assert len(open_store(f"sqlite:///{database}").feedback_entries("dupilumab-next-line-order-select")) == 2


def test_the_server_stops_cleanly_on_sigterm_and_keeps_every_audit_record(server):
    base, database, process = server
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    audited = {r.hook_instance for r in open_store(f"sqlite:///{database}").audit_entries()}
    assert load_json(REQUESTS / "ad-primary-nonresponse-adult.patient-view.json")["hookInstance"] in audited
    output = process.stdout.read().decode()
    assert "Traceback" not in output
    assert "Bearer" not in output and "access_token" not in output


def test_the_readme_quick_start_serves_discovery_without_a_token(tmp_path):
    """`./scripts/serve` is the README's first command: it must answer a newcomer's curl. On its defaults but
    the database, which goes to tmp_path rather than the developer's instance/cds-service.sqlite3."""
    port = free_port()
    env = child_env(tmp_path)
    process = subprocess.Popen([str(ROOT / "scripts" / "serve"), "--port", str(port)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        response = wait_until_up(f"http://127.0.0.1:{port}/cds-services", process, seconds=120)  # setup may install
        assert response.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert "AUTHENTICATION IS OFF" in output
