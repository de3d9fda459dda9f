"""A trusted issuer's key server is outside the service's control: whatever it does (fail, hang, trickle), it is
fetched once at a time, a failure is remembered with a back-off, no call waits long for it, other issuers are
unaffected, and readiness does not depend on it (docs/security.md, "Key sets")."""

from __future__ import annotations

import datetime
import http.server
import json
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cds_service.trust import key_sets
from test_auth import BASE, ISSUER, Signer, bearer

OTHER = "https://other-ehr.example.org"  # a second issuer, its keys in a file: it must not notice the first's outage


class KeyServer:
    """An issuer's key server over https (a certificate of its own, trusted through REQUESTS_CA_BUNDLE) that
    serves a JWKS file, or fails in the way `mode` says: "ok", "500", "hang" or "trickle". Counts fetches."""

    def __init__(self, folder, jwks_path):
        self.jwks_path, self.mode, self.fetches = jwks_path, "ok", 0
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                       .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                       .not_valid_after(now + datetime.timedelta(days=1))
                       .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), critical=False)
                       .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                       .sign(key, hashes.SHA256()))
        self.ca_file = folder / "key-server.pem"
        self.ca_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_file = folder / "key-server.key"
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                server.fetches += 1
                if server.mode == "500":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if server.mode == "hang":
                    time.sleep(30)
                    return
                body = server.jwks_path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.mode == "trickle":  # a byte every 0.2 s: 12 s for a key set, unless cut off
                    for index in range(min(len(body), 60)):
                        self.wfile.write(body[index:index + 1])
                        self.wfile.flush()
                        time.sleep(0.2)
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def key_server(tmp_path, monkeypatch):
    signer = Signer(tmp_path / "served-jwks.json")
    server = KeyServer(tmp_path, signer.path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_file))
    yield server, signer
    server.close()


@pytest.fixture
def service(make_app, key_server, tmp_path):
    """A service trusting ISSUER (keys from the key server) and OTHER (keys in a file)."""
    server, signer = key_server
    other = Signer(tmp_path / "other-jwks.json")
    config = tmp_path / "issuers.json"
    config.write_text(json.dumps([{"iss": ISSUER, "jwks_url": server.url}, {"iss": OTHER, "jwks_file": str(other.path)}]))
    app = make_app(CDS_AUTH="required", CDS_TRUSTED_ISSUERS=f"@{config}")
    return app, signer, other


def discovery(app, signer, iss=ISSUER) -> tuple[int, float]:
    started = time.monotonic()
    response = app.test_client().get("/cds-services", headers=bearer(signer.token(f"{BASE}/cds-services", iss=iss)))
    return response.status_code, time.monotonic() - started


def test_a_failing_key_server_is_asked_once_per_back_off_not_once_per_call(service, key_server, monkeypatch):
    server, _ = key_server
    app, signer, _ = service
    monkeypatch.setattr(key_sets, "BACKOFF_SECONDS", 1)
    server.mode = "500"
    answers = [discovery(app, signer)[0] for _ in range(40)]
    assert answers == [401] * 40
    assert server.fetches == 1
    time.sleep(1.1)  # the back-off passes: asked again, and once it answers the calls go through
    server.mode = "ok"
    assert discovery(app, signer)[0] == 200
    assert server.fetches == 2
    assert [discovery(app, signer)[0] for _ in range(5)] == [200] * 5 and server.fetches == 2  # cached


def test_concurrent_first_calls_fetch_the_key_set_once_and_none_waits_long_on_a_hanging_server(service, key_server):
    server, _ = key_server
    app, signer, other = service
    server.mode = "hang"
    with ThreadPoolExecutor(max_workers=12) as pool:
        hanging = [pool.submit(discovery, app, signer) for _ in range(8)]
        time.sleep(0.2)
        unaffected = [pool.submit(discovery, app, other, OTHER) for _ in range(4)]
        results = [f.result() for f in hanging]
        other_results = [f.result() for f in unaffected]
    assert server.fetches == 1
    bound = key_sets.FETCH_SECONDS + key_sets.READ_SECONDS + key_sets.WAIT_SECONDS  # 4 s; the server hangs 30 s
    assert all(status == 401 and seconds < bound for status, seconds in results), results
    assert all(status == 200 and seconds < 1.0 for status, seconds in other_results), other_results


def test_a_trickling_key_server_is_cut_off(service, key_server):
    server, _ = key_server
    app, signer, _ = service
    server.mode = "trickle"
    status, seconds = discovery(app, signer)
    assert status == 401
    assert seconds < key_sets.FETCH_SECONDS + key_sets.READ_SECONDS + 0.5, seconds


def test_the_last_keys_fetched_carry_calls_through_a_key_server_outage(service, key_server, monkeypatch):
    server, _ = key_server
    app, signer, _ = service
    monkeypatch.setattr(key_sets, "FRESH_SECONDS", 1)
    assert discovery(app, signer)[0] == 200
    server.mode = "500"
    time.sleep(1.1)  # the cached copy is due for a refetch, and the server now fails
    assert [discovery(app, signer)[0] for _ in range(5)] == [200] * 5
    assert server.fetches == 2


def test_readiness_does_not_depend_on_an_issuers_key_server_and_the_details_view_tells_its_state(service, key_server):
    server, _ = key_server
    app, signer, _ = service
    server.mode = "500"
    client = app.test_client()
    assert client.get("/healthz/details").get_json()["issuer_key_sets"] == {ISSUER: "not fetched yet", OTHER: "not fetched yet"}
    assert discovery(app, signer)[0] == 401
    ready = client.get("/healthz/ready")
    assert ready.status_code == 200 and ready.get_json() == {"status": "ready", "checks": {"database": "ok"}}
    details = client.get("/healthz/details").get_json()
    assert details["issuer_key_sets"][ISSUER] == "failing (key set fetch answered HTTP 500)"
    assert server.fetches == 1  # neither view fetched
