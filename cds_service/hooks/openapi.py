"""The OpenAPI 3.1 description of this service's own endpoints (served at /openapi.json).

Its request schemas are the JSON Schemas the service validates with, so fuzzers (schemathesis)
exercise exactly what the service accepts and rejects.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from .. import __version__
from .catalog import SERVICES


def _schema(name: str) -> dict[str, Any]:
    with resources.files(__package__).joinpath("schemas", name).open("rb") as handle:
        schema = json.load(handle)
    schema.pop("$schema", None)
    schema.pop("$id", None)
    return schema


def _outcome(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/fhir+json": {"schema": _ref("OperationOutcome")}}}


def _ref(schema: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{schema}"}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    service_ids = [s.id for s in SERVICES]
    service_id = {"name": "service_id", "in": "path", "required": True, "schema": {"type": "string", "examples": service_ids}}
    errors = {
        "400": _outcome("Invalid request: the OperationOutcome names the field"),
        "401": _outcome("No valid client JWT (no detail is given)"),
        "404": _outcome("No such service"),
        "413": _outcome("Body larger than the configured limit"),
        "415": _outcome("Body is not JSON"),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Dupilumab next-line CDS (CDS Hooks 2.0)", "version": __version__},
        "components": {
            "securitySchemes": {"clientJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {
                "HookRequest": _schema("hook-request.schema.json"),
                "Feedback": _schema("feedback.schema.json"),
                "OperationOutcome": {"type": "object", "required": ["resourceType", "issue"]},
                "CardsResponse": {"type": "object", "required": ["cards"], "properties": {"cards": {"type": "array"}}},
            },
        },
        "security": [{"clientJwt": []}],
        "paths": {
            "/cds-services": {
                "get": {
                    "summary": "Discovery",
                    "responses": {"200": _json("The services", {"type": "object", "required": ["services"]}),
                                  "401": errors["401"]},
                }
            },
            "/cds-services/{service_id}": {
                "post": {
                    "summary": "Call a service",
                    "parameters": [service_id],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("HookRequest")}}},
                    "responses": {
                        "200": _json("Cards", _ref("CardsResponse")),
                        "412": _outcome("Data the conclusion needs could not be obtained"),
                        **errors,
                    },
                }
            },
            "/cds-services/{service_id}/feedback": {
                "post": {
                    "summary": "Feedback on cards",
                    "parameters": [service_id],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Feedback")}}},
                    "responses": {
                        "200": _json("Stored (repeats are stored once)", {"type": "object"}),
                        "503": _outcome("Not stored now; send it again"),
                        **errors,
                    },
                }
            },
        },
    }
