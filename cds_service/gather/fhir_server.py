"""Reading what prefetch lacks from the EHR's FHIR server, quickly and safely.

- Only servers on the allowlist (CDS_FHIR_ALLOWLIST), over https unless plain http is allowed:
  a request cannot make the service call arbitrary hosts.
- The bearer token goes only to the fhirServer origin; redirects are not followed; next links
  that leave the origin are refused. The token is never logged.
- Queries for different keys run concurrently; searchset next links are followed up to a page and
  resource cap; connections are reused; everything shares one deadline per hook call.
- Whatever the server sends is untrusted: size-limited, parsed strictly, checked for FHIR shape.
  Every failure becomes a reason ("timed out after 800 ms") that ends in a 412, never a 500.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
import requests

from .. import metrics
from ..settings import Settings
from .prefetch import GatheredData, section_of

log = logging.getLogger("cds_service.fhir")

_TOKENS = {
    "context.patientId": lambda c: c.get("patientId"),
    "context.encounterId": lambda c: c.get("encounterId"),
    "context.userId": lambda c: c.get("userId"),
}


class FhirReadError(Exception):
    """Why data could not be read from the FHIR server (shown in the 412 OperationOutcome)."""


def render_template(template: str, context: Mapping[str, Any]) -> str | None:
    """Fill {{context.X}} tokens with URL-encoded values; None when a token has no value."""
    rendered = template
    for token, read in _TOKENS.items():
        marker = "{{" + token + "}}"
        if marker in rendered:
            value = read(context)
            if not isinstance(value, str) or not value:
                return None
            rendered = rendered.replace(marker, quote(value, safe="/"))
    return None if "{{" in rendered else rendered


@dataclass
class FhirAccess:
    """One hook call's access to one FHIR server."""

    base: str
    token: str | None
    deadline: float  # time.monotonic() after which nothing more is read
    notes: list[str] = field(default_factory=list)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


class FhirServerReader:
    """Per-process reader: a thread pool for concurrent queries and one HTTP session per thread."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # -- policy ----------------------------------------------------------------------------

    def refusal(self, base: str) -> str | None:
        """Why the service will not call this FHIR server, or None when it may."""
        parts = urlsplit(base)
        if parts.scheme not in {"https", "http"} or not parts.hostname:
            return f"fhirServer {base!r} is not an http(s) URL"
        if parts.scheme == "http" and not self.settings.fhir_allow_http:
            return "fhirServer uses plain http; only https is allowed (CDS_FHIR_ALLOW_HTTP is off)"
        if parts.username or parts.password or parts.query or parts.fragment:
            return "fhirServer must be a plain base URL (no credentials, query or fragment)"
        normalised = base.rstrip("/")
        if not any(fnmatch.fnmatchcase(normalised, pattern.rstrip("/")) for pattern in self.settings.fhir_allowlist):
            return f"fhirServer {normalised} is not on this service's allowlist (CDS_FHIR_ALLOWLIST)"
        return None

    def access(self, base: str, authorization: Mapping[str, Any] | None, deadline: float) -> FhirAccess:
        token = authorization.get("access_token") if authorization else None
        return FhirAccess(base.rstrip("/"), token if isinstance(token, str) else None, deadline)

    # -- completing prefetch ---------------------------------------------------------------

    def complete(
        self, data: GatheredData, access: FhirAccess, templates: Mapping[str, str], context: Mapping[str, Any]
    ) -> None:
        """Read every section that prefetch left unavailable, concurrently, into `data`."""
        jobs: dict[str, tuple[str, str, int]] = {}  # key -> (section, first URL, resources already read)
        for key, template in templates.items():
            section = section_of(template)
            if section not in data.unavailable:
                continue
            if key in data.next_pages:
                # A paged prefetch value: continue from its next link, only on the fhirServer's origin.
                if _origin(data.next_pages[key]) != _origin(access.base):
                    data.unavailable[section] += "; its next link points to another server and was not followed"
                    continue
                jobs[key] = (section, data.next_pages[key], len(data.resources.get(section, ())))
                continue
            query = render_template(template, context)
            if query is None:
                data.unavailable[section] += "; its query cannot be built from this context"
                continue
            jobs[key] = (section, f"{access.base}/{query}", 0)
        if not jobs:
            return
        pool = self._executor()
        futures = {key: pool.submit(self._read, access, url, section, already) for key, (section, url, already) in jobs.items()}
        for key, future in futures.items():
            section = jobs[key][0]
            try:
                resources = future.result(timeout=max(access.remaining(), 0) + 0.5)
            except FhirReadError as error:
                data.unavailable[section] += f"; reading it from the FHIR server failed: {error}"
                continue
            except Exception:  # a timeout of the future itself, or a defect: never a 500 for the caller
                log.exception("reading %s from the FHIR server failed unexpectedly", section)
                data.unavailable[section] += "; reading it from the FHIR server failed"
                continue
            for resource in resources:
                data.add(resource)
            data.available.add(section)
            del data.unavailable[section]
            data.next_pages.pop(key, None)
        data.notes.extend(access.notes)

    def _executor(self) -> ThreadPoolExecutor:
        # Created on first use, so a process that forks (gunicorn --preload) hands no threads to its workers.
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.settings.fhir_concurrency, thread_name_prefix="fhir")
            return self._pool

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no proxy or .netrc credentials from the environment
            self._local.session = session
        return session

    # -- one query, all its pages ----------------------------------------------------------

    def _read(self, access: FhirAccess, url: str, section: str, already: int = 0) -> list[dict[str, Any]]:
        try:
            resources = self._read_pages(access, url, section, already)
        except FhirReadError:
            metrics.count_fhir_read(section, False)
            raise
        metrics.count_fhir_read(section, True)
        return resources

    def _read_pages(self, access: FhirAccess, url: str, section: str, already: int) -> list[dict[str, Any]]:
        started = time.monotonic()
        resources: list[dict[str, Any]] = []
        pages = 0
        expected_total: int | None = None
        next_url: str | None = url
        try:
            while next_url:
                pages += 1
                if pages > self.settings.fhir_max_pages:
                    raise FhirReadError(f"more than {self.settings.fhir_max_pages} pages")
                body = self._get(access, next_url)
                if body.get("resourceType") == section and section == "Patient":
                    return [body]
                if body.get("resourceType") != "Bundle":
                    raise FhirReadError(f"expected a Bundle, got {str(body.get('resourceType'))[:40]}")
                page, next_url, total = self._page(body, section, access)
                resources.extend(page)
                expected_total = total if expected_total is None else expected_total
                if len(resources) > self.settings.fhir_max_resources:
                    raise FhirReadError(f"more than {self.settings.fhir_max_resources} resources")
            if expected_total is not None and expected_total > already + len(resources):
                raise FhirReadError(
                    f"the server reported {expected_total} matches but returned {already + len(resources)} without a next page"
                )
            return resources
        finally:
            log.info("read %s from the FHIR server: %d page(s), %d resource(s) in %.0f ms",
                     section, pages, len(resources), (time.monotonic() - started) * 1000)

    def _page(
        self, bundle: dict[str, Any], section: str, access: FhirAccess
    ) -> tuple[list[dict[str, Any]], str | None, int | None]:
        entries = bundle.get("entry", [])
        if not isinstance(entries, list):
            raise FhirReadError("Bundle.entry is not an array")
        kept = []
        for entry in entries:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                continue
            kind = resource["resourceType"]
            if kind == "OperationOutcome":
                access.notes.append(f"the FHIR server added an OperationOutcome to the {section} search")
            elif kind in {section, "Medication"}:
                kept.append(resource)
        next_url = None
        for link in bundle.get("link") or ():
            if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
                next_url = link["url"]
        if next_url is not None and _origin(next_url) != _origin(access.base):
            raise FhirReadError("a next link points to another server; it was not followed")
        total = bundle.get("total")
        counted = total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None
        return kept, next_url, counted

    def _get(self, access: FhirAccess, url: str) -> dict[str, Any]:
        remaining = access.remaining()
        if remaining <= 0:
            raise FhirReadError(f"no time left in the {self.settings.fhir_time_budget_ms} ms budget")
        headers = {"Accept": "application/fhir+json"}
        if access.token:
            headers["Authorization"] = f"Bearer {access.token}"
        response = self._send(access, url, headers)
        with response:
            if response.status_code in (401, 403):
                raise FhirReadError(f"the FHIR server refused the access token (HTTP {response.status_code})")
            if 300 <= response.status_code < 400:
                raise FhirReadError(f"the FHIR server redirected (HTTP {response.status_code}); redirects are not followed")
            body = self._body(response, access)
        if response.status_code == 404 and url.rstrip("/").rsplit("/", 2)[-2] == "Patient":
            raise FhirReadError("the patient was not found on the FHIR server (HTTP 404)")
        if response.status_code != 200:
            raise FhirReadError(f"HTTP {response.status_code}")
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise FhirReadError("the FHIR server sent something that is not JSON") from None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("resourceType"), str):
            raise FhirReadError("the FHIR server sent JSON that is not a FHIR resource")
        if parsed["resourceType"] == "OperationOutcome":
            raise FhirReadError("the FHIR server answered with an OperationOutcome")
        return parsed

    def _send(self, access: FhirAccess, url: str, headers: dict[str, str]) -> requests.Response:
        # A server may close a kept-alive connection just as it is reused, or refuse a connect when its backlog is
        # full: a GET is safe to send once more on a fresh connection, within the budget. Timeouts are not retried.
        for attempt in (1, 2):
            remaining = access.remaining()
            try:
                return self._session().get(url, headers=headers, timeout=(min(remaining, 5.0), remaining),
                                           allow_redirects=False, stream=True)
            except requests.Timeout:
                raise FhirReadError(f"timed out after {self.settings.fhir_time_budget_ms} ms") from None
            except requests.ConnectionError as error:
                if attempt == 2 or access.remaining() <= 0:
                    raise FhirReadError(f"could not connect ({type(error).__name__})") from None
                log.info("connecting to the FHIR server failed (%s); trying once more", type(error).__name__)
            except requests.RequestException as error:
                raise FhirReadError(f"could not connect ({type(error).__name__})") from None
        raise AssertionError("unreachable")

    def _body(self, response: requests.Response, access: FhirAccess) -> bytes:
        limit = self.settings.fhir_max_response_bytes
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise FhirReadError(f"the response is larger than {limit} bytes")
        chunks, size = [], 0
        for chunk in response.iter_content(chunk_size=65536):
            size += len(chunk)
            if size > limit:
                raise FhirReadError(f"the response is larger than {limit} bytes")
            if access.remaining() <= 0:
                raise FhirReadError(f"timed out after {self.settings.fhir_time_budget_ms} ms")
            chunks.append(chunk)
        return b"".join(chunks)
