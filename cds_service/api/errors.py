"""Every error answer is a FHIR OperationOutcome; bad input never becomes a 500."""

from __future__ import annotations

import logging

import orjson
from flask import Flask, Response, g
from werkzeug.exceptions import HTTPException

from ..hooks.errors import InvalidRequest, Problem, operation_outcome
from ..record.model import DataUnavailable

log = logging.getLogger("cds_service.http")

FHIR_JSON = "application/fhir+json"


def outcome_response(status: int, diagnostics: str, problems: tuple[Problem, ...] = ()) -> Response:
    body = orjson.dumps(operation_outcome(status, diagnostics, problems))
    return Response(body, status=status, mimetype=FHIR_JSON)


def install(app: Flask) -> None:
    @app.errorhandler(InvalidRequest)
    def invalid_request(error: InvalidRequest) -> Response:
        g.outcome = "invalid"
        return outcome_response(400, "invalid request", error.problems)

    @app.errorhandler(DataUnavailable)
    def data_unavailable(error: DataUnavailable) -> Response:
        g.outcome = "data-unavailable"
        problems = tuple(
            Problem(f"prefetch.{section}", f"needed and not available: {error.reasons[section]}")
            for section in sorted(error.sections)
        )
        return outcome_response(412, "required FHIR data is not available", problems)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        g.outcome = "http-error"
        status = error.code or 500
        messages = {
            404: "no such endpoint; services are listed at /cds-services",
            405: "method not allowed here",
            413: "request body is larger than this service accepts",
        }
        response = outcome_response(status, messages.get(status, error.description or error.name))
        if status == 405 and error.get_headers():
            for name, value in error.get_headers():
                if name.lower() == "allow":
                    response.headers["Allow"] = value
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        g.outcome = "error"
        log.exception("unhandled error answering request %s", g.get("request_id", "-"))
        return outcome_response(500, "internal error; the service log has the details")
