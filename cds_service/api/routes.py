"""CDS Hooks 2.0 endpoints: discovery, service calls and feedback."""

from __future__ import annotations

import gc
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Blueprint, Response, g, request
from werkzeug.exceptions import BadRequest, HTTPException, NotFound, RequestEntityTooLarge, UnsupportedMediaType

from .. import metrics
from ..hooks.catalog import SERVICES_BY_ID, ServiceDefinition, discovery_document
from ..hooks.errors import InvalidRequest, Problem
from ..hooks.openapi import openapi_document
from ..hooks.validation import parse_feedback, parse_hook_request
from ..pipeline import evaluate_hook
from ..service_state import base_url, state
from ..storage import AuditRecord, StoreUnavailable
from .errors import outcome_response

log = logging.getLogger("cds_service.http")
blueprint = Blueprint("cds_hooks", __name__)
bench_blueprint = Blueprint("bench", __name__)  # only with CDS_BENCH_ECHO=true

_JSON_TYPES = ("application/json", "application/fhir+json")
# A feedback post waits this long for a slot to write (service_state.feedback_writers): long enough for a burst on a
# healthy database, short enough that a locked one holds few threads (a restart under load once gave a 503 at once).
FEEDBACK_SLOT_WAIT_SECONDS = 0.2


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


@blueprint.before_app_request
def start_request() -> None:
    g.started = time.monotonic()
    g.request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
    g.outcome = "ok"


@blueprint.after_app_request
def log_request(response: Response) -> Response:
    elapsed_ms = (time.monotonic() - g.get("started", time.monotonic())) * 1000
    response.headers["X-Request-Id"] = g.get("request_id", "")
    if request.endpoint == "cds_hooks.call_service" and request.method == "POST":
        _audit(response.status_code, elapsed_ms)
    endpoint = (request.endpoint or "unknown").split(".")[-1]
    if endpoint not in {"prometheus", "live", "ready"}:
        service = (request.view_args or {}).get("service_id", "")
        metrics.observe_request(endpoint, service if service in SERVICES_BY_ID else "", response.status_code, elapsed_ms / 1000)
    if log.isEnabledFor(logging.INFO):  # the arguments cost more than the check when the line is not written
        # Identifiers only: no patient id, no tokens, no request body.
        log.info(
            "%s %s -> %s in %.1f ms (outcome %s, cards %s)",
            request.method,
            request.path,
            response.status_code,
            elapsed_ms,
            g.get("outcome", "-"),
            g.get("cards", "-"),
        )
    return response


@blueprint.get("/openapi.json")
def openapi() -> Response:
    return json_response(openapi_document())


@blueprint.get("/cds-services")
def discovery() -> Response:
    return json_response(discovery_document())


@blueprint.post("/cds-services/<service_id>")
def call_service(service_id: str) -> Response:
    service = _service(service_id)
    body = _json_body()
    hook_request = parse_hook_request(body, service.hook)
    g.hook_instance = hook_request.hook_instance
    g.patient = hook_request.patient_id
    current = state()
    deadline = g.started + current.engine.settings.fhir_time_budget_ms / 1000  # the budget counts from arrival
    outcome = evaluate_hook(hook_request, service, current.engine, current.clock(), deadline, base_url())
    g.cards = len(outcome.response["cards"])
    g.issued = tuple((card["uuid"], card["source"]["topic"]["code"]) for card in outcome.response["cards"])
    metrics.count_cards([topic for _, topic in g.issued])
    return _freed_after_sending(json_response(outcome.response), body, hook_request, outcome)


@blueprint.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    service = _service(service_id)
    items = parse_feedback(_json_body())
    current = state()
    if not current.feedback_writers.acquire(timeout=FEEDBACK_SLOT_WAIT_SECONDS):
        log.error("feedback not stored (request %s): every feedback slot is waiting on the database; the client is "
                  "told to retry", g.get("request_id"))
        return outcome_response(503, "feedback could not be stored now; send it again later")
    try:
        result = current.store.save_feedback(service.id, items)
    except StoreUnavailable as error:
        log.error("feedback not stored (request %s): %s; the client is told to retry", g.get("request_id"), error)
        return outcome_response(503, "feedback could not be stored now; send it again later")
    finally:
        current.feedback_writers.release()
    return json_response({"received": result.received, "stored": result.stored})


def _audit(status: int, elapsed_ms: float) -> None:
    """One audit record per hook call: no tokens, no clinical free text. Written in the background
    (storage/audit.py): a slow or failed write never costs the answer."""
    client = g.get("client")
    service_id = (request.view_args or {}).get("service_id", "")
    service = SERVICES_BY_ID.get(service_id)
    record = AuditRecord(
        at=datetime.now(UTC),
        service_id=service_id[:200],
        hook=service.hook if service else "",
        hook_instance=g.get("hook_instance"),
        client_issuer=client.issuer if client else None,
        client_tenant=client.tenant if client else None,
        patient=g.get("patient"),
        status=status,
        outcome=g.get("outcome", "ok"),
        latency_ms=elapsed_ms,
        cards=g.get("issued", ()),
    )
    state().audit.record(record)


def _freed_after_sending(response: Response, *objects: Any) -> Response:
    """The parsed request and the record built from it are freed once the answer has been written: freeing
    them takes milliseconds (1,000 resources: about half as long as parsing), and the EHR need not wait
    for it. The response's close callback holds them until the server closes the response."""
    response.call_on_close(lambda: objects)
    return response


def _service(service_id: str) -> ServiceDefinition:
    service = SERVICES_BY_ID.get(service_id)
    if service is None:
        raise NotFound()
    return service


def _json_body() -> Any:
    mimetype = request.mimetype
    if not mimetype or (mimetype not in _JSON_TYPES and not mimetype.endswith("+json")):
        raise UnsupportedMediaType("send the request as application/json")
    raw = _body_bytes(state().engine.settings.max_body_bytes)
    # Parsed JSON holds no reference cycles, so the cycle collector has nothing to find in it; left on, it runs
    # again and again over the objects being made: a body of a million empty arrays took 0.9 CPU-s, not 0.13.
    collecting = gc.isenabled()
    gc.disable()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest([Problem("", f"body is not valid JSON ({error.msg} at position {error.pos})")]) from None
    finally:
        if collecting:
            gc.enable()
    return body


def _body_bytes(limit: int) -> bytes:
    """The body, at most `limit` bytes. A chunked body (no Content-Length) is read to one byte past the limit, so
    one too large is a 413 like a declared one, not a truncated body; a malformed chunk is the client's error."""
    try:
        raw = request.stream.read(limit + 1)
    except HTTPException:
        raise
    except Exception as error:  # the server's parser of chunked bodies (gunicorn: InvalidChunkSize, NoMoreData, ...)
        raise BadRequest(f"the request body could not be read ({type(error).__name__})") from None
    if len(raw) > limit:
        raise RequestEntityTooLarge()
    return raw


@bench_blueprint.post("/bench/echo")
def echo() -> Response:
    """The benchmark's baseline: parse the body and return it, on the same server and stack (and, as the
    service does, free it after sending)."""
    body = _json_body()
    return _freed_after_sending(json_response(body), body)
