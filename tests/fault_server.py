"""A small local HTTP server that misbehaves in the ways FHIR servers do, for the fault tests.

The first path segment picks the behaviour; the rest is a FHIR path. Searches are answered from
one scenario's resources (the `scenario` attribute).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class FaultServer:
    def __init__(self):
        self.resources: list[dict] = []
        self.requests: list[str] = []
        self.dropped: set[str] = set()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def base(self, mode: str) -> str:
        return f"{self.origin}/{mode}/fhir"

    def start(self) -> "FaultServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _matches(self, resource_type: str) -> list[dict]:
        return [r for r in self.resources if r["resourceType"] == resource_type]

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _json(self, status: int, document: object) -> None:
                self._send(status, json.dumps(document).encode())

            def do_GET(self):  # noqa: N802
                server.requests.append(self.path)
                parts = urlsplit(self.path)
                segments = parts.path.strip("/").split("/")
                mode, resource_type = segments[0], segments[2] if len(segments) > 2 else ""
                query = parse_qs(parts.query)
                if mode == "hangup" or (mode == "hangup-once" and self.path not in server.dropped):
                    server.dropped.add(self.path)
                    self.close_connection = True  # no answer: as a server closing a kept-alive connection does
                    return None
                if mode == "slow":
                    time.sleep(3)
                if mode == "error":
                    return self._json(500, {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception"}]})
                if mode == "garbage":
                    return self._send(200, b"\x00\xff<html>not json")
                if mode == "notfhir":
                    return self._json(200, {"hello": "world"})
                if mode == "outcome":
                    return self._json(200, {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing"}]})
                if mode == "huge":
                    return self._send(200, b'{"resourceType": "Bundle", "type": "searchset", "entry": [' + b" " * 3_000_000 + b"]}")
                if mode == "redirect":
                    return self._send(302, b"", {"Location": f"http://127.0.0.1:9/{parts.path}"})
                if mode == "unauthorised":
                    return self._json(401, {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "login"}]})
                if len(segments) == 4 and resource_type == "Patient":
                    found = [r for r in server._matches("Patient") if r["id"] == segments[3]]
                    return self._json(200, found[0]) if found else self._json(404, {"resourceType": "OperationOutcome", "issue": []})
                matches = server._matches(resource_type)
                page = int(query.get("page", ["0"])[0])
                size = 2 if mode in {"paged", "offsite", "endless", "short"} else 1000
                chunk = matches[page * size:(page + 1) * size]
                bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in chunk]}
                more = (page + 1) * size < len(matches)
                if mode == "paged" and more:
                    bundle["link"] = [{"relation": "next", "url": f"{server.origin}/paged/fhir/{resource_type}?page={page + 1}"}]
                    bundle["total"] = len(matches)
                if mode == "offsite" and more:
                    bundle["link"] = [{"relation": "next", "url": f"http://other.example.org/fhir/{resource_type}?page={page + 1}"}]
                if mode == "endless":
                    bundle["link"] = [{"relation": "next", "url": f"{server.origin}/endless/fhir/{resource_type}?page={page + 1}"}]
                if mode == "short":
                    bundle["total"] = len(matches) + 5
                return self._json(200, bundle)

        return Handler
