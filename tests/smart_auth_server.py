"""A SMART authorization server for the tests: authorization code with PKCE (S256), auto-approving.

EHR launches are registered beforehand (`launches[launch] = (patient, appContext)`); a standalone
launch gets `standalone_patient`. Every check a real server makes on the request is made here, and
each refusal is recorded in `refusals` so the tests can see why. With `ask = True` it shows a consent
page (links "Allow" and "Deny") instead of approving at once, so a test can hold a launch half-way;
`launch_tokens[launch]` issues another access token for that launch (one the FHIR server refuses).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit


class SmartAuthServer:
    def __init__(self, client_id: str, access_token: str, fhir_base: str):
        self.client_id, self.access_token, self.fhir_base = client_id, access_token, fhir_base
        self.launches: dict[str, tuple[str, str | None]] = {}
        self.standalone_patient = ""
        self.ask = False
        self.launch_tokens: dict[str, str] = {}
        self.waiting: dict[str, dict] = {}  # consent pages shown: ticket -> the grant it would make
        self.codes: dict[str, dict] = {}
        self.refusals: list[str] = []
        self.authorize_requests: list[dict[str, str]] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def configuration(self) -> dict:
        return {
            "authorization_endpoint": f"{self.base}/authorize",
            "token_endpoint": f"{self.base}/token",
            "capabilities": ["launch-ehr", "launch-standalone", "client-public", "context-ehr-patient",
                             "context-standalone-patient", "permission-v2"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["launch", "launch/patient", "patient/*.rs"],
        }

    def stop(self) -> None:
        self.httpd.shutdown()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, status: int, document: dict) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _refuse(self, why: str) -> None:
                server.refusals.append(why)
                self._json(400, {"error": "invalid_request", "error_description": why})

            def _redirect(self, location: str) -> None:
                self.send_response(302)
                self.send_header("Location", location)
                self.end_headers()

            def _decide(self, query: dict) -> None:  # /authorize/decide: the answer on the consent page
                grant = server.waiting.pop(query.get("ticket", ""), None)
                if grant is None:
                    return self._refuse("unknown consent ticket")
                if query.get("allow") != "yes":
                    return self._redirect(grant["redirect_uri"] + "?" + urlencode(
                        {"error": "access_denied", "error_description": "The user declined.", "state": grant["state"]}))
                code = secrets.token_urlsafe(16)
                server.codes[code] = grant
                self._redirect(grant["redirect_uri"] + "?" + urlencode({"code": code, "state": grant["state"]}))

            def do_GET(self):  # noqa: N802  /authorize
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/authorize/decide":
                    return self._decide(query)
                server.authorize_requests.append(query)
                if parts.path != "/authorize":
                    return self._json(404, {})
                checks = [
                    (query.get("response_type") == "code", "response_type"),
                    (query.get("client_id") == server.client_id, "client_id"),
                    (query.get("code_challenge_method") == "S256" and len(query.get("code_challenge", "")) >= 43, "PKCE"),
                    (query.get("aud", "").rstrip("/") == server.fhir_base.rstrip("/"), "aud"),
                    (bool(query.get("state")), "state"),
                    ("patient/Observation.rs" in query.get("scope", ""), "scope"),
                ]
                for ok, why in checks:
                    if not ok:
                        return self._refuse(why)
                if "launch" in query:
                    if query["launch"] not in server.launches:
                        return self._refuse("unknown launch")
                    patient, app_context = server.launches[query["launch"]]
                else:
                    if "launch/patient" not in query["scope"]:
                        return self._refuse("standalone without launch/patient")
                    patient, app_context = server.standalone_patient, None
                grant = {"challenge": query["code_challenge"], "redirect_uri": query["redirect_uri"], "state": query["state"],
                         "patient": patient, "appContext": app_context, "scope": query["scope"],
                         "token": server.launch_tokens.get(query.get("launch", ""), server.access_token)}
                if server.ask:
                    ticket = secrets.token_urlsafe(8)
                    server.waiting[ticket] = grant
                    body = (f'<!doctype html><title>Allow access?</title><p>Allow the app to read {patient}?</p>'
                            f'<a id="allow" href="/authorize/decide?ticket={ticket}&allow=yes">Allow</a> '
                            f'<a id="deny" href="/authorize/decide?ticket={ticket}&allow=no">Deny</a>').encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return None
                code = secrets.token_urlsafe(16)
                server.codes[code] = grant
                self._redirect(query["redirect_uri"] + "?" + urlencode({"code": code, "state": query["state"]}))

            def do_POST(self):  # noqa: N802  /token
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                grant = server.codes.pop(form.get("code", ""), None)
                if self.path != "/token" or grant is None:
                    return self._refuse("unknown or reused code")
                verifier = form.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if challenge != grant["challenge"]:
                    return self._refuse("PKCE verifier does not match")
                if form.get("redirect_uri") != grant["redirect_uri"] or form.get("client_id") != server.client_id:
                    return self._refuse("redirect_uri or client_id")
                answer = {"access_token": grant["token"], "token_type": "Bearer", "expires_in": 300,
                          "scope": grant["scope"], "patient": grant["patient"]}
                if grant["appContext"]:
                    answer["appContext"] = grant["appContext"]
                self._json(200, answer)

        return Handler
