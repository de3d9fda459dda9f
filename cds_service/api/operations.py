"""Operations endpoints: liveness, readiness and Prometheus metrics. They carry no patient data
and need no client token (keep them on the cluster network: the ingress should not expose /metrics)."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Blueprint, Response

from .. import metrics
from ..service_state import state
from ..storage import StoreUnavailable

log = logging.getLogger("cds_service.operations")
blueprint = Blueprint("operations", __name__)


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


@blueprint.get("/healthz/live")
def live() -> Response:
    """The process answers: nothing else is checked (a failing database must not restart every pod)."""
    return _json({"status": "live"})


@blueprint.get("/healthz/ready")
def ready() -> Response:
    """Ready when the database and the shared cache (if configured) can be used. Not the issuers' key servers:
    one issuer's outage would take every replica out of service for every issuer (see /healthz/details)."""
    checks = _dependency_checks()
    healthy = all(value == "ok" for value in checks.values())
    if not healthy:
        log.warning("not ready: %s", {k: v for k, v in checks.items() if v != "ok"})
    return _json({"status": "ready" if healthy else "unready", "checks": checks}, 200 if healthy else 503)


@blueprint.get("/healthz/details")
def details() -> Response:
    """Readiness's checks and what is known of each trusted issuer's key set (from the cache: no fetch)."""
    current = state()
    checks = _dependency_checks()
    issuers = current.verifier.key_set_status() if current.verifier is not None else {}
    ready_now = all(value == "ok" for value in checks.values())
    return _json({"status": "ready" if ready_now else "unready", "checks": checks, "issuer_key_sets": issuers})


def _dependency_checks() -> dict[str, str]:
    current = state()
    checks: dict[str, str] = {}
    try:
        current.store.check()
        checks["database"] = "ok"
    except StoreUnavailable:
        checks["database"] = "unavailable"
    if current.engine.settings.redis_url:
        try:
            current.shared.ping()
            checks["cache"] = "ok"
        except Exception:  # any client error means the cache cannot be used
            checks["cache"] = "unavailable"
    return checks


@blueprint.get("/metrics")
def prometheus() -> Response:
    body, content_type = metrics.exposition()
    return Response(body, mimetype=content_type.split(";")[0], content_type=content_type)

